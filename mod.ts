/**
 * Filigree as a Deno module: the GPU runtime, the kernel library, sparse storage, models,
 * training and checkpoints.
 *
 * @example
 * ```ts ignore
 * import { getGpu, parseTrainConfig, runEpoch, saveCheckpoint, Trainer } from "./mod.ts";
 * const gpu = await getGpu();
 * const cfg = parseTrainConfig({ dataset: "synthetic", hidden: [32], method: "set", density: 0.3, epochs: 2 });
 * const trainer = await Trainer.create(gpu, cfg);
 * while (trainer.epoch < cfg.epochs) console.log(await runEpoch(trainer));
 * console.log(await trainer.evaluate("test"));
 * await saveCheckpoint(trainer, "/tmp/model.safetensors");
 * ```
 * @module
 */
export * from "./src/gpu/mod.ts";
export { biasAdd, biasGrad } from "./src/kernels/bias.ts";
export { matmul } from "./src/kernels/matmul.ts";
export { sddmm, spmm, spmmT } from "./src/kernels/sparse.ts";
export {
  activationBackward,
  activationForward,
  sreluBackward,
  sreluForward,
} from "./src/kernels/activation.ts";
export { ACTIVATION_IDS, ACTIVATION_NAMES, activationId } from "./src/kernels/activation_ids.ts";
export { dropoutBackward, dropoutForward } from "./src/kernels/dropout.ts";
export {
  batchNormBackward,
  batchNormForwardEval,
  batchNormForwardTrain,
  layerNormBackward,
  layerNormForward,
} from "./src/kernels/norm.ts";
export { mseLoss, softmaxXent } from "./src/kernels/loss.ts";
export { createOptimizer, Optimizer } from "./src/kernels/optim.ts";
export { accumulateSum, argmax, countCorrect, mean, sum } from "./src/kernels/reduce.ts";
export { markSelected, radixSelect } from "./src/kernels/select.ts";
export { exclusiveScan } from "./src/kernels/scan.ts";
export { sortToCsr } from "./src/kernels/sort.ts";
export * from "./src/sparse/csr.ts";
export * from "./src/sparse/density.ts";
export { rebuildTopology } from "./src/sparse/topology.ts";
export * from "./src/sparse/algorithms.ts";
export { loadDataset } from "./src/data/datasets.ts";
export { GpuDataset } from "./src/data/loader.ts";
export * from "./src/io/safetensors.ts";
export { Tape } from "./src/nn/tape.ts";
export * from "./src/nn/layers.ts";
export { buildMlp, Sequential } from "./src/nn/mlp.ts";
export * from "./src/train/config.ts";
export { type EpochMetrics, runEpoch, Trainer } from "./src/train/trainer.ts";
export { loadCheckpoint, saveCheckpoint } from "./src/train/checkpoint.ts";
