// Kernels of the importance analysis (src/kernels/analysis.ts; references: analysis_ref.ts).
// ablation_fns.wgsl is prepended (batch_cell).
//
// Activations are feature-major [rows][ld]; a batch of K ablations over S evaluation samples is
// one activation with K*S columns: column c = k*S + s, padding columns (>= K*S) zero.

struct PatchParams {
  rows: u32,    // rows of the patched tensor
  s: u32,       // evaluation samples S
  ld_s: u32,    // row stride of the cached tensors (roundUp4(S))
  ld_n: u32,    // row stride of the patched tensor (roundUp4(K*S))
  k: u32,       // ablations in this batch
  mode: u32,    // 0: rank-1 over a row group (rows j*G..j*G+G-1 -= w * x[i*G + r%G]); 1: zero it;
                // 2: rank-1, only the group: patched row r (< G) is row j*G + r corrected
  group: u32,   // G: 1 for a fully-connected layer; a convolution's positions P (rank-1) or
                // rows per input unit h*w (zero), see src/kernels/ablation_conv.ts
}

@group(0) @binding(0) var<uniform> pp: PatchParams;
@group(0) @binding(1) var<storage, read> cached: array<f32>;
@group(0) @binding(2) var<storage, read> x_in: array<f32>;
// Per ablation: input row i, output row (or unit) j, bitcast f32 weight w.
@group(0) @binding(3) var<storage, read> abl: array<u32>;
@group(0) @binding(4) var<storage, read_write> patched: array<f32>;

override WG: u32 = 64u;

// One invocation per element of `patched` (no loop); the cached tensor is replicated K times
// with the ablated row group corrected: zeroing w_ij changes only the rows of unit j, by
// -w_ij * x_i (with G = 1: only z_j).
@compute @workgroup_size(WG)
fn patch_columns(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= pp.rows * pp.ld_n) { return; }
  let b = batch_cell(e, pp.ld_n, pp.k, pp.s);
  if (!b.live) {
    patched[e] = 0.0;
    return;
  }
  let w = bitcast<f32>(abl[3u * b.k + 2u]);
  if (pp.mode == 2u) {
    let row = abl[3u * b.k + 1u] * pp.group + b.r;
    let xr = abl[3u * b.k] * pp.group + b.r;
    patched[e] = cached[row * pp.ld_s + b.s] - w * x_in[xr * pp.ld_s + b.s];
    return;
  }
  var v = cached[b.r * pp.ld_s + b.s];
  if (b.r / pp.group == abl[3u * b.k + 1u]) {
    if (pp.mode == 0u) {
      let xr = abl[3u * b.k] * pp.group + b.r % pp.group;
      v -= w * x_in[xr * pp.ld_s + b.s];
    } else {
      v = 0.0;
    }
  }
  patched[e] = v;
}

// patch_columns with four columns per invocation (the same arithmetic per column, so the same
// bits): vec4 loads and stores. Needs S % 4 == 0 (the wrapper picks it then): columns c..c+3
// (c = 4q) are samples s..s+3 of one ablation, and K*S = ld_n leaves no padding columns.
@group(0) @binding(1) var<storage, read> cached4: array<vec4f>;
@group(0) @binding(2) var<storage, read> x4_in: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> patched4: array<vec4f>;

@compute @workgroup_size(WG)
fn patch_columns4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= pp.rows * (pp.ld_n / 4u)) { return; }
  let b = batch_quad(e, pp.ld_n, pp.s);
  let r = b.r;
  let k = b.k;
  let s4 = b.s4;
  let lqs = pp.ld_s / 4u;
  let w = bitcast<f32>(abl[3u * k + 2u]);
  if (pp.mode == 2u) {
    let row = abl[3u * k + 1u] * pp.group + r;
    let xr = abl[3u * k] * pp.group + r;
    patched4[e] = cached4[row * lqs + s4] - w * x4_in[xr * lqs + s4];
    return;
  }
  var v = cached4[r * lqs + s4];
  if (r / pp.group == abl[3u * k + 1u]) {
    if (pp.mode == 0u) {
      let xr = abl[3u * k] * pp.group + r % pp.group;
      v -= w * x4_in[xr * lqs + s4];
    } else {
      v = vec4f(0.0);
    }
  }
  patched4[e] = v;
}

// replace_term: K copies of a cached pre-activation with one input's term replaced (a convolution
// after a convolution, src/analysis/probe.ts): out[r][k*S + s] = cached[r][s] - old[r][s] +
// fresh[r][k*S + s], where `old` is the term the unablated input gave and `fresh` the one copy k's
// ablated input gives. Padding columns (>= K*S) are written 0. One invocation per element of
// `out` (no loop); the Params are patch_columns' (rows, s, ld_s, ld_n, k).
@group(0) @binding(1) var<storage, read> rt_cached: array<f32>;
@group(0) @binding(2) var<storage, read> rt_old: array<f32>;
@group(0) @binding(3) var<storage, read> rt_new: array<f32>;
@group(0) @binding(4) var<storage, read_write> rt_out: array<f32>;

@compute @workgroup_size(WG)
fn replace_term(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= pp.rows * pp.ld_n) { return; }
  let b = batch_cell(e, pp.ld_n, pp.k, pp.s);
  if (!b.live) {
    rt_out[e] = 0.0;
    return;
  }
  let c = b.r * pp.ld_s + b.s;
  rt_out[e] = rt_cached[c] - rt_old[c] + rt_new[e];
}

// replace_term with four columns per invocation (the same arithmetic per column, so the same
// bits): vec4 loads and stores. Needs S % 4 == 0 (the wrapper picks it then).
@group(0) @binding(1) var<storage, read> rt4_cached: array<vec4f>;
@group(0) @binding(2) var<storage, read> rt4_old: array<vec4f>;
@group(0) @binding(3) var<storage, read> rt4_new: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> rt4_out: array<vec4f>;

@compute @workgroup_size(WG)
fn replace_term4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= pp.rows * (pp.ld_n / 4u)) { return; }
  let b = batch_quad(e, pp.ld_n, pp.s);
  let c = b.r * (pp.ld_s / 4u) + b.s4;
  rt4_out[e] = rt4_cached[c] - rt4_old[c] + rt4_new[e];
}

struct MetricParams {
  classes: u32,
  s: u32,       // samples per ablation
  ld_n: u32,    // row stride of the logits
  k: u32,       // ablations
  loss: u32,    // 0: softmax cross-entropy; 1: MSE on identity output; 2: MSE on sigmoid output
}

@group(0) @binding(0) var<uniform> mp: MetricParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
// Per ablation: [loss sum, correct count] (counts are exact in f32 below 2^24 samples).
@group(0) @binding(3) var<storage, read_write> sums: array<f32>;

const MWG: u32 = 64u;
var<workgroup> part_loss: array<f32, MWG>;
var<workgroup> part_hits: array<f32, MWG>;

// One workgroup per ablation; each invocation walks samples s = lid, lid + 64, ... (S / 64
// trips, each over the classes: the wrapper bounds (S / 64 + 1) * 2 * classes).
@compute @workgroup_size(MWG)
fn ablation_metrics(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let k = wid.x + wid.y * nwg.x;
  var loss = 0.0;
  var hits = 0.0;
  if (k < mp.k) {
    for (var s = lid; s < mp.s; s += MWG) {
      let col = k * mp.s + s;
      let label = labels[s];
      var best = logits[col];
      var arg = 0u;
      for (var q = 1u; q < mp.classes; q++) {
        let v = logits[q * mp.ld_n + col];
        if (v > best) {
          best = v;
          arg = q;
        }
      }
      if (arg == label) { hits += 1.0; }
      if (mp.loss == 0u) {
        var se = 0.0;
        for (var q = 0u; q < mp.classes; q++) { se += exp(logits[q * mp.ld_n + col] - best); }
        loss += best - logits[label * mp.ld_n + col] + log(se);
      } else {
        var l = 0.0;
        for (var q = 0u; q < mp.classes; q++) {
          var y = logits[q * mp.ld_n + col];
          if (mp.loss == 2u) { y = 1.0 / (1.0 + exp(-y)); }
          let d = y - select(0.0, 1.0, q == label);
          l += 0.5 * d * d;
        }
        loss += l;
      }
    }
  }
  part_loss[lid] = loss;
  part_hits[lid] = hits;
  workgroupBarrier();
  for (var w = MWG / 2u; w > 0u; w /= 2u) {
    if (lid < w) {
      part_loss[lid] += part_loss[lid + w];
      part_hits[lid] += part_hits[lid + w];
    }
    workgroupBarrier();
  }
  if (lid == 0u && k < mp.k) {
    sums[2u * k] = part_loss[0];
    sums[2u * k + 1u] = part_hits[0];
  }
}

struct MapParams {
  n: u32,       // elements
  op: u32,      // 0: y = x*x; 1: y = |x|; 2: y = x + alpha*g; 3: y = x*g
  alpha: f32,
}

@group(0) @binding(0) var<uniform> ep: MapParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> g_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

// Element-wise maps used to build score inputs (squares for the Fisher SDDMM, |W| for SynFlow,
// the perturbed weights w + eps*g for GraSP's finite-difference Hessian-vector product, and
// masks w*m for fine-tuning after group removal).
@compute @workgroup_size(WG)
fn map_elements(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= ep.n) { return; }
  let v = src[i];
  if (ep.op == 0u) {
    dst[i] = v * v;
  } else if (ep.op == 1u) {
    dst[i] = abs(v);
  } else if (ep.op == 2u) {
    dst[i] = v + ep.alpha * g_in[i];
  } else {
    dst[i] = v * g_in[i];
  }
}

struct RowParams {
  rows: u32,
  batch: u32,
  ld: u32,
}

@group(0) @binding(0) var<uniform> rp: RowParams;
@group(0) @binding(1) var<storage, read> act_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> row_out: array<f32>;

// Sum of squares of each row over the live columns; one invocation per row loops `batch` times
// (the wrapper keeps batch below llvmpipe's 65,535-iteration cap).
@compute @workgroup_size(WG)
fn row_sumsq(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= rp.rows) { return; }
  var acc = 0.0;
  for (var c = 0u; c < rp.batch; c++) {
    let v = act_in[r * rp.ld + c];
    acc += v * v;
  }
  row_out[r] = acc;
}

struct ScoreParams {
  n: u32,       // entries
  score: u32,   // 0 magnitude, 1 snip, 2 taylor, 3 obd, 4 grasp, 5 synflow, 6 wanda, 7 random
  seed: u32,
  fisher_scale: f32,
}

@group(0) @binding(0) var<uniform> sp: ScoreParams;
@group(0) @binding(1) var<storage, read> w_in: array<f32>;
@group(0) @binding(2) var<storage, read> grad_in: array<f32>;
@group(0) @binding(3) var<storage, read> hg_in: array<f32>;
@group(0) @binding(4) var<storage, read> fisher_in: array<f32>;
// Per entry: input row i, output row j.
@group(0) @binding(5) var<storage, read> ends: array<u32>;
@group(0) @binding(6) var<storage, read> row_sq: array<f32>;
@group(0) @binding(7) var<storage, read> flow_in: array<f32>;
@group(0) @binding(8) var<storage, read> flow_out: array<f32>;
@group(0) @binding(9) var<storage, read_write> score_out: array<f32>;

// A counter-based hash (PCG output permutation over the entry index and seed) -> [0, 1).
fn hash01(e: u32, seed: u32) -> f32 {
  var v = e * 747796405u + seed * 2891336453u + 1u;
  v = ((v >> ((v >> 28u) + 4u)) ^ v) * 277803737u;
  v = (v >> 22u) ^ v;
  return f32(v >> 8u) / 16777216.0;
}

@compute @workgroup_size(WG)
fn entry_scores(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= sp.n) { return; }
  let w = w_in[e];
  var s = 0.0;
  switch sp.score {
    case 0u: { s = abs(w); }
    case 1u: { s = abs(w * grad_in[e]); }
    case 2u: { s = (w * grad_in[e]) * (w * grad_in[e]); }
    case 3u: { s = 0.5 * sp.fisher_scale * fisher_in[e] * w * w; }
    case 4u: { s = w * hg_in[e]; }
    case 5u: { s = abs(w) * flow_in[ends[2u * e]] * flow_out[ends[2u * e + 1u]]; }
    case 6u: { s = abs(w) * sqrt(row_sq[ends[2u * e]]); }
    default: { s = hash01(e, sp.seed); }
  }
  score_out[e] = s;
}

struct BnParams {
  rows: u32,
  batch: u32,
  ld: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> bp: BnParams;
@group(0) @binding(1) var<storage, read> dy_in: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> running_var: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx_out: array<f32>;

// Batch norm in evaluation mode is a per-feature affine map y = gamma*(x - mean)/sqrt(var + eps)
// + beta with the running statistics, so dx = dy * gamma / sqrt(var + eps).
@compute @workgroup_size(WG)
fn bn_eval_backward(
  @builtin(global_invocation_id) gid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= bp.rows * bp.ld) { return; }
  let r = i / bp.ld;
  let c = i % bp.ld;
  dx_out[i] = select(0.0, dy_in[i] * gamma[r] / sqrt(running_var[r] + bp.eps), c < bp.batch);
}

// ---- Carrying the rank-1 change one layer further (no normalization between the layers) ----
// Zeroing w_ij changes unit j's output h_j only, so the next weight layer's pre-activation moves
// by W_next[j][:]ᵀ·(h_j' - h_j): the K copies of the next layer's cached pre-activation are
// corrected along the outgoing row of j, and the SpMM of the next layer is skipped.

struct RowParams2 {
  s: u32,       // samples S
  ld_s: u32,    // stride of the cached tensors
  k: u32,       // ablations
  ld_n: u32,    // stride of the output row (roundUp4(K*S))
}

@group(0) @binding(0) var<uniform> rq: RowParams2;
@group(0) @binding(1) var<storage, read> z_rows: array<f32>;
@group(0) @binding(2) var<storage, read> x_rows: array<f32>;
@group(0) @binding(3) var<storage, read> abl_row: array<u32>;
@group(0) @binding(4) var<storage, read_write> z_out: array<f32>;

// z_out[k*S + s] = z[j_k][s] - w_k * x[i_k][s]: the ablated unit's new pre-activation.
@compute @workgroup_size(WG)
fn ablated_row(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x + gid.y * nwg.x * WG;
  if (c >= rq.ld_n) { return; }
  let b = batch_cell(c, rq.ld_n, rq.k, rq.s);
  if (!b.live) {
    z_out[c] = 0.0;
    return;
  }
  let i = abl_row[3u * b.k];
  let j = abl_row[3u * b.k + 1u];
  z_out[c] = z_rows[j * rq.ld_s + b.s] - bitcast<f32>(abl_row[3u * b.k + 2u]) * x_rows[i * rq.ld_s + b.s];
}

struct NextParams {
  rows: u32,    // outputs of the next weight layer
  s: u32,
  ld_s: u32,
  ld_n: u32,
  k: u32,
}

@group(0) @binding(0) var<uniform> nq: NextParams;
@group(0) @binding(1) var<storage, read> z_next: array<f32>;
@group(0) @binding(2) var<storage, read> h_cached: array<f32>;
@group(0) @binding(3) var<storage, read> h_new: array<f32>;
// Per ablation k: the outgoing weights of its unit j_k, dense over the next layer's outputs.
@group(0) @binding(4) var<storage, read> w_out: array<f32>;
@group(0) @binding(5) var<storage, read> abl_next: array<u32>;
@group(0) @binding(6) var<storage, read_write> z_next_out: array<f32>;

@compute @workgroup_size(WG)
fn patch_next(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= nq.rows * nq.ld_n) { return; }
  let b = batch_cell(e, nq.ld_n, nq.k, nq.s);
  if (!b.live) {
    z_next_out[e] = 0.0;
    return;
  }
  let j = abl_next[3u * b.k + 1u];
  let dh = h_new[b.c] - h_cached[j * nq.ld_s + b.s];
  z_next_out[e] = z_next[b.r * nq.ld_s + b.s] + w_out[b.k * nq.rows + b.r] * dh;
}
