/**
 * The model factory: a table with a row per architecture (MLP, CNN, LSTM). A row knows its weight
 * shapes (what densities are computed over) and builds a {@link Sequential} from a
 * {@link ModelSpec}, so the trainer, checkpoints, topology updates and the analysis treat every
 * model alike. A new architecture is a row here and a builder file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { buildModel, type ModelStructure, weightShapes } from "./models.ts";
 * const gpu = await getGpu();
 * const structure: ModelStructure = {
 *   model: "mlp", data: { features: 20, classes: 3, shape: [4, 5] }, hidden: [16],
 *   activation: "relu", norm: "none", normPlacement: "before", dropout: 0, init: "he", seed: 0,
 * };
 * assert.deepEqual(weightShapes(structure), [[20, 16], [16, 3]]);
 * const m = buildModel(gpu, { ...structure, densities: [1, 1] });
 * assert.deepEqual(m.layers.length, 2); // fc1 (activation fused) and out
 * ```
 * @module
 */
import { FiligreeError, type Gpu } from "../gpu/mod.ts";
import { buildMlp, type Sequential } from "./mlp.ts";
import { buildCnn, cnnWeightShapes } from "./cnn.ts";
import { buildLstm, lstmWeightShapes } from "./lstm.ts";
import { mlpStyle, type ModelKind, type ModelSpec, type ModelStructure } from "./spec.ts";

export type { DataShape, ModelKind, ModelSpec, ModelStructure } from "./spec.ts";

/** One architecture: its weight shapes `[in, out]` in model order, and its builder. */
export interface ModelRow {
  weightShapes(s: ModelStructure): [number, number][];
  build(gpu: Gpu, spec: ModelSpec): Sequential;
}

function mlpWeightShapes(s: Pick<ModelStructure, "data" | "hidden">): [number, number][] {
  const widths = [s.data.features, ...s.hidden, s.data.classes];
  return widths.slice(0, -1).map((w, l): [number, number] => [w, widths[l + 1]]);
}

/** The architectures by name. */
export const MODELS: Record<ModelKind, ModelRow> = {
  mlp: {
    weightShapes: mlpWeightShapes,
    build: (gpu, s) =>
      buildMlp(gpu, {
        ...mlpStyle(s),
        inputs: s.data.features,
        classes: s.data.classes,
        hidden: s.hidden,
        densities: s.densities,
        seed: s.seed,
        init: s.init,
      }),
  },
  cnn: { weightShapes: cnnWeightShapes, build: buildCnn },
  lstm: { weightShapes: lstmWeightShapes, build: buildLstm },
};

/** The weight shapes `[in, out]` of a model structure, in model order (output layer last). */
export function weightShapes(s: ModelStructure): [number, number][] {
  return MODELS[s.model].weightShapes(s);
}

/** Builds the model a spec describes; `densities` must give one entry per weight layer. */
export function buildModel(gpu: Gpu, spec: ModelSpec): Sequential {
  const n = weightShapes(spec).length;
  if (spec.densities.length !== n) {
    throw new FiligreeError(
      `model "${spec.model}" has ${n} weight layers; ${spec.densities.length} densities given`,
    );
  }
  return MODELS[spec.model].build(gpu, spec);
}
