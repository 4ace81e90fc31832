// Sparse products of a CSR layer W (nIn x nOut, layout in src/sparse/csr.ts) with feature-major
// activations [features][ld] (ld = batch rounded up to 4; read and written as vec4 "quads").
// The activation library (shaders/activation_fns.wgsl) is prepended by the TypeScript side.
//
//   spmm    forward gather over CSR(Wᵀ): z[j] = sum_k vals[k] x[col_t[k]] + bias[j]; y = act(z)
//   spmm_t  backward gather over CSR(W): dx[i] = (sum_m vals[perm[m]] dy[col[m]]) * act'(zp[i])
//   sddmm   weight gradient at the nonzeros: dvals[k] = sum_b x[col_t[k]][b] dy[j][b], k in row j
//   pick    the same weight gradient picked from a dense product D = X·dYᵀ ([nIn][nOut], computed
//           by the dense matmul): dvals[k] = D[col_t[k]][j], k in row j (sparse.ts decides which)
//   spmm_t_wide  spmm_t with a whole-batch chunk per row (software adapters)
//   grad_t  spmm_t (no act') and sddmm in one pass over CSR(W): each dy row a nonzero gathers
//           feeds both dx[i] += w·dy[j] and dvals[perm[m]] = x[i]·dy[j], halving the gathers
//
// Padding columns (>= batch) of every activation written are zero; sddmm ignores the padding of
// its inputs. No atomics: every output element is owned by exactly one invocation.
// Design (measured on llvmpipe, /work/shared/notes/webgpu-on-cpu.md §5.2-5.3): loads dominate, so
// the gathers give each invocation VB quads of the batch for one row (VB FMAs per index/value
// load, row-uniform loop), and sddmm keeps a row's dy chunk in registers for all its nonzeros.
// Gather variants (override constants, named in sparse.ts SPMM_VARIANTS): an invocation's VB
// quads are WG apart ("interleaved": neighbouring invocations read neighbouring quads, the
// coalesced pattern for GPUs) or consecutive (CONTIG: each invocation reads one contiguous run
// of VB quads, one cache line at VB = 4, measured faster on llvmpipe).

struct Params {
  rows: u32, // output rows of this op: nOut (spmm, sddmm) or nIn (spmm_t)
  batch: u32,
  ld4: u32, // row stride in vec4
  blocks: u32, // spmm/spmm_t: batch blocks of WG * VB quads per row
  q0: u32, // sddmm: first quad of this dispatch
  q1: u32, // sddmm: end quad of this dispatch (<= ld4)
  accumulate: u32, // sddmm: 1 = the first chunk adds to dvals instead of overwriting
  act_param: f32, // the activation's scalar parameter
  len_lo: u32, // row kernels (spmm_wide, grad_t, wgrad_t): rows shorter than this are left to
  len_hi: u32, // another pass, and so are rows longer than this (the wrapper's row passes)
}

@group(0) @binding(0) var<uniform> p: Params;

// Resource names carry _in/_out suffixes: the binding checker (wgsl_reflect) counts any identifier
// equal to a module-scope variable as a use, and the activation library has locals named x, z, ...
// The operands the kernels gather from (col_t, vals, x_in, col, perm, dy_in, xw_in) are declared,
// with their loaders ld_*, by the prelude prepended on the TypeScript side: storage buffers
// (sparse_buffers_fns.wgsl) or textures (sparse_textures_fns.wgsl); this file only calls the loaders.
// spmm: 1 row_ptr_t, 2 col_t, 3 vals, 4 x_in, 5 bias, 6 y_out, 7 z_out
// spmm_t: 1 row_ptr, 2 col, 3 vals, 4 perm, 5 dy_in, 6 dx_out, 7 zp_in
// sddmm: 1 row_ptr_t, 2 col_t, 3 dvals, 4 x_in, 5 dy_in
// pick: 1 row_ptr_t, 2 col_t, 3 dvals, 4 dense_in
@group(0) @binding(1) var<storage, read> row_ptr_t: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> y_out: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> z_out: array<vec4<f32>>;

@group(0) @binding(1) var<storage, read> row_ptr: array<u32>;
@group(0) @binding(6) var<storage, read_write> dx_out: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> zp_in: array<vec4<f32>>;

@group(0) @binding(3) var<storage, read_write> dvals: array<f32>;
@group(0) @binding(4) var<storage, read> dense_in: array<f32>;

// grad_t: 1 row_ptr, 2 col, 3 vals, 4 perm, 5 dy_in, 6 dx_out, 7 xw_in, 8 dw_out, 9 row_order
@group(0) @binding(8) var<storage, read_write> dw_out: array<f32>;

// The row kernels' walk order (ORDERED; src/kernels/row_order.ts): slot s of the grid takes row
// order[s], rows sorted by length, so the lanes of a workgroup get rows of about the same length
// (a workgroup runs as long as its longest row). Named by binding, the one after each entry's
// others: spmm_wide (rows of Wᵀ) and spmm_t_wide (rows of W) at 8, grad_t and wgrad_t (rows of
// W) at 9. Mirrors, 4096 texels a row.
@group(0) @binding(8) var row_order8: texture_2d<u32>;
@group(0) @binding(9) var row_order9: texture_2d<u32>;
override ORDERED: bool = false;

override ACT: u32 = 0u; // activation id (activation_fns.wgsl)
override HAS_BIAS: bool = false; // spmm: add bias[j] (else `bias` is a placeholder)
override STORE_Z: bool = false; // spmm: also store the pre-activation (else `z` is a placeholder)
override HAS_ZP: bool = false; // spmm_t: multiply by act'(zp) (else `zp` is a placeholder)
override WG: u32 = 8u; // spmm/spmm_t: invocations along the batch per row
override VB: u32 = 4u; // spmm/spmm_t: quads per invocation, 1..8
override CONTIG: bool = false; // spmm/spmm_t: an invocation's quads are consecutive (else WG apart)
override RJ: u32 = 1u; // spmm/spmm_t: rows per workgroup
override SKIP_ZERO: bool = false; // spmm: skip stored zeros (weights masked to 0: the removal curves)
override SG: u32 = 8u; // sddmm, pick: invocations per row, striding over its nonzeros
override CH: u32 = 8u; // sddmm: quads of dy per chunk held in registers, 1..8
override RS: u32 = 1u; // sddmm: rows per workgroup
override GR: u32 = 8u; // grad_t: rows (invocations) per workgroup
override CHT: u32 = 8u; // grad_t, spmm_wide, wgrad_t: quads per chunk, 1..MAX_CH (a constant
// bound: the same kernels with the chunk in the uniform block ran 1.3-1.9x slower on llvmpipe)
override MASK_DY: bool = true; // grad_t, wgrad_t: mask dy's padding lanes (off: the batch has none)
override PAD: bool = true; // row kernels: zero the outputs' padding lanes (off: the batch has none)
const MAX_CH: u32 = 32u;

// Row kernels (spmm_wide, spmm_t_wide, grad_t, wgrad_t): one invocation per row, GR per workgroup.
// A row's span [s, e) in its pointer array, and whether it belongs to this dispatch's pass (the
// wrapper runs the short rows with a whole-batch chunk and the rare long ones with a chunk that
// fits the loop bound: sparse.ts rowPasses).
struct RowSpan {
  row: u32,
  s: u32,
  e: u32,
  ok: bool,
}

fn row_slot(lid: vec3u, wid: vec3u, nwg: vec3u) -> u32 {
  return (wid.x + wid.y * nwg.x) * GR + lid.x;
}

fn in_pass(r: u32, s: u32, e: u32) -> RowSpan {
  return RowSpan(r, s, e, e - s >= p.len_lo && e - s <= p.len_hi);
}

// The row a slot takes: itself, or (ORDERED) its entry in the row order at binding 8 or 9.
fn ordered8(slot: u32) -> u32 {
  if (ORDERED) { return textureLoad(row_order8, vec2u(slot & 4095u, slot >> 12u), 0).x; }
  return slot;
}

fn ordered9(slot: u32) -> u32 {
  if (ORDERED) { return textureLoad(row_order9, vec2u(slot & 4095u, slot >> 12u), 0).x; }
  return slot;
}

// Spans of a row of CSR(Wᵀ) (spmm_wide) and of CSR(W) (the others).
fn span_t(r: u32) -> RowSpan {
  return in_pass(r, row_ptr_t[r], row_ptr_t[r + 1u]);
}

fn span_w(r: u32) -> RowSpan {
  return in_pass(r, row_ptr[r], row_ptr[r + 1u]);
}

fn live(q: u32) -> vec4<bool> {
  return (vec4u(q * 4u) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.batch);
}

fn act4(v: vec4f) -> vec4f {
  let a = p.act_param;
  return vec4f(
    act_forward(ACT, v[0], a),
    act_forward(ACT, v[1], a),
    act_forward(ACT, v[2], a),
    act_forward(ACT, v[3], a),
  );
}

fn dact4(v: vec4f) -> vec4f {
  let a = p.act_param;
  return vec4f(
    act_derivative(ACT, v[0], a),
    act_derivative(ACT, v[1], a),
    act_derivative(ACT, v[2], a),
    act_derivative(ACT, v[3], a),
  );
}

// Row and first quad of this invocation in the gathers: the flat workgroup index enumerates
// (row block, batch block) pairs; workgroup (WG, RJ), lane x along the batch, lane y along rows.
// The invocation's quads are q, q + qs(), ..., q + (VB - 1)·qs().
struct Slot {
  row: u32,
  q: u32,
  ok: bool,
}

// Quad stride within an invocation (a function: module constants cannot depend on overrides).
fn qs() -> u32 {
  return select(WG, 1u, CONTIG);
}

fn gather_slot(lid: vec3u, wid: vec3u, nwg: vec3u) -> Slot {
  let w = wid.x + wid.y * nwg.x;
  let row = (w / p.blocks) * RJ + lid.y;
  let q = (w % p.blocks) * (WG * VB) + lid.x * select(1u, VB, CONTIG);
  return Slot(row, q, row < p.rows && q < p.ld4);
}

fn spmm_store(j: u32, q: u32, acc: vec4f, b: f32) {
  if (q >= p.ld4) { return; }
  let o = j * p.ld4 + q;
  let m = live(q);
  let pre = acc + vec4f(b);
  y_out[o] = select(vec4f(0.0), act4(pre), m);
  if (STORE_Z) { z_out[o] = select(vec4f(0.0), pre, m); }
}

// Loop bound: row_ptr_t[j + 1] - row_ptr_t[j] <= nIn iterations per invocation (wrapper-checked).
@compute @workgroup_size(WG, RJ)
fn spmm(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let s = gather_slot(lid, wid, nwg);
  if (!s.ok) { return; }
  let j = s.row;
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  var a2 = vec4f(0.0);
  var a3 = vec4f(0.0);
  var a4 = vec4f(0.0);
  var a5 = vec4f(0.0);
  var a6 = vec4f(0.0);
  var a7 = vec4f(0.0);
  let QS = qs();
  let e = row_ptr_t[j + 1u];
  for (var k = row_ptr_t[j]; k < e; k++) {
    let w = vec4f(ld_vals(k));
    // Row-uniform branch: a stored zero (a masked weight) skips its VB per-lane x loads; adding
    // 0·x would change nothing for finite x.
    if (SKIP_ZERO && w.x == 0.0) { continue; }
    // Quads >= ld4 read the next row (or are clamped by robust access); never stored.
    let r = ld_col_t(k);
    a0 = fma(w, ld_x(r, s.q), a0);
    if (VB > 1u) { a1 = fma(w, ld_x(r, s.q + QS), a1); }
    if (VB > 2u) { a2 = fma(w, ld_x(r, s.q + 2u * QS), a2); }
    if (VB > 3u) { a3 = fma(w, ld_x(r, s.q + 3u * QS), a3); }
    if (VB > 4u) { a4 = fma(w, ld_x(r, s.q + 4u * QS), a4); }
    if (VB > 5u) { a5 = fma(w, ld_x(r, s.q + 5u * QS), a5); }
    if (VB > 6u) { a6 = fma(w, ld_x(r, s.q + 6u * QS), a6); }
    if (VB > 7u) { a7 = fma(w, ld_x(r, s.q + 7u * QS), a7); }
  }
  var b = 0.0;
  if (HAS_BIAS) { b = bias[j]; }
  spmm_store(j, s.q, a0, b);
  if (VB > 1u) { spmm_store(j, s.q + QS, a1, b); }
  if (VB > 2u) { spmm_store(j, s.q + 2u * QS, a2, b); }
  if (VB > 3u) { spmm_store(j, s.q + 3u * QS, a3, b); }
  if (VB > 4u) { spmm_store(j, s.q + 4u * QS, a4, b); }
  if (VB > 5u) { spmm_store(j, s.q + 5u * QS, a5, b); }
  if (VB > 6u) { spmm_store(j, s.q + 6u * QS, a6, b); }
  if (VB > 7u) { spmm_store(j, s.q + 7u * QS, a7, b); }
}

fn spmm_t_store(i: u32, q: u32, acc: vec4f) {
  if (q >= p.ld4) { return; }
  let o = i * p.ld4 + q;
  var g = acc;
  if (HAS_ZP) { g *= dact4(zp_in[o]); }
  dx_out[o] = select(vec4f(0.0), g, live(q));
}

// Loop bound: row_ptr[i + 1] - row_ptr[i] <= nOut iterations per invocation (wrapper-checked).
@compute @workgroup_size(WG, RJ)
fn spmm_t(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let s = gather_slot(lid, wid, nwg);
  if (!s.ok) { return; }
  let i = s.row;
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  var a2 = vec4f(0.0);
  var a3 = vec4f(0.0);
  var a4 = vec4f(0.0);
  var a5 = vec4f(0.0);
  var a6 = vec4f(0.0);
  var a7 = vec4f(0.0);
  let QS = qs();
  let e = row_ptr[i + 1u];
  for (var m = row_ptr[i]; m < e; m++) {
    let w = vec4f(ld_vals(ld_perm(m)));
    let r = ld_col(m);
    a0 = fma(w, ld_dy(r, s.q), a0);
    if (VB > 1u) { a1 = fma(w, ld_dy(r, s.q + QS), a1); }
    if (VB > 2u) { a2 = fma(w, ld_dy(r, s.q + 2u * QS), a2); }
    if (VB > 3u) { a3 = fma(w, ld_dy(r, s.q + 3u * QS), a3); }
    if (VB > 4u) { a4 = fma(w, ld_dy(r, s.q + 4u * QS), a4); }
    if (VB > 5u) { a5 = fma(w, ld_dy(r, s.q + 5u * QS), a5); }
    if (VB > 6u) { a6 = fma(w, ld_dy(r, s.q + 6u * QS), a6); }
    if (VB > 7u) { a7 = fma(w, ld_dy(r, s.q + 7u * QS), a7); }
  }
  spmm_t_store(i, s.q, a0);
  if (VB > 1u) { spmm_t_store(i, s.q + QS, a1); }
  if (VB > 2u) { spmm_t_store(i, s.q + 2u * QS, a2); }
  if (VB > 3u) { spmm_t_store(i, s.q + 3u * QS, a3); }
  if (VB > 4u) { spmm_t_store(i, s.q + 4u * QS, a4); }
  if (VB > 5u) { spmm_t_store(i, s.q + 5u * QS, a5); }
  if (VB > 6u) { spmm_t_store(i, s.q + 6u * QS, a6); }
  if (VB > 7u) { spmm_t_store(i, s.q + 7u * QS, a7); }
}

// Quad q of a sddmm chunk is live when it lies in [.., q1) and only for lanes < batch.
fn chunk_mask(q: u32) -> vec4<bool> {
  return live(q) & vec4<bool>(q < p.q1);
}

fn dy_quad(j: u32, q: u32, m: vec4<bool>) -> vec4f {
  return select(vec4f(0.0), ld_dy(j, min(q, p.ld4 - 1u)), m);
}

// Workgroup per RS output rows j (flat index over a possibly 2-D grid), SG invocations per row
// striding over the row's nonzeros. The batch range [q0, q1) is walked in chunks of CH quads; each
// chunk of dy_in[j] is loaded once into registers and reused for every nonzero of the row, and the
// partial dot products accumulate in dvals (owned by one invocation: no races). Fewer invocations
// per row (SG) load each dy chunk fewer times; RS rows keep the workgroup a full SIMD group.
// Loop bound per invocation: ceil((q1 - q0) / CH) * (ceil(rowlen / SG) + 1) with rowlen <= nIn;
// the wrapper splits the batch into several dispatches to keep it under llvmpipe's cap.
@compute @workgroup_size(SG, RS)
fn sddmm(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let j = (wid.x + wid.y * nwg.x) * RS + lid.y;
  if (j >= p.rows) { return; }
  let s = row_ptr_t[j];
  let e = row_ptr_t[j + 1u];
  for (var c = p.q0; c < p.q1; c += CH) {
    let m0 = chunk_mask(c);
    let d0 = dy_quad(j, c, m0);
    var m1 = vec4<bool>(false);
    var m2 = vec4<bool>(false);
    var m3 = vec4<bool>(false);
    var m4 = vec4<bool>(false);
    var m5 = vec4<bool>(false);
    var m6 = vec4<bool>(false);
    var m7 = vec4<bool>(false);
    var d1 = vec4f(0.0);
    var d2 = vec4f(0.0);
    var d3 = vec4f(0.0);
    var d4 = vec4f(0.0);
    var d5 = vec4f(0.0);
    var d6 = vec4f(0.0);
    var d7 = vec4f(0.0);
    if (CH > 1u) { m1 = chunk_mask(c + 1u); d1 = dy_quad(j, c + 1u, m1); }
    if (CH > 2u) { m2 = chunk_mask(c + 2u); d2 = dy_quad(j, c + 2u, m2); }
    if (CH > 3u) { m3 = chunk_mask(c + 3u); d3 = dy_quad(j, c + 3u, m3); }
    if (CH > 4u) { m4 = chunk_mask(c + 4u); d4 = dy_quad(j, c + 4u, m4); }
    if (CH > 5u) { m5 = chunk_mask(c + 5u); d5 = dy_quad(j, c + 5u, m5); }
    if (CH > 6u) { m6 = chunk_mask(c + 6u); d6 = dy_quad(j, c + 6u, m6); }
    if (CH > 7u) { m7 = chunk_mask(c + 7u); d7 = dy_quad(j, c + 7u, m7); }
    let overwrite = c == p.q0 && p.accumulate == 0u;
    for (var k = s + lid.x; k < e; k += SG) {
      let r = ld_col_t(k);
      // x is masked too: its padding lanes are not guaranteed finite, and quads past the
      // chunk read the next row (or are clamped by robust buffer access).
      var acc = select(vec4f(0.0), ld_x(r, c), m0) * d0;
      if (CH > 1u) { acc = fma(select(vec4f(0.0), ld_x(r, c + 1u), m1), d1, acc); }
      if (CH > 2u) { acc = fma(select(vec4f(0.0), ld_x(r, c + 2u), m2), d2, acc); }
      if (CH > 3u) { acc = fma(select(vec4f(0.0), ld_x(r, c + 3u), m3), d3, acc); }
      if (CH > 4u) { acc = fma(select(vec4f(0.0), ld_x(r, c + 4u), m4), d4, acc); }
      if (CH > 5u) { acc = fma(select(vec4f(0.0), ld_x(r, c + 5u), m5), d5, acc); }
      if (CH > 6u) { acc = fma(select(vec4f(0.0), ld_x(r, c + 6u), m6), d6, acc); }
      if (CH > 7u) { acc = fma(select(vec4f(0.0), ld_x(r, c + 7u), m7), d7, acc); }
      let part = (acc.x + acc.y) + (acc.z + acc.w);
      if (overwrite) { dvals[k] = part; } else { dvals[k] = dvals[k] + part; }
    }
  }
}

// Weight gradient picked from the dense product D[nIn][nOut] = X·dYᵀ: workgroup per output row j
// (flat index), SG invocations striding over its nonzeros. p.rows = nOut = D's row stride.
// Loop bound per invocation: ceil(rowlen / SG) <= ceil(nIn / SG) (wrapper-checked).
@compute @workgroup_size(SG)
fn pick(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let j = wid.x + wid.y * nwg.x;
  if (j >= p.rows) { return; }
  let e = row_ptr_t[j + 1u];
  for (var k = row_ptr_t[j] + lid.x; k < e; k += SG) {
    let g = dense_in[ld_col_t(k) * p.rows + j];
    if (p.accumulate == 0u) { dvals[k] = g; } else { dvals[k] = dvals[k] + g; }
  }
}

// The two backward products of a layer in one pass over CSR(W): invocation = input row i (GR per
// workgroup, lanes on different rows). The batch range [q0, q1) is walked in chunks of CHT quads;
// per chunk x[i] is held in a private array and every nonzero m = (i, j) of the row loads its
// dy[j] chunk once and uses it twice: dx[i] += w·dy[j] (stored per chunk, no act') and the partial
// dot x[i]·dy[j], written to dw_out[perm[m]] (owned by this invocation: no races; the first chunk
// overwrites unless p.accumulate). Padding lanes of x and dy are masked; dx's are written as 0.
// A chunk of the whole batch (CHT 32 at batch 128) loads each nonzero's index and value once and
// never reads dw_out back. Loop bound per invocation: ceil((q1 - q0) / CHT) * (rowlen + 2) *
// (CHT + 1) with rowlen <= min(nOut, len_hi) (the quad loops counted as not unrolled); the wrapper
// splits the batch into several dispatches, or the rows into passes by length, to keep it under
// llvmpipe's cap.
@compute @workgroup_size(GR)
fn grad_t(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let slot = row_slot(lid, wid, nwg);
  if (slot >= p.rows) { return; }
  let span = span_w(ordered9(slot));
  if (!span.ok) { return; }
  let i = span.row;
  let s = span.s;
  let e = span.e;
  let xr = i * p.ld4;
  var xq: array<vec4f, MAX_CH>;
  var aq: array<vec4f, MAX_CH>;
  for (var c = p.q0; c < p.q1; c += CHT) {
    for (var u = 0u; u < CHT; u++) {
      xq[u] = select(vec4f(0.0), ld_xw(i, min(c + u, p.ld4 - 1u)), chunk_mask(c + u));
      aq[u] = vec4f(0.0);
    }
    let overwrite = c == p.q0 && p.accumulate == 0u;
    for (var m = s; m < e; m++) {
      let k = ld_perm(m);
      let w = vec4f(ld_vals(k));
      let j = ld_col(m);
      var acc = vec4f(0.0);
      for (var u = 0u; u < CHT; u++) {
        var d = ld_dy(j, min(c + u, p.ld4 - 1u));
        if (MASK_DY) { d = select(vec4f(0.0), d, chunk_mask(c + u)); }
        aq[u] = fma(w, d, aq[u]);
        acc = fma(xq[u], d, acc);
      }
      let part = (acc.x + acc.y) + (acc.z + acc.w);
      if (overwrite) { dw_out[k] = part; } else { dw_out[k] = dw_out[k] + part; }
    }
    for (var u = 0u; u < CHT; u++) { grad_t_store(xr, c + u, aq[u]); }
  }
}

// dx quad q of row base xr (chunk quads past q1 belong to the next dispatch: not written).
fn grad_t_store(xr: u32, q: u32, acc: vec4f) {
  if (q >= p.q1) { return; }
  dx_out[xr + q] = padded(acc, q);
}

// The row kernels' output quad q with its padding lanes zeroed where the batch has some (PAD).
fn padded(v: vec4f, q: u32) -> vec4f {
  if (PAD) { return select(vec4f(0.0), v, live(q)); }
  return v;
}

// spmm with a chunk of CHT quads of the batch per invocation ("wide" gather): invocation = output
// row j (GR per workgroup, lanes on different rows); the chunk's accumulators live in a private
// array, so each nonzero's column and value are loaded once per CHT quads (the lane-per-quad
// gathers load them once per VB quads). Quads [q0, q1) in chunks. Loop bound per invocation:
// ceil((q1 - q0) / CHT) * (rowlen + 2) * (CHT + 1), rowlen <= min(nIn, len_hi) (the wrapper
// splits the batch, or the rows into passes by length).
@compute @workgroup_size(GR)
fn spmm_wide(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let slot = row_slot(lid, wid, nwg);
  if (slot >= p.rows) { return; }
  let span = span_t(ordered8(slot));
  if (!span.ok) { return; }
  let j = span.row;
  let s = span.s;
  let e = span.e;
  var b = 0.0;
  if (HAS_BIAS) { b = bias[j]; }
  var aq: array<vec4f, MAX_CH>;
  for (var c = p.q0; c < p.q1; c += CHT) {
    for (var u = 0u; u < CHT; u++) { aq[u] = vec4f(0.0); }
    for (var k = s; k < e; k++) {
      let w = vec4f(ld_vals(k));
      if (SKIP_ZERO && w.x == 0.0) { continue; }
      let r = ld_col_t(k);
      // Quads >= ld4 read the next row (or are clamped by robust access); never stored.
      for (var u = 0u; u < CHT; u++) { aq[u] = fma(w, ld_x(r, c + u), aq[u]); }
    }
    for (var u = 0u; u < CHT; u++) {
      if (c + u < p.q1) { wide_store(j * p.ld4 + c + u, c + u, aq[u], b); }
    }
  }
}

// spmm_wide's store of quad q at o (q < q1 <= ld4): bias, activation, and the padding lanes set
// to 0 only where the batch has some (PAD).
fn wide_store(o: u32, q: u32, acc: vec4f, b: f32) {
  let pre = acc + vec4f(b);
  y_out[o] = padded(act4(pre), q);
  if (STORE_Z) { z_out[o] = padded(pre, q); }
}

// spmmT with a chunk of CHT quads of the batch per invocation, as spmm_wide: invocation = input
// row i of CSR(W) (GR per workgroup); per nonzero m its value vals[perm[m]] and dy row col[m] are
// loaded once per chunk; dx[i] = sum * act'(z[i]) where HAS_ZP (z, the pre-activation of the
// layer below, is bound at 7 as xw_in: a mirror where the operands are textures). grad_t's walk
// without the weight gradient. Loop bound as spmm_wide with rowlen <= min(nOut, len_hi).
@compute @workgroup_size(GR)
fn spmm_t_wide(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let slot = row_slot(lid, wid, nwg);
  if (slot >= p.rows) { return; }
  let span = span_w(ordered8(slot));
  if (!span.ok) { return; }
  let i = span.row;
  let s = span.s;
  let e = span.e;
  var aq: array<vec4f, MAX_CH>;
  for (var c = p.q0; c < p.q1; c += CHT) {
    for (var u = 0u; u < CHT; u++) { aq[u] = vec4f(0.0); }
    for (var m = s; m < e; m++) {
      let w = vec4f(ld_vals(ld_perm(m)));
      let j = ld_col(m);
      // Quads >= ld4 read the next row (or are clamped by robust access); never stored.
      for (var u = 0u; u < CHT; u++) { aq[u] = fma(w, ld_dy(j, c + u), aq[u]); }
    }
    for (var u = 0u; u < CHT; u++) {
      let q = c + u;
      if (q < p.q1) {
        var g = aq[u];
        if (HAS_ZP) { g *= dact4(ld_xw(i, q)); }
        dx_out[i * p.ld4 + q] = padded(g, q);
      }
    }
  }
}

// The weight gradient alone in grad_t's layout (sddmm over CSR(W) rows): invocation = input row
// i (GR per workgroup); per chunk x[i] is held in a private array and every nonzero m = (i, j)
// loads its dy[j] chunk once: dw_out[perm[m]] (+)= x[i]·dy[j]. With whole-batch chunks each
// nonzero's index is loaded once and dw_out is never read back. x is masked (padding lanes and
// quads past q1 are zero), dy only where its lanes may be padding (MASK_DY). Loop bound as grad_t.
@compute @workgroup_size(GR)
fn wgrad_t(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let slot = row_slot(lid, wid, nwg);
  if (slot >= p.rows) { return; }
  let span = span_w(ordered9(slot));
  if (!span.ok) { return; }
  let i = span.row;
  let s = span.s;
  let e = span.e;
  var xq: array<vec4f, MAX_CH>;
  for (var c = p.q0; c < p.q1; c += CHT) {
    for (var u = 0u; u < CHT; u++) {
      xq[u] = select(vec4f(0.0), ld_xw(i, min(c + u, p.ld4 - 1u)), chunk_mask(c + u));
    }
    let overwrite = c == p.q0 && p.accumulate == 0u;
    for (var m = s; m < e; m++) {
      let k = ld_perm(m);
      let j = ld_col(m);
      var acc = vec4f(0.0);
      for (var u = 0u; u < CHT; u++) {
        var d = ld_dy(j, min(c + u, p.ld4 - 1u));
        if (MASK_DY) { d = select(vec4f(0.0), d, chunk_mask(c + u)); }
        acc = fma(xq[u], d, acc);
      }
      let part = (acc.x + acc.y) + (acc.z + acc.w);
      if (overwrite) { dw_out[k] = part; } else { dw_out[k] = dw_out[k] + part; }
    }
  }
}

