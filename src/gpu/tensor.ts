/**
 * A typed view of one GPU storage buffer: shape, element type, and the buffer itself.
 *
 * Activations use the feature-major layout `[features][ld]`: the batch is the fast axis
 * (the vector axis of the kernels), `ld = roundUp(batch, 4)` so rows can be read as `vec4`,
 * and the padding columns `batch..ld-1` are kept at zero by every kernel that writes them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { roundUp4 } from "./tensor.ts";
 * assert.deepEqual(roundUp4(13), 16);
 * ```
 * @module
 */

import { FiligreeError } from "./errors.ts";
/** Element type of a tensor. All are 4 bytes. */
export type DType = "f32" | "u32" | "i32";

/** A GPU buffer with a logical shape. Created by `Gpu.tensor`, released with `Gpu.release`. */
export interface Tensor {
  readonly buffer: GPUBuffer;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Number of elements (product of shape). */
  readonly size: number;
  /** A label for error messages and GPU debugging. */
  readonly label: string;
}

/** Number of elements of a shape. */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Rounds up to a multiple of 4: the row stride of feature-major activations. */
export function roundUp4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** Typed array type for a dtype. */
export type ArrayFor<D extends DType> = D extends "f32" ? Float32Array
  : D extends "u32" ? Uint32Array
  : Int32Array;

/**
 * Checks that a kernel argument is large enough (and of `dtype`, when given): one message format
 * for every kernel wrapper.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu, requireTensor } from "./mod.ts";
 * const gpu = await getGpu();
 * const t = gpu.tensor("f32", [4], { label: "x" });
 * assert.throws(() => requireTensor(t, 8, "op x"), { message: "op x: tensor x has 4 elements, needs 8" });
 * ```
 */
export function requireTensor(t: Tensor, n: number, what: string, dtype?: DType): void {
  if (dtype && t.dtype !== dtype) {
    throw new FiligreeError(`${what}: tensor ${t.label} is ${t.dtype}, needs ${dtype}`);
  }
  if (t.size < n) {
    throw new FiligreeError(`${what}: tensor ${t.label} has ${t.size} elements, needs ${n}`);
  }
}
