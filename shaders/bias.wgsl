// Bias add and bias gradient on feature-major activations [rows][ld] (ld = batch rounded up
// to 4). Padding columns (>= batch) are written as zero and ignored by the reduction.

struct Params {
  rows: u32,
  batch: u32,
  ld: u32, // row stride in floats, a multiple of 4
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;

override WG: u32 = 64u;

// One invocation per vec4 of y; the grid may be 2-D when rows * ld / 4 exceeds one dimension.
@compute @workgroup_size(WG)
fn bias_add(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let quads = p.ld / 4u;
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * quads) { return; }
  let r = i / quads;
  let c = (i % quads) * 4u;
  let live = (vec4u(c) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.batch);
  y[i] = select(vec4f(0.0), x[i] + vec4f(bias[r]), live);
}

@group(0) @binding(1) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;

// One invocation per row sums its ld/4 quads: the trip count is ld/4, which the wrapper keeps
// below llvmpipe's 65,535-iteration cap (batch <= 262,136).
@compute @workgroup_size(WG)
fn bias_grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.rows) { return; }
  let quads = p.ld / 4u;
  var acc = vec4f(0.0);
  for (var q = 0u; q < quads; q++) {
    let c = q * 4u;
    let live = (vec4u(c) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.batch);
    acc += select(vec4f(0.0), dy[r * quads + q], live);
  }
  dbias[r] = acc.x + acc.y + acc.z + acc.w;
}
