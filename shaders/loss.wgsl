// Losses on feature-major outputs [classes][ld] (ld = batch rounded up to 4, the batch is the
// vec4 axis). One invocation per quad of 4 samples loops over the classes. Gradient padding
// columns (>= batch) are written as zero; per-sample outputs are written for samples < batch only.
// Every exp() argument is <= 0, so nothing overflows for any finite input.

struct Params {
  classes: u32,
  batch: u32,
  ld: u32, // row stride in floats, a multiple of 4
  scale: f32, // gradient scale: 1/batch gives the gradient of the batch-mean loss
  act: u32, // MSE output activation: 0 identity, 1 sigmoid
  index: u32, // softmax_xent with COUNT: the counter element to add the correct predictions to
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> tgt: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dz: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> argmax: array<u32>;

override WG: u32 = 8u;
// 0: do not write `argmax` (a placeholder buffer is bound).
override WRITE_ARGMAX: u32 = 1u;
// softmax_xent: also add the number of correct predictions to counter[p.index] (reduce.wgsl's
// count_correct in the same pass over the logits).
override COUNT: u32 = 0u;
@group(0) @binding(6) var<storage, read_write> counter: array<atomic<u32>>;

// NaN test on the bits (reduce.wgsl's is_nan4: GLSL backends may assume no NaNs in comparisons).
fn is_nan4(v: vec4f) -> vec4<bool> {
  return (bitcast<vec4u>(v) & vec4u(0x7fffffffu)) > vec4u(0x7f800000u);
}

fn flat(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

fn live_lanes(c: u32) -> vec4<bool> {
  return (vec4u(c) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.batch);
}

// Labels of the quad starting at column c (lanes past the batch read the last label; masked later).
fn label_quad(c: u32) -> vec4u {
  let last = p.batch - 1u;
  return vec4u(labels[min(c, last)], labels[min(c + 1u, last)], labels[min(c + 2u, last)], labels[min(c + 3u, last)]);
}

fn store_lanes(c: u32, v: vec4f) {
  let live = live_lanes(c);
  if (live.x) { loss[c] = v.x; }
  if (live.y) { loss[c + 1u] = v.y; }
  if (live.z) { loss[c + 2u] = v.z; }
  if (live.w) { loss[c + 3u] = v.w; }
}

// Softmax cross-entropy, fused and max-subtracted. Per sample with logits z_k and label t:
//   m = max_k z_k, s = sum_k exp(z_k - m) (one online pass), loss = (m - z_t) + log(s),
//   dz_k = scale * (exp(z_k - m) / s - [k == t]), argmax = first k with z_k = m.
// Labels must be < classes: a larger label matches no class (loss = m + log(s), gradient = scale * softmax).
// Loop bound: (classes - 1) + classes trips per invocation (wrapper asserts it).
@compute @workgroup_size(WG)
fn softmax_xent(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = flat(gid, nwg);
  let quads = p.ld / 4u;
  if (q >= quads) { return; }
  let c = q * 4u;
  let lab = label_quad(c);
  var m = z[q];
  var s = vec4f(1.0);
  var zt = select(vec4f(0.0), m, lab == vec4u(0u));
  var am = vec4u(0u);
  // The counted prediction follows count_correct's argmax exactly: a NaN never wins.
  var cb = m;
  var ca = vec4u(0u);
  for (var k = 1u; k < p.classes; k++) { // classes - 1 trips
    let v = z[k * quads + q];
    let up = v > m;
    // s rescaled to the new max with a single exp of a non-positive argument.
    let e = exp(-abs(v - m));
    s = select(s + e, s * e + vec4f(1.0), up);
    m = select(m, v, up);
    am = select(am, vec4u(k), up);
    zt = select(zt, v, lab == vec4u(k));
    if (COUNT != 0u) {
      let better = (v > cb) & !is_nan4(v) & !is_nan4(cb);
      cb = select(cb, v, better);
      ca = select(ca, vec4u(k), better);
    }
  }
  store_lanes(c, (m - zt) + log(s));
  if (COUNT != 0u) {
    let hit = live_lanes(c) & (ca == lab);
    let hits = u32(hit.x) + u32(hit.y) + u32(hit.z) + u32(hit.w);
    if (hits > 0u) { atomicAdd(&counter[p.index], hits); }
  }
  if (WRITE_ARGMAX != 0u) {
    let live = live_lanes(c);
    if (live.x) { argmax[c] = am.x; }
    if (live.y) { argmax[c + 1u] = am.y; }
    if (live.z) { argmax[c + 2u] = am.z; }
    if (live.w) { argmax[c + 3u] = am.w; }
  }
  let live = live_lanes(c);
  let rs = vec4f(p.scale) / s;
  for (var k = 0u; k < p.classes; k++) { // classes trips
    let i = k * quads + q;
    let g = exp(z[i] - m) * rs - select(vec4f(0.0), vec4f(p.scale), lab == vec4u(k));
    dz[i] = select(vec4f(0.0), g, live);
  }
}

// Output y = act(z) (identity, or sigmoid computed without overflow).
fn out_act(v: vec4f) -> vec4f {
  if (p.act == 1u) {
    let e = exp(-abs(v));
    let r = vec4f(1.0) / (vec4f(1.0) + e);
    return select(e * r, r, v >= vec4f(0.0));
  }
  return v;
}

// dy/dz of the output activation, from y.
fn out_slope(y: vec4f) -> vec4f {
  if (p.act == 1u) { return y * (vec4f(1.0) - y); }
  return vec4f(1.0);
}

// Mean-squared error against one-hot labels. Per sample: y = act(z),
//   loss = 0.5 * sum_k (y_k - t_k)^2,   dz_k = scale * (y_k - t_k) * act'(z_k).
// Loop bound: classes trips per invocation (wrapper asserts it).
@compute @workgroup_size(WG)
fn mse_labels(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = flat(gid, nwg);
  let quads = p.ld / 4u;
  if (q >= quads) { return; }
  let c = q * 4u;
  let live = live_lanes(c);
  let lab = label_quad(c);
  var acc = vec4f(0.0);
  for (var k = 0u; k < p.classes; k++) { // classes trips
    let i = k * quads + q;
    let y = out_act(z[i]);
    let e = y - select(vec4f(0.0), vec4f(1.0), lab == vec4u(k));
    acc += e * e;
    dz[i] = select(vec4f(0.0), p.scale * e * out_slope(y), live);
  }
  store_lanes(c, 0.5 * acc);
}

// Mean-squared error against a dense target [classes][ld]; same formulas as mse_labels.
// Loop bound: classes trips per invocation (wrapper asserts it).
@compute @workgroup_size(WG)
fn mse_dense(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = flat(gid, nwg);
  let quads = p.ld / 4u;
  if (q >= quads) { return; }
  let c = q * 4u;
  let live = live_lanes(c);
  var acc = vec4f(0.0);
  for (var k = 0u; k < p.classes; k++) { // classes trips
    let i = k * quads + q;
    let y = out_act(z[i]);
    let e = select(vec4f(0.0), y - tgt[i], live);
    acc += e * e;
    dz[i] = select(vec4f(0.0), p.scale * e * out_slope(y), live);
  }
  store_lanes(c, 0.5 * acc);
}
