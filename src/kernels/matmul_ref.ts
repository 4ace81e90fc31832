/**
 * Float64 reference for the dense matmul family: `C = op(A)·op(B)` on dense row-major arrays
 * without padding (A is `[m][k]`, or `[k][m]` when transposed; B is `[k][n]`, or `[n][k]`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matmulRef } from "./matmul_ref.ts";
 * // [1 2; 3 4] · [5; 6] = [17; 39]
 * const c = matmulRef(new Float64Array([1, 2, 3, 4]), new Float64Array([5, 6]), 2, 1, 2);
 * assert.deepEqual(c, new Float64Array([17, 39]));
 * ```
 * @module
 */

/**
 * Options of {@link matmulRef}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matmulRef, type MatmulRefOptions } from "./matmul_ref.ts";
 * const o: MatmulRefOptions = { transB: true, c: new Float64Array([1]) };
 * assert.deepEqual(matmulRef(new Float64Array([2]), new Float64Array([3]), 1, 1, 1, o), new Float64Array([7]));
 * ```
 */
export interface MatmulRefOptions {
  /** A is stored as `[k][m]` (use Aᵀ). */
  transA?: boolean;
  /** B is stored as `[n][k]` (use Bᵀ). */
  transB?: boolean;
  /** Initial C `[m][n]` to add to (`C += op(A)·op(B)`); not modified. */
  c?: Float64Array;
}

/**
 * `op(A)·op(B)` (+ `c` when given) as a new dense `[m][n]` array.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matmulRef } from "./matmul_ref.ts";
 * // Aᵀ·B with A = [1 2] stored as [k=1][m=2], B = [3] ([k=1][n=1]): [3; 6]
 * const c = matmulRef(new Float64Array([1, 2]), new Float64Array([3]), 2, 1, 1, { transA: true });
 * assert.deepEqual(c, new Float64Array([3, 6]));
 * ```
 */
export function matmulRef(
  a: Float64Array,
  b: Float64Array,
  m: number,
  n: number,
  k: number,
  opts: MatmulRefOptions = {},
): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = opts.c ? opts.c[i * n + j] : 0;
      for (let t = 0; t < k; t++) {
        const x = opts.transA ? a[t * m + i] : a[i * k + t];
        const y = opts.transB ? b[j * k + t] : b[t * n + j];
        s += x * y;
      }
      out[i * n + j] = s;
    }
  }
  return out;
}

/**
 * Transpose of a dense row-major `[rows][cols]` array.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { transposeRef } from "./matmul_ref.ts";
 * assert.deepEqual(transposeRef(new Float64Array([1, 2, 3, 4, 5, 6]), 2, 3), new Float64Array([1, 4, 2, 5, 3, 6]));
 * ```
 */
export function transposeRef(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/**
 * Gradients of `C = A·B` (A `[m][k]`, B `[k][n]`) for an upstream `dC [m][n]`:
 * `dA = dC·Bᵀ` and `dB = Aᵀ·dC`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matmulGradRef } from "./matmul_ref.ts";
 * const [dA, dB] = matmulGradRef(new Float64Array([2]), new Float64Array([3]), new Float64Array([1]), 1, 1, 1);
 * assert.deepEqual(dA[0], 3);
 * assert.deepEqual(dB[0], 2);
 * ```
 */
export function matmulGradRef(
  a: Float64Array,
  b: Float64Array,
  dc: Float64Array,
  m: number,
  n: number,
  k: number,
): [Float64Array, Float64Array] {
  return [
    matmulRef(dc, b, m, k, n, { transB: true }),
    matmulRef(a, dc, k, n, m, { transA: true }),
  ];
}
