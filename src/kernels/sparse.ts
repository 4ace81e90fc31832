/**
 * Sparse products of a CSR layer (src/sparse/csr.ts) with feature-major activations
 * `[features][ld]`, `ld = roundUp4(batch)`. Shader: shaders/sparse.wgsl; references:
 * sparse_ref.ts.
 *
 * - {@link spmm}: forward `z = Wᵀ·x + bias`, `y = act(z)` (gather over CSR(Wᵀ), fused epilogue).
 * - {@link spmmT}: backward data `dx = W·dy`, optionally times `act'(z)` of the layer below
 *   (gather over CSR(W) reading the shared value array through `perm`).
 * - {@link sddmm}: weight gradient at the nonzeros `dvalues[k] = sum_b x[i][b]·dy[j][b]`, in the
 *   value order.
 * - {@link weightGrad}: the same weight gradient by whichever of {@link sddmm} and a dense product
 *   `X·dYᵀ` (matmul.ts) picked at the nonzeros ({@link pickDense}) is faster on the adapter for
 *   the layer's shape and density ({@link weightGradPath}, thresholds in {@link WGRAD_RULES}).
 *
 * Gather variants ({@link SPMM_VARIANTS}) are kept side by side and benchmarked in one run
 * (bench/sparse_bench.ts); the default per adapter class is {@link defaultGatherTuning}.
 *
 * No float atomics; every output element has one owner. Padding columns written are zero.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, uploadCsr } from "../sparse/csr.ts";
 * import { spmm } from "./sparse.ts";
 * const gpu = await getGpu();
 * // W (2 x 1): W[0][0] = 2, W[1][0] = -1; batch 3 (ld 4)
 * const layer = uploadCsr(gpu, csrFromCoo(2, 1, [0, 1], [0, 0], [2, -1]));
 * const x = gpu.tensor("f32", [2, 4], { data: new Float32Array([1, 2, 3, 0, 4, 1, 9, 0]) });
 * const y = gpu.tensor("f32", [1, 4]);
 * const rec = gpu.recorder();
 * spmm(rec, { layer, x, y, batch: 3, activation: "relu" });
 * rec.submit();
 * assert.deepEqual(await gpu.read(y), new Float32Array([0, 3, 0, 0]));
 * ```
 * @module
 */
import code from "../../shaders/sparse.wgsl" with { type: "text" };
import bufferFns from "../../shaders/sparse_buffers_fns.wgsl" with { type: "text" };
import textureFns from "../../shaders/sparse_textures_fns.wgsl" with { type: "text" };
import {
  adapterClass,
  type BindingKind,
  canMirror,
  defineKernel,
  f32,
  FiligreeError,
  type Gpu,
  grid,
  type InputSource,
  type KernelDef,
  MAX_LOOP_TRIPS,
  mirror,
  packParams,
  type ParamField,
  placeholderMirror,
  preferTextures,
  type Recorder,
  requireTensor,
  type Resource,
  roundUp4,
  type Tensor,
} from "../gpu/mod.ts";
import type { CsrLayer } from "../sparse/csr.ts";
import { activationId, activationParam, withActivations } from "./activation_ids.ts";
import { matmul } from "./matmul.ts";
import { rowOrder } from "./row_order.ts";

export { adapterClass, INPUT_SOURCES, type InputSource, preferTextures } from "../gpu/mod.ts";

const CODE = withActivations(bufferFns + "\n" + code);
const TEX_CODE = withActivations(textureFns + "\n" + code);

/**
 * The chunk (quads) a wide kernel (`spmm_wide`, `wgrad_t`) takes for a batch of `ld4` quads and
 * rows of at most `rowMax` nonzeros: the first of the tuning's `wide`, 16 and 8 (those >= `min`)
 * that the batch has and that fits the loop bound in one dispatch
 * ({@link chunkedQuadsPerDispatch}); 0 when none does (the lane kernels run). A few fixed chunks
 * (an override constant each: a constant loop bound is what makes the chunk fast) keep a new batch
 * size from compiling a new pipeline. `wgrad_t` asks for at least 16: at 8 quads the Wᵀ-row SDDMM
 * was faster (784x300 at 10 %, batch 64: 1.33 vs 1.59 ms), while `spmm_wide` at 8 still beat the
 * lane gather (1.21 vs 2.21 ms).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wideChunk } from "./sparse.ts";
 * assert.equal(wideChunk(32, 250, 784), 32); // batch 1,000
 * assert.equal(wideChunk(32, 16, 784), 16); // batch 64
 * assert.equal(wideChunk(32, 10, 784), 8); // batch 40
 * assert.equal(wideChunk(32, 10, 784, 16), 0); // batch 40, at least 16 asked
 * assert.equal(wideChunk(32, 32, 4096), 8); // 32 or 16 quads of a 4,096-long row exceed the bound
 * assert.equal(wideChunk(32, 3, 784), 0); // batch 11
 * assert.equal(wideChunk(0, 32, 784), 0); // off
 * ```
 */
export function wideChunk(
  wide: number | undefined,
  ld4: number,
  rowMax: number,
  min = 8,
): number {
  if (!wide) return 0;
  for (const c of [wide, 16, 8]) {
    if (c > wide || c < min) continue;
    if (ld4 >= c && chunkedQuadsPerDispatch(rowMax, c) >= c) return c;
  }
  return 0;
}

/**
 * Quads of the batch one dispatch of a chunked row kernel (`spmm_wide`, `grad_t`, `wgrad_t`) may
 * cover: an invocation walks a row of at most `rowMax` nonzeros once per chunk of `ch` quads, in
 * `ceil(quads / ch) · (rowMax + 2) · (ch + 1)` loop iterations (the chunk's quad loops counted as
 * not unrolled: llvmpipe counts them at ch 32), kept at or below {@link MAX_LOOP_TRIPS}. 0 when
 * one chunk does not fit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chunkedQuadsPerDispatch } from "./sparse.ts";
 * assert.equal(chunkedQuadsPerDispatch(784, 32), 64); // batch 256 in one dispatch
 * assert.equal(chunkedQuadsPerDispatch(4096, 32), 0);
 * ```
 */
export function chunkedQuadsPerDispatch(rowMax: number, ch: number): number {
  return Math.floor(MAX_LOOP_TRIPS / ((rowMax + 2) * (ch + 1))) * ch;
}

/** `len_hi` of a row pass that takes every row from `len_lo` up. */
export const ALL_ROWS = 0xffff_ffff;

/**
 * One pass of a chunked row kernel (`spmm_wide`, `spmm_t_wide`, `grad_t`, `wgrad_t`): the rows
 * whose length (nonzeros) is in `[lo, hi]`, walked with a chunk of `ch` quads, over the batch in
 * dispatches of `step` quads.
 */
export interface RowPass {
  lo: number;
  hi: number;
  ch: number;
  step: number;
}

/**
 * How a chunked row kernel covers rows of at most `rowMax` nonzeros (a bound known on the host:
 * the layer's other dimension) for a batch of `ld4` quads. The loop bound caps a whole-batch chunk
 * at rows of `floor(MAX_LOOP_TRIPS / (ceil(ld4 / c) · (c + 1))) - 2` nonzeros (1,967 at batch 128
 * and 32 quads), far more than a sparse row holds, but `rowMax` can exceed it (a 4,096-input layer
 * could have a dense row): then the rows up to that length take the larger chunk in one pass and
 * only the longer ones, if any, the chunk that `rowMax` allows ({@link wideChunk}), in a second
 * pass over the same grid whose invocations mostly return at once. One pass when the larger chunk
 * gains nothing; none when no chunk fits (the caller falls back). Results do not depend on the
 * passes: every output quad is summed over its row in the same order.
 *
 * At 4,096x4096 the one pass at 8 quads took 7.42 / 33.3 / 122 ms (spmm at 1 / 5 / 20 %, batch
 * 128) against 6.05 / 24.5 / 85.9 ms with every row in the 32-quad pass (Zen 2 host, GL,
 * 2026-12-07, interleaved).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ALL_ROWS, rowPasses } from "./sparse.ts";
 * assert.deepEqual(rowPasses(32, 32, 784), [{ lo: 0, hi: ALL_ROWS, ch: 32, step: 32 }]);
 * assert.deepEqual(rowPasses(32, 32, 4096), [
 *   { lo: 0, hi: 1967, ch: 32, step: 32 },
 *   { lo: 1968, hi: ALL_ROWS, ch: 8, step: 8 },
 * ]);
 * assert.deepEqual(rowPasses(32, 3, 784), []); // batch 11: no chunk
 * ```
 */
export function rowPasses(
  wide: number | undefined,
  ld4: number,
  rowMax: number,
  min = 8,
): RowPass[] {
  const ch = wideChunk(wide, ld4, rowMax, min);
  if (!ch) return [];
  const big = [wide ?? 0, 16, 8].find((c) => c <= (wide ?? 0) && c >= min && ld4 >= c) ?? 0;
  return splitRows(big, ld4, rowMax, ch);
}

/**
 * {@link rowPasses} for given chunks: rows up to the loop bound of a one-dispatch `big`-quad
 * chunk in one pass at `big`, the rest at `ch` (one pass at `ch` when `big <= ch`).
 */
export function splitRows(big: number, ld4: number, rowMax: number, ch: number): RowPass[] {
  const all = { lo: 0, hi: ALL_ROWS, ch, step: chunkedQuadsPerDispatch(rowMax, ch) };
  if (big <= ch || ld4 < big) return [all];
  const hi = Math.floor(MAX_LOOP_TRIPS / (Math.ceil(ld4 / big) * (big + 1))) - 2;
  if (hi < 1) return [all];
  return [{ lo: 0, hi, ch: big, step: ld4 }, { ...all, lo: hi + 1 }];
}

/**
 * The uniform of shaders/sparse.wgsl: the 8 fields of its `Params`, then a row pass's bounds
 * (every row when `pass` is absent).
 */
export function sparseParams(fields: readonly ParamField[], pass?: RowPass): ArrayBuffer {
  return packParams([...fields, pass?.lo ?? 0, pass?.hi ?? ALL_ROWS]);
}

/**
 * Whether the chunked row kernels (`spmm_wide`, `spmm_t_wide`, `grad_t`, `wgrad_t`) walk rows
 * longest first within blocks of 64 ({@link rowOrder}), per adapter class. llvmpipe: yes: its 8
 * lanes run a workgroup's rows in lock step, so a workgroup takes as long as its longest row.
 * Measured (Zen 2 host, GL, 2026-12-07, `deno task bench:rows`, `sparse_step_bench`, interleaved):
 * uniformly random rows 1.07-1.18x per kernel (1000x1000 1-4 %, 784x300 10 %), rows of very
 * unequal length 3.7-4.6x; a LeNet-300-100 step 1.03-1.08x (4.33 → 4.01 ms), a SET-MLP step 1.06x. The
 * order is recomputed only after the structure changes. A GPU: no until measured (the row kernels
 * are not its defaults). Mutable so that a benchmark can compare both.
 */
export const ROW_ORDER: Record<"cpu" | "gpu", boolean> = { cpu: true, gpu: false };

/** The row-order mirror a row kernel binds (a placeholder when unordered), and its override. */
function orderOf(
  rec: Recorder,
  ptr: Tensor,
  nRows: number,
  rowMax: number,
): { texture: GPUTexture; ORDERED: 0 | 1 } {
  const order = ROW_ORDER[adapterClass(rec.gpu)] ? rowOrder(rec, ptr, nRows, rowMax) : undefined;
  return order
    ? { texture: flat(rec, order, nRows), ORDERED: 1 }
    : { texture: placeholderMirror(rec.gpu, "r32uint"), ORDERED: 0 };
}

/**
 * Records a row kernel (`spmm_wide`, `spmm_t_wide`, `grad_t`, `wgrad_t`) over its row passes: per
 * pass the kernel with `overrides` and the pass's chunk (CHT), over the batch in dispatches of the
 * pass's step; `fields(q0, q1)` gives the 8 `Params` fields of a dispatch.
 */
function recordRowPasses(
  rec: Recorder,
  def: KernelDef,
  overrides: Record<string, number>,
  passes: readonly RowPass[],
  ld4: number,
  fields: (q0: number, q1: number) => ParamField[],
  resources: Record<string, Resource>,
  groups: [number, number, number],
): void {
  for (const pass of passes) {
    const k = rec.gpu.kernel(def, { ...overrides, CHT: pass.ch });
    for (let q0 = 0; q0 < ld4; q0 += pass.step) {
      const q1 = Math.min(ld4, q0 + pass.step);
      const p = rec.gpu.uniform(sparseParams(fields(q0, q1), pass));
      rec.dispatch(k, { p, ...resources }, groups);
    }
  }
}

/** Forward gather kernel (`spmm` entry of shaders/sparse.wgsl). */
export const SPMM = defineKernel({
  shader: "sparse.wgsl",
  code: CODE,
  entry: "spmm",
  bindings: [
    ["p", "uniform"],
    ["row_ptr_t", "read"],
    ["col_t", "read"],
    ["vals", "read"],
    ["x_in", "read"],
    ["bias", "read"],
    ["y_out", "read_write"],
    ["z_out", "read_write"],
  ],
});
/** Backward data gather kernel (`spmm_t` entry). */
export const SPMM_T = defineKernel({
  shader: "sparse.wgsl",
  code: CODE,
  entry: "spmm_t",
  bindings: [
    ["p", "uniform"],
    ["row_ptr", "read"],
    ["col", "read"],
    ["vals", "read"],
    ["perm", "read"],
    ["dy_in", "read"],
    ["dx_out", "read_write"],
    ["zp_in", "read"],
  ],
});
/** Picks the weight gradient at the nonzeros from a dense `[nIn][nOut]` product (`pick` entry). */
export const PICK = defineKernel({
  shader: "sparse.wgsl",
  code: CODE,
  entry: "pick",
  bindings: [
    ["p", "uniform"],
    ["row_ptr_t", "read"],
    ["col_t", "read"],
    ["dvals", "read_write"],
    ["dense_in", "read"],
  ],
});
/** Weight gradient kernel (`sddmm` entry). */
export const SDDMM = defineKernel({
  shader: "sparse.wgsl",
  code: CODE,
  entry: "sddmm",
  bindings: [
    ["p", "uniform"],
    ["row_ptr_t", "read"],
    ["col_t", "read"],
    ["dvals", "read_write"],
    ["x_in", "read"],
    ["dy_in", "read"],
  ],
});

/** Both backward products of a layer in one pass (`grad_t` entry): see {@link sparseBackward}. */
export const GRAD_T = defineKernel({
  shader: "sparse.wgsl",
  code: CODE,
  entry: "grad_t",
  bindings: [
    ["p", "uniform"],
    ["row_ptr", "read"],
    ["col", "read"],
    ["vals", "read"],
    ["perm", "read"],
    ["dy_in", "read"],
    ["dx_out", "read_write"],
    ["xw_in", "read"],
    ["dw_out", "read_write"],
    ["row_order9", "texture_u32"],
  ],
});

/** Forward gather with a chunk of the batch per invocation (`spmm_wide` entry): see {@link spmm}. */
export const SPMM_WIDE = defineKernel({
  ...SPMM,
  entry: "spmm_wide",
  bindings: [...SPMM.bindings, ["row_order8", "texture_u32"]],
});
/**
 * Backward data gather with a chunk of the batch per invocation (`spmm_t_wide` entry): see
 * {@link spmmT}. The pre-activation of the layer below is bound at 7 as `xw_in`.
 */
export const SPMM_T_WIDE = defineKernel({
  ...SPMM_T,
  entry: "spmm_t_wide",
  bindings: [
    ...SPMM_T.bindings.map(([n, k]) => (n === "zp_in" ? ["xw_in", k] as const : [n, k] as const)),
    ["row_order8", "texture_u32"],
  ],
});
/**
 * Weight gradient over CSR(W) rows (`wgrad_t` entry): see {@link sddmm}. It declares
 * {@link GRAD_T}'s bindings (binding i is the i-th declared); `vals` and `dx_out` are not read.
 */
export const WGRAD_T = defineKernel({ ...GRAD_T, entry: "wgrad_t" });

/** The binding kinds of the gathered operands when they are read from texture mirrors. */
const TEXTURE_KINDS: Readonly<Record<string, BindingKind>> = {
  col_t: "texture_u32",
  col: "texture_u32",
  perm: "texture_u32",
  vals: "texture_f32",
  x_in: "texture_f32",
  dy_in: "texture_f32",
  xw_in: "texture_f32",
};
/** A gather kernel reading its operands from textures (shaders/sparse_textures_fns.wgsl). */
function withTextures(def: KernelDef): KernelDef {
  return defineKernel({
    ...def,
    shader: "sparse.wgsl+textures",
    code: TEX_CODE,
    bindings: def.bindings.map(([n, k]) => [n, TEXTURE_KINDS[n] ?? k] as const),
  });
}
/** {@link SPMM} reading x, the CSR(Wᵀ) columns and the values from texture mirrors. */
export const SPMM_TEX = withTextures(SPMM);
/** {@link SPMM_T} reading dy, CSR(W) and the values from texture mirrors. */
export const SPMM_T_TEX = withTextures(SPMM_T);
/** {@link SDDMM} reading x, dy and the CSR(Wᵀ) columns from texture mirrors. */
export const SDDMM_TEX = withTextures(SDDMM);
/** {@link GRAD_T} reading dy, x, CSR(W) and the values from texture mirrors. */
export const GRAD_T_TEX = withTextures(GRAD_T);
/** {@link SPMM_T_WIDE} reading dy, z, CSR(W) and the values from texture mirrors. */
export const SPMM_T_WIDE_TEX = withTextures(SPMM_T_WIDE);
/** {@link SPMM_WIDE} reading x, the CSR(Wᵀ) columns and the values from texture mirrors. */
export const SPMM_WIDE_TEX = withTextures(SPMM_WIDE);
/** {@link WGRAD_T} reading x, dy and CSR(W) from texture mirrors. */
export const WGRAD_T_TEX = withTextures(WGRAD_T);

/**
 * The operand source a gather kernel uses: `want` when given (else the environment override, else
 * {@link INPUT_SOURCES} for the adapter class), but buffers whenever the operands cannot be
 * mirrored (more than 4096 x `maxTextureDimension2D` texels; fewer than 4 sampled textures per
 * stage).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { sparseInputs } from "./sparse.ts";
 * const gpu = await getGpu();
 * assert.equal(sparseInputs(gpu, [784, 300], 100, 1000, "texture"), "texture");
 * assert.equal(sparseInputs(gpu, [784, 300], 100, 1000, "buffer"), "buffer");
 * ```
 */
export function sparseInputs(
  gpu: Gpu,
  rows: readonly number[],
  ld: number,
  nnz: number,
  want: InputSource | "auto" = "auto",
): InputSource {
  if (!preferTextures(gpu, want)) return "buffer";
  const ok = gpu.limits.maxSampledTexturesPerShaderStage >= 4 &&
    canMirror(gpu, Math.max(1, nnz), "r32float") &&
    rows.every((r) => canMirror(gpu, r * ld, "rgba32float"));
  return ok ? "texture" : "buffer";
}

/** Mirrors `[rows][ld]` activations (rgba32float texels: quads of 4 samples). */
const rows4 = (rec: Recorder, t: Tensor, rows: number, ld: number) =>
  mirror(rec, t, { n: rows * ld, format: "rgba32float" });
/** Mirrors `n` elements of a flat f32 or u32 array. */
const flat = (rec: Recorder, t: Tensor, n: number) =>
  mirror(rec, t, { n, format: t.dtype === "f32" ? "r32float" : "r32uint" });

/**
 * Blocking of the two gathers (override constants): `wg` invocations along the batch per row,
 * `vb` quads (vec4) per invocation (1..8), `rj` rows per workgroup; an invocation's quads are
 * `wg` apart, or consecutive when `contiguous`. One workgroup covers `4 · wg · vb` samples of
 * `rj` rows.
 */
export interface GatherTuning {
  wg: number;
  vb: number;
  rj: number;
  contiguous?: boolean;
  /** spmm only: skip stored zeros (a row-uniform branch before the x loads). */
  skipZero?: boolean;
  /**
   * Quads of the batch per invocation (1..32; 0 or absent: off), held in a private array, lanes
   * on `rj` rows (`spmm_wide`, `spmm_t_wide`; `wg`, `vb` and `contiguous` are then unused). Both
   * fall back to the lane gather where no chunk fits the batch or the loop bound
   * ({@link rowPasses}).
   */
  wide?: number;
}
/**
 * The named gather variants (llm.c dev/cuda style: every one stays valid and tested, the bench
 * compares them in one run):
 * - `interleaved`: the probes' kernel (notes §5.2 gather_fm_vb4), 8 invocations x 4 quads `wg`
 *   apart, one row per workgroup. Neighbouring invocations read neighbouring quads: the
 *   coalesced pattern for hardware GPUs.
 * - `contiguous`: each invocation reads 4 consecutive quads (one 64-byte run per nonzero), 8
 *   rows per workgroup; on llvmpipe every storage load is a per-lane scalar loop, so one
 *   contiguous run per lane beats 4 strided ones.
 * - `contiguous8`: 4 invocations x 8 consecutive quads (fewer index/value loads per FMA).
 */
export const SPMM_VARIANTS: Readonly<Record<string, Readonly<GatherTuning>>> = {
  interleaved: { wg: 8, vb: 4, rj: 1, contiguous: false, wide: 0 },
  contiguous: { wg: 8, vb: 4, rj: 8, contiguous: true, wide: 0 },
  contiguous8: { wg: 4, vb: 8, rj: 8, contiguous: true, wide: 0 },
  wide: { wg: 8, vb: 4, rj: 8, contiguous: true, wide: 32 },
};
/** The old default (kept for callers that name it): {@link SPMM_VARIANTS}`.interleaved`. */
export const GATHER_TUNING: Readonly<GatherTuning> = SPMM_VARIANTS.interleaved;

/**
 * Default gather variant per adapter class (bench/sparse_bench.ts measures all variants in one
 * run; docs/KERNELS.md has the numbers). Hardware GPUs keep the coalesced `interleaved` layout
 * (not measured here: no GPU on the project machine). Mutable so that a benchmark can compare
 * whole training steps under each variant in one process (bench/sparse_step_bench.ts).
 */
export const GATHER_DEFAULTS: Record<"cpu" | "gpu", string> = {
  cpu: "wide",
  gpu: "interleaved",
};

/**
 * The gather tuning used when a call gives none: {@link GATHER_DEFAULTS} for the adapter class.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { defaultGatherTuning, SPMM_VARIANTS } from "./sparse.ts";
 * const gpu = await getGpu();
 * assert.ok(Object.values(SPMM_VARIANTS).includes(defaultGatherTuning(gpu)));
 * ```
 */
export function defaultGatherTuning(gpu: Gpu): Readonly<GatherTuning> {
  return SPMM_VARIANTS[GATHER_DEFAULTS[adapterClass(gpu)]];
}

/**
 * Blocking of {@link sddmm}: `sg` invocations per output row striding over its nonzeros, `ch`
 * quads of dy (1..8) held in registers per chunk, `rs` rows per workgroup (default 1).
 */
export interface SddmmTuning {
  sg: number;
  ch: number;
  rs?: number;
  /**
   * Walk CSR(W) instead (`wgrad_t`): invocation = input row, `rs` rows per workgroup, x's
   * chunk of `wide` quads (1..32; 0 or absent: off) in a private array; `sg` and `ch` unused.
   * Falls back to the row-of-Wᵀ kernel where one chunk would exceed the loop bound.
   */
  wide?: number;
}
/**
 * Named SDDMM variants (all tested, compared in one run by bench/sparse_bench.ts):
 * - `row8`: the probes' winner (notes §5.3 sddmm_row_reg8_wg8), 8 invocations per row.
 * - `row2x4`: 2 invocations per row, 4 rows per workgroup: each invocation walks 4x more
 *   nonzeros per dy chunk it loads (dy loads are repeated per invocation).
 * - `row4x2`: 4 invocations per row, 2 rows per workgroup.
 */
export const SDDMM_VARIANTS: Readonly<Record<string, Readonly<SddmmTuning>>> = {
  row8: { sg: 8, ch: 8, rs: 1, wide: 0 },
  row4x2: { sg: 4, ch: 8, rs: 2, wide: 0 },
  row2x4: { sg: 2, ch: 8, rs: 4, wide: 0 },
  wide: { sg: 8, ch: 8, rs: 8, wide: 32 },
};
/** Default SDDMM variant per adapter class (bench/sparse_bench.ts; docs/KERNELS.md). */
export const SDDMM_DEFAULTS: Record<"cpu" | "gpu", string> = {
  cpu: "wide",
  gpu: "row8",
};
/** The probes' winner on llvmpipe (sddmm_row_reg8_wg8): {@link SDDMM_VARIANTS}`.row8`. */
export const SDDMM_TUNING: Readonly<SddmmTuning> = SDDMM_VARIANTS.row8;

/** Forward arguments: `z[j] = sum_i W[i][j]·x[i] + bias[j]`, `y = act(z)`. */
export interface SpmmArgs {
  layer: CsrLayer;
  /** f32 `[nIn][ld]` input activation. */
  x: Tensor;
  /** f32 `[nOut][ld]` output (post-activation). */
  y: Tensor;
  batch: number;
  /** f32 `[nOut][ld]`: also store the pre-activation (for the backward of non-ReLU activations). */
  z?: Tensor;
  /** f32 `[nOut]`. */
  bias?: Tensor;
  /** Activation name (activation_ids.ts), identity when omitted. */
  activation?: string;
  /** The activation's scalar parameter (default: activationParam's default for the activation). */
  actParam?: number;
  tune?: Partial<GatherTuning>;
  /** Operand source (default `"auto"`: {@link sparseInputs}). */
  inputs?: InputSource | "auto";
}

/** Backward data arguments: `dx[i] = (sum_j W[i][j]·dy[j]) · act'(z[i])`. */
export interface SpmmTArgs {
  layer: CsrLayer;
  /** f32 `[nOut][ld]` gradient w.r.t. this layer's pre-activation. */
  dy: Tensor;
  /** f32 `[nIn][ld]` result. */
  dx: Tensor;
  batch: number;
  /** f32 `[nIn][ld]` pre-activation of the layer below; required with a non-identity activation. */
  z?: Tensor;
  /** Activation of the layer below whose derivative is fused; none when omitted. */
  activation?: string;
  actParam?: number;
  tune?: Partial<GatherTuning>;
  /** Operand source (default `"auto"`: {@link sparseInputs}). */
  inputs?: InputSource | "auto";
}

/** Weight gradient arguments: `dvalues[k] (+)= sum_b x[colT[k]][b]·dy[j][b]`. */
export interface SddmmArgs {
  layer: CsrLayer;
  /** f32 `[nIn][ld]` input activation of the layer. */
  x: Tensor;
  /** f32 `[nOut][ld]` gradient w.r.t. the pre-activation. */
  dy: Tensor;
  /** f32 `[nnz]` result, in the order of `layer.values`. */
  dvalues: Tensor;
  batch: number;
  /** Add to `dvalues` instead of overwriting it (gradient accumulation). */
  accumulate?: boolean;
  tune?: Partial<SddmmTuning>;
  /** Operand source (default `"auto"`: {@link sparseInputs}). */
  inputs?: InputSource | "auto";
}

const placeholders = new WeakMap<Gpu, { read: Tensor; write: Tensor }>();
/** 1-element tensors bound where an optional input/output is absent (never accessed). */
function placeholder(gpu: Gpu): { read: Tensor; write: Tensor } {
  let p = placeholders.get(gpu);
  if (!p) {
    p = {
      read: gpu.tensor("f32", [1], { zero: true, label: "sparse.unused_in" }),
      write: gpu.tensor("f32", [1], { zero: true, label: "sparse.unused_out" }),
    };
    placeholders.set(gpu, p);
  }
  return p;
}

const need = (t: Tensor, n: number, what: string, dtype: "f32" | "u32" = "f32") =>
  requireTensor(t, n, what, dtype);

function distinct(op: string, ts: [string, Tensor | undefined][]) {
  for (let a = 0; a < ts.length; a++) {
    for (let b = a + 1; b < ts.length; b++) {
      const ta = ts[a][1];
      const tb = ts[b][1];
      if (ta && tb && ta.buffer === tb.buffer) {
        throw new FiligreeError(`${op}: ${ts[a][0]} and ${ts[b][0]} must be different tensors`);
      }
    }
  }
}

function checkBatch(op: string, batch: number): number {
  if (!Number.isInteger(batch) || batch < 1) {
    throw new FiligreeError(`${op}: batch must be a positive integer, got ${batch}`);
  }
  return roundUp4(batch);
}

function checkLayer(op: string, l: CsrLayer, orientation: "T" | "W") {
  if (orientation === "T") {
    need(l.rowPtrT, l.nOut + 1, `${op} rowPtrT`, "u32");
    need(l.colT, l.nnz, `${op} colT`, "u32");
  } else {
    need(l.rowPtr, l.nIn + 1, `${op} rowPtr`, "u32");
    need(l.col, l.nnz, `${op} col`, "u32");
    need(l.perm, l.nnz, `${op} perm`, "u32");
  }
}

function gatherTuning(gpu: Gpu, op: string, t: Partial<GatherTuning> = {}): GatherTuning {
  const g = { ...defaultGatherTuning(gpu), ...t };
  const ok = [g.wg, g.rj].every((v) => Number.isInteger(v) && v >= 1) && Number.isInteger(g.vb) &&
    g.vb >= 1 && g.vb <= 8 &&
    (g.wide === undefined || (Number.isInteger(g.wide) && g.wide >= 0 && g.wide <= 32));
  if (!ok) {
    throw new FiligreeError(
      `${op}: bad tuning wg ${g.wg}, vb ${g.vb} (1..8), rj ${g.rj}, wide ${g.wide} (0..32)`,
    );
  }
  gpu.checkLimit("maxComputeWorkgroupSizeX", g.wg, `${op} workgroup`);
  gpu.checkLimit("maxComputeWorkgroupSizeY", g.rj, `${op} workgroup`);
  gpu.checkLimit("maxComputeInvocationsPerWorkgroup", g.wg * g.rj, `${op} workgroup`);
  return g;
}

/** Workgroups of a gather: (row blocks of rj) x (batch blocks of wg·vb quads), flattened. */
function gatherGrid(rec: Recorder, rows: number, ld4: number, g: GatherTuning) {
  const blocks = Math.ceil(ld4 / (g.wg * g.vb));
  return { blocks, groups: grid(rec.gpu, Math.ceil(rows / g.rj) * blocks) };
}

/**
 * Forward sparse layer: `z[j][b] = sum_k values[k]·x[colT[k]][b] + bias[j]` over row `j` of
 * CSR(Wᵀ), `y = act(z)`, optionally storing `z`. Padding columns of `y` and `z` become 0.
 * Per-invocation loop: one row of CSR(Wᵀ), at most `nIn` iterations (`nIn <= MAX_LOOP_TRIPS`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, uploadCsr } from "../sparse/csr.ts";
 * import { spmm } from "./sparse.ts";
 * const gpu = await getGpu();
 * const layer = uploadCsr(gpu, csrFromCoo(1, 2, [0, 0], [0, 1], [1, -1]));
 * const x = gpu.tensor("f32", [1, 4], { data: new Float32Array([1, 2, 0, 0]) });
 * const bias = gpu.tensor("f32", [2], { data: new Float32Array([0.5, 0.5]) });
 * const y = gpu.tensor("f32", [2, 4]);
 * const z = gpu.tensor("f32", [2, 4]);
 * const rec = gpu.recorder();
 * spmm(rec, { layer, x, y, z, bias, batch: 2, activation: "relu" });
 * rec.submit();
 * assert.deepEqual(await gpu.read(y), new Float32Array([1.5, 2.5, 0, 0, 0, 0, 0, 0]));
 * assert.deepEqual(await gpu.read(z), new Float32Array([1.5, 2.5, 0, 0, -0.5, -1.5, 0, 0]));
 * ```
 */
export function spmm(rec: Recorder, a: SpmmArgs): void {
  const op = "spmm";
  const { layer } = a;
  const ld = checkBatch(op, a.batch);
  checkLayer(op, layer, "T");
  need(layer.values, layer.nnz, `${op} values`);
  need(a.x, layer.nIn * ld, `${op} x`);
  need(a.y, layer.nOut * ld, `${op} y`);
  if (a.z) need(a.z, layer.nOut * ld, `${op} z`);
  if (a.bias) need(a.bias, layer.nOut, `${op} bias`);
  distinct(op, [["x", a.x], ["y", a.y], ["z", a.z]]);
  if (layer.nIn > MAX_LOOP_TRIPS) {
    throw new FiligreeError(
      `${op}: nIn ${layer.nIn} exceeds the per-invocation loop bound ${MAX_LOOP_TRIPS} (a row of Wᵀ may hold nIn nonzeros)`,
    );
  }
  const g = gatherTuning(rec.gpu, op, a.tune);
  const ph = placeholder(rec.gpu);
  const act = a.activation ?? "identity";
  const actId = activationId(act); // throws on an unknown name before anything is recorded
  const tex = sparseInputs(rec.gpu, [layer.nIn], ld, layer.nnz, a.inputs) === "texture";
  const ld4 = ld / 4;
  const operands = {
    row_ptr_t: layer.rowPtrT,
    col_t: tex ? flat(rec, layer.colT, layer.nnz) : layer.colT,
    vals: tex ? flat(rec, layer.values, layer.nnz) : layer.values,
    x_in: tex ? rows4(rec, a.x, layer.nIn, ld) : a.x,
    bias: a.bias ?? ph.read,
    y_out: a.y,
    z_out: a.z ?? ph.write,
  };
  const passes = rowPasses(g.wide, ld4, layer.nIn);
  if (passes.length) {
    const groups = grid(rec.gpu, Math.ceil(layer.nOut / g.rj));
    const order = orderOf(rec, layer.rowPtrT, layer.nOut, layer.nIn);
    const actParam = f32(activationParam(act, a.actParam));
    recordRowPasses(
      rec,
      tex ? SPMM_WIDE_TEX : SPMM_WIDE,
      {
        ACT: actId,
        HAS_BIAS: a.bias ? 1 : 0,
        STORE_Z: a.z ? 1 : 0,
        GR: g.rj,
        SKIP_ZERO: g.skipZero ? 1 : 0,
        ORDERED: order.ORDERED,
        PAD: a.batch % 4 ? 1 : 0,
      },
      passes,
      ld4,
      (q0, q1) => [layer.nOut, a.batch, ld4, 0, q0, q1, 0, actParam],
      { ...operands, row_order8: order.texture },
      groups,
    );
    return;
  }
  const { blocks, groups } = gatherGrid(rec, layer.nOut, ld4, g);
  const p = rec.gpu.uniform(
    sparseParams([
      layer.nOut,
      a.batch,
      ld / 4,
      blocks,
      0,
      0,
      0,
      f32(activationParam(act, a.actParam)),
    ]),
  );
  const k = rec.gpu.kernel(tex ? SPMM_TEX : SPMM, {
    ACT: actId,
    HAS_BIAS: a.bias ? 1 : 0,
    STORE_Z: a.z ? 1 : 0,
    WG: g.wg,
    VB: g.vb,
    RJ: g.rj,
    CONTIG: g.contiguous ? 1 : 0,
    SKIP_ZERO: g.skipZero ? 1 : 0,
  });
  rec.dispatch(k, { p, ...operands }, groups);
}

/**
 * Backward data: `dx[i][b] = sum_m values[perm[m]]·dy[col[m]][b]` over row `i` of CSR(W), times
 * `act'(z[i][b])` when an activation (of the layer below) is given. Padding columns of `dx`
 * become 0. Per-invocation loop: one row of CSR(W), at most `nOut` iterations
 * (`nOut <= MAX_LOOP_TRIPS`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, uploadCsr } from "../sparse/csr.ts";
 * import { spmmT } from "./sparse.ts";
 * const gpu = await getGpu();
 * const layer = uploadCsr(gpu, csrFromCoo(1, 2, [0, 0], [0, 1], [1, -1]));
 * const dy = gpu.tensor("f32", [2, 4], { data: new Float32Array([1, 2, 0, 0, 3, 5, 0, 0]) });
 * const z = gpu.tensor("f32", [1, 4], { data: new Float32Array([1, -1, 0, 0]) });
 * const dx = gpu.tensor("f32", [1, 4]);
 * const rec = gpu.recorder();
 * spmmT(rec, { layer, dy, dx, z, batch: 2, activation: "relu" });
 * rec.submit();
 * assert.deepEqual(await gpu.read(dx), new Float32Array([-2, -0, 0, 0]));
 * ```
 */
export function spmmT(rec: Recorder, a: SpmmTArgs): void {
  const op = "spmmT";
  const { layer } = a;
  const ld = checkBatch(op, a.batch);
  checkLayer(op, layer, "W");
  need(layer.values, layer.nnz, `${op} values`);
  need(a.dy, layer.nOut * ld, `${op} dy`);
  need(a.dx, layer.nIn * ld, `${op} dx`);
  const actName = a.activation ?? "identity";
  const act = activationId(actName);
  const useZ = act !== activationId("identity");
  if (useZ && !a.z) {
    throw new FiligreeError(
      `${op}: activation "${a.activation}" needs z (the pre-activation of the layer below)`,
    );
  }
  if (useZ && a.z) need(a.z, layer.nIn * ld, `${op} z`);
  distinct(op, [["dy", a.dy], ["dx", a.dx], ["z", useZ ? a.z : undefined]]);
  if (layer.nOut > MAX_LOOP_TRIPS) {
    throw new FiligreeError(
      `${op}: nOut ${layer.nOut} exceeds the per-invocation loop bound ${MAX_LOOP_TRIPS} (a row of W may hold nOut nonzeros)`,
    );
  }
  const g = gatherTuning(rec.gpu, op, a.tune);
  const tex = sparseInputs(rec.gpu, [layer.nOut], ld, layer.nnz, a.inputs) === "texture";
  const ld4 = ld / 4;
  const passes = rowPasses(g.wide, ld4, layer.nOut);
  if (passes.length) {
    const z = useZ && a.z ? a.z : undefined;
    const operands = rowsOfWOperands(rec, layer, a.dy, z, ld, tex);
    const groups = grid(rec.gpu, Math.ceil(layer.nIn / g.rj));
    const order = orderOf(rec, layer.rowPtr, layer.nIn, layer.nOut);
    const actParam = f32(activationParam(actName, a.actParam));
    recordRowPasses(
      rec,
      tex ? SPMM_T_WIDE_TEX : SPMM_T_WIDE,
      { ACT: act, HAS_ZP: z ? 1 : 0, GR: g.rj, ORDERED: order.ORDERED, PAD: a.batch % 4 ? 1 : 0 },
      passes,
      ld4,
      (q0, q1) => [layer.nIn, a.batch, ld4, 0, q0, q1, 0, actParam],
      { row_ptr: layer.rowPtr, dx_out: a.dx, row_order8: order.texture, ...operands },
      groups,
    );
    return;
  }
  const { blocks, groups } = gatherGrid(rec, layer.nIn, ld / 4, g);
  const p = rec.gpu.uniform(
    sparseParams([
      layer.nIn,
      a.batch,
      ld / 4,
      blocks,
      0,
      0,
      0,
      f32(activationParam(actName, a.actParam)),
    ]),
  );
  const k = rec.gpu.kernel(tex ? SPMM_T_TEX : SPMM_T, {
    ACT: act,
    HAS_ZP: useZ ? 1 : 0,
    WG: g.wg,
    VB: g.vb,
    RJ: g.rj,
    CONTIG: g.contiguous ? 1 : 0,
  });
  rec.dispatch(k, {
    p,
    row_ptr: layer.rowPtr,
    col: tex ? flat(rec, layer.col, layer.nnz) : layer.col,
    vals: tex ? flat(rec, layer.values, layer.nnz) : layer.values,
    perm: tex ? flat(rec, layer.perm, layer.nnz) : layer.perm,
    dy_in: tex ? rows4(rec, a.dy, layer.nOut, ld) : a.dy,
    dx_out: a.dx,
    zp_in: useZ && a.z ? a.z : placeholder(rec.gpu).read,
  }, groups);
}

/**
 * Quads of the batch one sddmm dispatch may cover: an invocation runs
 * `ceil(quads / ch) · (ceil(nIn / sg) + 2)` loop iterations (chunks x (nonzeros of a row / sg,
 * plus loop exits)), kept at or below {@link MAX_LOOP_TRIPS}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sddmmQuadsPerDispatch } from "./sparse.ts";
 * assert.deepEqual(sddmmQuadsPerDispatch(784), 5200); // batch 20,800 in one dispatch
 * assert.deepEqual(sddmmQuadsPerDispatch(1000, { sg: 1, ch: 1 }), 64);
 * ```
 */
export function sddmmQuadsPerDispatch(nIn: number, t: Partial<SddmmTuning> = {}): number {
  const s = { ...SDDMM_TUNING, ...t };
  const perChunk = Math.ceil(nIn / s.sg) + 2;
  return Math.floor(MAX_LOOP_TRIPS / perChunk) * s.ch;
}

/**
 * Weight gradient at the nonzeros: `dvalues[k] = sum_{b < batch} x[colT[k]][b]·dy[j][b]` for `k`
 * in row `j` of CSR(Wᵀ) (the order of `layer.values`); with `accumulate`, added to `dvalues`.
 * Padding columns of `x` and `dy` are ignored. Large batches are split over several dispatches
 * (see {@link sddmmQuadsPerDispatch}) to respect the loop bound.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, uploadCsr } from "../sparse/csr.ts";
 * import { sddmm } from "./sparse.ts";
 * const gpu = await getGpu();
 * const layer = uploadCsr(gpu, csrFromCoo(2, 1, [0, 1], [0, 0], [0, 0]));
 * const x = gpu.tensor("f32", [2, 4], { data: new Float32Array([1, 2, 0, 0, 3, 4, 0, 0]) });
 * const dy = gpu.tensor("f32", [1, 4], { data: new Float32Array([1, 1, 0, 0]) });
 * const dvalues = gpu.tensor("f32", [2]);
 * const rec = gpu.recorder();
 * sddmm(rec, { layer, x, dy, dvalues, batch: 2 });
 * rec.submit();
 * assert.deepEqual(await gpu.read(dvalues), new Float32Array([3, 7]));
 * ```
 */
export function sddmm(rec: Recorder, a: SddmmArgs): void {
  const op = "sddmm";
  const { layer } = a;
  const ld = checkBatch(op, a.batch);
  checkLayer(op, layer, "T");
  need(a.x, layer.nIn * ld, `${op} x`);
  need(a.dy, layer.nOut * ld, `${op} dy`);
  need(a.dvalues, layer.nnz, `${op} dvalues`);
  distinct(op, [["x", a.x], ["dy", a.dy], ["dvalues", a.dvalues]]);
  const s = { ...SDDMM_VARIANTS[SDDMM_DEFAULTS[adapterClass(rec.gpu)]], ...a.tune };
  const rs = s.rs ?? 1;
  if (
    !Number.isInteger(s.sg) || s.sg < 1 || !Number.isInteger(s.ch) || s.ch < 1 || s.ch > 8 ||
    !Number.isInteger(rs) || rs < 1 ||
    (s.wide !== undefined && (!Number.isInteger(s.wide) || s.wide < 0 || s.wide > 32))
  ) {
    throw new FiligreeError(
      `${op}: bad tuning sg ${s.sg}, ch ${s.ch} (1..8), rs ${rs}, wide ${s.wide} (0..32)`,
    );
  }
  const ld4 = ld / 4;
  const passes = rowPasses(s.wide, ld4, layer.nOut, 16);
  if (passes.length) {
    checkLayer(op, layer, "W");
    rec.gpu.checkLimit("maxComputeWorkgroupSizeX", rs, `${op} workgroup`);
    walkRowsOfW(rec, a, [WGRAD_T, WGRAD_T_TEX], rs, passes, undefined);
    return;
  }
  rec.gpu.checkLimit("maxComputeWorkgroupSizeX", s.sg, `${op} workgroup`);
  rec.gpu.checkLimit("maxComputeWorkgroupSizeY", rs, `${op} workgroup`);
  rec.gpu.checkLimit("maxComputeInvocationsPerWorkgroup", s.sg * rs, `${op} workgroup`);
  const step = sddmmQuadsPerDispatch(layer.nIn, s);
  if (step < 1) {
    throw new FiligreeError(
      `${op}: nIn ${layer.nIn} exceeds the per-invocation loop bound (${MAX_LOOP_TRIPS} iterations with sg ${s.sg})`,
    );
  }
  const tex = sparseInputs(rec.gpu, [layer.nIn, layer.nOut], ld, layer.nnz, a.inputs) === "texture";
  const k = rec.gpu.kernel(tex ? SDDMM_TEX : SDDMM, { SG: s.sg, CH: s.ch, RS: rs });
  const groups = grid(rec.gpu, Math.ceil(layer.nOut / rs));
  const operands: Record<string, Resource> = tex
    ? {
      col_t: flat(rec, layer.colT, layer.nnz),
      x_in: rows4(rec, a.x, layer.nIn, ld),
      dy_in: rows4(rec, a.dy, layer.nOut, ld),
    }
    : { col_t: layer.colT, x_in: a.x, dy_in: a.dy };
  for (let q0 = 0; q0 < ld4; q0 += step) {
    const q1 = Math.min(ld4, q0 + step);
    const acc = q0 > 0 || a.accumulate ? 1 : 0;
    const p = rec.gpu.uniform(sparseParams([layer.nOut, a.batch, ld4, 0, q0, q1, acc, f32(0)]));
    rec.dispatch(k, { p, row_ptr_t: layer.rowPtrT, dvals: a.dvalues, ...operands }, groups);
  }
}

/** Arguments of {@link pickDense}. */
export interface PickDenseArgs {
  layer: CsrLayer;
  /** f32 `[nIn][nOut]` dense gradient `D = X·dYᵀ`. */
  dense: Tensor;
  /** f32 `[nnz]` result `dvalues[k] (+)= D[colT[k]][j]`, in the order of `layer.values`. */
  dvalues: Tensor;
  accumulate?: boolean;
}

/** Invocations per row of the {@link pickDense} kernel. */
const PICK_SG = 8;

/**
 * Picks a dense `[nIn][nOut]` weight gradient at the layer's nonzeros:
 * `dvalues[k] = dense[colT[k]][j]` for `k` in row `j` of CSR(Wᵀ) (added with `accumulate`).
 * Per-invocation loop: `ceil(rowlen / 8) <= ceil(nIn / 8)` iterations.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, uploadCsr } from "../sparse/csr.ts";
 * import { pickDense } from "./sparse.ts";
 * const gpu = await getGpu();
 * // W (2 x 2) with nonzeros (0,1) and (1,0); dense gradient [[1, 2], [3, 4]]
 * const layer = uploadCsr(gpu, csrFromCoo(2, 2, [0, 1], [1, 0], [0, 0]));
 * const dense = gpu.tensor("f32", [2, 2], { data: new Float32Array([1, 2, 3, 4]) });
 * const dvalues = gpu.tensor("f32", [2]);
 * const rec = gpu.recorder();
 * pickDense(rec, { layer, dense, dvalues });
 * rec.submit();
 * assert.deepEqual(await gpu.read(dvalues), new Float32Array([3, 2])); // row j = 0 holds input 1, row j = 1 input 0
 * ```
 */
export function pickDense(rec: Recorder, a: PickDenseArgs): void {
  const op = "pickDense";
  const { layer } = a;
  checkLayer(op, layer, "T");
  need(a.dense, layer.nIn * layer.nOut, `${op} dense`);
  need(a.dvalues, layer.nnz, `${op} dvalues`);
  distinct(op, [["dense", a.dense], ["dvalues", a.dvalues]]);
  if (Math.ceil(layer.nIn / PICK_SG) > MAX_LOOP_TRIPS) {
    throw new FiligreeError(`${op}: nIn ${layer.nIn} exceeds the per-invocation loop bound`);
  }
  const p = rec.gpu.uniform(
    sparseParams([layer.nOut, 0, 0, 0, 0, 0, a.accumulate ? 1 : 0, f32(0)]),
  );
  rec.dispatch(rec.gpu.kernel(PICK, { SG: PICK_SG }), {
    p,
    row_ptr_t: layer.rowPtrT,
    col_t: layer.colT,
    dvals: a.dvalues,
    dense_in: a.dense,
  }, grid(rec.gpu, layer.nOut));
}

/** How {@link weightGrad} computes the gradient at the nonzeros. */
export type WeightGradPath = "sddmm" | "dense";

/**
 * The dense-vs-SDDMM rule of one adapter class: the dense product `X·dYᵀ` (matmul.ts, all
 * `nIn·nOut` entries) picked at the nonzeros is used when the layer's density
 * `nnz / (nIn·nOut)` is at least `denseFrom`. Both paths cost time proportional to the batch, so
 * the crossover is a density: SDDMM costs `2·nnz·B / R_sddmm`, the dense path
 * `2·nIn·nOut·B / R_gemm + pick(nnz)`, and dense wins above `R_sddmm / R_gemm` (plus the pick).
 */
export interface WeightGradRule {
  denseFrom: number;
  /** Where the number comes from. */
  source: string;
}

/**
 * Measured thresholds per adapter class (bench/sparse_bench.ts "wgrad" cases time both paths in
 * one run at 784x1000, 1000x1000 and 300x100; docs/KERNELS.md has the table).
 */
export const WGRAD_RULES: Record<"cpu" | "gpu", WeightGradRule> = {
  cpu: {
    denseFrom: 0.3,
    source:
      "llvmpipe GL, 2026-12-05: SDDMM 2-4 GFLOP/s vs GEMM 12-18 GFLOP/s, crossover 0.2-0.4; " +
      "2026-12-06 (Zen 2 host, both from texture mirrors): crossover 0.3 (0.4 at 300x100)",
  },
  gpu: {
    denseFrom: 0.1,
    source: "not measured (no GPU on the project machine): GEMM/SDDMM rate ratio assumed ~10",
  },
};

/** Largest dense scratch (floats) the dense path may allocate; above it SDDMM is used. */
const DENSE_SCRATCH_MAX = 1 << 25;

/**
 * The weight-gradient path {@link weightGrad} takes for a layer and batch on this adapter:
 * `"dense"` when the density reaches {@link WGRAD_RULES}`[adapterClass].denseFrom` and the dense
 * scratch `[nIn][nOut]` fits the adapter's storage-binding limit; else `"sddmm"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { weightGradPath } from "./sparse.ts";
 * const gpu = await getGpu();
 * assert.deepEqual(weightGradPath(gpu, 1000, 1000, 40_000, 128), "sddmm"); // 4 %
 * assert.deepEqual(weightGradPath(gpu, 100, 10, 1000, 128), "dense"); // 100 %
 * ```
 */
export function weightGradPath(
  gpu: Gpu,
  nIn: number,
  nOut: number,
  nnz: number,
  batch: number,
): WeightGradPath {
  const cells = nIn * nOut;
  if (cells === 0 || nnz === 0) return "sddmm";
  const fits = cells <= DENSE_SCRATCH_MAX &&
    cells * 4 <= gpu.limits.maxStorageBufferBindingSize && batch <= MAX_LOOP_TRIPS;
  return fits && nnz / cells >= WGRAD_RULES[adapterClass(gpu)].denseFrom ? "dense" : "sddmm";
}

const denseScratch = new WeakMap<Gpu, Tensor>();
/** One dense gradient scratch per device, grown on demand (dispatches run in order). */
function scratchFor(gpu: Gpu, n: number): Tensor {
  let t = denseScratch.get(gpu);
  if (!t || t.size < n) {
    t = gpu.tensor("f32", [n], { label: "sparse.dense_grad" });
    denseScratch.set(gpu, t);
  }
  return t;
}

/** Arguments of {@link weightGrad}: {@link SddmmArgs} plus the path (default `"auto"`). */
export interface WeightGradArgs extends SddmmArgs {
  /** `"auto"` applies {@link weightGradPath}; tests and benches force a path. */
  path?: WeightGradPath | "auto";
}

/**
 * Weight gradient at the nonzeros, `dvalues[k] (+)= sum_{b < batch} x[colT[k]][b]·dy[j][b]`,
 * by SDDMM or by the dense product `D = X·dYᵀ` (matmul over the batch, padding excluded) picked
 * at the nonzeros, whichever {@link weightGradPath} says is faster here. Returns the path taken.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, uploadCsr } from "../sparse/csr.ts";
 * import { weightGrad } from "./sparse.ts";
 * const gpu = await getGpu();
 * const layer = uploadCsr(gpu, csrFromCoo(2, 1, [0, 1], [0, 0], [0, 0]));
 * const x = gpu.tensor("f32", [2, 4], { data: new Float32Array([1, 2, 0, 0, 3, 4, 0, 0]) });
 * const dy = gpu.tensor("f32", [1, 4], { data: new Float32Array([1, 1, 0, 0]) });
 * const dvalues = gpu.tensor("f32", [2]);
 * for (const path of ["sddmm", "dense"] as const) {
 *   const rec = gpu.recorder();
 *   weightGrad(rec, { layer, x, dy, dvalues, batch: 2, path });
 *   rec.submit();
 *   assert.deepEqual(await gpu.read(dvalues), new Float32Array([3, 7]));
 * }
 * ```
 */
export function weightGrad(rec: Recorder, a: WeightGradArgs): WeightGradPath {
  const { layer } = a;
  const path = !a.path || a.path === "auto"
    ? weightGradPath(rec.gpu, layer.nIn, layer.nOut, layer.nnz, a.batch)
    : a.path;
  if (path === "sddmm" || layer.nnz === 0) {
    sddmm(rec, a);
    return path;
  }
  const op = "weightGrad";
  const ld = checkBatch(op, a.batch);
  checkLayer(op, layer, "T");
  need(a.x, layer.nIn * ld, `${op} x`);
  need(a.dy, layer.nOut * ld, `${op} dy`);
  need(a.dvalues, layer.nnz, `${op} dvalues`);
  distinct(op, [["x", a.x], ["dy", a.dy], ["dvalues", a.dvalues]]);
  const dense = scratchFor(rec.gpu, layer.nIn * layer.nOut);
  // D[nIn][nOut] = X·dYᵀ over the batch only (k = batch: the padding columns are not read).
  matmul(rec, {
    a: a.x,
    b: a.dy,
    c: dense,
    m: layer.nIn,
    n: layer.nOut,
    k: a.batch,
    transB: true,
    lda: ld,
    ldb: ld,
  });
  pickDense(rec, { layer, dense, dvalues: a.dvalues, accumulate: a.accumulate });
  return path;
}

/**
 * Blocking of the fused backward ({@link sparseBackward}): `ch` quads of the batch per chunk
 * (1..32; the chunk of x and of dx held in private arrays), `gr` rows per workgroup.
 */
export interface GradTTuning {
  ch: number;
  gr: number;
}
/**
 * Default blocking of the fused backward: on llvmpipe (GL, 2026-12-06, 3 interleaved rounds at
 * load ~2.5) ch 8 / gr 8 was the best or within 17 % of it at 1000x1000 4 %, 300x100 12 % and
 * 24 %, 4096x4096 5 % (bench/sparse_bench.ts "backward" cases rerun the comparison). A whole
 * batch of 128 in one chunk is faster still where the loop bound allows it (second session,
 * Zen 2 host, `bench:profile`, batch 128: SET-MLP ε 20's two grad_t 13.8 ms at ch 8, 19.9 at ch
 * 16, 10.0 at ch 32; LeNet-300-100's 0.61, 1.02, 0.55 ms): {@link gradTChunk} picks
 * {@link GRAD_T_WIDE} quads then, else `ch`.
 */
export const GRAD_T_TUNING: Readonly<GradTTuning> = Object.freeze({ ch: 8, gr: 8 });
/** The wide chunk of the fused backward (quads; batch 128). */
export const GRAD_T_WIDE = 32;

/**
 * The fused backward's chunk (quads) for a layer with `nOut` outputs at `ld4` batch quads:
 * {@link GRAD_T_WIDE} when the batch has that many quads and one chunk of them fits the loop
 * bound, else the tuned `ch`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gradTChunk } from "./sparse.ts";
 * assert.equal(gradTChunk(1000, 32), 32); // batch 128
 * assert.equal(gradTChunk(1000, 16), 8); // batch 64: a wide chunk would be half padding
 * assert.equal(gradTChunk(4096, 32), 8); // a wide chunk over 4,096 outputs exceeds the bound
 * ```
 */
export function gradTChunk(nOut: number, ld4: number): number {
  const wide = ld4 >= GRAD_T_WIDE && gradTQuadsPerDispatch(nOut, { ch: GRAD_T_WIDE }) > 0;
  return wide ? GRAD_T_WIDE : GRAD_T_TUNING.ch;
}

/**
 * Whether {@link sparseBackward}'s `"auto"` path fuses, per adapter class. llvmpipe: yes (1.5-2.0x
 * over SDDMM + spmmT at 300x100 to 4096x4096, 4-24 % density, interleaved rounds, 2026-12-06). A
 * GPU: no until measured there (`grad_t` walks one row per invocation, the uncoalesced CSR-scalar
 * pattern; the separate kernels put lanes along the batch); bench/gpu.sh times both.
 */
export const FUSE_BACKWARD: Record<"cpu" | "gpu", boolean> = { cpu: true, gpu: false };

/** Arguments of {@link sparseBackward}: the weight gradient's and the data gradient's together. */
export interface SparseBackwardArgs extends SddmmArgs {
  /** f32 `[nIn][ld]` result `dx[i] = sum_j W[i][j]·dy[j]` (no activation derivative). */
  dx: Tensor;
  /**
   * `"auto"` (default) fuses where it can and should (see {@link sparseBackward}); tests and
   * benches force `"fused"` (when the loop bound and the storage-buffer limit allow it) or
   * `"separate"` (the two kernels).
   */
  path?: "auto" | "fused" | "separate";
  tune?: Partial<GradTTuning>;
}

/**
 * Quads of the batch one fused-backward dispatch may cover: an invocation runs
 * `ceil(quads / ch) · (nOut + 2) · (ch + 1)` loop iterations at most (the chunk's quad loops are
 * counted as not unrolled: llvmpipe counts them at ch 32), kept at or below
 * {@link MAX_LOOP_TRIPS}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gradTQuadsPerDispatch } from "./sparse.ts";
 * assert.deepEqual(gradTQuadsPerDispatch(1000), 56); // batch 224 in one dispatch (ch 8)
 * ```
 */
export function gradTQuadsPerDispatch(nOut: number, t: Partial<GradTTuning> = {}): number {
  return chunkedQuadsPerDispatch(nOut, { ...GRAD_T_TUNING, ...t }.ch);
}

/**
 * The backward of a sparse layer whose input needs a gradient: the weight gradient at the
 * nonzeros `dvalues[k] (+)= sum_b x[colT[k]][b]·dy[j][b]` (as {@link sddmm}) and the data
 * gradient `dx[i] = sum_j W[i][j]·dy[j]` (as {@link spmmT} without an activation), in one pass
 * over CSR(W) that loads each nonzero's dy row once for both (`grad_t`), or in two kernels
 * ({@link weightGrad} then {@link spmmT}) where that is the better path: when the adapter class
 * does not fuse ({@link FUSE_BACKWARD}), the dense weight gradient is faster
 * ({@link weightGradPath}), a row of W is longer than the loop bound allows for one quad chunk,
 * or the adapter allows fewer than 8 storage buffers per stage.
 * Returns which path ran.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, uploadCsr } from "../sparse/csr.ts";
 * import { sparseBackward } from "./sparse.ts";
 * const gpu = await getGpu();
 * // W (2 x 1) = [[2], [3]]; x = [[1, 2], [3, 4]] (2 inputs, batch 2), dy = [[1, 1]]
 * const layer = uploadCsr(gpu, csrFromCoo(2, 1, [0, 1], [0, 0], [2, 3]));
 * const x = gpu.tensor("f32", [2, 4], { data: new Float32Array([1, 2, 0, 0, 3, 4, 0, 0]) });
 * const dy = gpu.tensor("f32", [1, 4], { data: new Float32Array([1, 1, 0, 0]) });
 * const dvalues = gpu.tensor("f32", [2]);
 * const dx = gpu.tensor("f32", [2, 4]);
 * const rec = gpu.recorder();
 * const args = { layer, x, dy, dx, dvalues, batch: 2 };
 * assert.deepEqual(sparseBackward(rec, { ...args, path: "fused" }), "fused");
 * rec.submit();
 * assert.deepEqual(await gpu.read(dvalues), new Float32Array([3, 7]));
 * assert.deepEqual(await gpu.read(dx), new Float32Array([2, 2, 0, 0, 3, 3, 0, 0]));
 * ```
 */
export function sparseBackward(rec: Recorder, a: SparseBackwardArgs): "fused" | WeightGradPath {
  const op = "sparseBackward";
  const { layer } = a;
  const gpu = rec.gpu;
  const t = {
    ...GRAD_T_TUNING,
    ch: gradTChunk(layer.nOut, roundUp4(a.batch) / 4),
    ...a.tune,
  };
  if (!Number.isInteger(t.ch) || t.ch < 1 || t.ch > 32 || !Number.isInteger(t.gr) || t.gr < 1) {
    throw new FiligreeError(`${op}: bad tuning ch ${t.ch} (1..8), gr ${t.gr}`);
  }
  // Rows short enough for a whole-batch chunk take it even where the layer's longest possible
  // row (nOut) does not allow it (rowPasses); a tuned chunk is used as given.
  const ld4 = roundUp4(a.batch) / 4;
  const big = a.tune?.ch === undefined && ld4 >= GRAD_T_WIDE ? GRAD_T_WIDE : 0;
  const passes = splitRows(big, ld4, layer.nOut, t.ch);
  const want = a.path ?? "auto";
  const possible = passes.every((s) => s.step >= s.ch) &&
    gpu.limits.maxStorageBuffersPerShaderStage >= 8 + (gpu.quirks.paramsInStorage ? 1 : 0);
  const fuse = possible && layer.nnz > 0 && (want === "fused" ||
    (want === "auto" && FUSE_BACKWARD[adapterClass(gpu)] &&
      weightGradPath(gpu, layer.nIn, layer.nOut, layer.nnz, a.batch) === "sddmm"));
  if (!fuse) {
    const path = weightGrad(rec, { ...a, path: "auto", tune: undefined });
    spmmT(rec, { layer, dy: a.dy, dx: a.dx, batch: a.batch, inputs: a.inputs });
    return path;
  }
  const ld = checkBatch(op, a.batch);
  checkLayer(op, layer, "W");
  need(layer.values, layer.nnz, `${op} values`);
  need(a.x, layer.nIn * ld, `${op} x`);
  need(a.dy, layer.nOut * ld, `${op} dy`);
  need(a.dx, layer.nIn * ld, `${op} dx`);
  need(a.dvalues, layer.nnz, `${op} dvalues`);
  distinct(op, [["x", a.x], ["dy", a.dy], ["dx", a.dx], ["dvalues", a.dvalues]]);
  gpu.checkLimit("maxComputeWorkgroupSizeX", t.gr, `${op} workgroup`);
  walkRowsOfW(rec, a, [GRAD_T, GRAD_T_TEX], t.gr, passes, a.dx);
  return "fused";
}

/**
 * The gathered operands of the kernels that walk CSR(W) (`spmm_t_wide`, `grad_t`, `wgrad_t`):
 * CSR(W)'s columns, the values and `perm`, dy, and at binding 7 (`xw_in`) x or z (a placeholder
 * when absent), as mirrors where `tex`.
 */
function rowsOfWOperands(
  rec: Recorder,
  layer: CsrLayer,
  dy: Tensor,
  xw: Tensor | undefined,
  ld: number,
  tex: boolean,
): Record<string, Resource> {
  if (!tex) {
    return {
      col: layer.col,
      vals: layer.values,
      perm: layer.perm,
      dy_in: dy,
      xw_in: xw ?? placeholder(rec.gpu).read,
    };
  }
  return {
    col: flat(rec, layer.col, layer.nnz),
    vals: flat(rec, layer.values, layer.nnz),
    perm: flat(rec, layer.perm, layer.nnz),
    dy_in: rows4(rec, dy, layer.nOut, ld),
    xw_in: xw ? rows4(rec, xw, layer.nIn, ld) : placeholderMirror(rec.gpu, "rgba32float"),
  };
}

/**
 * Records `grad_t` (with `dx`) or `wgrad_t` (without: a placeholder is bound), which both walk
 * CSR(W) with one invocation per input row (`gr` per workgroup) and take GRAD_T's bindings: each
 * row pass over the batch in dispatches of its `step` quads.
 */
function walkRowsOfW(
  rec: Recorder,
  a: SddmmArgs,
  [def, texDef]: [KernelDef, KernelDef],
  gr: number,
  passes: readonly RowPass[],
  dx: Tensor | undefined,
): void {
  const { layer } = a;
  const ld = roundUp4(a.batch);
  const ld4 = ld / 4;
  const tex = sparseInputs(rec.gpu, [layer.nIn, layer.nOut], ld, layer.nnz, a.inputs) === "texture";
  const groups = grid(rec.gpu, Math.ceil(layer.nIn / gr));
  const operands = rowsOfWOperands(rec, layer, a.dy, a.x, ld, tex);
  const order = orderOf(rec, layer.rowPtr, layer.nIn, layer.nOut);
  recordRowPasses(
    rec,
    tex ? texDef : def,
    // dy's padding lanes need masking only when the batch has some (x's are always masked).
    { GR: gr, MASK_DY: a.batch % 4 ? 1 : 0, PAD: a.batch % 4 ? 1 : 0, ORDERED: order.ORDERED },
    passes,
    ld4,
    (q0, q1) => [layer.nIn, a.batch, ld4, 0, q0, q1, q0 > 0 || a.accumulate ? 1 : 0, f32(0)],
    {
      row_ptr: layer.rowPtr,
      dx_out: dx ?? placeholder(rec.gpu).write,
      dw_out: a.dvalues,
      row_order9: order.texture,
      ...operands,
    },
    groups,
  );
}
