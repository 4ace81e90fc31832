/**
 * Kernels of the importance analysis. Shader: shaders/analysis.wgsl; float64 references:
 * analysis_ref.ts.
 *
 * - {@link patchColumns}: replicate a cached `[rows][S]` activation K times, correcting one row
 *   per copy: rank-1 (`z_j -= w_ij·x_i`, a single-weight ablation) or zero (a unit ablation);
 *   with row groups (`group` > 1) the rows of a convolution channel (kernels/ablation_conv.ts).
 * - {@link ablationMetrics}: per ablation, the loss sum and the correct count over its S columns.
 * - {@link mapElements}: `x²`, `|x|`, `x + α·g`, `x·g`.
 * - {@link rowSumSq}: `Σ_c x[r][c]²` per row (activation norms for Wanda).
 * - {@link entryScores}: one importance score per weight from its value, gradient, Fisher,
 *   Hessian-vector product and the vectors of its end units.
 * - {@link bnEvalBackward}: batch norm's backward in evaluation mode (running statistics).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { patchColumns } from "./analysis.ts";
 * const gpu = await getGpu();
 * // z: 2 rows x 1 sample; x: 1 row; one ablation of w_00 = 2 -> z_0 - 2*x_0.
 * const z = gpu.tensor("f32", [2, 4], { data: new Float32Array([5, 0, 0, 0, 7, 0, 0, 0]) });
 * const x = gpu.tensor("f32", [1, 4], { data: new Float32Array([1.5, 0, 0, 0]) });
 * const out = gpu.tensor("f32", [2, 4]);
 * const rec = gpu.recorder();
 * patchColumns(rec, { cached: z, x, rows: 2, samples: 1, ablations: [{ i: 0, j: 0, w: 2 }], out });
 * rec.submit();
 * assert.deepEqual(await gpu.read(out), new Float32Array([2, 0, 0, 0, 7, 0, 0, 0]));
 * ```
 * @module
 */
import analysisCode from "../../shaders/analysis.wgsl" with { type: "text" };
import carryCode from "../../shaders/ablation_carry.wgsl" with { type: "text" };
import carryBufferFns from "../../shaders/ablation_carry_buffers_fns.wgsl" with { type: "text" };
import carryTextureFns from "../../shaders/ablation_carry_textures_fns.wgsl" with { type: "text" };
import { type InputSource, preferTextures } from "./sparse.ts";
import { activationId, withActivations } from "./activation_ids.ts";
import { withAblationFns } from "./ablation_fns.ts";
import {
  type BindingKind,
  canMirror,
  defineKernel,
  f32,
  FiligreeError,
  grid,
  MAX_LOOP_TRIPS,
  mirror,
  type MirrorFormat,
  packParams,
  type ParamField,
  type Recorder,
  requireTensor,
  type Resource,
  roundUp4,
  type Tensor,
} from "../gpu/mod.ts";

const WG = 64;
const code = withAblationFns(analysisCode);

export const PATCH_COLUMNS = defineKernel({
  shader: "analysis.wgsl",
  code,
  entry: "patch_columns",
  bindings: [
    ["pp", "uniform"],
    ["cached", "read"],
    ["x_in", "read"],
    ["abl", "read"],
    ["patched", "read_write"],
  ],
  textureInputs: true,
});
/**
 * `patch_columns` with four columns per invocation (vec4 loads and stores, the same bits);
 * {@link patchColumns} runs it when the sample count is a multiple of 4.
 */
export const PATCH_COLUMNS4 = defineKernel({
  shader: "analysis.wgsl",
  code,
  entry: "patch_columns4",
  bindings: [
    ["pp", "uniform"],
    ["cached4", "read"],
    ["x4_in", "read"],
    ["abl", "read"],
    ["patched4", "read_write"],
  ],
  textureInputs: true,
});
/** `replace_term`: see {@link replaceTerm}. */
export const REPLACE_TERM = defineKernel({
  shader: "analysis.wgsl",
  code,
  entry: "replace_term",
  bindings: [
    ["pp", "uniform"],
    ["rt_cached", "read"],
    ["rt_old", "read"],
    ["rt_new", "read"],
    ["rt_out", "read_write"],
  ],
  textureInputs: true,
});
/** `replace_term4`: {@link replaceTerm} with four columns per invocation (`samples % 4 == 0`). */
export const REPLACE_TERM4 = defineKernel({
  shader: "analysis.wgsl",
  code,
  entry: "replace_term4",
  bindings: [
    ["pp", "uniform"],
    ["rt4_cached", "read"],
    ["rt4_old", "read"],
    ["rt4_new", "read"],
    ["rt4_out", "read_write"],
  ],
  textureInputs: true,
});
export const ABLATION_METRICS = defineKernel({
  shader: "analysis.wgsl",
  code,
  entry: "ablation_metrics",
  bindings: [["mp", "uniform"], ["logits", "read"], ["labels", "read"], ["sums", "read_write"]],
});
export const MAP_ELEMENTS = defineKernel({
  shader: "analysis.wgsl",
  code,
  entry: "map_elements",
  bindings: [["ep", "uniform"], ["src", "read"], ["g_in", "read"], ["dst", "read_write"]],
});
export const ROW_SUMSQ = defineKernel({
  shader: "analysis.wgsl",
  code,
  entry: "row_sumsq",
  bindings: [["rp", "uniform"], ["act_in", "read"], ["row_out", "read_write"]],
});
export const ENTRY_SCORES = defineKernel({
  shader: "analysis.wgsl",
  code,
  entry: "entry_scores",
  bindings: [
    ["sp", "uniform"],
    ["w_in", "read"],
    ["grad_in", "read"],
    ["hg_in", "read"],
    ["fisher_in", "read"],
    ["ends", "read"],
    ["row_sq", "read"],
    ["flow_in", "read"],
    ["flow_out", "read"],
    ["score_out", "read_write"],
  ],
});
export const BN_EVAL_BACKWARD = defineKernel({
  shader: "analysis.wgsl",
  code,
  entry: "bn_eval_backward",
  bindings: [
    ["bp", "uniform"],
    ["dy_in", "read"],
    ["gamma", "read"],
    ["running_var", "read"],
    ["dx_out", "read_write"],
  ],
});

const need = (t: Tensor, n: number, what: string) => requireTensor(t, n, what);

/** One single-weight ablation: input row `i`, output row `j`, weight value `w`. */
export interface WeightAblation {
  i: number;
  j: number;
  w: number;
}

/** Packs ablations as the shader's `[i, j, bits(w)]` triples. */
export function packAblations(a: readonly WeightAblation[]): Uint32Array {
  const out = new Uint32Array(Math.max(3, 3 * a.length));
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  a.forEach((x, k) => {
    f[0] = x.w;
    out[3 * k] = x.i;
    out[3 * k + 1] = x.j;
    out[3 * k + 2] = u[0];
  });
  return out;
}

/** Arguments of {@link patchColumns}. */
export interface PatchArgs {
  /** Cached `[rows][roundUp4(samples)]` (pre-activations for weights, unit outputs for units). */
  cached: Tensor;
  /** The layer input `[nIn][roundUp4(samples)]` (rank-1 mode only; ignored for units). */
  x?: Tensor;
  rows: number;
  /**
   * Rows per unit G (default 1): unit j owns rows `j·G .. j·G + G − 1`, and a rank-1 patch of
   * row `r` uses input row `i·G + r mod G` (a convolution's positions; see
   * kernels/ablation_conv.ts).
   */
  group?: number;
  samples: number;
  /** Weight ablations (rank-1) or, with `mode: "zero"`, units as `{ i: 0, j: unit, w: 0 }`. */
  ablations: readonly WeightAblation[] | Tensor;
  /** Number of ablations when `ablations` is an uploaded tensor. */
  count?: number;
  /**
   * "rank1" (default): all rows, the ablated unit's corrected; "zero": the unit's rows zeroed;
   * "channel": only the ablated unit's `group` rows, corrected (`rows` = `group`).
   */
  mode?: "rank1" | "zero" | "channel";
  /** `[rows][roundUp4(K·samples)]`, column `k·samples + s`. */
  out: Tensor;
  /**
   * `vec4`: four columns per invocation (needs `samples % 4 == 0`); `scalar`: one. Default:
   * `vec4` where it applies.
   */
  variant?: "scalar" | "vec4";
}

/**
 * Builds K patched copies of a cached activation (see the module doc). `name` prefixes error
 * messages (a wrapper passes its own).
 */
export function patchColumns(rec: Recorder, a: PatchArgs, name = "patchColumns"): void {
  const gpu = rec.gpu;
  const k = Array.isArray(a.ablations) ? a.ablations.length : a.count;
  if (!k || k < 1) throw new FiligreeError(`${name}: no ablations`);
  const group = a.group ?? 1;
  if (a.mode === "channel" && a.rows !== group) {
    throw new FiligreeError(`${name}: channel mode writes ${group} rows, not ${a.rows}`);
  }
  if (!(group >= 1) || a.rows % group !== 0) {
    throw new FiligreeError(`${name}: ${a.rows} rows are not groups of ${group}`);
  }
  const ldS = roundUp4(a.samples), ldN = roundUp4(k * a.samples);
  need(a.cached, a.rows * ldS, `${name} cached`);
  need(a.out, a.rows * ldN, `${name} out`);
  const abl = Array.isArray(a.ablations)
    ? gpu.tensor("u32", [3 * k], { data: packAblations(a.ablations), label: "ablations" })
    : a.ablations as Tensor;
  need(abl, 3 * k, `${name} ablations`);
  const mode = a.mode === "zero" ? 1 : a.mode === "channel" ? 2 : 0;
  if (mode !== 1 && !a.x) throw new FiligreeError(`${name}: rank-1 mode needs the input x`);
  const p = gpu.uniform(packParams([a.rows, a.samples, ldS, ldN, k, mode, group]));
  const vec4 = (a.variant ?? (a.samples % 4 === 0 ? "vec4" : "scalar")) === "vec4";
  if (vec4 && a.samples % 4 !== 0) {
    throw new FiligreeError(`${name}: the vec4 variant needs samples % 4 == 0, got ${a.samples}`);
  }
  const x = a.x ?? a.cached;
  rec.dispatch(
    gpu.kernel(vec4 ? PATCH_COLUMNS4 : PATCH_COLUMNS, { WG }),
    vec4
      ? { pp: p, cached4: a.cached, x4_in: x, abl, patched4: a.out }
      : { pp: p, cached: a.cached, x_in: x, abl, patched: a.out },
    grid(gpu, Math.ceil((a.rows * ldN) / (vec4 ? 4 : 1) / WG)),
  );
}

/** Arguments of {@link replaceTerm}. */
export interface ReplaceTermArgs {
  /** `[rows][roundUp4(samples)]`: the cached pre-activation. */
  cached: Tensor;
  /** `[rows][roundUp4(samples)]`: the term the unablated input contributed to it. */
  old: Tensor;
  /** `[rows][roundUp4(K·samples)]`: the term each copy's ablated input contributes. */
  fresh: Tensor;
  rows: number;
  samples: number;
  count: number;
  /** `[rows][roundUp4(K·samples)]`, column `k·samples + s`; padding columns 0. */
  out: Tensor;
  /** As {@link PatchArgs.variant}: `vec4` (default where `samples % 4 == 0`) or `scalar`. */
  variant?: "scalar" | "vec4";
}

/**
 * K copies of a cached pre-activation with one input's term replaced:
 * `out[r][k·S+s] = cached[r][s] − old[r][s] + fresh[r][k·S+s]` (a convolution's input channel
 * after an ablation in the convolution before it; src/analysis/probe.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { replaceTerm } from "./analysis.ts";
 * const gpu = await getGpu();
 * const t = (v: number[]) => gpu.tensor("f32", [v.length], { data: Float32Array.from(v) });
 * // 1 row, 1 sample, 2 copies: 5 - 2 + [1, 3]
 * const out = gpu.tensor("f32", [4]);
 * const rec = gpu.recorder();
 * replaceTerm(rec, {
 *   cached: t([5, 0, 0, 0]), old: t([2, 0, 0, 0]), fresh: t([1, 3, 0, 0]),
 *   rows: 1, samples: 1, count: 2, out,
 * });
 * rec.submit();
 * assert.deepEqual([...await gpu.read(out)], [4, 6, 0, 0]);
 * ```
 */
export function replaceTerm(rec: Recorder, a: ReplaceTermArgs): void {
  const gpu = rec.gpu, name = "replaceTerm";
  if (!(a.count >= 1) || !(a.rows >= 1) || !(a.samples >= 1)) {
    throw new FiligreeError(`${name}: rows, samples and count must be positive`);
  }
  const ldS = roundUp4(a.samples), ldN = roundUp4(a.count * a.samples);
  need(a.cached, a.rows * ldS, `${name} cached`);
  need(a.old, a.rows * ldS, `${name} old`);
  need(a.fresh, a.rows * ldN, `${name} fresh`);
  need(a.out, a.rows * ldN, `${name} out`);
  const p = gpu.uniform(packParams([a.rows, a.samples, ldS, ldN, a.count, 0, 1]));
  const vec4 = (a.variant ?? (a.samples % 4 === 0 ? "vec4" : "scalar")) === "vec4";
  if (vec4 && a.samples % 4 !== 0) {
    throw new FiligreeError(`${name}: the vec4 variant needs samples % 4 == 0, got ${a.samples}`);
  }
  rec.dispatch(
    gpu.kernel(vec4 ? REPLACE_TERM4 : REPLACE_TERM, { WG }),
    vec4
      ? { pp: p, rt4_cached: a.cached, rt4_old: a.old, rt4_new: a.fresh, rt4_out: a.out }
      : { pp: p, rt_cached: a.cached, rt_old: a.old, rt_new: a.fresh, rt_out: a.out },
    grid(gpu, Math.ceil((a.rows * ldN) / (vec4 ? 4 : 1) / WG)),
  );
}

/** Loss functions the metrics kernel knows (the trainer's `loss` + `outputActivation`). */
export type MetricLoss = "xent" | "mse" | "mse-sigmoid";

/** Arguments of {@link ablationMetrics}. */
export interface MetricArgs {
  /** `[classes][roundUp4(K·samples)]`. */
  logits: Tensor;
  /** u32 labels of the S samples (shared by every ablation). */
  labels: Tensor;
  classes: number;
  samples: number;
  count: number;
  loss: MetricLoss;
  /** f32 `[2·count]`: per ablation loss sum and correct count. */
  sums: Tensor;
}

/** Per-ablation loss sum and correct count over its S columns (one workgroup per ablation). */
export function ablationMetrics(rec: Recorder, a: MetricArgs): void {
  const gpu = rec.gpu;
  const ldN = roundUp4(a.count * a.samples);
  const trips = (Math.ceil(a.samples / 64) + 1) * 2 * a.classes;
  if (trips > MAX_LOOP_TRIPS) {
    throw new FiligreeError(
      `ablationMetrics: ${a.samples} samples x ${a.classes} classes over the loop bound`,
    );
  }
  need(a.logits, a.classes * ldN, "ablationMetrics logits");
  need(a.labels, a.samples, "ablationMetrics labels");
  need(a.sums, 2 * a.count, "ablationMetrics sums");
  const loss = a.loss === "xent" ? 0 : a.loss === "mse" ? 1 : 2;
  const p = gpu.uniform(packParams([a.classes, a.samples, ldN, a.count, loss]));
  rec.dispatch(
    gpu.kernel(ABLATION_METRICS),
    { mp: p, logits: a.logits, labels: a.labels, sums: a.sums },
    grid(gpu, a.count),
  );
}

/** Element-wise maps of {@link mapElements}. */
export type MapOp = "square" | "abs" | "axpy" | "mul";

/** `dst = src²`, `|src|`, `src + alpha·g` or `src·g` over `n` elements (`dst` distinct from `src` and `g`). */
export function mapElements(
  rec: Recorder,
  a: { src: Tensor; dst: Tensor; n: number; op: MapOp; g?: Tensor; alpha?: number },
): void {
  const gpu = rec.gpu;
  need(a.src, a.n, "mapElements src");
  need(a.dst, a.n, "mapElements dst");
  const op = { square: 0, abs: 1, axpy: 2, mul: 3 }[a.op];
  if (op >= 2) {
    if (!a.g) throw new FiligreeError(`mapElements: ${a.op} needs g`);
    need(a.g, a.n, "mapElements g");
  }
  const p = gpu.uniform(packParams([a.n, op, f32(a.alpha ?? 0)]));
  rec.dispatch(
    gpu.kernel(MAP_ELEMENTS, { WG }),
    { ep: p, src: a.src, g_in: a.g ?? a.src, dst: a.dst },
    grid(gpu, Math.ceil(a.n / WG)),
  );
}

/** `out[r] = Σ_{c < batch} x[r][c]²` for a feature-major `[rows][roundUp4(batch)]` tensor. */
export function rowSumSq(
  rec: Recorder,
  a: { x: Tensor; out: Tensor; rows: number; batch: number },
): void {
  const gpu = rec.gpu;
  if (a.batch > MAX_LOOP_TRIPS) {
    throw new FiligreeError(`rowSumSq: batch ${a.batch} over the loop bound ${MAX_LOOP_TRIPS}`);
  }
  const ld = roundUp4(a.batch);
  need(a.x, a.rows * ld, "rowSumSq x");
  need(a.out, a.rows, "rowSumSq out");
  const p = gpu.uniform(packParams([a.rows, a.batch, ld]));
  rec.dispatch(
    gpu.kernel(ROW_SUMSQ, { WG }),
    { rp: p, act_in: a.x, row_out: a.out },
    grid(gpu, Math.ceil(a.rows / WG)),
  );
}

/** Score ids of the shader's `entry_scores` (the order of SCORE_NAMES). */
export const SCORE_IDS = {
  magnitude: 0,
  snip: 1,
  taylor: 2,
  obd: 3,
  grasp: 4,
  synflow: 5,
  wanda: 6,
  random: 7,
} as const;

/** Inputs of {@link entryScores}; every per-entry array is in the layer's value order. */
export interface EntryScoreArgs {
  score: keyof typeof SCORE_IDS;
  n: number;
  w: Tensor;
  grad?: Tensor;
  hg?: Tensor;
  fisher?: Tensor;
  /** u32 `[2n]`: input row i and output row j of each entry. */
  ends?: Tensor;
  /** Per input row: Σ x² over the evaluation set. */
  rowSq?: Tensor;
  /** SynFlow vectors: `|W|`-flow into the input units and back from the output units. */
  flowIn?: Tensor;
  flowOut?: Tensor;
  /** Multiplies the Fisher sums (per-sample gradient normalization). */
  fisherScale?: number;
  seed?: number;
  out: Tensor;
}

/** Writes one importance score per entry (see SCORE_IDS; formulas in shaders/analysis.wgsl). */
export function entryScores(rec: Recorder, a: EntryScoreArgs): void {
  const gpu = rec.gpu;
  const id = SCORE_IDS[a.score];
  const needs: Record<number, (keyof EntryScoreArgs)[]> = {
    1: ["grad"],
    2: ["grad"],
    3: ["fisher"],
    4: ["hg"],
    5: ["ends", "flowIn", "flowOut"],
    6: ["ends", "rowSq"],
  };
  for (const k of needs[id] ?? []) {
    if (!a[k]) throw new FiligreeError(`entryScores ${a.score}: missing input "${k}"`);
  }
  need(a.w, a.n, "entryScores w");
  need(a.out, a.n, "entryScores out");
  if (a.ends) need(a.ends, 2 * a.n, "entryScores ends");
  const any = a.w;
  const p = gpu.uniform(
    packParams([a.n, id, (a.seed ?? 0) >>> 0, f32(a.fisherScale ?? 1)]),
  );
  rec.dispatch(
    gpu.kernel(ENTRY_SCORES, { WG }),
    {
      sp: p,
      w_in: a.w,
      grad_in: a.grad ?? any,
      hg_in: a.hg ?? any,
      fisher_in: a.fisher ?? any,
      ends: a.ends ?? any,
      row_sq: a.rowSq ?? any,
      flow_in: a.flowIn ?? any,
      flow_out: a.flowOut ?? any,
      score_out: a.out,
    },
    grid(gpu, Math.ceil(a.n / WG)),
  );
}

/** Batch norm backward in evaluation mode: `dx = dy·γ/√(running_var + eps)`, padding 0. */
export function bnEvalBackward(
  rec: Recorder,
  a: {
    dy: Tensor;
    gamma: Tensor;
    runningVar: Tensor;
    dx: Tensor;
    rows: number;
    batch: number;
    eps: number;
  },
): void {
  const gpu = rec.gpu;
  const ld = roundUp4(a.batch);
  need(a.dy, a.rows * ld, "bnEvalBackward dy");
  need(a.dx, a.rows * ld, "bnEvalBackward dx");
  need(a.gamma, a.rows, "bnEvalBackward gamma");
  need(a.runningVar, a.rows, "bnEvalBackward running_var");
  const p = gpu.uniform(packParams([a.rows, a.batch, ld, f32(a.eps)]));
  rec.dispatch(
    gpu.kernel(BN_EVAL_BACKWARD, { WG }),
    { bp: p, dy_in: a.dy, gamma: a.gamma, running_var: a.runningVar, dx_out: a.dx },
    grid(gpu, Math.ceil((a.rows * ld) / WG)),
  );
}

export const ABLATED_ROW = defineKernel({
  shader: "analysis.wgsl",
  code,
  entry: "ablated_row",
  bindings: [
    ["rq", "uniform"],
    ["z_rows", "read"],
    ["x_rows", "read"],
    ["abl_row", "read"],
    ["z_out", "read_write"],
  ],
});
export const PATCH_NEXT = defineKernel({
  shader: "analysis.wgsl",
  code,
  entry: "patch_next",
  bindings: [
    ["nq", "uniform"],
    ["z_next", "read"],
    ["h_cached", "read"],
    ["h_new", "read"],
    ["w_out", "read"],
    ["abl_next", "read"],
    ["z_next_out", "read_write"],
  ],
});

/**
 * The ablated units' new pre-activations, one row of K·S columns:
 * `out[k·S + s] = z[j_k][s] - w_k·x[i_k][s]` (padding 0).
 */
export function ablatedRow(
  rec: Recorder,
  a: { z: Tensor; x: Tensor; samples: number; ablations: Tensor; count: number; out: Tensor },
): void {
  const gpu = rec.gpu;
  const ldS = roundUp4(a.samples), ldN = roundUp4(a.count * a.samples);
  need(a.out, ldN, "ablatedRow out");
  need(a.ablations, 3 * a.count, "ablatedRow ablations");
  const p = gpu.uniform(packParams([a.samples, ldS, a.count, ldN]));
  rec.dispatch(
    gpu.kernel(ABLATED_ROW, { WG }),
    { rq: p, z_rows: a.z, x_rows: a.x, abl_row: a.ablations, z_out: a.out },
    grid(gpu, Math.ceil(ldN / WG)),
  );
}

/**
 * K corrected copies of the next layer's cached pre-activation:
 * `out[r][k·S + s] = zNext[r][s] + wOut[k][r]·(hNew[k·S + s] - hCached[j_k][s])`.
 */
export function patchNext(
  rec: Recorder,
  a: {
    zNext: Tensor;
    hCached: Tensor;
    hNew: Tensor;
    wOut: Tensor;
    ablations: Tensor;
    rows: number;
    samples: number;
    count: number;
    out: Tensor;
  },
): void {
  const gpu = rec.gpu;
  const ldS = roundUp4(a.samples), ldN = roundUp4(a.count * a.samples);
  need(a.zNext, a.rows * ldS, "patchNext zNext");
  need(a.hNew, ldN, "patchNext hNew");
  need(a.wOut, a.count * a.rows, "patchNext wOut");
  need(a.out, a.rows * ldN, "patchNext out");
  const p = gpu.uniform(packParams([a.rows, a.samples, ldS, ldN, a.count]));
  rec.dispatch(
    gpu.kernel(PATCH_NEXT, { WG }),
    {
      nq: p,
      z_next: a.zNext,
      h_cached: a.hCached,
      h_new: a.hNew,
      w_out: a.wOut,
      abl_next: a.ablations,
      z_next_out: a.out,
    },
    grid(gpu, Math.ceil((a.rows * ldN) / WG)),
  );
}

// ---- Work-efficient exact ablation (shaders/ablation_carry.wgsl) ----

export const ABLATION_CARRY = defineKernel({
  shader: "ablation_carry.wgsl",
  code: withActivations(carryBufferFns + "\n" + carryCode),
  entry: "ablate_carry",
  bindings: [
    ["cp", "uniform"],
    ["meta_u", "read"],
    ["meta_f", "read"],
    ["x0", "read"],
    ["z0", "read"],
    ["rows_v", "read"],
    ["zl", "read"],
    ["abl", "read"],
    ["out", "read_write"],
  ],
});
/** Binding kinds of the carry's operands read from texture mirrors. */
const CARRY_TEXTURES: Readonly<Record<string, BindingKind>> = {
  meta_u: "texture_u32",
  meta_f: "texture_f32",
  x0: "texture_f32",
  z0: "texture_f32",
  rows_v: "texture_f32",
  zl: "texture_f32",
  abl: "texture_u32",
};
/**
 * {@link ABLATION_CARRY} reading its operands from texture mirrors (src/gpu/mirror.ts;
 * shaders/ablation_carry_textures_fns.wgsl): the default on software adapters
 * (sparse.ts `INPUT_SOURCES`).
 */
export const ABLATION_CARRY_TEX = defineKernel({
  ...ABLATION_CARRY,
  shader: "ablation_carry.wgsl+textures",
  code: withActivations(carryTextureFns + "\n" + carryCode),
  bindings: ABLATION_CARRY.bindings.map(([n, k]) => [n, CARRY_TEXTURES[n] ?? k] as const),
});

/** Most classes the carried kernel keeps in a private array per sample. */
export const CARRY_MAX_CLASSES = 32;
/** Most unit-wise ops per chain (activation, eval batch norm, SReLU). */
export const CARRY_MAX_OPS = 4;

/** One unit-wise op between two weight layers (dropout, the identity in evaluation, is omitted). */
export type CarryOp =
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
  | { kind: "srelu"; params: Float32Array };

/** A weight layer's nonzeros grouped by input row (CSR of W with rows = inputs). */
export interface RowCsr {
  ptr: Uint32Array;
  col: Uint32Array;
  val: Float32Array;
}

/** Everything {@link ablationCarry} needs besides the cached activations. */
export interface CarrySpec {
  samples: number;
  /** Per input row i of the ablated layer: the samples where `x_i != 0` (CSR over rows). */
  sampPtr: Uint32Array;
  sampIdx: Uint32Array;
  labels: Uint32Array;
  /** Weight layers after the ablated one (0: it is the output layer). */
  depth: 0 | 1 | 2;
  classes: number;
  loss: MetricLoss;
  /** Unit-wise chain after the ablated layer (depth >= 1) and after W1 (depth 2). */
  chain0: CarryOp[];
  chain1: CarryOp[];
  /** W1 (depth >= 1) and W2 (depth 2) by input row. */
  row1?: RowCsr;
  row2?: RowCsr;
  /** The cached logits, `[classes][roundUp4(samples)]` (at depth 0: the layer's pre-activations). */
  logits: Float32Array;
}

/** Packed static inputs of {@link ablationCarry} (upload `u` and `f` once per layer). */
export interface CarryMeta {
  u: Uint32Array;
  f: Float32Array;
  /**
   * vec4 data: the output layer's rows dense over the classes, the logits by sample (both
   * vec4-padded with 0) and W1's entries as (column, value, 0, 0) (depth 2): upload as `metaV`.
   */
  v: Float32Array;
  /** Rows of `zl`: W1's outputs at depth 2, else 0 (then `zl` is not read). */
  hidden: number;
  /** Uniform fields except the per-dispatch ones (k, chunks, chunk, abl_base, out_base). */
  fields: ParamField[];
  /** Pipeline overrides: class vec4s, depth, loss, chain op kinds and activation ids. */
  overrides: Record<string, number>;
  /** Loop trips per reached sample (the bound the wrapper multiplies by the chunk). */
  tripsPerSample: number;
  /** Longest sample list. */
  maxList: number;
  samples: number;
  /**
   * Offset (vec4s) in `v` of the per-sample (base loss, base hit, label, 0), filled by
   * {@link carryBase}.
   */
  baseV: number;
}

function maxRow(r: RowCsr | undefined): number {
  let m = 0;
  if (r) { for (let i = 0; i + 1 < r.ptr.length; i++) m = Math.max(m, r.ptr[i + 1] - r.ptr[i]); }
  return m;
}

/** A CSR by input row as dense rows over `nc4·4` classes (padding 0). */
function denseClassRows(r: RowCsr, nc4: number): Float32Array {
  const rows = r.ptr.length - 1, out = new Float32Array(rows * nc4 * 4);
  for (let i = 0; i < rows; i++) {
    for (let e = r.ptr[i]; e < r.ptr[i + 1]; e++) out[i * nc4 * 4 + r.col[e]] = r.val[e];
  }
  return out;
}

/**
 * Packs a {@link CarrySpec}: u32 data (sample lists, labels, W1's CSR structure) and f32 data
 * (W1's values, the output layer's rows dense over the classes, chain parameters) with their
 * offsets in the uniform, and the pipeline overrides.
 */
export function packCarry(s: CarrySpec): CarryMeta {
  if (s.classes > CARRY_MAX_CLASSES || s.classes < 1) {
    throw new FiligreeError(`ablationCarry: ${s.classes} classes (1 to ${CARRY_MAX_CLASSES})`);
  }
  if (s.chain0.length > CARRY_MAX_OPS || s.chain1.length > CARRY_MAX_OPS) {
    throw new FiligreeError(`ablationCarry: more than ${CARRY_MAX_OPS} unit-wise ops in a chain`);
  }
  if (s.depth >= 1 && !s.row1) throw new FiligreeError("ablationCarry: depth >= 1 needs row1");
  if (s.depth === 2 && !s.row2) throw new FiligreeError("ablationCarry: depth 2 needs row2");
  const nc4 = Math.ceil(s.classes / 4);
  const u: Uint32Array[] = [], f: Float32Array[] = [];
  let nu = 0, nf = 0;
  const pushU = (a: Uint32Array) => (u.push(a), nu += a.length, nu - a.length);
  const pushF = (a: Float32Array) => (f.push(a), nf += a.length, nf - a.length);
  const sampPtr = pushU(s.sampPtr), sampIdx = pushU(s.sampIdx), labels = pushU(s.labels);
  const empty = { ptr: new Uint32Array(1), col: new Uint32Array(0), val: new Float32Array(0) };
  const hid = s.depth === 2 ? s.row1! : empty;
  const outRows = s.depth === 2 ? s.row2 : s.depth === 1 ? s.row1 : undefined;
  const row1Ptr = pushU(hid.ptr);
  const ld = roundUp4(s.samples);
  if (s.logits.length < s.classes * ld) {
    throw new FiligreeError(`ablationCarry: logits hold ${s.logits.length} < ${s.classes * ld}`);
  }
  const rows = outRows ? denseClassRows(outRows, nc4) : new Float32Array(0);
  const logitV = rows.length / 4, row1V = logitV + nc4 * s.samples;
  const baseV = row1V + hid.col.length;
  const v = new Float32Array(4 * (baseV + s.samples));
  v.set(rows);
  for (let c = 0; c < s.classes; c++) {
    for (let n = 0; n < s.samples; n++) v[4 * (logitV + n * nc4) + c] = s.logits[c * ld + n];
  }
  for (let e = 0; e < hid.col.length; e++) {
    v[4 * (row1V + e)] = hid.col[e];
    v[4 * (row1V + e) + 1] = hid.val[e];
  }
  const hidden = s.depth === 2 ? s.row2!.ptr.length - 1 : 0;
  const ops: ParamField[] = [];
  const overrides: Record<string, number> = {
    NC4: nc4,
    DEPTH: s.depth,
    LOSS: s.loss === "xent" ? 0 : s.loss === "mse" ? 1 : 2,
  };
  [s.chain0, s.chain1].forEach((chain, seg) => {
    for (let o = 0; o < CARRY_MAX_OPS; o++) {
      const op = chain[o];
      const kind = !op ? 0 : op.kind === "act" ? 1 : op.kind === "bn" ? 2 : 3;
      overrides[`K${seg}${o}`] = kind;
      overrides[`A${seg}${o}`] = op?.kind === "act" ? activationId(op.activation) : 0;
      if (!op) {
        ops.push(0, 0, 0, 0);
      } else if (op.kind === "act") {
        ops.push(f32(op.param), 0, 0, 0);
      } else if (op.kind === "bn") {
        const off = pushF(op.gamma);
        pushF(op.beta);
        pushF(op.mean);
        pushF(op.variance);
        ops.push(f32(op.eps), op.gamma.length, off, 0);
      } else {
        ops.push(0, op.params.length / 4, pushF(op.params), 0);
      }
    }
  });
  const cat = <T extends Uint32Array | Float32Array>(parts: T[], out: T): T => {
    let o = 0;
    for (const p of parts) (out.set(p as never, o), o += p.length);
    return out;
  };
  const U = cat(u, new Uint32Array(Math.max(4, nu)));
  const F = cat(f, new Float32Array(Math.max(4, nf)));
  const fields: ParamField[] = [
    s.samples,
    roundUp4(s.samples),
    0, // k
    0, // chunks
    0, // chunk
    s.classes,
    sampPtr,
    sampIdx,
    labels,
    row1Ptr,
    row1V,
    logitV,
    0,
    0, // abl_base
    0, // out_base
    0, // mode
    baseV,
    0,
    0,
    0,
    ...ops,
  ];
  // Per reached sample (upper bound, as if no loop unrolled): logits loaded (nc4), two
  // metrics (2 loops of nc4 each, twice), the output row (nc4) or, at depth 2, per entry of W1's
  // row: its output row (nc4) + 1.
  const tripsPerSample = 6 * nc4 + 1 +
    (s.depth === 2 ? maxRow(s.row1) * (1 + nc4) : 0);
  let maxList = 0;
  for (let i = 0; i + 1 < s.sampPtr.length; i++) {
    maxList = Math.max(maxList, s.sampPtr[i + 1] - s.sampPtr[i]);
  }
  return {
    u: U,
    f: F,
    v,
    hidden,
    fields,
    overrides,
    tripsPerSample,
    maxList,
    samples: s.samples,
    baseV,
  };
}

/**
 * Sample-list entries per invocation and chunks per ablation such that one invocation stays
 * under {@link MAX_LOOP_TRIPS}; null when not even one sample fits.
 */
export function carryChunking(m: CarryMeta): { chunk: number; chunks: number } | null {
  const most = Math.floor((MAX_LOOP_TRIPS - 16) / m.tripsPerSample);
  if (most < 1) return null;
  const list = Math.max(1, m.maxList);
  const chunks = Math.ceil(list / most);
  return { chunk: Math.ceil(list / chunks), chunks };
}

/** Arguments of {@link ablationCarry}. */
export interface CarryArgs {
  meta: CarryMeta;
  /** `meta.u` and `meta.f` uploaded. */
  metaU: Tensor;
  metaF: Tensor;
  /** Cached input and pre-activation of the ablated layer, `[rows][roundUp4(S)]`. */
  x0: Tensor;
  z0: Tensor;
  /** `meta.v` uploaded. */
  metaV: Tensor;
  /** `[hidden][roundUp4(S)]`: the cached pre-activations of W1 (depth 2; else any tensor). */
  zl: Tensor;
  /** Packed ablations (see {@link packAblations}); this dispatch takes `[first, first + count)`. */
  ablations: Tensor;
  first: number;
  count: number;
  chunk: number;
  chunks: number;
  /** f32 `[2·chunks·total]`: per (ablation, chunk) the loss and hit delta sums. */
  out: Tensor;
  /** Operand source (default `"auto"`: sparse.ts `preferTextures`, if every operand fits). */
  inputs?: InputSource | "auto";
}

/**
 * Fills the per-sample base records (loss and hit of the cached logits, label) into `metaV`,
 * computed by the carried kernel itself so that ablated and unablated samples are scored by the
 * same code. `scratch` holds at least `4·samples` floats. Run once after uploading `meta.v`.
 */
export function carryBase(
  rec: Recorder,
  a: {
    meta: CarryMeta;
    metaU: Tensor;
    metaF: Tensor;
    metaV: Tensor;
    zl: Tensor;
    scratch: Tensor;
  },
): void {
  const gpu = rec.gpu, m = a.meta;
  need(a.scratch, 4 * m.samples, "carryBase scratch");
  need(a.zl, Math.max(1, m.hidden * roundUp4(m.samples)), "carryBase zl");
  const fields = m.fields.slice();
  fields[15] = 1;
  rec.dispatch(
    gpu.kernel(ABLATION_CARRY, m.overrides),
    {
      cp: gpu.uniform(packParams(fields)),
      meta_u: a.metaU,
      meta_f: a.metaF,
      x0: a.zl,
      z0: a.zl,
      rows_v: a.metaV,
      zl: a.zl,
      abl: a.metaU,
      out: a.scratch,
    },
    grid(gpu, Math.ceil(m.samples / 64)),
  );
  rec.copy(a.scratch, a.metaV, 4 * m.samples, 0, 4 * m.baseV);
}

/**
 * Work-efficient exact ablation: per ablation and chunk of the samples it can reach, the sums of
 * the per-sample loss and hit changes (see shaders/ablation_carry.wgsl); add the chunks of an
 * ablation (in float64) and divide by S for the change of the mean loss and the accuracy.
 * Needs {@link carryBase} run once on `metaV`. Order ablations by input row for speed (lanes
 * with the same row walk the same samples).
 */
export function ablationCarry(rec: Recorder, a: CarryArgs): void {
  const gpu = rec.gpu;
  const m = a.meta;
  const trips = a.chunk * m.tripsPerSample + 16;
  if (trips > MAX_LOOP_TRIPS || a.chunk < 1) {
    throw new FiligreeError(`ablationCarry: chunk ${a.chunk} needs ${trips} loop trips`);
  }
  if (a.chunks * a.chunk < m.maxList) {
    throw new FiligreeError(`ablationCarry: ${a.chunks} chunks of ${a.chunk} miss samples`);
  }
  const ld = roundUp4(m.samples);
  need(a.metaU, m.u.length, "ablationCarry meta_u");
  need(a.metaF, m.f.length, "ablationCarry meta_f");
  need(a.zl, Math.max(1, m.hidden * ld), "ablationCarry zl");
  need(a.metaV, m.v.length, "ablationCarry meta_v");
  need(a.ablations, 3 * (a.first + a.count), "ablationCarry ablations");
  need(a.out, 2 * a.chunks * (a.first + a.count), "ablationCarry out");
  const fields = m.fields.slice();
  fields[2] = a.count;
  fields[3] = a.chunks;
  fields[4] = a.chunk;
  fields[13] = a.first;
  fields[14] = a.first * a.chunks;
  const operands: [string, Tensor, MirrorFormat][] = [
    ["meta_u", a.metaU, "r32uint"],
    ["meta_f", a.metaF, "r32float"],
    ["x0", a.x0, "r32float"],
    ["z0", a.z0, "r32float"],
    ["rows_v", a.metaV, "rgba32float"],
    ["zl", a.zl, "r32float"],
    ["abl", a.ablations, "r32uint"],
  ];
  // Every depth reads texture mirrors on software adapters (llvmpipe, 784-300-100-10 at 10 %,
  // 1,000 samples, 2026-12-06, after logits, W1's entries and the base records moved to vec4
  // texels: depth 2 (fc1) 0.86 s textures vs 1.75 s buffers; depth 1 0.06 vs 0.06; depth 0 0.024
  // vs 0.024).
  const tex = preferTextures(gpu, a.inputs ?? "auto") &&
    gpu.limits.maxSampledTexturesPerShaderStage >= 7 &&
    operands.every(([, t, f]) => canMirror(gpu, t.size, f));
  const res: Record<string, Resource> = { cp: gpu.uniform(packParams(fields)), out: a.out };
  for (const [name, t, format] of operands) {
    res[name] = tex ? mirror(rec, t, { n: t.size, format }) : t;
  }
  rec.dispatch(
    gpu.kernel(tex ? ABLATION_CARRY_TEX : ABLATION_CARRY, m.overrides),
    res,
    grid(gpu, Math.ceil((a.count * a.chunks) / 64)),
  );
}
