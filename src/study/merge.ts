/**
 * Merging study stores (the shards of a study, or stores from several machines) into one:
 * cells (with their epochs) not already in the output are copied, each input in one
 * transaction; cells already present are left alone, so merging is idempotent. Failed cells
 * (src/study/failures.ts) that no input finished are carried over, so the merged report lists
 * them. Stores of a
 * different study or schema version are refused with a one-line error before anything is
 * written.
 *
 * @example
 * ```ts ignore
 * import { mergeStores } from "./merge.ts";
 * const r = mergeStores("runs/studies/x/store.sqlite", [
 *   "runs/studies/x/store-0-of-2.sqlite",
 *   "runs/studies/x/store-1-of-2.sqlite",
 * ]);
 * console.log(r.added, r.present); // e.g. 24 0
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";
import { STORE_SCHEMA_VERSION } from "./schema.ts";
import { type CellRecord, StudyStore } from "./store.ts";
import { copyFailures, failedCells, FAILURES_SCHEMA } from "./failures.ts";

/** What {@link mergeStores} did. */
export interface MergeResult {
  study: string;
  /** Cells copied into the output. */
  added: number;
  /** Cells of the inputs that the output already had. */
  present: number;
  /** Cells in the output afterwards. */
  total: number;
}

/**
 * Merges `inputs` into `out` (created when missing, with the first input's meta).
 *
 * @example
 * ```ts ignore
 * mergeStores("all.sqlite", ["a.sqlite", "b.sqlite"]);
 * ```
 */
export function mergeStores(out: string, inputs: string[]): MergeResult {
  if (inputs.length === 0) throw new FiligreeError("merge: give at least one input store");
  const ins = inputs.map((p) => StudyStore.openReadOnly(p));
  try {
    const metas = ins.map((s) => s.meta());
    const study = metas[0].study;
    if (!study) throw new FiligreeError(`${inputs[0]}: store has no study name in meta`);
    for (let i = 0; i < ins.length; i++) {
      if (metas[i].schema !== STORE_SCHEMA_VERSION) {
        throw new FiligreeError(`${inputs[i]}: store schema "${metas[i].schema}"`);
      }
      if (metas[i].study !== study) {
        throw new FiligreeError(
          `${inputs[i]}: store of study "${metas[i].study}", not "${study}" (refusing to merge)`,
        );
      }
    }
    let existing: Record<string, string> | null = null;
    try {
      Deno.statSync(out);
      const o = StudyStore.openReadOnly(out);
      existing = o.meta();
      o.close();
    } catch (e) {
      if (e instanceof FiligreeError && !/no such store/.test(e.message)) throw e;
    }
    if (existing && existing.study !== study) {
      throw new FiligreeError(
        `${out}: store of study "${existing.study}", not "${study}" (refusing to merge)`,
      );
    }
    const m0 = metas[0];
    // Every distinct command and commit of the output and the inputs (one per line), so a
    // merged store says how each shard was run, not only the first.
    const union = (k: "command" | "commit") => {
      const v = [existing, ...metas].flatMap((m) => m?.[k]?.split("\n") ?? []);
      const u = [...new Set(v.filter((x) => x !== ""))];
      return u.length ? u.join("\n") : undefined;
    };
    const dst = StudyStore.open(
      out,
      existing
        ? { study, command: union("command"), commit: union("commit") }
        : { study, spec: m0.spec, command: union("command"), commit: union("commit") },
    );
    let added = 0, present = 0;
    try {
      for (const src of ins) {
        const recs: CellRecord[] = [];
        for (const cell of src.cells()) {
          if (dst.isDone(cell.cell_id)) {
            present++;
            continue;
          }
          recs.push({
            cell,
            epochs: src.epochs(cell.cell_id),
            analyses: src.analyses(cell.cell_id),
          });
        }
        added += dst.recordMany(recs);
      }
      // Failed cells (src/study/failures.ts) of the inputs that no store has finished.
      const done = dst.doneIds();
      dst.db.exec(FAILURES_SCHEMA);
      dst.db.exec("begin immediate");
      try {
        for (const src of ins) copyFailures(dst.db, failedCells(src.db), done);
        dst.db.exec("delete from failures where cell_id in (select cell_id from cells)");
        dst.db.exec("commit");
      } catch (e) {
        if (dst.db.isTransaction) dst.db.exec("rollback");
        throw e;
      }
      return { study, added, present, total: dst.doneIds().size };
    } finally {
      dst.close();
    }
  } finally {
    for (const s of ins) s.close();
  }
}
