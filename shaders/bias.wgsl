// Bias add and bias gradient on feature-major activations [rows][ld] (ld = batch rounded up
// to 4). Padding columns (>= batch) are written as zero and ignored by the reduction.

struct Params {
  rows: u32,
  batch: u32,
  ld: u32, // row stride in floats, a multiple of 4
  q0: u32, // bias_grad: this dispatch sums quads [q0, q1) of each row
  q1: u32,
  accumulate: u32, // bias_grad: add to dbias (a later chunk) instead of writing it
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

// One invocation per row sums quads [q0, q1) of it: the wrapper splits a row's ld/4 quads into
// chunks below llvmpipe's 65,535-iteration cap, one dispatch each (the first writes, the later
// ones accumulate), so a convolution's batch (positions x samples) may exceed 262,136.
@compute @workgroup_size(WG)
fn bias_grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.rows) { return; }
  let quads = p.ld / 4u;
  var acc = vec4f(0.0);
  for (var q = p.q0; q < p.q1; q++) { // q1 - q0 < MAX_LOOP_TRIPS (wrapper)
    let c = q * 4u;
    let live = (vec4u(c) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.batch);
    acc += select(vec4f(0.0), dy[r * quads + q], live);
  }
  let s = acc.x + acc.y + acc.z + acc.w;
  if (p.accumulate != 0u) {
    dbias[r] += s;
  } else {
    dbias[r] = s;
  }
}
