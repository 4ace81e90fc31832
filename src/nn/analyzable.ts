/**
 * What a layer tells the analysis (probe, scores, checkpoints, topology), so that no module
 * outside `nn/` needs to test a layer's class.
 *
 * - A weight layer answers {@link WeightLayer.weightView}: its weight matrix `[nIn][nOut]` (CSR
 *   value array or dense), how many output positions share each weight (`positions`: 1 for a
 *   fully-connected layer, `oh·ow` for a convolution), the evaluation-mode input as the weight
 *   matrix sees it (`[nIn·P][ld]`: the im2col columns of a convolution) and pre-activation
 *   (`[nOut·P][ld]`), the factors of its last weight gradient (`dW = X·dZᵀ` over `P·ld`
 *   columns), and {@link WeightView.reenter}, which continues the forward pass from a patched
 *   pre-activation (the fused activation, at any batch).
 * - `kind` names the exact-ablation engine the probe uses for it (a row of the probe's
 *   `ABLATION_ENGINES` table): `"linear"` and `"conv"` are the patched-copy engines; a recurrent
 *   layer answers `"lstm"` and needs its own engine (src/analysis/ablation_lstm.ts).
 * - Any layer may answer {@link AnalysisLayer.unitOp} (how it acts on one unit in evaluation
 *   mode: identity, an activation, an affine batch norm, SReLU, or "mixing" across units),
 *   {@link AnalysisLayer.unitScale} (a normalization's per-unit output scale, for effective
 *   magnitude), {@link AnalysisLayer.persistentBuffers} (state that is not a parameter but must
 *   be checkpointed: batch norm's running statistics) and {@link AnalysisLayer.flow} (its
 *   SynFlow path: how an all-positive "flow" passes through it, float64 on the CPU).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/mod.ts";
 * import { DataRng } from "../data/random.ts";
 * import { Linear } from "./layers.ts";
 * import { isWeightLayer } from "./analyzable.ts";
 * const gpu = await getGpu();
 * const lin = new Linear(gpu, "fc", 4, 3, { activation: "relu", rng: new DataRng(1) });
 * const v = isWeightLayer(lin) ? lin.weightView() : null;
 * if (!v || v.kind !== "linear" || v.nIn !== 4 || v.nOut !== 3 || v.positions !== 1) {
 *   throw new Error("unexpected view");
 * }
 * ```
 * @module
 */
import type { Recorder, Tensor } from "../gpu/mod.ts";
import type { CsrLayer } from "../sparse/csr.ts";
import type { ConvGeometry, PoolGeometry } from "../kernels/conv.ts";
import type { Act } from "./act.ts";
import type { Layer } from "./layers.ts";

/** The exact-ablation engine a weight layer needs (a row of the probe's engine table). */
export type WeightKind = "linear" | "conv" | "lstm";

/** A weight layer as the analysis sees it. */
export interface WeightView {
  readonly kind: WeightKind;
  readonly name: string;
  /** Rows of the weight matrix (`c_in·k·k` for a convolution). */
  readonly nIn: number;
  /** Columns of the weight matrix (output units or channels). */
  readonly nOut: number;
  /** Output positions that share every weight (1 for a fully-connected layer). */
  readonly positions: number;
  /** Rows of the layer's input activation (`c_in·h·w` for a convolution). */
  readonly inFeatures: number;
  /** Input rows that form one unit of the input (1; `h·w` per channel for a convolution). */
  readonly unitRows: number;
  /** A convolution's geometry (its input image, kernel, stride, padding); absent otherwise. */
  readonly geometry?: ConvGeometry;
  /** The value array: CSR(Wᵀ) value order for sparse layers, `[nIn][nOut]` for dense ones. */
  readonly values: Tensor;
  /** Its gradient (same order), written by the model's backward pass. */
  readonly grad: Tensor;
  /** The CSR structure (sparse layers), else null. */
  readonly csr: CsrLayer | null;
  /** Step each nonzero was last grown (value order), sparse layers only. */
  readonly bornStep: Tensor | null;
  /** Fused activation applied to the pre-activation. */
  readonly act: string;
  readonly actParam: number;
  /** The weight matrix's input of the last forward at `batch`: `[nIn·positions][ld]`. */
  weightInput(batch: number): Act;
  /** The pre-activation of the last forward at `batch`: `[nOut·positions][ld]`. */
  preActivation(batch: number): Act;
  /**
   * The last recorded backward's factors of the weight gradient, `dW = X·dZᵀ`: `x` is
   * `[nIn][positions·ld]`, `dz` is `[nOut][positions·ld]` (null before any backward).
   */
  gradFactors(): { x: Act; dz: Act } | null;
  /** Records the rest of this layer's forward from a (patched) pre-activation `[nOut·P][ld]`. */
  reenter(rec: Recorder, z: Act): Act;
  /**
   * Sparse layers: puts another CSR structure of the same shape (`nIn × nOut`) in the layer's
   * place (the forward pass reads it from then on) and returns the one it replaced, which the
   * caller puts back the same way. For evaluation only (weight-agnostic topologies): born steps
   * and optimizer state are not permuted, and this view's `values`, `csr` and `bornStep` keep
   * describing the old structure. Dense layers throw a FiligreeError.
   */
  replaceCsr(csr: CsrLayer): CsrLayer;
  /**
   * Evaluation hint: while on, a sparse layer's forward skips stored zeros (weights an analysis
   * masked by setting them to 0, e.g. the removal curves), which saves their input loads; the
   * outputs are the same (0·x adds nothing for finite x). Dense layers ignore it. Turn it off
   * before training: a zero-initialised regrown weight must still see its input.
   */
  skipStoredZeros(on: boolean): void;
  /** f32 values held per sample by this layer's forward (for batch-size budgets). */
  readonly floatsPerSample: number;
}

/** A layer with weights the analysis can ask about. */
export interface WeightLayer extends Layer {
  weightView(): WeightView;
}

/**
 * A layer with several weight matrices (the LSTM: input and recurrent), each a view; the
 * analysis treats them as consecutive weight layers at the same model index.
 */
export interface MultiWeightLayer extends Layer {
  weightViews(): WeightView[];
}

/** The weight views of a layer: none, its one view, or its several. */
export function weightViewsOf(l: Layer): WeightView[] {
  if (isWeightLayer(l)) return [l.weightView()];
  const m = (l as Partial<MultiWeightLayer>).weightViews;
  return typeof m === "function" ? m.call(l) : [];
}

/** How a layer acts on each unit in evaluation mode (carry engine, Hessian, scores). */
export type UnitOp =
  | { kind: "identity" }
  | { kind: "act"; activation: string; param: number }
  | {
    kind: "bn";
    gamma: Float32Array;
    beta: Float32Array;
    mean: Float32Array;
    variance: Float32Array;
    eps: number;
  }
  /** SReLU parameters `[4][units]`: t_l, a_l, t_r, a_r. */
  | { kind: "srelu"; params: Float32Array }
  /** Mixes units (layer norm, pooling, ...): the reason, for messages. */
  | { kind: "mixing"; why: string };

/** A layer's SynFlow path: float64 flows of one all-positive sample, feature by feature. */
export interface FlowPath {
  /** The flow after the layer for the flow `a` before it (`|W|` for weight layers). */
  forward(a: Float64Array): Float64Array;
  /** The flow before the layer for the flow `r` after it (the transpose of forward's Jacobian). */
  backward(r: Float64Array): Float64Array;
  /**
   * Weight layers: SynFlow's score per entry (value order), `|w_e|·∂R/∂|w_e|` =
   * `|w_ij|·Σ_p a_cols[i·P+p]·r[j·P+p]` for the input flow `a` and the output flow `r`.
   */
  score?(a: Float64Array, r: Float64Array): Float64Array;
}

/** The optional questions any layer may answer (see the module doc). */
export interface AnalysisLayer extends Layer {
  /** True when the layer is the identity in evaluation mode (dropout). */
  readonly evalIdentity?: boolean;
  /** Non-overlapping max pooling: its geometry (channels, height, width, window). */
  readonly maxPool?: PoolGeometry;
  unitOp?(): Promise<UnitOp>;
  /**
   * Layer norm over a sample's units (evaluation = training: per-sample statistics, biased
   * variance, eps inside the root): its affine parameters, for the exact carry engine
   * (src/analysis/ablation_carry.ts). Such a layer answers `unitOp` with "mixing".
   */
  layerNorm?(): Promise<{ gamma: Float32Array; beta: Float32Array; eps: number }>;
  unitScale?(): Promise<Float64Array>;
  persistentBuffers?(): { name: string; tensor: Tensor }[];
  /**
   * SynFlow path. Weight layers get their |w| (value order) and entry ends (input i, output j)
   * from the caller, which has them on the CPU; other layers get nothing.
   */
  flow?(w?: { abs: Float32Array; ends: Uint32Array }): FlowPath;
}

/** Whether a layer answers {@link WeightLayer.weightView}. */
export function isWeightLayer(l: Layer): l is WeightLayer {
  return typeof (l as Partial<WeightLayer>).weightView === "function";
}

/** A layer's optional analysis answers. */
export function analysisOf(l: Layer): AnalysisLayer {
  return l as AnalysisLayer;
}
