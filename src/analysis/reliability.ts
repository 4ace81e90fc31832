/**
 * Split-half reliability of ablation measurements: the evaluation set is split into two
 * disjoint seeded halves A and B, every ablation is measured on each, and the Spearman
 * correlation of the per-weight values between the halves is the reliability of a half-size
 * measurement. The Spearman-Brown formula `2r/(1 + r)` predicts the reliability of the
 * full-size measurement (the mean over both halves), the noise ceiling reported beside every
 * correlation. Loss and accuracy are means over samples, so the full-set value is recombined
 * exactly: `Δ_full = (n_A·Δ_A + n_B·Δ_B)/(n_A + n_B)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spearmanBrown } from "./reliability.ts";
 * assert.deepEqual(spearmanBrown(0.5).toFixed(4), "0.6667");
 * ```
 * @module
 */
import { DataRng, deriveSeed } from "../data/random.ts";
import { spearman } from "./stats.ts";

/**
 * Spearman-Brown prophecy for a test twice as long: `2r/(1 + r)`. Defined for r > -1; a
 * negative split-half r gives a negative value (the measurement repeats worse than chance).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spearmanBrown } from "./reliability.ts";
 * assert.deepEqual(spearmanBrown(0), 0);
 * assert.deepEqual(spearmanBrown(1), 1);
 * ```
 */
export function spearmanBrown(r: number): number {
  if (!Number.isFinite(r) || r <= -1) return NaN;
  return (2 * r) / (1 + r);
}

/** Split-half reliability of one measured quantity. */
export interface SplitHalf {
  /** Spearman r between the two halves' values. */
  half: number;
  /** Spearman-Brown corrected reliability of the full set, 2r/(1+r). */
  ceiling: number;
}

/**
 * Split-half reliability of per-item values measured on halves A and B.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitHalf } from "./reliability.ts";
 * const r = splitHalf([1, 2, 3, 4], [1, 3, 2, 4]);
 * assert.deepEqual(r.half, 0.8);
 * assert.deepEqual(r.ceiling.toFixed(4), "0.8889");
 * ```
 */
export function splitHalf(a: ArrayLike<number>, b: ArrayLike<number>): SplitHalf {
  const half = spearman(a, b);
  return { half, ceiling: spearmanBrown(half) };
}

/**
 * Per-item means over disjoint sample sets recombined into the mean over their union: `parts`
 * are (values, samples) pairs, each value a mean over that part's samples. Exact (up to float64
 * rounding): the two halves of the split-half reliability, or a half's shards.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { combineParts } from "./reliability.ts";
 * assert.deepEqual([...combineParts([{ values: [1, 4], n: 3 }, { values: [3, 0], n: 1 }])], [1.5, 3]);
 * ```
 */
export function combineParts(
  parts: readonly { values: ArrayLike<number>; n: number }[],
): Float64Array {
  // One part: its values as they are (n·v/n may round differently from v).
  if (parts.length === 1) return Float64Array.from(parts[0].values);
  const total = parts.reduce((s, p) => s + p.n, 0);
  const out = new Float64Array(parts[0]?.values.length ?? 0);
  for (const p of parts) for (let i = 0; i < out.length; i++) out[i] += p.n * p.values[i];
  for (let i = 0; i < out.length; i++) out[i] /= total;
  return out;
}

/**
 * Splits evaluation indices into two disjoint halves, balanced per class: within each class the
 * members are shuffled (seeded) and dealt alternately, the first deal of each class going to
 * the half that is currently smaller, so the halves differ in size by at most one and in every
 * class by at most one. Each half is returned sorted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitIndices } from "./reliability.ts";
 * const [a, b] = splitIndices(Uint32Array.from([10, 11, 12, 13]), new Uint8Array([0, 0, 1, 1]), 7);
 * assert.deepEqual(a.length, 2);
 * assert.deepEqual(b.length, 2);
 * assert.deepEqual(new Set([...a, ...b]).size, 4);
 * ```
 */
export function splitIndices(
  indices: Uint32Array,
  classOf: ArrayLike<number>,
  seed: number,
): [Uint32Array, Uint32Array] {
  const rng = new DataRng(deriveSeed(seed, 0x5b1f));
  const byClass = new Map<number, number[]>();
  indices.forEach((v, k) => {
    const c = classOf[k];
    if (!byClass.has(c)) byClass.set(c, []);
    byClass.get(c)!.push(v);
  });
  const a: number[] = [], b: number[] = [];
  for (const c of [...byClass.keys()].sort((x, y) => x - y)) {
    const m = byClass.get(c)!;
    for (let i = m.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [m[i], m[j]] = [m[j], m[i]];
    }
    const firstA = a.length <= b.length;
    m.forEach((v, i) => ((i % 2 === 0) === firstA ? a : b).push(v));
  }
  return [Uint32Array.from(a).sort(), Uint32Array.from(b).sort()];
}
