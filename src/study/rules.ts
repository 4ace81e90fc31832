/**
 * Generated statements about a study, each backed by a paired test over seeds. Nothing here is
 * hand-written prose: a family of candidate statements is built from whatever factors and
 * metrics the cells hold, every candidate is tested, Holm's correction runs across the whole
 * family, and the text comes from templates filled with the numbers.
 *
 * Two families of candidates:
 * - factor pairs: for each factor with two or more levels (the seed factor excluded), each pair
 *   of its levels (A, B) and each metric (test accuracy; Spearman ρ of each importance score
 *   with single-weight ablation Δloss, scope "all"), cells identical in every other factor
 *   (seed included) are matched into pairs; the differences A - B are tested with Wilcoxon's
 *   signed-rank test when n >= 6 pairs, else with the exact sign-flip permutation test.
 * - "small weights are unimportant": per level of the activation factor (or over all cells
 *   when there is none), the magnitude ρ of every analyzed cell is tested against 0 with the
 *   same one-sample tests.
 *
 * A statement is SUPPORTED when its Holm-adjusted p < alpha (0.05), it rests on at least
 * `minPairs` (3) pairs, and its 95 % bootstrap interval lies entirely beyond the smallest effect
 * size of interest (SESOI: Δρ {@link SESOI_RHO} = 0.05 for correlations, Δaccuracy
 * {@link SESOI_ACCURACY} = 0.005 for test accuracy) in the direction of the effect: a
 * significant difference too small to matter is not supported. These statements are
 * exploratory (the report lists them in an appendix); pre-registered hypotheses are tested by
 * src/study/hypotheses.ts. Results are deterministic (seeded bootstrap).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveRules } from "./rules.ts";
 * const cells = [0, 1, 2, 3, 4, 5].flatMap((seed) => [
 *   { factors: { norm: "batch", seed: String(seed) }, metrics: { test_accuracy: 0.9 + seed / 1000 } },
 *   { factors: { norm: "none", seed: String(seed) }, metrics: { test_accuracy: 0.8 + seed / 900 } },
 * ]);
 * const r = deriveRules(cells);
 * assert.deepEqual(r.supported.length, 1);
 * ```
 * @module
 */
import { deriveSeed } from "../data/random.ts";
import type { CellRow } from "./schema.ts";
import type { AnalysisSummary } from "../analysis/summary.ts";
import {
  bootstrapMeanCI,
  holm,
  mean,
  pairedPermutationTest,
  wilcoxonSignedRank,
} from "../analysis/stats.ts";

/** What the rules need of one cell: its factor values (as strings) and its metrics. */
export interface CellFacts {
  factors: Record<string, string>;
  /** `test_accuracy`, and `rho:<score>` for each analyzed score (absent when not analyzed). */
  metrics: Record<string, number>;
}

/** One generated statement with its numbers. */
export interface Statement {
  family: "factor-pair" | "small-weights";
  /** The metric key (`test_accuracy`, `rho:magnitude`, ...). */
  metric: string;
  /** Factor-pair family: the factor and its two levels (A first). */
  factor?: string;
  levelA?: string;
  levelB?: string;
  /** Small-weights family: the level of the activation factor ("" for all cells). */
  group?: string;
  /** Pairs (factor-pair) or cells (small-weights). */
  n: number;
  /** Mean of A and of B (small-weights: meanB = 0, the null value). */
  meanA: number;
  meanB: number;
  /** Mean difference A - B and its 95 % bootstrap interval. */
  diff: number;
  ci: [number, number];
  test: "wilcoxon" | "permutation";
  p: number;
  /** Holm-adjusted p over the whole family. */
  pHolm: number;
  supported: boolean;
  text: string;
}

/** Options of {@link deriveRules}. */
export interface RulesOptions {
  /** Family-wise error level (default 0.05). */
  alpha?: number;
  /** Minimum pairs (or cells) for a supported statement (default 3). */
  minPairs?: number;
  /** Seed of the bootstrap intervals (default 0). */
  seed?: number;
  /** Bootstrap resamples (default 2000). */
  reps?: number;
  /** The factor that pairs replicate cells (default "seed"). */
  seedFactor?: string;
  /** The factor that splits the small-weights family (default "activation"). */
  groupFactor?: string;
}

/** Result of {@link deriveRules}. */
export interface Rules {
  statements: Statement[];
  supported: Statement[];
  unsupported: Statement[];
}

/** Smallest effect of interest for a difference of Spearman ρ. */
export const SESOI_RHO = 0.05;
/** Smallest effect of interest for a difference of test accuracy (half a percentage point). */
export const SESOI_ACCURACY = 0.005;

/**
 * The SESOI of a metric key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sesoiOf } from "./rules.ts";
 * assert.deepEqual(sesoiOf("rho:magnitude"), 0.05);
 * assert.deepEqual(sesoiOf("test_accuracy"), 0.005);
 * ```
 */
export function sesoiOf(metric: string): number {
  return metric === "test_accuracy" ? SESOI_ACCURACY : SESOI_RHO;
}

/** Smallest n for which the Wilcoxon test is used instead of the permutation test. */
export const WILCOXON_MIN_N = 6;

/**
 * Extracts the facts the rules use from a store row (factor values stringified; metrics
 * `test_accuracy` and `rho:<score>` from the analysis agreement with scope "all").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cellFacts } from "./rules.ts";
 * import type { CellRow } from "./schema.ts";
 * const row = { factors: '{"norm":"none","seed":1}', test_accuracy: 0.9, analysis: null };
 * assert.deepEqual(cellFacts(row as CellRow).factors.seed, "1");
 * ```
 */
export function cellFacts(row: CellRow): CellFacts {
  const raw = JSON.parse(row.factors) as Record<string, unknown>;
  const factors: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    factors[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  const metrics: Record<string, number> = { test_accuracy: row.test_accuracy };
  if (row.analysis) {
    const a = JSON.parse(row.analysis) as AnalysisSummary;
    for (const g of a.agreement ?? []) {
      if (g.scope === "all" && Number.isFinite(g.spearman?.value)) {
        metrics[`rho:${g.score}`] = g.spearman.value;
      }
    }
  }
  return { factors, metrics };
}

/**
 * Sorts factor levels: numerically when all are numbers, else alphabetically.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sortLevels } from "./rules.ts";
 * assert.deepEqual(sortLevels(["10", "9", "1"]), ["1", "9", "10"]);
 * ```
 */
export function sortLevels(levels: Iterable<string>): string[] {
  const xs = [...new Set(levels)];
  if (xs.every((v) => v.trim() !== "" && Number.isFinite(Number(v)))) {
    return xs.sort((a, b) => Number(a) - Number(b));
  }
  return xs.sort();
}

/**
 * Formats a p-value with two significant digits ("0.004", "3.1e-6").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatP } from "./rules.ts";
 * assert.deepEqual(formatP(0.0041234), "0.0041");
 * ```
 */
export function formatP(p: number): string {
  if (!Number.isFinite(p)) return "n/a";
  if (p < 1e-4) return p.toExponential(1);
  return String(Number(p.toPrecision(2)));
}

function metricDigits(metric: string): number {
  return metric === "test_accuracy" ? 3 : 2;
}

function fmt(v: number, digits: number, signed = false): string {
  if (!Number.isFinite(v)) return "n/a";
  let s = v.toFixed(digits);
  if (/^-0\.?0*$/.test(s)) s = s.slice(1); // no "-0.00"
  return signed && v >= 0 ? `+${s}` : s;
}

function test(d: number[], seed: number): { p: number; test: Statement["test"] } {
  if (d.length >= WILCOXON_MIN_N) return { p: wilcoxonSignedRank(d).p, test: "wilcoxon" };
  return { p: pairedPermutationTest(d, { seed }), test: "permutation" };
}

function numbers(s: Statement): string {
  const k = metricDigits(s.metric);
  const what = s.metric === "test_accuracy" ? "" : "rho ";
  const test = s.test === "wilcoxon" ? "Wilcoxon" : "sign-flip";
  const core = s.family === "small-weights"
    ? `mean ${what}${fmt(s.meanA, k)} [${fmt(s.ci[0], k)}, ${fmt(s.ci[1], k)}]`
    : `${what}${fmt(s.meanA, k)} vs ${fmt(s.meanB, k)}, diff ${fmt(s.diff, k, true)} [${
      fmt(s.ci[0], k, true)
    }, ${fmt(s.ci[1], k, true)}]`;
  return `(${core}, n=${s.n}, ${test} p=${formatP(s.p)}, Holm p=${formatP(s.pHolm)})`;
}

function phrase(s: Statement): string {
  if (s.family === "small-weights") {
    const where = s.group ? `with ${s.group}, ` : "";
    return s.diff > 0
      ? `${where}small weights are unimportant: magnitude rank-correlates positively with ablation Δloss`
      : `${where}small weights are not the unimportant ones: magnitude rank-correlates negatively with ablation Δloss`;
  }
  const a = `${s.factor}=${s.levelA}`, b = `${s.factor}=${s.levelB}`;
  if (s.metric === "test_accuracy") {
    const dir = s.diff > 0 ? "higher" : s.diff < 0 ? "lower" : "the same";
    return `under ${a}, test accuracy is ${dir} than under ${b}`;
  }
  const score = s.metric.slice("rho:".length);
  const dir = s.diff > 0 ? "better" : s.diff < 0 ? "worse" : "equally well";
  return `under ${a}, ${score} predicts ablation importance ${dir} than under ${b}`;
}

/**
 * Builds, tests and Holm-corrects the whole family of candidate statements (see the module
 * documentation). Statements are ordered by family, then factor, levels and metric.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveRules } from "./rules.ts";
 * const cells = [0, 1, 2].map((seed) => ({
 *   factors: { activation: "relu", seed: String(seed) },
 *   metrics: { test_accuracy: 0.9, "rho:magnitude": 0.6 + seed / 100 },
 * }));
 * const { statements } = deriveRules(cells);
 * assert.ok(statements[0].text.startsWith("with activation=relu, small weights"));
 * ```
 */
export function deriveRules(cells: CellFacts[], opts: RulesOptions = {}): Rules {
  const {
    alpha = 0.05,
    minPairs = 3,
    seed = 0,
    reps = 2000,
    seedFactor = "seed",
    groupFactor = "activation",
  } = opts;
  const metrics = sortLevels(cells.flatMap((c) => Object.keys(c.metrics)))
    .sort((a, b) => (a === "test_accuracy" ? -1 : b === "test_accuracy" ? 1 : a < b ? -1 : 1));
  const factorNames = sortLevels(cells.flatMap((c) => Object.keys(c.factors)));
  const levels = new Map(
    factorNames.map((f) => [f, sortLevels(cells.map((c) => c.factors[f] ?? ""))]),
  );
  const out: Statement[] = [];
  let k = 0;
  const addStatement = (
    base: Omit<Statement, "ci" | "p" | "pHolm" | "supported" | "text" | "test">,
    d: number[],
  ) => {
    const s = deriveSeed(seed, k++);
    const { p, test: t } = test(d, s);
    out.push({
      ...base,
      ci: bootstrapMeanCI(d, { reps, seed: s }),
      p,
      test: t,
      pHolm: NaN,
      supported: false,
      text: "",
    });
  };
  // Family 1: pairs of levels of each factor, matched on all other factors.
  for (const f of factorNames) {
    const lv = levels.get(f)!;
    if (f === seedFactor || lv.length < 2) continue;
    const others = factorNames.filter((g) => g !== f);
    const keyOf = (c: CellFacts) => JSON.stringify(others.map((g) => c.factors[g] ?? ""));
    const byLevel = new Map<string, Map<string, CellFacts>>();
    for (const c of cells) {
      const l = c.factors[f] ?? "";
      if (!byLevel.has(l)) byLevel.set(l, new Map());
      byLevel.get(l)!.set(keyOf(c), c);
    }
    for (let i = 0; i < lv.length; i++) {
      for (let j = i + 1; j < lv.length; j++) {
        const A = byLevel.get(lv[i])!, B = byLevel.get(lv[j])!;
        for (const m of metrics) {
          const a: number[] = [], b: number[] = [];
          for (const [key, ca] of A) {
            const cb = B.get(key);
            const va = ca.metrics[m], vb = cb?.metrics[m];
            if (Number.isFinite(va) && vb !== undefined && Number.isFinite(vb)) {
              a.push(va);
              b.push(vb);
            }
          }
          if (a.length === 0) continue;
          const d = a.map((v, t) => v - b[t]);
          addStatement({
            family: "factor-pair",
            metric: m,
            factor: f,
            levelA: lv[i],
            levelB: lv[j],
            n: d.length,
            meanA: mean(a),
            meanB: mean(b),
            diff: mean(d),
          }, d);
        }
      }
    }
  }
  // Family 2: magnitude rho > 0, per level of the group factor.
  const hasGroup = factorNames.includes(groupFactor);
  const groups = hasGroup ? levels.get(groupFactor)! : [""];
  for (const g of groups) {
    const v = cells.filter((c) => !hasGroup || c.factors[groupFactor] === g)
      .map((c) => c.metrics["rho:magnitude"]).filter((x) => x !== undefined && Number.isFinite(x));
    if (v.length === 0) continue;
    addStatement({
      family: "small-weights",
      metric: "rho:magnitude",
      group: hasGroup ? `${groupFactor}=${g}` : "",
      n: v.length,
      meanA: mean(v),
      meanB: 0,
      diff: mean(v),
    }, v);
  }
  const adj = holm(out.map((s) => s.p));
  for (let i = 0; i < out.length; i++) {
    const s = out[i];
    s.pHolm = adj[i];
    const d = sesoiOf(s.metric);
    const clears = s.diff > 0 ? s.ci[0] > d : s.diff < 0 ? s.ci[1] < -d : false;
    s.supported = s.pHolm < alpha && s.n >= minPairs && clears;
    s.text = `${phrase(s)} ${numbers(s)}`;
  }
  return {
    statements: out,
    supported: out.filter((s) => s.supported),
    unsupported: out.filter((s) => !s.supported),
  };
}
