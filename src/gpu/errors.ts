/**
 * Errors that reach a user as one readable line. The CLI prints `err.message` of a
 * {@link FiligreeError} without a stack trace and exits non-zero; anything else is a bug.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FiligreeError } from "./errors.ts";
 * const e = new FiligreeError("bad --density: expected a number in (0, 1], got 2");
 * assert.ok(e instanceof Error);
 * assert.deepEqual(e.name, "FiligreeError");
 * ```
 * @module
 */

/** An error meant for the user: one line, no stack trace needed. */
export class FiligreeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FiligreeError";
  }
}

/** No WebGPU adapter on this machine. */
export class NoAdapterError extends FiligreeError {
  constructor() {
    super(
      "no WebGPU adapter found: install the Debian package mesa-vulkan-drivers (software adapter, " +
        "lavapipe) with libvulkan1, or run on a machine with a GPU driver",
    );
    this.name = "NoAdapterError";
  }
}

/** A size over one of the device's limits, naming the limit, what was requested and what exists. */
export class LimitError extends FiligreeError {
  constructor(
    readonly limit: string,
    readonly requested: number,
    readonly actual: number,
    what: string,
  ) {
    super(`${what}: needs ${limit} >= ${requested}, but this adapter allows ${actual}`);
    this.name = "LimitError";
  }
}

/** A kernel's declared bindings disagree with its WGSL, or the WGSL does not compile. */
export class ShaderError extends FiligreeError {
  constructor(message: string) {
    super(message);
    this.name = "ShaderError";
  }
}

/** A WebGPU validation or out-of-memory error raised asynchronously by the device. */
export class GpuError extends FiligreeError {
  constructor(message: string) {
    super(message);
    this.name = "GpuError";
  }
}
