import assert from "node:assert/strict";
import { gpuTest } from "../../src/testing/mod.ts";
import { parseStudySpec } from "../../src/study/spec.ts";
import { type Analyzer, planStudy, runStudy, type SweepEvent } from "../../src/study/sweep.ts";
import { StudyStore } from "../../src/study/store.ts";
import { mergeStores } from "../../src/study/merge.ts";
import { parseShard } from "../../src/study/shard.ts";
import { trainRun } from "../../src/train/run.ts";
import type { EpochMetrics } from "../../src/train/trainer.ts";
import { stubAnalysis } from "./_fixtures.ts";

const train = {
  dataset: "synthetic",
  syntheticSamples: 400,
  syntheticFeatures: 24,
  syntheticClasses: 3,
  hidden: [16, 8],
  epochs: 2,
  batchSize: 50,
  method: "set",
  epsilon: 4,
  updateInterval: 3,
};

/** A fake analysis step that records its calls and can fail on demand. */
function fakeAnalyzer(failOn?: Set<string>) {
  const calls: string[] = [];
  const analyze: Analyzer = (dir, opts) => {
    calls.push(dir);
    const id = dir.split("/").pop()!;
    if (failOn?.delete(id)) return Promise.reject(new Error("simulated kill during analysis"));
    return Promise.resolve(stubAnalysis(dir, opts));
  };
  return { calls, analyze };
}

const strip = (m: EpochMetrics) => ({ ...m, seconds: 0, samplesPerSecond: 0 });

gpuTest(
  "sweep: killed mid-training and mid-analysis, rerun finishes every cell exactly once",
  async () => {
    const dir = await Deno.makeTempDir();
    const spec = await parseStudySpec({
      name: "resume",
      factors: { activation: ["relu", "tanh"], seed: [0, 1] },
      train,
      analysis: { evalSamples: 50 },
    });
    const opts = {
      storePath: `${dir}/store.sqlite`,
      runsDir: `${dir}/cells`,
      quiet: true,
      commit: "test",
    };
    const ids = spec.cells.map((c) => c.id);

    // Run 1: killed after cell 2's first epoch (its checkpoint is on disk).
    const a1 = fakeAnalyzer();
    await assert.rejects(
      runStudy(spec, {
        ...opts,
        analyze: a1.analyze,
        onProgress: (e) => {
          if (e.type === "epoch" && e.cell.index === 2 && e.epoch === 1) {
            throw new Error("simulated kill");
          }
        },
      }),
      /simulated kill/,
    );
    assert.deepEqual(a1.calls, [`${dir}/cells/${ids[0]}`, `${dir}/cells/${ids[1]}`]);
    let store = StudyStore.openReadOnly(opts.storePath);
    assert.deepEqual(store.cells().map((r) => r.cell_id), ids.slice(0, 2));
    const finished = store.cells().map((r) => r.finished_at);
    assert.equal(store.meta().commit, "test");
    assert.equal(JSON.parse(store.meta().spec).name, "resume");
    store.close();

    // Run 2: cell 2 resumes at epoch 2; killed while analyzing cell 3.
    const a2 = fakeAnalyzer(new Set([ids[3]]));
    const ev2: SweepEvent[] = [];
    await assert.rejects(
      runStudy(spec, { ...opts, analyze: a2.analyze, onProgress: (e) => void ev2.push(e) }),
      /simulated kill during analysis/,
    );
    const kinds = (ev: SweepEvent[]) =>
      ev.filter((e) => e.type !== "epoch").map((e) =>
        `${e.type}${"cell" in e ? e.cell.index : ""}${e.type === "train" ? `@${e.fromEpoch}` : ""}`
      );
    assert.deepEqual(kinds(ev2), [
      "start",
      "skip0",
      "skip1",
      "train2@1",
      "analyze2",
      "done2",
      "train3@0",
      "analyze3",
    ]);
    assert.equal(ev2[0].type === "start" && ev2[0].pending, 2);

    // Run 3: cell 3's training is complete: analyzed and recorded without retraining.
    const a3 = fakeAnalyzer();
    const ev3: SweepEvent[] = [];
    const r3 = await runStudy(spec, {
      ...opts,
      analyze: a3.analyze,
      onProgress: (e) => void ev3.push(e),
    });
    assert.deepEqual(kinds(ev3), [
      "start",
      "skip0",
      "skip1",
      "skip2",
      "trained3",
      "analyze3",
      "done3",
    ]);
    assert.deepEqual(r3, { total: 4, shardCells: 4, skipped: 3, recorded: [ids[3]], failed: [] });

    store = StudyStore.openReadOnly(opts.storePath);
    const rows = store.cells();
    assert.deepEqual(rows.map((r) => r.cell_id), ids, "every cell exactly once, in order");
    assert.deepEqual(rows.slice(0, 2).map((r) => r.finished_at), finished, "cells 0-1 rerun");
    assert.equal(
      store.db.prepare("select count(*) as n from epochs").get()?.n,
      2 * spec.cells.length,
    );

    // The interrupted cell equals an uninterrupted run of the same config.
    const ref = await trainRun(spec.cells[2].config, `${dir}/ref`, { quiet: true });
    const resumed = (await Deno.readTextFile(`${dir}/cells/${ids[2]}/metrics.jsonl`)).trim()
      .split("\n").map((l) => JSON.parse(l) as EpochMetrics);
    assert.deepEqual(resumed.map(strip), ref.map(strip), "resumed cell differs");
    const ep = store.epochs(ids[2]);
    assert.deepEqual(
      ep.map((e) => [e.epoch, e.train_loss, e.test_loss, e.test_accuracy, JSON.parse(e.nnz!)]),
      ref.map((m) => [m.epoch, m.trainLoss, m.testLoss, m.testAccuracy, m.nnz]),
    );
    const row = rows[2];
    const last = ref[ref.length - 1];
    assert.equal(row.test_accuracy, last.testAccuracy);
    assert.equal(row.train_loss, last.trainLoss);
    assert.equal(row.epochs, 2);
    assert.equal(row.nnz, last.nnz.reduce((a, b) => a + b));
    const widths = [24, 16, 8, 3];
    assert.equal(row.dense_weights, 24 * 16 + 16 * 8 + 8 * 3);
    // Two CSR hidden layers (8 bytes per nonzero + row pointers) and a dense output layer.
    assert.equal(
      row.param_bytes,
      last.nnz[0] * 8 + (widths[0] + 1) * 4 + last.nnz[1] * 8 + (widths[1] + 1) * 4 + 8 * 3 * 4,
    );
    assert.ok(row.train_seconds > 0 && row.step_ms !== null && row.step_ms > 0);
    assert.ok(row.adapter.length > 0);
    assert.deepEqual(JSON.parse(row.factors), { activation: "tanh", seed: 0 });
    assert.equal(JSON.parse(row.analysis!).run, `${dir}/cells/${ids[2]}`);
    assert.equal(JSON.parse(row.analysis!).evalSet.samples, 50);
    assert.ok(row.analysis_seconds !== null);
    store.close();

    // Run 4: nothing left; the analysis is not called again.
    const a4 = fakeAnalyzer();
    const r4 = await runStudy(spec, { ...opts, analyze: a4.analyze });
    assert.deepEqual(r4.recorded, []);
    assert.equal(r4.skipped, 4);
    assert.deepEqual(a4.calls, []);
    await Deno.remove(dir, { recursive: true });
  },
);

gpuTest("sweep: shard stores merged equal an unsharded run; dry-run plans", async () => {
  const dir = await Deno.makeTempDir();
  const spec = await parseStudySpec({
    name: "shards",
    factors: { activation: ["relu", "sigmoid", "elu"] },
    train: { ...train, epochs: 1 },
    analysis: false,
  });
  const runsDir = `${dir}/cells`;
  const fresh = await planStudy(spec, { storePath: `${dir}/none.sqlite`, measureSteps: 5 });
  assert.equal(fresh.pending.length, 3);
  assert.match(fresh.estimate.how, /timed 5 training steps of cell 0/);
  assert.ok(fresh.estimate.seconds > 0 && Number.isFinite(fresh.estimate.seconds));

  const shardStores = [0, 1].map((i) => `${dir}/store-${i}-of-2.sqlite`);
  for (let i = 0; i < 2; i++) {
    const r = await runStudy(spec, {
      storePath: shardStores[i],
      runsDir,
      shard: parseShard(`${i}/2`),
      quiet: true,
      commit: "t",
    });
    assert.equal(r.recorded.length, i === 0 ? 2 : 1);
  }
  const fromStore = await planStudy(spec, { storePath: shardStores[0] });
  assert.deepEqual(fromStore.pending.map((c) => c.index), [1]);
  assert.match(fromStore.estimate.how, /2 cells in the store trained at \d+ samples\/s/);
  assert.ok(fromStore.estimate.seconds > 0);

  // The unsharded run reuses the finished run dirs (no retraining) and records every cell.
  const ev: string[] = [];
  await runStudy(spec, {
    storePath: `${dir}/whole.sqlite`,
    runsDir,
    quiet: true,
    commit: "t",
    onProgress: (e) => void ev.push(e.type),
  });
  assert.equal(ev.filter((t) => t === "train").length, 0);
  assert.equal(ev.filter((t) => t === "trained").length, 3);
  assert.equal((await planStudy(spec, { storePath: `${dir}/whole.sqlite` })).pending.length, 0);

  const merged = `${dir}/merged.sqlite`;
  assert.equal(mergeStores(merged, shardStores).added, 3);
  assert.equal(mergeStores(merged, shardStores).added, 0);
  const pick = (p: string) => {
    const s = StudyStore.openReadOnly(p);
    const out = s.cells().map((r) => ({
      id: r.cell_id,
      index: r.cell_index,
      acc: r.test_accuracy,
      loss: r.train_loss,
      nnz: r.nnz,
      epochs: s.epochs(r.cell_id).map((e) => [e.epoch, e.test_loss, e.nnz]),
    }));
    s.close();
    return out;
  };
  const whole = pick(`${dir}/whole.sqlite`);
  assert.deepEqual(whole.map((c) => c.id), spec.cells.map((c) => c.id));
  assert.deepEqual(pick(merged), whole);
  await Deno.remove(dir, { recursive: true });
});

gpuTest("sweep: a time budget stops between cells and the next sweep goes on", async () => {
  const dir = await Deno.makeTempDir();
  const spec = await parseStudySpec({
    name: "budget",
    factors: { seed: [0, 1, 2] },
    train: { ...train, epochs: 1 },
    analysis: false,
  });
  const opts = { storePath: `${dir}/s.sqlite`, runsDir: `${dir}/cells`, quiet: true, commit: "t" };
  // A deadline already past: nothing starts.
  const none = await runStudy(spec, { ...opts, deadline: Date.now() - 1 });
  assert.deepEqual([none.recorded.length, none.outOfTime], [0, true]);
  const one = await runStudy(spec, { ...opts, deadline: Date.now() + 600_000, maxCells: 1 });
  assert.deepEqual([one.recorded.length, one.outOfTime], [1, undefined]);
  const store = StudyStore.openReadOnly(opts.storePath);
  const cellMs = store.cells()[0].train_seconds * 1000;
  store.close();
  // The stored cell's time predicts the next cell would end after a deadline 90 % of it away.
  const tight = await runStudy(spec, { ...opts, deadline: Date.now() + 0.9 * cellMs });
  assert.deepEqual([tight.recorded.length, tight.outOfTime], [0, true]);
  // Without a budget the rest run; nothing is recorded twice.
  const rest = await runStudy(spec, opts);
  assert.deepEqual([rest.recorded.length, rest.skipped, rest.outOfTime], [2, 1, undefined]);
});
