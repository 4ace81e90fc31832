/**
 * Input normalization. Statistics are computed once on the CPU in float64; the GPU applies them
 * during batch assembly (loader.ts). Modes:
 *
 * - `none`: raw values as float (pixels 0..255).
 * - `unit`: u8 pixels divided by 255 (into [0, 1]); f32 features are left as they are (they
 *   have no pixel range), i.e. `unit` equals `none` for f32 datasets.
 * - `standard`: per-feature `(x - mean_f) * mul_f` with the mean and the population standard
 *   deviation std_f of the **training split** (whatever subset it holds), where
 *   - a feature constant in the training split (`std_f <= eps`) gets `mul_f = 0`: it is 0 in
 *     every training sample after centering, so the network never learned anything from it,
 *     and a test sample where it is not constant must not feed `(x - mean) / eps` (up to
 *     2.5e8 for an MNIST border pixel) into the first layer: it stays 0 in train and test;
 *   - every other feature gets `mul_f = 1 / max(std_f, minStd)` with the floor
 *     `minStd = STD_FLOOR_FRACTION (0.1) x the mean std of the non-constant features`, so a
 *     nearly constant feature (a pixel lit in 1 of 5,000 training images has std ≈ x/70)
 *     cannot blow up a test value either. On a 5,000-image MNIST subset: 131 constant pixels,
 *     87 floored, and the largest |value| is 43.3 in both the training and the test split
 *     (unfloored: 70.7 train, 1,387 test, and 2.5e8 with the constant pixels divided by eps).
 * - `sample`: per-sample `(x - mean_s) / max(std_s, eps)` over the sample's own features
 *   (population std); a constant sample becomes all zeros.
 *
 * All modes are an affine map `(x - sub) * mul`; {@link NormStats} holds `sub`/`mul` per feature
 * (standard) and the per-sample stats are computed per split by {@link sampleStats}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { computeNormStats } from "./normalize.ts";
 * const s = computeNormStats(new Uint8Array([0, 10, 2, 10]), 2, 2, "standard");
 * assert.deepEqual(Array.from(s.mean!), [1, 10]);
 * assert.deepEqual(Array.from(s.std!), [1, 0]);
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";

/** The normalization modes. */
export const NORM_MODES = ["none", "unit", "standard", "sample"] as const;
/** A normalization mode (see the module documentation). */
export type NormMode = typeof NORM_MODES[number];

/** Default floor of standard deviations (in raw data units); below it a feature is constant. */
export const DEFAULT_STD_EPS = 1e-6;

/** `standard`: floor of a feature's std as a fraction of the mean std of non-constant features. */
export const STD_FLOOR_FRACTION = 0.1;

/** Normalization statistics of one dataset (computed on its training split). */
export interface NormStats {
  /** The mode these statistics are for. */
  mode: NormMode;
  /** Input features. */
  features: number;
  /** Floor of standard deviations. */
  eps: number;
  /** Multiplier of `none`/`unit` (1 or 1/255). */
  scale: number;
  /** `standard`: per-feature mean (float64). */
  mean?: Float64Array;
  /** `standard`: per-feature population standard deviation (unfloored). */
  std?: Float64Array;
  /**
   * `standard`: floor of the std of non-constant features (STD_FLOOR_FRACTION x the mean std
   * of the non-constant features, at least eps).
   */
  minStd?: number;
}

/**
 * The multiplier of feature `f` in `standard` mode: 0 for a feature constant in the training
 * split (std <= eps), else `1 / max(std_f, minStd)` (see the module documentation).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { computeNormStats, standardScale } from "./normalize.ts";
 * const st = computeNormStats(new Uint8Array([5, 0, 5, 2]), 2, 2, "standard");
 * assert.deepEqual(standardScale(st, 0), 0);
 * assert.deepEqual(standardScale(st, 1), 1);
 * ```
 */
export function standardScale(stats: NormStats, f: number): number {
  const sd = stats.std![f];
  return sd <= stats.eps ? 0 : 1 / Math.max(sd, stats.minStd ?? stats.eps);
}

/**
 * Throws a one-line error unless `mode` is a known normalization mode.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseNormMode } from "./normalize.ts";
 * assert.deepEqual(parseNormMode("standard"), "standard");
 * ```
 */
export function parseNormMode(mode: string): NormMode {
  if (!(NORM_MODES as readonly string[]).includes(mode)) {
    throw new FiligreeError(`unknown normalization "${mode}" (known: ${NORM_MODES.join(", ")})`);
  }
  return mode as NormMode;
}

/**
 * Statistics for `mode` from the training images (`n` samples, sample-major).
 * Two passes in float64 (mean, then squared deviations).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { computeNormStats } from "./normalize.ts";
 * assert.deepEqual(computeNormStats(new Uint8Array([255]), 1, 1, "unit").scale, 0.00392156862745098);
 * ```
 */
export function computeNormStats(
  images: Uint8Array | Float32Array,
  n: number,
  features: number,
  mode: NormMode,
  eps = DEFAULT_STD_EPS,
): NormStats {
  parseNormMode(mode);
  if (images.length !== n * features) {
    throw new FiligreeError(
      `normalization: ${images.length} values for ${n} samples x ${features} features`,
    );
  }
  if (!(eps > 0)) throw new FiligreeError(`normalization: eps must be > 0, got ${eps}`);
  const scale = mode === "unit" && images instanceof Uint8Array ? 1 / 255 : 1;
  const stats: NormStats = { mode, features, eps, scale };
  if (mode !== "standard") return stats;
  if (n === 0) {
    throw new FiligreeError("normalization: standard mode needs at least one training sample");
  }
  const mean = new Float64Array(features);
  for (let s = 0; s < n; s++) {
    const o = s * features;
    for (let f = 0; f < features; f++) mean[f] += images[o + f];
  }
  for (let f = 0; f < features; f++) mean[f] /= n;
  const v = new Float64Array(features);
  for (let s = 0; s < n; s++) {
    const o = s * features;
    for (let f = 0; f < features; f++) {
      const d = images[o + f] - mean[f];
      v[f] += d * d;
    }
  }
  for (let f = 0; f < features; f++) v[f] = Math.sqrt(v[f] / n);
  let sum = 0, count = 0;
  for (let f = 0; f < features; f++) {
    if (v[f] > eps) {
      sum += v[f];
      count++;
    }
  }
  stats.mean = mean;
  stats.std = v;
  stats.minStd = Math.max(eps, count ? (STD_FLOOR_FRACTION * sum) / count : eps);
  return stats;
}

/**
 * Per-sample mean and population standard deviation (float64) of every sample of a split, for
 * the `sample` mode: `mean[s]`, `std[s]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sampleStats } from "./normalize.ts";
 * const { mean, std } = sampleStats(new Float32Array([1, 3, 5, 5]), 2, 2);
 * assert.deepEqual(Array.from(mean), [2, 5]);
 * assert.deepEqual(Array.from(std), [1, 0]);
 * ```
 */
export function sampleStats(
  images: Uint8Array | Float32Array,
  n: number,
  features: number,
): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(n);
  const std = new Float64Array(n);
  for (let s = 0; s < n; s++) {
    const o = s * features;
    let m = 0;
    for (let f = 0; f < features; f++) m += images[o + f];
    m /= features;
    let v = 0;
    for (let f = 0; f < features; f++) v += (images[o + f] - m) ** 2;
    mean[s] = m;
    std[s] = Math.sqrt(v / features);
  }
  return { mean, std };
}

/**
 * The float32 parameters the GPU applies per feature: `[sub_0, mul_0, sub_1, mul_1, ...]`
 * (standard: mean and {@link standardScale}; other modes: 0 and 1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { computeNormStats, featureAffine } from "./normalize.ts";
 * const st = computeNormStats(new Float32Array([1, 3]), 2, 1, "standard");
 * assert.deepEqual(featureAffine(st), new Float32Array([2, 1]));
 * ```
 */
export function featureAffine(stats: NormStats): Float32Array {
  const out = new Float32Array(2 * stats.features);
  for (let f = 0; f < stats.features; f++) {
    out[2 * f] = stats.mean ? stats.mean[f] : 0;
    out[2 * f + 1] = stats.std ? standardScale(stats, f) : 1;
  }
  return out;
}

/**
 * The float32 per-sample parameters of the `sample` mode: `[mean_0, 1/max(std_0, eps), ...]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sampleAffine } from "./normalize.ts";
 * assert.deepEqual(sampleAffine(new Uint8Array([1, 3]), 1, 2, 1e-6), new Float32Array([2, 1]));
 * ```
 */
export function sampleAffine(
  images: Uint8Array | Float32Array,
  n: number,
  features: number,
  eps: number,
): Float32Array {
  const { mean, std } = sampleStats(images, n, features);
  const out = new Float32Array(2 * n);
  for (let s = 0; s < n; s++) {
    out[2 * s] = mean[s];
    out[2 * s + 1] = 1 / Math.max(std[s], eps);
  }
  return out;
}

/**
 * Float64 reference: every sample of a split normalized as `stats` says (sample-major, exact
 * float64 statistics, no float32 rounding of them).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { computeNormStats, normalizeRef } from "./normalize.ts";
 * const x = new Uint8Array([0, 255]);
 * assert.deepEqual(Array.from(normalizeRef(x, 1, 2, computeNormStats(x, 1, 2, "unit"))), [0, 1]);
 * ```
 */
export function normalizeRef(
  images: Uint8Array | Float32Array,
  n: number,
  features: number,
  stats: NormStats,
): Float64Array {
  const out = new Float64Array(n * features);
  const per = stats.mode === "sample" ? sampleStats(images, n, features) : undefined;
  for (let s = 0; s < n; s++) {
    for (let f = 0; f < features; f++) {
      const x = images[s * features + f];
      let y: number;
      if (stats.mode === "standard") y = (x - stats.mean![f]) * standardScale(stats, f);
      else if (per) y = (x - per.mean[s]) / Math.max(per.std[s], stats.eps);
      else y = x * stats.scale;
      out[s * features + f] = y;
    }
  }
  return out;
}
