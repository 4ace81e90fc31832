/**
 * The analysis summary: what `deno task ablate` writes to `RUN_DIR/analysis/summary.json` and
 * what the study store keeps per cell (column `analysis`). The report reads only this shape.
 *
 * @example
 * ```ts
 * import { ANALYSIS_FORMAT, type AnalysisSummary } from "./summary.ts";
 * const s: Partial<AnalysisSummary> = { format: ANALYSIS_FORMAT };
 * console.log(s.format); // "filigree-analysis-1"
 * ```
 * @module
 */

/** Format tag of summary.json. */
export const ANALYSIS_FORMAT = "filigree-analysis-1";

/** The importance scores Filigree computes (plus the controls used by the curves). */
export const SCORE_NAMES = [
  "magnitude",
  "snip",
  "taylor",
  "obd",
  "grasp",
  "synflow",
  "wanda",
  "random",
] as const;
/** One importance score name. */
export type ScoreName = typeof SCORE_NAMES[number];

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
  /** Evaluation subset: size, the split it came from and the seed that chose it. */
  evalSet: { split: "test" | "train"; samples: number; seed: number };
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
}
