/**
 * The training configuration: one schema for CLI flags, YAML config files and the library API.
 * Unknown keys and bad values fail with a one-line error naming the key and the allowed values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrainConfig } from "./config.ts";
 * const cfg = parseTrainConfig({ method: "rigl", density: 0.1, hidden: [300, 100] });
 * assert.deepEqual(cfg.method, "rigl");
 * assert.deepEqual(cfg.hidden, [300, 100]);
 * assert.deepEqual(cfg.epochs, 10);
 * const stop = parseTrainConfig({ epochs: 30, plateauTol: 0.01, keepEpochs: [1, 3, 10, "final"] });
 * assert.deepEqual(stop.plateauPatience, undefined);
 * assert.deepEqual(stop.keepEpochs, [1, 3, 10, "final"]);
 * ```
 * @module
 */
import { z } from "zod";
import { FiligreeError } from "../gpu/errors.ts";

export const METHODS = ["dense", "static", "set", "rigl", "prune"] as const;
export const DATASETS = ["mnist", "fashion-mnist", "synthetic"] as const;
export const NORMS = ["none", "batch", "layer"] as const;
export const INPUT_NORMS = ["none", "unit", "standard", "sample"] as const;
export const OPTIMIZERS = ["sgd", "adam", "adamw"] as const;
export const SCHEDULES = ["constant", "cosine", "step"] as const;
export const INITS = ["uniform", "er", "erk"] as const;
export const LOSSES = ["xent", "mse"] as const;

const positiveInt = z.number().int().positive();

/** Every key of a training run, with defaults. */
export const TrainConfigSchema = z.object({
  model: z.enum(["mlp", "cnn", "lstm"]).default("mlp"),
  /** CNN: output channels of each convolution (each followed by 2x2 max pooling). */
  convChannels: z.array(positiveInt).min(1).default([16, 32]),
  /** CNN: square kernel size of the convolutions. */
  kernelSize: positiveInt.default(5),
  /** LSTM: hidden state size (the image rows are the time steps). */
  lstmHidden: positiveInt.default(128),
  dataset: z.enum(DATASETS).default("mnist"),
  trainSubset: positiveInt.optional(),
  testSubset: positiveInt.optional(),
  syntheticFeatures: positiveInt.default(64),
  syntheticClasses: positiveInt.default(4),
  syntheticSamples: positiveInt.default(4000),
  inputNorm: z.enum(INPUT_NORMS).default("unit"),

  /**
   * Hidden widths: LeNet-300-100 by default (the MNIST benchmark of SNIP, Han et al., RigL). For
   * the CNN and the LSTM these are the fully-connected head; `[]` lets the output layer read
   * their features directly (the MLP needs at least one).
   */
  hidden: z.array(positiveInt).default([300, 100]),
  activation: z.string().default("relu"),
  activationParam: z.number().optional(),
  norm: z.enum(NORMS).default("none"),
  normPlacement: z.enum(["before", "after"]).default("before"),
  dropout: z.number().min(0).lt(1).default(0),
  /** Which layers are sparse: "hidden" (all but the output layer) or "all". */
  sparseLayers: z.enum(["hidden", "all"]).default("hidden"),
  weightInit: z.enum(["he", "xavier", "set"]).default("he"),
  loss: z.enum(LOSSES).default("xent"),
  outputActivation: z.enum(["identity", "sigmoid"]).default("identity"),

  method: z.enum(METHODS).default("set"),
  density: z.number().gt(0).max(1).optional(),
  epsilon: z.number().positive().optional(),
  init: z.enum(INITS).optional(),
  /**
   * SET's drop fraction per update (0.1: with ERK densities and zero regrowth it reached 98.18 %
   * on MNIST 784-300-100-10 where the reference's 0.3 gave 97.71 %, docs/TRAINING-RESULTS.md).
   */
  zeta: z.number().gt(0).lt(1).default(0.1),
  setRanking: z.enum(["per-sign", "global"]).default("per-sign"),
  /**
   * Value of SET's regrown weights: "zero" (default; as the reference's Keras code and RigL do:
   * measured 97.7-98.2 % on MNIST 784-300-100-10 where "random" at the layer's He scale gave
   * 94.5 %, docs/TRAINING-RESULTS.md) or "random" (the layer's initialization).
   */
  regrowInit: z.enum(["random", "zero"]).default("zero"),
  updateInterval: positiveInt.optional(),
  riglAlpha: z.number().gt(0).lt(1).default(0.3),
  riglStop: z.number().gt(0).max(1).default(0.75),
  gradBudgetMB: z.number().positive().default(256),
  pruneStart: z.number().min(0).lt(1).default(0.1),
  pruneEnd: z.number().gt(0).max(1).default(0.75),

  optimizer: z.enum(OPTIMIZERS).default("sgd"),
  lr: z.number().positive().default(0.1),
  lrSchedule: z.enum(SCHEDULES).default("cosine"),
  lrStepEvery: positiveInt.default(30),
  lrStepGamma: z.number().positive().default(0.1),
  momentum: z.number().min(0).lt(1).default(0.9),
  nesterov: z.boolean().default(false),
  weightDecay: z.number().min(0).default(2e-4),
  /** Epochs to train: the maximum when a stop rule ({@link plateauTol}) is set. */
  epochs: positiveInt.default(10),
  /**
   * Plateau stop rule (off when absent): after epoch e, r_e = (best_{<e} - L_e) / best_{<e} is
   * the relative improvement of the epoch-mean training loss L_e over the best earlier epoch;
   * training stops after the first epoch where r < plateauTol for `plateauPatience` epochs in a
   * row (src/train/schedule.ts `plateauStop`), or at `epochs`.
   */
  plateauTol: z.number().positive().lt(1).optional(),
  /** Consecutive epochs without a relative improvement of plateauTol before stopping (3). */
  plateauPatience: positiveInt.optional(),
  /**
   * Epochs whose checkpoint is kept as `epochs/epoch-NNN/` in the run directory (a run-directory
   * view: config.json + checkpoint.safetensors, so `ablate RUN --epoch N` analyzes it); "final"
   * names the run's own last checkpoint.
   */
  keepEpochs: z.array(z.union([positiveInt, z.literal("final")])).optional(),
  batchSize: positiveInt.default(128),
  seed: z.number().int().min(0).default(0),
  out: z.string().optional(),
}).strict();

/** A validated training configuration. */
export type TrainConfig = z.infer<typeof TrainConfigSchema>;

function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.join(".") || "(config)";
  if (issue.code === "unrecognized_keys") {
    const known = Object.keys(TrainConfigSchema.shape).join(", ");
    return `unknown config key ${
      issue.keys.map((k) => `"${k}"`).join(", ")
    }; allowed keys: ${known}`;
  }
  if (issue.code === "invalid_value" && "values" in issue) {
    return `bad value for "${key}": allowed values are ${(issue.values as unknown[]).join(", ")}`;
  }
  return `bad value for "${key}": ${issue.message}`;
}

/** Validates a plain object (from YAML, flags or code) into a TrainConfig. */
export function parseTrainConfig(input: unknown): TrainConfig {
  const r = TrainConfigSchema.safeParse(input);
  if (!r.success) throw new FiligreeError(describeIssue(r.error.issues[0]));
  const cfg = r.data;
  if (cfg.density !== undefined && cfg.epsilon !== undefined) {
    throw new FiligreeError(`give either "density" or "epsilon", not both`);
  }
  if (cfg.plateauPatience !== undefined && cfg.plateauTol === undefined) {
    throw new FiligreeError(`"plateauPatience" needs "plateauTol" (the plateau stop rule)`);
  }
  if (cfg.model === "mlp" && cfg.hidden.length === 0) {
    throw new FiligreeError(
      `"hidden" needs at least one width for the MLP (a CNN or LSTM may have none: its output layer then reads the features)`,
    );
  }
  if (cfg.pruneStart >= cfg.pruneEnd) {
    throw new FiligreeError(`"pruneStart" must be below "pruneEnd"`);
  }
  return cfg;
}
