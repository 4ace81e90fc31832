import { FiligreeError, type Gpu, roundUp4, type Tensor } from "../../src/gpu/mod.ts";
import { mseLoss, softmaxXent } from "../../src/kernels/loss.ts";
import { countCorrect } from "../../src/kernels/reduce.ts";
import {
  mseBackwardRef,
  mseRef,
  type MseTarget,
  type OutputActivation,
  softmaxXentBackwardRef,
  softmaxXentRef,
} from "../../src/kernels/loss_ref.ts";
import {
  asF32,
  assertClose,
  fromPadded,
  gpuTest,
  gradCheck,
  type Rng,
} from "../../src/testing/mod.ts";

// [classes, batch]: 1, primes, batches 1/7/13/130 (non-multiples of 4 and of the workgroup).
const SHAPES: [number, number][] = [[1, 1], [2, 7], [10, 13], [10, 130], [13, 1], [131, 7], [
  3,
  130,
]];

// Tolerances (float32 kernels vs float64 reference on the same float32 inputs):
// softmax-xent loss = (m - z_t) + log(s): absolute error ~eps32·|logits| (+ log of a sum of up
// to 131 terms); gradient entries are scale·(p - onehot) with p in [0, 1].
const tolLoss = (maxAbs: number) => ({ rtol: 1e-5, atol: 1e-6 * Math.max(1, maxAbs) });
const tolGrad = (scale: number) => ({ rtol: 1e-5, atol: 1e-6 * Math.abs(scale) });
// MSE: loss is 0.5·sum of up to 131 squares of O(1) errors; gradient is elementwise.
const TOL_MSE = { rtol: 1e-5, atol: 1e-6 };

function assertThrows(fn: () => unknown, text: string) {
  try {
    fn();
  } catch (e) {
    if (e instanceof FiligreeError && e.message.includes(text)) return;
    throw new Error(`expected FiligreeError with "${text}", got ${e}`);
  }
  throw new Error(`expected FiligreeError with "${text}", nothing thrown`);
}

/** Padded feature-major upload with NaN in the padding columns: kernels must ignore them. */
function upload(gpu: Gpu, a: ArrayLike<number>, rows: number, batch: number): Tensor {
  const ld = roundUp4(batch);
  const out = new Float32Array(rows * ld).fill(NaN);
  for (let r = 0; r < rows; r++) for (let c = 0; c < batch; c++) out[r * ld + c] = a[r * batch + c];
  return gpu.tensor("f32", [rows, ld], { data: out });
}

function poisoned(gpu: Gpu, dtype: "f32" | "u32", n: number): Tensor {
  const t = gpu.tensor(dtype, [n]);
  gpu.poison(t);
  return t;
}

function randomLabels(rng: Rng, classes: number, batch: number): Uint32Array {
  return Uint32Array.from({ length: batch }, () => rng.int(classes));
}

async function runXent(
  gpu: Gpu,
  z: Float64Array,
  labels: Uint32Array,
  classes: number,
  batch: number,
  opts: { scale?: number; wg?: number; argmax?: boolean } = {},
) {
  const label = `xent ${classes}x${batch}`;
  const ld = roundUp4(batch);
  const t = {
    logits: upload(gpu, z, classes, batch),
    labels: gpu.tensor("u32", [batch], { data: labels }),
    loss: poisoned(gpu, "f32", batch),
    dlogits: poisoned(gpu, "f32", classes * ld),
    argmax: opts.argmax === false ? undefined : poisoned(gpu, "u32", batch),
  };
  const rec = gpu.recorder();
  softmaxXent(rec, { ...t, classes, batch, scale: opts.scale, wg: opts.wg });
  rec.submit();
  const scale = opts.scale ?? 1 / batch;
  const ref = softmaxXentRef(z, labels, classes, batch);
  const maxAbs = z.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
  const loss = await gpu.read(t.loss);
  assertClose(loss, ref.loss, { ...tolLoss(maxAbs), label: `${label} loss` });
  const dz = fromPadded(await gpu.read(t.dlogits), classes, batch, `${label} dlogits`);
  const want = softmaxXentBackwardRef(
    z,
    labels,
    new Float64Array(batch).fill(scale),
    classes,
    batch,
  );
  assertClose(dz, want, { ...tolGrad(scale), label: `${label} dlogits` });
  if (t.argmax) {
    const am = await gpu.read(t.argmax);
    for (let c = 0; c < batch; c++) {
      if (am[c] !== ref.argmax[c]) {
        throw new Error(`${label} argmax[${c}]: got ${am[c]}, want ${ref.argmax[c]}`);
      }
    }
  }
  return { loss, dz };
}

gpuTest("softmax cross-entropy matches float64 (loss, gradient, argmax)", async (gpu, rng) => {
  for (const [classes, batch] of SHAPES) {
    const z = asF32(rng.normal(classes * batch, 3));
    await runXent(gpu, z, randomLabels(rng, classes, batch), classes, batch);
  }
  // A custom scale (sum reduction) and no argmax output.
  const z = asF32(rng.normal(10 * 13, 3));
  await runXent(gpu, z, randomLabels(rng, 10, 13), 10, 13, { scale: 1, argmax: false });
});

gpuTest(
  "softmax cross-entropy with count: adds exactly countCorrect's count (ties, NaN logits, " +
    "padding), loss and gradient unchanged",
  async (gpu, rng) => {
    for (const [classes, batch] of SHAPES) {
      // Integer logits make ties; a few NaNs test that a NaN never wins.
      const z = new Float64Array(classes * batch).map(() => rng.int(4));
      for (let i = 0; i < z.length; i += 7) z[i] = NaN;
      const labels = randomLabels(rng, classes, batch);
      const logits = upload(gpu, z, classes, batch);
      const tlab = gpu.tensor("u32", [batch], { data: labels });
      const counter = gpu.tensor("u32", [3], { data: new Uint32Array([5, 9, 5]) });
      const ref = gpu.tensor("u32", [3], { data: new Uint32Array([5, 9, 5]) });
      const out = () => ({
        loss: poisoned(gpu, "f32", batch),
        dlogits: poisoned(gpu, "f32", classes * roundUp4(batch)),
      });
      const [a, b] = [out(), out()];
      const rec = gpu.recorder();
      softmaxXent(rec, {
        logits,
        labels: tlab,
        ...a,
        classes,
        batch,
        count: { counter, index: 1 },
      });
      softmaxXent(rec, { logits, labels: tlab, ...b, classes, batch });
      countCorrect(rec, { logits, labels: tlab, classes, batch, counter: ref, index: 1 });
      rec.submit();
      const label = `xent+count ${classes}x${batch}`;
      const [got, want] = await Promise.all([gpu.read(counter), gpu.read(ref)]);
      assertClose(got, want, { rtol: 0, atol: 0, label });
      for (const k of ["loss", "dlogits"] as const) {
        const [x, y] = await Promise.all([gpu.read(a[k]), gpu.read(b[k])]);
        if (!x.every((v, i) => Object.is(v, y[i]))) throw new Error(`${label}: ${k} changed`);
      }
    }
    // Finite logits: the count matches the float64 reference's argmax.
    const [classes, batch] = [10, 130];
    const z = asF32(rng.normal(classes * batch, 3));
    const labels = randomLabels(rng, classes, batch);
    const counter = gpu.tensor("u32", [1], { zero: true });
    const rec = gpu.recorder();
    softmaxXent(rec, {
      logits: upload(gpu, z, classes, batch),
      labels: gpu.tensor("u32", [batch], { data: labels }),
      loss: poisoned(gpu, "f32", batch),
      dlogits: poisoned(gpu, "f32", classes * roundUp4(batch)),
      classes,
      batch,
      count: { counter, index: 0 },
    });
    rec.submit();
    const am = softmaxXentRef(z, labels, classes, batch).argmax;
    const want = labels.reduce((n, t, c) => n + (am[c] === t ? 1 : 0), 0);
    assertClose(await gpu.read(counter), [want], { rtol: 0, atol: 0, label: "count vs float64" });
  },
);

gpuTest(
  "softmax cross-entropy on a 2-D grid (workgroup size 1, batch 262,150)",
  async (gpu, rng) => {
    const classes = 2, batch = 262_150;
    await runXent(
      gpu,
      asF32(rng.normal(classes * batch, 3)),
      randomLabels(rng, classes, batch),
      classes,
      batch,
      {
        wg: 1,
      },
    );
  },
);

gpuTest("softmax cross-entropy stays finite and exact for logits of ±1e4", async (gpu, rng) => {
  const classes = 10, batch = 13;
  const z = asF32(rng.uniform(classes * batch, -1e4, 1e4));
  // Sample 0: every logit at +1e4 except the label at -1e4 (loss 2e4); sample 1: label is the max.
  for (let k = 0; k < classes; k++) z[k * batch] = 1e4;
  const labels = randomLabels(rng, classes, batch);
  z[labels[0] * batch] = -1e4;
  for (let k = 0; k < classes; k++) z[k * batch + 1] = k === labels[1] ? 1e4 : -1e4;
  const { loss, dz } = await runXent(gpu, z, labels, classes, batch);
  if (![...loss, ...dz].every(Number.isFinite)) {
    throw new Error("non-finite output for extreme logits");
  }
  if (Math.abs(loss[0] - (2e4 + Math.log(classes - 1))) > 1e-2) {
    throw new Error(`loss[0] = ${loss[0]}`);
  }
  if (loss[1] !== 0) throw new Error(`loss[1] = ${loss[1]}, want exactly 0`);
});

gpuTest("softmax cross-entropy backward: finite differences w.r.t. logits", (_gpu, rng) => {
  for (const [classes, batch] of [[10, 3], [2, 5], [1, 2]]) {
    const labels = randomLabels(rng, classes, batch);
    gradCheck(
      ([z]) => softmaxXentRef(z, labels, classes, batch).loss,
      ([z], dOut) => [softmaxXentBackwardRef(z, labels, dOut, classes, batch)],
      [rng.normal(classes * batch, 3)],
      { rng, label: `xent ${classes}x${batch}`, rtol: 1e-5, atol: 1e-8 },
    );
  }
});

async function runMse(
  gpu: Gpu,
  rng: Rng,
  classes: number,
  batch: number,
  act: OutputActivation,
  dense: boolean,
  opts: { wg?: number; scale?: number; zStd?: number } = {},
) {
  const label = `mse ${act} ${dense ? "dense" : "labels"} ${classes}x${batch}`;
  const ld = roundUp4(batch);
  const z = asF32(rng.normal(classes * batch, opts.zStd ?? 2));
  const target: MseTarget = dense
    ? { target: asF32(rng.uniform(classes * batch, 0, 1)) }
    : { labels: randomLabels(rng, classes, batch) };
  const loss = poisoned(gpu, "f32", batch);
  const dpred = poisoned(gpu, "f32", classes * ld);
  const rec = gpu.recorder();
  mseLoss(rec, {
    pred: upload(gpu, z, classes, batch),
    ...("labels" in target
      ? { labels: gpu.tensor("u32", [batch], { data: Uint32Array.from(target.labels) }) }
      : { target: upload(gpu, target.target, classes, batch) }),
    loss,
    dpred,
    classes,
    batch,
    outputActivation: act,
    scale: opts.scale,
    wg: opts.wg,
  });
  rec.submit();
  const scale = opts.scale ?? 1 / batch;
  const l = await gpu.read(loss);
  assertClose(l, mseRef(z, target, classes, batch, act), { ...TOL_MSE, label: `${label} loss` });
  const want = mseBackwardRef(z, target, new Float64Array(batch).fill(scale), classes, batch, act);
  const got = fromPadded(await gpu.read(dpred), classes, batch, `${label} dpred`);
  assertClose(got, want, { rtol: 1e-5, atol: 1e-6 * Math.abs(scale), label: `${label} dpred` });
  return { loss: l, dpred: got };
}

gpuTest("MSE (labels or dense target, identity or sigmoid) matches float64", async (gpu, rng) => {
  for (const [classes, batch] of SHAPES) {
    for (const act of ["identity", "sigmoid"] as const) {
      for (const dense of [false, true]) await runMse(gpu, rng, classes, batch, act, dense);
    }
  }
  await runMse(gpu, rng, 10, 13, "sigmoid", false, { scale: 2 });
});

gpuTest("MSE on a 2-D grid (workgroup size 1, batch 262,150)", async (gpu, rng) => {
  await runMse(gpu, rng, 2, 262_150, "sigmoid", true, { wg: 1 });
  await runMse(gpu, rng, 2, 262_150, "identity", false, { wg: 1 });
});

gpuTest("MSE with a sigmoid stays finite for pre-activations of ±1e4", async (gpu, rng) => {
  const { loss, dpred } = await runMse(gpu, rng, 10, 13, "sigmoid", false, { zStd: 1e4 });
  if (![...loss, ...dpred].every(Number.isFinite)) throw new Error("non-finite MSE output");
});

gpuTest("MSE backward: finite differences w.r.t. the prediction", (_gpu, rng) => {
  for (const act of ["identity", "sigmoid"] as const) {
    for (const [classes, batch] of [[10, 3], [3, 5]]) {
      const targets: MseTarget[] = [
        { labels: randomLabels(rng, classes, batch) },
        { target: rng.uniform(classes * batch, 0, 1) },
      ];
      for (const t of targets) {
        gradCheck(
          ([z]) => mseRef(z, t, classes, batch, act),
          ([z], dOut) => [mseBackwardRef(z, t, dOut, classes, batch, act)],
          [rng.normal(classes * batch, 2)],
          { rng, label: `mse ${act} ${classes}x${batch}`, rtol: 1e-5, atol: 1e-8 },
        );
      }
    }
  }
});

gpuTest("loss wrappers reject bad sizes and arguments", (gpu) => {
  const f = gpu.tensor("f32", [4]);
  const u = gpu.tensor("u32", [4]);
  const rec = gpu.recorder();
  const xent = { logits: f, labels: u, loss: f, dlogits: f, batch: 1 };
  assertThrows(() => softmaxXent(rec, { ...xent, classes: 40_000 }), "loop");
  assertThrows(() => softmaxXent(rec, { ...xent, classes: 0 }), "classes");
  assertThrows(() => softmaxXent(rec, { ...xent, labels: f, classes: 1 }), "needs u32");
  assertThrows(() => softmaxXent(rec, { ...xent, classes: 2 }), "elements");
  const mse = { pred: f, loss: f, dpred: f, batch: 1 };
  assertThrows(() => mseLoss(rec, { ...mse, labels: u, classes: 70_000 }), "loop");
  assertThrows(() => mseLoss(rec, { ...mse, classes: 1 }), "exactly one");
  assertThrows(() => mseLoss(rec, { ...mse, labels: u, target: f, classes: 1 }), "exactly one");
  assertThrows(
    () =>
      mseLoss(rec, { ...mse, labels: u, classes: 1, outputActivation: "tanh" as OutputActivation }),
    "outputActivation",
  );
  if (rec.dispatches !== 0) throw new Error("a rejected call dispatched");
});
