/**
 * Float64 reference of the GPU batch assembly in loader.ts / shaders/data.wgsl.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gatherRef } from "./loader_ref.ts";
 * import { computeNormStats } from "./normalize.ts";
 * const images = new Uint8Array([1, 2, 3, 4, 5, 6]); // 3 samples x 2 features
 * const stats = computeNormStats(images, 3, 2, "none");
 * const r = gatherRef({ images, labels: new Uint8Array([0, 1, 2]), n: 3 }, 2, stats, [2, 0], 0, 2);
 * assert.deepEqual(Array.from(r.x), [5, 1, 0, 0, 6, 2, 0, 0]);
 * assert.deepEqual(Array.from(r.labels), [2, 0]);
 * ```
 * @module
 */
import type { Split } from "./datasets.ts";
import { type NormStats, sampleStats, standardScale } from "./normalize.ts";

/**
 * The batch of `size` samples starting at `offset` of `order` (or `offset + c` when `order` is
 * null), normalized in float64: `x` is feature-major `[features][roundUp4(size)]` with zero
 * padding, `labels` has `size` entries.
 */
export function gatherRef(
  split: Split,
  features: number,
  stats: NormStats,
  order: ArrayLike<number> | null,
  offset: number,
  size: number,
): { x: Float64Array; labels: Uint32Array } {
  const ld = Math.ceil(size / 4) * 4;
  const x = new Float64Array(features * ld);
  const labels = new Uint32Array(size);
  for (let c = 0; c < size; c++) {
    const s = order ? order[offset + c] : offset + c;
    labels[c] = split.labels[s];
    const row = split.images.subarray(s * features, (s + 1) * features);
    const per = stats.mode === "sample" ? sampleStats(row, 1, features) : undefined;
    for (let f = 0; f < features; f++) {
      const v = row[f];
      let y: number;
      if (stats.mode === "standard") y = (v - stats.mean![f]) * standardScale(stats, f);
      else if (per) y = (v - per.mean[0]) / Math.max(per.std[0], stats.eps);
      else y = v * stats.scale;
      x[f * ld + c] = y;
    }
  }
  return { x, labels };
}
