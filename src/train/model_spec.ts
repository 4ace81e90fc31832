/**
 * From a training config to the {@link ModelSpec} the builders read: the structure is copied from
 * the config, and the density of every weight layer is defaulted here, once, by the config's rules
 * (`configDensities`: uniform `density`, SET's `epsilon`, ERK for RigL or `init: erk`, a dense
 * start for pruning; the output layer dense unless `sparseLayers` is "all").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrainConfig } from "./config.ts";
 * import { modelSpecOf } from "./model_spec.ts";
 * const cfg = parseTrainConfig({ model: "cnn", convChannels: [6, 16], method: "set", density: 0.2 });
 * const spec = modelSpecOf(cfg, { features: 784, classes: 10, shape: [28, 28] });
 * assert.deepEqual(spec.densities, [0.2, 0.2, 0.2, 0.2, 1]); // 2 convs, 2 hidden, output
 * ```
 * @module
 */
import { type DataShape, type ModelSpec, type ModelStructure, weightShapes } from "../nn/models.ts";
import { configDensities } from "../sparse/density.ts";
import type { TrainConfig } from "./config.ts";

/** The model a training config describes, for data of the given shape. */
export function modelSpecOf(cfg: TrainConfig, data: DataShape): ModelSpec {
  const structure: ModelStructure = {
    model: cfg.model,
    data: { features: data.features, classes: data.classes, shape: [...data.shape] },
    hidden: cfg.hidden,
    activation: cfg.activation,
    activationParam: cfg.activationParam,
    norm: cfg.norm,
    normPlacement: cfg.normPlacement,
    dropout: cfg.dropout,
    convChannels: cfg.convChannels,
    kernelSize: cfg.kernelSize,
    lstmHidden: cfg.lstmHidden,
    init: cfg.weightInit,
    seed: cfg.seed,
  };
  return { ...structure, densities: configDensities(cfg, weightShapes(structure)) };
}
