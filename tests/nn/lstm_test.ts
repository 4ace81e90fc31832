import assert from "node:assert/strict";
import { FiligreeError, roundUp4 } from "../../src/gpu/mod.ts";
import { csrFromCoo, type CsrHost, randomMask, toDense, uploadCsr } from "../../src/sparse/csr.ts";
import { lstmBackwardRef, lstmForwardRef } from "../../src/kernels/lstm_ref.ts";
import { Lstm } from "../../src/nn/lstm.ts";
import { buildModel } from "../../src/nn/models.ts";
import { Tape } from "../../src/nn/tape.ts";
import type { Act } from "../../src/nn/act.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { runEpoch, Trainer } from "../../src/train/trainer.ts";
import {
  asF32,
  assertClose,
  fromPadded,
  gpuTest,
  type Rng,
  toPadded,
} from "../../src/testing/mod.ts";
import { modelSpecOf } from "../../src/train/model_spec.ts";

function randomHost(rng: Rng, nIn: number, nOut: number, density: number, std: number): CsrHost {
  const m = randomMask(nIn, nOut, density, rng);
  const v = asF32(rng.normal(m.rows.length, std));
  return csrFromCoo(nIn, nOut, m.rows, m.cols, v);
}

/** Dense row-major `[nIn][nOut]` gradient gathered at the nonzeros, in the value order. */
function atNonzeros(h: CsrHost, dense: Float64Array): Float64Array {
  const out = new Float64Array(h.nnz);
  for (let j = 0; j < h.nOut; j++) {
    for (let k = h.rowPtrT[j]; k < h.rowPtrT[j + 1]; k++) out[k] = dense[h.colT[k] * h.nOut + j];
  }
  return out;
}

gpuTest(
  "lstm layer: GPU forward and BPTT gradients (weights, bias, input) match float64 reference and finite differences",
  async (gpu, rng) => {
    // Tiny layer: steps, features, hidden, batch all off the vec4/workgroup tiles.
    for (
      const d of [{ steps: 4, features: 3, hidden: 5, batch: 6 }, {
        steps: 1,
        features: 2,
        hidden: 1,
        batch: 1,
      }]
    ) {
      const { steps: S, features: F, hidden: H, batch: B } = d;
      const G = 4 * H, ld = roundUp4(B);
      const hx = randomHost(rng, F, G, 0.6, 0.8);
      const hh = randomHost(rng, H, G, 0.6, 0.8);
      const layer = new Lstm(gpu, "t", {
        steps: S,
        features: F,
        hidden: H,
        wx: uploadCsr(gpu, hx, "t.wx"),
        wh: uploadCsr(gpu, hh, "t.wh"),
      });
      const bias = asF32(rng.normal(G, 0.5));
      gpu.write(layer.bias, Float32Array.from(bias));
      const x = asF32(rng.normal(S * F * B));
      const dOut = asF32(rng.normal(H * B));
      const xAct: Act = {
        t: gpu.tensor("f32", [S * F, ld], { data: toPadded(x, S * F, B) }),
        rows: S * F,
        batch: B,
      };
      const dyT = gpu.tensor("f32", [H, ld], { data: toPadded(dOut, H, B) });
      const tape = new Tape();
      const step = () => {
        const rec = gpu.recorder();
        tape.reset();
        // As if a layer below produced x: the LSTM must then write its input gradient.
        tape.markProduced(xAct);
        const y = layer.forward({ rec, tape }, xAct);
        tape.gradFor(y, () => ({ t: dyT, rows: H, batch: B }));
        tape.backward();
        rec.submit();
        return y;
      };
      // First step allocates every buffer; then poison them all and run again.
      step();
      for (const n of ["xs", "c", "gates", "hs", "h", "y", "dhr", "dc"]) {
        gpu.poison(
          layer.cache.get(n, n === "xs" ? F : H, ["h", "y", "dhr", "dc"].includes(n) ? B : S * ld)
            .t,
        );
      }
      for (const n of ["zx", "zh", "dz", "dzs"]) {
        gpu.poison(layer.cache.get(n, G, n === "zh" || n === "dz" ? B : S * ld).t);
      }
      for (const p of layer.params) gpu.poison(p.grad);
      const dxT = tape.gradFor(xAct, (): Act => {
        throw new Error("no input gradient buffer after the first step");
      });
      gpu.poison(dxT.t);
      gpu.poison(layer.cache.get("dxs", F, S * ld).t);
      const y = step();
      const [gy, gwx, gwh, gb, gdx] = await Promise.all([
        gpu.read(y.t),
        ...layer.params.map((p) => gpu.read(p.grad)),
        gpu.read(dxT.t),
      ]);

      const wx = toDense(hx), wh = toDense(hh);
      const tr = lstmForwardRef(x, wx, wh, bias, d);
      const label = `lstm S${S} F${F} H${H} B${B}`;
      // Forward: T cell steps of f32 sums over <= F + H terms: rtol 1e-5, atol 3e-6.
      assertClose(fromPadded(gy, H, B, `${label} y`), tr.h[S - 1], {
        rtol: 1e-5,
        atol: 3e-6,
        label: `${label} y`,
      });
      const ref = lstmBackwardRef(x, wx, wh, tr, dOut, d);
      // Gradients: sums over T·B products in f32: rtol 1e-4, atol 1e-5.
      const gtol = (what: string) => ({ rtol: 1e-4, atol: 1e-5, label: `${label} ${what}` });
      assertClose(gwx, atNonzeros(hx, ref.dwx), gtol("dWx"));
      assertClose(gwh, atNonzeros(hh, ref.dwh), gtol("dWh"));
      assertClose(gb, ref.dbias, gtol("dbias"));
      const dx = fromPadded(gdx, S * F, B, `${label} dx`);
      assertClose(dx, ref.dx, gtol("dx"));

      // Finite differences of the float64 CPU forward (L = sum(h_T · dOut)) against the GPU
      // gradients at every nonzero and bias entry (float32 tolerance: atol 3e-5, rtol 1e-3).
      const loss = (wxD: Float64Array, whD: Float64Array, b: Float64Array) => {
        const h = lstmForwardRef(x, wxD, whD, b, d).h[S - 1];
        let s = 0;
        for (let i = 0; i < h.length; i++) s += h[i] * dOut[i];
        return s;
      };
      const eps = 1e-5;
      const fdCheck = (
        what: string,
        got: ArrayLike<number>,
        n: number,
        bump: (k: number, e: number) => number,
      ) => {
        for (let k = 0; k < n; k++) {
          const fd = (bump(k, eps) - bump(k, -eps)) / (2 * eps);
          const tol = 3e-5 + 1e-3 * Math.abs(fd);
          if (!(Math.abs(got[k] - fd) <= tol)) {
            throw new Error(`${label} ${what}[${k}]: GPU ${got[k]}, finite difference ${fd}`);
          }
        }
      };
      const bumpCsr = (h: CsrHost, which: "x" | "h") => (k: number, e: number) => {
        const dense = which === "x" ? Float64Array.from(wx) : Float64Array.from(wh);
        let j = 0;
        while (h.rowPtrT[j + 1] <= k) j++;
        dense[h.colT[k] * h.nOut + j] += e;
        return which === "x" ? loss(dense, wh, bias) : loss(wx, dense, bias);
      };
      fdCheck("dWx (FD)", gwx, hx.nnz, bumpCsr(hx, "x"));
      fdCheck("dWh (FD)", gwh, hh.nnz, bumpCsr(hh, "h"));
      const lossX = (xv: Float64Array) => {
        const h = lstmForwardRef(xv, wx, wh, bias, d).h[S - 1];
        let s = 0;
        for (let i = 0; i < h.length; i++) s += h[i] * dOut[i];
        return s;
      };
      fdCheck("dx (FD)", dx, S * F * B, (k, e) => {
        const xv = Float64Array.from(x);
        xv[k] += e;
        return lossX(xv);
      });
      fdCheck("dbias (FD)", gb, G, (k, e) => {
        const b = Float64Array.from(bias);
        b[k] += e;
        return loss(wx, wh, b);
      });
    }
  },
);

gpuTest("lstm model: rejects non-2-D samples; builds sparse parts and head", async (gpu) => {
  const cfg = { ...parseTrainConfig({ model: "lstm", lstmHidden: 8, density: 0.5 }), hidden: [] };
  assert.throws(
    () => buildModel(gpu, modelSpecOf(cfg, { features: 20, classes: 3, shape: [20] })),
    (e: unknown) => e instanceof FiligreeError && /2-D samples/.test((e as Error).message),
  );
  assert.throws(
    () => buildModel(gpu, modelSpecOf(cfg, { features: 20, classes: 3, shape: [4, 4] })),
    FiligreeError,
  );
  const m = buildModel(gpu, modelSpecOf(cfg, { features: 12, classes: 3, shape: [4, 3] }));
  assert.deepEqual(m.layers.map((l) => l.name), ["lstm", "out"]);
  assert.deepEqual(m.sparseLayers.map((l) => l.name), ["lstm.wx", "lstm.wh"]);
  assert.deepEqual(m.params.map((p) => p.name), [
    "lstm.wx.values",
    "lstm.wh.values",
    "lstm.bias",
    "out.weight",
    "out.bias",
  ]);
  assert.deepEqual(m.weightCounts(), [48, 128, 24]);
  const b = await gpu.read((m.layers[0] as Lstm).bias);
  assert.deepEqual([...b.slice(0, 8)], new Array(8).fill(0)); // input gate
  assert.deepEqual([...b.slice(8, 16)], new Array(8).fill(1)); // forget gate
});

gpuTest(
  "lstm model: learns a small MNIST subset with SET; topology updates keep nnz",
  async (gpu) => {
    const cfg = {
      ...parseTrainConfig({
        model: "lstm",
        dataset: "mnist",
        trainSubset: 1000,
        testSubset: 200,
        lstmHidden: 32,
        epochs: 4,
        method: "set",
        density: 0.3,
        batchSize: 50,
        optimizer: "adam",
        lr: 0.01,
        weightDecay: 0,
      }),
      hidden: [],
    };
    const t = await Trainer.create(gpu, cfg);
    const lstm = t.model.layers[0] as Lstm;
    const colsBefore = await Promise.all(lstm.sparseParts().map((l) => gpu.read(l.csr.colT)));
    const ms = [];
    for (let e = 0; e < cfg.epochs; e++) ms.push(await runEpoch(t));
    const last = ms[ms.length - 1];
    assert.ok(last.testAccuracy > 0.4, `test accuracy ${last.testAccuracy}`);
    assert.deepEqual(last.nnz, ms[0].nnz, "nnz changed");
    assert.deepEqual(ms[0].nnz.slice(0, 2), [
      Math.round(0.3 * 28 * 128),
      Math.round(0.3 * 32 * 128),
    ]);
    // SET ran after epochs 1-3 on both LSTM matrices: their topology changed.
    const colsAfter = await Promise.all(lstm.sparseParts().map((l) => gpu.read(l.csr.colT)));
    colsAfter.forEach((c, i) => {
      const n = lstm.sparseParts()[i].csr.nnz;
      let changed = 0;
      for (let k = 0; k < n; k++) if (c[k] !== colsBefore[i][k]) changed++;
      assert.ok(changed > 0, `${lstm.sparseParts()[i].name}: topology unchanged`);
    });
    console.log(
      `lstm H32 SET 0.3: test accuracy ${last.testAccuracy.toFixed(3)}, ${
        last.seconds.total.toFixed(1)
      } s/epoch`,
    );
  },
);
