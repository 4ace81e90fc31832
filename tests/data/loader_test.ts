import { FiligreeError } from "../../src/gpu/errors.ts";
import type { Dataset, Split } from "../../src/data/datasets.ts";
import { loadMnist } from "../../src/data/datasets.ts";
import { GpuDataset } from "../../src/data/loader.ts";
import { gatherRef } from "../../src/data/loader_ref.ts";
import { NORM_MODES } from "../../src/data/normalize.ts";
import { permutation } from "../../src/data/random.ts";
import { assertClose, fromPadded, gpuTest, type Rng } from "../../src/testing/mod.ts";
import type { Gpu } from "../../src/gpu/mod.ts";

function assert(cond: unknown, msg: string): void {
  if (!cond) throw new Error(msg);
}
function throwsFiligree(fn: () => unknown, includes: string): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof FiligreeError)) throw e;
    if (!e.message.includes(includes)) {
      throw new Error(`message "${e.message}" lacks "${includes}"`);
    }
    return;
  }
  throw new Error(`expected a FiligreeError containing "${includes}"`);
}

function randomSplit(rng: Rng, n: number, F: number, classes: number, dtype: "u8" | "f32"): Split {
  const images = dtype === "u8" ? new Uint8Array(n * F) : new Float32Array(n * F);
  for (let i = 0; i < images.length; i++) {
    const f = i % F;
    // Feature 2 is constant; the others have per-feature offsets and spreads.
    images[i] = f === 2
      ? 17
      : dtype === "u8"
      ? rng.int(256)
      : Math.fround(f - 6 + (1 + f) * rng.normal(1)[0]);
  }
  if (n > 3) { for (let f = 0; f < F; f++) images[3 * F + f] = dtype === "u8" ? 200 : 1.25; // a constant sample
   }
  const labels = new Uint8Array(n).map(() => rng.int(classes));
  return { images, labels, n };
}

function randomDataset(
  rng: Rng,
  nTrain: number,
  nTest: number,
  F: number,
  dtype: "u8" | "f32",
): Dataset {
  return {
    name: `random-${dtype}`,
    features: F,
    classes: 7,
    shape: [F],
    source: "test",
    train: randomSplit(rng, nTrain, F, 7, dtype),
    test: randomSplit(rng, nTest, F, 7, dtype),
  };
}

/** Records one batch into poisoned outputs, runs it, and compares with the float64 reference. */
async function checkBatch(
  gpu: Gpu,
  data: GpuDataset,
  ds: Dataset,
  split: "train" | "test",
  index: number,
  order: Uint32Array | null,
  tol: { rtol: number; atol: number },
): Promise<void> {
  const out = data.outputs(split);
  gpu.poison(out.x);
  gpu.poison(out.labels);
  const rec = gpu.recorder();
  const b = data.batch(rec, index, { split });
  rec.submit();
  const label = `${ds.name} ${data.stats.mode} ${split} batch ${index} (size ${b.size})`;
  const want = gatherRef(ds[split], ds.features, data.stats, order, b.offset, b.size);
  const gotX = await gpu.read(b.x);
  const gotL = await gpu.read(b.labels);
  // fromPadded throws unless padding columns are exactly 0 (poison would be NaN).
  const x = fromPadded(gotX.subarray(0, ds.features * b.ld), ds.features, b.size, label);
  assertClose(x, fromPadded(want.x, ds.features, b.size), { ...tol, label });
  assert(
    Array.from(gotL.subarray(0, b.size)).join() === Array.from(want.labels).join(),
    `${label}: labels`,
  );
}

gpuTest(
  "gather matches the float64 reference in every normalization mode (u8 and f32 data)",
  async (gpu, rng) => {
    // 13 features (not a multiple of 4: u8 samples straddle words), batch 7 (not a multiple of 4),
    // 37 training samples (last batch has 2), 11 test samples (last batch has 4).
    // 12 features: the 4 x 4 block gathers (gather_u8x4, gather_f32x4) and the per-value ones.
    const sets = [
      { dtype: "u8", F: 13, blocks: true },
      { dtype: "f32", F: 13, blocks: true },
      { dtype: "u8", F: 12, blocks: true },
      { dtype: "u8", F: 12, blocks: false },
      { dtype: "f32", F: 12, blocks: true },
      { dtype: "f32", F: 12, blocks: false },
    ] as const;
    for (const { dtype, F, blocks } of sets) {
      const ds = randomDataset(rng, 37, 11, F, dtype);
      for (const norm of NORM_MODES) {
        const data = GpuDataset.create(gpu, ds, { batchSize: 7, norm, blocks });
        // none/unit: one f32 multiply of an exact value; standard/sample: f32 stats and arithmetic.
        const tol = norm === "none" || norm === "unit"
          ? { rtol: 1e-7, atol: 0 }
          : { rtol: 2e-6, atol: 2e-6 };
        assert(data.batchCount("train") === 6 && data.batchCount("test") === 2, "batch counts");
        const seed = rng.int(2 ** 31);
        const order = data.epochOrder(1, seed);
        for (const i of [0, 3, 5]) await checkBatch(gpu, data, ds, "train", i, order, tol);
        for (const i of [0, 1]) await checkBatch(gpu, data, ds, "test", i, null, tol);
        data.destroy();
      }
    }
  },
);

gpuTest(
  "gather with a 2-D dispatch grid (workgroup size 1, 67,500 workgroups; both u8 kernels)",
  async (gpu, rng) => {
    // Per-value kernel: 300 features x 900 / 4 invocations; 4 x 4 blocks: 1200 x 900 / 16.
    for (const [F, blocks] of [[300, false], [1200, true]] as const) {
      const ds = randomDataset(rng, 1000, 5, F, "u8");
      const data = GpuDataset.create(gpu, ds, { batchSize: 900, norm: "standard", wg: 1, blocks });
      const invocations = F * 900 / (blocks ? 16 : 4);
      assert(invocations > gpu.limits.maxComputeWorkgroupsPerDimension, "needs a 2-D grid");
      const order = data.epochOrder(0, rng.int(1000));
      await checkBatch(gpu, data, ds, "train", 0, order, { rtol: 2e-6, atol: 2e-6 });
      await checkBatch(gpu, data, ds, "train", 1, order, { rtol: 2e-6, atol: 2e-6 }); // size 100
      data.destroy();
    }
  },
);

gpuTest(
  "MNIST on the GPU: full-size upload, shuffled and last partial batches",
  async (gpu, rng) => {
    const ds = await loadMnist();
    const data = GpuDataset.create(gpu, ds, { batchSize: 128, norm: "standard" });
    assert(
      data.batchCount("train") === 469 && data.batchCount("test") === 79,
      "MNIST batch counts",
    );
    const order = data.epochOrder(3, rng.int(2 ** 31));
    const tol = { rtol: 2e-6, atol: 2e-5 };
    await checkBatch(gpu, data, ds, "train", rng.int(468), order, tol);
    await checkBatch(gpu, data, ds, "train", 468, order, tol); // 60000 - 468·128 = 96 samples
    await checkBatch(gpu, data, ds, "test", 78, null, tol); // 16 samples
    data.destroy();
  },
);

gpuTest("shuffle determinism: same seed same order, epochs and seeds differ", (gpu, rng) => {
  const seed = rng.int(2 ** 31);
  const n = 1001;
  const a = permutation(n, seed, 0);
  assert(a.join() === permutation(n, seed, 0).join(), "same seed and epoch, same order");
  assert([...a].sort((x, y) => x - y).every((v, i) => v === i), "a permutation of 0..n-1");
  const orders = [0, 1, 2, 3].map((e) => permutation(n, seed, e).join());
  assert(new Set(orders).size === 4, "epochs give different orders");
  assert(permutation(n, seed + 1, 0).join() !== a.join(), "seeds give different orders");
  // Not close to the identity (a real shuffle): few fixed points.
  assert(a.filter((v, i) => v === i).length < 10, "shuffled");
  const ds = randomDataset(rng, n, 3, 5, "u8");
  const data = GpuDataset.create(gpu, ds, { batchSize: 100 });
  assert(
    data.epochOrder(0, seed).join() === a.join(),
    "GpuDataset uses permutation(n, seed, epoch)",
  );
  data.destroy();
});

gpuTest(
  "batch bookkeeping: dropLast, range errors, no recompiles, unsubmitted-epoch guard",
  async (gpu, rng) => {
    const ds = randomDataset(rng, 37, 11, 13, "f32");
    const data = GpuDataset.create(gpu, ds, { batchSize: 8, norm: "sample", dropLast: true });
    assert(
      data.batchCount("train") === 4 && data.batchCount("test") === 2,
      "dropLast drops only train's partial batch",
    );
    const rec = gpu.recorder();
    throwsFiligree(() => data.batch(rec, 0), "call epochOrder(epoch, seed) before");
    data.epochOrder(0, 1);
    throwsFiligree(() => data.batch(rec, 4), "batch 4 out of range (0..3)");
    const before = gpu.pipelineCount;
    data.batch(rec, 0);
    data.testBatch(rec, 1); // another size (3): same pipeline
    assert(gpu.pipelineCount - before <= 1, "one pipeline for all batch sizes");
    data.epochOrder(1, 1); // other slot: fine while epoch 0 is unsubmitted
    data.batch(rec, 1);
    throwsFiligree(() => data.epochOrder(2, 1), "not submitted");
    rec.submit();
    data.epochOrder(2, 1);
    await gpu.sync();
    throwsFiligree(
      () => GpuDataset.create(gpu, ds, { batchSize: 0 }),
      "batch size must be a positive integer",
    );
    const small = gpu.tensor("f32", [4]);
    throwsFiligree(() => data.batch(rec, 0, { out: { x: small, labels: small } }), "needs f32 >=");
    data.destroy();
    throwsFiligree(() => data.epochOrder(3, 1), "used after destroy");
  },
);
