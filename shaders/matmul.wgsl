// Dense matrix multiply, row-major with explicit leading dimensions:
//   C[m][n] (= or +=) op(A) · op(B),  op(A) is [m][k], op(B) is [k][n].
//   A is [m][lda] (TRANS_A false) or [k][lda] holding Aᵀ (TRANS_A true); likewise B with ldb.
//
// Register blocking: one invocation owns RM rows x CV vec4 columns of C (default 16 x 8 floats)
// and keeps them in registers for the whole K loop; no workgroup memory (on llvmpipe every
// storage/shared access is a per-lane scalar loop, so FMAs per loaded element are what counts).
// Per 4-step slab of K an invocation loads RM + 4*CV vec4s and does 16*RM*CV scalar FMAs.
//
// Edges: rows >= m and columns >= n are computed from clamped (valid) indices and never stored,
// K is processed in full slabs of 4 plus a scalar tail of k % 4 single steps, so no value outside
// op(A)[0..m)[0..k) / op(B)[0..k)[0..n) is ever multiplied into a stored result.
//
// Vector loads: VEC_A / VEC_B read the operand as vec4 (requires its leading dimension to be a
// multiple of 4, checked by the wrapper); otherwise the same blocking with scalar loads. C is
// written as vec4 (entry `matmul`, ldc % 4 == 0; a partial last chunk is a read-modify-write of
// the invocation's own vec4) or as scalars (entry `matmul_c1`, any ldc).

struct Params {
  m: u32,
  n: u32,
  k: u32,
  lda: u32,
  ldb: u32,
  ldc: u32,
  accumulate: u32, // 1: C += op(A)·op(B)
  col_groups: u32, // workgroups along n
  groups: u32, // col_groups * row groups (flat workgroup count)
  bias_cols: u32, // BIAS: columns that get bias[row]; the others are written as 0
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> a4: array<vec4<f32>>; // same buffer as a
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> b4: array<vec4<f32>>; // same buffer as b
@group(0) @binding(5) var<storage, read_write> c4: array<vec4<f32>>; // entry matmul
@group(0) @binding(5) var<storage, read_write> c: array<f32>; // entry matmul_c1
// Entry matmul with BIAS: C[i][j] = op(A)·op(B)[i][j] + bias[i] for j < bias_cols, 0 for the
// other columns (a layer's forward z = Wᵀx + b, padding columns zero, in one pass).
@group(0) @binding(6) var<storage, read> bias: array<f32>;
override BIAS: bool = false;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override VEC_A: bool = true;
override VEC_B: bool = true;
// Rows per invocation (multiple of 4, <= MAX_RM) and vec4 columns per invocation (<= MAX_CV).
override RM: u32 = 16u;
override CV: u32 = 2u;
// Workgroup shape: WG_X invocations along n, WG_Y along m.
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

const MAX_RM: u32 = 16u;
const MAX_CV: u32 = 4u;

// Register arrays, indexed only with constants: every helper below is called with literal
// row/column arguments and guarded by the RM / CV overrides, so after inlining and constant
// folding the arrays become registers (no loops with constant trip counts: the shader compiler
// does not reliably unroll them, and a non-unrolled loop would count against llvmpipe's cap).
var<private> acc: array<vec4<f32>, 64>; // acc[r * MAX_CV + cv] = C[m0 + r][n0 + 4cv .. +3]
var<private> av: array<vec4<f32>, 16>; // av[r][j] = op(A)[m0 + r][k0 + j]
var<private> bv: array<vec4<f32>, 16>; // bv[j * MAX_CV + cv] = op(B)[k0 + j][n0 + 4cv .. +3]

fn elem_a(i: u32, kk: u32) -> f32 {
  if (TRANS_A) {
    return a[kk * p.lda + i];
  }
  return a[i * p.lda + kk];
}

fn elem_b(kk: u32, jj: u32) -> f32 {
  if (TRANS_B) {
    return b[jj * p.ldb + kk];
  }
  return b[kk * p.ldb + jj];
}

// ---- op(A)[m0 .. m0+RM)[k0 .. k0+4) into av (rows clamped to m - 1).

// A not transposed: row r of the block, 4 consecutive K values.
fn a_row(r: u32, m0: u32, k0: u32) {
  if (r >= RM) {
    return;
  }
  let o = min(m0 + r, p.m - 1u) * p.lda + k0;
  if (VEC_A) {
    av[r] = a4[o / 4u];
  } else {
    av[r] = vec4f(a[o], a[o + 1u], a[o + 2u], a[o + 3u]);
  }
}

// Aᵀ row starting at `row`: op(A) rows i .. i+3 (i a multiple of 4), clamped to `last`.
fn a_vec_m(row: u32, i: u32, last: u32) -> vec4f {
  if (VEC_A) {
    return a4[(row + min(i, last & ~3u)) / 4u];
  }
  return vec4f(a[row + min(i, last)], a[row + min(i + 1u, last)], a[row + min(i + 2u, last)],
               a[row + min(i + 3u, last)]);
}

// A holds Aᵀ [k][lda]: rows 4q .. 4q+3 of the block are contiguous along m; transpose in registers.
fn a_quad(q: u32, m0: u32, k0: u32) {
  if (4u * q >= RM) {
    return;
  }
  let last = p.m - 1u;
  let i = m0 + 4u * q;
  let v0 = a_vec_m(k0 * p.lda, i, last);
  let v1 = a_vec_m((k0 + 1u) * p.lda, i, last);
  let v2 = a_vec_m((k0 + 2u) * p.lda, i, last);
  let v3 = a_vec_m((k0 + 3u) * p.lda, i, last);
  av[4u * q] = vec4f(v0.x, v1.x, v2.x, v3.x);
  av[4u * q + 1u] = vec4f(v0.y, v1.y, v2.y, v3.y);
  av[4u * q + 2u] = vec4f(v0.z, v1.z, v2.z, v3.z);
  av[4u * q + 3u] = vec4f(v0.w, v1.w, v2.w, v3.w);
}

fn load_a_slab(m0: u32, k0: u32) {
  if (TRANS_A) {
    a_quad(0u, m0, k0);
    a_quad(1u, m0, k0);
    a_quad(2u, m0, k0);
    a_quad(3u, m0, k0);
  } else {
    a_row(0u, m0, k0);
    a_row(1u, m0, k0);
    a_row(2u, m0, k0);
    a_row(3u, m0, k0);
    a_row(4u, m0, k0);
    a_row(5u, m0, k0);
    a_row(6u, m0, k0);
    a_row(7u, m0, k0);
    a_row(8u, m0, k0);
    a_row(9u, m0, k0);
    a_row(10u, m0, k0);
    a_row(11u, m0, k0);
    a_row(12u, m0, k0);
    a_row(13u, m0, k0);
    a_row(14u, m0, k0);
    a_row(15u, m0, k0);
  }
}

// ---- op(B)[k0 .. k0+4)[n0 .. n0+4*CV) into bv (columns clamped to n - 1).

// Row of B starting at `row`: columns jj .. jj+3 (jj a multiple of 4), clamped to `last`.
fn b_vec_n(row: u32, jj: u32, last: u32) -> vec4f {
  if (VEC_B) {
    return b4[(row + min(jj, last & ~3u)) / 4u];
  }
  return vec4f(b[row + min(jj, last)], b[row + min(jj + 1u, last)], b[row + min(jj + 2u, last)],
               b[row + min(jj + 3u, last)]);
}

// B not transposed: vec4 column block cv at 4 consecutive K rows.
fn b_cols(cv: u32, n0: u32, k0: u32) {
  if (cv >= CV) {
    return;
  }
  let last = p.n - 1u;
  let jj = n0 + 4u * cv;
  bv[cv] = b_vec_n(k0 * p.ldb, jj, last);
  bv[MAX_CV + cv] = b_vec_n((k0 + 1u) * p.ldb, jj, last);
  bv[2u * MAX_CV + cv] = b_vec_n((k0 + 2u) * p.ldb, jj, last);
  bv[3u * MAX_CV + cv] = b_vec_n((k0 + 3u) * p.ldb, jj, last);
}

// Bᵀ at offset o (a column of op(B)): 4 consecutive K values.
fn b_vec_k(o: u32) -> vec4f {
  if (VEC_B) {
    return b4[o / 4u];
  }
  return vec4f(b[o], b[o + 1u], b[o + 2u], b[o + 3u]);
}

// B holds Bᵀ [n][ldb]: each column of op(B) is contiguous along k; transpose in registers.
fn b_tcols(cv: u32, n0: u32, k0: u32) {
  if (cv >= CV) {
    return;
  }
  let last = p.n - 1u;
  let c0 = n0 + 4u * cv;
  let v0 = b_vec_k(min(c0, last) * p.ldb + k0);
  let v1 = b_vec_k(min(c0 + 1u, last) * p.ldb + k0);
  let v2 = b_vec_k(min(c0 + 2u, last) * p.ldb + k0);
  let v3 = b_vec_k(min(c0 + 3u, last) * p.ldb + k0);
  bv[cv] = vec4f(v0.x, v1.x, v2.x, v3.x);
  bv[MAX_CV + cv] = vec4f(v0.y, v1.y, v2.y, v3.y);
  bv[2u * MAX_CV + cv] = vec4f(v0.z, v1.z, v2.z, v3.z);
  bv[3u * MAX_CV + cv] = vec4f(v0.w, v1.w, v2.w, v3.w);
}

fn load_b_slab(n0: u32, k0: u32) {
  if (TRANS_B) {
    b_tcols(0u, n0, k0);
    b_tcols(1u, n0, k0);
    b_tcols(2u, n0, k0);
    b_tcols(3u, n0, k0);
  } else {
    b_cols(0u, n0, k0);
    b_cols(1u, n0, k0);
    b_cols(2u, n0, k0);
    b_cols(3u, n0, k0);
  }
}

// ---- acc += av · bv over one slab of 4 K steps.

fn fma_rc(r: u32, cv: u32, x: vec4f) {
  if (cv >= CV) {
    return;
  }
  let i = r * MAX_CV + cv;
  var s = acc[i];
  s = fma(vec4f(x.x), bv[cv], s);
  s = fma(vec4f(x.y), bv[MAX_CV + cv], s);
  s = fma(vec4f(x.z), bv[2u * MAX_CV + cv], s);
  s = fma(vec4f(x.w), bv[3u * MAX_CV + cv], s);
  acc[i] = s;
}

fn fma_row(r: u32) {
  if (r >= RM) {
    return;
  }
  let x = av[r];
  fma_rc(r, 0u, x);
  fma_rc(r, 1u, x);
  fma_rc(r, 2u, x);
  fma_rc(r, 3u, x);
}

fn fma_slab() {
  fma_row(0u);
  fma_row(1u);
  fma_row(2u);
  fma_row(3u);
  fma_row(4u);
  fma_row(5u);
  fma_row(6u);
  fma_row(7u);
  fma_row(8u);
  fma_row(9u);
  fma_row(10u);
  fma_row(11u);
  fma_row(12u);
  fma_row(13u);
  fma_row(14u);
  fma_row(15u);
}

// ---- K tail (k % 4 single steps, scalar loads): av[r].x = op(A)[m0 + r][kk],
// bv[cv] = op(B)[kk][n0 + 4cv .. +3], then a rank-1 update.

fn tail_a_row(r: u32, m0: u32, kk: u32) {
  if (r >= RM) {
    return;
  }
  av[r].x = elem_a(min(m0 + r, p.m - 1u), kk);
}

fn tail_b_cols(cv: u32, n0: u32, kk: u32) {
  if (cv >= CV) {
    return;
  }
  let last = p.n - 1u;
  let jj = n0 + 4u * cv;
  bv[cv] = vec4f(elem_b(kk, min(jj, last)), elem_b(kk, min(jj + 1u, last)),
                 elem_b(kk, min(jj + 2u, last)), elem_b(kk, min(jj + 3u, last)));
}

fn rank1_rc(r: u32, cv: u32, x: f32) {
  if (cv >= CV) {
    return;
  }
  let i = r * MAX_CV + cv;
  acc[i] = fma(vec4f(x), bv[cv], acc[i]);
}

fn rank1_row(r: u32) {
  if (r >= RM) {
    return;
  }
  let x = av[r].x;
  rank1_rc(r, 0u, x);
  rank1_rc(r, 1u, x);
  rank1_rc(r, 2u, x);
  rank1_rc(r, 3u, x);
}

fn tail_step(m0: u32, n0: u32, kk: u32) {
  tail_a_row(0u, m0, kk);
  tail_a_row(1u, m0, kk);
  tail_a_row(2u, m0, kk);
  tail_a_row(3u, m0, kk);
  tail_a_row(4u, m0, kk);
  tail_a_row(5u, m0, kk);
  tail_a_row(6u, m0, kk);
  tail_a_row(7u, m0, kk);
  tail_a_row(8u, m0, kk);
  tail_a_row(9u, m0, kk);
  tail_a_row(10u, m0, kk);
  tail_a_row(11u, m0, kk);
  tail_a_row(12u, m0, kk);
  tail_a_row(13u, m0, kk);
  tail_a_row(14u, m0, kk);
  tail_a_row(15u, m0, kk);
  tail_b_cols(0u, n0, kk);
  tail_b_cols(1u, n0, kk);
  tail_b_cols(2u, n0, kk);
  tail_b_cols(3u, n0, kk);
  rank1_row(0u);
  rank1_row(1u);
  rank1_row(2u);
  rank1_row(3u);
  rank1_row(4u);
  rank1_row(5u);
  rank1_row(6u);
  rank1_row(7u);
  rank1_row(8u);
  rank1_row(9u);
  rank1_row(10u);
  rank1_row(11u);
  rank1_row(12u);
  rank1_row(13u);
  rank1_row(14u);
  rank1_row(15u);
}

// The invocation's block origin (m0, n0), or m0 = 0xffffffff when it has nothing to do.
fn origin(wid: vec3u, nwg: vec3u, lid: vec3u) -> vec2u {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.groups) {
    return vec2u(0xffffffffu, 0u);
  }
  let gx = flat % p.col_groups;
  let gy = flat / p.col_groups;
  let n0 = (gx * WG_X + lid.x) * 4u * CV;
  let m0 = (gy * WG_Y + lid.y) * RM;
  if (m0 >= p.m || n0 >= p.n) {
    return vec2u(0xffffffffu, 0u);
  }
  return vec2u(m0, n0);
}

// Loop bounds: the K loop runs k / 4 times and the tail k % 4 times (<= 3); the wrapper keeps
// k / 4 + k % 4 <= 65,000, below llvmpipe's 65,535-iteration cap. There are no other loops.
fn compute(m0: u32, n0: u32) {
  let slabs = p.k / 4u;
  for (var s = 0u; s < slabs; s++) {
    load_a_slab(m0, 4u * s);
    load_b_slab(n0, 4u * s);
    fma_slab();
  }
  for (var kk = 4u * slabs; kk < p.k; kk++) {
    tail_step(m0, n0, kk);
  }
}

// ---- stores

// C as vec4 (ldc % 4 == 0): block (r, cv); a partial last chunk keeps its columns >= n (this
// invocation owns the whole vec4, so the read-modify-write is race-free).
fn store4(r: u32, cv: u32, m0: u32, n0: u32) {
  if (r >= RM || cv >= CV) {
    return;
  }
  let i = m0 + r;
  let jj = n0 + 4u * cv;
  if (i >= p.m || jj >= p.n) {
    return;
  }
  let idx = (i * p.ldc + jj) / 4u;
  var v = acc[r * MAX_CV + cv];
  if (BIAS) { // never with accumulate (wrapper)
    v = select(vec4f(0.0), v + vec4f(bias[i]), vec4u(jj) + vec4u(0u, 1u, 2u, 3u) < vec4u(p.bias_cols));
  }
  if (p.accumulate != 0u || jj + 4u > p.n) {
    let old = c4[idx];
    if (p.accumulate != 0u) {
      v += old;
    }
    v = select(old, v, vec4u(jj) + vec4u(0u, 1u, 2u, 3u) < vec4u(p.n));
  }
  c4[idx] = v;
}

fn store4_row(r: u32, m0: u32, n0: u32) {
  store4(r, 0u, m0, n0);
  store4(r, 1u, m0, n0);
  store4(r, 2u, m0, n0);
  store4(r, 3u, m0, n0);
}

// C as scalars (any ldc): one element.
fn store1(i: u32, jj: u32, v: f32) {
  if (i >= p.m || jj >= p.n) {
    return;
  }
  let idx = i * p.ldc + jj;
  if (p.accumulate != 0u) {
    c[idx] += v;
  } else {
    c[idx] = v;
  }
}

fn store1_block(r: u32, cv: u32, m0: u32, n0: u32) {
  if (r >= RM || cv >= CV) {
    return;
  }
  let v = acc[r * MAX_CV + cv];
  let jj = n0 + 4u * cv;
  store1(m0 + r, jj, v.x);
  store1(m0 + r, jj + 1u, v.y);
  store1(m0 + r, jj + 2u, v.z);
  store1(m0 + r, jj + 3u, v.w);
}

fn store1_row(r: u32, m0: u32, n0: u32) {
  store1_block(r, 0u, m0, n0);
  store1_block(r, 1u, m0, n0);
  store1_block(r, 2u, m0, n0);
  store1_block(r, 3u, m0, n0);
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let o = origin(wid, nwg, lid);
  if (o.x == 0xffffffffu) {
    return;
  }
  compute(o.x, o.y);
  store4_row(0u, o.x, o.y);
  store4_row(1u, o.x, o.y);
  store4_row(2u, o.x, o.y);
  store4_row(3u, o.x, o.y);
  store4_row(4u, o.x, o.y);
  store4_row(5u, o.x, o.y);
  store4_row(6u, o.x, o.y);
  store4_row(7u, o.x, o.y);
  store4_row(8u, o.x, o.y);
  store4_row(9u, o.x, o.y);
  store4_row(10u, o.x, o.y);
  store4_row(11u, o.x, o.y);
  store4_row(12u, o.x, o.y);
  store4_row(13u, o.x, o.y);
  store4_row(14u, o.x, o.y);
  store4_row(15u, o.x, o.y);
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul_c1(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let o = origin(wid, nwg, lid);
  if (o.x == 0xffffffffu) {
    return;
  }
  compute(o.x, o.y);
  store1_row(0u, o.x, o.y);
  store1_row(1u, o.x, o.y);
  store1_row(2u, o.x, o.y);
  store1_row(3u, o.x, o.y);
  store1_row(4u, o.x, o.y);
  store1_row(5u, o.x, o.y);
  store1_row(6u, o.x, o.y);
  store1_row(7u, o.x, o.y);
  store1_row(8u, o.x, o.y);
  store1_row(9u, o.x, o.y);
  store1_row(10u, o.x, o.y);
  store1_row(11u, o.x, o.y);
  store1_row(12u, o.x, o.y);
  store1_row(13u, o.x, o.y);
  store1_row(14u, o.x, o.y);
  store1_row(15u, o.x, o.y);
}
