/**
 * Collection of garbage GPU wrappers. Deno 2's WebGPU objects (command encoders, pass encoders,
 * command buffers) are garbage-collected wrappers that keep their native state (wgpu's recorded
 * commands and resource trackers, Mesa's per-submit state) until V8 collects them. V8 sees only the
 * small JavaScript side, so a training loop that allocates little JavaScript runs a full collection
 * rarely and the host memory grows: ~10 KB per LeNet step on GL with texture mirrors (each mirror
 * copy ends a compute pass, so a step makes ~60 wrappers): 55.7 MB over 5,000 steps left to V8,
 * 11.7 MB with a full collection forced once a second (bench/RESULTS.md, 2026-12-06).
 *
 * The fix lives where work is retired: {@link Gpu.submit} asks the device's {@link Collector},
 * which runs a full collection at most once per {@link COLLECT_INTERVAL_MS} when the process
 * exposes `gc` (every `deno task` passes `--v8-flags=--expose-gc`; a program of your own can pass
 * it too). Without it nothing is forced and V8 collects when it decides to.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Collector } from "./collect.ts";
 * let calls = 0;
 * const c = new Collector(() => calls++, 1000);
 * assert.equal(c.maybeCollect(5000), true);
 * assert.equal(c.maybeCollect(5500), false); // within the interval
 * assert.equal(c.maybeCollect(6000), true);
 * assert.deepEqual([calls, c.collections], [2, 2]);
 * ```
 * @module
 */

/** Least wall time between two forced collections, ms. */
export const COLLECT_INTERVAL_MS = 1000;

/** The `gc` function V8 exposes under `--expose-gc`, if any. */
export function exposedGc(): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc;
  return typeof g === "function" ? g : null;
}

/** Forces a full collection now and then (one per device). */
export class Collector {
  #last = -Infinity;
  /** Full collections forced so far. */
  collections = 0;

  constructor(
    /** The collection to force; `null` never forces one. */
    readonly gc: (() => void) | null = exposedGc(),
    readonly intervalMs: number = COLLECT_INTERVAL_MS,
  ) {}

  /** Whether collections can be forced at all (`gc` is exposed). */
  get active(): boolean {
    return this.gc !== null;
  }

  /** Runs `gc` if `intervalMs` have passed since the last forced one; returns whether it ran. */
  maybeCollect(now: number = performance.now()): boolean {
    if (!this.gc || now - this.#last < this.intervalMs) return false;
    this.#last = now;
    this.gc();
    this.collections++;
    return true;
  }
}
