// Prelude of shaders/ablation_carry.wgsl: its operands as storage buffers (hardware GPUs).
@group(0) @binding(1) var<storage, read> meta_u: array<u32>;
@group(0) @binding(2) var<storage, read> meta_f: array<f32>;
@group(0) @binding(3) var<storage, read> x0: array<f32>;
@group(0) @binding(4) var<storage, read> z0: array<f32>;
@group(0) @binding(5) var<storage, read> rows_v: array<vec4f>;
@group(0) @binding(6) var<storage, read> zl: array<f32>;
// Per ablation: input row i, output row j, bitcast f32 weight w.
@group(0) @binding(7) var<storage, read> abl: array<u32>;

fn ld_mu(k: u32) -> u32 { return meta_u[k]; }
fn ld_mf(k: u32) -> f32 { return meta_f[k]; }
fn ld_x0(k: u32) -> f32 { return x0[k]; }
fn ld_z0(k: u32) -> f32 { return z0[k]; }
fn ld_rows(k: u32) -> vec4f { return rows_v[k]; }
fn ld_zl(k: u32) -> f32 { return zl[k]; }
fn ld_abl(k: u32) -> u32 { return abl[k]; }
