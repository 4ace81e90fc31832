/**
 * Float64 references for the sparse kernels (sparse.ts) on dense, unpadded feature-major arrays
 * `[features][batch]`. The layer's structure comes from a {@link CsrHost}; the weights are
 * passed separately as float64 (in the order of `host.values`) so gradient checks can perturb them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { csrFromCoo } from "../sparse/csr.ts";
 * import { spmmRef } from "./sparse_ref.ts";
 * const h = csrFromCoo(2, 1, [0, 1], [0, 0], [2, -1]);
 * const { y } = spmmRef(h, Float64Array.from(h.values), new Float64Array([1, 2, 4, 1]), 2);
 * assert.deepEqual(y, new Float64Array([-2, 3]));
 * ```
 * @module
 */
import type { CsrHost } from "../sparse/csr.ts";
import { activationParam } from "./activation_ids.ts";
import { actDerivativeRef, actForwardRef } from "./activation_ref.ts";

/** The structure a reference needs: both orientations' indices (values are passed separately). */
export type CsrStructure = Pick<
  CsrHost,
  "nIn" | "nOut" | "nnz" | "rowPtrT" | "colT" | "rowPtr" | "col" | "perm"
>;

/**
 * `z[j][b] = sum_k values[k]·x[colT[k]][b] + bias[j]` (rows `j` of CSR(Wᵀ)), `y = act(z)` with
 * the activation references of activation_ref.ts (`actParam` defaults per activation_ids.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { csrFromCoo } from "../sparse/csr.ts";
 * import { spmmRef } from "./sparse_ref.ts";
 * const h = csrFromCoo(1, 1, [0], [0], [3]);
 * const r = spmmRef(h, new Float64Array([3]), new Float64Array([-1]), 1, new Float64Array([1]), "relu");
 * assert.deepEqual(r, { z: new Float64Array([-2]), y: new Float64Array([0]) });
 * ```
 */
export function spmmRef(
  h: CsrStructure,
  values: Float64Array,
  x: Float64Array,
  batch: number,
  bias?: Float64Array,
  activation = "identity",
  actParam?: number,
): { z: Float64Array; y: Float64Array } {
  const a = activationParam(activation, actParam);
  const z = new Float64Array(h.nOut * batch);
  const y = new Float64Array(h.nOut * batch);
  for (let j = 0; j < h.nOut; j++) {
    const o = j * batch;
    for (let k = h.rowPtrT[j]; k < h.rowPtrT[j + 1]; k++) {
      const w = values[k];
      const xi = h.colT[k] * batch;
      for (let b = 0; b < batch; b++) z[o + b] += w * x[xi + b];
    }
    for (let b = 0; b < batch; b++) {
      if (bias) z[o + b] += bias[j];
      y[o + b] = actForwardRef(activation, z[o + b], a);
    }
  }
  return { z, y };
}

/**
 * `dx[i][b] = (sum_m values[perm[m]]·dy[col[m]][b]) · act'(z[i][b])` over rows `i` of CSR(W);
 * the derivative factor only when `z` is given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { csrFromCoo } from "../sparse/csr.ts";
 * import { spmmTRef } from "./sparse_ref.ts";
 * const h = csrFromCoo(1, 2, [0, 0], [0, 1], [1, -1]);
 * assert.deepEqual(spmmTRef(h, new Float64Array([1, -1]), new Float64Array([1, 3]), 1), new Float64Array([-2]));
 * ```
 */
export function spmmTRef(
  h: CsrStructure,
  values: Float64Array,
  dy: Float64Array,
  batch: number,
  z?: Float64Array,
  activation = "identity",
  actParam?: number,
): Float64Array {
  const a = activationParam(activation, actParam);
  const dx = new Float64Array(h.nIn * batch);
  for (let i = 0; i < h.nIn; i++) {
    const o = i * batch;
    for (let m = h.rowPtr[i]; m < h.rowPtr[i + 1]; m++) {
      const w = values[h.perm[m]];
      const di = h.col[m] * batch;
      for (let b = 0; b < batch; b++) dx[o + b] += w * dy[di + b];
    }
    if (z) {
      for (let b = 0; b < batch; b++) dx[o + b] *= actDerivativeRef(activation, z[o + b], a);
    }
  }
  return dx;
}

/**
 * `dvalues[k] = sum_b x[colT[k]][b]·dy[j][b]` for `k` in row `j` of CSR(Wᵀ).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { csrFromCoo } from "../sparse/csr.ts";
 * import { sddmmRef } from "./sparse_ref.ts";
 * const h = csrFromCoo(2, 1, [0, 1], [0, 0]);
 * assert.deepEqual(sddmmRef(h, new Float64Array([1, 2, 3, 4]), new Float64Array([1, 1]), 2), new Float64Array([3, 7]));
 * ```
 */
export function sddmmRef(
  h: CsrStructure,
  x: Float64Array,
  dy: Float64Array,
  batch: number,
): Float64Array {
  const dv = new Float64Array(h.nnz);
  for (let j = 0; j < h.nOut; j++) {
    for (let k = h.rowPtrT[j]; k < h.rowPtrT[j + 1]; k++) {
      const xi = h.colT[k] * batch;
      let s = 0;
      for (let b = 0; b < batch; b++) s += x[xi + b] * dy[j * batch + b];
      dv[k] = s;
    }
  }
  return dv;
}

/**
 * Per-element sums of absolute terms of {@link spmmRef}'s `z` (without bias): the scale of the
 * float32 rounding error of the GPU result, for tolerances.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { csrFromCoo } from "../sparse/csr.ts";
 * import { spmmAbsRef } from "./sparse_ref.ts";
 * const h = csrFromCoo(2, 1, [0, 1], [0, 0]);
 * assert.deepEqual(spmmAbsRef(h, new Float64Array([2, -1]), new Float64Array([1, -4]), 1), new Float64Array([6]));
 * ```
 */
export function spmmAbsRef(
  h: CsrStructure,
  values: Float64Array,
  x: Float64Array,
  batch: number,
): Float64Array {
  const abs = (a: Float64Array) => a.map(Math.abs);
  return spmmRef(h, abs(values), abs(x), batch).z;
}
