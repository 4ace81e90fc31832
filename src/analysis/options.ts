/**
 * Options of an analysis (`deno task ablate`, the study spec's `analysis` block, the library).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAblateOptions } from "./options.ts";
 * const o = parseAblateOptions({ evalSamples: 500, scores: ["magnitude", "snip"] });
 * assert.deepEqual(o.evalSamples, 500);
 * assert.deepEqual(o.splits, [ "train", "test" ]);
 * assert.deepEqual(o.curves, true);
 * ```
 * @module
 */
import { z } from "zod";
import { FiligreeError } from "../gpu/errors.ts";
import { SCORE_NAMES } from "./summary.ts";

/** Every analysis option, with defaults. */
export const AblateOptionsSchema = z.object({
  /** Importance scores to compute (default: all). */
  scores: z.array(z.enum(SCORE_NAMES)).min(1).default([...SCORE_NAMES]),
  /**
   * Size of the seeded evaluation set of each split (both halves together); the whole split
   * when it is smaller. Default 5,000 (docs/IMPORTANCE-PROTOCOL.md).
   */
  evalSamples: z.number().int().min(2).default(5000),
  /**
   * Splits measured, each with its own evaluation set and split-half reliability: "train" (the
   * oracle: importance for what the network learned) and "test" (generalization). The first one
   * also fills the legacy summary fields.
   */
  splits: z.array(z.enum(["train", "test"])).min(1).refine(
    (a) => new Set(a).size === a.length,
    "a split is listed twice",
  ).default(["train", "test"]),
  /** Smallest effect size of interest (Δρ), recorded in the protocol for the hypotheses. */
  sesoi: z.number().positive().max(1).optional(),
  /** Weight layers to analyze (default: all). */
  layers: z.array(z.string()).optional(),
  /** Most single-weight ablations per layer; above it a magnitude-stratified sample is used. */
  maxWeights: z.number().int().positive().default(20000),
  /** Also ablate every hidden unit. */
  units: z.boolean().default(false),
  /** Group-ablation curves (global scope, every score plus controls). */
  curves: z.boolean().default(true),
  /**
   * Per-layer curves as well as the global one (off by default: they quadruple the curves' cost
   * on a 3-layer MLP and no report statistic uses them; docs/IMPORTANCE-PROTOCOL.md §8).
   */
  curveLayers: z.boolean().default(false),
  /** Bootstrap resamples of the correlation intervals. */
  bootstrapReps: z.number().int().min(10).default(200),
  /** Fine-tune steps after group removal (0 = none). */
  finetuneSteps: z.number().int().min(0).default(0),
  /**
   * Seed of the evaluation sets and halves, the weight sample, bootstrap and the random score.
   * Absent: the run's training seed (so every cell of a study gets its own evaluation sample).
   */
  seed: z.number().int().min(0).optional(),
  /** Write SVG/PNG plots. */
  plots: z.boolean().default(true),
  /**
   * Also evaluate the final checkpoint weight-agnostically (src/analysis/agnostic.ts: shared and
   * sign-only weights on the trained, a degree-matched random and a shuffled topology) and store
   * the result in the summary's `agnostic` field. Absent = off (and absent leaves cell ids as
   * they were).
   */
  agnostic: z.boolean().optional(),
  /** GPU memory budget for one batch of ablations (MB). */
  budgetMB: z.number().positive().default(256),
  /**
   * Most evaluation samples one probe holds (default: as many as the device's storage binding
   * allows, `maxProbeSamples`); a larger evaluation set is ablated in shards, recombined exactly,
   * and its scores, units and curves use a stratified subset of this size. Absent leaves cell ids
   * as they were.
   */
  probeSamples: z.number().int().min(4).optional(),
}).strict();

/** Validated analysis options. */
export type AblateOptions = z.infer<typeof AblateOptionsSchema>;

/** Validates analysis options with a one-line error naming the key. */
export function parseAblateOptions(input: unknown): AblateOptions {
  const r = AblateOptionsSchema.safeParse(input ?? {});
  if (!r.success) {
    const i = r.error.issues[0];
    const key = i.path.filter((p) => typeof p !== "number").join(".") || "(options)";
    if (i.code === "unrecognized_keys") {
      throw new FiligreeError(
        `unknown analysis key ${i.keys.map((k) => `"${k}"`).join(", ")}; allowed keys: ${
          Object.keys(AblateOptionsSchema.shape).join(", ")
        }`,
      );
    }
    if (i.code === "invalid_value" && "values" in i) {
      throw new FiligreeError(
        `bad value for "${key}": allowed values are ${(i.values as unknown[]).join(", ")}`,
      );
    }
    throw new FiligreeError(`bad value for "${key}": ${i.message}`);
  }
  return r.data;
}
