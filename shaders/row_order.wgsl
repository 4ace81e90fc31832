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

// Block-local order: each workgroup sorts its BLOCK consecutive rows by length (longest first,
// ties by index) into order_out[block start ..]: invocation j counts the rows of its block that
// go before it. No atomics, no scratch; O(BLOCK) loads per row.
@group(0) @binding(2) var<storage, read_write> order_out: array<u32>;
override BLOCK: u32 = 64u;

fn clamped_len(r: u32) -> u32 {
  return min(row_ptr_in[r + 1u] - row_ptr_in[r], p.cap);
}

@compute @workgroup_size(BLOCK)
fn row_order_block(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let b0 = (wid.x + wid.y * nwg.x) * BLOCK;
  let j = b0 + lid.x;
  if (j >= p.rows) { return; }
  let end = min(b0 + BLOCK, p.rows);
  let lj = clamped_len(j);
  var rank = 0u;
  for (var r = b0; r < end; r++) {
    let lr = clamped_len(r);
    rank += select(0u, 1u, lr > lj || (lr == lj && r < j));
  }
  order_out[b0 + rank] = j;
}
