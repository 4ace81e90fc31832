/**
 * Float64 references of shaders/analysis.wgsl (dense row-major `[rows][cols]` arrays, no
 * padding).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { patchColumnsRef } from "./analysis_ref.ts";
 * const z = new Float64Array([5, 7]); // 2 rows x 1 sample
 * const x = new Float64Array([1.5]); // 1 input row
 * assert.deepEqual(patchColumnsRef(z, x, 2, 1, [{ i: 0, j: 0, w: 2 }], "rank1"), new Float64Array([2, 7]));
 * ```
 * @module
 */
import type { CarryOp, CarrySpec, MetricLoss, WeightAblation } from "./analysis.ts";
import { actForwardRef } from "./activation_ref.ts";

/** K patched copies of `cached` (`[rows][S]`) as `[rows][K·S]`. */
export function patchColumnsRef(
  cached: ArrayLike<number>,
  x: ArrayLike<number>,
  rows: number,
  samples: number,
  abl: readonly WeightAblation[],
  mode: "rank1" | "zero",
): Float64Array {
  const K = abl.length, n = K * samples;
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < K; k++) {
      for (let s = 0; s < samples; s++) {
        let v = cached[r * samples + s];
        if (r === abl[k].j) v = mode === "zero" ? 0 : v - abl[k].w * x[abl[k].i * samples + s];
        out[r * n + k * samples + s] = v;
      }
    }
  }
  return out;
}

/** `out[r][k·S+s] = cached[r][s] − old[r][s] + fresh[r][k·S+s]`, unpadded (`[rows][K·S]`). */
export function replaceTermRef(
  cached: ArrayLike<number>,
  old: ArrayLike<number>,
  fresh: ArrayLike<number>,
  rows: number,
  samples: number,
  count: number,
): Float64Array {
  const n = count * samples, out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < n; c++) {
      const s = c % samples;
      out[r * n + c] = cached[r * samples + s] - old[r * samples + s] + fresh[r * n + c];
    }
  }
  return out;
}

/** Per ablation `[loss sum, correct]` from `[classes][K·S]` logits. */
export function ablationMetricsRef(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
  samples: number,
  count: number,
  loss: MetricLoss,
): Float64Array {
  const n = count * samples;
  const out = new Float64Array(2 * count);
  for (let k = 0; k < count; k++) {
    for (let s = 0; s < samples; s++) {
      const col = k * samples + s;
      const z = Array.from({ length: classes }, (_, q) => logits[q * n + col]);
      let arg = 0;
      for (let q = 1; q < classes; q++) if (z[q] > z[arg]) arg = q;
      if (arg === labels[s]) out[2 * k + 1]++;
      if (loss === "xent") {
        const m = z[arg];
        out[2 * k] += m - z[labels[s]] + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
      } else {
        for (let q = 0; q < classes; q++) {
          const y = loss === "mse-sigmoid" ? 1 / (1 + Math.exp(-z[q])) : z[q];
          out[2 * k] += 0.5 * (y - (q === labels[s] ? 1 : 0)) ** 2;
        }
      }
    }
  }
  return out;
}

/** Row sums of squares of `[rows][batch]`. */
export function rowSumSqRef(x: ArrayLike<number>, rows: number, batch: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < batch; c++) out[r] += x[r * batch + c] ** 2;
  }
  return out;
}

/** Inputs of {@link entryScoreRef} for one entry. */
export interface EntryInputs {
  w: number;
  g: number;
  hg: number;
  fisher: number;
  fisherScale: number;
  rowSq: number;
  flowIn: number;
  flowOut: number;
}

/** One deterministic score (random excluded: it is a hash). */
export function entryScoreRef(score: string, e: EntryInputs): number {
  switch (score) {
    case "magnitude":
      return Math.abs(e.w);
    case "snip":
      return Math.abs(e.w * e.g);
    case "taylor":
      return (e.w * e.g) ** 2;
    case "obd":
      return 0.5 * e.fisherScale * e.fisher * e.w * e.w;
    case "grasp":
      return e.w * e.hg;
    case "synflow":
      return Math.abs(e.w) * e.flowIn * e.flowOut;
    case "wanda":
      return Math.abs(e.w) * Math.sqrt(e.rowSq);
  }
  throw new Error(`no reference for score ${score}`);
}

/** Batch norm eval backward `dx = dy·γ/√(var + eps)` on `[rows][batch]`. */
export function bnEvalBackwardRef(
  dy: ArrayLike<number>,
  gamma: ArrayLike<number>,
  runningVar: ArrayLike<number>,
  rows: number,
  batch: number,
  eps: number,
): Float64Array {
  const dx = new Float64Array(rows * batch);
  for (let r = 0; r < rows; r++) {
    const s = gamma[r] / Math.sqrt(runningVar[r] + eps);
    for (let c = 0; c < batch; c++) dx[r * batch + c] = dy[r * batch + c] * s;
  }
  return dx;
}

/** Batch norm eval forward `y = γ(x - mean)/√(var + eps) + β` (for gradient checks). */
export function bnEvalForwardRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  mean: ArrayLike<number>,
  runningVar: ArrayLike<number>,
  rows: number,
  batch: number,
  eps: number,
): Float64Array {
  const y = new Float64Array(rows * batch);
  for (let r = 0; r < rows; r++) {
    const s = gamma[r] / Math.sqrt(runningVar[r] + eps);
    for (let c = 0; c < batch; c++) y[r * batch + c] = (x[r * batch + c] - mean[r]) * s + beta[r];
  }
  return y;
}

/** A unit-wise chain (activation, eval batch norm, SReLU) applied to unit r's value, float64. */
export function carryChainRef(chain: readonly CarryOp[], r: number, v: number): number {
  let y = v;
  for (const op of chain) {
    if (op.kind === "act") {
      y = actForwardRef(op.activation, y, op.param);
    } else if (op.kind === "bn") {
      y = (y - op.mean[r]) * op.gamma[r] / Math.sqrt(op.variance[r] + op.eps) + op.beta[r];
    } else {
      const n = op.params.length / 4;
      const [tl, al, tr, ar] = [0, 1, 2, 3].map((q) => op.params[q * n + r]);
      y = y >= tr ? tr + ar * (y - tr) : y <= tl ? tl + al * (y - tl) : y;
    }
  }
  return y;
}

function sampleMetricsRef(z: number[], label: number, loss: MetricLoss): [number, number] {
  let arg = 0;
  for (let q = 1; q < z.length; q++) if (z[q] > z[arg]) arg = q;
  let l = 0;
  if (loss === "xent") {
    const m = z[arg];
    l = m - z[label] + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
  } else {
    for (let q = 0; q < z.length; q++) {
      const y = loss === "mse-sigmoid" ? 1 / (1 + Math.exp(-z[q])) : z[q];
      l += 0.5 * (y - (q === label ? 1 : 0)) ** 2;
    }
  }
  return [l, arg === label ? 1 : 0];
}

/**
 * Per ablation `[Σ_s Δloss_s, Σ_s Δhit_s]` over every sample (no sample lists): the ablated
 * unit's new output carried along row j of W1 (and W2) into the logits, in float64. Arrays are
 * `[rows][samples]` without padding.
 */
export function ablationCarryRef(
  s: CarrySpec,
  x0: ArrayLike<number>,
  z0: ArrayLike<number>,
  z1: ArrayLike<number>,
  logits: ArrayLike<number>,
  abl: readonly WeightAblation[],
): Float64Array {
  const S = s.samples, C = s.classes;
  const out = new Float64Array(2 * abl.length);
  abl.forEach(({ i, j, w }, k) => {
    for (let t = 0; t < S; t++) {
      const old = Array.from({ length: C }, (_, q) => logits[q * S + t]);
      const lg = old.slice();
      const zo = z0[j * S + t], zn = zo - w * x0[i * S + t];
      if (s.depth === 0) {
        lg[j] = zn;
      } else {
        const dh = carryChainRef(s.chain0, j, zn) - carryChainRef(s.chain0, j, zo);
        const r1 = s.row1!;
        for (let e = r1.ptr[j]; e < r1.ptr[j + 1]; e++) {
          const r = r1.col[e];
          if (s.depth === 1) {
            lg[r] += r1.val[e] * dh;
            continue;
          }
          const zr = z1[r * S + t];
          const dh2 = carryChainRef(s.chain1, r, zr + r1.val[e] * dh) -
            carryChainRef(s.chain1, r, zr);
          const r2 = s.row2!;
          for (let f = r2.ptr[r]; f < r2.ptr[r + 1]; f++) lg[r2.col[f]] += r2.val[f] * dh2;
        }
      }
      const a = sampleMetricsRef(old, s.labels[t], s.loss);
      const b = sampleMetricsRef(lg, s.labels[t], s.loss);
      out[2 * k] += b[0] - a[0];
      out[2 * k + 1] += b[1] - a[1];
    }
  });
  return out;
}
