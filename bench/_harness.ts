/**
 * Kernel benchmark harness for `deno bench`. Each case is a `Deno.bench` (so `deno bench`
 * filters, groups and --json work), but the number that matters is GPU time from timestamp
 * queries: one compute pass of `reps` back-to-back dispatches, never one awaited dispatch
 * (each await costs ~11 ms in Deno). The median over `samples` passes is reported as
 * ms per call and GFLOP/s or GB/s, in a table printed when the process exits and appended as
 * JSON lines to $FILIGREE_BENCH_OUT when that is set (bench/RESULTS.md is built from it).
 *
 * @example
 * ```ts ignore
 * import { kernelBench } from "./_harness.ts";
 * kernelBench({
 *   group: "bias",
 *   name: "bias_add 1000x128",
 *   bytes: 2 * 1000 * 128 * 4,
 *   setup: (gpu) => { ... return (rec) => biasAdd(rec, {...}); },
 * });
 * ```
 * @module
 */
import { getGpu, type Gpu, type Recorder } from "../src/gpu/mod.ts";

/** One benchmark case. */
export interface KernelBenchCase {
  group: string;
  name: string;
  /** Floating-point operations per call (reports GFLOP/s). */
  flops?: number;
  /** Bytes moved per call (reports GB/s). */
  bytes?: number;
  /** Items (elements, nonzeros, samples…) processed per call (reports M items/s). */
  items?: number;
  /** Builds inputs once; returns a function that records one call. */
  setup: (gpu: Gpu) => Promise<(rec: Recorder) => void> | ((rec: Recorder) => void);
  /** Target pass length in ms used to choose the repetition count (default 60). */
  passMs?: number;
}

/** A measured result. */
export interface KernelBenchResult {
  group: string;
  name: string;
  ms: number;
  gflops?: number;
  gbps?: number;
  /** Millions of items per second (when the case gave `items`). */
  mitems?: number;
  reps: number;
  adapter: string;
  backend: string;
}

const results: KernelBenchResult[] = [];
let printed = false;

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Measures one encoded call with timestamp queries; returns median ms per call. */
export async function measure(
  gpu: Gpu,
  encode: (rec: Recorder) => void,
  passMs = 60,
  samples = 3,
): Promise<{ ms: number; reps: number }> {
  await gpu.timeMs(encode, 1); // warm-up: compiles pipelines, faults in buffers
  const probe = await gpu.timeMs(encode, 2);
  const reps = Math.max(2, Math.min(2000, Math.round(passMs / Math.max(probe, 1e-3))));
  const times: number[] = [];
  for (let i = 0; i < samples; i++) times.push(await gpu.timeMs(encode, reps));
  return { ms: median(times), reps };
}

function report() {
  if (printed || results.length === 0) return;
  printed = true;
  const rows = results.map((r) =>
    `${r.group.padEnd(10)} ${r.name.padEnd(44)} ${r.ms.toFixed(3).padStart(9)} ms  ` +
    (r.gflops !== undefined ? `${r.gflops.toFixed(2).padStart(8)} GFLOP/s` : "") +
    (r.gbps !== undefined ? `${r.gbps.toFixed(2).padStart(8)} GB/s` : "")
  );
  console.log(
    `\nGPU time (timestamp queries, median of 3 passes) on ${results[0].adapter} [${
      results[0].backend
    }]`,
  );
  console.log(rows.join("\n"));
  const out = Deno.env.get("FILIGREE_BENCH_OUT");
  if (out) {
    Deno.writeTextFileSync(out, results.map((r) => JSON.stringify(r)).join("\n") + "\n", {
      append: true,
    });
  }
}
globalThis.addEventListener("unload", report);

/** Registers a kernel benchmark with `deno bench`. */
export function kernelBench(c: KernelBenchCase): void {
  let done = false; // Deno may call fn more than n times; measure once
  Deno.bench({
    name: c.name,
    group: c.group,
    n: 1,
    warmup: 0,
    permissions: "inherit",
    async fn() {
      if (done) return;
      done = true;
      const gpu = await getGpu();
      const encode = await c.setup(gpu);
      const { ms, reps } = await measure(gpu, encode, c.passMs);
      results.push({
        group: c.group,
        name: c.name,
        ms,
        reps,
        gflops: c.flops !== undefined ? c.flops / (ms * 1e6) : undefined,
        gbps: c.bytes !== undefined ? c.bytes / (ms * 1e6) : undefined,
        mitems: c.items !== undefined ? c.items / (ms * 1e3) : undefined,
        adapter: gpu.info.description || gpu.info.vendor,
        backend: gpu.backend,
      });
    },
  });
}
