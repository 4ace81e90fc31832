// Inverted dropout on feature-major activations [rows][ld] (ld = batch rounded up to 4), with a
// counter-based RNG: element (r, c) is kept iff hash(seed, step, stream, r * batch + c) >= thresh,
// so the mask is a pure function of its inputs. Nothing is stored between forward and backward:
// the backward pass recomputes the same mask (same seed, step, stream), and since
// dx = dy * mask * scale is the same formula as y = x * mask * scale it is the same entry point.
// Padding columns (>= batch) are written as zero. The hash is mirrored in src/kernels/dropout_ref.ts.

struct Params {
  rows: u32,
  batch: u32,
  ld: u32, // row stride in floats, a multiple of 4
  thresh: u32, // keep iff hash >= thresh; thresh = round(p * 2^32), so P(keep) = 1 - thresh / 2^32
  scale: f32, // 1 / (1 - p)
  stream: u32, // distinguishes dropout sites (layers) that share seed and step
}

// Written per training step by the caller (or a content-cached block per (seed, step)).
struct Rng {
  seed: u32,
  step: u32,
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> rng: Rng;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> mask: array<vec4<f32>>;

// PCG-based integer hash (Jarzynski & Olano, "Hash Functions for GPU Rendering", JCGT 2020):
// one LCG step followed by the PCG-RXS-M-XS output permutation; a bijection on u32.
fn pcg_hash(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

// Per-call key from (seed, step, stream), then two hash rounds per element index.
fn dropout_key() -> u32 {
  return pcg_hash(rng.seed ^ pcg_hash(rng.step ^ pcg_hash(p.stream)));
}

fn dropout_bits(key: u32, idx: u32) -> u32 {
  return pcg_hash(pcg_hash(idx + key) ^ key);
}

// Multiplier (0 or scale) of the 4 lanes of vec4 i; padding lanes get 0.
fn multipliers(i: u32) -> vec4f {
  let quads = p.ld / 4u;
  let r = i / quads;
  let c = (i % quads) * 4u;
  let key = dropout_key();
  let base = r * p.batch + c;
  let h = vec4u(dropout_bits(key, base), dropout_bits(key, base + 1u), dropout_bits(key, base + 2u),
    dropout_bits(key, base + 3u));
  let keep = (h >= vec4u(p.thresh)) & ((vec4u(c) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.batch));
  return select(vec4f(0.0), vec4f(p.scale), keep);
}

// y = x * multiplier (forward), or dx = dy * multiplier (backward), one vec4 per invocation.
@compute @workgroup_size(WG)
fn dropout_apply(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * (p.ld / 4u)) { return; }
  let m = multipliers(i);
  // select, not x * m: a dropped NaN/Inf input still yields exactly 0.
  y[i] = select(vec4f(0.0), x[i] * m, m != vec4f(0.0));
}

// Same, and also writes the multiplier (0 or 1/(1-p)) to `mask` for inspection or fused use.
@compute @workgroup_size(WG)
fn dropout_apply_mask(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * (p.ld / 4u)) { return; }
  let m = multipliers(i);
  y[i] = select(vec4f(0.0), x[i] * m, m != vec4f(0.0));
  mask[i] = m;
}
