import assert from "node:assert/strict";
import { StudyStore } from "../../src/study/store.ts";
import type { AnalysisRow, CellRow } from "../../src/study/schema.ts";
import {
  cellsFromStore,
  classify,
  describeResult,
  type HypothesisResult,
  testHypotheses,
} from "../../src/study/hypotheses.ts";
import { parseStudySpec } from "../../src/study/spec.ts";
import { DataRng } from "../../src/data/random.ts";

/**
 * A synthetic store: activation {relu, tanh} x norm {none, batch} x 6 seeds, each cell analyzed
 * at epoch 3 and at its final epoch 10. Per layer (fc1, fc2, out), ρ(magnitude, |ΔL|) is
 * 0.3 + 0.2·[tanh] − 0.15·[batch] + 0.01·[final] + noise(sd 0.01), ρ(wanda) = ρ(magnitude) +
 * 0.08·[fc1] at unit input; the drop precision is 0.45 + noise. So:
 * - "tanh beats relu by at least 0.05" is TRUE (+0.2);
 * - "batch norm raises ρ" is FALSE (−0.15);
 * - "training from epoch 3 to the end raises ρ" is TOO SMALL to matter (+0.01 < SESOI 0.05).
 */
function syntheticStore(): StudyStore {
  const store = StudyStore.open(":memory:", { study: "synthetic" });
  const rng = new DataRng(7);
  const noise = (sd: number) => (rng.next() - 0.5) * 2 * sd * Math.sqrt(3);
  let index = 0;
  for (const activation of ["relu", "tanh"]) {
    for (const norm of ["none", "batch"]) {
      for (let seed = 0; seed < 6; seed++) {
        const id = `cell${String(index).padStart(12, "0")}`;
        const summary = (final: boolean) => {
          const agreement2: ({ spearman: number; score: string } & Record<string, unknown>)[] = [];
          const layerFacts2: Record<string, unknown>[] = [];
          for (const layer of ["fc1", "fc2", "out"]) {
            const rho = 0.3 + (activation === "tanh" ? 0.2 : 0) - (norm === "batch" ? 0.15 : 0) +
              (final ? 0.01 : 0) + noise(0.01);
            for (
              const [score, v] of [["magnitude", rho], [
                "wanda",
                rho + (layer === "fc1" ? 0.08 : 0),
              ]] as const
            ) {
              agreement2.push({
                split: "train",
                layer,
                score,
                target: "absdloss",
                spearman: v,
                ci: [v - 0.02, v + 0.02],
                n: 500,
                ceiling: 0.9,
                halfReliability: 0.82,
                attainable: 0.95,
                primary: true,
              });
            }
            layerFacts2.push({
              split: "train",
              layer,
              helpfulFraction: 0.1,
              dropPrecision: 0.45 + noise(0.03),
              nAblated: 500,
            });
          }
          const z = (score: string) =>
            Math.tanh(
              agreement2.filter((r) => r.score === score).reduce(
                (a, r) => a + Math.atanh(r.spearman),
                0,
              ) / 3,
            );
          for (const score of ["magnitude", "wanda"]) {
            agreement2.push({
              ...agreement2[0],
              layer: "fisher-z mean",
              score,
              spearman: z(score),
              n: 3,
            });
          }
          return JSON.stringify({ agreement2, layerFacts2 });
        };
        const final = summary(true);
        const cell = {
          cell_id: id,
          study: "synthetic",
          cell_index: index++,
          factors: JSON.stringify({ activation, norm, seed }),
          config: "{}",
          run_dir: "/nowhere",
          test_accuracy: 0.97 + (activation === "tanh" ? 0.001 : 0),
          test_loss: 0.1,
          train_accuracy: 0.99,
          train_loss: 0.05,
          epochs: 10,
          train_seconds: 1,
          step_ms: 1,
          nnz: 10,
          dense_weights: 100,
          param_bytes: 120,
          analysis: final,
          analysis_seconds: 2,
          adapter: "test",
          filigree_version: "test",
          finished_at: "2026-01-01T00:00:00Z",
          stopped: null,
        } satisfies CellRow;
        const analyses: AnalysisRow[] = [
          { cell_id: id, epoch: 3, final: 0, analysis: summary(false), analysis_seconds: 1 },
          { cell_id: id, epoch: 10, final: 1, analysis: final, analysis_seconds: 1 },
        ];
        store.recordCell({ cell, epochs: [], analyses });
      }
    }
  }
  return store;
}

const SPEC_BASE = {
  name: "synthetic",
  factors: { activation: ["relu", "tanh"], norm: ["none", "batch"], seed: [0, 1, 2, 3, 4, 5] },
  train: { dataset: "synthetic", hidden: [8], epochs: 10 },
  analysis: { epochs: [3, "final"], scores: ["magnitude", "wanda", "random"] },
};

const metric = {
  statistic: "spearman",
  score: "magnitude",
  target: "absdloss",
  layer: "fisher-z mean",
  split: "train",
  epoch: "final",
};

Deno.test("hypotheses: true, false and too-small hypotheses on a synthetic store are classified correctly", async () => {
  const spec = await parseStudySpec({
    ...SPEC_BASE,
    hypotheses: [
      {
        id: "TRUE",
        statement: "tanh orders weights by importance better than relu",
        source: "synthetic",
        metric,
        comparison: { factor: "activation", levels: ["tanh", "relu"] },
        direction: "greater",
      },
      {
        id: "FALSE",
        statement: "batch norm raises rho(|w|, |dL|)",
        source: "synthetic",
        metric,
        comparison: { factor: "norm", levels: ["batch", "none"] },
        direction: "greater",
      },
      {
        id: "SMALL",
        statement: "training from epoch 3 to the end raises rho",
        source: "synthetic",
        metric,
        comparison: { factor: "epoch", levels: ["final", 3] },
        direction: "greater",
      },
    ],
  });
  const store = syntheticStore();
  const cells = cellsFromStore(store);
  assert.equal(cells.length, 24);
  const [t, f, s] = testHypotheses(cells, spec.hypotheses);
  assert.equal(t.verdict, "confirmed", describeResult(t));
  assert.equal(t.n, 12); // 2 norms x 6 seeds matched pairs
  assert.ok(Math.abs(t.effect - 0.2) < 0.02, describeResult(t));
  assert.equal(t.test, "wilcoxon");
  assert.equal(f.verdict, "refuted", describeResult(f));
  assert.match(f.reason, /opposite/);
  assert.ok(f.effect < -0.1);
  assert.equal(s.verdict, "refuted", describeResult(s));
  assert.match(s.reason, /too small to matter/);
  assert.equal(s.n, 24); // every cell pairs with itself across epochs
  assert.ok(s.effect > 0 && s.effect < 0.02, describeResult(s));
  // Holm over the three: adjusted p never below the raw p.
  for (const r of [t, f, s]) assert.ok(r.pHolm >= r.p);
  store.close();
});

Deno.test("hypotheses: layer 'each', score contrasts, a fixed comparison value, where filters", async () => {
  const spec = await parseStudySpec({
    ...SPEC_BASE,
    hypotheses: [
      {
        id: "WANDA",
        statement: "Wanda beats magnitude, in fc1 only",
        source: "synthetic",
        metric: { ...metric, score: "wanda - magnitude", layer: "each" },
        comparison: { value: 0 },
        direction: "greater",
      },
      {
        id: "DROP",
        statement: "dropped weights fall in the least-important fifth more often than chance",
        source: "synthetic",
        metric: { statistic: "dropPrecision", layer: "mean", split: "train", epoch: "final" },
        comparison: { value: 0.2 },
        where: { norm: ["none"] },
        direction: "greater",
      },
      {
        id: "SCORE",
        statement: "wanda vs magnitude (pseudo-factor score)",
        source: "synthetic",
        metric: { ...metric, score: undefined, layer: "fc1" },
        comparison: { factor: "score", levels: ["wanda", "magnitude"] },
        direction: "greater",
      },
    ],
  });
  const store = syntheticStore();
  const rs = testHypotheses(cellsFromStore(store), spec.hypotheses);
  const by = (id: string) => rs.find((r) => r.id === id) as HypothesisResult;
  assert.deepEqual(rs.map((r) => r.id), [
    "WANDA[fc1]",
    "WANDA[fc2]",
    "WANDA[out]",
    "DROP",
    "SCORE",
  ]);
  assert.equal(by("WANDA[fc1]").verdict, "confirmed");
  assert.ok(Math.abs(by("WANDA[fc1]").effect - 0.08) < 1e-9);
  // Exactly zero differences: the interval is [0, 0], inside ±SESOI.
  assert.equal(by("WANDA[fc2]").verdict, "refuted");
  assert.equal(by("DROP").n, 12); // the where filter keeps norm=none only
  assert.equal(by("DROP").verdict, "confirmed");
  assert.ok(Math.abs(by("DROP").meanB - 0.2) < 1e-12);
  assert.equal(by("SCORE").verdict, "confirmed");
  assert.ok(Math.abs(by("SCORE").effect - by("WANDA[fc1]").effect) < 1e-12);
  store.close();
});

Deno.test("hypotheses: verdict rule edge cases", () => {
  const r = (effect: number, ci: [number, number], pHolm: number, n = 8) => ({
    effect,
    ci,
    pHolm,
    n,
  });
  // Beyond the SESOI but not significant after Holm: inconclusive.
  assert.equal(classify(r(0.2, [0.1, 0.3], 0.2), "greater", 0.05).verdict, "inconclusive");
  // Straddles the SESOI: inconclusive.
  assert.equal(classify(r(0.06, [0.01, 0.11], 0.01), "greater", 0.05).verdict, "inconclusive");
  // "less": the orientation flips.
  assert.equal(classify(r(-0.2, [-0.3, -0.1], 0.01), "less", 0.05).verdict, "confirmed");
  assert.equal(classify(r(0.2, [0.1, 0.3], 0.01), "less", 0.05).verdict, "refuted");
  // Too few pairs.
  assert.equal(classify(r(0.2, [0.1, 0.3], 0.01, 2), "greater", 0.05).verdict, "inconclusive");
  // An interval wholly below the SESOI but reaching below -SESOI: refuted, not "too small".
  const wide = classify(r(-0.05, [-0.2, 0.04], 0.3), "greater", 0.05);
  assert.equal(wide.verdict, "refuted");
  assert.match(wide.reason, /excludes every predicted effect/);
});

Deno.test("spec: hypotheses are validated with one-line errors", async () => {
  const bad = async (h: Record<string, unknown>, re: RegExp) =>
    await assert.rejects(
      () =>
        parseStudySpec({
          ...SPEC_BASE,
          hypotheses: [{
            id: "X",
            statement: "s",
            source: "src",
            metric,
            comparison: { factor: "activation", levels: ["tanh", "relu"] },
            direction: "greater",
            ...h,
          }],
        }),
      re,
    );
  await bad({ comparison: { factor: "optimizer", levels: ["sgd", "adam"] } }, /not a factor/);
  await bad(
    { comparison: { factor: "activation", levels: ["tanh", "gelu"] } },
    /gelu is not a level/,
  );
  await bad({ comparison: { factor: "epoch", levels: ["final", 5] } }, /epoch 5 is not analyzed/);
  await bad({ metric: { ...metric, score: "snip" } }, /"snip" is not one of the analysis scores/);
  await bad({ metric: { ...metric, epoch: 7 } }, /metric.epoch: 7 is not analyzed/);
  await bad({ direction: "up" }, /direction: allowed values are greater, less/);
  await bad({ extra: 1 }, /unknown key "extra"/);
  await bad({ comparison: { factor: "seed", levels: [0, 1] } }, /seed is matched/);
  await bad({ where: { colour: ["red"] } }, /where.colour: not a factor/);
  // analysis.epochs become keepEpochs of every cell (and so part of its id).
  const ok = await parseStudySpec({ ...SPEC_BASE, factors: { seed: [0] } });
  assert.deepEqual(ok.cells[0].config.keepEpochs, [3]);
  assert.deepEqual(ok.cells[0].analysisEpochs, [3]);
  const none = await parseStudySpec({ ...SPEC_BASE, factors: { seed: [0] }, analysis: {} });
  assert.equal(none.cells[0].config.keepEpochs, undefined);
  assert.notEqual(ok.cells[0].id, none.cells[0].id);
});
