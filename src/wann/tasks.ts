/**
 * WANN tasks: classification data as float inputs in [0, 1].
 *
 * - `mnist16`: MNIST deskewed and downscaled to 16x16 (256 inputs), as in the paper. Deskewing:
 *   the image-moment method the reference code uses (shear each row by `alpha = cov(r, c) /
 *   var(r)` and move the centroid to the centre), with bilinear instead of the cubic-spline
 *   interpolation of scipy's `affine_transform`; then area-averaging 28 -> 16 (exact overlap
 *   weights), pixel values / 255.
 * - `synthetic`: `features` uniform inputs; each class owns a disjoint block of up to 3 inputs with
 *   random signs, the label is the argmax of the signed block sums of `x - 0.5` (seeded; disjoint
 *   blocks and centring keep the classes balanced): a task a test can search in seconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gatherBatch, makeSyntheticTask } from "./tasks.ts";
 * const t = makeSyntheticTask({ features: 6, classes: 3, train: 100, test: 50, seed: 1 });
 * const x = gatherBatch(t.train, t.features, [0, 5, 7]);
 * assert.deepEqual(t.features, 6);
 * assert.deepEqual(x.length, 18);
 * ```
 * @module
 */
import { loadMnist } from "../data/datasets.ts";
import { DataRng } from "../data/random.ts";
import { FiligreeError } from "../gpu/errors.ts";

/** One split: sample-major inputs `x[s * features + f]` in [0, 1]. */
export interface TaskSplit {
  x: Float32Array;
  labels: Uint8Array;
  n: number;
}

/** A WANN classification task. */
export interface WannTask {
  name: string;
  features: number;
  classes: number;
  /** One line for run configs and reports. */
  description: string;
  train: TaskSplit;
  test: TaskSplit;
}

/** Task names. */
export const WANN_TASKS = ["mnist16", "synthetic"] as const;

/** Feature-major `[features][idx.length]` inputs of the samples `idx` (what the evaluator reads). */
export function gatherBatch(
  split: TaskSplit,
  features: number,
  idx: ArrayLike<number>,
): Float32Array {
  const S = idx.length;
  const out = new Float32Array(features * S);
  for (let s = 0; s < S; s++) {
    const base = idx[s] * features;
    for (let f = 0; f < features; f++) out[f * S + s] = split.x[base + f];
  }
  return out;
}

/** Options of {@link makeSyntheticTask}. */
export interface SyntheticTaskOptions {
  features?: number;
  classes?: number;
  train?: number;
  test?: number;
  seed?: number;
}

/** The synthetic task (see the module comment). */
export function makeSyntheticTask(o: SyntheticTaskOptions = {}): WannTask {
  const F = o.features ?? 8, C = o.classes ?? 3, seed = o.seed ?? 1;
  const rng = new DataRng(seed);
  if (F < C) throw new FiligreeError(`synthetic WANN task: ${F} features < ${C} classes`);
  // Each class reads its own block of up to 3 inputs (disjoint, so no class dominates another)
  // with random signs.
  const A = new Float64Array(C * F);
  const perm = Array.from({ length: F }, (_, i) => i);
  for (let i = F - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  const k = Math.min(3, Math.floor(F / C));
  for (let c = 0; c < C; c++) {
    for (let t = 0; t < k; t++) A[c * F + perm[c * k + t]] = rng.next() < 0.5 ? -1 : 1;
  }
  const split = (n: number): TaskSplit => {
    const x = new Float32Array(n * F), labels = new Uint8Array(n);
    for (let s = 0; s < n; s++) {
      let best = 0, bv = -Infinity;
      for (let f = 0; f < F; f++) x[s * F + f] = rng.next();
      for (let c = 0; c < C; c++) {
        let v = 0;
        for (let f = 0; f < F; f++) v += A[c * F + f] * (x[s * F + f] - 0.5);
        if (v > bv) {
          bv = v;
          best = c;
        }
      }
      labels[s] = best;
    }
    return { x, labels, n };
  };
  return {
    name: "synthetic",
    features: F,
    classes: C,
    description:
      `synthetic: ${F} uniform inputs, label = argmax of signed sums of disjoint input blocks (seed ${seed})`,
    train: split(o.train ?? 2000),
    test: split(o.test ?? 500),
  };
}

/** Deskews one 28x28 image (values in [0, 1]) by its second moments; bilinear sampling. */
export function deskew(img: Float64Array, size = 28): Float64Array {
  let total = 0, mr = 0, mc = 0;
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      const v = img[r * size + c];
      total += v;
      mr += r * v;
      mc += c * v;
    }
  }
  if (total <= 0) return Float64Array.from(img);
  mr /= total;
  mc /= total;
  let vr = 0, cov = 0;
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      const v = img[r * size + c];
      vr += (r - mr) ** 2 * v;
      cov += (r - mr) * (c - mc) * v;
    }
  }
  const alpha = vr > 0 ? cov / vr : 0;
  const half = size / 2;
  const at = (
    r: number,
    c: number,
  ) => (r >= 0 && r < size && c >= 0 && c < size ? img[r * size + c] : 0);
  const out = new Float64Array(size * size);
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      const sr = r + mr - half;
      const sc = c + alpha * (r - half) + mc - half;
      const r0 = Math.floor(sr), c0 = Math.floor(sc), fr = sr - r0, fc = sc - c0;
      out[r * size + c] = (1 - fr) * ((1 - fc) * at(r0, c0) + fc * at(r0, c0 + 1)) +
        fr * ((1 - fc) * at(r0 + 1, c0) + fc * at(r0 + 1, c0 + 1));
    }
  }
  return out;
}

/** Area-averaging resize of a square image from `from` to `to` pixels a side. */
export function resizeArea(img: Float64Array, from: number, to: number): Float64Array {
  const out = new Float64Array(to * to);
  const k = from / to;
  // Overlapping source pixels [index, overlap] of output pixel o along one axis.
  const w: [number, number][][] = [];
  for (let o = 0; o < to; o++) {
    const lo = o * k, hi = (o + 1) * k;
    const row: [number, number][] = [];
    for (let i = Math.floor(lo); i < Math.ceil(hi); i++) {
      row.push([i, Math.min(hi, i + 1) - Math.max(lo, i)]);
    }
    w.push(row);
  }
  for (let orow = 0; orow < to; orow++) {
    for (let ocol = 0; ocol < to; ocol++) {
      let s = 0;
      for (const [i, wr] of w[orow]) {
        for (const [j, wc] of w[ocol]) s += wr * wc * img[i * from + j];
      }
      out[orow * to + ocol] = s / (k * k);
    }
  }
  return out;
}

let mnist16: Promise<WannTask> | null = null;

/** MNIST deskewed and downscaled to 16x16 (see the module comment); computed once per process. */
export function loadMnist16(): Promise<WannTask> {
  mnist16 ??= (async () => {
    const ds = await loadMnist();
    const conv = (images: Uint8Array | Float32Array, n: number): Float32Array => {
      const x = new Float32Array(n * 256);
      const img = new Float64Array(784);
      for (let s = 0; s < n; s++) {
        for (let i = 0; i < 784; i++) img[i] = images[s * 784 + i] / 255;
        const small = resizeArea(deskew(img), 28, 16);
        for (let i = 0; i < 256; i++) x[s * 256 + i] = Math.min(1, Math.max(0, small[i]));
      }
      return x;
    };
    return {
      name: "mnist16",
      features: 256,
      classes: 10,
      description: "MNIST, moment-deskewed (bilinear), area-resized to 16x16, /255",
      train: { x: conv(ds.train.images, ds.train.n), labels: ds.train.labels, n: ds.train.n },
      test: { x: conv(ds.test.images, ds.test.n), labels: ds.test.labels, n: ds.test.n },
    };
  })();
  return mnist16;
}

/** A task by name. */
export function loadTask(name: string, opts: SyntheticTaskOptions = {}): Promise<WannTask> {
  if (name === "mnist16") return loadMnist16();
  if (name === "synthetic") return Promise.resolve(makeSyntheticTask(opts));
  throw new FiligreeError(`unknown WANN task "${name}" (have: ${WANN_TASKS.join(", ")})`);
}
