/**
 * WANN evaluation throughput: a population of MNIST-256 genomes (initial genomes with 5 % of the
 * input->output genes enabled, then `--mutations` random mutations each, no selection) evaluated
 * at the paper's 6 shared weights on `--samples` deskewed 16x16 MNIST training images, by the GPU
 * evaluator (src/kernels/wann.ts; wall time of `evaluate`, upload and readback included) and by
 * a numpy re-implementation of the reference code's evaluation (bench/wann_peer.py, float64,
 * OpenBLAS 1 thread) in the same run. Both produce the per-weight CE/accuracy and ensemble
 * accuracy; the bench checks they agree. Medians of `--reps`; the load average is recorded.
 *
 * Units: one *network evaluation* = one population member at all weights on the whole batch (the
 * unit of the paper's "population x generations"); also forward passes (network x weight x
 * sample) per second and connection-samples per second.
 *
 * Options: `--pop 96`, `--samples 1000`, `--mutations 100`, `--reps 3`, `--no-peer`,
 * `--out bench/wann_results.json`.
 *
 * @example
 * ```sh
 * DENO_WEBGPU_BACKEND=gl deno task bench:wann --pop 48 --reps 3
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { DataRng } from "../src/data/random.ts";
import { getGpu } from "../src/gpu/mod.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { WANN_DEFAULT_WEIGHTS, WannEvaluator } from "../src/kernels/wann.ts";
import { packNets } from "../src/kernels/wann_net.ts";
import { expressGenome, initialGenome } from "../src/wann/genome.ts";
import { Innovations, mutate } from "../src/wann/mutate.ts";
import { gatherBatch, loadMnist16 } from "../src/wann/tasks.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    pop: { type: "string", default: "96" },
    samples: { type: "string", default: "1000" },
    mutations: { type: "string", default: "100" },
    reps: { type: "string", default: "3" },
    "no-peer": { type: "boolean", default: false },
    out: { type: "string", default: "bench/wann_results.json" },
  },
});
const POP = Number(a.pop), S = Number(a.samples), MUT = Number(a.mutations), REPS = Number(a.reps);
const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
const loadavg = async () => {
  try {
    return Deno.loadavg().map((v) => v.toFixed(2)).join(" ");
  } catch {
    return (await Deno.readTextFile("/proc/loadavg").catch(() => "?")).trim();
  }
};

const load0 = await loadavg();
const task = await loadMnist16();
const shape = { features: 256, outputs: 10, outputAct: 1 };
const rng = new DataRng(12345);
const innov = Innovations.start(shape);
const genomes = Array.from({ length: POP }, () => {
  let g = initialGenome(shape, rng, 0.05);
  for (let m = 0; m < MUT; m++) g = mutate(g, rng, innov).child;
  return g;
});
const nets = genomes.map(expressGenome);
const packed = packNets(nets);
const idx = Uint32Array.from({ length: S }, (_, i) => i);
const x = gatherBatch(task.train, 256, idx);
const labels = task.train.labels.slice(0, S);

const gpu = await getGpu();
const ev = new WannEvaluator(gpu);
ev.setData(x, labels, 256);
await ev.evaluate(packed); // compile
const times: number[] = [];
let stats: Float32Array = new Float32Array(0);
for (let r = 0; r < REPS; r++) {
  const t0 = performance.now();
  stats = (await ev.evaluate(packed)).stats;
  times.push((performance.now() - t0) / 1000);
}
const gpuSec = median(times);
const W = WANN_DEFAULT_WEIGHTS.length;
const rates = (sec: number) => ({
  networkEvalsPerSec: POP / sec,
  forwardPassesPerSec: (POP * W * S) / sec,
  connectionSamplesPerSec: (packed.edges * W * S) / sec,
});
const row = {
  population: POP,
  samples: S,
  weights: W,
  computedNodes: packed.nodes,
  connections: packed.edges,
  meanConnections: packed.edges / POP,
  adapter: `${gpu.report().description} (${gpu.backend})`,
  gpu: { seconds: gpuSec, times, ...rates(gpuSec) },
  peer: null as null | Record<string, unknown>,
  ratio: null as null | number,
  agreement: null as null | { maxAccDiff: number; maxCeDiff: number },
  loadavg: { start: load0, end: "" },
};

if (!a["no-peer"]) {
  const dir = await Deno.makeTempDir({ prefix: "wann_bench_" });
  const pop = {
    features: 256,
    outputs: 10,
    samples: S,
    weights: WANN_DEFAULT_WEIGHTS,
    nets: nets.map((n) => ({
      act: Array.from(n.act),
      incoming: n.incoming.map((l) => Array.from(l)),
    })),
  };
  await Deno.writeTextFile(`${dir}/pop.json`, JSON.stringify(pop));
  const xs = new Float32Array(S * 256);
  for (let s = 0; s < S; s++) for (let f = 0; f < 256; f++) xs[s * 256 + f] = x[f * S + s];
  const bin = new Uint8Array(S * 256 * 4 + S * 4);
  bin.set(new Uint8Array(xs.buffer), 0);
  bin.set(new Uint8Array(Uint32Array.from(labels).buffer), S * 256 * 4);
  await Deno.writeFile(`${dir}/data.bin`, bin);
  const out = await new Deno.Command("python3", {
    args: [
      new URL("./wann_peer.py", import.meta.url).pathname,
      `${dir}/pop.json`,
      `${dir}/data.bin`,
      String(REPS),
    ],
    env: { OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1" },
  }).output();
  await Deno.remove(dir, { recursive: true });
  if (!out.success) {
    console.error(`peer failed: ${new TextDecoder().decode(out.stderr).trim().split("\n").at(-1)}`);
  } else {
    const p = JSON.parse(new TextDecoder().decode(out.stdout));
    row.peer = {
      seconds: p.seconds,
      times: p.times,
      numpy: p.numpy,
      threads: p.threads,
      ...rates(p.seconds),
    };
    row.ratio = p.seconds / gpuSec;
    let maxAccDiff = 0, maxCeDiff = 0;
    p.stats.forEach((net: number[][], n: number) => {
      net.forEach(([ce, acc]: number[], r: number) => {
        maxAccDiff = Math.max(maxAccDiff, Math.abs(acc - stats[(n * (W + 1) + r) * 2 + 1]));
        maxCeDiff = Math.max(
          maxCeDiff,
          Math.abs(ce - stats[(n * (W + 1) + r) * 2]) / Math.max(1, Math.abs(ce)),
        );
      });
    });
    row.agreement = { maxAccDiff, maxCeDiff };
  }
}
row.loadavg.end = await loadavg();
const f = (v: number) => v.toExponential(3);
console.log(
  `WANN evaluation, ${POP} MNIST-256 networks (${(packed.edges / POP).toFixed(0)} connections, ${
    (packed.nodes / POP).toFixed(1)
  } computed nodes on average) x ${W} weights x ${S} images; ${row.adapter}`,
);
console.log(
  `  GPU   ${gpuSec.toFixed(3)} s  ${f(row.gpu.networkEvalsPerSec)} network evals/s  ${
    f(row.gpu.forwardPassesPerSec)
  } forward passes/s  ${f(row.gpu.connectionSamplesPerSec)} connection-samples/s`,
);
if (row.peer) {
  const p = row.peer as ReturnType<typeof rates> & { seconds: number; numpy: string };
  console.log(
    `  numpy ${p.seconds.toFixed(3)} s  ${f(p.networkEvalsPerSec)} network evals/s  ${
      f(p.forwardPassesPerSec)
    } forward passes/s  (numpy ${p.numpy}, 1 thread)`,
  );
  console.log(
    `  GPU / numpy speed: ${row.ratio!.toFixed(2)}x; max |accuracy diff| ${
      row.agreement!.maxAccDiff
    }, max rel CE diff ${row.agreement!.maxCeDiff.toExponential(2)}`,
  );
}
console.log(`  load average: start ${row.loadavg.start} | end ${row.loadavg.end}`);
await writeFileAtomic(a.out!, JSON.stringify(row, null, 1));
