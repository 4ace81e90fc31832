// Prelude of shaders/ablation_carry.wgsl: its operands as texture mirrors (src/gpu/mirror.ts, 4096
// texels a row, element k at (k % 4096, k / 4096); rows_v as rgba32float, one vec4 a texel). On
// llvmpipe a texel fetch avoids the per-lane scalar loop of a storage-buffer load (see
// sparse_textures_fns.wgsl).
@group(0) @binding(1) var meta_u: texture_2d<u32>;
@group(0) @binding(2) var meta_f: texture_2d<f32>;
@group(0) @binding(3) var x0: texture_2d<f32>;
@group(0) @binding(4) var z0: texture_2d<f32>;
@group(0) @binding(5) var rows_v: texture_2d<f32>;
@group(0) @binding(6) var zl: texture_2d<f32>;
@group(0) @binding(7) var abl: texture_2d<u32>;

fn flat_at(k: u32) -> vec2u { return vec2u(k & 4095u, k >> 12u); }
fn ld_mu(k: u32) -> u32 { return textureLoad(meta_u, flat_at(k), 0).x; }
fn ld_mf(k: u32) -> f32 { return textureLoad(meta_f, flat_at(k), 0).x; }
fn ld_x0(k: u32) -> f32 { return textureLoad(x0, flat_at(k), 0).x; }
fn ld_z0(k: u32) -> f32 { return textureLoad(z0, flat_at(k), 0).x; }
fn ld_rows(k: u32) -> vec4f { return textureLoad(rows_v, flat_at(k), 0); }
fn ld_zl(k: u32) -> f32 { return textureLoad(zl, flat_at(k), 0).x; }
fn ld_abl(k: u32) -> u32 { return textureLoad(abl, flat_at(k), 0).x; }
