/**
 * Element-wise activations (`y = f(z)`, `dz = dy·f'(z)`) for every activation in
 * {@link ACTIVATION_IDS}, and SReLU (Jin et al. 2016) with learnable per-row thresholds and
 * slopes, on feature-major activations `[rows][ld]`, `ld = roundUp4(batch)`; padding columns
 * of every output are written as zero. Shader: shaders/activation.wgsl (with
 * shaders/activation_fns.wgsl prepended); reference: activation_ref.ts.
 *
 * The activation is an `override` constant, so each activation compiles one pipeline; its
 * scalar parameter and the sizes live in a uniform (a new batch size or slope never recompiles).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { activationForward } from "./activation.ts";
 * const gpu = await getGpu();
 * // 1 feature x batch 3 (ld 4)
 * const z = gpu.tensor("f32", [1, 4], { data: new Float32Array([-2, 0.5, 3, 0]) });
 * const y = gpu.tensor("f32", [1, 4]);
 * const rec = gpu.recorder();
 * activationForward(rec, { z, y, rows: 1, batch: 3, activation: "leaky_relu", param: 0.1 });
 * rec.submit();
 * assert.deepEqual(await gpu.read(y), new Float32Array([-0.2, 0.5, 3, 0]));
 * ```
 * @module
 */
import code from "../../shaders/activation.wgsl" with { type: "text" };
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
import { activationId, activationParam, withActivations } from "./activation_ids.ts";
import { biasGrad } from "./bias.ts";

const WG = 64;

const full = withActivations(code);

/** `y = f(z)`. */
export const ACT_FWD = defineKernel({
  shader: "activation.wgsl",
  code: full,
  entry: "act_fwd",
  textureInputs: true,
  bindings: [["p", "uniform"], ["z", "read"], ["y", "read_write"]],
});
/** `dz = dy * f'(z)`. */
export const ACT_BWD = defineKernel({
  shader: "activation.wgsl",
  code: full,
  entry: "act_bwd",
  textureInputs: true,
  bindings: [["p", "uniform"], ["z", "read"], ["dy", "read"], ["dz", "read_write"]],
});
/** `dz = dy * f'(z)` and `dbias = row sums of dz`, one invocation per row. */
export const ACT_BWD_BIAS = defineKernel({
  shader: "activation.wgsl",
  code: full,
  entry: "act_bwd_bias",
  textureInputs: true,
  bindings: [["p", "uniform"], ["z", "read"], ["dy", "read"], ["dz", "read_write"], [
    "dbias",
    "read_write",
  ]],
});
/**
 * Whether {@link activationBackward} with `dbias` runs {@link ACT_BWD_BIAS} (else `act_bwd`
 * and `biasGrad`, the same bits). Mutable so a benchmark can compare both in one process.
 */
export const ACT_BIAS_FUSION = { enabled: true };
/** Invocations per workgroup of {@link ACT_BWD_BIAS}: one row each, so a few hundred rows still
 * make enough workgroups for every thread. */
const ROW_WG = 16;
/** SReLU forward. */
export const SRELU_FWD = defineKernel({
  shader: "activation.wgsl",
  code: full,
  entry: "srelu_fwd",
  textureInputs: true,
  bindings: [["p", "uniform"], ["z", "read"], ["sprm", "read"], ["sy", "read_write"]],
});
/** SReLU input gradient. */
export const SRELU_BWD = defineKernel({
  shader: "activation.wgsl",
  code: full,
  entry: "srelu_bwd",
  textureInputs: true,
  bindings: [["p", "uniform"], ["z", "read"], ["dy", "read"], ["dz", "read_write"], [
    "prm",
    "read",
  ]],
});
/** SReLU parameter gradients (per-row reduction over the batch). */
export const SRELU_PARAM_GRAD = defineKernel({
  shader: "activation.wgsl",
  code: full,
  entry: "srelu_param_grad",
  textureInputs: true,
  bindings: [["p", "uniform"], ["z", "read"], ["dy", "read"], ["dprm", "read_write"], [
    "prm",
    "read",
  ]],
});

/** Sizes of a feature-major activation: `rows` features by `batch` samples, stride roundUp4(batch). */
export interface ActShape {
  rows: number;
  batch: number;
}

/** Which activation and its scalar parameter (default from `ACTIVATION_DEFAULT_PARAMS`). */
export interface ActChoice {
  activation: string;
  param?: number;
}

function checkShape(a: ActShape, what: string): number {
  if (!Number.isInteger(a.rows) || a.rows < 0 || !Number.isInteger(a.batch) || a.batch < 0) {
    throw new FiligreeError(`${what}: rows ${a.rows} and batch ${a.batch} must be integers >= 0`);
  }
  return roundUp4(a.batch);
}

const check = (t: Tensor, n: number, what: string) => requireTensor(t, n, what);

function distinct(out: Tensor, ins: Tensor[], what: string) {
  for (const t of ins) {
    if (t.buffer === out.buffer) {
      throw new FiligreeError(
        `${what}: output ${out.label} aliases input ${t.label} (WebGPU forbids it)`,
      );
    }
  }
}

/** The Params uniform: rows, batch, ld, a. */
function params(rec: Recorder, a: ActShape, ld: number, param: number): GPUBuffer {
  return rec.gpu.uniform(packParams([a.rows, a.batch, ld, f32(param)]));
}

function elementGroups(rec: Recorder, a: ActShape, ld: number) {
  return grid(rec.gpu, Math.ceil((a.rows * ld) / 4 / WG));
}

/**
 * `y = f(z)` element-wise; padding columns of `y` become 0. `y` must not alias `z`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { activationForward } from "./activation.ts";
 * const gpu = await getGpu();
 * const z = gpu.tensor("f32", [2, 4], { data: new Float32Array([-1, 1, 0, 0, 2, -2, 0, 0]) });
 * const y = gpu.tensor("f32", [2, 4]);
 * const rec = gpu.recorder();
 * activationForward(rec, { z, y, rows: 2, batch: 2, activation: "relu" });
 * rec.submit();
 * assert.deepEqual(await gpu.read(y), new Float32Array([0, 1, 0, 0, 2, 0, 0, 0]));
 * ```
 */
export function activationForward(
  rec: Recorder,
  a: ActShape & ActChoice & { z: Tensor; y: Tensor },
): void {
  const ld = checkShape(a, "activationForward");
  const id = activationId(a.activation);
  const param = activationParam(a.activation, a.param);
  check(a.z, a.rows * ld, "activationForward z");
  check(a.y, a.rows * ld, "activationForward y");
  distinct(a.y, [a.z], "activationForward");
  const k = rec.gpu.kernel(ACT_FWD, { ACT: id, WG });
  rec.dispatch(k, { p: params(rec, a, ld, param), z: a.z, y: a.y }, elementGroups(rec, a, ld));
}

/**
 * `dz = dy · f'(z)` element-wise (f' evaluated at the pre-activation `z`); padding columns of
 * `dz` become 0. `dz` must not alias `z` or `dy`. With `dbias`, also the layer's bias gradient
 * `dbias[r] = Σ_batch dz[r]` (overwritten), in the same pass (one invocation per row: one
 * dispatch instead of two), bit-identical to {@link biasGrad} on `dz`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { activationBackward } from "./activation.ts";
 * const gpu = await getGpu();
 * const z = gpu.tensor("f32", [1, 4], { data: new Float32Array([-1, 1, 2, 0]) });
 * const dy = gpu.tensor("f32", [1, 4], { data: new Float32Array([5, 5, 5, 0]) });
 * const dz = gpu.tensor("f32", [1, 4]);
 * const rec = gpu.recorder();
 * activationBackward(rec, { z, dy, dz, rows: 1, batch: 3, activation: "relu" });
 * rec.submit();
 * assert.deepEqual(await gpu.read(dz), new Float32Array([0, 5, 5, 0]));
 * ```
 */
export function activationBackward(
  rec: Recorder,
  a: ActShape & ActChoice & { z: Tensor; dy: Tensor; dz: Tensor; dbias?: Tensor },
): void {
  const ld = checkShape(a, "activationBackward");
  const id = activationId(a.activation);
  const param = activationParam(a.activation, a.param);
  check(a.z, a.rows * ld, "activationBackward z");
  check(a.dy, a.rows * ld, "activationBackward dy");
  check(a.dz, a.rows * ld, "activationBackward dz");
  distinct(a.dz, [a.z, a.dy], "activationBackward");
  const p = params(rec, a, ld, param);
  if (a.dbias) {
    check(a.dbias, a.rows, "activationBackward dbias");
    distinct(a.dbias, [a.z, a.dy, a.dz], "activationBackward");
    if (ACT_BIAS_FUSION.enabled && ld / 4 < MAX_LOOP_TRIPS) {
      const k = rec.gpu.kernel(ACT_BWD_BIAS, { ACT: id, WG: ROW_WG });
      const res = { p, z: a.z, dy: a.dy, dz: a.dz, dbias: a.dbias };
      rec.dispatch(k, res, grid(rec.gpu, Math.ceil(a.rows / ROW_WG)));
      return;
    }
  }
  const k = rec.gpu.kernel(ACT_BWD, { ACT: id, WG });
  rec.dispatch(k, { p, z: a.z, dy: a.dy, dz: a.dz }, elementGroups(rec, a, ld));
  if (a.dbias) biasGrad(rec, { dy: a.dz, dbias: a.dbias, rows: a.rows, batch: a.batch });
}

// ------------------------------------------------------------------------------------- SReLU

/**
 * Initial SReLU parameters: t_l = 0, a_l = 0.2, t_r = 1, a_r = 1. At this point SReLU is a
 * leaky ReLU with slope 0.2 below 0 and the identity above (a_r = 1 makes t_r inert until it
 * learns), the starting shape Jin et al. describe (a_l initialised like a leaky/parametric
 * ReLU slope, a_r = 1). The paper additionally re-initialises t_r from a high percentile of
 * each neuron's inputs after a few frozen epochs ("adaptive initialisation"); that data-driven
 * step belongs to the training loop and is not done here. t_r = 1 keeps t_l < t_r, so the
 * three pieces are ordered from the start.
 */
export const SRELU_INIT = { tl: 0, al: 0.2, tr: 1, ar: 1 } as const;

/**
 * Packed SReLU parameters for `rows` neurons, `[t_l | a_l | t_r | a_r]` each `rows` long (the
 * layout every SReLU function takes), filled with {@link SRELU_INIT} or the given values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sreluInitParams } from "./activation.ts";
 * assert.deepEqual(sreluInitParams(2), new Float32Array([0, 0, 0.2, 0.2, 1, 1, 1, 1]));
 * ```
 */
export function sreluInitParams(
  rows: number,
  init: { tl: number; al: number; tr: number; ar: number } = SRELU_INIT,
): Float32Array {
  const out = new Float32Array(4 * rows);
  out.fill(init.tl, 0, rows);
  out.fill(init.al, rows, 2 * rows);
  out.fill(init.tr, 2 * rows, 3 * rows);
  out.fill(init.ar, 3 * rows, 4 * rows);
  return out;
}

/**
 * SReLU forward with per-row parameters `params` = `[t_l | a_l | t_r | a_r]` (4·rows floats):
 * `y = t_r + a_r(z − t_r)` for z ≥ t_r, `t_l + a_l(z − t_l)` for z ≤ t_l (and z < t_r), `z`
 * otherwise. Padding columns of `y` become 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { sreluForward, sreluInitParams } from "./activation.ts";
 * const gpu = await getGpu();
 * const z = gpu.tensor("f32", [1, 4], { data: new Float32Array([-1, 0.5, 3, 0]) });
 * const params = gpu.tensor("f32", [4, 1], { data: sreluInitParams(1) });
 * const y = gpu.tensor("f32", [1, 4]);
 * const rec = gpu.recorder();
 * sreluForward(rec, { z, params, y, rows: 1, batch: 3 });
 * rec.submit();
 * assert.deepEqual(await gpu.read(y), new Float32Array([-0.2, 0.5, 3, 0]));
 * ```
 */
export function sreluForward(
  rec: Recorder,
  a: ActShape & { z: Tensor; params: Tensor; y: Tensor },
): void {
  const ld = checkShape(a, "sreluForward");
  check(a.z, a.rows * ld, "sreluForward z");
  check(a.y, a.rows * ld, "sreluForward y");
  check(a.params, 4 * a.rows, "sreluForward params");
  distinct(a.y, [a.z, a.params], "sreluForward");
  const k = rec.gpu.kernel(SRELU_FWD, { WG });
  rec.dispatch(
    k,
    { p: params(rec, a, ld, 0), z: a.z, sprm: a.params, sy: a.y },
    elementGroups(rec, a, ld),
  );
}

/**
 * SReLU backward: `dz = dy · f'(z)` (when `dz` is given; padding 0) and the parameter
 * gradients summed over the batch into `dparams` = `[dt_l | da_l | dt_r | da_r]` (when given;
 * overwritten, not accumulated). Batch ≤ 260,000 (one invocation loops over a row).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { sreluBackward, sreluInitParams } from "./activation.ts";
 * const gpu = await getGpu();
 * const z = gpu.tensor("f32", [1, 4], { data: new Float32Array([-1, 0.5, 3, 0]) });
 * const dy = gpu.tensor("f32", [1, 4], { data: new Float32Array([1, 1, 1, 0]) });
 * const params = gpu.tensor("f32", [4, 1], { data: sreluInitParams(1) });
 * const dz = gpu.tensor("f32", [1, 4]);
 * const dparams = gpu.tensor("f32", [4, 1]);
 * const rec = gpu.recorder();
 * sreluBackward(rec, { z, dy, params, dz, dparams, rows: 1, batch: 3 });
 * rec.submit();
 * assert.deepEqual(await gpu.read(dz), new Float32Array([0.2, 1, 1, 0]));
 * assert.deepEqual(await gpu.read(dparams), new Float32Array([0.8, -1, 0, 2]));
 * ```
 */
export function sreluBackward(
  rec: Recorder,
  a: ActShape & { z: Tensor; dy: Tensor; params: Tensor; dz?: Tensor; dparams?: Tensor },
): void {
  const ld = checkShape(a, "sreluBackward");
  check(a.z, a.rows * ld, "sreluBackward z");
  check(a.dy, a.rows * ld, "sreluBackward dy");
  check(a.params, 4 * a.rows, "sreluBackward params");
  const p = params(rec, a, ld, 0);
  if (a.dz) {
    check(a.dz, a.rows * ld, "sreluBackward dz");
    distinct(a.dz, [a.z, a.dy, a.params], "sreluBackward");
    const k = rec.gpu.kernel(SRELU_BWD, { WG });
    rec.dispatch(k, { p, z: a.z, dy: a.dy, dz: a.dz, prm: a.params }, elementGroups(rec, a, ld));
  }
  if (a.dparams) {
    if (ld / 4 > MAX_LOOP_TRIPS) {
      throw new FiligreeError(
        `sreluBackward: batch ${a.batch} over the per-invocation loop bound ${MAX_LOOP_TRIPS * 4}`,
      );
    }
    check(a.dparams, 4 * a.rows, "sreluBackward dparams");
    distinct(a.dparams, [a.z, a.dy, a.params], "sreluBackward");
    const k = rec.gpu.kernel(SRELU_PARAM_GRAD, { WG });
    rec.dispatch(
      k,
      { p, z: a.z, dy: a.dy, dprm: a.dparams, prm: a.params },
      grid(rec.gpu, Math.ceil(a.rows / WG)),
    );
  }
}
