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
  mode: u32,    // 0: rank-1 over a row group (rows j*G..j*G+G-1 -= w * x[i*G + r%G]); 1: zero it
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
