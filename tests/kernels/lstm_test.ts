import { FiligreeError, type Gpu, roundUp4 } from "../../src/gpu/mod.ts";
import {
  lstmGatesBackward,
  lstmGatesForward,
  lstmSequence,
  lstmSequenceBackward,
} from "../../src/kernels/lstm.ts";
import {
  lstmBackwardRef,
  lstmCellBackwardRef,
  lstmCellForwardRef,
  lstmForwardRef,
  lstmSequenceRef,
} from "../../src/kernels/lstm_ref.ts";
import {
  asF32,
  assertClose,
  eachInputPath,
  fromPadded,
  gpuTest,
  gradCheck,
  type Rng,
} from "../../src/testing/mod.ts";

function assertThrows(fn: () => unknown, cls: typeof FiligreeError, text: string) {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof cls) || !(e as Error).message.includes(text)) {
      throw new Error(`expected ${cls.name} with "${text}", got ${e}`);
    }
    return;
  }
  throw new Error(`expected ${cls.name} with "${text}", nothing thrown`);
}

// Padding columns of inputs are NaN: the kernels must mask them, never let them leak.
function padNaN(a: ArrayLike<number>, rows: number, batch: number): Float32Array {
  const ld = roundUp4(batch);
  const out = new Float32Array(rows * ld).fill(NaN);
  for (let r = 0; r < rows; r++) for (let c = 0; c < batch; c++) out[r * ld + c] = a[r * batch + c];
  return out;
}

/** Writes `[rows][batch]` values into block `t` of an all-steps array `[rows][steps·ld]`. */
function putBlock(
  all: Float32Array,
  a: ArrayLike<number>,
  rows: number,
  steps: number,
  t: number,
  batch: number,
) {
  const ld = roundUp4(batch);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < ld; c++) {
      all[r * steps * ld + t * ld + c] = c < batch ? a[r * batch + c] : NaN;
    }
  }
}

/** Block `t` of an all-steps array as padded `[rows][ld]` (for fromPadded's padding check). */
function getBlock(all: ArrayLike<number>, rows: number, steps: number, t: number, batch: number) {
  const ld = roundUp4(batch);
  const out = new Float32Array(rows * ld);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < ld; c++) out[r * ld + c] = all[r * steps * ld + t * ld + c];
  }
  return out;
}

function nanTensor(gpu: Gpu, shape: number[], data?: Float32Array) {
  const t = gpu.tensor("f32", shape, data ? { data } : {});
  if (!data) gpu.poison(t);
  return t;
}

// [steps, features, batch, wg]; the last needs a 2-D grid (75,000 workgroups of 1).
const SEQ_SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 64],
  [3, 7, 13, 64],
  [5, 2, 5, 64],
  [3, 100, 997, 1],
];

gpuTest("lstm_seq re-layout matches reference, padding zero", async (gpu, rng) => {
  await eachInputPath(gpu, ["lstm_seq"], async (path) => {
    for (const [S, F, B, wg] of SEQ_SHAPES) {
      const ld = roundUp4(B);
      const x = rng.normal(S * F * B);
      const tx = gpu.tensor("f32", [S * F, ld], { data: padNaN(x, S * F, B) });
      const txs = nanTensor(gpu, [F, S * ld]);
      const rec = gpu.recorder();
      lstmSequence(rec, { x: tx, xs: txs, steps: S, features: F, batch: B, tune: { wg } });
      rec.submit();
      const got = await gpu.read(txs);
      const want = lstmSequenceRef(asF32(x), S, F, B); // [F][S][B]
      for (let t = 0; t < S; t++) {
        const block = fromPadded(getBlock(got, F, S, t, B), F, B, `xs block ${t}`);
        const w = new Float64Array(F * B);
        for (let f = 0; f < F; f++) {
          for (let b = 0; b < B; b++) w[f * B + b] = want[(f * S + t) * B + b];
        }
        assertClose(block, w, { rtol: 0, atol: 0, label: `${path} lstm_seq ${S}x${F}x${B} t${t}` });
      }
    }
  });
});

gpuTest(
  "lstm_seq_t (input gradient re-layout) inverts lstm_seq, padding zero",
  async (gpu, rng) => {
    await eachInputPath(gpu, ["lstm_seq_t"], async (path) => {
      for (const [S, F, B, wg] of SEQ_SHAPES) {
        const ld = roundUp4(B);
        const dxs = rng.normal(F * S * B); // [F][S][B]
        const all = new Float32Array(F * S * ld);
        for (let t = 0; t < S; t++) {
          const block = new Float64Array(F * B);
          for (let f = 0; f < F; f++) {
            for (let b = 0; b < B; b++) block[f * B + b] = dxs[(f * S + t) * B + b];
          }
          putBlock(all, asF32(block), F, S, t, B); // padding columns NaN
        }
        const tdxs = nanTensor(gpu, [F, S * ld], all);
        const tdx = nanTensor(gpu, [S * F, ld]);
        const rec = gpu.recorder();
        lstmSequenceBackward(rec, {
          dxs: tdxs,
          dx: tdx,
          steps: S,
          features: F,
          batch: B,
          tune: { wg },
        });
        rec.submit();
        const want = new Float64Array(S * F * B); // [S·F][B], row t·F + f
        for (let t = 0; t < S; t++) {
          for (let f = 0; f < F; f++) {
            for (let b = 0; b < B; b++) {
              want[(t * F + f) * B + b] = Math.fround(
                dxs[(f * S + t) * B + b],
              );
            }
          }
        }
        assertClose(fromPadded(await gpu.read(tdx), S * F, B, "dx"), want, {
          rtol: 0,
          atol: 0,
          label: `${path} lstm_seq_t ${S}x${F}x${B}`,
        });
      }
    });
  },
);

// [hidden, steps, batch, wg]; the last needs a 2-D grid (75,000 workgroups of 1).
const CELL_SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 64],
  [7, 3, 13, 64],
  [67, 4, 5, 64],
  [300, 2, 997, 1],
];

function stepsToTest(S: number): number[] {
  return [...new Set([0, Math.floor(S / 2), S - 1])];
}

// Tolerance: f32 sigmoid/tanh (relative error ~1e-7) and a few products: rtol 1e-5, atol 2e-6.
const FWD_TOL = { rtol: 1e-5, atol: 2e-6 };

gpuTest("lstm_fwd matches float64 reference at first/middle/last step", async (gpu, rng) => {
  await eachInputPath(gpu, ["lstm_fwd"], async (path) => {
    for (const [H, S, B, wg] of CELL_SHAPES) {
      const ld = roundUp4(B);
      for (const t of stepsToTest(S)) {
        const zxAll = new Float32Array(4 * H * S * ld).fill(NaN);
        const zx = asF32(rng.normal(4 * H * B, 2));
        putBlock(zxAll, zx, 4 * H, S, t, B);
        const zh = asF32(rng.normal(4 * H * B, 2));
        const cAll = new Float32Array(H * S * ld).fill(NaN);
        const cPrev = t > 0 ? asF32(rng.normal(H * B)) : null;
        if (cPrev) putBlock(cAll, cPrev, H, S, t - 1, B);
        const tzx = gpu.tensor("f32", [4 * H, S * ld], { data: zxAll });
        const tzh = gpu.tensor("f32", [4 * H, ld], { data: padNaN(zh, 4 * H, B) });
        const tc = gpu.tensor("f32", [H, S * ld], { data: cAll });
        const tg = nanTensor(gpu, [4 * H, S * ld]);
        const th = nanTensor(gpu, [H, ld]);
        const ths = nanTensor(gpu, [H, S * ld]);
        const rec = gpu.recorder();
        lstmGatesForward(rec, {
          zx: tzx,
          zh: t > 0 ? tzh : undefined,
          c: tc,
          gates: tg,
          h: th,
          hs: ths,
          hidden: H,
          steps: S,
          t,
          batch: B,
          tune: { wg },
        });
        rec.submit();
        const want = lstmCellForwardRef(zx, t > 0 ? zh : null, cPrev, H, B);
        const label = `${path} lstm_fwd H${H} S${S} B${B} t${t}`;
        const [g, c, h, hs] = await Promise.all([tg, tc, th, ths].map((x) => gpu.read(x)));
        const tol = (what: string) => ({ ...FWD_TOL, label: `${label} ${what}` });
        assertClose(fromPadded(getBlock(g, 4 * H, S, t, B), 4 * H, B, label), want.gates, tol("g"));
        assertClose(fromPadded(getBlock(c, H, S, t, B), H, B, label), want.c, tol("c"));
        assertClose(fromPadded(h, H, B, label), want.h, tol("h"));
        if (t + 1 < S) {
          assertClose(fromPadded(getBlock(hs, H, S, t + 1, B), H, B, label), want.h, tol("hs"));
        }
        if (t === 0) {
          const zero = new Float64Array(H * B);
          assertClose(fromPadded(getBlock(hs, H, S, 0, B), H, B, label), zero, tol("hs0"));
        }
      }
    }
  });
});

/** Random saved state of a forward step: gates in their ranges, cells. */
function randomState(rng: Rng, H: number, B: number) {
  const gates = new Float64Array(4 * H * B);
  for (let k = 0; k < 4; k++) {
    for (let n = 0; n < H * B; n++) {
      gates[k * H * B + n] = k === 2 ? 2 * rng.next() - 1 : rng.next();
    }
  }
  return asF32(gates);
}

// Tolerance: a handful of f32 products of O(1) values (tanh(c) recomputed): rtol 1e-5, atol 3e-6.
const BWD_TOL = { rtol: 1e-5, atol: 3e-6 };

gpuTest("lstm_bwd matches float64 reference at first/middle/last step", async (gpu, rng) => {
  await eachInputPath(gpu, ["lstm_bwd"], async (path) => {
    for (const [H, S, B, wg] of CELL_SHAPES) {
      const ld = roundUp4(B);
      for (const t of stepsToTest(S)) {
        const last = t === S - 1;
        const gates = randomState(rng, H, B);
        const c = asF32(rng.normal(H * B));
        const cPrev = t > 0 ? asF32(rng.normal(H * B)) : null;
        const gAll = new Float32Array(4 * H * S * ld).fill(NaN);
        putBlock(gAll, gates, 4 * H, S, t, B);
        const cAll = new Float32Array(H * S * ld).fill(NaN);
        putBlock(cAll, c, H, S, t, B);
        if (cPrev) putBlock(cAll, cPrev, H, S, t - 1, B);
        const dh = asF32(rng.normal(H * B));
        const dcNext = last ? null : asF32(rng.normal(H * B));
        const tg = gpu.tensor("f32", [4 * H, S * ld], { data: gAll });
        const tc = gpu.tensor("f32", [H, S * ld], { data: cAll });
        const tdh = gpu.tensor("f32", [H, ld], { data: padNaN(dh, H, B) });
        const tdc = dcNext
          ? gpu.tensor("f32", [H, ld], { data: padNaN(dcNext, H, B) })
          : nanTensor(gpu, [H, ld]); // not read at the last step
        const tdz = nanTensor(gpu, [4 * H, ld]);
        const tdzs = nanTensor(gpu, [4 * H, S * ld]);
        const rec = gpu.recorder();
        lstmGatesBackward(rec, {
          gates: tg,
          c: tc,
          dh: last ? tdh : undefined,
          dhr: last ? undefined : tdh,
          dc: tdc,
          dz: tdz,
          dzs: tdzs,
          hidden: H,
          steps: S,
          t,
          batch: B,
          tune: { wg },
        });
        rec.submit();
        const want = lstmCellBackwardRef(gates, c, cPrev, dh, dcNext, H, B);
        const label = `${path} lstm_bwd H${H} S${S} B${B} t${t}`;
        const [dz, dzs, dc] = await Promise.all([tdz, tdzs, tdc].map((x) => gpu.read(x)));
        const tol = (what: string) => ({ ...BWD_TOL, label: `${label} ${what}` });
        assertClose(fromPadded(dz, 4 * H, B, label), want.dz, tol("dz"));
        assertClose(
          fromPadded(getBlock(dzs, 4 * H, S, t, B), 4 * H, B, label),
          want.dz,
          tol("dzs"),
        );
        assertClose(fromPadded(dc, H, B, label), want.dcPrev, tol("dc"));
      }
    }
  });
});

gpuTest("lstm cell reference backward passes finite differences", (_gpu, rng) => {
  const H = 3, B = 4;
  // Outputs (h, c) of one step as a function of (zx, zh, cPrev); dOut = (dh, dc).
  const fwd = ([zx, zh, cp]: Float64Array[]) => {
    const r = lstmCellForwardRef(zx, zh, cp, H, B);
    const o = new Float64Array(2 * H * B);
    o.set(r.h);
    o.set(r.c, H * B);
    return o;
  };
  gradCheck(
    fwd,
    ([zx, zh, cp], dOut) => {
      const r = lstmCellForwardRef(zx, zh, cp, H, B);
      const b = lstmCellBackwardRef(
        r.gates,
        r.c,
        cp,
        dOut.subarray(0, H * B),
        dOut.subarray(H * B),
        H,
        B,
      );
      return [b.dz, b.dz, b.dcPrev];
    },
    [rng.normal(4 * H * B, 2), rng.normal(4 * H * B, 2), rng.normal(H * B)],
    { rng, label: "lstm cell", samples: 48 },
  );
});

gpuTest("lstm layer reference (BPTT) passes finite differences", (_gpu, rng) => {
  const d = { steps: 4, features: 3, hidden: 2, batch: 3 };
  const G = 4 * d.hidden;
  gradCheck(
    ([x, wx, wh, b]) => {
      const tr = lstmForwardRef(x, wx, wh, b, d);
      return tr.h[d.steps - 1];
    },
    ([x, wx, wh, b], dOut) => {
      const tr = lstmForwardRef(x, wx, wh, b, d);
      const g = lstmBackwardRef(x, wx, wh, tr, dOut, d);
      return [g.dx, g.dwx, g.dwh, g.dbias];
    },
    [
      rng.normal(d.steps * d.features * d.batch),
      rng.normal(d.features * G, 0.7),
      rng.normal(d.hidden * G, 0.7),
      rng.normal(G, 0.5),
    ],
    { rng, label: "lstm BPTT", samples: 40 },
  );
});

gpuTest("lstm wrappers reject bad arguments", (gpu) => {
  const a = gpu.tensor("f32", [64], { zero: true });
  const b = gpu.tensor("f32", [64], { zero: true });
  const rec = gpu.recorder();
  const base = { zx: a, c: b, gates: a, h: b, hs: b, hidden: 1, steps: 2, batch: 1 };
  assertThrows(() => lstmGatesForward(rec, { ...base, t: 2 }), FiligreeError, "step t");
  assertThrows(() => lstmGatesForward(rec, { ...base, t: 1 }), FiligreeError, "zh");
  assertThrows(() => lstmGatesForward(rec, { ...base, t: 0 }), FiligreeError, "different");
  assertThrows(
    () => lstmSequence(rec, { x: a, xs: b, steps: 3, features: 7, batch: 1 }),
    FiligreeError,
    "needs 84",
  );
});
