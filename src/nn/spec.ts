/**
 * A model described once: {@link ModelSpec} says which architecture, its shapes, activation, norm
 * placement, dropout, initialisation and the density of every weight layer. The builders in
 * `src/nn/` read only this (they know nothing of training); `src/train/model_spec.ts` makes one
 * from a training config, which is where densities are defaulted.
 *
 * Weight layers are counted in model order: the convolutions (CNN) or the LSTM's `W_x`, `W_h`
 * (LSTM), then the fully-connected head, the output layer last. `densities[l] < 1` makes layer `l`
 * sparse (CSR), `1` dense.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ModelSpec, mlpStyle } from "./spec.ts";
 * const spec: ModelSpec = {
 *   model: "mlp", data: { features: 20, classes: 3, shape: [20] }, hidden: [16],
 *   activation: "tanh", norm: "layer", normPlacement: "after", dropout: 0, init: "he", seed: 1,
 *   densities: [0.5, 1],
 * };
 * assert.deepEqual(mlpStyle(spec).norm, "layer");
 * ```
 * @module
 */

/** The architectures Filigree builds (a row each in `MODELS`, src/nn/models.ts). */
export type ModelKind = "mlp" | "cnn" | "lstm";

/** What a model needs to know about its data. */
export interface DataShape {
  features: number;
  classes: number;
  /** Shape of one sample: `[28, 28]` for the image sets (one channel), `[features]` otherwise. */
  shape: number[];
}

/** How a weight layer's output is finished: activation and normalization, where they sit. */
export interface BlockStyle {
  activation: string;
  activationParam?: number;
  norm: "none" | "batch" | "layer";
  normPlacement: "before" | "after";
  dropout: number;
}

/** Everything that defines a model's structure and initial state. */
export interface ModelSpec extends BlockStyle {
  model: ModelKind;
  data: DataShape;
  /** Widths of the fully-connected layers before the output layer (the CNN/LSTM head). */
  hidden: number[];
  /** CNN: output channels of each convolution block. */
  convChannels?: number[];
  /** CNN: square kernel size ("same" padding). */
  kernelSize?: number;
  /** LSTM: hidden units. */
  lstmHidden?: number;
  init: "he" | "xavier" | "set";
  seed: number;
  /** Density of every weight layer in model order (see the module doc). */
  densities: number[];
}

/** The structure without densities: what the weight shapes are computed from. */
export type ModelStructure = Omit<ModelSpec, "densities">;

/** The block style of a spec (for the fully-connected assembler). */
export function mlpStyle(s: BlockStyle): BlockStyle {
  return {
    activation: s.activation,
    activationParam: s.activationParam,
    norm: s.norm,
    normPlacement: s.normPlacement,
    dropout: s.dropout,
  };
}
