/**
 * The results store schema (SQLite via `node:sqlite`, WAL). One row per finished cell, written
 * in one transaction together with its per-epoch rows; readers (report, merge) use only these
 * tables.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { STORE_SCHEMA } from "./schema.ts";
 * const db = new DatabaseSync(":memory:");
 * db.exec(STORE_SCHEMA);
 * assert.deepEqual({ ...db.prepare("select count(*) as n from cells").get() }, { n: 0 });
 * ```
 * @module
 */

/**
 * Version of the store layout (table `meta`, key `schema`). Version 2 adds the `analyses` table
 * (one analysis per cell and analyzed epoch) and the `cells.stopped` column; a version-1 store
 * is read as is (its `cells.analysis` is the final epoch's analysis) and is migrated in place
 * when opened for writing (src/study/store.ts).
 */
export const STORE_SCHEMA_VERSION = "filigree-store-2";

/** Store versions this code reads. */
export const READABLE_STORE_VERSIONS = ["filigree-store-1", STORE_SCHEMA_VERSION] as const;

/**
 * DDL of the version-2 `analyses` table: one analysis per (cell, analyzed epoch); the final
 * epoch's row repeats `cells.analysis`. Idempotent.
 */
export const ANALYSES_SCHEMA = `
create table if not exists analyses (
  cell_id text not null references cells(cell_id),
  epoch integer not null,          -- the checkpoint analyzed was taken after this epoch
  final integer not null,          -- 1 for the run's last checkpoint
  analysis text not null,          -- JSON AnalysisSummary
  analysis_seconds real,
  primary key (cell_id, epoch)
);
`;

/** DDL of the store (version 2, the `analyses` table included); idempotent. */
export const STORE_SCHEMA = `
create table if not exists meta (key text primary key, value text not null);
create table if not exists cells (
  cell_id text primary key,        -- stable hash of the cell's full training+analysis config
  study text not null,             -- study name
  cell_index integer not null,     -- position in the study's cell list
  factors text not null,           -- JSON: {activation, norm, method, seed, ...} this cell's factor values
  config text not null,            -- JSON: the full TrainConfig
  run_dir text not null,           -- run directory (config.json, metrics.jsonl, checkpoint, analysis/)
  test_accuracy real not null,     -- final epoch
  test_loss real not null,
  train_accuracy real not null,
  train_loss real not null,
  epochs integer not null,
  train_seconds real not null,     -- wall time of training
  step_ms real,                    -- median ms per training step (forward+backward+optimizer)
  nnz integer not null,            -- total nonzero weights at the end
  dense_weights integer not null,  -- weights the dense equivalent would have
  param_bytes integer not null,    -- bytes of weights + indices actually stored on the GPU
  analysis text,                   -- JSON AnalysisSummary (src/analysis/summary.ts), null if not analyzed
  analysis_seconds real,
  adapter text not null,           -- adapter description
  filigree_version text not null,
  finished_at text not null,       -- ISO time
  stopped text                     -- the stop rule's criterion when one ended training early (v2)
);
create table if not exists epochs (
  cell_id text not null references cells(cell_id),
  epoch integer not null,
  train_loss real, train_accuracy real, test_loss real, test_accuracy real,
  seconds text,                    -- JSON {forward, backward, optimizer, topology, total}
  nnz text,                        -- JSON [per weight layer]
  primary key (cell_id, epoch)
);
${ANALYSES_SCHEMA}`;

/** A row of `cells` as read back (JSON columns still strings). */
export interface CellRow {
  cell_id: string;
  study: string;
  cell_index: number;
  factors: string;
  config: string;
  run_dir: string;
  test_accuracy: number;
  test_loss: number;
  train_accuracy: number;
  train_loss: number;
  epochs: number;
  train_seconds: number;
  step_ms: number | null;
  nnz: number;
  dense_weights: number;
  param_bytes: number;
  analysis: string | null;
  analysis_seconds: number | null;
  adapter: string;
  filigree_version: string;
  finished_at: string;
  /** The stop rule's criterion (v2; null or absent when training ran to its epochs). */
  stopped?: string | null;
}

/** A row of `analyses` (v2). */
export interface AnalysisRow {
  cell_id: string;
  epoch: number;
  /** 1 for the run's last checkpoint, else 0. */
  final: number;
  analysis: string;
  analysis_seconds: number | null;
}
