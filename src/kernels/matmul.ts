/**
 * Dense matrix multiply `C[m][n] (= or +=) op(A)·op(B)`, row-major with explicit leading
 * dimensions, in the layouts backprop needs (NN, NT, TN; TT works too). Shader:
 * shaders/matmul.wgsl; reference: matmul_ref.ts.
 *
 * With feature-major activations `X[in][ld]` and row-major weights `W[in][out]`:
 * - forward `Y[out][ld] = Wᵀ·X`: `matmul(rec, { a: W, b: X, c: Y, m: out, n: ld, k: in, transA: true })`
 * - backward data `dX[in][ld] = W·dY`: `{ a: W, b: dY, c: dX, m: in, n: ld, k: out }`
 * - weight gradient `dW[in][out] = X·dYᵀ`: `{ a: X, b: dY, c: dW, m: in, n: out, k: ld, transB: true }`
 *
 * Passing `n = ld` (forward, backward data) computes the padding columns too; they come out
 * zero because the padding columns of X and dY are zero. Likewise `k = ld` for the weight
 * gradient adds nothing from the padding.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { matmul } from "./matmul.ts";
 * const gpu = await getGpu();
 * const a = gpu.tensor("f32", [2, 2], { data: new Float32Array([1, 2, 3, 4]) });
 * const b = gpu.tensor("f32", [2, 1], { data: new Float32Array([5, 6]) });
 * const c = gpu.tensor("f32", [2, 1]);
 * const rec = gpu.recorder();
 * matmul(rec, { a, b, c, m: 2, n: 1, k: 2 });
 * rec.submit();
 * assert.deepEqual(await gpu.read(c), new Float32Array([17, 39]));
 * ```
 * @module
 */
import code from "../../shaders/matmul.wgsl" with { type: "text" };
import {
  adapterClass,
  defineKernel,
  FiligreeError,
  grid,
  MAX_LOOP_TRIPS,
  packParams,
  type Recorder,
  type Tensor,
} from "../gpu/mod.ts";

const BINDINGS = [
  ["p", "uniform"],
  ["a", "read"],
  ["a4", "read"],
  ["b", "read"],
  ["b4", "read"],
] as const;

/**
 * Entry writing C as vec4 (`ldc % 4 == 0`); {@link matmul} picks it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MATMUL } from "./matmul.ts";
 * assert.deepEqual(MATMUL.entry, "matmul");
 * ```
 */
export const MATMUL = defineKernel({
  shader: "matmul.wgsl",
  code,
  entry: "matmul",
  textureInputs: true,
  bindings: [...BINDINGS, ["c4", "read_write"], ["bias", "read"]],
});
/**
 * Entry writing C as scalars (any `ldc`); {@link matmul} picks it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MATMUL_C1 } from "./matmul.ts";
 * assert.deepEqual(MATMUL_C1.entry, "matmul_c1");
 * ```
 */
export const MATMUL_C1 = defineKernel({
  shader: "matmul.wgsl",
  code,
  entry: "matmul_c1",
  textureInputs: true,
  bindings: [...BINDINGS, ["c", "read_write"]],
});

/**
 * Blocking factors (WGSL overrides). One invocation computes `rm` rows by `4·cv` columns of C;
 * a workgroup is `wgX` invocations along n by `wgY` along m.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { MatmulTuning } from "./matmul.ts";
 * const gpuLike: MatmulTuning = { rm: 8, cv: 1, wgX: 16, wgY: 16 };
 * assert.deepEqual(gpuLike.rm * gpuLike.cv * 4, 32); // outputs per invocation
 * ```
 */
export interface MatmulTuning {
  /** Rows per invocation: 4, 8, 12 or 16. */
  rm: number;
  /** vec4 columns per invocation: 1 to 4. */
  cv: number;
  /** Workgroup invocations along n. */
  wgX: number;
  /** Workgroup invocations along m. */
  wgY: number;
}

/**
 * The blocking found fastest on llvmpipe (16 rows x 8 columns per invocation, ~19 GFLOP/s).
 * A real GPU wants smaller register blocks and larger workgroups (e.g. `{ rm: 8, cv: 1,
 * wgX: 16, wgY: 16 }`); pass `tuning` per call or change the default with {@link setMatmulTuning}.
 *
 * @example
 * ```ts
 * import { LLVMPIPE_TUNING, setMatmulTuning } from "./matmul.ts";
 * setMatmulTuning(LLVMPIPE_TUNING);
 * ```
 */
export const LLVMPIPE_TUNING: Readonly<MatmulTuning> = Object.freeze({
  rm: 16,
  cv: 2,
  wgX: 8,
  wgY: 8,
});

let defaultTuning: MatmulTuning = { ...LLVMPIPE_TUNING };

/**
 * Changes the process-wide default blocking (fields not given keep their value); returns the
 * new default.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { setMatmulTuning } from "./matmul.ts";
 * assert.deepEqual(setMatmulTuning({ rm: 8, cv: 1, wgX: 16, wgY: 16 }).rm, 8);
 * setMatmulTuning({ rm: 16, cv: 2, wgX: 8, wgY: 8 });
 * ```
 */
export function setMatmulTuning(t: Partial<MatmulTuning>): MatmulTuning {
  const next = { ...defaultTuning, ...t };
  checkTuning(next);
  defaultTuning = next;
  return { ...next };
}

/**
 * The current default blocking.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getMatmulTuning } from "./matmul.ts";
 * assert.deepEqual(getMatmulTuning().rm, 16);
 * ```
 */
export function getMatmulTuning(): MatmulTuning {
  return { ...defaultTuning };
}

function workgroups(t: MatmulTuning, m: number, n: number): number {
  return Math.ceil(Math.ceil(n / (4 * t.cv)) / t.wgX) * Math.ceil(Math.ceil(m / t.rm) / t.wgY);
}

/**
 * The blocking for an untuned call: the default, unless it puts the whole product in one
 * workgroup (one CPU thread on llvmpipe) where 4-row, 1-vec4 blocks make several; e.g. an output
 * layer's weight gradient [100][10] over a batch of 128: 160 -> 88 us on llvmpipe.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getMatmulTuning, smallShapeTuning } from "./matmul.ts";
 * assert.equal(smallShapeTuning(getMatmulTuning(), 100, 10).rm, 4);
 * assert.equal(smallShapeTuning(getMatmulTuning(), 1000, 1000).rm, getMatmulTuning().rm);
 * ```
 */
export function smallShapeTuning(t: MatmulTuning, m: number, n: number): MatmulTuning {
  if (workgroups(t, m, n) > 1) return t;
  const small = { ...t, rm: 4, cv: 1 };
  return workgroups(small, m, n) > 1 ? small : t;
}

/**
 * Whether untuned calls apply {@link narrowShapeTuning}, per adapter class: on CPU adapters (where
 * it was measured), not on GPUs until measured there. Mutable so that a benchmark can compare
 * whole training steps with and without it in one process.
 */
export const NARROW_TUNING: Record<"cpu" | "gpu", boolean> = { cpu: true, gpu: false };

/**
 * The blocking for an untuned call (on the adapter classes {@link NARROW_TUNING} names) whose
 * columns do not fill a row of the workgroup at the default's vec4 columns per invocation but do
 * at one (`4·wgX <= n < 4·cv·wgX`): one vec4 column per invocation and half the rows per
 * workgroup, else `t`. On llvmpipe the default (16 rows x
 * 2 vec4) left half of each workgroup idle on a weight gradient with 32 outputs: the study CNN's
 * conv2, `[400][32]` over 25,088 columns, 60-65 ms against 33-35 ms at 16 x 1 with 8 x 4
 * invocations (8 x 8: 39 ms; 8 x 2: 34 ms; interleaved, load ~3.6, same bits); from 100 columns
 * up the default stays faster (784x300, 1568x300, 300x100 over a batch of 128: 4-12 %).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getMatmulTuning, narrowShapeTuning } from "./matmul.ts";
 * const t = getMatmulTuning();
 * assert.deepEqual(narrowShapeTuning(t, 32), { ...t, cv: 1, wgY: t.wgY / 2 });
 * assert.equal(narrowShapeTuning(t, 300), t); // wide enough
 * assert.equal(narrowShapeTuning(t, 10), t); // too narrow even at one vec4
 * ```
 */
export function narrowShapeTuning(t: MatmulTuning, n: number): MatmulTuning {
  if (t.cv === 1 || n >= 4 * t.cv * t.wgX || n < 4 * t.wgX) return t;
  return { ...t, cv: 1, wgY: Math.max(1, Math.floor(t.wgY / 2)) };
}

function checkTuning(t: MatmulTuning): void {
  const ok = Number.isInteger(t.rm) && t.rm >= 4 && t.rm <= 16 && t.rm % 4 === 0 &&
    Number.isInteger(t.cv) && t.cv >= 1 && t.cv <= 4 &&
    Number.isInteger(t.wgX) && t.wgX >= 1 && Number.isInteger(t.wgY) && t.wgY >= 1;
  if (!ok) {
    throw new FiligreeError(
      `matmul tuning ${JSON.stringify(t)}: need rm in {4, 8, 12, 16}, cv in 1..4, wgX, wgY >= 1`,
    );
  }
}

/**
 * Arguments of {@link matmul}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { MatmulArgs } from "./matmul.ts";
 * import type { Tensor } from "../gpu/mod.ts";
 * // dW[in][out] = X·dYᵀ for feature-major X [in][ld], dY [out][ld]
 * const dwArgs = (x: Tensor, dy: Tensor, dw: Tensor, inF: number, outF: number, ld: number): MatmulArgs =>
 *   ({ a: x, b: dy, c: dw, m: inF, n: outF, k: ld, transB: true });
 * assert.deepEqual(typeof dwArgs, "function");
 * ```
 */
export interface MatmulArgs {
  /** `[m][lda]`, or `[k][lda]` holding Aᵀ when `transA`. */
  a: Tensor;
  /** `[k][ldb]`, or `[n][ldb]` holding Bᵀ when `transB`. */
  b: Tensor;
  /** `[m][ldc]` output; must not alias `a` or `b`. Columns `n..ldc-1` are left untouched. */
  c: Tensor;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  /** Row stride of A; default `transA ? m : k`. */
  lda?: number;
  /** Row stride of B; default `transB ? k : n`. */
  ldb?: number;
  /** Row stride of C; default `n`. */
  ldc?: number;
  /** `C += op(A)·op(B)` instead of `C = op(A)·op(B)`. */
  accumulate?: boolean;
  /**
   * `C[i][j] = op(A)·op(B)[i][j] + bias.t[i]` for columns `j < bias.cols`, `0` for the other
   * columns below n (a feature-major layer's forward with its padding columns): the bias add
   * in the same pass. Needs `ldc % 4 == 0` and no `accumulate`.
   */
  bias?: { t: Tensor; cols: number };
  /** Blocking for this call (default: {@link getMatmulTuning}). */
  tuning?: Partial<MatmulTuning>;
}

function dim(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
    throw new FiligreeError(`matmul: ${what} = ${v} is not a size`);
  }
  return v;
}

function need(t: Tensor, rows: number, cols: number, ld: number, what: string): void {
  if (ld < cols) {
    throw new FiligreeError(`matmul: ${what} leading dimension ${ld} < ${cols} columns`);
  }
  const n = rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
  if (t.size < n) {
    throw new FiligreeError(
      `matmul: ${what} tensor ${t.label} has ${t.size} elements, needs ${n} ([${rows}][${ld}])`,
    );
  }
  if (n > 0xffffffff / 4) throw new FiligreeError(`matmul: ${what} of ${n} elements is too large`);
}

/**
 * Records `C[m][n] (= or +=) op(A)·op(B)`. Any m, n, k >= 0 (k = 0 writes zeros, or leaves C
 * as is with `accumulate`); strides may be any value >= the row length, multiples of 4 take
 * the vec4 load/store paths. Throws {@link FiligreeError} on bad sizes, too-small tensors or
 * a K beyond the llvmpipe loop bound ({@link MAX_LOOP_TRIPS}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { matmul } from "./matmul.ts";
 * const gpu = await getGpu();
 * // Feature-major layer forward: Y[out=2][ld=4] = Wᵀ·X, W [in=3][out=2], X [in=3][ld=4] (batch 3)
 * const w = gpu.tensor("f32", [3, 2], { data: new Float32Array([1, 0, 0, 1, 1, 1]) });
 * const x = gpu.tensor("f32", [3, 4], { data: new Float32Array([1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0]) });
 * const y = gpu.tensor("f32", [2, 4]);
 * const rec = gpu.recorder();
 * matmul(rec, { a: w, b: x, c: y, m: 2, n: 4, k: 3, transA: true });
 * rec.submit();
 * assert.deepEqual(await gpu.read(y), new Float32Array([8, 10, 12, 0, 11, 13, 15, 0]));
 * ```
 */
export function matmul(rec: Recorder, args: MatmulArgs): void {
  const m = dim(args.m, "m");
  const n = dim(args.n, "n");
  const k = dim(args.k, "k");
  const transA = args.transA ?? false;
  const transB = args.transB ?? false;
  const lda = dim(args.lda ?? (transA ? m : k), "lda");
  const ldb = dim(args.ldb ?? (transB ? k : n), "ldb");
  const ldc = dim(args.ldc ?? n, "ldc");
  let t = { ...defaultTuning, ...args.tuning };
  if (!args.tuning) {
    t = smallShapeTuning(NARROW_TUNING[adapterClass(rec.gpu)] ? narrowShapeTuning(t, n) : t, m, n);
  }
  checkTuning(t);
  const trips = Math.floor(k / 4) + (k % 4);
  if (trips > MAX_LOOP_TRIPS) {
    throw new FiligreeError(
      `matmul: k = ${k} needs ${trips} loop iterations per invocation, over the bound ${MAX_LOOP_TRIPS} (llvmpipe stops at 65,535)`,
    );
  }
  if (transA) need(args.a, k, m, lda, "A (transposed)");
  else need(args.a, m, k, lda, "A");
  if (transB) need(args.b, n, k, ldb, "B (transposed)");
  else need(args.b, k, n, ldb, "B");
  need(args.c, m, n, ldc, "C");
  if (args.c.buffer === args.a.buffer || args.c.buffer === args.b.buffer) {
    throw new FiligreeError(`matmul: C (${args.c.label}) must not alias A or B`);
  }
  if (args.bias) {
    if (ldc % 4 !== 0 || args.accumulate) {
      throw new FiligreeError("matmul: a bias needs ldc % 4 == 0 and no accumulate");
    }
    need(args.bias.t, 1, m, m, "bias");
    if (!Number.isInteger(args.bias.cols) || args.bias.cols < 0 || args.bias.cols > n) {
      throw new FiligreeError(`matmul: bias columns ${args.bias.cols} not in 0..${n}`);
    }
  }
  if (m === 0 || n === 0) return;

  const colGroups = Math.ceil(Math.ceil(n / (4 * t.cv)) / t.wgX);
  const rowGroups = Math.ceil(Math.ceil(m / t.rm) / t.wgY);
  const groups = colGroups * rowGroups;
  const gpu = rec.gpu;
  gpu.checkLimit("maxComputeInvocationsPerWorkgroup", t.wgX * t.wgY, "matmul workgroup");
  gpu.checkLimit("maxComputeWorkgroupSizeX", t.wgX, "matmul workgroup");
  gpu.checkLimit("maxComputeWorkgroupSizeY", t.wgY, "matmul workgroup");
  const p = gpu.uniform(
    packParams([
      m,
      n,
      k,
      lda,
      ldb,
      ldc,
      args.accumulate ? 1 : 0,
      colGroups,
      groups,
      args.bias?.cols ?? 0,
    ]),
  );
  const vecC = ldc % 4 === 0;
  const kernel = gpu.kernel(vecC ? MATMUL : MATMUL_C1, {
    TRANS_A: transA ? 1 : 0,
    TRANS_B: transB ? 1 : 0,
    VEC_A: lda % 4 === 0 ? 1 : 0,
    VEC_B: ldb % 4 === 0 ? 1 : 0,
    RM: t.rm,
    CV: t.cv,
    WG_X: t.wgX,
    WG_Y: t.wgY,
    ...(vecC ? { BIAS: args.bias ? 1 : 0 } : {}),
  });
  const res: Record<string, Tensor | GPUBuffer> = {
    p,
    a: args.a,
    a4: args.a,
    b: args.b,
    b4: args.b,
  };
  res[vecC ? "c4" : "c"] = args.c;
  if (vecC) res.bias = args.bias?.t ?? args.a; // without BIAS never read (a placeholder)
  // Each operand is read as vec4s (VEC_*) with a scalar K tail, or as scalars only: the view
  // not read gets no mirror copy.
  const unread = [
    ...(lda % 4 === 0 ? (k % 4 === 0 ? ["a"] : []) : ["a4"]),
    ...(ldb % 4 === 0 ? (k % 4 === 0 ? ["b"] : []) : ["b4"]),
    ...(args.bias ? [] : ["bias"]),
  ];
  rec.dispatch(kernel, res, grid(gpu, groups), { unread });
}
