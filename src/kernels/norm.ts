/**
 * Batch norm and layer norm on feature-major activations `[rows][ld]` (rows = features,
 * `ld = roundUp4(batch)`). Shader: shaders/norm.wgsl; reference: norm_ref.ts.
 *
 * Conventions:
 * - Padding columns of every activation output are written 0; statistics ignore them.
 * - Batch norm (per row, over the batch): training forward normalizes with the batch mean and
 *   the **biased** variance, saves `mean` and `invstd = 1/sqrt(var + eps)` per row, and updates
 *   the running statistics in place, PyTorch style:
 *   `running = (1 - momentum) * running + momentum * batchStat`, using the **unbiased** variance
 *   `var * batch / (batch - 1)` for `runningVar` (factor 1 at batch 1, where PyTorch refuses).
 *   Eval forward uses `runningMean`/`runningVar`. The backward is the training-mode gradient
 *   (through the batch statistics).
 * - Layer norm (per sample, over the rows): saves `mean`/`invstd` per sample (tensors of at
 *   least `ld` elements; padding written 0).
 * - `dgamma`/`dbeta` are **written** (overwritten), never accumulated.
 * - No argument may alias another (WebGPU forbids a buffer bound read-only and writable at once).
 * - Defaults: `eps = 1e-5`, `momentum = 0.1`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { batchNormForwardTrain } from "./norm.ts";
 * const gpu = await getGpu();
 * // 1 feature x batch 2 (ld 4): x = [1, 3, _, _]
 * const x = gpu.tensor("f32", [1, 4], { data: new Float32Array([1, 3, 0, 0]) });
 * const gamma = gpu.tensor("f32", [1], { data: new Float32Array([1]) });
 * const beta = gpu.tensor("f32", [1], { zero: true });
 * const [y, mean, invstd] = [gpu.tensor("f32", [1, 4]), gpu.tensor("f32", [1]), gpu.tensor("f32", [1])];
 * const runningMean = gpu.tensor("f32", [1], { zero: true });
 * const runningVar = gpu.tensor("f32", [1], { data: new Float32Array([1]) });
 * const rec = gpu.recorder();
 * batchNormForwardTrain(rec, { x, gamma, beta, y, saveMean: mean, saveInvStd: invstd, runningMean, runningVar, rows: 1, batch: 2 });
 * rec.submit();
 * const out = await gpu.read(y); // about [-1, 1, 0, 0] (eps 1e-5 in the variance)
 * assert.ok(Math.abs(out[0] + 1) < 1e-4 && Math.abs(out[1] - 1) < 1e-4);
 * assert.deepEqual([out[2], out[3]], [0, 0]);
 * ```
 * @module
 */
import code from "../../shaders/norm.wgsl" with { type: "text" };
import {
  defineKernel,
  f32,
  FiligreeError,
  grid,
  MAX_LOOP_TRIPS,
  packParams,
  type Recorder,
  requireTensor,
  roundUp4,
  type Tensor,
} from "../gpu/mod.ts";

/** Default workgroup sizes (override `WG`): per-row kernels, per-quad-of-samples kernels. */
export const NORM_WG = { rows: 64, quads: 8 } as const;

const FWD = [
  ["p", "uniform"],
  ["x", "read"],
  ["gamma", "read"],
  ["beta", "read"],
  ["y", "read_write"],
] as const;
const BWD = [
  ["p", "uniform"],
  ["x", "read"],
  ["gamma", "read"],
  ["dy", "read"],
  ["dx", "read_write"],
  ["mean_in", "read"],
  ["invstd_in", "read"],
] as const;

/** Batch-norm training forward (invocation per row). */
export const BN_FORWARD_TRAIN = defineKernel({
  shader: "norm.wgsl",
  code,
  entry: "bn_forward_train",
  textureInputs: true,
  bindings: [
    ...FWD,
    ["save_mean", "read_write"],
    ["save_invstd", "read_write"],
    ["run_mean", "read_write"],
    ["run_var", "read_write"],
  ],
});
/** Batch-norm eval forward (invocation per row). */
export const BN_FORWARD_EVAL = defineKernel({
  shader: "norm.wgsl",
  code,
  entry: "bn_forward_eval",
  textureInputs: true,
  bindings: [...FWD, ["run_mean_in", "read"], ["run_var_in", "read"]],
});
/** Batch-norm backward: dx, dgamma, dbeta (invocation per row). */
export const BN_BACKWARD = defineKernel({
  shader: "norm.wgsl",
  code,
  entry: "bn_backward",
  textureInputs: true,
  bindings: [...BWD, ["dgamma", "read_write"], ["dbeta", "read_write"]],
});
/** Layer-norm forward (invocation per quad of samples). */
export const LN_FORWARD = defineKernel({
  shader: "norm.wgsl",
  code,
  entry: "ln_forward",
  textureInputs: true,
  bindings: [...FWD, ["save_mean", "read_write"], ["save_invstd", "read_write"]],
});
/** Layer-norm backward w.r.t. x (invocation per quad of samples). */
export const LN_BACKWARD_DX = defineKernel({
  shader: "norm.wgsl",
  code,
  entry: "ln_backward_dx",
  textureInputs: true,
  bindings: BWD,
});
/** Layer-norm backward w.r.t. gamma and beta (invocation per row; bn_backward's layout). */
export const LN_BACKWARD_PARAMS = defineKernel({
  shader: "norm.wgsl",
  code,
  entry: "ln_backward_params",
  textureInputs: true,
  bindings: [...BWD, ["dgamma", "read_write"], ["dbeta", "read_write"]],
});

/** Sizes shared by the norm ops: `rows` features by `batch` samples (stride roundUp4(batch)). */
export interface NormShape {
  rows: number;
  batch: number;
  /** Workgroup size override (tests use 1 to reach a 2-D grid cheaply); defaults in {@link NORM_WG}. */
  wg?: number;
}

/** Arguments of {@link batchNormForwardTrain}. */
export interface BatchNormTrainArgs extends NormShape {
  x: Tensor;
  gamma: Tensor;
  beta: Tensor;
  y: Tensor;
  /** Per-row batch mean (>= rows elements), for the backward pass. */
  saveMean: Tensor;
  /** Per-row `1/sqrt(var + eps)` (>= rows elements), for the backward pass. */
  saveInvStd: Tensor;
  /** Updated in place. */
  runningMean: Tensor;
  /** Updated in place (unbiased variance). */
  runningVar: Tensor;
  eps?: number;
  momentum?: number;
}

/** Arguments of {@link batchNormForwardEval}. */
export interface BatchNormEvalArgs extends NormShape {
  x: Tensor;
  gamma: Tensor;
  beta: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  y: Tensor;
  eps?: number;
}

/** Arguments of {@link batchNormBackward} and {@link layerNormBackward}. */
export interface NormBackwardArgs extends NormShape {
  x: Tensor;
  gamma: Tensor;
  dy: Tensor;
  /** Statistics saved by the forward pass. */
  saveMean: Tensor;
  saveInvStd: Tensor;
  dx: Tensor;
  /** Written (not accumulated). */
  dgamma: Tensor;
  /** Written (not accumulated). */
  dbeta: Tensor;
}

/** Arguments of {@link layerNormForward}. */
export interface LayerNormArgs extends NormShape {
  x: Tensor;
  gamma: Tensor;
  beta: Tensor;
  y: Tensor;
  /** Per-sample mean, >= roundUp4(batch) elements (padding written 0). */
  saveMean: Tensor;
  /** Per-sample `1/sqrt(var + eps)`, >= roundUp4(batch) elements (padding written 0). */
  saveInvStd: Tensor;
  eps?: number;
}

const need = (t: Tensor, n: number, what: string) => requireTensor(t, n, what, "f32");

function shape(op: string, a: NormShape): number {
  for (const [k, v] of [["rows", a.rows], ["batch", a.batch]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new FiligreeError(`${op}: ${k} must be an integer >= 1, got ${v}`);
    }
  }
  if (a.wg !== undefined && (!Number.isInteger(a.wg) || a.wg < 1)) {
    throw new FiligreeError(`${op}: wg must be an integer >= 1, got ${a.wg}`);
  }
  return roundUp4(a.batch);
}

function trips(op: string, n: number, what: string) {
  if (n > MAX_LOOP_TRIPS) {
    throw new FiligreeError(
      `${op}: ${what} = ${n} loop iterations per invocation, over the bound ${MAX_LOOP_TRIPS}`,
    );
  }
}

function scalar(op: string, name: string, v: number, lo: number, hi: number): number {
  if (!(v >= lo && v <= hi)) {
    throw new FiligreeError(`${op}: ${name} must be in [${lo}, ${hi}], got ${v}`);
  }
  return v;
}

function params(a: NormShape, ld: number, eps = 1e-5, momentum = 0.1): ArrayBuffer {
  return packParams([a.rows, a.batch, ld, f32(eps), f32(momentum)]);
}

/**
 * Batch-norm training forward; see the module doc for the running-statistics convention.
 * Loop bound: 3·ld/4 iterations per invocation (batch <= 86,664).
 *
 * @example
 * ```ts ignore
 * batchNormForwardTrain(rec, { x, gamma, beta, y, saveMean, saveInvStd, runningMean, runningVar, rows: 128, batch: 100 });
 * ```
 */
export function batchNormForwardTrain(rec: Recorder, a: BatchNormTrainArgs): void {
  const op = "batchNormForwardTrain";
  const ld = shape(op, a);
  trips(op, (3 * ld) / 4, "3·roundUp4(batch)/4");
  const eps = scalar(op, "eps", a.eps ?? 1e-5, 0, Infinity);
  const momentum = scalar(op, "momentum", a.momentum ?? 0.1, 0, 1);
  for (const [t, n] of [[a.x, a.rows * ld], [a.y, a.rows * ld]] as const) need(t, n, op);
  for (const t of [a.gamma, a.beta, a.saveMean, a.saveInvStd, a.runningMean, a.runningVar]) {
    need(t, a.rows, op);
  }
  const wg = a.wg ?? NORM_WG.rows;
  const k = rec.gpu.kernel(BN_FORWARD_TRAIN, { WG: wg });
  rec.dispatch(k, {
    p: rec.gpu.uniform(params(a, ld, eps, momentum)),
    x: a.x,
    gamma: a.gamma,
    beta: a.beta,
    y: a.y,
    save_mean: a.saveMean,
    save_invstd: a.saveInvStd,
    run_mean: a.runningMean,
    run_var: a.runningVar,
  }, grid(rec.gpu, Math.ceil(a.rows / wg)));
}

/**
 * Batch-norm eval forward with the running statistics (invocation per row).
 * Loop bound: ld/4 iterations per invocation.
 *
 * @example
 * ```ts ignore
 * batchNormForwardEval(rec, { x, gamma, beta, runningMean, runningVar, y, rows: 128, batch: 100 });
 * ```
 */
export function batchNormForwardEval(rec: Recorder, a: BatchNormEvalArgs): void {
  const op = "batchNormForwardEval";
  const ld = shape(op, a);
  trips(op, ld / 4, "roundUp4(batch)/4");
  const eps = scalar(op, "eps", a.eps ?? 1e-5, 0, Infinity);
  for (const [t, n] of [[a.x, a.rows * ld], [a.y, a.rows * ld]] as const) need(t, n, op);
  for (const t of [a.gamma, a.beta, a.runningMean, a.runningVar]) need(t, a.rows, op);
  const wg = a.wg ?? NORM_WG.rows;
  const k = rec.gpu.kernel(BN_FORWARD_EVAL, { WG: wg });
  rec.dispatch(k, {
    p: rec.gpu.uniform(params(a, ld, eps)),
    x: a.x,
    gamma: a.gamma,
    beta: a.beta,
    y: a.y,
    run_mean_in: a.runningMean,
    run_var_in: a.runningVar,
  }, grid(rec.gpu, Math.ceil(a.rows / wg)));
}

/**
 * Batch-norm training backward from the statistics saved by {@link batchNormForwardTrain}:
 * writes dx, dgamma and dbeta. Loop bound: 2·ld/4 iterations per invocation.
 *
 * @example
 * ```ts ignore
 * batchNormBackward(rec, { x, gamma, dy, saveMean, saveInvStd, dx, dgamma, dbeta, rows: 128, batch: 100 });
 * ```
 */
export function batchNormBackward(rec: Recorder, a: NormBackwardArgs): void {
  const op = "batchNormBackward";
  const ld = shape(op, a);
  trips(op, (2 * ld) / 4, "2·roundUp4(batch)/4");
  for (const t of [a.x, a.dy, a.dx]) need(t, a.rows * ld, op);
  for (const t of [a.gamma, a.saveMean, a.saveInvStd, a.dgamma, a.dbeta]) need(t, a.rows, op);
  const wg = a.wg ?? NORM_WG.rows;
  const k = rec.gpu.kernel(BN_BACKWARD, { WG: wg });
  rec.dispatch(k, backwardResources(rec, a, ld), grid(rec.gpu, Math.ceil(a.rows / wg)));
}

function backwardResources(rec: Recorder, a: NormBackwardArgs, ld: number) {
  return {
    p: rec.gpu.uniform(params(a, ld)),
    x: a.x,
    gamma: a.gamma,
    dy: a.dy,
    dx: a.dx,
    mean_in: a.saveMean,
    invstd_in: a.saveInvStd,
    dgamma: a.dgamma,
    dbeta: a.dbeta,
  };
}

/**
 * Layer-norm forward over the rows of each sample; saves per-sample mean/invstd.
 * Loop bound: 3·rows iterations per invocation (rows <= 21,666).
 *
 * @example
 * ```ts ignore
 * layerNormForward(rec, { x, gamma, beta, y, saveMean, saveInvStd, rows: 128, batch: 100 });
 * ```
 */
export function layerNormForward(rec: Recorder, a: LayerNormArgs): void {
  const op = "layerNormForward";
  const ld = shape(op, a);
  trips(op, 3 * a.rows, "3·rows");
  const eps = scalar(op, "eps", a.eps ?? 1e-5, 0, Infinity);
  for (const t of [a.x, a.y]) need(t, a.rows * ld, op);
  for (const t of [a.gamma, a.beta]) need(t, a.rows, op);
  for (const t of [a.saveMean, a.saveInvStd]) need(t, ld, op);
  const wg = a.wg ?? NORM_WG.quads;
  const k = rec.gpu.kernel(LN_FORWARD, { WG: wg });
  rec.dispatch(k, {
    p: rec.gpu.uniform(params(a, ld, eps)),
    x: a.x,
    gamma: a.gamma,
    beta: a.beta,
    y: a.y,
    save_mean: a.saveMean,
    save_invstd: a.saveInvStd,
  }, grid(rec.gpu, Math.ceil(ld / 4 / wg)));
}

/**
 * Layer-norm backward: dx (per quad of samples, loop bound 2·rows) then dgamma/dbeta (per row,
 * a second pass reducing over the batch without atomics, loop bound ld/4). Two dispatches.
 *
 * @example
 * ```ts ignore
 * layerNormBackward(rec, { x, gamma, dy, saveMean, saveInvStd, dx, dgamma, dbeta, rows: 128, batch: 100 });
 * ```
 */
export function layerNormBackward(rec: Recorder, a: NormBackwardArgs): void {
  const op = "layerNormBackward";
  const ld = shape(op, a);
  trips(op, 2 * a.rows, "2·rows");
  trips(op, ld / 4, "roundUp4(batch)/4");
  for (const t of [a.x, a.dy, a.dx]) need(t, a.rows * ld, op);
  for (const t of [a.gamma, a.dgamma, a.dbeta]) need(t, a.rows, op);
  for (const t of [a.saveMean, a.saveInvStd]) need(t, ld, op);
  const res = backwardResources(rec, a, ld);
  const { dgamma: _g, dbeta: _b, ...dxRes } = res;
  const wq = a.wg ?? NORM_WG.quads;
  rec.dispatch(
    rec.gpu.kernel(LN_BACKWARD_DX, { WG: wq }),
    dxRes,
    grid(rec.gpu, Math.ceil(ld / 4 / wq)),
  );
  const wr = a.wg ?? NORM_WG.rows;
  rec.dispatch(
    rec.gpu.kernel(LN_BACKWARD_PARAMS, { WG: wr }),
    res,
    grid(rec.gpu, Math.ceil(a.rows / wr)),
  );
}
