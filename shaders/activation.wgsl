// Element-wise activations on feature-major activations [rows][ld] (ld = batch rounded up to 4),
// and SReLU with learnable per-row parameters. The scalar functions (act_forward, act_derivative)
// come from activation_fns.wgsl, which the TypeScript side prepends (withActivations).
// Padding columns (>= batch) are written as zero and ignored by the reductions.

struct Params {
  rows: u32,
  batch: u32,
  ld: u32, // row stride in floats, a multiple of 4
  a: f32, // the activation's scalar parameter (unused by SReLU)
}

// Which activation (an ACT_* id): an override so each activation compiles once, with the
// switch in act_forward/act_derivative folded away.
override ACT: u32 = 0u;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<vec4<f32>>;
// Bindings 2.. differ per entry point (several names share a binding number).
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>; // act_fwd
@group(0) @binding(2) var<storage, read> dy: array<vec4<f32>>; // backward entries
@group(0) @binding(2) var<storage, read> sprm: array<f32>; // srelu_fwd parameters
@group(0) @binding(3) var<storage, read_write> dz: array<vec4<f32>>; // act_bwd, srelu_bwd
@group(0) @binding(3) var<storage, read_write> sy: array<vec4<f32>>; // srelu_fwd output
@group(0) @binding(3) var<storage, read_write> dprm: array<f32>; // srelu_param_grad
@group(0) @binding(4) var<storage, read> prm: array<f32>; // srelu_bwd, srelu_param_grad

// Flat vec4 index of this invocation (the grid may be 2-D when rows * ld / 4 exceeds one
// dimension's workgroup limit).
fn flat(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// Which of the 4 lanes of quad q of a row are real samples (column < batch).
fn live_lanes(q: u32) -> vec4<bool> {
  return (vec4u(q * 4u) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.batch);
}

// y = f(z), one vec4 per invocation.
@compute @workgroup_size(WG)
fn act_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let quads = p.ld / 4u;
  let i = flat(gid, nwg);
  if (i >= p.rows * quads) { return; }
  let v = z[i];
  let f = vec4f(act_forward(ACT, v.x, p.a), act_forward(ACT, v.y, p.a), act_forward(ACT, v.z, p.a),
    act_forward(ACT, v.w, p.a));
  y[i] = select(vec4f(0.0), f, live_lanes(i % quads));
}

// dz = dy * f'(z), one vec4 per invocation.
@compute @workgroup_size(WG)
fn act_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let quads = p.ld / 4u;
  let i = flat(gid, nwg);
  if (i >= p.rows * quads) { return; }
  let v = z[i];
  let d = vec4f(act_derivative(ACT, v.x, p.a), act_derivative(ACT, v.y, p.a),
    act_derivative(ACT, v.z, p.a), act_derivative(ACT, v.w, p.a));
  dz[i] = select(vec4f(0.0), dy[i] * d, live_lanes(i % quads));
}

@group(0) @binding(4) var<storage, read_write> dbias: array<f32>; // act_bwd_bias

// act_bwd and the bias gradient of the same layer in one pass: one invocation per row r writes
// dz[r] = dy[r] * f'(z[r]) and dbias[r] = the sum of dz[r] over the batch, added in the order of
// bias.wgsl's bias_grad (quads in order, then x + y + z + w), so both paths give the same bits.
// Loops ld/4 times: the wrapper keeps that under llvmpipe's 65,535-iteration cap.
@compute @workgroup_size(WG)
fn act_bwd_bias(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat(gid, nwg);
  if (r >= p.rows) { return; }
  let quads = p.ld / 4u;
  var acc = vec4f(0.0);
  for (var q = 0u; q < quads; q++) { // quads < MAX_LOOP_TRIPS (wrapper)
    let i = r * quads + q;
    let v = z[i];
    let d = vec4f(act_derivative(ACT, v.x, p.a), act_derivative(ACT, v.y, p.a),
      act_derivative(ACT, v.z, p.a), act_derivative(ACT, v.w, p.a));
    let g = select(vec4f(0.0), dy[i] * d, live_lanes(q));
    dz[i] = g;
    acc += g;
  }
  dbias[r] = acc.x + acc.y + acc.z + acc.w;
}

// ---------------------------------------------------------------------------------------------
// SReLU (Jin et al. 2016), per row r with parameters (t_l, a_l, t_r, a_r) stored as
// prm[r], prm[rows + r], prm[2 rows + r], prm[3 rows + r]:
//   f(z) = t_r + a_r (z - t_r)  if z >= t_r
//        = t_l + a_l (z - t_l)  if z <= t_l  (and z < t_r)
//        = z                    otherwise
// The right branch wins when t_l >= t_r and both conditions hold.

@compute @workgroup_size(WG)
fn srelu_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let quads = p.ld / 4u;
  let i = flat(gid, nwg);
  if (i >= p.rows * quads) { return; }
  let r = i / quads;
  let tl = sprm[r];
  let al = sprm[p.rows + r];
  let tr = sprm[2u * p.rows + r];
  let ar = sprm[3u * p.rows + r];
  let v = z[i];
  let right = v >= vec4f(tr);
  let left = v <= vec4f(tl);
  let f = select(select(v, tl + al * (v - tl), left), tr + ar * (v - tr), right);
  sy[i] = select(vec4f(0.0), f, live_lanes(i % quads));
}

// dz = dy * f'(z) with f' = a_r (right), a_l (left), 1 (middle).
@compute @workgroup_size(WG)
fn srelu_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let quads = p.ld / 4u;
  let i = flat(gid, nwg);
  if (i >= p.rows * quads) { return; }
  let r = i / quads;
  let tl = prm[r];
  let al = prm[p.rows + r];
  let tr = prm[2u * p.rows + r];
  let ar = prm[3u * p.rows + r];
  let v = z[i];
  let right = v >= vec4f(tr);
  let left = v <= vec4f(tl);
  let d = select(select(vec4f(1.0), vec4f(al), left), vec4f(ar), right);
  dz[i] = select(vec4f(0.0), dy[i] * d, live_lanes(i % quads));
}

// Parameter gradients of one row, summed over the batch:
//   dt_r = (1 - a_r) sum_right dy      da_r = sum_right dy (z - t_r)
//   dt_l = (1 - a_l) sum_left dy       da_l = sum_left dy (z - t_l)
// One invocation per row loops over its ld/4 quads: the trip count is ld/4, which the wrapper
// keeps below llvmpipe's 65,535-iteration cap (batch <= 260,000).
@compute @workgroup_size(WG)
fn srelu_param_grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat(gid, nwg);
  if (r >= p.rows) { return; }
  let quads = p.ld / 4u;
  let tl = prm[r];
  let al = prm[p.rows + r];
  let tr = prm[2u * p.rows + r];
  let ar = prm[3u * p.rows + r];
  var sr = vec4f(0.0);
  var srx = vec4f(0.0);
  var sl = vec4f(0.0);
  var slx = vec4f(0.0);
  for (var q = 0u; q < quads; q++) {
    // Padding lanes are masked out of every term (their z and dy may hold anything).
    let live = live_lanes(q);
    let v = z[r * quads + q];
    let g = dy[r * quads + q];
    let right = (v >= vec4f(tr)) & live;
    let left = (v <= vec4f(tl)) & !(v >= vec4f(tr)) & live;
    sr += select(vec4f(0.0), g, right);
    srx += select(vec4f(0.0), g * (v - tr), right);
    sl += select(vec4f(0.0), g, left);
    slx += select(vec4f(0.0), g * (v - tl), left);
  }
  let one = vec4f(1.0);
  dprm[r] = (1.0 - al) * dot(sl, one);
  dprm[p.rows + r] = dot(slx, one);
  dprm[2u * p.rows + r] = (1.0 - ar) * dot(sr, one);
  dprm[3u * p.rows + r] = dot(srx, one);
}
