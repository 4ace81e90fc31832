/**
 * `deno task ablate RUN_DIR`: scores, exact single-weight (and unit) ablation, group-ablation
 * curves and the agreement between scores and ablation, written to `RUN_DIR/analysis/`:
 *
 * - `ablation.safetensors`: per weight layer L, in the checkpoint's CSR order of L (the order
 *   of `L.values` in checkpoint.safetensors; dense layers row-major `[in][out]`):
 *   `L.score.<name>` (F32 [nnz]) for each score; `L.ablated` (U32 [m], checkpoint positions of
 *   the ablated weights), `L.delta_loss` and `L.delta_accuracy` (F32 [m]); with `--units`,
 *   `L.input_unit_delta_loss` / `L.input_unit_delta_accuracy` (F32 [nIn]: removing each unit
 *   that feeds L); `eval_indices` (U32 [S]: the evaluation samples, indices into the split).
 * - `summary.json`: {@link AnalysisSummary}.
 * - `plots/`: SVG + PNG: |w| vs Δloss per layer, score-vs-ablation correlations, curves.
 *
 * Everything is built in `RUN_DIR/.analysis-partial/` and renamed to `analysis/` at the end, so
 * an interrupted run leaves the previous analysis (or none), never a half-written one; rerunning
 * with the same seed gives the same numbers.
 *
 * @example
 * ```ts ignore
 * import { ablateRun } from "./run.ts";
 * import { parseAblateOptions } from "./options.ts";
 * const summary = await ablateRun("runs/mnist-set", parseAblateOptions({ evalSamples: 500 }));
 * console.log(summary.agreement.find((a) => a.score === "magnitude" && a.scope === "all"));
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";
import { DataRng, deriveSeed } from "../data/random.ts";
import { type StTensor, writeSafetensors } from "../io/safetensors.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { Progress } from "../train/progress.ts";
import { ablationMetrics, mapElements } from "../kernels/analysis.ts";
import { analysisOf } from "../nn/analyzable.ts";
import type { Tensor } from "../gpu/mod.ts";
import {
  type AblationResult,
  maxProbeSamples,
  type Metrics,
  Probe,
  type ProbeLayer,
  readRunConfig,
  unitInNorms,
} from "./probe.ts";
import { computeScores, type LayerScores } from "./scores.ts";
import type { AblateOptions } from "./options.ts";
import {
  type Agreement,
  type Agreement2Row,
  ANALYSIS_FORMAT,
  type AnalysisSummary,
  type Curve,
  type GroupStats,
  type LayerFact2Row,
  type LayerSummary,
  type Protocol,
  PROTOCOL_VERSION,
  type ProtocolSplit,
  RANK_DUPLICATES,
  type ScoreName,
  SIGNED_SCORES,
  type SplitName,
  type Target,
  type UnitSummary,
} from "./summary.ts";
import {
  bootstrapCI,
  fisherZMean,
  kendallTauB,
  mean,
  median,
  precisionAtFraction,
  quantile,
  rankBootstrap,
  rankBootstrapCI,
  type Ranked,
  rankPrepare,
  ranks,
  type RankStatistic,
  spearman,
  spearmanRanked,
} from "./stats.ts";
import { combineParts, type SplitHalf, splitHalf, splitIndices } from "./reliability.ts";
import { type Dataset, stratifiedIndices, takeSamples } from "../data/datasets.ts";
import type { Trainer } from "../train/trainer.ts";
import type { TrainConfig } from "../train/config.ts";
import { barChartWithCI, hexbinChart, lineChart, writeChart } from "../report/plot.ts";

/** Fractions of the curves. */
export const CURVE_FRACTIONS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99];
/** Fixed log10|w| histogram edges (shared by all runs so a report can compare them). */
export const MAGNITUDE_EDGES = Array.from({ length: 31 }, (_, i) => -5 + i * 0.2);

/** Hooks for callers (the sweep, tests). */
export interface AblateHooks {
  quiet?: boolean;
}

/** The `layer` of the cross-layer rows of `agreement2`. */
export const FISHER_Z_MEAN = "fisher-z mean";

/** Largest resample of the correlation bootstrap (m-out-of-n above it). */
export const BOOTSTRAP_MAX_PAIRS = 4000;

/**
 * 95 % bootstrap interval of a rank correlation. Up to {@link BOOTSTRAP_MAX_PAIRS} pairs it is
 * the percentile bootstrap; above, an m-out-of-n bootstrap (m = 4000 pairs per resample, the
 * interval's distances from the full-sample estimate scaled by √(m/n)). The resamples go
 * through {@link rankBootstrap} (sorts and tie groups computed once, each resample ranked from
 * its multiplicities), which gives every replicate bit for bit as `stat` on the explicit
 * resample would (tests/analysis/rank_bootstrap_test.ts).
 */
export function correlationCI(
  stat: (x: Float64Array, y: Float64Array) => number,
  xIn: number[] | Ranked,
  yIn: number[] | Ranked,
  reps: number,
  seed: number,
): [number, number] {
  const kind: RankStatistic | null = stat === spearman
    ? "spearman"
    : stat === kendallTauB
    ? "kendall"
    : null;
  const px = rankPrepare(xIn), py = rankPrepare(yIn), x = px.values, y = py.values;
  const n = x.length;
  if (n <= BOOTSTRAP_MAX_PAIRS) {
    return kind
      ? rankBootstrapCI(kind, px, py, { reps, seed })
      : bootstrapCI(stat, x, y, { reps, seed });
  }
  const m = BOOTSTRAP_MAX_PAIRS;
  const full = kind === "spearman" ? spearmanRanked(px, py) : stat(x, y);
  let got: number[];
  if (kind) {
    got = Array.from(rankBootstrap(kind, px, py, { reps, seed, size: m })).filter(Number.isFinite);
  } else {
    const rng = new DataRng(seed);
    const bx = new Float64Array(m), by = new Float64Array(m);
    got = [];
    for (let r = 0; r < reps; r++) {
      for (let i = 0; i < m; i++) {
        const k = rng.int(n);
        bx[i] = x[k];
        by[i] = y[k];
      }
      const v = stat(bx, by);
      if (Number.isFinite(v)) got.push(v);
    }
  }
  if (!got.length || !Number.isFinite(full)) return [NaN, NaN];
  const c = Math.sqrt(m / n);
  return [full + c * (quantile(got, 0.025) - full), full + c * (quantile(got, 0.975) - full)];
}

/** Which entries of a layer to ablate: all, or a magnitude-stratified seeded sample. */
export function chooseEntries(pl: ProbeLayer, maxWeights: number, seed: number): Uint32Array {
  if (pl.nnz <= maxWeights) return Uint32Array.from({ length: pl.nnz }, (_, i) => i);
  const order = Array.from({ length: pl.nnz }, (_, i) => i).sort((a, b) =>
    Math.abs(pl.values[a]) - Math.abs(pl.values[b]) || a - b
  );
  const rng = new DataRng(deriveSeed(seed, 0xab1a));
  const out = new Uint32Array(maxWeights);
  for (let k = 0; k < maxWeights; k++) {
    const lo = Math.floor((k * pl.nnz) / maxWeights),
      hi = Math.floor(((k + 1) * pl.nnz) / maxWeights);
    out[k] = order[lo + rng.int(Math.max(1, hi - lo))];
  }
  return out.sort();
}

function histogram(values: Float32Array): { log10Edges: number[]; counts: number[] } {
  const e = MAGNITUDE_EDGES, bins = e.length - 1;
  const counts = new Array(bins).fill(0);
  for (const v of values) {
    const l = Math.log10(Math.abs(v));
    const b = Number.isFinite(l) ? Math.floor((l - e[0]) / (e[1] - e[0])) : 0;
    counts[Math.min(bins - 1, Math.max(0, b))]++;
  }
  return { log10Edges: e, counts };
}

function groupStats(d: number[]): GroupStats {
  return {
    n: d.length,
    meanDeltaLoss: d.length ? mean(d) : NaN,
    medianDeltaLoss: d.length ? median(d) : NaN,
    helpful: d.length ? d.filter((x) => x < 0).length / d.length : NaN,
  };
}

function finiteOrNull(x: number): number {
  return Number.isFinite(x) ? x : NaN;
}

/** Importance orientation for the curves: remove the lowest first. */
function removalKey(score: string, s: LayerScores, pl: ProbeLayer): Float32Array {
  if (score === "magnitude-desc") return pl.values.map((v) => -Math.abs(v));
  return s.get(score as ScoreName)!;
}

/**
 * Removal order of `keys` (one array per layer): entries ascending by key, ties by layer then
 * position, as (layer, entry) pairs. Sorted once per curve; {@link lowestMask} takes prefixes.
 */
export function removalOrder(keys: Float32Array[]): { layer: Uint32Array; entry: Uint32Array } {
  const offs = [0];
  keys.forEach((k) => offs.push(offs[offs.length - 1] + k.length));
  const n = offs[keys.length], flat = new Float64Array(n);
  const layer = new Uint32Array(n), entry = new Uint32Array(n);
  keys.forEach((k, l) =>
    k.forEach((v, e) => {
      flat[offs[l] + e] = v;
      layer[offs[l] + e] = l;
      entry[offs[l] + e] = e;
    })
  );
  // The flat index orders by layer then position, so it is the tie-break.
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  idx.sort((a, b) => flat[a] - flat[b] || a - b);
  return { layer: idx.map((i) => layer[i]), entry: idx.map((i) => entry[i]) };
}

/** The mask that removes the lowest `fraction` of `keys` (ties by layer, then position). */
export function lowestMask(
  keys: Float32Array[],
  fraction: number,
  order = removalOrder(keys),
): Float32Array[] {
  const masks = keys.map((k) => new Float32Array(k.length).fill(1));
  const m = Math.round(fraction * order.layer.length);
  for (let q = 0; q < m; q++) masks[order.layer[q]][order.entry[q]] = 0;
  return masks;
}

/** Snapshot of everything a fine-tune changes (weights, optimizer state, BN statistics). */
async function withSnapshot<T>(probe: Probe, fn: () => Promise<T>): Promise<T> {
  const t = probe.trainer, gpu = probe.gpu;
  const tensors: Tensor[] = [];
  t.model.params.forEach((p, i) => tensors.push(p.value, ...t.optims[i].opt.state));
  for (const l of t.model.layers) {
    for (const b of analysisOf(l).persistentBuffers?.() ?? []) tensors.push(b.tensor);
  }
  const backup = tensors.map((x) => gpu.tensor(x.dtype, [x.size], { label: "snapshot" }));
  const rec = gpu.recorder("snapshot");
  tensors.forEach((x, i) => rec.copy(x, backup[i], x.size));
  rec.submit();
  const step = t.step, optT = t.optims.map((o) => o.opt.t);
  try {
    return await fn();
  } finally {
    const r2 = gpu.recorder("restore");
    tensors.forEach((x, i) => r2.copy(backup[i], x, x.size));
    r2.submit();
    t.step = step;
    t.optims.forEach((o, i) => (o.opt.t = optT[i]));
    backup.forEach((b) => gpu.release(b));
    probe.restoreValues();
  }
}

/** Accuracy after removing by `masks` (value order per layer), optionally fine-tuned. */
async function evaluateMasked(
  probe: Probe,
  masks: Float32Array[],
  finetuneSteps: number,
  seed: number,
): Promise<Metrics> {
  return await withSnapshot(probe, async () => {
    const gpu = probe.gpu, t = probe.trainer;
    probe.layers.forEach((pl, w) =>
      probe.setValues(w, Float32Array.from(pl.values, (v, e) => v * masks[w][e]))
    );
    const maskT = masks.map((m) => gpu.tensor("f32", [m.length], { data: m, label: "mask" }));
    const tmp = probe.layers.map((pl) => gpu.tensor("f32", [pl.nnz], { label: "mask tmp" }));
    t.data.epochOrder(t.epoch + 1000, seed);
    for (let s = 0; s < finetuneSteps; s++) {
      t.trainStep(s % t.stepsPerEpoch, undefined, (rec) => {
        probe.layers.forEach((pl, w) => {
          const v = pl.view.values;
          rec.copy(v, tmp[w], pl.nnz);
          mapElements(rec, { src: tmp[w], g: maskT[w], dst: v, n: pl.nnz, op: "mul" });
        });
      });
    }
    const m = await probe.evaluate();
    [...maskT, ...tmp].forEach((x) => gpu.release(x));
    return m;
  });
}

/**
 * Records an evaluation of the model as it is now, starting at weight layer `w` from the probe's
 * cached input of that layer (valid while the layers below `w` hold the values the cache was
 * built with); [loss sum, correct count] land in `out[2·slot]`.
 */
function recordEvaluateFrom(p: Probe, w: number, out: Tensor, slot: number, scratch: Tensor) {
  const pl = p.layers[w];
  const rec = p.gpu.recorder("probe eval from cache");
  // The layer's input rows (a convolution's image, not its c·k·k weight rows); an LSTM (the first
  // layer) keeps no cached input: its evaluation input is the probe's.
  const from = p.cachedX[w] ? { t: p.cachedX[w], rows: pl.inFeatures, batch: p.samples } : p.x;
  const logits = p.forwardFrom(rec, pl.index, from);
  ablationMetrics(rec, {
    logits: logits.t,
    labels: p.labels,
    classes: logits.rows,
    samples: p.samples,
    count: 1,
    loss: p.loss,
    sums: scratch,
  });
  rec.copy(scratch, out, 2, 0, 2 * slot);
  rec.submit();
}

/** One split's measurement: its full evaluation set, the two halves, scores and ablations. */
interface SplitRun {
  split: SplitName;
  requested: number;
  /** The evaluation set (indices into the split): what the ablation targets are measured on. */
  evalIndices: Uint32Array;
  /**
   * The probe of the baseline's model state that scores, unit ablation and curves use: the whole
   * evaluation set, or a stratified subset of it when the set is sharded (`sharded`).
   */
  full: Probe;
  sharded?: ProtocolSplit["sharded"];
  /** Evaluation indices of each half (into the split). */
  halfIndices: [Uint32Array, Uint32Array];
  base: Metrics;
  scores: LayerScores[];
  skipped: Partial<Record<ScoreName, string>>;
  /** Per weight layer: full-set Δ (exact recombination of the halves) and each half's Δ. */
  results: Map<number, { full: AblationResult; a: AblationResult; b: AblationResult }>;
}

/**
 * A probe on exactly the given samples of `split` (indices into it). The probe draws its
 * evaluation set itself, so the trainer is shown a dataset whose test split holds exactly these
 * samples (the probe then takes all of them, in order); the training split stays as it was,
 * so input normalization statistics are unchanged.
 */
export async function probeOn(
  t: Trainer,
  split: SplitName,
  indices: Uint32Array,
  budgetMB: number,
): Promise<Probe> {
  const ds = t.dataset;
  const view = t as unknown as { dataset: Dataset };
  view.dataset = { ...ds, test: takeSamples(ds[split], ds.features, indices) };
  try {
    return await Probe.fromTrainer(t, {
      evalSamples: indices.length,
      evalSplit: "test",
      seed: 0,
      budgetMB,
    });
  } finally {
    view.dataset = ds;
  }
}

/**
 * `indices` in the fewest contiguous parts of at most `max` each (`max` a multiple of 4), of
 * near-equal sizes that are multiples of 4 but for the last (so that the vec4 ablation kernels
 * apply); one part when they fit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chunkIndices } from "./run.ts";
 * const parts = chunkIndices(Uint32Array.from({ length: 10 }, (_, i) => i), 4);
 * assert.deepEqual(parts.map((p) => p.length), [4, 4, 2]);
 * assert.deepEqual(chunkIndices(Uint32Array.from({ length: 500 }), 424).map((p) => p.length), [252, 248]);
 * ```
 */
export function chunkIndices(indices: Uint32Array, max: number): Uint32Array[] {
  const n = indices.length, parts = Math.max(1, Math.ceil(n / max));
  // s <= max (n / parts <= max, a multiple of 4) and the last part n - (parts - 1)·s is in
  // [1, n / parts].
  const s = 4 * Math.ceil(n / parts / 4);
  return Array.from(
    { length: parts },
    (_, k) => indices.subarray(k * s, k === parts - 1 ? n : (k + 1) * s),
  );
}

/** Gives a probe's evaluation tensors back to the pool (its ablation scratch stays cached). */
function releaseProbe(p: Probe): void {
  const gpu = p.gpu;
  // cachedCols aliases cachedX for fully-connected layers: release each buffer once.
  for (const x of new Set([p.x.t, p.labels, ...p.cachedX, ...p.cachedZ, ...p.cachedCols])) {
    if (x) gpu.release(x);
  }
}

/** The weights the run's topology rule would drop next in one layer (value-order flags). */
export function dropRule(
  cfg: TrainConfig,
  values: Float32Array,
): { drop: Uint8Array; fraction: number; rule: string } {
  const n = values.length, drop = new Uint8Array(n);
  const fraction = cfg.method === "rigl" ? cfg.riglAlpha : cfg.zeta;
  const order = (idx: number[], key: (e: number) => number) =>
    idx.sort((a, b) => key(a) - key(b) || a - b);
  if (cfg.method === "set" && cfg.setRanking === "per-sign") {
    const pos: number[] = [], neg: number[] = [];
    for (let e = 0; e < n; e++) (values[e] > 0 ? pos : values[e] < 0 ? neg : pos).push(e);
    for (const group of [pos, neg]) {
      const k = Math.floor(fraction * group.length);
      order(group, (e) => Math.abs(values[e])).slice(0, k).forEach((e) => (drop[e] = 1));
    }
    return { drop, fraction, rule: "set per-sign: zeta of positive and of negative nearest 0" };
  }
  const all = order(Array.from({ length: n }, (_, e) => e), (e) => Math.abs(values[e]));
  all.slice(0, Math.floor(fraction * n)).forEach((e) => (drop[e] = 1));
  return { drop, fraction, rule: "smallest |w| fraction" };
}

/** Share of `dropped` items in the least-important fifth of `target` (chance 0.2). */
export function dropPrecision(target: ArrayLike<number>, dropped: ArrayLike<boolean | number>): {
  precision: number;
  count: number;
} {
  const n = target.length, r = ranks(target);
  let hit = 0, count = 0;
  for (let k = 0; k < n; k++) {
    if (!dropped[k]) continue;
    count++;
    // Least-important fifth: average-tie rank within the lowest 20 %.
    if (r[k] <= 0.2 * n + 0.5) hit++;
  }
  return { precision: count ? hit / count : NaN, count };
}

const TARGETS: Target[] = ["dloss", "absdloss", "dacc"];

/** The three targets of one set of ablation results (accuracy as accuracy lost, -Δacc). */
export function targetValues(r: AblationResult, target: Target): Float64Array {
  if (target === "dloss") return Float64Array.from(r.dLoss);
  if (target === "absdloss") return r.dLoss.map(Math.abs);
  return r.dAccuracy.map((v) => -v);
}

/** Runs the whole analysis of a run directory (see the module doc). */
export async function ablateRun(
  dir: string,
  opts: AblateOptions,
  hooks: AblateHooks = {},
): Promise<AnalysisSummary> {
  const log = (s: string) => !hooks.quiet && console.log(s);
  const reps = opts.bootstrapReps;
  const t0 = performance.now();
  const seconds: Record<string, number> = {};
  const lap = (
    k: string,
    since: number,
  ) => (seconds[k] = (seconds[k] ?? 0) + (performance.now() - since) / 1000);

  const cfg = await readRunConfig(dir);
  const seed = opts.seed ?? cfg.seed;
  const splits = opts.splits as SplitName[];
  const first = await Probe.fromRun(dir, {
    evalSamples: opts.evalSamples,
    evalSplit: splits[0],
    seed,
    budgetMB: opts.budgetMB,
  });
  const trainer = first.trainer;
  const names = first.layers.map((l) => l.name);
  const selected = opts.layers ?? names;
  for (const l of selected) {
    if (!names.includes(l)) {
      throw new FiligreeError(`unknown layer "${l}"; weight layers: ${names.join(", ")}`);
    }
  }
  const sel = selected.map((n) => names.indexOf(n));
  // The same weights are ablated on every split (a magnitude-stratified sample above maxWeights).
  const chosen = new Map<number, Uint32Array>();
  for (const w of sel) {
    chosen.set(w, chooseEntries(first.layers[w], opts.maxWeights, deriveSeed(seed, w)));
  }
  const perSplit = sel.reduce((a, w) => a + chosen.get(w)!.length, 0);
  const total = perSplit * splits.length;
  const progress = new Progress({ quiet: hooks.quiet });

  // Samples one probe can hold on this device; larger sets are analysed in shards.
  // --probe-samples (at least 4) rounded down to a multiple of 4, as chunkIndices needs.
  const p = opts.probeSamples, cap = p === undefined ? Infinity : p - (p % 4);
  const sMax = Math.min(maxProbeSamples(first), cap);
  const runs: SplitRun[] = [];
  for (const split of splits) {
    const oracle = runs.length === 0 ? first : await Probe.fromTrainer(trainer, {
      evalSamples: opts.evalSamples,
      evalSplit: split,
      seed,
      budgetMB: opts.budgetMB,
    });
    const evalIndices = oracle.evalIndices, samples = oracle.samples;
    const splitLabels = trainer.dataset[split].labels;
    const halfIndices = splitIndices(
      evalIndices,
      Array.from(evalIndices, (i) => splitLabels[i]),
      seed,
    );
    // Each half in as few near-equal parts as fit one probe (one part unless sharded).
    const parts = halfIndices.map((h) => chunkIndices(h, sMax));
    const sharded = samples > sMax
      ? {
        shards: parts[0].length + parts[1].length,
        shardSamples: Math.max(...parts.flat().map((c) => c.length)),
        probeSamples: sMax,
      }
      : undefined;
    let full = oracle;
    if (sharded) {
      // Scores, units and curves: one stratified subset of the evaluation set.
      const pos = stratifiedIndices(
        Uint8Array.from(evalIndices, (i) => splitLabels[i]),
        trainer.dataset.classes,
        sMax,
        deriveSeed(seed, 0x5a4d),
      );
      const subset = Uint32Array.from(pos, (k) => evalIndices[k]).sort();
      full = await probeOn(trainer, split, subset, opts.budgetMB);
      releaseProbe(oracle);
    }
    const short = samples < opts.evalSamples
      ? ` (the whole split: ${opts.evalSamples} requested)`
      : "";
    const shardNote = sharded
      ? `; ablation in ${sharded.shards} shards of <= ${sharded.shardSamples} samples (a probe ` +
        `holds at most ${sMax} here), scores, units and curves on a stratified ${sMax}`
      : "";
    log(
      `${split}: ${samples} samples${short}, halves ${halfIndices[0].length} + ${
        halfIndices[1].length
      } (seed ${seed})${shardNote}`,
    );
    let ts = performance.now();
    const raw = { grad: [] as Float32Array[], hg: [] as Float32Array[] } as
      & Parameters<
        typeof computeScores
      >[3]
      & object;
    const scores = await computeScores(full, opts.scores, seed, raw);
    lap("scores", ts);
    ts = performance.now();
    // Per half: each weight layer's Δ over each part, recombined over the half (exact), and
    // each part's baseline.
    const halfResults: Map<number, AblationResult>[] = [];
    const partBases: { values: number[]; n: number }[] = [];
    progress.start(`ablate weights (${split})`, 2 * perSplit);
    let done = 0;
    for (const chunks of parts) {
      const perPart = new Map<number, { values: Float64Array; n: number }[][]>();
      for (const chunk of chunks) {
        const h = await probeOn(trainer, split, chunk, opts.budgetMB);
        if (sharded) {
          const b = await h.baseline();
          partBases.push({ values: [b.loss, b.accuracy], n: h.samples });
        }
        for (const w of sel) {
          // Progress in weight ablations over both halves: a part of h.samples counts each of
          // its ablations as 2·h.samples/samples (kept unrounded, so the parts sum to the total).
          const before = done, share = 2 * h.samples / samples;
          const entries = chosen.get(w)!;
          const r = await h.ablateWeights(
            w,
            entries,
            (d) => progress.update(Math.round(before + d * share), {}, "ablations"),
          );
          done += entries.length * share;
          if (!perPart.has(w)) perPart.set(w, [[], []]);
          perPart.get(w)![0].push({ values: Float64Array.from(r.dLoss), n: h.samples });
          perPart.get(w)![1].push({ values: Float64Array.from(r.dAccuracy), n: h.samples });
        }
        releaseProbe(h);
      }
      halfResults.push(
        new Map(
          [...perPart].map(([w, [dl, da]]) => [w, {
            dLoss: combineParts(dl),
            dAccuracy: combineParts(da),
          }]),
        ),
      );
    }
    const [nA, nB] = [halfIndices[0].length, halfIndices[1].length];
    const results = new Map<
      number,
      { full: AblationResult; a: AblationResult; b: AblationResult }
    >();
    for (const w of sel) {
      const a = halfResults[0].get(w)!, b = halfResults[1].get(w)!;
      results.set(w, {
        full: {
          dLoss: combineParts([{ values: a.dLoss, n: nA }, { values: b.dLoss, n: nB }]),
          dAccuracy: combineParts([{ values: a.dAccuracy, n: nA }, { values: b.dAccuracy, n: nB }]),
        },
        a,
        b,
      });
    }
    progress.update(2 * perSplit, {}, "ablations");
    progress.stop();
    lap("ablation", ts);
    // The baseline over the whole evaluation set (recombined from the parts when sharded).
    const base = sharded
      ? (([loss, accuracy]) => ({ loss, accuracy }))(combineParts(partBases))
      : await full.baseline();
    log(
      `${split}: baseline loss ${base.loss.toFixed(4)} accuracy ${
        (base.accuracy * 100).toFixed(2)
      }%`,
    );
    runs.push({
      split,
      requested: opts.evalSamples,
      evalIndices,
      full,
      ...(sharded ? { sharded } : {}),
      halfIndices,
      base,
      scores,
      skipped: raw.skipped ?? {},
      results,
    });
  }
  const ablationsPerSecond = total / Math.max(1e-9, seconds.ablation);
  const main = runs[0], probe = main.full;

  // Unit ablation (first split, full set).
  let units: UnitSummary[] | undefined;
  const unitResults = new Map<number, AblationResult>();
  if (opts.units) {
    const ts = performance.now();
    units = [];
    for (let w = 1; w < probe.layers.length; w++) {
      const pl = probe.layers[w], prev = probe.layers[w - 1];
      if (!pl.units) continue; // an LSTM matrix: its hidden units are ablated after the LSTM
      const r = await probe.ablateUnits(w, Uint32Array.from({ length: pl.units }, (_, i) => i));
      unitResults.set(w, r);
      const norms = unitInNorms(probe, w);
      units.push({
        layer: prev.name,
        units: pl.units,
        meanDeltaLoss: mean(r.dLoss),
        helpful: r.dLoss.filter((x) => x < 0).length / pl.units,
        normSpearman: finiteOrNull(spearman(norms, r.dLoss)),
      });
    }
    lap("units", ts);
  }

  // Protocol v2: per split and layer, reliability, correlations with ceilings, facts.
  let ts = performance.now();
  const skippedAll: Partial<Record<ScoreName, string>> = {};
  for (const r of runs) Object.assign(skippedAll, r.skipped);
  const computed = opts.scores.filter((s) => main.scores[0]?.has(s));
  const dups: Partial<Record<ScoreName, ScoreName>> = {};
  for (const [d, k] of Object.entries(RANK_DUPLICATES) as [ScoreName, ScoreName][]) {
    if (computed.includes(d) && computed.includes(k)) dups[d] = k;
  }
  const agreeScores = computed.filter((s) => !(s in dups));
  const agreement2: Agreement2Row[] = [];
  const layerFacts2: LayerFact2Row[] = [];
  let bi = 0;
  for (const run of runs) {
    const rel = new Map<number, Record<Target, SplitHalf>>();
    for (const w of sel) {
      const pl = run.full.layers[w], entries = chosen.get(w)!, r = run.results.get(w)!;
      const rr = Object.fromEntries(
        TARGETS.map((t) => [t, splitHalf(targetValues(r.a, t), targetValues(r.b, t))]),
      ) as Record<Target, SplitHalf>;
      rel.set(w, rr);
      const d = r.full.dLoss;
      const fact: LayerFact2Row = {
        split: run.split,
        layer: pl.name,
        helpfulFraction: d.filter((x) => x < 0).length / Math.max(1, d.length),
        nAblated: entries.length,
        reliability: Object.fromEntries(
          TARGETS.map((
            t,
          ) => [t, { half: finiteOrNull(rr[t].half), ceiling: finiteOrNull(rr[t].ceiling) }]),
        ) as LayerFact2Row["reliability"],
      };
      if (pl.sparse || cfg.method === "dense") {
        const rule = dropRule(cfg, pl.values);
        const dp = dropPrecision(d.map(Math.abs), Array.from(entries, (e) => rule.drop[e]));
        fact.dropFraction = rule.fraction;
        fact.dropCount = dp.count;
        if (dp.count >= 5) fact.dropPrecision = dp.precision;
      }
      layerFacts2.push(fact);
      // Each target and each score is sorted once for all its correlations and intervals.
      const ys = new Map(TARGETS.map((t) => [t, rankPrepare(targetValues(r.full, t))]));
      for (const score of agreeScores) {
        const sc = run.scores[w].get(score)!;
        const s = rankPrepare(Array.from(entries, (e) => sc[e]));
        const signed = SIGNED_SCORES.includes(score);
        for (const target of TARGETS) {
          const y = ys.get(target)!;
          const rho = finiteOrNull(spearmanRanked(s, y));
          const ceiling = finiteOrNull(rr[target].ceiling);
          agreement2.push({
            split: run.split,
            layer: pl.name,
            score,
            target,
            spearman: rho,
            ci: correlationCI(spearman, s, y, reps, deriveSeed(seed, 0xc00 + bi++)),
            n: s.values.length,
            ceiling,
            halfReliability: finiteOrNull(rr[target].half),
            attainable: Math.sqrt(Math.max(0, ceiling)),
            primary: target === "dacc" ? !signed : (target === "dloss") === signed,
          });
        }
      }
    }
    // Cross-layer: unweighted Fisher-z mean over the analysed layers.
    for (const score of agreeScores) {
      for (const target of TARGETS) {
        const rows = agreement2.filter((a) =>
          a.split === run.split && a.score === score && a.target === target
        );
        const m = fisherZMean(rows.map((a) => a.spearman), rows.map((a) => a.n));
        const ones = rows.map(() => 4 + 1e9);
        const c = fisherZMean(rows.map((a) => a.ceiling), ones).value;
        const h = fisherZMean(rows.map((a) => a.halfReliability), ones).value;
        agreement2.push({
          split: run.split,
          layer: FISHER_Z_MEAN,
          score,
          target,
          spearman: m.value,
          ci: m.ci,
          n: m.n,
          ceiling: c,
          halfReliability: h,
          attainable: Math.sqrt(Math.max(0, c)),
          primary: rows[0]?.primary ?? false,
        });
      }
    }
  }
  lap("agreement2", ts);

  // Legacy agreement (first split, signed Δloss, all scores and the pooled "all" scope).
  ts = performance.now();
  const agreement: Agreement[] = [];
  const scopes: [string, number[]][] = [
    ["all", sel],
    ...sel.map((w): [string, number[]] => [names[w], [w]]),
  ];
  const dByScope = new Map<number, Ranked>(); // Δloss of a scope: one sort for every score
  for (const score of computed) {
    scopes.forEach(([scope, ws], si) => {
      if (scope !== "all" && ws.length === 1 && scopes.length === 2) return; // same as "all"
      const sv: number[] = [], dv: number[] = [];
      for (const w of ws) {
        const sc = main.scores[w].get(score)!, r = main.results.get(w)!.full;
        chosen.get(w)!.forEach((e, k) => {
          sv.push(sc[e]);
          dv.push(r.dLoss[k]);
        });
      }
      if (!dByScope.has(si)) dByScope.set(si, rankPrepare(dv));
      const s = rankPrepare(sv), d = dByScope.get(si)!;
      const bseed = deriveSeed(seed, 0xb00 + si);
      agreement.push({
        score,
        scope,
        n: sv.length,
        spearman: {
          value: finiteOrNull(spearmanRanked(s, d)),
          ci: correlationCI(spearman, s, d, reps, bseed),
        },
        kendall: {
          value: finiteOrNull(kendallTauB(sv, dv)),
          ci: correlationCI(kendallTauB, s, d, Math.max(10, Math.round(reps / 2)), bseed + 1),
        },
        precisionLeast10: precisionAtFraction(sv, dv, 0.1, "least"),
        precisionMost10: precisionAtFraction(sv, dv, 0.1, "most"),
      });
    });
  }
  lap("agreement", ts);

  // Per-layer facts (first split): helpful fraction, grown vs surviving, age, fan-in/out.
  const step = trainer.step;
  const layerSummaries: LayerSummary[] = probe.layers.map((pl, w) => {
    const r = main.results.get(w)?.full, entries = chosen.get(w);
    const base: LayerSummary = {
      name: pl.name,
      nIn: pl.nIn,
      nOut: pl.nOut,
      nnz: pl.nnz,
      ablated: entries?.length ?? 0,
      magnitudeHistogram: histogram(pl.values),
      helpful: NaN,
      fanInSpearman: NaN,
      fanOutSpearman: NaN,
    };
    if (!r || !entries) return base;
    const d = Array.from(r.dLoss);
    base.helpful = d.filter((x) => x < 0).length / Math.max(1, d.length);
    const fanIn = new Uint32Array(pl.nOut), fanOut = new Uint32Array(pl.nIn);
    for (let e = 0; e < pl.nnz; e++) {
      fanOut[pl.ends[2 * e]]++;
      fanIn[pl.ends[2 * e + 1]]++;
    }
    base.fanInSpearman = finiteOrNull(
      spearman(Array.from(entries, (e) => fanIn[pl.ends[2 * e + 1]]), d),
    );
    base.fanOutSpearman = finiteOrNull(
      spearman(Array.from(entries, (e) => fanOut[pl.ends[2 * e]]), d),
    );
    if (pl.sparse && entries.some((e) => pl.born[e] > 0)) {
      const grown: number[] = [], surv: number[] = [], age: number[] = [], dg: number[] = [];
      entries.forEach((e, k) => {
        if (pl.born[e] > 0) {
          grown.push(d[k]);
          age.push(step - pl.born[e]);
          dg.push(d[k]);
        } else surv.push(d[k]);
      });
      base.grown = groupStats(grown);
      base.surviving = groupStats(surv);
      if (age.length >= 10) base.ageSpearman = finiteOrNull(spearman(age, dg));
    }
    return base;
  });
  const allD = [...main.results.values()].flatMap((r) => Array.from(r.full.dLoss));

  // Group-ablation curves, on the test split when measured (accuracy after removal is a
  // generalization measure), else the first split.
  const curveRun = runs.find((r) => r.split === "test") ?? main;
  const curves: Curve[] = [];
  if (opts.curves) {
    ts = performance.now();
    const cp = curveRun.full;
    const series = [...agreeScores, "magnitude-desc"];
    const curveScopes: [string, number[]][] = [
      ["global", cp.layers.map((_, w) => w)],
      ...(opts.curveLayers ? cp.layers.map((pl, w): [string, number[]] => [pl.name, [w]]) : []),
    ];
    const steps = opts.finetuneSteps > 0 ? [0, opts.finetuneSteps] : [0];
    const count = series.length * curveScopes.length * CURVE_FRACTIONS.length * steps.length;
    progress.start("ablation curves", count);
    const curveSums = cp.gpu.tensor("f32", [2 * CURVE_FRACTIONS.length], { label: "curves" });
    const curveScratch = cp.gpu.tensor("f32", [2], { label: "curve scratch" });
    cp.restoreValues();
    // The cached layer inputs of the trained model (per-layer scopes start there).
    if (curveScopes.some(([, ws]) => Math.min(...ws) > 0)) await cp.refreshCache();
    let c = 0;
    for (const ft of steps) {
      for (const score of series) {
        for (const [scope, ws] of curveScopes) {
          const keys = ws.map((w) => removalKey(score, curveRun.scores[w], cp.layers[w]));
          const order = removalOrder(keys);
          const masksAt = (fraction: number) => {
            const sub = lowestMask(keys, fraction, order);
            return cp.layers.map((pl, w) =>
              ws.includes(w) ? sub[ws.indexOf(w)] : new Float32Array(pl.nnz).fill(1)
            );
          };
          let metrics: Metrics[];
          if (ft === 0) {
            // Back-to-back evaluations, one readback per curve. Only the scope's layers change:
            // the forward starts at the lowest of them, from its cached input (the same bits
            // the full forward would compute there).
            const from = Math.min(...ws);
            // The removed weights are stored zeros: the forward may skip them (measured on
            // llvmpipe: 784x300 at 3.3 % with 60 % zeros, 85 -> 50 ms per 5,000 samples).
            for (const w of ws) cp.layers[w].view.skipStoredZeros(true);
            CURVE_FRACTIONS.forEach((fraction, q) => {
              const masks = masksAt(fraction);
              for (const w of ws) {
                const pl = cp.layers[w];
                cp.setValues(w, Float32Array.from(pl.values, (v, e) => v * masks[w][e]));
              }
              if (from === 0) cp.recordEvaluate(curveSums, q);
              else recordEvaluateFrom(cp, from, curveSums, q, curveScratch);
            });
            for (const w of ws) cp.setValues(w, cp.layers[w].values);
            const r = await cp.gpu.read(curveSums);
            for (const w of ws) cp.layers[w].view.skipStoredZeros(false);
            metrics = CURVE_FRACTIONS.map((_, q) => ({
              loss: r[2 * q] / cp.samples,
              accuracy: r[2 * q + 1] / cp.samples,
            }));
          } else {
            metrics = [];
            for (const fraction of CURVE_FRACTIONS) {
              metrics.push(await evaluateMasked(cp, masksAt(fraction), ft, seed));
            }
          }
          c += CURVE_FRACTIONS.length;
          progress.update(c, {}, "evaluations");
          const points = CURVE_FRACTIONS.map((fraction, q) => ({
            fraction,
            accuracy: metrics[q].accuracy,
            loss: metrics[q].loss,
          }));
          curves.push({ score, scope, finetuneSteps: ft, points });
        }
      }
    }
    cp.gpu.release(curveSums);
    cp.gpu.release(curveScratch);
    progress.stop();
    lap("curves", ts);
  }
  seconds.total = (performance.now() - t0) / 1000;

  const protocol: Protocol = {
    version: PROTOCOL_VERSION,
    splits: Object.fromEntries(runs.map((r) => [r.split, {
      samples: r.evalIndices.length,
      seed,
      requested: r.requested,
      halves: [r.halfIndices[0].length, r.halfIndices[1].length],
      baseline: r.base,
      ...(r.sharded ? { sharded: r.sharded } : {}),
    }])),
    layerSummary: "fisher-z mean, unweighted over layers",
    rankDuplicates: dups,
    ...(opts.sesoi !== undefined ? { sesoi: opts.sesoi } : {}),
    ...(opts.curves ? { curvesSplit: curveRun.split } : {}),
    ...(Object.keys(skippedAll).length ? { skippedScores: skippedAll } : {}),
  };
  const summary: AnalysisSummary = {
    format: ANALYSIS_FORMAT,
    run: dir,
    seed,
    evalSet: { split: main.split, samples: main.evalIndices.length, seed },
    baseline: main.base,
    scores: computed,
    layers: layerSummaries,
    helpful: allD.filter((x) => x < 0).length / Math.max(1, allD.length),
    agreement,
    curves,
    units,
    seconds,
    ablationsPerSecond,
    protocol,
    agreement2,
    layerFacts2,
  };

  // Outputs: built in a partial directory, then renamed over analysis/.
  const partial = `${dir}/.analysis-partial`;
  await Deno.remove(partial, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${partial}/plots`, { recursive: true });
  const tensors = new Map<string, StTensor>();
  const f32 = (name: string, data: ArrayLike<number>) =>
    tensors.set(name, { dtype: "F32", shape: [data.length], data: Float32Array.from(data) });
  for (const run of runs) {
    const idx = run.evalIndices;
    tensors.set(`${run.split}.eval_indices`, { dtype: "U32", shape: [idx.length], data: idx });
    const inB = new Set(run.halfIndices[1]);
    tensors.set(`${run.split}.half`, {
      dtype: "U8",
      shape: [idx.length],
      data: Uint8Array.from(idx, (i) => (inB.has(i) ? 1 : 0)),
    });
  }
  probe.layers.forEach((pl, w) => {
    const inv = new Uint32Array(pl.nnz); // value order -> checkpoint order
    pl.perm.forEach((v, k) => (inv[v] = k));
    const toCkpt = (a: Float32Array) => Float32Array.from(pl.perm, (v) => a[v]);
    const entries = chosen.get(w);
    const order = entries
      ? Array.from(entries.keys()).sort((a, b) => inv[entries[a]] - inv[entries[b]])
      : [];
    if (entries) {
      tensors.set(`${pl.name}.ablated`, {
        dtype: "U32",
        shape: [entries.length],
        data: Uint32Array.from(order, (k) => inv[entries[k]]),
      });
    }
    for (const run of runs) {
      const P = `${pl.name}.${run.split}`;
      for (const s of computed) f32(`${P}.score.${s}`, toCkpt(run.scores[w].get(s)!));
      const r = run.results.get(w);
      if (!r) continue;
      for (const [suffix, res] of [["", r.full], [".a", r.a], [".b", r.b]] as const) {
        f32(`${P}.delta_loss${suffix}`, order.map((k) => res.dLoss[k]));
        f32(`${P}.delta_accuracy${suffix}`, order.map((k) => res.dAccuracy[k]));
      }
    }
    const u = unitResults.get(w);
    if (u) {
      f32(`${pl.name}.${main.split}.input_unit_delta_loss`, u.dLoss);
      f32(`${pl.name}.${main.split}.input_unit_delta_accuracy`, u.dAccuracy);
    }
  });
  await writeSafetensors(`${partial}/ablation.safetensors`, tensors, {
    format: ANALYSIS_FORMAT,
    protocol: String(PROTOCOL_VERSION),
    options: JSON.stringify({ ...opts, seed }),
  });
  await writeFileAtomic(`${partial}/summary.json`, JSON.stringify(summary, null, 2) + "\n");
  if (opts.plots) {
    ts = performance.now();
    await writePlots(`${partial}/plots`, probe, chosen, main, summary, unitResults);
    lap("plots", ts);
  }
  const final = `${dir}/analysis`;
  await Deno.remove(final, { recursive: true }).catch(() => {});
  await Deno.rename(partial, final);
  const line = (split: SplitName, score: string, target: Target) => {
    const a = agreement2.find((x) =>
      x.split === split && x.layer === FISHER_Z_MEAN && x.score === score && x.target === target
    );
    return a ? `${a.spearman.toFixed(3)} (ceiling ${a.ceiling.toFixed(3)})` : "n/a";
  };
  log(
    `wrote ${final}: ${total} ablations in ${seconds.ablation.toFixed(1)}s (${
      ablationsPerSecond.toFixed(0)
    }/s); ${main.split}, fisher-z mean over layers: ρ(|w|, |Δloss|) ${
      line(main.split, "magnitude", "absdloss")
    }; ${(summary.helpful * 100).toFixed(1)}% of removals lower the ${main.split} loss`,
  );
  return summary;
}

async function writePlots(
  dir: string,
  probe: Probe,
  chosen: Map<number, Uint32Array>,
  main: SplitRun,
  s: AnalysisSummary,
  unitResults: Map<number, AblationResult> = new Map(),
): Promise<void> {
  const pts: { x: number; y: number; facet: string }[] = [];
  for (const [w, entries] of chosen) {
    const pl = probe.layers[w], r = main.results.get(w)!.full;
    entries.forEach((e, k) => pts.push({ x: pl.values[e], y: r.dLoss[k], facet: pl.name }));
  }
  // Symmetric log axis for Δloss: most removals change the loss by 1e-6..1e-3, a few by 0.1.
  await writeChart(
    hexbinChart(pts, {
      logX: true,
      symlogY: 1e-5,
      title: `Single-weight ablation: |w| vs Δloss (${main.split})`,
      xTitle: "|w|",
      yTitle: "loss change when the weight is removed",
    }),
    `${dir}/magnitude_vs_dloss`,
  );
  if (unitResults.size) {
    // --units: each hidden unit's Δloss against the L2 norm of its incoming weights.
    const upts: { x: number; y: number; facet: string }[] = [];
    for (const [w, r] of unitResults) {
      const prev = probe.layers[w - 1];
      const norms = unitInNorms(probe, w);
      r.dLoss.forEach((d, u) => upts.push({ x: norms[u], y: d, facet: prev.name }));
    }
    await writeChart(
      hexbinChart(upts, {
        symlogY: 1e-5,
        bins: 20,
        title: `Unit ablation: incoming weight norm vs Δloss (${main.split})`,
        xTitle: "L2 norm of the unit's incoming weights",
        yTitle: "loss change when the unit is removed",
      }),
      `${dir}/unit_ablation`,
    );
  }
  // Primary pairings per layer (signed scores vs Δloss, unsigned vs |Δloss|), first split.
  const bars = (s.agreement2 ?? []).filter((a) =>
    a.split === main.split && a.primary && a.target !== "dacc"
  ).map((a) => ({
    // Layers on the x axis, scores as coloured bars (one colour per score in every chart).
    x: `${a.layer} (ceiling ${a.ceiling.toFixed(2)})`,
    y: a.spearman,
    lo: a.ci[0],
    hi: a.ci[1],
    group: a.score,
  }));
  await writeChart(
    barChartWithCI(bars, {
      title:
        `Per-layer Spearman with ablation on ${main.split} (signed scores vs Δloss, others vs |Δloss|)`,
      yTitle: "Spearman ρ (95% bootstrap CI)",
    }),
    `${dir}/score_agreement`,
  );
  if (s.curves.length) {
    // Panels in layer order, then global.
    const rank = (scope: string) => {
      const i = probe.layers.findIndex((l) => l.name === scope);
      return i < 0 ? probe.layers.length : i;
    };
    const line = s.curves.filter((c) => c.finetuneSteps === 0)
      .sort((a, b) => rank(a.scope) - rank(b.scope))
      .flatMap((c) =>
        c.points.map((p) => ({ x: p.fraction, y: p.accuracy, series: c.score, facet: c.scope }))
      );
    await writeChart(
      lineChart(line, {
        title: `Accuracy after removing the lowest-scored weights (${
          s.protocol?.curvesSplit ?? ""
        })`,
        xTitle: "fraction removed",
        yTitle: "accuracy",
      }),
      `${dir}/ablation_curves`,
    );
  }
}
