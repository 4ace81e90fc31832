/**
 * Float64 references for the reductions: sums, per-sample argmax over class rows (dense
 * `[classes][batch]`, no padding; ties to the lowest index, strict `>` scan) and correct counts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { argmaxRef, sumRef } from "./reduce_ref.ts";
 * assert.deepEqual(sumRef(new Float64Array([1, 2, 3])), 6);
 * assert.deepEqual(argmaxRef(new Float64Array([1, 5, 3, 5]), 2, 2), new Uint32Array([1, 0]));
 * ```
 * @module
 */

/** Sum of the first `n` elements (default all). */
export function sumRef(x: ArrayLike<number>, n = x.length): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i];
  return s;
}

/** Sum of absolute values of the first `n` elements (for rounding-error bounds). */
export function sumAbsRef(x: ArrayLike<number>, n = x.length): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.abs(x[i]);
  return s;
}

/** Mean of the first `n` elements. */
export function meanRef(x: ArrayLike<number>, n = x.length): number {
  return sumRef(x, n) / n;
}

/**
 * `pred[b] = argmax_c x[c][b]` on dense `[classes][batch]` values: scan from class 0 with a
 * strict `>`, so the lowest index wins ties and NaN never wins unless it is at class 0.
 */
export function argmaxRef(x: ArrayLike<number>, classes: number, batch: number): Uint32Array {
  const pred = new Uint32Array(batch);
  for (let b = 0; b < batch; b++) {
    let best = x[b];
    let arg = 0;
    for (let c = 1; c < classes; c++) {
      const v = x[c * batch + b];
      if (v > best) {
        best = v;
        arg = c;
      }
    }
    pred[b] = arg;
  }
  return pred;
}

/** Number of samples with `pred[b] === labels[b]`. */
export function countCorrectRef(pred: ArrayLike<number>, labels: ArrayLike<number>): number {
  let n = 0;
  for (let b = 0; b < pred.length; b++) if (pred[b] === labels[b]) n++;
  return n;
}
