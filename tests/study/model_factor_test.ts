/**
 * `model` as a study factor (issue 13, item 6): a study {model: [mlp, cnn, lstm]} trains every
 * cell, analyzes it with the real importance analysis (ablation + scores), records it with the
 * model's own weight footprint, and a hypothesis compares levels of `model` (H8's form: the
 * first weight layer's ρ(|w|, |ΔL|), shared conv / recurrent weights against the MLP's fc1).
 */
import assert from "node:assert/strict";
import { gpuTest } from "../../src/testing/mod.ts";
import { parseStudySpec } from "../../src/study/spec.ts";
import { planStudy, runStudy } from "../../src/study/sweep.ts";
import { StudyStore } from "../../src/study/store.ts";
import { cellsFromStore, metricValue, testHypotheses } from "../../src/study/hypotheses.ts";
import { writeReport } from "../../src/study/report.ts";
import { ablateRun } from "../../src/analysis/run.ts";
import type { AnalysisSummary } from "../../src/analysis/summary.ts";

const train = {
  dataset: "mnist",
  trainSubset: 300,
  testSubset: 100,
  hidden: [8],
  convChannels: [3, 4],
  kernelSize: 3,
  lstmHidden: 6,
  method: "set",
  density: 0.5,
  epochs: 1,
  batchSize: 50,
};

const h8 = (id: string, level: string) => ({
  id,
  statement: `rho(|w|, |dL|) of the first weight layer is lower in the ${level} than in the MLP`,
  source: "project (H8)",
  metric: { statistic: "spearman", score: "magnitude", target: "absdloss", layer: "first" },
  comparison: { factor: "model", levels: [level, "mlp"] },
  direction: "less",
});

Deno.test("study spec: model is a factor; a model that does not fit its data fails up front", async () => {
  const spec = await parseStudySpec({
    name: "m",
    factors: { model: ["mlp", "cnn", "lstm"] },
    train,
    analysis: false,
  });
  assert.deepEqual(spec.cells.map((c) => c.config.model), ["mlp", "cnn", "lstm"]);
  // Keys the MLP ignores are still part of every cell's config (and id).
  assert.ok(spec.cells.every((c) => c.config.lstmHidden === 6 && c.config.kernelSize === 3));
  await assert.rejects(
    () =>
      parseStudySpec({
        factors: { model: ["mlp", "cnn"] },
        train: { dataset: "synthetic", epochs: 1 },
        analysis: false,
      }),
    /cell 1 \(model=cnn\): model "cnn" needs an image dataset/,
  );
});

gpuTest(
  "sweep: a {model: [mlp, cnn, lstm]} study trains, analyzes, records and compares models",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "filigree-model-factor-" });
    try {
      const spec = await parseStudySpec({
        name: "model-factor",
        factors: { model: ["mlp", "cnn", "lstm"] },
        train,
        analysis: { evalSamples: 40, maxWeights: 30, scores: ["magnitude", "snip"], plots: false },
        hypotheses: [
          h8("H8-cnn", "cnn"),
          h8("H8-lstm", "lstm"),
          {
            id: "acc",
            statement: "the CNN is more accurate than the MLP",
            source: "test",
            metric: { statistic: "testAccuracy" },
            comparison: { factor: "model", levels: ["cnn", "mlp"] },
            direction: "greater",
          },
        ],
      });
      const storePath = `${dir}/store.sqlite`;
      // The dry-run estimate times each model on its own (they train at very different speeds).
      const plan = await planStudy(spec, { storePath, measureSteps: 2 });
      for (const m of ["cell 0 (model=mlp)", "cell 1 (model=cnn)", "cell 2 (model=lstm)"]) {
        assert.ok(plan.estimate.how.includes(m), `${m} not in: ${plan.estimate.how}`);
      }
      const sweep = (maxCells?: number) =>
        runStudy(spec, {
          storePath,
          runsDir: `${dir}/cells`,
          quiet: true,
          commit: "test",
          analyze: ablateRun,
          maxCells,
        });
      const r1 = await sweep(2);
      // With MLP and CNN cells in the store, the rest is charged at each model's measured speed.
      const again = await planStudy(spec, { storePath });
      assert.match(again.estimate.how, /each at its model's measured speed: mlp \d+, cnn \d+/);
      const r = await sweep();
      assert.deepEqual([...r1.failed, ...r.failed], []);
      assert.equal(r1.recorded.length + r.recorded.length, 3);

      const store = StudyStore.openReadOnly(storePath);
      let cells;
      try {
        const rows = store.cells();
        const byModel = new Map(rows.map((row) => [JSON.parse(row.factors).model as string, row]));
        // Every cell analyzed, each with its own model's weight layers.
        const layers = (m: string) =>
          (JSON.parse(byModel.get(m)!.analysis!) as AnalysisSummary).layers.map((l) => l.name);
        assert.deepEqual(layers("mlp"), ["fc1", "out"]);
        assert.deepEqual(layers("cnn"), ["conv1", "conv2", "fc1", "out"]);
        assert.deepEqual(layers("lstm"), ["lstm.wx", "lstm.wh", "fc1", "out"]);
        // Dense-equivalent weights of each model, by hand: MLP 784-8-10; CNN conv 1·3·3→3,
        // 3·3·3→4, head 4·7·7→8→10; LSTM W_x 28→24, W_h 6→24, head 6→8→10.
        assert.equal(byModel.get("mlp")!.dense_weights, 784 * 8 + 8 * 10);
        assert.equal(byModel.get("cnn")!.dense_weights, 9 * 3 + 27 * 4 + 196 * 8 + 8 * 10);
        assert.equal(byModel.get("lstm")!.dense_weights, 28 * 24 + 6 * 24 + 6 * 8 + 8 * 10);
        for (const row of rows) {
          assert.ok(row.nnz > 0 && row.nnz < row.dense_weights, `${row.factors}: nnz ${row.nnz}`);
          assert.ok(row.param_bytes > 0, `${row.factors}: param_bytes ${row.param_bytes}`);
        }
        cells = cellsFromStore(store);
      } finally {
        store.close();
      }

      // The hypothesis engine pairs the model levels (one seed: one pair each).
      const res = testHypotheses(cells, spec.hypotheses);
      assert.deepEqual(res.map((x) => x.id), ["H8-cnn", "H8-lstm", "acc"]);
      const cell = (m: string) => cells.find((c) => c.factors.model === m)!;
      for (const [x, level] of [[res[0], "cnn"], [res[1], "lstm"]] as const) {
        assert.equal(x.n, 1, x.id);
        assert.equal(x.comparisonText, `model: ${level} − mlp`);
        const m = spec.hypotheses[0].metric;
        const a = metricValue(cell(level), m, "first", "final")!;
        const b = metricValue(cell("mlp"), m, "first", "final")!;
        assert.ok(Number.isFinite(a) && Number.isFinite(b), `${x.id}: ${a} ${b}`);
        assert.equal(x.meanA, a);
        assert.equal(x.meanB, b);
        assert.equal(x.verdict, "inconclusive"); // one pair: too few for a verdict
      }
      assert.equal(res[2].meanA, cell("cnn").accuracy.final);
      assert.equal(res[2].meanB, cell("mlp").accuracy.final);

      // The report names the factor and its levels, and tests the spec's hypotheses.
      const out = await writeReport(storePath, `${dir}/report`, { noPng: true });
      const md = await Deno.readTextFile(out.md);
      for (const s of ["model", "cnn", "lstm", "H8-cnn", "H8-lstm"]) assert.ok(md.includes(s), s);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
