/**
 * Reductions for the training loop, all results kept on the device so an epoch's loss and
 * accuracy are read back once:
 *
 * - {@link sum} / {@link mean}: an f32 array (e.g. a per-sample loss over the batch) to one value
 *   in a GPU buffer. Multi-level tree, no float atomics, fixed order: bit-reproducible.
 * - {@link accumulateSum}: `acc[index] += scale * sum(x)` (the "metrics accumulate" kernel: add a
 *   step's loss sum into an epoch accumulator; ordered, no atomics).
 * - {@link argmax} / {@link countCorrect}: per-sample argmax over the class rows of feature-major
 *   logits `[classes][ld]` (ties: lowest index wins), and `counter[index] +=` the number of
 *   predictions equal to the u32 labels (u32 `atomicAdd`, so the count is exact).
 *
 * Clear accumulators with `rec.clear(t)` at the start of an epoch.
 *
 * Shader: shaders/reduce.wgsl; float64 references: reduce_ref.ts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { accumulateSum, countCorrect } from "./reduce.ts";
 * const gpu = await getGpu();
 * // 2 classes x 3 samples (ld 4); sample 2 ties, so class 0 wins.
 * const logits = gpu.tensor("f32", [2, 4], { data: new Float32Array([1, 0, 5, 0, 2, -1, 5, 0]) });
 * const labels = gpu.tensor("u32", [3], { data: new Uint32Array([1, 0, 1]) });
 * const loss = gpu.tensor("f32", [3], { data: new Float32Array([0.5, 0.25, 1]) });
 * const lossSum = gpu.tensor("f32", [1], { zero: true });
 * const correct = gpu.tensor("u32", [1], { zero: true });
 * const rec = gpu.recorder();
 * accumulateSum(rec, { x: loss, n: 3, acc: lossSum });
 * countCorrect(rec, { logits, labels, classes: 2, batch: 3, counter: correct });
 * rec.submit();
 * assert.deepEqual(await gpu.read(lossSum), new Float32Array([1.75]));
 * assert.deepEqual(await gpu.read(correct), new Uint32Array([2]));
 * ```
 * @module
 */
import code from "../../shaders/reduce.wgsl" with { type: "text" };
import {
  defineKernel,
  f32,
  FiligreeError,
  type Gpu,
  grid,
  packParams,
  type Recorder,
  roundUp4,
  type Tensor,
} from "../gpu/mod.ts";

const WG = 64;
/**
 * Default sum tuning: 256 invocations x 16 vec4 loads = 16,384 elements per workgroup (on
 * llvmpipe 2-3x faster than 64 x 16; a usual shape for GPUs too).
 */
export const SUM_DEFAULTS = { wg: 256, items: 16 } as const;
/** llvmpipe stops a loop after 65,535 iterations: the argmax scans classes - 1 rows. */
export const MAX_CLASSES = 65_000;

/** One level of the tree sum. */
export const SUM_LEVEL = defineKernel({
  shader: "reduce.wgsl",
  code,
  entry: "sum_level",
  textureInputs: true,
  bindings: [["p", "uniform"], ["x", "read"], ["out", "read_write"]],
});
/** Per-sample argmax. */
export const ARGMAX = defineKernel({
  shader: "reduce.wgsl",
  code,
  entry: "argmax",
  textureInputs: true,
  bindings: [["a", "uniform"], ["logits", "read"], ["pred", "read_write"]],
});
/** Count of correct predictions into a u32 counter. */
export const COUNT_CORRECT = defineKernel({
  shader: "reduce.wgsl",
  code,
  entry: "count_correct",
  textureInputs: true,
  bindings: [["a", "uniform"], ["logits", "read"], ["labels", "read"], ["counter", "read_write"]],
});

/**
 * Tuning knobs of the sum: `wg` invocations per workgroup (a power of two, 1..256) and `items`
 * vec4 loads per invocation (1..256). Defaults: {@link SUM_DEFAULTS}.
 */
export interface SumTuning {
  wg?: number;
  items?: number;
}

/** Arguments of {@link sum}. */
export interface SumArgs {
  /** f32 input; the first `n` elements are summed. */
  x: Tensor;
  /** Elements to sum (default `x.size`); 0 gives 0. */
  n?: number;
  /** f32 output; element `index` receives the result. Must not be `x`'s buffer. */
  out: Tensor;
  /** Output element (default 0). */
  index?: number;
  /** Multiplies the sum (default 1). */
  scale?: number;
  /** Add into `out[index]` instead of overwriting it (default false). */
  accumulate?: boolean;
  tune?: SumTuning;
}

interface Scratch {
  a?: Tensor;
  b?: Tensor;
}
// Ping-pong buffers for the partial sums, per device. Sharing them between calls is safe: the
// dispatches of one call complete (in recording order) before the next call's first dispatch.
const scratchByGpu = new WeakMap<Gpu, Scratch>();

function scratch(gpu: Gpu, which: "a" | "b", n: number): Tensor {
  let s = scratchByGpu.get(gpu);
  if (!s) scratchByGpu.set(gpu, s = {});
  const t = s[which];
  if (t && t.size >= n) return t;
  // Grow (by at least 2x). The old buffer may still be referenced by recorded, unsubmitted
  // work, so it is dropped rather than returned to the pool.
  const size = Math.max(n, 2 * (t?.size ?? 0), 1024);
  return s[which] = gpu.tensor("f32", [size], { label: `reduce.scratch.${which}` });
}

function isPow2(v: number) {
  return Number.isInteger(v) && v > 0 && (v & (v - 1)) === 0;
}

function checkTensor(t: Tensor, dtype: "f32" | "u32", need: number, what: string) {
  if (t.dtype !== dtype) {
    throw new FiligreeError(`${what}: tensor ${t.label} is ${t.dtype}, needs ${dtype}`);
  }
  if (t.size < need || t.buffer.size < roundUp4(need) * 4) {
    throw new FiligreeError(`${what}: tensor ${t.label} has ${t.size} elements, needs ${need}`);
  }
}

/**
 * Workgroup shape for one workgroup summing `m` elements: about 4 vec4 loads per invocation
 * and the fewest invocations (a training step's 128-sample loss sum: 8 x 4, 22 us on llvmpipe
 * against 138 us with the 256 x 16 default, whose 8 barrier levels dominate).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { smallSum } from "./reduce.ts";
 * assert.deepEqual(smallSum(128), { WG: 8, ITEMS: 4 });
 * assert.deepEqual(smallSum(16_384), { WG: 256, ITEMS: 16 });
 * ```
 */
export function smallSum(m: number): { WG: number; ITEMS: number } {
  const quads = Math.max(1, Math.ceil(m / 4));
  let wg = 1;
  while (wg < 256 && wg * 4 < quads) wg *= 2;
  return { WG: wg, ITEMS: Math.ceil(quads / wg) };
}

/**
 * Number of dispatches (tree levels) {@link sum} records for `n` elements.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sumLevels } from "./reduce.ts";
 * assert.deepEqual(sumLevels(16_000_000), 2); // 16M elements -> 977 partials -> 1
 * ```
 */
export function sumLevels(n: number, tune: SumTuning = {}): number {
  const per = (tune.wg ?? SUM_DEFAULTS.wg) * (tune.items ?? SUM_DEFAULTS.items) * 4;
  let levels = 1;
  for (let m = n; m > per; m = Math.ceil(m / per)) levels++;
  return levels;
}

/**
 * `out[index] = scale * sum(x[0..n))` (or `+=` with `accumulate`), summed in a fixed tree order
 * on the device: no readback, no float atomics, the same bits every run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { sum } from "./reduce.ts";
 * const gpu = await getGpu();
 * const x = gpu.tensor("f32", [5], { data: new Float32Array([1, 2, 3, 4, 5]) });
 * const s = gpu.tensor("f32", [1]);
 * const rec = gpu.recorder();
 * sum(rec, { x, out: s });
 * rec.submit();
 * assert.deepEqual(await gpu.read(s), new Float32Array([15]));
 * ```
 */
export function sum(rec: Recorder, a: SumArgs): void {
  const n = a.n ?? a.x.size;
  const index = a.index ?? 0;
  const scale = a.scale ?? 1;
  const wg = a.tune?.wg ?? SUM_DEFAULTS.wg;
  const items = a.tune?.items ?? SUM_DEFAULTS.items;
  if (!Number.isInteger(n) || n < 0 || n > 0xfffffff0) {
    throw new FiligreeError(`sum: bad element count ${n}`);
  }
  if (!isPow2(wg) || wg > 256) {
    throw new FiligreeError(`sum: tuning wg ${wg} must be a power of two <= 256`);
  }
  if (!Number.isInteger(items) || items < 1 || items > 256) {
    throw new FiligreeError(`sum: tuning items ${items} must be an integer in 1..256`);
  }
  if (!Number.isFinite(scale)) throw new FiligreeError(`sum: bad scale ${scale}`);
  if (!Number.isInteger(index) || index < 0) {
    throw new FiligreeError(`sum: bad output index ${index}`);
  }
  checkTensor(a.x, "f32", n, "sum x");
  checkTensor(a.out, "f32", index + 1, "sum out");
  if (a.x.buffer === a.out.buffer) {
    throw new FiligreeError(`sum: x and out are the same buffer (${a.x.label})`);
  }
  const gpu = rec.gpu;
  const k = gpu.kernel(SUM_LEVEL, { WG: wg, ITEMS: items });
  const per = wg * items * 4;
  let src = a.x;
  let m = n;
  for (let level = 0;; level++) {
    const groups = Math.max(1, Math.ceil(m / per));
    if (groups === 1) {
      const p = gpu.uniform(packParams([m, index, a.accumulate ? 1 : 0, f32(scale)]));
      // The last level sums at most one workgroup's elements: untuned, it is sized to them.
      const last = a.tune ? k : gpu.kernel(SUM_LEVEL, smallSum(m));
      rec.dispatch(last, { p, x: src, out: a.out }, 1);
      return;
    }
    const dst = scratch(gpu, level % 2 === 0 ? "a" : "b", groups);
    const p = gpu.uniform(packParams([m, 0, 0, f32(1)]));
    rec.dispatch(k, { p, x: src, out: dst }, grid(gpu, groups));
    src = dst;
    m = groups;
  }
}

/**
 * `out[index] = mean(x[0..n))` (n >= 1): the sum scaled by `1/n` (rounded to f32) at the last
 * level.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { mean } from "./reduce.ts";
 * const gpu = await getGpu();
 * const x = gpu.tensor("f32", [4], { data: new Float32Array([1, 2, 3, 6]) });
 * const m = gpu.tensor("f32", [1]);
 * const rec = gpu.recorder();
 * mean(rec, { x, out: m });
 * rec.submit();
 * assert.deepEqual(await gpu.read(m), new Float32Array([3]));
 * ```
 */
export function mean(rec: Recorder, a: Omit<SumArgs, "scale" | "accumulate">): void {
  const n = a.n ?? a.x.size;
  if (!(n >= 1)) throw new FiligreeError(`mean: needs at least one element, got ${n}`);
  sum(rec, { ...a, n, scale: 1 / n, accumulate: false });
}

/**
 * The metrics accumulator: `acc[index] += scale * sum(x[0..n))`, e.g. a step's per-sample loss
 * added into an epoch total that is read back once. Ordered (dispatch order), no atomics. The
 * accumulator is f32: over an epoch its relative rounding error grows like steps · 2⁻²⁴.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { accumulateSum } from "./reduce.ts";
 * const gpu = await getGpu();
 * const loss = gpu.tensor("f32", [2], { data: new Float32Array([1, 2]) });
 * const acc = gpu.tensor("f32", [1], { zero: true });
 * const rec = gpu.recorder();
 * accumulateSum(rec, { x: loss, acc });
 * accumulateSum(rec, { x: loss, acc });
 * rec.submit();
 * assert.deepEqual(await gpu.read(acc), new Float32Array([6]));
 * ```
 */
export function accumulateSum(
  rec: Recorder,
  a: { x: Tensor; n?: number; acc: Tensor; index?: number; scale?: number; tune?: SumTuning },
): void {
  sum(rec, {
    x: a.x,
    n: a.n,
    out: a.acc,
    index: a.index,
    scale: a.scale,
    accumulate: true,
    tune: a.tune,
  });
}

/** Sizes of feature-major logits: `classes` rows of `batch` samples, stride roundUp4(batch). */
export interface LogitShape {
  classes: number;
  batch: number;
}

function argSetup(rec: Recorder, a: LogitShape & { logits: Tensor }, index: number, what: string) {
  const { classes, batch } = a;
  if (!Number.isInteger(classes) || classes < 1) {
    throw new FiligreeError(`${what}: bad class count ${classes}`);
  }
  if (classes > MAX_CLASSES) {
    throw new FiligreeError(
      `${what}: ${classes} classes over the per-invocation loop bound ${MAX_CLASSES}`,
    );
  }
  if (!Number.isInteger(batch) || batch < 0) throw new FiligreeError(`${what}: bad batch ${batch}`);
  const ld = roundUp4(batch);
  checkTensor(a.logits, "f32", classes * ld, `${what} logits`);
  const p = rec.gpu.uniform(packParams([classes, batch, ld, index]));
  return { a: p, groups: grid(rec.gpu, Math.ceil(ld / 4 / WG)) };
}

/**
 * `pred[b] = argmax_c logits[c][b]` for `b < batch` (u32). Ties go to the lowest class index;
 * the scan is a strict `>` from class 0, so NaN never wins unless it is at class 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { argmax } from "./reduce.ts";
 * const gpu = await getGpu();
 * const logits = gpu.tensor("f32", [3, 4], { data: new Float32Array([0, 1, 0, 0, 2, 1, 0, 0, 1, 3, 0, 0]) });
 * const pred = gpu.tensor("u32", [2]);
 * const rec = gpu.recorder();
 * argmax(rec, { logits, classes: 3, batch: 2, pred });
 * rec.submit();
 * assert.deepEqual(await gpu.read(pred), new Uint32Array([1, 2]));
 * ```
 */
export function argmax(rec: Recorder, a: LogitShape & { logits: Tensor; pred: Tensor }): void {
  const { a: p, groups } = argSetup(rec, a, 0, "argmax");
  checkTensor(a.pred, "u32", a.batch, "argmax pred");
  rec.dispatch(rec.gpu.kernel(ARGMAX, { WG }), { a: p, logits: a.logits, pred: a.pred }, groups);
}

/**
 * `counter[index] += #{b < batch : argmax_c logits[c][b] == labels[b]}` (u32 counter, atomic
 * adds: exact and order-independent). Labels outside `0..classes-1` never count as correct.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { countCorrect } from "./reduce.ts";
 * const gpu = await getGpu();
 * const logits = gpu.tensor("f32", [2, 4], { data: new Float32Array([1, 0, 0, 0, 0, 1, 0, 0]) });
 * const labels = gpu.tensor("u32", [2], { data: new Uint32Array([0, 0]) });
 * const counter = gpu.tensor("u32", [1], { zero: true });
 * const rec = gpu.recorder();
 * countCorrect(rec, { logits, labels, classes: 2, batch: 2, counter });
 * rec.submit();
 * assert.deepEqual(await gpu.read(counter), new Uint32Array([1]));
 * ```
 */
export function countCorrect(
  rec: Recorder,
  a: LogitShape & { logits: Tensor; labels: Tensor; counter: Tensor; index?: number },
): void {
  const index = a.index ?? 0;
  if (!Number.isInteger(index) || index < 0) {
    throw new FiligreeError(`countCorrect: bad counter index ${index}`);
  }
  const { a: p, groups } = argSetup(rec, a, index, "countCorrect");
  checkTensor(a.labels, "u32", a.batch, "countCorrect labels");
  checkTensor(a.counter, "u32", index + 1, "countCorrect counter");
  rec.dispatch(
    rec.gpu.kernel(COUNT_CORRECT, { WG }),
    { a: p, logits: a.logits, labels: a.labels, counter: a.counter },
    groups,
  );
}
