// Helpers shared by the ablation kernels (analysis.wgsl, ablation_conv.wgsl). This file is a
// function library, not a kernel: the TypeScript side prepends it to a kernel's WGSL
// (src/kernels/ablation_fns.ts, withAblationFns).
//
// A batch of K ablations over S evaluation samples is one activation [rows][ld_n] with K*S live
// columns: column c = k*S + s; padding columns (c >= K*S, up to ld_n = roundUp4(K*S)) are zero.

// Where element e of a batched [rows][ld_n] tensor lies: row r, column c, ablation k, sample s;
// `live` is false on padding columns (then k and s are meaningless).
struct BatchCell {
  r: u32,
  c: u32,
  k: u32,
  s: u32,
  live: bool,
}

fn batch_cell(e: u32, ld_n: u32, k: u32, s: u32) -> BatchCell {
  let c = e % ld_n;
  return BatchCell(e / ld_n, c, c / s, c % s, c < k * s);
}

// Where quad e of a batched [rows][ld_n / 4] vec4 tensor lies, when S % 4 == 0 (K*S = ld_n: no
// padding, and a quad never straddles two ablations): row r, quad q, ablation k, and the quad s4
// of its four samples in a cached [rows][S / 4] tensor.
struct BatchQuad {
  r: u32,
  q: u32,
  k: u32,
  s4: u32,
}

fn batch_quad(e: u32, ld_n: u32, s: u32) -> BatchQuad {
  let lq = ld_n / 4u;
  let q = e % lq;
  let c = 4u * q;
  return BatchQuad(e / lq, q, c / s, (c % s) / 4u);
}
