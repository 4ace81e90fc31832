/**
 * Float64 references for exact LSTM ablation (ablation_lstm.ts) on dense, unpadded arrays
 * `[rows][batch]`: one step of the ablated copies ({@link ablationLstmStepRef}), and the naive
 * whole-model reference ({@link lstmAblationRef}): for each ablation, zero the weight (or the
 * unit's output at every step) in a float64 copy of the model, run the full forward (LSTM, then a
 * head of dense layers) and score it with {@link ablationMetricsRef}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lstmModelForwardRef } from "./ablation_lstm_ref.ts";
 * // H = 1, F = 1, T = 1, one sample, no head: all pre-activations 0 -> h = 0.5·tanh(0) = 0
 * const m = {
 *   steps: 1, features: 1, hidden: 1, wx: new Float64Array(4), wh: new Float64Array(4),
 *   bias: new Float64Array(4), head: [],
 * };
 * assert.deepEqual([...lstmModelForwardRef(m, new Float64Array([3]), 1)], [0]);
 * ```
 * @module
 */
import { lstmCellForwardRef } from "./lstm_ref.ts";
import { actForwardRef } from "./activation_ref.ts";
import { activationParam } from "./activation_ids.ts";
import { ablationMetricsRef } from "./analysis_ref.ts";
import type { MetricLoss } from "./analysis.ts";
import type { LstmAblationSpec } from "./ablation_lstm.ts";

/** A dense layer of the head: `y = act(Wᵀ·x + b)`, `W` row-major `[nIn][nOut]`. */
export interface DenseRefLayer {
  nIn: number;
  nOut: number;
  w: Float64Array;
  b: Float64Array;
  act: string;
  actParam?: number;
}

/** An LSTM model in float64: the layer (dense `wx` `[F][4H]`, `wh` `[H][4H]`, `bias` `[4H]`) and its head. */
export interface LstmRefModel {
  steps: number;
  features: number;
  hidden: number;
  wx: Float64Array;
  wh: Float64Array;
  bias: Float64Array;
  head: DenseRefLayer[];
}

/**
 * One step of the ablated copies: `zx` `[4H][S]` (this step's input part, bias included), `zh`
 * `[4H][K·S]` and `hPrev` `[H][K·S]` (null at t = 0), `cPrev` `[H][K·S]` (null at t = 0), `xt`
 * `[F][S]` (this step's input). Returns `c` and `h` `[H][K·S]`.
 */
export function ablationLstmStepRef(
  a: {
    zx: Float64Array;
    zh: Float64Array | null;
    hPrev: Float64Array | null;
    cPrev: Float64Array | null;
    xt: Float64Array;
    hidden: number;
    samples: number;
    ablations: readonly LstmAblationSpec[];
  },
): { c: Float64Array; h: Float64Array } {
  const H = a.hidden, S = a.samples, K = a.ablations.length, N = K * S;
  const z = new Float64Array(4 * H * N);
  for (let r = 0; r < 4 * H; r++) {
    for (let n = 0; n < N; n++) z[r * N + n] = a.zx[r * S + (n % S)] + (a.zh ? a.zh[r * N + n] : 0);
  }
  a.ablations.forEach((ab, k) => {
    if (ab.kind === "none" || ab.kind === "unit") return;
    const b = ab.b ?? 0, w = ab.w ?? 0;
    for (let s = 0; s < S; s++) {
      const n = k * S + s;
      const d = ab.kind === "wx"
        ? w * a.xt[(ab.a ?? 0) * S + s]
        : ab.kind === "wh"
        ? (a.hPrev ? w * a.hPrev[(ab.a ?? 0) * N + n] : 0)
        : w;
      z[b * N + n] -= d;
    }
  });
  const r = lstmCellForwardRef(z, null, a.cPrev, H, N);
  a.ablations.forEach((ab, k) => {
    if (ab.kind !== "unit") return;
    for (let s = 0; s < S; s++) r.h[(ab.a ?? 0) * N + k * S + s] = 0;
  });
  return { c: r.c, h: r.h };
}

/** `y[j][b] = Σ_i W[i][j]·x[i][b]`, `W` row-major `[nIn][nOut]`. */
function wtx(w: Float64Array, x: Float64Array, nIn: number, nOut: number, B: number) {
  const y = new Float64Array(nOut * B);
  for (let i = 0; i < nIn; i++) {
    for (let j = 0; j < nOut; j++) {
      const v = w[i * nOut + j];
      if (v === 0) continue;
      for (let b = 0; b < B; b++) y[j * B + b] += v * x[i * B + b];
    }
  }
  return y;
}

/**
 * The model's logits `[C][B]` for input `x` `[T·F][B]` (row `t·F + f`); `zeroUnit` zeroes that
 * hidden unit's output at every step (unit ablation). Returns the last hidden state when the head
 * is empty.
 */
export function lstmModelForwardRef(
  m: LstmRefModel,
  x: Float64Array,
  batch: number,
  zeroUnit = -1,
): Float64Array {
  const { steps: T, features: F, hidden: H } = m;
  const B = batch, G = 4 * H;
  let h: Float64Array | null = null, c: Float64Array | null = null;
  for (let t = 0; t < T; t++) {
    const z = wtx(m.wx, x.subarray(t * F * B, (t + 1) * F * B), F, G, B);
    for (let r = 0; r < G; r++) for (let b = 0; b < B; b++) z[r * B + b] += m.bias[r];
    const zh = h ? wtx(m.wh, h, H, G, B) : null;
    const s = lstmCellForwardRef(z, zh, c, H, B);
    if (zeroUnit >= 0) s.h.fill(0, zeroUnit * B, (zeroUnit + 1) * B);
    h = s.h;
    c = s.c;
  }
  let y = h!;
  for (const L of m.head) {
    const z = wtx(L.w, y, L.nIn, L.nOut, B);
    const p = activationParam(L.act, L.actParam);
    for (let j = 0; j < L.nOut; j++) {
      for (let b = 0; b < B; b++) z[j * B + b] = actForwardRef(L.act, z[j * B + b] + L.b[j], p);
    }
    y = z;
  }
  return y;
}

/** Loss and accuracy (means over the S samples) of the float64 model. */
export function lstmMetricsRef(
  m: LstmRefModel,
  x: Float64Array,
  labels: ArrayLike<number>,
  samples: number,
  loss: MetricLoss,
  zeroUnit = -1,
): { loss: number; accuracy: number } {
  const logits = lstmModelForwardRef(m, x, samples, zeroUnit);
  const classes = logits.length / samples;
  const r = ablationMetricsRef(logits, labels, classes, samples, 1, loss);
  return { loss: r[0] / samples, accuracy: r[1] / samples };
}

/**
 * The naive reference: per ablation, zero the weight (`wx`/`wh` entry `[a][b]`, bias `b`) or the
 * unit's output at every step, run the full float64 forward, and return the change of the mean
 * loss and accuracy against the unablated model.
 */
export function lstmAblationRef(
  m: LstmRefModel,
  x: Float64Array,
  labels: ArrayLike<number>,
  samples: number,
  loss: MetricLoss,
  ablations: readonly LstmAblationSpec[],
): { dLoss: Float64Array; dAccuracy: Float64Array } {
  const base = lstmMetricsRef(m, x, labels, samples, loss);
  const G = 4 * m.hidden;
  const dLoss = new Float64Array(ablations.length);
  const dAccuracy = new Float64Array(ablations.length);
  ablations.forEach((ab, k) => {
    const mm = { ...m, wx: m.wx.slice(), wh: m.wh.slice(), bias: m.bias.slice() };
    const a = ab.a ?? 0, b = ab.b ?? 0;
    if (ab.kind === "wx") mm.wx[a * G + b] = 0;
    if (ab.kind === "wh") mm.wh[a * G + b] = 0;
    if (ab.kind === "bias") mm.bias[b] = 0;
    const r = lstmMetricsRef(mm, x, labels, samples, loss, ab.kind === "unit" ? a : -1);
    dLoss[k] = r.loss - base.loss;
    dAccuracy[k] = r.accuracy - base.accuracy;
  });
  return { dLoss, dAccuracy };
}
