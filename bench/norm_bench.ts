// Normalization and loss kernels. GB/s counts the compulsory traffic of one call: every
// activation read once and written once (the kernels re-read x: batch norm 3x in the training
// forward and 2x in the backward, layer norm likewise over the rows), per-row/per-sample
// vectors ignored.
import {
  batchNormBackward,
  batchNormForwardEval,
  batchNormForwardTrain,
  layerNormBackward,
  layerNormForward,
} from "../src/kernels/norm.ts";
import { mseLoss, softmaxXent } from "../src/kernels/loss.ts";
import { type Gpu, roundUp4 } from "../src/gpu/mod.ts";
import { kernelBench } from "./_harness.ts";

const BATCH = 128;
const LD = roundUp4(BATCH);

function act(gpu: Gpu, rows: number) {
  const data = new Float32Array(rows * LD);
  for (let i = 0; i < data.length; i++) data[i] = (i % LD) < BATCH ? Math.sin(i) : 0;
  return gpu.tensor("f32", [rows, LD], { data });
}

function vec(gpu: Gpu, n: number, v: number) {
  return gpu.tensor("f32", [n], { data: new Float32Array(n).fill(v) });
}

for (const rows of [1000, 4096]) {
  const bytes = rows * LD * 4;
  const name = `${rows}x${BATCH}`;
  const setup = (gpu: Gpu) => ({
    x: act(gpu, rows),
    dy: act(gpu, rows),
    y: gpu.tensor("f32", [rows, LD]),
    dx: gpu.tensor("f32", [rows, LD]),
    gamma: vec(gpu, rows, 1),
    beta: vec(gpu, rows, 0),
    runningMean: vec(gpu, rows, 0),
    runningVar: vec(gpu, rows, 1),
    dgamma: gpu.tensor("f32", [rows]),
    dbeta: gpu.tensor("f32", [rows]),
    rowMean: gpu.tensor("f32", [rows]),
    rowInv: gpu.tensor("f32", [rows]),
    colMean: gpu.tensor("f32", [LD]),
    colInv: gpu.tensor("f32", [LD]),
  });
  kernelBench({
    group: "norm",
    name: `bn_forward_train ${name}`,
    bytes: 2 * bytes,
    setup(gpu) {
      const t = setup(gpu);
      return (rec) =>
        batchNormForwardTrain(rec, {
          ...t,
          saveMean: t.rowMean,
          saveInvStd: t.rowInv,
          rows,
          batch: BATCH,
        });
    },
  });
  kernelBench({
    group: "norm",
    name: `bn_forward_eval ${name}`,
    bytes: 2 * bytes,
    setup(gpu) {
      const t = setup(gpu);
      return (rec) => batchNormForwardEval(rec, { ...t, rows, batch: BATCH });
    },
  });
  kernelBench({
    group: "norm",
    name: `bn_backward ${name}`,
    bytes: 3 * bytes,
    setup(gpu) {
      const t = setup(gpu);
      return (rec) =>
        batchNormBackward(rec, {
          ...t,
          saveMean: t.rowMean,
          saveInvStd: t.rowInv,
          rows,
          batch: BATCH,
        });
    },
  });
  kernelBench({
    group: "norm",
    name: `bn_train fwd+bwd ${name}`,
    bytes: 5 * bytes,
    setup(gpu) {
      const t = setup(gpu);
      const s = { saveMean: t.rowMean, saveInvStd: t.rowInv, rows, batch: BATCH };
      return (rec) => {
        batchNormForwardTrain(rec, { ...t, ...s });
        batchNormBackward(rec, { ...t, ...s });
      };
    },
  });
  kernelBench({
    group: "norm",
    name: `ln_forward ${name}`,
    bytes: 2 * bytes,
    setup(gpu) {
      const t = setup(gpu);
      return (rec) =>
        layerNormForward(rec, {
          ...t,
          saveMean: t.colMean,
          saveInvStd: t.colInv,
          rows,
          batch: BATCH,
        });
    },
  });
  kernelBench({
    group: "norm",
    name: `ln_backward ${name}`,
    bytes: 3 * bytes,
    setup(gpu) {
      const t = setup(gpu);
      return (rec) =>
        layerNormBackward(rec, {
          ...t,
          saveMean: t.colMean,
          saveInvStd: t.colInv,
          rows,
          batch: BATCH,
        });
    },
  });
  kernelBench({
    group: "norm",
    name: `ln fwd+bwd ${name}`,
    bytes: 5 * bytes,
    setup(gpu) {
      const t = setup(gpu);
      const s = { saveMean: t.colMean, saveInvStd: t.colInv, rows, batch: BATCH };
      return (rec) => {
        layerNormForward(rec, { ...t, ...s });
        layerNormBackward(rec, { ...t, ...s });
      };
    },
  });
}

for (const classes of [10, 1000]) {
  const bytes = 2 * classes * LD * 4;
  const setup = (gpu: Gpu) => ({
    logits: act(gpu, classes),
    labels: gpu.tensor("u32", [BATCH], {
      data: Uint32Array.from({ length: BATCH }, (_, i) => i % classes),
    }),
    loss: gpu.tensor("f32", [BATCH]),
    dlogits: gpu.tensor("f32", [classes, LD]),
    argmax: gpu.tensor("u32", [BATCH]),
  });
  kernelBench({
    group: "loss",
    name: `softmax_xent ${classes}x${BATCH}`,
    bytes,
    setup(gpu) {
      const t = setup(gpu);
      return (rec) => softmaxXent(rec, { ...t, classes, batch: BATCH });
    },
  });
  kernelBench({
    group: "loss",
    name: `mse sigmoid labels ${classes}x${BATCH}`,
    bytes,
    setup(gpu) {
      const t = setup(gpu);
      return (rec) =>
        mseLoss(rec, {
          pred: t.logits,
          labels: t.labels,
          loss: t.loss,
          dpred: t.dlogits,
          classes,
          batch: BATCH,
          outputActivation: "sigmoid",
        });
    },
  });
}
