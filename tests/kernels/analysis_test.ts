import {
  ablationMetrics,
  bnEvalBackward,
  entryScores,
  mapElements,
  patchColumns,
  rowSumSq,
  type WeightAblation,
} from "../../src/kernels/analysis.ts";
import {
  ablationMetricsRef,
  bnEvalBackwardRef,
  bnEvalForwardRef,
  entryScoreRef,
  patchColumnsRef,
  rowSumSqRef,
} from "../../src/kernels/analysis_ref.ts";
import { roundUp4 } from "../../src/gpu/mod.ts";
import {
  asF32,
  assertClose,
  fromPadded,
  gpuTest,
  gradCheck,
  toPadded,
} from "../../src/testing/mod.ts";

gpuTest("patch_columns: rank-1 and zero patches match the float64 reference", async (gpu, rng) => {
  // 1 ablation; primes; a size with >1 workgroup rows of the 2-D grid is covered by grid() tests.
  for (const [rows, nIn, samples, K] of [[1, 1, 1, 1], [7, 5, 13, 3], [67, 31, 9, 11]]) {
    const z = asF32(rng.normal(rows * samples));
    const x = asF32(rng.normal(nIn * samples));
    const abl: WeightAblation[] = Array.from({ length: K }, () => ({
      i: rng.int(nIn),
      j: rng.int(rows),
      w: Math.fround(rng.normal(1)[0]),
    }));
    const tz = gpu.tensor("f32", [rows, roundUp4(samples)], { data: toPadded(z, rows, samples) });
    const tx = gpu.tensor("f32", [nIn, roundUp4(samples)], { data: toPadded(x, nIn, samples) });
    for (const mode of ["rank1", "zero"] as const) {
      const out = gpu.tensor("f32", [rows, roundUp4(K * samples)]);
      gpu.poison(out);
      const rec = gpu.recorder();
      patchColumns(rec, { cached: tz, x: tx, rows, samples, ablations: abl, mode, out });
      rec.submit();
      const got = fromPadded(await gpu.read(out), rows, K * samples, `patch ${mode}`);
      assertClose(got, patchColumnsRef(z, x, rows, samples, abl, mode), {
        rtol: 1e-6,
        atol: 1e-6,
        label: `patch ${mode} ${rows}x${samples}x${K}`,
      });
    }
  }
});

gpuTest("ablation_metrics: loss sums and correct counts per ablation", async (gpu, rng) => {
  for (const [classes, samples, K] of [[1, 1, 1], [3, 7, 2], [10, 131, 5], [4, 70, 67]]) {
    const n = K * samples;
    const z = asF32(rng.normal(classes * n).map((v) => 3 * v));
    const labels = Uint32Array.from({ length: samples }, () => rng.int(classes));
    const tz = gpu.tensor("f32", [classes, roundUp4(n)], { data: toPadded(z, classes, n) });
    const tl = gpu.tensor("u32", [samples], { data: labels });
    for (const loss of ["xent", "mse", "mse-sigmoid"] as const) {
      const sums = gpu.tensor("f32", [2 * K]);
      gpu.poison(sums);
      const rec = gpu.recorder();
      ablationMetrics(rec, { logits: tz, labels: tl, classes, samples, count: K, loss, sums });
      rec.submit();
      const got = await gpu.read(sums);
      const want = ablationMetricsRef(z, labels, classes, samples, K, loss);
      assertClose(got, want, { rtol: 1e-4, atol: 1e-4, label: `metrics ${loss} ${classes}x${n}` });
    }
  }
});

gpuTest("map_elements and row_sumsq match the reference", async (gpu, rng) => {
  for (const n of [1, 7, 1000]) {
    const x = asF32(rng.normal(n)), g = asF32(rng.normal(n));
    const tx = gpu.tensor("f32", [n], { data: Float32Array.from(x) });
    const tg = gpu.tensor("f32", [n], { data: Float32Array.from(g) });
    const cases = [
      ["square", x.map((v) => v * v)],
      ["abs", x.map(Math.abs)],
      ["axpy", x.map((v, i) => v + 0.25 * g[i])],
      ["mul", x.map((v, i) => v * g[i])],
    ] as const;
    for (const [op, want] of cases) {
      const out = gpu.tensor("f32", [n]);
      gpu.poison(out);
      const rec = gpu.recorder();
      mapElements(rec, { src: tx, dst: out, n, op, g: tg, alpha: 0.25 });
      rec.submit();
      assertClose(await gpu.read(out), want, { rtol: 1e-6, atol: 1e-7, label: `map ${op} ${n}` });
    }
  }
  for (const [rows, batch] of [[1, 1], [67, 13], [5, 301]]) {
    const x = asF32(rng.normal(rows * batch));
    const tx = gpu.tensor("f32", [rows, roundUp4(batch)], { data: toPadded(x, rows, batch) });
    const out = gpu.tensor("f32", [rows]);
    gpu.poison(out);
    const rec = gpu.recorder();
    rowSumSq(rec, { x: tx, out, rows, batch });
    rec.submit();
    assertClose(await gpu.read(out), rowSumSqRef(x, rows, batch), {
      rtol: 1e-5,
      atol: 1e-6,
      label: `row_sumsq ${rows}x${batch}`,
    });
  }
});

gpuTest(
  "entry_scores: every score matches its formula; random is uniform and seeded",
  async (gpu, rng) => {
    const nIn = 13, nOut = 7, n = 67;
    const w = asF32(rng.normal(n)), g = asF32(rng.normal(n)), hg = asF32(rng.normal(n));
    const fisher = asF32(rng.normal(n).map(Math.abs));
    const ends = new Uint32Array(2 * n);
    for (let e = 0; e < n; e++) {
      ends[2 * e] = rng.int(nIn);
      ends[2 * e + 1] = rng.int(nOut);
    }
    const rowSq = asF32(rng.normal(nIn).map(Math.abs));
    const fin = asF32(rng.normal(nIn).map(Math.abs)), fout = asF32(rng.normal(nOut).map(Math.abs));
    const t = (a: Float64Array) => gpu.tensor("f32", [a.length], { data: Float32Array.from(a) });
    const args = {
      n,
      w: t(w),
      grad: t(g),
      hg: t(hg),
      fisher: t(fisher),
      ends: gpu.tensor("u32", [2 * n], { data: ends }),
      rowSq: t(rowSq),
      flowIn: t(fin),
      flowOut: t(fout),
      fisherScale: 3,
    };
    for (
      const score of ["magnitude", "snip", "taylor", "obd", "grasp", "synflow", "wanda"] as const
    ) {
      const out = gpu.tensor("f32", [n]);
      gpu.poison(out);
      const rec = gpu.recorder();
      entryScores(rec, { ...args, score, out });
      rec.submit();
      const want = Float64Array.from({ length: n }, (_, e) =>
        entryScoreRef(score, {
          w: w[e],
          g: g[e],
          hg: hg[e],
          fisher: fisher[e],
          fisherScale: 3,
          rowSq: rowSq[ends[2 * e]],
          flowIn: fin[ends[2 * e]],
          flowOut: fout[ends[2 * e + 1]],
        }));
      assertClose(await gpu.read(out), want, { rtol: 1e-5, atol: 1e-7, label: `score ${score}` });
    }
    const big = 4000;
    const wb = gpu.tensor("f32", [big]);
    const r = async (seed: number) => {
      const out = gpu.tensor("f32", [big]);
      gpu.poison(out);
      const rec = gpu.recorder();
      entryScores(rec, { score: "random", n: big, w: wb, seed, out });
      rec.submit();
      return await gpu.read(out) as Float32Array;
    };
    const a = await r(1), b = await r(1), c = await r(2);
    const mean = a.reduce((s, v) => s + v, 0) / big;
    if (!(a.every((v) => v >= 0 && v < 1) && Math.abs(mean - 0.5) < 0.03)) {
      throw new Error(`random score not uniform on [0,1): mean ${mean}`);
    }
    if (a.some((v, i) => v !== b[i])) throw new Error("random score not reproducible");
    if (a.filter((v, i) => v === c[i]).length > 10) {
      throw new Error(
        "random score ignores the seed",
      );
    }
  },
);

gpuTest("bn_eval_backward matches the reference and finite differences", async (gpu, rng) => {
  const eps = 1e-5;
  for (const [rows, batch] of [[1, 1], [7, 13], [67, 5]]) {
    const dy = asF32(rng.normal(rows * batch));
    const gamma = asF32(rng.normal(rows));
    const rv = asF32(rng.normal(rows).map((v) => 0.1 + v * v));
    const t = (a: Float64Array) => gpu.tensor("f32", [a.length], { data: Float32Array.from(a) });
    const tdy = gpu.tensor("f32", [rows, roundUp4(batch)], { data: toPadded(dy, rows, batch) });
    const dx = gpu.tensor("f32", [rows, roundUp4(batch)]);
    gpu.poison(dx);
    const rec = gpu.recorder();
    bnEvalBackward(rec, { dy: tdy, gamma: t(gamma), runningVar: t(rv), dx, rows, batch, eps });
    rec.submit();
    const raw = await gpu.read(dx);
    const got = fromPadded(raw, rows, batch, "bn eval dx");
    assertClose(got, bnEvalBackwardRef(dy, gamma, rv, rows, batch, eps), {
      rtol: 1e-5,
      atol: 1e-6,
      label: `bn eval backward ${rows}x${batch}`,
    });
  }
  const rows = 4, batch = 5;
  const gamma = rng.normal(rows), beta = rng.normal(rows), mean = rng.normal(rows);
  const rv = rng.normal(rows).map((v) => 0.5 + v * v);
  gradCheck(
    ([x]) => bnEvalForwardRef(x, gamma, beta, mean, rv, rows, batch, eps),
    ([_x], dOut) => [bnEvalBackwardRef(dOut, gamma, rv, rows, batch, eps)],
    [rng.normal(rows * batch)],
    { rng, label: "bn eval" },
  );
});
