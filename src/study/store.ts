/**
 * The study store: one SQLite file (node:sqlite, WAL journal, busy timeout) with the tables of
 * schema.ts. A cell is recorded once, in one transaction together with its epoch rows; a cell
 * that is already present is never written again.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StudyStore } from "./store.ts";
 * const store = StudyStore.open(":memory:", { study: "demo" });
 * assert.deepEqual(store.isDone("0123456789abcdef"), false);
 * assert.deepEqual(store.meta().schema, "filigree-store-2");
 * store.close();
 * ```
 * @module
 */
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { FiligreeError } from "../gpu/errors.ts";
import { readablePath, refuseWrite } from "./packed.ts";
import {
  type AnalysisRow,
  type CellRow,
  READABLE_STORE_VERSIONS,
  STORE_SCHEMA,
  STORE_SCHEMA_VERSION,
} from "./schema.ts";

/** One row of `epochs` as read back (JSON columns still strings). */
export interface EpochRow {
  cell_id: string;
  epoch: number;
  train_loss: number | null;
  train_accuracy: number | null;
  test_loss: number | null;
  test_accuracy: number | null;
  seconds: string | null;
  nnz: string | null;
}

/** A finished cell to record: the `cells` row, its epoch rows and its analyses by epoch. */
export interface CellRecord {
  cell: CellRow;
  epochs: EpochRow[];
  /** One per analyzed epoch (the final one included); absent = only `cell.analysis`. */
  analyses?: AnalysisRow[];
}

/** Meta values written when a store is opened for writing. */
export interface StoreMeta {
  /** Study name (must match an existing store's). */
  study: string;
  /** The study spec (JSON text). */
  spec?: string;
  /** The command line that ran the sweep. */
  command?: string;
  /** `git rev-parse HEAD` of the code, or "unknown". */
  commit?: string;
}

/** One opening of a store for writing (a sweep chunk), kept in meta `history` (JSON array). */
export interface StoreChunk {
  /** ISO time the chunk opened the store. */
  at: string;
  /** The code's commit. */
  commit: string;
  /** The command line. */
  command: string;
  /** Cells already in the store when the chunk began (its cells are those finished after `at`). */
  cellsBefore: number;
}

/** The store's chunk history (oldest first; empty for stores written before it was kept). */
export function storeHistory(meta: Record<string, string>): StoreChunk[] {
  try {
    const h = meta.history ? JSON.parse(meta.history) : [];
    if (!Array.isArray(h)) return [];
    // Consecutive openings by the same code and command are one chunk (stores written before the
    // writer merged them hold one entry per sweep worker).
    return (h as StoreChunk[]).filter((c, i) =>
      i === 0 || c.commit !== h[i - 1].commit || c.command !== h[i - 1].command
    );
  } catch {
    return [];
  }
}

/** Cells per chunk of {@link storeHistory}: a cell belongs to the chunk it finished in. */
export function cellsPerChunk(history: StoreChunk[], finishedAt: string[]): number[] {
  return history.map((h, i) => {
    const end = history[i + 1]?.at ?? "9999";
    return finishedAt.filter((f) => f >= h.at && f < end).length;
  });
}

const CELL_COLUMNS = [
  "cell_id",
  "study",
  "cell_index",
  "factors",
  "config",
  "run_dir",
  "test_accuracy",
  "test_loss",
  "train_accuracy",
  "train_loss",
  "epochs",
  "train_seconds",
  "step_ms",
  "nnz",
  "dense_weights",
  "param_bytes",
  "analysis",
  "analysis_seconds",
  "adapter",
  "filigree_version",
  "finished_at",
  "stopped",
] as const satisfies readonly (keyof CellRow)[];

const ANALYSIS_COLUMNS = [
  "cell_id",
  "epoch",
  "final",
  "analysis",
  "analysis_seconds",
] as const satisfies readonly (keyof AnalysisRow)[];

function tableNames(db: DatabaseSync): string[] {
  return db.prepare("select name from sqlite_master where type = 'table'").all()
    .map((r) => String(r.name));
}

/**
 * Migrates a version-1 store in place (in one transaction): adds `cells.stopped`, creates
 * `analyses` and fills it with each analyzed cell's final analysis (epoch = its epochs).
 */
function migrateV1(db: DatabaseSync): void {
  db.exec("begin immediate");
  try {
    const cols = db.prepare("pragma table_info(cells)").all().map((r) => String(r.name));
    if (!cols.includes("stopped")) db.exec("alter table cells add column stopped text");
    db.exec(STORE_SCHEMA);
    db.exec(
      `insert or ignore into analyses (cell_id, epoch, final, analysis, analysis_seconds)
       select cell_id, epochs, 1, analysis, analysis_seconds from cells where analysis is not null`,
    );
    db.prepare("insert or replace into meta (key, value) values ('schema', ?)").run(
      STORE_SCHEMA_VERSION,
    );
    db.exec("commit");
  } catch (e) {
    if (db.isTransaction) db.exec("rollback");
    throw e;
  }
}

const EPOCH_COLUMNS = [
  "cell_id",
  "epoch",
  "train_loss",
  "train_accuracy",
  "test_loss",
  "test_accuracy",
  "seconds",
  "nnz",
] as const satisfies readonly (keyof EpochRow)[];

function sqlError(path: string, e: unknown): FiligreeError {
  return new FiligreeError(`${path}: ${(e as Error).message.split("\n")[0]}`);
}

/** An open study store. */
export class StudyStore {
  readonly #has;

  private constructor(readonly db: DatabaseSync, readonly path: string) {
    this.#has = db.prepare("select 1 as x from cells where cell_id = ?");
  }

  #insert(table: string, cols: readonly string[]) {
    return this.db.prepare(
      `insert into ${table} (${cols.join(", ")}) values (${cols.map(() => "?").join(", ")})`,
    );
  }

  /**
   * Opens (creating when missing) a store for writing. An existing store must have the same
   * schema version and study name; `spec`, `command` and `commit` are updated to the latest.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { StudyStore } from "./store.ts";
   * const s = StudyStore.open(":memory:", { study: "x", commit: "unknown" });
   * assert.deepEqual(s.meta().study, "x");
   * s.close();
   * ```
   */
  static open(path: string, meta: StoreMeta): StudyStore {
    refuseWrite(path);
    if (path !== ":memory:") {
      const dir = path.replace(/[\\/][^\\/]*$/, "");
      if (dir !== path && dir) Deno.mkdirSync(dir, { recursive: true });
    }
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path);
      db.exec("pragma busy_timeout = 30000");
      db.exec("pragma journal_mode = wal");
      const old = tableNames(db).includes("meta")
        ? db.prepare("select value from meta where key = 'schema'").get()?.value
        : undefined;
      if (old === "filigree-store-1") migrateV1(db);
      else db.exec(STORE_SCHEMA);
    } catch (e) {
      throw sqlError(path, e);
    }
    const store = new StudyStore(db, path);
    try {
      store.#checkMeta(meta.study);
      const set = db.prepare("insert or replace into meta (key, value) values (?, ?)");
      db.exec("begin immediate");
      set.run("schema", STORE_SCHEMA_VERSION);
      set.run("study", meta.study);
      if (meta.spec !== undefined) set.run("spec", meta.spec);
      if (meta.command !== undefined) set.run("command", meta.command);
      if (meta.commit !== undefined) set.run("commit", meta.commit);
      if (meta.commit !== undefined || meta.command !== undefined) {
        // One entry per opening for writing (a sweep chunk): which code wrote the cells after it.
        const prev = db.prepare("select value from meta where key = 'history'").get()?.value;
        const history: StoreChunk[] = typeof prev === "string" ? JSON.parse(prev) : [];
        const done = db.prepare("select count(*) as n from cells").get()?.n;
        const last = history.at(-1);
        // A sweep's worker processes reopen the store with the same code and command: one chunk.
        if (last?.commit !== (meta.commit ?? "unknown") || last?.command !== (meta.command ?? "")) {
          history.push({
            at: new Date().toISOString(),
            commit: meta.commit ?? "unknown",
            command: meta.command ?? "",
            cellsBefore: Number(done ?? 0),
          });
        }
        set.run("history", JSON.stringify(history));
      }
      db.exec("commit");
    } catch (e) {
      if (db.isTransaction) db.exec("rollback");
      db.close();
      throw e instanceof FiligreeError ? e : sqlError(path, e);
    }
    return store;
  }

  /**
   * Opens an existing store read-only (for merging and reports).
   *
   * @example
   * ```ts ignore
   * const s = StudyStore.openReadOnly("runs/studies/smoke/store.sqlite");
   * console.log(s.cells().length);
   * ```
   */
  static openReadOnly(path: string): StudyStore {
    try {
      Deno.statSync(path);
    } catch {
      throw new FiligreeError(`${path}: no such store`);
    }
    let db: DatabaseSync;
    const file = readablePath(path); // a packed store (*.br): its unpacked temporary copy
    try {
      db = new DatabaseSync(file, { readOnly: true });
      db.exec("pragma busy_timeout = 30000");
    } catch (e) {
      throw sqlError(path, e);
    }
    let tables: string[];
    try {
      tables = tableNames(db);
    } catch (e) {
      db.close();
      throw sqlError(path, e); // e.g. "file is not a database"
    }
    if (!["meta", "cells", "epochs"].every((t) => tables.includes(t))) {
      db.close();
      throw new FiligreeError(`${path}: not a Filigree study store (tables meta/cells/epochs)`);
    }
    const s = new StudyStore(db, path);
    const m = s.meta();
    if (!(READABLE_STORE_VERSIONS as readonly string[]).includes(m.schema)) {
      db.close();
      throw new FiligreeError(
        `${path}: store schema "${m.schema ?? "none"}", this code reads ${
          READABLE_STORE_VERSIONS.map((v) => `"${v}"`).join(", ")
        }`,
      );
    }
    return s;
  }

  #checkMeta(study: string): void {
    const m = this.meta();
    if (m.schema !== undefined && m.schema !== STORE_SCHEMA_VERSION) {
      throw new FiligreeError(
        `${this.path}: store schema "${m.schema}", this code writes "${STORE_SCHEMA_VERSION}"`,
      );
    }
    if (m.study !== undefined && m.study !== study) {
      throw new FiligreeError(
        `${this.path}: store of study "${m.study}", not "${study}" (use another --store)`,
      );
    }
  }

  /** The meta table as a map. */
  meta(): Record<string, string> {
    const rows = this.db.prepare("select key, value from meta").all() as unknown as {
      key: string;
      value: string;
    }[];
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  /** Whether the cell is recorded. */
  isDone(cellId: string): boolean {
    return this.#has.get(cellId) !== undefined;
  }

  /** Ids of every recorded cell. */
  doneIds(): Set<string> {
    const rows = this.db.prepare("select cell_id from cells").all() as unknown as {
      cell_id: string;
    }[];
    return new Set(rows.map((r) => r.cell_id));
  }

  /**
   * Records a finished cell and its epochs in one transaction. Returns false (and writes
   * nothing) when the cell is already present.
   */
  recordCell(rec: CellRecord): boolean {
    return this.recordMany([rec]) === 1;
  }

  /** Records cells (each with its epochs) in one transaction, skipping present ones; returns the count added. */
  recordMany(recs: CellRecord[]): number {
    const db = this.db;
    let added = 0;
    try {
      const insertCell = this.#insert("cells", CELL_COLUMNS);
      const insertEpoch = this.#insert("epochs", EPOCH_COLUMNS);
      const insertAnalysis = this.#insert("analyses", ANALYSIS_COLUMNS);
      db.exec("begin immediate");
      for (const { cell, epochs, analyses } of recs) {
        if (this.#has.get(cell.cell_id) !== undefined) continue;
        insertCell.run(...CELL_COLUMNS.map((c) => (cell[c] ?? null) as SQLInputValue));
        for (const e of epochs) {
          if (e.cell_id !== cell.cell_id) {
            throw new FiligreeError(`epoch row of ${e.cell_id} given with cell ${cell.cell_id}`);
          }
          insertEpoch.run(...EPOCH_COLUMNS.map((c) => e[c] as SQLInputValue));
        }
        const rows = analyses ?? (cell.analysis === null ? [] : [{
          cell_id: cell.cell_id,
          epoch: cell.epochs,
          final: 1,
          analysis: cell.analysis,
          analysis_seconds: cell.analysis_seconds,
        }]);
        for (const a of rows) {
          if (a.cell_id !== cell.cell_id) {
            throw new FiligreeError(`analysis row of ${a.cell_id} given with cell ${cell.cell_id}`);
          }
          insertAnalysis.run(...ANALYSIS_COLUMNS.map((c) => (a[c] ?? null) as SQLInputValue));
        }
        added++;
      }
      db.exec("commit");
    } catch (e) {
      if (db.isTransaction) db.exec("rollback");
      throw e instanceof FiligreeError ? e : sqlError(this.path, e);
    }
    return added;
  }

  /** Every recorded cell, by cell_index then id. */
  cells(): CellRow[] {
    return this.db.prepare("select * from cells order by cell_index, cell_id")
      .all() as unknown as CellRow[];
  }

  /** One recorded cell, or undefined. */
  cell(cellId: string): CellRow | undefined {
    return this.db.prepare("select * from cells where cell_id = ?").get(cellId) as unknown as
      | CellRow
      | undefined;
  }

  /** The epoch rows of a cell, by epoch. */
  epochs(cellId: string): EpochRow[] {
    return this.db.prepare("select * from epochs where cell_id = ? order by epoch").all(
      cellId,
    ) as unknown as EpochRow[];
  }

  /**
   * The analyses of a cell by epoch (version 1 stores, and cells recorded without analysis rows:
   * the final one, from `cells.analysis`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { StudyStore } from "./store.ts";
   * const s = StudyStore.open(":memory:", { study: "x" });
   * assert.deepEqual(s.analyses("0123456789abcdef"), []);
   * s.close();
   * ```
   */
  analyses(cellId: string): AnalysisRow[] {
    if (tableNames(this.db).includes("analyses")) {
      const rows = this.db.prepare("select * from analyses where cell_id = ? order by epoch").all(
        cellId,
      ) as unknown as AnalysisRow[];
      if (rows.length) return rows;
    }
    const c = this.cell(cellId);
    if (!c || c.analysis === null) return [];
    return [{
      cell_id: cellId,
      epoch: c.epochs,
      final: 1,
      analysis: c.analysis,
      analysis_seconds: c.analysis_seconds,
    }];
  }

  /** Closes the database. */
  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}
