/**
 * Fixtures shared by the study tests (hypotheses_test.ts, agnostic_study_test.ts, sweep_test.ts):
 * a stand-in analysis summary for fake analyzers, a study-store cell row with fixed filler
 * fields, and one per-layer agreement row of a synthetic analysis.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { agreementRow, cellRow } from "./_fixtures.ts";
 * const c = cellRow({ cell_id: "c0", study: "s", cell_index: 0, factors: "{}", analysis: null });
 * assert.equal(c.run_dir, "/nowhere");
 * assert.deepEqual(agreementRow({ layer: "fc1", score: "magnitude", spearman: 0.5 }).ci, [0.48, 0.52]);
 * ```
 * @module
 */
import type { AblateOptions } from "../../src/analysis/options.ts";
import { ANALYSIS_FORMAT, type AnalysisSummary } from "../../src/analysis/summary.ts";
import type { CellRow } from "../../src/study/schema.ts";

/** An empty analysis summary of run `dir` (what a fake `Analyzer` returns). */
export function stubAnalysis(dir: string, opts: AblateOptions): AnalysisSummary {
  return {
    format: ANALYSIS_FORMAT,
    run: dir,
    seed: opts.seed ?? 0,
    evalSet: { split: opts.splits[0], samples: opts.evalSamples, seed: opts.seed ?? 0 },
    baseline: { loss: 0, accuracy: 0 },
    scores: opts.scores,
    layers: [],
    helpful: 0,
    agreement: [],
    curves: [],
    seconds: {},
    ablationsPerSecond: 0,
  };
}

/** A finished cell: the given fields, the rest fixed filler (accuracy 0.97, 10 epochs, …). */
export function cellRow(
  c: Pick<CellRow, "cell_id" | "study" | "cell_index" | "factors" | "analysis"> & Partial<CellRow>,
): CellRow {
  return {
    config: "{}",
    run_dir: "/nowhere",
    test_accuracy: 0.97,
    test_loss: 0.1,
    train_accuracy: 0.99,
    train_loss: 0.05,
    epochs: 10,
    train_seconds: 1,
    step_ms: 1,
    nnz: 10,
    dense_weights: 100,
    param_bytes: 120,
    analysis_seconds: 2,
    adapter: "test",
    filigree_version: "test",
    finished_at: "2026-01-01T00:00:00Z",
    stopped: null,
    ...c,
  };
}

/**
 * One `agreement2` row of a synthetic analysis (train split, primary): Spearman `spearman` with
 * the interval ±0.02, over `n` (500) weights; target `absdloss`, attainable 0.95 and ceiling
 * attainable² unless given.
 */
export function agreementRow(r: {
  layer: string;
  score: string;
  spearman: number;
  target?: string;
  n?: number;
  attainable?: number;
  ceiling?: number;
}): { spearman: number; score: string } & Record<string, unknown> {
  const attainable = r.attainable ?? 0.95;
  return {
    split: "train",
    layer: r.layer,
    score: r.score,
    target: r.target ?? "absdloss",
    spearman: r.spearman,
    ci: [r.spearman - 0.02, r.spearman + 0.02],
    n: r.n ?? 500,
    ceiling: r.ceiling ?? attainable ** 2,
    halfReliability: 0.82,
    attainable,
    primary: true,
  };
}
