/**
 * The GPU runtime: device, tensors, kernels and recorders.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "./mod.ts";
 * const gpu = await getGpu();
 * assert.ok(gpu.limits.maxStorageBufferBindingSize > 0);
 * ```
 * @module
 */
export * from "./errors.ts";
export * from "./tensor.ts";
export * from "./device.ts";
export * from "./kernel.ts";
export * from "./recorder.ts";
export * from "./reflect.ts";
export * from "./params.ts";
export * from "./backend.ts";
export * from "./quirks.ts";
export * from "./mirror.ts";
export * from "./textured.ts";
export * from "./storage_textures.ts";
export * from "./collect.ts";
