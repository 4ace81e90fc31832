/**
 * Deterministic, platform-independent randomness for data handling: a 32-bit mixer, a seeded
 * generator (xorshift-multiply over a Weyl sequence, "splitmix32"), and seeded permutations.
 * Everything here depends only on integer arithmetic, so the same seed gives the same order on
 * every machine and in every Deno version.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { permutation } from "./random.ts";
 * const a = permutation(5, 42, 0);
 * const b = permutation(5, 42, 0);
 * assert.ok(a.join() === b.join());
 * ```
 * @module
 */

/**
 * Mixes a 32-bit integer into a well-scrambled 32-bit unsigned integer (bijective).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mix32 } from "./random.ts";
 * assert.ok(mix32(1) !== mix32(2));
 * ```
 */
export function mix32(x: number): number {
  x = Math.imul((x ^ (x >>> 16)) >>> 0, 0x7feb352d);
  x = Math.imul((x ^ (x >>> 15)) >>> 0, 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Combines a seed and a stream number (e.g. an epoch) into one 32-bit seed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveSeed } from "./random.ts";
 * assert.ok(deriveSeed(42, 0) !== deriveSeed(42, 1));
 * ```
 */
export function deriveSeed(seed: number, stream: number): number {
  return mix32((mix32(seed >>> 0) + Math.imul(mix32((stream + 0x9e3779b9) >>> 0), 3)) >>> 0);
}

/**
 * A seeded generator (splitmix32). Not cryptographic; fast and reproducible.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DataRng } from "./random.ts";
 * const r = new DataRng(7);
 * assert.ok(r.int(10) < 10);
 * ```
 */
export class DataRng {
  #s: number;
  /** A generator whose whole sequence is determined by `seed` (a 32-bit integer). */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    this.#s = (this.#s + 0x9e3779b9) >>> 0;
    return mix32(this.#s);
  }
  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.u32() >>> 5; // 27 bits
    const lo = this.u32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
  /** Integer in [0, n) (bias below 2^-40 for n < 2^13, negligible for dataset sizes). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** A standard normal draw (Box-Muller, one value per call). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/**
 * Shuffles `a` in place (Fisher-Yates) with `rng`; returns `a`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DataRng, shuffleInPlace } from "./random.ts";
 * assert.deepEqual(shuffleInPlace(new Uint32Array([1, 2, 3]), new DataRng(5)).length, 3);
 * ```
 */
export function shuffleInPlace<T extends { length: number; [i: number]: number }>(
  a: T,
  rng: DataRng,
): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/**
 * A uniformly random permutation of `0..n-1` determined by `(seed, stream)`: the training order
 * of epoch `stream`. Same arguments, same order; different streams give independent orders.
 */
export function permutation(n: number, seed: number, stream = 0): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return shuffleInPlace(a, new DataRng(deriveSeed(seed, stream)));
}
