/**
 * Float64 references for the optimizer steps (PyTorch's `torch.optim.SGD`, `Adam`, `AdamW`
 * update rules, dampening 0) and the state maintenance kernels. All update `param` and the state
 * arrays in place; `t` is the 1-based step number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sgdRef } from "./optim_ref.ts";
 * const w = new Float64Array([1, 2]);
 * const v = new Float64Array(2);
 * sgdRef(w, new Float64Array([1, 1]), v, { lr: 0.1, momentum: 0.9 });
 * assert.deepEqual(w, new Float64Array([0.9, 1.9]));
 * ```
 * @module
 */

/** SGD hyperparameters. */
export interface SgdRefOpts {
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

/**
 * One SGD step. With `momentum > 0`, `vel` carries the momentum buffer (starts at zero, which
 * makes the first step's `v = g` exactly as PyTorch's lazily initialized buffer).
 */
export function sgdRef(
  param: Float64Array,
  grad: Float64Array,
  vel: Float64Array | null,
  o: SgdRefOpts,
): void {
  const mu = o.momentum ?? 0;
  const wd = o.weightDecay ?? 0;
  for (let i = 0; i < param.length; i++) {
    let g = grad[i] + wd * param[i];
    if (mu > 0) {
      if (!vel) throw new Error("sgdRef: momentum needs a velocity array");
      vel[i] = mu * vel[i] + g;
      g = o.nesterov ? g + mu * vel[i] : vel[i];
    }
    param[i] -= o.lr * g;
  }
}

/** Adam/AdamW hyperparameters (`decoupled` = AdamW). */
export interface AdamRefOpts {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
}

/** One Adam (L2 decay) or AdamW (decoupled decay) step number `t` (1-based). */
export function adamRef(
  param: Float64Array,
  grad: Float64Array,
  m: Float64Array,
  v: Float64Array,
  t: number,
  o: AdamRefOpts,
): void {
  const bc1 = 1 - Math.pow(o.beta1, t);
  const bc2 = 1 - Math.pow(o.beta2, t);
  for (let i = 0; i < param.length; i++) {
    let g = grad[i];
    if (o.decoupled) param[i] *= 1 - o.lr * o.weightDecay;
    else g += o.weightDecay * param[i];
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
    const mHat = m[i] / bc1;
    const vHat = v[i] / bc2;
    param[i] -= (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
  }
}

/** `target[k] = 0` where `mask[k] != 0`. */
export function zeroAtRef(target: Float64Array, mask: ArrayLike<number>): void {
  for (let k = 0; k < target.length; k++) if (mask[k] !== 0) target[k] = 0;
}

/** `dst[k] = from[k] < src.length ? src[from[k]] : 0`. */
export function remapRef(src: Float64Array, from: ArrayLike<number>): Float64Array {
  const dst = new Float64Array(from.length);
  for (let k = 0; k < from.length; k++) dst[k] = from[k] < src.length ? src[from[k]] : 0;
  return dst;
}
