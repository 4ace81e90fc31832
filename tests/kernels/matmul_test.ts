import { FiligreeError, type Gpu, roundUp4 } from "../../src/gpu/mod.ts";
import { matmul, type MatmulTuning } from "../../src/kernels/matmul.ts";
import { matmulGradRef, matmulRef } from "../../src/kernels/matmul_ref.ts";
import { asF32, fromPadded, gpuTest, gradCheck, Rng, toPadded } from "../../src/testing/mod.ts";

// Tolerance: inputs are f32-exact, the reference is float64. Each of the k FMAs rounds once
// (relative 2^-24 of a partial sum of size ~sqrt(t) for O(1) normal inputs), so the error's
// standard deviation is about 2.5e-8·k; we allow 2.4e-7·k (~10 sigma) plus 1e-6 relative.
// An indexing or edge bug is an O(1) error and fails.
const tolK = (k: number) => ({ atol: 2.4e-7 * Math.max(k, 4), rtol: 1e-6 });

interface Case {
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  lda?: number;
  ldb?: number;
  ldc?: number;
  accumulate?: boolean;
  tuning?: Partial<MatmulTuning>;
}

/** Dense [rows][cols] into a strided [rows][ld] f32 array of the minimal length, padding = fill. */
function strided(
  a: ArrayLike<number>,
  rows: number,
  cols: number,
  ld: number,
  fill: number,
): Float32Array {
  const out = new Float32Array(rows === 0 ? 0 : (rows - 1) * ld + cols).fill(fill);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * ld + c] = a[r * cols + c];
  return out;
}

/**
 * Runs one case on fresh inputs whose padding (between row end and ld) is NaN, so any read of a
 * padding element that reaches a stored result fails; C is NaN-poisoned (or random for
 * accumulate, with NaN padding) and every padding element of C must still be NaN afterwards.
 */
async function check(gpu: Gpu, rng: Rng, c: Case): Promise<void> {
  const { m, n, k } = c;
  const [ra, ca] = c.transA ? [k, m] : [m, k];
  const [rb, cb] = c.transB ? [n, k] : [k, n];
  const lda = c.lda ?? ca, ldb = c.ldb ?? cb, ldc = c.ldc ?? n;
  const A = asF32(rng.normal(ra * ca));
  const B = asF32(rng.normal(rb * cb));
  const C0 = c.accumulate ? asF32(rng.normal(m * n)) : undefined;
  const ta = gpu.tensor("f32", [Math.max(1, (ra - 1) * lda + ca)], {
    data: padTo(strided(A, ra, ca, lda, NaN)),
  });
  const tb = gpu.tensor("f32", [Math.max(1, (rb - 1) * ldb + cb)], {
    data: padTo(strided(B, rb, cb, ldb, NaN)),
  });
  const cLen = Math.max(1, (m - 1) * ldc + n);
  const tc = gpu.tensor("f32", [cLen]);
  if (C0) gpu.write(tc, padTo(strided(C0, m, n, ldc, NaN)));
  else gpu.poison(tc);
  const rec = gpu.recorder();
  matmul(rec, {
    a: ta,
    b: tb,
    c: tc,
    m,
    n,
    k,
    transA: c.transA,
    transB: c.transB,
    lda,
    ldb,
    ldc,
    accumulate: c.accumulate,
    tuning: c.tuning,
  });
  rec.submit();
  const got = await gpu.read(tc);
  const want = matmulRef(A, B, m, n, k, { transA: c.transA, transB: c.transB, c: C0 });
  const label =
    `matmul ${c.transA ? "T" : "N"}${
      c.transB ? "T" : "N"
    } m${m} n${n} k${k} ld ${lda}/${ldb}/${ldc}` +
    `${c.accumulate ? " +=" : ""}${c.tuning ? " " + JSON.stringify(c.tuning) : ""}`;
  const { atol, rtol } = tolK(k);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < ldc && i * ldc + j < cLen; j++) {
      const g = got[i * ldc + j];
      if (j >= n) {
        if (!Number.isNaN(g)) throw new Error(`${label}: wrote padding C[${i}][${j}] = ${g}`);
        continue;
      }
      const w = want[i * n + j];
      if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w))) {
        throw new Error(
          `${label}: C[${i}][${j}] = ${g}, want ${w} (atol ${atol.toExponential(1)})`,
        );
      }
    }
  }
}

/** A tensor needs at least one element; empty operands get one NaN. */
function padTo(a: Float32Array): Float32Array {
  return a.length ? a : new Float32Array([NaN]);
}

const LAYOUTS: [boolean, boolean][] = [[false, false], [false, true], [true, false]];
// Sizes: 1, primes, non-multiples of the 16 x 8 register block, the 8 x 8 workgroup and of 4;
// n = 37 takes the narrow blocking of an untuned call (narrowShapeTuning: 32 <= n < 64).
const SIZES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [129, 67, 131],
  [1000, 10, 784],
  [45, 37, 53],
];

gpuTest(
  "matmul NN/NT/TN match float64 (natural, odd and vec4-aligned padded strides)",
  async (gpu, rng) => {
    for (const [transA, transB] of LAYOUTS) {
      for (const [m, n, k] of SIZES) {
        const ca = transA ? m : k, cb = transB ? k : n;
        await check(gpu, rng, { m, n, k, transA, transB });
        // odd strides: scalar loads / scalar stores
        await check(gpu, rng, { m, n, k, transA, transB, lda: ca + 3, ldb: cb + 1, ldc: n + 5 });
        // vec4-aligned strides with padding: vec4 loads, vec4 stores with a partial last chunk
        await check(gpu, rng, {
          m,
          n,
          k,
          transA,
          transB,
          lda: roundUp4(ca) + 4,
          ldb: roundUp4(cb),
          ldc: roundUp4(n) + 4,
        });
      }
    }
    await check(gpu, rng, {
      m: 37,
      n: 29,
      k: 61,
      transA: true,
      transB: true,
      lda: 40,
      ldb: 64,
      ldc: 32,
    });
  },
);

gpuTest("matmul accumulate (C += op(A)·op(B)) for every layout", async (gpu, rng) => {
  for (const [transA, transB] of [...LAYOUTS, [true, true] as [boolean, boolean]]) {
    for (const [m, n, k] of [[1, 1, 1], [7, 13, 5], [129, 67, 131]] as [number, number, number][]) {
      await check(gpu, rng, { m, n, k, transA, transB, accumulate: true });
      const ca = transA ? m : k, cb = transB ? k : n;
      await check(gpu, rng, {
        m,
        n,
        k,
        transA,
        transB,
        accumulate: true,
        lda: roundUp4(ca),
        ldb: roundUp4(cb) + 4,
        ldc: roundUp4(n),
      });
    }
  }
});

gpuTest("matmul other blockings, k = 0, and a 2-D workgroup grid", async (gpu, rng) => {
  const tunings: Partial<MatmulTuning>[] = [
    { rm: 4, cv: 1, wgX: 1, wgY: 1 },
    { rm: 8, cv: 4, wgX: 4, wgY: 2 },
    { rm: 12, cv: 3, wgX: 3, wgY: 5 },
  ];
  const cases: Case[] = [];
  // Pipelines compile per blocking, layout and stride class (~1 s each on llvmpipe): each
  // blocking gets one layout with odd strides and another with vec4-aligned padded strides.
  const aligned = { lda: 64, ldb: 64, ldc: 32 };
  tunings.forEach((tuning, t) => {
    const [oddA, oddB] = LAYOUTS[t];
    const [alA, alB] = LAYOUTS[(t + 2) % 3];
    cases.push({
      m: 37,
      n: 29,
      k: 61,
      transA: oddA,
      transB: oddB,
      tuning,
      lda: 67,
      ldb: 71,
      ldc: 31,
    });
    cases.push({ m: 37, n: 29, k: 61, transA: alA, transB: alB, tuning, ...aligned });
  });
  for (const c of cases) await check(gpu, rng, c);
  await check(gpu, rng, { m: 5, n: 6, k: 0 });
  await check(gpu, rng, { m: 5, n: 6, k: 0, accumulate: true });
  // 257 x 257 = 66,049 workgroups of one 4 x 4 block: more than one dispatch dimension holds.
  const tuning = { rm: 4, cv: 1, wgX: 1, wgY: 1 };
  if (257 * 257 <= gpu.limits.maxComputeWorkgroupsPerDimension) {
    throw new Error("grid test needs a larger size");
  }
  await check(gpu, rng, { m: 1025, n: 1025, k: 3, tuning });
});

gpuTest("matmul long K near llvmpipe's loop cap, and the wrapper's bound", async (gpu, rng) => {
  // k = 250,001: 62,500 slabs + 1 tail step per invocation, just under the 65,535 cap.
  await check(gpu, rng, { m: 3, n: 5, k: 250_001 });
  await check(gpu, rng, { m: 3, n: 5, k: 250_001, transA: true, transB: true });
  const t = gpu.tensor("f32", [270_000]);
  const c = gpu.tensor("f32", [1]);
  assertThrows(
    () => matmul(gpu.recorder(), { a: t, b: t, c, m: 1, n: 1, k: 260_004 }),
    FiligreeError,
    "loop",
  );
  assertThrows(
    () => matmul(gpu.recorder(), { a: t, b: t, c, m: 2, n: 2, k: 200_000 }),
    FiligreeError,
    "elements",
  );
  assertThrows(
    () => matmul(gpu.recorder(), { a: t, b: t, c, m: 1, n: 1, k: 4, lda: 3 }),
    FiligreeError,
    "leading",
  );
  assertThrows(
    () => matmul(gpu.recorder(), { a: t, b: c, c, m: 1, n: 1, k: 1 }),
    FiligreeError,
    "alias",
  );
  assertThrows(
    () => matmul(gpu.recorder(), { a: t, b: t, c, m: 1, n: 1, k: 1, tuning: { rm: 6 } }),
    FiligreeError,
    "tuning",
  );
});

gpuTest(
  "matmul in the feature-major layer layouts (forward TN, backward NN, dW NT), padding zero",
  async (gpu, rng) => {
    for (const [inF, outF, batch] of [[784, 10, 13], [31, 67, 5], [9, 4, 1]]) {
      const ld = roundUp4(batch);
      const X = asF32(rng.normal(inF * batch));
      const dY = asF32(rng.normal(outF * batch));
      const W = asF32(rng.normal(inF * outF));
      const tx = gpu.tensor("f32", [inF, ld], { data: toPadded(X, inF, batch) });
      const tdy = gpu.tensor("f32", [outF, ld], { data: toPadded(dY, outF, batch) });
      const tw = gpu.tensor("f32", [inF, outF], { data: Float32Array.from(W) });
      const ty = gpu.tensor("f32", [outF, ld]);
      const tdx = gpu.tensor("f32", [inF, ld]);
      const tdw = gpu.tensor("f32", [inF, outF]);
      for (const t of [ty, tdx, tdw]) gpu.poison(t);
      const rec = gpu.recorder();
      matmul(rec, { a: tw, b: tx, c: ty, m: outF, n: ld, k: inF, transA: true });
      matmul(rec, { a: tw, b: tdy, c: tdx, m: inF, n: ld, k: outF });
      matmul(rec, { a: tx, b: tdy, c: tdw, m: inF, n: outF, k: ld, transB: true });
      rec.submit();
      const label = `layer ${inF}->${outF} batch ${batch}`;
      // feature-major Y[out][batch] = Wᵀ·X ; dX[in][batch] = W·dY ; dW[in][out] = X·dYᵀ
      const y = fromPadded(await gpu.read(ty), outF, batch, `${label} Y`);
      assertCloseK(y, matmulRef(W, X, outF, batch, inF, { transA: true }), inF, `${label} Y`);
      const dx = fromPadded(await gpu.read(tdx), inF, batch, `${label} dX`);
      assertCloseK(dx, matmulRef(W, dY, inF, batch, outF), outF, `${label} dX`);
      assertCloseK(
        await gpu.read(tdw),
        matmulRef(X, dY, inF, outF, batch, { transB: true }),
        batch,
        `${label} dW`,
      );
    }
  },
);

function assertThrows(fn: () => void, cls: typeof FiligreeError, includes: string): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof cls && (e as Error).message.includes(includes)) return;
    throw new Error(`expected ${cls.name} mentioning "${includes}", got ${e}`);
  }
  throw new Error(`expected ${cls.name} mentioning "${includes}", nothing thrown`);
}

function assertCloseK(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  k: number,
  label: string,
): void {
  const { atol, rtol } = tolK(k);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]))) {
      throw new Error(`${label}[${i}]: got ${got[i]}, want ${want[i]}`);
    }
  }
}

gpuTest(
  "matmul with a bias (a layer's forward Z = WᵀX + b in one pass): float64, padding columns " +
    "zero over NaN-poisoned output, several blockings; bad combinations are one-line errors",
  async (gpu, rng) => {
    const tunings: (Partial<MatmulTuning> | undefined)[] = [undefined, { rm: 4, cv: 1, wgX: 2 }];
    for (const [inF, outF, batch] of [[784, 10, 13], [31, 67, 5], [9, 4, 1], [130, 33, 128]]) {
      for (const tuning of tunings) {
        const ld = roundUp4(batch);
        const X = asF32(rng.normal(inF * batch));
        const W = asF32(rng.normal(inF * outF));
        const b = asF32(rng.normal(outF));
        const tx = gpu.tensor("f32", [inF, ld], { data: toPadded(X, inF, batch) });
        const tw = gpu.tensor("f32", [inF, outF], { data: Float32Array.from(W) });
        const tb = gpu.tensor("f32", [outF], { data: Float32Array.from(b) });
        const tz = gpu.tensor("f32", [outF, ld]);
        gpu.poison(tz);
        const rec = gpu.recorder();
        matmul(rec, {
          a: tw,
          b: tx,
          c: tz,
          m: outF,
          n: ld,
          k: inF,
          transA: true,
          bias: { t: tb, cols: batch },
          tuning,
        });
        rec.submit();
        const label = `bias ${inF}->${outF} batch ${batch} ${JSON.stringify(tuning ?? {})}`;
        const got = await gpu.read(tz);
        for (let r = 0; r < outF; r++) {
          for (let c = batch; c < ld; c++) {
            if (got[r * ld + c] !== 0) throw new Error(`${label}: padding [${r}][${c}] not 0`);
          }
        }
        const want = matmulRef(W, X, outF, batch, inF, { transA: true }).map((v, i) =>
          v + b[Math.floor(i / batch)]
        );
        assertCloseK(fromPadded(got, outF, batch, label), want, inF, label);
        for (const t of [tx, tw, tb, tz]) gpu.release(t);
      }
    }
    const t = gpu.tensor("f32", [16]);
    const c = gpu.tensor("f32", [16]);
    const rec = gpu.recorder();
    assertThrows(
      () =>
        matmul(rec, { a: t, b: t, c, m: 4, n: 4, k: 4, accumulate: true, bias: { t, cols: 4 } }),
      FiligreeError,
      "no accumulate",
    );
    assertThrows(
      () => matmul(rec, { a: t, b: t, c, m: 4, n: 4, k: 4, bias: { t, cols: 5 } }),
      FiligreeError,
      "bias columns 5",
    );
  },
);

gpuTest(
  "matmul backward (dA = dC·Bᵀ via NT, dB = Aᵀ·dC via TN on the GPU) vs finite differences",
  async (gpu, rng) => {
    for (const [m, n, k] of [[6, 7, 5], [3, 1, 9]]) {
      const A = asF32(rng.normal(m * k));
      const B = asF32(rng.normal(k * n));
      // gradCheck draws dOut as the first normal(m*n) of its rng: reproduce it to run the GPU first.
      const seed = rng.int(2 ** 31);
      const dC = asF32(new Rng(seed).normal(m * n));
      const ta = gpu.tensor("f32", [m * k], { data: Float32Array.from(A) });
      const tb = gpu.tensor("f32", [k * n], { data: Float32Array.from(B) });
      const tdc = gpu.tensor("f32", [m * n], { data: Float32Array.from(dC) });
      const tda = gpu.tensor("f32", [m * k]);
      const tdb = gpu.tensor("f32", [k * n]);
      gpu.poison(tda);
      gpu.poison(tdb);
      const rec = gpu.recorder();
      matmul(rec, { a: tdc, b: tb, c: tda, m, n: k, k: n, transB: true }); // dA[m][k] = dC·Bᵀ
      matmul(rec, { a: ta, b: tdc, c: tdb, m: k, n, k: m, transA: true }); // dB[k][n] = Aᵀ·dC
      rec.submit();
      const dA = Float64Array.from(await gpu.read(tda));
      const dB = Float64Array.from(await gpu.read(tdb));
      const [rA, rB] = matmulGradRef(A, B, dC, m, n, k);
      assertCloseK(dA, rA, n, `dA ${m}x${n}x${k}`);
      assertCloseK(dB, rB, m, `dB ${m}x${n}x${k}`);
      gradCheck(
        ([a, b]) => matmulRef(a, b, m, n, k),
        (_inputs, dOut) => {
          // The GPU saw dOut rounded to f32; gradCheck's tolerance (1e-4 relative) covers that.
          for (let i = 0; i < dOut.length; i++) {
            if (Math.fround(dOut[i]) !== dC[i]) {
              throw new Error(
                "gradCheck dOut differs from the GPU's dC",
              );
            }
          }
          return [dA, dB];
        },
        [A, B],
        { rng: new Rng(seed), rtol: 1e-4, atol: 1e-5, label: `matmul ${m}x${n}x${k}` },
      );
    }
  },
);
