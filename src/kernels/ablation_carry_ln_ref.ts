/**
 * Float64 reference of shaders/ablation_carry_ln.wgsl: every ablation recomputed on every sample
 * from the cached activations, with each chain's layer norm evaluated over the whole layer from
 * scratch (no sample lists, no incremental statistics), so it checks the kernel's shortcuts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chainVecRef } from "./ablation_carry_ln_ref.ts";
 * // A layer norm (gamma 1, beta 0, eps 0) over [1, 3] -> [-1, 1], then ReLU.
 * const ln = { kind: "ln" as const, gamma: Float32Array.of(1, 1), beta: Float32Array.of(0, 0), eps: 0 };
 * const relu = { kind: "act" as const, activation: "relu", param: 0 };
 * assert.deepEqual([...chainVecRef([ln, relu], [1, 3])], [0, 1]);
 * ```
 * @module
 */
import type { CarryLnOp, CarryLnSpec } from "./ablation_carry_ln.ts";
import type { MetricLoss, WeightAblation } from "./analysis.ts";
import { carryChainRef } from "./analysis_ref.ts";

/** A chain (unit-wise ops and layer norms) applied to one sample's whole layer, float64. */
export function chainVecRef(chain: readonly CarryLnOp[], v: ArrayLike<number>): Float64Array {
  let y = Float64Array.from(v);
  for (const op of chain) {
    if (op.kind === "ln") {
      const n = y.length;
      const m = y.reduce((a, b) => a + b, 0) / n;
      const va = y.reduce((a, b) => a + (b - m) ** 2, 0) / n;
      const rs = 1 / Math.sqrt(va + op.eps);
      y = y.map((u, r) => op.gamma[r] * (u - m) * rs + op.beta[r]);
    } else {
      y = y.map((u, r) => carryChainRef([op], r, u));
    }
  }
  return y;
}

function metricsRef(z: Float64Array, label: number, loss: MetricLoss): [number, number] {
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
 * Per ablation `[Σ_s Δloss_s, Σ_s Δhit_s]` over every sample. Arrays are `[rows][samples]`
 * without padding: `z0` the ablated layer's pre-activation (`n0` rows), `x0` its input, `z1`
 * W1's cached pre-activation (depth 2), `logits` the cached logits.
 */
export function ablationCarryLnRef(
  s: CarryLnSpec,
  x0: ArrayLike<number>,
  z0: ArrayLike<number>,
  z1: ArrayLike<number>,
  logits: ArrayLike<number>,
  abl: readonly WeightAblation[],
): Float64Array {
  const S = s.samples, C = s.classes, n0 = s.n0;
  const n1 = s.depth === 2 ? s.row2!.ptr.length - 1 : 0;
  const out = new Float64Array(2 * abl.length);
  const times = (h: Float64Array, w: CarrySpecRows, cols: number) => {
    const y = new Float64Array(cols);
    for (let r = 0; r < h.length; r++) {
      for (let e = w.ptr[r]; e < w.ptr[r + 1]; e++) y[w.col[e]] += h[r] * w.val[e];
    }
    return y;
  };
  abl.forEach(({ i, j, w }, k) => {
    for (let t = 0; t < S; t++) {
      const old = Float64Array.from({ length: C }, (_, q) => logits[q * S + t]);
      const zo = Float64Array.from({ length: n0 }, (_, r) => z0[r * S + t]);
      const zn = zo.slice();
      zn[j] -= w * x0[i * S + t];
      const h0o = chainVecRef(s.chain0, zo), h0n = chainVecRef(s.chain0, zn);
      const dh0 = h0n.map((v, r) => v - h0o[r]);
      let dl: Float64Array;
      if (s.depth === 1) {
        dl = times(dh0, s.row1, C);
      } else {
        const z1o = Float64Array.from({ length: n1 }, (_, c) => z1[c * S + t]);
        const dz1 = times(dh0, s.row1, n1);
        const h1o = chainVecRef(s.chain1, z1o);
        const h1n = chainVecRef(s.chain1, z1o.map((v, c) => v + dz1[c]));
        dl = times(h1n.map((v, c) => v - h1o[c]), s.row2!, C);
      }
      const a = metricsRef(old, s.labels[t], s.loss);
      const b = metricsRef(old.map((v, q) => v + dl[q]), s.labels[t], s.loss);
      out[2 * k] += b[0] - a[0];
      out[2 * k + 1] += b[1] - a[1];
    }
  });
  return out;
}

type CarrySpecRows = CarryLnSpec["row1"];
