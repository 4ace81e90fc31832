/**
 * Float64 reference of the WANN evaluator (shaders/wann.wgsl): node values of every network at
 * every shared weight on every sample, softmax cross-entropy and argmax of the outputs, the
 * majority vote over weights, and the per-weight / ensemble statistics.
 *
 * Arithmetic inside a node is float64; each node's value is then rounded to float32 (what the
 * GPU stores), so an overflow to ±Infinity happens where it happens on the GPU.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packNets, WANN_ACT } from "./wann_net.ts";
 * import { wannEvalRef } from "./wann_ref.ts";
 * // One input; output 0 = linear(w * x), output 1 = linear(w * bias).
 * const net = packNets([{ features: 1, outputs: 2, act: [WANN_ACT.linear, WANN_ACT.linear], incoming: [[1], [0]] }]);
 * const r = wannEvalRef(net, new Float64Array([3, -3]), new Uint32Array([0, 0]), [1]);
 * assert.deepEqual(Array.from(r.pred), [0, 1]);
 * assert.deepEqual(r.stats[1], 0.5); // accuracy at w = 1
 * ```
 * @module
 */
import { type PackedNets, WANN_ACTIVATIONS } from "./wann_net.ts";

/** Cross-entropy charged when an output is not finite (matches the shader). */
export const CE_NONFINITE = 100;
/** "No class" prediction (a non-finite output). */
export const NO_CLASS = 0xffffffff;

const ACT: ((v: number) => number)[] = [];
for (const a of WANN_ACTIVATIONS) ACT[a.id] = a.f;

/** Everything the evaluator computes, in float64. */
export interface WannRefResult {
  /** Per network: node values `[node][weight][sample]`. */
  values: Float64Array[];
  /** `[net][weight][sample]` cross-entropy. */
  ce: Float64Array;
  /** `[net][weight][sample]` argmax (NO_CLASS when an output is not finite). */
  pred: Uint32Array;
  /** `[net][sample]` 1 if the majority vote over weights is the label. */
  vote: Uint32Array;
  /** `[net][weights + 1][2]`: mean CE and accuracy per weight, then (0, ensemble accuracy). */
  stats: Float64Array;
}

/**
 * Evaluates every network of `p` at every weight on `samples` samples. `x` is feature-major
 * `[features][samples]`; `labels` are in `0..outputs-1`.
 */
export function wannEvalRef(
  p: PackedNets,
  x: ArrayLike<number>,
  labels: ArrayLike<number>,
  weights: readonly number[],
): WannRefResult {
  const S = labels.length, W = weights.length, F = p.features;
  const values: Float64Array[] = [];
  const ce = new Float64Array(p.nets * W * S);
  const pred = new Uint32Array(p.nets * W * S);
  for (let n = 0; n < p.nets; n++) {
    const first = p.netNode[n], count = p.netNode[n + 1] - first;
    const v = new Float64Array(count * W * S);
    for (let wi = 0; wi < W; wi++) {
      for (let s = 0; s < S; s++) {
        const col = wi * S + s;
        for (let k = 0; k < count; k++) {
          let acc = 0;
          for (let e = p.nodePtr[first + k]; e < p.nodePtr[first + k + 1]; e++) {
            const src = p.edgeSrc[e];
            acc += src === 0 ? 1 : src <= F ? x[(src - 1) * S + s] : v[(src - F - 1) * W * S + col];
          }
          v[k * W * S + col] = Math.fround(ACT[p.nodeAct[first + k]](weights[wi] * acc));
        }
        const o0 = count - p.outputs;
        let best = NO_CLASS, m = 0, ok = true;
        for (let o = 0; o < p.outputs; o++) {
          const y = v[(o0 + o) * W * S + col];
          if (!Number.isFinite(y)) ok = false;
          if (best === NO_CLASS || y > m) {
            m = y;
            best = o;
          }
        }
        const i = (n * W + wi) * S + s;
        if (!ok) {
          ce[i] = CE_NONFINITE;
          pred[i] = NO_CLASS;
          continue;
        }
        let z = 0;
        for (let o = 0; o < p.outputs; o++) z += Math.exp(v[(o0 + o) * W * S + col] - m);
        ce[i] = Math.log(z) + m - v[(o0 + labels[s]) * W * S + col];
        pred[i] = best;
      }
    }
    values.push(v);
  }
  const { vote, stats } = wannStatsRef(ce, pred, labels, p.nets, W);
  return { values, ce, pred, vote, stats };
}

/** Majority vote (ties to the smaller class, NO_CLASS ignored) and per-weight / ensemble statistics. */
export function wannStatsRef(
  ce: ArrayLike<number>,
  pred: ArrayLike<number>,
  labels: ArrayLike<number>,
  nets: number,
  W: number,
): { vote: Uint32Array; stats: Float64Array } {
  const S = labels.length;
  const vote = new Uint32Array(nets * S);
  const stats = new Float64Array(nets * (W + 1) * 2);
  for (let n = 0; n < nets; n++) {
    let ens = 0;
    for (let s = 0; s < S; s++) {
      const count = new Map<number, number>();
      for (let wi = 0; wi < W; wi++) {
        const c = pred[(n * W + wi) * S + s];
        if (c !== NO_CLASS) count.set(c, (count.get(c) ?? 0) + 1);
      }
      let best = NO_CLASS, bc = 0;
      for (const [c, k] of count) {
        if (k > bc || (k === bc && c < best)) {
          best = c;
          bc = k;
        }
      }
      vote[n * S + s] = best === labels[s] ? 1 : 0;
      ens += vote[n * S + s];
    }
    for (let wi = 0; wi < W; wi++) {
      let sum = 0, hits = 0;
      for (let s = 0; s < S; s++) {
        const i = (n * W + wi) * S + s;
        sum += ce[i];
        if (pred[i] === labels[s]) hits++;
      }
      stats[(n * (W + 1) + wi) * 2] = sum / S;
      stats[(n * (W + 1) + wi) * 2 + 1] = hits / S;
    }
    stats[(n * (W + 1) + W) * 2 + 1] = ens / S;
  }
  return { vote, stats };
}
