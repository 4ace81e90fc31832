/**
 * Reusing finished cells across studies. A cell's id hashes its full training config and
 * analysis options (src/study/spec.ts `cellId`), so a cell of one study with the same id as a
 * cell of another is the same computation: a follow-up design that shares conditions with an
 * earlier study (the SET cells of a RigL-vs-SET design, the unit-input cells of an
 * input-normalization design) need not train and analyze them again. {@link reuseCells} copies
 * every cell of a spec (or of its shard) that a source store holds and the target store lacks,
 * with its epochs and analyses, rewriting only what belongs to the study (study name, cell index,
 * factor values); the results, the config, the run directory and `finished_at` are kept, and the
 * target's meta `reused` lists each copy (source path, source study and commits, cells, time),
 * so the report and PROGRESS.md say which cells came from where.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseStudySpec } from "./spec.ts";
 * import { StudyStore } from "./store.ts";
 * import { reuseCells } from "./reuse.ts";
 * const dir = await Deno.makeTempDir();
 * const a = await parseStudySpec({ factors: { seed: [0, 1] }, train: { epochs: 1 } }, "a");
 * const b = await parseStudySpec({ factors: { seed: [1, 2] }, train: { epochs: 1 } }, "b");
 * const src = StudyStore.open(`${dir}/a.sqlite`, { study: "a" });
 * for (const c of a.cells) {
 *   src.recordCell({
 *     cell: {
 *       cell_id: c.id, study: "a", cell_index: c.index, factors: JSON.stringify(c.factors),
 *       config: JSON.stringify(c.config), run_dir: "runs/a", test_accuracy: 0.9, test_loss: 0.3,
 *       train_accuracy: 0.9, train_loss: 0.3, epochs: 1, train_seconds: 1, step_ms: 1, nnz: 1,
 *       dense_weights: 1, param_bytes: 1, analysis: null, analysis_seconds: null, adapter: "x",
 *       filigree_version: "x", finished_at: "2026-01-01T00:00:00Z", stopped: null,
 *     },
 *     epochs: [],
 *   });
 * }
 * src.close();
 * const r = reuseCells(b, `${dir}/b.sqlite`, [`${dir}/a.sqlite`]);
 * assert.deepEqual(r.added, 1); // seed 1 is in both designs
 * const s = StudyStore.openReadOnly(`${dir}/b.sqlite`);
 * assert.deepEqual(s.cells().map((c) => [c.study, c.cell_index]), [["b", 0]]);
 * s.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";
import type { Shard } from "./shard.ts";
import { shardCells } from "./shard.ts";
import type { StudySpec } from "./spec.ts";
import { type CellRecord, storeHistory, StudyStore } from "./store.ts";

/** One copy from a source store, as kept in the target's meta `reused` (JSON array). */
export interface ReuseEntry {
  /** ISO time of the copy. */
  at: string;
  /** The source store's path as given. */
  from: string;
  /** The source store's study. */
  study: string;
  /** The commits that wrote the source store (its chunk history; one per line). */
  commit: string;
  /** Cells copied. */
  cells: number;
}

/** What {@link reuseCells} did. */
export interface ReuseResult {
  /** Cells copied into the target. */
  added: number;
  /** Per source, in order: cells copied from it. */
  bySource: { from: string; study: string; added: number }[];
}

/** The target store's reuse log (meta `reused`), oldest first. */
export function reuseLog(meta: Record<string, string>): ReuseEntry[] {
  try {
    const v = meta.reused ? JSON.parse(meta.reused) : [];
    return Array.isArray(v) ? v as ReuseEntry[] : [];
  } catch {
    return [];
  }
}

/**
 * Copies into `target` (created when missing) every cell of `spec` (of `shard` when given) that
 * one of `sources` holds and `target` lacks; the first source holding a cell wins. Each source is
 * copied in one transaction; running it again adds nothing. A source that is not a readable store
 * (or is the target itself) is refused with a one-line error before anything is written.
 */
export function reuseCells(
  spec: StudySpec,
  target: string,
  sources: string[],
  shard?: Shard,
): ReuseResult {
  const real = (p: string) => {
    try {
      return Deno.realPathSync(p);
    } catch {
      return p;
    }
  };
  const ins = sources.map((p) => {
    if (real(p) === real(target)) {
      throw new FiligreeError(`--reuse ${p}: that is the target store itself`);
    }
    return StudyStore.openReadOnly(p);
  });
  try {
    const dst = StudyStore.open(target, { study: spec.name, spec: JSON.stringify(spec.source) });
    const bySource: ReuseResult["bySource"] = [];
    try {
      const mine = shardCells(spec.cells, shard);
      const log = reuseLog(dst.meta());
      ins.forEach((src, i) => {
        const meta = src.meta();
        const recs: CellRecord[] = [];
        for (const c of mine) {
          if (dst.isDone(c.id)) continue;
          const row = src.cell(c.id);
          if (!row) continue;
          recs.push({
            cell: {
              ...row,
              study: spec.name,
              cell_index: c.index,
              factors: JSON.stringify(c.factors),
            },
            epochs: src.epochs(c.id),
            analyses: src.analyses(c.id),
          });
        }
        const added = dst.recordMany(recs);
        bySource.push({ from: sources[i], study: meta.study ?? "?", added });
        if (added > 0) {
          log.push({
            at: new Date().toISOString(),
            from: sources[i],
            study: meta.study ?? "?",
            // Every commit that wrote the source (its chunk history), else its last one.
            commit: [...new Set(storeHistory(meta).map((h) => h.commit))].join("\n") ||
              (meta.commit ?? "unknown"),
            cells: added,
          });
        }
      });
      dst.db.prepare("insert or replace into meta (key, value) values ('reused', ?)").run(
        JSON.stringify(log),
      );
      return { added: bySource.reduce((a, s) => a + s.added, 0), bySource };
    } finally {
      dst.close();
    }
  } finally {
    for (const s of ins) s.close();
  }
}
