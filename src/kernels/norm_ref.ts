/**
 * Float64 references for batch norm and layer norm on dense `[rows][batch]` arrays (no
 * padding; rows = features). Same formulas as shaders/norm.wgsl.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchNormTrainRef } from "./norm_ref.ts";
 * // one feature, batch 2: x = [1, 3] normalizes to about [-1, 1]
 * const r = batchNormTrainRef(new Float64Array([1, 3]), new Float64Array([1]), new Float64Array([0]), 1, 2, 0);
 * assert.deepEqual(r.y, new Float64Array([-1, 1]));
 * ```
 * @module
 */

/** Per-row (batch norm) or per-sample (layer norm) statistics. */
export interface NormStats {
  mean: Float64Array;
  /** Biased variance (divided by the count). */
  variance: Float64Array;
  /** `1 / sqrt(variance + eps)`. */
  invstd: Float64Array;
}

/**
 * Batch-norm statistics over the batch of each row (two-pass, biased variance).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchNormStatsRef } from "./norm_ref.ts";
 * assert.deepEqual(batchNormStatsRef(new Float64Array([1, 3]), 1, 2, 0).variance, new Float64Array([1]));
 * ```
 */
export function batchNormStatsRef(
  x: Float64Array,
  rows: number,
  batch: number,
  eps: number,
): NormStats {
  const mean = new Float64Array(rows);
  const variance = new Float64Array(rows);
  const invstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < batch; c++) s += x[r * batch + c];
    const m = s / batch;
    let v = 0;
    for (let c = 0; c < batch; c++) v += (x[r * batch + c] - m) ** 2;
    mean[r] = m;
    variance[r] = v / batch;
    invstd[r] = 1 / Math.sqrt(v / batch + eps);
  }
  return { mean, variance, invstd };
}

/**
 * Batch-norm training forward: `y = gamma * (x - mean) * invstd + beta` with batch statistics.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchNormTrainRef } from "./norm_ref.ts";
 * const r = batchNormTrainRef(new Float64Array([0, 2]), new Float64Array([2]), new Float64Array([1]), 1, 2, 0);
 * assert.deepEqual(r.y, new Float64Array([-1, 3]));
 * assert.deepEqual(r.mean, new Float64Array([1]));
 * ```
 */
export function batchNormTrainRef(
  x: Float64Array,
  gamma: Float64Array,
  beta: Float64Array,
  rows: number,
  batch: number,
  eps: number,
): NormStats & { y: Float64Array } {
  const st = batchNormStatsRef(x, rows, batch, eps);
  const y = new Float64Array(rows * batch);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < batch; c++) {
      const i = r * batch + c;
      y[i] = gamma[r] * (x[i] - st.mean[r]) * st.invstd[r] + beta[r];
    }
  }
  return { ...st, y };
}

/**
 * Running-statistics update (PyTorch convention): `running = (1 - m) * running + m * batchStat`,
 * with the unbiased variance `variance * batch / (batch - 1)` (factor 1 when batch is 1).
 * Returns new arrays.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchNormRunningRef } from "./norm_ref.ts";
 * const r = batchNormRunningRef(new Float64Array([0]), new Float64Array([1]), new Float64Array([2]), new Float64Array([1]), 2, 0.5);
 * assert.deepEqual(r.mean, new Float64Array([1]));
 * assert.deepEqual(r.variance, new Float64Array([1.5]));
 * ```
 */
export function batchNormRunningRef(
  runningMean: Float64Array,
  runningVar: Float64Array,
  mean: Float64Array,
  variance: Float64Array,
  batch: number,
  momentum: number,
): { mean: Float64Array; variance: Float64Array } {
  const f = batch / Math.max(batch - 1, 1);
  return {
    mean: runningMean.map((v, r) => (1 - momentum) * v + momentum * mean[r]),
    variance: runningVar.map((v, r) => (1 - momentum) * v + momentum * variance[r] * f),
  };
}

/**
 * Batch-norm eval forward: `y = gamma * (x - runningMean) / sqrt(runningVar + eps) + beta`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchNormEvalRef } from "./norm_ref.ts";
 * const one = new Float64Array([1]);
 * const y = batchNormEvalRef(new Float64Array([3]), one, new Float64Array([0]), one, new Float64Array([4]), 1, 1, 0);
 * assert.deepEqual(y, new Float64Array([1]));
 * ```
 */
export function batchNormEvalRef(
  x: Float64Array,
  gamma: Float64Array,
  beta: Float64Array,
  runningMean: Float64Array,
  runningVar: Float64Array,
  rows: number,
  batch: number,
  eps: number,
): Float64Array {
  const y = new Float64Array(rows * batch);
  for (let r = 0; r < rows; r++) {
    const k = gamma[r] / Math.sqrt(runningVar[r] + eps);
    for (let c = 0; c < batch; c++) {
      y[r * batch + c] = (x[r * batch + c] - runningMean[r]) * k + beta[r];
    }
  }
  return y;
}

/** Gradients of a normalization layer. */
export interface NormGrads {
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

/**
 * Batch-norm training backward from the saved statistics:
 * `dx = gamma * invstd * (dy - mean_c(dy) - xhat * mean_c(dy * xhat))`,
 * `dgamma = sum_c dy * xhat`, `dbeta = sum_c dy`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchNormBackwardRef, batchNormStatsRef } from "./norm_ref.ts";
 * const x = new Float64Array([0, 2]);
 * const s = batchNormStatsRef(x, 1, 2, 0);
 * const g = batchNormBackwardRef(x, new Float64Array([1]), new Float64Array([1, 1]), s.mean, s.invstd, 1, 2);
 * assert.deepEqual(g.dx, new Float64Array([0, 0]));
 * assert.deepEqual(g.dbeta, new Float64Array([2]));
 * ```
 */
export function batchNormBackwardRef(
  x: Float64Array,
  gamma: Float64Array,
  dy: Float64Array,
  mean: Float64Array,
  invstd: Float64Array,
  rows: number,
  batch: number,
): NormGrads {
  const dx = new Float64Array(rows * batch);
  const dgamma = new Float64Array(rows);
  const dbeta = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sdy = 0;
    let sdyx = 0;
    for (let c = 0; c < batch; c++) {
      const i = r * batch + c;
      sdy += dy[i];
      sdyx += dy[i] * (x[i] - mean[r]) * invstd[r];
    }
    dbeta[r] = sdy;
    dgamma[r] = sdyx;
    for (let c = 0; c < batch; c++) {
      const i = r * batch + c;
      const xh = (x[i] - mean[r]) * invstd[r];
      dx[i] = gamma[r] * invstd[r] * (dy[i] - sdy / batch - xh * sdyx / batch);
    }
  }
  return { dx, dgamma, dbeta };
}

/**
 * Layer-norm statistics over the rows of each sample (two-pass, biased variance); arrays of `batch`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layerNormStatsRef } from "./norm_ref.ts";
 * // 2 features x 1 sample: column [1, 3]
 * assert.deepEqual(layerNormStatsRef(new Float64Array([1, 3]), 2, 1, 0).mean, new Float64Array([2]));
 * ```
 */
export function layerNormStatsRef(
  x: Float64Array,
  rows: number,
  batch: number,
  eps: number,
): NormStats {
  const mean = new Float64Array(batch);
  const variance = new Float64Array(batch);
  const invstd = new Float64Array(batch);
  for (let c = 0; c < batch; c++) {
    let s = 0;
    for (let r = 0; r < rows; r++) s += x[r * batch + c];
    const m = s / rows;
    let v = 0;
    for (let r = 0; r < rows; r++) v += (x[r * batch + c] - m) ** 2;
    mean[c] = m;
    variance[c] = v / rows;
    invstd[c] = 1 / Math.sqrt(v / rows + eps);
  }
  return { mean, variance, invstd };
}

/**
 * Layer-norm forward: `y[r][c] = gamma[r] * (x[r][c] - mean[c]) * invstd[c] + beta[r]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layerNormRef } from "./norm_ref.ts";
 * const r = layerNormRef(new Float64Array([1, 3]), new Float64Array([1, 1]), new Float64Array([0, 0]), 2, 1, 0);
 * assert.deepEqual(r.y, new Float64Array([-1, 1]));
 * ```
 */
export function layerNormRef(
  x: Float64Array,
  gamma: Float64Array,
  beta: Float64Array,
  rows: number,
  batch: number,
  eps: number,
): NormStats & { y: Float64Array } {
  const st = layerNormStatsRef(x, rows, batch, eps);
  const y = new Float64Array(rows * batch);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < batch; c++) {
      const i = r * batch + c;
      y[i] = gamma[r] * (x[i] - st.mean[c]) * st.invstd[c] + beta[r];
    }
  }
  return { ...st, y };
}

/**
 * Layer-norm backward from the saved per-sample statistics: with `g = dy * gamma[r]`,
 * `dx = invstd * (g - mean_r(g) - xhat * mean_r(g * xhat))`, `dgamma[r] = sum_c dy * xhat`,
 * `dbeta[r] = sum_c dy`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layerNormBackwardRef, layerNormStatsRef } from "./norm_ref.ts";
 * const x = new Float64Array([1, 3]);
 * const s = layerNormStatsRef(x, 2, 1, 0);
 * const g = layerNormBackwardRef(x, new Float64Array([1, 1]), new Float64Array([1, 1]), s.mean, s.invstd, 2, 1);
 * assert.deepEqual(g.dx, new Float64Array([0, 0]));
 * assert.deepEqual(g.dgamma, new Float64Array([-1, 1]));
 * ```
 */
export function layerNormBackwardRef(
  x: Float64Array,
  gamma: Float64Array,
  dy: Float64Array,
  mean: Float64Array,
  invstd: Float64Array,
  rows: number,
  batch: number,
): NormGrads {
  const dx = new Float64Array(rows * batch);
  const dgamma = new Float64Array(rows);
  const dbeta = new Float64Array(rows);
  for (let c = 0; c < batch; c++) {
    let sg = 0;
    let sgx = 0;
    for (let r = 0; r < rows; r++) {
      const i = r * batch + c;
      const g = dy[i] * gamma[r];
      const xh = (x[i] - mean[c]) * invstd[c];
      sg += g;
      sgx += g * xh;
      dgamma[r] += dy[i] * xh;
      dbeta[r] += dy[i];
    }
    for (let r = 0; r < rows; r++) {
      const i = r * batch + c;
      const xh = (x[i] - mean[c]) * invstd[c];
      dx[i] = invstd[c] * (dy[i] * gamma[r] - sg / rows - xh * sgx / rows);
    }
  }
  return { dx, dgamma, dbeta };
}
