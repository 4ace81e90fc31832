// Exact ablation and per-sample gradients of convolutions (src/analysis/ablation_conv.ts;
// float64 references: src/analysis/ablation_conv_ref.ts).
//
// A convolution's weight matrix W [c_in*k*k][c_out] is shared by its P = oh*ow output positions:
// its input is the im2col matrix viewed as [c_in*k*k * P][ld] (row i*P + p) and its
// pre-activation [c_out * P][ld] (row j*P + p). Zeroing w_ij changes the P rows j*P + p of the
// pre-activation, each by -w_ij * cols[i*P + p]. A batch of K ablations over S samples is one
// activation with K*S columns: column c = k*S + s, padding columns (>= K*S) zero.

struct PatchParams {
  rows: u32,    // rows of the patched tensor
  s: u32,       // evaluation samples S
  ld_s: u32,    // row stride of the cached tensors (roundUp4(S))
  ld_n: u32,    // row stride of the patched tensor (roundUp4(K*S))
  k: u32,       // ablations in this batch
  mode: u32,    // 0: rank-1 over a row group (rows j*G..j*G+G-1 -= w * x[i*G + r%G]); 1: zero it;
                // 2: rank-1, only the group: patched row r (< G) is row j*G + r corrected
  group: u32,   // G: rows per output channel (rank-1: P) or per input unit (zero: h*w)
}

@group(0) @binding(0) var<uniform> pp: PatchParams;
@group(0) @binding(1) var<storage, read> cached: array<f32>;
@group(0) @binding(2) var<storage, read> x_in: array<f32>;
// Per ablation: input row i, output row (or unit) j, bitcast f32 weight w.
@group(0) @binding(3) var<storage, read> abl: array<u32>;
@group(0) @binding(4) var<storage, read_write> patched: array<f32>;

override WG: u32 = 64u;

// One invocation per element of `patched` (no loop).
@compute @workgroup_size(WG)
fn conv_patch(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= pp.rows * pp.ld_n) { return; }
  let r = e / pp.ld_n;
  let c = e % pp.ld_n;
  if (c >= pp.k * pp.s) {
    patched[e] = 0.0;
    return;
  }
  let k = c / pp.s;
  let s = c % pp.s;
  if (pp.mode == 2u) {
    let row = abl[3u * k + 1u] * pp.group + r;
    let xr = abl[3u * k] * pp.group + r;
    patched[e] = cached[row * pp.ld_s + s] - bitcast<f32>(abl[3u * k + 2u]) * x_in[xr * pp.ld_s + s];
    return;
  }
  var v = cached[r * pp.ld_s + s];
  if (r / pp.group == abl[3u * k + 1u]) {
    if (pp.mode == 0u) {
      let xr = abl[3u * k] * pp.group + r % pp.group;
      v -= bitcast<f32>(abl[3u * k + 2u]) * x_in[xr * pp.ld_s + s];
    } else {
      v = 0.0;
    }
  }
  patched[e] = v;
}

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
  let r = e / np.ld_n;
  let c = e % np.ld_n;
  if (c >= np.k * np.s) {
    z_out[e] = 0.0;
    return;
  }
  let k = c / np.s;
  let s = c % np.s;
  let j = abl_n[3u * k + 1u];
  var acc = z_cached[r * np.ld_s + s];
  for (var q = 0u; q < np.q; q++) {
    let row = j * np.q + q;
    acc += w_next[row * np.rows + r] * (pooled[q * np.ld_n + c] - x_cached[row * np.ld_s + s]);
  }
  z_out[e] = acc;
}
