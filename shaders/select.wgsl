// Radix select on float bits: the k-th smallest (or largest) key of an f32 array, found with
// four 8-bit histogram passes over an order-preserving u32 key, without reading the data back
// and without float atomics (u32 atomicAdd histograms only). Then an exactly-k mask.
//
//   sel_init                 res = 0, threshold = NaN, k read (uniform or GPU buffer), hist = 0
//   4 x (sel_hist, sel_find) digit 31..24, 23..16, 15..8, 7..0 of the rank key
//   mark_count, scan, mark_write   mask with exactly min(k, eligible) ones (ties by index)
//
// Rank key (ascending = selected first) of the f32 bits b, mag = b & 0x7fffffff:
//   mode 0 "value":    b >= 0 ? b | 0x80000000 : ~b     (monotone in the value, -0 < +0)
//   mode 1 "abs":      mag
//   mode 2 "positive": mag, only for values > 0 (b sign clear, mag != 0)
//   mode 3 "negative": mag, only for values < 0 (closest to zero first)
//   largest = 1: key = ~key (top-k largest). NaNs are never eligible. Eligibility is decided
//   on bits, so denormals count as nonzero on every device, whatever its flush-to-zero rules.
//
// Result words res[0..8): 0 key (rank key of the k-th selected element), 1 threshold (f32
// bits of the ranked value: v, or |v| for abs/negative; NaN when k = 0), 2 below (eligible
// keys strictly before the key), 3 take (k - below equal keys are selected, lowest index first),
// 4 k (min(k, eligible)), 5 eligible, 6 k as requested, 7 unused (0).
// While the passes run, res[0] holds the digits found so far, res[2] the count below them and
// res[3] the rank still to find among the keys that share those digits.
//
// Loops: VPT, 4, 256 / WG and log2(WG) iterations per invocation: constant, nothing grows
// with n (the grid grows instead).

struct Params {
  n: u32,
  nq: u32, // ceil(n / 4): vec4s of data
  nBlocks: u32, // workgroups: ceil(nq / (WG * VPT))
  mode: u32,
  largest: u32,
  shift: u32, // digit of this pass: 24, 16, 8, 0
  kFromBuf: u32, // init: 1 = k is kbuf[kIndex], 0 = kConst
  kConst: u32,
  kIndex: u32,
  accumulate: u32, // mark_write: 1 = mask |= selected
}

const RADIX: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> res: array<u32>;
@group(0) @binding(2) var<storage, read> kbuf: array<u32>;
@group(0) @binding(3) var<storage, read_write> hist: array<atomic<u32>>;

override WG: u32 = 256u; // workgroup size of sel_hist / mark_*, a power of two <= 256
override VPT: u32 = 4u; // vec4s per invocation

var<workgroup> wsum: array<u32, 256>;
var<workgroup> wh: array<atomic<u32>, 256>;

// Exclusive scan of one value per invocation over `width` invocations (Hillis-Steele,
// log2(width) steps). Returns (exclusive prefix, total). Call from uniform control flow.
fn wg_scan(lid: u32, v: u32, width: u32) -> vec2u {
  wsum[lid] = v;
  workgroupBarrier();
  for (var off = 1u; off < width; off <<= 1u) {
    var t = 0u;
    if (lid >= off) { t = wsum[lid - off]; }
    workgroupBarrier();
    wsum[lid] += t;
    workgroupBarrier();
  }
  let incl = wsum[lid];
  let total = wsum[width - 1u];
  workgroupBarrier();
  return vec2u(incl - v, total);
}

// (rank key, 1 if eligible) of one f32 given as bits.
fn key_of(b: u32) -> vec2u {
  let mag = b & 0x7fffffffu;
  let neg = (b >> 31u) == 1u;
  var ok = mag <= 0x7f800000u; // not NaN
  var key = mag;
  switch p.mode {
    case 0u: { key = select(b | 0x80000000u, ~b, neg); }
    case 2u: { ok = ok && !neg && mag != 0u; }
    case 3u: { ok = ok && neg && mag != 0u; }
    default: {}
  }
  if (p.largest == 1u) { key = ~key; }
  return vec2u(key, select(0u, 1u, ok));
}

// f32 bits of the ranked value of a rank key (inverse of key_of up to the sign in abs modes).
fn decode(key: u32) -> u32 {
  var u = key;
  if (p.largest == 1u) { u = ~u; }
  if (p.mode == 0u) {
    return select(~u, u & 0x7fffffffu, (u & 0x80000000u) != 0u);
  }
  return u;
}

@compute @workgroup_size(RADIX)
fn sel_init(@builtin(local_invocation_index) lid: u32) {
  atomicStore(&hist[lid], 0u);
  if (lid < 8u) {
    var v = 0u;
    if (lid == 1u) { v = 0x7fc00000u; }
    if (lid == 6u) { v = select(p.kConst, kbuf[p.kIndex], p.kFromBuf == 1u); }
    res[lid] = v;
  }
}

@group(0) @binding(2) var<storage, read> x: array<vec4<u32>>;

// Histogram of digit `shift` over the eligible keys whose higher digits equal res[0]:
// a workgroup histogram in workgroup memory, flushed into hist with one atomicAdd per bin.
@compute @workgroup_size(WG)
fn sel_hist(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let b = wid.x + wid.y * nwg.x;
  if (b >= p.nBlocks) { return; }
  for (var i = lid; i < RADIX; i += WG) { atomicStore(&wh[i], 0u); } // 256 / WG iterations
  workgroupBarrier();
  let prefix = res[0];
  let hiMask = select(0xffffffffu << (p.shift + 8u), 0u, p.shift >= 24u);
  for (var v = 0u; v < VPT; v++) { // VPT iterations
    let q = b * WG * VPT + v * WG + lid;
    if (q < p.nq) {
      let w = x[q];
      for (var c = 0u; c < 4u; c++) {
        if (q * 4u + c < p.n) {
          let kk = key_of(w[c]);
          if (kk.y == 1u && (kk.x & hiMask) == prefix) {
            atomicAdd(&wh[(kk.x >> p.shift) & 0xffu], 1u);
          }
        }
      }
    }
  }
  workgroupBarrier();
  for (var i = lid; i < RADIX; i += WG) { // 256 / WG iterations
    let c = atomicLoad(&wh[i]);
    if (c != 0u) { atomicAdd(&hist[i], c); }
  }
}

// One workgroup: scans the 256-bin histogram, finds the bin holding the remaining rank,
// appends its digit, and clears the histogram for the next pass.
@compute @workgroup_size(RADIX)
fn sel_find(@builtin(local_invocation_index) lid: u32) {
  let c = atomicLoad(&hist[lid]);
  atomicStore(&hist[lid], 0u);
  let prefix = res[0];
  let below = res[2];
  var rem = res[3];
  let kreq = res[6];
  storageBarrier(); // every read of res above happens before the writes below
  let r = wg_scan(lid, c, RADIX);
  if (p.shift == 24u) {
    // First pass: r.y = number of eligible keys; clamp k to it.
    rem = min(kreq, r.y);
    if (lid == 0u) {
      res[4] = rem;
      res[5] = r.y;
    }
  }
  if (rem > 0u && r.x < rem && rem <= r.x + c) {
    let key = prefix | (lid << p.shift);
    res[0] = key;
    res[2] = below + r.x;
    res[3] = rem - r.x;
    if (p.shift == 0u) { res[1] = decode(key); }
  }
}

@group(0) @binding(3) var<storage, read_write> blk: array<u32>;

// Number of elements equal to the selected key in this invocation's VPT consecutive vec4s.
fn count_equal(q0: u32, key: u32) -> u32 {
  var cnt = 0u;
  for (var v = 0u; v < VPT; v++) { // VPT iterations
    let q = q0 + v;
    if (q < p.nq) {
      let w = x[q];
      for (var c = 0u; c < 4u; c++) {
        let kk = key_of(w[c]);
        if (q * 4u + c < p.n && kk.y == 1u && kk.x == key) { cnt += 1u; }
      }
    }
  }
  return cnt;
}

// blk[b] = elements of block b equal to the selected key.
@compute @workgroup_size(WG)
fn mark_count(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let b = wid.x + wid.y * nwg.x;
  if (b >= p.nBlocks) { return; }
  let r = wg_scan(lid, count_equal((b * WG + lid) * VPT, res[0]), WG);
  if (lid == 0u) { blk[b] = r.y; }
}

@group(0) @binding(3) var<storage, read> boff: array<u32>;
@group(0) @binding(4) var<storage, read_write> mask: array<u32>;

// mask[i] = 1 for eligible keys below the selected key and for the first `take` equal keys
// in index order (boff = exclusive scan of blk gives each block's first tie rank).
@compute @workgroup_size(WG)
fn mark_write(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let b = wid.x + wid.y * nwg.x;
  if (b >= p.nBlocks) { return; }
  let key = res[0];
  let take = res[3];
  let q0 = (b * WG + lid) * VPT;
  let r = wg_scan(lid, count_equal(q0, key), WG);
  var rank = boff[b] + r.x;
  for (var v = 0u; v < VPT; v++) { // VPT iterations
    let q = q0 + v;
    if (q < p.nq) {
      let w = x[q];
      for (var c = 0u; c < 4u; c++) {
        let i = q * 4u + c;
        if (i < p.n) {
          let kk = key_of(w[c]);
          var sel = 0u;
          if (kk.y == 1u) {
            if (kk.x < key) { sel = 1u; }
            if (kk.x == key) {
              sel = select(0u, 1u, rank < take);
              rank += 1u;
            }
          }
          if (p.accumulate == 1u) { sel |= mask[i]; }
          mask[i] = sel;
        }
      }
    }
  }
}
