// Exact ablation of an LSTM layer: K ablated copies of the whole sequence run side by side.
// Prepended with shaders/activation_fns.wgsl (act_sigmoid, act_tanh: the functions of lstm.wgsl).
//
// Columns: copy k of sample s is column n = k * S + s of every per-copy tensor [rows][ldN]
// (ldN = roundUp4(K * S)); the input part of the gate pre-activations, zx (bias included, for the
// S samples), is shared by every copy: either every step's, [4H][T * ldS] (step t = column block
// t, computed once), or this step's only, [4H][ldS] (zx_blocks = 1: when all steps do not fit).
// Gate rows inside a 4H block: i = [0, H), f = [H, 2H), g = [2H, 3H), o = [3H, 4H).
//
// One ablation per copy, 4 u32 each: kind, a, b, bits(w):
//   0 input weight  W_x[a][b] = w  -> z_b -= w * x_t[a]        at every step
//   1 recurrent     W_h[a][b] = w  -> z_b -= w * h_{t-1}[a]    at every step t > 0
//   2 bias          b_b = w        -> z_b -= w                 at every step
//   3 unit a                        -> h_t[a] = 0               at every step (output and recurrence)
//   4 none (the unablated model)
// The shared products (zx, and zh = W_hᵀ·h_{t-1} over all K·S columns by the sparse SpMM) contain
// the removed weight's term; subtracting it exactly gives the copy's pre-activation. The change
// then propagates through time by the recurrence itself.
//
// No loops: one invocation per (unit j, column n), or per (unit j, quad of columns n..n+3) in
// abl_lstm_step4 (S a multiple of 4, so that a quad never straddles two copies); nothing grows
// with the problem size (llvmpipe's 65,535-iteration cap does not apply). Padding columns
// n >= K*S (only where S % 4 != 0) are written as 0.

struct Params {
  hidden: u32, // H
  feats: u32, // F, input features per step
  steps: u32, // T
  t: u32, // this step
  samples: u32, // S
  ld_s: u32, // roundUp4(S): row stride of x_in and of one step block of zx_in
  count: u32, // K copies
  ld_n: u32, // roundUp4(K * S): row stride of every per-copy tensor
  zx_blocks: u32, // step blocks held by zx_in: T (all steps) or 1 (this step only)
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> ap: Params;
@group(0) @binding(1) var<storage, read> x_in: array<f32>; // [T * F][ld_s]
@group(0) @binding(2) var<storage, read> zx_in: array<f32>; // [4H][zx_blocks * ld_s]
@group(0) @binding(3) var<storage, read> zh_in: array<f32>; // [4H][ld_n] (not read at t = 0)
@group(0) @binding(4) var<storage, read> hp_in: array<f32>; // h_{t-1} [H][ld_n] (not read at t = 0)
@group(0) @binding(5) var<storage, read> abl_in: array<u32>; // [4K]
@group(0) @binding(6) var<storage, read_write> c_io: array<f32>; // [H][ld_n] c_{t-1} -> c_t
@group(0) @binding(7) var<storage, read_write> h_next: array<f32>; // h_t [H][ld_n]

@compute @workgroup_size(WG)
fn abl_lstm_step(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + li;
  let H = ap.hidden;
  if (i >= H * ap.ld_n) { return; }
  let j = i / ap.ld_n;
  let n = i % ap.ld_n;
  if (n >= ap.count * ap.samples) {
    c_io[i] = 0.0;
    h_next[i] = 0.0;
    return;
  }
  let k = n / ap.samples;
  let s = n % ap.samples;
  let sq = ap.zx_blocks * ap.ld_s;
  let col = (ap.t % ap.zx_blocks) * ap.ld_s + s;
  var z = vec4f(zx_in[j * sq + col], zx_in[(H + j) * sq + col], zx_in[(2u * H + j) * sq + col],
                zx_in[(3u * H + j) * sq + col]);
  var cp = 0.0;
  if (ap.t > 0u) {
    z += vec4f(zh_in[j * ap.ld_n + n], zh_in[(H + j) * ap.ld_n + n],
               zh_in[(2u * H + j) * ap.ld_n + n], zh_in[(3u * H + j) * ap.ld_n + n]);
    cp = c_io[i];
  }
  let kind = abl_in[4u * k];
  let a = abl_in[4u * k + 1u];
  let b = abl_in[4u * k + 2u];
  let w = bitcast<f32>(abl_in[4u * k + 3u]);
  // The ablated gate row b touches this unit when b % H == j (gate b / H).
  if (kind <= 2u && b % H == j) {
    var d = w;
    if (kind == 0u) {
      d = w * x_in[(ap.t * ap.feats + a) * ap.ld_s + s];
    } else if (kind == 1u) {
      d = select(0.0, w * hp_in[a * ap.ld_n + n], ap.t > 0u);
    }
    let g = b / H;
    z -= select(vec4f(0.0), vec4f(d), vec4u(g) == vec4u(0u, 1u, 2u, 3u));
  }
  let ig = act_sigmoid(z.x);
  let fg = act_sigmoid(z.y);
  let gg = act_tanh(z.z);
  let og = act_sigmoid(z.w);
  let c = fg * cp + ig * gg;
  c_io[i] = c;
  h_next[i] = select(og * act_tanh(c), 0.0, kind == 3u && a == j);
}

// abl_lstm_step with four columns per invocation (the same arithmetic per column, so the same
// bits): every load and store a vec4. Needs S % 4 == 0 (the wrapper picks it then): columns
// n..n+3 (n = 4q) are samples s..s+3 of one copy k, and x, zx and every per-copy row hold them
// as one aligned quad.

@group(0) @binding(1) var<storage, read> x4_in: array<vec4f>; // [T * F][ld_s / 4]
@group(0) @binding(2) var<storage, read> zx4_in: array<vec4f>; // [4H][zx_blocks * ld_s / 4]
@group(0) @binding(3) var<storage, read> zh4_in: array<vec4f>; // [4H][ld_n / 4]
@group(0) @binding(4) var<storage, read> hp4_in: array<vec4f>; // [H][ld_n / 4]
@group(0) @binding(5) var<storage, read> abl4_in: array<vec4u>; // [K]
@group(0) @binding(6) var<storage, read_write> c4_io: array<vec4f>; // [H][ld_n / 4]
@group(0) @binding(7) var<storage, read_write> h4_next: array<vec4f>; // [H][ld_n / 4]

@compute @workgroup_size(WG)
fn abl_lstm_step4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + li;
  let H = ap.hidden;
  let lq = ap.ld_n / 4u;
  if (i >= H * lq) { return; }
  let j = i / lq;
  let q = i % lq;
  let n = 4u * q; // < K * S = ld_n: with S % 4 == 0 there are no padding columns
  let k = n / ap.samples;
  let s = n % ap.samples;
  let sq = ap.zx_blocks * ap.ld_s / 4u;
  let col = ((ap.t % ap.zx_blocks) * ap.ld_s + s) / 4u;
  var zi = zx4_in[j * sq + col];
  var zf = zx4_in[(H + j) * sq + col];
  var zg = zx4_in[(2u * H + j) * sq + col];
  var zo = zx4_in[(3u * H + j) * sq + col];
  var cp = vec4f(0.0);
  if (ap.t > 0u) {
    zi += zh4_in[j * lq + q];
    zf += zh4_in[(H + j) * lq + q];
    zg += zh4_in[(2u * H + j) * lq + q];
    zo += zh4_in[(3u * H + j) * lq + q];
    cp = c4_io[i];
  }
  let ab = abl4_in[k];
  let kind = ab.x;
  let a = ab.y;
  let b = ab.z;
  let w = bitcast<f32>(ab.w);
  if (kind <= 2u && b % H == j) {
    var d = vec4f(w);
    if (kind == 0u) {
      d = w * x4_in[((ap.t * ap.feats + a) * ap.ld_s + s) / 4u];
    } else if (kind == 1u) {
      d = select(vec4f(0.0), w * hp4_in[a * lq + q], ap.t > 0u);
    }
    let g = b / H;
    if (g == 0u) { zi -= d; } else if (g == 1u) { zf -= d; } else if (g == 2u) { zg -= d; } else { zo -= d; }
  }
  let ig = act_sigmoid4(zi);
  let fg = act_sigmoid4(zf);
  let gg = act_tanh4(zg);
  let og = act_sigmoid4(zo);
  let c = fg * cp + ig * gg;
  c4_io[i] = c;
  h4_next[i] = select(og * act_tanh4(c), vec4f(0.0), kind == 3u && a == j);
}
