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
import { mapElements } from "../kernels/analysis.ts";
import { SparseLinear } from "../nn/layers.ts";
import { BatchNorm } from "../nn/layers.ts";
import type { Tensor } from "../gpu/mod.ts";
import { type Metrics, Probe, type ProbeLayer } from "./probe.ts";
import { computeScores, type LayerScores } from "./scores.ts";
import type { AblateOptions } from "./options.ts";
import {
  type Agreement,
  ANALYSIS_FORMAT,
  type AnalysisSummary,
  type Curve,
  type GroupStats,
  type LayerSummary,
  type ScoreName,
  type UnitSummary,
} from "./summary.ts";
import {
  bootstrapCI,
  kendallTauB,
  mean,
  median,
  precisionAtFraction,
  quantile,
  spearman,
} from "./stats.ts";
import { barChartWithCI, hexbinChart, lineChart, writeChart } from "../report/plot.ts";

/** Fractions of the curves. */
export const CURVE_FRACTIONS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99];
/** Fixed log10|w| histogram edges (shared by all runs so a report can compare them). */
export const MAGNITUDE_EDGES = Array.from({ length: 31 }, (_, i) => -5 + i * 0.2);

/** Hooks for callers (the sweep, tests). */
export interface AblateHooks {
  quiet?: boolean;
}

/** Largest resample of the correlation bootstrap (m-out-of-n above it). */
export const BOOTSTRAP_MAX_PAIRS = 4000;

/**
 * 95 % bootstrap interval of a rank correlation. Up to {@link BOOTSTRAP_MAX_PAIRS} pairs it is
 * the percentile bootstrap; above, an m-out-of-n bootstrap (m = 4000 pairs per resample, the
 * interval's distances from the full-sample estimate scaled by √(m/n)), since Kendall's τ on
 * 100k pairs a few hundred times would dominate the analysis.
 */
export function correlationCI(
  stat: (x: Float64Array, y: Float64Array) => number,
  x: number[],
  y: number[],
  reps: number,
  seed: number,
): [number, number] {
  const n = x.length;
  if (n <= BOOTSTRAP_MAX_PAIRS) return bootstrapCI(stat, x, y, { reps, seed });
  const m = BOOTSTRAP_MAX_PAIRS, rng = new DataRng(seed);
  const full = stat(Float64Array.from(x), Float64Array.from(y));
  const bx = new Float64Array(m), by = new Float64Array(m), got: number[] = [];
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < m; i++) {
      const k = rng.int(n);
      bx[i] = x[k];
      by[i] = y[k];
    }
    const v = stat(bx, by);
    if (Number.isFinite(v)) got.push(v);
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

/** The mask that removes the lowest `fraction` of `keys` (ties by position). */
function lowestMask(keys: Float32Array[], fraction: number): Float32Array[] {
  const all: [number, number, number][] = [];
  keys.forEach((k, l) => k.forEach((v, e) => all.push([v, l, e])));
  all.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  const masks = keys.map((k) => new Float32Array(k.length).fill(1));
  const m = Math.round(fraction * all.length);
  for (let q = 0; q < m; q++) masks[all[q][1]][all[q][2]] = 0;
  return masks;
}

/** Snapshot of everything a fine-tune changes (weights, optimizer state, BN statistics). */
async function withSnapshot<T>(probe: Probe, fn: () => Promise<T>): Promise<T> {
  const t = probe.trainer, gpu = probe.gpu;
  const tensors: Tensor[] = [];
  t.model.params.forEach((p, i) => tensors.push(p.value, ...t.optims[i].opt.state));
  for (const l of t.model.layers) {
    if (l instanceof BatchNorm) tensors.push(l.runningMean, l.runningVar);
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
          const v = pl.layer instanceof SparseLinear ? pl.layer.csr.values : pl.layer.weight;
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
  const lap = (k: string, since: number) => (seconds[k] = (performance.now() - since) / 1000);

  const probe = await Probe.fromRun(dir, {
    evalSamples: opts.evalSamples,
    evalSplit: opts.evalSplit,
    seed: opts.seed,
    budgetMB: opts.budgetMB,
  });
  const names = probe.layers.map((l) => l.name);
  const selected = opts.layers ?? names;
  for (const l of selected) {
    if (!names.includes(l)) {
      throw new FiligreeError(`unknown layer "${l}"; weight layers: ${names.join(", ")}`);
    }
  }
  const base = await probe.baseline();
  log(
    `analysis of ${dir}: ${probe.samples} ${opts.evalSplit} samples (seed ${opts.seed}), baseline loss ${
      base.loss.toFixed(4)
    } accuracy ${(base.accuracy * 100).toFixed(2)}%; layers ${
      probe.layers.map((l) => `${l.name} ${l.nnz}`).join(", ")
    }`,
  );

  let ts = performance.now();
  const scores = await computeScores(probe, opts.scores, opts.seed);
  lap("scores", ts);

  // Single-weight ablation.
  ts = performance.now();
  const progress = new Progress({ quiet: hooks.quiet });
  const chosen = new Map<number, Uint32Array>();
  const results = new Map<number, { dLoss: Float64Array; dAccuracy: Float64Array }>();
  const total = selected.reduce(
    (a, n) => a + Math.min(opts.maxWeights, probe.layers[names.indexOf(n)].nnz),
    0,
  );
  progress.start("ablate weights", total);
  let done = 0;
  for (const n of selected) {
    const w = names.indexOf(n);
    const entries = chooseEntries(probe.layers[w], opts.maxWeights, deriveSeed(opts.seed, w));
    chosen.set(w, entries);
    const before = done;
    results.set(
      w,
      await probe.ablateWeights(w, entries, (d) => progress.update(before + d, {}, "ablations")),
    );
    done += entries.length;
  }
  progress.update(total, {}, "ablations");
  progress.stop();
  lap("ablation", ts);
  const ablationsPerSecond = total / Math.max(1e-9, seconds.ablation);

  // Unit ablation.
  let units: UnitSummary[] | undefined;
  const unitResults = new Map<number, { dLoss: Float64Array; dAccuracy: Float64Array }>();
  if (opts.units) {
    ts = performance.now();
    units = [];
    for (let w = 1; w < probe.layers.length; w++) {
      const pl = probe.layers[w], prev = probe.layers[w - 1];
      const r = await probe.ablateUnits(w, Uint32Array.from({ length: pl.nIn }, (_, i) => i));
      unitResults.set(w, r);
      const norms = new Float64Array(pl.nIn);
      prev.values.forEach((v, e) => (norms[prev.ends[2 * e + 1]] += v * v));
      units.push({
        layer: prev.name,
        units: pl.nIn,
        meanDeltaLoss: mean(r.dLoss),
        helpful: r.dLoss.filter((x) => x < 0).length / pl.nIn,
        normSpearman: finiteOrNull(spearman(norms.map(Math.sqrt), r.dLoss)),
      });
    }
    lap("units", ts);
  }

  // Agreement between scores and ablation.
  ts = performance.now();
  const agreement: Agreement[] = [];
  const scopes: [string, number[]][] = [
    ["all", selected.map((n) => names.indexOf(n))],
    ...selected.map((n): [string, number[]] => [n, [names.indexOf(n)]]),
  ];
  for (const score of opts.scores) {
    scopes.forEach(([scope, ws], si) => {
      const s: number[] = [], d: number[] = [];
      for (const w of ws) {
        const sc = scores[w].get(score)!, r = results.get(w)!;
        chosen.get(w)!.forEach((e, k) => {
          s.push(sc[e]);
          d.push(r.dLoss[k]);
        });
      }
      if (scope !== "all" && ws.length === 1 && scopes.length === 2) return; // same as "all"
      const bseed = deriveSeed(opts.seed, 0xb00 + si);
      agreement.push({
        score,
        scope,
        n: s.length,
        spearman: {
          value: finiteOrNull(spearman(s, d)),
          ci: correlationCI(spearman, s, d, reps, bseed),
        },
        kendall: {
          value: finiteOrNull(kendallTauB(s, d)),
          ci: correlationCI(kendallTauB, s, d, Math.max(10, Math.round(reps / 2)), bseed + 1),
        },
        precisionLeast10: precisionAtFraction(s, d, 0.1, "least"),
        precisionMost10: precisionAtFraction(s, d, 0.1, "most"),
      });
    });
  }
  lap("agreement", ts);

  // Per-layer facts: helpful fraction, grown vs surviving, age, fan-in/out.
  const step = probe.trainer.step;
  const layerSummaries: LayerSummary[] = probe.layers.map((pl, w) => {
    const r = results.get(w), entries = chosen.get(w);
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
  const allD = [...results.values()].flatMap((r) => Array.from(r.dLoss));

  // Group-ablation curves.
  const curves: Curve[] = [];
  if (opts.curves) {
    ts = performance.now();
    const series = [...opts.scores, "magnitude-desc"];
    const curveScopes: [string, number[]][] = [
      ["global", probe.layers.map((_, w) => w)],
      ...(opts.curveLayers ? probe.layers.map((pl, w): [string, number[]] => [pl.name, [w]]) : []),
    ];
    const steps = opts.finetuneSteps > 0 ? [0, opts.finetuneSteps] : [0];
    const count = series.length * curveScopes.length * CURVE_FRACTIONS.length * steps.length;
    progress.start("ablation curves", count);
    const curveSums = probe.gpu.tensor("f32", [2 * CURVE_FRACTIONS.length], { label: "curves" });
    let c = 0;
    for (const ft of steps) {
      for (const score of series) {
        for (const [scope, ws] of curveScopes) {
          const keys = ws.map((w) => removalKey(score, scores[w], probe.layers[w]));
          const masksAt = (fraction: number) => {
            const sub = lowestMask(keys, fraction);
            return probe.layers.map((pl, w) =>
              ws.includes(w) ? sub[ws.indexOf(w)] : new Float32Array(pl.nnz).fill(1)
            );
          };
          let metrics: Metrics[];
          if (ft === 0) {
            // Back-to-back evaluations, one readback per curve.
            CURVE_FRACTIONS.forEach((fraction, q) => {
              const masks = masksAt(fraction);
              probe.layers.forEach((pl, w) =>
                probe.setValues(w, Float32Array.from(pl.values, (v, e) => v * masks[w][e]))
              );
              probe.recordEvaluate(curveSums, q);
            });
            probe.restoreValues();
            const r = await probe.gpu.read(curveSums);
            metrics = CURVE_FRACTIONS.map((_, q) => ({
              loss: r[2 * q] / probe.samples,
              accuracy: r[2 * q + 1] / probe.samples,
            }));
          } else {
            metrics = [];
            for (const fraction of CURVE_FRACTIONS) {
              metrics.push(await evaluateMasked(probe, masksAt(fraction), ft, opts.seed));
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
    progress.stop();
    lap("curves", ts);
  }
  seconds.total = (performance.now() - t0) / 1000;

  const summary: AnalysisSummary = {
    format: ANALYSIS_FORMAT,
    run: dir,
    seed: opts.seed,
    evalSet: { split: opts.evalSplit, samples: probe.samples, seed: opts.seed },
    baseline: base,
    scores: opts.scores,
    layers: layerSummaries,
    helpful: allD.filter((x) => x < 0).length / Math.max(1, allD.length),
    agreement,
    curves,
    units,
    seconds,
    ablationsPerSecond,
  };

  // Outputs: built in a partial directory, then renamed over analysis/.
  const partial = `${dir}/.analysis-partial`;
  await Deno.remove(partial, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${partial}/plots`, { recursive: true });
  const tensors = new Map<string, StTensor>();
  tensors.set("eval_indices", {
    dtype: "U32",
    shape: [probe.evalIndices.length],
    data: probe.evalIndices,
  });
  probe.layers.forEach((pl, w) => {
    const inv = new Uint32Array(pl.nnz); // value order -> checkpoint order
    pl.perm.forEach((v, k) => (inv[v] = k));
    const toCkpt = (a: Float32Array) => Float32Array.from(pl.perm, (v) => a[v]);
    for (const s of opts.scores) {
      tensors.set(`${pl.name}.score.${s}`, {
        dtype: "F32",
        shape: [pl.nnz],
        data: toCkpt(scores[w].get(s)!),
      });
    }
    const r = results.get(w), entries = chosen.get(w);
    if (r && entries) {
      // Sorted by checkpoint position.
      const order = Array.from(entries.keys()).sort((a, b) => inv[entries[a]] - inv[entries[b]]);
      tensors.set(`${pl.name}.ablated`, {
        dtype: "U32",
        shape: [entries.length],
        data: Uint32Array.from(order, (k) => inv[entries[k]]),
      });
      tensors.set(`${pl.name}.delta_loss`, {
        dtype: "F32",
        shape: [entries.length],
        data: Float32Array.from(order, (k) => r.dLoss[k]),
      });
      tensors.set(`${pl.name}.delta_accuracy`, {
        dtype: "F32",
        shape: [entries.length],
        data: Float32Array.from(order, (k) => r.dAccuracy[k]),
      });
    }
    const u = unitResults.get(w);
    if (u) {
      tensors.set(`${pl.name}.input_unit_delta_loss`, {
        dtype: "F32",
        shape: [pl.nIn],
        data: Float32Array.from(u.dLoss),
      });
      tensors.set(`${pl.name}.input_unit_delta_accuracy`, {
        dtype: "F32",
        shape: [pl.nIn],
        data: Float32Array.from(u.dAccuracy),
      });
    }
  });
  await writeSafetensors(`${partial}/ablation.safetensors`, tensors, {
    format: ANALYSIS_FORMAT,
    options: JSON.stringify(opts),
  });
  await writeFileAtomic(`${partial}/summary.json`, JSON.stringify(summary, null, 2) + "\n");
  if (opts.plots) {
    ts = performance.now();
    await writePlots(`${partial}/plots`, probe, chosen, results, summary);
    lap("plots", ts);
  }
  const final = `${dir}/analysis`;
  await Deno.remove(final, { recursive: true }).catch(() => {});
  await Deno.rename(partial, final);
  log(
    `wrote ${final}: ${total} ablations in ${seconds.ablation.toFixed(1)}s (${
      ablationsPerSecond.toFixed(0)
    }/s); magnitude vs Δloss Spearman ${
      agreement.find((a) => a.score === "magnitude" && a.scope === "all")?.spearman.value.toFixed(
        3,
      ) ?? "n/a"
    }; ${(summary.helpful * 100).toFixed(1)}% of removals lower the loss`,
  );
  return summary;
}

async function writePlots(
  dir: string,
  probe: Probe,
  chosen: Map<number, Uint32Array>,
  results: Map<number, { dLoss: Float64Array }>,
  s: AnalysisSummary,
): Promise<void> {
  const pts: { x: number; y: number; facet: string }[] = [];
  for (const [w, entries] of chosen) {
    const pl = probe.layers[w], r = results.get(w)!;
    // Signed log of Δloss: most removals change the loss by 1e-6..1e-3, a few by 0.1.
    entries.forEach((e, k) =>
      pts.push({
        x: pl.values[e],
        y: Math.sign(r.dLoss[k]) * Math.log10(1 + Math.abs(r.dLoss[k]) / 1e-5),
        facet: pl.name,
      })
    );
  }
  await writeChart(
    hexbinChart(pts, {
      logX: true,
      title: "Single-weight ablation: |w| vs Δloss",
      xTitle: "|w|",
      yTitle: "Δloss when removed: sign·log10(1 + |Δ|/1e-5)",
    }),
    `${dir}/magnitude_vs_dloss`,
  );
  const bars = s.agreement.map((a) => ({
    x: a.score,
    y: a.spearman.value,
    lo: a.spearman.ci[0],
    hi: a.spearman.ci[1],
    group: a.scope,
  }));
  await writeChart(
    barChartWithCI(bars, {
      title: "Rank agreement of each score with ablation Δloss",
      yTitle: "Spearman ρ (95% bootstrap CI)",
    }),
    `${dir}/score_agreement`,
  );
  if (s.curves.length) {
    const line = s.curves.filter((c) => c.finetuneSteps === 0).flatMap((c) =>
      c.points.map((p) => ({ x: p.fraction, y: p.accuracy, series: c.score, facet: c.scope }))
    );
    await writeChart(
      lineChart(line, {
        title: "Accuracy after removing the lowest-scored weights",
        xTitle: "fraction removed",
        yTitle: "accuracy",
      }),
      `${dir}/ablation_curves`,
    );
  }
}
