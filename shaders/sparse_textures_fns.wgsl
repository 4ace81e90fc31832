// Prelude of shaders/sparse.wgsl: its gathered operands as textures (src/gpu/mirror.ts copies
// the buffers in just before the kernel). On Mesa llvmpipe every storage-buffer element is loaded
// by a per-lane scalar loop through the stack, a texel fetch by a register gather: 4-9x faster on
// hosts where the stack round trip stalls (bench/RESULTS.md). Every mirror is 4096 texels wide
// (src/gpu/mirror.ts MIRROR_WIDTH), texel t at (t % 4096, t / 4096): activations as rgba32float
// (texel = quad, t = r * ld4 + q), index and value arrays as r32uint / r32float. Quads past ld4
// (never stored) read the next row, or whatever robust access returns past the end.
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
fn ld_x(r: u32, q: u32) -> vec4f { return textureLoad(x_in, flat_at(r * p.ld4 + q), 0); }
fn ld_dy(r: u32, q: u32) -> vec4f { return textureLoad(dy_in, flat_at(r * p.ld4 + q), 0); }
fn ld_xw(r: u32, q: u32) -> vec4f { return textureLoad(xw_in, flat_at(r * p.ld4 + q), 0); }
