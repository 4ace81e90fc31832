/**
 * Adds the weight-agnostic evaluation to the cells a study already recorded, without rerunning
 * them: for every analyzed cell whose final analysis has no `agnostic` result, the agnostic step
 * (default: src/analysis/agnostic_run.ts) runs on the cell's run directory (its final checkpoint)
 * and the result is written into the cell's final analysis (the `analyses` row and the
 * `cells.analysis` column), one cell per transaction. So a running study (whose `analysis` block
 * must not change: that would change every cell's id) can still test the `agnostic` hypotheses
 * (docs/HYPOTHESES.md H9). Interrupted, it resumes: done cells are skipped. It takes the store's
 * lock (one writer: not while a sweep of the same store runs).
 *
 * Settings come from the study spec stored in the store (its `analysis` block: `evalSamples`,
 * `seed`), so a backfilled cell gets what `analysis.agnostic: true` would have given it.
 *
 * @example
 * ```ts ignore
 * import { backfillAgnostic } from "./agnostic_backfill.ts";
 * const r = await backfillAgnostic("docs/results/activation-norm-mlp-converged/store.sqlite");
 * console.log(r.added.length, r.skipped);
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";
import { releaseGpu } from "../gpu/device.ts";
import { type AblateOptions, parseAblateOptions } from "../analysis/options.ts";
import type { AnalysisSummary } from "../analysis/summary.ts";
import { StoreLock } from "./lock.ts";
import { StudyStore } from "./store.ts";
import type { AgnosticStep } from "./sweep.ts";

/** Options of {@link backfillAgnostic}. */
export interface BackfillOptions {
  /** The agnostic step (default: `agnosticOfRun` of src/analysis/agnostic_run.ts). */
  step?: AgnosticStep;
  /** Analysis options (default: the stored spec's `analysis` block). */
  analysis?: AblateOptions;
  /**
   * Test samples of the evaluation (default: the analysis's `evalSamples`). Measured: 76 s per
   * 784-300-100-10 cell at 5,000 samples on the software adapter (GL, load 11-13).
   */
  evalSamples?: number;
  /** Stop after this many cells (default: all). */
  maxCells?: number;
  /** Called after each cell. */
  onCell?: (cellIndex: number, seconds: number) => void;
}

/** What {@link backfillAgnostic} did. */
export interface BackfillResult {
  /** Cell ids that got their agnostic result in this call. */
  added: string[];
  /** Cells skipped: already had one, or were never analyzed. */
  skipped: number;
}

/**
 * Runs the agnostic step on every recorded, analyzed cell of the store at `storePath` that lacks
 * its result, and stores it in the cell's final analysis (see the module doc).
 */
export async function backfillAgnostic(
  storePath: string,
  opts: BackfillOptions = {},
): Promise<BackfillResult> {
  const ro = StudyStore.openReadOnly(storePath);
  let study: string, spec: string | undefined;
  try {
    const meta = ro.meta();
    study = meta.study;
    spec = meta.spec;
  } finally {
    ro.close();
  }
  let analysis = opts.analysis;
  if (!analysis) {
    let block: unknown;
    try {
      block = spec ? (JSON.parse(spec) as Record<string, unknown>).analysis : undefined;
    } catch {
      throw new FiligreeError(`${storePath}: the stored study spec is not readable JSON`);
    }
    if (!block || typeof block !== "object") {
      throw new FiligreeError(`${storePath}: the stored study spec has no analysis block`);
    }
    // `epochs` belongs to the study, not to one analysis.
    const { epochs: _epochs, ...rest } = block as Record<string, unknown>;
    analysis = parseAblateOptions(rest);
  }
  if (opts.evalSamples !== undefined) analysis = { ...analysis, evalSamples: opts.evalSamples };
  const step = opts.step ?? (await import("../analysis/agnostic_run.ts")).agnosticOfRun;
  const lock = await StoreLock.acquire(storePath);
  const store = StudyStore.open(storePath, { study });
  const result: BackfillResult = { added: [], skipped: 0 };
  try {
    for (const cell of store.cells()) {
      if (opts.maxCells !== undefined && result.added.length >= opts.maxCells) break;
      const fin = store.analyses(cell.cell_id).find((a) => a.final === 1);
      const summary = fin ? JSON.parse(fin.analysis) as AnalysisSummary : undefined;
      if (!fin || !summary || summary.agnostic) {
        result.skipped++;
        continue;
      }
      const t0 = performance.now();
      const agnostic = await step(cell.run_dir, analysis);
      await releaseGpu();
      const json = JSON.stringify({ ...summary, agnostic });
      const db = store.db;
      db.exec("begin immediate");
      try {
        db.prepare("update analyses set analysis = ? where cell_id = ? and epoch = ?").run(
          json,
          cell.cell_id,
          fin.epoch,
        );
        if (cell.analysis !== null) {
          db.prepare("update cells set analysis = ? where cell_id = ?").run(json, cell.cell_id);
        }
        db.exec("commit");
      } catch (e) {
        db.exec("rollback");
        throw new FiligreeError(
          `${storePath}: cannot store cell ${cell.cell_id}'s agnostic result: ${
            (e as Error).message.split("\n")[0]
          }`,
        );
      }
      result.added.push(cell.cell_id);
      opts.onCell?.(cell.cell_index, (performance.now() - t0) / 1000);
    }
  } finally {
    store.close();
    lock.release();
  }
  return result;
}
