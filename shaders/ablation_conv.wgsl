// Exact ablation and per-sample gradients of convolutions (src/kernels/ablation_conv.ts;
// float64 references: src/kernels/ablation_conv_ref.ts). ablation_fns.wgsl is prepended
// (batch_cell).
//
// A convolution's weight matrix W [c_in*k*k][c_out] is shared by its P = oh*ow output positions:
// its input is the im2col matrix viewed as [c_in*k*k * P][ld] (row i*P + p) and its
// pre-activation [c_out * P][ld] (row j*P + p). Zeroing w_ij changes the P rows j*P + p of the
// pre-activation, each by -w_ij * cols[i*P + p]: that patch is analysis.wgsl's patch_columns
// with row groups of P. A batch of K ablations over S samples is one activation with K*S
// columns: column c = k*S + s, padding columns (>= K*S) zero.

override WG: u32 = 64u;

struct GradParams {
  first: u32,   // first entry of this chunk
  count: u32,   // entries in this chunk
  s: u32,       // samples S
  ld: u32,      // roundUp4(S): row stride of cols / dz and of the output
  p: u32,       // positions P (loop trips per invocation; the wrapper bounds it)
}

@group(0) @binding(0) var<uniform> gp: GradParams;
@group(0) @binding(1) var<storage, read> cols: array<f32>;
@group(0) @binding(2) var<storage, read> dz: array<f32>;
// Per entry: input row i, output channel j.
@group(0) @binding(3) var<storage, read> ends: array<u32>;
@group(0) @binding(4) var<storage, read_write> gs: array<f32>;

// Per-sample weight gradient of a shared weight: gs[e - first][s] = sum_p cols[i*P + p][s] *
// dz[j*P + p][s] (one invocation per (entry, sample)).
@compute @workgroup_size(WG)
fn conv_sample_grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * WG;
  if (t >= gp.count * gp.ld) { return; }
  let el = t / gp.ld;
  let s = t % gp.ld;
  if (s >= gp.s) {
    gs[t] = 0.0;
    return;
  }
  let e = gp.first + el;
  let i = ends[2u * e];
  let j = ends[2u * e + 1u];
  var acc = 0.0;
  for (var p = 0u; p < gp.p; p++) {
    acc += cols[(i * gp.p + p) * gp.ld + s] * dz[(j * gp.p + p) * gp.ld + s];
  }
  gs[t] = acc;
}

struct NextParams {
  rows: u32,    // outputs of the next (fully-connected) layer
  s: u32,       // samples S
  ld_s: u32,    // roundUp4(S)
  ld_n: u32,    // roundUp4(K*S)
  k: u32,       // ablations
  q: u32,       // pooled rows per channel (the wrapper bounds this loop)
}

@group(0) @binding(0) var<uniform> np: NextParams;
@group(0) @binding(1) var<storage, read> z_cached: array<f32>;
@group(0) @binding(2) var<storage, read> x_cached: array<f32>;
@group(0) @binding(3) var<storage, read> pooled: array<f32>;
@group(0) @binding(4) var<storage, read> w_next: array<f32>;
@group(0) @binding(5) var<storage, read> abl_n: array<u32>;
@group(0) @binding(6) var<storage, read_write> z_out: array<f32>;

// The next layer's pre-activation when only channel j of its input changed: z_out[r][k*S + s] =
// z_cached[r][s] + sum_q W[j*Q + q][r] * (pooled[q][k*S + s] - x_cached[j*Q + q][s]).
@compute @workgroup_size(WG)
fn conv_channel_next(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= np.rows * np.ld_n) { return; }
  let b = batch_cell(e, np.ld_n, np.k, np.s);
  if (!b.live) {
    z_out[e] = 0.0;
    return;
  }
  let j = abl_n[3u * b.k + 1u];
  var acc = z_cached[b.r * np.ld_s + b.s];
  for (var q = 0u; q < np.q; q++) {
    let row = j * np.q + q;
    acc += w_next[row * np.rows + b.r] * (pooled[q * np.ld_n + b.c] - x_cached[row * np.ld_s + b.s]);
  }
  z_out[e] = acc;
}

// conv_channel_next with four columns per invocation (the same arithmetic per column, so the same
// bits): vec4 loads of pooled and x_cached, one weight load per four columns, vec4 stores. Needs
// S % 4 == 0 (the wrapper picks it then): columns c..c+3 (c = 4q') are samples s..s+3 of one
// ablation, and K*S = ld_n leaves no padding columns.
@group(0) @binding(1) var<storage, read> z4_cached: array<vec4f>;
@group(0) @binding(2) var<storage, read> x4_cached: array<vec4f>;
@group(0) @binding(3) var<storage, read> pooled4: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> z4_out: array<vec4f>;

@compute @workgroup_size(WG)
fn conv_channel_next4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * WG;
  let lq = np.ld_n / 4u;
  if (e >= np.rows * lq) { return; }
  let b = batch_quad(e, np.ld_n, np.s);
  let lqs = np.ld_s / 4u;
  let j = abl_n[3u * b.k + 1u];
  var acc = z4_cached[b.r * lqs + b.s4];
  for (var q = 0u; q < np.q; q++) {
    let row = j * np.q + q;
    acc += w_next[row * np.rows + b.r] * (pooled4[q * lq + b.q] - x4_cached[row * lqs + b.s4]);
  }
  z4_out[e] = acc;
}
