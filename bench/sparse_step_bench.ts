/**
 * Training-step time of the sparse MLPs of issue 11 under each sparse-kernel configuration, in
 * the same process in interleaved rounds, with the CPU peers (bench/sparse_step_peer.py: torch
 * masked dense and torch CSR when `import torch` works, else the numpy/scipy equivalents) on the
 * same layer shapes, nonzero counts and batch, in the same run:
 *
 * - SET-MLP 784-1000-1000-1000-10, SET epsilon 20 (hidden layers sparse, output dense), batch 128;
 * - LeNet-300-100 784-300-100-10 at 10 % (hidden layers sparse, output dense), batch 128.
 *
 * Configurations: `old` = the interleaved gather and SDDMM always, operands in storage buffers
 * (the kernels before issue 11); `new` = the adapter-class defaults (GATHER_DEFAULTS,
 * SDDMM_DEFAULTS, WGRAD_RULES, FUSE_BACKWARD, INPUT_SOURCES); `new unfused` / `new fused` = the
 * defaults with FUSE_BACKWARD flipped; `new buffers` / `new textures` = the defaults with the
 * other operand source (INPUT_SOURCES); `new without texture twins` = the defaults with the
 * element-wise, matmul and reduction kernels on buffers (TEXTURE_TWINS); `new rows in index
 * order` = the defaults with the row kernels' row order off (ROW_ORDER). A step is
 * forward + backward + SGD-momentum update on synthetic data (784 features, 10 classes); time =
 * wall clock of a round of recorded steps (25 SET, 100 LeNet) and one sync (on GL `submit()` runs the work), per step,
 * median and min over `ROUNDS` rounds. Prints the load average before and after.
 *
 * @example
 * ```sh
 * DENO_WEBGPU_BACKEND=gl deno run -A bench/sparse_step_bench.ts
 * ```
 * @module
 */
import { getGpu, TEXTURE_TWINS } from "../src/gpu/mod.ts";
import {
  adapterClass,
  FUSE_BACKWARD,
  GATHER_DEFAULTS,
  INPUT_SOURCES,
  ROW_ORDER,
  SDDMM_DEFAULTS,
  WGRAD_RULES,
} from "../src/kernels/sparse.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { Trainer } from "../src/train/trainer.ts";

const ROUNDS = Number(Deno.env.get("FILIGREE_BENCH_ROUNDS") ?? 5);
const BATCH = 128;

interface Net {
  name: string;
  hidden: number[];
  sparsity: { epsilon: number } | { density: number };
  /**
   * Steps per timed round: each round ends with one `gpu.sync()`, whose fixed latency (Deno's
   * `mapAsync` / `onSubmittedWorkDone` poll the device, then sleep 10 ms before looking again:
   * ~11 ms however little work is pending, printed as the sync floor) must be small against
   * the round, as it is in training, which syncs once per progress report.
   */
  steps: number;
}
const NETS: Net[] = [
  {
    name: "SET-MLP 784-1000-1000-1000-10 eps 20",
    hidden: [1000, 1000, 1000],
    sparsity: { epsilon: 20 },
    steps: 25,
  },
  { name: "784-300-100-10 at 10 %", hidden: [300, 100], sparsity: { density: 0.1 }, steps: 100 },
];

const loadavg = async () => {
  try {
    return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
};
const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const gpu = await getGpu();
const cls = adapterClass(gpu);
const syncFloor: number[] = [];
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  await gpu.sync();
  syncFloor.push(performance.now() - t0);
}
const NEW = {
  gather: GATHER_DEFAULTS[cls],
  sddmm: SDDMM_DEFAULTS[cls],
  denseFrom: WGRAD_RULES[cls].denseFrom,
  fuse: FUSE_BACKWARD[cls],
  inputs: INPUT_SOURCES[cls],
  twins: TEXTURE_TWINS.enabled,
  order: ROW_ORDER[cls],
};
const otherInputs = NEW.inputs === "texture" ? "buffer" : "texture";
// "new" stays last: the ratios below divide by it.
const CONFIGS: [string, typeof NEW][] = [
  ["old", {
    gather: "interleaved",
    sddmm: "row8",
    denseFrom: Infinity,
    fuse: false,
    inputs: "buffer",
    twins: false,
    order: false,
  }],
  [`new ${otherInputs}s`, { ...NEW, inputs: otherInputs }],
  [`new ${NEW.fuse ? "unfused" : "fused"}`, { ...NEW, fuse: !NEW.fuse }],
  [`new ${NEW.twins ? "without" : "with"} texture twins`, { ...NEW, twins: !NEW.twins }],
  [`new ${NEW.order ? "rows in index order" : "rows longest first"}`, {
    ...NEW,
    order: !NEW.order,
  }],
  ["new", NEW],
];
const NEWI = CONFIGS.length - 1;
function use(c: typeof NEW) {
  GATHER_DEFAULTS[cls] = c.gather;
  SDDMM_DEFAULTS[cls] = c.sddmm;
  WGRAD_RULES[cls].denseFrom = c.denseFrom;
  FUSE_BACKWARD[cls] = c.fuse;
  INPUT_SOURCES[cls] = c.inputs;
  TEXTURE_TWINS.enabled = c.twins;
  ROW_ORDER[cls] = c.order;
}

const load0 = await loadavg();
const out: string[] = [];
const peerLayers: Record<string, [number, number, number | null][]> = {};
for (const net of NETS) {
  const cfg = parseTrainConfig({
    dataset: "synthetic",
    syntheticFeatures: 784,
    syntheticClasses: 10,
    syntheticSamples: 100 * BATCH, // rounds wrap around the epoch
    hidden: net.hidden,
    method: "set",
    ...net.sparsity,
    activation: "relu",
    optimizer: "sgd",
    lr: 0.01,
    momentum: 0.9,
    weightDecay: 2e-4,
    batchSize: BATCH,
    epochs: 2,
    seed: 1,
  });
  const t = await Trainer.create(gpu, cfg);
  t.data.epochOrder(0, cfg.seed);
  const ms: number[][] = CONFIGS.map(() => []);
  for (const [, c] of CONFIGS) { // warm-up: compile every configuration's pipelines
    use(c);
    t.trainStep(0);
    await gpu.sync();
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < CONFIGS.length; i++) {
      use(CONFIGS[i][1]);
      const t0 = performance.now();
      for (let s = 0; s < net.steps; s++) t.trainStep(s % t.stepsPerEpoch);
      await gpu.sync();
      ms[i].push((performance.now() - t0) / net.steps);
    }
  }
  use(NEW);
  const nnz = t.model.params.filter((p) => p.kind === "weight").map((p) => p.value.size);
  const shapes = [784, ...net.hidden, 10];
  peerLayers[net.name] = shapes.slice(0, -1).map((w, l) =>
    l === shapes.length - 2 ? [w, shapes[l + 1], null] : [w, shapes[l + 1], nnz[l]]
  );
  out.push(
    `${net.name} (${net.steps} steps a round): nnz ${nnz.join("+")}; ` +
      CONFIGS.map(([name], i) =>
        `${name} ${median(ms[i]).toFixed(2)} ms/step (min ${Math.min(...ms[i]).toFixed(2)})`
      ).join(", ") + "; " +
      CONFIGS.slice(0, NEWI).map(([name], i) =>
        `${name}/new ${(median(ms[i]) / median(ms[NEWI])).toFixed(2)}`
      ).join(", "),
  );
}

// Peers on the same shapes and nonzero counts, same run.
const peer: Record<string, Record<string, number>> = {};
let peerInfo = "";
for (const py of ["/usr/bin/python3", "python3"]) {
  try {
    const cmd = new Deno.Command(py, {
      args: [new URL("./sparse_step_peer.py", import.meta.url).pathname],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = cmd.stdin.getWriter();
    await w.write(new TextEncoder().encode(JSON.stringify({ batch: BATCH, nets: peerLayers })));
    await w.close();
    const o = await cmd.output();
    if (!o.success) {
      console.error(`peer ${py}: ${new TextDecoder().decode(o.stderr).trim().split("\n").pop()}`);
      continue;
    }
    for (const line of new TextDecoder().decode(o.stdout).trim().split("\n")) {
      const j = JSON.parse(line);
      if (j.info) peerInfo += `\npeer ${py}: ${JSON.stringify(j.info)}`;
      else {
        peer[j.net] ??= {};
        peer[j.net][j.impl] ??= j.ms;
      }
    }
  } catch (e) {
    console.error(`peer ${py}: ${(e as Error).message}`);
  }
}
const load1 = await loadavg();
console.log(
  `sparse training step, batch ${BATCH}, ${gpu.info.description} [${gpu.backend}], ${ROUNDS} ` +
    `interleaved rounds, each ended by one sync (idle sync floor ${
      median(syncFloor).toFixed(1)
    } ms); load average before ${load0}, after ${load1}` +
    peerInfo,
);
for (const line of out) console.log(line);
for (const [net, impls] of Object.entries(peer)) {
  console.log(
    `${net} peers (ms/step, median of 7): ` +
      Object.entries(impls).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", "),
  );
}
