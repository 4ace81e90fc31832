// Prelude of shaders/sparse.wgsl: its gathered operands as textures (src/gpu/mirror.ts copies
// the buffers in just before the kernel). On Mesa llvmpipe every storage-buffer element is loaded
// by a per-lane scalar loop through the stack, a texel fetch by a register gather: 4-9x faster on
// hosts where the stack round trip stalls (bench/RESULTS.md). Activations are rgba32float
// textures ld4 texels wide (texel (q, r) = quad q of row r); flat arrays are r32 textures 4096
// (src/gpu/mirror.ts MIRROR_WIDTH) texels wide. Out-of-range quads (past ld4: never stored) read
// whatever robust access returns.
@group(0) @binding(2) var col_t: texture_2d<u32>;
@group(0) @binding(3) var vals: texture_2d<f32>;
@group(0) @binding(4) var x_in: texture_2d<f32>;
@group(0) @binding(2) var col: texture_2d<u32>;
@group(0) @binding(4) var perm: texture_2d<u32>;
@group(0) @binding(5) var dy_in: texture_2d<f32>;
@group(0) @binding(7) var xw_in: texture_2d<f32>;

fn flat_at(k: u32) -> vec2u { return vec2u(k & 4095u, k >> 12u); }
fn ld_col_t(k: u32) -> u32 { return textureLoad(col_t, flat_at(k), 0).x; }
fn ld_vals(k: u32) -> f32 { return textureLoad(vals, flat_at(k), 0).x; }
fn ld_col(m: u32) -> u32 { return textureLoad(col, flat_at(m), 0).x; }
fn ld_perm(m: u32) -> u32 { return textureLoad(perm, flat_at(m), 0).x; }
fn ld_x(r: u32, q: u32) -> vec4f { return textureLoad(x_in, vec2u(q, r), 0); }
fn ld_dy(r: u32, q: u32) -> vec4f { return textureLoad(dy_in, vec2u(q, r), 0); }
fn ld_xw(r: u32, q: u32) -> vec4f { return textureLoad(xw_in, vec2u(q, r), 0); }
