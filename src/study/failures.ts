/**
 * Failed cells of a study store: a cell whose training diverged, whose analysis threw, or whose
 * child process crashed is recorded in the `failures` table with status `failed` and its
 * message, and the sweep goes on with the other cells. Later sweeps skip failed cells unless
 * asked to retry them (`sweep --retry-failed` marks them `retry`); a cell that then succeeds
 * leaves the table, one that fails again counts another attempt. Stores written before this
 * table existed read as having no failures.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { failedCells, markRetry, recordFailure } from "./failures.ts";
 * const db = new DatabaseSync(":memory:");
 * recordFailure(db, { cellId: "c1", cellIndex: 1, factors: "{}", message: "training diverged" });
 * assert.deepEqual(failedCells(db).map((f) => [f.cell_id, f.status, f.attempts]), [["c1", "failed", 1]]);
 * assert.deepEqual(markRetry(db), 1);
 * assert.deepEqual(failedCells(db)[0].status, "retry");
 * ```
 * @module
 */
import type { DatabaseSync } from "node:sqlite";

/** DDL of the `failures` table; idempotent. */
export const FAILURES_SCHEMA = `
create table if not exists failures (
  cell_id text primary key,        -- the cell (not in cells: a cell is either done or failed)
  cell_index integer not null,
  factors text not null,           -- JSON factor values, as in cells
  status text not null,            -- 'failed' (skipped by later sweeps) or 'retry' (run again)
  message text not null,           -- one line: why it failed
  attempts integer not null,       -- how many times it failed
  failed_at text not null          -- ISO time of the last failure
);
`;

/** A row of `failures`. */
export interface FailureRow {
  cell_id: string;
  cell_index: number;
  factors: string;
  status: "failed" | "retry";
  message: string;
  attempts: number;
  failed_at: string;
}

function hasTable(db: DatabaseSync): boolean {
  return db.prepare("select 1 as x from sqlite_master where type = 'table' and name = 'failures'")
    .get() !== undefined;
}

/**
 * Records (or counts again) a failed cell, with status `failed`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { failedCells, recordFailure } from "./failures.ts";
 * const db = new DatabaseSync(":memory:");
 * const f = { cellId: "c", cellIndex: 0, factors: "{}", message: "boom" };
 * recordFailure(db, f);
 * recordFailure(db, { ...f, message: "boom again" });
 * assert.deepEqual(failedCells(db)[0].attempts, 2);
 * assert.deepEqual(failedCells(db)[0].message, "boom again");
 * ```
 */
export function recordFailure(
  db: DatabaseSync,
  f: { cellId: string; cellIndex: number; factors: string; message: string },
): void {
  db.exec(FAILURES_SCHEMA);
  const line = f.message.split("\n").map((s) => s.trim()).filter(Boolean).join("; ");
  db.prepare(
    `insert into failures (cell_id, cell_index, factors, status, message, attempts, failed_at)
     values (?, ?, ?, 'failed', ?, 1, ?)
     on conflict(cell_id) do update set status = 'failed', message = excluded.message,
       attempts = attempts + 1, failed_at = excluded.failed_at`,
  ).run(f.cellId, f.cellIndex, f.factors, line || "(no message)", new Date().toISOString());
}

/**
 * Every failure row, by cell index ([] for a store without the table).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { failedCells } from "./failures.ts";
 * assert.deepEqual(failedCells(new DatabaseSync(":memory:")), []);
 * ```
 */
export function failedCells(db: DatabaseSync): FailureRow[] {
  if (!hasTable(db)) return [];
  return db.prepare("select * from failures order by cell_index, cell_id")
    .all() as unknown as FailureRow[];
}

/**
 * Ids of the cells a sweep must skip (status `failed`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { skippedFailures } from "./failures.ts";
 * assert.deepEqual(skippedFailures(new DatabaseSync(":memory:")).size, 0);
 * ```
 */
export function skippedFailures(db: DatabaseSync): Set<string> {
  return new Set(failedCells(db).filter((f) => f.status === "failed").map((f) => f.cell_id));
}

/**
 * Marks every failed cell for another try; returns how many.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { markRetry } from "./failures.ts";
 * assert.deepEqual(markRetry(new DatabaseSync(":memory:")), 0);
 * ```
 */
export function markRetry(db: DatabaseSync): number {
  if (!hasTable(db)) return 0;
  return Number(
    db.prepare("update failures set status = 'retry' where status = 'failed'").run().changes,
  );
}

/**
 * Removes a cell's failure row (it has now been recorded as done).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { clearFailure, failedCells, recordFailure } from "./failures.ts";
 * const db = new DatabaseSync(":memory:");
 * recordFailure(db, { cellId: "c", cellIndex: 0, factors: "{}", message: "x" });
 * clearFailure(db, "c");
 * assert.deepEqual(failedCells(db).length, 0);
 * ```
 */
export function clearFailure(db: DatabaseSync, cellId: string): void {
  if (hasTable(db)) db.prepare("delete from failures where cell_id = ?").run(cellId);
}

/**
 * Copies failure rows into another store (merging shards): rows of cells the destination has
 * recorded as done are dropped; an existing row keeps the larger attempt count and the later
 * message. Returns how many rows were written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { copyFailures, failedCells, recordFailure } from "./failures.ts";
 * const a = new DatabaseSync(":memory:"), b = new DatabaseSync(":memory:");
 * recordFailure(a, { cellId: "c", cellIndex: 2, factors: "{}", message: "diverged" });
 * assert.deepEqual(copyFailures(b, failedCells(a), new Set()), 1);
 * assert.deepEqual(failedCells(b)[0].message, "diverged");
 * ```
 */
export function copyFailures(db: DatabaseSync, rows: FailureRow[], done: Set<string>): number {
  const keep = rows.filter((r) => !done.has(r.cell_id));
  if (!keep.length) return 0;
  db.exec(FAILURES_SCHEMA);
  const up = db.prepare(
    `insert into failures (cell_id, cell_index, factors, status, message, attempts, failed_at)
     values (?, ?, ?, ?, ?, ?, ?)
     on conflict(cell_id) do update set
       status = excluded.status,
       message = case when excluded.failed_at > failed_at then excluded.message else message end,
       attempts = max(attempts, excluded.attempts),
       failed_at = max(failed_at, excluded.failed_at)`,
  );
  for (const r of keep) {
    up.run(r.cell_id, r.cell_index, r.factors, r.status, r.message, r.attempts, r.failed_at);
  }
  return keep.length;
}

/**
 * The cell a sweep child that died was running, from the cells pending before it started and
 * after it died: the first one still pending, unless the child had already done its quota of
 * `perProcess` cells (or none is left). Then it died at exit, after its last cell was stored
 * (the software adapter's teardown sometimes aborts a finished process: README "Quick start"),
 * and no cell is to blame.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cellToBlame } from "./failures.ts";
 * const cells = ["a", "b", "c", "d", "e", "f"];
 * assert.equal(cellToBlame(cells, cells.slice(2), 4), "c"); // died in its third cell
 * assert.equal(cellToBlame(cells, cells.slice(4), 4), undefined); // died after its four
 * assert.equal(cellToBlame(cells, [], 4), undefined);
 * ```
 */
export function cellToBlame<C>(
  before: readonly C[],
  after: readonly C[],
  perProcess: number,
): C | undefined {
  if (after.length === 0 || before.length - after.length >= perProcess) return undefined;
  return after[0];
}
