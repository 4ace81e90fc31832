// Sort keys of a CSR row order (src/kernels/row_order.ts): for each row j of a pointer array,
// key = cap - min(length, cap) (longest rows first once sorted ascending) and id = j. The sort
// itself is sort.wgsl's counting sort of the (key, id) pairs.

struct Params {
  rows: u32, // rows of the pointer array (it holds rows + 1 entries)
  cap: u32, // lengths at or above cap share the first bucket
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> row_ptr_in: array<u32>;
@group(0) @binding(2) var<storage, read_write> keys: array<u32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn row_keys(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = gid.x + gid.y * nwg.x * WG;
  if (j >= p.rows) { return; }
  keys[j] = p.cap - min(row_ptr_in[j + 1u] - row_ptr_in[j], p.cap);
  ids[j] = j;
}
