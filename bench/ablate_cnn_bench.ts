/**
 * CNN ablation throughput (`deno task bench:ablate-cnn`): every weight of the convolutions of a
 * sparse LeNet-style CNN (conv 6, 16 with 5x5 kernels, 2x2 max pooling, a 64-unit head; SET at
 * 20 %, one epoch on a 5,000-sample MNIST subset), each ablated exactly on an evaluation set, in
 * the same run by:
 *
 * - `batched`: the probe's convolution engine (shaders/ablation_conv.wgsl: K corrected copies of
 *   the output channel at every position, through activation, pooling and the rest; conv1, which
 *   conv2 follows, is also timed with the channel-local path into conv2 off, i.e. on full copies
 *   of conv2's input: `fullCopiesSeconds`);
 * - `naive`: zero the weight, full forward, restore (GPU); timed on `--naive N` weights per
 *   layer, extrapolated; the batched Δloss is compared with it on those weights;
 * - `units`: channel ablation of conv2's input channels (batched);
 * - the PyTorch CPU peer (bench/ablate_cnn_peer.py, 1 thread), when `/usr/bin/python3` (or
 *   `--python`) imports torch: the naive ablation of the same weights of the same model on the
 *   same samples, its Δloss checked against the batched engine's.
 *
 * Prints rates, ratios and the load average; writes bench/ablate_cnn_results.json.
 * Options: `--eval-samples N` (default 500), `--naive N` (default 12), `--density D`,
 * `--no-peer`, `--python PATH`, `--out FILE`.
 *
 * @example
 * ```sh
 * DENO_WEBGPU_BACKEND=gl deno task bench:ablate-cnn
 * ```
 * @module
 */
import { getGpu, roundUp4 } from "../src/gpu/mod.ts";
import { median } from "../src/analysis/stats.ts";
import {
  benchFlags,
  cannotImport,
  loadavg,
  runPeerScript,
  trainedProbe,
  withPeerDir,
  writeResults,
} from "./_ablate_harness.ts";

const { flag, has, requirePositive } = benchFlags("bench:ablate-cnn");
const evalSamples = Number(flag("eval-samples", "500"));
const naiveCount = Number(flag("naive", "12"));
const density = Number(flag("density", "0.2"));
const outFile = flag("out", "bench/ablate_cnn_results.json");
const python = flag("python", "/usr/bin/python3");
const runPeer = !has("no-peer");
requirePositive([["eval-samples", evalSamples], ["naive", naiveCount], ["density", density]], {
  finite: true,
});

const gpu = await getGpu();
const { cfg, probe } = await trainedProbe(gpu, {
  model: "cnn",
  dataset: "mnist",
  trainSubset: 5000,
  convChannels: [6, 16],
  kernelSize: 5,
  hidden: [64],
  activation: "relu",
  method: "set",
  density,
  epochs: 1,
  seed: 0,
}, evalSamples);
await probe.refreshCache();
const base = await probe.baseline();
const S = probe.samples;
const loadBefore = loadavg();
console.log(
  `bench:ablate-cnn: ${probe.layers.map((l) => `${l.name} ${l.nnz}`).join(", ")} weights; ` +
    `${S} samples; ${gpu.info.description || gpu.info.device} [${gpu.backend}]; load ${loadBefore}`,
);

interface LayerRow {
  name: string;
  weights: number;
  batchedSeconds: number;
  /** A convolution followed by another: the same with the channel-local path into it off. */
  fullCopiesSeconds?: number;
  naiveMedianMs: number;
  maxAbsDiff: number;
}
const rows: LayerRow[] = [];
const naiveItems: { layer: number; row: number; col: number; dLoss: number }[] = [];
for (let w = 0; w < probe.layers.length; w++) {
  const pl = probe.layers[w];
  if (pl.kind !== "conv") continue;
  const all = Uint32Array.from({ length: pl.nnz }, (_, e) => e);
  await probe.ablateWeights(w, all.subarray(0, Math.min(8, pl.nnz))); // warm-up (pipelines)
  const t0 = performance.now();
  const r = await probe.ablateWeights(w, all);
  const batchedSeconds = (performance.now() - t0) / 1000;
  let fullCopiesSeconds: number | undefined;
  if (probe.convLocal(w)?.next === "conv") {
    probe.convIntoConv = false;
    await probe.ablateWeights(w, all.subarray(0, Math.min(8, pl.nnz)));
    const tf = performance.now();
    const f = await probe.ablateWeights(w, all);
    fullCopiesSeconds = (performance.now() - tf) / 1000;
    probe.convIntoConv = true;
    const diff = Math.max(...f.dLoss.map((d, e) => Math.abs(d - r.dLoss[e])));
    if (!(diff <= 1e-5)) throw new Error(`${pl.name}: the two paths differ by ${diff}`);
  }
  const ms: number[] = [];
  let maxAbsDiff = 0;
  for (let k = 0; k < naiveCount; k++) {
    const e = (k * 7919) % pl.nnz;
    const t1 = performance.now();
    const n = await probe.ablateNaive(w, e);
    ms.push(performance.now() - t1);
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(n.dLoss - r.dLoss[e]));
    naiveItems.push({ layer: w, row: pl.ends[2 * e], col: pl.ends[2 * e + 1], dLoss: r.dLoss[e] });
  }
  rows.push({
    name: pl.name,
    weights: pl.nnz,
    batchedSeconds,
    ...(fullCopiesSeconds !== undefined ? { fullCopiesSeconds } : {}),
    naiveMedianMs: median(ms),
    maxAbsDiff,
  });
}
const conv2 = probe.layers.findIndex((l) => l.name === "conv2");
const t2 = performance.now();
const units = await probe.ablateUnits(
  conv2,
  Uint32Array.from({ length: probe.layers[conv2].units }, (_, u) => u),
);
const unitSeconds = (performance.now() - t2) / 1000;
const loadAfter = loadavg();

// ---- PyTorch peer: naive ablation of the same weights ----
interface PeerOut {
  torch: string;
  threads: number;
  baseline: number;
  naive: { seconds: number; dLoss: number }[];
}
async function peer(): Promise<PeerOut | { skipped: string }> {
  const cannot = await cannotImport(python, "torch");
  if (cannot) return { skipped: cannot };
  return await withPeerDir("ablate_cnn_peer_", undefined, async (d) => {
    const ld = roundUp4(S);
    await d.put("x", (await gpu.read(probe.x.t) as Float32Array).slice(0, probe.x.rows * ld), [
      probe.x.rows,
      ld,
    ]);
    await d.put("labels", (await gpu.read(probe.labels) as Uint32Array).slice(0, S), [S]);
    const layers = [];
    for (let w = 0; w < probe.layers.length; w++) {
      const pl = probe.layers[w];
      const dense = new Float32Array(pl.nIn * pl.nOut);
      for (let e = 0; e < pl.nnz; e++) {
        dense[pl.ends[2 * e] * pl.nOut + pl.ends[2 * e + 1]] = pl.values[e];
      }
      await d.put(`w${w}`, dense, [pl.nIn, pl.nOut]);
      const bias = await gpu.read(pl.layer.params[1].value) as Float32Array;
      await d.put(`b${w}`, bias.slice(0, pl.nOut), [pl.nOut]);
      layers.push(
        pl.kind === "conv"
          ? {
            kind: "conv",
            kernel: cfg.kernelSize,
            cin: pl.nIn / cfg.kernelSize ** 2,
            cout: pl.nOut,
          }
          : { kind: "linear" },
      );
    }
    const spec = {
      samples: S,
      channels: 1,
      height: 28,
      width: 28,
      layers,
      files: d.files,
      naive: naiveItems,
    };
    await Deno.writeTextFile(`${d.dir}/spec.json`, JSON.stringify(spec));
    return await runPeerScript<PeerOut>(python, "./ablate_cnn_peer.py", [`${d.dir}/spec.json`]);
  });
}
const peerOut = runPeer ? await peer() : { skipped: "--no-peer" };

const fmt = (x: number) => x.toPrecision(3);
for (const r of rows) {
  const naiveAll = (r.weights * r.naiveMedianMs) / 1000;
  console.log(
    `${r.name}: ${r.weights} weights | batched ${fmt(r.batchedSeconds)} s (${
      fmt(r.weights / r.batchedSeconds)
    } ablations/s) | naive GPU ${fmt(r.naiveMedianMs)} ms each, ${fmt(naiveAll)} s extrapolated ` +
      `(batched ${fmt(naiveAll / r.batchedSeconds)}x faster) | max |dLoss diff| ${
        r.maxAbsDiff.toExponential(2)
      }` +
      (r.fullCopiesSeconds !== undefined
        ? ` | full copies of the next convolution instead: ${fmt(r.fullCopiesSeconds)} s`
        : ""),
  );
}
console.log(
  `conv2 channel ablation: ${units.dLoss.length} units in ${fmt(unitSeconds)} s; baseline loss ${
    fmt(base.loss)
  }`,
);
let peerSummary: Record<string, unknown> = {};
if ("naive" in peerOut) {
  const tMs = median(peerOut.naive.map((n) => n.seconds * 1000));
  const diff = Math.max(...peerOut.naive.map((n, k) => Math.abs(n.dLoss - naiveItems[k].dLoss)));
  const convWeights = rows.reduce((a, r) => a + r.weights, 0);
  const batched = rows.reduce((a, r) => a + r.batchedSeconds, 0);
  const torchAll = (convWeights * tMs) / 1000;
  console.log(
    `PyTorch ${peerOut.torch} CPU (${peerOut.threads} thread) naive: ${fmt(tMs)} ms each, ${
      fmt(torchAll)
    } s extrapolated for all ${convWeights} conv weights (batched GPU engine ${
      fmt(torchAll / batched)
    }x faster); max |dLoss - batched| ${diff.toExponential(2)}`,
  );
  peerSummary = {
    torch: peerOut.torch,
    naiveMedianMs: tMs,
    maxAbsDiff: diff,
    extrapolatedSeconds: torchAll,
  };
} else {
  console.log(`PyTorch peer skipped: ${peerOut.skipped}`);
  peerSummary = peerOut;
}
console.log(`load average before ${loadBefore}, after ${loadAfter}`);
await writeResults(
  outFile,
  {
    bench: "ablate-cnn",
    date: new Date().toISOString(),
    adapter: gpu.info.description || gpu.info.device,
    backend: gpu.backend,
    samples: S,
    density,
    layers: rows,
    units: { count: units.dLoss.length, seconds: unitSeconds },
    naivePerLayer: naiveCount,
    peer: peerSummary,
    load: { before: loadBefore, after: loadAfter },
  },
);
console.log(`wrote ${outFile}`);
