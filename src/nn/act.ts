/**
 * Feature-major activations: a tensor `[rows][ld]` with `ld = roundUp4(batch)` and a cache
 * that allocates each layer's activation buffers once per batch size, so a training step
 * re-records dispatches over the same buffers (and the same bind groups) every time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { ActCache } from "./act.ts";
 * const gpu = await getGpu();
 * const cache = new ActCache(gpu, "layer1");
 * const a = cache.get("y", 10, 13);
 * assert.deepEqual(a.t.shape, [10, 16]);
 * assert.ok(cache.get("y", 10, 13) === a);
 * ```
 * @module
 */
import { type Gpu, roundUp4, type Tensor } from "../gpu/mod.ts";

/** A feature-major activation tensor. */
export interface Act {
  t: Tensor;
  rows: number;
  batch: number;
}

/** Allocates a feature-major activation. */
export function allocAct(gpu: Gpu, rows: number, batch: number, label: string): Act {
  return { t: gpu.tensor("f32", [rows, roundUp4(batch)], { label, zero: true }), rows, batch };
}

/** Per-layer buffers keyed by (name, rows, batch). */
export class ActCache {
  #m = new Map<string, Act>();
  constructor(readonly gpu: Gpu, readonly owner: string) {}

  /** The buffer for `name` at this size, allocated on first use. */
  get(name: string, rows: number, batch: number): Act {
    const key = `${name}:${rows}:${batch}`;
    let a = this.#m.get(key);
    if (!a) {
      a = allocAct(this.gpu, rows, batch, `${this.owner}.${name}`);
      this.#m.set(key, a);
    }
    return a;
  }

  /** Any f32 tensor (parameter-sized scratch), allocated on first use. */
  scratch(name: string, size: number, dtype: "f32" | "u32" = "f32"): Tensor {
    const key = `#${name}:${size}:${dtype}`;
    let a = this.#m.get(key);
    if (!a) {
      a = {
        t: this.gpu.tensor(dtype, [size], { label: `${this.owner}.${name}`, zero: true }),
        rows: size,
        batch: 1,
      };
      this.#m.set(key, a);
    }
    return a.t;
  }
}
