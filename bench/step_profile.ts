/**
 * Where a training step's time goes: every dispatch of one step of a sparse model in its own
 * timestamped compute pass, median over `--reps` steps, grouped by kernel, beside the wall time
 * of the same step recorded normally (`--steps` steps, one sync). The difference between the
 * wall time and the sum of kernel times is what the runtime and the backend add (recording,
 * submit, pass boundaries).
 *
 * Options: `--model mlp|cnn|lstm` (default mlp; the CNN and LSTM at their config defaults,
 * convChannels 16,32 and kernel 5, LSTM hidden 128, with `--hidden` as their dense head; both
 * need an image dataset), `--hidden 300,100` (hidden widths), `--density 0.1` or `--epsilon 20` (SET's ε: the
 * hidden layers sparse, the output dense), `--activation relu`, `--batch 128`, `--reps 7`,
 * `--steps 100` (steps per wall-time round: each round ends with one sync, ~11 ms in Deno however
 * little is pending, so short rounds overstate the step), `--json FILE` (also write the table), `--dataset synthetic|mnist|fashion-mnist`
 * (default synthetic: 784 features, 10 classes; the image sets gather u8 pixels). SGD momentum,
 * the adapter's default kernels. Timestamps need the `timestamp-query` feature.
 *
 * @example
 * ```sh
 * DENO_WEBGPU_BACKEND=gl deno task bench:profile --hidden 1000,1000,1000 --epsilon 20
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { getGpu } from "../src/gpu/mod.ts";
import { Recorder } from "../src/gpu/recorder.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { Trainer } from "../src/train/trainer.ts";

const fail = (msg: string): never => {
  console.error(`step_profile: ${msg}`);
  Deno.exit(2);
};
const OPTIONS = {
  model: { type: "string", default: "mlp" },
  hidden: { type: "string", default: "300,100" },
  density: { type: "string" },
  epsilon: { type: "string" },
  activation: { type: "string", default: "relu" },
  batch: { type: "string", default: "128" },
  reps: { type: "string", default: "7" },
  steps: { type: "string", default: "100" },
  json: { type: "string" },
  dataset: { type: "string", default: "synthetic" },
  help: { type: "boolean", short: "h" },
} as const;
let parsed;
try {
  parsed = parseArgs({ args: Deno.args, options: OPTIONS });
} catch (e) {
  parsed = fail(`${(e as Error).message} (--help lists the options)`);
}
const a = parsed.values;
if (a.help) {
  console.log(
    "deno task bench:profile [--model mlp|cnn|lstm] [--hidden 300,100] [--density 0.1 | --epsilon 20] [--activation relu]\n" +
      "  [--batch 128] [--reps 7] [--steps 100] [--dataset synthetic|mnist|fashion-mnist] [--json FILE]",
  );
  Deno.exit(0);
}
const int = (v: string, what: string) => {
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : fail(`--${what} ${v} is not a positive integer`);
};
const hidden = a.hidden.split(",").map((v) => int(v, "hidden"));
const batch = int(a.batch, "batch"), reps = int(a.reps, "reps"), steps = int(a.steps, "steps");
if (a.density !== undefined && a.epsilon !== undefined) fail("give --density or --epsilon");
const sparsity = a.epsilon !== undefined
  ? { epsilon: Number(a.epsilon) }
  : { density: Number(a.density ?? 0.1) };

const gpu = await getGpu();
if (!gpu.hasTimestamps) fail(`${gpu.info.description} has no timestamp queries`);
if (!["synthetic", "mnist", "fashion-mnist"].includes(a.dataset)) {
  fail(`--dataset ${a.dataset}: synthetic, mnist or fashion-mnist`);
}
if (!["mlp", "cnn", "lstm"].includes(a.model)) fail(`--model ${a.model}: mlp, cnn or lstm`);
if (a.model !== "mlp" && a.dataset === "synthetic") {
  fail(`--model ${a.model} needs images: --dataset mnist or fashion-mnist`);
}
const cfg = parseTrainConfig({
  model: a.model,
  dataset: a.dataset,
  ...(a.dataset === "synthetic"
    ? { syntheticFeatures: 784, syntheticClasses: 10, syntheticSamples: batch * (steps + reps + 4) }
    : { trainSubset: batch * (steps + reps + 4) }),
  hidden,
  method: "set",
  ...sparsity,
  activation: a.activation,
  optimizer: "sgd",
  lr: 0.01,
  momentum: 0.9,
  batchSize: batch,
  epochs: 2,
  seed: 1,
});
const t = await Trainer.create(gpu, cfg);
t.data.epochOrder(0, cfg.seed);
const step = (i: number) => i % t.stepsPerEpoch;
for (let i = 0; i < 3; i++) t.trainStep(step(i)); // compiles every pipeline
await gpu.sync();

const loadavg = () => Deno.loadavg().map((v) => v.toFixed(2)).join(" ");
const median = (v: number[]) => {
  const s = [...v].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const load0 = loadavg();

// Wall time of normal steps (one compute pass per step, as in training).
const wall: number[] = [];
for (let r = 0; r < 3; r++) {
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) t.trainStep(step(i));
  await gpu.sync();
  wall.push((performance.now() - t0) / steps);
}

// Per-dispatch GPU time: each dispatch in its own pass with begin/end timestamps.
const MAX = 512;
const qs = gpu.device.createQuerySet({ type: "timestamp", count: 2 * MAX });
const names: string[] = [];
const plain = Recorder.prototype.dispatch;
Recorder.prototype.dispatch = function (kernel, resources, groups, opts) {
  const i = names.length;
  if (i >= MAX) fail(`more than ${MAX} dispatches in a step`);
  // A texture twin's mirror copies go before the timed pass (as the sparse wrappers' do).
  [kernel, resources] = this.resolveTextures(kernel, resources, opts);
  this.beginPass({
    querySet: qs,
    beginningOfPassWriteIndex: 2 * i,
    endOfPassWriteIndex: 2 * i + 1,
  });
  names.push(`${kernel.def.shader}:${kernel.def.entry}`);
  plain.call(this, kernel, resources, groups, opts);
  this.endPass();
};
const perDispatch: number[][] = [];
const sums: number[] = [];
for (let r = 0; r < reps; r++) {
  names.length = 0;
  const resolve = gpu.device.createBuffer({
    size: 16 * MAX,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const staging = gpu.device.createBuffer({
    size: 16 * MAX,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  t.trainStep(step(r), undefined, (rec) => {
    rec.endPass();
    rec.encoder.resolveQuerySet(qs, 0, 2 * names.length, resolve, 0);
    rec.encoder.copyBufferToBuffer(resolve, 0, staging, 0, 16 * names.length);
  });
  await staging.mapAsync(GPUMapMode.READ);
  const ts = new BigUint64Array(staging.getMappedRange().slice(0));
  staging.unmap();
  staging.destroy();
  resolve.destroy();
  let sum = 0;
  names.forEach((_, i) => {
    const ms = Math.max(0, Number(ts[2 * i + 1] - ts[2 * i]) / 1e6);
    (perDispatch[i] ??= []).push(ms);
    sum += ms;
  });
  sums.push(sum);
}
Recorder.prototype.dispatch = plain;
qs.destroy();

const byKernel = new Map<string, { n: number; ms: number }>();
names.forEach((name, i) => {
  const e = byKernel.get(name) ?? { n: 0, ms: 0 };
  e.n++;
  e.ms += median(perDispatch[i]);
  byKernel.set(name, e);
});
const total = [...byKernel.values()].reduce((s, e) => s + e.ms, 0);
const wallMs = median(wall);
const net = `${a.model === "mlp" ? "" : `${a.model} + `}784-${hidden.join("-")}-10 ` +
  ("epsilon" in sparsity ? `ε ${sparsity.epsilon}` : `at ${100 * sparsity.density} %`);
console.log(
  `training step of ${net}, ${a.activation}, batch ${batch}, ${a.dataset}; ${gpu.info.description} ` +
    `[${gpu.backend}]; load average before ${load0}, after ${loadavg()}`,
);
console.log(
  `wall ${wallMs.toFixed(2)} ms/step (median of 3 x ${steps} steps); ${names.length} dispatches, ` +
    `kernel sum ${total.toFixed(2)} ms (median per dispatch over ${reps} steps; whole-step sums ` +
    `${Math.min(...sums).toFixed(2)}-${Math.max(...sums).toFixed(2)}), ` +
    `${(100 * total / wallMs).toFixed(0)} % of the wall time`,
);
const rows = [...byKernel.entries()].sort((x, y) => y[1].ms - x[1].ms);
console.log(
  `${"kernel".padEnd(36)} ${"calls".padStart(5)} ${"ms".padStart(8)} ${"share".padStart(6)}`,
);
for (const [name, e] of rows) {
  console.log(
    `${name.padEnd(36)} ${String(e.n).padStart(5)} ${e.ms.toFixed(3).padStart(8)} ` +
      `${(100 * e.ms / total).toFixed(1).padStart(5)}%`,
  );
}
if (a.json) {
  await writeFileAtomic(
    a.json,
    JSON.stringify(
      {
        net,
        batch,
        adapter: gpu.info.description,
        backend: gpu.backend,
        wallMs,
        kernelMs: total,
        dispatches: names.map((name, i) => ({ name, ms: median(perDispatch[i]) })),
      },
      null,
      1,
    ) + "\n",
  );
}
