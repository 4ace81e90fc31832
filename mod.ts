/**
 * Filigree as a Deno module: the GPU runtime, the kernel library, sparse storage, models,
 * training and checkpoints, importance scores and batched ablation, studies and reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   computeScores,
 *   getGpu,
 *   parseTrainConfig,
 *   Probe,
 *   runEpoch,
 *   saveCheckpoint,
 *   spearman,
 *   Trainer,
 * } from "./mod.ts";
 * const gpu = await getGpu();
 * const cfg = parseTrainConfig({
 *   dataset: "synthetic", hidden: [32], method: "set", density: 0.3, epochs: 2,
 * });
 * const trainer = await Trainer.create(gpu, cfg);
 * while (trainer.epoch < cfg.epochs) await runEpoch(trainer);
 * assert.ok((await trainer.evaluate("test")).accuracy > 0.5);
 * await saveCheckpoint(trainer, await Deno.makeTempFile({ suffix: ".safetensors" }));
 * // Importance: scores and exact single-weight ablation of the first layer, and how they agree.
 * const probe = await Probe.fromTrainer(trainer, { evalSamples: 200, seed: 0 });
 * const [fc1] = await computeScores(probe, ["magnitude", "snip"], 0);
 * const all = Uint32Array.from({ length: probe.layers[0].nnz }, (_, i) => i);
 * const { dLoss } = await probe.ablateWeights(0, all);
 * assert.ok(Number.isFinite(spearman(fc1.get("magnitude")!, dLoss)));
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
// What a reader of an analysis needs to rebuild its evaluation set: `<split>.eval_indices` in
// ablation.safetensors index the run's split as the run loaded it (after its --train-subset /
// --test-subset), i.e. `loadDataset(cfg.dataset, runDatasetOptions(cfg))` with the run's config
// (readRunConfig).
export { loadDataset, stratifiedIndices, subsetDataset, takeSamples } from "./src/data/datasets.ts";
export { GpuDataset } from "./src/data/loader.ts";
export * from "./src/io/safetensors.ts";
export { Tape } from "./src/nn/tape.ts";
export * from "./src/nn/layers.ts";
export { buildMlp, finishBlock, Sequential } from "./src/nn/mlp.ts";
export * from "./src/train/config.ts";
export { type EpochMetrics, runEpoch, Trainer } from "./src/train/trainer.ts";
export { loadCheckpoint, saveCheckpoint } from "./src/train/checkpoint.ts";
export { runDatasetOptions } from "./src/train/rundir.ts";
export {
  buildModel,
  type DataShape,
  type ModelKind,
  MODELS,
  type ModelSpec,
  weightShapes,
} from "./src/nn/models.ts";
export { modelSpecOf } from "./src/train/model_spec.ts";
export { buildCnn } from "./src/nn/cnn.ts";
export { buildLstm } from "./src/nn/lstm.ts";
export { trainRun } from "./src/train/run.ts";
export { Probe, readRunConfig } from "./src/analysis/probe.ts";
export { computeScores, type LayerScores } from "./src/analysis/scores.ts";
export { ablateRun, chooseEntries } from "./src/analysis/run.ts";
export { type AblateOptions, parseAblateOptions } from "./src/analysis/options.ts";
export * from "./src/analysis/summary.ts";
export {
  bootstrapCI,
  holm,
  kendallTauB,
  pairedPermutationTest,
  precisionAtFraction,
  spearman,
  wilcoxonSignedRank,
} from "./src/analysis/stats.ts";
export { parseStudySpec, readStudySpec } from "./src/study/spec.ts";
export { planStudy, runStudy } from "./src/study/sweep.ts";
export { StudyStore } from "./src/study/store.ts";
export { WANN_DEFAULT_WEIGHTS, WannEvaluator } from "./src/kernels/wann.ts";
export { packNets, WANN_ACT, type WannNet } from "./src/kernels/wann_net.ts";
export { parseWannConfig, readWannConfig } from "./src/wann/config.ts";
export { expressGenome, type Genome, initialGenome } from "./src/wann/genome.ts";
export { Innovations, mutate } from "./src/wann/mutate.ts";
export { nsgaRank, paretoFronts } from "./src/wann/nsga2.ts";
export { readChampion, runSearch } from "./src/wann/search.ts";
export { loadTask as loadWannTask } from "./src/wann/tasks.ts";
export { agnosticAnalysis } from "./src/analysis/agnostic.ts";
export { mergeStores } from "./src/study/merge.ts";
export { writeReport } from "./src/study/report.ts";
export { deriveRules } from "./src/study/rules.ts";
