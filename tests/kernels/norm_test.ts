import { FiligreeError, type Gpu, roundUp4, type Tensor } from "../../src/gpu/mod.ts";
import {
  batchNormBackward,
  batchNormForwardEval,
  batchNormForwardTrain,
  layerNormBackward,
  layerNormForward,
} from "../../src/kernels/norm.ts";
import {
  batchNormBackwardRef,
  batchNormEvalRef,
  batchNormRunningRef,
  batchNormStatsRef,
  batchNormTrainRef,
  layerNormBackwardRef,
  layerNormRef,
  layerNormStatsRef,
} from "../../src/kernels/norm_ref.ts";
import {
  asF32,
  assertClose,
  fromPadded,
  gpuTest,
  gradCheck,
  type Rng,
} from "../../src/testing/mod.ts";

// [rows (features), batch]: 1, primes, batches 1/7/13/130 (non-multiples of 4 and of every
// workgroup size).
const SHAPES: [number, number][] = [
  [1, 1],
  [1, 7],
  [2, 13],
  [7, 130],
  [13, 1],
  [67, 13],
  [131, 7],
  [3, 130],
];
const EPS = 1e-5;

function assertThrows(fn: () => unknown, cls: new (...a: never[]) => Error, text: string) {
  try {
    fn();
  } catch (e) {
    if (e instanceof cls && (e as Error).message.includes(text)) return;
    throw new Error(`expected ${cls.name} with "${text}", got ${e}`);
  }
  throw new Error(`expected ${cls.name} with "${text}", nothing thrown`);
}
const MOMENTUM = 0.1;

// Tolerances (float32 kernels vs float64 reference on the same float32 inputs). The f32
// error of a normalization is conditioned by its group (row for batch norm, sample for layer
// norm): the mean carries ~eps32·max|x| absolute error, which (x - mean)·invstd amplifies by
// invstd, and the output by gamma·invstd. So every element gets
//   atol = ATOL · gamma·invstd · (1 + invstd·max|x|) · max(1, max|dy|)   (dy only for backward)
// with eps32 ≈ 6e-8 and ATOL = 1e-6 (≈16·eps32 of headroom for sums of up to 131 terms),
// plus rtol 2e-5 (forward) / 1e-4 (backward, cancellation in dy - mean(dy) - xhat·mean(dy·xhat)).
// Statistics themselves (mean, invstd, running stats) are well conditioned: rtol 2e-5, atol 1e-5.
const ATOL = 1e-6;
const TOL_STATS = { rtol: 2e-5, atol: 1e-5 };

/** |got - want| <= atolAt(i) + rtol·|want| for every element; NaN fails. */
function assertCloseBy(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  atolAt: (i: number) => number,
  rtol: number,
  label: string,
) {
  for (let i = 0; i < want.length; i++) {
    const tol = atolAt(i) + rtol * Math.abs(want[i]);
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      throw new Error(
        `${label}[${i}]: got ${got[i]}, want ${want[i]} (tolerance ${tol.toExponential(2)})`,
      );
    }
  }
}

/** Condition number per group (see above): gamma·invstd·(1 + invstd·max|x|)·max(1, max|dy|). */
function conditioning(
  x: Float64Array,
  dy: Float64Array | null,
  gamma: Float64Array,
  invstd: Float64Array,
  rows: number,
  batch: number,
  perRow: boolean,
): (i: number) => number {
  const groups = perRow ? rows : batch;
  const mx = new Float64Array(groups);
  const mdy = new Float64Array(groups).fill(1);
  const maxGamma = gamma.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
  for (let i = 0; i < rows * batch; i++) {
    const g = perRow ? Math.floor(i / batch) : i % batch;
    mx[g] = Math.max(mx[g], Math.abs(x[i]));
    if (dy) mdy[g] = Math.max(mdy[g], Math.abs(dy[i]));
  }
  const cond = Array.from(mx, (m, g) => invstd[g] * (1 + invstd[g] * m) * mdy[g]);
  return (i) => {
    const r = Math.floor(i / batch);
    const g = perRow ? r : i % batch;
    return ATOL * cond[g] * (perRow ? Math.abs(gamma[r]) : maxGamma);
  };
}

/** Padded feature-major upload with NaN in the padding columns: kernels must ignore them. */
function upload(gpu: Gpu, a: ArrayLike<number>, rows: number, batch: number): Tensor {
  const ld = roundUp4(batch);
  const out = new Float32Array(rows * ld).fill(NaN);
  for (let r = 0; r < rows; r++) for (let c = 0; c < batch; c++) out[r * ld + c] = a[r * batch + c];
  return gpu.tensor("f32", [rows, ld], { data: out });
}

function vec(gpu: Gpu, a: ArrayLike<number>): Tensor {
  return gpu.tensor("f32", [a.length], { data: Float32Array.from(a) });
}

function out(gpu: Gpu, n: number): Tensor {
  const t = gpu.tensor("f32", [n]);
  gpu.poison(t);
  return t;
}

function inputs(rng: Rng, rows: number, batch: number) {
  // Non-zero means and varied scales per row so normalization does real work.
  const x = asF32(rng.normal(rows * batch).map((v, i) => 3 * Math.sin(i % 5) + (1 + (i % 3)) * v));
  return {
    x,
    gamma: asF32(rng.uniform(rows, 0.5, 2)),
    beta: asF32(rng.normal(rows)),
    dy: asF32(rng.normal(rows * batch)),
  };
}

async function runBatchNorm(gpu: Gpu, rng: Rng, rows: number, batch: number, wg?: number) {
  const label = `bn ${rows}x${batch}`;
  const ld = roundUp4(batch);
  const { x, gamma, beta, dy } = inputs(rng, rows, batch);
  const rm0 = asF32(rng.normal(rows));
  const rv0 = asF32(rng.uniform(rows, 0.5, 2));
  const t = {
    x: upload(gpu, x, rows, batch),
    dy: upload(gpu, dy, rows, batch),
    gamma: vec(gpu, gamma),
    beta: vec(gpu, beta),
    runningMean: vec(gpu, rm0),
    runningVar: vec(gpu, rv0),
    y: out(gpu, rows * ld),
    yEval: out(gpu, rows * ld),
    dx: out(gpu, rows * ld),
    saveMean: out(gpu, rows),
    saveInvStd: out(gpu, rows),
    dgamma: out(gpu, rows),
    dbeta: out(gpu, rows),
  };
  const rec = gpu.recorder();
  const shape = { rows, batch, wg };
  batchNormForwardTrain(rec, { ...t, ...shape, eps: EPS, momentum: MOMENTUM });
  batchNormBackward(rec, { ...t, ...shape });
  // Eval with the updated running statistics.
  batchNormForwardEval(rec, { ...t, y: t.yEval, ...shape, eps: EPS });
  rec.submit();

  const ref = batchNormTrainRef(x, gamma, beta, rows, batch, EPS);
  const fwdTol = conditioning(x, null, gamma, ref.invstd, rows, batch, true);
  const bwdTol = conditioning(x, dy, gamma, ref.invstd, rows, batch, true);
  const y = fromPadded(await gpu.read(t.y), rows, batch, `${label} y`);
  assertCloseBy(y, ref.y, fwdTol, 2e-5, `${label} y`);
  assertClose(await gpu.read(t.saveMean), ref.mean, { ...TOL_STATS, label: `${label} mean` });
  assertClose(await gpu.read(t.saveInvStd), ref.invstd, { ...TOL_STATS, label: `${label} invstd` });
  const run = batchNormRunningRef(rm0, rv0, ref.mean, ref.variance, batch, MOMENTUM);
  assertClose(await gpu.read(t.runningMean), run.mean, {
    ...TOL_STATS,
    label: `${label} running mean`,
  });
  const rv = await gpu.read(t.runningVar);
  assertClose(rv, run.variance, { ...TOL_STATS, label: `${label} running var` });
  const g = batchNormBackwardRef(x, gamma, dy, ref.mean, ref.invstd, rows, batch);
  const dx = fromPadded(await gpu.read(t.dx), rows, batch, `${label} dx`);
  assertCloseBy(dx, g.dx, bwdTol, 1e-4, `${label} dx`);
  // dgamma: a sum over the batch of dy·xhat; xhat carries ATOL·(1 + invstd·max|x|) error, i.e.
  // the dx bound without its gamma·invstd factor.
  const sumTol = (r: number) => batch * bwdTol(r * batch) / (Math.abs(gamma[r]) * ref.invstd[r]);
  assertCloseBy(await gpu.read(t.dgamma), g.dgamma, sumTol, 1e-4, `${label} dgamma`);
  assertCloseBy(await gpu.read(t.dbeta), g.dbeta, () => 1e-6 * batch, 1e-5, `${label} dbeta`);
  const yEval = batchNormEvalRef(x, gamma, beta, run.mean, asF32(run.variance), rows, batch, EPS);
  const evalTol = conditioning(
    x,
    null,
    gamma,
    run.variance.map((v) => 1 / Math.sqrt(v + EPS)),
    rows,
    batch,
    true,
  );
  const ye = fromPadded(await gpu.read(t.yEval), rows, batch, `${label} eval y`);
  assertCloseBy(ye, yEval, evalTol, 2e-5, `${label} eval y`);
}

gpuTest(
  "batch norm train fwd, running stats, backward and eval match float64",
  async (gpu, rng) => {
    let pipelines = -1;
    for (const [rows, batch] of SHAPES) {
      await runBatchNorm(gpu, rng, rows, batch);
      // New batch sizes reuse the compiled pipelines (sizes are uniforms).
      if (pipelines < 0) pipelines = gpu.pipelineCount;
      else if (gpu.pipelineCount !== pipelines) {
        throw new Error(
          "batch norm recompiled for a new size",
        );
      }
    }
  },
);

gpuTest("batch norm on a 2-D grid (workgroup size 1, 65,537 rows)", async (gpu, rng) => {
  await runBatchNorm(gpu, rng, 65_537, 3, 1);
});

gpuTest("batch norm eval is not the train forward (running stats used)", async (gpu, rng) => {
  // Running statistics far from the batch statistics: eval must differ from train mode.
  const rows = 5, batch = 6, ld = 8;
  const { x, gamma, beta } = inputs(rng, rows, batch);
  const rm = asF32(rng.uniform(rows, 5, 6));
  const rv = asF32(rng.uniform(rows, 3, 4));
  const y = out(gpu, rows * ld);
  const rec = gpu.recorder();
  batchNormForwardEval(rec, {
    x: upload(gpu, x, rows, batch),
    gamma: vec(gpu, gamma),
    beta: vec(gpu, beta),
    runningMean: vec(gpu, rm),
    runningVar: vec(gpu, rv),
    y,
    rows,
    batch,
    eps: 0.5,
  });
  rec.submit();
  assertClose(
    fromPadded(await gpu.read(y), rows, batch),
    batchNormEvalRef(x, gamma, beta, rm, rv, rows, batch, 0.5),
    {
      rtol: 2e-5,
      atol: 2e-5,
      label: "bn eval eps 0.5",
    },
  );
  // Not a tautology: the train-mode output of the same input is far from it.
  const train = batchNormTrainRef(x, gamma, beta, rows, batch, 0.5).y;
  const evalRef = batchNormEvalRef(x, gamma, beta, rm, rv, rows, batch, 0.5);
  if (train.every((v, i) => Math.abs(v - evalRef[i]) < 0.1)) {
    throw new Error("eval test data too close to train mode");
  }
});

gpuTest("batch norm train backward: finite differences w.r.t. x, gamma, beta", (_gpu, rng) => {
  for (const [rows, batch] of [[3, 7], [2, 13], [1, 2]]) {
    const { x, gamma, beta } = inputs(rng, rows, batch);
    gradCheck(
      ([x, g, b]) => batchNormTrainRef(x, g, b, rows, batch, EPS).y,
      ([x, g], dOut) => {
        const s = batchNormStatsRef(x, rows, batch, EPS);
        const r = batchNormBackwardRef(x, g, dOut, s.mean, s.invstd, rows, batch);
        return [r.dx, r.dgamma, r.dbeta];
      },
      [x, gamma, beta],
      { rng, label: `bn ${rows}x${batch}`, rtol: 1e-5, atol: 1e-7 },
    );
  }
});

async function runLayerNorm(
  gpu: Gpu,
  rng: Rng,
  rows: number,
  batch: number,
  wg?: number,
  backward = true,
) {
  const label = `ln ${rows}x${batch}`;
  const ld = roundUp4(batch);
  const { x, gamma, beta, dy } = inputs(rng, rows, batch);
  const t = {
    x: upload(gpu, x, rows, batch),
    dy: upload(gpu, dy, rows, batch),
    gamma: vec(gpu, gamma),
    beta: vec(gpu, beta),
    y: out(gpu, rows * ld),
    dx: out(gpu, rows * ld),
    saveMean: out(gpu, ld),
    saveInvStd: out(gpu, ld),
    dgamma: out(gpu, rows),
    dbeta: out(gpu, rows),
  };
  const rec = gpu.recorder();
  layerNormForward(rec, { ...t, rows, batch, wg, eps: EPS });
  if (backward) layerNormBackward(rec, { ...t, rows, batch, wg });
  rec.submit();
  const ref = layerNormRef(x, gamma, beta, rows, batch, EPS);
  const y = fromPadded(await gpu.read(t.y), rows, batch, `${label} y`);
  assertCloseBy(
    y,
    ref.y,
    conditioning(x, null, gamma, ref.invstd, rows, batch, false),
    2e-5,
    `${label} y`,
  );
  const mean = fromPadded(await gpu.read(t.saveMean), 1, batch, `${label} mean`);
  assertClose(mean, ref.mean, { ...TOL_STATS, label: `${label} mean` });
  const invstd = fromPadded(await gpu.read(t.saveInvStd), 1, batch, `${label} invstd`);
  assertClose(invstd, ref.invstd, { ...TOL_STATS, label: `${label} invstd` });
  if (!backward) return;
  const g = layerNormBackwardRef(x, gamma, dy, ref.mean, ref.invstd, rows, batch);
  const dx = fromPadded(await gpu.read(t.dx), rows, batch, `${label} dx`);
  assertCloseBy(
    dx,
    g.dx,
    conditioning(x, dy, gamma, ref.invstd, rows, batch, false),
    1e-4,
    `${label} dx`,
  );
  // dgamma[r] = sum over samples of dy·xhat: each term's xhat error is ATOL·(1 + invstd·max|x|).
  let worst = 0;
  for (let c = 0; c < batch; c++) {
    let mx = 0;
    let mdy = 1;
    for (let r = 0; r < rows; r++) {
      mx = Math.max(mx, Math.abs(x[r * batch + c]));
      mdy = Math.max(mdy, Math.abs(dy[r * batch + c]));
    }
    worst += (1 + ref.invstd[c] * mx) * mdy;
  }
  assertCloseBy(await gpu.read(t.dgamma), g.dgamma, () => ATOL * worst, 1e-4, `${label} dgamma`);
  assertCloseBy(await gpu.read(t.dbeta), g.dbeta, () => 1e-6 * batch, 1e-5, `${label} dbeta`);
}

gpuTest("layer norm fwd and backward match float64", async (gpu, rng) => {
  for (const [rows, batch] of SHAPES) await runLayerNorm(gpu, rng, rows, batch);
});

// The backward cannot reach a 2-D grid: its per-row dgamma/dbeta pass limits the batch to
// 4·65,000 (< 4·65,535 quads), and the forward needs batch > 262,140 even with workgroups of 1.
gpuTest("layer norm forward on a 2-D grid (workgroup size 1, batch 262,150)", async (gpu, rng) => {
  await runLayerNorm(gpu, rng, 3, 262_150, 1, false);
});

gpuTest("layer norm backward: finite differences w.r.t. x, gamma, beta", (_gpu, rng) => {
  for (const [rows, batch] of [[7, 3], [13, 2], [2, 5]]) {
    const { x, gamma, beta } = inputs(rng, rows, batch);
    gradCheck(
      ([x, g, b]) => layerNormRef(x, g, b, rows, batch, EPS).y,
      ([x, g], dOut) => {
        const s = layerNormStatsRef(x, rows, batch, EPS);
        const r = layerNormBackwardRef(x, g, dOut, s.mean, s.invstd, rows, batch);
        return [r.dx, r.dgamma, r.dbeta];
      },
      [x, gamma, beta],
      { rng, label: `ln ${rows}x${batch}`, rtol: 1e-5, atol: 1e-7 },
    );
  }
});

gpuTest("norm wrappers reject sizes over the loop bound and bad arguments", (gpu) => {
  const t = gpu.tensor("f32", [4]);
  const rec = gpu.recorder();
  const bn = {
    x: t,
    gamma: t,
    beta: t,
    y: t,
    saveMean: t,
    saveInvStd: t,
    runningMean: t,
    runningVar: t,
    rows: 1,
  };
  assertThrows(() => batchNormForwardTrain(rec, { ...bn, batch: 90_000 }), FiligreeError, "loop");
  const bwd = { x: t, gamma: t, dy: t, saveMean: t, saveInvStd: t, dx: t, dgamma: t, dbeta: t };
  assertThrows(
    () => batchNormBackward(rec, { ...bwd, rows: 1, batch: 140_000 }),
    FiligreeError,
    "loop",
  );
  assertThrows(
    () => layerNormForward(rec, { ...bn, rows: 21_700, batch: 1 }),
    FiligreeError,
    "loop",
  );
  assertThrows(
    () => layerNormBackward(rec, { ...bwd, rows: 32_600, batch: 1 }),
    FiligreeError,
    "loop",
  );
  assertThrows(
    () => layerNormBackward(rec, { ...bwd, rows: 1, batch: 270_000 }),
    FiligreeError,
    "loop",
  );
  assertThrows(() => batchNormForwardTrain(rec, { ...bn, batch: 0 }), FiligreeError, "batch");
  assertThrows(
    () => batchNormForwardTrain(rec, { ...bn, batch: 2, momentum: 2 }),
    FiligreeError,
    "momentum",
  );
  assertThrows(
    () => batchNormForwardTrain(rec, { ...bn, rows: 2, batch: 4 }),
    FiligreeError,
    "elements",
  );
  if (rec.dispatches !== 0) throw new Error("a rejected call dispatched");
});
