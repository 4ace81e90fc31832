/**
 * Convolution building blocks on feature-major image batches (shaders/conv.wgsl; float64
 * references in conv_ref.ts):
 *
 * - {@link im2col}: image `[c·h·w][ld]` → columns `[c·k·k][P·ld]` (P = oh·ow output positions,
 *   column `pos·ld + b`, zero outside the image and in padding lanes). A linear layer run on the
 *   columns with batch `P·ld` writes `[c_out][P·ld]`, which is the feature-major activation
 *   `[c_out·P][ld]` in the same memory.
 * - {@link col2im}: the adjoint (gradient of the image from the gradient of the columns), a
 *   gather: each input element sums the column entries copied from it (no float atomics).
 * - {@link maxPoolForward} / {@link maxPoolBackward}: non-overlapping `size × size` max pooling
 *   (stride = size, floor mode), argmax stored in forward and gathered in backward.
 * - {@link zeroBatchPadding}: zeroes the padding lanes `b >= batch` of every `ld` block in
 *   place (a linear layer run on columns adds its bias to the padding lanes too).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { im2col } from "./conv.ts";
 * const gpu = await getGpu();
 * // one 2x2 image, batch 1 (ld 4): pixels 1 2 / 3 4; kernel 1 -> columns = the pixels
 * const x = gpu.tensor("f32", [4, 4], {
 *   data: new Float32Array([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]),
 * });
 * const cols = gpu.tensor("f32", [1, 16]);
 * const rec = gpu.recorder();
 * im2col(rec, { x, cols, channels: 1, height: 2, width: 2, kernel: 1, batch: 1 });
 * rec.submit();
 * assert.deepEqual(await gpu.read(cols), new Float32Array([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]));
 * ```
 * @module
 */
import code from "../../shaders/conv.wgsl" with { type: "text" };
import {
  adapterClass,
  defineKernel,
  FiligreeError,
  type Gpu,
  grid,
  MAX_LOOP_TRIPS,
  packParams,
  type Recorder,
  requireTensor,
  roundUp4,
  type Tensor,
} from "../gpu/mod.ts";

/** Default workgroup size (the `WG` override). */
export const CONV_WG = 64;
/**
 * Default quads (vec4 of the batch) per invocation (the `QB` override) per adapter class: index
 * arithmetic is paid once per QB quads (integer division is scalarised on CPU backends), and on
 * llvmpipe 32 (a whole batch of 128) beat 8 by 10-20 % on the MNIST CNN's im2col and col2im
 * (docs/KERNELS.md). Hardware GPUs keep 8 (not measured here). Lowered where a window's loop
 * would pass {@link MAX_LOOP_TRIPS}. Mutable so that a benchmark can compare whole steps.
 */
export const CONV_QB: Record<"cpu" | "gpu", number> = { cpu: 32, gpu: 8 };

export const IM2COL = defineKernel({
  shader: "conv.wgsl",
  code,
  entry: "im2col",
  bindings: [["p", "uniform"], ["x_img", "read"], ["cols_out", "read_write"]],
  textureInputs: true,
});
export const COL2IM = defineKernel({
  shader: "conv.wgsl",
  code,
  entry: "col2im",
  bindings: [["p", "uniform"], ["dcols_in", "read"], ["dx_img", "read_write"]],
  textureInputs: true,
});
export const MAXPOOL_FWD = defineKernel({
  shader: "conv.wgsl",
  code,
  entry: "maxpool_fwd",
  bindings: [["p", "uniform"], ["x_img", "read"], ["y_pool", "read_write"], [
    "arg_out",
    "read_write",
  ]],
  textureInputs: true,
});
export const MAXPOOL_BWD = defineKernel({
  shader: "conv.wgsl",
  code,
  entry: "maxpool_bwd",
  bindings: [["p", "uniform"], ["dy_pool", "read"], ["arg_in", "read"], [
    "dx_pool",
    "read_write",
  ]],
  textureInputs: true,
});
export const PAD_MASK = defineKernel({
  shader: "conv.wgsl",
  code,
  entry: "pad_mask",
  bindings: [["p", "uniform"], ["act_io", "read_write"]],
});

/** Geometry of a square-kernel convolution over `channels × height × width` images. */
export interface ConvGeometry {
  channels: number;
  height: number;
  width: number;
  /** Square kernel size. */
  kernel: number;
  /** Default 1. */
  stride?: number;
  /** Zero padding on every side; default `floor(kernel / 2)` ("same" for odd kernels). */
  pad?: number;
}

/** Geometry of a non-overlapping `size × size` max pooling (stride = size, floor mode). */
export interface PoolGeometry {
  channels: number;
  height: number;
  width: number;
  size: number;
}

/** Optional tuning: workgroup size (`WG` override) and quads per invocation (`QB` override). */
export interface ConvTuning {
  wg?: number;
  qb?: number;
}

/** Resolved convolution sizes. */
export interface ConvDims {
  c: number;
  h: number;
  w: number;
  k: number;
  stride: number;
  pad: number;
  oh: number;
  ow: number;
  /** Output positions oh·ow. */
  positions: number;
  /** Rows of the column matrix c·k·k. */
  rows: number;
}

function posInt(v: number, what: string, min = 1): void {
  if (!Number.isInteger(v) || v < min) {
    throw new FiligreeError(`${what} must be an integer >= ${min}, got ${v}`);
  }
}

/**
 * Checks a convolution geometry and returns its output size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { convDims } from "./conv.ts";
 * const d = convDims({ channels: 1, height: 28, width: 28, kernel: 5 });
 * assert.deepEqual(d.oh, 28);
 * assert.deepEqual(d.ow, 28);
 * assert.deepEqual(d.rows, 25);
 * ```
 */
export function convDims(g: ConvGeometry): ConvDims {
  posInt(g.channels, "conv channels");
  posInt(g.height, "conv height");
  posInt(g.width, "conv width");
  posInt(g.kernel, "conv kernel size");
  const stride = g.stride ?? 1;
  const pad = g.pad ?? Math.floor(g.kernel / 2);
  posInt(stride, "conv stride");
  posInt(pad, "conv padding", 0);
  const oh = Math.floor((g.height + 2 * pad - g.kernel) / stride) + 1;
  const ow = Math.floor((g.width + 2 * pad - g.kernel) / stride) + 1;
  if (oh < 1 || ow < 1) {
    throw new FiligreeError(
      `conv: kernel ${g.kernel} (padding ${pad}) does not fit a ${g.height}x${g.width} image`,
    );
  }
  if (g.kernel * g.kernel + g.kernel + 1 > MAX_LOOP_TRIPS) {
    throw new FiligreeError(
      `conv: kernel ${g.kernel} needs ${
        g.kernel * g.kernel + g.kernel + 1
      } loop iterations per col2im quad, over the bound ${MAX_LOOP_TRIPS}`,
    );
  }
  return {
    c: g.channels,
    h: g.height,
    w: g.width,
    k: g.kernel,
    stride,
    pad,
    oh,
    ow,
    positions: oh * ow,
    rows: g.channels * g.kernel * g.kernel,
  };
}

/**
 * Checks a pooling geometry and returns its output size (floor mode).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { poolDims } from "./conv.ts";
 * assert.deepEqual(poolDims({ channels: 3, height: 7, width: 6, size: 2 }), { oh: 3, ow: 3 });
 * ```
 */
export function poolDims(g: PoolGeometry): { oh: number; ow: number } {
  posInt(g.channels, "pool channels");
  posInt(g.height, "pool height");
  posInt(g.width, "pool width");
  posInt(g.size, "pool size");
  const oh = Math.floor(g.height / g.size), ow = Math.floor(g.width / g.size);
  if (oh < 1 || ow < 1) {
    throw new FiligreeError(
      `maxpool: window ${g.size} does not fit a ${g.height}x${g.width} image`,
    );
  }
  if (g.size * g.size + g.size + 1 > MAX_LOOP_TRIPS) {
    throw new FiligreeError(`maxpool: window ${g.size} exceeds the loop bound ${MAX_LOOP_TRIPS}`);
  }
  return { oh, ow };
}

const need = (t: Tensor, n: number, what: string, dtype: "f32" | "u32" = "f32") =>
  requireTensor(t, n, what, dtype);

function checkBatch(op: string, batch: number): number {
  if (!Number.isInteger(batch) || batch < 1) {
    throw new FiligreeError(`${op}: batch must be a positive integer, got ${batch}`);
  }
  return roundUp4(batch) / 4;
}

function distinct(op: string, a: Tensor, b: Tensor): void {
  if (a.buffer === b.buffer) {
    throw new FiligreeError(`${op}: input and output must be different tensors`);
  }
}

/** Checked tuning; `window` = loop iterations per quad (1 for im2col / pool backward). */
function tuning(
  op: string,
  gpu: Gpu,
  t: ConvTuning,
  ld4: number,
  window: number,
): { wg: number; qb: number; chunks: number } {
  const wg = t.wg ?? CONV_WG;
  if (!Number.isInteger(wg) || wg < 1) {
    throw new FiligreeError(`${op}: workgroup size must be an integer >= 1, got ${wg}`);
  }
  const qb = t.qb ??
    Math.max(1, Math.min(CONV_QB[adapterClass(gpu)], Math.floor(MAX_LOOP_TRIPS / (window + 1))));
  if (!Number.isInteger(qb) || qb < 1) {
    throw new FiligreeError(`${op}: quads per invocation must be an integer >= 1, got ${qb}`);
  }
  // Loop bound per invocation: min(qb, ld4) quads x (window + 1) iterations.
  if (Math.min(qb, ld4) * (window + 1) > MAX_LOOP_TRIPS) {
    throw new FiligreeError(
      `${op}: ${qb} quads x ${
        window + 1
      } loop iterations per invocation exceed the bound ${MAX_LOOP_TRIPS} (lower qb)`,
    );
  }
  return { wg, qb, chunks: Math.ceil(ld4 / qb) };
}

function params(total: number, batch: number, ld4: number, d: number[]): ArrayBuffer {
  if (total > 0xffffffff) throw new FiligreeError(`conv: ${total} invocations exceed u32`);
  // struct Params is 12 u32 (48 bytes) for every entry point.
  const fields = [total, batch, ld4, ...d];
  while (fields.length < 12) fields.push(0);
  return packParams(fields);
}

/**
 * `cols[(c·k + ky)·k + kx][pos·ld + b] = x[c][oy·s + ky − pad][ox·s + kx − pad][b]` (zero outside
 * the image and for `b >= batch`), with `pos = oy·ow + ox`. Per-invocation loop: `qb` quads.
 */
export function im2col(
  rec: Recorder,
  a: ConvGeometry & ConvTuning & { x: Tensor; cols: Tensor; batch: number },
): void {
  const op = "im2col";
  const d = convDims(a);
  const ld4 = checkBatch(op, a.batch);
  need(a.x, d.c * d.h * d.w * ld4 * 4, `${op} x`);
  need(a.cols, d.rows * d.positions * ld4 * 4, `${op} cols`);
  distinct(op, a.x, a.cols);
  const { wg, qb, chunks } = tuning(op, rec.gpu, a, ld4, 0);
  const total = d.rows * d.positions * chunks;
  const p = rec.gpu.uniform(
    params(total, a.batch, ld4, [d.c, d.h, d.w, d.oh, d.ow, d.k, d.stride, d.pad]),
  );
  rec.dispatch(
    rec.gpu.kernel(IM2COL, { WG: wg, QB: qb }),
    { p, x_img: a.x, cols_out: a.cols },
    grid(rec.gpu, Math.ceil(total / wg)),
  );
}

/**
 * Adjoint of {@link im2col}: `dx[c][y][x][b] = Σ dcols[(c·k + ky)·k + kx][pos·ld + b]` over the
 * (ky, kx, pos) that im2col read from (y, x). Per-invocation loop: `qb·(k·k + k + 1)` iterations
 * at most (asserted).
 */
export function col2im(
  rec: Recorder,
  a: ConvGeometry & ConvTuning & { dcols: Tensor; dx: Tensor; batch: number },
): void {
  const op = "col2im";
  const d = convDims(a);
  const ld4 = checkBatch(op, a.batch);
  const { wg, qb, chunks } = tuning(op, rec.gpu, a, ld4, d.k * d.k + d.k);
  need(a.dcols, d.rows * d.positions * ld4 * 4, `${op} dcols`);
  need(a.dx, d.c * d.h * d.w * ld4 * 4, `${op} dx`);
  distinct(op, a.dcols, a.dx);
  const total = d.c * d.h * d.w * chunks;
  const p = rec.gpu.uniform(
    params(total, a.batch, ld4, [d.c, d.h, d.w, d.oh, d.ow, d.k, d.stride, d.pad]),
  );
  rec.dispatch(
    rec.gpu.kernel(COL2IM, { WG: wg, QB: qb }),
    { p, dcols_in: a.dcols, dx_img: a.dx },
    grid(rec.gpu, Math.ceil(total / wg)),
  );
}

/**
 * `y[c][oy][ox][b] = max` over the `size × size` window at `(oy·size, ox·size)`; `argmax` (u32,
 * same size as `y`) gets the window offset `dy·size + dx` of the first maximum. Per-invocation
 * loop: `qb·(size² + size + 1)` iterations at most (asserted).
 */
export function maxPoolForward(
  rec: Recorder,
  a: PoolGeometry & ConvTuning & { x: Tensor; y: Tensor; argmax: Tensor; batch: number },
): void {
  const op = "maxPoolForward";
  const { oh, ow } = poolDims(a);
  const ld4 = checkBatch(op, a.batch);
  need(a.x, a.channels * a.height * a.width * ld4 * 4, `${op} x`);
  const outN = a.channels * oh * ow * ld4 * 4;
  need(a.y, outN, `${op} y`);
  need(a.argmax, outN, `${op} argmax`, "u32");
  distinct(op, a.x, a.y);
  const { wg, qb, chunks } = tuning(op, rec.gpu, a, ld4, a.size * a.size + a.size);
  const total = a.channels * oh * ow * chunks;
  const p = rec.gpu.uniform(
    params(total, a.batch, ld4, [a.channels, a.height, a.width, oh, ow, a.size, a.size, 0]),
  );
  rec.dispatch(
    rec.gpu.kernel(MAXPOOL_FWD, { WG: wg, QB: qb }),
    { p, x_img: a.x, y_pool: a.y, arg_out: a.argmax },
    grid(rec.gpu, Math.ceil(total / wg)),
  );
}

/**
 * `dx[c][y][x][b] = dy[c][y/size][x/size][b]` where (y, x) was the window's argmax, else 0
 * (also 0 for rows/columns that floor mode drops). Per-invocation loop: `qb` quads.
 */
export function maxPoolBackward(
  rec: Recorder,
  a: PoolGeometry & ConvTuning & { dy: Tensor; argmax: Tensor; dx: Tensor; batch: number },
): void {
  const op = "maxPoolBackward";
  const { oh, ow } = poolDims(a);
  const ld4 = checkBatch(op, a.batch);
  const outN = a.channels * oh * ow * ld4 * 4;
  need(a.dy, outN, `${op} dy`);
  need(a.argmax, outN, `${op} argmax`, "u32");
  need(a.dx, a.channels * a.height * a.width * ld4 * 4, `${op} dx`);
  distinct(op, a.dy, a.dx);
  const { wg, qb, chunks } = tuning(op, rec.gpu, a, ld4, 0);
  const total = a.channels * a.height * a.width * chunks;
  const p = rec.gpu.uniform(
    params(total, a.batch, ld4, [a.channels, a.height, a.width, oh, ow, a.size, a.size, 0]),
  );
  rec.dispatch(
    rec.gpu.kernel(MAXPOOL_BWD, { WG: wg, QB: qb }),
    { p, dy_pool: a.dy, arg_in: a.argmax, dx_pool: a.dx },
    grid(rec.gpu, Math.ceil(total / wg)),
  );
}

/**
 * Zeroes lanes `b >= batch` of each of `blocks` consecutive `[roundUp4(batch)]` blocks of `t`
 * in place. Records nothing when `batch` is a multiple of 4 (no padding lanes). No loops.
 */
export function zeroBatchPadding(
  rec: Recorder,
  a: { t: Tensor; blocks: number; batch: number; wg?: number },
): void {
  const op = "zeroBatchPadding";
  const ld4 = checkBatch(op, a.batch);
  posInt(a.blocks, `${op} blocks`, 0);
  need(a.t, a.blocks * ld4 * 4, `${op} t`);
  if (a.batch % 4 === 0 || a.blocks === 0) return;
  const { wg } = tuning(op, rec.gpu, { wg: a.wg }, ld4, 0);
  const p = rec.gpu.uniform(params(a.blocks, a.batch, ld4, []));
  rec.dispatch(
    rec.gpu.kernel(PAD_MASK, { WG: wg }),
    { p, act_io: a.t },
    grid(rec.gpu, Math.ceil(a.blocks / wg)),
  );
}
