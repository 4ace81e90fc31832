import {
  ablationCarry,
  ablationMetrics,
  bnEvalBackward,
  carryBase,
  carryChunking,
  type CarryOp,
  type CarrySpec,
  entryScores,
  mapElements,
  type MetricLoss,
  packAblations,
  packCarry,
  patchColumns,
  replaceTerm,
  rowSumSq,
  type WeightAblation,
} from "../../src/kernels/analysis.ts";
import {
  ablationCarryRef,
  ablationMetricsRef,
  bnEvalBackwardRef,
  bnEvalForwardRef,
  entryScoreRef,
  patchColumnsRef,
  replaceTermRef,
  rowSumSqRef,
} from "../../src/kernels/analysis_ref.ts";
import { FiligreeError, roundUp4 } from "../../src/gpu/mod.ts";
import {
  asF32,
  assertClose,
  eachInputPath,
  fromPadded,
  gpuTest,
  gradCheck,
  toPadded,
} from "../../src/testing/mod.ts";
import type { Rng } from "../../src/testing/mod.ts";

gpuTest(
  "patch_columns: rank-1 and zero patches match the float64 reference (both variants and input paths)",
  async (gpu, rng) => {
    await eachInputPath(gpu, ["patch_columns", "patch_columns4"], async (path) => {
      // 1 ablation; primes; a size with >1 workgroup rows of the 2-D grid is covered by grid()
      // tests; 8 samples: the vec4 kernel, and the scalar one on the same operands (same bits).
      for (
        const [rows, nIn, samples, K] of [[1, 1, 1, 1], [7, 5, 13, 3], [67, 31, 9, 11], [
          13,
          5,
          8,
          5,
        ]]
      ) {
        const z = asF32(rng.normal(rows * samples));
        const x = asF32(rng.normal(nIn * samples));
        const abl: WeightAblation[] = Array.from({ length: K }, () => ({
          i: rng.int(nIn),
          j: rng.int(rows),
          w: Math.fround(rng.normal(1)[0]),
        }));
        const ld = roundUp4(samples);
        const tz = gpu.tensor("f32", [rows, ld], { data: toPadded(z, rows, samples) });
        const tx = gpu.tensor("f32", [nIn, ld], { data: toPadded(x, nIn, samples) });
        const variants = samples % 4 ? ["scalar" as const] : ["vec4" as const, "scalar" as const];
        for (const mode of ["rank1", "zero"] as const) {
          const bits: Float32Array[] = [];
          for (const variant of variants) {
            const out = gpu.tensor("f32", [rows, roundUp4(K * samples)]);
            gpu.poison(out);
            const rec = gpu.recorder();
            patchColumns(rec, {
              cached: tz,
              x: tx,
              rows,
              samples,
              ablations: abl,
              mode,
              out,
              variant,
            });
            rec.submit();
            const raw = new Float32Array(await gpu.read(out));
            bits.push(raw);
            assertClose(
              fromPadded(raw, rows, K * samples, `patch ${mode}`),
              patchColumnsRef(z, x, rows, samples, abl, mode),
              {
                rtol: 1e-6,
                atol: 1e-6,
                label: `${path} ${variant} patch ${mode} ${rows}x${samples}x${K}`,
              },
            );
            gpu.release(out);
          }
          if (bits.length === 2) {
            assertClose(bits[0], bits[1], { rtol: 0, atol: 0, label: `${path} vec4 = scalar` });
          }
        }
        gpu.release(tz);
        gpu.release(tx);
      }
      let threw = false;
      try {
        const t = gpu.tensor("f32", [1, 4]);
        patchColumns(gpu.recorder(), {
          cached: t,
          x: t,
          rows: 1,
          samples: 3,
          ablations: [{ i: 0, j: 0, w: 1 }],
          out: gpu.tensor("f32", [1, 4]),
          variant: "vec4",
        });
      } catch (e) {
        threw = e instanceof FiligreeError && /samples % 4 == 0, got 3/.test((e as Error).message);
      }
      if (!threw) throw new Error("the vec4 variant accepted 3 samples");
    });
  },
);

gpuTest(
  "replace_term: cached - old + fresh per copy matches the float64 reference (both input paths)",
  async (gpu, rng) => {
    await eachInputPath(gpu, ["replace_term", "replace_term4"], async (path) => {
      for (
        const [rows, samples, K, variant] of [
          [1, 1, 1, "scalar"],
          [7, 13, 3, "scalar"],
          [33, 5, 9, "scalar"],
          [4, 8, 2, "vec4"],
          [4, 8, 2, "scalar"],
          [9, 12, 5, "vec4"],
        ] as const
      ) {
        const n = K * samples, ldN = roundUp4(n);
        const cached = asF32(rng.normal(rows * samples)), old = asF32(rng.normal(rows * samples));
        const fresh = asF32(rng.normal(rows * n));
        const t = (a: Float64Array, r: number, c: number) =>
          gpu.tensor("f32", [r, roundUp4(c)], { data: toPadded(a, r, c) });
        const out = gpu.tensor("f32", [rows, ldN]);
        gpu.poison(out);
        const ins = [t(cached, rows, samples), t(old, rows, samples), t(fresh, rows, n)];
        const rec = gpu.recorder();
        replaceTerm(rec, {
          cached: ins[0],
          old: ins[1],
          fresh: ins[2],
          rows,
          samples,
          count: K,
          out,
          variant,
        });
        rec.submit();
        const raw = await gpu.read(out);
        for (let r = 0; r < rows; r++) {
          for (let c = n; c < ldN; c++) {
            if (raw[r * ldN + c] !== 0) throw new Error(`${path}: padding [${r}][${c}] not 0`);
          }
        }
        assertClose(
          fromPadded(raw, rows, n, "replace_term"),
          replaceTermRef(cached, old, fresh, rows, samples, K),
          {
            rtol: 1e-6,
            atol: 1e-6,
            label: `${path} ${variant} replace_term ${rows}x${samples}x${K}`,
          },
        );
        for (const x of [...ins, out]) gpu.release(x);
      }
    });
  },
);

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

/** A random unit-wise chain of `n` units: an activation, eval batch norm or SReLU. */
function randomChain(rng: Rng, n: number, kind: number): CarryOp[] {
  const f = (a: Float64Array) => Float32Array.from(a);
  const bn: CarryOp = {
    kind: "bn",
    gamma: f(rng.uniform(n, 0.5, 1.5)),
    beta: f(rng.normal(n, 0.3)),
    mean: f(rng.normal(n, 0.3)),
    variance: f(rng.uniform(n, 0.5, 2)),
    eps: 1e-5,
  };
  const srelu: CarryOp = {
    kind: "srelu",
    params: f(Float64Array.from([
      ...rng.uniform(n, -1, -0.2),
      ...rng.uniform(n, 0, 0.3),
      ...rng.uniform(n, 0.2, 1),
      ...rng.uniform(n, 0.5, 1.5),
    ])),
  };
  if (kind === 0) return [{ kind: "act", activation: "relu", param: 0 }];
  if (kind === 1) return [bn, { kind: "act", activation: "tanh", param: 0 }];
  if (kind === 2) return [{ kind: "act", activation: "gelu", param: 0 }, bn];
  return [srelu];
}

/** Random CSR by input row of an nIn x nOut layer at the given density. */
function randomRows(rng: Rng, nIn: number, nOut: number, density: number) {
  const ptr = new Uint32Array(nIn + 1), col: number[] = [], val: number[] = [];
  for (let i = 0; i < nIn; i++) {
    for (let r = 0; r < nOut; r++) {
      if (rng.uniform(1, 0, 1)[0] < density) (col.push(r), val.push(rng.normal(1)[0]));
    }
    ptr[i + 1] = col.length;
  }
  return { ptr, col: Uint32Array.from(col), val: Float32Array.from(val) };
}

gpuTest(
  "ablation_carry.wgsl: per-ablation loss and hit changes match the float64 reference (odd S, poisoned out)",
  async (gpu, rng) => {
    const cases: [number, number, number, number, 0 | 1 | 2, MetricLoss, number, number][] = [
      // nIn, n0, n1, S, depth, loss, chain kind, forced chunk (0: automatic)
      [5, 3, 0, 1, 0, "xent", 0, 0],
      [13, 7, 0, 37, 0, "mse", 0, 0],
      [11, 9, 7, 150, 1, "xent", 0, 64],
      [11, 9, 7, 61, 1, "mse-sigmoid", 1, 0],
      [17, 10, 9, 133, 2, "xent", 0, 64],
      [17, 10, 9, 70, 2, "mse", 2, 0],
      [9, 6, 5, 45, 2, "xent", 3, 0],
    ];
    for (const [ci, [nIn, n0, n1, S, depth, loss, kind, forced]] of cases.entries()) {
      // Operands from storage buffers and from texture mirrors alternately (the loaders of
      // ablation_carry_buffers_fns.wgsl / ablation_carry_textures_fns.wgsl): both at every depth.
      const inputs = ci % 2 ? "texture" : "buffer";
      const classes = depth === 0 ? n0 : depth === 1 ? n1 : 4;
      const ld = roundUp4(S);
      // Inputs with exact zeros (a third), as after a ReLU or on MNIST's background.
      const x0 = asF32(rng.normal(nIn * S).map((v) => (v < -0.4 ? 0 : v)));
      const z0 = asF32(rng.normal(n0 * S));
      const z1 = depth === 2 ? asF32(rng.normal(n1 * S)) : new Float64Array(1);
      // Depth 0: the ablated layer is the output layer, its pre-activations are the logits.
      const logits = depth === 0 ? z0 : asF32(rng.normal(classes * S).map((v) => 2 * v));
      const labels = Uint32Array.from({ length: S }, () => rng.int(classes));
      const sampPtr = new Uint32Array(nIn + 1), idx: number[] = [];
      for (let i = 0; i < nIn; i++) {
        for (let s = 0; s < S; s++) if (x0[i * S + s] !== 0) idx.push(s);
        sampPtr[i + 1] = idx.length;
      }
      const spec: CarrySpec = {
        samples: S,
        sampPtr,
        sampIdx: Uint32Array.from(idx),
        labels,
        depth,
        classes,
        loss,
        chain0: depth >= 1 ? randomChain(rng, n0, kind) : [],
        chain1: depth === 2 ? randomChain(rng, n1, (kind + 1) % 4) : [],
        row1: depth >= 1 ? randomRows(rng, n0, depth === 1 ? classes : n1, 0.6) : undefined,
        row2: depth === 2 ? randomRows(rng, n1, classes, 0.7) : undefined,
        logits: toPadded(logits, classes, S),
      };
      const K = 2 * nIn + 1;
      const abl: WeightAblation[] = Array.from({ length: K }, (_, k) => ({
        i: k < nIn ? k : rng.int(nIn),
        j: rng.int(n0),
        w: Math.fround(rng.normal(1)[0] * 1.5),
      }));
      const meta = packCarry(spec);
      const auto = carryChunking(meta)!;
      const chunk = forced || auto.chunk;
      const chunks = Math.max(1, Math.ceil(meta.maxList / chunk));
      const t = (a: ArrayLike<number>, rows: number) =>
        gpu.tensor("f32", [rows, ld], { data: toPadded(a, rows, S) });
      const out = gpu.tensor("f32", [2 * chunks * K]);
      gpu.poison(out);
      const ablT = gpu.tensor("u32", [3 * K], { data: packAblations(abl) });
      const rec = gpu.recorder();
      const metaU = gpu.tensor("u32", [meta.u.length], { data: meta.u });
      const metaF = gpu.tensor("f32", [meta.f.length], { data: meta.f });
      const metaV = gpu.tensor("f32", [meta.v.length], { data: meta.v });
      // W1's pre-activations (depth 2; else a placeholder the kernel does not read).
      const zl = depth === 2 ? t(z1, n1) : gpu.tensor("f32", [4]);
      const scratch = gpu.tensor("f32", [4 * S]);
      gpu.poison(scratch);
      carryBase(rec, { meta, metaU, metaF, metaV, zl, scratch });
      // Two dispatches (the second starts at ablation 3) cover the list.
      for (const [first, count] of [[0, 3], [3, K - 3]]) {
        ablationCarry(rec, {
          meta,
          metaU,
          metaF,
          x0: t(x0, nIn),
          z0: t(z0, n0),
          metaV,
          zl,
          ablations: ablT,
          first,
          count,
          chunk,
          chunks,
          out,
          inputs,
        });
      }
      rec.submit();
      const r = await gpu.read(out);
      const got = new Float64Array(2 * K);
      for (let k = 0; k < K; k++) {
        for (let c = 0; c < chunks; c++) {
          got[2 * k] += r[2 * (k * chunks + c)];
          got[2 * k + 1] += r[2 * (k * chunks + c) + 1];
        }
      }
      const want = ablationCarryRef(spec, x0, z0, z1, logits, abl);
      const label = `carry ${inputs} depth ${depth} ${loss} chain ${kind} S ${S} chunks ${chunks}`;
      for (let k = 0; k < K; k++) {
        if (!(Math.abs(got[2 * k] - want[2 * k]) <= 1e-4 * S + 1e-4 * Math.abs(want[2 * k]))) {
          throw new Error(`${label} ablation ${k}: loss ${got[2 * k]}, want ${want[2 * k]}`);
        }
        // A hit may flip only where two logits tie within float32 rounding: at most one sample.
        if (!(Math.abs(got[2 * k + 1] - want[2 * k + 1]) <= 1)) {
          throw new Error(
            `${label} ablation ${k}: hits ${got[2 * k + 1]}, want ${want[2 * k + 1]}`,
          );
        }
      }
      if (forced && chunks < 2) throw new Error(`${label}: the case should use several chunks`);
    }
  },
);
