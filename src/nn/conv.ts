/**
 * Convolution and pooling layers on feature-major image batches `[c·h·w][ld]`.
 *
 * A convolution is im2col → linear layer → view: the columns `[c_in·k·k][P·ld]` (P = oh·ow)
 * go through the ordinary {@link SparseLinear} (or dense {@link Linear}) with batch `P·ld`, whose
 * output `[c_out][P·ld]` is the feature-major `[c_out·P][ld]` activation in the same memory.
 * {@link SparseConv2d} and {@link Conv2d} subclass those layers, so topology updates (SET,
 * RigL, pruning: they act on every `SparseLinear` of a model), optimizers and checkpoints
 * treat a convolution like any other weight layer; its weight matrix is `[c_in·k·k][c_out]`.
 *
 * Padding lanes: the linear layer sees no padding (its batch `P·ld` is a multiple of 4), so it
 * writes `act(bias)` into the lanes `b >= batch` of every position; the convolution zeroes them
 * (only when `batch % 4 != 0`) so the output keeps the layout's zero-padding rule, and zeroes
 * them in the incoming gradient before the linear backward, so bias gradients, SDDMM and
 * col2im only ever see real samples.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { DataRng } from "../data/random.ts";
 * import { Conv2d, MaxPool2d } from "./conv.ts";
 * const gpu = await getGpu();
 * const conv = new Conv2d(gpu, "conv1", { channels: 1, height: 6, width: 6, kernel: 3 }, 4, {
 *   activation: "relu",
 *   rng: new DataRng(1),
 * });
 * const pool = new MaxPool2d(gpu, "pool1", { channels: 4, height: 6, width: 6, size: 2 });
 * assert.deepEqual(conv.outFeaturesFlat, 144);
 * assert.deepEqual(pool.outFeatures, 36);
 * ```
 * @module
 */
import { FiligreeError, type Gpu, roundUp4, type Tensor } from "../gpu/mod.ts";
import {
  col2im,
  type ConvDims,
  convDims,
  type ConvGeometry,
  im2col,
  maxPoolBackward,
  maxPoolForward,
  poolDims,
  type PoolGeometry,
  zeroBatchPadding,
} from "../kernels/conv.ts";
import type { CsrLayer } from "../sparse/csr.ts";
import type { DataRng } from "../data/random.ts";
import { type Act, ActCache } from "./act.ts";
import {
  type ActivationSpec,
  type Layer,
  Linear,
  type Param,
  SparseLinear,
  type StepContext,
} from "./layers.ts";
import type { Tape } from "./tape.ts";
import type { FlowPath, UnitOp, WeightView } from "./analyzable.ts";
import { linearView, weightFlow } from "./layers.ts";
import { col2imRef, im2colRef, maxPoolBackwardRef, maxPoolRef } from "../kernels/conv_ref.ts";

function gradOf(tape: Tape, cache: ActCache, act: Act, name: string): Act {
  return tape.gradFor(act, () => cache.get(`grad:${name}`, act.rows, act.batch));
}

/** What the shared convolution code needs of its layer. */
interface ConvHost {
  readonly name: string;
  readonly cache: ActCache;
  readonly dims: ConvDims;
  readonly geometry: ConvGeometry;
  readonly outChannels: number;
  readonly views: Map<number, Act>;
}

/** A tensor object over the same buffer with another (same-sized) shape. */
function reshaped(t: Tensor, shape: number[]): Tensor {
  return { buffer: t.buffer, shape, dtype: t.dtype, size: t.size, label: t.label };
}

/**
 * im2col, the linear layer (`linear` = the superclass forward), padding mask and the view;
 * backward entries are pushed so the tape runs: mask dY → linear backward → col2im.
 */
function convForward(
  host: ConvHost,
  ctx: StepContext,
  x: Act,
  linear: (ctx: StepContext, cols: Act) => Act,
): Act {
  const { rec, tape } = ctx;
  const d = host.dims;
  const inRows = d.c * d.h * d.w;
  if (x.rows !== inRows) {
    throw new FiligreeError(
      `${host.name}: input has ${x.rows} features, expects ${d.c}x${d.h}x${d.w} = ${inRows}`,
    );
  }
  const B = x.batch, ld = roundUp4(B), P = d.positions;
  const cols = host.cache.get("cols", d.rows, P * ld);
  im2col(rec, { ...host.geometry, x: x.t, cols: cols.t, batch: B });
  if (tape && tape.requiresGrad(x)) {
    // Only then does the linear layer compute the column gradient (spmmT / matmul).
    tape.markProduced(cols);
    tape.push(`${host.name}.col2im`, () => {
      const dcols = gradOf(tape, host.cache, cols, "x");
      const dx = gradOf(tape, host.cache, x, "in");
      col2im(rec, { ...host.geometry, dcols: dcols.t, dx: dx.t, batch: B });
    });
  }
  const y = linear(ctx, cols); // [c_out][P·ld]
  const blocks = host.outChannels * P;
  zeroBatchPadding(rec, { t: y.t, blocks, batch: B });
  let view = host.views.get(B);
  if (!view || view.t.buffer !== y.t.buffer) {
    view = { t: reshaped(y.t, [blocks, ld]), rows: blocks, batch: B };
    host.views.set(B, view);
  }
  if (tape) {
    tape.markProduced(view);
    // The next layer writes the view's gradient; the linear backward reads it as its own.
    const g = gradOf(tape, host.cache, view, "out");
    tape.gradFor(
      y,
      () => ({ t: reshaped(g.t, [host.outChannels, P * ld]), rows: y.rows, batch: y.batch }),
    );
    tape.push(`${host.name}.mask`, () => zeroBatchPadding(rec, { t: g.t, blocks, batch: B }));
  }
  return view;
}

/**
 * The analysis view of a convolution: the weight matrix `[c_in·k·k][c_out]` shared by the
 * `oh·ow` positions; its input is the im2col columns, a unit of its input is a channel.
 */
function convView(
  host: ConvHost & {
    act: string;
    actParam: number;
    lastBatch: { x: Act; dz: Act } | null;
    params: Param[];
  },
  values: Tensor,
  csr: CsrLayer | null,
  bornStep: Tensor | null,
): WeightView {
  const d = host.dims;
  return linearView(host, {
    kind: "conv",
    nIn: d.rows,
    nOut: host.outChannels,
    positions: d.positions,
    inFeatures: d.c * d.h * d.w,
    unitRows: d.h * d.w,
    geometry: host.geometry,
    values,
    grad: host.params[0].grad,
    csr,
    bornStep,
    input: (inner) => host.cache.get("cols", d.rows, inner),
  });
}

/** SynFlow through a convolution (float64 im2col of one sample, |W| per position). */
function convFlow(host: ConvHost, w?: { abs: Float32Array; ends: Uint32Array }): FlowPath {
  if (!w) throw new FiligreeError(`${host.name}: SynFlow needs the weights`);
  const d = host.dims;
  return weightFlow(
    d.rows,
    host.outChannels,
    d.positions,
    w,
    (a) => im2colRef(a, host.geometry, 1),
    (c) => col2imRef(c, host.geometry, 1),
  );
}

/** Options of a convolution layer: the fused activation. */
export type ConvOptions = ActivationSpec;

/**
 * Sparse 2-D convolution: a {@link SparseLinear} over `[c_in·k·k] → [c_out]` applied to im2col
 * columns (CSR weights; SET/RigL/pruning update it like any sparse layer).
 */
export class SparseConv2d extends SparseLinear implements ConvHost {
  readonly dims: ConvDims;
  readonly views = new Map<number, Act>();
  constructor(
    gpu: Gpu,
    name: string,
    csr: CsrLayer,
    readonly geometry: ConvGeometry,
    opts: ConvOptions & { init?: "he" | "xavier" | "set" } = {},
  ) {
    const dims = convDims(geometry);
    if (csr.nIn !== dims.rows) {
      throw new FiligreeError(
        `${name}: weights have ${csr.nIn} inputs, a ${geometry.channels}-channel ${geometry.kernel}x${geometry.kernel} kernel needs ${dims.rows}`,
      );
    }
    super(gpu, name, csr, opts);
    this.dims = dims;
  }
  /** Output channels. */
  get outChannels(): number {
    return this.csr.nOut;
  }
  /** Features of the output activation: `c_out·oh·ow`. */
  get outFeaturesFlat(): number {
    return this.csr.nOut * this.dims.positions;
  }
  /** The analysis view: a convolution (see nn/analyzable.ts). */
  override weightView(): WeightView {
    return convView(this, this.csr.values, this.csr, this.bornStep);
  }
  /** SynFlow through the convolution. */
  override flow(w?: { abs: Float32Array; ends: Uint32Array }): FlowPath {
    return convFlow(this, w);
  }
  override forward(ctx: StepContext, x: Act): Act {
    return convForward(this, ctx, x, (c, cols) => super.forward(c, cols));
  }
}

/** Dense 2-D convolution: a {@link Linear} `[c_in·k·k][c_out]` applied to im2col columns. */
export class Conv2d extends Linear implements ConvHost {
  readonly dims: ConvDims;
  readonly views = new Map<number, Act>();
  constructor(
    gpu: Gpu,
    name: string,
    readonly geometry: ConvGeometry,
    readonly outChannels: number,
    opts: ConvOptions & { rng: DataRng; init?: "he" | "xavier" | "set" },
  ) {
    const dims = convDims(geometry);
    super(gpu, name, dims.rows, outChannels, opts);
    this.dims = dims;
  }
  /** Features of the output activation: `c_out·oh·ow`. */
  get outFeaturesFlat(): number {
    return this.outChannels * this.dims.positions;
  }
  /** The analysis view: a convolution (see nn/analyzable.ts). */
  override weightView(): WeightView {
    return convView(this, this.weight, null, null);
  }
  /** SynFlow through the convolution. */
  override flow(w?: { abs: Float32Array; ends: Uint32Array }): FlowPath {
    return convFlow(this, w);
  }
  override forward(ctx: StepContext, x: Act): Act {
    return convForward(this, ctx, x, (c, cols) => super.forward(c, cols));
  }
}

/** Non-overlapping max pooling (window = stride = `size`, floor mode); argmax kept for backward. */
export class MaxPool2d implements Layer {
  readonly params: Param[] = [];
  readonly cache: ActCache;
  readonly outHeight: number;
  readonly outWidth: number;
  constructor(readonly gpu: Gpu, readonly name: string, readonly geometry: PoolGeometry) {
    const { oh, ow } = poolDims(geometry);
    this.outHeight = oh;
    this.outWidth = ow;
    this.cache = new ActCache(gpu, name);
  }
  /** `channels·oh·ow`. */
  get outFeatures(): number {
    return this.geometry.channels * this.outHeight * this.outWidth;
  }
  /** The pooling geometry (the analysis's channel-local ablation path reads it). */
  get maxPool(): PoolGeometry {
    return this.geometry;
  }
  /** Pooling mixes the units of a window. */
  unitOp(): Promise<UnitOp> {
    return Promise.resolve({ kind: "mixing", why: `max pooling ${this.name} mixes units` });
  }
  /** SynFlow: the window maximum forward, routed back to it (first maximum). */
  flow(): FlowPath {
    let argmax: Uint32Array | null = null;
    return {
      forward: (a) => {
        const r = maxPoolRef(a, this.geometry, 1);
        argmax = r.argmax;
        return r.y;
      },
      backward: (r) => {
        if (!argmax) throw new FiligreeError(`${this.name}: SynFlow backward before forward`);
        return maxPoolBackwardRef(r, argmax, this.geometry, 1);
      },
    };
  }
  forward(ctx: StepContext, x: Act): Act {
    const g = this.geometry;
    if (x.rows !== g.channels * g.height * g.width) {
      throw new FiligreeError(
        `${this.name}: input has ${x.rows} features, expects ${g.channels}x${g.height}x${g.width}`,
      );
    }
    const B = x.batch;
    const y = this.cache.get("y", this.outFeatures, B);
    const argmax = this.cache.scratch(
      `argmax${roundUp4(B)}`,
      this.outFeatures * roundUp4(B),
      "u32",
    );
    maxPoolForward(ctx.rec, { ...g, x: x.t, y: y.t, argmax, batch: B });
    const tape = ctx.tape;
    if (tape) {
      tape.markProduced(y);
      if (tape.requiresGrad(x)) {
        tape.push(this.name, () => {
          const dy = gradOf(tape, this.cache, y, "y");
          const dx = gradOf(tape, this.cache, x, "x");
          maxPoolBackward(ctx.rec, { ...g, dy: dy.t, argmax, dx: dx.t, batch: B });
        });
      }
    }
    return y;
  }
}
