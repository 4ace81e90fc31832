import { roundUp4 } from "../src/gpu/mod.ts";
import {
  col2im,
  convDims,
  type ConvGeometry,
  im2col,
  maxPoolBackward,
  maxPoolForward,
} from "../src/kernels/conv.ts";
import { softmaxXent } from "../src/kernels/loss.ts";
import { Optimizer } from "../src/kernels/optim.ts";
import { buildCnn } from "../src/nn/cnn.ts";
import { Tape } from "../src/nn/tape.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { kernelBench } from "./_harness.ts";
import { modelSpecOf } from "../src/train/model_spec.ts";

const BATCH = 128;
const ld = roundUp4(BATCH);

// The default MNIST CNN's two convolutions (5x5, "same"): 1x28x28 -> 16, 16x14x14 -> 32.
const CONVS: [string, ConvGeometry][] = [
  ["1x28x28 k5", { channels: 1, height: 28, width: 28, kernel: 5 }],
  ["16x14x14 k5", { channels: 16, height: 14, width: 14, kernel: 5 }],
];
for (const [label, g] of CONVS) {
  const d = convDims(g);
  const inN = g.channels * g.height * g.width * ld;
  const colN = d.rows * d.positions * ld;
  kernelBench({
    group: "conv",
    name: `im2col ${label} b${BATCH}`,
    bytes: 4 * 2 * colN, // every column element is written and (at most) one input read
    setup(gpu) {
      const x = gpu.tensor("f32", [inN], { zero: true });
      const cols = gpu.tensor("f32", [colN]);
      return (rec) => im2col(rec, { ...g, x, cols, batch: BATCH });
    },
  });
  kernelBench({
    group: "conv",
    name: `col2im ${label} b${BATCH}`,
    bytes: 4 * (colN + inN),
    setup(gpu) {
      const dcols = gpu.tensor("f32", [colN], { zero: true });
      const dx = gpu.tensor("f32", [inN]);
      return (rec) => col2im(rec, { ...g, dcols, dx, batch: BATCH });
    },
  });
}

const POOL = { channels: 16, height: 28, width: 28, size: 2 };
const poolIn = 16 * 28 * 28 * ld, poolOut = 16 * 14 * 14 * ld;
kernelBench({
  group: "conv",
  name: `maxpool fwd 16x28x28 b${BATCH}`,
  bytes: 4 * (poolIn + 2 * poolOut),
  setup(gpu) {
    const x = gpu.tensor("f32", [poolIn], { zero: true });
    const y = gpu.tensor("f32", [poolOut]);
    const argmax = gpu.tensor("u32", [poolOut]);
    return (rec) => maxPoolForward(rec, { ...POOL, x, y, argmax, batch: BATCH });
  },
});
kernelBench({
  group: "conv",
  name: `maxpool bwd 16x28x28 b${BATCH}`,
  bytes: 4 * (poolIn + 2 * poolOut),
  setup(gpu) {
    const dy = gpu.tensor("f32", [poolOut], { zero: true });
    const argmax = gpu.tensor("u32", [poolOut], { zero: true });
    const dx = gpu.tensor("f32", [poolIn]);
    return (rec) => maxPoolBackward(rec, { ...POOL, dy, argmax, dx, batch: BATCH });
  },
});

// One training step (forward, softmax cross-entropy, backward, SGD momentum) of the default
// CNN: conv 16 / conv 32 (5x5, SET density 0.1), hidden 64, 10 classes, batch 128.
kernelBench({
  group: "conv",
  name: `cnn train step [16,32] k5 h64 d0.1 b${BATCH}`,
  items: BATCH,
  passMs: 300,
  setup(gpu) {
    const cfg = parseTrainConfig({ model: "cnn", method: "set", density: 0.1, hidden: [64] });
    const model = buildCnn(gpu, modelSpecOf(cfg, { features: 784, classes: 10, shape: [28, 28] }));
    const data = new Float32Array(784 * ld);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 97 / 97;
    const x = { t: gpu.tensor("f32", [784, ld], { data }), rows: 784, batch: BATCH };
    const labels = gpu.tensor("u32", [BATCH], {
      data: Uint32Array.from({ length: BATCH }, (_, i) => i % 10),
    });
    const loss = gpu.tensor("f32", [BATCH]);
    const opts = model.params.map((p) =>
      new Optimizer(gpu, p.value.size, { kind: "sgd", momentum: 0.9, weightDecay: 2e-4 }, p.name)
    );
    const tape = new Tape();
    return (rec) => {
      tape.reset();
      const logits = model.forward({ rec, tape }, x);
      const dl = tape.gradFor(logits, () => ({
        t: gpu.tensor("f32", [10, ld], { zero: true }),
        rows: 10,
        batch: BATCH,
      }));
      softmaxXent(rec, {
        logits: logits.t,
        labels,
        loss,
        dlogits: dl.t,
        classes: 10,
        batch: BATCH,
      });
      tape.backward();
      model.params.forEach((p, i) => opts[i].step(rec, { param: p.value, grad: p.grad, lr: 0.01 }));
    };
  },
});
