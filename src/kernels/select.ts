/**
 * Radix select on float bits and the exactly-k mask, entirely on the GPU: the primitives that
 * magnitude pruning / SET / RigL need to pick the k smallest (or largest) weights without
 * reading a weight array back. Shader: shaders/select.wgsl; reference: topo_ref.ts
 * (`selectRef`, `markRef`).
 *
 * {@link radixSelect} finds the k-th smallest eligible key (k counted from 1) with four 8-bit
 * histogram passes over an order-preserving u32 transform of the float bits (9 dispatches,
 * 4 reads of the data, u32 atomics only) and writes a small u32 result on the GPU (layout
 * {@link SEL}). k is a CPU number or a u32 word in a GPU buffer (e.g. computed on the GPU as
 * ζ·(number of positive weights), which {@link SEL}.ELIGIBLE of a "positive" select gives).
 *
 * **Ties / exactly k elements.** Several elements may share the threshold key. The result
 * says `below` (eligible keys strictly before it) and `take = k - below`; the selected set is
 * "every eligible key before the threshold, plus the first `take` keys equal to it in index
 * order". {@link markSelected} writes that set as a u32 0/1 mask with exactly
 * min(k, eligible) ones, deterministically (block tie counts + an exclusive scan).
 *
 * Modes ({@link SelectMode}): "value" (all, by value, −0 before +0), "abs" (all, by |v|),
 * "positive" (v > 0 only, by v), "negative" (v < 0 only, by |v|: closest to zero first).
 * `largest: true` ranks in the opposite order (top-k largest). NaNs are never eligible.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { markSelected, radixSelect, SEL, SELECT_RESULT_WORDS } from "./select.ts";
 * const gpu = await getGpu();
 * const w = gpu.tensor("f32", [6], { data: new Float32Array([0.3, -0.1, 0.2, 0.2, -0.5, 0.9]) });
 * const result = gpu.tensor("u32", [SELECT_RESULT_WORDS]);
 * const mask = gpu.tensor("u32", [6]);
 * const rec = gpu.recorder();
 * // the 2 smallest positive weights: 0.2 and 0.2
 * radixSelect(rec, { data: w, n: 6, k: 2, mode: "positive", result });
 * markSelected(rec, { data: w, n: 6, mode: "positive", result, mask });
 * rec.submit();
 * const r = await gpu.read(result);
 * assert.deepEqual(new Float32Array(r.buffer)[SEL.THRESHOLD], Math.fround(0.2));
 * assert.deepEqual([r[SEL.BELOW], r[SEL.TAKE]], [0, 2]);
 * assert.deepEqual(await gpu.read(mask), new Uint32Array([0, 0, 1, 1, 0, 0]));
 * ```
 * @module
 */
import code from "../../shaders/select.wgsl" with { type: "text" };
import {
  defineKernel,
  FiligreeError,
  grid,
  packParams,
  type Recorder,
  type Tensor,
} from "../gpu/mod.ts";
import { exclusiveScan, topoScratch } from "./scan.ts";
import type { SelectMode } from "./topo_ref.ts";

export type { SelectMode } from "./topo_ref.ts";

const WG = 128;
const VPT = 16;
/** Elements per workgroup of the histogram and mask kernels (WG × VPT vec4s). */
export const SELECT_BLOCK = WG * VPT * 4;

/** Words of the result tensor of {@link radixSelect}. */
export const SELECT_RESULT_WORDS = 8;

/** Word indices of the select result (a u32 tensor of {@link SELECT_RESULT_WORDS} words). */
export const SEL = {
  /** Rank key of the k-th selected element (internal order-preserving u32; 0 when k = 0). */
  KEY: 0,
  /** f32 bits of the threshold's ranked value (v; |v| for "abs"/"negative"); NaN when k = 0. */
  THRESHOLD: 1,
  /** Eligible elements ranked strictly before the threshold. */
  BELOW: 2,
  /** k - below: how many elements equal to the threshold are selected (lowest index first). */
  TAKE: 3,
  /** min(k, eligible): the number of elements selected. */
  K: 4,
  /** Number of eligible elements (e.g. the count of positive weights). */
  ELIGIBLE: 5,
  /** k as requested (read from the uniform or the GPU buffer). */
  K_REQUESTED: 6,
} as const;

const MODES: Record<SelectMode, number> = { value: 0, abs: 1, positive: 2, negative: 3 };

/** Zeroes the result and histogram, reads k. */
export const SEL_INIT = defineKernel({
  shader: "select.wgsl",
  code,
  entry: "sel_init",
  bindings: [["p", "uniform"], ["res", "read_write"], ["kbuf", "read"], ["hist", "read_write"]],
});
/** One 8-bit digit histogram pass. */
export const SEL_HIST = defineKernel({
  shader: "select.wgsl",
  code,
  entry: "sel_hist",
  bindings: [["p", "uniform"], ["res", "read_write"], ["x", "read"], ["hist", "read_write"]],
});
/** Picks the digit holding the remaining rank (one workgroup). */
export const SEL_FIND = defineKernel({
  shader: "select.wgsl",
  code,
  entry: "sel_find",
  // binding 2 (x) is not used by this entry point; the data tensor is bound there.
  bindings: [["p", "uniform"], ["res", "read_write"], ["x", "read"], ["hist", "read_write"]],
});
/** Per-block counts of elements equal to the threshold key. */
export const MARK_COUNT = defineKernel({
  shader: "select.wgsl",
  code,
  entry: "mark_count",
  bindings: [["p", "uniform"], ["res", "read_write"], ["x", "read"], ["blk", "read_write"]],
});
/** Writes the exactly-k mask. */
export const MARK_WRITE = defineKernel({
  shader: "select.wgsl",
  code,
  entry: "mark_write",
  bindings: [
    ["p", "uniform"],
    ["res", "read_write"],
    ["x", "read"],
    ["boff", "read"],
    ["mask", "read_write"],
  ],
});

/** k given as a u32 word of a GPU tensor (written by an earlier kernel of the same recorder). */
export interface GpuK {
  tensor: Tensor;
  /** Word index (default 0). */
  index?: number;
}

/** What to rank: shared by {@link radixSelect} and {@link markSelected}. */
export interface SelectKeys {
  /** f32 data, at least `n` elements (read as raw bits; never modified). */
  data: Tensor;
  /** Number of elements, >= 1. */
  n: number;
  /** Default "value". */
  mode?: SelectMode;
  /** Select the k largest instead of the k smallest keys (default false). */
  largest?: boolean;
  /** u32 tensor of >= {@link SELECT_RESULT_WORDS} words, layout {@link SEL}. */
  result: Tensor;
}

/** Arguments of {@link radixSelect}. */
export interface SelectArgs extends SelectKeys {
  /**
   * How many elements to select: a CPU integer (a new value creates one small cached uniform,
   * so per-step values in long runs should use a GPU word) or a GPU word. Clamped to the
   * number of eligible elements; 0 selects nothing.
   */
  k: number | GpuK;
}

/** Arguments of {@link markSelected}. */
export interface MarkArgs extends SelectKeys {
  /** u32 output, at least n elements: 1 for selected elements, else 0. */
  mask: Tensor;
  /** OR into the existing mask instead of overwriting it (e.g. positive ∪ negative sets). */
  accumulate?: boolean;
}

function checkKeys(a: SelectKeys, what: string): { nq: number; nBlocks: number; mode: number } {
  if (!Number.isInteger(a.n) || a.n < 1) {
    throw new FiligreeError(`${what}: n must be a positive integer, got ${a.n}`);
  }
  if (a.data.size < a.n) {
    throw new FiligreeError(
      `${what}: data ${a.data.label} has ${a.data.size} elements, needs ${a.n}`,
    );
  }
  if (a.result.dtype === "f32" || a.result.size < SELECT_RESULT_WORDS) {
    throw new FiligreeError(
      `${what}: result ${a.result.label} must be u32 with >= ${SELECT_RESULT_WORDS} words`,
    );
  }
  const mode = MODES[a.mode ?? "value"];
  if (mode === undefined) {
    throw new FiligreeError(`${what}: unknown mode "${a.mode}" (value, abs, positive, negative)`);
  }
  if (a.result.buffer === a.data.buffer) {
    throw new FiligreeError(`${what}: result and data are the same tensor`);
  }
  const nq = Math.ceil(a.n / 4);
  if (a.data.buffer.size < nq * 16) {
    throw new FiligreeError(
      `${what}: data buffer ${a.data.label} too small for ${a.n} vec4-read floats`,
    );
  }
  return { nq, nBlocks: Math.ceil(a.n / SELECT_BLOCK), mode };
}

/**
 * Records a radix select: after it runs, `result` holds the k-th smallest (largest) eligible
 * key, the count below it and the tie count to take (layout {@link SEL}). 9 dispatches.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { radixSelect, SEL, SELECT_RESULT_WORDS } from "./select.ts";
 * const gpu = await getGpu();
 * const w = gpu.tensor("f32", [4], { data: new Float32Array([-3, 1, -0.5, 2]) });
 * const k = gpu.tensor("u32", [1], { data: new Uint32Array([1]) }); // k on the GPU
 * const result = gpu.tensor("u32", [SELECT_RESULT_WORDS]);
 * const rec = gpu.recorder();
 * radixSelect(rec, { data: w, n: 4, k: { tensor: k }, mode: "negative", result });
 * rec.submit();
 * const r = await gpu.read(result);
 * assert.deepEqual(new Float32Array(r.buffer)[SEL.THRESHOLD], 0.5);
 * assert.deepEqual(r[SEL.ELIGIBLE], 2);
 * ```
 */
export function radixSelect(rec: Recorder, a: SelectArgs): void {
  const gpu = rec.gpu;
  const { nq, nBlocks, mode } = checkKeys(a, "radixSelect");
  let kFromBuf = 0;
  let kConst = 0;
  let kIndex = 0;
  let kbuf: Tensor;
  if (typeof a.k === "number") {
    if (!Number.isInteger(a.k) || a.k < 0 || a.k > 0xffffffff) {
      throw new FiligreeError(`radixSelect: k must be an integer in [0, 2^32), got ${a.k}`);
    }
    kConst = a.k;
    kbuf = topoScratch(gpu, "select unused k", 4);
  } else {
    kIndex = a.k.index ?? 0;
    if (!Number.isInteger(kIndex) || kIndex < 0 || kIndex >= a.k.tensor.size) {
      throw new FiligreeError(`radixSelect: k index ${kIndex} outside tensor ${a.k.tensor.label}`);
    }
    if (a.k.tensor.dtype === "f32") {
      throw new FiligreeError(`radixSelect: k tensor ${a.k.tensor.label} must be u32`);
    }
    if (a.k.tensor.buffer === a.result.buffer) {
      throw new FiligreeError("radixSelect: k cannot live in the result tensor");
    }
    kFromBuf = 1;
    kbuf = a.k.tensor;
  }
  const largest = a.largest ? 1 : 0;
  const params = (shift: number, withK: boolean) =>
    gpu.uniform(packParams([
      a.n,
      nq,
      nBlocks,
      mode,
      largest,
      shift,
      withK ? kFromBuf : 0,
      withK ? kConst : 0,
      withK ? kIndex : 0,
      0,
    ]));
  const hist = topoScratch(gpu, "select histogram", 256);
  const res = a.result;
  rec.dispatch(gpu.kernel(SEL_INIT), { p: params(0, true), res, kbuf, hist }, 1);
  const kh = gpu.kernel(SEL_HIST, { WG, VPT });
  const kf = gpu.kernel(SEL_FIND);
  for (const shift of [24, 16, 8, 0]) {
    const p = params(shift, false);
    rec.dispatch(kh, { p, res, x: a.data, hist }, grid(gpu, nBlocks));
    rec.dispatch(kf, { p, res, x: a.data, hist }, 1);
  }
}

/**
 * Records the exactly-k mask of a {@link radixSelect} that ran earlier with the same `data`,
 * `n`, `mode`, `largest` and `result`: `mask[i] = 1` for the min(k, eligible) selected
 * elements (ties at the threshold: lowest indices first), 0 elsewhere (or OR-ed in with
 * `accumulate`). 2 dispatches plus a scan of ceil(n / SELECT_BLOCK) block counts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { markSelected, radixSelect, SELECT_RESULT_WORDS } from "./select.ts";
 * const gpu = await getGpu();
 * const w = gpu.tensor("f32", [5], { data: new Float32Array([1, 1, 1, 1, 0]) });
 * const result = gpu.tensor("u32", [SELECT_RESULT_WORDS]);
 * const mask = gpu.tensor("u32", [5]);
 * const rec = gpu.recorder();
 * radixSelect(rec, { data: w, n: 5, k: 3, result });
 * markSelected(rec, { data: w, n: 5, result, mask });
 * rec.submit();
 * assert.deepEqual(await gpu.read(mask), new Uint32Array([1, 1, 0, 0, 1]));
 * ```
 */
export function markSelected(rec: Recorder, a: MarkArgs): void {
  const gpu = rec.gpu;
  const { nq, nBlocks, mode } = checkKeys(a, "markSelected");
  if (a.mask.dtype === "f32" || a.mask.size < a.n) {
    throw new FiligreeError(
      `markSelected: mask ${a.mask.label} must be u32 with >= ${a.n} elements`,
    );
  }
  if (a.mask.buffer === a.data.buffer || a.mask.buffer === a.result.buffer) {
    throw new FiligreeError("markSelected: mask must be distinct from data and result");
  }
  const p = gpu.uniform(
    packParams([a.n, nq, nBlocks, mode, a.largest ? 1 : 0, 0, 0, 0, 0, a.accumulate ? 1 : 0]),
  );
  const blk = topoScratch(gpu, "select block ties", nBlocks);
  const boff = topoScratch(gpu, "select block tie offsets", nBlocks);
  rec.dispatch(
    gpu.kernel(MARK_COUNT, { WG, VPT }),
    { p, res: a.result, x: a.data, blk },
    grid(gpu, nBlocks),
  );
  exclusiveScan(rec, { input: blk, output: boff, n: nBlocks });
  rec.dispatch(
    gpu.kernel(MARK_WRITE, { WG, VPT }),
    { p, res: a.result, x: a.data, boff, mask: a.mask },
    grid(gpu, nBlocks),
  );
}

/**
 * {@link radixSelect} followed by {@link markSelected}: the exactly-k mask in one call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { selectMask, SELECT_RESULT_WORDS } from "./select.ts";
 * const gpu = await getGpu();
 * const w = gpu.tensor("f32", [4], { data: new Float32Array([0.1, -0.2, 0.3, -0.4]) });
 * const result = gpu.tensor("u32", [SELECT_RESULT_WORDS]);
 * const mask = gpu.tensor("u32", [4]);
 * const rec = gpu.recorder();
 * selectMask(rec, { data: w, n: 4, k: 2, mode: "abs", largest: true, result, mask });
 * rec.submit();
 * assert.deepEqual(await gpu.read(mask), new Uint32Array([0, 0, 1, 1]));
 * ```
 */
export function selectMask(rec: Recorder, a: SelectArgs & MarkArgs): void {
  radixSelect(rec, a);
  markSelected(rec, a);
}
