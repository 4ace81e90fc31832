// SGD with momentum on up to four small parameter arrays in one dispatch: the same update as
// optim.wgsl's sgd_momentum, bit for bit, for slots 0..3 (param_k, vel_k, grad_k). A training
// step of a small model updates many arrays of a few hundred elements (biases, an output layer,
// norm gains); one dispatch each costs more than the update (on llvmpipe ~75 us a dispatch,
// launch and recording, against ~5 us of work for 300 elements).
//
// One invocation per vec4 of the concatenated slots: slot k owns flat vec4 indices
// [end[k-1], end[k]) (end[-1] = 0), element j = i - end[k-1] of its arrays. Tail lanes
// (index >= n[k], inside the 16-byte padded buffers) are read and written back unchanged.
// An unused slot has n = 0 and no indices (its bindings repeat another slot's arrays).

struct MultiParams {
  n: vec4<u32>, // live elements of slots 0..3
  end: vec4<u32>, // cumulative vec4 counts
  lr: f32,
  mu: f32,
  l2: f32,
  pad: f32,
}

@group(0) @binding(0) var<uniform> p: MultiParams;
@group(0) @binding(1) var<storage, read_write> param0: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> vel0: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> grad0: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> param1: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> vel1: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> grad1: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> param2: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> vel2: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> grad2: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> param3: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read_write> vel3: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read> grad3: array<vec4<f32>>;

override WG: u32 = 64u;
override NESTEROV: bool = false;

struct Updated {
  w: vec4f,
  v: vec4f,
}

// optim.wgsl's sgd_momentum_update on values: weight w, velocity v0, gradient gr of vec4 number
// j of an array of n live elements.
fn sgd_momentum_values(j: u32, n: u32, w: vec4f, v0: vec4f, gr: vec4f) -> Updated {
  let live = (vec4u(j * 4u) + vec4u(0u, 1u, 2u, 3u)) < vec4u(n);
  let g = gr + p.l2 * w;
  let v = p.mu * v0 + g;
  var d = v;
  if (NESTEROV) { d = g + p.mu * v; }
  return Updated(select(w, w - p.lr * d, live), select(v0, v, live));
}

@compute @workgroup_size(WG)
fn sgd_momentum_x4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.end.x) {
    let r = sgd_momentum_values(i, p.n.x, param0[i], vel0[i], grad0[i]);
    param0[i] = r.w;
    vel0[i] = r.v;
  } else if (i < p.end.y) {
    let j = i - p.end.x;
    let r = sgd_momentum_values(j, p.n.y, param1[j], vel1[j], grad1[j]);
    param1[j] = r.w;
    vel1[j] = r.v;
  } else if (i < p.end.z) {
    let j = i - p.end.y;
    let r = sgd_momentum_values(j, p.n.z, param2[j], vel2[j], grad2[j]);
    param2[j] = r.w;
    vel2[j] = r.v;
  } else if (i < p.end.w) {
    let j = i - p.end.z;
    let r = sgd_momentum_values(j, p.n.w, param3[j], vel3[j], grad3[j]);
    param3[j] = r.w;
    vel3[j] = r.v;
  }
}
