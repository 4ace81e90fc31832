/**
 * The dataset on the GPU and batch assembly. {@link GpuDataset.create} uploads a {@link Dataset}
 * once (u8 pixels packed 4 per u32: MNIST's 60000x784 training images are 47 MB; f32 data as
 * f32), plus labels and the normalization parameters. Each batch is one dispatch of
 * shaders/data.wgsl that gathers the batch's samples through the epoch's permutation, normalizes
 * them and writes the feature-major batch `x[features][ld]` (`ld = roundUp4(size)`, padding
 * columns zero) and `labels[0..size)` (u32).
 *
 * Order: training batches follow a seeded permutation per epoch, generated on the CPU by
 * {@link GpuDataset.epochOrder} and uploaded once per epoch; test batches use the fixed order
 * `0..n-1`. The last batch of a split is **smaller** (`size = n - index·batchSize`, and its `x`
 * uses `ld = roundUp4(size)`) unless `dropLast` is set, which drops a partial last training
 * batch (the test split is never dropped).
 *
 * Two permutation buffers alternate by epoch parity, so the batches of epoch `e` may still be
 * recorded and unsubmitted while `epochOrder(e + 1)` uploads the next order; `epochOrder(e + 2)`
 * throws if batches of epoch `e` were recorded on a recorder that has not been submitted since.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/mod.ts";
 * import { GpuDataset } from "./loader.ts";
 * import { makeSynthetic } from "./synthetic.ts";
 * const gpu = await getGpu();
 * const data = GpuDataset.create(gpu, makeSynthetic({ train: 100, test: 20 }), { batchSize: 32, norm: "standard" });
 * data.epochOrder(0, 42);
 * const rec = gpu.recorder();
 * for (let b = 0; b < data.batchCount(); b++) {
 *   const { x, labels, size } = data.batch(rec, b); // x: [16][roundUp4(size)], labels: u32[size]
 *   // ... record the training step on x, labels, size
 * }
 * rec.submit();
 * ```
 * @module
 */
import code from "../../shaders/data.wgsl" with { type: "text" };
import {
  defineKernel,
  f32,
  FiligreeError,
  type Gpu,
  grid,
  type KernelDef,
  packParams,
  type Recorder,
  roundUp4,
  type Tensor,
} from "../gpu/mod.ts";
import type { Dataset, Split } from "./datasets.ts";
import {
  computeNormStats,
  DEFAULT_STD_EPS,
  featureAffine,
  type NormMode,
  type NormStats,
  sampleAffine,
} from "./normalize.ts";
import { permutation } from "./random.ts";

const BINDINGS = (images: string) =>
  [
    ["p", "uniform"],
    [images, "read"],
    ["labels_in", "read"],
    ["order", "read"],
    ["fstat", "read"],
    ["sstat", "read"],
    ["x", "read_write"],
    ["labels", "read_write"],
  ] as const;

/** Gather + normalize for u8 datasets (pixels packed 4 per u32). */
export const GATHER_U8: KernelDef = defineKernel({
  shader: "data.wgsl",
  code,
  entry: "gather_u8",
  bindings: BINDINGS("images_u8"),
  textureInputs: true,
});
/**
 * Gather + normalize for u8 datasets whose feature count is a multiple of 4: one invocation
 * writes 4 features x 4 samples from one word per sample (MNIST: 784 features).
 */
export const GATHER_U8X4: KernelDef = defineKernel({
  shader: "data.wgsl",
  code,
  entry: "gather_u8x4",
  bindings: BINDINGS("images_u8"),
  textureInputs: true,
});
/** Gather + normalize for f32 datasets. */
export const GATHER_F32: KernelDef = defineKernel({
  shader: "data.wgsl",
  code,
  entry: "gather_f32",
  bindings: BINDINGS("images_f32"),
  textureInputs: true,
});
/**
 * Gather + normalize for f32 datasets whose feature count is a multiple of 4: one invocation
 * writes 4 features x 4 samples from one vec4 load per sample.
 */
export const GATHER_F32X4: KernelDef = defineKernel({
  shader: "data.wgsl",
  code,
  entry: "gather_f32x4",
  bindings: BINDINGS("images_f32x4"),
  textureInputs: true,
});

const MODE_ID: Record<NormMode, number> = { none: 0, unit: 0, standard: 1, sample: 2 };

/** A split of a dataset. */
export type SplitName = "train" | "test";

/** Options of {@link GpuDataset.create}. */
export interface GpuDatasetOptions {
  /** Samples per batch (the last batch may be smaller, see `dropLast`). */
  batchSize: number;
  /** Input normalization (default "unit"). */
  norm?: NormMode;
  /** Floor of standard deviations for "standard"/"sample" (default {@link DEFAULT_STD_EPS}). */
  eps?: number;
  /** Drop a partial last training batch instead of emitting a smaller one (default false). */
  dropLast?: boolean;
  /** Workgroup size of the gather kernel (an `override`; default 64). */
  wg?: number;
  /**
   * Data with a feature count that is a multiple of 4: gather 4 x 4 blocks (default true;
   * false keeps the one-value-per-load kernel, for tests and benchmarks).
   */
  blocks?: boolean;
}

/** Where a batch is written: `x` holds at least `features·roundUp4(size)` f32, `labels` `size` u32. */
export interface BatchOutputs {
  /** Feature-major f32 batch `[features][ld]`. */
  x: Tensor;
  /** u32 labels of the batch's samples. */
  labels: Tensor;
}

/** One assembled batch (valid once the recorder's work has run). */
export interface Batch extends BatchOutputs {
  /** Samples in this batch. */
  size: number;
  /** Row stride of `x`: roundUp4(size). */
  ld: number;
  /** Position of the first sample in the split's order. */
  offset: number;
}

interface GpuSplit {
  n: number;
  images: Tensor;
  labels: Tensor;
  sstat: Tensor;
}

function uploadSplit(
  gpu: Gpu,
  name: string,
  which: string,
  s: Split,
  features: number,
  stats: NormStats,
): GpuSplit {
  if (s.n * features >= 2 ** 32) {
    throw new FiligreeError(
      `${name} ${which}: ${s.n} x ${features} values exceed the u32 index range of the gather`,
    );
  }
  let images: Tensor;
  if (s.images instanceof Uint8Array) {
    const words = new Uint32Array(Math.ceil(s.images.length / 4));
    new Uint8Array(words.buffer).set(s.images);
    images = gpu.tensor("u32", [words.length], {
      data: words,
      label: `${name} ${which} images (u8x4)`,
    });
  } else {
    images = gpu.tensor("f32", [s.images.length], {
      data: s.images,
      label: `${name} ${which} images`,
    });
  }
  const labels = gpu.tensor("u32", [s.n], {
    data: Uint32Array.from(s.labels),
    label: `${name} ${which} labels`,
  });
  const sstat = stats.mode === "sample"
    ? gpu.tensor("f32", [2 * s.n], {
      data: sampleAffine(s.images, s.n, features, stats.eps),
      label: `${name} ${which} sample stats`,
    })
    : gpu.tensor("f32", [4], { label: "unused sample stats" });
  return { n: s.n, images, labels, sstat };
}

/** A dataset resident on the GPU, assembling normalized feature-major batches. */
export class GpuDataset {
  /** Normalization statistics (of the training split). */
  readonly stats: NormStats;
  /** Dataset name. */
  readonly name: string;
  /** Input features per sample (rows of `x`). */
  readonly features: number;
  /** Number of classes. */
  readonly classes: number;
  /** Samples per full batch. */
  readonly batchSize: number;
  /** Whether a partial last training batch is dropped. */
  readonly dropLast: boolean;
  /** The device holding the data. */
  readonly gpu: Gpu;
  #splits: Record<SplitName, GpuSplit>;
  #fstat: Tensor;
  #orders: [Tensor, Tensor];
  #slot: [
    { epoch: number; seed: number; order: Uint32Array } | null,
    { epoch: number; seed: number; order: Uint32Array } | null,
  ] = [
    null,
    null,
  ];
  #pending: [Map<Recorder, GPUCommandEncoder>, Map<Recorder, GPUCommandEncoder>] = [
    new Map(),
    new Map(),
  ];
  #epoch: number | undefined;
  #out: Partial<Record<SplitName, BatchOutputs>> = {};
  #kernel: KernelDef;
  /** Values of x one gather invocation writes (4, or 16 for 4 x 4 blocks). */
  #perInvocation: number;
  #overrides: Record<string, number>;
  #destroyed = false;

  private constructor(gpu: Gpu, ds: Dataset, opts: GpuDatasetOptions, stats: NormStats) {
    this.gpu = gpu;
    this.stats = stats;
    this.name = ds.name;
    this.features = ds.features;
    this.classes = ds.classes;
    this.batchSize = opts.batchSize;
    this.dropLast = opts.dropLast ?? false;
    const wg = opts.wg ?? 64;
    gpu.checkLimit("maxComputeInvocationsPerWorkgroup", wg, "data.wgsl gather workgroup");
    gpu.checkLimit("maxComputeWorkgroupSizeX", wg, "data.wgsl gather workgroup");
    this.#overrides = { MODE: MODE_ID[stats.mode], WG: wg };
    const blocks = ds.features % 4 === 0 && opts.blocks !== false;
    this.#kernel = !(ds.train.images instanceof Uint8Array)
      ? (blocks ? GATHER_F32X4 : GATHER_F32)
      : blocks
      ? GATHER_U8X4
      : GATHER_U8;
    this.#perInvocation = this.#kernel === GATHER_U8X4 || this.#kernel === GATHER_F32X4 ? 16 : 4;
    if ((ds.test.images instanceof Uint8Array) !== (ds.train.images instanceof Uint8Array)) {
      throw new FiligreeError(`${ds.name}: train and test images must have the same element type`);
    }
    this.#splits = {
      train: uploadSplit(gpu, ds.name, "train", ds.train, ds.features, stats),
      test: uploadSplit(gpu, ds.name, "test", ds.test, ds.features, stats),
    };
    this.#fstat = gpu.tensor("f32", [2 * ds.features], {
      data: featureAffine(stats),
      label: `${ds.name} feature stats`,
    });
    const n = Math.max(1, ds.train.n);
    this.#orders = [
      gpu.tensor("u32", [n], { label: `${ds.name} order (even epochs)` }),
      gpu.tensor("u32", [n], { label: `${ds.name} order (odd epochs)` }),
    ];
  }

  /**
   * Uploads `ds` and computes the normalization statistics from its training split.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { getGpu } from "../gpu/mod.ts";
   * import { loadMnist } from "./datasets.ts";
   * import { GpuDataset } from "./loader.ts";
   * const data = GpuDataset.create(await getGpu(), await loadMnist(), { batchSize: 128, norm: "unit" });
   * assert.deepEqual(data.batchCount("train"), 469);
   * assert.deepEqual(data.batchCount("test"), 79);
   * ```
   */
  static create(gpu: Gpu, ds: Dataset, opts: GpuDatasetOptions): GpuDataset {
    const b = opts.batchSize;
    if (!Number.isInteger(b) || b < 1) {
      throw new FiligreeError(`batch size must be a positive integer, got ${b}`);
    }
    const stats = computeNormStats(
      ds.train.images,
      ds.train.n,
      ds.features,
      opts.norm ?? "unit",
      opts.eps ?? DEFAULT_STD_EPS,
    );
    return new GpuDataset(gpu, ds, opts, stats);
  }

  /** Samples in a split. */
  size(split: SplitName = "train"): number {
    return this.#splits[split].n;
  }

  /** Batches per pass over a split (a partial last batch counts unless `dropLast` on train). */
  batchCount(split: SplitName = "train"): number {
    const n = this.#splits[split].n;
    return split === "train" && this.dropLast
      ? Math.floor(n / this.batchSize)
      : Math.ceil(n / this.batchSize);
  }

  /** The epoch whose order training batches use now (undefined before {@link epochOrder}). */
  get epoch(): number | undefined {
    return this.#epoch;
  }

  /**
   * Makes epoch `epoch` current: computes its training order `permutation(n, seed, epoch)` (see
   * random.ts; same arguments, same order) and uploads it (queued before the next submit).
   * Returns the order.
   */
  epochOrder(epoch: number, seed: number): Uint32Array {
    this.#alive();
    if (!Number.isInteger(epoch) || epoch < 0) {
      throw new FiligreeError(`epoch must be an integer >= 0, got ${epoch}`);
    }
    const slot = epoch & 1;
    const cur = this.#slot[slot];
    if (cur && cur.epoch === epoch && cur.seed === seed) {
      this.#epoch = epoch;
      return cur.order;
    }
    for (const [rec, enc] of this.#pending[slot]) {
      if (rec.encoder === enc) {
        throw new FiligreeError(
          `epochOrder(${epoch}): training batches of epoch ${cur?.epoch} are recorded on recorder "${rec.label}" ` +
            `but not submitted; submit it before starting epoch ${epoch}`,
        );
      }
    }
    this.#pending[slot].clear();
    const order = permutation(this.#splits.train.n, seed, epoch);
    if (order.length) this.gpu.write(this.#orders[slot], order);
    this.#slot[slot] = { epoch, seed, order };
    this.#epoch = epoch;
    return order;
  }

  /** The default output tensors of a split (allocated on first use, reused by every batch). */
  outputs(split: SplitName = "train"): BatchOutputs {
    this.#alive();
    let o = this.#out[split];
    if (!o) {
      const ld = roundUp4(this.batchSize);
      o = {
        x: this.gpu.tensor("f32", [this.features, ld], { label: `${this.name} ${split} batch x` }),
        labels: this.gpu.tensor("u32", [this.batchSize], {
          label: `${this.name} ${split} batch labels`,
        }),
      };
      this.#out[split] = o;
    }
    return o;
  }

  /**
   * Records the assembly of batch `index` of a split into `rec`: training batches follow the
   * current epoch's order, test batches the fixed order. Writes into `out` (default
   * {@link outputs}: shared by all batches of the split, so consume a batch before recording the
   * next one into the same tensors — recorded work runs in order).
   */
  batch(rec: Recorder, index: number, opts: { split?: SplitName; out?: BatchOutputs } = {}): Batch {
    this.#alive();
    const split = opts.split ?? "train";
    const s = this.#splits[split];
    const count = this.batchCount(split);
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new FiligreeError(
        `${this.name} ${split}: batch ${index} out of range (0..${count - 1})`,
      );
    }
    const offset = index * this.batchSize;
    const size = Math.min(this.batchSize, s.n - offset);
    const ld = roundUp4(size);
    const out = opts.out ?? this.outputs(split);
    if (out.x.size < this.features * ld || out.x.dtype !== "f32") {
      throw new FiligreeError(
        `batch x: tensor ${out.x.label} (${out.x.dtype}, ${out.x.size}) needs f32 >= ${
          this.features * ld
        }`,
      );
    }
    if (out.labels.size < size || out.labels.dtype !== "u32") {
      throw new FiligreeError(
        `batch labels: tensor ${out.labels.label} (${out.labels.dtype}, ${out.labels.size}) needs u32 >= ${size}`,
      );
    }
    let order: Tensor;
    if (split === "train") {
      if (this.#epoch === undefined) {
        throw new FiligreeError(
          `${this.name}: call epochOrder(epoch, seed) before recording training batches`,
        );
      }
      const slot = this.#epoch & 1;
      order = this.#orders[slot];
      this.#pending[slot].set(rec, rec.encoder);
    } else {
      order = this.#orders[0]; // bound but unread (ordered == 1)
    }
    const p = this.gpu.uniform(
      packParams([
        this.features,
        size,
        ld,
        offset,
        split === "test" ? 1 : 0,
        f32(this.stats.scale),
      ]),
    );
    const k = this.gpu.kernel(this.#kernel, this.#overrides);
    const wg = this.#overrides.WG;
    rec.dispatch(k, {
      p,
      [this.#kernel.bindings[1][0]]: s.images,
      labels_in: s.labels,
      order,
      fstat: this.#fstat,
      sstat: s.sstat,
      x: out.x,
      labels: out.labels,
    }, grid(this.gpu, Math.ceil((this.features * ld) / this.#perInvocation / wg)));
    return { x: out.x, labels: out.labels, size, ld, offset };
  }

  /** {@link batch} of the test split (fixed order `0..n-1`). */
  testBatch(rec: Recorder, index: number, out?: BatchOutputs): Batch {
    return this.batch(rec, index, { split: "test", out });
  }

  /** Frees the dataset's GPU buffers (the default outputs go back to the pool); unusable afterwards. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const own: Tensor[] = [this.#fstat, ...this.#orders];
    for (const s of Object.values(this.#splits)) own.push(s.images, s.labels, s.sstat);
    for (const t of own) t.buffer.destroy();
    for (const o of Object.values(this.#out)) {
      this.gpu.release(o.x);
      this.gpu.release(o.labels);
    }
  }

  #alive(): void {
    if (this.#destroyed) throw new FiligreeError(`${this.name}: GpuDataset used after destroy()`);
  }
}
