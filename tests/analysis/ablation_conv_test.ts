/**
 * Exact ablation of convolutions: the kernels against float64 references (odd sizes, NaN-poisoned
 * outputs), and the probe on trained CNNs against "zero it and run the full forward" (with and
 * without batch norm, several activations; single weights and unit = channel ablation).
 */
import {
  convChannelNext,
  convFisher,
  convPatch,
  convSampleGrad,
} from "../../src/kernels/ablation_conv.ts";
import {
  convChannelNextRef,
  convPatchRef,
  convSampleGradRef,
} from "../../src/kernels/ablation_conv_ref.ts";
import { packAblations } from "../../src/kernels/analysis.ts";
import { Probe } from "../../src/analysis/probe.ts";
import type { TrainConfig } from "../../src/train/config.ts";
import { trainedCnn } from "./cnn_fixture.ts";
import { type Gpu, roundUp4 } from "../../src/gpu/mod.ts";
import {
  assertClose,
  eachInputPath,
  f64,
  fromPadded,
  gpuTest,
  type Rng,
  toPadded,
} from "../../src/testing/mod.ts";

gpuTest(
  "convPatch (analysis.wgsl patch_columns with ablation_fns.wgsl) equals its float64 reference (rank-1 over positions, zero per channel, group 1; both variants and input paths)",
  async (gpu, rng) => {
    await eachInputPath(gpu, ["patch_columns", "patch_columns4"], async (path) => {
      for (
        const [mode, rows, group, S, K] of [
          ["rank1", 5 * 35, 35, 13, 7],
          ["rank1", 3 * 9, 9, 6, 5],
          ["zero", 4 * 21, 21, 11, 3],
          ["rank1", 9, 1, 5, 2],
          ["channel", 35, 35, 13, 7],
          // S % 4 == 0: the vec4 kernel
          ["rank1", 5 * 35, 35, 12, 7],
          ["zero", 4 * 21, 21, 8, 3],
          ["channel", 35, 35, 16, 5],
        ] as const
      ) {
        await convPatchCase(gpu, rng, mode, rows, group, S, K, path);
      }
    });
  },
);

async function convPatchCase(
  gpu: Gpu,
  rng: Rng,
  mode: "rank1" | "zero" | "channel",
  rows: number,
  group: number,
  S: number,
  K: number,
  path: string,
) {
  {
    {
      const xRows = mode === "zero" ? rows : 6 * group;
      // Channel mode reads channel j of a 5-channel cached tensor and writes `group` rows.
      const cRows = mode === "channel" ? 5 * group : rows;
      const cached = rng.normal(cRows * S), x = rng.normal(xRows * S);
      const abl = Array.from({ length: K }, () => ({
        i: rng.int(xRows / group),
        j: rng.int(cRows / group),
        w: mode === "zero" ? 0 : rng.normal(1)[0],
      }));
      const want = convPatchRef(cached, x, rows, S, abl, mode, group);
      const ct = gpu.tensor("f32", [cRows, roundUp4(S)], { data: toPadded(cached, cRows, S) });
      const xt = gpu.tensor("f32", [xRows, roundUp4(S)], { data: toPadded(x, xRows, S) });
      const out = gpu.tensor("f32", [rows, roundUp4(K * S)]);
      gpu.poison(out);
      const rec = gpu.recorder();
      convPatch(rec, { cached: ct, x: xt, rows, group, samples: S, ablations: abl, mode, out });
      rec.submit();
      const got = fromPadded(await gpu.read(out), rows, K * S, `convPatch ${mode}`);
      assertClose(got, want, {
        rtol: 1e-6,
        atol: 1e-6,
        label: `${path} convPatch ${mode} ${rows}/${group} S${S}`,
      });
    }
  }
}

gpuTest(
  "convChannelNext equals its float64 reference (both variants and input paths)",
  async (gpu, rng) => {
    await eachInputPath(gpu, ["conv_channel_next", "conv_channel_next4"], async (path) => {
      // S = 13, 6: the scalar kernel; S = 8: the vec4 kernel and the scalar one (same bits).
      for (const [rows, C, q, S, K] of [[7, 5, 9, 13, 6], [3, 2, 49, 6, 3], [5, 3, 7, 8, 4]]) {
        const zc = rng.normal(rows * S), xc = rng.normal(C * q * S), w = rng.normal(C * q * rows);
        const pooled = rng.normal(q * K * S);
        const abl = Array.from({ length: K }, () => ({ i: 0, j: rng.int(C), w: 0 }));
        const want = convChannelNextRef(zc, xc, pooled, w, abl, rows, q, S);
        const t = (a: Float64Array, r: number, b: number) =>
          gpu.tensor("f32", [r, roundUp4(b)], { data: toPadded(a, r, b) });
        const ins = {
          zCached: t(zc, rows, S),
          xCached: t(xc, C * q, S),
          pooled: t(pooled, q, K * S),
          wNext: gpu.tensor("f32", [C * q * rows], { data: Float32Array.from(w) }),
          ablations: gpu.tensor("u32", [3 * K], { data: packAblations(abl) }),
        };
        const bits: Float32Array[] = [];
        for (const variant of S % 4 ? ["scalar" as const] : ["vec4" as const, "scalar" as const]) {
          const out = gpu.tensor("f32", [rows, roundUp4(K * S)]);
          gpu.poison(out);
          const rec = gpu.recorder();
          convChannelNext(rec, { ...ins, rows, q, samples: S, count: K, out, variant });
          rec.submit();
          const raw = new Float32Array(await gpu.read(out));
          bits.push(raw);
          assertClose(fromPadded(raw, rows, K * S, "convChannelNext"), want, {
            rtol: 1e-5,
            atol: 1e-5,
            label: `${path} ${variant} convChannelNext q=${q} S=${S}`,
          });
        }
        if (bits.length === 2) {
          assertClose(bits[0], bits[1], { rtol: 0, atol: 0, label: `${path} vec4 = scalar` });
        }
      }
    });
  },
);

gpuTest(
  "per-sample gradients and Fisher of shared weights equal float64 references",
  async (gpu, rng) => {
    for (const [nIn, nOut, P, S] of [[7, 5, 23, 9], [12, 3, 49, 17], [3, 2, 1, 5]]) {
      const cols = rng.normal(nIn * P * S), dz = rng.normal(nOut * P * S);
      const n = 11;
      const ends = new Uint32Array(2 * n);
      for (let e = 0; e < n; e++) {
        ends[2 * e] = rng.int(nIn);
        ends[2 * e + 1] = rng.int(nOut);
      }
      const want = convSampleGradRef(cols, dz, ends, P, S);
      const ct = gpu.tensor("f32", [nIn * P, roundUp4(S)], { data: toPadded(cols, nIn * P, S) });
      const dt = gpu.tensor("f32", [nOut * P, roundUp4(S)], { data: toPadded(dz, nOut * P, S) });
      const et = gpu.tensor("u32", [2 * n], { data: ends });
      const first = 3, count = 6;
      const out = gpu.tensor("f32", [count, roundUp4(S)]);
      const fisher = gpu.tensor("f32", [n]);
      gpu.poison(out);
      gpu.poison(fisher);
      const rec = gpu.recorder();
      convSampleGrad(rec, {
        cols: ct,
        dz: dt,
        ends: et,
        first,
        count,
        positions: P,
        samples: S,
        out,
      });
      const scratch = convFisher(rec, {
        cols: ct,
        dz: dt,
        ends: et,
        entries: n,
        positions: P,
        samples: S,
        fisher,
      });
      rec.submit();
      const got = fromPadded(await gpu.read(out), count, S, "sample grads");
      assertClose(got, want.subarray(first * S, (first + count) * S), {
        rtol: 1e-5,
        atol: 1e-5,
        label: `sample grads P=${P}`,
      });
      const F = Float64Array.from({ length: n }, (_, e) => {
        let s2 = 0;
        for (let s = 0; s < S; s++) s2 += want[e * S + s] ** 2;
        return s2;
      });
      assertClose(f64(await gpu.read(fisher)), F, { rtol: 1e-4, atol: 1e-4, label: "fisher" });
      scratch.forEach((t) => gpu.release(t));
    }
  },
);

/** Batched ablation of sampled entries / units of every weight layer vs the naive forward. */
async function checkCnn(
  probe: Probe,
  rng: Rng,
  label: string,
  perLayer: number,
): Promise<{ linear: number; conv: number }> {
  const locals = { linear: 0, conv: 0 };
  const S = probe.samples;
  await probe.refreshCache();
  const close = (got: number, want: number) => Math.abs(got - want) <= 3e-5 + 2e-4 * Math.abs(want);
  for (let w = 0; w < probe.layers.length; w++) {
    const pl = probe.layers[w];
    // Every entry in one batched call; a sample of them (and the largest change) vs naive.
    const all = Uint32Array.from({ length: pl.nnz }, (_, e) => e);
    const r = await probe.ablateWeights(w, all);
    let big = 0;
    r.dLoss.forEach((d, e) => (Math.abs(d) > Math.abs(r.dLoss[big]) ? (big = e) : 0));
    if (!(Math.abs(r.dLoss[big]) > 1e-6)) {
      throw new Error(`${label} ${pl.name}: no single-weight ablation changed the loss`);
    }
    const local = probe.convLocal(w);
    if (local) {
      // The channel-local path against the full patched copies, every entry.
      probe.fastPath = false;
      const full = await probe.ablateWeights(w, all);
      probe.fastPath = true;
      full.dLoss.forEach((d, e) => {
        if (!close(r.dLoss[e], d)) {
          throw new Error(`${label} ${pl.name} entry ${e}: channel-local ${r.dLoss[e]}, full ${d}`);
        }
      });
      locals[local.next]++;
    }
    const entries = [big, ...Array.from({ length: perLayer }, () => rng.int(pl.nnz))];
    for (const e of entries) {
      const naive = await probe.ablateNaive(w, e);
      if (!close(r.dLoss[e], naive.dLoss)) {
        throw new Error(
          `${label} ${pl.name} entry ${e}: batched dLoss ${r.dLoss[e]}, naive ${naive.dLoss}`,
        );
      }
      if (Math.abs(r.dAccuracy[e] - naive.dAccuracy) > 1.01 / S) {
        throw new Error(
          `${label} ${pl.name} entry ${e}: dAcc ${r.dAccuracy[e]} vs ${naive.dAccuracy}`,
        );
      }
    }
    if (w === 0) continue;
    // Unit ablation: zeroing input unit u (a channel for a convolution) == zeroing every weight
    // that reads it.
    const units = Uint32Array.from({ length: 2 }, () => rng.int(pl.units));
    const u = await probe.ablateUnits(w, units);
    const base = await probe.baseline();
    for (let k = 0; k < units.length; k++) {
      const v = pl.values.slice();
      const rowsPerUnit = pl.kind === "conv" ? pl.nIn / pl.units : 1;
      for (let e = 0; e < pl.nnz; e++) {
        if (Math.floor(pl.ends[2 * e] / rowsPerUnit) === units[k]) v[e] = 0;
      }
      probe.setValues(w, v);
      const m = await probe.evaluate();
      probe.setValues(w, pl.values);
      if (!close(u.dLoss[k], m.loss - base.loss)) {
        throw new Error(
          `${label} ${pl.name} unit ${units[k]}: batched dLoss ${u.dLoss[k]}, zeroed weights ${
            m.loss - base.loss
          }`,
        );
      }
    }
  }
  return locals;
}

gpuTest(
  "CNN single-weight and channel ablation equal the naive full forward (norms, activations)",
  async (gpu, rng) => {
    const cases: Partial<TrainConfig>[] = [
      { activation: "relu" },
      { activation: "tanh", norm: "batch" },
      { activation: "leaky_relu", norm: "batch", normPlacement: "after", dropout: 0.1 },
      { activation: "sigmoid", convChannels: [3], hidden: [5], density: 0.5 },
      { activation: "relu", norm: "layer", method: "dense" },
      { activation: "elu", dropout: 0.2, convChannels: [5, 3] },
    ];
    const locals = { linear: 0, conv: 0 };
    for (const [n, c] of cases.entries()) {
      const t = await trainedCnn(gpu, { ...c, seed: rng.int(1000) });
      // 37 samples (not a multiple of 4), or 36 (the vec4 kernels) in every other case; a budget
      // that forces several batches.
      const evalSamples = n % 2 ? 36 : 37;
      const probe = await Probe.fromTrainer(t, { evalSamples, seed: 3, budgetMB: 2 });
      const kinds = probe.layers.map((l) => l.kind).join(",");
      if (!kinds.startsWith("conv")) throw new Error(`${JSON.stringify(c)}: layers ${kinds}`);
      const l = await checkCnn(probe, rng, JSON.stringify(c), 4);
      locals.linear += l.linear;
      locals.conv += l.conv;
    }
    // relu, sigmoid and elu + dropout (no norm): the last convolution stays channel-local into
    // the fully-connected head, and in the two-convolution ones (relu, elu) the first into conv2.
    if (locals.linear !== 3 || locals.conv !== 2) {
      throw new Error(`channel-local layers ${JSON.stringify(locals)}, expected 3 linear, 2 conv`);
    }
  },
);
