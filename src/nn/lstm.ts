/**
 * The LSTM model (`model: "lstm"`): a sequence model over the rows of an image (28x28 MNIST = 28
 * time steps of 28 features), with sparse input and recurrent weights, followed by an MLP head
 * on the last hidden state.
 *
 * Cell: `z_t = W_xᵀ·x_t + W_hᵀ·h_{t-1} + b` (4H gate rows i, f, g, o), `i, f, o = σ`,
 * `g = tanh`, `c_t = f·c_{t-1} + i·g`, `h_t = o·tanh(c_t)`, `h_{-1} = c_{-1} = 0`; forget-gate
 * bias initialised to 1, the others to 0.
 *
 * `W_x` `[F][4H]` and `W_h` `[H][4H]` are CSR layers wrapped in {@link SparseLinear} objects for
 * bookkeeping only (parameters, optimizer state, checkpoints, and topology updates, which reach
 * them through `Sequential.sparseLayers` / {@link Lstm.sparseParts}); the layer calls the sparse
 * kernels itself:
 *
 * - forward: one re-layout of the input to `[F][T·ld]`, ONE SpMM of `W_x` over every step (batch
 *   `T·ld`, bias fused), then per step one SpMM of `W_h` (steps > 0) and one cell kernel;
 * - backward (BPTT): per step one cell-backward kernel and one spmmT of `W_h` (steps > 0), then ONE
 *   SDDMM per weight matrix and one bias reduction over all steps (the pre-activation gradients of
 *   every step sit side by side in a `[4H][T·ld]` tensor). For RigL, `lastBatch` of both sparse
 *   parts holds those all-steps tensors (batch `T·ld`), so the dense gradient is the BPTT sum.
 *
 * Per step, 2 dispatches forward and 2 backward: a training step records about `4T + 8`
 * dispatches for the LSTM. When a layer below needs it, the input gradient is one more SpMMᵀ of
 * `W_x` over all steps (`batch T·ld`) and the inverse re-layout (`lstm_seq_t`).
 *
 * The head: `hidden` lists the widths of fully-connected layers between the LSTM and the dense
 * output layer (built by {@link buildMlp}, so activation, norm, dropout and sparsity options apply
 * to it); `hidden: []` (library API) means the output layer reads `h_T` directly.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { buildLstm } from "./lstm.ts";
 * const gpu = await getGpu();
 * const m = buildLstm(gpu, {
 *   model: "lstm", data: { features: 12, classes: 3, shape: [4, 3] }, lstmHidden: 16, hidden: [8],
 *   activation: "relu", norm: "none", normPlacement: "before", dropout: 0, init: "he", seed: 0,
 *   densities: [0.5, 0.5, 0.5, 1],
 * });
 * assert.deepEqual(m.layers.map((l) => l.name), ["lstm", "fc1", "out"]);
 * assert.deepEqual(m.sparseLayers.map((l) => l.name), ["lstm.wx", "lstm.wh", "fc1"]);
 * ```
 * @module
 */
import { FiligreeError, type Gpu, roundUp4, type Tensor } from "../gpu/mod.ts";
import { DataRng, deriveSeed } from "../data/random.ts";
import type { CsrLayer } from "../sparse/csr.ts";
import { biasGrad } from "../kernels/bias.ts";
import { sddmm, spmm, spmmT } from "../kernels/sparse.ts";
import {
  lstmGatesBackward,
  lstmGatesForward,
  lstmSequence,
  lstmSequenceBackward,
} from "../kernels/lstm.ts";
import { type Act, ActCache } from "./act.ts";
import { type Layer, linearView, type Param, SparseLinear, type StepContext } from "./layers.ts";
import type { MultiWeightLayer, WeightView } from "./analyzable.ts";
import { buildMlp, type HasSparseParts, makeSparseLayer, Sequential } from "./mlp.ts";
import { type DataShape, mlpStyle, type ModelSpec, type ModelStructure } from "./spec.ts";

/** Structure of an {@link Lstm} layer. */
export interface LstmOptions {
  /** Time steps T. */
  steps: number;
  /** Input features per step F (the layer input has `T·F` rows, row `t·F + f`). */
  features: number;
  /** Hidden size H. */
  hidden: number;
  /** Input weights `[F][4H]`. */
  wx: CsrLayer;
  /** Recurrent weights `[H][4H]`. */
  wh: CsrLayer;
  /** Initial forget-gate bias (default 1). */
  forgetBias?: number;
}

/** LSTM layer over `steps` time steps; its output is the last hidden state `[H][ld]`. */
export class Lstm implements Layer, HasSparseParts, MultiWeightLayer {
  readonly params: Param[];
  readonly wx: SparseLinear;
  readonly wh: SparseLinear;
  /** f32 `[4H]` gate bias (i, f, g, o blocks). */
  readonly bias: Tensor;
  readonly cache: ActCache;
  readonly steps: number;
  readonly features: number;
  readonly hidden: number;

  constructor(readonly gpu: Gpu, readonly name: string, o: LstmOptions) {
    const { steps, features, hidden } = o;
    for (const [k, v] of [["steps", steps], ["features", features], ["hidden", hidden]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new FiligreeError(`${name}: ${k} must be a positive integer, got ${v}`);
      }
    }
    const G = 4 * hidden;
    if (o.wx.nIn !== features || o.wx.nOut !== G) {
      throw new FiligreeError(
        `${name}: input weights are ${o.wx.nIn}x${o.wx.nOut}, need ${features}x${G}`,
      );
    }
    if (o.wh.nIn !== hidden || o.wh.nOut !== G) {
      throw new FiligreeError(
        `${name}: recurrent weights are ${o.wh.nIn}x${o.wh.nOut}, need ${hidden}x${G}`,
      );
    }
    this.steps = steps;
    this.features = features;
    this.hidden = hidden;
    this.wx = new SparseLinear(gpu, `${name}.wx`, o.wx, {});
    this.wh = new SparseLinear(gpu, `${name}.wh`, o.wh, {});
    this.bias = this.wx.bias;
    const b = new Float32Array(G);
    b.fill(o.forgetBias ?? 1, hidden, 2 * hidden);
    gpu.write(this.bias, b);
    this.params = [
      this.wx.params[0],
      this.wh.params[0],
      { name: `${name}.bias`, value: this.bias, grad: this.wx.params[1].grad, kind: "bias" },
    ];
    this.cache = new ActCache(gpu, name);
  }

  get outFeatures(): number {
    return this.hidden;
  }

  /**
   * The analysis views of the input and recurrent weights (kind "lstm": exact ablation by
   * src/analysis/ablation_lstm.ts). A weight is shared by the T steps: its input is `xs`
   * `[F][T·ld]` (or `hs`, block t = h_{t-1}), the gate gradients `dzs` `[4H][T·ld]`, laid out
   * like a convolution's `[rows·T][ld]`. The pre-activation mixes steps through the recurrence,
   * so there is no patched re-entry: `preActivation` and `reenter` throw.
   */
  weightViews(): WeightView[] {
    const T = this.steps;
    const part = (l: SparseLinear, input: string, rows: number, inFeatures: number): WeightView => {
      const v = linearView(l, {
        kind: "lstm",
        nIn: l.csr.nIn,
        nOut: l.csr.nOut,
        positions: T,
        inFeatures,
        unitRows: 1,
        values: l.csr.values,
        grad: l.params[0].grad,
        csr: l.csr,
        bornStep: l.bornStep,
        input: (inner) => this.cache.get(input, rows, inner),
      });
      const no = (): never => {
        throw new FiligreeError(`${l.name}: an LSTM has no re-entry point (its steps mix)`);
      };
      return { ...v, preActivation: no, reenter: no };
    };
    return [
      part(this.wx, "xs", this.features, T * this.features),
      part(this.wh, "hs", this.hidden, this.hidden),
    ];
  }

  /** The sparse weight matrices (input, recurrent) for topology updates. */
  sparseParts(): SparseLinear[] {
    return [this.wx, this.wh];
  }

  forward(ctx: StepContext, x: Act): Act {
    const { rec, tape } = ctx;
    const S = this.steps, F = this.features, H = this.hidden, G = 4 * H;
    const B = x.batch;
    const ld = roundUp4(B);
    const SB = S * ld; // the "batch" of the all-steps tensors
    if (x.rows !== S * F) {
      throw new FiligreeError(
        `${this.name}: input has ${x.rows} features, expected ${S} steps x ${F} = ${S * F}`,
      );
    }
    const c = this.cache;
    const xs = c.get("xs", F, SB); // [F][T·ld] input, step t = column block t
    const zx = c.get("zx", G, SB); // input part + bias of the gate pre-activations
    const zh = c.get("zh", G, B); // recurrent part of one step
    const cs = c.get("c", H, SB); // cell states
    const gates = c.get("gates", G, SB); // activated gates
    const hs = c.get("hs", H, SB); // block t = h_{t-1} (block 0 stays 0)
    const h = c.get("h", H, B); // h of the previous step
    const y = c.get("y", H, B); // h_{T-1}, the output
    lstmSequence(rec, { x: x.t, xs: xs.t, steps: S, features: F, batch: B });
    spmm(rec, { layer: this.wx.csr, x: xs.t, y: zx.t, batch: SB, bias: this.bias });
    for (let t = 0; t < S; t++) {
      if (t > 0) spmm(rec, { layer: this.wh.csr, x: h.t, y: zh.t, batch: B });
      lstmGatesForward(rec, {
        zx: zx.t,
        zh: zh.t,
        c: cs.t,
        gates: gates.t,
        h: t === S - 1 ? y.t : h.t,
        hs: hs.t,
        hidden: H,
        steps: S,
        t,
        batch: B,
      });
    }
    if (tape) {
      const needDx = tape.requiresGrad(x);
      tape.markProduced(y);
      tape.push(this.name, () => {
        const dy = tape.gradFor(y, () => c.get("grad:y", H, B));
        const dhr = c.get("dhr", H, B);
        const dc = c.get("dc", H, B);
        const dz = c.get("dz", G, B);
        const dzs = c.get("dzs", G, SB);
        for (let t = S - 1; t >= 0; t--) {
          lstmGatesBackward(rec, {
            gates: gates.t,
            c: cs.t,
            dh: dy.t,
            dhr: dhr.t,
            dc: dc.t,
            dz: dz.t,
            dzs: dzs.t,
            hidden: H,
            steps: S,
            t,
            batch: B,
          });
          if (t > 0) spmmT(rec, { layer: this.wh.csr, dy: dz.t, dx: dhr.t, batch: B });
        }
        sddmm(rec, {
          layer: this.wx.csr,
          x: xs.t,
          dy: dzs.t,
          dvalues: this.params[0].grad,
          batch: SB,
        });
        sddmm(rec, {
          layer: this.wh.csr,
          x: hs.t,
          dy: dzs.t,
          dvalues: this.params[1].grad,
          batch: SB,
        });
        biasGrad(rec, { dy: dzs.t, dbias: this.params[2].grad, rows: G, batch: SB });
        if (needDx) {
          // The input gradient: W_x's data gradient over every step at once, laid back out.
          const dxs = c.get("dxs", F, SB);
          spmmT(rec, { layer: this.wx.csr, dy: dzs.t, dx: dxs.t, batch: SB });
          const dx = tape.gradFor(x, () => c.get("grad:x", x.rows, B));
          lstmSequenceBackward(rec, { dxs: dxs.t, dx: dx.t, steps: S, features: F, batch: B });
        }
        this.wx.lastBatch = { x: xs, dz: dzs };
        this.wh.lastBatch = { x: hs, dz: dzs };
      });
    }
    return y;
  }
}

/**
 * The weight shapes `[in, out]` of an LSTM spec in model order: `W_x` `[F, 4H]`, `W_h` `[H, 4H]`,
 * then the head and the output layer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lstmWeightShapes } from "./lstm.ts";
 * const s = lstmWeightShapes({ data: { features: 784, classes: 10, shape: [28, 28] },
 *   lstmHidden: 32, hidden: [8] });
 * assert.deepEqual(s, [[28, 128], [32, 128], [32, 8], [8, 10]]);
 * ```
 */
export function lstmWeightShapes(
  s: Pick<ModelStructure, "data" | "lstmHidden" | "hidden">,
): [number, number][] {
  const [, features] = lstmSteps(s.data);
  const H = lstmHiddenOf(s);
  const widths = [H, ...s.hidden, s.data.classes];
  return [
    [features, 4 * H],
    [H, 4 * H],
    ...widths.slice(0, -1).map((w, l): [number, number] => [w, widths[l + 1]]),
  ];
}

function lstmHiddenOf(s: Pick<ModelStructure, "lstmHidden">): number {
  if (!s.lstmHidden) throw new FiligreeError(`model "lstm" needs lstmHidden`);
  return s.lstmHidden;
}

/** `[steps, features]` of the data, or a one-line error for data that is not a sequence. */
function lstmSteps(data: DataShape): [number, number] {
  if (data.shape.length !== 2) {
    throw new FiligreeError(
      `model "lstm" needs 2-D samples [steps, features] (image rows as time steps); this dataset's samples have shape [${
        data.shape.join(", ")
      }]`,
    );
  }
  const [steps, features] = data.shape;
  if (steps * features !== data.features) {
    throw new FiligreeError(
      `model "lstm": sample shape [${steps}, ${features}] does not match ${data.features} features`,
    );
  }
  return [steps, features];
}

/**
 * Builds the LSTM model a spec describes: the image rows are the time steps (`data.shape` =
 * `[steps, features]`), `lstmHidden` the hidden size, `hidden` the fully-connected head between
 * the LSTM and the dense output layer; `densities` = `[W_x, W_h, ...head]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { buildLstm } from "./lstm.ts";
 * const gpu = await getGpu();
 * const m = buildLstm(gpu, {
 *   model: "lstm", data: { features: 6, classes: 2, shape: [3, 2] }, lstmHidden: 8, hidden: [],
 *   activation: "relu", norm: "none", normPlacement: "before", dropout: 0, init: "he", seed: 0,
 *   densities: [0.5, 0.5, 1],
 * });
 * assert.deepEqual(m.weightCounts(), [32, 128, 16]);
 * ```
 */
export function buildLstm(gpu: Gpu, spec: ModelSpec): Sequential {
  const [steps, features] = lstmSteps(spec.data);
  const H = lstmHiddenOf(spec);
  const shapes = lstmWeightShapes(spec);
  const dens = spec.densities;
  if (dens.length !== shapes.length) {
    throw new FiligreeError(
      `model "lstm": ${shapes.length} weight layers, ${dens.length} densities given`,
    );
  }
  const wx = makeSparseLayer(
    gpu,
    features,
    4 * H,
    dens[0],
    new DataRng(deriveSeed(spec.seed, 2000)),
    spec.init,
    "lstm.wx",
  );
  const wh = makeSparseLayer(
    gpu,
    H,
    4 * H,
    dens[1],
    new DataRng(deriveSeed(spec.seed, 2001)),
    spec.init,
    "lstm.wh",
  );
  const lstm = new Lstm(gpu, "lstm", { steps, features, hidden: H, wx, wh });
  const head = buildMlp(gpu, {
    ...mlpStyle(spec),
    inputs: H,
    classes: spec.data.classes,
    hidden: spec.hidden,
    densities: dens.slice(2),
    seed: spec.seed,
    init: spec.init,
  });
  return new Sequential([lstm, ...head.layers]);
}
