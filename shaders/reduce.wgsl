// Reductions for the training loop: deterministic sums (no float atomics, fixed tree order) and
// per-sample argmax / correct-prediction counts on feature-major logits [classes][ld].

// ---------------------------------------------------------------- sum

struct SumParams {
  n: u32, // elements of x to sum (x is read as vec4; lanes >= n are ignored)
  outIndex: u32, // workgroup g writes out[outIndex + g]
  accumulate: u32, // 0: out = scale * sum; 1: out += scale * sum
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: SumParams;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// Invocations per workgroup: a power of two <= 256 (the size of `part`).
override WG: u32 = 64u;
// vec4 loads per invocation: one workgroup sums WG * ITEMS * 4 elements.
override ITEMS: u32 = 16u;

var<workgroup> part: array<f32, 256>;

// One level of the sum: workgroup g (flat index over a possibly 2-D grid) sums elements
// [g * WG * ITEMS * 4, (g + 1) * WG * ITEMS * 4) of x and writes one partial. The wrapper chains
// levels until one workgroup remains. Invocation `lid` reads vec4s base + k * WG + lid (adjacent
// invocations read adjacent vec4s), sums them in order, then the workgroup adds the WG values as
// a binary tree. The order of additions is fixed, so results are bit-reproducible.
// Loop bounds: ITEMS + log2(WG) iterations per invocation, independent of n.
@compute @workgroup_size(WG)
fn sum_level(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let g = wid.x + wid.y * nwg.x;
  let quads = (p.n + 3u) / 4u;
  let groups = max(1u, (quads + WG * ITEMS - 1u) / (WG * ITEMS));
  if (g >= groups) { return; } // whole workgroups only: barriers below stay uniform
  let base = g * WG * ITEMS;
  var acc = vec4f(0.0);
  for (var k = 0u; k < ITEMS; k++) {
    let q = base + k * WG + lid;
    if (q < quads) {
      let live = (vec4u(q * 4u) + vec4u(0u, 1u, 2u, 3u)) < vec4u(p.n);
      acc += select(vec4f(0.0), x[q], live);
    }
  }
  part[lid] = (acc.x + acc.y) + (acc.z + acc.w);
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { part[lid] = part[lid] + part[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let o = p.outIndex + g;
    var prev = 0.0;
    if (p.accumulate != 0u) { prev = out[o]; }
    out[o] = prev + p.scale * part[0];
  }
}

// ---------------------------------------------------------------- argmax

struct ArgParams {
  classes: u32,
  batch: u32,
  ld: u32, // row stride of the logits in floats, a multiple of 4
  index: u32, // countCorrect: counter element to add to
}

@group(0) @binding(0) var<uniform> a: ArgParams;
@group(0) @binding(1) var<storage, read> logits: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> pred: array<u32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> counter: array<atomic<u32>>;

// NaN test on the bits: WGSL lets implementations assume no NaNs in float comparisons (GLSL
// backends do), so `v != v` is not reliable; an exponent of all ones with a nonzero mantissa is.
fn is_nan4(v: vec4f) -> vec4<bool> {
  return (bitcast<vec4u>(v) & vec4u(0x7fffffffu)) > vec4u(0x7f800000u);
}

// Argmax over classes for the 4 samples of column quad `qi`: a strict `>` scan from class 0, so
// the lowest index wins ties and a NaN never wins (except at class 0, which it then keeps).
// Loop bound: classes - 1 iterations (the wrapper keeps classes <= 65,000).
fn argmax4(qi: u32) -> vec4u {
  let quads = a.ld / 4u;
  var best = logits[qi];
  var arg = vec4u(0u);
  for (var c = 1u; c < a.classes; c++) {
    let v = logits[c * quads + qi];
    let better = (v > best) & !is_nan4(v) & !is_nan4(best);
    best = select(best, v, better);
    arg = select(arg, vec4u(c), better);
  }
  return arg;
}

// pred[b] = argmax_c logits[c][b] for b < batch. One invocation per quad of samples.
@compute @workgroup_size(WG)
fn argmax(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let qi = gid.x + gid.y * nwg.x * WG;
  if (qi >= a.ld / 4u) { return; }
  let arg = argmax4(qi);
  for (var j = 0u; j < 4u; j++) {
    let b = qi * 4u + j;
    if (b < a.batch) { pred[b] = arg[j]; }
  }
}

// counter[index] += #{b < batch : argmax_c logits[c][b] == labels[b]} (u32 atomics: order-free).
@compute @workgroup_size(WG)
fn count_correct(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let qi = gid.x + gid.y * nwg.x * WG;
  if (qi >= a.ld / 4u) { return; }
  let arg = argmax4(qi);
  var hits = 0u;
  for (var j = 0u; j < 4u; j++) {
    let b = qi * 4u + j;
    if (b < a.batch && labels[b] == arg[j]) { hits += 1u; }
  }
  if (hits > 0u) { atomicAdd(&counter[a.index], hits); }
}
