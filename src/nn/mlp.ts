/**
 * The MLP builder: `hidden` widths, an activation, normalization before or after it, dropout,
 * and which layers are sparse (all hidden layers by default; the output layer stays dense).
 * When no normalization sits between a sparse layer and its activation, bias + activation are
 * fused into the SpMM store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { buildMlp } from "./mlp.ts";
 * const gpu = await getGpu();
 * const m = buildMlp(gpu, { inputs: 20, classes: 3, hidden: [16], activation: "relu", norm: "none",
 *   normPlacement: "before", dropout: 0, densities: [0.5], seed: 1, init: "he" });
 * assert.deepEqual(m.layers.map((l) => l.name), ["fc1", "out"]);
 * ```
 * @module
 */
import { FiligreeError, type Gpu } from "../gpu/mod.ts";
import { DataRng, deriveSeed } from "../data/random.ts";
import { csrFromCoo, type CsrLayer, randomMask, uploadCsr } from "../sparse/csr.ts";
import { allReluSlope } from "../kernels/activation_ids.ts";
import type { Act } from "./act.ts";
import type { BlockStyle } from "./spec.ts";
import {
  Activation,
  BatchNorm,
  Dropout,
  initStd,
  type Layer,
  LayerNorm,
  Linear,
  type Param,
  SparseLinear,
  SReLU,
  type StepContext,
} from "./layers.ts";

/** Everything that defines a fully-connected stack (an MLP, or the head of a CNN or LSTM). */
export interface MlpSpec extends BlockStyle {
  inputs: number;
  classes: number;
  hidden: number[];
  /** Density of each weight layer (hidden.length + 1 entries, or hidden.length: output dense); 1 = dense Linear. */
  densities: number[];
  seed: number;
  init: "he" | "xavier" | "set";
}

/**
 * A composite layer (e.g. the LSTM) whose weight matrices are {@link SparseLinear} objects it
 * drives itself. `sparseParts()` exposes them to topology updates and nonzero counts; the
 * layer's own `params` must already list their value arrays (with `sparse` set).
 */
export interface HasSparseParts {
  sparseParts(): SparseLinear[];
}

/**
 * The sparse weight layers of one layer: itself if it is a SparseLinear, else its sparse parts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { buildMlp, sparsePartsOf } from "./mlp.ts";
 * const gpu = await getGpu();
 * const m = buildMlp(gpu, { inputs: 8, classes: 2, hidden: [6], activation: "relu", norm: "none",
 *   normPlacement: "before", dropout: 0, densities: [0.5], seed: 1, init: "he" });
 * assert.deepEqual(m.layers.map((l) => sparsePartsOf(l).length), [1, 0]);
 * ```
 */
export function sparsePartsOf(l: Layer): SparseLinear[] {
  if (l instanceof SparseLinear) return [l];
  const parts = (l as Partial<HasSparseParts>).sparseParts;
  return typeof parts === "function" ? parts.call(l) : [];
}

/** A feed-forward model: a sequence of layers. */
export class Sequential {
  constructor(readonly layers: Layer[]) {}

  /** All trainable parameters in a fixed order (checkpoint and optimizer order). */
  get params(): Param[] {
    return this.layers.flatMap((l) => l.params);
  }

  /** The sparse layers, including sparse parts of composite layers (topology updates act on these). */
  get sparseLayers(): SparseLinear[] {
    return this.layers.flatMap(sparsePartsOf);
  }

  /** Records the forward pass; with a tape in `ctx`, also records what backward needs. */
  forward(ctx: StepContext, x: Act): Act {
    let h = x;
    for (const l of this.layers) h = l.forward(ctx, h);
    return h;
  }

  /** Nonzero weights per weight layer (sparse: nnz; dense: all). */
  weightCounts(): number[] {
    return this.layers.flatMap((l) =>
      l instanceof SparseLinear
        ? [l.csr.nnz]
        : l instanceof Linear
        ? [l.inFeatures * l.outFeatures]
        : sparsePartsOf(l).map((p) => p.csr.nnz)
    );
  }
}

/** Builds a sparse CSR layer with a random mask at `density` and initial values. */
export function makeSparseLayer(
  gpu: Gpu,
  nIn: number,
  nOut: number,
  density: number,
  rng: DataRng,
  init: "he" | "xavier" | "set",
  label: string,
): CsrLayer {
  const mask = randomMask(nIn, nOut, density, rng);
  if (mask.rows.length === 0) {
    throw new FiligreeError(
      `${label}: density ${density} leaves no weights in a ${nIn}x${nOut} layer`,
    );
  }
  const fanIn = Math.max(1, density * nIn);
  const std = initStd(init, fanIn, density * nOut);
  const vals = new Float32Array(mask.rows.length);
  for (let i = 0; i < vals.length; i++) vals[i] = rng.normal() * std;
  return uploadCsr(gpu, csrFromCoo(nIn, nOut, mask.rows, mask.cols, vals), label);
}

/** Builds the MLP described by `spec`. */
export function buildMlp(gpu: Gpu, spec: MlpSpec): Sequential {
  const widths = [spec.inputs, ...spec.hidden, spec.classes];
  const nLayers = widths.length - 1;
  if (spec.densities.length !== nLayers && spec.densities.length !== nLayers - 1) {
    throw new FiligreeError(
      `densities: expected ${nLayers} or ${nLayers - 1} entries, got ${spec.densities.length}`,
    );
  }
  const layers: Layer[] = [];
  for (let l = 0; l < nLayers; l++) {
    const nIn = widths[l], nOut = widths[l + 1];
    const isOut = l === nLayers - 1;
    const density = spec.densities[l] ?? 1;
    const rng = new DataRng(deriveSeed(spec.seed, 1000 + l));
    const name = isOut ? "out" : `fc${l + 1}`;
    const block = isOut
      ? { linAct: { activation: "identity" }, tail: [] }
      : finishBlock(gpu, spec, l, name, nOut);
    if (density < 1) {
      const csr = makeSparseLayer(gpu, nIn, nOut, density, rng, spec.init, name);
      layers.push(new SparseLinear(gpu, name, csr, block.linAct));
    } else {
      layers.push(new Linear(gpu, name, nIn, nOut, { ...block.linAct, rng, init: spec.init }));
    }
    if (isOut) break;
    layers.push(...block.tail);
    if (spec.dropout > 0) layers.push(new Dropout(gpu, `${name}.drop`, nOut, spec.dropout, l + 1));
  }
  return new Sequential(layers);
}

/**
 * How weight layer `l` (named `name`, `units` outputs) is finished under a block style: the
 * activation its store fuses (`linAct`), or identity plus the `tail` layers — normalization
 * before and/or after the activation, SReLU, or a separate activation when a norm sits between.
 * The one rule shared by the MLP, the CNN's convolution blocks and every head.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { finishBlock } from "./mlp.ts";
 * const gpu = await getGpu();
 * const style = { activation: "tanh", norm: "batch", normPlacement: "before", dropout: 0 } as const;
 * const b = finishBlock(gpu, style, 0, "fc1", 8);
 * assert.deepEqual(b.linAct, { activation: "identity" });
 * assert.deepEqual(b.tail.map((l) => l.name), ["fc1.bn", "fc1.act"]);
 * ```
 */
export function finishBlock(
  gpu: Gpu,
  style: BlockStyle,
  l: number,
  name: string,
  units: number,
): { linAct: { activation: string; activationParam?: number }; tail: Layer[] } {
  const act = style.activation;
  const actParam = act === "all_relu"
    ? allReluSlope(l, style.activationParam ?? 0.6)
    : style.activationParam;
  const normBefore = style.norm !== "none" && style.normPlacement === "before";
  const normAfter = style.norm !== "none" && style.normPlacement === "after";
  const srelu = act === "srelu";
  // Fuse the activation into the weight layer unless a norm sits in between or it is SReLU.
  const fuse = !normBefore && !srelu;
  const norm = () =>
    style.norm === "batch"
      ? new BatchNorm(gpu, `${name}.bn`, units)
      : new LayerNorm(gpu, `${name}.ln`, units);
  const tail: Layer[] = [];
  if (normBefore) tail.push(norm());
  if (srelu) tail.push(new SReLU(gpu, `${name}.srelu`, units));
  else if (!fuse) tail.push(new Activation(gpu, `${name}.act`, units, act, actParam));
  if (normAfter) tail.push(norm());
  return {
    linAct: fuse ? { activation: act, activationParam: actParam } : { activation: "identity" },
    tail,
  };
}
