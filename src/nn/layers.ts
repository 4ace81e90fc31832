/**
 * Layers: each records its forward dispatches and pushes its backward onto the tape. Buffers
 * (activations, gradients, scratch) are allocated once per batch size and reused every step.
 *
 * - {@link SparseLinear}: truly sparse (CSR, both orientations over one value array); forward
 *   fuses bias + activation into the SpMM store, weight gradient at the nonzeros only (SDDMM, or
 *   a dense product picked at the nonzeros where that is faster: kernels/sparse.ts weightGrad).
 * - {@link Linear}: dense `[in][out]` weights, register-blocked matmul in the three layouts.
 * - {@link BatchNorm}, {@link LayerNorm}, {@link Activation} (any kernel-library activation),
 *   {@link SReLU} (learnable per-neuron thresholds/slopes), {@link Dropout}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { Linear } from "./layers.ts";
 * import { DataRng } from "../data/random.ts";
 * const gpu = await getGpu();
 * const lin = new Linear(gpu, "fc", 4, 3, { activation: "relu", rng: new DataRng(1) });
 * assert.deepEqual(lin.params.map((p) => p.name), ["fc.weight", "fc.bias"]);
 * ```
 * @module
 */
import { FiligreeError, type Gpu, type Recorder, roundUp4, type Tensor } from "../gpu/mod.ts";
import { biasGrad } from "../kernels/bias.ts";
import { matmul } from "../kernels/matmul.ts";
import {
  activationBackward,
  activationForward,
  sreluBackward,
  sreluForward,
  sreluInitParams,
} from "../kernels/activation.ts";
import { activationId, activationParam } from "../kernels/activation_ids.ts";
import { dropoutBackward, dropoutForward } from "../kernels/dropout.ts";
import {
  batchNormBackward,
  batchNormForwardEval,
  batchNormForwardTrain,
  layerNormBackward,
  layerNormForward,
} from "../kernels/norm.ts";
import { sparseBackward, spmm, weightGrad } from "../kernels/sparse.ts";
import { bnEvalBackward } from "../kernels/analysis.ts";
import type { CsrLayer } from "../sparse/csr.ts";
import type { DataRng } from "../data/random.ts";
import { type Act, ActCache } from "./act.ts";
import type { Tape } from "./tape.ts";
import type { FlowPath, UnitOp, WeightKind, WeightLayer, WeightView } from "./analyzable.ts";

/** A trainable tensor and its gradient. */
export interface Param {
  name: string;
  value: Tensor;
  grad: Tensor;
  /** "weight" for weight matrices (sparse values included), else "bias" / "norm" / "act". */
  kind: "weight" | "bias" | "norm" | "act";
  /** Set for the value array of a sparse layer. */
  sparse?: SparseLinear;
}

/** What a layer needs to record a step. */
export interface StepContext {
  rec: Recorder;
  /** null in evaluation mode. */
  tape: Tape | null;
  /**
   * The uniform with the dropout RNG (seed, step) of this step, written when first asked (a step
   * without dropout writes nothing).
   */
  dropoutRng?: () => GPUBuffer;
  /**
   * Record gradients of the model in evaluation mode (analysis): batch norm uses its running
   * statistics and dropout is the identity, in the forward and the backward pass.
   */
  evalMode?: boolean;
}

/** A layer of a feed-forward model. */
export interface Layer {
  readonly name: string;
  readonly params: Param[];
  /** Output features for `inFeatures` inputs. */
  readonly outFeatures: number;
  forward(ctx: StepContext, x: Act): Act;
}

function gradOf(tape: Tape, cache: ActCache, act: Act, name: string): Act {
  return tape.gradFor(act, () => cache.get(`grad:${name}`, act.rows, act.batch));
}

/** What {@link linearView} needs of a fully-connected layer (or the linear part of a conv). */
interface LinearParts {
  readonly name: string;
  readonly cache: ActCache;
  readonly act: string;
  readonly actParam: number;
  lastBatch: { x: Act; dz: Act } | null;
  /** The CSR structure of a sparse layer (absent for dense ones); see WeightView.replaceCsr. */
  csr?: CsrLayer;
  /** Sparse layers: the forward skips stored zeros (see WeightView.skipStoredZeros). */
  skipZeros?: boolean;
}

/**
 * The analysis view of a fully-connected weight matrix `[nIn][nOut]` used at `positions`
 * output positions per sample (a convolution's im2col product; 1 for a plain layer): its
 * input/pre-activation buffers at batch `P·ld` are re-viewed as `[rows·P][ld]` at batch B.
 */
export function linearView(
  l: LinearParts,
  w: {
    kind: WeightKind;
    nIn: number;
    nOut: number;
    positions: number;
    inFeatures: number;
    unitRows: number;
    values: Tensor;
    grad: Tensor;
    csr: CsrLayer | null;
    bornStep: Tensor | null;
    /** The buffer the weight matrix read its input from at inner batch `P·ld`. */
    input: (innerBatch: number) => Act;
    geometry?: WeightView["geometry"];
  },
): WeightView {
  const P = w.positions;
  const inner = (B: number) => (P === 1 ? B : P * roundUp4(B));
  const asOuter = (a: Act, rows: number, B: number): Act =>
    P === 1 ? a : {
      t: { ...a.t, shape: [rows * P, roundUp4(B)] },
      rows: rows * P,
      batch: B,
    };
  return {
    kind: w.kind,
    name: l.name,
    nIn: w.nIn,
    nOut: w.nOut,
    positions: P,
    inFeatures: w.inFeatures,
    unitRows: w.unitRows,
    ...(w.geometry ? { geometry: w.geometry } : {}),
    values: w.values,
    grad: w.grad,
    csr: w.csr,
    bornStep: w.bornStep,
    act: l.act,
    actParam: l.actParam,
    floatsPerSample: (P > 1 ? w.nIn * P : 0) + 2 * w.nOut * P,
    weightInput: (B) => asOuter(w.input(inner(B)), w.nIn, B),
    preActivation: (B) => asOuter(l.cache.get("z", w.nOut, inner(B)), w.nOut, B),
    gradFactors: () => l.lastBatch,
    reenter(rec, z) {
      if (l.act === "identity") return z;
      const y = l.cache.get("reenter:y", z.rows, z.batch);
      activationForward(rec, {
        z: z.t,
        y: y.t,
        rows: z.rows,
        batch: z.batch,
        activation: l.act,
        param: l.actParam,
      });
      return y;
    },
    skipStoredZeros(on) {
      if (l.csr) l.skipZeros = on;
    },
    replaceCsr(csr) {
      const old = l.csr;
      if (!old) throw new FiligreeError(`${l.name}: a dense layer has no topology to replace`);
      if (csr.nIn !== old.nIn || csr.nOut !== old.nOut) {
        throw new FiligreeError(
          `${l.name}: replacement topology is ${csr.nIn}x${csr.nOut}, the layer ${old.nIn}x${old.nOut}`,
        );
      }
      l.csr = csr;
      return old;
    },
  };
}

/**
 * SynFlow through a weight matrix used at `positions` positions: `cols(a)` maps the input flow
 * to `[nIn·P]` columns (the identity for P = 1), `colsAdjoint` back; `abs` are |w| in value
 * order with `ends` (input i, output j per entry).
 */
export function weightFlow(
  nIn: number,
  nOut: number,
  P: number,
  w: { abs: Float32Array; ends: Uint32Array },
  cols: (a: Float64Array) => Float64Array = (a) => a,
  colsAdjoint: (c: Float64Array) => Float64Array = (c) => c,
): FlowPath {
  return {
    forward(a) {
      const c = cols(a), out = new Float64Array(nOut * P);
      for (let e = 0; e < w.abs.length; e++) {
        const i = w.ends[2 * e], j = w.ends[2 * e + 1], v = w.abs[e];
        for (let p = 0; p < P; p++) out[j * P + p] += v * c[i * P + p];
      }
      return out;
    },
    score(a, r) {
      const c = cols(a), out = new Float64Array(w.abs.length);
      for (let e = 0; e < w.abs.length; e++) {
        const i = w.ends[2 * e], j = w.ends[2 * e + 1];
        let acc = 0;
        for (let p = 0; p < P; p++) acc += c[i * P + p] * r[j * P + p];
        out[e] = w.abs[e] * acc;
      }
      return out;
    },
    backward(r) {
      const c = new Float64Array(nIn * P);
      for (let e = 0; e < w.abs.length; e++) {
        const i = w.ends[2 * e], j = w.ends[2 * e + 1], v = w.abs[e];
        for (let p = 0; p < P; p++) c[i * P + p] += v * r[j * P + p];
      }
      return colsAdjoint(c);
    },
  };
}

const identityFlow: FlowPath = { forward: (a) => a, backward: (r) => r };

/** A fused-activation choice: a kernel-library activation name and its parameter. */
export interface ActivationSpec {
  activation?: string;
  activationParam?: number;
}

/** Fully-connected layer with dense weights `[in][out]`. */
export class Linear implements WeightLayer {
  readonly params: Param[];
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly cache: ActCache;
  readonly act: string;
  readonly actParam: number;
  /** The last recorded backward's input and pre-activation gradient (analysis reads them). */
  lastBatch: { x: Act; dz: Act } | null = null;

  constructor(
    readonly gpu: Gpu,
    readonly name: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: ActivationSpec & { rng: DataRng; init?: "he" | "xavier" | "set" },
  ) {
    this.act = opts.activation ?? "identity";
    activationId(this.act);
    this.actParam = activationParam(this.act, opts.activationParam);
    const w = new Float32Array(inFeatures * outFeatures);
    const std = initStd(opts.init ?? "he", inFeatures, outFeatures);
    for (let i = 0; i < w.length; i++) w[i] = opts.rng.normal() * std;
    this.weight = gpu.tensor("f32", [inFeatures, outFeatures], {
      data: w,
      label: `${name}.weight`,
    });
    this.bias = gpu.tensor("f32", [outFeatures], { zero: true, label: `${name}.bias` });
    this.params = [
      {
        name: `${name}.weight`,
        value: this.weight,
        grad: gpu.tensor("f32", [inFeatures, outFeatures], { zero: true }),
        kind: "weight",
      },
      {
        name: `${name}.bias`,
        value: this.bias,
        grad: gpu.tensor("f32", [outFeatures], { zero: true }),
        kind: "bias",
      },
    ];
    this.cache = new ActCache(gpu, name);
  }

  /** The last forward's input per batch (the analysis reads it through {@link weightView}). */
  readonly inputs = new Map<number, Act>();
  /** The input of the last forward at `batch`. */
  inputOf(batch: number): Act {
    const a = this.inputs.get(batch);
    if (!a) throw new FiligreeError(`${this.name}: no forward pass at batch ${batch} yet`);
    return a;
  }

  /** The analysis view (see nn/analyzable.ts). */
  weightView(): WeightView {
    return linearView(this, {
      kind: "linear",
      nIn: this.inFeatures,
      nOut: this.outFeatures,
      positions: 1,
      inFeatures: this.inFeatures,
      unitRows: 1,
      values: this.weight,
      grad: this.params[0].grad,
      csr: null,
      bornStep: null,
      input: (b) => this.inputOf(b),
    });
  }

  /** SynFlow: `|W|ᵀ a` forward, `|W| r` backward. */
  flow(w?: { abs: Float32Array; ends: Uint32Array }): FlowPath {
    if (!w) throw new FiligreeError(`${this.name}: SynFlow needs the weights`);
    return weightFlow(this.inFeatures, this.outFeatures, 1, w);
  }

  forward(ctx: StepContext, x: Act): Act {
    const { rec } = ctx;
    const B = x.batch;
    const ld = roundUp4(x.batch);
    this.inputs.set(B, x);
    const z = this.cache.get("z", this.outFeatures, B);
    // Z[out][ld] = Wᵀ·X + b (A = W stored [in][out] read transposed), padding columns zero.
    matmul(rec, {
      a: this.weight,
      b: x.t,
      c: z.t,
      m: this.outFeatures,
      n: ld,
      k: this.inFeatures,
      transA: true,
      ldb: ld,
      ldc: ld,
      bias: { t: this.bias, cols: B },
    });
    let y = z;
    if (this.act !== "identity") {
      y = this.cache.get("y", this.outFeatures, B);
      activationForward(rec, {
        z: z.t,
        y: y.t,
        rows: this.outFeatures,
        batch: B,
        activation: this.act,
        param: this.actParam,
      });
    }
    const tape = ctx.tape;
    if (tape) {
      tape.markProduced(y);
      const needDx = tape.requiresGrad(x);
      tape.push(this.name, () => {
        let dz = gradOf(tape, this.cache, y, "y");
        const dbias = this.params[1].grad;
        if (this.act !== "identity") {
          const g = this.cache.get("dz", this.outFeatures, B);
          activationBackward(rec, {
            z: z.t,
            dy: dz.t,
            dz: g.t,
            dbias, // the bias gradient in the same pass
            rows: this.outFeatures,
            batch: B,
            activation: this.act,
            param: this.actParam,
          });
          dz = g;
        }
        this.lastBatch = { x, dz };
        // dW[in][out] = X·dZᵀ (padding columns are zero on both sides).
        matmul(rec, {
          a: x.t,
          b: dz.t,
          c: this.params[0].grad,
          m: this.inFeatures,
          n: this.outFeatures,
          k: ld,
          transB: true,
          lda: ld,
          ldb: ld,
        });
        if (this.act === "identity") {
          biasGrad(rec, { dy: dz.t, dbias, rows: this.outFeatures, batch: B });
        }
        if (needDx) {
          const dx = gradOf(tape, this.cache, x, "x");
          // dX[in][ld] = W·dZ.
          matmul(rec, {
            a: this.weight,
            b: dz.t,
            c: dx.t,
            m: this.inFeatures,
            n: ld,
            k: this.outFeatures,
            ldb: ld,
            ldc: ld,
          });
        }
      });
    }
    return y;
  }
}

/** Standard deviation of the initial weights for a fan-in (sparse layers pass their mean fan-in). */
export function initStd(init: "he" | "xavier" | "set", fanIn: number, fanOut: number): number {
  switch (init) {
    case "he":
      return Math.sqrt(2 / Math.max(1, fanIn));
    case "xavier":
      return Math.sqrt(2 / Math.max(1, fanIn + fanOut));
    case "set":
      return 0.1; // the SET reference tutorial: randn()/10
  }
}

/** Sparse fully-connected layer in CSR storage (memory and work proportional to nnz). */
export class SparseLinear implements WeightLayer {
  readonly params: Param[];
  readonly bias: Tensor;
  readonly cache: ActCache;
  readonly act: string;
  readonly actParam: number;
  /** Step at which each nonzero was last grown (values order); maintained by topology updates. */
  bornStep: Tensor;
  /** Per-nonzero arrays that topology updates must permute with the values (optimizer state, ...). */
  readonly perNonzero: Tensor[] = [];
  /** The last training batch's input and pre-activation gradient (RigL's dense gradient). */
  lastBatch: { x: Act; dz: Act } | null = null;
  /** Set through the analysis view (WeightView.skipStoredZeros): the forward skips stored zeros. */
  skipZeros = false;

  constructor(
    readonly gpu: Gpu,
    readonly name: string,
    public csr: CsrLayer,
    opts: ActivationSpec & { init?: "he" | "xavier" | "set" },
  ) {
    this.act = opts.activation ?? "identity";
    activationId(this.act);
    this.actParam = activationParam(this.act, opts.activationParam);
    this.bias = gpu.tensor("f32", [csr.nOut], { zero: true, label: `${name}.bias` });
    this.bornStep = gpu.tensor("u32", [Math.max(1, csr.values.size)], {
      zero: true,
      label: `${name}.born`,
    });
    this.params = [
      {
        name: `${name}.values`,
        value: csr.values,
        grad: gpu.tensor("f32", [csr.values.size], { zero: true }),
        kind: "weight",
        sparse: this,
      },
      {
        name: `${name}.bias`,
        value: this.bias,
        grad: gpu.tensor("f32", [csr.nOut], { zero: true }),
        kind: "bias",
      },
    ];
    this.cache = new ActCache(gpu, name);
  }

  get inFeatures(): number {
    return this.csr.nIn;
  }
  get outFeatures(): number {
    return this.csr.nOut;
  }

  /** The last forward's input per batch (the analysis reads it through {@link weightView}). */
  readonly inputs = new Map<number, Act>();
  /** The input of the last forward at `batch`. */
  inputOf(batch: number): Act {
    const a = this.inputs.get(batch);
    if (!a) throw new FiligreeError(`${this.name}: no forward pass at batch ${batch} yet`);
    return a;
  }

  /** The analysis view (see nn/analyzable.ts). */
  weightView(): WeightView {
    return linearView(this, {
      kind: "linear",
      nIn: this.csr.nIn,
      nOut: this.csr.nOut,
      positions: 1,
      inFeatures: this.csr.nIn,
      unitRows: 1,
      values: this.csr.values,
      grad: this.params[0].grad,
      csr: this.csr,
      bornStep: this.bornStep,
      input: (b) => this.inputOf(b),
    });
  }

  /** SynFlow: `|W|ᵀ a` forward, `|W| r` backward (over the nonzeros). */
  flow(w?: { abs: Float32Array; ends: Uint32Array }): FlowPath {
    if (!w) throw new FiligreeError(`${this.name}: SynFlow needs the weights`);
    return weightFlow(this.csr.nIn, this.csr.nOut, 1, w);
  }

  forward(ctx: StepContext, x: Act): Act {
    const { rec } = ctx;
    const B = x.batch;
    this.inputs.set(B, x);
    if (x.rows !== this.csr.nIn) {
      throw new FiligreeError(
        `${this.name}: input has ${x.rows} features, layer expects ${this.csr.nIn}`,
      );
    }
    const z = this.cache.get("z", this.outFeatures, B);
    const fused = this.act !== "identity";
    const y = fused ? this.cache.get("y", this.outFeatures, B) : z;
    const tape = ctx.tape;
    // A training step with ReLU takes the derivative from y (relu'(y) = relu'(z): y > 0 exactly
    // where z > 0), so it does not store z; forwards without a tape (evaluation, the analysis
    // probe, which reads the pre-activation afterwards) do.
    const keepZ = fused && !(tape && this.act === "relu");
    spmm(rec, {
      layer: this.csr,
      x: x.t,
      z: keepZ ? z.t : undefined,
      y: y.t,
      batch: B,
      bias: this.bias,
      activation: this.act,
      actParam: this.actParam,
      tune: this.skipZeros ? { skipZero: true } : undefined,
    });
    if (tape) {
      tape.markProduced(y);
      const needDx = tape.requiresGrad(x);
      tape.push(this.name, () => {
        let dz = gradOf(tape, this.cache, y, "y");
        const dbias = this.params[1].grad;
        if (fused) {
          const g = this.cache.get("dz", this.outFeatures, B);
          activationBackward(rec, {
            z: keepZ ? z.t : y.t,
            dy: dz.t,
            dz: g.t,
            dbias, // the bias gradient in the same pass
            rows: this.outFeatures,
            batch: B,
            activation: this.act,
            param: this.actParam,
          });
          dz = g;
        }
        this.lastBatch = { x, dz };
        const wgrad = { layer: this.csr, x: x.t, dy: dz.t, dvalues: this.params[0].grad, batch: B };
        if (needDx) {
          // Weight and input gradients in one pass over the nonzeros where that is faster (each
          // dz row loaded once for both), else SDDMM or the dense product, then spmmT.
          const dx = gradOf(tape, this.cache, x, "x");
          sparseBackward(rec, { ...wgrad, dx: dx.t });
        } else {
          // SDDMM or dense X·dZᵀ picked at the nonzeros, whichever is faster here (WGRAD_RULES).
          weightGrad(rec, wgrad);
        }
        if (!fused) biasGrad(rec, { dy: dz.t, dbias, rows: this.outFeatures, batch: B });
      });
    }
    return y;
  }
}

/** An element-wise activation from the kernel library (when it cannot be fused). */
export class Activation implements Layer {
  readonly params: Param[] = [];
  readonly cache: ActCache;
  readonly param: number;
  constructor(
    readonly gpu: Gpu,
    readonly name: string,
    readonly outFeatures: number,
    readonly activation: string,
    param?: number,
  ) {
    activationId(activation);
    this.param = activationParam(activation, param);
    this.cache = new ActCache(gpu, name);
  }
  /** Unit-wise: the activation. */
  unitOp(): Promise<UnitOp> {
    return Promise.resolve({ kind: "act", activation: this.activation, param: this.param });
  }
  /** SynFlow's linear path skips activations. */
  flow(): FlowPath {
    return identityFlow;
  }
  forward(ctx: StepContext, x: Act): Act {
    const y = this.cache.get("y", x.rows, x.batch);
    activationForward(ctx.rec, {
      z: x.t,
      y: y.t,
      rows: x.rows,
      batch: x.batch,
      activation: this.activation,
      param: this.param,
    });
    const tape = ctx.tape;
    if (tape) {
      tape.markProduced(y);
      if (tape.requiresGrad(x)) {
        tape.push(this.name, () => {
          const dy = gradOf(tape, this.cache, y, "y");
          const dx = gradOf(tape, this.cache, x, "x");
          activationBackward(ctx.rec, {
            z: x.t,
            dy: dy.t,
            dz: dx.t,
            rows: x.rows,
            batch: x.batch,
            activation: this.activation,
            param: this.param,
          });
        });
      }
    }
    return y;
  }
}

/** SReLU with learnable per-neuron (t_l, a_l, t_r, a_r), packed `[4][rows]`. */
export class SReLU implements Layer {
  readonly params: Param[];
  readonly cache: ActCache;
  readonly values: Tensor;
  constructor(readonly gpu: Gpu, readonly name: string, readonly outFeatures: number) {
    this.values = gpu.tensor("f32", [4 * outFeatures], {
      data: sreluInitParams(outFeatures),
      label: `${name}.srelu`,
    });
    this.params = [{
      name: `${name}.srelu`,
      value: this.values,
      grad: gpu.tensor("f32", [4 * outFeatures], { zero: true }),
      kind: "act",
    }];
    this.cache = new ActCache(gpu, name);
  }
  /** Unit-wise: the per-unit SReLU. */
  async unitOp(): Promise<UnitOp> {
    return { kind: "srelu", params: await this.gpu.read(this.values) as Float32Array };
  }
  /** SynFlow's linear path skips activations. */
  flow(): FlowPath {
    return identityFlow;
  }
  forward(ctx: StepContext, x: Act): Act {
    const y = this.cache.get("y", x.rows, x.batch);
    sreluForward(ctx.rec, { z: x.t, params: this.values, y: y.t, rows: x.rows, batch: x.batch });
    const tape = ctx.tape;
    if (tape) {
      tape.markProduced(y);
      const needDx = tape.requiresGrad(x);
      tape.push(this.name, () => {
        const dy = gradOf(tape, this.cache, y, "y");
        const dx = needDx ? gradOf(tape, this.cache, x, "x").t : undefined;
        sreluBackward(ctx.rec, {
          z: x.t,
          dy: dy.t,
          params: this.values,
          dz: dx,
          dparams: this.params[0].grad,
          rows: x.rows,
          batch: x.batch,
        });
      });
    }
    return y;
  }
}

/** Batch normalization over the batch (training: batch statistics; eval: running statistics). */
export class BatchNorm implements Layer {
  readonly params: Param[];
  readonly cache: ActCache;
  readonly gamma: Tensor;
  readonly beta: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  constructor(
    readonly gpu: Gpu,
    readonly name: string,
    readonly outFeatures: number,
    readonly eps = 1e-5,
    readonly momentum = 0.1,
  ) {
    const n = outFeatures;
    this.gamma = gpu.tensor("f32", [n], {
      data: new Float32Array(n).fill(1),
      label: `${name}.gamma`,
    });
    this.beta = gpu.tensor("f32", [n], { zero: true, label: `${name}.beta` });
    this.runningMean = gpu.tensor("f32", [n], { zero: true, label: `${name}.running_mean` });
    this.runningVar = gpu.tensor("f32", [n], {
      data: new Float32Array(n).fill(1),
      label: `${name}.running_var`,
    });
    this.params = [
      {
        name: `${name}.gamma`,
        value: this.gamma,
        grad: gpu.tensor("f32", [n], { zero: true }),
        kind: "norm",
      },
      {
        name: `${name}.beta`,
        value: this.beta,
        grad: gpu.tensor("f32", [n], { zero: true }),
        kind: "norm",
      },
    ];
    this.cache = new ActCache(gpu, name);
  }
  /** Unit-wise in evaluation mode: an affine map with the running statistics. */
  async unitOp(): Promise<UnitOp> {
    const [gamma, beta, mean, variance] = await Promise.all(
      [this.gamma, this.beta, this.runningMean, this.runningVar].map((t) => this.gpu.read(t)),
    ) as Float32Array[];
    return { kind: "bn", gamma, beta, mean, variance, eps: this.eps };
  }
  /** Evaluation-mode output scale per unit, `|γ_j|/√(running_var_j + ε)`. */
  async unitScale(): Promise<Float64Array> {
    const [g, v] = await Promise.all([this.gpu.read(this.gamma), this.gpu.read(this.runningVar)]);
    return Float64Array.from(
      { length: this.outFeatures },
      (_, j) => Math.abs(g[j]) / Math.sqrt(v[j] + this.eps),
    );
  }
  /** The running statistics (not parameters, but part of a checkpoint). */
  persistentBuffers(): { name: string; tensor: Tensor }[] {
    return [
      { name: `${this.name}.running_mean`, tensor: this.runningMean },
      { name: `${this.name}.running_var`, tensor: this.runningVar },
    ];
  }
  /** SynFlow's linear path skips normalization. */
  flow(): FlowPath {
    return identityFlow;
  }
  forward(ctx: StepContext, x: Act): Act {
    const n = this.outFeatures;
    const y = this.cache.get("y", x.rows, x.batch);
    const tape = ctx.tape;
    tape?.requiresGrad(x); // registers this op as x's consumer (the tape refuses fan-out)
    if (!tape || ctx.evalMode) {
      batchNormForwardEval(ctx.rec, {
        x: x.t,
        gamma: this.gamma,
        beta: this.beta,
        runningMean: this.runningMean,
        runningVar: this.runningVar,
        y: y.t,
        rows: n,
        batch: x.batch,
        eps: this.eps,
      });
      if (tape) {
        // Evaluation-mode gradient (analysis): a per-feature affine map with running stats.
        tape.markProduced(y);
        tape.push(this.name, () => {
          const dy = gradOf(tape, this.cache, y, "y");
          const dx = gradOf(tape, this.cache, x, "x");
          bnEvalBackward(ctx.rec, {
            dy: dy.t,
            gamma: this.gamma,
            runningVar: this.runningVar,
            dx: dx.t,
            rows: n,
            batch: x.batch,
            eps: this.eps,
          });
        });
      }
      return y;
    }
    const saveMean = this.cache.scratch("mean", n);
    const saveInvStd = this.cache.scratch("invstd", n);
    batchNormForwardTrain(ctx.rec, {
      x: x.t,
      gamma: this.gamma,
      beta: this.beta,
      y: y.t,
      saveMean,
      saveInvStd,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      rows: n,
      batch: x.batch,
      eps: this.eps,
      momentum: this.momentum,
    });
    tape.markProduced(y);
    tape.push(this.name, () => {
      const dy = gradOf(tape, this.cache, y, "y");
      const dx = gradOf(tape, this.cache, x, "x");
      batchNormBackward(ctx.rec, {
        x: x.t,
        gamma: this.gamma,
        dy: dy.t,
        saveMean,
        saveInvStd,
        dx: dx.t,
        dgamma: this.params[0].grad,
        dbeta: this.params[1].grad,
        rows: n,
        batch: x.batch,
      });
    });
    return y;
  }
}

/** Layer normalization over the features of each sample. */
export class LayerNorm implements Layer {
  readonly params: Param[];
  readonly cache: ActCache;
  readonly gamma: Tensor;
  readonly beta: Tensor;
  constructor(
    readonly gpu: Gpu,
    readonly name: string,
    readonly outFeatures: number,
    readonly eps = 1e-5,
  ) {
    const n = outFeatures;
    this.gamma = gpu.tensor("f32", [n], {
      data: new Float32Array(n).fill(1),
      label: `${name}.gamma`,
    });
    this.beta = gpu.tensor("f32", [n], { zero: true, label: `${name}.beta` });
    this.params = [
      {
        name: `${name}.gamma`,
        value: this.gamma,
        grad: gpu.tensor("f32", [n], { zero: true }),
        kind: "norm",
      },
      {
        name: `${name}.beta`,
        value: this.beta,
        grad: gpu.tensor("f32", [n], { zero: true }),
        kind: "norm",
      },
    ];
    this.cache = new ActCache(gpu, name);
  }
  /** Layer norm mixes all units of a sample. */
  unitOp(): Promise<UnitOp> {
    return Promise.resolve({
      kind: "mixing",
      why: `layer norm ${this.name} mixes all units of a sample`,
    });
  }
  /** γ, β and eps, for the exact carry engine (AnalysisLayer.layerNorm). */
  async layerNorm(): Promise<{ gamma: Float32Array; beta: Float32Array; eps: number }> {
    const [gamma, beta] = await Promise.all([this.gpu.read(this.gamma), this.gpu.read(this.beta)]);
    return { gamma: gamma as Float32Array, beta: beta as Float32Array, eps: this.eps };
  }
  /** Per-unit scale shared by the samples: `|γ_j|` (1/σ is per sample and common to all units). */
  async unitScale(): Promise<Float64Array> {
    const g = await this.gpu.read(this.gamma);
    return Float64Array.from({ length: this.outFeatures }, (_, j) => Math.abs(g[j]));
  }
  /** SynFlow's linear path skips normalization. */
  flow(): FlowPath {
    return identityFlow;
  }
  forward(ctx: StepContext, x: Act): Act {
    const n = this.outFeatures;
    const y = this.cache.get("y", x.rows, x.batch);
    const ld = roundUp4(x.batch);
    const saveMean = this.cache.scratch(`mean${ld}`, ld);
    const saveInvStd = this.cache.scratch(`invstd${ld}`, ld);
    layerNormForward(ctx.rec, {
      x: x.t,
      gamma: this.gamma,
      beta: this.beta,
      y: y.t,
      saveMean,
      saveInvStd,
      rows: n,
      batch: x.batch,
      eps: this.eps,
    });
    const tape = ctx.tape;
    if (tape) {
      tape.requiresGrad(x); // registers this op as x's consumer (the tape refuses fan-out)
      tape.markProduced(y);
      tape.push(this.name, () => {
        const dy = gradOf(tape, this.cache, y, "y");
        const dx = gradOf(tape, this.cache, x, "x");
        layerNormBackward(ctx.rec, {
          x: x.t,
          gamma: this.gamma,
          dy: dy.t,
          saveMean,
          saveInvStd,
          dx: dx.t,
          dgamma: this.params[0].grad,
          dbeta: this.params[1].grad,
          rows: n,
          batch: x.batch,
        });
      });
    }
    return y;
  }
}

/** Inverted dropout; identity in evaluation mode. The mask is recomputed in backward from (seed, step, stream). */
export class Dropout implements Layer {
  readonly params: Param[] = [];
  readonly cache: ActCache;
  constructor(
    readonly gpu: Gpu,
    readonly name: string,
    readonly outFeatures: number,
    readonly p: number,
    readonly stream: number,
  ) {
    this.cache = new ActCache(gpu, name);
  }
  /** The identity in evaluation mode. */
  readonly evalIdentity = true;
  /** The identity in evaluation mode. */
  unitOp(): Promise<UnitOp> {
    return Promise.resolve({ kind: "identity" });
  }
  /** The identity on the SynFlow path. */
  flow(): FlowPath {
    return identityFlow;
  }
  forward(ctx: StepContext, x: Act): Act {
    const tape = ctx.tape;
    if (!tape || this.p === 0 || ctx.evalMode) return x;
    const rng = ctx.dropoutRng?.();
    if (!rng) {
      throw new FiligreeError(`${this.name}: training step without a dropout RNG uniform`);
    }
    const y = this.cache.get("y", x.rows, x.batch);
    dropoutForward(ctx.rec, {
      x: x.t,
      y: y.t,
      rows: x.rows,
      batch: x.batch,
      p: this.p,
      rng,
      stream: this.stream,
    });
    tape.markProduced(y);
    if (tape.requiresGrad(x)) {
      tape.push(this.name, () => {
        const dy = gradOf(tape, this.cache, y, "y");
        const dx = gradOf(tape, this.cache, x, "x");
        dropoutBackward(ctx.rec, {
          dy: dy.t,
          dx: dx.t,
          rows: x.rows,
          batch: x.batch,
          p: this.p,
          rng,
          stream: this.stream,
        });
      });
    }
    return y;
  }
}
