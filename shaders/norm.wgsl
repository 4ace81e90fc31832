// Batch norm and layer norm on feature-major activations [rows][ld] (rows = features, ld = batch
// rounded up to 4, the batch is the vec4 axis). Padding columns (>= batch) are written as zero
// and excluded from every statistic (masked, never assumed to be zero).
//
// Batch norm normalizes each row over the batch (invocation per row, loops over ld/4 quads).
// Layer norm normalizes each sample (a strided column) over the rows (invocation per quad of 4
// samples, loops over the rows). Every loop's bound is stated at the loop and checked by the
// TypeScript wrapper against llvmpipe's 65,535-iterations-per-invocation cap.
//
// Bindings: one numbering for the whole module; entries that need a slot with another meaning
// declare a second variable at the same slot (never both used by one entry point).

struct Params {
  rows: u32,
  batch: u32,
  ld: u32, // row stride in floats, a multiple of 4
  eps: f32,
  momentum: f32, // batch norm running-statistics momentum (PyTorch convention)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
// forward entries
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> save_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> save_invstd: array<f32>;
@group(0) @binding(7) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(8) var<storage, read_write> run_var: array<f32>;
// batch norm eval
@group(0) @binding(5) var<storage, read> run_mean_in: array<f32>;
@group(0) @binding(6) var<storage, read> run_var_in: array<f32>;
// backward entries
@group(0) @binding(3) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dx: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> mean_in: array<f32>;
@group(0) @binding(6) var<storage, read> invstd_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(8) var<storage, read_write> dbeta: array<f32>;

override WG: u32 = 64u;

fn flat(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// Lanes of the quad starting at column c that hold real samples.
fn live_lanes(c: u32) -> vec4<bool> {
  return (vec4u(c) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.batch);
}

fn hsum(v: vec4f) -> f32 {
  return v.x + v.y + v.z + v.w;
}

// ------------------------------------------------------------------ batch norm

// Training forward, one invocation per row: two-pass mean/variance (biased, for normalizing),
// then y = gamma * (x - mean) * invstd + beta. Saves mean and invstd for the backward pass and
// updates the running statistics in place:
//   running_mean = (1 - m) * running_mean + m * mean
//   running_var  = (1 - m) * running_var  + m * var * batch / (batch - 1)   (unbiased; factor 1 at batch 1)
// Loop bound: three loops of ld/4 trips = 3 * ld / 4 per invocation (wrapper asserts it).
@compute @workgroup_size(WG)
fn bn_forward_train(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat(gid, nwg);
  if (r >= p.rows) { return; }
  let quads = p.ld / 4u;
  let base = r * quads;
  let n = f32(p.batch);
  var s = vec4f(0.0);
  for (var q = 0u; q < quads; q++) { // ld/4 trips
    s += select(vec4f(0.0), x[base + q], live_lanes(q * 4u));
  }
  let mean = hsum(s) / n;
  var v = vec4f(0.0);
  for (var q = 0u; q < quads; q++) { // ld/4 trips
    let d = select(vec4f(0.0), x[base + q] - vec4f(mean), live_lanes(q * 4u));
    v += d * d;
  }
  let var_b = hsum(v) / n;
  let inv = inverseSqrt(var_b + p.eps);
  let k = gamma[r] * inv;
  let b = beta[r];
  for (var q = 0u; q < quads; q++) { // ld/4 trips
    y[base + q] = select(vec4f(0.0), (x[base + q] - vec4f(mean)) * k + vec4f(b), live_lanes(q * 4u));
  }
  save_mean[r] = mean;
  save_invstd[r] = inv;
  let m = p.momentum;
  let unbiased = var_b * n / max(n - 1.0, 1.0);
  run_mean[r] = (1.0 - m) * run_mean[r] + m * mean;
  run_var[r] = (1.0 - m) * run_var[r] + m * unbiased;
}

// Eval forward with the running statistics, one invocation per row (per-row constants loaded
// once; on llvmpipe this beats an invocation per vec4, where they are reloaded per vec4):
//   y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.
// Loop bound: ld/4 trips per invocation (wrapper asserts it).
@compute @workgroup_size(WG)
fn bn_forward_eval(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat(gid, nwg);
  if (r >= p.rows) { return; }
  let quads = p.ld / 4u;
  let base = r * quads;
  let k = gamma[r] * inverseSqrt(run_var_in[r] + p.eps);
  let mean = vec4f(run_mean_in[r]);
  let b = vec4f(beta[r]);
  for (var q = 0u; q < quads; q++) { // ld/4 trips
    y[base + q] = select(vec4f(0.0), (x[base + q] - mean) * k + b, live_lanes(q * 4u));
  }
}

// Training backward, one invocation per row, from the saved mean and invstd:
//   xhat = (x - mean) * invstd, dbeta = sum dy, dgamma = sum dy * xhat   (written, not accumulated)
//   dx = gamma * invstd * (dy - dbeta / batch - xhat * dgamma / batch)
// Loop bound: two loops of ld/4 trips = 2 * ld / 4 per invocation (wrapper asserts it).
@compute @workgroup_size(WG)
fn bn_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat(gid, nwg);
  if (r >= p.rows) { return; }
  let quads = p.ld / 4u;
  let base = r * quads;
  let mean = vec4f(mean_in[r]);
  let inv = invstd_in[r];
  var sdy = vec4f(0.0);
  var sdyx = vec4f(0.0);
  for (var q = 0u; q < quads; q++) { // ld/4 trips
    let live = live_lanes(q * 4u);
    let g = dy[base + q];
    sdy += select(vec4f(0.0), g, live);
    sdyx += select(vec4f(0.0), g * (x[base + q] - mean) * inv, live);
  }
  let db = hsum(sdy);
  let dg = hsum(sdyx);
  dbeta[r] = db;
  dgamma[r] = dg;
  let n = f32(p.batch);
  let k = gamma[r] * inv;
  let a = vec4f(db / n);
  let b = dg / n;
  for (var q = 0u; q < quads; q++) { // ld/4 trips
    let xh = (x[base + q] - mean) * inv;
    dx[base + q] = select(vec4f(0.0), k * (dy[base + q] - a - xh * b), live_lanes(q * 4u));
  }
}

// ------------------------------------------------------------------ layer norm

// Saved per-sample statistics of the quad starting at column c (arrays of ld floats).
fn mean_quad(c: u32) -> vec4f {
  return vec4f(mean_in[c], mean_in[c + 1u], mean_in[c + 2u], mean_in[c + 3u]);
}
fn invstd_quad(c: u32) -> vec4f {
  return vec4f(invstd_in[c], invstd_in[c + 1u], invstd_in[c + 2u], invstd_in[c + 3u]);
}

// Forward, one invocation per quad of 4 samples (columns c..c+3), normalizing over the rows:
// two-pass mean/variance (biased), y = gamma[row] * (x - mean) * invstd + beta[row]. Saves
// mean and invstd per sample (arrays of ld; padding lanes written 0).
// Loop bound: three loops of `rows` trips = 3 * rows per invocation (wrapper asserts it).
@compute @workgroup_size(WG)
fn ln_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = flat(gid, nwg);
  let quads = p.ld / 4u;
  if (q >= quads) { return; }
  let c = q * 4u;
  let live = live_lanes(c);
  let n = f32(p.rows);
  var s = vec4f(0.0);
  for (var f = 0u; f < p.rows; f++) { // rows trips
    s += x[f * quads + q];
  }
  let mean = s / n;
  var v = vec4f(0.0);
  for (var f = 0u; f < p.rows; f++) { // rows trips
    let d = x[f * quads + q] - mean;
    v += d * d;
  }
  let inv = inverseSqrt(v / n + vec4f(p.eps));
  for (var f = 0u; f < p.rows; f++) { // rows trips
    let i = f * quads + q;
    y[i] = select(vec4f(0.0), (x[i] - mean) * inv * gamma[f] + vec4f(beta[f]), live);
  }
  let sm = select(vec4f(0.0), mean, live);
  let si = select(vec4f(0.0), inv, live);
  save_mean[c] = sm.x;
  save_mean[c + 1u] = sm.y;
  save_mean[c + 2u] = sm.z;
  save_mean[c + 3u] = sm.w;
  save_invstd[c] = si.x;
  save_invstd[c + 1u] = si.y;
  save_invstd[c + 2u] = si.z;
  save_invstd[c + 3u] = si.w;
}

// Backward w.r.t. x, one invocation per quad of samples, from the saved mean and invstd:
//   g = dy * gamma[row], xhat = (x - mean) * invstd,
//   dx = invstd * (g - mean_rows(g) - xhat * mean_rows(g * xhat)).
// Loop bound: two loops of `rows` trips = 2 * rows per invocation (wrapper asserts it).
@compute @workgroup_size(WG)
fn ln_backward_dx(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = flat(gid, nwg);
  let quads = p.ld / 4u;
  if (q >= quads) { return; }
  let c = q * 4u;
  let mean = mean_quad(c);
  let inv = invstd_quad(c);
  var sg = vec4f(0.0);
  var sgx = vec4f(0.0);
  for (var f = 0u; f < p.rows; f++) { // rows trips
    let i = f * quads + q;
    let g = dy[i] * gamma[f];
    sg += g;
    sgx += g * (x[i] - mean) * inv;
  }
  let n = f32(p.rows);
  let a = sg / n;
  let b = sgx / n;
  let live = live_lanes(c);
  for (var f = 0u; f < p.rows; f++) { // rows trips
    let i = f * quads + q;
    let xh = (x[i] - mean) * inv;
    dx[i] = select(vec4f(0.0), inv * (dy[i] * gamma[f] - a - xh * b), live);
  }
}

// Backward w.r.t. gamma and beta, one invocation per row (the reduction over the batch, no
// atomics): dgamma = sum_c dy * xhat, dbeta = sum_c dy (written, not accumulated). Uses the same
// bind-group layout as bn_backward; `gamma` and `dx` are bound but unused.
// Loop bound: ld/4 trips per invocation (wrapper asserts it).
@compute @workgroup_size(WG)
fn ln_backward_params(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat(gid, nwg);
  if (r >= p.rows) { return; }
  let quads = p.ld / 4u;
  let base = r * quads;
  var sdy = vec4f(0.0);
  var sdyx = vec4f(0.0);
  for (var q = 0u; q < quads; q++) { // ld/4 trips
    let c = q * 4u;
    let live = live_lanes(c);
    let g = dy[base + q];
    let xh = (x[base + q] - mean_quad(c)) * invstd_quad(c);
    sdy += select(vec4f(0.0), g, live);
    sdyx += select(vec4f(0.0), g * xh, live);
  }
  dgamma[r] = hsum(sdyx);
  dbeta[r] = hsum(sdy);
}
