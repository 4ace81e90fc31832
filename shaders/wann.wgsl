// Weight-agnostic network (WANN) evaluation: a population of feed-forward DAG networks, each run at
// every shared weight value on every sample. One invocation is one (network, weight, sample).
//
// Layout (see src/kernels/wann.ts):
//   x_in     [features][samples]            inputs, feature-major, no padding (stride = samples)
//   net_node [nets + 1]                     first computed node of each network (hidden, then outputs)
//   node_ptr [computed nodes + 1]           CSR row pointer of incoming edges per computed node
//   node_act [computed nodes]               WANN activation id (1..10)
//   edge_src [edges]                        source: 0 = bias, 1..features = input, features+1+k =
//                                           computed node k of the same network (k < the destination)
//   scratch  [chunk nodes][weights][samples] node values of this chunk's networks
// Every edge carries the same weight w, so a node's value is act(w * sum of its sources).

struct Params {
  nets: u32, // networks in this chunk
  weights: u32,
  samples: u32,
  features: u32,
  outputs: u32,
  net_base: u32, // first network of the chunk
  node_base: u32, // net_node[net_base]: first computed node of the chunk
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read> w_shared: array<f32>;
@group(0) @binding(3) var<storage, read> net_node: array<u32>;
@group(0) @binding(4) var<storage, read> node_ptr: array<u32>;
@group(0) @binding(5) var<storage, read> node_act: array<u32>;
@group(0) @binding(6) var<storage, read> edge_src: array<u32>;
@group(0) @binding(7) var<storage, read_write> scratch: array<f32>;

override WG: u32 = 64u;
const PI: f32 = 3.14159265358979;

// The WANN activation set, numbered as in the reference code (wann_src/ind.py applyAct).
// Comparisons are written so that a NaN input gives the same result as the float64 reference.
fn wann_act(id: u32, v: f32) -> f32 {
  switch id {
    case 1u: { return v; } // linear
    case 2u: { return select(0.0, 1.0, v > 0.0); } // unsigned step
    case 3u: { return sin(PI * v); }
    case 4u: { return exp(-0.5 * v * v); } // Gaussian
    case 5u: { return tanh(v); }
    case 6u: { return 0.5 * (tanh(0.5 * v) + 1.0); } // sigmoid
    case 7u: { return -v; } // inverse
    case 8u: { return abs(v); }
    case 9u: { return select(0.0, v, v > 0.0); } // ReLU
    case 10u: { return cos(PI * v); }
    default: { return v; }
  }
}

// One invocation per (network, weight, sample); sample is the fast axis so neighbouring
// invocations read neighbouring inputs and write neighbouring scratch cells.
// Loop bound: the node loop plus the edge loops run (computed nodes + edges) of one network
// times; the wrapper rejects a network over WANN_MAX_TRIPS (65,000), below llvmpipe's cap.
@compute @workgroup_size(WG)
fn wann_eval(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  let ws = p.weights * p.samples;
  if (i >= p.nets * ws) { return; }
  let s = i % p.samples;
  let wi = (i / p.samples) % p.weights;
  let net = p.net_base + i / ws;
  let w = w_shared[wi];
  let first = net_node[net];
  let last = net_node[net + 1u];
  let col = wi * p.samples + s;
  let local0 = first - p.node_base;
  for (var k = first; k < last; k++) {
    var acc = 0.0;
    for (var e = node_ptr[k]; e < node_ptr[k + 1u]; e++) {
      let src = edge_src[e];
      var v = 1.0; // bias
      if (src >= 1u && src <= p.features) {
        v = x_in[(src - 1u) * p.samples + s];
      } else if (src > p.features) {
        v = scratch[(local0 + src - p.features - 1u) * ws + col];
      }
      acc += v;
    }
    scratch[(k - p.node_base) * ws + col] = wann_act(node_act[k], w * acc);
  }
}

@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> score_nets: array<u32>;
@group(0) @binding(3) var<storage, read> values: array<f32>;
@group(0) @binding(4) var<storage, read_write> ce_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> pred_out: array<u32>;

const CE_NONFINITE: f32 = 100.0;
const NO_CLASS: u32 = 0xffffffffu;

fn finite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// Softmax cross-entropy and argmax over a network's output nodes (its last `outputs` computed
// nodes), one invocation per (network, weight, sample). A non-finite output scores CE_NONFINITE
// and predicts no class. Loops: 3 x outputs trips (outputs <= 65,000 / 3, checked by the wrapper).
@compute @workgroup_size(WG)
fn wann_score(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  let ws = p.weights * p.samples;
  if (i >= p.nets * ws) { return; }
  let s = i % p.samples;
  let col = i % ws;
  let net = p.net_base + i / ws;
  let o0 = score_nets[net + 1u] - p.outputs - p.node_base;
  var best = NO_CLASS;
  var m = 0.0;
  var ok = true;
  for (var o = 0u; o < p.outputs; o++) {
    let v = values[(o0 + o) * ws + col];
    if (!finite(v)) { ok = false; }
    if (best == NO_CLASS || v > m) { m = v; best = o; }
  }
  if (!ok) {
    ce_out[i] = CE_NONFINITE;
    pred_out[i] = NO_CLASS;
    return;
  }
  var z = 0.0;
  for (var o = 0u; o < p.outputs; o++) {
    z += exp(values[(o0 + o) * ws + col] - m);
  }
  let y = labels[s];
  ce_out[i] = log(z) + m - values[(o0 + y) * ws + col];
  pred_out[i] = best;
}

@group(0) @binding(1) var<storage, read> pred_in: array<u32>;
@group(0) @binding(2) var<storage, read> vote_labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> vote_out: array<u32>;

// Majority vote over the weights, one invocation per (network, sample): the class with the most
// votes wins, ties go to the smaller class id, NO_CLASS votes do not count. Writes 1 if the vote
// is the label. Loops: weights^2 trips (weights <= 64, checked by the wrapper).
@compute @workgroup_size(WG)
fn wann_vote(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.nets * p.samples) { return; }
  let s = i % p.samples;
  let base = (i / p.samples) * p.weights * p.samples + s;
  var best = NO_CLASS;
  var bestCount = 0u;
  for (var a = 0u; a < p.weights; a++) {
    let c = pred_in[base + a * p.samples];
    if (c == NO_CLASS) { continue; }
    var n = 0u;
    for (var b = 0u; b < p.weights; b++) {
      n += select(0u, 1u, pred_in[base + b * p.samples] == c);
    }
    if (n > bestCount || (n == bestCount && c < best)) { best = c; bestCount = n; }
  }
  vote_out[i] = select(0u, 1u, best == vote_labels[s]);
}

@group(0) @binding(1) var<storage, read> r_ce: array<f32>;
@group(0) @binding(2) var<storage, read> r_pred: array<u32>;
@group(0) @binding(3) var<storage, read> r_vote: array<u32>;
@group(0) @binding(4) var<storage, read> r_labels: array<u32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

// Sums over the samples, one invocation per (network, row): rows 0..weights-1 give the mean
// cross-entropy and accuracy at that weight, row `weights` the ensemble accuracy (CE 0).
// stats[(net_base + n) * (weights + 1) * 2 + row * 2 + {0: mean CE, 1: accuracy}].
// Loop: samples trips (samples <= 65,000, checked by the wrapper).
@compute @workgroup_size(WG)
fn wann_reduce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  let rows = p.weights + 1u;
  if (i >= p.nets * rows) { return; }
  let n = i / rows;
  let r = i % rows;
  var ce = 0.0;
  var hits = 0u;
  if (r < p.weights) {
    let base = (n * p.weights + r) * p.samples;
    for (var s = 0u; s < p.samples; s++) {
      ce += r_ce[base + s];
      hits += select(0u, 1u, r_pred[base + s] == r_labels[s]);
    }
  } else {
    for (var s = 0u; s < p.samples; s++) { hits += r_vote[n * p.samples + s]; }
  }
  let o = ((p.net_base + n) * rows + r) * 2u;
  stats[o] = ce / f32(p.samples);
  stats[o + 1u] = f32(hits) / f32(p.samples);
}
