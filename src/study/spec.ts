/**
 * Study specs: a YAML file that names a set of training runs ("cells") and the analysis each
 * one gets. Everything is validated before any run starts; a bad key or value fails with one
 * line naming the key (and the cell, for factor values).
 *
 * ```yaml
 * name: smoke                      # optional, default: the file's basename
 * factors:                         # TrainConfig keys -> lists of values
 *   activation: [relu, tanh]
 *   seed: [0, 1]
 * train: { dataset: synthetic, hidden: [32, 16], epochs: 2 }   # fixed TrainConfig keys
 * analysis: { evalSamples: 200, maxWeights: 300 }  # AblateOptions; `false` skips the analysis
 * design: grid                     # default; or {cells: [{activation: relu, seed: 0}, ...]}
 * hypotheses:                      # optional, pre-registered (src/study/hypotheses.ts)
 *   - id: H1
 *     statement: training longer raises rho(|w|, |dL|)
 *     source: OBD (LeCun et al. 1989)
 *     metric: { statistic: spearman, score: magnitude, target: absdloss,
 *               layer: fisher-z mean, split: train, epoch: final }
 *     comparison: { factor: epoch, levels: [final, 1] }   # or {value: 0.2}
 *     where: { norm: [none] }        # optional filter on factor levels
 *     by: [norm]                     # optional: one test per level (combination)
 *     converged: true                # optional: only cells stopped by the plateau rule
 *     sesoi: 0.05                    # default
 *     direction: greater
 * ```
 *
 * `analysis.epochs` (e.g. `[1, 3, 10, final]`) analyzes each cell at those epochs as well as at
 * the end: the numbers become the cell's `keepEpochs` (so they are part of its config and id),
 * and the sweep stores one analysis per (cell, epoch).
 *
 * Grid order: the cartesian product of the factors in the order they are written, the LAST
 * factor varying fastest (like nested loops with the first factor outermost). Above that
 * gives cells (relu,0), (relu,1), (tanh,0), (tanh,1) with indices 0..3.
 *
 * Any TrainConfig key can be a factor, `model` included (`model: [mlp, cnn, lstm]`, with the
 * per-model keys such as `convChannels` or `lstmHidden` fixed in `train`; a model ignores the keys
 * of the others). Each cell's model is built on paper from its config (`modelSpecOf`,
 * src/train/model_spec.ts) so that one that does not fit its data fails up front.
 *
 * A cell's config is `withSparsityDefaults({...train, ...factors})` validated by
 * parseTrainConfig; its id is the first 16 hex digits of the SHA-256 of the canonical JSON
 * (sorted keys) of `{train: <full TrainConfig>, analysis: <full AblateOptions or null>}`, so the
 * same cell gets the same id in every study, shard and machine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseStudySpec } from "./spec.ts";
 * const spec = await parseStudySpec({
 *   name: "demo",
 *   factors: { activation: ["relu", "tanh"], seed: [0, 1] },
 *   train: { dataset: "synthetic", hidden: [16], epochs: 1 },
 *   analysis: false,
 * });
 * assert.deepEqual(spec.cells.length, 4);
 * assert.deepEqual(spec.cells[1].factors, { activation: "relu", seed: 1 });
 * ```
 * @module
 */
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { FiligreeError } from "../gpu/errors.ts";
import { parseTrainConfig, type TrainConfig, TrainConfigSchema } from "../train/config.ts";
import { kebabToCamel, parseIntList, withSparsityDefaults } from "../train/run.ts";
import { type AblateOptions, parseAblateOptions } from "../analysis/options.ts";
import { ACTIVATION_NAMES } from "../kernels/activation_ids.ts";
import { modelSpecOf } from "../train/model_spec.ts";
import { weightShapes } from "../nn/models.ts";

/**
 * Features, classes and sample shape of a config's dataset (the image sets: 28×28, one channel).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrainConfig } from "../train/config.ts";
 * import { datasetShape } from "./spec.ts";
 * assert.deepEqual(datasetShape(parseTrainConfig({ dataset: "mnist" })), { features: 784, classes: 10, shape: [28, 28] });
 * ```
 */
export function datasetShape(
  cfg: TrainConfig,
): { features: number; classes: number; shape: number[] } {
  if (cfg.dataset === "synthetic") {
    const f = cfg.syntheticFeatures;
    return { features: f, classes: cfg.syntheticClasses, shape: [f] };
  }
  return { features: 784, classes: 10, shape: [28, 28] };
}

/** One training run of a study. */
export interface StudyCell {
  /** Position in the study's cell list (grid order or design.cells order). */
  index: number;
  /** Stable hash of the full training config + analysis options (16 hex digits). */
  id: string;
  /** This cell's factor values, in factor order. */
  factors: Record<string, unknown>;
  /** The full validated training config. */
  config: TrainConfig;
  /** Analysis options, or null when the study skips the analysis. */
  analysis: AblateOptions | null;
  /** Epochs to analyze besides the final one (`analysis.epochs` without "final"). */
  analysisEpochs: number[];
}

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const epochKey = z.union([z.number().int().positive(), z.literal("final")]);

/** One pre-registered hypothesis (see src/study/hypotheses.ts for how it is tested). */
export const HypothesisSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-'"),
  statement: z.string().min(1),
  /** Where the hypothesis comes from (paper, note), see docs/HYPOTHESES.md. */
  source: z.string().min(1),
  metric: z.object({
    statistic: z.enum([
      "spearman",
      "helpfulFraction",
      "dropPrecision",
      "testAccuracy",
      "agnostic",
    ])
      .default("spearman"),
    /** A score, or a contrast "a - b" of two scores (spearman only). */
    score: z.string().optional(),
    target: z.enum(["dloss", "absdloss", "dacc"]).optional(),
    /**
     * A layer name, "first" / "last" (the cell's first / last analyzed layer), "fisher-z mean"
     * (or "mean"), or "each" (one test per layer).
     */
    layer: z.string().default("fisher-z mean"),
    split: z.enum(["train", "test"]).default("train"),
    epoch: epochKey.default("final"),
    /**
     * spearman only: subtract a second correlation of the same cell, e.g. `{score: magnitude,
     * target: absdloss}` for "signed2 against dloss vs magnitude against absdloss"; unset keys
     * repeat the metric's own.
     */
    minus: z.object({
      score: z.string().optional(),
      target: z.enum(["dloss", "absdloss", "dacc"]).optional(),
      layer: z.string().optional(),
      split: z.enum(["train", "test"]).optional(),
    }).strict().optional(),
    /**
     * spearman only: divide every ρ by its target's attainable ρ (√ split-half ceiling), e.g.
     * to compare a correlation with signed ΔL against one with the more reliable |ΔL|.
     */
    disattenuate: z.boolean().optional(),
    /** agnostic only: weight variant ("signed": sign(w)·s·mean|w|, "shared": s·mean|w|). */
    weights: z.enum(["trained", "shared", "signed"]).optional(),
    /** agnostic only: topology (default the trained one). */
    mask: z.enum(["trained", "degree-matched", "shuffled"]).optional(),
    /**
     * agnostic only: accuracy averaged over the scales ("mean", default), at the best one, or at
     * scale 1 ("scale1": learned signs × the layer's mean |w|).
     */
    over: z.enum(["mean", "best", "scale1"]).optional(),
  }).strict(),
  comparison: z.union([
    z.object({ factor: z.string(), levels: z.tuple([scalar, scalar]) }).strict(),
    z.object({ value: z.number() }).strict(),
  ]),
  /** Only cells whose factor values are among these. */
  where: z.record(z.string(), z.array(scalar).min(1)).optional(),
  /** One test per combination of these factors' levels (each in the Holm family). */
  by: z.array(z.string()).min(1).optional(),
  /** Only cells whose training ended by its stop rule (plateau), i.e. converged ones. */
  converged: z.boolean().optional(),
  /** Smallest effect size of interest, in the metric's units. */
  sesoi: z.number().min(0).default(0.05),
  direction: z.enum(["greater", "less"]),
}).strict();

/** A validated hypothesis. */
export type HypothesisSpec = z.infer<typeof HypothesisSchema>;

/** A validated study. */
export interface StudySpec {
  name: string;
  /** Factor lists as given (keys camelCase); for design.cells: the keys the cells set. */
  factors: Record<string, unknown[]>;
  /** Fixed training keys (camelCase), before merging with the factors. */
  train: Record<string, unknown>;
  analysis: AblateOptions | null;
  design: "grid" | "cells";
  /** Every cell, in order. */
  cells: StudyCell[];
  /** The spec as read (JSON-able), stored in the study store's meta table. */
  source: Record<string, unknown>;
  /** Pre-registered hypotheses (empty when the spec has none). */
  hypotheses: HypothesisSpec[];
  /** `analysis.epochs` as given ("final" included when listed). */
  analysisEpochs: (number | "final")[];
}

const TOP_KEYS = [
  "name",
  "factors",
  "train",
  "analysis",
  "analyze",
  "design",
  "hypotheses",
] as const;
const TRAIN_KEYS = new Set(Object.keys(TrainConfigSchema.shape));
const ACTIVATIONS = new Set<string>([...ACTIVATION_NAMES, "srelu"]);

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function camelKeys(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(obj).map((
      [k, v],
    ) => [kebabToCamel(k), k === "hidden" && typeof v === "string" ? parseIntList(v) : v]),
  );
}

function checkTrainKey(where: string, key: string): void {
  if (key === "out") {
    throw new FiligreeError(`${where}.out: not allowed in a study (the sweep chooses run dirs)`);
  }
  if (!TRAIN_KEYS.has(key)) {
    throw new FiligreeError(
      `${where}.${key}: unknown config key; allowed keys: ${[...TRAIN_KEYS].join(", ")}`,
    );
  }
}

/**
 * JSON with object keys sorted at every level (undefined members dropped).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalJson } from "./spec.ts";
 * assert.deepEqual(canonicalJson({ b: 1, a: { d: [2], c: undefined } }), '{"a":{"d":[2]},"b":1}');
 * ```
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x ?? null)).join(",")}]`;
  if (isMap(v)) {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/**
 * The id of a cell: first 16 hex digits of SHA-256(canonicalJson({train, analysis})).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cellId } from "./spec.ts";
 * import { parseTrainConfig } from "../train/config.ts";
 * assert.deepEqual((await cellId(parseTrainConfig({ epsilon: 20 }), null)).length, 16);
 * ```
 */
export async function cellId(config: TrainConfig, analysis: AblateOptions | null): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson({ train: config, analysis }));
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...h.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Short "key=value key=value" description of a cell's factors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeFactors } from "./spec.ts";
 * assert.deepEqual(describeFactors({ activation: "relu", hidden: [32, 16] }), "activation=relu hidden=32,16");
 * ```
 */
export function describeFactors(f: Record<string, unknown>): string {
  return Object.entries(f).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : v}`).join(
    " ",
  );
}

function sameValue(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function mergeCell(
  train: Record<string, unknown>,
  f: Record<string, unknown>,
): Record<string, unknown> {
  const raw: Record<string, unknown> = { ...train, ...f };
  // A factor's density replaces a fixed epsilon (and vice versa), as flags do over a file.
  if (f.density !== undefined && f.epsilon === undefined) delete raw.epsilon;
  if (f.epsilon !== undefined && f.density === undefined) delete raw.density;
  return withSparsityDefaults(raw);
}

/**
 * Validates a study spec (the parsed YAML) and expands its cells.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseStudySpec } from "./spec.ts";
 * const s = await parseStudySpec({ factors: { seed: [0, 1, 2] }, train: { epochs: 1 } }, "seeds");
 * assert.deepEqual(s.name, "seeds");
 * assert.deepEqual(s.cells.map((c) => c.config.seed), [0, 1, 2]);
 * ```
 */
export async function parseStudySpec(input: unknown, defaultName = "study"): Promise<StudySpec> {
  if (!isMap(input)) throw new FiligreeError("study spec: expected a mapping of keys");
  for (const k of Object.keys(input)) {
    if (!(TOP_KEYS as readonly string[]).includes(k)) {
      throw new FiligreeError(`unknown study key "${k}"; allowed keys: ${TOP_KEYS.join(", ")}`);
    }
  }
  const name = input.name ?? defaultName;
  if (typeof name !== "string" || !/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new FiligreeError(`name: expected letters, digits, ".", "_" or "-", got ${name}`);
  }
  const trainIn = input.train ?? {};
  if (!isMap(trainIn)) throw new FiligreeError("train: expected a mapping of config keys");
  const train = camelKeys(trainIn);
  for (const k of Object.keys(train)) checkTrainKey("train", k);

  const factorsIn = input.factors ?? {};
  if (!isMap(factorsIn)) throw new FiligreeError("factors: expected a mapping key -> list");
  const factors: Record<string, unknown[]> = {};
  for (const [k0, v] of Object.entries(factorsIn)) {
    const k = kebabToCamel(k0);
    checkTrainKey("factors", k);
    if (!Array.isArray(v) || v.length === 0) {
      throw new FiligreeError(`factors.${k}: expected a non-empty list of values`);
    }
    for (let i = 0; i < v.length; i++) {
      for (let j = 0; j < i; j++) {
        if (sameValue(v[i], v[j])) {
          throw new FiligreeError(`factors.${k}: value ${JSON.stringify(v[i])} appears twice`);
        }
      }
    }
    factors[k] = v.map((x) => k === "hidden" && typeof x === "string" ? parseIntList(x) : x);
    if (k in train) {
      throw new FiligreeError(`factors.${k}: also fixed in train; give it in one place only`);
    }
  }

  let analysis: AblateOptions | null;
  let analysisEpochs: (number | "final")[] = [];
  if (input.analysis === false || input.analyze === false) analysis = null;
  else {
    if (input.analyze !== undefined && input.analyze !== true) {
      throw new FiligreeError(`analyze: expected true or false`);
    }
    if (input.analysis !== undefined && input.analysis !== true && !isMap(input.analysis)) {
      throw new FiligreeError("analysis: expected a mapping of analysis options, or false");
    }
    const opts = isMap(input.analysis) ? camelKeys(input.analysis) : {};
    if (opts.epochs !== undefined) {
      const ep = z.array(epochKey).min(1).safeParse(opts.epochs);
      if (!ep.success) {
        throw new FiligreeError(
          `analysis.epochs: expected a list of positive epoch numbers and/or "final", e.g. [1, 3, 10, final]`,
        );
      }
      analysisEpochs = ep.data;
      delete opts.epochs;
    }
    try {
      analysis = parseAblateOptions(opts);
    } catch (e) {
      throw new FiligreeError(`analysis: ${(e as Error).message}`);
    }
  }

  // Factor assignments of every cell.
  const designIn = input.design ?? "grid";
  let assignments: Record<string, unknown>[];
  let design: "grid" | "cells";
  if (designIn === "grid") {
    design = "grid";
    assignments = [{}];
    for (const [k, vals] of Object.entries(factors)) {
      const next: Record<string, unknown>[] = [];
      for (const a of assignments) for (const v of vals) next.push({ ...a, [k]: v });
      assignments = next;
    }
  } else if (isMap(designIn) && Array.isArray(designIn.cells) && designIn.cells.length > 0) {
    design = "cells";
    const extra = Object.keys(designIn).filter((k) => k !== "cells");
    if (extra.length) throw new FiligreeError(`design: unknown key "${extra[0]}"`);
    const declared = Object.keys(factors);
    assignments = designIn.cells.map((c, i) => {
      if (!isMap(c)) throw new FiligreeError(`design.cells[${i}]: expected a mapping`);
      const a = camelKeys(c);
      for (const k of Object.keys(a)) {
        checkTrainKey(`design.cells[${i}]`, k);
        if (k in train) {
          throw new FiligreeError(`design.cells[${i}].${k}: also fixed in train`);
        }
      }
      if (declared.length) {
        // With factors declared, explicit cells are a chosen subset of the grid.
        for (const k of declared) {
          if (!(k in a)) throw new FiligreeError(`design.cells[${i}]: missing factor "${k}"`);
          if (!factors[k].some((v) => sameValue(v, a[k]))) {
            throw new FiligreeError(
              `design.cells[${i}].${k}: ${JSON.stringify(a[k])} is not one of factors.${k}`,
            );
          }
        }
        const undeclared = Object.keys(a).find((k) => !declared.includes(k));
        if (undeclared) {
          throw new FiligreeError(`design.cells[${i}].${undeclared}: not a declared factor`);
        }
        return Object.fromEntries(declared.map((k) => [k, a[k]]));
      }
      return a;
    });
    if (!declared.length) {
      for (const a of assignments) {
        for (const [k, v] of Object.entries(a)) {
          factors[k] ??= [];
          if (!factors[k].some((x) => sameValue(x, v))) factors[k].push(v);
        }
      }
    }
  } else {
    throw new FiligreeError(`design: expected "grid" or {cells: [ {factor: value, ...}, ... ]}`);
  }

  const cells: StudyCell[] = [];
  const seen = new Map<string, number>();
  for (let i = 0; i < assignments.length; i++) {
    const f = assignments[i];
    let config: TrainConfig;
    const where = `cell ${i} (${describeFactors(f) || "no factors"})`;
    const kept = analysis ? analysisEpochs.filter((e): e is number => e !== "final") : [];
    try {
      const raw = mergeCell(train, f);
      if (kept.length) {
        const own = (raw.keepEpochs ?? []) as (number | "final")[];
        raw.keepEpochs = [...new Set([...own, ...kept])];
      }
      config = parseTrainConfig(raw);
    } catch (e) {
      throw new FiligreeError(`${where}: ${(e as Error).message}`);
    }
    if (!ACTIVATIONS.has(config.activation)) {
      throw new FiligreeError(
        `${where}: bad value for "activation": unknown activation "${config.activation}"; ` +
          `allowed: ${[...ACTIVATIONS].join(", ")}`,
      );
    }
    try {
      // The model must fit its data (e.g. a CNN or LSTM needs an image set): say so up front.
      weightShapes(modelSpecOf(config, datasetShape(config)));
    } catch (e) {
      throw new FiligreeError(`${where}: ${(e as Error).message}`);
    }
    const id = await cellId(config, analysis);
    const dup = seen.get(id);
    if (dup !== undefined) {
      throw new FiligreeError(`${where}: same configuration as cell ${dup}`);
    }
    seen.set(id, i);
    cells.push({
      index: i,
      id,
      factors: f,
      config,
      analysis,
      analysisEpochs: kept.filter((e) => e < config.epochs),
    });
  }
  if (cells.length === 0) throw new FiligreeError("study has no cells");
  const hypotheses = parseHypotheses(input.hypotheses, factors, analysis, analysisEpochs);
  const source = JSON.parse(JSON.stringify(input));
  return {
    name,
    factors,
    train,
    analysis,
    design,
    cells,
    source,
    hypotheses,
    analysisEpochs,
  };
}

const PSEUDO_FACTORS = ["epoch", "score", "layer", "mask"];

function parseHypotheses(
  input: unknown,
  factors: Record<string, unknown[]>,
  analysis: AblateOptions | null,
  analysisEpochs: (number | "final")[],
): HypothesisSpec[] {
  if (input === undefined || input === null) return [];
  if (!Array.isArray(input)) throw new FiligreeError("hypotheses: expected a list");
  const out: HypothesisSpec[] = [];
  const epochs = new Set(["final", ...analysisEpochs.map(String)]);
  const level = (v: unknown) => typeof v === "string" ? v : JSON.stringify(v);
  input.forEach((raw, i) => {
    const r = HypothesisSchema.safeParse(raw);
    const where = `hypotheses[${i}]${isMap(raw) && raw.id ? ` (${raw.id})` : ""}`;
    if (!r.success) {
      const is = r.error.issues[0];
      const key = is.path.join(".") || "(hypothesis)";
      if (is.code === "unrecognized_keys") {
        throw new FiligreeError(`${where}: unknown key "${is.keys[0]}"`);
      }
      if (is.code === "invalid_value" && "values" in is) {
        throw new FiligreeError(
          `${where}.${key}: allowed values are ${(is.values as unknown[]).join(", ")}`,
        );
      }
      throw new FiligreeError(`${where}.${key}: ${is.message}`);
    }
    const h = r.data;
    if (out.some((o) => o.id === h.id)) {
      throw new FiligreeError(`${where}: id ${h.id} appears twice`);
    }
    const m = h.metric;
    if (m.statistic !== "testAccuracy" && !analysis) {
      throw new FiligreeError(
        `${where}: metric ${m.statistic} needs an analysis (analysis: false)`,
      );
    }
    const byScore = "factor" in h.comparison && h.comparison.factor === "score";
    if (m.statistic === "spearman" && (m.target === undefined || (!byScore && !m.score))) {
      throw new FiligreeError(`${where}.metric: statistic spearman needs "score" and "target"`);
    }
    if (m.statistic !== "agnostic" && (m.weights ?? m.mask ?? m.over) !== undefined) {
      throw new FiligreeError(`${where}.metric: weights, mask and over are for agnostic only`);
    }
    if (m.minus && m.statistic !== "spearman") {
      throw new FiligreeError(`${where}.metric.minus: only for statistic spearman`);
    }
    if (m.disattenuate && m.statistic !== "spearman") {
      throw new FiligreeError(`${where}.metric.disattenuate: only for statistic spearman`);
    }
    const scoreNames = [m.score, m.minus?.score].filter((x) => x !== undefined).join(" - ");
    if (scoreNames) {
      for (const sc of scoreNames.split(/\s+-\s+/)) {
        if (!analysis?.scores.includes(sc as never)) {
          throw new FiligreeError(
            `${where}.metric.score: "${sc}" is not one of the analysis scores (${
              analysis?.scores.join(", ") ?? "none"
            })`,
          );
        }
      }
    }
    if (!epochs.has(String(m.epoch))) {
      throw new FiligreeError(
        `${where}.metric.epoch: ${m.epoch} is not analyzed (analysis.epochs: ${
          [...epochs].join(", ")
        })`,
      );
    }
    const c = h.comparison;
    if ("factor" in c) {
      if (c.factor === "seed") {
        throw new FiligreeError(`${where}: the seed is matched, not compared`);
      }
      if (c.factor === "epoch") {
        for (const l of c.levels) {
          if (!epochs.has(String(l))) {
            throw new FiligreeError(
              `${where}.comparison.levels: epoch ${l} is not analyzed (analysis.epochs: ${
                [...epochs].join(", ")
              })`,
            );
          }
        }
      } else if (c.factor === "score") {
        for (const l of c.levels) {
          if (!analysis?.scores.includes(String(l) as never)) {
            throw new FiligreeError(`${where}.comparison.levels: "${l}" is not an analysis score`);
          }
        }
      } else if (c.factor === "mask") {
        if (m.statistic !== "agnostic") {
          throw new FiligreeError(`${where}.comparison: factor mask needs statistic agnostic`);
        }
        for (const l of c.levels) {
          if (!["trained", "degree-matched", "shuffled"].includes(String(l))) {
            throw new FiligreeError(
              `${where}.comparison.levels: "${l}" is not a mask (trained, degree-matched, shuffled)`,
            );
          }
        }
      } else if (c.factor === "layer") {
        if (m.statistic === "testAccuracy" || m.statistic === "agnostic") {
          throw new FiligreeError(`${where}.comparison: factor layer needs a per-layer metric`);
        }
      } else {
        const f = kebabToCamel(c.factor);
        if (!(f in factors)) {
          throw new FiligreeError(
            `${where}.comparison.factor: "${c.factor}" is not a factor (factors: ${
              [...Object.keys(factors), ...PSEUDO_FACTORS].join(", ")
            })`,
          );
        }
        for (const l of c.levels) {
          if (!factors[f].some((v) => level(v) === level(l))) {
            throw new FiligreeError(
              `${where}.comparison.levels: ${l} is not a level of ${f} (${factors[f].join(", ")})`,
            );
          }
        }
        c.factor = f;
      }
      if (level(c.levels[0]) === level(c.levels[1])) {
        throw new FiligreeError(`${where}.comparison.levels: compare two different levels`);
      }
    }
    if (h.by) {
      h.by = h.by.map((b) => {
        const f = kebabToCamel(b);
        if (!(f in factors) || f === "seed") {
          throw new FiligreeError(`${where}.by: "${b}" is not a factor other than the seed`);
        }
        if ("factor" in c && c.factor === f) {
          throw new FiligreeError(`${where}.by: "${b}" is the compared factor`);
        }
        return f;
      });
    }
    if (h.where) {
      const w: Record<string, (string | number | boolean)[]> = {};
      for (const [k0, vs] of Object.entries(h.where)) {
        const k = kebabToCamel(k0);
        if (!(k in factors)) throw new FiligreeError(`${where}.where.${k0}: not a factor`);
        w[k] = vs;
      }
      h.where = w;
    }
    out.push(h);
  });
  return out;
}

/**
 * Reads and validates a study spec file (YAML or JSON); the default name is the file's basename.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readStudySpec } from "./spec.ts";
 * const spec = await readStudySpec("studies/smoke.yaml"); // relative to the repository root
 * assert.deepEqual([spec.name, spec.cells.length], ["smoke", 8]);
 * ```
 */
export async function readStudySpec(path: string): Promise<StudySpec> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    throw new FiligreeError(`cannot read study file ${path}`);
  }
  let obj: unknown;
  try {
    obj = parseYaml(text);
  } catch (e) {
    throw new FiligreeError(`${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  const base = path.split(/[\\/]/).pop()!.replace(/\.(ya?ml|json)$/i, "");
  try {
    return await parseStudySpec(obj, base);
  } catch (e) {
    if (e instanceof FiligreeError) throw new FiligreeError(`${path}: ${e.message}`);
    throw e;
  }
}
