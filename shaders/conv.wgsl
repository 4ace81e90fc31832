// Convolution by im2col and 2-D max pooling on feature-major image batches.
//
// Layouts (ld4 = roundUp4(batch) / 4, batch = vec4 axis, padding lanes b >= batch written 0):
//   image    [c][h][w] x ld4 vec4           (feature = (c*h + y)*w + x)
//   columns  [c*k*k][oh*ow] x ld4 vec4      (row (c*k + ky)*k + kx, column pos*ld + b): the
//            input of a linear layer with batch oh*ow*ld whose output [c_out][oh*ow*ld] is the
//            feature-major [c_out*oh*ow][ld] activation, in the same memory.
//   pooled   [c][oh][ow] x ld4 vec4, argmax u32 per element (window offset dy*k + dx).
// Flat (possibly 2-D) grids; no float atomics: col2im and the pooling backward gather what
// reaches each input element.

struct Params {
  total: u32, // invocations: output elements x quad chunks (ld-blocks for pad_mask)
  batch: u32,
  ld4: u32,
  c: u32, // channels of the image side
  h: u32,
  w: u32,
  oh: u32,
  ow: u32,
  k: u32, // convolution kernel size, or pooling window
  stride: u32,
  pad: u32,
  _unused: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 64u;

fn flat_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

fn live_lanes(q: u32) -> vec4<bool> {
  return (vec4u(q * 4u) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.batch);
}

// Every entry point but pad_mask gives one invocation one spatial element and a chunk of QB
// consecutive quads of the batch (chunks = ceil(ld4 / QB) per element): the index arithmetic
// (integer divisions, scalarised on CPU backends) is paid once per QB quads. QB = 1 gives
// one vec4 per invocation (coalesced batch-fastest access on GPUs).
override QB: u32 = 8u;

fn chunk_count() -> u32 {
  return (p.ld4 + QB - 1u) / QB;
}

// ------------------------------------------------------------------ im2col

@group(0) @binding(1) var<storage, read> x_img: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> cols_out: array<vec4<f32>>;

// total = c*k*k * oh*ow * chunks. Loop bound: QB iterations (wrapper asserts).
@compute @workgroup_size(WG)
fn im2col(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= p.total) { return; }
  let chunks = chunk_count();
  let t = i / chunks; // column-matrix element (r, pos)
  let q0 = (i - t * chunks) * QB;
  let q1 = min(q0 + QB, p.ld4);
  let npos = p.oh * p.ow;
  let r = t / npos;
  let pos = t - r * npos;
  let kk = p.k * p.k;
  let c = r / kk;
  let kr = r - c * kk;
  let ky = kr / p.k;
  let kx = kr - ky * p.k;
  let oy = pos / p.ow;
  let ox = pos - oy * p.ow;
  let iy = i32(oy * p.stride + ky) - i32(p.pad);
  let ix = i32(ox * p.stride + kx) - i32(p.pad);
  let dst = t * p.ld4;
  if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
    let src = ((c * p.h + u32(iy)) * p.w + u32(ix)) * p.ld4;
    for (var q = q0; q < q1; q++) {
      cols_out[dst + q] = select(vec4f(0.0), x_img[src + q], live_lanes(q));
    }
  } else {
    for (var q = q0; q < q1; q++) {
      cols_out[dst + q] = vec4f(0.0);
    }
  }
}

// ------------------------------------------------------------------ col2im (gather)

@group(0) @binding(1) var<storage, read> dcols_in: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dx_img: array<vec4<f32>>;

// One invocation per (input element, quad chunk) sums every column entry that im2col copied
// from it: output positions (oy, ox) with 0 <= iy + pad - oy*stride < k (same for x), found
// without per-iteration divisions. total = c*h*w * chunks.
// Loop bound: QB * (1 + ny + ny*nx) with ny, nx <= ceil(k / stride) <= k; the wrapper asserts
// QB * (k*k + k + 1) <= 65,000.
@compute @workgroup_size(WG)
fn col2im(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= p.total) { return; }
  let chunks = chunk_count();
  let t = i / chunks; // image element (c, iy, ix)
  let q0 = (i - t * chunks) * QB;
  let q1 = min(q0 + QB, p.ld4);
  let t2 = t / p.w;
  let ix = t - t2 * p.w;
  let c = t2 / p.h;
  let iy = t2 - c * p.h;
  let ty = iy + p.pad;
  let tx = ix + p.pad;
  let oy_lo = select(0u, (ty - (p.k - 1u) + p.stride - 1u) / p.stride, ty >= p.k);
  let ox_lo = select(0u, (tx - (p.k - 1u) + p.stride - 1u) / p.stride, tx >= p.k);
  let oy_end = min(ty / p.stride + 1u, p.oh);
  let ox_end = min(tx / p.stride + 1u, p.ow);
  let npos = p.oh * p.ow;
  let ck = c * p.k;
  for (var q = q0; q < q1; q++) {
    var acc = vec4f(0.0);
    for (var oy = oy_lo; oy < oy_end; oy++) {
      let rowy = (ck + ty - oy * p.stride) * p.k;
      for (var ox = ox_lo; ox < ox_end; ox++) {
        let r = rowy + tx - ox * p.stride;
        acc += dcols_in[(r * npos + oy * p.ow + ox) * p.ld4 + q];
      }
    }
    dx_img[t * p.ld4 + q] = select(vec4f(0.0), acc, live_lanes(q));
  }
}

// ------------------------------------------------------------------ max pooling (window k = stride)

@group(0) @binding(2) var<storage, read_write> y_pool: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> arg_out: array<vec4<u32>>;

// total = c*oh*ow * chunks. Loop bound: QB * (1 + k + k*k); the wrapper asserts it.
// Ties keep the first element (row-major in the window).
@compute @workgroup_size(WG)
fn maxpool_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= p.total) { return; }
  let chunks = chunk_count();
  let t = i / chunks; // pooled element (c, oy, ox)
  let q0 = (i - t * chunks) * QB;
  let q1 = min(q0 + QB, p.ld4);
  let t2 = t / p.ow;
  let ox = t - t2 * p.ow;
  let c = t2 / p.oh;
  let oy = t2 - c * p.oh;
  let base = ((c * p.h + oy * p.k) * p.w + ox * p.k) * p.ld4;
  let row = p.w * p.ld4;
  for (var q = q0; q < q1; q++) {
    var best = x_img[base + q];
    var arg = vec4u(0u);
    for (var dy = 0u; dy < p.k; dy++) {
      for (var dx = 0u; dx < p.k; dx++) {
        let v = x_img[base + dy * row + dx * p.ld4 + q];
        let gt = v > best;
        best = select(best, v, gt);
        arg = select(arg, vec4u(dy * p.k + dx), gt);
      }
    }
    let live = live_lanes(q);
    y_pool[t * p.ld4 + q] = select(vec4f(0.0), best, live);
    arg_out[t * p.ld4 + q] = select(vec4u(0u), arg, live);
  }
}

@group(0) @binding(1) var<storage, read> dy_pool: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> arg_in: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> dx_pool: array<vec4<f32>>;

// One invocation per (input element, quad chunk): it receives its window's gradient where it
// was the argmax (windows do not overlap, so there is at most one). total = c*h*w * chunks.
// Loop bound: QB iterations.
@compute @workgroup_size(WG)
fn maxpool_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= p.total) { return; }
  let chunks = chunk_count();
  let t = i / chunks; // image element (c, iy, ix)
  let q0 = (i - t * chunks) * QB;
  let q1 = min(q0 + QB, p.ld4);
  let t2 = t / p.w;
  let ix = t - t2 * p.w;
  let c = t2 / p.h;
  let iy = t2 - c * p.h;
  let oy = iy / p.k;
  let ox = ix / p.k;
  let dst = t * p.ld4;
  if (oy < p.oh && ox < p.ow) {
    let o = ((c * p.oh + oy) * p.ow + ox) * p.ld4;
    let me = vec4u((iy - oy * p.k) * p.k + ix - ox * p.k);
    for (var q = q0; q < q1; q++) {
      let g = select(vec4f(0.0), dy_pool[o + q], arg_in[o + q] == me);
      dx_pool[dst + q] = select(vec4f(0.0), g, live_lanes(q));
    }
  } else {
    for (var q = q0; q < q1; q++) {
      dx_pool[dst + q] = vec4f(0.0);
    }
  }
}

// ------------------------------------------------------------------ batch-padding mask

@group(0) @binding(1) var<storage, read_write> act_io: array<vec4<f32>>;

// The tensor is `total` blocks of ld4 vec4s; only the last vec4 of a block holds padding
// lanes, so one invocation per block zeroes them in place. No loops.
@compute @workgroup_size(WG)
fn pad_mask(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= p.total) { return; }
  let q = p.ld4 - 1u;
  let j = i * p.ld4 + q;
  act_io[j] = select(vec4f(0.0), act_io[j], live_lanes(q));
}
