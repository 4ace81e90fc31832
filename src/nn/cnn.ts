/**
 * The CNN builder (`--model cnn`): for each entry of `convChannels` a "same"-padded
 * `kernelSize × kernelSize` convolution (sparse like the hidden layers, see below), the
 * normalization / activation of the config, 2×2 max pooling and dropout; then the flattened
 * feature map (a no-op in the feature-major layout) feeds the fully-connected head built by
 * {@link buildMlp} (`hidden` widths, then the output layer).
 *
 * Every convolution is a weight layer of shape `[c_in·k·k, c_out]` ({@link cnnWeightShapes}); the
 * spec's `densities` cover the convolutions, then the head (the training config's rules apply
 * to all of them alike: src/train/model_spec.ts). Norms act per output unit (channel × position),
 * like the MLP's per-feature norms.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { buildCnn } from "./cnn.ts";
 * const gpu = await getGpu();
 * const m = buildCnn(gpu, {
 *   model: "cnn", data: { features: 64, classes: 3, shape: [8, 8] }, convChannels: [4],
 *   kernelSize: 3, hidden: [16], activation: "relu", norm: "none", normPlacement: "before",
 *   dropout: 0, init: "he", seed: 0, densities: [0.5, 0.5, 1],
 * });
 * assert.deepEqual(m.layers.map((l) => l.name), ["conv1", "conv1.pool", "fc1", "out"]);
 * ```
 * @module
 */
import { FiligreeError, type Gpu } from "../gpu/mod.ts";
import { DataRng, deriveSeed } from "../data/random.ts";
import { convDims, poolDims } from "../kernels/conv.ts";
import { Dropout, type Layer } from "./layers.ts";
import { buildMlp, finishBlock, makeSparseLayer, Sequential } from "./mlp.ts";
import { mlpStyle, type ModelSpec, type ModelStructure } from "./spec.ts";
import { Conv2d, MaxPool2d, SparseConv2d } from "./conv.ts";

/** Pooling window after every convolution. */
export const CNN_POOL = 2;

/** Sizes of one convolution block. */
export interface ConvBlockShape {
  inChannels: number;
  height: number;
  width: number;
  outChannels: number;
  kernel: number;
  pad: number;
  /** Convolution output size. */
  convHeight: number;
  convWidth: number;
  /** After pooling. */
  poolHeight: number;
  poolWidth: number;
}

/**
 * The convolution blocks and flattened feature count for an image shape (`[h, w]` or
 * `[c, h, w]`); throws a FiligreeError for non-image data or images too small for the blocks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cnnShapes } from "./cnn.ts";
 * const s = cnnShapes([28, 28], [16, 32], 5);
 * assert.deepEqual(s.blocks.map((b) => b.poolHeight), [14, 7]);
 * assert.deepEqual(s.flat, 1568);
 * ```
 */
export function cnnShapes(
  shape: readonly number[],
  channels: readonly number[],
  kernel: number,
): { blocks: ConvBlockShape[]; flat: number } {
  if (shape.length !== 2 && shape.length !== 3) {
    throw new FiligreeError(
      `model "cnn" needs an image dataset (sample shape [height, width]); this dataset's samples have shape [${
        shape.join(", ")
      }] (use --model mlp, or an image set: mnist, fashion-mnist)`,
    );
  }
  let [c, h, w] = shape.length === 2 ? [1, shape[0], shape[1]] : shape;
  const pad = Math.floor(kernel / 2);
  const blocks: ConvBlockShape[] = [];
  channels.forEach((co, l) => {
    const d = convDims({ channels: c, height: h, width: w, kernel, pad });
    if (d.oh < CNN_POOL || d.ow < CNN_POOL) {
      throw new FiligreeError(
        `model "cnn": convolution ${
          l + 1
        } outputs ${d.oh}x${d.ow}, too small for ${CNN_POOL}x${CNN_POOL} pooling (fewer convChannels or larger images)`,
      );
    }
    const p = poolDims({ channels: co, height: d.oh, width: d.ow, size: CNN_POOL });
    blocks.push({
      inChannels: c,
      height: h,
      width: w,
      outChannels: co,
      kernel,
      pad,
      convHeight: d.oh,
      convWidth: d.ow,
      poolHeight: p.oh,
      poolWidth: p.ow,
    });
    [c, h, w] = [co, p.oh, p.ow];
  });
  return { blocks, flat: c * h * w };
}

/**
 * The weight shapes `[in, out]` of a CNN spec in model order: each convolution `[c_in·k·k, c_out]`,
 * then the head and the output layer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cnnWeightShapes } from "./cnn.ts";
 * const s = cnnWeightShapes({ data: { features: 784, classes: 10, shape: [28, 28] },
 *   convChannels: [6, 16], kernelSize: 5, hidden: [120, 84] });
 * assert.deepEqual(s, [[25, 6], [150, 16], [784, 120], [120, 84], [84, 10]]);
 * ```
 */
export function cnnWeightShapes(
  s: Pick<ModelStructure, "data" | "convChannels" | "kernelSize" | "hidden">,
): [number, number][] {
  const { blocks, flat } = cnnShapes(s.data.shape, convChannelsOf(s), kernelSizeOf(s));
  const headWidths = [flat, ...s.hidden, s.data.classes];
  return [
    ...blocks.map((b): [number, number] => [b.inChannels * b.kernel * b.kernel, b.outChannels]),
    ...headWidths.slice(0, -1).map((w, l): [number, number] => [w, headWidths[l + 1]]),
  ];
}

function convChannelsOf(s: Pick<ModelStructure, "convChannels">): number[] {
  if (!s.convChannels?.length) throw new FiligreeError(`model "cnn" needs convChannels`);
  return s.convChannels;
}

function kernelSizeOf(s: Pick<ModelStructure, "kernelSize">): number {
  if (!s.kernelSize) throw new FiligreeError(`model "cnn" needs kernelSize`);
  return s.kernelSize;
}

/**
 * Builds the CNN a spec describes (`convChannels`, `kernelSize`, `hidden`, the block style,
 * `densities` over every weight layer: convolutions, then head).
 */
export function buildCnn(gpu: Gpu, spec: ModelSpec): Sequential {
  const { data } = spec;
  const { blocks } = cnnShapes(data.shape, convChannelsOf(spec), kernelSizeOf(spec));
  const inC = blocks[0].inChannels;
  if (inC * blocks[0].height * blocks[0].width !== data.features) {
    throw new FiligreeError(
      `model "cnn": sample shape [${
        data.shape.join(", ")
      }] does not match ${data.features} features`,
    );
  }
  const shapes = cnnWeightShapes(spec);
  const dens = spec.densities;
  if (dens.length !== shapes.length) {
    throw new FiligreeError(
      `model "cnn": ${shapes.length} weight layers, ${dens.length} densities given`,
    );
  }
  const layers: Layer[] = [];
  blocks.forEach((b, l) => {
    const name = `conv${l + 1}`;
    const rng = new DataRng(deriveSeed(spec.seed, 2000 + l));
    const units = b.outChannels * b.convHeight * b.convWidth;
    const block = finishBlock(gpu, spec, l, name, units);
    const geometry = {
      channels: b.inChannels,
      height: b.height,
      width: b.width,
      kernel: b.kernel,
      pad: b.pad,
    };
    const K = b.inChannels * b.kernel * b.kernel;
    if (dens[l] < 1) {
      const csr = makeSparseLayer(gpu, K, b.outChannels, dens[l], rng, spec.init, name);
      layers.push(
        new SparseConv2d(gpu, name, csr, geometry, { ...block.linAct, init: spec.init }),
      );
    } else {
      layers.push(
        new Conv2d(gpu, name, geometry, b.outChannels, { ...block.linAct, rng, init: spec.init }),
      );
    }
    layers.push(...block.tail);
    layers.push(
      new MaxPool2d(gpu, `${name}.pool`, {
        channels: b.outChannels,
        height: b.convHeight,
        width: b.convWidth,
        size: CNN_POOL,
      }),
    );
    if (spec.dropout > 0) {
      const pooled = b.outChannels * b.poolHeight * b.poolWidth;
      // Streams 101, 102, ... stay clear of the head's 1, 2, ...
      layers.push(new Dropout(gpu, `${name}.drop`, pooled, spec.dropout, 101 + l));
    }
  });
  const head = buildMlp(gpu, {
    ...mlpStyle(spec),
    inputs: shapes[blocks.length][0],
    classes: data.classes,
    hidden: spec.hidden,
    densities: dens.slice(blocks.length),
    seed: spec.seed,
    init: spec.init,
  });
  return new Sequential([...layers, ...head.layers]);
}
