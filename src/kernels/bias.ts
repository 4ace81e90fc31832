/**
 * Bias add (`y = x + b` per feature row) and bias gradient (`db = sum over batch of dy`) on
 * feature-major activations. Shader: shaders/bias.wgsl; reference: bias_ref.ts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { biasAdd } from "./bias.ts";
 * const gpu = await getGpu();
 * // 2 features x batch 3 (ld 4): rows [1,2,3,_] and [4,5,6,_]
 * const x = gpu.tensor("f32", [2, 4], { data: new Float32Array([1, 2, 3, 0, 4, 5, 6, 0]) });
 * const b = gpu.tensor("f32", [2], { data: new Float32Array([10, 20]) });
 * const y = gpu.tensor("f32", [2, 4]);
 * const rec = gpu.recorder();
 * biasAdd(rec, { x, bias: b, y, rows: 2, batch: 3 });
 * rec.submit();
 * assert.deepEqual(await gpu.read(y), new Float32Array([11, 12, 13, 0, 24, 25, 26, 0]));
 * ```
 * @module
 */
import code from "../../shaders/bias.wgsl" with { type: "text" };
import {
  defineKernel,
  FiligreeError,
  grid,
  MAX_LOOP_TRIPS,
  packParams,
  type Recorder,
  requireTensor,
  roundUp4,
  type Tensor,
} from "../gpu/mod.ts";

const WG = 64;

export const BIAS_ADD = defineKernel({
  shader: "bias.wgsl",
  code,
  entry: "bias_add",
  textureInputs: true,
  bindings: [["p", "uniform"], ["x", "read"], ["bias", "read"], ["y", "read_write"]],
});
export const BIAS_GRAD = defineKernel({
  shader: "bias.wgsl",
  code,
  entry: "bias_grad",
  textureInputs: true,
  bindings: [["p", "uniform"], ["dy", "read"], ["dbias", "read_write"]],
});

/** Sizes of a feature-major activation: `rows` features by `batch` samples, stride roundUp4(batch). */
export interface ActShape {
  rows: number;
  batch: number;
}

const check = (t: Tensor, n: number, what: string) => requireTensor(t, n, what);

/** `y[r][c] = x[r][c] + bias[r]`; padding columns of y become 0.. */
export function biasAdd(rec: Recorder, a: ActShape & { x: Tensor; bias: Tensor; y: Tensor }): void {
  const ld = roundUp4(a.batch);
  check(a.x, a.rows * ld, "biasAdd x");
  check(a.y, a.rows * ld, "biasAdd y");
  check(a.bias, a.rows, "biasAdd bias");
  const p = rec.gpu.uniform(packParams([a.rows, a.batch, ld, 0, 0, 0]));
  const k = rec.gpu.kernel(BIAS_ADD, { WG });
  rec.dispatch(
    k,
    { p, x: a.x, bias: a.bias, y: a.y },
    grid(rec.gpu, Math.ceil((a.rows * ld) / 4 / WG)),
  );
}

/**
 * `dbias[r] = sum_{c < batch} dy[r][c]`. A row's reduction is split into dispatches of at most
 * `maxQuads` quads (default {@link MAX_LOOP_TRIPS}; llvmpipe's loop cap), the later ones
 * accumulating: a convolution's batch (positions x samples) may be any size.
 */
export function biasGrad(
  rec: Recorder,
  a: ActShape & { dy: Tensor; dbias: Tensor; maxQuads?: number },
): void {
  const ld = roundUp4(a.batch);
  check(a.dy, a.rows * ld, "biasGrad dy");
  check(a.dbias, a.rows, "biasGrad dbias");
  const quads = ld / 4;
  const chunk = Math.min(MAX_LOOP_TRIPS, a.maxQuads ?? MAX_LOOP_TRIPS);
  if (!(chunk >= 1)) throw new FiligreeError(`biasGrad: maxQuads ${a.maxQuads} must be >= 1`);
  const k = rec.gpu.kernel(BIAS_GRAD, { WG });
  for (let q0 = 0; q0 < quads; q0 += chunk) {
    const q1 = Math.min(quads, q0 + chunk);
    const p = rec.gpu.uniform(packParams([a.rows, a.batch, ld, q0, q1, q0 > 0 ? 1 : 0]));
    rec.dispatch(k, { p, dy: a.dy, dbias: a.dbias }, grid(rec.gpu, Math.ceil(a.rows / WG)));
  }
}
