import assert from "node:assert/strict";
import { FiligreeError, type Gpu, roundUp4 } from "../../src/gpu/mod.ts";
import { buildCnn } from "../../src/nn/cnn.ts";
import { Conv2d, MaxPool2d, SparseConv2d } from "../../src/nn/conv.ts";
import { Linear, SparseLinear } from "../../src/nn/layers.ts";
import type { Sequential } from "../../src/nn/mlp.ts";
import { type Act, allocAct } from "../../src/nn/act.ts";
import { Tape } from "../../src/nn/tape.ts";
import { im2colRef, maxPoolRef } from "../../src/kernels/conv_ref.ts";
import { spmmRef } from "../../src/kernels/sparse_ref.ts";
import { actForwardRef } from "../../src/kernels/activation_ref.ts";
import { type CsrHost, downloadCsr } from "../../src/sparse/csr.ts";
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

/** Host copy of a model's parameters (float64) plus sparse structures, for the CPU forward. */
interface HostModel {
  values: Map<string, Float64Array>;
  csr: Map<string, CsrHost>;
}

async function hostModel(gpu: Gpu, m: Sequential): Promise<HostModel> {
  const values = new Map<string, Float64Array>();
  const csr = new Map<string, CsrHost>();
  for (const p of m.params) values.set(p.name, Float64Array.from(await gpu.read(p.value)));
  for (const l of m.sparseLayers) csr.set(l.name, await downloadCsr(gpu, l.csr));
  return { values, csr };
}

function denseLinear(
  w: Float64Array,
  bias: Float64Array,
  x: Float64Array,
  nIn: number,
  nOut: number,
  n: number,
  act: string,
  actParam: number,
): Float64Array {
  const y = new Float64Array(nOut * n);
  for (let o = 0; o < nOut; o++) {
    for (let c = 0; c < n; c++) {
      let s = bias[o];
      for (let i = 0; i < nIn; i++) s += w[i * nOut + o] * x[i * n + c];
      y[o * n + c] = actForwardRef(act, s, actParam);
    }
  }
  return y;
}

/** Float64 forward of a CNN built from conv / pool / linear layers (no norm or dropout). */
function cpuForward(m: Sequential, h: HostModel, x: Float64Array, B: number): Float64Array {
  let a = x;
  for (const l of m.layers) {
    const v = (s: string) => h.values.get(`${l.name}.${s}`)!;
    if (l instanceof SparseConv2d) {
      const cols = im2colRef(a, l.geometry, B);
      const n = l.dims.positions * B;
      a = spmmRef(h.csr.get(l.name)!, v("values"), cols, n, v("bias"), l.act, l.actParam).y;
    } else if (l instanceof Conv2d) {
      const cols = im2colRef(a, l.geometry, B);
      const n = l.dims.positions * B;
      a = denseLinear(
        v("weight"),
        v("bias"),
        cols,
        l.dims.rows,
        l.outChannels,
        n,
        l.act,
        l.actParam,
      );
    } else if (l instanceof SparseLinear) {
      a = spmmRef(h.csr.get(l.name)!, v("values"), a, B, v("bias"), l.act, l.actParam).y;
    } else if (l instanceof Linear) {
      a = denseLinear(v("weight"), v("bias"), a, l.inFeatures, l.outFeatures, B, l.act, l.actParam);
    } else if (l instanceof MaxPool2d) {
      a = maxPoolRef(a, l.geometry, B).y;
    } else {
      throw new Error(`cpuForward: unexpected layer ${l.name}`);
    }
  }
  return a;
}

/** GPU forward + backward of L = sum(logits · R); returns logits and every parameter gradient. */
async function gpuStep(
  gpu: Gpu,
  m: Sequential,
  xs: Float64Array,
  features: number,
  R: Float64Array,
  classes: number,
  B: number,
): Promise<{ logits: Float64Array; evalLogits: Float64Array; grads: Map<string, Float64Array> }> {
  const ld = roundUp4(B);
  const x: Act = {
    t: gpu.tensor("f32", [features, ld], { data: toPadded(xs, features, B) }),
    rows: features,
    batch: B,
  };
  for (const p of m.params) gpu.poison(p.grad);
  const tape = new Tape();
  const rec = gpu.recorder();
  const logits = m.forward({ rec, tape }, x);
  const dl = tape.gradFor(logits, () => allocAct(gpu, classes, B, "dlogits"));
  gpu.write(dl.t, toPadded(R, classes, B));
  tape.backward();
  rec.submit();
  const out = fromPadded(await gpu.read(logits.t), classes, B, "logits");
  const grads = new Map<string, Float64Array>();
  for (const p of m.params) grads.set(p.name, Float64Array.from(await gpu.read(p.grad)));
  const rec2 = gpu.recorder();
  const ev = m.forward({ rec: rec2, tape: null }, x);
  rec2.submit();
  const evalLogits = fromPadded(await gpu.read(ev.t), classes, B, "eval logits");
  return { logits: out, evalLogits, grads };
}

async function randomizeBiases(gpu: Gpu, m: Sequential, rng: Rng) {
  // Nonzero biases reach the padding lanes of the convolution outputs: the mask must clear them.
  for (const p of m.params) {
    if (p.kind === "bias") gpu.write(p.value, Float32Array.from(rng.normal(p.value.size, 0.3)));
  }
  await gpu.sync();
}

const CASES = [
  {
    label: "sparse conv, tanh, k3",
    cfg: {
      model: "cnn",
      method: "set",
      density: 0.6,
      convChannels: [2, 3],
      kernelSize: 3,
      hidden: [4],
      activation: "tanh",
    },
    shape: [7, 9],
    batch: 5,
  },
  {
    label: "dense conv, relu, even kernel 4",
    cfg: {
      model: "cnn",
      method: "dense",
      convChannels: [3],
      kernelSize: 4,
      hidden: [5],
      activation: "relu",
    },
    shape: [6, 8],
    batch: 6,
  },
];

gpuTest(
  "cnn: GPU gradients of a tiny CNN match finite differences of a float64 CPU forward",
  async (gpu, rng) => {
    for (const c of CASES) {
      const classes = 3;
      const features = c.shape[0] * c.shape[1];
      const cfg = parseTrainConfig({ ...c.cfg, seed: rng.int(1000) });
      const m = buildCnn(gpu, modelSpecOf(cfg, { features, classes, shape: c.shape }));
      await randomizeBiases(gpu, m, rng);
      const B = c.batch;
      const xs = asF32(rng.normal(features * B));
      const R = asF32(rng.normal(classes * B));
      const { logits, evalLogits, grads } = await gpuStep(gpu, m, xs, features, R, classes, B);
      const host = await hostModel(gpu, m);
      const L = () => {
        const y = cpuForward(m, host, xs, B);
        let s = 0;
        for (let i = 0; i < y.length; i++) s += y[i] * R[i];
        return s;
      };
      const ref = cpuForward(m, host, xs, B);
      // float32 forward through <= 3 weight layers of fan-in <= 36: 1e-4 relative.
      assertClose(logits, ref, { rtol: 1e-4, atol: 1e-5, label: `${c.label} logits` });
      assertClose(evalLogits, ref, { rtol: 1e-4, atol: 1e-5, label: `${c.label} eval logits` });
      const eps = 1e-6;
      for (const p of m.params) {
        const v = host.values.get(p.name)!;
        const fd = new Float64Array(v.length);
        for (let i = 0; i < v.length; i++) {
          const o = v[i];
          v[i] = o + eps;
          const lp = L();
          v[i] = o - eps;
          const lm = L();
          v[i] = o;
          fd[i] = (lp - lm) / (2 * eps);
        }
        const scale = fd.reduce((s, x) => Math.max(s, Math.abs(x)), 0);
        // float32 gradients (sums over batch and positions) vs float64 central differences.
        assertClose(grads.get(p.name)!, fd, {
          rtol: 1e-3,
          atol: 1e-4 * scale + 1e-6,
          label: `${c.label}: d${p.name}`,
        });
        assert.ok(scale > 0, `${c.label}: ${p.name} has an all-zero gradient (test too weak)`);
      }
    }
  },
);

gpuTest("cnn: convolutions are sparse layers; non-image data is refused", (gpu) => {
  const cfg = parseTrainConfig({
    model: "cnn",
    method: "set",
    density: 0.5,
    convChannels: [4, 8],
    kernelSize: 3,
    hidden: [16],
  });
  const m = buildCnn(gpu, modelSpecOf(cfg, { features: 100, classes: 4, shape: [10, 10] }));
  assert.deepEqual(m.sparseLayers.map((l) => l.name), ["conv1", "conv2", "fc1"]);
  assert.deepEqual(m.layers.map((l) => l.name), [
    "conv1",
    "conv1.pool",
    "conv2",
    "conv2.pool",
    "fc1",
    "out",
  ]);
  assert.throws(
    () => buildCnn(gpu, modelSpecOf(cfg, { features: 64, classes: 4, shape: [64] })),
    (e) => e instanceof FiligreeError && /needs an image dataset/.test(e.message),
  );
  assert.throws(
    () =>
      buildCnn(
        gpu,
        modelSpecOf({ ...cfg, convChannels: [4, 4, 4, 4] }, {
          features: 100,
          classes: 4,
          shape: [10, 10],
        }),
      ),
    FiligreeError,
  );
});

gpuTest(
  "cnn: SET on an MNIST subset learns (> 50 %) and rewires the convolutions at constant nnz",
  async (gpu) => {
    const cfg = parseTrainConfig({
      model: "cnn",
      dataset: "mnist",
      trainSubset: 600,
      testSubset: 200,
      convChannels: [4, 8],
      hidden: [32],
      epochs: 2,
      method: "set",
      density: 0.3,
      batchSize: 50,
    });
    const t = await Trainer.create(gpu, cfg);
    const convs = t.sparseLayers.filter((l) => l instanceof SparseConv2d);
    assert.equal(convs.length, 2);
    const before = await Promise.all(convs.map((l) => gpu.read(l.csr.colT)));
    const nnz0 = t.nnz();
    let last;
    for (let e = 0; e < cfg.epochs; e++) last = await runEpoch(t);
    assert.ok(last!.testAccuracy > 0.5, `test accuracy ${last!.testAccuracy}`);
    assert.deepEqual(t.nnz(), nnz0, "nnz changed");
    for (const [i, l] of convs.entries()) {
      const born = await gpu.read(l.bornStep);
      assert.ok(born.some((s) => s > 0), `${l.name}: no weight was regrown`);
      const after = await gpu.read(l.csr.colT);
      assert.notDeepEqual(after, before[i], `${l.name}: topology unchanged`);
    }
  },
);
