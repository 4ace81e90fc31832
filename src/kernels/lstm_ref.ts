/**
 * Float64 references for the LSTM kernels (lstm.ts) on dense `[rows][batch]` arrays (no
 * padding), and a whole-layer reference (forward over all steps and backpropagation through
 * time with dense weights) for the layer tests.
 *
 * Gate rows in a `4H` block: `i = [0, H)`, `f = [H, 2H)`, `g = [2H, 3H)`, `o = [3H, 4H)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lstmCellForwardRef } from "./lstm_ref.ts";
 * // H = 1, batch 1: pre-activations all 0 -> i = f = o = 0.5, g = 0, c = 0, h = 0
 * const r = lstmCellForwardRef(new Float64Array(4), null, null, 1, 1);
 * assert.deepEqual(r.gates, new Float64Array([0.5, 0.5, 0, 0.5]));
 * ```
 * @module
 */

/** Logistic sigmoid. */
export function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** `xs[f][t][b] = x[t·F + f][b]`: the input re-layout of `lstmSequence` (unpadded). */
export function lstmSequenceRef(
  x: Float64Array,
  steps: number,
  features: number,
  batch: number,
): Float64Array {
  const xs = new Float64Array(x.length);
  for (let t = 0; t < steps; t++) {
    for (let f = 0; f < features; f++) {
      for (let b = 0; b < batch; b++) {
        xs[(f * steps + t) * batch + b] = x[(t * features + f) * batch + b];
      }
    }
  }
  return xs;
}

/** One forward step: activated gates `[4H][B]`, cell `c` and output `h` (`[H][B]` each). */
export interface CellForward {
  gates: Float64Array;
  c: Float64Array;
  h: Float64Array;
}

/**
 * One cell step: `z = zx + zh` (zh null: 0), `i, f, o = σ`, `g = tanh`, `c = f·cPrev + i·g`
 * (cPrev null: 0), `h = o·tanh(c)`.
 */
export function lstmCellForwardRef(
  zx: Float64Array,
  zh: Float64Array | null,
  cPrev: Float64Array | null,
  hidden: number,
  batch: number,
): CellForward {
  const H = hidden, B = batch;
  const gates = new Float64Array(4 * H * B);
  const c = new Float64Array(H * B);
  const h = new Float64Array(H * B);
  for (let j = 0; j < H; j++) {
    for (let b = 0; b < B; b++) {
      const z = (k: number) => {
        const idx = (k * H + j) * B + b;
        return zx[idx] + (zh ? zh[idx] : 0);
      };
      const ig = sigmoid(z(0)), fg = sigmoid(z(1)), gg = Math.tanh(z(2)), og = sigmoid(z(3));
      const s = j * B + b;
      const cv = fg * (cPrev ? cPrev[s] : 0) + ig * gg;
      gates[j * B + b] = ig;
      gates[(H + j) * B + b] = fg;
      gates[(2 * H + j) * B + b] = gg;
      gates[(3 * H + j) * B + b] = og;
      c[s] = cv;
      h[s] = og * Math.tanh(cv);
    }
  }
  return { gates, c, h };
}

/** One backward step: gate pre-activation gradient `[4H][B]` and the gradient reaching `cPrev`. */
export interface CellBackward {
  dz: Float64Array;
  dcPrev: Float64Array;
}

/**
 * Backward of {@link lstmCellForwardRef} given the saved gates and cell state: `dh` is the total
 * gradient reaching `h`, `dcNext` the gradient reaching `c` from the next step (null: 0).
 */
export function lstmCellBackwardRef(
  gates: Float64Array,
  c: Float64Array,
  cPrev: Float64Array | null,
  dh: Float64Array,
  dcNext: Float64Array | null,
  hidden: number,
  batch: number,
): CellBackward {
  const H = hidden, B = batch;
  const dz = new Float64Array(4 * H * B);
  const dcPrev = new Float64Array(H * B);
  for (let j = 0; j < H; j++) {
    for (let b = 0; b < B; b++) {
      const s = j * B + b;
      const ig = gates[s], fg = gates[(H + j) * B + b];
      const gg = gates[(2 * H + j) * B + b], og = gates[(3 * H + j) * B + b];
      const tc = Math.tanh(c[s]);
      const dc = (dcNext ? dcNext[s] : 0) + dh[s] * og * (1 - tc * tc);
      dz[s] = dc * gg * ig * (1 - ig);
      dz[(H + j) * B + b] = dc * (cPrev ? cPrev[s] : 0) * fg * (1 - fg);
      dz[(2 * H + j) * B + b] = dc * ig * (1 - gg * gg);
      dz[(3 * H + j) * B + b] = dh[s] * tc * og * (1 - og);
      dcPrev[s] = dc * fg;
    }
  }
  return { dz, dcPrev };
}

/** Sizes of a whole LSTM layer. */
export interface LstmDims {
  steps: number;
  features: number;
  hidden: number;
  batch: number;
}

/** Saved state of {@link lstmForwardRef}: per step the gates, cells and outputs. */
export interface LstmTrace {
  /** `h[t]` is `[H][B]`; the layer output is `h[steps - 1]`. */
  h: Float64Array[];
  c: Float64Array[];
  gates: Float64Array[];
}

/** `y[j][b] = sum_i W[i][j]·x[i][b]` for dense row-major `W` `[nIn][nOut]`. */
function wtx(w: Float64Array, x: Float64Array, nIn: number, nOut: number, B: number, xOff = 0) {
  const y = new Float64Array(nOut * B);
  for (let i = 0; i < nIn; i++) {
    for (let j = 0; j < nOut; j++) {
      const wij = w[i * nOut + j];
      if (wij === 0) continue;
      for (let b = 0; b < B; b++) y[j * B + b] += wij * x[xOff + i * B + b];
    }
  }
  return y;
}

/**
 * Whole layer forward: `x` `[steps·F][B]` (row `t·F + f`), dense `wx` `[F][4H]`, `wh` `[H][4H]`,
 * `bias` `[4H]`; `h_{-1} = c_{-1} = 0`.
 */
export function lstmForwardRef(
  x: Float64Array,
  wx: Float64Array,
  wh: Float64Array,
  bias: Float64Array,
  d: LstmDims,
): LstmTrace {
  const { steps, features: F, hidden: H, batch: B } = d;
  const tr: LstmTrace = { h: [], c: [], gates: [] };
  for (let t = 0; t < steps; t++) {
    const zx = wtx(wx, x, F, 4 * H, B, t * F * B);
    for (let r = 0; r < 4 * H; r++) for (let b = 0; b < B; b++) zx[r * B + b] += bias[r];
    const zh = t > 0 ? wtx(wh, tr.h[t - 1], H, 4 * H, B) : null;
    const s = lstmCellForwardRef(zx, zh, t > 0 ? tr.c[t - 1] : null, H, B);
    tr.h.push(s.h);
    tr.c.push(s.c);
    tr.gates.push(s.gates);
  }
  return tr;
}

/** Gradients of a whole layer (dense, row-major like the weights). */
export interface LstmGrads {
  dwx: Float64Array;
  dwh: Float64Array;
  dbias: Float64Array;
  /** `[steps·F][B]`, like the input. */
  dx: Float64Array;
}

/** Backpropagation through time of {@link lstmForwardRef} for the loss gradient `dhLast` of the output. */
export function lstmBackwardRef(
  x: Float64Array,
  wx: Float64Array,
  wh: Float64Array,
  tr: LstmTrace,
  dhLast: Float64Array,
  d: LstmDims,
): LstmGrads {
  const { steps, features: F, hidden: H, batch: B } = d;
  const G = 4 * H;
  const g: LstmGrads = {
    dwx: new Float64Array(F * G),
    dwh: new Float64Array(H * G),
    dbias: new Float64Array(G),
    dx: new Float64Array(steps * F * B),
  };
  let dh = Float64Array.from(dhLast);
  let dc: Float64Array | null = null;
  for (let t = steps - 1; t >= 0; t--) {
    const s = lstmCellBackwardRef(
      tr.gates[t],
      tr.c[t],
      t > 0 ? tr.c[t - 1] : null,
      dh,
      dc,
      H,
      B,
    );
    dc = s.dcPrev;
    const dz = s.dz;
    for (let r = 0; r < G; r++) for (let b = 0; b < B; b++) g.dbias[r] += dz[r * B + b];
    for (let i = 0; i < F; i++) {
      for (let r = 0; r < G; r++) {
        let acc = 0;
        for (let b = 0; b < B; b++) acc += x[(t * F + i) * B + b] * dz[r * B + b];
        g.dwx[i * G + r] += acc;
      }
      for (let b = 0; b < B; b++) {
        let acc = 0;
        for (let r = 0; r < G; r++) acc += wx[i * G + r] * dz[r * B + b];
        g.dx[(t * F + i) * B + b] = acc;
      }
    }
    const next = new Float64Array(H * B);
    for (let i = 0; i < H; i++) {
      for (let r = 0; r < G; r++) {
        const w = wh[i * G + r];
        let acc = 0;
        for (let b = 0; b < B; b++) {
          if (t > 0) acc += tr.h[t - 1][i * B + b] * dz[r * B + b];
          next[i * B + b] += w * dz[r * B + b];
        }
        g.dwh[i * G + r] += acc;
      }
    }
    dh = next;
  }
  return g;
}
