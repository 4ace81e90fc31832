// Work-efficient exact single-weight ablation through evaluation-mode layer norm
// (src/kernels/ablation_carry_ln.ts `ablationCarryLn`; float64 reference: ablation_carry_ln_ref.ts).
// activation_fns.wgsl is prepended.
//
// The sibling of ablation_carry.wgsl for chains that hold a layer norm (LN). Zeroing w_ij of
// weight layer L0 changes unit j's pre-activation only on the samples where x_i != 0; there, an
// LN after L0 sees one unit's input u_j move by d, so the sample's mean and variance move in O(1)
// (from the cached per-sample statistics):
//   mu' = mu + d/n,  var' = var + (2 (u_j - mu) d + d^2 (1 - 1/n)) / n,
// and every unit r of the layer is re-normalised: dh_r = post(g_r (u'_r - mu') rs' + b_r)
//   - post(g_r (u_r - mu) rs + b_r) (pre/post: the unit-wise ops before and after the LN; rs the
// inverse standard deviation). The whole layer's change is carried on: at depth 1 straight into
// the logits along the output layer's rows, at depth 2 into W1's pre-activations (a scatter
// along the nonzeros of W1's rows, kept in a per-invocation scratch row of n1 floats), then
// through W1's chain: with an LN there, its statistics move by the exact sums
//   mu' = mu + S d / n,  var' = var + (2 S (u - mu) d + S d^2) / n - (S d / n)^2
// over the changed units (d = u' - u), every unit is re-normalised, and the changes enter the
// logits along the output rows. Every difference is old and new computed by the same code from
// the same statistics, so its error scales with the change. The per-sample loss and hit of the
// patched logits minus the cached ones is the sample's contribution, as in ablation_carry.wgsl.
//
// One invocation per (ablation, chunk of its sample list), no barriers, no shared memory; the host
// orders ablations by input row so that neighbouring lanes walk the same samples.
// Loop bound per invocation: chunk x tripsPerSample (the wrapper computes it from n0, n1, the
// nonzeros of W1 and the classes, and asserts chunk x tripsPerSample < 65,535).

const MAX_C4: u32 = 8u; // 32 classes
const CWG: u32 = 64u;

override NC4: u32 = 3u;   // ceil(classes / 4), <= MAX_C4
override DEPTH: u32 = 1u; // 1 or 2 weight layers after the ablated one
override LOSS: u32 = 0u;  // 0 softmax cross-entropy, 1 MSE, 2 MSE on sigmoid outputs
// Position of the layer norm in chain 0 / chain 1 (4: none; at least one chain has one).
override LN0: u32 = 4u;
override LN1: u32 = 4u;
// W1's change kept in a private array (n1 <= MAX_PRIV) instead of the scratch binding.
override PRIV: bool = false;
const MAX_PRIV: u32 = 256u;
// Chain ops (seg 0: after L0; seg 1: after W1): kind 0 none, 1 activation (id A..), 2 eval batch
// norm, 3 SReLU, 4 layer norm; parameters in ops[4 * seg + o] = (param or eps bits, units,
// meta_f offset, 0). A layer norm's meta_f holds gamma then beta.
override K00: u32 = 0u;
override K01: u32 = 0u;
override K02: u32 = 0u;
override K03: u32 = 0u;
override K10: u32 = 0u;
override K11: u32 = 0u;
override K12: u32 = 0u;
override K13: u32 = 0u;
override A00: u32 = 0u;
override A01: u32 = 0u;
override A02: u32 = 0u;
override A03: u32 = 0u;
override A10: u32 = 0u;
override A11: u32 = 0u;
override A12: u32 = 0u;
override A13: u32 = 0u;

struct CarryLnParams {
  s: u32,          // samples S
  ld: u32,         // row stride of the cached tensors, roundUp4(S)
  k: u32,          // ablations in this dispatch
  chunks: u32,     // chunks per ablation
  chunk: u32,      // sample-list entries per chunk
  classes: u32,
  samp_ptr: u32,   // meta_u offsets: sample list row pointers
  samp_idx: u32,   //   sample indices
  labels: u32,     //   labels
  row1_ptr: u32,   //   W1 by input row (depth 2): row pointers
  row1_col: u32,   //   columns
  row1_val: u32,   // meta_f offsets: W1's values (depth 2)
  logit_row: u32,  // first row of the logits in `zl` (after W1's pre-activations at depth 2)
  abl_base: u32,   // first ablation of this dispatch in `abl`
  out_base: u32,   // first task of this dispatch in `out`
  mode: u32,       // 0: ablations; 1: per-sample base metrics of the cached logits into `out`
  base: u32,       // meta_f offset of the per-sample base metrics [S][2]
  n0: u32,         // units of the ablated layer's output
  n1: u32,         // units of W1's output (depth 2)
  stats0: u32,     // meta_f offset: chain 0's LN statistics, mean [S] then variance [S]
  stats1: u32,     // meta_f offset: chain 1's LN statistics
  rows_v: u32,     // meta_f offset (multiple of 4): output layer rows dense over NC4 vec4s
  pad0: u32,
  pad1: u32,
  ops: array<vec4<u32>, 8>,
}

@group(0) @binding(0) var<uniform> cp: CarryLnParams;
@group(0) @binding(1) var<storage, read> meta_u: array<u32>;
@group(0) @binding(2) var<storage, read> meta_f: array<f32>;
@group(0) @binding(3) var<storage, read> x_in: array<f32>;
@group(0) @binding(4) var<storage, read> z_in: array<f32>;
// Cached pre-activations of W1 (depth 2, rows 0..) and the cached logits (from logit_row).
@group(0) @binding(5) var<storage, read> zl: array<f32>;
// Per ablation: input row i, output row j, bitcast f32 weight w.
@group(0) @binding(6) var<storage, read> abl: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
// Per invocation of the dispatch: n1 floats, W1's pre-activation change of the current sample.
@group(0) @binding(8) var<storage, read_write> dz1: array<f32>;
var<private> dzp: array<f32, MAX_PRIV>;

fn dz_get(sc: u32, c: u32) -> f32 {
  if (PRIV) { return dzp[min(c, MAX_PRIV - 1u)]; }
  return dz1[sc + c];
}

fn dz_set(sc: u32, c: u32, v: f32) {
  if (PRIV) { dzp[min(c, MAX_PRIV - 1u)] = v; } else { dz1[sc + c] = v; }
}

fn unit_op(kind: u32, id: u32, o: vec4<u32>, r: u32, y: f32) -> f32 {
  if (kind == 1u) {
    return act_forward(id, y, bitcast<f32>(o.x));
  }
  if (kind == 2u) { // gamma, beta, running mean, running var
    let g = meta_f[o.z + r];
    let b = meta_f[o.z + o.y + r];
    let m = meta_f[o.z + 2u * o.y + r];
    let v = meta_f[o.z + 3u * o.y + r];
    return (y - m) * (g * inverseSqrt(v + bitcast<f32>(o.x))) + b;
  }
  if (kind == 3u) { // t_l, a_l, t_r, a_r
    let a = meta_f[o.z + r];
    let b = meta_f[o.z + o.y + r];
    let c = meta_f[o.z + 2u * o.y + r];
    let d = meta_f[o.z + 3u * o.y + r];
    return select(select(y, a + b * (y - a), y <= a), c + d * (y - c), y >= c);
  }
  return y; // none; a layer norm is applied by the caller
}

// Chain 0's unit-wise ops with positions in [lo, hi) (the LN itself is skipped).
fn ops0(r: u32, v: f32, lo: u32, hi: u32) -> f32 {
  var y = v;
  if (K00 != 0u && K00 != 4u && lo <= 0u && 0u < hi) { y = unit_op(K00, A00, cp.ops[0], r, y); }
  if (K01 != 0u && K01 != 4u && lo <= 1u && 1u < hi) { y = unit_op(K01, A01, cp.ops[1], r, y); }
  if (K02 != 0u && K02 != 4u && lo <= 2u && 2u < hi) { y = unit_op(K02, A02, cp.ops[2], r, y); }
  if (K03 != 0u && K03 != 4u && lo <= 3u && 3u < hi) { y = unit_op(K03, A03, cp.ops[3], r, y); }
  return y;
}

fn ops1(r: u32, v: f32, lo: u32, hi: u32) -> f32 {
  var y = v;
  if (K10 != 0u && K10 != 4u && lo <= 0u && 0u < hi) { y = unit_op(K10, A10, cp.ops[4], r, y); }
  if (K11 != 0u && K11 != 4u && lo <= 1u && 1u < hi) { y = unit_op(K11, A11, cp.ops[5], r, y); }
  if (K12 != 0u && K12 != 4u && lo <= 2u && 2u < hi) { y = unit_op(K12, A12, cp.ops[6], r, y); }
  if (K13 != 0u && K13 != 4u && lo <= 3u && 3u < hi) { y = unit_op(K13, A13, cp.ops[7], r, y); }
  return y;
}

// Layer norm op `o` on unit r's input u with the sample's mean and inverse standard deviation.
fn ln_unit(o: vec4<u32>, r: u32, u: f32, mu: f32, rs: f32) -> f32 {
  return meta_f[o.z + r] * ((u - mu) * rs) + meta_f[o.z + o.y + r];
}

fn out_row(r: u32, q: u32) -> vec4f {
  let a = cp.rows_v + 4u * (r * NC4 + q);
  return vec4f(meta_f[a], meta_f[a + 1u], meta_f[a + 2u], meta_f[a + 3u]);
}

// Per-sample (loss, hit) as ablation_metrics computes them; lanes >= classes are masked.
fn sample_metrics(lg: array<vec4f, MAX_C4>, label: u32) -> vec2f {
  var m = vec4f(-3.0e38);
  for (var q = 0u; q < NC4; q++) {
    let live = vec4u(4u * q) + vec4u(0u, 1u, 2u, 3u) < vec4u(cp.classes);
    m = max(m, select(vec4f(-3.0e38), lg[q], live));
  }
  let best = max(max(m.x, m.y), max(m.z, m.w));
  var arg = cp.classes;
  var l = 0.0;
  var se = 0.0;
  var zlab = 0.0;
  for (var q = 0u; q < NC4; q++) {
    let idx = vec4u(4u * q) + vec4u(0u, 1u, 2u, 3u);
    let live = idx < vec4u(cp.classes);
    let v = lg[q];
    let at = select(vec4u(cp.classes), idx, live & (v == vec4f(best)));
    arg = min(arg, min(min(at.x, at.y), min(at.z, at.w)));
    let is_label = idx == vec4u(label);
    zlab += dot(select(vec4f(0.0), v, is_label), vec4f(1.0));
    if (LOSS == 0u) {
      se += dot(select(vec4f(0.0), exp(v - vec4f(best)), live), vec4f(1.0));
    } else {
      var y = v;
      if (LOSS == 2u) { y = 1.0 / (1.0 + exp(-v)); }
      let d = y - select(vec4f(0.0), vec4f(1.0), is_label);
      l += dot(select(vec4f(0.0), 0.5 * d * d, live), vec4f(1.0));
    }
  }
  if (LOSS == 0u) { l = best - zlab + log(se); }
  return vec2f(l, select(0.0, 1.0, arg == label));
}

fn cached_logits(s: u32) -> array<vec4f, MAX_C4> {
  var lg: array<vec4f, MAX_C4>;
  for (var q = 0u; q < NC4; q++) {
    for (var c = 0u; c < 4u; c++) {
      let row = min(4u * q + c, cp.classes - 1u);
      lg[q][c] = zl[(cp.logit_row + row) * cp.ld + s];
    }
  }
  return lg;
}

// The statistics updates above cancel when the variance shrinks by much (the changed units held
// most of it): their float32 error is about ulp(var), which the norm then amplifies by
// 1/sqrt(var' + eps) (one case measured: 0.3 % of a weight's dLoss, a ReLU layer left with one
// small active unit). Below SHRINK x the old (var + eps) the new statistics are recomputed in
// two passes over the layer instead (as the forward does), keeping the error ~4 ulp.
const SHRINK: f32 = 0.25;

// Sample s's mean and variance of layer 0's normalised input with unit j's value replaced by un.
// Loop bound: 2 n0.
fn ln0_direct(j: u32, un: f32, s: u32) -> vec2f {
  let n = f32(cp.n0);
  var sum = 0.0;
  for (var r = 0u; r < cp.n0; r++) { // <= n0
    sum += select(ops0(r, z_in[r * cp.ld + s], 0u, LN0), un, r == j);
  }
  let m = sum / n;
  var v = 0.0;
  for (var r = 0u; r < cp.n0; r++) { // <= n0
    let u = select(ops0(r, z_in[r * cp.ld + s], 0u, LN0), un, r == j);
    v += (u - m) * (u - m);
  }
  return vec2f(m, v / n);
}

// The same for W1's normalised input with the carried changes of the scratch row. Loop bound: 2 n1.
fn ln1_direct(s: u32, sc: u32) -> vec2f {
  let n = f32(cp.n1);
  var sum = 0.0;
  for (var c = 0u; c < cp.n1; c++) { // <= n1
    sum += ops1(c, zl[c * cp.ld + s] + dz_get(sc, c), 0u, LN1);
  }
  let m = sum / n;
  var v = 0.0;
  for (var c = 0u; c < cp.n1; c++) { // <= n1
    let u = ops1(c, zl[c * cp.ld + s] + dz_get(sc, c), 0u, LN1);
    v += (u - m) * (u - m);
  }
  return vec2f(m, v / n);
}

// Layer-0 unit r's output change dh: into the logits (depth 1) or W1's pre-activations (depth 2).
fn spread(r: u32, dh: f32, lg: ptr<function, array<vec4f, MAX_C4>>, sc: u32) {
  if (DEPTH == 1u) {
    for (var q = 0u; q < NC4; q++) { (*lg)[q] += out_row(r, q) * dh; }
  } else {
    let e1 = meta_u[cp.row1_ptr + r + 1u];
    for (var e = meta_u[cp.row1_ptr + r]; e < e1; e++) { // row r of W1: <= its nonzeros
      let c = meta_u[cp.row1_col + e];
      dz_set(sc, c, dz_get(sc, c) + meta_f[cp.row1_val + e] * dh);
    }
  }
}

// The change of sample s's (loss, hit) when w_ij (value w) is removed; `sc`: this invocation's
// scratch row.
fn sample_delta(i: u32, j: u32, w: f32, s: u32, sc: u32) -> vec2f {
  let zo = z_in[j * cp.ld + s];
  let zn = zo - w * x_in[i * cp.ld + s];
  var lg = cached_logits(s);
  // ---- chain 0 ----
  if (LN0 < 4u) {
    let uo = ops0(j, zo, 0u, LN0);
    let un = ops0(j, zn, 0u, LN0);
    let d = un - uo;
    if (d == 0.0) { return vec2f(0.0); }
    if (DEPTH == 2u) {
      for (var c = 0u; c < cp.n1; c++) { dz_set(sc, c, 0.0); } // <= n1
    }
    let o = cp.ops[min(LN0, 3u)];
    let eps = bitcast<f32>(o.x);
    let n = f32(cp.n0);
    let mu = meta_f[cp.stats0 + s];
    let va = meta_f[cp.stats0 + cp.s + s];
    var mu2 = mu + d / n;
    var va2 = max(va + (2.0 * (uo - mu) * d + d * d * (1.0 - 1.0 / n)) / n, 0.0);
    if (va2 + eps < SHRINK * (va + eps)) {
      let st = ln0_direct(j, un, s);
      mu2 = st.x;
      va2 = st.y;
    }
    let rs = inverseSqrt(va + eps);
    let rs2 = inverseSqrt(va2 + eps);
    for (var r = 0u; r < cp.n0; r++) { // <= n0
      var u = uo;
      var u2 = un;
      if (r != j) {
        u = ops0(r, z_in[r * cp.ld + s], 0u, LN0);
        u2 = u;
      }
      let dh = ops0(r, ln_unit(o, r, u2, mu2, rs2), LN0 + 1u, 4u) -
        ops0(r, ln_unit(o, r, u, mu, rs), LN0 + 1u, 4u);
      if (dh != 0.0) { spread(r, dh, &lg, sc); }
    }
  } else {
    let dh = ops0(j, zn, 0u, 4u) - ops0(j, zo, 0u, 4u);
    if (dh == 0.0) { return vec2f(0.0); }
    if (DEPTH == 2u) {
      for (var c = 0u; c < cp.n1; c++) { dz_set(sc, c, 0.0); } // <= n1
    }
    spread(j, dh, &lg, sc);
  }
  // ---- chain 1 (depth 2) ----
  if (DEPTH == 2u) {
    if (LN1 < 4u) {
      let o = cp.ops[4u + min(LN1, 3u)];
      let eps = bitcast<f32>(o.x);
      let n = f32(cp.n1);
      let mu = meta_f[cp.stats1 + s];
      let va = meta_f[cp.stats1 + cp.s + s];
      var sd = 0.0;
      var scd = 0.0;
      var sdd = 0.0;
      for (var c = 0u; c < cp.n1; c++) { // <= n1
        let dz = dz_get(sc, c);
        if (dz != 0.0) {
          let z = zl[c * cp.ld + s];
          let u = ops1(c, z, 0u, LN1);
          let d = ops1(c, z + dz, 0u, LN1) - u;
          sd += d;
          scd += (u - mu) * d;
          sdd += d * d;
        }
      }
      if (sdd == 0.0) { return vec2f(0.0); }
      let dmu = sd / n;
      var mu2 = mu + dmu;
      var va2 = max(va + (2.0 * scd + sdd) / n - dmu * dmu, 0.0);
      if (va2 + eps < SHRINK * (va + eps)) {
        let st = ln1_direct(s, sc);
        mu2 = st.x;
        va2 = st.y;
      }
      let rs = inverseSqrt(va + eps);
      let rs2 = inverseSqrt(va2 + eps);
      for (var c = 0u; c < cp.n1; c++) { // <= n1
        let z = zl[c * cp.ld + s];
        let u = ops1(c, z, 0u, LN1);
        var u2 = u;
        let dz = dz_get(sc, c);
        if (dz != 0.0) { u2 = ops1(c, z + dz, 0u, LN1); }
        let dh = ops1(c, ln_unit(o, c, u2, mu2, rs2), LN1 + 1u, 4u) -
          ops1(c, ln_unit(o, c, u, mu, rs), LN1 + 1u, 4u);
        if (dh != 0.0) {
          for (var q = 0u; q < NC4; q++) { lg[q] += out_row(c, q) * dh; }
        }
      }
    } else {
      for (var c = 0u; c < cp.n1; c++) { // <= n1
        let dz = dz_get(sc, c);
        if (dz != 0.0) {
          let z = zl[c * cp.ld + s];
          let dh = ops1(c, z + dz, 0u, 4u) - ops1(c, z, 0u, 4u);
          if (dh != 0.0) {
            for (var q = 0u; q < NC4; q++) { lg[q] += out_row(c, q) * dh; }
          }
        }
      }
    }
  }
  let before = vec2f(meta_f[cp.base + 2u * s], meta_f[cp.base + 2u * s + 1u]);
  return sample_metrics(lg, meta_u[cp.labels + s]) - before;
}

@compute @workgroup_size(CWG)
fn ablate_carry_ln(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let task = gid.x + gid.y * nwg.x * CWG;
  if (cp.mode == 1u) {
    if (task < cp.s) {
      let m = sample_metrics(cached_logits(task), meta_u[cp.labels + task]);
      out[2u * task] = m.x;
      out[2u * task + 1u] = m.y;
    }
    return;
  }
  let k = task / cp.chunks;
  if (k >= cp.k) { return; }
  let a = cp.abl_base + k;
  let i = abl[3u * a];
  let j = abl[3u * a + 1u];
  let w = bitcast<f32>(abl[3u * a + 2u]);
  let p1 = meta_u[cp.samp_ptr + i + 1u];
  let beg = meta_u[cp.samp_ptr + i] + (task % cp.chunks) * cp.chunk;
  let end = min(p1, beg + cp.chunk);
  let sc = task * cp.n1;
  var acc = vec2f(0.0);
  for (var q = beg; q < end; q++) { // <= chunk trips
    acc += sample_delta(i, j, w, meta_u[cp.samp_idx + q], sc);
  }
  out[2u * (cp.out_base + task)] = acc.x;
  out[2u * (cp.out_base + task) + 1u] = acc.y;
}
