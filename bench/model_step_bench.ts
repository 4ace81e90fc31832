/**
 * Training-step time of the CNN and the LSTM of the converged study's `model` design
 * (studies/activation-norm-mlp-converged-model.yaml: MNIST, convolutions 16, 32 with kernel 5 or
 * an LSTM of 128 over 28 rows, dense head 300-100-10, 5 % density, SET, batch 128) under each
 * configuration of their own kernels, in the same process in interleaved rounds:
 *
 * - `buffers`: im2col, col2im, the max pooling and the LSTM cell and re-layout kernels read their
 *   inputs from storage buffers (before the seventh session);
 * - `textures`: they run as texture twins reading texture mirrors (the default on a software
 *   adapter; src/gpu/textured.ts), at the default quads per invocation (`CONV_QB`);
 * - `textures, qb 8` (CNN only): the same with 8 quads per invocation (the GPU default);
 * - `textures, no narrow` (CNN only): the default, but every untuned matmul at the default
 *   blocking (kernels/matmul.ts `NARROW_TUNING` off: conv2's weight gradient, 32 columns).
 *
 * Every other kernel keeps its defaults. A step is forward + backward + SGD-momentum update; time
 * = wall clock of a round of `STEPS` recorded steps and one sync, per step, median and min over
 * `FILIGREE_BENCH_ROUNDS` rounds (default 5). Prints the load average before and after.
 *
 * @example
 * ```sh
 * DENO_WEBGPU_BACKEND=gl deno run -A bench/model_step_bench.ts
 * ```
 * @module
 */
import { adapterClass, getGpu, type KernelDef } from "../src/gpu/mod.ts";
import { COL2IM, CONV_QB, IM2COL, MAXPOOL_BWD, MAXPOOL_FWD } from "../src/kernels/conv.ts";
import { LSTM_BWD, LSTM_FWD, LSTM_SEQ, LSTM_SEQ_T } from "../src/kernels/lstm.ts";
import { NARROW_TUNING } from "../src/kernels/matmul.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { Trainer } from "../src/train/trainer.ts";

const ROUNDS = Number(Deno.env.get("FILIGREE_BENCH_ROUNDS") ?? 5);
const STEPS = 10;
const OWN: KernelDef[] = [
  IM2COL,
  COL2IM,
  MAXPOOL_FWD,
  MAXPOOL_BWD,
  LSTM_SEQ,
  LSTM_SEQ_T,
  LSTM_FWD,
  LSTM_BWD,
];

interface Config {
  name: string;
  twins: boolean;
  qb?: number;
  narrow?: boolean;
}
const CONFIGS: Record<"cnn" | "lstm", Config[]> = {
  cnn: [
    { name: "buffers", twins: false },
    { name: "textures", twins: true },
    { name: "textures, qb 8", twins: true, qb: 8 },
    { name: "textures, no narrow", twins: true, narrow: false },
  ],
  lstm: [{ name: "buffers", twins: false }, { name: "textures", twins: true }],
};

const gpu = await getGpu();
const cls = adapterClass(gpu);
const qbDefault = CONV_QB[cls], narrowDefault = NARROW_TUNING[cls];
const apply = (c: Config) => {
  // The definitions are plain objects; Recorder.dispatch reads `textureInputs` at each dispatch.
  for (const d of OWN) (d as { textureInputs?: boolean }).textureInputs = c.twins;
  CONV_QB[cls] = c.qb ?? qbDefault;
  NARROW_TUNING[cls] = c.narrow ?? narrowDefault;
};
const loadavg = () => Deno.loadavg().map((v) => v.toFixed(2)).join(" ");
const median = (v: number[]) => {
  const s = [...v].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

console.log(
  `model training steps, batch 128, ${gpu.info.description} [${gpu.backend}]; ` +
    `load average before ${loadavg()}`,
);
for (const model of ["cnn", "lstm"] as const) {
  const cfg = parseTrainConfig({
    model,
    dataset: "mnist",
    trainSubset: 128 * (STEPS + 4),
    hidden: [300, 100],
    method: "set",
    density: 0.05,
    init: "erk",
    optimizer: "sgd",
    lr: 0.01,
    momentum: 0.9,
    batchSize: 128,
    epochs: 2,
    seed: 1,
  });
  const t = await Trainer.create(gpu, cfg);
  t.data.epochOrder(0, cfg.seed);
  const configs = CONFIGS[model];
  for (const c of configs) { // compile every variant
    apply(c);
    for (let i = 0; i < 2; i++) t.trainStep(i);
    await gpu.sync();
  }
  const ms: number[][] = configs.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < configs.length; k++) {
      apply(configs[k]);
      const t0 = performance.now();
      for (let i = 0; i < STEPS; i++) t.trainStep(i % t.stepsPerEpoch);
      await gpu.sync();
      ms[k].push((performance.now() - t0) / STEPS);
    }
  }
  apply(configs[1]);
  const base = median(ms[0]);
  for (let k = 0; k < configs.length; k++) {
    const m = median(ms[k]);
    console.log(
      `${model.padEnd(5)} ${configs[k].name.padEnd(19)} ${m.toFixed(1).padStart(7)} ms/step ` +
        `(min ${Math.min(...ms[k]).toFixed(1)})  ${(base / m).toFixed(2)}x`,
    );
  }
}
console.log(`load average after ${loadavg()}`);
