/**
 * Issue 14.4's link to the study framework: `analysis.agnostic: true` makes the sweep run the
 * weight-agnostic evaluation on each cell's final checkpoint, store it in the cell's analysis
 * summary, and the hypothesis engine tests trained-vs-random-mask retention on it.
 */
import assert from "node:assert/strict";
import { gpuTest } from "../../src/testing/mod.ts";
import { parseStudySpec } from "../../src/study/spec.ts";
import { type Analyzer, runStudy } from "../../src/study/sweep.ts";
import { StudyStore } from "../../src/study/store.ts";
import { cellsFromStore, testHypotheses } from "../../src/study/hypotheses.ts";
import { MASK_VARIANTS, WEIGHT_VARIANTS } from "../../src/analysis/agnostic.ts";
import { Probe } from "../../src/analysis/probe.ts";
import { agnosticOfRun } from "../../src/analysis/agnostic_run.ts";
import { backfillAgnostic } from "../../src/study/agnostic_backfill.ts";
import { StoreLock } from "../../src/study/lock.ts";
import type { AnalysisSummary } from "../../src/analysis/summary.ts";
import { stubAnalysis } from "./_fixtures.ts";

/** A fast stand-in for the importance analysis (this test is about the agnostic step). */
const fakeAnalyze: Analyzer = (dir, opts) => Promise.resolve(stubAnalysis(dir, opts));

gpuTest(
  "sweep: analysis.agnostic stores the weight-agnostic evaluation and hypotheses read it",
  async () => {
    const dir = await Deno.makeTempDir();
    const spec = await parseStudySpec({
      name: "agnostic-link",
      factors: { method: ["set", "static"], seed: [0, 1, 2] },
      train: {
        dataset: "synthetic",
        syntheticSamples: 600,
        syntheticFeatures: 20,
        syntheticClasses: 3,
        hidden: [24, 12],
        epochs: 2,
        batchSize: 50,
        epsilon: 4,
      },
      analysis: { evalSamples: 101, scores: ["magnitude"], agnostic: true, plots: false },
      hypotheses: [{
        id: "H9",
        statement: "trained topologies keep more accuracy with sign-only weights than random ones",
        source: "WANN (Gaier & Ha 2019)",
        metric: { statistic: "agnostic", weights: "signed", epoch: "final" },
        comparison: { factor: "mask", levels: ["trained", "degree-matched"] },
        by: ["method"],
        direction: "greater",
      }],
    });
    const calls: string[] = [];
    await runStudy(spec, {
      storePath: `${dir}/store.sqlite`,
      runsDir: `${dir}/cells`,
      quiet: true,
      commit: "test",
      analyze: fakeAnalyze,
      agnostic: async (runDir, opts) => {
        calls.push(runDir);
        // The default step, observed: it must see the study's analysis options.
        assert.equal(opts.agnostic, true);
        return (await import("../../src/analysis/agnostic_run.ts")).agnosticOfRun(runDir, opts);
      },
    });
    assert.equal(calls.length, 6);
    const store = StudyStore.openReadOnly(`${dir}/store.sqlite`);
    try {
      const cells = cellsFromStore(store);
      assert.equal(cells.length, 6);
      for (const r of store.cells()) {
        const fin = store.analyses(r.cell_id).find((a) => a.final === 1);
        const ag = (JSON.parse(fin!.analysis) as AnalysisSummary).agnostic;
        assert.ok(ag, "every cell's final analysis has its agnostic result");
        // The cell's summary column carries the same result.
        assert.deepEqual((JSON.parse(r.analysis!) as AnalysisSummary).agnostic, ag);
        // 101 stratified test samples, every (mask, weights) pair summarized.
        assert.equal(ag.samples, 101);
        assert.equal(ag.summary.length, MASK_VARIANTS.length * WEIGHT_VARIANTS.length);
        const row = (mask: string, weights: string) =>
          ag.summary.find((s) => s.mask === mask && s.weights === weights)!;
        // The trained topology with its trained values is the model itself.
        assert.ok(Math.abs(row("trained", "trained").meanAccuracy - ag.baseline.accuracy) < 1e-9);
        for (const s of ag.summary) {
          assert.ok(s.meanAccuracy >= 0 && s.meanAccuracy <= 1);
          assert.ok(s.bestAccuracy >= s.meanAccuracy - 1e-12);
        }
      }
      // The trained model's accuracy agrees with an independent evaluation of the checkpoint.
      const first = store.cells()[0];
      const seed = JSON.parse(first.config).seed as number;
      const probe = await Probe.fromRun(first.run_dir, { evalSamples: 101, seed });
      const base = await probe.evaluate();
      const stored = cellsFromStore(store)[0].analyses.final!.agnostic!;
      assert.ok(Math.abs(base.accuracy - stored.baseline.accuracy) < 1e-9);
      // The hypothesis engine reads it: one test per method, 3 seeds each.
      const rs = testHypotheses(cells, spec.hypotheses);
      assert.deepEqual(rs.map((r) => r.id), ["H9[method=set]", "H9[method=static]"]);
      for (const r of rs) {
        assert.equal(r.n, 3);
        assert.ok(Number.isFinite(r.effect));
        // Three pairs cannot reach p < 0.05 after Holm: never confirmed.
        assert.notEqual(r.verdict, "confirmed");
      }
    } finally {
      store.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest(
  "backfillAgnostic: recorded cells get the agnostic result without rerunning; resumable; lock-guarded",
  async () => {
    const dir = await Deno.makeTempDir();
    const storePath = `${dir}/store.sqlite`;
    try {
      const spec = await parseStudySpec({
        name: "backfill",
        factors: { seed: [0, 1] },
        train: {
          dataset: "synthetic",
          syntheticSamples: 400,
          syntheticFeatures: 16,
          syntheticClasses: 3,
          hidden: [16],
          epochs: 1,
          batchSize: 50,
          epsilon: 4,
        },
        // No `agnostic` here: the running-study case.
        analysis: { evalSamples: 64, scores: ["magnitude"], plots: false },
        hypotheses: [{
          id: "H9",
          statement: "sign-only weights keep more accuracy on the trained topology",
          source: "test",
          metric: { statistic: "agnostic", weights: "signed", epoch: "final" },
          comparison: { factor: "mask", levels: ["trained", "degree-matched"] },
          direction: "greater",
        }],
      });
      await runStudy(spec, {
        storePath,
        runsDir: `${dir}/cells`,
        quiet: true,
        commit: "test",
        analyze: fakeAnalyze,
      });
      const before = StudyStore.openReadOnly(storePath);
      const ids = before.cells().map((r) => r.cell_id);
      assert.ok(cellsFromStore(before).every((c) => !c.analyses.final?.agnostic));
      const [none] = testHypotheses(cellsFromStore(before), spec.hypotheses);
      assert.equal(none.n, 0);
      assert.match(none.reason, /no agnostic results in the store/);
      before.close();

      // A sweep holding the lock keeps the backfill out.
      const lock = await StoreLock.acquire(storePath);
      await assert.rejects(() => backfillAgnostic(storePath), /in use by another sweep/);
      lock.release();

      // One cell, then the rest: resumable.
      const r1 = await backfillAgnostic(storePath, { maxCells: 1 });
      assert.deepEqual(r1.added, ids.slice(0, 1));
      const r2 = await backfillAgnostic(storePath);
      assert.deepEqual(r2.added, ids.slice(1));
      assert.equal(r2.skipped, 1);
      const r3 = await backfillAgnostic(storePath);
      assert.deepEqual([r3.added.length, r3.skipped], [0, 2]);

      const after = StudyStore.openReadOnly(storePath);
      try {
        assert.deepEqual(after.cells().map((r) => r.cell_id), ids, "no cell rerun or renamed");
        for (const row of after.cells()) {
          const fin = after.analyses(row.cell_id).find((a) => a.final === 1)!;
          const ag = (JSON.parse(fin.analysis) as AnalysisSummary).agnostic!;
          assert.deepEqual((JSON.parse(row.analysis!) as AnalysisSummary).agnostic, ag);
          // The same numbers as the step run directly with the spec's analysis options.
          const direct = await agnosticOfRun(row.run_dir, spec.cells[0].analysis!);
          assert.deepEqual(ag.summary, direct.summary);
          assert.equal(ag.samples, 64);
        }
        const [r] = testHypotheses(cellsFromStore(after), spec.hypotheses);
        assert.equal(r.n, 2);
        assert.ok(Number.isFinite(r.effect));
      } finally {
        after.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
