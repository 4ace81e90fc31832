/**
 * The hypothesis engine: tests a study's pre-registered hypotheses (the spec's `hypotheses:`
 * section, src/study/spec.ts) against the analyses in its store and gives each a verdict.
 *
 * Per hypothesis (one per layer when `metric.layer` is "each"):
 *
 * 1. **Metric per cell and epoch.** `spearman`: the `agreement2` row (split, layer, score,
 *    target) of the cell's analysis at `metric.epoch`; a score contrast "a - b" is ρ_a − ρ_b in
 *    the same cell. `helpfulFraction` / `dropPrecision`: the `layerFacts2` row (split, layer;
 *    layer "fisher-z mean" or "mean" = unweighted mean over the layers, no z-transform for
 *    fractions). `testAccuracy`: the cell's test accuracy at that epoch. `metric.minus`
 *    subtracts a second ρ of the same cell with its own score/target/layer/split (ρ(signed2, ΔL)
 *    − ρ(|w|, |ΔL|)); `disattenuate: true` divides every ρ by its target's attainable ρ
 *    (√ of the split-half ceiling), so correlations with targets of different reliability
 *    compare fairly; valid only for scores independent of the oracle's sampling noise (a
 *    gradient score measured on the same samples as ΔL can exceed the "attainable" ρ). Layer
 *    aliases `first` / `last`: the cell's first / last analyzed layer.
 *    `agnostic`: the accuracy of a weight-agnostic variant (analysis option `agnostic`;
 *    `weights` signed/shared/trained, `mask` trained/degree-matched/shuffled, `over` mean/best
 *    over the shared-weight scales).
 * 2. **Paired differences.** Comparison `{factor, levels: [a, b]}` over a study factor: cells are
 *    matched on every other factor (the seed included) after the `where` filter (and, with
 *    `converged: true`, only cells whose training ended by its stop rule), d = m(a) − m(b)
 *    per matched pair. Pseudo-factors inside one cell: `epoch` (d = m at epoch a − m at epoch b),
 *    `score` (d = ρ of score a − ρ of score b), `layer` (d = m in layer a − m in layer b) and
 *    `mask` (agnostic accuracy on topology a − on topology b). `{value: v}`: d = m − v per cell.
 *    `by: [factors]` repeats the test in every group of those factors' levels.
 * 3. **Effect and interval.** The effect is the mean of d; its 95 % interval is a percentile
 *    bootstrap over the pairs (cells resampled, 2,000 resamples, seeded: deterministic). Each
 *    cell's own oracle already averages over thousands of images, so the pairs are the units.
 * 4. **Test.** Two-sided Wilcoxon signed-rank for n ≥ 6 pairs, else the exact sign-flip
 *    permutation test; Holm's correction over every (expanded) hypothesis of the study.
 * 5. **Verdict.** With the effect oriented so that positive is the predicted direction
 *    (e = s·mean, interval [lo, hi] likewise, s = +1 for "greater", −1 for "less") and SESOI δ:
 *    - **confirmed**: lo > δ (the whole interval lies beyond the SESOI in the predicted
 *      direction) and Holm p < α (0.05);
 *    - **refuted**: hi < δ (the interval excludes every effect at least as large as the SESOI in
 *      the predicted direction: "too small to matter" when it also lies above −δ, "opposite" when
 *      it lies below it), or Holm p < α with e < 0 (significant in the opposite direction);
 *    - **inconclusive**: anything else, and any hypothesis with fewer than `minPairs` (3) pairs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { testHypotheses } from "./hypotheses.ts";
 * const cells = [0, 1, 2, 3, 4, 5].flatMap((seed) =>
 *   ["relu", "tanh"].map((activation) => ({
 *     factors: { activation, seed: String(seed) },
 *     accuracy: { final: activation === "tanh" ? 0.95 + seed / 1000 : 0.9 },
 *     analyses: {},
 *   }))
 * );
 * const [r] = testHypotheses(cells, [{
 *   id: "A", statement: "tanh beats relu", source: "test",
 *   metric: { statistic: "testAccuracy", layer: "fisher-z mean", split: "train", epoch: "final" },
 *   comparison: { factor: "activation", levels: ["tanh", "relu"] },
 *   sesoi: 0.01, direction: "greater",
 * }]);
 * assert.deepEqual(r.verdict, "confirmed");
 * assert.deepEqual(r.n, 6);
 * ```
 * @module
 */
import { deriveSeed } from "../data/random.ts";
import {
  bootstrapMeanCI,
  holm,
  mean,
  pairedPermutationTest,
  wilcoxonSignedRank,
} from "../analysis/stats.ts";
import type { AnalysisSummary } from "../analysis/summary.ts";
import type { HypothesisSpec } from "./spec.ts";
import type { StudyStore } from "./store.ts";

/** What the engine needs of one cell. Epoch keys: "final" and the kept epochs ("3", "10"). */
export interface HypothesisCell {
  /** Factor values as strings (the seed included). */
  factors: Record<string, string>;
  /** Analysis summaries by epoch key. */
  analyses: Record<string, AnalysisSummary | undefined>;
  /** Test accuracy by epoch key. */
  accuracy: Record<string, number | undefined>;
  /** The stop rule's criterion when it ended training (converged), else null/absent. */
  stopped?: string | null;
}

/** Verdict of one hypothesis. */
export type Verdict = "confirmed" | "refuted" | "inconclusive";

/** The result of one (expanded) hypothesis. */
export interface HypothesisResult {
  /** The spec's id, with "[layer]" appended for `layer: each`. */
  id: string;
  statement: string;
  source: string;
  /** Layer scope actually used. */
  layer: string;
  /** The `by` group ("activation=relu, norm=batch"), "" without `by`. */
  group: string;
  /** "spearman(magnitude, absdloss) fc1 train @final" and the like. */
  metricText: string;
  /** "activation: tanh − relu", "epoch: final − 3", "− 0.2". */
  comparisonText: string;
  direction: "greater" | "less";
  sesoi: number;
  /** Matched pairs (or cells, against a value). */
  n: number;
  /** Mean of the A side and of the B side (B: the fixed value for `{value}`). */
  meanA: number;
  meanB: number;
  /** Mean paired difference A − B and its 95 % bootstrap interval. */
  effect: number;
  ci: [number, number];
  test: "wilcoxon" | "sign-flip" | "none";
  p: number;
  pHolm: number;
  verdict: Verdict;
  /** One line: why this verdict. */
  reason: string;
  /** The paired differences, in cell order. */
  diffs: number[];
}

/** Options of {@link testHypotheses}. */
export interface HypothesisOptions {
  /** Family-wise error level (0.05). */
  alpha?: number;
  /** Fewest pairs for a verdict other than inconclusive (3). */
  minPairs?: number;
  /** Bootstrap resamples (2000). */
  reps?: number;
  /** Seed of the bootstrap and of a sampled sign-flip test (0). */
  seed?: number;
  /** The factor that replicates cells (default "seed"); it is matched, never compared. */
  seedFactor?: string;
}

/** Smallest n for which the Wilcoxon test is used instead of the exact sign-flip test. */
export const HYPOTHESIS_WILCOXON_MIN_N = 6;

const MEAN_LAYERS = new Set(["fisher-z mean", "mean"]);

/** Comparison pseudo-factors whose two levels are read from the same cell. */
const WITHIN_CELL = new Set(["epoch", "score", "layer", "mask"]);

/** Layers named in a cell's analyses (agreement2 and layerFacts2 rows), first seen first. */
function layersOf(cells: HypothesisCell[]): string[] {
  const out: string[] = [];
  for (const c of cells) {
    for (const a of Object.values(c.analyses)) {
      for (const r of [...(a?.agreement2 ?? []), ...(a?.layerFacts2 ?? [])]) {
        if (!MEAN_LAYERS.has(r.layer) && !out.includes(r.layer)) out.push(r.layer);
      }
    }
  }
  return out;
}

function spearmanOf(
  a: AnalysisSummary | undefined,
  split: string,
  layer: string,
  score: string,
  target: string,
  disattenuate = false,
): number | undefined {
  const rows = a?.agreement2;
  if (!rows) return undefined;
  const r = rows.find((x) =>
    x.split === split && x.layer === layer && x.score === score && x.target === target
  );
  if (r) {
    const v = disattenuate ? r.spearman / r.attainable : r.spearman;
    return Number.isFinite(v) ? v : undefined;
  }
  if (layer === "mean") return spearmanOf(a, split, "fisher-z mean", score, target, disattenuate);
  return undefined;
}

function layerFact(
  a: AnalysisSummary | undefined,
  split: string,
  layer: string,
  key: "helpfulFraction" | "dropPrecision",
): number | undefined {
  const rows = (a?.layerFacts2 ?? []).filter((x) => x.split === split);
  const val = (l: string) => {
    const v = rows.find((x) => x.layer === l)?.[key];
    return v !== undefined && Number.isFinite(v) ? v : undefined;
  };
  if (!MEAN_LAYERS.has(layer)) return val(layer);
  const vs = rows.map((x) => val(x.layer)).filter((v): v is number => v !== undefined);
  return vs.length ? mean(vs) : undefined;
}

/**
 * Resolves the layer aliases "first" and "last" to the cell's first / last analyzed layer of the
 * split (in the analysis's row order, the network's order); other names are returned as given.
 */
function resolveLayer(a: AnalysisSummary | undefined, split: string, layer: string): string {
  if (layer !== "first" && layer !== "last") return layer;
  const names: string[] = [];
  for (const r of [...(a?.agreement2 ?? []), ...(a?.layerFacts2 ?? [])]) {
    if (r.split === split && !MEAN_LAYERS.has(r.layer) && !names.includes(r.layer)) {
      names.push(r.layer);
    }
  }
  return (layer === "first" ? names[0] : names[names.length - 1]) ?? layer;
}

/**
 * The accuracy of one weight-agnostic variant (analysis option `agnostic`): topology `mask`
 * (default "trained"), weights `weights` (default "signed": the learned signs with one shared
 * magnitude per layer), averaged over the shared-weight scales and random topologies
 * (`over: mean`, default), at the best scale (`over: best`), or at scale 1 (`over: scale1`: the
 * learned signs times each layer's mean |w|, averaged over the random topologies). Negative
 * scales flip every layer's sign, so `mean` mixes in sign-flipped networks.
 */
function agnosticValue(
  a: AnalysisSummary | undefined,
  m: HypothesisSpec["metric"],
): number | undefined {
  const row = a?.agnostic?.summary.find((r) =>
    r.mask === (m.mask ?? "trained") && r.weights === (m.weights ?? "signed")
  );
  if (!row) return undefined;
  if (m.over === "scale1") {
    // s = 1: the learned signs (or one shared weight) times each layer's mean |w|; mean over
    // the random topologies.
    const at1 = (a?.agnostic?.rows ?? []).filter((r) =>
      r.mask === row.mask && r.weights === row.weights && (r.scale ?? 1) === 1
    ).map((r) => r.accuracy);
    return at1.length ? mean(at1) : undefined;
  }
  const v = m.over === "best" ? row.bestAccuracy : row.meanAccuracy;
  return Number.isFinite(v) ? v : undefined;
}

/**
 * The hypothesis metric of one cell at one epoch (undefined when the cell lacks it). `score`
 * may be a contrast "a - b" (ρ_a − ρ_b); `minus` subtracts a second correlation of the same cell
 * with its own score, target, layer or split (ρ(signed2, ΔL) − ρ(|w|, |ΔL|)).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { metricValue } from "./hypotheses.ts";
 * const row = (score: string, spearman: number) => ({ split: "train", layer: "fc1", score,
 *   target: "absdloss", spearman, ci: [0, 0], n: 9, ceiling: 1, halfReliability: 1,
 *   attainable: 1, primary: true });
 * const cell = { factors: {}, accuracy: {},
 *   analyses: { final: { agreement2: [row("wanda", 0.5), row("magnitude", 0.3)] } } };
 * const m = { statistic: "spearman", score: "wanda - magnitude", target: "absdloss", layer: "fc1",
 *   split: "train", epoch: "final" } as const;
 * assert.deepEqual(metricValue(cell as never, m, "fc1", "final")?.toFixed(2), "0.20");
 * ```
 */
export function metricValue(
  cell: HypothesisCell,
  m: HypothesisSpec["metric"],
  layer: string,
  epoch: string,
  scoreOverride?: string,
): number | undefined {
  if (m.statistic === "testAccuracy") {
    const v = cell.accuracy[epoch];
    return v !== undefined && Number.isFinite(v) ? v : undefined;
  }
  const a = cell.analyses[epoch];
  if (m.statistic === "agnostic") return agnosticValue(a, m);
  if (m.statistic === "helpfulFraction" || m.statistic === "dropPrecision") {
    return layerFact(a, m.split, resolveLayer(a, m.split, layer), m.statistic);
  }
  const rho = (score: string, target: string, layer: string, split: string) => {
    const l = resolveLayer(a, split, layer);
    const parts = score.split(/\s+-\s+/);
    if (parts.length === 2) {
      const x = spearmanOf(a, split, l, parts[0], target, m.disattenuate);
      const y = spearmanOf(a, split, l, parts[1], target, m.disattenuate);
      return x !== undefined && y !== undefined ? x - y : undefined;
    }
    return spearmanOf(a, split, l, score, target, m.disattenuate);
  };
  const score = scoreOverride ?? m.score ?? "magnitude";
  const target = m.target ?? "absdloss";
  const x = rho(score, target, layer, m.split);
  if (!m.minus || x === undefined) return x;
  const y = rho(
    m.minus.score ?? score,
    m.minus.target ?? target,
    m.minus.layer ?? layer,
    m.minus.split ?? m.split,
  );
  return y === undefined ? undefined : x - y;
}

function metricText(h: HypothesisSpec, layer: string): string {
  const m = h.metric;
  const rho = (score: string, target: string) => `spearman(${score}, ${target})`;
  let what: string = m.statistic;
  if (m.statistic === "spearman") {
    what = rho(m.score ?? "magnitude", m.target ?? "absdloss");
    if (m.minus) {
      const mi = m.minus;
      what += ` − ${rho(mi.score ?? m.score ?? "magnitude", mi.target ?? m.target ?? "absdloss")}` +
        (mi.layer && mi.layer !== layer ? ` ${mi.layer}` : "") +
        (mi.split && mi.split !== m.split ? ` ${mi.split}` : "");
    }
    if (m.disattenuate) what += " (each ρ / its attainable ρ)";
  } else if (m.statistic === "agnostic") {
    what = `agnostic accuracy (${m.weights ?? "signed"} weights, ${m.mask ?? "trained"} mask, ${
      m.over ?? "mean"
    } over scales)`;
  }
  const byLayer = "factor" in h.comparison && h.comparison.factor === "layer";
  const layerPart = m.statistic === "testAccuracy" || m.statistic === "agnostic"
    ? ""
    : byLayer
    ? ` ${m.split}`
    : ` ${layer} ${m.split}`;
  return `${what}${layerPart} @${m.epoch}${h.converged ? ", converged cells" : ""}`;
}

function fmt(v: number, signed = false): string {
  if (!Number.isFinite(v)) return "n/a";
  const s = v.toFixed(3);
  return signed && v >= 0 ? `+${s}` : s;
}

/** The cells' paired differences for one expanded hypothesis: [a values, b values]. */
function pairs(
  cells: HypothesisCell[],
  h: HypothesisSpec,
  layer: string,
  seedFactor: string,
): { a: number[]; b: number[] } {
  const keep = cells.filter((c) =>
    Object.entries(h.where ?? {}).every(([k, vs]) => vs.map(String).includes(c.factors[k])) &&
    (!h.converged || (c.stopped !== undefined && c.stopped !== null && c.stopped !== ""))
  );
  const a: number[] = [], b: number[] = [];
  const epoch = String(h.metric.epoch);
  const cmp = h.comparison;
  if ("value" in cmp) {
    for (const c of keep) {
      const v = metricValue(c, h.metric, layer, epoch);
      if (v !== undefined) {
        a.push(v);
        b.push(cmp.value);
      }
    }
    return { a, b };
  }
  const [la, lb] = cmp.levels.map(String);
  if (WITHIN_CELL.has(cmp.factor)) {
    // A pseudo-factor: both levels come from the same cell.
    const at = (level: string) =>
      cmp.factor === "epoch"
        ? (c: HypothesisCell) => metricValue(c, h.metric, layer, level)
        : cmp.factor === "score"
        ? (c: HypothesisCell) => metricValue(c, h.metric, layer, epoch, level)
        : cmp.factor === "layer"
        ? (c: HypothesisCell) => metricValue(c, h.metric, level, epoch)
        : (c: HypothesisCell) =>
          metricValue(c, { ...h.metric, mask: level as "trained" }, layer, epoch);
    const fa = at(la), fb = at(lb);
    for (const c of keep) {
      const va = fa(c), vb = fb(c);
      if (va !== undefined && vb !== undefined) {
        a.push(va);
        b.push(vb);
      }
    }
    return { a, b };
  }
  // A study factor: match on every other factor (the seed included).
  const f = cmp.factor;
  const names = [...new Set(keep.flatMap((c) => Object.keys(c.factors)))].sort();
  const others = names.filter((g) => g !== f);
  if (f === seedFactor) return { a, b };
  const key = (c: HypothesisCell) => JSON.stringify(others.map((g) => c.factors[g] ?? ""));
  const B = new Map<string, HypothesisCell>();
  for (const c of keep) if (c.factors[f] === lb) B.set(key(c), c);
  for (const c of keep) {
    if (c.factors[f] !== la) continue;
    const cb = B.get(key(c));
    if (!cb) continue;
    const va = metricValue(c, h.metric, layer, epoch);
    const vb = metricValue(cb, h.metric, layer, epoch);
    if (va !== undefined && vb !== undefined) {
      a.push(va);
      b.push(vb);
    }
  }
  return { a, b };
}

/**
 * Classifies one oriented result (see the module doc for the rule).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classify } from "./hypotheses.ts";
 * assert.deepEqual(classify({ effect: 0.2, ci: [0.12, 0.3], pHolm: 0.01, n: 8 }, "greater", 0.05).verdict, "confirmed");
 * assert.deepEqual(classify({ effect: 0.01, ci: [0.0, 0.02], pHolm: 0.01, n: 8 }, "greater", 0.05).verdict, "refuted");
 * assert.deepEqual(classify({ effect: 0.1, ci: [0.02, 0.2], pHolm: 0.01, n: 8 }, "greater", 0.05).verdict, "inconclusive");
 * ```
 */
export function classify(
  r: { effect: number; ci: [number, number]; pHolm: number; n: number },
  direction: "greater" | "less",
  sesoi: number,
  opts: { alpha?: number; minPairs?: number } = {},
): { verdict: Verdict; reason: string } {
  const { alpha = 0.05, minPairs = 3 } = opts;
  if (r.n < minPairs || !Number.isFinite(r.ci[0]) || !Number.isFinite(r.ci[1])) {
    return {
      verdict: "inconclusive",
      reason: `${r.n} matched pair${r.n === 1 ? "" : "s"}; at least ${minPairs} are needed`,
    };
  }
  const s = direction === "greater" ? 1 : -1;
  const e = s * r.effect;
  const lo = Math.min(s * r.ci[0], s * r.ci[1]), hi = Math.max(s * r.ci[0], s * r.ci[1]);
  const sig = r.pHolm < alpha;
  if (lo > sesoi && sig) {
    return {
      verdict: "confirmed",
      reason:
        `the interval lies beyond the SESOI ${sesoi} in the predicted direction and Holm p < ${alpha}`,
    };
  }
  if (sig && e < 0) {
    return {
      verdict: "refuted",
      reason: `significant in the opposite direction (Holm p < ${alpha})`,
    };
  }
  if (hi < sesoi) {
    return {
      verdict: "refuted",
      reason: lo > -sesoi
        ? `too small to matter: the whole interval lies within ±${sesoi}`
        : `the interval excludes every predicted effect of at least ${sesoi}`,
    };
  }
  return {
    verdict: "inconclusive",
    reason: lo > sesoi
      ? `the interval lies beyond the SESOI but Holm p ≥ ${alpha}`
      : `the interval reaches both sides of the SESOI ${sesoi}`,
  };
}

/** The smallest p the engine's test can give with n pairs (all differences of one sign). */
export function smallestP(n: number): number {
  if (n < 1) return 1;
  const d = Array.from({ length: n }, (_, i) => i + 1);
  return n >= HYPOTHESIS_WILCOXON_MIN_N ? wilcoxonSignedRank(d).p : 2 / 2 ** n;
}

/**
 * The cells of each `by` group of a hypothesis (levels in the order the cells first show them),
 * or one group "" of every cell without `by`.
 */
function byGroups(cells: HypothesisCell[], h: HypothesisSpec): [string, HypothesisCell[]][] {
  if (!h.by?.length) return [["", cells]];
  const groups = new Map<string, HypothesisCell[]>();
  for (const c of cells) {
    const key = h.by.map((f) => `${f}=${c.factors[f] ?? "-"}`).join(", ");
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(c);
  }
  return [...groups];
}

/**
 * Tests every hypothesis (expanding `layer: each` into one per layer and `by` into one per group
 * of levels), Holm-corrects over all of them and classifies each (see the module doc).
 */
export function testHypotheses(
  cells: HypothesisCell[],
  hypotheses: HypothesisSpec[],
  opts: HypothesisOptions = {},
): HypothesisResult[] {
  const { alpha = 0.05, minPairs = 3, reps = 2000, seed = 0, seedFactor = "seed" } = opts;
  const out: HypothesisResult[] = [];
  const allLayers = layersOf(cells);
  let k = 0;
  for (const h of hypotheses) {
    const scopes = h.metric.layer === "each" ? allLayers : [h.metric.layer];
    for (const [group, groupCells] of byGroups(cells, h)) {
      for (const layer of scopes) {
        const { a, b } = pairs(groupCells, h, layer, seedFactor);
        const d = a.map((v, i) => v - b[i]);
        const s = deriveSeed(seed, k++);
        const n = d.length;
        let p = NaN, test: HypothesisResult["test"] = "none";
        if (n > 0) {
          if (n >= HYPOTHESIS_WILCOXON_MIN_N) {
            p = wilcoxonSignedRank(d).p;
            test = "wilcoxon";
          } else {
            p = pairedPermutationTest(d, { seed: s });
            test = "sign-flip";
          }
        }
        const cmp = h.comparison;
        out.push({
          id: (h.metric.layer === "each" ? `${h.id}[${layer}]` : h.id) +
            (group ? `[${group}]` : ""),
          group,
          statement: h.statement,
          source: h.source,
          layer,
          metricText: metricText(h, layer),
          comparisonText: "value" in cmp
            ? `− ${cmp.value}`
            : `${cmp.factor}: ${cmp.levels[0]} − ${cmp.levels[1]}`,
          direction: h.direction,
          sesoi: h.sesoi,
          n,
          meanA: n ? mean(a) : NaN,
          meanB: n ? mean(b) : NaN,
          effect: n ? mean(d) : NaN,
          ci: n ? bootstrapMeanCI(d, { reps, seed: s }) : [NaN, NaN],
          test,
          p,
          pHolm: NaN,
          verdict: "inconclusive",
          reason: "",
          diffs: d,
        });
      }
    }
  }
  const adj = holm(out.map((r) => r.p));
  out.forEach((r, i) => {
    r.pHolm = Number.isNaN(r.p) ? NaN : adj[i];
    Object.assign(r, classify(r, r.direction, r.sesoi, { alpha, minPairs }));
    // Say when the design could not have confirmed it: even n pairs all in the predicted
    // direction give a p that Holm's first step (α / family size) does not accept.
    if (r.n === 0 && r.metricText.startsWith("agnostic")) {
      r.reason = "no agnostic results in the store: analyze with analysis.agnostic: true, or " +
        "add them to recorded cells (src/study/agnostic_backfill.ts)";
    }
    const pMin = smallestP(r.n);
    if (r.verdict === "inconclusive" && r.n >= minPairs && pMin * out.length >= alpha) {
      r.reason += `; with n=${r.n} pairs the smallest attainable p is ${+pMin.toPrecision(
        2,
      )}, too large for Holm over ${out.length} hypotheses: add pairs (seeds or cells)`;
    }
  });
  return out;
}

/**
 * One line per result: "H1 confirmed: effect +0.210 [+0.150, +0.270], n=10, Wilcoxon p=0.002,
 * Holm p=0.01" (p values to two significant digits).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeResult } from "./hypotheses.ts";
 * const line = describeResult({ id: "H1", verdict: "refuted", effect: 0.01, ci: [0, 0.02], n: 4,
 *   test: "sign-flip", p: 0.125, pHolm: 0.25 } as never);
 * assert.deepEqual(line, "H1 refuted: effect +0.010 [+0.000, +0.020], n=4, sign-flip p=0.13, Holm p=0.25"); // p to 2 significant digits
 * ```
 */
export function describeResult(r: HypothesisResult): string {
  const test = r.test === "wilcoxon" ? "Wilcoxon" : r.test;
  const p = (x: number) =>
    !Number.isFinite(x) ? "n/a" : x < 0.001 ? x.toExponential(1) : String(+x.toPrecision(2));
  return `${r.id} ${r.verdict}: effect ${fmt(r.effect, true)} [${fmt(r.ci[0], true)}, ${
    fmt(r.ci[1], true)
  }], n=${r.n}, ${test} p=${p(r.p)}, Holm p=${p(r.pHolm)}`;
}

/**
 * The engine's view of every cell of a store: factor values as strings (non-strings as JSON),
 * analyses keyed "final" and by epoch number, test accuracy per epoch ("final" = the cell's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StudyStore } from "./store.ts";
 * import { cellsFromStore } from "./hypotheses.ts";
 * const s = StudyStore.open(":memory:", { study: "x" });
 * assert.deepEqual(cellsFromStore(s).length, 0);
 * s.close();
 * ```
 */
export function cellsFromStore(store: StudyStore): HypothesisCell[] {
  return store.cells().map((row) => {
    const raw = JSON.parse(row.factors) as Record<string, unknown>;
    const factors = Object.fromEntries(
      Object.entries(raw).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    );
    const analyses: HypothesisCell["analyses"] = {};
    for (const a of store.analyses(row.cell_id)) {
      const summary = JSON.parse(a.analysis) as AnalysisSummary;
      analyses[String(a.epoch)] = summary;
      if (a.final) analyses.final = summary;
    }
    const accuracy: HypothesisCell["accuracy"] = { final: row.test_accuracy };
    for (const e of store.epochs(row.cell_id)) {
      if (e.test_accuracy !== null) accuracy[String(e.epoch)] = e.test_accuracy;
    }
    return { factors, analyses, accuracy, stopped: row.stopped ?? null };
  });
}
