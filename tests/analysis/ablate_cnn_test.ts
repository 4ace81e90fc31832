/** `ablate` on CNN and LSTM runs: every weight layer is scored, ablated, per-layer curves. */
import { ablateRun } from "../../src/analysis/run.ts";
import { parseAblateOptions } from "../../src/analysis/options.ts";
import { trainRun } from "../../src/train/run.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { gpuTest } from "../../src/testing/mod.ts";

/**
 * Trains `model` (one epoch, sparse SET at 50 %, on 300 MNIST training samples) in a fresh
 * directory, runs `ablate` on it with unit ablation and per-layer curves, checks the weight
 * layers' names, hands the directory and summary to `check`, and removes the directory.
 */
async function ablatedRun(
  model: Record<string, unknown>,
  ablate: { evalSamples: number; maxWeights: number },
  layers: string,
  check: (dir: string, s: Awaited<ReturnType<typeof ablateRun>>) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: `filigree-ablate-${model.model}-` });
  try {
    const cfg = parseTrainConfig({
      dataset: "mnist",
      trainSubset: 300,
      testSubset: 200,
      method: "set",
      density: 0.5,
      epochs: 1,
      batchSize: 50,
      ...model,
    });
    await trainRun(cfg, dir, { quiet: true });
    const opts = parseAblateOptions({ ...ablate, units: true, curveLayers: true, seed: 2 });
    const s = await ablateRun(dir, opts, { quiet: true });
    const names = s.layers.map((l) => l.name).join();
    if (names !== layers) throw new Error(`layers ${names}`);
    await check(dir, s);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

gpuTest("ablate accepts a CNN run: conv layers scored, ablated, channel units", async () => {
  await ablatedRun(
    { model: "cnn", convChannels: [3, 4], kernelSize: 3, hidden: [9], norm: "batch" },
    { evalSamples: 60, maxWeights: 50 },
    "conv1,conv2,fc1,out",
    async (dir, s) => {
      const ck = await readSafetensors(`${dir}/checkpoint.safetensors`);
      const an = await readSafetensors(`${dir}/analysis/ablation.safetensors`);
      const vals = ck.tensors.get("conv2.values")!.data as Float32Array;
      const mag = an.tensors.get("conv2.train.score.magnitude")!.data as Float32Array;
      if (mag.length !== vals.length || mag.some((m, i) => m !== Math.abs(vals[i]))) {
        throw new Error("conv2 magnitude is not |conv2.values| in checkpoint order");
      }
      const dl = an.tensors.get("conv2.train.delta_loss")!.data as Float32Array;
      if (!dl.length || dl.some((d) => !Number.isFinite(d)) || dl.every((d) => d === 0)) {
        throw new Error(`conv2 delta_loss: ${dl.slice(0, 5)}`);
      }
      // Units: conv2's input channels (3), then fc1's pooled features (4·7·7), then fc1's 9.
      const units = (s.units ?? []).map((u) => u.units).join();
      if (units !== "3,196,9") throw new Error(`units ${units}`);
    },
  );
});

gpuTest("ablate accepts an LSTM run: lstm.wx / lstm.wh ablated, hidden units, curves", async () => {
  await ablatedRun(
    { model: "lstm", lstmHidden: 8, hidden: [6] },
    { evalSamples: 40, maxWeights: 40 },
    "lstm.wx,lstm.wh,fc1,out",
    async (dir, s) => {
      const an = await readSafetensors(`${dir}/analysis/ablation.safetensors`);
      const dl = an.tensors.get("lstm.wh.train.delta_loss")!.data as Float32Array;
      if (dl.length !== 40 || dl.some((d) => !Number.isFinite(d)) || dl.every((d) => d === 0)) {
        throw new Error(`lstm.wh delta_loss: ${dl.slice(0, 5)}`);
      }
      // Hidden units of the LSTM (8) through fc1, then fc1's 6.
      const units = (s.units ?? []).map((u) => `${u.layer}:${u.units}`).join();
      if (units !== "lstm.wh:8,fc1:6") throw new Error(`units ${units}`);
    },
  );
});
