/**
 * Float64 references for bias add and bias gradient, on dense `[rows][batch]` arrays (no padding).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { biasAddRef } from "./bias_ref.ts";
 * const y = biasAddRef(new Float64Array([1, 2, 3, 4]), new Float64Array([10, 20]), 2, 2);
 * assert.deepEqual(y, new Float64Array([11, 12, 23, 24]));
 * ```
 * @module
 */

/** `y[r][c] = x[r][c] + b[r]`. */
export function biasAddRef(
  x: Float64Array,
  b: Float64Array,
  rows: number,
  batch: number,
): Float64Array {
  const y = new Float64Array(rows * batch);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < batch; c++) y[r * batch + c] = x[r * batch + c] + b[r];
  }
  return y;
}

/** `db[r] = sum_c dy[r][c]`. */
export function biasGradRef(dy: Float64Array, rows: number, batch: number): Float64Array {
  const db = new Float64Array(rows);
  for (let r = 0; r < rows; r++) for (let c = 0; c < batch; c++) db[r] += dy[r * batch + c];
  return db;
}
