/**
 * The analysis summary: what `deno task ablate` writes to `RUN_DIR/analysis/summary.json` and
 * what the study store keeps per cell (column `analysis`). The report reads only this shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ANALYSIS_FORMAT, type AnalysisSummary } from "./summary.ts";
 * const s: Partial<AnalysisSummary> = { format: ANALYSIS_FORMAT };
 * assert.deepEqual(s.format, "filigree-analysis-1");
 * ```
 * @module
 */
import type { AgnosticReport } from "./agnostic.ts";

/** Format tag of summary.json. */
export const ANALYSIS_FORMAT = "filigree-analysis-1";

/** Version of the importance protocol (docs/IMPORTANCE-PROTOCOL.md) a summary follows. */
export const PROTOCOL_VERSION = 2;

/**
 * The importance scores Filigree computes (plus the controls used by the curves). Every score
 * is an importance: larger = keep. The signed ones (`signed1`, `signed2`, `signed2h`) predict
 * the signed Δloss of removing the weight; the others are unsigned.
 */
export const SCORE_NAMES = [
  "magnitude",
  "snip",
  "taylor",
  "obd",
  "grasp",
  "synflow",
  "wanda",
  "random",
  "effmag",
  "signed1",
  "signed2",
  "signed2h",
] as const;
/** One importance score name. */
export type ScoreName = typeof SCORE_NAMES[number];

/**
 * Scores that predict signed Δloss (first order `-g·w`, second order `-g·w + ½F·w²` with the
 * empirical Fisher, `-g·w + ½H_ii·w²` with the exact Hessian diagonal); every other score is
 * unsigned and is compared with |Δloss|.
 */
export const SIGNED_SCORES: readonly ScoreName[] = ["signed1", "signed2", "signed2h"];

/**
 * Scores left out of agreement statistics and charts because another kept score ranks weights
 * identically: taylor `(w·g)²` is the square of snip `|w·g|`, a monotone map, so every rank
 * statistic is the same. The score itself is still computed and stored.
 */
export const RANK_DUPLICATES: Readonly<Partial<Record<ScoreName, ScoreName>>> = { taylor: "snip" };

/** Ablation targets: signed Δloss, |Δloss|, and the accuracy lost (-Δaccuracy). */
export type Target = "dloss" | "absdloss" | "dacc";
/** Evaluation splits of the oracle. */
export type SplitName = "train" | "test";

/** The evaluation set of one split: size, seed, and whether it is the whole split. */
export interface ProtocolSplit {
  /** Samples actually used (both halves together). */
  samples: number;
  /** Seed that drew the sample and the halves. */
  seed: number;
  /** Samples asked for (`samples` is smaller when the split is smaller). */
  requested: number;
  /** Sizes of the two disjoint halves of the split-half reliability. */
  halves: [number, number];
  /** Unablated loss and accuracy on this evaluation set. */
  baseline: { loss: number; accuracy: number };
  /**
   * Present when the device could not hold one probe of the whole set (`samples` above
   * `maxProbeSamples`, analysis/probe.ts): the ablation ran in `shards` probes of at most
   * `shardSamples` samples and was recombined exactly (as the baseline), while the scores, unit
   * ablation and removal curves used one stratified subset of `probeSamples` samples.
   */
  sharded?: { shards: number; shardSamples: number; probeSamples: number };
}

/** The measurement protocol of a summary (docs/IMPORTANCE-PROTOCOL.md). */
export interface Protocol {
  version: typeof PROTOCOL_VERSION;
  splits: Partial<Record<SplitName, ProtocolSplit>>;
  /** Smallest effect size of interest (Δρ) the analysis was set up for, when given. */
  sesoi?: number;
  /** How the cross-layer row is formed ("fisher-z mean, unweighted over layers"). */
  layerSummary: string;
  /** Scores left out of agreement2 as rank duplicates: {dropped: kept}. */
  rankDuplicates: Partial<Record<ScoreName, ScoreName>>;
  /** The split the group-ablation curves were measured on. */
  curvesSplit?: SplitName;
  /** Scores requested but not computable for this model, with the reason. */
  skippedScores?: Partial<Record<ScoreName, string>>;
}

/**
 * One per-layer (or cross-layer) correlation of a score with an ablation target, with the
 * target's noise ceiling.
 */
export interface Agreement2Row {
  split: SplitName;
  /** Layer name, or "fisher-z mean" (unweighted mean of the layers' Fisher z, back-transformed). */
  layer: string;
  score: string;
  target: Target;
  /** Spearman ρ of the score with the target (for "dacc": with the accuracy lost, -Δacc). */
  spearman: number;
  /** 95 % interval: bootstrap over weights per layer; for the mean row, normal in Fisher z. */
  ci: [number, number];
  /** Weights (per layer) or layers (mean row). */
  n: number;
  /** Spearman-Brown corrected split-half reliability of the target: 2r/(1+r). */
  ceiling: number;
  /** Split-half Spearman r of the target between the two disjoint halves. */
  halfReliability: number;
  /** √max(0, ceiling): the correlation a noise-free predictor of the true target could reach. */
  attainable: number;
  /** The designated pairing: signed scores with dloss, unsigned with absdloss; dacc for all. */
  primary: boolean;
}

/** Per split and layer: how removals act on the loss, and the topology rule's precision. */
export interface LayerFact2Row {
  split: SplitName;
  layer: string;
  /** Fraction of ablated weights whose removal lowers this split's loss. */
  helpfulFraction: number;
  /**
   * Of the weights the run's topology rule would drop next (SET: fraction zeta of positive and
   * of negative weights closest to zero; RigL/prune/static/dense: the smallest-|w| fraction), the
   * share in the least-important fifth by |Δloss| of this split (chance 0.2). Only over
   * ablated weights; absent when fewer than 5 of them would be dropped.
   */
  dropPrecision?: number;
  /** Dropped weights (ablated ones) that dropPrecision is measured on. */
  dropCount?: number;
  /** The fraction the drop rule used (zeta for SET/RigL, else the documented default). */
  dropFraction?: number;
  /** Ablated weights of the layer. */
  nAblated: number;
  /** Split-half reliabilities of the three targets in this layer (raw r and Spearman-Brown). */
  reliability: Record<Target, { half: number; ceiling: number }>;
}

/** A value with a bootstrap confidence interval. */
export interface Estimate {
  value: number;
  /** 95 % percentile-bootstrap interval [lo, hi]. */
  ci: [number, number];
}

/** Agreement of one score with single-weight ablation Δloss, over one scope. */
export interface Agreement {
  score: ScoreName;
  /** "all" (every ablated weight) or a layer name ("fc1", ...). */
  scope: string;
  /** Number of (score, Δloss) pairs. */
  n: number;
  spearman: Estimate;
  kendall: Estimate;
  /** Of the 10 % lowest-scored weights, the fraction that are among the 10 % lowest Δloss. */
  precisionLeast10: number;
  /** Of the 10 % highest-scored weights, the fraction that are among the 10 % highest Δloss. */
  precisionMost10: number;
}

/** One point of a group-ablation curve. */
export interface CurvePoint {
  /** Fraction of the scope's weights removed (0.1 ... 0.99). */
  fraction: number;
  accuracy: number;
  loss: number;
}

/** Accuracy after removing the lowest-scored weights, by fraction. */
export interface Curve {
  /** A score, or a control: "random" and "magnitude-desc" (largest magnitude first). */
  score: string;
  /** "global" or a layer name (per-layer removal). */
  scope: string;
  /** Fine-tune steps after removal (0 = none). */
  finetuneSteps: number;
  points: CurvePoint[];
}

/** Summary statistics of a group of Δloss values. */
export interface GroupStats {
  n: number;
  meanDeltaLoss: number;
  medianDeltaLoss: number;
  /** Fraction with negative Δloss (removal helps). */
  helpful: number;
}

/** Per weight layer facts. */
export interface LayerSummary {
  name: string;
  nIn: number;
  nOut: number;
  nnz: number;
  /** Weights of this layer that got a single-weight ablation. */
  ablated: number;
  /** Histogram of log10|w| over all nonzeros: bin edges (length bins+1) and counts. */
  magnitudeHistogram: { log10Edges: number[]; counts: number[] };
  /** Fraction of ablated weights whose removal lowers the loss. */
  helpful: number;
  /** Grown (born_step > 0) vs surviving-from-initialization weights; absent for dense/static. */
  grown?: GroupStats;
  surviving?: GroupStats;
  /** Spearman of Δloss with connection age (steps since grown), when there are grown weights. */
  ageSpearman?: number;
  /** Spearman of Δloss with the fan-in of the output unit / fan-out of the input unit. */
  fanInSpearman: number;
  fanOutSpearman: number;
}

/** Unit ablation: one hidden unit removed. */
export interface UnitSummary {
  layer: string;
  units: number;
  meanDeltaLoss: number;
  helpful: number;
  /** Spearman of unit Δloss with the L2 norm of its incoming weights. */
  normSpearman: number;
}

/** The whole summary.json. */
export interface AnalysisSummary {
  format: typeof ANALYSIS_FORMAT;
  run: string;
  seed: number;
  /**
   * Evaluation set of the legacy fields (`baseline`, `agreement`, `layers`, `helpful`): the
   * first split of the protocol (train by default), both halves together.
   */
  evalSet: { split: SplitName; samples: number; seed: number };
  baseline: { loss: number; accuracy: number };
  scores: ScoreName[];
  layers: LayerSummary[];
  /** Fraction of all ablated weights whose removal lowers the loss. */
  helpful: number;
  agreement: Agreement[];
  curves: Curve[];
  units?: UnitSummary[];
  /** Seconds spent: scores, single-weight ablation, curves, units. */
  seconds: Record<string, number>;
  /** Single-weight ablations per second measured in this run. */
  ablationsPerSecond: number;
  /** The measurement protocol (version 2 and up). */
  protocol?: Protocol;
  /** Per-layer correlations with noise ceilings, plus the Fisher-z mean rows. */
  agreement2?: Agreement2Row[];
  /** Per split and layer: helpful fraction, drop precision, reliability. */
  layerFacts2?: LayerFact2Row[];
  /**
   * Weight-agnostic evaluation of the analyzed checkpoint (analysis option `agnostic`; the study
   * sweep runs it on the final checkpoint only): {@link AgnosticReport} of src/analysis/agnostic.ts.
   */
  agnostic?: AgnosticReport;
}
