// Batch assembly: gathers the samples of one batch from the dataset resident on the GPU,
// normalizes them and writes the feature-major batch x[features][ld] (ld = roundUp4(size),
// padding columns size..ld-1 written as 0) and the labels[0..size).
//
// Dataset storage (sample-major): u8 pixels packed 4 per u32 (byte s*features + f, little end
// first) for image sets, or plain f32 for real-valued data. The sample of batch column c is
// order[offset + c] (a per-epoch permutation) or offset + c when p.ordered == 1 (test set).
//
// Normalization (override MODE, so unused paths compile away):
//   0: x * p.scale                                  (none / unit)
//   1: (x - fstat[f].x) * fstat[f].y                (standard: per-feature mean, 1/std)
//   2: (x - sstat[s].x) * sstat[s].y                (sample: per-sample mean, 1/std)
// One invocation writes one vec4 of x (4 batch columns of one feature), or with gather_u8x4 and
// gather_f32x4 a 4 x 4 block (4 features x 4 batch columns) from one word or one vec4 per sample;
// loops have 4 trips.

struct Params {
  features: u32,
  size: u32,     // samples in this batch
  ld: u32,       // roundUp4(size): row stride of x
  offset: u32,   // position of the batch's first sample in the order
  ordered: u32,  // 1: sample = offset + c; 0: sample = order[offset + c]
  scale: f32,    // multiplier of MODE 0
}

override MODE: u32 = 0u;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> images_u8: array<u32>;
@group(0) @binding(1) var<storage, read> images_f32: array<f32>;
@group(0) @binding(1) var<storage, read> images_f32x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> labels_in: array<u32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read> fstat: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> sstat: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> labels: array<u32>;

fn sample_of(c: u32) -> u32 {
  if (p.ordered == 1u) { return p.offset + c; }
  return order[p.offset + c];
}

fn normalize(v: f32, f: u32, s: u32) -> f32 {
  if (MODE == 1u) {
    let a = fstat[f];
    return (v - a.x) * a.y;
  }
  if (MODE == 2u) {
    let a = sstat[s];
    return (v - a.x) * a.y;
  }
  return v * p.scale;
}

// Flat invocation index over features * ld/4 quads; the grid may be 2-D.
fn quad_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn gather_u8(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let quads = p.ld / 4u;
  let i = quad_index(gid, nwg);
  if (i >= p.features * quads) { return; }
  let f = i / quads;
  let c0 = (i % quads) * 4u;
  var out = vec4f(0.0);
  for (var k = 0u; k < 4u; k++) { // 4 trips
    let c = c0 + k;
    if (c < p.size) {
      let s = sample_of(c);
      let b = s * p.features + f;
      let v = f32((images_u8[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu);
      out[k] = normalize(v, f, s);
      if (f == 0u) { labels[c] = labels_in[s]; }
    }
  }
  x[i] = out;
}

// The 4 x 4 block of the block gathers: features f0..f0+3 at quad q.
// The 4 x 4 block of invocation i: features f0..f0+3 x batch columns c0..c0+3 (quad q), the
// columns' samples and which columns are real.
struct Block {
  f0: u32,
  q: u32,
  c0: u32,
  s: vec4u,
  live: vec4<bool>,
}

fn block_of(i: u32, quads: u32) -> Block {
  let q = i % quads;
  return Block((i / quads) * 4u, q, q * 4u, samples4(q * 4u), live4(q * 4u));
}

// Writes the block from the raw values r_j of features f0 + j (one lane per column), normalized
// and zero in padding columns, and the labels with the first feature row.
fn store_block(b: Block, quads: u32, r0: vec4f, r1: vec4f, r2: vec4f, r3: vec4f) {
  x[b.f0 * quads + b.q] = norm4(r0, b.f0, b.s, b.live);
  x[(b.f0 + 1u) * quads + b.q] = norm4(r1, b.f0 + 1u, b.s, b.live);
  x[(b.f0 + 2u) * quads + b.q] = norm4(r2, b.f0 + 2u, b.s, b.live);
  x[(b.f0 + 3u) * quads + b.q] = norm4(r3, b.f0 + 3u, b.s, b.live);
  if (b.f0 == 0u) { labels4(b.c0, b.s, b.live); }
}

// The 4 x 4 block gathers are branch-free (on llvmpipe a loop over the 4 columns with a
// per-column branch cost as much as the loads): every column reads a sample, padding columns
// (>= size) the last real one, and `live` zeroes them.
fn live4(c0: u32) -> vec4<bool> {
  return (vec4u(c0) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.size);
}

fn samples4(c0: u32) -> vec4u {
  let last = max(p.size, 1u) - 1u;
  return vec4u(sample_of(min(c0, last)), sample_of(min(c0 + 1u, last)),
    sample_of(min(c0 + 2u, last)), sample_of(min(c0 + 3u, last)));
}

// Feature f of the 4 samples s (values v), normalized; 0 in padding columns.
fn norm4(v: vec4f, f: u32, s: vec4u, live: vec4<bool>) -> vec4f {
  let n = vec4f(normalize(v.x, f, s.x), normalize(v.y, f, s.y), normalize(v.z, f, s.z),
    normalize(v.w, f, s.w));
  return select(vec4f(0.0), n, live);
}

fn labels4(c0: u32, s: vec4u, live: vec4<bool>) {
  if (live.x) { labels[c0] = labels_in[s.x]; }
  if (live.y) { labels[c0 + 1u] = labels_in[s.y]; }
  if (live.z) { labels[c0 + 2u] = labels_in[s.z]; }
  if (live.w) { labels[c0 + 3u] = labels_in[s.w]; }
}

// u8 data with features % 4 == 0 (every sample's pixels start on a word): one invocation writes a
// 4 x 4 block, features f0..f0+3 (one u32 word per sample) x batch columns c0..c0+3, so it loads
// 4 words for 16 values where gather_u8 loads one word per value.
@compute @workgroup_size(WG)
fn gather_u8x4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let quads = p.ld / 4u;
  let i = quad_index(gid, nwg);
  if (i >= (p.features / 4u) * quads) { return; }
  let b = block_of(i, quads);
  let s = b.s;
  // Word of features f0..f0+3 of each sample (byte j = feature f0 + j).
  let w = vec4u(images_u8[(s.x * p.features + b.f0) >> 2u],
    images_u8[(s.y * p.features + b.f0) >> 2u], images_u8[(s.z * p.features + b.f0) >> 2u],
    images_u8[(s.w * p.features + b.f0) >> 2u]);
  store_block(b, quads, vec4f(w & vec4u(0xffu)), vec4f((w >> vec4u(8u)) & vec4u(0xffu)),
    vec4f((w >> vec4u(16u)) & vec4u(0xffu)), vec4f(w >> vec4u(24u)));
}

@compute @workgroup_size(WG)
fn gather_f32(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let quads = p.ld / 4u;
  let i = quad_index(gid, nwg);
  if (i >= p.features * quads) { return; }
  let f = i / quads;
  let c0 = (i % quads) * 4u;
  var out = vec4f(0.0);
  for (var k = 0u; k < 4u; k++) { // 4 trips
    let c = c0 + k;
    if (c < p.size) {
      let s = sample_of(c);
      out[k] = normalize(images_f32[s * p.features + f], f, s);
      if (f == 0u) { labels[c] = labels_in[s]; }
    }
  }
  x[i] = out;
}

// f32 data with features % 4 == 0: the 4 x 4 block of gather_u8x4 from one vec4 load per sample
// (features f0..f0+3 of sample s are vec4 (s * features + f0) / 4), 4 loads for 16 values.
@compute @workgroup_size(WG)
fn gather_f32x4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let quads = p.ld / 4u;
  let i = quad_index(gid, nwg);
  if (i >= (p.features / 4u) * quads) { return; }
  let b = block_of(i, quads);
  let s = b.s;
  let v0 = images_f32x4[(s.x * p.features + b.f0) >> 2u];
  let v1 = images_f32x4[(s.y * p.features + b.f0) >> 2u];
  let v2 = images_f32x4[(s.z * p.features + b.f0) >> 2u];
  let v3 = images_f32x4[(s.w * p.features + b.f0) >> 2u];
  store_block(b, quads, vec4f(v0.x, v1.x, v2.x, v3.x), vec4f(v0.y, v1.y, v2.y, v3.y),
    vec4f(v0.z, v1.z, v2.z, v3.z), vec4f(v0.w, v1.w, v2.w, v3.w));
}
