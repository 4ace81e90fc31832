// Exclusive prefix sum of u32 arrays of any length: reduce-then-scan over blocks of
// WG * VPT vec4s (8,192 elements with the wrapper's WG = 128, VPT = 16).
//   scan_reduce: block sums of the input              -> sums[nBlocks]
//   (the caller scans sums recursively into offs)
//   scan_block:  exclusive scan inside each block, plus offs[block] -> out[n]; the last block
//                also writes the grand total (into out[totalIndex] or tot[totalIndex]).
// op = 1 applies countOneBits to every input word first (bitmap rank for the CSR sort).
// Every loop has a constant trip count (VPT, log2 WG): nothing grows with n.

struct Params {
  n: u32, // elements
  nq: u32, // vec4s covering n (the input buffer holds at least 4 * nq words)
  nBlocks: u32,
  hasOffs: u32, // 1: add offs[block] (lower levels scanned); 0: single block
  op: u32, // 0: identity, 1: popcount of each word
  totalMode: u32, // 0: none, 1: out[totalIndex] = total, 2: tot[totalIndex] = total
  totalIndex: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;

override WG: u32 = 256u; // invocations per workgroup, a power of two <= 256
override VPT: u32 = 2u; // vec4s per invocation

var<workgroup> wsum: array<u32, 256>;

// Exclusive scan of one value per invocation across the workgroup (Hillis-Steele, log2 WG
// steps). Returns (exclusive prefix, workgroup total). Call from uniform control flow.
fn wg_scan(lid: u32, v: u32) -> vec2u {
  wsum[lid] = v;
  workgroupBarrier();
  for (var off = 1u; off < WG; off <<= 1u) {
    var t = 0u;
    if (lid >= off) { t = wsum[lid - off]; }
    workgroupBarrier();
    wsum[lid] += t;
    workgroupBarrier();
  }
  let incl = wsum[lid];
  let total = wsum[WG - 1u];
  workgroupBarrier();
  return vec2u(incl - v, total);
}

// The q-th vec4 of the input with the op applied and elements >= n zeroed.
fn load4(q: u32) -> vec4u {
  if (q >= p.nq) { return vec4u(0u); }
  var v = x[q];
  if (p.op == 1u) { v = countOneBits(v); }
  let live = (vec4u(q * 4u) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.n);
  return select(vec4u(0u), v, live);
}

@compute @workgroup_size(WG)
fn scan_reduce(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let b = wid.x + wid.y * nwg.x;
  if (b >= p.nBlocks) { return; }
  var s = 0u;
  for (var v = 0u; v < VPT; v++) { // VPT iterations
    let q4 = load4(b * WG * VPT + v * WG + lid);
    s += q4.x + q4.y + q4.z + q4.w;
  }
  let r = wg_scan(lid, s);
  if (lid == 0u) { sums[b] = r.y; }
}

@group(0) @binding(2) var<storage, read> offs: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<u32>>; // 4 * nq words at least
@group(0) @binding(4) var<storage, read_write> tot: array<u32>;

@compute @workgroup_size(WG)
fn scan_block(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let b = wid.x + wid.y * nwg.x;
  if (b >= p.nBlocks) { return; }
  // This invocation owns the VPT consecutive vec4s starting at q0 (index order is kept).
  let q0 = (b * WG + lid) * VPT;
  var s = 0u;
  for (var v = 0u; v < VPT; v++) { // VPT iterations
    let q4 = load4(q0 + v);
    s += q4.x + q4.y + q4.z + q4.w;
  }
  let r = wg_scan(lid, s);
  var base = r.x;
  if (p.hasOffs == 1u) { base += offs[b]; }
  var run = base;
  for (var v = 0u; v < VPT; v++) { // VPT iterations
    let q = q0 + v;
    let q4 = load4(q);
    let e = vec4u(run, run + q4.x, run + q4.x + q4.y, run + q4.x + q4.y + q4.z);
    run = e.w + q4.w;
    if (q * 4u + 3u < p.n) {
      out[q] = e;
    } else {
      // The last, partial vec4: write only the elements < n (the words after n may belong
      // to the caller, e.g. the total slot).
      for (var c = 0u; c < 3u; c++) {
        if (q * 4u + c < p.n) { out[q][c] = e[c]; }
      }
    }
  }
  if (b == p.nBlocks - 1u && lid == WG - 1u) {
    // run = offs[b] + everything in this (last) block = the grand total.
    if (p.totalMode == 1u) { out[p.totalIndex / 4u][p.totalIndex % 4u] = run; }
    if (p.totalMode == 2u) { tot[p.totalIndex] = run; }
  }
}
