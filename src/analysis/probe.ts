/**
 * The ablation engine: a trained model, a fixed evaluation set, and batched exact ablation.
 *
 * Zeroing weight `w_ij` of weight layer `l` changes only unit j's pre-activation, by `-w_ij·x_i`.
 * So the probe caches, once, every weight layer's input `X_l` and pre-activation `Z_l` over the
 * S evaluation samples; a batch of K ablations is K corrected copies of `Z_l` side by side
 * (`patch_columns`, K·S columns), pushed through the rest of the model in one forward, and one
 * workgroup per ablation sums its loss and correct count (`ablation_metrics`). Unit ablation
 * zeroes row j of a weight layer's input `X_l` instead. Batch norm runs in evaluation mode
 * (running statistics), dropout is the identity.
 *
 * Engines (`engine`, validated against each other in tests and timed side by side by
 * `bench:ablate`): `"carry"` (default) is the work-efficient path of src/analysis/ablation_carry.ts:
 * per ablation only the samples its input reaches, carried along the nonzeros of the next layers'
 * rows to the per-sample loss (through layer norm too, by shaders/ablation_carry_ln.wgsl); a layer
 * it cannot carry (see there: three or more layers above, ...) falls back to `"batched"`, the patched-copy path above. {@link
 * Probe.ablateNaive} is the naive reference (zero the weight, full forward).
 *
 * @example
 * ```ts ignore
 * const probe = await Probe.fromRun("runs/mnist-set", { evalSamples: 1000, seed: 0 });
 * const base = await probe.baseline();
 * const r = await probe.ablateWeights(0, Uint32Array.from([0, 1, 2]));
 * console.log(base.loss, r.dLoss);
 * ```
 * @module
 */
import { FiligreeError, getGpu, type Gpu, roundUp4, type Tensor } from "../gpu/mod.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { activationForward } from "../kernels/activation.ts";
import {
  ablatedRow,
  ablationMetrics,
  type MetricLoss,
  packAblations,
  patchColumns,
  patchNext,
  replaceTerm,
} from "../kernels/analysis.ts";
import { type Act, ActCache } from "../nn/act.ts";
import { type CarryDecision, type CarryPlan, planCarry } from "./ablation_carry.ts";
import type { Linear, SparseLinear } from "../nn/layers.ts";
import {
  analysisOf,
  isWeightLayer,
  type WeightKind,
  type WeightView,
  weightViewsOf,
} from "../nn/analyzable.ts";
import type { Layer } from "../nn/layers.ts";
import { LstmAblationEngine } from "./ablation_lstm.ts";
import { convChannelNext, convPatch } from "../kernels/ablation_conv.ts";
import { type ConvGeometry, im2col, maxPoolForward } from "../kernels/conv.ts";
import { spmm } from "../kernels/sparse.ts";
import { csrFromCoo, type CsrLayer, uploadCsr } from "../sparse/csr.ts";
import type { Sequential } from "../nn/mlp.ts";
import { parseTrainConfig, type TrainConfig } from "../train/config.ts";
import { loadCheckpoint } from "../train/checkpoint.ts";
import { Trainer } from "../train/trainer.ts";
import { stratifiedIndices, takeSamples } from "../data/datasets.ts";
import { GpuDataset } from "../data/loader.ts";

/** A weight layer of the probed model, with its nonzeros on the CPU (value order). */
export interface ProbeLayer {
  name: string;
  /** Index in `model.layers`. */
  index: number;
  /**
   * The model layer (every weight layer today is a SparseLinear or Linear, convolutions
   * included); new code should ask {@link ProbeLayer.view} instead.
   */
  layer: SparseLinear | Linear;
  /** What the layer tells the analysis (nn/analyzable.ts). */
  view: WeightView;
  /** Exact-ablation engine: a row of {@link PATCH_ENGINES}. */
  kind: WeightKind;
  sparse: boolean;
  /** Rows of the weight matrix (`c_in·k·k` for a convolution). */
  nIn: number;
  /** Columns of the weight matrix (output units, or channels). */
  nOut: number;
  /** Output positions sharing each weight (1, or `oh·ow` for a convolution). */
  positions: number;
  /** Rows of the layer's input activation. */
  inFeatures: number;
  /** Input rows per unit (1, or `h·w` per channel) and units of the input (ablatable). */
  unitRows: number;
  units: number;
  /** A convolution's geometry (its view's); absent for other layers. */
  geometry?: ConvGeometry;
  nnz: number;
  /** Weights in the layer's value order (CSR(Wᵀ) for sparse layers, `[in][out]` for dense). */
  values: Float32Array;
  /** Per entry: input unit i, output unit j. */
  ends: Uint32Array;
  /** Checkpoint order (CSR of W) -> value order: `values[perm[w]]` is checkpoint entry w. */
  perm: Uint32Array;
  /** Step each nonzero was last grown (value order); dense layers: all zero. */
  born: Uint32Array;
}

/** Loss and accuracy over the evaluation set. */
export interface Metrics {
  loss: number;
  accuracy: number;
}

/** Per-ablation changes against the unablated model. */
export interface AblationResult {
  dLoss: Float64Array;
  dAccuracy: Float64Array;
}

/** Options of {@link Probe.fromRun}. */
export interface ProbeOptions {
  evalSamples: number;
  evalSplit?: "test" | "train";
  seed: number;
  /** GPU memory for one batch of ablations, MB. */
  budgetMB?: number;
  /** Single-weight ablation engine (default "carry": work-efficient, falls back per layer). */
  engine?: AblationEngine;
}

/** Single-weight ablation engines of {@link Probe}. */
export type AblationEngine = "carry" | "batched";

/** Ablations per dispatch of the carried kernel: about 2^22 sample-ablations of work. */
const CARRY_WORK_PER_DISPATCH = 1 << 22;

/** Reads and validates a run directory's config.json. */
export async function readRunConfig(dir: string): Promise<TrainConfig> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(dir);
  } catch {
    throw new FiligreeError(`run directory ${dir} does not exist`);
  }
  if (!st.isDirectory) throw new FiligreeError(`${dir} is not a run directory`);
  let raw: { config?: unknown; filigree?: string };
  try {
    raw = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  } catch (e) {
    throw new FiligreeError(
      `${dir}/config.json: ${
        e instanceof Deno.errors.NotFound ? "missing (not a run directory?)" : "not valid JSON"
      }`,
    );
  }
  if (typeof raw.filigree !== "string" || raw.filigree.split(".")[0] !== "0") {
    throw new FiligreeError(
      `${dir}: written by filigree ${raw.filigree ?? "(unknown)"}, this is 0.x: retrain the run`,
    );
  }
  try {
    return parseTrainConfig(raw.config);
  } catch (e) {
    throw new FiligreeError(`${dir}/config.json: ${(e as Error).message}`);
  }
}

/** The loss the metrics kernel computes for a training config. */
export function metricLoss(cfg: TrainConfig): MetricLoss {
  return cfg.loss === "xent" ? "xent" : cfg.outputActivation === "sigmoid" ? "mse-sigmoid" : "mse";
}

/**
 * The most evaluation samples one probe of this model can hold on its device: every per-sample
 * tensor of the probe and of the model's forward (a layer's input, its weight matrix's input,
 * which is a convolution's im2col columns, its pre-activation, the gates of every LSTM step) has
 * `roundUp4(samples)` columns and must fit one storage binding (`maxStorageBufferBindingSize`).
 * A multiple of 4 (at least 4). Larger evaluation sets are analysed in shards (analysis/run.ts).
 *
 * @example
 * ```ts ignore
 * const probe = await Probe.fromRun("runs/mnist-cnn", { evalSamples: 5000, seed: 0 });
 * maxProbeSamples(probe); // 428 for the study CNN (conv2's columns: 400·196 rows) at 128 MiB
 * ```
 */
export function maxProbeSamples(p: Probe): number {
  let rows = p.x.rows;
  for (const l of p.layers) {
    rows = Math.max(rows, l.inFeatures, l.nIn * l.positions, l.nOut * l.positions);
  }
  const fit = Math.floor(p.gpu.limits.maxStorageBufferBindingSize / (4 * rows));
  return Math.max(4, fit - (fit % 4));
}

/**
 * Copies per batch for `count` ablations when at most `most` fit (at least 1): the fewest batches
 * that cap allows, with the copies spread evenly over them, so that the last batch is not mostly
 * padding (padded copies cost as much as real ones).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evenBatch } from "./probe.ts";
 * assert.equal(evenBatch(513, 251), 171); // 3 batches of 171, not 3 of 251 (753 copies)
 * assert.equal(evenBatch(1001, 16), 16); // 63 batches either way
 * assert.equal(evenBatch(10, 64), 10);
 * assert.equal(evenBatch(5, 0), 1);
 * assert.equal(evenBatch(0, 8), 1); // nothing to ablate: one (unused) copy, as before
 * ```
 */
export function evenBatch(count: number, most: number): number {
  const cap = Math.max(1, Math.min(count, most));
  return count <= cap ? cap : Math.ceil(count / Math.ceil(count / cap));
}

/** A loaded model with a fixed evaluation set and cached activations. */
export class Probe {
  readonly layers: ProbeLayer[];
  readonly cache: ActCache;
  /**
   * Per weight layer: its input X `[inFeatures][ld]`, pre-activation Z `[nOut·P][ld]` and the
   * weight matrix's input `[nIn·P][ld]` (the im2col columns of a convolution; X itself for a
   * fully-connected layer) over the evaluation set (copies).
   */
  readonly cachedX: Tensor[] = [];
  readonly cachedZ: Tensor[] = [];
  readonly cachedCols: Tensor[] = [];
  #cached = false;
  #ablTensor: Tensor | null = null;
  #sums: Tensor | null = null;
  #baseline: Metrics | null = null;

  private constructor(
    readonly gpu: Gpu,
    readonly trainer: Trainer,
    readonly x: Act,
    readonly labels: Tensor,
    readonly evalIndices: Uint32Array,
    readonly opts: Required<ProbeOptions>,
    layers: ProbeLayer[],
  ) {
    this.layers = layers;
    this.cache = new ActCache(gpu, "probe");
  }

  /** The model. */
  get model(): Sequential {
    return this.trainer.model;
  }
  /** Evaluation samples. */
  get samples(): number {
    return this.x.batch;
  }
  /** The training config of the run. */
  get cfg(): TrainConfig {
    return this.trainer.cfg;
  }
  /** The loss the metrics use. */
  get loss(): MetricLoss {
    return metricLoss(this.trainer.cfg);
  }

  /** Loads a run directory (config + checkpoint) and draws the seeded evaluation subset. */
  static async fromRun(dir: string, opts: ProbeOptions): Promise<Probe> {
    const cfg = await readRunConfig(dir);
    const gpu = await getGpu();
    const t = await Trainer.create(gpu, cfg);
    const ckpt = `${dir}/checkpoint.safetensors`;
    try {
      await Deno.stat(ckpt);
    } catch {
      throw new FiligreeError(
        `${dir}: no checkpoint.safetensors (training never finished an epoch)`,
      );
    }
    await loadCheckpoint(t, ckpt);
    return await Probe.fromTrainer(t, opts);
  }

  /** Wraps an in-memory trainer (its current weights). */
  static async fromTrainer(t: Trainer, opts: ProbeOptions): Promise<Probe> {
    const gpu = t.gpu;
    const o: Required<ProbeOptions> = {
      evalSplit: "test",
      budgetMB: 256,
      engine: "carry",
      ...opts,
    };
    const ds = t.dataset;
    const split = ds[o.evalSplit];
    if (!Number.isInteger(o.evalSamples) || o.evalSamples < 1) {
      throw new FiligreeError(`evalSamples must be a positive integer, got ${o.evalSamples}`);
    }
    const n = Math.min(o.evalSamples, split.n);
    const idx = stratifiedIndices(split.labels, ds.classes, n, o.seed);
    const evalDs = { ...ds, test: takeSamples(split, ds.features, idx) };
    const data = GpuDataset.create(gpu, evalDs, { batchSize: n, norm: t.cfg.inputNorm });
    const rec = gpu.recorder("eval set");
    const b = data.testBatch(rec, 0);
    const x = gpu.tensor("f32", [ds.features, roundUp4(n)], { label: "eval x" });
    const labels = gpu.tensor("u32", [n], { label: "eval labels" });
    rec.copy(b.x, x, ds.features * roundUp4(n));
    rec.copy(b.labels, labels, n);
    rec.submit();
    await gpu.sync();
    data.destroy();
    const layers = await readLayers(gpu, t.model);
    return new Probe(gpu, t, { t: x, rows: ds.features, batch: n }, labels, idx, o, layers);
  }

  /** Records the forward pass from model layer `from` on input `h` (evaluation mode). */
  forwardFrom(rec: ReturnType<Gpu["recorder"]>, from: number, h: Act): Act {
    const layers = this.model.layers;
    for (let i = from; i < layers.length; i++) h = layers[i].forward({ rec, tape: null }, h);
    return h;
  }

  /** Caches X and Z of every weight layer over the evaluation set (after weights change, too). */
  async refreshCache(): Promise<void> {
    const gpu = this.gpu;
    const rec = gpu.recorder("probe cache");
    const ld = roundUp4(this.samples);
    let h = this.x;
    const layers = this.model.layers;
    let w = 0;
    for (let i = 0; i < layers.length; i++) {
      const L = layers[i];
      const pl = this.layers[w];
      if (pl && pl.index === i && pl.kind === "lstm") {
        // The LSTM engine caches its own state; the analysis keeps the sequence inputs of
        // both weight matrices (`[rows·T][ld]`) for Wanda.
        h = L.forward({ rec, tape: null }, h);
        for (; this.layers[w]?.index === i; w++) {
          const q = this.layers[w], rows = q.nIn * q.positions;
          this.cachedCols[w] ??= gpu.tensor("f32", [rows, ld], { label: `${q.name} cached in` });
          rec.copy(q.view.weightInput(this.samples).t, this.cachedCols[w], rows * ld);
        }
      } else if (pl && pl.index === i) {
        const P = pl.positions;
        this.cachedX[w] ??= gpu.tensor("f32", [pl.inFeatures, ld], {
          label: `${pl.name} cached x`,
        });
        this.cachedZ[w] ??= gpu.tensor("f32", [pl.nOut * P, ld], {
          label: `${pl.name} cached z`,
        });
        rec.copy(h.t, this.cachedX[w], pl.inFeatures * ld);
        h = L.forward({ rec, tape: null }, h);
        rec.copy(pl.view.preActivation(this.samples).t, this.cachedZ[w], pl.nOut * P * ld);
        if (P > 1) {
          this.cachedCols[w] ??= gpu.tensor("f32", [pl.nIn * P, ld], {
            label: `${pl.name} cached cols`,
          });
          rec.copy(pl.view.weightInput(this.samples).t, this.cachedCols[w], pl.nIn * P * ld);
        } else this.cachedCols[w] = this.cachedX[w];
        w++;
      } else {
        h = L.forward({ rec, tape: null }, h);
      }
    }
    rec.submit();
    await gpu.sync();
    this.#cached = true;
    this.#baseline = null;
    this.#dropPlans();
    if (this.#lstm) await this.#lstm.refresh();
  }

  #lstm: LstmAblationEngine | null = null;

  /** The exact LSTM engine (src/analysis/ablation_lstm.ts) over this probe's evaluation set. */
  async lstmEngine(): Promise<LstmAblationEngine> {
    if (!this.#cached) await this.refreshCache();
    this.#lstm ??= await LstmAblationEngine.create(this.gpu, this.model, this.x, this.labels, {
      loss: this.loss,
      budgetMB: this.opts.budgetMB,
    });
    return this.#lstm;
  }

  /** Single-weight ablation engine in use (see the module doc). */
  get engine(): AblationEngine {
    return this.#engine ?? this.opts.engine;
  }
  set engine(e: AblationEngine) {
    this.#engine = e;
  }
  #engine: AblationEngine | null = null;
  #plans = new Map<number, Promise<CarryDecision>>();

  #dropPlans(): void {
    for (const p of this.#plans.values()) {
      p.then((d) => {
        if (!d.plan) return;
        for (const t of d.plan.tensors) this.gpu.release(t);
      });
    }
    this.#plans.clear();
  }

  /**
   * Whether weight layer `w`'s single-weight ablations take the work-efficient carried path,
   * its cost model, or why they fall back to the batched path.
   */
  async carryDecision(
    w: number,
  ): Promise<{ carried: boolean; reason?: string; cost?: CarryPlan["cost"] }> {
    if (!this.#cached) await this.refreshCache();
    const d = await this.#planFor(w);
    return d.plan ? { carried: true, cost: d.plan.cost } : { carried: false, reason: d.reason };
  }

  #planFor(w: number): Promise<CarryDecision> {
    let p = this.#plans.get(w);
    if (!p) {
      p = planCarry({
        gpu: this.gpu,
        model: this.model,
        layers: this.layers,
        samples: this.samples,
        loss: this.loss,
        labels: this.labels,
        cachedX: this.cachedX,
        cachedZ: this.cachedZ,
      }, w);
      this.#plans.set(w, p);
    }
    return p;
  }

  async #runCarry(
    w: number,
    plan: CarryPlan,
    items: number,
    make: (k: number) => { i: number; j: number; w: number },
    onProgress?: (done: number, total: number) => void,
  ): Promise<AblationResult> {
    const gpu = this.gpu;
    const S = this.samples;
    const made = Array.from({ length: items }, (_, k) => make(k));
    // By input row, then output row: neighbouring lanes walk the same sample list.
    const order = Array.from({ length: items }, (_, k) => k).sort((a, b) =>
      made[a].i - made[b].i || made[a].j - made[b].j
    );
    const list = items > 0 ? order.map((k) => made[k]) : [{ i: 0, j: 0, w: 0 }];
    const abl = gpu.tensor("u32", [3 * list.length], {
      data: packAblations(list),
      label: "carried ablations",
    });
    const { chunks } = plan;
    const out = gpu.tensor("f32", [2 * chunks * Math.max(1, items)], { label: "carried sums" });
    const per = Math.max(
      1,
      Math.min(plan.perDispatch, Math.floor(CARRY_WORK_PER_DISPATCH / (S * chunks))),
    );
    let n = 0;
    for (let first = 0; first < items; first += per) {
      const rec = gpu.recorder("carried ablation");
      plan.dispatch(rec, {
        x0: this.cachedX[w],
        z0: this.cachedZ[w],
        ablations: abl,
        first,
        count: Math.min(per, items - first),
        out,
      });
      rec.submit();
      if (onProgress && (++n % 8 === 0 || first + per >= items)) {
        await gpu.sync();
        onProgress(Math.min(items, first + per), items);
      }
    }
    const r = items > 0 ? await gpu.read(out) : new Float32Array(0);
    gpu.release(abl);
    gpu.release(out);
    const dLoss = new Float64Array(items), dAccuracy = new Float64Array(items);
    for (let p = 0; p < items; p++) {
      let l = 0, h = 0;
      for (let c = 0; c < chunks; c++) {
        l += r[2 * (p * chunks + c)];
        h += r[2 * (p * chunks + c) + 1];
      }
      dLoss[order[p]] = l / S;
      dAccuracy[order[p]] = h / S;
    }
    return { dLoss, dAccuracy };
  }

  #sumsFor(count: number): Tensor {
    if (!this.#sums || this.#sums.size < 2 * count) {
      this.#sums = this.gpu.tensor("f32", [2 * count], { label: "ablation sums" });
    }
    return this.#sums;
  }

  /** Loss and accuracy of the model as it is now, on the evaluation set. */
  async evaluate(): Promise<Metrics> {
    const sums = this.#sumsFor(1);
    this.recordEvaluate(sums, 0);
    const r = await this.gpu.read(sums);
    return { loss: r[0] / this.samples, accuracy: r[1] / this.samples };
  }

  /**
   * Submits an evaluation of the model as it is now whose [loss sum, correct count] land in
   * `out[2·slot]`, without waiting: queue writes of new values before it are seen by it, so
   * many masked evaluations can run back to back with one readback.
   */
  recordEvaluate(out: Tensor, slot: number): void {
    const rec = this.gpu.recorder("probe eval");
    const logits = this.forwardFrom(rec, 0, this.x);
    ablationMetrics(rec, {
      logits: logits.t,
      labels: this.labels,
      classes: logits.rows,
      samples: this.samples,
      count: 1,
      loss: this.loss,
      sums: this.#sumsFor(1),
    });
    if (out !== this.#sums) rec.copy(this.#sums!, out, 2, 0, 2 * slot);
    rec.submit();
  }

  /** The unablated model's metrics (cached). */
  async baseline(): Promise<Metrics> {
    this.#baseline ??= await this.evaluate();
    return this.#baseline;
  }

  /**
   * Ablations per batch for weight layer `w` (or the units at its input): the largest K whose
   * K·S-column activations of the layers above fit the memory budget and the binding limit.
   */
  batchSize(w: number, count: number, mode: "rank1" | "zero" = "rank1"): number {
    const pl = this.layers[w];
    const layers = this.model.layers;
    const P = pl.positions;
    // Per sample: the patched copies and their activation; a convolution's unit ablation also
    // runs the layer itself (its input, im2col columns and outputs), a weight ablation does not.
    const runsLayer = P > 1 && mode === "zero";
    let rowsSum = 2 * pl.nOut * P + (runsLayer ? pl.inFeatures + pl.view.floatsPerSample : 0);
    let maxRows = runsLayer
      ? Math.max(pl.nOut * P, pl.inFeatures, pl.nIn * P)
      : Math.max(pl.nOut * P, P > 1 ? 0 : pl.nIn);
    for (let i = pl.index + 1; i < layers.length; i++) {
      const L = layers[i];
      if (isWeightLayer(L)) {
        const v = L.weightView();
        rowsSum += v.floatsPerSample;
        maxRows = Math.max(maxRows, v.nOut * v.positions, v.nIn * v.positions);
      } else {
        rowsSum += 2 * L.outFeatures;
        maxRows = Math.max(maxRows, L.outFeatures);
      }
    }
    const perAblation = rowsSum * 4 * this.samples;
    const byBudget = Math.floor((this.opts.budgetMB * 2 ** 20) / perAblation);
    const byBinding = Math.floor(
      this.gpu.limits.maxStorageBufferBindingSize / (maxRows * 4 * this.samples) - 1,
    );
    return evenBatch(count, Math.min(byBudget, byBinding));
  }

  #denseNext = new Map<number, Float32Array>();

  /**
   * Whether single-weight ablations of weight layer `w` can be carried into the next weight
   * layer's pre-activation: only its fused activation and (evaluation-mode) dropout lie between
   * them, so a removed weight changes one input row of the next layer.
   */
  canCarry(w: number): boolean {
    const pl = this.layers[w], next = this.layers[w + 1];
    if (!next || pl.kind !== "linear" || next.kind !== "linear") return false;
    const between = this.model.layers.slice(pl.index + 1, next.index);
    return between.every((l) => analysisOf(l).evalIdentity === true);
  }

  /** Weight layer `w` as a dense `[nIn][nOut]` matrix (for the outgoing rows of its inputs). */
  #dense(w: number): Float32Array {
    let d = this.#denseNext.get(w);
    if (!d) {
      const pl = this.layers[w];
      d = new Float32Array(pl.nIn * pl.nOut);
      for (let e = 0; e < pl.nnz; e++) {
        d[pl.ends[2 * e] * pl.nOut + pl.ends[2 * e + 1]] = pl.values[e];
      }
      this.#denseNext.set(w, d);
    }
    return d;
  }

  async #run(
    w: number,
    items: number,
    mode: "rank1" | "zero",
    make: (k: number) => { i: number; j: number; w: number },
    onProgress?: (done: number, total: number) => void,
  ): Promise<AblationResult> {
    if (!this.#cached) await this.refreshCache();
    const engine = PATCH_ENGINES[this.layers[w].kind];
    if (!engine) {
      throw new FiligreeError(
        `${this.layers[w].name}: no exact-ablation engine for "${this.layers[w].kind}" layers`,
      );
    }
    const local = mode === "rank1" && this.fastPath ? this.convLocal(w) : null;
    if (local?.next === "linear") return await this.#runConvLocal(w, items, make, onProgress);
    if (local?.next === "conv" && this.convIntoConv) {
      return await this.#runConvLocalConv(w, items, make, onProgress);
    }
    if (mode === "rank1" && this.engine === "carry" && this.layers[w].kind === "linear") {
      const d = await this.#planFor(w);
      if (d.plan) return await this.#runCarry(w, d.plan, items, make, onProgress);
    }
    const base = await this.baseline();
    const gpu = this.gpu;
    const pl = this.layers[w];
    const S = this.samples;
    const carry = mode === "rank1" && this.fastPath && this.canCarry(w);
    const next = this.layers[w + 1];
    const K = carry ? this.batchSize(w + 1, items) : this.batchSize(w, items, mode);
    const rows = carry ? next.nOut : mode === "rank1" ? pl.nOut * pl.positions : pl.inFeatures;
    const patched = this.cache.get(`patched:${w}:${mode}:${carry}`, rows, K * S);
    const wOut = carry ? gpu.tensor("f32", [K * next.nOut], { label: "outgoing rows" }) : null;
    const dense = carry ? this.#dense(w + 1) : null;
    const ablT = this.#ablTensor && this.#ablTensor.size >= 3 * K
      ? this.#ablTensor
      : (this.#ablTensor = gpu.tensor("u32", [3 * K], { label: "ablations" }));
    const results = gpu.tensor("f32", [2 * Math.max(1, items)], { label: "ablation results" });
    const sums = this.#sumsFor(K);
    const batches = Math.ceil(items / K);
    for (let b = 0; b < batches; b++) {
      const first = b * K;
      const list = Array.from(
        { length: K },
        (_, k) => first + k < items ? make(first + k) : { i: 0, j: 0, w: 0 },
      );
      gpu.write(ablT, packAblations(list));
      const rec = gpu.recorder("ablation batch");
      let h: Act = patched;
      if (carry) {
        const wo = new Float32Array(K * next.nOut);
        list.forEach((a, k) =>
          wo.set(dense!.subarray(a.j * next.nOut, (a.j + 1) * next.nOut), k * next.nOut)
        );
        gpu.write(wOut!, wo);
        const zRow = this.cache.get(`zrow:${w}`, 1, K * S);
        ablatedRow(rec, {
          z: this.cachedZ[w],
          x: this.cachedX[w],
          samples: S,
          ablations: ablT,
          count: K,
          out: zRow.t,
        });
        let hRow = zRow;
        if (pl.view.act !== "identity") {
          hRow = this.cache.get(`hrow:${w}`, 1, K * S);
          activationForward(rec, {
            z: zRow.t,
            y: hRow.t,
            rows: 1,
            batch: K * S,
            activation: pl.view.act,
            param: pl.view.actParam,
          });
        }
        patchNext(rec, {
          zNext: this.cachedZ[w + 1],
          hCached: this.cachedX[w + 1],
          hNew: hRow.t,
          wOut: wOut!,
          ablations: ablT,
          rows: next.nOut,
          samples: S,
          count: K,
          out: patched.t,
        });
        h = next.view.reenter(rec, patched);
        h = this.forwardFrom(rec, next.index + 1, h);
      } else {
        engine(rec, {
          cached: mode === "rank1" ? this.cachedZ[w] : this.cachedX[w],
          x: this.cachedCols[w],
          rows,
          group: mode === "rank1" ? pl.positions : pl.unitRows,
          samples: S,
          ablations: ablT,
          count: K,
          mode,
          out: patched.t,
        });
        if (mode === "rank1") {
          h = pl.view.reenter(rec, patched);
          h = this.forwardFrom(rec, pl.index + 1, h);
        } else {
          h = this.forwardFrom(rec, pl.index, h);
        }
      }
      await this.finishAblationBatch(rec, h, sums, results, {
        count: K,
        items,
        first,
        last: b === batches - 1,
        progress: b % 8 === 7,
        onProgress,
      });
    }
    const r = await gpu.read(results);
    gpu.release(results);
    if (wOut) gpu.release(wOut);
    return deltasOf(r, items, S, base);
  }

  /**
   * Whether single-weight ablations of convolution `w` can stay channel-local: between it and
   * the next weight layer lie only its fused activation, one max pooling over its output and
   * evaluation-mode identities, so a removed weight changes one output channel, its pooled rows,
   * and the next layer's pre-activation through those rows only. The next layer is fully
   * connected (`next: "linear"`: its input is the pooled channels flattened) or a convolution
   * over the pooled image (`next: "conv"`). Returns the pooling geometry and the next kind, or
   * null.
   */
  convLocal(w: number): {
    height: number;
    width: number;
    size: number;
    oh: number;
    ow: number;
    next: "linear" | "conv";
  } | null {
    const pl = this.layers[w], next = this.layers[w + 1];
    if (pl.kind !== "conv" || !next || (next.kind !== "linear" && next.kind !== "conv")) {
      return null;
    }
    let pool: { height: number; width: number; channels: number; size: number } | null = null;
    for (const L of this.model.layers.slice(pl.index + 1, next.index)) {
      const a = analysisOf(L);
      if (a.evalIdentity) continue;
      if (!a.maxPool || pool) return null;
      pool = a.maxPool;
    }
    if (!pool || pool.channels !== pl.nOut || pool.height * pool.width !== pl.positions) {
      return null;
    }
    const oh = Math.floor(pool.height / pool.size), ow = Math.floor(pool.width / pool.size);
    const g = { height: pool.height, width: pool.width, size: pool.size, oh, ow };
    if (next.kind === "linear") {
      return next.nIn === pl.nOut * oh * ow ? { ...g, next: "linear" } : null;
    }
    const g2 = next.geometry;
    if (!g2 || g2.channels !== pl.nOut || g2.height !== oh || g2.width !== ow) return null;
    return { ...g, next: "conv" };
  }

  /**
   * Records, for `count` copies of the ablations in `ablT` (each on one output channel j of
   * convolution `w`), channel j's corrected pre-activation at every position, its activation and
   * its max pooling (a one-channel image per copy, into `b.pooled`): the start of both
   * channel-local paths.
   */
  #pooledChannel(
    rec: Recorder,
    w: number,
    ablT: Tensor,
    count: number,
    b: { patched: Act; pooled: Act; argmax: Tensor },
  ): void {
    const pl = this.layers[w], g = this.convLocal(w)!, S = this.samples, P = pl.positions;
    convPatch(rec, {
      cached: this.cachedZ[w],
      x: this.cachedCols[w],
      rows: P,
      group: P,
      samples: S,
      ablations: ablT,
      count,
      mode: "channel",
      out: b.patched.t,
    });
    const y = pl.view.reenter(rec, { ...b.patched, batch: count * S });
    maxPoolForward(rec, {
      channels: 1,
      height: g.height,
      width: g.width,
      size: g.size,
      x: y.t,
      y: b.pooled.t,
      argmax: b.argmax,
      batch: count * S,
    });
  }

  async #runConvLocal(
    w: number,
    items: number,
    make: (k: number) => { i: number; j: number; w: number },
    onProgress?: (done: number, total: number) => void,
  ): Promise<AblationResult> {
    const base = await this.baseline();
    const gpu = this.gpu, pl = this.layers[w], next = this.layers[w + 1];
    const S = this.samples, P = pl.positions;
    const g = this.convLocal(w)!;
    const Q = g.oh * g.ow;
    const byBinding = Math.floor(
      gpu.limits.maxStorageBufferBindingSize / (P * 4 * S) - 1,
    );
    const K = evenBatch(items, Math.min(this.batchSize(w + 1, items), byBinding));
    const patched = this.cache.get(`chan:${w}`, P, K * S);
    const pooled = this.cache.get(`chanpool:${w}`, Q, K * S);
    const argmax = this.cache.scratch(`chanarg:${w}:${K}`, Q * roundUp4(K * S), "u32");
    const zNext = this.cache.get(`channext:${w}`, next.nOut, K * S);
    const wNext = gpu.tensor("f32", [next.nIn * next.nOut], {
      data: this.#dense(w + 1),
      label: "next layer weights",
    });
    const ablT = this.#ablTensor && this.#ablTensor.size >= 3 * K
      ? this.#ablTensor
      : (this.#ablTensor = gpu.tensor("u32", [3 * K], { label: "ablations" }));
    const results = gpu.tensor("f32", [2 * Math.max(1, items)], { label: "ablation results" });
    const sums = this.#sumsFor(K);
    const batches = Math.ceil(items / K);
    for (let b = 0; b < batches; b++) {
      const first = b * K;
      const list = Array.from(
        { length: K },
        (_, k) => first + k < items ? make(first + k) : { i: 0, j: 0, w: 0 },
      );
      gpu.write(ablT, packAblations(list));
      const rec = gpu.recorder("channel-local conv ablation");
      this.#pooledChannel(rec, w, ablT, K, { patched, pooled, argmax });
      convChannelNext(rec, {
        zCached: this.cachedZ[w + 1],
        xCached: this.cachedX[w + 1],
        pooled: pooled.t,
        wNext,
        ablations: ablT,
        rows: next.nOut,
        q: Q,
        samples: S,
        count: K,
        out: zNext.t,
      });
      let h = next.view.reenter(rec, zNext);
      h = this.forwardFrom(rec, next.index + 1, h);
      await this.finishAblationBatch(rec, h, sums, results, {
        count: K,
        items,
        first,
        last: b === batches - 1,
        progress: b % 8 === 7,
        onProgress,
      });
    }
    const r = await gpu.read(results);
    gpu.release(results);
    gpu.release(wNext);
    return deltasOf(r, items, S, base);
  }

  /**
   * Channel-local ablation of convolution `w` followed (after pooling) by convolution `w + 1`:
   * per ablation, channel j of `w`'s pre-activation is patched, activated and pooled into a
   * one-channel image, and the next convolution's pre-activation is its cached one with channel
   * j's term replaced (`replace_term`: minus the term of j's cached image, plus the term of the
   * new one, each an im2col of one channel and a SpMM with the next layer's rows of channel j);
   * the rest of the model runs on that. Ablations are grouped by channel (each batch uses one
   * channel's rows) and their results put back in the caller's order.
   */
  async #runConvLocalConv(
    w: number,
    items: number,
    make: (k: number) => { i: number; j: number; w: number },
    onProgress?: (done: number, total: number) => void,
  ): Promise<AblationResult> {
    const base = await this.baseline();
    const gpu = this.gpu, pl = this.layers[w], next = this.layers[w + 1];
    const S = this.samples, P = pl.positions, ldS = roundUp4(S);
    const g = this.convLocal(w)!;
    const Q = g.oh * g.ow, g2 = next.geometry!, one = { ...g2, channels: 1 };
    const kk = g2.kernel * g2.kernel, P2 = next.positions, R2 = next.nOut * P2;
    // The largest per-copy tensor (kk·P2 rows of columns, R2 of pre-activation) fits a binding.
    const rowsMax = Math.max(P, Q, kk * P2, R2);
    const byBinding = Math.floor(
      (gpu.limits.maxStorageBufferBindingSize / (4 * rowsMax) - 3) / S,
    );
    const K = Math.max(1, Math.min(this.batchSize(w + 1, items), byBinding));
    const ldN = roundUp4(K * S); // the scratch holds K copies; a batch uses n <= K
    // Ablations in channel order (stable), each channel's in batches of at most K.
    const all = Array.from({ length: items }, (_, k) => ({ k, a: make(k) }));
    all.sort((x, y) => x.a.j - y.a.j || x.k - y.k);
    const patched = this.cache.get(`cc-chan:${w}`, P, K * S);
    const pooled = this.cache.get(`cc-pool:${w}`, Q, K * S);
    const argmax = this.cache.scratch(`cc-arg:${w}:${K}`, Q * ldN, "u32");
    const colsNew = this.cache.get(`cc-cols:${w}`, kk, P2 * ldN);
    const zNew = this.cache.get(`cc-znew:${w}`, next.nOut, P2 * ldN);
    const zNext = this.cache.get(`cc-znext:${w}`, R2, K * S);
    const imgOld = this.cache.get(`cc-img:${w}`, Q, S);
    const colsOld = this.cache.get(`cc-colsold:${w}`, kk, P2 * ldS);
    const zOld = this.cache.get(`cc-zold:${w}`, next.nOut, P2 * ldS);
    const ablT = this.#ablTensor && this.#ablTensor.size >= 3 * K
      ? this.#ablTensor
      : (this.#ablTensor = gpu.tensor("u32", [3 * K], { label: "ablations" }));
    const results = gpu.tensor("f32", [2 * Math.max(1, items)], { label: "ablation results" });
    const sums = this.#sumsFor(K);
    const csrs: CsrLayer[] = [];
    let first = 0;
    try {
      while (first < items) {
        const j = all[first].a.j;
        let end = first;
        while (end < items && all[end].a.j === j) end++;
        // The next layer's weights from input channel j: rows (j·k + ky)·k + kx -> ky·k + kx.
        const rows: number[] = [], cols: number[] = [], vals: number[] = [];
        for (let e = 0; e < next.nnz; e++) {
          const i = next.ends[2 * e];
          if (Math.floor(i / kk) !== j) continue;
          rows.push(i - j * kk);
          cols.push(next.ends[2 * e + 1]);
          vals.push(next.values[e]);
        }
        const csr = uploadCsr(gpu, csrFromCoo(kk, next.nOut, rows, cols, vals), `chan ${j}`);
        csrs.push(csr);
        // Channel j's term of the next pre-activation on the cached (unablated) image.
        let rec = gpu.recorder("channel term");
        rec.copy(this.cachedX[w + 1], imgOld.t, Q * ldS, j * Q * ldS, 0);
        im2col(rec, { ...one, x: imgOld.t, cols: colsOld.t, batch: S });
        spmm(rec, { layer: csr, x: colsOld.t, y: zOld.t, batch: P2 * ldS });
        rec.submit();
        for (let b = first; b < end; b += K) {
          // Only this channel's n ablations: a short batch computes n copies, not K.
          const n = Math.min(K, end - b), ldn = roundUp4(n * S);
          gpu.write(ablT, packAblations(all.slice(b, b + n).map((x) => x.a)));
          rec = gpu.recorder("channel-local conv-conv ablation");
          this.#pooledChannel(rec, w, ablT, n, { patched, pooled, argmax });
          im2col(rec, { ...one, x: pooled.t, cols: colsNew.t, batch: n * S });
          spmm(rec, { layer: csr, x: colsNew.t, y: zNew.t, batch: P2 * ldn });
          replaceTerm(rec, {
            cached: this.cachedZ[w + 1],
            old: zOld.t,
            fresh: zNew.t,
            rows: R2,
            samples: S,
            count: n,
            out: zNext.t,
          });
          let h = next.view.reenter(rec, { ...zNext, batch: n * S });
          h = this.forwardFrom(rec, next.index + 1, h);
          const last = b + n >= items;
          await this.finishAblationBatch(rec, h, sums, results, {
            count: n,
            items: b + n,
            first: b,
            last,
            progress: last || Math.floor((b + n) / (8 * K)) > Math.floor(b / (8 * K)),
            onProgress: onProgress && ((d) => onProgress(d, items)),
          });
        }
        first = end;
      }
      const r = await gpu.read(results);
      const inOrder = new Float32Array(r.length);
      all.forEach(({ k }, pos) => {
        inOrder[2 * k] = r[2 * pos];
        inOrder[2 * k + 1] = r[2 * pos + 1];
      });
      return deltasOf(inOrder, items, S, base);
    } finally {
      gpu.release(results);
      for (const c of csrs) {
        for (const t of [c.rowPtrT, c.colT, c.values, c.rowPtr, c.col, c.perm]) gpu.release(t);
      }
    }
  }

  /**
   * The common end of one batch of K ablated copies: per-copy loss and accuracy sums of the
   * logits `h`, copied into `results` at the batch's slot, submitted; progress every 8 batches
   * and at the last.
   */
  private async finishAblationBatch(
    rec: Recorder,
    h: Act,
    sums: Tensor,
    results: Tensor,
    o: {
      count: number;
      items: number;
      first: number;
      last: boolean;
      progress: boolean;
      onProgress?: (done: number, total: number) => void;
    },
  ): Promise<void> {
    ablationMetrics(rec, {
      logits: h.t,
      labels: this.labels,
      classes: h.rows,
      samples: this.samples,
      count: o.count,
      loss: this.loss,
      sums,
    });
    const live = Math.min(o.count, o.items - o.first);
    rec.copy(sums, results, 2 * live, 0, 2 * o.first);
    rec.submit();
    if (o.onProgress && (o.progress || o.last)) {
      await this.gpu.sync();
      o.onProgress(Math.min(o.items, o.first + o.count), o.items);
    }
  }

  /** Use the carried rank-1 path where {@link canCarry} allows (tests compare both paths). */
  fastPath = true;
  /**
   * Take the channel-local path into a next convolution where {@link convLocal} allows (with
   * {@link fastPath}); off, such layers use the full patched copies (benchmarks compare both).
   */
  convIntoConv = true;

  /** Exact single-weight ablation of the given entries (value order) of weight layer `w`. */
  ablateWeights(
    w: number,
    entries: Uint32Array,
    onProgress?: (done: number, total: number) => void,
  ): Promise<AblationResult> {
    const pl = this.layers[w];
    for (const e of entries) {
      if (e >= pl.nnz) throw new FiligreeError(`${pl.name}: entry ${e} out of range (${pl.nnz})`);
    }
    if (pl.kind === "lstm") {
      // The recurrent engine: [wx, wh] are consecutive views of one layer.
      const part = this.layers[w - 1]?.index === pl.index ? "wh" : "wx";
      return this.lstmEngine().then((eng) => eng.ablateWeights(part, entries, onProgress));
    }
    return this.#run(w, entries.length, "rank1", (k) => {
      const e = entries[k];
      return { i: pl.ends[2 * e], j: pl.ends[2 * e + 1], w: pl.values[e] };
    }, onProgress);
  }

  /**
   * Unit ablation: zero input unit `u` of weight layer `w` (a hidden unit's output; for a
   * convolution, input channel `u` at every position), per unit.
   */
  ablateUnits(
    w: number,
    units: Uint32Array,
    onProgress?: (done: number, total: number) => void,
  ): Promise<AblationResult> {
    const pl = this.layers[w];
    if (w === 0) throw new FiligreeError("unit ablation applies to hidden units (layers >= 2)");
    if (pl.kind === "lstm") {
      if (units.length) {
        throw new FiligreeError(
          `${pl.name}: ablate the LSTM's hidden units through the layer after it`,
        );
      }
      return Promise.resolve({ dLoss: new Float64Array(0), dAccuracy: new Float64Array(0) });
    }
    if (this.layers[w - 1].kind === "lstm") {
      // The LSTM's hidden unit u zeroed at every step (its output and its recurrent input).
      for (const u of units) {
        if (u >= pl.units) {
          throw new FiligreeError(`${pl.name}: unit ${u} out of range (${pl.units})`);
        }
      }
      return this.lstmEngine().then((eng) => eng.ablateUnits(units, onProgress));
    }
    for (const u of units) {
      if (u >= pl.units) {
        throw new FiligreeError(`${pl.name}: unit ${u} out of range (${pl.units})`);
      }
    }
    return this.#run(w, units.length, "zero", (k) => ({ i: 0, j: units[k], w: 0 }), onProgress);
  }

  /** Writes new values into weight layer `w` (value order); call {@link refreshCache} after. */
  setValues(w: number, values: Float32Array): void {
    const pl = this.layers[w];
    if (values.length !== pl.nnz) {
      throw new FiligreeError(`${pl.name}: ${values.length} values for ${pl.nnz} entries`);
    }
    this.gpu.write(pl.view.values, values);
    this.#cached = false;
    this.#baseline = null;
  }

  /** Puts the trained values back into every layer. */
  restoreValues(): void {
    this.layers.forEach((pl, w) => this.setValues(w, pl.values));
  }

  /** The naive ablation (zero the weight, full forward, restore): the reference for tests/bench. */
  async ablateNaive(w: number, entry: number): Promise<{ dLoss: number; dAccuracy: number }> {
    const base = await this.baseline();
    const pl = this.layers[w];
    const v = pl.values.slice();
    v[entry] = 0;
    this.setValues(w, v);
    const m = await this.evaluate();
    this.setValues(w, pl.values);
    this.#baseline = base;
    return { dLoss: m.loss - base.loss, dAccuracy: m.accuracy - base.accuracy };
  }
}

/**
 * Exact-ablation engines by weight-layer kind (nn/analyzable.ts `WeightKind`): each records K
 * patched copies of a cached activation (rank-1: the pre-activation with one weight removed;
 * zero: the layer input with one unit zeroed), which the probe then pushes through the rest of
 * the model. Fully-connected layers use `patchColumns` (and the carried engine where it
 * applies); convolutions correct the P positions of the output channel (ablation_conv.ts). A
 * recurrent layer ("lstm") has no row yet: its ablations propagate through time and need their
 * own engine (src/analysis/ablation_lstm.ts), so the probe refuses such layers by name.
 */
export const PATCH_ENGINES: Partial<
  Record<
    WeightKind,
    (
      rec: ReturnType<Gpu["recorder"]>,
      a: Parameters<typeof convPatch>[1] & { mode: "rank1" | "zero" },
    ) => void
  >
> = {
  linear: (rec, a) => patchColumns(rec, a),
  conv: (rec, a) => convPatch(rec, a),
};

/** Reads the weight layers' values and structure to the CPU (analysis only, not training). */
export async function readLayers(gpu: Gpu, model: Sequential): Promise<ProbeLayer[]> {
  const out: ProbeLayer[] = [];
  for (let index = 0; index < model.layers.length; index++) {
    const L = model.layers[index];
    const views = weightViewsOf(L);
    if (!views.length && L.params.some((p) => p.kind === "weight")) {
      throw new FiligreeError(
        `layer ${L.name} has weights but does not answer the analysis (no weightView: exact ablation of this layer kind is not supported yet)`,
      );
    }
    for (const v of views) {
      if (!PATCH_ENGINES[v.kind] && v.kind !== "lstm") {
        throw new FiligreeError(`${v.name}: no exact-ablation engine for "${v.kind}" layers`);
      }
      out.push(await readView(gpu, L, index, v));
    }
  }
  return out;
}

async function readView(
  gpu: Gpu,
  L: Layer,
  index: number,
  v: WeightView,
): Promise<ProbeLayer> {
  const shape = {
    name: v.name,
    index,
    layer: L as unknown as SparseLinear | Linear,
    view: v,
    kind: v.kind,
    nIn: v.nIn,
    nOut: v.nOut,
    positions: v.positions,
    inFeatures: v.inFeatures,
    unitRows: v.unitRows,
    ...(v.geometry ? { geometry: v.geometry } : {}),
    // An LSTM's hidden units are ablated through the layer after it (see ablateUnits).
    units: v.kind === "lstm" ? 0 : v.inFeatures / v.unitRows,
  };
  if (v.csr) {
    const c = v.csr;
    const [rowPtrT, colT, vals, perm, born] = await Promise.all([
      gpu.read(c.rowPtrT),
      gpu.read(c.colT),
      gpu.read(c.values),
      gpu.read(c.perm),
      gpu.read(v.bornStep!),
    ]) as [Uint32Array, Uint32Array, Float32Array, Uint32Array, Uint32Array];
    const nnz = c.nnz;
    const ends = new Uint32Array(2 * nnz);
    for (let j = 0; j < c.nOut; j++) {
      for (let k = rowPtrT[j]; k < rowPtrT[j + 1]; k++) {
        ends[2 * k] = colT[k];
        ends[2 * k + 1] = j;
      }
    }
    return {
      ...shape,
      sparse: true,
      nnz,
      values: vals.slice(0, nnz),
      ends,
      perm: perm.slice(0, nnz),
      born: born.slice(0, nnz),
    };
  }
  const nIn = v.nIn, nOut = v.nOut, n = nIn * nOut;
  const vals = await gpu.read(v.values) as Float32Array;
  const ends = new Uint32Array(2 * n);
  for (let i = 0; i < nIn; i++) {
    for (let j = 0; j < nOut; j++) {
      ends[2 * (i * nOut + j)] = i;
      ends[2 * (i * nOut + j) + 1] = j;
    }
  }
  return {
    ...shape,
    sparse: false,
    nnz: n,
    values: vals.slice(0, n),
    ends,
    perm: Uint32Array.from({ length: n }, (_, i) => i),
    born: new Uint32Array(n),
  };
}

/**
 * Per unit of weight layer `w`'s input (`probe.layers[w].units`: hidden units, or channels of a
 * convolution's input), the L2 norm of its incoming weights in weight layer `w - 1`. A unit
 * reads the output channel `⌊u·nOut/units⌋` of that layer (a pooled feature map flattened
 * channel-major: every feature of a channel shares the channel's weights).
 */
export function unitInNorms(probe: Probe, w: number): Float64Array {
  const pl = probe.layers[w], prev = probe.layers[w - 1];
  if (!pl.units) return new Float64Array(0);
  if (prev.kind === "lstm") {
    // An LSTM hidden unit u: its four gate rows u, H+u, 2H+u, 3H+u in both weight matrices.
    const H = pl.units, sq = new Float64Array(H);
    for (const q of probe.layers.filter((l) => l.index === prev.index)) {
      q.values.forEach((v, e) => (sq[q.ends[2 * e + 1] % H] += v * v));
    }
    return sq.map(Math.sqrt);
  }
  const byOut = new Float64Array(prev.nOut);
  prev.values.forEach((v, e) => (byOut[prev.ends[2 * e + 1]] += v * v));
  const per = pl.units / prev.nOut;
  if (!Number.isInteger(per) || per < 1) {
    throw new FiligreeError(
      `${pl.name}: ${pl.units} input units are not whole channels of ${prev.name}'s ${prev.nOut}`,
    );
  }
  return Float64Array.from({ length: pl.units }, (_, u) => Math.sqrt(byOut[Math.floor(u / per)]));
}

/** Per-ablation Δloss and Δaccuracy from interleaved (loss, correct) sums over S samples. */
function deltasOf(
  r: ArrayLike<number>,
  items: number,
  S: number,
  base: { loss: number; accuracy: number },
): AblationResult {
  const dLoss = new Float64Array(items), dAccuracy = new Float64Array(items);
  for (let k = 0; k < items; k++) {
    dLoss[k] = r[2 * k] / S - base.loss;
    dAccuracy[k] = r[2 * k + 1] / S - base.accuracy;
  }
  return { dLoss, dAccuracy };
}
