/**
 * A small synthetic classification task for fast tests and smoke runs: Gaussian clusters.
 * Each class owns `clustersPerClass` centres drawn at random; a sample is its centre plus
 * isotropic unit Gaussian noise, then every feature gets its own affine transform
 * (offset and scale drawn per feature), so per-feature standardization matters. The centres are
 * spread so that the expected distance between two centres is `separation` noise standard
 * deviations (default 8): a small MLP reaches high accuracy in a few epochs, a linear model
 * cannot when `clustersPerClass > 1` (the clusters of one class are not contiguous).
 *
 * Everything is determined by `seed`. Classes are exactly balanced in both splits (up to one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { makeSynthetic } from "./synthetic.ts";
 * const ds = makeSynthetic({ seed: 1, features: 8, classes: 3, train: 300, test: 60 });
 * assert.deepEqual(ds.train.n, 300);
 * assert.deepEqual(ds.test.n, 60);
 * assert.deepEqual(ds.features, 8);
 * assert.deepEqual(ds.classes, 3);
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";
import type { Dataset, Split } from "./datasets.ts";
import { DataRng, deriveSeed, shuffleInPlace } from "./random.ts";

/** Options of {@link makeSynthetic}. */
export interface SyntheticOptions {
  /** Seed of everything (default 1). */
  seed?: number;
  /** Input features (default 16). */
  features?: number;
  /** Classes (default 4, at most 256). */
  classes?: number;
  /** Training samples (default 2000). */
  train?: number;
  /** Test samples (default 500). */
  test?: number;
  /** Gaussian clusters per class (default 2). */
  clustersPerClass?: number;
  /** Expected distance between two cluster centres in noise standard deviations (default 8). */
  separation?: number;
  /**
   * Storage: "f32" (default) keeps real values with a random per-feature offset and scale;
   * "u8" stores `round(128 + 16·value)` clamped to 0..255 like image pixels (no per-feature
   * transform), to exercise the u8 path.
   */
  dtype?: "f32" | "u8";
}

/** The cluster centres of a synthetic task (`[class][cluster][feature]`, before the affine transform). */
export interface SyntheticTruth {
  /** Cluster centres `[class][cluster][feature]`. */
  centres: Float64Array;
  /** Per-feature offset of the stored values. */
  offset: Float64Array;
  /** Per-feature scale of the stored values (`stored = offset + scale · value`). */
  scale: Float64Array;
}

function posInt(v: number, what: string, min = 1): number {
  if (!Number.isInteger(v) || v < min) {
    throw new FiligreeError(`synthetic: ${what} must be an integer >= ${min}, got ${v}`);
  }
  return v;
}

/**
 * Generates the synthetic dataset. Returns a {@link Dataset} named `synthetic` (plus the hidden
 * truth under `truth`, used by tests to check the task is learnable).
 */
export function makeSynthetic(opts: SyntheticOptions = {}): Dataset & { truth: SyntheticTruth } {
  const seed = opts.seed ?? 1;
  const F = posInt(opts.features ?? 16, "features");
  const C = posInt(opts.classes ?? 4, "classes", 2);
  if (C > 256) throw new FiligreeError(`synthetic: at most 256 classes (labels are u8), got ${C}`);
  const K = posInt(opts.clustersPerClass ?? 2, "clustersPerClass");
  const nTrain = posInt(opts.train ?? 2000, "train");
  const nTest = posInt(opts.test ?? 500, "test", 0);
  const sep = opts.separation ?? 8;
  if (!(sep > 0)) throw new FiligreeError(`synthetic: separation must be > 0, got ${sep}`);
  const dtype = opts.dtype ?? "f32";

  const rng = new DataRng(deriveSeed(seed, 0x5e7));
  // Coordinates ~ N(0, sep²/(2F)): the difference of two centres has squared norm ≈ sep².
  const spread = sep / Math.sqrt(2 * F);
  const centres = new Float64Array(C * K * F);
  for (let i = 0; i < centres.length; i++) centres[i] = spread * rng.normal();
  const offset = new Float64Array(F);
  const scale = new Float64Array(F);
  for (let f = 0; f < F; f++) {
    offset[f] = dtype === "u8" ? 128 : 6 * rng.next() - 3;
    scale[f] = dtype === "u8" ? 16 : 0.5 + 1.5 * rng.next();
  }

  const split = (n: number, stream: number): Split => {
    const r = new DataRng(deriveSeed(seed, stream));
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) labels[i] = i % C;
    shuffleInPlace(labels, r);
    const images = dtype === "u8" ? new Uint8Array(n * F) : new Float32Array(n * F);
    for (let i = 0; i < n; i++) {
      const base = (labels[i] * K + r.int(K)) * F;
      for (let f = 0; f < F; f++) {
        const v = offset[f] + scale[f] * (centres[base + f] + r.normal());
        images[i * F + f] = dtype === "u8" ? Math.min(255, Math.max(0, Math.round(v))) : v;
      }
    }
    return { images, labels, n };
  };

  return {
    name: "synthetic",
    features: F,
    classes: C,
    shape: [F],
    source:
      `synthetic Gaussian clusters (seed ${seed}, ${K} per class, separation ${sep}, ${dtype})`,
    train: split(nTrain, 1),
    test: split(nTest, 2),
    truth: { centres, offset, scale },
  };
}
