/**
 * Exact ablation of an LSTM layer, batched on the GPU: the engine of a recurrent weight layer.
 *
 * A weight of `W_x` or `W_h` (or a gate bias) enters a gate pre-activation at EVERY time step, and
 * its removal changes `h_t`, which feeds every later step through `W_h`: nothing is local, so the
 * engine reruns the whole recurrence for each ablation, but for a batch of K ablations at once
 * (K ablated copies x S evaluation samples side by side, column `k·S + s`):
 *
 * - once per engine: `zx = W_xᵀ·x_t + b` of every step for the S samples (one SpMM, shared by every
 *   copy and every batch; when `[4H][T·S]` does not fit the binding limit or a quarter of the
 *   budget, one small SpMM per step and batch instead);
 * - per batch, per step: ONE SpMM of the shared `W_h` over all `K·S` columns and ONE step kernel
 *   (kernels/ablation_lstm.ts) that subtracts each copy's removed term exactly (`w·x_t[i]`,
 *   `w·h_{t-1}[i]` with the copy's own `h_{t-1}`, or the bias) and advances the cell; a unit
 *   ablation zeroes the unit's `h_t` at every step (its output and its recurrent input);
 * - then the model's head (the layers after the LSTM, evaluation mode) on `h_T` of all copies, and
 *   one workgroup per copy sums its loss and correct count (`ablationMetrics`).
 *
 * So a batch is `2T + |head| + 1` dispatches with no host loop over weights; the first copy of
 * the first batch is the unablated model (the baseline the deltas are taken against). The result
 * has the MLP engine's shape ({@link AblationResult}: mean Δloss and Δaccuracy per ablation).
 * {@link LstmAblationEngine.ablateNaive} is the naive reference (zero it, run the model's own full
 * forward, restore); tests check both against the float64 reference of
 * kernels/ablation_lstm_ref.ts.
 *
 * Entries are numbered in the value order of the layer's CSR (`W_x`, `W_h` are CSR layers; a dense
 * LSTM is density 1), like the probe's: `ends[2e]` is the input row, `ends[2e+1]` the gate row.
 *
 * @example
 * ```ts ignore
 * const eng = await LstmAblationEngine.create(gpu, model, x, labels, { loss: "xent" });
 * const r = await eng.ablateWeights("wh", Uint32Array.from([0, 1, 2]));
 * console.log((await eng.baseline()).loss, r.dLoss);
 * ```
 * @module
 */
import { FiligreeError, type Gpu, roundUp4, type Tensor } from "../gpu/mod.ts";
import type { CsrLayer } from "../sparse/csr.ts";
import { spmm } from "../kernels/sparse.ts";
import { lstmSequence } from "../kernels/lstm.ts";
import { ablationMetrics, type MetricLoss } from "../kernels/analysis.ts";
import {
  ablationLstmStep,
  type LstmAblationSpec,
  packLstmAblations,
} from "../kernels/ablation_lstm.ts";
import type { Act } from "../nn/act.ts";
import type { Layer } from "../nn/layers.ts";
import type { Sequential } from "../nn/mlp.ts";
import { type AblationResult, evenBatch, type Metrics } from "./probe.ts";

/** What the engine needs of a trained LSTM layer (the public fields of `nn/lstm.ts` `Lstm`). */
export interface LstmBuffers {
  readonly steps: number;
  readonly features: number;
  readonly hidden: number;
  /** Input weights `[F][4H]` (CSR). */
  readonly wx: CsrLayer;
  /** Recurrent weights `[H][4H]` (CSR). */
  readonly wh: CsrLayer;
  /** f32 `[4H]` gate bias. */
  readonly bias: Tensor;
}

/** A layer shaped like `nn/lstm.ts` `Lstm` (its public fields). */
export interface LstmLike extends Layer {
  readonly steps: number;
  readonly features: number;
  readonly hidden: number;
  readonly wx: { readonly csr: CsrLayer };
  readonly wh: { readonly csr: CsrLayer };
  readonly bias: Tensor;
}

/** Whether a layer is an LSTM layer with the public fields the engine reads. */
export function isLstmLayer(l: Layer): l is LstmLike {
  const o = l as Partial<LstmLike>;
  return typeof o.steps === "number" && typeof o.hidden === "number" &&
    typeof o.features === "number" && !!o.wx?.csr && !!o.wh?.csr && !!o.bias;
}

/** The engine's view of an `Lstm` layer. */
export function lstmBuffers(l: LstmLike): LstmBuffers {
  return {
    steps: l.steps,
    features: l.features,
    hidden: l.hidden,
    wx: l.wx.csr,
    wh: l.wh.csr,
    bias: l.bias,
  };
}

/** A weight matrix of the LSTM on the CPU, in its CSR value order. */
export interface LstmPart {
  nIn: number;
  nOut: number;
  nnz: number;
  values: Float32Array;
  /** Per entry: input row, gate row. */
  ends: Uint32Array;
}

/** An ablation by name: an entry (value order) of `wx`/`wh`, a gate bias row, or a hidden unit. */
export type LstmAblation =
  | { part: "wx" | "wh"; entry: number }
  | { part: "bias"; row: number }
  | { part: "unit"; unit: number };

/** Options of {@link LstmAblationEngine.create}. */
export interface LstmAblationOptions {
  loss: MetricLoss;
  /** GPU memory for one batch of ablations, MB (default 256). */
  budgetMB?: number;
  /** Cap on ablated copies per batch (default: as many as the budget and binding limits allow). */
  maxBatch?: number;
  /**
   * Compute the input part `W_xᵀ·x_t + b` of every step once (`[4H][T·ld]`, the default when it
   * fits `maxStorageBufferBindingSize` and a quarter of the budget), or per step and batch (one
   * small SpMM over the S samples per step: for large evaluation sets).
   */
  precompute?: boolean;
}

async function readPart(gpu: Gpu, c: CsrLayer): Promise<LstmPart> {
  const [rowPtrT, colT, vals] = await Promise.all([
    gpu.read(c.rowPtrT),
    gpu.read(c.colT),
    gpu.read(c.values),
  ]) as [Uint32Array, Uint32Array, Float32Array];
  const ends = new Uint32Array(2 * c.nnz);
  for (let j = 0; j < c.nOut; j++) {
    for (let k = rowPtrT[j]; k < rowPtrT[j + 1]; k++) {
      ends[2 * k] = colT[k];
      ends[2 * k + 1] = j;
    }
  }
  return { nIn: c.nIn, nOut: c.nOut, nnz: c.nnz, values: vals.slice(0, c.nnz), ends };
}

/** Batched exact ablation of the first layer (an LSTM) of a model; see the module doc. */
export class LstmAblationEngine {
  readonly lstm: LstmBuffers;
  /** The layers after the LSTM (run in evaluation mode). */
  readonly head: Layer[];
  readonly wx: LstmPart;
  readonly wh: LstmPart;
  /** Gate bias `[4H]`. */
  readonly bias: Float32Array;
  readonly classes: number;
  #zx: Tensor | null = null;
  #baseline: Metrics | null = null;
  #owned: Tensor[] = [];
  #bufs = new Map<string, Tensor>();

  private constructor(
    readonly gpu: Gpu,
    readonly model: Sequential,
    /** The evaluation input `[T·F][roundUp4(S)]`. */
    readonly x: Act,
    /** u32 `[S]` labels. */
    readonly labels: Tensor,
    readonly opts: Required<LstmAblationOptions>,
    parts: { wx: LstmPart; wh: LstmPart; bias: Float32Array },
  ) {
    const l = model.layers[0] as LstmLike;
    this.lstm = lstmBuffers(l);
    this.head = model.layers.slice(1);
    this.wx = parts.wx;
    this.wh = parts.wh;
    this.bias = parts.bias;
    this.classes = model.layers.at(-1)!.outFeatures;
  }

  /**
   * An engine over `model` (its first layer an LSTM, the rest its head) with its current weights,
   * on the evaluation input `x` (`[T·F][ld]`, batch S) and `labels`.
   */
  static async create(
    gpu: Gpu,
    model: Sequential,
    x: Act,
    labels: Tensor,
    opts: LstmAblationOptions,
  ): Promise<LstmAblationEngine> {
    const first = model.layers[0];
    if (!first || !isLstmLayer(first)) {
      throw new FiligreeError("LSTM ablation needs a model whose first layer is an LSTM");
    }
    if (model.layers.slice(1).some(isLstmLayer)) {
      throw new FiligreeError("LSTM ablation supports one LSTM layer (the first)");
    }
    const T = first.steps, F = first.features;
    if (x.rows !== T * F) {
      throw new FiligreeError(
        `LSTM ablation: input has ${x.rows} rows, the LSTM reads ${T} steps x ${F} = ${T * F}`,
      );
    }
    if (!Number.isInteger(x.batch) || x.batch < 1) {
      throw new FiligreeError(`LSTM ablation: ${x.batch} evaluation samples`);
    }
    const b = lstmBuffers(first);
    const [wx, wh, bias] = await Promise.all([
      readPart(gpu, b.wx),
      readPart(gpu, b.wh),
      gpu.read(b.bias) as Promise<Float32Array>,
    ]);
    return new LstmAblationEngine(
      gpu,
      model,
      x,
      labels,
      { budgetMB: 256, maxBatch: Number.MAX_SAFE_INTEGER, precompute: true, ...opts },
      { wx, wh, bias: bias.slice(0, 4 * b.hidden) },
    );
  }

  /** Evaluation samples S. */
  get samples(): number {
    return this.x.batch;
  }

  #tensor(name: string, dtype: "f32" | "u32", size: number): Tensor {
    const key = `${name}:${dtype}:${size}`;
    let t = this.#bufs.get(key);
    if (!t) {
      t = this.gpu.tensor(dtype, [size], { label: `lstm ablation ${name}` });
      this.#bufs.set(key, t);
      this.#owned.push(t);
    }
    return t;
  }

  /** Whether every step's input part is held at once (see {@link LstmAblationOptions.precompute}). */
  get precomputed(): boolean {
    const { steps: T, hidden: H } = this.lstm;
    const bytes = 4 * H * T * roundUp4(this.samples) * 4;
    return this.opts.precompute &&
      bytes <= this.gpu.limits.maxStorageBufferBindingSize &&
      bytes <= (this.opts.budgetMB * 2 ** 20) / 4;
  }

  /**
   * The input part of step t's gate pre-activations, shared by all copies: a block of the
   * all-steps tensor (computed once per weights), or this step's, recorded now.
   */
  #stepInput(rec: ReturnType<Gpu["recorder"]>, t: number): { zx: Tensor; zxSteps: number } {
    const { steps: T, features: F, hidden: H } = this.lstm;
    if (this.precomputed) return { zx: this.#inputPart(rec), zxSteps: T };
    const S = this.samples, ldS = roundUp4(S);
    const xt = this.#tensor("x step", "f32", F * ldS);
    const zx = this.#tensor("zx step", "f32", 4 * H * ldS);
    rec.copy(this.x.t, xt, F * ldS, t * F * ldS, 0);
    spmm(rec, { layer: this.lstm.wx, x: xt, y: zx, batch: S, bias: this.lstm.bias });
    return { zx, zxSteps: 1 };
  }

  /** `zx = W_xᵀ·x_t + b` for every step (shared by all copies), recomputed after weights change. */
  #inputPart(rec: ReturnType<Gpu["recorder"]>): Tensor {
    if (this.#zx) return this.#zx;
    const { steps: T, features: F, hidden: H } = this.lstm;
    const S = this.samples, ldS = roundUp4(S);
    const xs = this.#tensor("xs", "f32", F * T * ldS);
    const zx = this.#tensor("zx", "f32", 4 * H * T * ldS);
    lstmSequence(rec, { x: this.x.t, xs, steps: T, features: F, batch: S });
    spmm(rec, { layer: this.lstm.wx, x: xs, y: zx, batch: T * ldS, bias: this.lstm.bias });
    this.#zx = zx;
    return zx;
  }

  /** Forget cached weights-derived state (call after writing new weights). */
  async refresh(): Promise<void> {
    const b = this.lstm;
    const [wx, wh, bias] = await Promise.all([
      readPart(this.gpu, b.wx),
      readPart(this.gpu, b.wh),
      this.gpu.read(b.bias) as Promise<Float32Array>,
    ]);
    Object.assign(this, { wx, wh, bias: bias.slice(0, 4 * b.hidden) });
    this.#zx = null;
    this.#baseline = null;
  }

  /**
   * Ablated copies per batch for `count` ablations: as few batches as the largest K allows whose
   * per-copy state (h twice, c, the recurrent pre-activations, the head's activations) fits the
   * memory budget and whose largest tensor fits `maxStorageBufferBindingSize` / `maxBufferSize`,
   * with the copies spread evenly over them.
   */
  batchSize(count: number): number {
    const H = this.lstm.hidden, S = this.samples;
    let rows = 7 * H, maxRows = 4 * H;
    for (const l of this.head) {
      rows += 2 * l.outFeatures;
      maxRows = Math.max(maxRows, l.outFeatures);
    }
    const byBudget = Math.floor((this.opts.budgetMB * 2 ** 20) / (rows * 4 * S));
    const lim = Math.min(
      this.gpu.limits.maxStorageBufferBindingSize,
      this.gpu.limits.maxBufferSize,
    );
    const byBinding = Math.floor((lim / (maxRows * 4) - 4) / S);
    if (byBinding < 1) {
      throw new FiligreeError(
        `LSTM ablation: one copy of ${S} samples x ${maxRows} rows exceeds the adapter's buffer limit`,
      );
    }
    return evenBatch(count, Math.min(this.opts.maxBatch, byBudget, byBinding));
  }

  /** The spec of a named ablation, validated. */
  spec(a: LstmAblation): LstmAblationSpec {
    const H = this.lstm.hidden;
    switch (a.part) {
      case "wx":
      case "wh": {
        const p = this[a.part];
        if (!Number.isInteger(a.entry) || a.entry < 0 || a.entry >= p.nnz) {
          throw new FiligreeError(`lstm.${a.part}: entry ${a.entry} out of range (${p.nnz})`);
        }
        return {
          kind: a.part,
          a: p.ends[2 * a.entry],
          b: p.ends[2 * a.entry + 1],
          w: p.values[a.entry],
        };
      }
      case "bias":
        if (!Number.isInteger(a.row) || a.row < 0 || a.row >= 4 * H) {
          throw new FiligreeError(`lstm.bias: row ${a.row} out of range (${4 * H})`);
        }
        return { kind: "bias", b: a.row, w: this.bias[a.row] };
      case "unit":
        if (!Number.isInteger(a.unit) || a.unit < 0 || a.unit >= H) {
          throw new FiligreeError(`lstm: unit ${a.unit} out of range (${H})`);
        }
        return { kind: "unit", a: a.unit };
    }
  }

  /**
   * Runs the ablations (after the unablated copy) and returns the per-ablation changes of the
   * mean loss and accuracy against that copy.
   */
  async run(
    specs: readonly LstmAblationSpec[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<AblationResult> {
    const gpu = this.gpu;
    const H = this.lstm.hidden;
    const S = this.samples;
    const all: LstmAblationSpec[] = [{ kind: "none" }, ...specs];
    const K = this.batchSize(all.length);
    const N = K * S, ldN = roundUp4(N);
    const hA = this.#tensor("h0", "f32", H * ldN);
    const hB = this.#tensor("h1", "f32", H * ldN);
    const c = this.#tensor("c", "f32", H * ldN);
    const zh = this.#tensor("zh", "f32", 4 * H * ldN);
    const abl = this.#tensor("ablations", "u32", 4 * K);
    const sums = this.#tensor("sums", "f32", 2 * K);
    const results = gpu.tensor("f32", [2 * all.length], { label: "lstm ablation results" });
    const batches = Math.ceil(all.length / K);
    try {
      for (let bi = 0; bi < batches; bi++) {
        const first = bi * K;
        const list = Array.from(
          { length: K },
          (_, k): LstmAblationSpec => all[first + k] ?? { kind: "none" },
        );
        gpu.write(abl, packLstmAblations(list));
        const rec = gpu.recorder("lstm ablation batch");
        const hT = this.#recur(rec, { ablations: abl, count: K, h: [hA, hB], c, zh });
        let h: Act = { t: hT, rows: H, batch: N };
        for (const l of this.head) h = l.forward({ rec, tape: null }, h);
        if (h.rows !== this.classes) {
          throw new FiligreeError(`LSTM ablation: head gives ${h.rows} rows, not the classes`);
        }
        ablationMetrics(rec, {
          logits: h.t,
          labels: this.labels,
          classes: h.rows,
          samples: S,
          count: K,
          loss: this.opts.loss,
          sums,
        });
        const live = Math.min(K, all.length - first);
        rec.copy(sums, results, 2 * live, 0, 2 * first);
        rec.submit();
        if (onProgress && (bi % 4 === 3 || bi === batches - 1)) {
          await gpu.sync();
          onProgress(Math.min(specs.length, first + K - 1), specs.length);
        }
      }
      const r = await gpu.read(results);
      const base = { loss: r[0] / S, accuracy: r[1] / S };
      this.#baseline ??= base;
      const n = specs.length;
      const dLoss = new Float64Array(n), dAccuracy = new Float64Array(n);
      for (let k = 0; k < n; k++) {
        dLoss[k] = r[2 * (k + 1)] / S - base.loss;
        dAccuracy[k] = r[2 * (k + 1) + 1] / S - base.accuracy;
      }
      return { dLoss, dAccuracy };
    } finally {
      gpu.release(results);
    }
  }

  /**
   * Records the T steps of the recurrence for `count` copies of the S samples side by side
   * (copy k in columns `k·S + s`, ablation k of `ablations`): per step the recurrent product
   * `W_h·h_{t-1}` into `zh` (from step 1), then the ablated cell update; the pair `h` alternates
   * (step 0 reads `h[0]` as `h_{t-1}` and writes `h[1]`). `onStep(t, h_t)` records after each
   * step. Returns the buffer holding `h_{T-1}`.
   */
  #recur(
    rec: ReturnType<Gpu["recorder"]>,
    a: {
      ablations: Tensor;
      count: number;
      h: readonly [Tensor, Tensor];
      c: Tensor;
      zh: Tensor;
      onStep?: (t: number, h: Tensor) => void;
    },
  ): Tensor {
    const { steps: T, features: F, hidden: H } = this.lstm;
    const S = this.samples;
    let [prev, next] = a.h;
    for (let t = 0; t < T; t++) {
      const { zx, zxSteps } = this.#stepInput(rec, t);
      if (t > 0) spmm(rec, { layer: this.lstm.wh, x: prev, y: a.zh, batch: a.count * S });
      ablationLstmStep(rec, {
        x: this.x.t,
        zx,
        zxSteps,
        zh: a.zh,
        hPrev: prev,
        ablations: a.ablations,
        c: a.c,
        h: next,
        hidden: H,
        features: F,
        steps: T,
        t,
        samples: S,
        count: a.count,
      });
      a.onStep?.(t, next);
      [prev, next] = [next, prev];
    }
    return prev;
  }

  /** Named ablations (see {@link LstmAblation}). */
  ablate(
    list: readonly LstmAblation[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<AblationResult> {
    return this.run(list.map((a) => this.spec(a)), onProgress);
  }

  /** Single-weight ablation of entries (value order) of `wx` or `wh`. */
  ablateWeights(
    part: "wx" | "wh",
    entries: Uint32Array,
    onProgress?: (done: number, total: number) => void,
  ): Promise<AblationResult> {
    return this.ablate(Array.from(entries, (entry) => ({ part, entry })), onProgress);
  }

  /** Ablation of gate bias rows (`[4H]`: i, f, g, o blocks). */
  ablateBias(rows: Uint32Array): Promise<AblationResult> {
    return this.ablate(Array.from(rows, (row) => ({ part: "bias" as const, row })));
  }

  /** Unit ablation: hidden unit u's output `h_t[u]` zeroed at every step. */
  ablateUnits(
    units: Uint32Array,
    onProgress?: (done: number, total: number) => void,
  ): Promise<AblationResult> {
    return this.ablate(Array.from(units, (unit) => ({ part: "unit" as const, unit })), onProgress);
  }

  /** The unablated model's metrics by this engine (the baseline of the deltas). */
  async baseline(): Promise<Metrics> {
    if (!this.#baseline) await this.run([]);
    return this.#baseline!;
  }

  /** Loss and accuracy of the model as it is now, by its own full forward (evaluation mode). */
  async evaluate(): Promise<Metrics> {
    const gpu = this.gpu, S = this.samples;
    const sums = this.#tensor("naive sums", "f32", 2);
    const rec = gpu.recorder("lstm naive eval");
    const logits = this.model.forward({ rec, tape: null }, this.x);
    ablationMetrics(rec, {
      logits: logits.t,
      labels: this.labels,
      classes: logits.rows,
      samples: S,
      count: 1,
      loss: this.opts.loss,
      sums,
    });
    rec.submit();
    const r = await gpu.read(sums);
    return { loss: r[0] / S, accuracy: r[1] / S };
  }

  /**
   * The naive reference: zero the weight (or, for a unit, its outgoing recurrent weights and its
   * row of the first head weight matrix: the only places `h_t[u]` is read), run the model's own
   * full forward, restore. Changes against {@link evaluate} of the unablated model.
   */
  async ablateNaive(a: LstmAblation): Promise<{ dLoss: number; dAccuracy: number }> {
    const base = await this.evaluate();
    const s = this.spec(a);
    const patches: { t: Tensor; at: number[] }[] = [];
    if (a.part === "wx" || a.part === "wh") {
      patches.push({ t: this.lstm[a.part].values, at: [a.entry] });
    } else if (a.part === "bias") {
      patches.push({ t: this.lstm.bias, at: [a.row] });
    } else {
      const at: number[] = [];
      for (let e = 0; e < this.wh.nnz; e++) if (this.wh.ends[2 * e] === s.a) at.push(e);
      patches.push({ t: this.lstm.wh.values, at });
      patches.push(await this.#headRow(s.a!));
    }
    const saved = await Promise.all(
      patches.map((p) => this.gpu.read(p.t) as Promise<Float32Array>),
    );
    for (const p of patches) for (const e of p.at) this.gpu.write(p.t, Float32Array.of(0), e);
    try {
      const m = await this.evaluate();
      return { dLoss: m.loss - base.loss, dAccuracy: m.accuracy - base.accuracy };
    } finally {
      patches.forEach((p, i) => this.gpu.write(p.t, saved[i]));
    }
  }

  /** The entries of the first head weight matrix that read hidden unit `u`. */
  async #headRow(u: number): Promise<{ t: Tensor; at: number[] }> {
    const l = this.head[0] as Partial<{
      csr: CsrLayer;
      weight: Tensor;
      inFeatures: number;
      outFeatures: number;
    }>;
    if (l?.csr) {
      const [rowPtr, perm] = await Promise.all([
        this.gpu.read(l.csr.rowPtr),
        this.gpu.read(l.csr.perm),
      ]);
      const at: number[] = [];
      for (let k = rowPtr[u]; k < rowPtr[u + 1]; k++) at.push(perm[k]);
      return { t: l.csr.values, at };
    }
    if (l?.weight && l.outFeatures) {
      const n = l.outFeatures;
      return { t: l.weight, at: Array.from({ length: n }, (_, j) => u * n + j) };
    }
    throw new FiligreeError("naive unit ablation needs a weight layer right after the LSTM");
  }

  /**
   * The hidden states `h_t` of the unablated model, `[T][H][S]` (f32, unpadded): the inputs of
   * `W_h` are `h_{t-1}`.
   */
  async hiddenStates(): Promise<Float32Array> {
    const gpu = this.gpu;
    const { steps: T, hidden: H } = this.lstm;
    const S = this.samples, ld = roundUp4(S);
    const abl = this.#tensor("abl none", "u32", 4);
    gpu.write(abl, packLstmAblations([{ kind: "none" }]));
    const h = [this.#tensor("hs0", "f32", H * ld), this.#tensor("hs1", "f32", H * ld)];
    const c = this.#tensor("hs c", "f32", H * ld);
    const zh = this.#tensor("hs zh", "f32", 4 * H * ld);
    const all = gpu.tensor("f32", [T * H * ld], { label: "lstm hidden states" });
    const rec = gpu.recorder("lstm hidden states");
    this.#recur(rec, {
      ablations: abl,
      count: 1,
      h: [h[1], h[0]],
      c,
      zh,
      onStep: (t, ht) => rec.copy(ht, all, H * ld, 0, t * H * ld),
    });
    rec.submit();
    const r = await gpu.read(all);
    gpu.release(all);
    const out = new Float32Array(T * H * S);
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < H; j++) {
        out.set(r.subarray((t * H + j) * ld, (t * H + j) * ld + S), (t * H + j) * S);
      }
    }
    return out;
  }

  /** Returns the engine's buffers to the pool. */
  destroy(): void {
    for (const t of this.#owned) this.gpu.release(t);
    this.#owned = [];
    this.#bufs.clear();
    this.#zx = null;
  }
}
