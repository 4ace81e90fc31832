/**
 * The probe on an LSTM model: the LSTM's two weight matrices are views of kind "lstm" whose exact
 * ablations run on the recurrent engine (src/analysis/ablation_lstm.ts), the head's on the
 * patched-copy / carried engines; all against "zero it and run the full forward". Scores of the
 * shared-over-time weights: gradient vs finite differences, Fisher from per-sample gradients
 * summed over steps and Wanda over steps, against float64 references.
 */
import { Probe } from "../../src/analysis/probe.ts";
import { computeScores } from "../../src/analysis/scores.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { runEpoch, Trainer } from "../../src/train/trainer.ts";
import { roundUp4 } from "../../src/gpu/mod.ts";
import { assertClose, fromPadded, gpuTest } from "../../src/testing/mod.ts";

gpuTest(
  "LSTM model: probe ablation equals naive, scores of recurrent weights",
  async (gpu, rng) => {
    const cfg = parseTrainConfig({
      model: "lstm",
      dataset: "mnist",
      trainSubset: 300,
      testSubset: 100,
      lstmHidden: 6,
      hidden: [5],
      // A smooth head: with ReLU, a unit of fc1 whose pre-activation crosses zero within the
      // finite-difference step bends the loss (seed 3334456007: one-sided slopes -0.0074 and
      // -0.0049 around an LSTM weight whose exact gradient is -0.0048).
      activation: "tanh",
      method: "static",
      density: 0.5,
      sparseLayers: "all",
      epochs: 1,
      batchSize: 50,
      lr: 0.1,
      seed: rng.int(1000),
    });
    const t = await Trainer.create(gpu, cfg);
    await runEpoch(t);
    const probe = await Probe.fromTrainer(t, { evalSamples: 23, seed: 1 });
    const kinds = probe.layers.map((l) => `${l.name}:${l.kind}`).join();
    if (kinds !== "lstm.wx:lstm,lstm.wh:lstm,fc1:linear,out:linear") throw new Error(kinds);
    const S = probe.samples;
    const close = (a: number, b: number) => Math.abs(a - b) <= 3e-5 + 2e-4 * Math.abs(b);
    for (let w = 0; w < probe.layers.length; w++) {
      const pl = probe.layers[w];
      const all = Uint32Array.from({ length: pl.nnz }, (_, e) => e);
      const r = await probe.ablateWeights(w, all);
      let big = 0;
      r.dLoss.forEach((d, e) => (Math.abs(d) > Math.abs(r.dLoss[big]) ? (big = e) : 0));
      if (!(Math.abs(r.dLoss[big]) > 1e-6)) {
        throw new Error(
          `${pl.name}: no ablation moved the loss`,
        );
      }
      for (const e of [big, rng.int(pl.nnz), rng.int(pl.nnz)]) {
        const n = await probe.ablateNaive(w, e);
        if (!close(r.dLoss[e], n.dLoss) || Math.abs(r.dAccuracy[e] - n.dAccuracy) > 1.01 / S) {
          throw new Error(`${pl.name} entry ${e}: engine ${r.dLoss[e]}, naive ${n.dLoss}`);
        }
      }
    }
    // Hidden unit u of the LSTM (through the layer after it): h_t[u] zeroed at every step ==
    // its outgoing recurrent weights and its row of fc1 zeroed.
    const wh = probe.layers[1], fc1 = probe.layers[2];
    const units = Uint32Array.of(rng.int(6), rng.int(6));
    const u = await probe.ablateUnits(2, units);
    const base = await probe.baseline();
    for (let k = 0; k < units.length; k++) {
      probe.setValues(1, wh.values.map((v, e) => (wh.ends[2 * e] === units[k] ? 0 : v)));
      probe.setValues(2, fc1.values.map((v, e) => (fc1.ends[2 * e] === units[k] ? 0 : v)));
      const m = await probe.evaluate();
      probe.restoreValues();
      if (!close(u.dLoss[k], m.loss - base.loss)) {
        throw new Error(`unit ${units[k]}: engine ${u.dLoss[k]}, zeroed ${m.loss - base.loss}`);
      }
    }
    // Scores of the recurrent weights.
    const raw: Parameters<typeof computeScores>[3] & object = { grad: [], hg: [] };
    const sc = await computeScores(probe, ["obd", "wanda", "signed1"], 2, raw);
    const ld = roundUp4(S);
    for (const w of [0, 1]) {
      const pl = probe.layers[w], T = pl.positions;
      const lb = pl.view.gradFactors()!;
      const x = fromPadded(await gpu.read(lb.x.t), pl.nIn * T, S, "x");
      const dz = fromPadded(await gpu.read(lb.dz.t), pl.nOut * T, S, "dz");
      const want = Float64Array.from(pl.values, (v, q) => {
        const i = pl.ends[2 * q], j = pl.ends[2 * q + 1];
        let f = 0;
        for (let s = 0; s < S; s++) {
          let gs = 0;
          for (let p = 0; p < T; p++) gs += x[(i * T + p) * S + s] * dz[(j * T + p) * S + s];
          f += (S * gs) ** 2;
        }
        return 0.5 * (f / S) * v * v;
      });
      // f32 sums over T steps cancel: an absolute slack relative to the largest score.
      const top = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assertClose(sc[w].get("obd")!, want, {
        rtol: 1e-3,
        atol: 1e-4 * top,
        label: `${pl.name} obd`,
      });
      const cols = await gpu.read(probe.cachedCols[w]) as Float32Array;
      const norm = Float64Array.from({ length: pl.nIn }, (_, i) => {
        let a = 0;
        for (let p = 0; p < T; p++) {
          for (let s = 0; s < S; s++) a += cols[(i * T + p) * ld + s] ** 2;
        }
        return Math.sqrt(a);
      });
      assertClose(
        sc[w].get("wanda")!,
        Float64Array.from(pl.values, (v, q) => Math.abs(v) * norm[pl.ends[2 * q]]),
        { rtol: 1e-4, atol: 1e-8, label: `${pl.name} wanda` },
      );
    }
    // Gradients vs finite differences (after the checks above: these forwards overwrite the
    // cached sequence buffers the references read).
    for (const w of [0, 1]) {
      const pl = probe.layers[w], g = raw.grad[w];
      const e = rng.int(pl.nnz), h = 3e-3;
      const lossWith = async (d: number) => {
        const v = pl.values.slice();
        v[e] += d;
        probe.setValues(w, v);
        const m = await probe.evaluate();
        probe.restoreValues();
        return m.loss;
      };
      const fd = ((await lossWith(h)) - (await lossWith(-h))) / (2 * h);
      if (!(Math.abs(g[e] - fd) <= 3e-4 + 0.03 * Math.abs(fd))) {
        throw new Error(`${pl.name} entry ${e}: gradient ${g[e]}, finite differences ${fd}`);
      }
    }
    if (raw.skipped?.synflow === undefined && sc[0].has("synflow")) {
      throw new Error("synflow through an LSTM");
    }
  },
);
