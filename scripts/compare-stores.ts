/**
 * Compares the results of two study stores (e.g. a merged sharded store and an unsharded one):
 * the same cell ids, and for every cell the same factors, config, final metrics, nnz, sizes,
 * per-epoch losses/accuracies/nnz and analysis, exactly. Timings, paths and dates are left out
 * (`train_seconds`, `step_ms`, `analysis_seconds`, `finished_at`, `run_dir`, `study`, the epochs'
 * `seconds`, the analysis's `run`, `seconds` and `ablationsPerSecond`). Exits 0 when equal, 1 with
 * the first differences on stderr, 2 on bad arguments.
 *
 * Usage: deno run --allow-read --allow-env scripts/compare-stores.ts A.sqlite B.sqlite
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { readablePath } from "../src/study/packed.ts";

const CELL_SKIP = new Set([
  "train_seconds",
  "step_ms",
  "analysis_seconds",
  "finished_at",
  "run_dir",
  "study",
]);
const ANALYSIS_SKIP = new Set(["run", "seconds", "ablationsPerSecond"]);

/** Cell id -> a canonical JSON of what must agree. */
export function storeResults(path: string): Map<string, string> {
  const db = new DatabaseSync(readablePath(path), { readOnly: true });
  try {
    const out = new Map<string, string>();
    const epochs = db.prepare(
      "select epoch, train_loss, train_accuracy, test_loss, test_accuracy, nnz from epochs " +
        "where cell_id = ? order by epoch",
    );
    for (const row of db.prepare("select * from cells order by cell_id").all()) {
      const r: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(row)) {
        if (CELL_SKIP.has(k)) continue;
        if (k === "analysis" && typeof v === "string") {
          const a = JSON.parse(v) as Record<string, unknown>;
          for (const s of ANALYSIS_SKIP) delete a[s];
          r[k] = a;
        } else r[k] = v;
      }
      r.epochRows = epochs.all(String(row.cell_id));
      out.set(String(row.cell_id), JSON.stringify(r));
    }
    return out;
  } finally {
    db.close();
  }
}

/** The differences between two result maps (empty when equal). */
export function diffResults(a: Map<string, string>, b: Map<string, string>): string[] {
  const d: string[] = [];
  for (const id of a.keys()) if (!b.has(id)) d.push(`cell ${id} only in the first store`);
  for (const id of b.keys()) if (!a.has(id)) d.push(`cell ${id} only in the second store`);
  for (const [id, x] of a) {
    const y = b.get(id);
    if (y === undefined || x === y) continue;
    const ox = JSON.parse(x), oy = JSON.parse(y);
    const keys = Object.keys(ox).filter((k) => JSON.stringify(ox[k]) !== JSON.stringify(oy[k]));
    d.push(`cell ${id} differs in ${keys.join(", ")}`);
  }
  return d;
}

if (import.meta.main) {
  if (Deno.args.length !== 2) {
    console.error("usage: compare-stores.ts A.sqlite B.sqlite");
    Deno.exit(2);
  }
  const [pa, pb] = Deno.args;
  let a: Map<string, string>, b: Map<string, string>;
  try {
    a = storeResults(pa);
    b = storeResults(pb);
  } catch (e) {
    console.error(`compare-stores: ${(e as Error).message.split("\n")[0]}`);
    Deno.exit(2);
  }
  const d = diffResults(a, b);
  if (a.size === 0) d.unshift(`${pa} has no cells`);
  if (d.length) {
    console.error(`compare-stores: ${pa} and ${pb} differ:\n  ${d.slice(0, 20).join("\n  ")}`);
    Deno.exit(1);
  }
  console.log(`compare-stores: ${a.size} cells, identical results (timings and paths ignored)`);
}
