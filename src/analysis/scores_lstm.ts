/**
 * Importance scores of an LSTM layer's weights (`W_x` `[F][4H]`, `W_h` `[H][4H]`), in the value
 * order of each matrix's CSR (the order of {@link LstmAblationEngine}'s entries), with the same
 * names and formulas as the MLP scores (src/analysis/scores.ts, kernels/analysis_ref.ts
 * `entryScoreRef`):
 *
 * | score       | formula             | what the LSTM needs                                              |
 * | ----------- | ------------------- | ---------------------------------------------------------------- |
 * | `magnitude` | `\|w\|`             | –                                                                |
 * | `snip`      | `\|w·g\|`           | `g`: gradient of the mean evaluation loss, full BPTT over T steps |
 * | `taylor`    | `(w·g)²`            | the same `g`                                                     |
 * | `signed1`   | `-g·w`              | the same `g` (first-order prediction of the signed Δloss)        |
 * | `wanda`     | `\|w_ab\|·‖in_a‖₂`  | the input's norm over every step and sample: `x_t[a]` for `W_x`, `h_{t-1}[a]` for `W_h` |
 *
 * A weight is shared by every time step, so its gradient is the sum over steps (the layer's own
 * BPTT: `nn/lstm.ts` backward), and Wanda's input norm runs over steps as well as samples. The
 * gradient comes from one evaluation-mode backward pass of the model on the GPU; tests check it
 * against central differences of the float64 model (kernels/ablation_lstm_ref.ts).
 *
 * A new score is a row of {@link LSTM_SCORES}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LSTM_SCORES } from "./scores_lstm.ts";
 * const w = Float32Array.of(-2, 0.5);
 * const s = LSTM_SCORES.wanda({ w, ends: Uint32Array.of(0, 3, 1, 2), inNorm: Float64Array.of(3, 4) });
 * assert.deepEqual([...s], [6, 2]);
 * ```
 * @module
 */
import { FiligreeError, roundUp4 } from "../gpu/mod.ts";
import { mseLoss, softmaxXent } from "../kernels/loss.ts";
import { Tape } from "../nn/tape.ts";
import type { Act } from "../nn/act.ts";
import type { LstmAblationEngine } from "./ablation_lstm.ts";

/** What a score reads for one weight matrix (value order). */
export interface LstmScoreInputs {
  w: Float32Array;
  /** Per entry: input row a, gate row b. */
  ends: Uint32Array;
  /** Gradient of the mean evaluation loss (value order). */
  g?: Float32Array;
  /** Per input row: the input's L2 norm over steps and samples. */
  inNorm?: Float64Array;
}

const need = <T>(v: T | undefined, score: string, what: string): T => {
  if (v === undefined) throw new FiligreeError(`LSTM score ${score} needs ${what}`);
  return v;
};

/** The scores, a row each: how it needs its inputs and the per-entry formula. */
export const LSTM_SCORES = {
  magnitude: (e: LstmScoreInputs) => e.w.map(Math.abs),
  snip: (e: LstmScoreInputs) => {
    const g = need(e.g, "snip", "the gradient");
    return e.w.map((w, k) => Math.abs(w * g[k]));
  },
  taylor: (e: LstmScoreInputs) => {
    const g = need(e.g, "taylor", "the gradient");
    return e.w.map((w, k) => (w * g[k]) ** 2);
  },
  signed1: (e: LstmScoreInputs) => {
    const g = need(e.g, "signed1", "the gradient");
    return e.w.map((w, k) => -g[k] * w);
  },
  wanda: (e: LstmScoreInputs) => {
    const n = need(e.inNorm, "wanda", "the input norms");
    return e.w.map((w, k) => Math.abs(w) * n[e.ends[2 * k]]);
  },
} as const;

/** A score of {@link LSTM_SCORES}. */
export type LstmScoreName = keyof typeof LSTM_SCORES;

const NEEDS_GRAD = new Set<LstmScoreName>(["snip", "taylor", "signed1"]);

/** Gradients of the mean evaluation loss with respect to the LSTM's weights (value order). */
export interface LstmGradients {
  wx: Float32Array;
  wh: Float32Array;
  bias: Float32Array;
  /** Mean loss of the pass. */
  loss: number;
}

/**
 * One evaluation-mode forward + loss + backward of the engine's model on its evaluation set:
 * the full-BPTT gradient of the mean loss (`outputActivation` for MSE runs: "identity" or
 * "sigmoid"; the engine's loss "mse-sigmoid" implies "sigmoid").
 */
export async function lstmGradients(eng: LstmAblationEngine): Promise<LstmGradients> {
  const gpu = eng.gpu, S = eng.samples, ld = roundUp4(S);
  const lstm = eng.model.layers[0];
  const [pwx, pwh, pb] = lstm.params;
  if (!pwx || !pwh || !pb || lstm.params.length !== 3) {
    throw new FiligreeError("LSTM scores: the first layer's params are not [wx, wh, bias]");
  }
  const C = eng.classes;
  const lossT = gpu.tensor("f32", [Math.max(4, S)], { label: "lstm score loss" });
  const dlogits = gpu.tensor("f32", [C, ld], { label: "lstm score dlogits" });
  try {
    const tape = new Tape();
    const rec = gpu.recorder("lstm gradient");
    const logits = eng.model.forward({ rec, tape, evalMode: true }, eng.x);
    const dl = tape.gradFor(logits, (): Act => ({ t: dlogits, rows: C, batch: S }));
    const loss = eng.opts.loss;
    if (loss === "xent") {
      softmaxXent(rec, {
        logits: logits.t,
        labels: eng.labels,
        loss: lossT,
        dlogits: dl.t,
        classes: C,
        batch: S,
      });
    } else {
      mseLoss(rec, {
        pred: logits.t,
        labels: eng.labels,
        loss: lossT,
        dpred: dl.t,
        classes: C,
        batch: S,
        outputActivation: loss === "mse-sigmoid" ? "sigmoid" : "identity",
      });
    }
    tape.backward();
    rec.submit();
    const [gx, gh, gb, l] = await Promise.all([
      gpu.read(pwx.grad),
      gpu.read(pwh.grad),
      gpu.read(pb.grad),
      gpu.read(lossT),
    ]) as Float32Array[];
    let sum = 0;
    for (let s = 0; s < S; s++) sum += l[s];
    return {
      wx: gx.slice(0, eng.wx.nnz),
      wh: gh.slice(0, eng.wh.nnz),
      bias: gb.slice(0, 4 * eng.lstm.hidden),
      loss: sum / S,
    };
  } finally {
    gpu.release(lossT);
    gpu.release(dlogits);
  }
}

/**
 * Wanda's input norms over steps and samples: `‖x_t[a]‖` per input feature (for `W_x`) and
 * `‖h_{t-1}[a]‖` over t = 1..T-1 per hidden unit (for `W_h`; `h_{-1} = 0`).
 */
export async function lstmInputNorms(
  eng: LstmAblationEngine,
): Promise<{ wx: Float64Array; wh: Float64Array }> {
  const { steps: T, features: F, hidden: H } = eng.lstm;
  const S = eng.samples, ld = roundUp4(S);
  const x = await eng.gpu.read(eng.x.t) as Float32Array;
  const wx = new Float64Array(F), wh = new Float64Array(H);
  for (let t = 0; t < T; t++) {
    for (let a = 0; a < F; a++) {
      for (let s = 0; s < S; s++) wx[a] += x[(t * F + a) * ld + s] ** 2;
    }
  }
  const hs = await eng.hiddenStates();
  for (let t = 0; t + 1 < T; t++) {
    for (let a = 0; a < H; a++) {
      for (let s = 0; s < S; s++) wh[a] += hs[(t * H + a) * S + s] ** 2;
    }
  }
  return { wx: wx.map(Math.sqrt), wh: wh.map(Math.sqrt) };
}

/** Per LSTM weight matrix, each requested score in value order. */
export interface LstmScores {
  wx: Map<LstmScoreName, Float32Array>;
  wh: Map<LstmScoreName, Float32Array>;
}

/** Computes the requested scores of both LSTM weight matrices (gradient and norms once). */
export async function computeLstmScores(
  eng: LstmAblationEngine,
  names: readonly LstmScoreName[],
): Promise<LstmScores> {
  for (const n of names) {
    if (!(n in LSTM_SCORES)) {
      throw new FiligreeError(
        `unknown LSTM score "${n}"; known: ${Object.keys(LSTM_SCORES).join(", ")}`,
      );
    }
  }
  const grad = names.some((n) => NEEDS_GRAD.has(n)) ? await lstmGradients(eng) : undefined;
  const norms = names.includes("wanda") ? await lstmInputNorms(eng) : undefined;
  const out: LstmScores = { wx: new Map(), wh: new Map() };
  for (const part of ["wx", "wh"] as const) {
    const p = eng[part];
    const inputs: LstmScoreInputs = {
      w: p.values,
      ends: p.ends,
      g: grad?.[part],
      inNorm: norms?.[part],
    };
    for (const n of names) out[part].set(n, LSTM_SCORES[n](inputs));
  }
  return out;
}
