// Prelude of shaders/sparse.wgsl: its gathered operands as storage buffers (the default, and the
// layout hardware GPUs coalesce). Loaders take a row and a quad of a feature-major [rows][ld4]
// vec4 array, or an element index of a flat array. Bindings as listed in sparse.wgsl.
@group(0) @binding(2) var<storage, read> col_t: array<u32>;
@group(0) @binding(3) var<storage, read> vals: array<f32>;
@group(0) @binding(4) var<storage, read> x_in: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> col: array<u32>;
@group(0) @binding(4) var<storage, read> perm: array<u32>;
@group(0) @binding(5) var<storage, read> dy_in: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> xw_in: array<vec4<f32>>;

fn ld_col_t(k: u32) -> u32 { return col_t[k]; }
fn ld_vals(k: u32) -> f32 { return vals[k]; }
fn ld_col(m: u32) -> u32 { return col[m]; }
fn ld_perm(m: u32) -> u32 { return perm[m]; }
fn ld_x(r: u32, q: u32) -> vec4f { return x_in[r * p.ld4 + q]; }
fn ld_dy(r: u32, q: u32) -> vec4f { return dy_in[r * p.ld4 + q]; }
fn ld_xw(r: u32, q: u32) -> vec4f { return xw_in[r * p.ld4 + q]; }
