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
// One workgroup per (ablation, chunk of its sample list): lanes stride over the chunk, the
// workgroup writes its [loss delta sum, hit delta sum]; the host adds the chunks in float64.
// Loop bound per invocation: ceil(chunk / 64) samples x per-sample trips (classes x 5 + rows of
// W1's row x (chain + rows of W2's row)) + 6 reduction trips; the wrapper asserts it.

const MAX_CLASSES: u32 = 32u;
const CWG: u32 = 64u;

struct CarryParams {
  s: u32,          // samples S (columns of the cached tensors)
  ld: u32,         // row stride of the cached tensors, roundUp4(S)
  k: u32,          // ablations in this dispatch
  chunks: u32,     // chunks per ablation
  chunk: u32,      // sample-list entries per chunk
  depth: u32,      // 0, 1 or 2 weight layers carried after the ablated one
  classes: u32,
  loss: u32,       // 0 softmax cross-entropy, 1 MSE, 2 MSE on sigmoid outputs
  samp_ptr: u32,   // meta_u offsets: sample list row pointers of the ablated layer's inputs
  samp_idx: u32,   //   sample indices
  labels: u32,     //   labels
  row1_ptr: u32,   //   CSR (rows = inputs) of W1: row pointers
  row1_col: u32,   //   columns
  row2_ptr: u32,   //   CSR of W2
  row2_col: u32,
  row1_val: u32,   // meta_f offsets: values of W1's CSR
  row2_val: u32,   //   values of W2's CSR
  abl_base: u32,   // first ablation of this dispatch in `abl`
  out_base: u32,   // first task of this dispatch in `out`
  nops0: u32,      // ops of the chain after L0 and after W1 (<= 4 each)
  nops1: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
  // Chain ops: (kind, a, b, offset). kind 0: activation id a, parameter bits b; kind 1: eval
  // batch norm over a units, eps bits b, gamma/beta/mean/var at meta_f[offset + {0,1,2,3}a + r];
  // kind 2: SReLU over a units, t_l/a_l/t_r/a_r at meta_f[offset + {0,1,2,3}a + r].
  ops: array<vec4<u32>, 8>,
}

@group(0) @binding(0) var<uniform> cp: CarryParams;
@group(0) @binding(1) var<storage, read> meta_u: array<u32>;
@group(0) @binding(2) var<storage, read> meta_f: array<f32>;
@group(0) @binding(3) var<storage, read> x0: array<f32>;
@group(0) @binding(4) var<storage, read> z0: array<f32>;
@group(0) @binding(5) var<storage, read> z1: array<f32>;
@group(0) @binding(6) var<storage, read> logit_in: array<f32>;
// Per ablation: input row i, output row j, bitcast f32 weight w.
@group(0) @binding(7) var<storage, read> abl: array<u32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

var<workgroup> part_l: array<f32, CWG>;
var<workgroup> part_c: array<f32, CWG>;

// The unit-wise chain `seg` (0: after L0, 1: after W1) applied to unit r's value v (<= 4 trips).
fn chain(seg: u32, r: u32, v: f32) -> f32 {
  var y = v;
  let n = select(cp.nops0, cp.nops1, seg == 1u);
  for (var o = 0u; o < n; o++) {
    let op = cp.ops[4u * seg + o];
    if (op.x == 0u) {
      y = act_forward(op.y, y, bitcast<f32>(op.z));
    } else if (op.x == 1u) {
      let g = meta_f[op.w + r];
      let b = meta_f[op.w + op.y + r];
      let m = meta_f[op.w + 2u * op.y + r];
      let q = meta_f[op.w + 3u * op.y + r];
      y = (y - m) * (g * inverseSqrt(q + bitcast<f32>(op.z))) + b;
    } else {
      let tl = meta_f[op.w + r];
      let al = meta_f[op.w + op.y + r];
      let tr = meta_f[op.w + 2u * op.y + r];
      let ar = meta_f[op.w + 3u * op.y + r];
      y = select(select(y, tl + al * (y - tl), y <= tl), tr + ar * (y - tr), y >= tr);
    }
  }
  return y;
}

// Per-sample (loss, hit) of logits `lg` (classes trips x 3), as ablation_metrics computes them.
fn sample_metrics(lg: ptr<function, array<f32, MAX_CLASSES>>, label: u32) -> vec2f {
  var best = (*lg)[0];
  var arg = 0u;
  for (var q = 1u; q < cp.classes; q++) {
    if ((*lg)[q] > best) {
      best = (*lg)[q];
      arg = q;
    }
  }
  var l = 0.0;
  if (cp.loss == 0u) {
    var se = 0.0;
    for (var q = 0u; q < cp.classes; q++) { se += exp((*lg)[q] - best); }
    l = best - (*lg)[label] + log(se);
  } else {
    for (var q = 0u; q < cp.classes; q++) {
      var y = (*lg)[q];
      if (cp.loss == 2u) { y = 1.0 / (1.0 + exp(-y)); }
      let d = y - select(0.0, 1.0, q == label);
      l += 0.5 * d * d;
    }
  }
  return vec2f(l, select(0.0, 1.0, arg == label));
}

// The change of sample s's (loss, hit) when w_ij (value w) is removed.
fn sample_delta(i: u32, j: u32, w: f32, s: u32) -> vec2f {
  let zo = z0[j * cp.ld + s];
  let zn = zo - w * x0[i * cp.ld + s];
  var dh = zn - zo;
  if (cp.depth > 0u) {
    dh = chain(0u, j, zn) - chain(0u, j, zo);
  }
  if (dh == 0.0) { return vec2f(0.0); }
  var lg: array<f32, MAX_CLASSES>;
  for (var q = 0u; q < cp.classes; q++) { lg[q] = logit_in[q * cp.ld + s]; }
  let label = meta_u[cp.labels + s];
  let before = sample_metrics(&lg, label);
  if (cp.depth == 0u) {
    lg[j] = zn;
  } else {
    let e0 = meta_u[cp.row1_ptr + j];
    let e1 = meta_u[cp.row1_ptr + j + 1u];
    for (var e = e0; e < e1; e++) { // row j of W1: <= its outputs
      let r = meta_u[cp.row1_col + e];
      let v = meta_f[cp.row1_val + e];
      if (cp.depth == 1u) {
        lg[r] += v * dh;
      } else {
        let zr = z1[r * cp.ld + s];
        let dh2 = chain(1u, r, zr + v * dh) - chain(1u, r, zr);
        if (dh2 != 0.0) {
          let f0 = meta_u[cp.row2_ptr + r];
          let f1 = meta_u[cp.row2_ptr + r + 1u];
          for (var f = f0; f < f1; f++) { // row r of W2: <= classes
            lg[meta_u[cp.row2_col + f]] += meta_f[cp.row2_val + f] * dh2;
          }
        }
      }
    }
  }
  return sample_metrics(&lg, label) - before;
}

@compute @workgroup_size(CWG)
fn ablate_carry(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let task = wid.x + wid.y * nwg.x;
  let k = task / cp.chunks;
  var acc = vec2f(0.0);
  if (k < cp.k) {
    let a = cp.abl_base + k;
    let i = abl[3u * a];
    let j = abl[3u * a + 1u];
    let w = bitcast<f32>(abl[3u * a + 2u]);
    let p0 = meta_u[cp.samp_ptr + i];
    let p1 = meta_u[cp.samp_ptr + i + 1u];
    let beg = p0 + (task % cp.chunks) * cp.chunk;
    let end = min(p1, beg + cp.chunk);
    for (var q = beg + lid; q < end; q += CWG) { // ceil(chunk / 64) trips
      acc += sample_delta(i, j, w, meta_u[cp.samp_idx + q]);
    }
  }
  part_l[lid] = acc.x;
  part_c[lid] = acc.y;
  workgroupBarrier();
  for (var h = CWG / 2u; h > 0u; h /= 2u) {
    if (lid < h) {
      part_l[lid] += part_l[lid + h];
      part_c[lid] += part_c[lid + h];
    }
    workgroupBarrier();
  }
  if (lid == 0u && k < cp.k) {
    out[2u * (cp.out_base + task)] = part_l[0];
    out[2u * (cp.out_base + task) + 1u] = part_c[0];
  }
}
