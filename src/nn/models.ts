/**
 * The model factory: `cfg.model` picks the builder (MLP, CNN, LSTM). Every model is a
 * {@link Sequential} of layers, so the trainer, checkpoints and topology updates treat them alike.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { parseTrainConfig } from "../train/config.ts";
 * import { buildModel } from "./models.ts";
 * const gpu = await getGpu();
 * const cfg = parseTrainConfig({ hidden: [16], method: "dense" });
 * const m = buildModel(gpu, cfg, { features: 20, classes: 3, shape: [4, 5] }, [1, 1]);
 * assert.deepEqual(m.layers.length, 2); // fc1 (activation fused) and out
 * ```
 * @module
 */
import type { Gpu } from "../gpu/mod.ts";
import type { TrainConfig } from "../train/config.ts";
import { buildMlp, type Sequential } from "./mlp.ts";
import { buildCnn } from "./cnn.ts";
import { buildLstm } from "./lstm.ts";

/** What a model needs to know about its data. */
export interface DataShape {
  features: number;
  classes: number;
  /** Shape of one sample: `[28, 28]` for the image sets (one channel), `[features]` otherwise. */
  shape: number[];
}

/** Builds the model named by `cfg.model`; `densities` has one entry per weight layer of the MLP head. */
export function buildModel(
  gpu: Gpu,
  cfg: TrainConfig,
  data: DataShape,
  densities: number[],
): Sequential {
  switch (cfg.model) {
    case "mlp":
      return buildMlp(gpu, {
        inputs: data.features,
        classes: data.classes,
        hidden: cfg.hidden,
        activation: cfg.activation,
        activationParam: cfg.activationParam,
        norm: cfg.norm,
        normPlacement: cfg.normPlacement,
        dropout: cfg.dropout,
        densities,
        seed: cfg.seed,
        init: cfg.weightInit,
      });
    case "cnn":
      return buildCnn(gpu, cfg, data, densities);
    case "lstm":
      return buildLstm(gpu, cfg, data, densities);
  }
}
