/**
 * Reference for inverted dropout on dense `[rows][batch]` arrays: the same integer hash as
 * shaders/dropout.wgsl (bit-exact, u32 arithmetic), so masks can be compared exactly, and the
 * scaled outputs rounded to float32 as the GPU computes them (`fround(x · fround(1/(1 − p)))`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dropoutMaskRef } from "./dropout_ref.ts";
 * const keep = dropoutMaskRef(2, 3, 0.5, 42, 0);
 * assert.deepEqual(keep.length, 6); // entries 0 or 1
 * ```
 * @module
 */
import { dropoutScale, dropoutThreshold } from "./dropout.ts";

/** PCG hash of a u32 (LCG step + RXS-M-XS output permutation), as `pcg_hash` in the shader. */
export function pcgHash(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/** The per-call key from (seed, step, stream). */
export function dropoutKey(seed: number, step: number, stream = 0): number {
  return pcgHash((seed ^ pcgHash((step ^ pcgHash(stream)) >>> 0)) >>> 0);
}

/** The 32 random bits of element index `idx` (= r·batch + c) under `key`. */
export function dropoutBits(key: number, idx: number): number {
  return pcgHash((pcgHash((idx + key) >>> 0) ^ key) >>> 0);
}

/** Keep mask (1 = kept) of a `[rows][batch]` activation. */
export function dropoutMaskRef(
  rows: number,
  batch: number,
  p: number,
  seed: number,
  step: number,
  stream = 0,
): Uint8Array {
  const key = dropoutKey(seed, step, stream);
  const thresh = dropoutThreshold(p);
  const keep = new Uint8Array(rows * batch);
  for (let i = 0; i < rows * batch; i++) keep[i] = dropoutBits(key, i) >= thresh ? 1 : 0;
  return keep;
}

/** `y = x · keep · fround(1/(1 − p))`, each product rounded to float32 like the GPU. Also the backward (x = dy). */
export function dropoutRef(
  x: Float64Array,
  rows: number,
  batch: number,
  p: number,
  seed: number,
  step: number,
  stream = 0,
): Float64Array {
  const keep = dropoutMaskRef(rows, batch, p, seed, step, stream);
  const scale = dropoutScale(p);
  return x.map((v, i) => (keep[i] ? Math.fround(v * scale) : 0));
}
