/**
 * Ablation throughput (`deno task bench:ablate`): every weight of a 10 %-dense 784-300-100-10
 * MLP (SET, trained one epoch on a 10,000-sample MNIST subset), each ablated exactly on a
 * 1,000-sample evaluation set by the batched engine (src/analysis/probe.ts), against the naive
 * "zero it, run the full forward, restore" measured in the same run on a sample of weights.
 * Prints ablations per second for both, the ratio, and the time for every weight; writes
 * bench/ablate_results.json. Target on the software adapter: all weights in under 2 minutes.
 *
 * Options: `--eval-samples N` (default 1000), `--naive N` (naive ablations timed, default 40),
 * `--hidden 300,100`, `--density 0.1`, `--out FILE`.
 *
 * @example
 * ```sh
 * XDG_RUNTIME_DIR=/tmp deno run -A bench/ablate_bench.ts
 * ```
 * @module
 */
import { getGpu } from "../src/gpu/mod.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { runEpoch, Trainer } from "../src/train/trainer.ts";
import { Probe } from "../src/analysis/probe.ts";
import { median } from "../src/analysis/stats.ts";

const args = Deno.args;
const flag = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const evalSamples = Number(flag("eval-samples", "1000"));
const naiveCount = Number(flag("naive", "40"));
const hidden = flag("hidden", "300,100").split(",").map(Number);
const density = Number(flag("density", "0.1"));
const outFile = flag("out", "bench/ablate_results.json");

const gpu = await getGpu();
const cfg = parseTrainConfig({
  dataset: "mnist",
  trainSubset: 10000,
  hidden,
  method: "set",
  density,
  epochs: 1,
  seed: 0,
});
const t = await Trainer.create(gpu, cfg);
await runEpoch(t);
const probe = await Probe.fromTrainer(t, { evalSamples, seed: 0 });
const base = await probe.baseline();
await probe.refreshCache();
// Warm-up: compile every pipeline at the batch shapes used below.
for (let w = 0; w < probe.layers.length; w++) {
  await probe.ablateWeights(w, Uint32Array.from({ length: probe.batchSize(w, 1e9) }, (_, i) => i));
}
await probe.ablateNaive(0, 0);

const layers = [];
let total = 0, totalSec = 0;
for (let w = 0; w < probe.layers.length; w++) {
  const pl = probe.layers[w];
  const entries = Uint32Array.from({ length: pl.nnz }, (_, i) => i);
  const t0 = performance.now();
  await probe.ablateWeights(w, entries);
  const sec = (performance.now() - t0) / 1000;
  total += pl.nnz;
  totalSec += sec;
  layers.push({
    layer: pl.name,
    weights: pl.nnz,
    batch: probe.canCarry(w) ? probe.batchSize(w + 1, pl.nnz) : probe.batchSize(w, pl.nnz),
    carried: probe.canCarry(w),
    seconds: sec,
    perSecond: pl.nnz / sec,
  });
}
const naiveMs: number[] = [];
for (let k = 0; k < naiveCount; k++) {
  const w = k % probe.layers.length;
  const t0 = performance.now();
  await probe.ablateNaive(w, (k * 7919) % probe.layers[w].nnz);
  naiveMs.push(performance.now() - t0);
}
const naivePerSec = 1000 / median(naiveMs);
const batchedPerSec = total / totalSec;
let load = "?";
try {
  load = Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
} catch { /* no --allow-sys */ }
const result = {
  date: new Date().toISOString(),
  adapter: gpu.info.description || gpu.info.vendor,
  backend: gpu.backend,
  loadAverage: load,
  model: [784, ...hidden, 10].join("-"),
  density,
  evalSamples: probe.samples,
  baseline: base,
  layers,
  batched: { weights: total, seconds: totalSec, perSecond: batchedPerSec },
  naive: { timed: naiveCount, medianMs: median(naiveMs), perSecond: naivePerSec },
  speedup: batchedPerSec / naivePerSec,
  naiveSecondsForAll: total / naivePerSec,
};
console.log(
  `ablation of every weight of ${result.model} at ${density * 100}% on ${probe.samples} samples ` +
    `(${result.adapter}, load ${load}):`,
);
for (const l of layers) {
  console.log(
    `  ${l.layer.padEnd(4)} ${String(l.weights).padStart(6)} weights in ${
      l.seconds.toFixed(1).padStart(6)
    } s = ${l.perSecond.toFixed(0).padStart(6)} /s (K = ${l.batch} per batch${
      l.carried ? ", carried into the next layer" : ""
    })`,
  );
}
console.log(
  `  batched: ${total} ablations in ${totalSec.toFixed(1)} s (${batchedPerSec.toFixed(0)}/s)\n` +
    `  naive full forward: ${median(naiveMs).toFixed(1)} ms each (${naivePerSec.toFixed(1)}/s) -> ${
      result.naiveSecondsForAll.toFixed(0)
    } s for all; batched is ${result.speedup.toFixed(1)}x faster`,
);
await Deno.writeTextFile(outFile, JSON.stringify(result, null, 2) + "\n");
