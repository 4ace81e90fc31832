/**
 * The WANN search configuration (YAML or JSON; unknown keys and bad values fail with one line).
 * Defaults follow the reference code's MNIST settings where they exist (`p/mnist256.json`,
 * `domain/config.py`) except the run size, which the YAML sets.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseWannConfig } from "./config.ts";
 * const c = parseWannConfig({ task: "synthetic", population: 16, generations: 3 });
 * assert.deepEqual(c.weights, [-2, -1, -0.5, 0.5, 1, 2]);
 * assert.deepEqual(c.probMoo, 0.8);
 * assert.deepEqual(c.tournament, 32);
 * ```
 * @module
 */
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { FiligreeError } from "../gpu/errors.ts";
import { WANN_TASKS } from "./tasks.ts";

const int = z.number().int();
const prob = z.number().min(0).max(1);
const actId = int.min(1).max(10);

/** Every key of a WANN search, with defaults. */
export const WannConfigSchema = z.object({
  task: z.enum(WANN_TASKS).default("mnist16"),
  /** Synthetic task only. */
  syntheticFeatures: int.positive().default(8),
  syntheticClasses: int.min(2).default(3),
  syntheticTrain: int.positive().default(2000),
  syntheticTest: int.positive().default(500),
  seed: int.min(0).default(1),
  population: int.min(2).default(960),
  generations: int.positive().default(4096),
  /** Training images drawn (without replacement) per generation; every individual sees the same. */
  samplesPerEval: int.positive().max(65_000).default(1000),
  weights: z.array(z.number()).min(1).max(64).default([-2, -1, -0.5, 0.5, 1, 2]),
  /** Fitness per weight: "ce" = minus the mean cross-entropy (the reference), "acc" = accuracy. */
  fitness: z.enum(["ce", "acc"]).default("ce"),
  /** Probability of ranking on {mean, 1/connections} instead of {mean, max}. */
  probMoo: prob.default(0.8),
  cullRatio: prob.default(0.2),
  eliteRatio: prob.default(0.2),
  tournament: int.positive().default(32),
  probInitEnable: prob.default(0.05),
  mutation: z.object({
    addConn: z.number().min(0).default(0.2),
    addNode: z.number().min(0).default(0.25),
    enable: z.number().min(0).default(0.05),
    mutAct: z.number().min(0).default(0.5),
  }).strict().default({ addConn: 0.2, addNode: 0.25, enable: 0.05, mutAct: 0.5 }),
  hiddenActs: z.array(actId).min(1).default([1, 3, 4, 5, 6, 7, 8, 9, 10]),
  outputAct: actId.default(1),
  /** Evaluate the champion on the whole test split every N generations (and at the end). */
  testEvery: int.positive().default(16),
  checkpointEvery: int.positive().default(1),
  /** Test samples for the periodic test (default: all). */
  testSamples: int.positive().max(65_000).optional(),
}).strict();

/** A parsed configuration. */
export type WannConfig = z.infer<typeof WannConfigSchema>;

/** Parses a configuration object; one-line error on the first problem. */
export function parseWannConfig(raw: unknown): WannConfig {
  const r = WannConfigSchema.safeParse(raw ?? {});
  if (!r.success) {
    const is = r.error.issues[0];
    throw new FiligreeError(`WANN config: ${is.path.join(".") || "(root)"}: ${is.message}`);
  }
  return r.data;
}

/** Reads a YAML/JSON configuration file. */
export async function readWannConfig(path: string): Promise<WannConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new FiligreeError(`cannot read ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new FiligreeError(`${path}: not YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  return parseWannConfig(raw);
}
