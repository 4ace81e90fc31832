// Counting sort of unique (row, col) pairs into CSR without comparisons or float atomics.
// An occupancy bitmap of the nRows x nCols matrix (wpr = ceil(nCols / 32) words per row,
// row-major) is filled with atomicOr; an exclusive popcount scan of all its words (scan.wgsl)
// gives woff[w] = number of entries before word w in (row, col) order, so
//   rowPtr[r] = woff[r * wpr]                       (woff[W] = total)
//   slot(r, c) = woff[r * wpr + c / 32] + popcount(word & ((1 << (c % 32)) - 1))
// which is the entry's position sorted by row, then column: deterministic for any input order.
// Every invocation handles one word / entry / row: no loops.

struct Params {
  nnz: u32,
  nRows: u32,
  nCols: u32,
  wpr: u32, // bitmap words per row
  words: u32, // nRows * wpr
  hasPayload: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 256u;

fn flat(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@group(0) @binding(1) var<storage, read_write> bm: array<u32>;
@group(0) @binding(2) var<storage, read_write> st: array<u32>;

// bm[0..words) = 0; st[0..2) = 0 (out-of-range count, duplicate count).
@compute @workgroup_size(WG)
fn sort_zero(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i < p.words) { bm[i] = 0u; }
  if (i < 2u) { st[i] = 0u; }
}

@group(0) @binding(1) var<storage, read> rows: array<u32>;
@group(0) @binding(2) var<storage, read> cols: array<u32>;
@group(0) @binding(3) var<storage, read_write> bma: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> sta: array<atomic<u32>>;

// Sets the bit of every entry; counts entries out of range (st[0]) and repeated pairs (st[1]).
@compute @workgroup_size(WG)
fn sort_mark(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= p.nnz) { return; }
  let r = rows[i];
  let c = cols[i];
  if (r >= p.nRows || c >= p.nCols) {
    atomicAdd(&sta[0], 1u);
    return;
  }
  let bit = 1u << (c & 31u);
  let old = atomicOr(&bma[r * p.wpr + (c >> 5u)], bit);
  if ((old & bit) != 0u) { atomicAdd(&sta[1], 1u); }
}

@group(0) @binding(1) var<storage, read> woff: array<u32>;
@group(0) @binding(2) var<storage, read_write> rowPtr: array<u32>;

// rowPtr[r] = woff[r * wpr] for r in [0, nRows] (woff has words + 1 entries).
@compute @workgroup_size(WG)
fn sort_rowptr(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat(gid, nwg);
  if (r > p.nRows) { return; }
  rowPtr[r] = woff[r * p.wpr];
}

@group(0) @binding(3) var<storage, read> bmr: array<u32>;
@group(0) @binding(4) var<storage, read> woffr: array<u32>;
@group(0) @binding(5) var<storage, read> payload: array<u32>;
@group(0) @binding(6) var<storage, read_write> outCols: array<u32>;
@group(0) @binding(7) var<storage, read_write> perm: array<u32>;

// Each entry computes its sorted slot from the bitmap rank and writes its column and payload.
@compute @workgroup_size(WG)
fn sort_scatter(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= p.nnz) { return; }
  let r = rows[i];
  let c = cols[i];
  if (r >= p.nRows || c >= p.nCols) { return; }
  let w = r * p.wpr + (c >> 5u);
  let below = bmr[w] & ((1u << (c & 31u)) - 1u);
  let slot = woffr[w] + countOneBits(below);
  outCols[slot] = c;
  var src = i;
  if (p.hasPayload == 1u) { src = payload[i]; }
  perm[slot] = src;
}
