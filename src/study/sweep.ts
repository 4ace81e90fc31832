/**
 * The sweep runner: trains, analyzes and records every cell of a study (or of one shard of it)
 * and can be killed and rerun at any point:
 *
 * - a cell already in the store is skipped (never run or recorded twice);
 * - run dirs are `runsDir/<cellId>`; a run dir whose checkpoint is short of the last epoch is
 *   resumed from it (bit-identical to an uninterrupted run); one whose training is complete is
 *   not retrained (the process died during the analysis or before recording);
 * - the analysis is restartable: it is simply called again;
 * - the cell and all its epochs are recorded in one transaction at the end.
 *
 * The analysis step is injected (`analyze`), so tests run with a fake and the CLI passes
 * `ablateRun` from src/analysis/run.ts.
 *
 * @example
 * ```ts ignore
 * import { readStudySpec } from "./spec.ts";
 * import { runStudy } from "./sweep.ts";
 * const spec = await readStudySpec("studies/smoke.yaml");
 * const r = await runStudy(spec, { storePath: "runs/studies/smoke/store.sqlite", runsDir: "runs/studies/smoke/cells" });
 * console.log(r.recorded.length, "cells recorded");
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";
import { getGpu, releaseGpu } from "../gpu/device.ts";
import type { AblateOptions } from "../analysis/options.ts";
import type { AnalysisSummary } from "../analysis/summary.ts";
import type { AgnosticReport } from "../analysis/agnostic.ts";
import type { TrainConfig } from "../train/config.ts";
import { checkpointStopped, keptEpochDir, saveCheckpoint } from "../train/checkpoint.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { trainRun } from "../train/run.ts";
import {
  checkpointEpoch,
  FILIGREE_VERSION,
  readMetrics as readRunMetrics,
  readRunFile,
} from "../train/rundir.ts";
import { type EpochMetrics, Trainer } from "../train/trainer.ts";
import { modelSpecOf } from "../train/model_spec.ts";
import { weightShapes } from "../nn/models.ts";
import type { AnalysisRow, CellRow } from "./schema.ts";
import {
  canonicalJson,
  datasetShape,
  describeFactors,
  type StudyCell,
  type StudySpec,
} from "./spec.ts";
import { type CellRecord, type EpochRow, StudyStore } from "./store.ts";
import { type Shard, shardCells } from "./shard.ts";
import { clearFailure, markRetry, recordFailure, skippedFailures } from "./failures.ts";

export { checkpointEpoch };

/** The analysis step: analyzes a finished run directory (restartable). */
export type Analyzer = (
  runDir: string,
  opts: AblateOptions,
  hooks?: { quiet?: boolean },
) => Promise<AnalysisSummary>;

/**
 * The weight-agnostic step (analysis option `agnostic`): evaluates a finished run directory's
 * final checkpoint (default: `agnosticOfRun` of src/analysis/agnostic_run.ts).
 */
export type AgnosticStep = (runDir: string, opts: AblateOptions) => Promise<AgnosticReport>;

/** What the sweep reports while it runs. */
export type SweepEvent =
  | { type: "start"; study: string; total: number; shardCells: number; pending: number }
  | { type: "skip"; cell: StudyCell }
  /** A cell that failed in an earlier sweep, skipped (`retryFailed` runs it again). */
  | { type: "skipFailed"; cell: StudyCell; position: number }
  /** A cell failed (diverged, threw a FiligreeError): recorded as failed; the sweep goes on. */
  | { type: "failed"; cell: StudyCell; message: string; position: number }
  | {
    type: "train";
    cell: StudyCell;
    /** Epochs already done (0: fresh; >0: resumed from the checkpoint). */
    fromEpoch: number;
    position: number;
  }
  | { type: "trained"; cell: StudyCell; position: number }
  | {
    type: "epoch";
    cell: StudyCell;
    epoch: number;
    epochs: number;
    metrics: EpochMetrics;
    position: number;
    etaSeconds: number;
  }
  | { type: "analyze"; cell: StudyCell; position: number }
  | {
    type: "done";
    cell: StudyCell;
    seconds: number;
    row: CellRow;
    position: number;
    etaSeconds: number;
  };

/** Options of {@link runStudy}. */
export interface SweepOptions {
  /** SQLite store (created when missing). */
  storePath: string;
  /** Root of the run directories (runsDir/<cellId>). */
  runsDir: string;
  /** Run only cells with index mod count = index. */
  shard?: Shard;
  /** The analysis step; required when the spec has analysis options. */
  analyze?: Analyzer;
  /** The weight-agnostic step for `analysis.agnostic` (default: src/analysis/agnostic_run.ts). */
  agnostic?: AgnosticStep;
  /** No progress lines. */
  quiet?: boolean;
  /** Called for every event (after the progress line); a throw stops the sweep there. */
  onProgress?: (e: SweepEvent) => void | Promise<void>;
  /** Command line stored in the store's meta table. */
  command?: string;
  /** Code version stored in meta (default: `git rev-parse HEAD`, or "unknown"). */
  commit?: string;
  /**
   * Stop after recording (or failing) this many cells (the CLI runs cells in batches of child
   * processes).
   */
  maxCells?: number;
  /** Run the cells that failed in earlier sweeps again (else they are skipped). */
  retryFailed?: boolean;
  /**
   * Time budget: wall-clock time (ms since the epoch, as `Date.now()`) after which no new cell
   * starts. A cell is not started when the mean time of the cells this call finished says it
   * would end after the deadline. A cell in progress always finishes (cells resume from their
   * last epoch anyway).
   */
  deadline?: number;
}

/** What {@link runStudy} did. */
export interface SweepResult {
  total: number;
  /** Cells of this shard. */
  shardCells: number;
  /** Cells found already recorded. */
  skipped: number;
  /** Ids of the cells recorded by this call. */
  recorded: string[];
  /** Ids of the cells that failed in this call (recorded in the store's `failures` table). */
  failed: string[];
  /** The time budget ({@link SweepOptions.deadline}) stopped the sweep before every cell ran. */
  outOfTime?: boolean;
}

/**
 * `git rev-parse HEAD` of the working directory, or "unknown" (no git, no permission, not a
 * repository).
 *
 * @example
 * ```ts ignore
 * console.log(await gitCommit()); // e.g. 3f2c...
 * ```
 */
export async function gitCommit(): Promise<string> {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "HEAD"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const s = new TextDecoder().decode(out.stdout).trim();
    return out.success && /^[0-9a-f]{7,64}$/.test(s) ? s : "unknown";
  } catch {
    return "unknown";
  }
}

export { datasetShape };

/**
 * Training samples per epoch of a config.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrainConfig } from "../train/config.ts";
 * import { trainSamples } from "./sweep.ts";
 * assert.deepEqual(trainSamples(parseTrainConfig({ trainSubset: 5000 })), 5000);
 * ```
 */
export function trainSamples(cfg: TrainConfig): number {
  const n = cfg.dataset === "synthetic" ? cfg.syntheticSamples : 60000;
  return Math.min(n, cfg.trainSubset ?? n);
}

/**
 * Weights of the dense equivalent and bytes actually stored for the weights of the config's model
 * (MLP, CNN or LSTM: its weight layers in model order, src/train/model_spec.ts) with the given
 * final nnz per weight layer: a sparse (CSR) layer stores 4-byte values + 4-byte column indices
 * per nonzero + (nIn+1) 4-byte row pointers; a dense layer 4 bytes per weight. A convolution
 * counts its `[c_in·k·k, c_out]` kernel once (shared over positions).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrainConfig } from "../train/config.ts";
 * import { weightFootprint } from "./sweep.ts";
 * const cfg = parseTrainConfig({ dataset: "synthetic", hidden: [8], density: 0.5, syntheticFeatures: 4, syntheticClasses: 2 });
 * assert.deepEqual(weightFootprint(cfg, [16, 16]), { denseWeights: 48, paramBytes: 212 });
 * const cnn = parseTrainConfig({ model: "cnn", convChannels: [2], kernelSize: 3, hidden: [4], density: 0.5 });
 * // conv1 [9, 2], fc1 [2·14·14, 4], out [4, 10] (dense)
 * assert.deepEqual(weightFootprint(cnn, [9, 784, 40]).denseWeights, 18 + 1568 + 40);
 * ```
 */
export function weightFootprint(
  cfg: TrainConfig,
  nnz: number[],
): { denseWeights: number; paramBytes: number } {
  const spec = modelSpecOf(cfg, datasetShape(cfg));
  const shapes = weightShapes(spec);
  if (nnz.length !== shapes.length) {
    throw new FiligreeError(
      `nnz has ${nnz.length} layers, the ${cfg.model} (${
        shapes.map(([a, b]) => `${a}x${b}`).join(", ")
      }) has ${shapes.length}`,
    );
  }
  let denseWeights = 0, paramBytes = 0;
  shapes.forEach(([nIn, nOut], l) => {
    denseWeights += nIn * nOut;
    paramBytes += spec.densities[l] < 1 ? nnz[l] * 8 + (nIn + 1) * 4 : nIn * nOut * 4;
  });
  return { denseWeights, paramBytes };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function readMetrics(dir: string): Promise<EpochMetrics[]> {
  return (await readRunMetrics(dir)).metrics;
}

async function readRunConfig(dir: string): Promise<Record<string, unknown> | null> {
  try {
    return { ...await readRunFile(dir) };
  } catch {
    return null;
  }
}

/**
 * Builds the store record of a cell whose training is complete (from config.json and
 * metrics.jsonl in its run dir).
 *
 * @example
 * ```ts ignore
 * const rec = await buildCellRecord("smoke", spec.cells[0], "runs/studies/smoke/cells/<id>", null, null);
 * store.recordCell(rec);
 * ```
 */
export async function buildCellRecord(
  study: string,
  cell: StudyCell,
  dir: string,
  analysis: AnalysisSummary | null,
  analysisSeconds: number | null,
): Promise<CellRecord> {
  const cfg = cell.config;
  const file = await readRunConfig(dir);
  if (!file) throw new FiligreeError(`${dir}: no readable config.json`);
  const all = await readMetrics(dir);
  // A stop rule may end training before cfg.epochs (the epoch's line says so).
  const stopAt = all.findIndex((m) => m.stopped);
  const expected = stopAt >= 0 ? stopAt + 1 : cfg.epochs;
  if (all.length < expected) {
    throw new FiligreeError(
      `${dir}: metrics.jsonl has ${all.length} epochs, expected ${expected}`,
    );
  }
  const ms = all.slice(0, expected);
  const last = ms[ms.length - 1];
  const stepMs = ms.map((m, i) => {
    const steps = m.step - (i > 0 ? ms[i - 1].step : 0);
    const s = m.seconds.forward + m.seconds.backward + m.seconds.optimizer;
    return steps > 0 ? (s / steps) * 1000 : NaN;
  }).filter(Number.isFinite);
  const { denseWeights, paramBytes } = weightFootprint(cfg, last.nnz);
  const adapter = (file.adapter ?? {}) as { description?: string; vendor?: string };
  const row: CellRow = {
    cell_id: cell.id,
    study,
    cell_index: cell.index,
    factors: JSON.stringify(cell.factors),
    config: JSON.stringify(cfg),
    run_dir: dir,
    test_accuracy: last.testAccuracy,
    test_loss: last.testLoss,
    train_accuracy: last.trainAccuracy,
    train_loss: last.trainLoss,
    epochs: ms.length,
    train_seconds: ms.reduce((a, m) => a + m.seconds.total, 0),
    step_ms: stepMs.length ? median(stepMs) : null,
    nnz: last.nnz.reduce((a, b) => a + b, 0),
    dense_weights: denseWeights,
    param_bytes: paramBytes,
    analysis: analysis ? JSON.stringify(analysis) : null,
    analysis_seconds: analysisSeconds,
    adapter: adapter.description || adapter.vendor || "unknown",
    filigree_version: String(file.filigree ?? "unknown"),
    finished_at: new Date().toISOString(),
    stopped: last.stopped ?? null,
  };
  const epochs: EpochRow[] = ms.map((m) => ({
    cell_id: cell.id,
    epoch: m.epoch,
    train_loss: m.trainLoss,
    train_accuracy: m.trainAccuracy,
    test_loss: m.testLoss,
    test_accuracy: m.testAccuracy,
    seconds: JSON.stringify(m.seconds),
    nnz: JSON.stringify(m.nnz),
  }));
  return { cell: row, epochs };
}

/**
 * Formats seconds as "42s", "3m05s", "2h10m".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDuration } from "./sweep.ts";
 * assert.deepEqual(formatDuration(185), "3m05s");
 * ```
 */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return "?";
  if (sec < 60) return `${sec.toFixed(0)}s`;
  if (sec < 3600) {
    return `${Math.floor(sec / 60)}m${String(Math.floor(sec % 60)).padStart(2, "0")}s`;
  }
  return `${Math.floor(sec / 3600)}h${String(Math.floor((sec % 3600) / 60)).padStart(2, "0")}m`;
}

function progressLine(e: SweepEvent, n: number): string | null {
  const tag = (c: StudyCell, pos: number) =>
    `[${pos + 1}/${n}] cell ${c.index} ${c.id} ${describeFactors(c.factors)}`;
  switch (e.type) {
    case "start":
      return `study ${e.study}: ${e.total} cells, ${e.shardCells} in this shard, ${e.pending} to run`;
    case "skip":
      return null;
    case "skipFailed":
      return `${tag(e.cell, e.position)}: skipped, it failed in an earlier sweep ` +
        `(sweep --retry-failed runs it again)`;
    case "failed":
      return `${tag(e.cell, e.position)}: FAILED: ${e.message} (recorded; going on)`;
    case "train":
      return `${tag(e.cell, e.position)}: ${
        e.fromEpoch > 0 ? `resuming at epoch ${e.fromEpoch + 1}` : "training"
      }`;
    case "trained":
      return `${tag(e.cell, e.position)}: training already complete`;
    case "epoch":
      return `${tag(e.cell, e.position)}: epoch ${e.epoch}/${e.epochs} test acc ${
        (e.metrics.testAccuracy * 100).toFixed(2)
      }% | study ETA ${formatDuration(e.etaSeconds)}`;
    case "analyze":
      return `${tag(e.cell, e.position)}: analyzing`;
    case "done":
      return `${tag(e.cell, e.position)}: done in ${formatDuration(e.seconds)}, test acc ${
        (e.row.test_accuracy * 100).toFixed(2)
      }% | study ETA ${formatDuration(e.etaSeconds)}`;
  }
}

/**
 * Runs (the shard of) a study: see the module doc for the restart rules.
 *
 * @example
 * ```ts ignore
 * await runStudy(spec, { storePath: "s.sqlite", runsDir: "runs/x", analyze: ablateRun });
 * ```
 */
export async function runStudy(spec: StudySpec, opts: SweepOptions): Promise<SweepResult> {
  if (spec.analysis && !opts.analyze) {
    throw new FiligreeError(
      `study ${spec.name} has analysis options but no analysis step was given`,
    );
  }
  const mine = shardCells(spec.cells, opts.shard);
  const store = StudyStore.open(opts.storePath, {
    study: spec.name,
    spec: JSON.stringify(spec.source),
    command: opts.command ?? "runStudy",
    commit: opts.commit ?? await gitCommit(),
  });
  const result: SweepResult = {
    total: spec.cells.length,
    shardCells: mine.length,
    skipped: 0,
    recorded: [],
    failed: [],
  };
  try {
    if (opts.retryFailed) markRetry(store.db);
    const done = store.doneIds();
    const failedBefore = skippedFailures(store.db);
    const pending = mine.filter((c) => !done.has(c.id) && !failedBefore.has(c.id));
    // Errors thrown by onProgress stop the sweep (tests use them as kills); FiligreeErrors of a
    // cell's training or analysis (divergence, bad config, GPU errors) fail only that cell.
    const stops = new WeakSet<object>();
    const emit = async (e: SweepEvent) => {
      if (!opts.quiet) {
        const line = progressLine(e, mine.length);
        if (line) console.log(line);
      }
      try {
        await opts.onProgress?.(e);
      } catch (err) {
        if (err !== null && typeof err === "object") stops.add(err);
        throw err;
      }
    };
    await emit({
      type: "start",
      study: spec.name,
      total: spec.cells.length,
      shardCells: mine.length,
      pending: pending.length,
    });
    const cellSeconds: number[] = [];
    // Until this call finishes a cell, the budget uses the mean of the cells in the store.
    const stored = opts.deadline !== undefined ? store.cells() : [];
    const storedMean = stored.length
      ? stored.reduce((a, r) => a + r.train_seconds + (r.analysis_seconds ?? 0), 0) /
        stored.length
      : 0;
    let left = pending.length;
    for (let position = 0; position < mine.length; position++) {
      const cell = mine[position];
      if (
        opts.maxCells !== undefined &&
        result.recorded.length + result.failed.length >= opts.maxCells
      ) break;
      if (store.isDone(cell.id)) {
        result.skipped++;
        await emit({ type: "skip", cell });
        continue;
      }
      if (failedBefore.has(cell.id)) {
        await emit({ type: "skipFailed", cell, position });
        continue;
      }
      if (opts.deadline !== undefined) {
        const mean = cellSeconds.length
          ? cellSeconds.reduce((a, b) => a + b) / cellSeconds.length
          : storedMean;
        if (Date.now() + mean * 1000 >= opts.deadline) {
          result.outOfTime = true;
          break;
        }
      }
      try {
        const t0 = performance.now();
        const dir = `${opts.runsDir}/${cell.id}`;
        const epochs = cell.config.epochs;
        let fromEpoch = await checkpointEpoch(dir);
        if (fromEpoch > 0) {
          const saved = await readRunConfig(dir);
          if (!saved || canonicalJson(saved.config) !== canonicalJson(cell.config)) {
            throw new FiligreeError(
              `${dir}: its config.json is not the config of cell ${cell.index}; move it away`,
            );
          }
        }
        const stoppedBy = fromEpoch > 0
          ? await checkpointStopped(`${dir}/checkpoint.safetensors`)
          : null;
        if (fromEpoch < epochs && !stoppedBy) {
          await emit({ type: "train", cell, fromEpoch, position });
          const tTrain = performance.now();
          const startEpoch = fromEpoch;
          await trainRun(cell.config, dir, {
            quiet: true,
            resume: fromEpoch > 0,
            // A run dir without a finished epoch holds nothing to keep (a kill during epoch 1).
            overwrite: fromEpoch === 0,
            onEpoch: async (m) => {
              const perEpoch = (performance.now() - tTrain) / 1000 / (m.epoch - startEpoch);
              const cellEst = cellSeconds.length
                ? cellSeconds.reduce((a, b) => a + b) / cellSeconds.length
                : perEpoch * epochs;
              await emit({
                type: "epoch",
                cell,
                epoch: m.epoch,
                epochs,
                metrics: m,
                position,
                etaSeconds: perEpoch * (epochs - m.epoch) + cellEst * (left - 1),
              });
            },
          });
          fromEpoch = epochs;
        } else {
          await emit({ type: "trained", cell, position });
        }
        let summary: AnalysisSummary | null = null, analysisSeconds: number | null = null;
        const analyses: AnalysisRow[] = [];
        if (cell.analysis) {
          await emit({ type: "analyze", cell, position });
          const ta = performance.now();
          summary = await opts.analyze!(dir, cell.analysis, { quiet: opts.quiet });
          if (cell.analysis.agnostic) {
            // Weight-agnostic evaluation of the final checkpoint, stored with its analysis.
            const step = opts.agnostic ??
              (await import("../analysis/agnostic_run.ts")).agnosticOfRun;
            summary = { ...summary, agnostic: await step(dir, cell.analysis) };
          }
          const last = await checkpointEpoch(dir);
          analyses.push({
            cell_id: cell.id,
            epoch: last,
            final: 1,
            analysis: JSON.stringify(summary),
            analysis_seconds: (performance.now() - ta) / 1000,
          });
          // The kept epochs (analysis.epochs) the run reached before its last one.
          for (const e of cell.analysisEpochs.filter((e) => e < last)) {
            const te = performance.now();
            const s = await opts.analyze!(keptEpochDir(dir, e), cell.analysis, {
              quiet: opts.quiet,
            });
            analyses.push({
              cell_id: cell.id,
              epoch: e,
              final: 0,
              analysis: JSON.stringify(s),
              analysis_seconds: (performance.now() - te) / 1000,
            });
          }
          // Every analyzed epoch of the cell together (the dry-run estimate uses it).
          analysisSeconds = (performance.now() - ta) / 1000;
        }
        const rec = await buildCellRecord(spec.name, cell, dir, summary, analysisSeconds);
        if (cell.analysis) rec.analyses = analyses;
        if (store.recordCell(rec)) result.recorded.push(cell.id);
        clearFailure(store.db, cell.id);
        // Every cell builds its own model and data on the GPU: free them before the next one.
        await releaseGpu();
        const sec = (performance.now() - t0) / 1000;
        cellSeconds.push(sec);
        left--;
        await emit({
          type: "done",
          cell,
          seconds: sec,
          row: rec.cell,
          position,
          etaSeconds: (cellSeconds.reduce((a, b) => a + b) / cellSeconds.length) * left,
        });
      } catch (e) {
        if (stops.has(e as object) || !(e instanceof FiligreeError)) throw e;
        const message = e.message.split("\n")[0];
        recordFailure(store.db, {
          cellId: cell.id,
          cellIndex: cell.index,
          factors: JSON.stringify(cell.factors),
          message,
        });
        result.failed.push(cell.id);
        left--;
        await releaseGpu();
        await emit({ type: "failed", cell, message, position });
      }
    }
  } finally {
    store.close();
  }
  return result;
}

/** A dry-run plan of (the shard of) a study. */
export interface StudyPlan {
  /** Cells of this shard, in order. */
  cells: StudyCell[];
  /** Cells of this shard not yet in the store (nor in a `reuse` store). */
  pending: StudyCell[];
  /** Cells of this shard not yet in the store that a `reuse` store holds (copied, not run). */
  reusable: StudyCell[];
  /** Estimated seconds for the pending cells, and how it was derived. */
  estimate: { seconds: number; how: string };
}

/**
 * Plans a sweep without running it: the shard's cells, those still to run, and an estimated
 * time, from the throughput (training samples/s) of cells already in the store when there are
 * any, else from timing `measureSteps` training steps of the first pending cell's model.
 *
 * @example
 * ```ts ignore
 * const plan = await planStudy(spec, { storePath: "s.sqlite" });
 * console.log(plan.pending.length, plan.estimate.seconds, plan.estimate.how);
 * ```
 */
export async function planStudy(
  spec: StudySpec,
  opts: {
    storePath: string;
    shard?: Shard;
    measureSteps?: number;
    /**
     * The analysis step: with no analyzed cell in the store, one analysis of the first pending
     * cell's (untrained) model is timed with it, so the estimate includes analysis time.
     */
    analyze?: Analyzer;
    /** The agnostic step (`analysis.agnostic`), timed the same way (default: agnostic_run.ts). */
    agnostic?: AgnosticStep;
    /**
     * Stores of other studies whose cells `sweep --reuse` would copy (src/study/reuse.ts): their
     * cells of this spec count as done, and their timings inform the estimate.
     */
    reuse?: string[];
  },
): Promise<StudyPlan> {
  const cells = shardCells(spec.cells, opts.shard);
  const rows: CellRow[] = [];
  let exists = false;
  try {
    await Deno.stat(opts.storePath);
    exists = true;
  } catch {
    // no store yet
  }
  // Timings come from every store read: the target's cells and those of the reuse stores.
  let analysesDone = 0;
  const doneIds = new Set<string>(); // in the target store
  const reusedIds = new Set<string>(); // in a reuse store
  const read = (path: string, ids: Set<string>) => {
    const s = StudyStore.openReadOnly(path);
    try {
      for (const r of s.cells()) {
        // Each cell read once: from the target, else from the first reuse store holding it.
        if (doneIds.has(r.cell_id) || reusedIds.has(r.cell_id)) continue;
        ids.add(r.cell_id);
        rows.push(r);
        if (r.analysis_seconds !== null) analysesDone += s.analyses(r.cell_id).length;
      }
    } finally {
      s.close();
    }
  };
  if (exists) read(opts.storePath, doneIds);
  for (const path of opts.reuse ?? []) read(path, reusedIds);
  // Analyses a pending cell needs: the final one and its kept epochs.
  const analysesToRun = (cs: StudyCell[]) =>
    cs.reduce((a, c) => a + (c.analysis ? 1 + c.analysisEpochs.length : 0), 0);
  const reusable = cells.filter((c) => !doneIds.has(c.id) && reusedIds.has(c.id));
  const pending = cells.filter((c) => !doneIds.has(c.id) && !reusedIds.has(c.id));
  const samples = (c: TrainConfig) => c.epochs * trainSamples(c);
  const totalSamples = pending.reduce((a, c) => a + samples(c.config), 0);
  if (pending.length === 0) {
    return { cells, pending, reusable, estimate: { seconds: 0, how: "nothing left to run" } };
  }
  const timed = rows.filter((r) => r.train_seconds > 0);
  if (timed.length) {
    const spsOf = (rs: CellRow[]) =>
      rs.reduce((a, r) => a + samples(JSON.parse(r.config)), 0) /
      rs.reduce((a, r) => a + r.train_seconds, 0);
    const sps = spsOf(timed);
    // Each pending cell at the speed of its own model's cells when the store has some (a CNN or
    // LSTM trains far slower than an MLP), else at the overall speed.
    const modelSps = new Map<string, number>();
    for (const r of timed) {
      const m = (JSON.parse(r.config) as TrainConfig).model ?? "mlp";
      if (!modelSps.has(m)) {
        modelSps.set(
          m,
          spsOf(timed.filter((x) => ((JSON.parse(x.config) as TrainConfig).model ?? "mlp") === m)),
        );
      }
    }
    const trainSec = pending.reduce(
      (a, c) => a + samples(c.config) / (modelSps.get(c.config.model) ?? sps),
      0,
    );
    const an = rows.filter((r) => r.analysis_seconds !== null).map((r) => r.analysis_seconds!);
    // Seconds per analysis (a cell's analysis_seconds covers all its analyzed epochs).
    const anMean = an.length ? an.reduce((a, b) => a + b) / Math.max(1, analysesDone) : 0;
    const nAnalyzed = analysesToRun(pending);
    const seconds = trainSec + anMean * nAnalyzed;
    return {
      cells,
      pending,
      reusable,
      estimate: {
        seconds,
        how:
          `${timed.length} cells in the store${opts.reuse?.length ? "s" : ""} trained at ${
            sps.toFixed(0)
          } samples/s overall` +
          (an.length
            ? ` and analyzed in ${anMean.toFixed(1)} s per analysis (${nAnalyzed} to run)`
            : "; analysis time not included (no analyzed cells yet)") +
          `; ${pending.length} cells x their epochs x training samples = ${totalSamples} samples` +
          (modelSps.size > 1
            ? ` (each at its model's measured speed: ${
              [...modelSps].map(([m, v]) => `${m} ${v.toFixed(0)}`).join(", ")
            } samples/s)`
            : ` (assumes the remaining cells' models train at the same speed)`),
      },
    };
  }
  // Models train and analyze at very different speeds (model: [mlp, cnn, lstm]): time the first
  // pending cell of each model and charge every cell at its model's speed.
  const steps = opts.measureSteps ?? 20;
  const gpu = await getGpu();
  const groups = new Map<string, StudyCell[]>();
  for (const c of pending) groups.set(c.config.model, [...(groups.get(c.config.model) ?? []), c]);
  let seconds = 0;
  const hows: string[] = [];
  for (const group of groups.values()) {
    const first = group[0];
    const t = await Trainer.create(gpu, first.config);
    t.data.epochOrder(0, first.config.seed);
    const n = t.stepsPerEpoch;
    for (let i = 0; i < Math.min(2, n); i++) t.trainStep(i % n); // warm-up: pipeline compiles
    await gpu.sync();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) t.trainStep((i + 2) % n);
    await gpu.sync();
    const sec = (performance.now() - t0) / 1000;
    const sps = (steps * t.data.batchSize) / sec;
    const groupSamples = group.reduce((a, c) => a + samples(c.config), 0);
    const nAnalyses = analysesToRun(group);
    const analyzed = group.find((c) => c.analysis);
    let anSec = 0, anHow = "";
    if (nAnalyses > 0 && analyzed && opts.analyze) {
      // One real analysis with the study's options, of an untrained model of the first analyzed
      // pending cell (the cost depends on the sizes, not on the weights' values).
      const tmp = await Deno.makeTempDir({ prefix: "filigree-plan-" });
      try {
        const ta = analyzed === first ? t : await Trainer.create(gpu, analyzed.config);
        await writeFileAtomic(
          `${tmp}/config.json`,
          JSON.stringify({ config: analyzed.config, filigree: FILIGREE_VERSION }) + "\n",
        );
        await saveCheckpoint(ta, `${tmp}/checkpoint.safetensors`);
        const t1 = performance.now();
        await opts.analyze(tmp, { ...analyzed.analysis!, plots: false });
        anSec = (performance.now() - t1) / 1000;
        anHow =
          `; timed one analysis of cell ${analyzed.index}: ${anSec.toFixed(1)} s, x ${nAnalyses} ` +
          `analyses (final + kept epochs)`;
        const nAgnostic = group.filter((c) => c.analysis?.agnostic).length;
        if (analyzed.analysis!.agnostic && nAgnostic > 0) {
          // The weight-agnostic evaluation of the final checkpoint (analysis.agnostic).
          const step = opts.agnostic ??
            (await import("../analysis/agnostic_run.ts")).agnosticOfRun;
          const t2 = performance.now();
          await step(tmp, analyzed.analysis!);
          const agSec = (performance.now() - t2) / 1000;
          anSec += agSec * nAgnostic / nAnalyses;
          anHow += `, and its agnostic evaluation: ${agSec.toFixed(1)} s x ${nAgnostic} cells`;
        }
      } finally {
        await Deno.remove(tmp, { recursive: true }).catch(() => {});
      }
    } else if (nAnalyses > 0) anHow = "; excludes analysis (no analysis step given)";
    seconds += groupSamples / sps + anSec * nAnalyses;
    hows.push(
      `timed ${steps} training steps of cell ${first.index} (${describeFactors(first.factors)}): ${
        sps.toFixed(0)
      } samples/s; ${groupSamples} samples to train (epochs at their ` +
        `maximum); excludes evaluation${anHow}; assumes every ${
          groups.size > 1 ? `${first.config.model} ` : ""
        }cell runs at that speed`,
    );
  }
  return { cells, pending, reusable, estimate: { seconds, how: hows.join(" | ") } };
}
