/**
 * The CNN builder (`--model cnn`): for each entry of `convChannels` a "same"-padded
 * `kernelSize × kernelSize` convolution (sparse like the hidden layers, see below), the
 * normalization / activation of the config, 2×2 max pooling and dropout; then the flattened
 * feature map (a no-op in the feature-major layout) feeds the fully-connected head built by
 * {@link buildMlp} (`hidden` widths, then the output layer).
 *
 * Densities: every convolution is a weight layer of shape `[c_in·k·k, c_out]`; the densities of
 * the convolutions and the head follow the same rules as the MLP's (`weightLayerDensities`:
 * uniform `density`, SET's `epsilon`, ERK for RigL, dense start for pruning; the output layer
 * stays dense unless `sparseLayers` is "all"), computed here over all weight layers. Norms act
 * per output unit (channel × position), like the MLP's per-feature norms.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { parseTrainConfig } from "../train/config.ts";
 * import { buildCnn } from "./cnn.ts";
 * const gpu = await getGpu();
 * const cfg = parseTrainConfig({ model: "cnn", convChannels: [4], kernelSize: 3, hidden: [16] });
 * const m = buildCnn(gpu, cfg, { features: 64, classes: 3, shape: [8, 8] }, []);
 * assert.deepEqual(m.layers.map((l) => l.name), ["conv1", "conv1.pool", "fc1", "out"]);
 * ```
 * @module
 */
import { FiligreeError, type Gpu } from "../gpu/mod.ts";
import { DataRng, deriveSeed } from "../data/random.ts";
import { allReluSlope } from "../kernels/activation_ids.ts";
import { convDims, poolDims } from "../kernels/conv.ts";
import { configDensities } from "../sparse/density.ts";
import type { TrainConfig } from "../train/config.ts";
import { Activation, BatchNorm, Dropout, type Layer, LayerNorm, SReLU } from "./layers.ts";
import { buildMlp, makeSparseLayer, Sequential } from "./mlp.ts";
import type { DataShape } from "./models.ts";
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
 * Densities of weight layers of the given `[in, out]` shapes under the config's rules (those of
 * `weightLayerDensities` for the MLP): the last layer is dense unless `sparseLayers` is "all".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrainConfig } from "../train/config.ts";
 * import { cnnLayerDensities } from "./cnn.ts";
 * const cfg = parseTrainConfig({ method: "set", density: 0.2 });
 * assert.deepEqual(cnnLayerDensities(cfg, [[25, 16], [400, 32], [1568, 10]]), [0.2, 0.2, 1]);
 * ```
 */
export function cnnLayerDensities(cfg: TrainConfig, shapes: [number, number][]): number[] {
  return configDensities(cfg, shapes);
}

/**
 * Builds the CNN for `cfg` (`convChannels`, `kernelSize`, `hidden`, activation, norm, dropout,
 * sparsity). `densities` may give one density per weight layer (convolutions, then head);
 * any other length (e.g. the trainer's MLP-head list) is ignored and the densities are computed
 * from the config with {@link cnnLayerDensities}.
 */
export function buildCnn(
  gpu: Gpu,
  cfg: TrainConfig,
  data: DataShape,
  densities: number[],
): Sequential {
  const { blocks, flat } = cnnShapes(data.shape, cfg.convChannels, cfg.kernelSize);
  const inC = blocks[0].inChannels;
  if (inC * blocks[0].height * blocks[0].width !== data.features) {
    throw new FiligreeError(
      `model "cnn": sample shape [${
        data.shape.join(", ")
      }] does not match ${data.features} features`,
    );
  }
  const headWidths = [flat, ...cfg.hidden, data.classes];
  const shapes: [number, number][] = [
    ...blocks.map((b): [number, number] => [b.inChannels * b.kernel * b.kernel, b.outChannels]),
    ...headWidths.slice(0, -1).map((w, l): [number, number] => [w, headWidths[l + 1]]),
  ];
  const dens = densities.length === shapes.length ? densities : cnnLayerDensities(cfg, shapes);
  const layers: Layer[] = [];
  blocks.forEach((b, l) => {
    const name = `conv${l + 1}`;
    const rng = new DataRng(deriveSeed(cfg.seed, 2000 + l));
    const act = cfg.activation;
    const actParam = act === "all_relu"
      ? allReluSlope(l, cfg.activationParam ?? 0.6)
      : cfg.activationParam;
    const normBefore = cfg.norm !== "none" && cfg.normPlacement === "before";
    const normAfter = cfg.norm !== "none" && cfg.normPlacement === "after";
    const srelu = act === "srelu";
    const fuse = !normBefore && !srelu;
    const linAct = fuse ? { activation: act, activationParam: actParam } : {
      activation: "identity",
    };
    const geometry = {
      channels: b.inChannels,
      height: b.height,
      width: b.width,
      kernel: b.kernel,
      pad: b.pad,
    };
    const K = b.inChannels * b.kernel * b.kernel;
    if (dens[l] < 1) {
      const csr = makeSparseLayer(gpu, K, b.outChannels, dens[l], rng, cfg.weightInit, name);
      layers.push(new SparseConv2d(gpu, name, csr, geometry, { ...linAct, init: cfg.weightInit }));
    } else {
      layers.push(
        new Conv2d(gpu, name, geometry, b.outChannels, { ...linAct, rng, init: cfg.weightInit }),
      );
    }
    const units = b.outChannels * b.convHeight * b.convWidth;
    const norm = () =>
      cfg.norm === "batch"
        ? new BatchNorm(gpu, `${name}.bn`, units)
        : new LayerNorm(gpu, `${name}.ln`, units);
    if (normBefore) layers.push(norm());
    if (srelu) layers.push(new SReLU(gpu, `${name}.srelu`, units));
    else if (!fuse) layers.push(new Activation(gpu, `${name}.act`, units, act, actParam));
    if (normAfter) layers.push(norm());
    layers.push(
      new MaxPool2d(gpu, `${name}.pool`, {
        channels: b.outChannels,
        height: b.convHeight,
        width: b.convWidth,
        size: CNN_POOL,
      }),
    );
    if (cfg.dropout > 0) {
      const pooled = b.outChannels * b.poolHeight * b.poolWidth;
      // Streams 101, 102, ... stay clear of the head's 1, 2, ...
      layers.push(new Dropout(gpu, `${name}.drop`, pooled, cfg.dropout, 101 + l));
    }
  });
  const head = buildMlp(gpu, {
    inputs: flat,
    classes: data.classes,
    hidden: cfg.hidden,
    activation: cfg.activation,
    activationParam: cfg.activationParam,
    norm: cfg.norm,
    normPlacement: cfg.normPlacement,
    dropout: cfg.dropout,
    densities: dens.slice(blocks.length),
    seed: cfg.seed,
    init: cfg.weightInit,
  });
  return new Sequential([...layers, ...head.layers], head.spec);
}
