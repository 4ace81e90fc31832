/**
 * Float64 references for softmax cross-entropy and mean-squared error on dense
 * `[classes][batch]` arrays (no padding). Same formulas as shaders/loss.wgsl. The backward
 * functions take a per-sample weight `dLoss` (the kernels use `scale` for every sample), so
 * they can be finite-difference checked against a random upstream gradient.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { softmaxXentRef } from "./loss_ref.ts";
 * // 2 classes x 1 sample, equal logits: loss log(2)
 * const { loss } = softmaxXentRef(new Float64Array([0, 0]), new Uint32Array([1]), 2, 1);
 * assert.ok(Math.abs(loss[0] - Math.LN2) < 1e-15);
 * ```
 * @module
 */

/**
 * Per-sample softmax cross-entropy `loss[c] = logsumexp_k z[k][c] - z[label[c]][c]` and the
 * first index of the maximum logit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { softmaxXentRef } from "./loss_ref.ts";
 * assert.deepEqual(softmaxXentRef(new Float64Array([1, 5]), new Uint32Array([1]), 2, 1).argmax, new Uint32Array([1]));
 * ```
 */
export function softmaxXentRef(
  z: Float64Array,
  labels: ArrayLike<number>,
  classes: number,
  batch: number,
): { loss: Float64Array; argmax: Uint32Array } {
  const loss = new Float64Array(batch);
  const argmax = new Uint32Array(batch);
  for (let c = 0; c < batch; c++) {
    let m = -Infinity;
    for (let k = 0; k < classes; k++) {
      if (z[k * batch + c] > m) {
        m = z[k * batch + c];
        argmax[c] = k;
      }
    }
    let s = 0;
    for (let k = 0; k < classes; k++) s += Math.exp(z[k * batch + c] - m);
    loss[c] = m - z[labels[c] * batch + c] + Math.log(s);
  }
  return { loss, argmax };
}

/**
 * Gradient of `sum_c dLoss[c] * loss[c]` w.r.t. the logits: `dLoss[c] * (softmax - onehot)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { softmaxXentBackwardRef } from "./loss_ref.ts";
 * const g = softmaxXentBackwardRef(new Float64Array([0, 0]), new Uint32Array([1]), new Float64Array([1]), 2, 1);
 * assert.deepEqual(g, new Float64Array([0.5, -0.5]));
 * ```
 */
export function softmaxXentBackwardRef(
  z: Float64Array,
  labels: ArrayLike<number>,
  dLoss: ArrayLike<number>,
  classes: number,
  batch: number,
): Float64Array {
  const dz = new Float64Array(classes * batch);
  for (let c = 0; c < batch; c++) {
    let m = -Infinity;
    for (let k = 0; k < classes; k++) m = Math.max(m, z[k * batch + c]);
    let s = 0;
    for (let k = 0; k < classes; k++) s += Math.exp(z[k * batch + c] - m);
    for (let k = 0; k < classes; k++) {
      const i = k * batch + c;
      dz[i] = dLoss[c] * (Math.exp(z[i] - m) / s - (labels[c] === k ? 1 : 0));
    }
  }
  return dz;
}

/** Output activation fused into the MSE loss. */
export type OutputActivation = "identity" | "sigmoid";

/** The MSE target: one-hot labels (u32 per sample) or a dense `[classes][batch]` array. */
export type MseTarget = { labels: ArrayLike<number> } | { target: Float64Array };

function targetAt(t: MseTarget, k: number, c: number, batch: number): number {
  return "labels" in t ? (t.labels[c] === k ? 1 : 0) : t.target[k * batch + c];
}

function act(a: OutputActivation, z: number): number {
  return a === "sigmoid" ? 1 / (1 + Math.exp(-z)) : z;
}

/**
 * Per-sample mean-squared error `loss[c] = 0.5 * sum_k (act(z[k][c]) - t[k][c])^2`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mseRef } from "./loss_ref.ts";
 * assert.deepEqual(mseRef(new Float64Array([0, 2]), { labels: [1] }, 2, 1, "identity"), new Float64Array([0.5]));
 * ```
 */
export function mseRef(
  z: Float64Array,
  t: MseTarget,
  classes: number,
  batch: number,
  activation: OutputActivation,
): Float64Array {
  const loss = new Float64Array(batch);
  for (let c = 0; c < batch; c++) {
    for (let k = 0; k < classes; k++) {
      loss[c] += 0.5 * (act(activation, z[k * batch + c]) - targetAt(t, k, c, batch)) ** 2;
    }
  }
  return loss;
}

/**
 * Gradient of `sum_c dLoss[c] * loss[c]` w.r.t. z: `dLoss[c] * (y - t) * act'(z)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mseBackwardRef } from "./loss_ref.ts";
 * const dz = mseBackwardRef(new Float64Array([0, 2]), { labels: [1] }, [1], 2, 1, "identity");
 * assert.deepEqual(dz, new Float64Array([0, 1]));
 * ```
 */
export function mseBackwardRef(
  z: Float64Array,
  t: MseTarget,
  dLoss: ArrayLike<number>,
  classes: number,
  batch: number,
  activation: OutputActivation,
): Float64Array {
  const dz = new Float64Array(classes * batch);
  for (let c = 0; c < batch; c++) {
    for (let k = 0; k < classes; k++) {
      const i = k * batch + c;
      const y = act(activation, z[i]);
      const slope = activation === "sigmoid" ? y * (1 - y) : 1;
      dz[i] = dLoss[c] * (y - targetAt(t, k, c, batch)) * slope;
    }
  }
  return dz;
}
