// Optimizer steps on flat f32 parameter arrays (dense weights, biases, CSR value arrays alike),
// plus the state maintenance kernels a changing sparse topology needs.
//
// Every update kernel: one invocation per vec4 of the parameter array; the grid may be 2-D
// (flat index gid.x + gid.y * nwg.x * WG). Tail lanes (index >= n, inside the 16-byte padded
// buffer) are read and written back unchanged, so they may hold anything, NaN included.
// No loops: nothing here grows with the problem size per invocation.
//
// Conventions (PyTorch's):
//   SGD:   g = grad + wd * w;  v = mu * v + g;  d = nesterov ? g + mu * v : v;  w -= lr * d
//          (dampening 0; the velocity starts at zero, so the first step gives v = g as in PyTorch)
//   Adam:  g = grad + l2 * w;  m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g^2
//          w = w * decay - stepSize * m / (sqrt(v) * rsqrtBc2 + eps)
//          with stepSize = lr / (1 - b1^t), rsqrtBc2 = 1 / sqrt(1 - b2^t), computed on the host.
//          Adam (L2): l2 = wd, decay = 1.  AdamW (decoupled): l2 = 0, decay = 1 - lr * wd.

struct OptParams {
  n: u32, // number of live parameters
  lr: f32,
  mu: f32, // SGD momentum; Adam beta1
  l2: f32, // weight decay added to the gradient (SGD, Adam); 0 for AdamW
  beta2: f32,
  eps: f32,
  stepSize: f32, // Adam: lr / (1 - beta1^t)
  rsqrtBc2: f32, // Adam: 1 / sqrt(1 - beta2^t)
  decay: f32, // AdamW: 1 - lr * wd; otherwise 1
}

@group(0) @binding(0) var<uniform> p: OptParams;
@group(0) @binding(1) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> vel: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m1: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> m2: array<vec4<f32>>;

override WG: u32 = 64u;
// SGD with momentum: Nesterov's variant when true.
override NESTEROV: bool = false;

// Lanes of vec4 number `i` that hold live parameters.
fn liveLanes(i: u32) -> vec4<bool> {
  return (vec4u(i * 4u) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.n);
}

// Plain SGD (momentum 0): no state.
@compute @workgroup_size(WG)
fn sgd_plain(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= (p.n + 3u) / 4u) { return; }
  sgd_plain_update(i, param[i]);
}

fn sgd_plain_update(i: u32, w: vec4f) {
  let g = grad[i] + p.l2 * w;
  param[i] = select(w, w - p.lr * g, liveLanes(i));
}

// Plain SGD reading the old weights through a read-only alias (texture twin only, as
// sgd_momentum_in below).
@group(0) @binding(3) var<storage, read> plain_param_in: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn sgd_plain_in(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= (p.n + 3u) / 4u) { return; }
  sgd_plain_update(i, plain_param_in[i]);
}

// SGD with momentum (heavy ball or Nesterov), velocity in `vel`, from the old values w, v0 of
// vec4 number i.
fn sgd_momentum_update(i: u32, w: vec4f, v0: vec4f) {
  let live = liveLanes(i);
  let g = grad[i] + p.l2 * w;
  let v = p.mu * v0 + g;
  var d = v;
  if (NESTEROV) { d = g + p.mu * v; }
  param[i] = select(w, w - p.lr * d, live);
  vel[i] = select(v0, v, live);
}

@compute @workgroup_size(WG)
fn sgd_momentum(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= (p.n + 3u) / 4u) { return; }
  sgd_momentum_update(i, param[i], vel[i]);
}

// The same update reading the old values through read-only aliases of param and vel: only as a
// texture twin (src/gpu/textured.ts), whose mirrors of them are copied before the dispatch (as
// buffers the aliases would bind one buffer twice). On llvmpipe a texel fetch is ~10x faster
// than a storage-buffer load, and the loads, not the stores, set this kernel's time.
@group(0) @binding(4) var<storage, read> param_in: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> vel_in: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn sgd_momentum_in(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= (p.n + 3u) / 4u) { return; }
  sgd_momentum_update(i, param_in[i], vel_in[i]);
}

// Adam / AdamW with bias correction, first moment in `m1`, second in `m2`, from the old values
// w, a0, b0 of vec4 number i.
fn adam_update(i: u32, w: vec4f, a0: vec4f, b0: vec4f) {
  let live = liveLanes(i);
  let g = grad[i] + p.l2 * w;
  let a = p.mu * a0 + (1.0 - p.mu) * g;
  let b = p.beta2 * b0 + (1.0 - p.beta2) * (g * g);
  let wNew = w * p.decay - p.stepSize * a / (sqrt(b) * p.rsqrtBc2 + vec4f(p.eps));
  param[i] = select(w, wNew, live);
  m1[i] = select(a0, a, live);
  m2[i] = select(b0, b, live);
}

@compute @workgroup_size(WG)
fn adam(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= (p.n + 3u) / 4u) { return; }
  adam_update(i, param[i], m1[i], m2[i]);
}

// Adam reading the old values through read-only aliases (texture twin only, as sgd_momentum_in).
@group(0) @binding(5) var<storage, read> adam_param_in: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> adam_m1_in: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> adam_m2_in: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn adam_in(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= (p.n + 3u) / 4u) { return; }
  adam_update(i, adam_param_in[i], adam_m1_in[i], adam_m2_in[i]);
}

// ---------------------------------------------------------------- state maintenance

struct MaskParams {
  n: u32, // elements of tgt (and mask) to consider
}

@group(0) @binding(0) var<uniform> q: MaskParams;
@group(0) @binding(1) var<storage, read> mask: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> tgt: array<vec4<f32>>;

// tgt[k] = 0 where mask[k] != 0 (k < n); everything else is left as it was.
@compute @workgroup_size(WG)
fn zero_at(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= (q.n + 3u) / 4u) { return; }
  let live = (vec4u(i * 4u) + vec4u(0u, 1u, 2u, 3u)) < vec4u(q.n);
  let t = tgt[i];
  tgt[i] = select(t, vec4f(0.0), live & (mask[i] != vec4u(0u)));
}

struct RemapParams {
  n: u32, // elements of dst to write
  srcN: u32, // valid elements of src
}

@group(0) @binding(0) var<uniform> r: RemapParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> fromIdx: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

// dst[k] = src[fromIdx[k]] when fromIdx[k] < srcN, else 0 (0xFFFFFFFF marks a new entry), k < n.
@compute @workgroup_size(WG)
fn remap(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = gid.x + gid.y * nwg.x * WG;
  if (k >= r.n) { return; }
  let j = fromIdx[k];
  var v = 0.0;
  if (j < r.srcN) { v = src[j]; }
  dst[k] = v;
}
