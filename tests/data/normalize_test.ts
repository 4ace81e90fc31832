import { FiligreeError } from "../../src/gpu/errors.ts";
import { loadMnist, subsetDataset } from "../../src/data/datasets.ts";
import {
  computeNormStats,
  featureAffine,
  NORM_MODES,
  normalizeRef,
  parseNormMode,
  sampleStats,
  standardScale,
  STD_FLOOR_FRACTION,
} from "../../src/data/normalize.ts";
import { assertClose, freshSeed, Rng } from "../../src/testing/mod.ts";

function assert(cond: unknown, msg: string): void {
  if (!cond) throw new Error(msg);
}

/** Exact reference for integer data: sums of values and squares are exact integers in float64. */
function exactStats(x: Uint8Array, n: number, F: number): { mean: number[]; std: number[] } {
  const mean: number[] = [], std: number[] = [];
  for (let f = 0; f < F; f++) {
    let s = 0, q = 0;
    for (let i = 0; i < n; i++) {
      const v = x[i * F + f];
      s += v;
      q += v * v;
    }
    // var = (n·q - s²) / n², with n·q - s² an exact integer below 2^53 for these sizes.
    mean.push(s / n);
    std.push(Math.sqrt((n * q - s * s) / (n * n)));
  }
  return { mean, std };
}

Deno.test("standard stats match an exact integer reference on MNIST (2000-sample subset)", async () => {
  const ds = subsetDataset(await loadMnist(), { train: 2000, seed: freshSeed() });
  const st = computeNormStats(ds.train.images, ds.train.n, 784, "standard");
  const ref = exactStats(ds.train.images as Uint8Array, ds.train.n, 784);
  assertClose(st.mean!, ref.mean, { rtol: 1e-13, atol: 1e-12, label: "mean" });
  assertClose(st.std!, ref.std, { rtol: 1e-10, atol: 1e-9, label: "std" });
  // MNIST has constant (all-zero) border pixels: their std is 0 and they normalize to exactly 0.
  const constant = ref.std.map((s, f) => (s === 0 ? f : -1)).filter((f) => f >= 0);
  assert(constant.length > 10, `expected constant border pixels, found ${constant.length}`);
  const y = normalizeRef(ds.train.images, 50, 784, st);
  for (const f of constant) {
    for (let s = 0; s < 50; s++) {
      assert(y[s * 784 + f] === 0, `constant feature ${f} -> ${y[s * 784 + f]}`);
    }
  }
  // The float32 affine the GPU uses: sub = mean, mul = 0 for a constant feature, else
  // 1/max(std, minStd) with minStd = 0.1 x the mean std of the non-constant features.
  const nonConst = ref.std.filter((x) => x > 1e-6);
  const minStd = 0.1 * nonConst.reduce((a, b) => a + b, 0) / nonConst.length;
  assertClose([st.minStd!], [minStd], { rtol: 1e-12, atol: 0, label: "minStd" });
  const aff = featureAffine(st);
  for (const f of [0, 300, 783, ...constant.slice(0, 3)]) {
    assert(aff[2 * f] === Math.fround(ref.mean[f]), `sub[${f}]`);
    const mul = ref.std[f] === 0 ? 0 : 1 / Math.max(ref.std[f], minStd);
    assert(aff[2 * f + 1] === Math.fround(mul), `mul[${f}] ${aff[2 * f + 1]} vs ${mul}`);
  }
});

Deno.test("standard and sample stats on f32 data match a naive float64 reference; normalized moments", () => {
  const rng = new Rng(freshSeed());
  const n = 257, F = 11;
  const x = new Float32Array(n * F);
  for (let i = 0; i < x.length; i++) x[i] = 3 * rng.normal(1)[0] + (i % F) - 5;
  for (let s = 0; s < n; s++) x[s * F + 4] = 2.5; // a constant feature
  const st = computeNormStats(x, n, F, "standard", 1e-6);
  const y = normalizeRef(x, n, F, st);
  for (let f = 0; f < F; f++) {
    let m = 0;
    for (let s = 0; s < n; s++) m += x[s * F + f];
    m /= n;
    let v = 0;
    for (let s = 0; s < n; s++) v += (x[s * F + f] - m) ** 2;
    assertClose([st.mean![f], st.std![f]], [m, Math.sqrt(v / n)], {
      rtol: 1e-12,
      atol: 1e-12,
      label: `feature ${f}`,
    });
    // After normalization: mean 0 and std 1 (0 and 0 for the constant feature).
    let ym = 0, yv = 0;
    for (let s = 0; s < n; s++) ym += y[s * F + f] / n;
    for (let s = 0; s < n; s++) yv += (y[s * F + f] - ym) ** 2 / n;
    assertClose([ym, Math.sqrt(yv)], [0, f === 4 ? 0 : 1], {
      rtol: 0,
      atol: 1e-9,
      label: `normalized feature ${f}`,
    });
  }
  const ps = sampleStats(x, n, F);
  const ys = normalizeRef(x, n, F, computeNormStats(x, n, F, "sample"));
  for (const s of [0, 100, 256]) {
    const row = Array.from(x.subarray(s * F, (s + 1) * F));
    const m = row.reduce((a, b) => a + b, 0) / F;
    const sd = Math.sqrt(row.reduce((a, b) => a + (b - m) ** 2, 0) / F);
    assertClose([ps.mean[s], ps.std[s]], [m, sd], {
      rtol: 1e-12,
      atol: 1e-12,
      label: `sample ${s}`,
    });
    assertClose(ys.subarray(s * F, (s + 1) * F), row.map((v) => (v - m) / sd), {
      rtol: 1e-12,
      atol: 1e-12,
      label: `sample ${s} values`,
    });
  }
  // A constant sample normalizes to zeros (std floored, x - mean = 0).
  const flat = new Uint8Array([7, 7, 7]);
  assert(
    normalizeRef(flat, 1, 3, computeNormStats(flat, 1, 3, "sample")).every((v) => v === 0),
    "constant sample",
  );
});

Deno.test("none/unit modes and argument errors", () => {
  const u8 = new Uint8Array([0, 51, 255]);
  assertClose(normalizeRef(u8, 1, 3, computeNormStats(u8, 1, 3, "unit")), [0, 0.2, 1], {
    rtol: 1e-15,
    atol: 0,
    label: "unit u8",
  });
  assertClose(normalizeRef(u8, 1, 3, computeNormStats(u8, 1, 3, "none")), [0, 51, 255], {
    rtol: 0,
    atol: 0,
    label: "none",
  });
  const f = new Float32Array([-1.5, 2]);
  assertClose(normalizeRef(f, 1, 2, computeNormStats(f, 1, 2, "unit")), [-1.5, 2], {
    rtol: 0,
    atol: 0,
    label: "unit f32",
  });
  assert(NORM_MODES.length === 4, "four modes");
  for (const bad of [() => parseNormMode("zscore"), () => computeNormStats(u8, 2, 3, "standard")]) {
    try {
      bad();
      throw new Error("expected an error");
    } catch (e) {
      assert(e instanceof FiligreeError, `FiligreeError expected, got ${e}`);
    }
  }
});

Deno.test("standard: features constant or nearly constant in the training split stay finite and sane in train and test", () => {
  const rng = new Rng(freshSeed());
  const n = 5000, F = 4;
  const train = new Uint8Array(n * F);
  for (let s = 0; s < n; s++) {
    train[s * F + 0] = 0; // constant (an MNIST border pixel)
    train[s * F + 1] = s === 17 ? 1 : 0; // lit in one training image, std ≈ 1/70
    train[s * F + 2] = Math.floor(rng.uniform(1, 0, 256)[0]); // an ordinary feature
    train[s * F + 3] = 9; // constant, nonzero
  }
  const st = computeNormStats(train, n, F, "standard");
  assert(standardScale(st, 0) === 0 && standardScale(st, 3) === 0, "constant features get mul 0");
  assert(
    Math.abs(st.minStd! - STD_FLOOR_FRACTION * (st.std![1] + st.std![2]) / 2) < 1e-12,
    `minStd ${st.minStd}`,
  );
  assert(standardScale(st, 1) === 1 / st.minStd!, "the nearly constant feature is floored");
  assert(standardScale(st, 2) === 1 / st.std![2], "an ordinary feature is not floored");
  // Test images with the constant features lit: those stay 0, everything stays bounded.
  const test = new Uint8Array([255, 255, 128, 0, 7, 0, 3, 200]);
  const y = normalizeRef(test, 2, F, st);
  assert(y.every(Number.isFinite), `non-finite ${Array.from(y)}`);
  assert(
    y[0] === 0 && y[3] === 0 && y[4] === 0 && y[7] === 0,
    `constant features ${Array.from(y)}`,
  );
  const bound = 255 / st.minStd!;
  assert(Math.max(...y.map(Math.abs)) <= bound, `|y| ${Math.max(...y.map(Math.abs))} > ${bound}`);
  // The ordinary feature is exactly standardized, as before.
  assert(Math.abs(y[2] - (128 - st.mean![2]) / st.std![2]) < 1e-12, "ordinary feature");
  // Training data: the ordinary feature still has mean 0 and std 1 after normalization.
  const yt = normalizeRef(train, n, F, st);
  let m = 0, v = 0;
  for (let s = 0; s < n; s++) m += yt[s * F + 2] / n;
  for (let s = 0; s < n; s++) v += (yt[s * F + 2] - m) ** 2 / n;
  assertClose([m, Math.sqrt(v)], [0, 1], { rtol: 0, atol: 1e-9, label: "moments" });
});

Deno.test("standard on a 5,000-image MNIST subset: the test split stays finite and within the training range bound", async () => {
  const ds = subsetDataset(await loadMnist(), { train: 5000, seed: freshSeed() });
  const st = computeNormStats(ds.train.images, ds.train.n, 784, "standard");
  const maxAbs = (x: Float64Array) => x.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  const yTrain = normalizeRef(ds.train.images, ds.train.n, 784, st);
  const yTest = normalizeRef(ds.test.images, ds.test.n, 784, st);
  assert(yTest.every(Number.isFinite), "non-finite test value");
  // Any value is at most 255 / minStd away from 0; before the fix a test pixel constant in the
  // training split reached (255 - 0) / 1e-6 = 2.5e8.
  const bound = 255 / st.minStd!;
  assert(bound < 100, `bound ${bound}`);
  assert(maxAbs(yTest) <= bound && maxAbs(yTrain) <= bound, `${maxAbs(yTest)} ${maxAbs(yTrain)}`);
});
