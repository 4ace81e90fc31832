/**
 * `deno task bench:memory`: host memory (RSS) over many training steps on each backend.
 * Trains MNIST 784-300-100-10 at 10 % (static sparse, batch 128) for `--steps` steps (default
 * 5,000), reading the metrics every 50 steps as `deno task train` does, and samples VmRSS every
 * `--every` steps. Each backend runs in its own child process (the backend is fixed per
 * process). Target: < 50 MB growth over 5,000 steps (after a 50-step warm-up).
 *
 * Each backend runs twice by default: with `gc` exposed (`--v8-flags=--expose-gc`, as every
 * `deno task` runs, so the runtime forces a full collection at most once a second:
 * src/gpu/collect.ts) and without (the root cause: garbage WebGPU wrappers hold native memory until
 * V8 collects them, and V8 rarely does when JavaScript allocates little).
 *
 * Options: `--steps N`, `--every N`, `--backends gl,vulkan`, `--gc on,off`, `--params uniform`
 * (turn the lavapipe workaround off, FILIGREE_PARAMS=uniform, to see the leak it removes),
 * `--json FILE`.
 *
 * @example
 * ```sh
 * deno task bench:memory --steps 1000
 * ```
 * @module
 */
import { getGpu } from "../src/gpu/mod.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { Trainer } from "../src/train/trainer.ts";
import { loadavg } from "./_ablate_harness.ts";

const args = Deno.args;
function flag(name: string, def: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}
const steps = Number(flag("steps", "5000"));
const every = Number(flag("every", "500"));

function rssMB(): number {
  return Deno.memoryUsage().rss / 2 ** 20;
}

/** One backend, in this process: prints one JSON line. */
async function child() {
  const gpu = await getGpu();
  const cfg = parseTrainConfig({
    dataset: "mnist",
    hidden: [300, 100],
    method: "static",
    density: 0.1,
    batchSize: 128,
    epochs: 1000,
    seed: 1,
  });
  const t = await Trainer.create(gpu, cfg);
  t.data.epochOrder(0, cfg.seed);
  for (let s = 0; s < 50; s++) t.trainStep(s); // warm-up: pipelines, pools
  await t.readTrainMetrics(1);
  const r0 = rssMB();
  const heapMB = () => Deno.memoryUsage().heapUsed / 2 ** 20;
  const samples: { step: number; rssMB: number; heapMB: number }[] = [
    { step: 0, rssMB: r0, heapMB: heapMB() },
  ];
  const t0 = performance.now();
  for (let s = 1; s <= steps; s++) {
    t.trainStep((50 + s) % t.stepsPerEpoch);
    if (s % 50 === 0) await t.readTrainMetrics(1);
    if (s % every === 0) samples.push({ step: s, rssMB: rssMB(), heapMB: heapMB() });
  }
  await gpu.sync();
  const ms = (performance.now() - t0) / steps;
  console.log(JSON.stringify({
    backend: gpu.backend,
    reason: gpu.backendReason,
    gcExposed: gpu.collector.active,
    collections: gpu.collector.collections,
    quirks: gpu.quirks,
    steps,
    msPerStep: ms,
    startMB: r0,
    endMB: samples[samples.length - 1].rssMB,
    growthMB: samples[samples.length - 1].rssMB - r0,
    samples,
  }));
  gpu.destroy();
}

async function main() {
  const backends = flag("backends", "gl,vulkan").split(",");
  const params = flag("params", "");
  const load0 = loadavg();
  console.log(
    `RSS over ${steps} training steps (784-300-100-10, 10 %, batch 128), load ${load0}`,
  );
  const results = [];
  const gcModes = flag("gc", "on,off").split(",");
  if (gcModes.some((m) => m !== "on" && m !== "off")) {
    console.error(`memory bench: --gc takes "on", "off" or "on,off", got "${flag("gc", "")}"`);
    Deno.exit(2);
  }
  for (const b of backends) {
    for (const gcMode of gcModes) {
      const gcFlag = gcMode === "on";
      const env: Record<string, string> = { DENO_WEBGPU_BACKEND: b };
      if (params) env.FILIGREE_PARAMS = params;
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          ...(gcFlag ? ["--v8-flags=--expose-gc"] : []),
          "--allow-read",
          "--allow-env",
          "--allow-write",
          import.meta.filename!,
          "--child",
          ...args,
        ],
        env,
        stderr: "inherit",
      }).output();
      if (!out.success) {
        console.error(`memory bench: the ${b} child failed (exit ${out.code})`);
        Deno.exit(1);
      }
      const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
      results.push(r);
      const pass = r.growthMB < 50 ? "< 50 MB: met" : ">= 50 MB: NOT met";
      console.log(
        `${r.backend.padEnd(7)} gc ${gcFlag ? "forced" : "V8's "} (${r.collections} full) params ${
          r.quirks.paramsInStorage ? "storage" : "uniform"
        }  start ${r.startMB.toFixed(0)} MB  end ${r.endMB.toFixed(0)} MB  growth ${
          r.growthMB.toFixed(1)
        } MB (${(r.growthMB * 1024 / steps).toFixed(1)} KB/step, ${pass})  ${
          r.msPerStep.toFixed(1)
        } ms/step`,
      );
      console.log(
        `        RSS MB at steps: ${
          r.samples.map((s: { step: number; rssMB: number }) => `${s.step}:${s.rssMB.toFixed(0)}`)
            .join(" ")
        }`,
      );
      console.log(
        `        JS heap MB at steps: ${
          r.samples.map((s: { step: number; heapMB: number }) => `${s.step}:${s.heapMB.toFixed(1)}`)
            .join(" ")
        }`,
      );
    }
  }
  const load1 = loadavg();
  console.log(`load at end ${load1}`);
  const jf = flag("json", "");
  if (jf) {
    const tmp = `${jf}.tmp`;
    Deno.writeTextFileSync(tmp, JSON.stringify({ load: [load0, load1], results }, null, 2) + "\n");
    Deno.renameSync(tmp, jf);
  }
}

if (import.meta.main) {
  if (args.includes("--child")) await child();
  else await main();
}
