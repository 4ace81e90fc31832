/**
 * Findings: the general rules a study's data supports, generated (never hand-written) from its
 * pre-registered hypotheses (src/study/hypotheses.ts). A rule is a confirmed hypothesis; for each
 * the pooled effect with its interval and test (the same numbers as the report: Holm over the
 * whole family), then how robust it is: its effect in every replicate (seed), every layer (for a
 * metric pooled over layers), every analysed epoch (unless the comparison is over epochs), and in
 * every level of every other factor — and the slices where it did NOT hold (the oriented effect
 * not beyond the smallest effect of interest). Refuted and inconclusive hypotheses follow, each
 * with its effect and the engine's reason. No rule without a test behind it.
 *
 * Slices are descriptive: each re-runs the hypothesis's pairing on a subset of the cells (or with
 * the metric moved to one layer / epoch) and reports the mean paired difference and its n; they
 * are not tested again (no further multiplicity).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findings } from "./findings.ts";
 * const cells = [0, 1, 2, 3, 4, 5].flatMap((seed) =>
 *   ["relu", "tanh"].flatMap((activation) =>
 *     ["none", "batch"].map((norm) => ({
 *       factors: { activation, norm, seed: String(seed) },
 *       // tanh beats relu by 0.05 without norm, by 0.001 under batch norm.
 *       accuracy: { final: 0.9 + (activation === "tanh" ? (norm === "none" ? 0.05 : 0.001) : 0) },
 *       analyses: {},
 *     }))
 *   )
 * );
 * const [f] = findings(cells, [{
 *   id: "A", statement: "tanh beats relu", source: "test",
 *   metric: { statistic: "testAccuracy", layer: "fisher-z mean", split: "train", epoch: "final" },
 *   comparison: { factor: "activation", levels: ["tanh", "relu"] },
 *   sesoi: 0.01, direction: "greater",
 * }]);
 * assert.deepEqual(f.result.verdict, "confirmed");
 * assert.deepEqual(f.seeds.length, 6);
 * assert.deepEqual(f.conditions.filter((s) => !s.holds).map((s) => s.label), ["norm=batch"]);
 * ```
 * @module
 */
import {
  describeResult,
  type HypothesisCell,
  type HypothesisOptions,
  type HypothesisResult,
  testHypotheses,
} from "./hypotheses.ts";
import type { HypothesisSpec } from "./spec.ts";

/** The effect of a hypothesis on one slice of the data. */
export interface Slice {
  /** "seed=2", "fc1", "epoch 10", "norm=batch". */
  label: string;
  /** Pairs (or cells, against a value) in the slice. */
  n: number;
  /** Mean paired difference (in the metric's units, as the hypothesis states it). */
  effect: number;
  /** Whether the effect, oriented to the predicted direction, lies beyond the SESOI. */
  holds: boolean;
}

/** A tested hypothesis with its robustness slices. */
export interface Finding {
  spec: HypothesisSpec;
  /** Pooled over every cell, tested and Holm-corrected with the whole family. */
  result: HypothesisResult;
  seeds: Slice[];
  layers: Slice[];
  epochs: Slice[];
  conditions: Slice[];
}

const POOLED = new Set(["fisher-z mean", "mean"]);

function layerNames(cells: HypothesisCell[]): string[] {
  const out: string[] = [];
  for (const c of cells) {
    for (const a of Object.values(c.analyses)) {
      for (const r of a?.agreement2 ?? []) {
        if (!POOLED.has(r.layer) && !out.includes(r.layer)) out.push(r.layer);
      }
    }
  }
  return out;
}

/** The analysed epochs: numbered ones besides the final (kept epochs), then "final". */
function epochKeys(cells: HypothesisCell[]): string[] {
  const keys = new Set<string>();
  let final = false;
  for (const c of cells) {
    for (const [k, a] of Object.entries(c.analyses)) {
      if (k === "final") final = true;
      // The final analysis is also stored under its epoch number: not a kept epoch.
      else if (a !== c.analyses.final) keys.add(k);
    }
  }
  const nums = [...keys].map(Number).sort((a, b) => a - b);
  return [...nums.map(String), ...(final ? ["final"] : [])];
}

/**
 * Every hypothesis tested on all cells (as the report does), and for those tested as a whole
 * (no `by`, no `layer: each`) its slices by seed, layer, epoch and factor level.
 */
export function findings(
  cells: HypothesisCell[],
  hypotheses: HypothesisSpec[],
  opts: HypothesisOptions = {},
): Finding[] {
  const seedFactor = opts.seedFactor ?? "seed";
  const pooled = testHypotheses(cells, hypotheses, opts);
  const sliceOpts = { ...opts, reps: 200 };
  const effectOf = (sub: HypothesisCell[], h: HypothesisSpec, label: string): Slice | null => {
    const rs = testHypotheses(sub, [h], sliceOpts);
    if (rs.length !== 1 || rs[0].n === 0) return null;
    const s = h.direction === "greater" ? 1 : -1;
    return { label, n: rs[0].n, effect: rs[0].effect, holds: s * rs[0].effect > h.sesoi };
  };
  const keep = <T>(xs: (T | null)[]) => xs.filter((x): x is T => x !== null);
  const layers = layerNames(cells);
  const epochs = epochKeys(cells);
  const out: Finding[] = [];
  for (const h of hypotheses) {
    const results = pooled.filter((r) => r.id === h.id || r.id.startsWith(`${h.id}[`));
    const whole = !h.by && h.metric.layer !== "each" && results.length === 1;
    if (!whole) {
      // Expanded per layer / group: each tested result on its own, without slices.
      for (const result of results) {
        out.push({ spec: h, result, seeds: [], layers: [], epochs: [], conditions: [] });
      }
      continue;
    }
    const f: Finding = {
      spec: h,
      result: results[0],
      seeds: [],
      layers: [],
      epochs: [],
      conditions: [],
    };
    out.push(f);
    const cmpFactor = "factor" in h.comparison ? h.comparison.factor : null;
    const seeds = [...new Set(cells.map((c) => c.factors[seedFactor]))].filter((x) =>
      x !== undefined
    );
    f.seeds = keep(
      seeds.map((s) =>
        effectOf(cells.filter((c) => c.factors[seedFactor] === s), h, `${seedFactor}=${s}`)
      ),
    );
    const st = h.metric.statistic;
    if (
      POOLED.has(h.metric.layer) && cmpFactor !== "layer" &&
      (st === "spearman" || st === "helpfulFraction" || st === "dropPrecision")
    ) {
      f.layers = keep(layers.map((l) => {
        const minus = h.metric.minus &&
          { ...h.metric.minus, layer: h.metric.minus.layer ?? l };
        return effectOf(cells, { ...h, metric: { ...h.metric, layer: l, minus } }, l);
      }));
    }
    if (cmpFactor !== "epoch" && st !== "agnostic") {
      f.epochs = keep(epochs.map((e) =>
        effectOf(
          cells,
          { ...h, metric: { ...h.metric, epoch: e === "final" ? "final" : Number(e) } },
          e === "final" ? "final" : `epoch ${e}`,
        )
      ));
    }
    const factors = [...new Set(cells.flatMap((c) => Object.keys(c.factors)))].filter((k) =>
      k !== seedFactor && k !== cmpFactor
    );
    for (const k of factors) {
      const levels = [...new Set(cells.map((c) => c.factors[k]))].filter((x) => x !== undefined);
      if (levels.length < 2) continue;
      f.conditions.push(
        ...keep(
          levels.map((v) => effectOf(cells.filter((c) => c.factors[k] === v), h, `${k}=${v}`)),
        ),
      );
    }
  }
  return out;
}

const sgn = (x: number, d = 3) => (x >= 0 ? "+" : "−") + Math.abs(x).toFixed(d);

function range(slices: Slice[]): string {
  if (!slices.length) return "";
  const e = slices.map((s) => s.effect);
  return `${sgn(Math.min(...e))} to ${sgn(Math.max(...e))}`;
}

function sliceLine(name: string, slices: Slice[]): string | null {
  if (!slices.length) return null;
  const parts = slices.map((s) => `${s.label} ${sgn(s.effect)} (n=${s.n})${s.holds ? "" : "†"}`);
  return `- ${name}: ${range(slices)} — ${parts.join(", ")}.`;
}

/** Where the study's evidence comes from, for the header. */
export interface FindingsSource {
  /** The command that generated the file. */
  command: string;
  /** The commit of the code that generated it, and of the code the store was filled by. */
  commit: string;
  storeCommit?: string;
  /** Cells in the store, and the spec's total. */
  cells: number;
  planned?: number;
  /** Factor levels present in the store ("activation: relu, tanh"). */
  scope: string[];
  generatedAt: string;
}

/**
 * FINDINGS.md from {@link findings}: rules (confirmed hypotheses) with their slices, then the
 * refuted and the inconclusive ones. "†" marks a slice where the rule did not hold.
 */
export function findingsMarkdown(fs: Finding[], src: FindingsSource): string {
  const L: string[] = [
    "# Findings: rules the data supports",
    "",
    `Generated by \`${src.command}\` (commit ${src.commit}) at ${src.generatedAt} from ` +
    `**${src.cells} cells**${
      src.planned ? ` of the ${src.planned} planned` : ""
    } in the study store` +
    `${
      src.storeCommit ? ` (last written by code at commit ${src.storeCommit})` : ""
    }. Do not edit: ` +
    "regenerate.",
    "",
    "Only pre-registered hypotheses (docs/HYPOTHESES.md) with a test behind them. A rule is a " +
    "confirmed hypothesis: pooled effect (mean paired difference over cells matched in every " +
    "other factor and the seed) with its 95 % bootstrap interval, test and Holm-corrected p over " +
    "the whole family — the numbers of the generated report. Below each, the same difference in " +
    "every seed, layer, analysed epoch and factor level (descriptive, not re-tested); **†** marks " +
    "a slice where the effect does not reach the smallest effect of interest (SESOI) in the " +
    "predicted direction: the rule did not hold there.",
    "",
    "**Scope.** The cells in the store cover:",
    "",
    ...src.scope.map((s) => `- ${s}`),
    "",
    "Nothing is claimed beyond these levels (other datasets, architectures, densities, methods).",
    "",
  ];
  const confirmed = fs.filter((f) => f.result.verdict === "confirmed");
  const refuted = fs.filter((f) => f.result.verdict === "refuted");
  const rest = fs.filter((f) => f.result.verdict === "inconclusive");
  confirmed.forEach((f, i) => {
    const r = f.result;
    L.push(`## Rule ${i + 1} (${f.spec.id}): ${f.spec.statement}`, "");
    L.push(`- Source: ${f.spec.source}.`);
    L.push(
      `- ${r.metricText}, ${r.comparisonText}: **${sgn(r.effect)} [${sgn(r.ci[0])}, ${
        sgn(r.ci[1])
      }]** (SESOI ${f.spec.sesoi}, predicted ${f.spec.direction}), n=${r.n}, ${
        describeResult(r).replace(/^.*\], n=\d+, /, "")
      }.`,
    );
    for (
      const line of [
        sliceLine("Across seeds", f.seeds),
        sliceLine("Across layers", f.layers),
        sliceLine("Across epochs", f.epochs),
        sliceLine("By condition", f.conditions),
      ]
    ) if (line) L.push(line);
    const failed = [...f.seeds, ...f.layers, ...f.epochs, ...f.conditions].filter((s) => !s.holds);
    L.push(
      failed.length
        ? `- **Did not hold** in: ${failed.map((s) => s.label).join(", ")}.`
        : "- Held in every slice tested.",
    );
    L.push("");
  });
  if (!confirmed.length) L.push("No hypothesis is confirmed yet: no rule.", "");
  const list = (title: string, xs: Finding[]) => {
    if (!xs.length) return;
    L.push(`## ${title}`, "");
    for (const f of xs) {
      L.push(
        `- **${f.result.id}** (${f.spec.statement}): ${
          describeResult(f.result)
        }. ${f.result.reason}`,
      );
    }
    L.push("");
  };
  list("Refuted", refuted);
  list("Inconclusive", rest);
  return L.join("\n");
}
