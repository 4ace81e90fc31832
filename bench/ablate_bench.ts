/**
 * Ablation throughput (`deno task bench:ablate`): every weight of a 10 %-dense 784-300-100-10
 * MLP (SET, trained one epoch on a 10,000-sample MNIST subset), each ablated exactly on a
 * 1,000-sample evaluation set, by every engine variant of src/analysis/probe.ts in the same run:
 *
 * - `carry`: the work-efficient engine (default; shaders/ablation_carry.wgsl), all weights;
 * - `batched`: the patched-copy engine (K corrected copies through the rest of the model), all
 *   weights unless `--batched-max N` limits it (then timed on the first N of each layer and
 *   extrapolated);
 * - `naive`: zero the weight, full forward, restore; timed on `--naive N` weights, extrapolated.
 *
 * The carry and batched Δloss are compared on every weight both ran. Then, when
 * `/usr/bin/python3` (or `--python`) can import torch, bench/ablate_peer.py times PyTorch CPU
 * peers (1 thread) on the same checkpoint and evaluation samples: naive, rank-1 carry over all
 * samples, and only the samples whose unit output changes; their Δloss is checked against the
 * carry engine's. Prints rates, ratios and the load average; writes bench/ablate_results.json.
 * Target on the software adapter: all weights in <= 1 s.
 *
 * Options: `--eval-samples N` (default 1000), `--naive N` (default 40), `--batched-max N`
 * (default: all), `--hidden 300,100`, `--density 0.1` or `--epsilon E` (SET's ER density),
 * `--train-subset N` (default 10000), `--no-peer`, `--python PATH` (else bench/_peer_python.ts
 * picks one that imports torch), `--torch-device cpu|cuda`, `--peer-budget S` (seconds per peer
 * variant and layer before it extrapolates; default 60), `--peer-dir DIR` (keep the peer's input
 * files there), `--carry-budget S` (seconds for the carry engine over all layers, in chunks of
 * 4,096 weights, then extrapolated; default: no limit), `--out FILE`.
 *
 * @example
 * ```sh
 * DENO_WEBGPU_BACKEND=gl deno task bench:ablate
 * ```
 * @module
 */
import { getGpu, roundUp4 } from "../src/gpu/mod.ts";
import type { AblationEngine } from "../src/analysis/probe.ts";
import { median } from "../src/analysis/stats.ts";
import { cpuUsage } from "node:process";
import { findPeerPython, type PeerPython } from "./_peer_python.ts";
import {
  benchFlags,
  loadavg,
  runPeerScript,
  trainedProbe,
  withPeerDir,
  writeResults,
} from "./_ablate_harness.ts";

const { flag, has, requirePositive } = benchFlags("bench:ablate");
const evalSamples = Number(flag("eval-samples", "1000"));
const naiveCount = Number(flag("naive", "40"));
const batchedMax = Number(flag("batched-max", "Infinity"));
const hidden = flag("hidden", "300,100").split(",").map(Number);
const epsilon = has("epsilon") ? Number(flag("epsilon", "0")) : undefined;
const density = epsilon === undefined ? Number(flag("density", "0.1")) : undefined;
const trainSubset = Number(flag("train-subset", "10000"));
const outFile = flag("out", "bench/ablate_results.json");
const peerDir = has("peer-dir") ? flag("peer-dir", "") : undefined;
const peerDevice = flag("torch-device", "cpu");
const peerBudget = Number(flag("peer-budget", "60"));
const carryBudget = Number(flag("carry-budget", "Infinity"));
const runPeer = !has("no-peer");
const peerPy: PeerPython = runPeer
  ? await findPeerPython(has("python") ? flag("python", "") : undefined)
  : { line: "peers: skipped (--no-peer)" };
if (peerDevice !== "cpu" && peerDevice !== "cuda") {
  console.error(`bench:ablate: --torch-device must be cpu or cuda, got ${peerDevice}`);
  Deno.exit(2);
}
requirePositive([
  ["eval-samples", evalSamples],
  ["naive", naiveCount],
  [epsilon === undefined ? "density" : "epsilon", epsilon ?? density],
  ["train-subset", trainSubset],
  ["peer-budget", peerBudget],
  ["carry-budget", carryBudget],
]);

const gpu = await getGpu();
const { cfg, probe } = await trainedProbe(gpu, {
  dataset: "mnist",
  trainSubset,
  hidden,
  method: "set",
  ...(epsilon === undefined ? { density } : { epsilon }),
  epochs: 1,
  seed: 0,
}, evalSamples);
const base = await probe.baseline();
await probe.refreshCache();
const L = probe.layers.length;
const all = (w: number, n = probe.layers[w].nnz) => Uint32Array.from({ length: n }, (_, i) => i);

// Warm-up: compile every pipeline at the shapes used below, build the carry plans.
for (const engine of ["carry", "batched"] as AblationEngine[]) {
  probe.engine = engine;
  for (let w = 0; w < L; w++) {
    await probe.ablateWeights(w, all(w, Math.min(probe.layers[w].nnz, probe.batchSize(w, 1e9))));
  }
}
await probe.ablateNaive(0, 0);

interface LayerRow {
  layer: string;
  weights: number;
  carried: boolean;
  reason?: string;
  /** Median of the warm passes (plan cached); the cold first pass when budgeted. */
  carrySeconds: number;
  /** The first pass, which also plans the layer. */
  carryColdSeconds: number;
  /** CPU time of this process during the carry (all threads, llvmpipe's included). */
  carryCpuSeconds: number;
  /** Weights the carry engine ran (all, unless --carry-budget stopped it). */
  carryTimed: number;
  batchedSeconds: number;
  batchedTimed: number;
  maxAbsDiff: number;
}
const layers: LayerRow[] = [];
const WARM_REPS = 3;
const carryDLoss: Float64Array[] = [];
const loadBefore = loadavg();
for (let w = 0; w < L; w++) {
  const pl = probe.layers[w];
  const d = await probe.carryDecision(w);
  probe.engine = "carry";
  // all weights at once, or (with --carry-budget) chunks until the layer's share of the budget
  // is spent; weights not reached keep NaN and the time is extrapolated from those done
  const dl = new Float64Array(pl.nnz).fill(NaN);
  const chunk = Number.isFinite(carryBudget) ? Math.min(pl.nnz, 4096) : pl.nnz;
  let carryDone = 0, carryWall = 0, carryCpuTime = 0;
  while (carryDone < pl.nnz && carryWall < carryBudget / L) {
    const idx = all(w).subarray(carryDone, Math.min(pl.nnz, carryDone + chunk));
    const t0 = performance.now();
    const cpu0 = cpuUsage();
    const c = await probe.ablateWeights(w, idx);
    carryWall += (performance.now() - t0) / 1000;
    const cpu1 = cpuUsage();
    carryCpuTime += (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / 1e6;
    dl.set(c.dLoss.subarray(0, idx.length), carryDone);
    carryDone += idx.length;
  }
  // The first pass above is cold (it plans the layer: sample lists, packing, the pipeline). A
  // full layer is then run WARM_REPS more times with the plan cached; the reported time is their
  // median (the cold pass is kept as carryColdSeconds).
  const carryColdSeconds = carryWall * (pl.nnz / carryDone);
  let carrySeconds = carryColdSeconds;
  let carryCpuSeconds = carryCpuTime * (pl.nnz / carryDone);
  if (carryDone === pl.nnz) {
    const wall: number[] = [], cpu: number[] = [];
    for (let r = 0; r < WARM_REPS; r++) {
      const t0 = performance.now();
      const cpu0 = cpuUsage();
      await probe.ablateWeights(w, all(w));
      wall.push((performance.now() - t0) / 1000);
      const cpu1 = cpuUsage();
      cpu.push((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / 1e6);
    }
    carrySeconds = median(wall);
    carryCpuSeconds = median(cpu);
  }
  carryDLoss.push(dl);
  const c = { dLoss: dl };
  let t0 = performance.now();
  probe.engine = "batched";
  const nb = Math.min(carryDone, batchedMax);
  t0 = performance.now();
  const b = await probe.ablateWeights(w, all(w, nb));
  const batchedSeconds = (performance.now() - t0) / 1000;
  let maxAbsDiff = 0;
  for (let e = 0; e < nb; e++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(c.dLoss[e] - b.dLoss[e]));
  layers.push({
    layer: pl.name,
    weights: pl.nnz,
    carried: d.carried,
    reason: d.reason,
    carrySeconds,
    carryColdSeconds,
    carryCpuSeconds,
    carryTimed: carryDone,
    batchedSeconds: batchedSeconds * (pl.nnz / nb),
    batchedTimed: nb,
    maxAbsDiff,
  });
}
probe.engine = "carry";
const naiveMs: number[] = [];
for (let k = 0; k < naiveCount; k++) {
  const w = k % L;
  const t0 = performance.now();
  await probe.ablateNaive(w, (k * 7919) % probe.layers[w].nnz);
  naiveMs.push(performance.now() - t0);
}
const total = layers.reduce((a, l) => a + l.weights, 0);
const carrySec = layers.reduce((a, l) => a + l.carrySeconds, 0);
const carryCpu = layers.reduce((a, l) => a + l.carryCpuSeconds, 0);
const carryCold = layers.reduce((a, l) => a + l.carryColdSeconds, 0);
const batchedSec = layers.reduce((a, l) => a + l.batchedSeconds, 0);
const naiveSec = (total * median(naiveMs)) / 1000;
const loadAfter = loadavg();

// ---- PyTorch peer on the same checkpoint and evaluation samples ----
interface PeerOut {
  torch: string;
  threads: number;
  baselineLoss: number;
  device: string;
  budgetSeconds: number;
  variants: {
    name: string;
    seconds: number;
    cpuSeconds: number;
    timed: number;
    extrapolated: boolean;
  }[];
  agreement: { maxAbs: number; maxRel: number; within: number; compared: number };
  error?: string;
}
async function peer(): Promise<PeerOut | { skipped: string }> {
  const python = peerPy.python;
  if (!python || !peerPy.torch) return { skipped: peerPy.torchSkipped ?? peerPy.line };
  return await withPeerDir("ablate_peer_", peerDir, async (d) => {
    const S = probe.samples, ld = roundUp4(S);
    const x = await gpu.read(probe.cachedX[0]) as Float32Array;
    const xs = new Float32Array(S * probe.layers[0].nIn); // sample-major [S][nIn]
    for (let i = 0; i < probe.layers[0].nIn; i++) {
      for (let s = 0; s < S; s++) xs[s * probe.layers[0].nIn + i] = x[i * ld + s];
    }
    await d.put("x", xs, [S, probe.layers[0].nIn]);
    await d.put("labels", (await gpu.read(probe.labels) as Uint32Array).slice(0, S), [S]);
    for (let w = 0; w < L; w++) {
      const pl = probe.layers[w];
      await d.put(`ends${w}`, pl.ends, [pl.nnz, 2]);
      await d.put(`values${w}`, pl.values, [pl.nnz]);
      await d.put(`bias${w}`, (await gpu.read(pl.layer.bias) as Float32Array).slice(0, pl.nOut), [
        pl.nOut,
      ]);
      await d.put(`dloss${w}`, carryDLoss[w], [pl.nnz]);
    }
    const meta = {
      layers: probe.layers.map((pl) => ({ nIn: pl.nIn, nOut: pl.nOut, nnz: pl.nnz })),
      activation: cfg.activation,
      files: d.files,
      naive: naiveCount,
      baselineLoss: base.loss,
      device: peerDevice,
      budgetSeconds: peerBudget,
    };
    await Deno.writeTextFile(`${d.dir}/meta.json`, JSON.stringify(meta));
    return await runPeerScript<PeerOut>(python, "./ablate_peer.py", [`${d.dir}/meta.json`]);
  });
}
const peerRes = runPeer ? await peer() : { skipped: "--no-peer" };
const loadPeer = loadavg();

const model = [784, ...hidden, 10].join("-");
console.log(
  `exact ablation of every weight of ${model} at ${
    epsilon === undefined ? `${density! * 100}%` : `SET epsilon ${epsilon}`
  } on ${probe.samples} samples ` +
    `(${gpu.info.description || gpu.info.vendor}, backend ${gpu.backend}; load average before ` +
    `${loadBefore}, after ${loadAfter}):`,
);
for (const l of layers) {
  console.log(
    `  ${l.layer.padEnd(4)} ${String(l.weights).padStart(6)} weights: carry ${
      l.carrySeconds.toFixed(3)
    } s (median of ${WARM_REPS} warm; cold first pass ${l.carryColdSeconds.toFixed(3)} s)${
      l.carryTimed < l.weights ? ` (timed on ${l.carryTimed}, extrapolated)` : ""
    }${l.carried ? "" : ` (fell back: ${l.reason})`}, batched ${l.batchedSeconds.toFixed(1)} s${
      l.batchedTimed < l.weights ? ` (timed on ${l.batchedTimed})` : ""
    }, max |carry - batched| ${l.maxAbsDiff.toExponential(1)}`,
  );
}
const rate = (s: number) => `${(total / s).toFixed(0)}/s`;
console.log(
  `  carry (work-efficient): ${total} ablations in ${carrySec.toFixed(3)} s (${
    rate(carrySec)
  }; cold, planning included: ${carryCold.toFixed(3)} s)\n` +
    `  batched (patched copies): ${batchedSec.toFixed(1)} s (${rate(batchedSec)}), carry is ${
      (batchedSec / carrySec).toFixed(0)
    }x faster\n` +
    `  naive full forward: ${median(naiveMs).toFixed(1)} ms each (median of ${naiveCount}) -> ${
      naiveSec.toFixed(0)
    } s for all, carry is ${(naiveSec / carrySec).toFixed(0)}x faster`,
);
if ("skipped" in peerRes) {
  console.log(`  PyTorch peer: skipped (${peerRes.skipped})`);
} else {
  console.log(
    `  PyTorch ${peerRes.torch} peer on ${
      peerRes.device === "cpu" ? `the CPU, ${peerRes.threads} thread(s)` : peerRes.device
    } (${peerPy.python}), load after ${loadPeer}; baseline loss ${
      peerRes.baselineLoss.toFixed(6)
    } vs Filigree ${base.loss.toFixed(6)}; peer/F = peer time / Filigree carry time (> 1: ` +
      `Filigree faster); CPU = the process's CPU time (Filigree carry: ${carryCpu.toFixed(2)} s):`,
  );
  for (const v of peerRes.variants) {
    console.log(
      `    ${v.name.padEnd(8)} ${v.seconds.toFixed(3).padStart(10)} s (CPU ${
        v.cpuSeconds.toFixed(3)
      } s) for all${v.extrapolated ? ` (timed on ${v.timed} weights, extrapolated)` : ""}  peer/F ${
        (v.seconds / carrySec).toFixed(2)
      } wall, ${(v.cpuSeconds / carryCpu).toFixed(2)} CPU`,
    );
  }
  const a = peerRes.agreement;
  console.log(
    `    exact: the 'changed' Δloss vs the carry engine's on ${a.compared} weights: max |Δ| ${
      a.maxAbs.toExponential(2)
    }, max relative ${a.maxRel.toExponential(2)} (where |Δloss| > 1e-4), ${a.within} within ` +
      `1e-5·|Δloss| + 1e-7`,
  );
}
const result = {
  date: new Date().toISOString(),
  adapter: gpu.info.description || gpu.info.vendor,
  backend: gpu.backend,
  loadAverage: { before: loadBefore, after: loadAfter, afterPeer: loadPeer },
  model,
  density: density ?? null,
  epsilon: epsilon ?? null,
  trainSubset,
  evalSamples: probe.samples,
  baseline: base,
  layers,
  carry: {
    weights: total,
    seconds: carrySec,
    coldSeconds: carryCold,
    warmReps: WARM_REPS,
    cpuSeconds: carryCpu,
    perSecond: total / carrySec,
  },
  peerPython: peerPy.python ?? null,
  batched: { seconds: batchedSec, perSecond: total / batchedSec },
  naive: { timed: naiveCount, medianMs: median(naiveMs), secondsForAll: naiveSec },
  peer: peerRes,
};
await writeResults(outFile, result);
