/**
 * What the ablation benchmarks share (bench/ablate_bench.ts, ablate_cnn_bench.ts,
 * ablate_lstm_bench.ts): command-line flags and their checks, the load average, a model trained
 * one epoch and probed, the exchange directory of raw arrays a peer script reads, running that
 * script, and writing the results atomically.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchFlags, loadavg } from "./_ablate_harness.ts";
 * const f = benchFlags("bench:x", ["--naive", "3", "--no-peer"]);
 * assert.equal(f.flag("naive", "12"), "3");
 * assert.equal(f.flag("density", "0.2"), "0.2");
 * assert.ok(f.has("no-peer") && !f.has("python"));
 * f.requirePositive([["naive", 3], ["density", 0.2]]); // returns: all are positive
 * assert.match(loadavg(), /^(\d+\.\d\d \d+\.\d\d \d+\.\d\d|\?)$/);
 * ```
 * @module
 */
import type { Gpu } from "../src/gpu/mod.ts";
import { parseTrainConfig, type TrainConfig } from "../src/train/config.ts";
import { runEpoch, Trainer } from "../src/train/trainer.ts";
import { Probe } from "../src/analysis/probe.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";

/** A `file:` URL as a path. */
export const fromFileUrl = (u: string | URL): string => decodeURIComponent(new URL(u).pathname);

/** The flags of a benchmark named `bench` (used in its error lines). */
export interface BenchFlags {
  /** The value after `--name`, or `def`. */
  flag(name: string, def: string): string;
  /** Whether `--name` was given. */
  has(name: string): boolean;
  /**
   * Exits with status 2 and one line on stderr unless every value is positive (`> 0`; with
   * `finite`, also finite; with `integer`, a whole number).
   */
  requirePositive(
    entries: readonly (readonly [string, number | undefined])[],
    opts?: { finite?: boolean; integer?: boolean },
  ): void;
}

/** Flag access and checks over `args` (default `Deno.args`). */
export function benchFlags(bench: string, args: readonly string[] = Deno.args): BenchFlags {
  return {
    flag(name, def) {
      const i = args.indexOf(`--${name}`);
      return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
    },
    has: (name) => args.includes(`--${name}`),
    requirePositive(entries, opts = {}) {
      for (const [k, v] of entries) {
        const n = Number(v);
        if (opts.integer ? Number.isInteger(n) && n >= 1 : n > 0 && (!opts.finite || isFinite(n))) {
          continue;
        }
        const what = opts.integer ? "a positive integer" : "positive";
        console.error(`${bench}: --${k} must be ${what}, got ${v}`);
        Deno.exit(2);
      }
    },
  };
}

/** The 1, 5 and 15 minute load averages ("?" where the platform has none). */
export function loadavg(): string {
  try {
    return Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
  } catch {
    return "?";
  }
}

/**
 * Trains the model of `config` (parseTrainConfig's input) one epoch and opens a probe on
 * `evalSamples` evaluation samples (seed 0).
 */
export async function trainedProbe(
  gpu: Gpu,
  config: Parameters<typeof parseTrainConfig>[0],
  evalSamples: number,
): Promise<{ cfg: TrainConfig; probe: Probe }> {
  const cfg = parseTrainConfig(config);
  const t = await Trainer.create(gpu, cfg);
  await runEpoch(t);
  return { cfg, probe: await Probe.fromTrainer(t, { evalSamples, seed: 0 }) };
}

/** A typed array a peer reads as raw little-endian values. */
export type RawArray = Float32Array | Float64Array | Uint32Array | Int32Array;

/** The directory a peer script reads its inputs from. */
export class PeerDir {
  /** Arrays written by {@link put}: file, dtype (`f32`, `f64`, `u32`, `i32`) and shape. */
  readonly files: Record<string, { file: string; dtype: string; shape: number[] }> = {};
  constructor(readonly dir: string) {}
  /** Writes `a` raw to `<dir>/<file>`; returns the path. */
  async raw(file: string, a: ArrayBufferView): Promise<string> {
    const path = `${this.dir}/${file}`;
    await Deno.writeFile(path, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    return path;
  }
  /** Writes `a` to `<dir>/<name>.bin` and describes it in {@link files}. */
  async put(name: string, a: RawArray, shape: number[]): Promise<void> {
    const dtype = a instanceof Float32Array
      ? "f32"
      : a instanceof Float64Array
      ? "f64"
      : a instanceof Uint32Array
      ? "u32"
      : "i32";
    this.files[name] = { file: await this.raw(`${name}.bin`, a), dtype, shape };
  }
}

/**
 * Runs `f` on a fresh temporary directory (prefix `prefix`), removed afterwards; or on `keep`
 * (created if missing, left in place) when given.
 */
export async function withPeerDir<T>(
  prefix: string,
  keep: string | undefined,
  f: (d: PeerDir) => Promise<T>,
): Promise<T> {
  if (keep) await Deno.mkdir(keep, { recursive: true });
  const dir = keep ?? await Deno.makeTempDir({ prefix });
  try {
    return await f(new PeerDir(dir));
  } finally {
    if (!keep) await Deno.remove(dir, { recursive: true });
  }
}

/** Why `python` cannot serve as a peer needing `module`, or undefined when it imports it. */
export async function cannotImport(python: string, module: string): Promise<string | undefined> {
  try {
    const ok = await new Deno.Command(python, { args: ["-c", `import ${module}`] }).output();
    return ok.success ? undefined : `${python} cannot import ${module}`;
  } catch (e) {
    return `cannot run ${python} (${(e as Error).message})`;
  }
}

/**
 * Runs the peer script `script` (a path beside the benchmarks) with `args`; its stdout is one
 * JSON document. A failing run is `{ skipped }` with the last three lines of its stderr.
 */
export async function runPeerScript<T>(
  python: string,
  script: string,
  args: string[],
  env?: Record<string, string>,
): Promise<T | { skipped: string }> {
  const py = fromFileUrl(new URL(script, import.meta.url));
  const out = await new Deno.Command(python, { args: [py, ...args], env }).output();
  const err = new TextDecoder().decode(out.stderr).trim();
  if (!out.success) return { skipped: `peer failed: ${err.split("\n").slice(-3).join(" | ")}` };
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Writes `result` as indented JSON (atomically). */
export async function writeResults(file: string, result: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(result, null, 2) + "\n");
}
