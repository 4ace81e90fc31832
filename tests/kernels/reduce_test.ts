import { FiligreeError, type Gpu, roundUp4, type Tensor } from "../../src/gpu/mod.ts";
import {
  accumulateSum,
  argmax,
  countCorrect,
  MAX_CLASSES,
  mean,
  sum,
  SUM_DEFAULTS,
  sumLevels,
  type SumTuning,
} from "../../src/kernels/reduce.ts";
import {
  argmaxRef,
  countCorrectRef,
  meanRef,
  sumAbsRef,
  sumRef,
} from "../../src/kernels/reduce_ref.ts";
import { asF32, assertClose, gpuTest, type Rng, toPadded } from "../../src/testing/mod.ts";

// Sizes: 1, primes, non-multiples of the vec4 and of the 16,384 elements one workgroup sums;
// 4,194,247 (prime) > 65,535 x 64 elements (two levels).
const SIZES = [1, 2, 5, 97, 4099, 65_537, 4_194_247];

/**
 * Tolerance of an f32 sum: every partial sum is rounded once per addition on its path, at most
 * `depth` additions (ITEMS sequential + 2 for the vec4 lanes + log2(WG) tree, per level, + the
 * scale), each with relative error 2⁻²⁴ of a partial bounded by Σ|x|.
 */
function sumDepth(n: number, tune: SumTuning = {}): number {
  const wg = tune.wg ?? SUM_DEFAULTS.wg;
  const items = tune.items ?? SUM_DEFAULTS.items;
  return sumLevels(n, tune) * (items + 2 + Math.log2(wg)) + 2;
}
function sumTol(x: ArrayLike<number>, n: number, tune: SumTuning = {}) {
  return { rtol: 0, atol: sumDepth(n, tune) * 2 ** -24 * sumAbsRef(x, n) + 1e-30 };
}

/** An f32 input tensor of `n` values plus `extra` NaN elements (and NaN buffer padding). */
function input(gpu: Gpu, x: Float64Array, extra = 0): Tensor {
  const t = gpu.tensor("f32", [x.length + extra]);
  gpu.poison(t);
  gpu.write(t, Float32Array.from(x));
  return t;
}

/** Integers in [-3, 3]: every partial sum of up to 4.2M of them is exact in f32. */
function smallInts(rng: Rng, n: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.int(7) - 3;
  return a;
}

async function runSum(gpu: Gpu, x: Tensor, n: number, tune?: SumTuning) {
  const out = gpu.tensor("f32", [4]);
  gpu.poison(out);
  const rec = gpu.recorder();
  sum(rec, { x, n, out, index: 2, tune });
  rec.submit();
  const got = await gpu.read(out);
  for (const k of [0, 1, 3]) {
    if (!Number.isNaN(got[k])) throw new Error(`sum n=${n}: out[${k}] was written (${got[k]})`);
  }
  gpu.release(out);
  return got[2];
}

gpuTest(
  "sum: exact on small integers (no element dropped or doubled), all sizes",
  async (gpu, rng) => {
    for (const n of SIZES) {
      const x = smallInts(rng, n);
      const tx = input(gpu, x, 5); // elements past n are NaN and must be ignored
      const got = await runSum(gpu, tx, n);
      assertClose([got], [sumRef(x)], { rtol: 0, atol: 0, label: `sum ints n=${n}` });
      gpu.release(tx);
    }
  },
);

gpuTest(
  "sum / mean of normals match float64 within the f32 tree bound; bit-reproducible",
  async (gpu, rng) => {
    for (const n of SIZES) {
      const x = asF32(rng.normal(n, 3));
      const tx = input(gpu, x);
      const got = await runSum(gpu, tx, n);
      assertClose([got], [sumRef(x)], { ...sumTol(x, n), label: `sum n=${n}` });
      const again = await runSum(gpu, tx, n);
      if (!Object.is(again, got)) {
        throw new Error(
          `sum n=${n} not reproducible: ${got} then ${again}`,
        );
      }
      const out = gpu.tensor("f32", [1]);
      gpu.poison(out);
      const rec = gpu.recorder();
      mean(rec, { x: tx, n, out });
      rec.submit();
      const tol = sumTol(x, n);
      assertClose(await gpu.read(out), [meanRef(x)], {
        rtol: 2 ** -22,
        atol: tol.atol / n,
        label: `mean n=${n}`,
      });
      gpu.release(tx);
      gpu.release(out);
    }
  },
);

gpuTest("sum with tiny workgroups: 65,536 workgroups (2-D grid), 5 levels", async (gpu, rng) => {
  const tune = { wg: 4, items: 1 }; // 16 elements per workgroup
  const n = 1_048_571; // prime; ceil(n / 16) = 65,536 > 65,535
  if (sumLevels(n, tune) !== 5) throw new Error(`levels ${sumLevels(n, tune)}`);
  const x = smallInts(rng, n);
  const tx = input(gpu, x, 1);
  assertClose([await runSum(gpu, tx, n, tune)], [sumRef(x)], {
    rtol: 0,
    atol: 0,
    label: "sum 2-D grid",
  });
  gpu.release(tx);
});

gpuTest("sum of zero elements is 0; bad arguments throw FiligreeError", async (gpu) => {
  const tx = input(gpu, new Float64Array([1, 2, 3]));
  assertClose([await runSum(gpu, tx, 0)], [0], { rtol: 0, atol: 0, label: "sum n=0" });
  const out = gpu.tensor("f32", [1]);
  const rec = gpu.recorder();
  const expectThrow = (fn: () => void, text: string) => {
    try {
      fn();
    } catch (e) {
      if (e instanceof FiligreeError && e.message.includes(text)) return;
      throw new Error(`expected FiligreeError "${text}", got ${e}`);
    }
    throw new Error(`expected FiligreeError "${text}"`);
  };
  expectThrow(() => sum(rec, { x: tx, n: 4, out }), "needs 4");
  expectThrow(() => sum(rec, { x: tx, out, index: 1 }), "needs 2");
  expectThrow(() => sum(rec, { x: tx, out: tx }), "same buffer");
  expectThrow(() => sum(rec, { x: tx, out, tune: { wg: 48 } }), "power of two");
  expectThrow(() => mean(rec, { x: tx, n: 0, out }), "at least one");
  const logits = gpu.tensor("f32", [MAX_CLASSES + 1, 4]);
  const pred = gpu.tensor("u32", [1]);
  expectThrow(
    () => argmax(rec, { logits, classes: MAX_CLASSES + 1, batch: 1, pred }),
    "loop bound",
  );
});

gpuTest("accumulateSum adds each step's loss sum into an epoch accumulator", async (gpu, rng) => {
  const acc = gpu.tensor("f32", [3], { zero: true });
  const batches = [1, 128, 37, 4099, 5];
  const scale = 0.5;
  let want = 0;
  let sumAbs = 0;
  const tensors: Tensor[] = [];
  const rec = gpu.recorder();
  for (const b of batches) {
    const loss = asF32(rng.uniform(b, 0, 3));
    const t = input(gpu, loss, 3);
    tensors.push(t);
    accumulateSum(rec, { x: t, n: b, acc, index: 1, scale });
    want += scale * sumRef(loss);
    sumAbs += scale * sumAbsRef(loss);
  }
  rec.submit();
  const got = await gpu.read(acc);
  // Per step: the sum's bound; plus one rounding of the accumulator (≤ total) per step.
  const atol = (batches.length + sumDepth(Math.max(...batches))) * 2 ** -24 * sumAbs;
  assertClose(got, [0, want, 0], { rtol: 0, atol, label: "accumulateSum" });
  for (const t of [acc, ...tensors]) gpu.release(t);
});

/** Logits with many ties (values from a small set) or continuous values. */
function logitsData(rng: Rng, classes: number, batch: number, ties: boolean): Float64Array {
  if (!ties) return asF32(rng.normal(classes * batch));
  const a = new Float64Array(classes * batch);
  for (let i = 0; i < a.length; i++) a[i] = rng.int(3) - 1;
  return a;
}

// [classes, batch, ties]: 1 class, 1 sample, primes, batch not a multiple of 4 or of 64 x 4.
const ARG_SHAPES: [number, number, boolean][] = [
  [1, 1, false],
  [1, 5, true],
  [10, 1, true],
  [10, 7, false],
  [3, 130, true],
  [97, 33, false],
  [2, 4099, true],
  [10, 1031, false],
];

gpuTest("argmax matches the reference (ties: lowest index), padding ignored", async (gpu, rng) => {
  for (const [classes, batch, ties] of ARG_SHAPES) {
    const x = logitsData(rng, classes, batch, ties);
    const padded = toPadded(x, classes, batch);
    for (let c = 0; c < classes; c++) {
      for (let b = batch; b < roundUp4(batch); b++) padded[c * roundUp4(batch) + b] = 1e30;
    }
    const tl = gpu.tensor("f32", [classes, roundUp4(batch)], { data: padded });
    const tp = gpu.tensor("u32", [batch + 1]);
    gpu.poison(tp);
    const rec = gpu.recorder();
    argmax(rec, { logits: tl, classes, batch, pred: tp });
    rec.submit();
    const got = await gpu.read(tp);
    const want = argmaxRef(x, classes, batch);
    assertClose(got.subarray(0, batch), want, {
      rtol: 0,
      atol: 0,
      label: `argmax ${classes}x${batch}`,
    });
    if (got[batch] !== 0xffffffff) throw new Error(`argmax ${classes}x${batch}: wrote past batch`);
    gpu.release(tl);
    gpu.release(tp);
  }
});

gpuTest("argmax: NaN never wins after class 0; -Infinity rows handled", async (gpu) => {
  // 3 classes x 4 samples: columns [NaN at 0], [NaN at 1], [-inf, -inf, -1e38], [all -inf]
  const x = new Float64Array([
    NaN,
    1,
    -Infinity,
    -Infinity,
    5,
    NaN,
    -Infinity,
    -Infinity,
    7,
    0,
    -1e38,
    -Infinity,
  ]);
  const tl = gpu.tensor("f32", [3, 4], { data: Float32Array.from(x) });
  const tp = gpu.tensor("u32", [4]);
  gpu.poison(tp);
  const rec = gpu.recorder();
  argmax(rec, { logits: tl, classes: 3, batch: 4, pred: tp });
  rec.submit();
  const want = argmaxRef(x, 3, 4);
  assertClose(await gpu.read(tp), want, { rtol: 0, atol: 0, label: "argmax special values" });
  assertClose(want, [0, 0, 2, 0], { rtol: 0, atol: 0, label: "argmaxRef special values" });
});

gpuTest("countCorrect accumulates exact u32 counts across batches", async (gpu, rng) => {
  const counter = gpu.tensor("u32", [3], { data: new Uint32Array([7, 1000, 7]) });
  let want = 1000;
  const rec = gpu.recorder();
  const tensors: Tensor[] = [];
  for (const [classes, batch, ties] of ARG_SHAPES) {
    const x = logitsData(rng, classes, batch, ties);
    const pred = argmaxRef(x, classes, batch);
    const labels = new Uint32Array(batch);
    for (let b = 0; b < batch; b++) {
      const u = rng.next();
      labels[b] = u < 0.5 ? pred[b] : u < 0.9 ? rng.int(classes) : classes + rng.int(3); // some out of range
    }
    const tl = gpu.tensor("f32", [classes, roundUp4(batch)], { data: toPadded(x, classes, batch) });
    const tlab = gpu.tensor("u32", [batch], { data: labels });
    tensors.push(tl, tlab);
    countCorrect(rec, { logits: tl, labels: tlab, classes, batch, counter, index: 1 });
    want += countCorrectRef(pred, labels);
  }
  rec.submit();
  assertClose(await gpu.read(counter), [7, want, 7], { rtol: 0, atol: 0, label: "countCorrect" });
  for (const t of [counter, ...tensors]) gpu.release(t);
});
