/** Test fixture: a small CNN trained briefly on an MNIST subset (analysis tests). */
import { parseTrainConfig, type TrainConfig } from "../../src/train/config.ts";
import { runEpoch, Trainer } from "../../src/train/trainer.ts";
import type { Gpu } from "../../src/gpu/mod.ts";

/** A small CNN trained briefly on an MNIST subset (odd channel counts, 7x7 maps after pooling). */
export async function trainedCnn(
  gpu: Gpu,
  over: Partial<TrainConfig>,
  epochs = 1,
): Promise<Trainer> {
  const cfg = parseTrainConfig({
    model: "cnn",
    dataset: "mnist",
    trainSubset: 400,
    testSubset: 100,
    convChannels: [3, 5],
    kernelSize: 3,
    hidden: [7],
    method: "static",
    density: 0.6,
    sparseLayers: "all",
    epochs,
    batchSize: 50,
    lr: 0.05,
    ...over,
  });
  const t = await Trainer.create(gpu, cfg);
  for (let e = 0; e < epochs; e++) await runEpoch(t);
  return t;
}
