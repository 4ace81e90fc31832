/**
 * The run directory: the one module that knows its layout and reads or writes it. Training,
 * resuming, the ablation probe and the study sweep all go through these functions.
 *
 * | file                     | written by           | content                                    |
 * | ------------------------ | -------------------- | ------------------------------------------ |
 * | `config.json`            | train, at the start  | `{config, adapter, filigree, created}`     |
 * | `metrics.jsonl`          | train, every epoch   | one {@link EpochMetrics} JSON line/epoch   |
 * | `checkpoint.safetensors` | train, every epoch   | full state (src/train/checkpoint.ts)       |
 * | `analysis/`              | ablate               | scores, ablations, summary, plots          |
 * | `.analysis-partial/`     | ablate, while running| renamed to `analysis/` when complete       |
 * | `epochs/epoch-NNN/`      | train --keep-epochs  | kept checkpoints of earlier epochs         |
 *
 * Rules: a new run never silently replaces an existing one ({@link prepareRunDir} refuses
 * unless `overwrite`, which also removes the stale `analysis/`); a damaged `metrics.jsonl`
 * keeps its good leading lines and says what it discarded ({@link readMetrics}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prepareRunDir, readMetrics, runPaths } from "./rundir.ts";
 * const dir = `${await Deno.makeTempDir()}/run`;
 * await prepareRunDir(dir, {});
 * await Deno.writeTextFile(runPaths(dir).metrics, '{"epoch":1}\n{"epo');
 * const m = await readMetrics(dir);
 * assert.deepEqual(m.metrics.length, 1);
 * assert.deepEqual(m.discarded, 1);
 * ```
 * @module
 */
import denoJson from "../../deno.json" with { type: "json" };
import { FiligreeError } from "../gpu/errors.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { readCheckpoint } from "./checkpoint.ts";
import { parseTrainConfig, type TrainConfig } from "./config.ts";
import type { EpochMetrics } from "./trainer.ts";
import type { LoadOptions } from "../data/datasets.ts";

/** The version of this code (deno.json), written into every run's config.json. */
export const FILIGREE_VERSION: string = denoJson.version;

/** File names inside a run directory. */
export const RUN_FILES = {
  config: "config.json",
  metrics: "metrics.jsonl",
  checkpoint: "checkpoint.safetensors",
  analysis: "analysis",
  analysisPartial: ".analysis-partial",
  /** Kept per-epoch checkpoints (`train --keep-epochs`): `epochs/epoch-NNN/`. */
  epochs: "epochs",
} as const;

/** Paths of a run directory's files. */
export type RunPaths = { dir: string } & { -readonly [K in keyof typeof RUN_FILES]: string };

/**
 * The paths of the files of run directory `dir` (a trailing slash is dropped).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runPaths } from "./rundir.ts";
 * assert.deepEqual(runPaths("runs/x/").checkpoint, "runs/x/checkpoint.safetensors");
 * ```
 */
export function runPaths(dir: string): RunPaths {
  const d = dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
  const p = { dir: d } as RunPaths;
  for (const [k, f] of Object.entries(RUN_FILES)) p[k as keyof typeof RUN_FILES] = `${d}/${f}`;
  return p;
}

/** The content of config.json. */
export interface RunConfigFile {
  config: TrainConfig;
  /** The adapter report (src/gpu/device.ts) of the machine that started the run. */
  adapter?: Record<string, unknown>;
  /** Version of the code that wrote the run. */
  filigree: string;
  /** ISO time the run was started. */
  created?: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Reads and validates config.json (one-line errors: no directory, not a run directory, not
 * JSON, written by an incompatible version, invalid config).
 *
 * @example
 * ```ts ignore
 * const { config, adapter } = await readRunFile("runs/x");
 * ```
 */
export async function readRunFile(dir: string): Promise<RunConfigFile> {
  const p = runPaths(dir);
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(p.dir);
  } catch {
    throw new FiligreeError(`run directory ${p.dir} does not exist`);
  }
  if (!st.isDirectory) throw new FiligreeError(`${p.dir} is not a run directory`);
  let text: string;
  try {
    text = await Deno.readTextFile(p.config);
  } catch (e) {
    throw new FiligreeError(
      `${p.config}: ${
        e instanceof Deno.errors.NotFound
          ? "missing (not a run directory?)"
          : (e as Error).message.split("\n")[0]
      }`,
    );
  }
  let raw: { config?: unknown; filigree?: unknown; adapter?: unknown; created?: unknown };
  try {
    raw = JSON.parse(text);
  } catch {
    throw new FiligreeError(`${p.config}: not valid JSON`);
  }
  if (raw === null || typeof raw !== "object") {
    throw new FiligreeError(`${p.config}: not a run config`);
  }
  if (typeof raw.filigree !== "string" || raw.filigree.split(".")[0] !== "0") {
    throw new FiligreeError(
      `${p.dir}: written by filigree ${raw.filigree ?? "(unknown)"}, this is 0.x: retrain the run`,
    );
  }
  let config: TrainConfig;
  try {
    config = parseTrainConfig(raw.config);
  } catch (e) {
    throw new FiligreeError(`${p.config}: ${(e as Error).message}`);
  }
  return {
    config,
    adapter: raw.adapter as Record<string, unknown> | undefined,
    filigree: raw.filigree,
    created: typeof raw.created === "string" ? raw.created : undefined,
  };
}

/**
 * The validated training config of a run directory.
 *
 * @example
 * ```ts ignore
 * const cfg = await readRunConfig("runs/x");
 * console.log(cfg.method, cfg.epochs);
 * ```
 */
export async function readRunConfig(dir: string): Promise<TrainConfig> {
  return (await readRunFile(dir)).config;
}

/**
 * The options with which a run loads its dataset (`loadDataset(cfg.dataset, options)`, what
 * `Trainer.create` does): subsets seeded by the run's seed, the synthetic task's size and
 * seed. `<split>.eval_indices` of a run's analysis index the splits of exactly this dataset.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadDataset } from "../data/datasets.ts";
 * import { parseTrainConfig } from "./config.ts";
 * import { runDatasetOptions } from "./rundir.ts";
 * const cfg = parseTrainConfig({ dataset: "synthetic", syntheticSamples: 400, trainSubset: 100 });
 * const ds = await loadDataset(cfg.dataset, runDatasetOptions(cfg));
 * assert.deepEqual([ds.train.n, ds.test.n], [100, 100]); // test: max(100, 400 / 4) samples
 * ```
 */
export function runDatasetOptions(cfg: TrainConfig): LoadOptions {
  return {
    trainSubset: cfg.trainSubset,
    testSubset: cfg.testSubset,
    subsetSeed: cfg.seed,
    synthetic: {
      seed: cfg.seed,
      features: cfg.syntheticFeatures,
      classes: cfg.syntheticClasses,
      train: cfg.syntheticSamples,
      test: Math.max(100, Math.round(cfg.syntheticSamples / 4)),
    },
  };
}

/**
 * Writes config.json (atomically) for a new run.
 *
 * @example
 * ```ts ignore
 * await writeRunConfig("runs/x", cfg, gpu.report());
 * ```
 */
export async function writeRunConfig(
  dir: string,
  config: TrainConfig,
  adapter: unknown,
): Promise<void> {
  await writeFileAtomic(
    runPaths(dir).config,
    JSON.stringify(
      { config, adapter, filigree: FILIGREE_VERSION, created: new Date().toISOString() },
      null,
      2,
    ) + "\n",
  );
}

/** What {@link readMetrics} found. */
export interface MetricsRead {
  /** The good leading lines: epochs 1..k in order. */
  metrics: EpochMetrics[];
  /** Lines after the good ones that were discarded (unparsable, or out of order). */
  discarded: number;
  /** 1-based line number of the first discarded line, when there is one. */
  firstBadLine?: number;
}

/**
 * Reads metrics.jsonl: the good leading lines (valid JSON, epochs 1, 2, ... in order) are kept;
 * from the first bad line on, every line is discarded and counted. A missing file is no epochs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readMetrics, runPaths } from "./rundir.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(runPaths(dir).metrics, '{"epoch":1}\n{"epoch":2}\n');
 * assert.deepEqual((await readMetrics(dir)).metrics.length, 2);
 * ```
 */
export async function readMetrics(dir: string): Promise<MetricsRead> {
  let text: string;
  try {
    text = await Deno.readTextFile(runPaths(dir).metrics);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { metrics: [], discarded: 0 };
    throw e;
  }
  const lines = text.split("\n");
  const metrics: EpochMetrics[] = [];
  let discarded = 0, firstBadLine: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    if (firstBadLine === undefined) {
      let m: unknown;
      try {
        m = JSON.parse(lines[i]);
      } catch {
        m = undefined;
      }
      if (
        m !== null && typeof m === "object" && (m as EpochMetrics).epoch === metrics.length + 1
      ) {
        metrics.push(m as EpochMetrics);
        continue;
      }
      firstBadLine = i + 1;
    }
    discarded++;
  }
  return { metrics, discarded, firstBadLine };
}

/**
 * Writes metrics.jsonl (atomically) with one line per epoch.
 *
 * @example
 * ```ts ignore
 * await writeMetrics("runs/x", history);
 * ```
 */
export async function writeMetrics(dir: string, history: EpochMetrics[]): Promise<void> {
  await writeFileAtomic(
    runPaths(dir).metrics,
    history.map((h) => JSON.stringify(h)).join("\n") + (history.length ? "\n" : ""),
  );
}

/**
 * Epochs completed according to the run's checkpoint (0 when there is none).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkpointEpoch } from "./rundir.ts";
 * assert.deepEqual(await checkpointEpoch(await Deno.makeTempDir()), 0);
 * ```
 */
export async function checkpointEpoch(dir: string): Promise<number> {
  const path = runPaths(dir).checkpoint;
  if (!await exists(path)) return 0;
  const ck = await readCheckpoint(path);
  const e = Number(ck.metadata.epoch);
  if (!Number.isInteger(e) || e < 0) {
    throw new FiligreeError(`${path}: bad epoch "${ck.metadata.epoch}"`);
  }
  return e;
}

/** What is in a directory, as far as runs are concerned. */
export interface RunDirState {
  /** The path exists (as a directory). */
  exists: boolean;
  /** Run files present (config.json, metrics.jsonl, checkpoint, analysis/...). */
  runFiles: string[];
  /** Other entries. */
  otherFiles: string[];
  /** Epochs in the checkpoint (0: none). */
  epochs: number;
}

/**
 * Looks at a directory without changing it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectRunDir } from "./rundir.ts";
 * assert.deepEqual((await inspectRunDir(await Deno.makeTempDir())).runFiles, []);
 * ```
 */
export async function inspectRunDir(dir: string): Promise<RunDirState> {
  const p = runPaths(dir);
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(p.dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { exists: false, runFiles: [], otherFiles: [], epochs: 0 };
    }
    if (e instanceof Deno.errors.NotADirectory) {
      throw new FiligreeError(`cannot use ${p.dir} as a run directory: a parent is a file`);
    }
    throw e;
  }
  if (!st.isDirectory) {
    throw new FiligreeError(`cannot use ${p.dir} as a run directory: it is a file`);
  }
  const known = new Set<string>(Object.values(RUN_FILES));
  const runFiles: string[] = [], otherFiles: string[] = [];
  for await (const e of Deno.readDir(p.dir)) {
    // Temporary files of an interrupted atomic write (src/io/atomic.ts) count as run files.
    if (
      known.has(e.name) || /^\.(config\.json|metrics\.jsonl|checkpoint\.safetensors)\./.test(e.name)
    ) {
      runFiles.push(e.name);
    } else otherFiles.push(e.name);
  }
  const epochs = runFiles.includes(RUN_FILES.checkpoint) ? await checkpointEpoch(p.dir) : 0;
  return { exists: true, runFiles: runFiles.sort(), otherFiles: otherFiles.sort(), epochs };
}

/** Options of {@link prepareRunDir}. */
export interface PrepareOptions {
  /** Replace an existing run: its files and its stale `analysis/` are removed. */
  overwrite?: boolean;
}

/**
 * Makes `dir` ready for a new run: creates it (and its parents), or checks that the existing
 * directory holds no run. A run with at least one finished epoch is refused unless
 * `overwrite`, which removes the run's files (config, metrics, checkpoint, analysis/) and
 * nothing else; a directory with other files is refused either way. A run that never
 * finished an epoch (only config.json) holds nothing to lose and is replaced. Returns what was
 * replaced, for the log ("" when nothing was).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prepareRunDir, writeMetrics } from "./rundir.ts";
 * const dir = `${await Deno.makeTempDir()}/a/b`;
 * await prepareRunDir(dir, {});
 * await writeMetrics(dir, []);
 * await assert.rejects(prepareRunDir(dir, {}), /already holds a run/); // refused without overwrite
 * assert.deepEqual(await prepareRunDir(dir, { overwrite: true }), "replaced metrics.jsonl");
 * ```
 */
export async function prepareRunDir(dir: string, opts: PrepareOptions = {}): Promise<string> {
  const p = runPaths(dir);
  const s = await inspectRunDir(p.dir);
  if (!s.exists) {
    try {
      await Deno.mkdir(p.dir, { recursive: true });
    } catch (e) {
      throw new FiligreeError(
        `cannot create run directory ${p.dir}: ${(e as Error).message.split("\n")[0]}`,
      );
    }
    return "";
  }
  if (s.otherFiles.length) {
    throw new FiligreeError(
      `${p.dir} is not empty and not a run directory (${s.otherFiles.slice(0, 3).join(", ")}${
        s.otherFiles.length > 3 ? ", ..." : ""
      }): choose another --out`,
    );
  }
  if (!s.runFiles.length) return "";
  const started = s.epochs > 0 || s.runFiles.some((f) => f !== RUN_FILES.config);
  if (started && !opts.overwrite) {
    throw new FiligreeError(
      `${p.dir} already holds a run (${s.epochs} epoch${
        s.epochs === 1 ? "" : "s"
      } trained): continue it with --resume ${p.dir}, replace it with --overwrite, ` +
        `or choose another --out`,
    );
  }
  for (const f of s.runFiles) {
    try {
      await Deno.remove(`${p.dir}/${f}`, { recursive: true });
    } catch (e) {
      throw new FiligreeError(
        `cannot remove ${p.dir}/${f}: ${(e as Error).message.split("\n")[0]}`,
      );
    }
  }
  return `replaced ${s.runFiles.join(", ")}`;
}
