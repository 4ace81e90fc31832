/**
 * A synthetic study store large enough to stress the report's layout: 3 activations × 4 norms ×
 * 2 methods × 2 seeds (48 cells), long factor labels, every score in the agreement chart, three
 * layers with magnitude histograms, global and per-layer curves, 3 epochs per cell, and a merged
 * store's two commands. Written through StudyStore, so it follows the current store schema.
 * Used by tests/report/browser_test.ts (not a test file itself).
 * @module
 */
import { SCORE_NAMES } from "../../src/analysis/summary.ts";
import { StudyStore } from "../../src/study/store.ts";
import type { CellRecord } from "../../src/study/store.ts";
import type { CellRow } from "../../src/study/schema.ts";
import { Rng } from "../../src/testing/mod.ts";

const ACTS = ["relu", "tanh", "leaky_relu"];
const NORMS = ["none", "batch", "layer", "rms"];
const METHODS = ["set", "dense"];
const SEEDS = [0, 1];
/** Commands recorded in the store's meta (as a merge of two shards leaves them). */
export const SYNTHETIC_COMMANDS = [
  "filigree sweep studies/x.yaml --shard 0/2",
  "filigree sweep studies/x.yaml --shard 1/2",
];

function analysis(rng: Rng, seed: number): unknown {
  const edges = Array.from({ length: 21 }, (_, i) => -4 + (i * 3.5) / 20);
  const layer = (name: string, shift: number) => ({
    name,
    nIn: 20,
    nOut: 10,
    nnz: 150,
    ablated: 100,
    magnitudeHistogram: {
      log10Edges: edges.map((e) => e + shift),
      counts: edges.slice(1).map((_, i) => Math.round(100 * Math.exp(-((i - 12) ** 2) / 8))),
    },
    helpful: 0.1 + 0.05 * rng.next(),
    fanInSpearman: 0.1,
    fanOutSpearman: 0.05,
  });
  const est = (v: number) => ({ value: v, ci: [v - 0.05, v + 0.05] });
  const fr = [0.1, 0.3, 0.5, 0.7, 0.9];
  const curve = (score: string, scope: string, drop: number) => ({
    score,
    scope,
    finetuneSteps: 0,
    points: fr.map((f) => ({ fraction: f, accuracy: 0.95 - drop * f ** 2, loss: 0.2 + f })),
  });
  return {
    format: "filigree-analysis-1",
    run: "runs/x",
    seed,
    evalSet: { split: "test", samples: 500, seed: 1 },
    baseline: { loss: 0.2, accuracy: 0.95 },
    scores: [...SCORE_NAMES],
    layers: [layer("fc1", 0), layer("fc2", 0.3), layer("out", 0.5)],
    helpful: 0.12,
    agreement: SCORE_NAMES.map((score) => ({
      score,
      scope: "all",
      n: 300,
      spearman: est(0.8 * rng.next()),
      kendall: est(0.5 * rng.next()),
      precisionLeast10: 0.3,
      precisionMost10: 0.4,
    })),
    curves: ["global", "fc1", "fc2", "out"].flatMap((scope) => [
      curve("magnitude", scope, 0.3),
      curve("random", scope, 0.8),
      curve("magnitude-desc", scope, 0.9),
    ]),
    seconds: { scores: 1, ablation: 2 },
    ablationsPerSecond: 1000,
  };
}

/** Writes the store at `path` (must not exist) and returns its number of cells. */
export function writeSyntheticStore(path: string): number {
  const rng = new Rng(20261205);
  const recs: CellRecord[] = [];
  let idx = 0;
  for (const method of METHODS) {
    for (const activation of ACTS) {
      for (const norm of NORMS) {
        for (const seed of SEEDS) {
          const id = `cell${String(idx).padStart(12, "0")}`;
          const acc = 0.95 + 0.01 * rng.next();
          const dense = 784 * 100 + 100 * 10;
          const nnz = method === "dense" ? dense : Math.round(dense * 0.1);
          const cell: CellRow = {
            cell_id: id,
            study: "synthetic-layout",
            cell_index: idx,
            factors: JSON.stringify({ activation, norm, method, seed }),
            config: "{}",
            run_dir: `runs/${id}`,
            test_accuracy: acc,
            test_loss: 0.1,
            train_accuracy: acc + 0.01,
            train_loss: 0.08,
            epochs: 2,
            train_seconds: 10,
            step_ms: method === "dense" ? 2 : 1,
            nnz,
            dense_weights: dense,
            param_bytes: method === "dense" ? dense * 4 : nnz * 8,
            analysis: JSON.stringify(analysis(rng, seed)),
            analysis_seconds: 5,
            adapter: "llvmpipe (test)",
            filigree_version: "0.1.0",
            finished_at: `2026-01-01T00:00:${String(idx % 60).padStart(2, "0")}Z`,
          };
          const epochs = [1, 2].map((epoch) => ({
            cell_id: id,
            epoch,
            train_loss: 0.5 / epoch,
            train_accuracy: 0.8 + epoch * 0.05,
            test_loss: 0.5 / epoch,
            test_accuracy: acc - 0.1 / epoch,
            seconds: "{}",
            nnz: "[]",
          }));
          recs.push({ cell, epochs });
          idx++;
        }
      }
    }
  }
  const store = StudyStore.open(path, {
    study: "synthetic-layout",
    command: SYNTHETIC_COMMANDS.join("\n"),
    commit: "unknown",
  });
  try {
    return store.recordMany(recs);
  } finally {
    store.close();
  }
}
