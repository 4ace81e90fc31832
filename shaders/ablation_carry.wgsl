// Work-efficient exact single-weight ablation (src/kernels/analysis.ts `ablationCarry`; float64
// reference: ablationCarryRef in analysis_ref.ts). activation_fns.wgsl is prepended.
//
// Zeroing w_ij of weight layer L0 changes unit j's pre-activation by -w_ij * x_i[s], so only on
// the samples s where x_i[s] != 0 (the sample list of input row i). Per such sample:
//   depth 0 (L0 is the output layer): logit j moves to z_j - w x_i.
//   depth 1: unit j's output moves by dh = f0_j(z_j - w x_i) - f0_j(z_j) (f0: the unit-wise chain
//            after L0: activation, eval-mode batch norm, SReLU, dropout = identity); if dh = 0
//            nothing changes; else the logits move along row j of the output layer W1: dh W1[j][:].
//   depth 2: as depth 1 into the next hidden layer's pre-activations along row j of W1, each
//            through its chain f1_r, and the nonzero changes along row r of the output layer W2.
// The logits of the sample (cached, unablated) are patched in a private array and the per-sample
// loss and hit are recomputed for old and new logits: the sample's contribution is the
// difference. Nothing is computed for samples the ablation cannot reach.
//
// One invocation per (ablation, chunk c of `chunks`): it walks every chunks-th entry of the
// ablation's sample list from entry c and writes its [loss delta sum, hit delta sum]; the host adds
// the chunks in float64. No barriers and no shared memory: the host orders ablations by input row,
// so neighbouring lanes share a sample list and walk it in lockstep. Everything read per sample
// that comes four floats at a time (the output rows, the cached logits, W1's entries, the base
// record) is a vec4 of rows_v: one texel fetch on a software adapter instead of four.
//
// Specialized per layer by overrides (so loops over classes unroll and the logits stay in
// registers, and the chains compile to straight code): NC4 = ceil(classes / 4), the depth, and
// per chain op its kind and activation id. The output layer's rows are stored dense over the
// classes (padded to NC4 vec4s).
// Loop bound per invocation: chunk samples x per-sample trips (tripsPerSample in the wrapper:
// class loops + W1's row x the output row); the wrapper asserts it.

const MAX_C4: u32 = 8u; // 32 classes
const CWG: u32 = 64u;

override NC4: u32 = 3u;   // ceil(classes / 4), <= MAX_C4
override DEPTH: u32 = 1u; // 0, 1 or 2 weight layers carried after the ablated one
override LOSS: u32 = 0u;  // 0 softmax cross-entropy, 1 MSE, 2 MSE on sigmoid outputs
// Chain ops (seg 0: after L0; seg 1: after W1): kind 0 none, 1 activation (id A..), 2 eval batch
// norm, 3 SReLU; parameters in the uniform's ops[4 * seg + o] = (param bits or eps bits, units,
// meta_f offset, 0).
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

struct CarryParams {
  s: u32,          // samples S (columns of the cached tensors)
  ld: u32,         // row stride of the cached tensors, roundUp4(S)
  k: u32,          // ablations in this dispatch
  chunks: u32,     // chunks per ablation
  chunk: u32,      // sample-list entries per chunk
  classes: u32,
  samp_ptr: u32,   // meta_u offsets: sample list row pointers of the ablated layer's inputs
  samp_idx: u32,   //   sample indices
  labels: u32,     //   labels
  row1_ptr: u32,   //   CSR (rows = inputs) of W1 (depth 2): row pointers
  row1_v: u32,     // rows_v offsets (vec4s): W1's CSR entries (depth 2), (f32(column), value, 0, 0)
  logit_v: u32,    //   the cached logits, sample s's NC4 vec4s from logit_v + s * NC4
  pad3: u32,
  abl_base: u32,   // first ablation of this dispatch in `abl`
  out_base: u32,   // first task of this dispatch in `out`
  mode: u32,       // 0: ablations; 1: per-sample base records of the cached logits into `out`
  base_v: u32,     // rows_v offset (vec4s) of the per-sample (base loss, base hit, f32(label), 0)
  pad0: u32,
  pad1: u32,
  pad2: u32,
  ops: array<vec4<u32>, 8>,
}

@group(0) @binding(0) var<uniform> cp: CarryParams;
// The operands (binding 1 meta_u, 2 meta_f, 3 x0, 4 z0, 5 rows_v, 6 zl, 7 abl) are declared, with
// their loaders, by the prelude prepended on the TypeScript side: storage buffers
// (ablation_carry_buffers_fns.wgsl) or texture mirrors (ablation_carry_textures_fns.wgsl).
// rows_v (vec4s) holds the output layer's rows dense over the classes (row r, vec4 q at index
// r * NC4 + q), the cached logits by sample and W1's entries: one fetch of four floats instead of
// four scalar loads (padding lanes are 0). zl: the cached pre-activations of W1 (depth 2).
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

// One unit-wise op (kind and activation id are overrides, so this folds to one branch).
fn unit_op(kind: u32, id: u32, o: vec4<u32>, r: u32, y: f32) -> f32 {
  if (kind == 1u) {
    return act_forward(id, y, bitcast<f32>(o.x));
  }
  let a = ld_mf(o.z + r);
  let b = ld_mf(o.z + o.y + r);
  let c = ld_mf(o.z + 2u * o.y + r);
  let d = ld_mf(o.z + 3u * o.y + r);
  if (kind == 2u) { // gamma, beta, running mean, running var
    return (y - c) * (a * inverseSqrt(d + bitcast<f32>(o.x))) + b;
  }
  if (kind == 3u) { // t_l, a_l, t_r, a_r
    return select(select(y, a + b * (y - a), y <= a), c + d * (y - c), y >= c);
  }
  return y;
}

fn chain0(r: u32, v: f32) -> f32 {
  var y = v;
  if (K00 != 0u) { y = unit_op(K00, A00, cp.ops[0], r, y); }
  if (K01 != 0u) { y = unit_op(K01, A01, cp.ops[1], r, y); }
  if (K02 != 0u) { y = unit_op(K02, A02, cp.ops[2], r, y); }
  if (K03 != 0u) { y = unit_op(K03, A03, cp.ops[3], r, y); }
  return y;
}

fn chain1(r: u32, v: f32) -> f32 {
  var y = v;
  if (K10 != 0u) { y = unit_op(K10, A10, cp.ops[4], r, y); }
  if (K11 != 0u) { y = unit_op(K11, A11, cp.ops[5], r, y); }
  if (K12 != 0u) { y = unit_op(K12, A12, cp.ops[6], r, y); }
  if (K13 != 0u) { y = unit_op(K13, A13, cp.ops[7], r, y); }
  return y;
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
  var zl = 0.0;
  for (var q = 0u; q < NC4; q++) {
    let idx = vec4u(4u * q) + vec4u(0u, 1u, 2u, 3u);
    let live = idx < vec4u(cp.classes);
    let v = lg[q];
    // First index holding the maximum (the sequential strict-greater scan's argmax).
    let at = select(vec4u(cp.classes), idx, live & (v == vec4f(best)));
    arg = min(arg, min(min(at.x, at.y), min(at.z, at.w)));
    let is_label = idx == vec4u(label);
    zl += dot(select(vec4f(0.0), v, is_label), vec4f(1.0));
    if (LOSS == 0u) {
      se += dot(select(vec4f(0.0), exp(v - vec4f(best)), live), vec4f(1.0));
    } else {
      var y = v;
      if (LOSS == 2u) { y = 1.0 / (1.0 + exp(-v)); }
      let d = y - select(vec4f(0.0), vec4f(1.0), is_label);
      l += dot(select(vec4f(0.0), 0.5 * d * d, live), vec4f(1.0));
    }
  }
  if (LOSS == 0u) { l = best - zl + log(se); }
  return vec2f(l, select(0.0, 1.0, arg == label));
}


fn cached_logits(s: u32) -> array<vec4f, MAX_C4> {
  var lg: array<vec4f, MAX_C4>;
  for (var q = 0u; q < NC4; q++) { lg[q] = ld_rows(cp.logit_v + s * NC4 + q); }
  return lg;
}

// The change of sample s's (loss, hit) when w_ij (value w) is removed; [e0, e1) is row j of W1.
fn sample_delta(i: u32, j: u32, w: f32, s: u32, e0: u32, e1: u32) -> vec2f {
  let zo = ld_z0(j * cp.ld + s);
  let zn = zo - w * ld_x0(i * cp.ld + s);
  var dh = zn - zo;
  if (DEPTH > 0u) { dh = chain0(j, zn) - chain0(j, zo); }
  if (dh == 0.0) { return vec2f(0.0); }
  var lg = cached_logits(s);
  // The unablated sample's metrics, computed once by this kernel (mode 1), and its label.
  let b = ld_rows(cp.base_v + s);
  let label = u32(b.z);
  let before = b.xy;
  if (DEPTH == 0u) {
    for (var q = 0u; q < NC4; q++) {
      lg[q] = select(lg[q], vec4f(zn), vec4u(4u * q) + vec4u(0u, 1u, 2u, 3u) == vec4u(j));
    }
  } else if (DEPTH == 1u) {
    for (var q = 0u; q < NC4; q++) { lg[q] += ld_rows(j * NC4 + q) * dh; }
  } else {
    for (var e = e0; e < e1; e++) { // row j of W1: <= its outputs
      let ev = ld_rows(cp.row1_v + e);
      let r = u32(ev.x);
      let zr = ld_zl(r * cp.ld + s);
      let dh2 = chain1(r, zr + ev.y * dh) - chain1(r, zr);
      if (dh2 != 0.0) {
        for (var q = 0u; q < NC4; q++) { lg[q] += ld_rows(r * NC4 + q) * dh2; }
      }
    }
  }
  return sample_metrics(lg, label) - before;
}

@compute @workgroup_size(CWG)
fn ablate_carry(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let task = gid.x + gid.y * nwg.x * CWG;
  if (cp.mode == 1u) {
    if (task < cp.s) {
      let label = ld_mu(cp.labels + task);
      let m = sample_metrics(cached_logits(task), label);
      out[4u * task] = m.x;
      out[4u * task + 1u] = m.y;
      out[4u * task + 2u] = f32(label);
      out[4u * task + 3u] = 0.0;
    }
    return;
  }
  let k = task / cp.chunks;
  if (k >= cp.k) { return; }
  let a = cp.abl_base + k;
  let i = ld_abl(3u * a);
  let j = ld_abl(3u * a + 1u);
  let w = bitcast<f32>(ld_abl(3u * a + 2u));
  // Chunk c takes every chunks-th entry of the sample list from entry c: the chunks of an
  // ablation are neighbouring lanes, so they share i, j and W1's row j (uniform trip counts).
  let end = ld_mu(cp.samp_ptr + i + 1u);
  var e0 = 0u;
  var e1 = 0u;
  if (DEPTH == 2u) {
    e0 = ld_mu(cp.row1_ptr + j);
    e1 = ld_mu(cp.row1_ptr + j + 1u);
  }
  var acc = vec2f(0.0);
  for (var q = ld_mu(cp.samp_ptr + i) + task % cp.chunks; q < end; q += cp.chunks) {
    acc += sample_delta(i, j, w, ld_mu(cp.samp_idx + q), e0, e1); // <= chunk trips
  }
  out[2u * (cp.out_base + task)] = acc.x;
  out[2u * (cp.out_base + task) + 1u] = acc.y;
}
