import { FiligreeError, type Gpu, roundUp4, type Tensor } from "../../src/gpu/mod.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { buildLstm } from "../../src/nn/lstm.ts";
import type { Sequential } from "../../src/nn/mlp.ts";
import {
  isLstmLayer,
  type LstmAblation,
  LstmAblationEngine,
} from "../../src/analysis/ablation_lstm.ts";
import {
  ablationLstmStep,
  type LstmAblationSpec,
  packLstmAblations,
} from "../../src/kernels/ablation_lstm.ts";
import {
  ablationLstmStepRef,
  type DenseRefLayer,
  lstmAblationRef,
  lstmMetricsRef,
  type LstmRefModel,
} from "../../src/kernels/ablation_lstm_ref.ts";
import {
  assertClose,
  eachInputPath,
  fromPadded,
  gpuTest,
  type Rng,
} from "../../src/testing/mod.ts";
import { computeScores } from "../../src/analysis/scores.ts";
import { Probe } from "../../src/analysis/probe.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { lstmForwardRef } from "../../src/kernels/lstm_ref.ts";
import type { MetricLoss } from "../../src/kernels/analysis.ts";
import { modelSpecOf } from "../../src/train/model_spec.ts";

interface Case {
  steps: number;
  features: number;
  hidden: number;
  classes: number;
  samples: number;
  head: number[];
  method: "set" | "dense";
  density?: number;
  activation?: string;
  loss?: MetricLoss;
}

interface Built {
  model: Sequential;
  x: { t: Tensor; rows: number; batch: number };
  labels: Tensor;
  ref: LstmRefModel;
  xRef: Float64Array;
  labelsHost: Uint32Array;
}

/**
 * Random weights written into an LSTM model (its LSTM at a scale where the gates are neither
 * saturated nor linear, then its head) and the model's float64 copy.
 */
async function randomize(
  gpu: Gpu,
  rng: Rng,
  model: Sequential,
  c: { steps: number; features: number; hidden: number },
): Promise<LstmRefModel> {
  const lstm = model.layers[0];
  if (!isLstmLayer(lstm)) throw new Error("first layer is not an LSTM");
  const G = 4 * c.hidden;
  // Random weights at a scale where the gates are neither saturated nor linear.
  for (const csr of [lstm.wx.csr, lstm.wh.csr]) {
    gpu.write(csr.values, Float32Array.from(rng.normal(csr.nnz, 0.6)));
  }
  gpu.write(lstm.bias, Float32Array.from(rng.normal(G, 0.5)));
  const toDense = async (csr: typeof lstm.wx.csr) => {
    const [rowPtrT, colT, v] = await Promise.all([
      gpu.read(csr.rowPtrT),
      gpu.read(csr.colT),
      gpu.read(csr.values),
    ]);
    const d = new Float64Array(csr.nIn * csr.nOut);
    for (let j = 0; j < csr.nOut; j++) {
      for (let k = rowPtrT[j]; k < rowPtrT[j + 1]; k++) d[colT[k] * csr.nOut + j] = v[k];
    }
    return d;
  };
  // The head: weight layers with fused activations (sparse CSR or dense [in][out]).
  const head: DenseRefLayer[] = [];
  for (const l of model.layers.slice(1)) {
    const L = l as unknown as {
      csr?: typeof lstm.wx.csr;
      weight?: Tensor;
      bias: Tensor;
      act: string;
      actParam: number;
      outFeatures: number;
    };
    const nOut = L.outFeatures;
    const nIn = L.csr ? L.csr.nIn : head.at(-1)?.nOut ?? c.hidden;
    const nnz = L.csr ? L.csr.nnz : nIn * nOut;
    const wv = Float32Array.from(rng.normal(nnz, 1 / Math.sqrt(nIn * 0.5)));
    const bv = Float32Array.from(rng.normal(nOut, 0.2));
    gpu.write(L.csr ? L.csr.values : L.weight!, wv);
    gpu.write(L.bias, bv);
    head.push({
      nIn,
      nOut,
      w: L.csr ? await toDense(L.csr) : Float64Array.from(wv),
      b: Float64Array.from(bv),
      act: L.act,
      actParam: L.actParam,
    });
  }
  return {
    steps: c.steps,
    features: c.features,
    hidden: c.hidden,
    wx: await toDense(lstm.wx.csr),
    wh: await toDense(lstm.wh.csr),
    bias: Float64Array.from(await gpu.read(lstm.bias)).slice(0, G),
    head,
  };
}

/** A model of the case with random weights, its float64 copy, and an evaluation set. */
async function build(gpu: Gpu, rng: Rng, c: Case): Promise<Built> {
  const cfg = {
    ...parseTrainConfig({
      model: "lstm",
      lstmHidden: c.hidden,
      method: c.method,
      ...(c.density ? { density: c.density } : {}),
      activation: c.activation ?? "relu",
      seed: rng.int(1000),
    }),
    hidden: c.head,
  };
  const model = buildLstm(
    gpu,
    modelSpecOf(cfg, {
      features: c.steps * c.features,
      classes: c.classes,
      shape: [c.steps, c.features],
    }),
  );
  const ref = await randomize(gpu, rng, model, c);
  const S = c.samples, ld = roundUp4(S), R = c.steps * c.features;
  const xRef = new Float64Array(R * S);
  // Padding columns are NaN: nothing may read them.
  const xPad = new Float32Array(R * ld).fill(NaN);
  for (let r = 0; r < R; r++) {
    for (let s = 0; s < S; s++) {
      const v = Math.fround(rng.next() < 0.3 ? 0 : rng.next());
      xRef[r * S + s] = v;
      xPad[r * ld + s] = v;
    }
  }
  const labelsHost = Uint32Array.from({ length: S }, () => rng.int(c.classes));
  return {
    model,
    x: { t: gpu.tensor("f32", [R, ld], { data: xPad }), rows: R, batch: S },
    labels: gpu.tensor("u32", [S], { data: labelsHost }),
    ref,
    xRef,
    labelsHost,
  };
}

function specsOf(eng: LstmAblationEngine, list: LstmAblation[]): LstmAblationSpec[] {
  return list.map((a) => eng.spec(a));
}

/** At most `n` accuracy deltas differ (a near-tied sample may flip between f32 and f64). */
function assertAccuracy(got: Float64Array, want: Float64Array, S: number, label: string, n = 1) {
  let bad = 0;
  for (let k = 0; k < want.length; k++) {
    const d = Math.abs(got[k] - want[k]);
    if (d > 1e-6) {
      if (d > 1 / S + 1e-6) throw new Error(`${label}[${k}]: ΔAcc ${got[k]} vs ${want[k]}`);
      bad++;
    }
  }
  if (bad > n) throw new Error(`${label}: ${bad} accuracy deltas differ by one sample`);
}

async function checkCase(gpu: Gpu, rng: Rng, c: Case) {
  const b = await build(gpu, rng, c);
  const loss = c.loss ?? "xent";
  const eng = await LstmAblationEngine.create(gpu, b.model, b.x, b.labels, {
    loss,
    maxBatch: 7, // several batches, the last one padded with unablated copies
  });
  const S = c.samples;
  // Baselines: engine, the model's own forward, float64.
  const base = await eng.baseline();
  const own = await eng.evaluate();
  const refBase = lstmMetricsRef(b.ref, b.xRef, b.labelsHost, S, loss);
  assertClose([base.loss, own.loss], [refBase.loss, refBase.loss], {
    atol: 2e-5,
    rtol: 2e-5,
    label: "baseline loss",
  });
  const list: LstmAblation[] = [
    ...Array.from({ length: eng.wx.nnz }, (_, entry) => ({ part: "wx" as const, entry })),
    ...Array.from({ length: eng.wh.nnz }, (_, entry) => ({ part: "wh" as const, entry })),
    ...Array.from({ length: 4 * c.hidden }, (_, row) => ({ part: "bias" as const, row })),
    ...Array.from({ length: c.hidden }, (_, unit) => ({ part: "unit" as const, unit })),
  ];
  const got = await eng.ablate(list);
  const want = lstmAblationRef(b.ref, b.xRef, b.labelsHost, S, loss, specsOf(eng, list));
  assertClose(got.dLoss, want.dLoss, { atol: 3e-5, rtol: 1e-3, label: "Δloss vs float64" });
  assertAccuracy(got.dAccuracy, want.dAccuracy, S, "Δaccuracy vs float64", 2);
  // The per-step input path (for evaluation sets whose all-steps input part does not fit).
  const perStep = await LstmAblationEngine.create(gpu, b.model, b.x, b.labels, {
    loss,
    maxBatch: 5,
    precompute: false,
  });
  if (perStep.precomputed || !eng.precomputed) throw new Error("precompute option ignored");
  const got2 = await perStep.ablate(list);
  assertClose(got2.dLoss, got.dLoss, { atol: 1e-6, rtol: 1e-5, label: "per-step input path" });
  assertAccuracy(got2.dAccuracy, got.dAccuracy, S, "per-step input path Δacc", 0);
  perStep.destroy();
  // Some ablation must matter, or the comparison proves nothing.
  if (!want.dLoss.some((d) => Math.abs(d) > 1e-3)) throw new Error("no ablation changed the loss");
  // The naive GPU path (zero it, the model's own full forward) on a sample of every kind.
  const pick = (part: LstmAblation["part"]) => {
    const ks = list.map((a, k) => [a, k] as const).filter(([a]) => a.part === part);
    return Array.from({ length: 4 }, () => ks[rng.int(ks.length)]);
  };
  for (const part of ["wx", "wh", "bias", "unit"] as const) {
    for (const [a, k] of pick(part)) {
      const n = await eng.ablateNaive(a);
      assertClose([n.dLoss], [got.dLoss[k]], {
        atol: 3e-5,
        rtol: 1e-3,
        label: `${part} ${JSON.stringify(a)} engine vs naive Δloss`,
      });
      assertAccuracy(
        Float64Array.of(n.dAccuracy),
        Float64Array.of(got.dAccuracy[k]),
        S,
        `${part} naive Δacc`,
        1,
      );
    }
  }
  // The naive path restored every weight.
  const after = await eng.evaluate();
  if (after.loss !== own.loss) {
    throw new Error(`weights not restored: ${after.loss} vs ${own.loss}`);
  }
  eng.destroy();
}

gpuTest(
  "LSTM ablation: sparse LSTM (H 13, F 7, T 5, 3 classes) vs float64 and naive",
  async (gpu, rng) => {
    await checkCase(gpu, rng, {
      steps: 5,
      features: 7,
      hidden: 13,
      classes: 3,
      samples: 23,
      head: [6],
      method: "set",
      density: 0.4,
    });
  },
);

gpuTest(
  "LSTM ablation: 12 samples (the vec4 step kernel) vs float64 and naive",
  async (gpu, rng) => {
    await checkCase(gpu, rng, {
      steps: 4,
      features: 5,
      hidden: 11,
      classes: 3,
      samples: 12,
      head: [5],
      method: "set",
      density: 0.5,
    });
  },
);

gpuTest("LSTM ablation: dense LSTM, output layer reading h_T directly, MSE", async (gpu, rng) => {
  await checkCase(gpu, rng, {
    steps: 3,
    features: 5,
    hidden: 9,
    classes: 4,
    samples: 17,
    head: [],
    method: "dense",
    loss: "mse",
  });
});

gpuTest("LSTM ablation: tanh head, one step, one sample", async (gpu, rng) => {
  await checkCase(gpu, rng, {
    steps: 1,
    features: 3,
    hidden: 5,
    classes: 2,
    samples: 1,
    head: [3],
    method: "set",
    density: 0.6,
    activation: "tanh",
  });
});

/**
 * One step-kernel case (H 7, F 3, T 4, K 6 copies, one of each kind): random operands with NaN
 * in every padding column, steps t = 0 and 2, each variant on the same operands checked against
 * the float64 step; returns c and h of both steps as read, per variant.
 */
async function stepCase(
  gpu: Gpu,
  rng: Rng,
  S: number,
  variants: ("scalar" | "vec4")[],
  label: string,
): Promise<Record<string, Float32Array[]>> {
  const H = 7, F = 3, T = 4, K = 6, N = K * S;
  const ldS = roundUp4(S), ldN = roundUp4(N);
  const out: Record<string, Float32Array[]> = {};
  const specs: LstmAblationSpec[] = [
    { kind: "none" },
    { kind: "wx", a: 2, b: 3 * H + 4, w: 0.7 },
    { kind: "wh", a: 5, b: H + 1, w: -1.3 },
    { kind: "bias", b: 2 * H + 6, w: 0.4 },
    { kind: "unit", a: 3 },
    { kind: "wh", a: 0, b: 0, w: 2.1 },
  ];
  const pad = (a: Float64Array, rows: number, cols: number, ld: number) => {
    const o = new Float32Array(rows * ld).fill(NaN);
    for (let r = 0; r < rows; r++) for (let s = 0; s < cols; s++) o[r * ld + s] = a[r * cols + s];
    return o;
  };
  const f = (a: Float64Array) => Float64Array.from(Float32Array.from(a));
  const x = f(rng.normal(T * F * S)); // [T·F][S]
  const zxAll = f(rng.normal(4 * H * T * S)); // [4H][T][S]
  const zxPad = new Float32Array(4 * H * T * ldS).fill(NaN);
  for (let r = 0; r < 4 * H; r++) {
    for (let t = 0; t < T; t++) {
      for (let s = 0; s < S; s++) zxPad[(r * T + t) * ldS + s] = zxAll[(r * T + t) * S + s];
    }
  }
  const xT = gpu.tensor("f32", [T * F, ldS], { data: pad(x, T * F, S, ldS) });
  const zxT = gpu.tensor("f32", [4 * H, T * ldS], { data: zxPad });
  const abl = gpu.tensor("u32", [4 * K], { data: packLstmAblations(specs) });
  for (const t of [0, 2]) {
    const zh = f(rng.normal(4 * H * N)),
      hPrev = f(rng.normal(H * N)),
      cPrev = f(rng.normal(H * N));
    const zhT = gpu.tensor("f32", [4 * H, ldN], { data: pad(zh, 4 * H, N, ldN) });
    const hpT = gpu.tensor("f32", [H, ldN], { data: pad(hPrev, H, N, ldN) });
    const zxt = new Float64Array(4 * H * S);
    for (let r = 0; r < 4 * H; r++) {
      for (let s = 0; s < S; s++) zxt[r * S + s] = zxAll[(r * T + t) * S + s];
    }
    const want = ablationLstmStepRef({
      zx: zxt,
      zh: t > 0 ? zh : null,
      hPrev: t > 0 ? hPrev : null,
      cPrev: t > 0 ? cPrev : null,
      xt: x.subarray(t * F * S, (t + 1) * F * S),
      hidden: H,
      samples: S,
      ablations: specs,
    });
    const unpad = (a: ArrayLike<number>) => {
      const o = new Float64Array(H * N);
      for (let r = 0; r < H; r++) {
        for (let n = 0; n < ldN; n++) {
          if (n < N) o[r * N + n] = a[r * ldN + n];
          else if (a[r * ldN + n] !== 0) {
            throw new Error(
              `padding [${r}][${n}] = ${a[r * ldN + n]}`,
            );
          }
        }
      }
      return o;
    };
    for (const variant of variants) {
      const cT = gpu.tensor("f32", [H, ldN]);
      const hT = gpu.tensor("f32", [H, ldN]);
      if (t > 0) gpu.write(cT, pad(cPrev, H, N, ldN));
      else gpu.poison(cT); // not read at t = 0
      gpu.poison(hT);
      const rec = gpu.recorder();
      ablationLstmStep(rec, {
        x: xT,
        zx: zxT,
        zh: zhT,
        hPrev: hpT,
        ablations: abl,
        c: cT,
        h: hT,
        hidden: H,
        features: F,
        steps: T,
        t,
        samples: S,
        count: K,
        variant,
      });
      rec.submit();
      const [gc, gh] = [await gpu.read(cT), await gpu.read(hT)];
      const tol = (what: string) => ({
        atol: 2e-6,
        rtol: 2e-5,
        label: `${label} ${variant} ${what}`,
      });
      assertClose(unpad(gc), want.c, tol(`c at t=${t}`));
      assertClose(unpad(gh), want.h, tol(`h at t=${t}`));
      (out[variant] ??= []).push(new Float32Array(gc), new Float32Array(gh));
      for (const tt of [cT, hT]) gpu.release(tt);
    }
    for (const tt of [zhT, hpT]) gpu.release(tt);
  }
  for (const tt of [xT, zxT, abl]) gpu.release(tt);
  return out;
}

gpuTest(
  "LSTM ablation step kernel vs float64 (poisoned outputs, odd sizes, t = 0 and t > 0, both variants and input paths)",
  async (gpu, rng) => {
    await eachInputPath(gpu, ["abl_lstm_step", "abl_lstm_step4"], async (path) => {
      // S = 5: the scalar kernel only (padding columns); S = 8: the vec4 kernel (the default)
      // and the scalar one, which must agree bit for bit.
      for (const S of [5, 8]) {
        const variants: ("scalar" | "vec4")[] = S % 4 ? ["scalar"] : ["vec4", "scalar"];
        const bits = await stepCase(gpu, rng, S, variants, `${path} S${S}`);
        bits.vec4?.forEach((v, i) =>
          assertClose(v, bits.scalar[i], { rtol: 0, atol: 0, label: `${path} vec4 = scalar` })
        );
      }
    });
    const H = 7, F = 3, T = 4, S = 5, K = 6;
    const ldS = roundUp4(S), ldN = roundUp4(K * S);
    const xT = gpu.tensor("f32", [T * F, ldS]);
    const zxT = gpu.tensor("f32", [4 * H, T * ldS]);
    const abl = gpu.tensor("u32", [4 * K]);
    let threw = false;
    try {
      const rec = gpu.recorder();
      const c = gpu.tensor("f32", [H, ldN]);
      ablationLstmStep(rec, {
        x: xT,
        zx: zxT,
        ablations: abl,
        c,
        h: c,
        hidden: H,
        features: F,
        steps: T,
        t: 0,
        samples: S,
        count: K,
      });
    } catch (e) {
      threw = e instanceof FiligreeError && /different tensors/.test((e as Error).message);
    }
    if (!threw) throw new Error("aliased c and h were accepted");
    const c2 = gpu.tensor("f32", [H, ldN]), h2 = gpu.tensor("f32", [H, ldN]);
    const args = { x: xT, zx: zxT, ablations: abl, c: c2, h: h2, hidden: H, features: F };
    let vecThrew = false;
    try {
      ablationLstmStep(gpu.recorder(), {
        ...args,
        steps: T,
        t: 0,
        samples: S,
        count: K,
        variant: "vec4",
      });
    } catch (e) {
      vecThrew = e instanceof FiligreeError && /samples % 4 == 0, got 5/.test((e as Error).message);
    }
    if (!vecThrew) throw new Error("the vec4 variant accepted 5 samples");
  },
);

gpuTest(
  "LSTM ablation: hidden states match the float64 forward; bad inputs are clear errors",
  async (gpu, rng) => {
    const c: Case = {
      steps: 4,
      features: 3,
      hidden: 6,
      classes: 3,
      samples: 9,
      head: [4],
      method: "set",
      density: 0.5,
    };
    const b = await build(gpu, rng, c);
    const eng = await LstmAblationEngine.create(gpu, b.model, b.x, b.labels, { loss: "xent" });
    const hs = await eng.hiddenStates();
    // h_T of the float64 model with an empty head is the last block.
    const last = (await import("../../src/kernels/ablation_lstm_ref.ts")).lstmModelForwardRef(
      { ...b.ref, head: [] },
      b.xRef,
      c.samples,
    );
    const T = c.steps, H = c.hidden, S = c.samples;
    assertClose(hs.subarray((T - 1) * H * S), last, { atol: 2e-6, rtol: 2e-5, label: "h_T" });
    for (
      const [a, text] of [
        [{ part: "wx", entry: eng.wx.nnz }, "out of range"],
        [{ part: "unit", unit: H }, "out of range"],
        [{ part: "bias", row: -1 }, "out of range"],
      ] as const
    ) {
      let ok = false;
      try {
        eng.spec(a as LstmAblation);
      } catch (e) {
        ok = e instanceof FiligreeError && (e as Error).message.includes(text);
      }
      if (!ok) throw new Error(`${JSON.stringify(a)} was not refused`);
    }
    eng.destroy();
  },
);

gpuTest(
  "LSTM scores (analysis/scores.ts on a probe): full-BPTT gradient vs float64 central differences; Wanda norms over time",
  async (gpu, rng) => {
    // A trainer's LSTM model (28 steps of 28 MNIST pixels), random weights, its float64 copy.
    const c = { steps: 28, features: 28, hidden: 7 };
    const cfg = parseTrainConfig({
      model: "lstm",
      dataset: "mnist",
      trainSubset: 100,
      testSubset: 50,
      lstmHidden: c.hidden,
      hidden: [5],
      method: "set",
      density: 0.5,
      activation: "tanh",
      seed: rng.int(1000),
    });
    const t = await Trainer.create(gpu, cfg);
    const ref = await randomize(gpu, rng, t.model, c);
    const probe = await Probe.fromTrainer(t, { evalSamples: 11, seed: 1 });
    const S = probe.samples, G = 4 * c.hidden;
    const xRef = fromPadded(await gpu.read(probe.x.t), probe.x.rows, S, "x");
    const labelsHost = (await gpu.read(probe.labels) as Uint32Array).slice(0, S);
    const lossAt = (m: LstmRefModel) => lstmMetricsRef(m, xRef, labelsHost, S, "xent").loss;
    const base = await probe.baseline();
    if (Math.abs(base.loss - lossAt(ref)) > 1e-4) {
      throw new Error(`loss ${base.loss} vs ${lossAt(ref)}`);
    }
    const raw: Parameters<typeof computeScores>[3] & object = { grad: [], hg: [] };
    const s = await computeScores(
      probe,
      ["magnitude", "snip", "taylor", "signed1", "wanda"],
      0,
      raw,
    );
    const kinds = probe.layers.slice(0, 2).map((l) => `${l.name}:${l.kind}`).join();
    if (kinds !== "lstm.wx:lstm,lstm.wh:lstm") throw new Error(kinds);
    const eps = 1e-5;
    for (const [w, part] of [[0, "wx"], [1, "wh"]] as const) {
      const pl = probe.layers[w], g = raw.grad[w];
      const got: number[] = [], want: number[] = [];
      // The largest gradient and 7 random entries (MNIST's border pixels are zero, so many
      // W_x entries have no gradient at all).
      let top = 0;
      g.forEach((v, e) => (Math.abs(v) > Math.abs(g[top]) ? (top = e) : 0));
      for (let q = 0; q < 8; q++) {
        const e = q === 0 ? top : rng.int(pl.nnz);
        const at = pl.ends[2 * e] * G + pl.ends[2 * e + 1];
        const d = (sign: number) => {
          const m = { ...ref, [part]: ref[part].slice() };
          m[part][at] += sign * eps;
          return lossAt(m);
        };
        got.push(g[e]);
        want.push((d(1) - d(-1)) / (2 * eps));
      }
      assertClose(got, want, {
        atol: 2e-5,
        rtol: 1e-2,
        label: `${part} gradient vs finite differences`,
      });
      if (!want.some((v) => Math.abs(v) > 1e-3)) {
        throw new Error(
          `${part}: all sampled gradients ~0`,
        );
      }
    }
    // Wanda's norms from the float64 trace: x_t[a] over t and s; h_{t-1}[a] over t >= 1 and s.
    const tr = lstmForwardRef(xRef, ref.wx, ref.wh, ref.bias, {
      steps: c.steps,
      features: c.features,
      hidden: c.hidden,
      batch: S,
    });
    const nx = new Float64Array(c.features), nh = new Float64Array(c.hidden);
    for (let t = 0; t < c.steps; t++) {
      for (let a = 0; a < c.features; a++) {
        for (let q = 0; q < S; q++) nx[a] += xRef[(t * c.features + a) * S + q] ** 2;
      }
      if (t + 1 < c.steps) {
        for (let a = 0; a < c.hidden; a++) {
          for (let q = 0; q < S; q++) {
            nh[a] += tr.h[t][a * S + q] ** 2;
          }
        }
      }
    }
    for (const [w, norms] of [[0, nx], [1, nh]] as const) {
      const p = probe.layers[w], gp = raw.grad[w], sc = s[w];
      const want = Array.from(p.values, (v, k) => Math.abs(v) * Math.sqrt(norms[p.ends[2 * k]]));
      assertClose(sc.get("wanda")!, want, { atol: 1e-5, rtol: 1e-4, label: `${p.name} wanda` });
      assertClose(sc.get("magnitude")!, Array.from(p.values, Math.abs), {
        atol: 0,
        rtol: 0,
        label: `${p.name} magnitude`,
      });
      assertClose(sc.get("snip")!, Array.from(p.values, (v, k) => Math.abs(v * gp[k])), {
        atol: 1e-7,
        rtol: 1e-5,
        label: `${p.name} snip`,
      });
      assertClose(sc.get("taylor")!, Array.from(p.values, (v, k) => (v * gp[k]) ** 2), {
        atol: 1e-9,
        rtol: 1e-5,
        label: `${p.name} taylor`,
      });
      assertClose(sc.get("signed1")!, Array.from(p.values, (v, k) => -v * gp[k]), {
        atol: 1e-7,
        rtol: 1e-5,
        label: `${p.name} signed1`,
      });
    }
  },
);
