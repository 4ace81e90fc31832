// LSTM cell kernels on feature-major activations. Prepended with shaders/activation_fns.wgsl
// (act_sigmoid, act_tanh: stable for any finite input).
//
// Layouts (ld4 = roundUp4(batch) / 4 quads per row, S = steps):
//   step tensors  [rows][ld4] quads            (one time step: h, zh, dz, dh, dc)
//   "all" tensors [rows][S * ld4] quads        (every time step side by side: time step t is the
//                                               column block t*ld4 .. t*ld4 + ld4 - 1)
// Gate rows inside a 4H block: i = [0, H), f = [H, 2H), g = [2H, 3H), o = [3H, 4H).
//   i, f, o = sigmoid, g = tanh;  c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)
// Padding columns (sample >= batch) of every output are written as zero; padding inputs are
// ignored (masked), so NaN there cannot leak.
//
// No loops: every invocation handles one vec4 of samples of one row (unit), so nothing here grows
// with the problem size (llvmpipe's 65,535-iteration cap does not apply).

struct Params {
  hidden: u32, // H (lstm_fwd, lstm_bwd)
  batch: u32,
  ld4: u32, // quads per step row
  steps: u32, // S
  t: u32, // the time step (lstm_fwd, lstm_bwd)
  feats: u32, // input features per step (lstm_seq)
  _p0: u32,
  _p1: u32,
}

override WG: u32 = 64u;

fn lstm_live(q: u32) -> vec4<bool> {
  return (vec4u(q * 4u) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.batch);
}

@group(0) @binding(0) var<uniform> p: Params;

// ---------------------------------------------------------------- lstm_seq
// Input re-layout: x [S * F][ld4] (row t*F + f = feature f of step t) -> xs [F][S * ld4], so
// one SpMM of the input weights covers every time step (batch S * ld).

@group(0) @binding(1) var<storage, read> x_in: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> xs_out: array<vec4f>;

@compute @workgroup_size(WG)
fn lstm_seq(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + li;
  let sq = p.steps * p.ld4;
  if (i >= p.feats * sq) { return; }
  let f = i / sq;
  let r = i % sq;
  let t = r / p.ld4;
  let q = r % p.ld4;
  xs_out[i] = select(vec4f(0.0), x_in[(t * p.feats + f) * p.ld4 + q], lstm_live(q));
}

// ---------------------------------------------------------------- lstm_seq_t
// The inverse re-layout, for the input gradient: dxs [F][S * ld4] -> dx [S * F][ld4].

@group(0) @binding(1) var<storage, read> dxs_in: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dx_out: array<vec4f>;

@compute @workgroup_size(WG)
fn lstm_seq_t(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + li;
  if (i >= p.steps * p.feats * p.ld4) { return; }
  let row = i / p.ld4;
  let q = i % p.ld4;
  let t = row / p.feats;
  let f = row % p.feats;
  dx_out[i] = select(vec4f(0.0), dxs_in[f * p.steps * p.ld4 + t * p.ld4 + q], lstm_live(q));
}

// ---------------------------------------------------------------- lstm_fwd
// Step t: gate pre-activations zx (input part + bias, all steps) + zh (recurrent part, this step;
// not read at t = 0 where h_{-1} = 0), previous cell state from c_all block t-1 (0 at t = 0).
// Writes c_all block t, the activated gates (block t), h_t to h_out and, when t + 1 < S, to
// block t+1 of hs_out (the recurrent input of step t+1, for the weight gradient); step 0 also
// zeroes block 0 (h_{-1}).

@group(0) @binding(1) var<storage, read> zx_in: array<vec4f>;
@group(0) @binding(2) var<storage, read> zh_in: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> c_all: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> gates_out: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> h_out: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> hs_out: array<vec4f>;

@compute @workgroup_size(WG)
fn lstm_fwd(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + li;
  let H = p.hidden;
  if (i >= H * p.ld4) { return; }
  let j = i / p.ld4;
  let q = i % p.ld4;
  let sq = p.steps * p.ld4;
  let col = p.t * p.ld4 + q;
  let live = lstm_live(q);
  var zi = zx_in[j * sq + col];
  var zf = zx_in[(H + j) * sq + col];
  var zg = zx_in[(2u * H + j) * sq + col];
  var zo = zx_in[(3u * H + j) * sq + col];
  var cp = vec4f(0.0);
  if (p.t > 0u) {
    zi += zh_in[j * p.ld4 + q];
    zf += zh_in[(H + j) * p.ld4 + q];
    zg += zh_in[(2u * H + j) * p.ld4 + q];
    zo += zh_in[(3u * H + j) * p.ld4 + q];
    cp = select(vec4f(0.0), c_all[j * sq + col - p.ld4], live);
  }
  let ig = act_sigmoid4(zi);
  let fg = act_sigmoid4(zf);
  let gg = act_tanh4(zg);
  let og = act_sigmoid4(zo);
  let c = fg * cp + ig * gg;
  let h = select(vec4f(0.0), og * act_tanh4(c), live);
  c_all[j * sq + col] = select(vec4f(0.0), c, live);
  gates_out[j * sq + col] = select(vec4f(0.0), ig, live);
  gates_out[(H + j) * sq + col] = select(vec4f(0.0), fg, live);
  gates_out[(2u * H + j) * sq + col] = select(vec4f(0.0), gg, live);
  gates_out[(3u * H + j) * sq + col] = select(vec4f(0.0), og, live);
  h_out[j * p.ld4 + q] = h;
  if (p.t + 1u < p.steps) {
    hs_out[j * sq + col + p.ld4] = h;
  }
  if (p.t == 0u) {
    hs_out[j * sq + q] = vec4f(0.0); // block 0 = h_{-1} = 0
  }
}

// ---------------------------------------------------------------- lstm_bwd
// Step t of backpropagation through time. dh_t = dh_in (the loss gradient of h_{S-1}) at the last
// step, else dhr_in (W_h · dz_{t+1}, from spmmT); dc carried in dc_io (not read at the last step,
// overwritten with dc_t · f_t, the gradient reaching c_{t-1}). Writes the gate pre-activation
// gradient dz_t to dz_out (for spmmT) and to block t of dzs_out (for the weight gradients).
//   dc = dc_next + dh · o · (1 - tanh(c)^2)
//   dz_i = dc · g · i(1-i),  dz_f = dc · c_{t-1} · f(1-f),  dz_g = dc · i · (1-g^2),
//   dz_o = dh · tanh(c) · o(1-o)

@group(0) @binding(1) var<storage, read> gates_in: array<vec4f>;
@group(0) @binding(2) var<storage, read> c_in: array<vec4f>;
@group(0) @binding(3) var<storage, read> dh_in: array<vec4f>;
@group(0) @binding(4) var<storage, read> dhr_in: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> dc_io: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> dz_out: array<vec4f>;
@group(0) @binding(7) var<storage, read_write> dzs_out: array<vec4f>;

@compute @workgroup_size(WG)
fn lstm_bwd(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + li;
  let H = p.hidden;
  if (i >= H * p.ld4) { return; }
  let j = i / p.ld4;
  let q = i % p.ld4;
  let sq = p.steps * p.ld4;
  let col = p.t * p.ld4 + q;
  let live = lstm_live(q);
  let s = j * p.ld4 + q;
  let ig = gates_in[j * sq + col];
  let fg = gates_in[(H + j) * sq + col];
  let gg = gates_in[(2u * H + j) * sq + col];
  let og = gates_in[(3u * H + j) * sq + col];
  let c = c_in[j * sq + col];
  var cp = vec4f(0.0);
  if (p.t > 0u) { cp = c_in[j * sq + col - p.ld4]; }
  var dh: vec4f;
  var dcn = vec4f(0.0);
  if (p.t + 1u == p.steps) {
    dh = dh_in[s];
  } else {
    dh = dhr_in[s];
    dcn = dc_io[s];
  }
  dh = select(vec4f(0.0), dh, live);
  dcn = select(vec4f(0.0), dcn, live);
  let tc = act_tanh4(c);
  let dc = dcn + dh * og * (1.0 - tc * tc);
  let dzi = select(vec4f(0.0), dc * gg * ig * (1.0 - ig), live);
  let dzf = select(vec4f(0.0), dc * cp * fg * (1.0 - fg), live);
  let dzg = select(vec4f(0.0), dc * ig * (1.0 - gg * gg), live);
  let dzo = select(vec4f(0.0), dh * tc * og * (1.0 - og), live);
  dc_io[s] = select(vec4f(0.0), dc * fg, live);
  dz_out[s] = dzi;
  dz_out[(H + j) * p.ld4 + q] = dzf;
  dz_out[(2u * H + j) * p.ld4 + q] = dzg;
  dz_out[(3u * H + j) * p.ld4 + q] = dzo;
  dzs_out[j * sq + col] = dzi;
  dzs_out[(H + j) * sq + col] = dzf;
  dzs_out[(2u * H + j) * sq + col] = dzg;
  dzs_out[(3u * H + j) * sq + col] = dzo;
}
