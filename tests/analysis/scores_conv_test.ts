/**
 * Importance scores of convolution weights: the gradient through shared weights and the signed
 * predictors against finite differences of the loss, OBD's Fisher (per-sample gradients summed
 * over positions before squaring) and Wanda (im2col row norms) against float64 references,
 * SynFlow against finite differences of the flow through the GPU model, effective magnitude.
 */
import { computeScores } from "../../src/analysis/scores.ts";
import { Probe } from "../../src/analysis/probe.ts";
import type { TrainConfig } from "../../src/train/config.ts";
import { assertClose, f64, fromPadded, gpuTest } from "../../src/testing/mod.ts";
import { im2colRef, maxPoolRef } from "../../src/kernels/conv_ref.ts";
import type { ConvGeometry, PoolGeometry } from "../../src/kernels/conv.ts";
import { actForwardRef } from "../../src/kernels/activation_ref.ts";
import { analysisOf } from "../../src/nn/analyzable.ts";
import { roundUp4 } from "../../src/gpu/mod.ts";
import { trainedCnn } from "./cnn_fixture.ts";
import type { Gpu } from "../../src/gpu/mod.ts";

async function cnnProbe(gpu: Gpu, over: Partial<TrainConfig>, seed: number): Promise<Probe> {
  const t = await trainedCnn(gpu, { seed, ...over });
  return await Probe.fromTrainer(t, { evalSamples: 29, seed: 4 });
}

/**
 * A float64 CPU forward of the probe's CNN (convolutions and linear layers with their fused
 * activation, evaluation-mode batch norm, activations, max pooling, dropout as the identity) and
 * its mean cross-entropy, with weight `e` of weight layer `w` moved by `d`.
 */
async function cpuModel(probe: Probe) {
  const gpu = probe.gpu, S = probe.samples, ld = roundUp4(S);
  const xs = fromPadded(
    (await gpu.read(probe.x.t) as Float32Array).slice(0, probe.x.rows * ld),
    probe.x.rows,
    S,
  );
  const labels = await gpu.read(probe.labels) as Uint32Array;
  const byIndex = new Map(probe.layers.map((pl, w) => [pl.index, w]));
  const steps: ((a: Float64Array, w: number, e: number, d: number) => Float64Array)[] = [];
  for (let i = 0; i < probe.model.layers.length; i++) {
    const L = probe.model.layers[i], w = byIndex.get(i);
    if (w !== undefined) {
      const pl = probe.layers[w];
      const bias = f64(await gpu.read(L.params[1].value));
      const geometry = (L as unknown as { geometry?: ConvGeometry }).geometry;
      steps.push((a, aw, ae, d) => {
        const W = new Float64Array(pl.nIn * pl.nOut);
        pl.values.forEach((v, q) => {
          W[pl.ends[2 * q] * pl.nOut + pl.ends[2 * q + 1]] = v + (aw === w && ae === q ? d : 0);
        });
        const P = pl.positions;
        const cols = geometry ? im2colRef(a, geometry, S) : a;
        const z = new Float64Array(pl.nOut * P * S);
        for (let j = 0; j < pl.nOut; j++) {
          for (let c = 0; c < P * S; c++) z[j * P * S + c] = bias[j];
          for (let r = 0; r < pl.nIn; r++) {
            const wv = W[r * pl.nOut + j];
            if (wv !== 0) {
              for (let c = 0; c < P * S; c++) z[j * P * S + c] += wv * cols[r * P * S + c];
            }
          }
        }
        return z.map((x) => actForwardRef(pl.view.act, x, pl.view.actParam));
      });
      continue;
    }
    const op = await analysisOf(L).unitOp!();
    const pool = (L as unknown as { geometry?: PoolGeometry }).geometry;
    if (op.kind === "identity") steps.push((a) => a);
    else if (op.kind === "act") {
      steps.push((a) => a.map((x) => actForwardRef(op.activation, x, op.param)));
    } else if (op.kind === "bn") {
      steps.push((a) =>
        a.map((x, k) => {
          const u = Math.floor(k / S);
          return op.gamma[u] * (x - op.mean[u]) / Math.sqrt(op.variance[u] + op.eps) + op.beta[u];
        })
      );
    } else if (op.kind === "mixing" && pool) steps.push((a) => maxPoolRef(a, pool, S).y);
    else throw new Error(`cpuModel: layer ${L.name} (${op.kind})`);
  }
  return {
    loss(w: number, e: number, d: number): number {
      let a = xs;
      for (const f of steps) a = f(a, w, e, d);
      const C = a.length / S;
      let sum = 0;
      for (let s = 0; s < S; s++) {
        let m = -Infinity;
        for (let c = 0; c < C; c++) m = Math.max(m, a[c * S + s]);
        let z = 0;
        for (let c = 0; c < C; c++) z += Math.exp(a[c * S + s] - m);
        sum += m + Math.log(z) - a[labels[s] * S + s];
      }
      return sum / S;
    },
  };
}

gpuTest(
  "CNN scores: gradient and signed predictors vs finite differences, Fisher and Wanda vs float64",
  async (gpu, rng) => {
    const probe = await cnnProbe(gpu, { activation: "tanh", norm: "batch" }, rng.int(1000));
    const raw: Parameters<typeof computeScores>[3] & object = { grad: [], hg: [] };
    const names = ["magnitude", "snip", "obd", "wanda", "signed1", "signed2", "effmag"] as const;
    const scores = await computeScores(probe, names, 3, raw);
    const S = probe.samples, ld = roundUp4(S);
    const ref = await cpuModel(probe);
    const base = ref.loss(0, 0, 0), gpuBase = (await probe.baseline()).loss;
    if (!(Math.abs(base - gpuBase) <= 1e-4 * Math.abs(base) + 1e-5)) {
      throw new Error(`float64 reference loss ${base}, GPU ${gpuBase}`);
    }
    for (let w = 0; w < probe.layers.length; w++) {
      const pl = probe.layers[w], v = pl.values, g = raw.grad[w], P = pl.positions;
      const s1 = scores[w].get("signed1")!, s2 = scores[w].get("signed2")!;
      // signed1 = -g·w with g checked against central differences of the GPU loss.
      assertClose(s1, Float32Array.from(v, (x, e) => -g[e] * x), {
        rtol: 1e-5,
        atol: 1e-8,
        label: `${pl.name} signed1`,
      });
      // g against central differences of a float64 CPU forward of the same model (h = 1e-6:
      // max pooling's kinks are not crossed, f64 rounding is far below the tolerance).
      for (let k = 0; k < 3; k++) {
        const e = rng.int(pl.nnz), h = 1e-6;
        const fd = (ref.loss(w, e, h) - ref.loss(w, e, -h)) / (2 * h);
        if (!(Math.abs(g[e] - fd) <= 2e-5 + 2e-3 * Math.abs(fd))) {
          throw new Error(`${pl.name} entry ${e}: gradient ${g[e]}, float64 differences ${fd}`);
        }
      }
      // Fisher: F = (1/S) Σ_s g_s², g_s = S·Σ_p x[i,p,s]·dz[j,p,s] (dz of the mean loss).
      const lb = pl.view.gradFactors()!;
      const x = fromPadded(await gpu.read(lb.x.t), pl.nIn * P, S, "cols");
      const dz = fromPadded(await gpu.read(lb.dz.t), pl.nOut * P, S, "dz");
      const F = Float64Array.from(v, (_, e) => {
        const i = pl.ends[2 * e], j = pl.ends[2 * e + 1];
        let f = 0;
        for (let s = 0; s < S; s++) {
          let gs = 0;
          for (let p = 0; p < P; p++) gs += x[(i * P + p) * S + s] * dz[(j * P + p) * S + s];
          f += (S * gs) ** 2;
        }
        return f / S;
      });
      assertClose(scores[w].get("obd")!, Float64Array.from(v, (x, e) => 0.5 * F[e] * x * x), {
        rtol: 1e-3,
        atol: 1e-9,
        label: `${pl.name} obd`,
      });
      assertClose(
        Float64Array.from(s2, (x, e) => x - s1[e]),
        Float64Array.from(v, (x, e) => 0.5 * F[e] * x * x),
        { rtol: 2e-3, atol: 1e-7, label: `${pl.name} signed2 - signed1` },
      );
      // Wanda: |w|·‖im2col row i‖ over positions and samples.
      const cols = await gpu.read(probe.cachedCols[w]) as Float32Array;
      const norm = Float64Array.from({ length: pl.nIn }, (_, i) => {
        let a = 0;
        for (let p = 0; p < P; p++) {
          for (let s = 0; s < S; s++) a += cols[(i * P + p) * ld + s] ** 2;
        }
        return Math.sqrt(a);
      });
      assertClose(
        scores[w].get("wanda")!,
        Float64Array.from(v, (x, e) => Math.abs(x) * norm[pl.ends[2 * e]]),
        { rtol: 1e-4, atol: 1e-7, label: `${pl.name} wanda` },
      );
      // Effective magnitude: the batch norm after a convolution scales each (channel,
      // position); a channel's scale is the mean over its positions.
      const next = probe.model.layers[pl.index + 1] as unknown as {
        gamma?: import("../../src/gpu/mod.ts").Tensor;
        runningVar?: import("../../src/gpu/mod.ts").Tensor;
        eps?: number;
      };
      if (w < probe.layers.length - 1) {
        if (!next.gamma || !next.runningVar) throw new Error(`${pl.name}: no batch norm after it`);
        const gm = await gpu.read(next.gamma), rv = await gpu.read(next.runningVar);
        const scale = Float64Array.from({ length: pl.nOut }, (_, j) => {
          let a = 0;
          for (let p = 0; p < P; p++) {
            a += Math.abs(gm[j * P + p]) / Math.sqrt(rv[j * P + p] + next.eps!);
          }
          return a / P;
        });
        if (rv.every((r) => r === 1)) throw new Error("untrained running variance");
        assertClose(
          scores[w].get("effmag")!,
          Float64Array.from(v, (x, e) => Math.abs(x) * scale[pl.ends[2 * e + 1]]),
          { rtol: 1e-5, atol: 0, label: `${pl.name} effmag` },
        );
      }
    }
  },
);

gpuTest(
  "CNN SynFlow equals finite differences of the flow through the GPU model",
  async (gpu, rng) => {
    // ReLU on positive flows is the identity and max pooling passes the window maximum, so with
    // |W|, zero biases and an all-ones input the model's own forward is SynFlow's R = 1ᵀ·flow.
    const probe = await cnnProbe(gpu, { activation: "relu", method: "dense" }, rng.int(1000));
    const scores = await computeScores(probe, ["synflow"], 3);
    probe.layers.forEach((pl, w) => probe.setValues(w, pl.values.map(Math.abs)));
    for (const p of probe.model.params) {
      if (p.kind === "bias") gpu.write(p.value, new Float32Array(p.value.size));
    }
    const F = probe.x.rows;
    const ones = gpu.tensor("f32", [F, 4], {
      data: Float32Array.from({ length: 4 * F }, (_, k) => (k % 4 === 0 ? 1 : 0)),
    });
    const R = async (w: number, e: number, d: number) => {
      const v = probe.layers[w].values.map(Math.abs);
      v[e] += d;
      probe.setValues(w, v);
      const rec = gpu.recorder();
      const out = probe.forwardFrom(rec, 0, { t: ones, rows: F, batch: 1 });
      rec.submit();
      const y = await gpu.read(out.t) as Float32Array;
      probe.setValues(w, probe.layers[w].values.map(Math.abs));
      let r = 0;
      for (let c = 0; c < out.rows; c++) r += y[c * 4];
      return r;
    };
    const R0 = await R(0, 0, 0);
    for (let w = 0; w < probe.layers.length; w++) {
      const pl = probe.layers[w], syn = scores[w].get("synflow")!;
      // R is positively homogeneous of degree 1 in each layer's |W| (max pooling included), so
      // a layer's scores sum to R (Euler).
      const sum = syn.reduce((a, b) => a + b, 0);
      if (!(Math.abs(sum - R0) <= 1e-4 * R0)) {
        throw new Error(`${pl.name}: SynFlow scores sum to ${sum}, R = ${R0}`);
      }
      for (let k = 0; k < 4; k++) {
        // R is linear in one |w| while no pooling argmax switches: steps of half the weight.
        const e = rng.int(pl.nnz), a = Math.abs(pl.values[e]), h = 0.5 * a;
        const fd = a * ((await R(w, e, h)) - (await R(w, e, -h))) / (2 * h);
        if (!(Math.abs(syn[e] - fd) <= 1e-3 * Math.abs(fd) + 1e-5 * R0)) {
          throw new Error(`${pl.name} entry ${e}: SynFlow ${syn[e]}, finite differences ${fd}`);
        }
      }
    }
  },
);
