/**
 * The training configuration: one schema for CLI flags, YAML config files and the library API.
 * Unknown keys and bad values fail with a one-line error naming the key and the allowed values.
 *
 * @example
 * ```ts
 * import { parseTrainConfig } from "./config.ts";
 * const cfg = parseTrainConfig({ method: "rigl", density: 0.1, hidden: [300, 100] });
 * console.log(cfg.method, cfg.hidden, cfg.epochs); // rigl [300, 100] 10
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

  hidden: z.array(positiveInt).min(1).default([1000, 1000, 1000]),
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
  zeta: z.number().gt(0).lt(1).default(0.3),
  setRanking: z.enum(["per-sign", "global"]).default("per-sign"),
  regrowInit: z.enum(["random", "zero"]).default("random"),
  updateInterval: positiveInt.optional(),
  riglAlpha: z.number().gt(0).lt(1).default(0.3),
  riglStop: z.number().gt(0).max(1).default(0.75),
  gradBudgetMB: z.number().positive().default(256),
  pruneStart: z.number().min(0).lt(1).default(0.1),
  pruneEnd: z.number().gt(0).max(1).default(0.75),

  optimizer: z.enum(OPTIMIZERS).default("sgd"),
  lr: z.number().positive().default(0.05),
  lrSchedule: z.enum(SCHEDULES).default("constant"),
  lrStepEvery: positiveInt.default(30),
  lrStepGamma: z.number().positive().default(0.1),
  momentum: z.number().min(0).lt(1).default(0.9),
  nesterov: z.boolean().default(false),
  weightDecay: z.number().min(0).default(2e-4),
  epochs: positiveInt.default(5),
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
  if (cfg.pruneStart >= cfg.pruneEnd) {
    throw new FiligreeError(`"pruneStart" must be below "pruneEnd"`);
  }
  return cfg;
}
