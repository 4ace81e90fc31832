import assert from "node:assert/strict";
import { StudyStore } from "../../src/study/store.ts";
import type { AnalysisRow } from "../../src/study/schema.ts";
import {
  cellsFromStore,
  classify,
  describeResult,
  type HypothesisResult,
  metricValue,
  smallestP,
  testHypotheses,
} from "../../src/study/hypotheses.ts";
import { parseStudySpec } from "../../src/study/spec.ts";
import { DataRng } from "../../src/data/random.ts";
import { agreementRow, cellRow } from "./_fixtures.ts";

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
              agreement2.push(agreementRow({ layer, score, spearman: v, ceiling: 0.9 }));
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
        const cell = cellRow({
          cell_id: id,
          study: "synthetic",
          cell_index: index++,
          factors: JSON.stringify({ activation, norm, seed }),
          test_accuracy: 0.97 + (activation === "tanh" ? 0.001 : 0),
          analysis: final,
        });
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

// ---------------------------------------------------------------------------------------------
// The metric kinds every hypothesis of docs/HYPOTHESES.md needs (issue 10/12/14.4): a generic
// synthetic store, then one test per kind with a true, a false and a too-small hypothesis.

type Rho = (f: Record<string, string>, layer: string, score: string, target: string) => number;

interface SynthOpts {
  factors: Record<string, string[]>;
  seeds: number;
  layers?: string[];
  /** ρ of (score, target) in a layer of a cell (noise is added). */
  rho: Rho;
  scores: string[];
  targets: string[];
  /** Agnostic summary rows of a cell (none when absent). */
  agnostic?: (f: Record<string, string>) => { mask: string; weights: string; acc: number }[];
  /** The stop rule's criterion of a cell (null = ran to its maximum). */
  stopped?: (f: Record<string, string>) => string | null;
}

function grid(factors: Record<string, string[]>): Record<string, string>[] {
  let out: Record<string, string>[] = [{}];
  for (const [k, vs] of Object.entries(factors)) {
    out = out.flatMap((o) => vs.map((v) => ({ ...o, [k]: v })));
  }
  return out;
}

/** Attainable ρ of a target in the synthetic stores: signed ΔL is the noisier target. */
const attainable = (target: string) => target === "dloss" ? 0.7 : 0.95;

/** A store of cells analyzed at the final epoch only (agreement2 rows per layer + fisher-z mean). */
function synthStore(o: SynthOpts): StudyStore {
  const store = StudyStore.open(":memory:", { study: "synth" });
  const rng = new DataRng(11);
  const noise = () => (rng.next() - 0.5) * 0.02; // uniform ±0.01
  const layers = o.layers ?? ["fc1", "fc2", "out"];
  let index = 0;
  for (const f0 of grid(o.factors)) {
    for (let seed = 0; seed < o.seeds; seed++) {
      const f = { ...f0, seed: String(seed) };
      const id = `c${String(index).padStart(15, "0")}`;
      const agreement2: Record<string, unknown>[] = [];
      for (const score of o.scores) {
        for (const target of o.targets) {
          const vs = layers.map((layer) => o.rho(f, layer, score, target) + noise());
          const at = attainable(target);
          layers.forEach((layer, i) =>
            agreement2.push(agreementRow({ layer, score, target, spearman: vs[i], attainable: at }))
          );
          const z = Math.tanh(vs.reduce((a, v) => a + Math.atanh(v), 0) / vs.length);
          agreement2.push(
            agreementRow({
              layer: "fisher-z mean",
              score,
              target,
              spearman: z,
              n: layers.length,
              attainable: at,
            }),
          );
        }
      }
      const summary: Record<string, unknown> = { agreement2, layerFacts2: [] };
      if (o.agnostic) {
        summary.agnostic = {
          samples: 100,
          baseline: { accuracy: 0.95, loss: 0.2 },
          scales: [1],
          seeds: 2,
          layers: [],
          rows: [],
          summary: o.agnostic(f).map((r) => {
            const acc = r.acc + noise();
            return {
              mask: r.mask,
              weights: r.weights,
              meanAccuracy: acc,
              bestAccuracy: acc + 0.05,
              bestScale: 1,
              retainedMean: acc / 0.95,
              retainedBest: (acc + 0.05) / 0.95,
            };
          }),
        };
      }
      const analysis = JSON.stringify(summary);
      store.recordCell({
        cell: cellRow({
          cell_id: id,
          study: "synth",
          cell_index: index++,
          factors: JSON.stringify(f),
          analysis,
          stopped: o.stopped ? o.stopped(f) : null,
        }),
        epochs: [],
        analyses: [{ cell_id: id, epoch: 10, final: 1, analysis, analysis_seconds: 1 }],
      });
    }
  }
  return store;
}

const hyp = (
  id: string,
  metric: Record<string, unknown>,
  comparison: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) => ({
  id,
  statement: id,
  source: "synthetic",
  metric: {
    statistic: "spearman",
    target: "absdloss",
    layer: "fisher-z mean",
    split: "train",
    epoch: "final",
    ...metric,
  },
  comparison,
  direction: "greater",
  ...extra,
});

/**
 * The spec of a synthetic study (name "synth", a small synthetic training block): `factors`
 * plus the seeds 0..seeds-1, and the given analysis and hypotheses.
 */
function synthSpec(
  factors: Record<string, string[]>,
  seeds: number,
  rest: { analysis: Record<string, unknown>; hypotheses: unknown[] },
) {
  return parseStudySpec({
    name: "synth",
    factors: { ...factors, seed: Array.from({ length: seeds }, (_, i) => i) },
    train: { dataset: "synthetic", hidden: [8], epochs: 10 },
    ...rest,
  });
}

function verdicts(rs: HypothesisResult[]): Record<string, string> {
  return Object.fromEntries(rs.map((r) => [r.id, r.verdict]));
}

Deno.test("hypotheses: metric.minus compares correlations with different targets (signed2 vs dL against |w| vs |dL|)", async () => {
  // signed2 tracks dL at 0.8, signed1 at 0.52, magnitude tracks |dL| at 0.5 and dL at 0.1.
  const rho: Rho = (_f, _l, score, target) =>
    ({ "signed2/dloss": 0.8, "signed1/dloss": 0.52, "magnitude/absdloss": 0.5 } as Record<
      string,
      number
    >)[`${score}/${target}`] ?? 0.1;
  const store = synthStore({
    factors: { activation: ["relu", "tanh"] },
    seeds: 4,
    rho,
    scores: ["magnitude", "signed1", "signed2"],
    targets: ["dloss", "absdloss"],
  });
  const spec = await synthSpec({ activation: ["relu", "tanh"] }, 4, {
    analysis: { scores: ["magnitude", "signed1", "signed2"] },
    hypotheses: [
      hyp("TRUE", {
        score: "signed2",
        target: "dloss",
        minus: { score: "magnitude", target: "absdloss" },
      }, { value: 0 }),
      hyp("SMALL", {
        score: "signed1",
        target: "dloss",
        minus: { score: "magnitude", target: "absdloss" },
      }, { value: 0 }),
      hyp("FALSE", {
        score: "magnitude",
        target: "dloss",
        minus: { target: "absdloss" },
      }, { value: 0 }),
      // Against the noisier signed target, signed1's 0.52 is worth more than |w|'s 0.5 on |dL|.
      hyp("DISATTENUATED", {
        score: "signed1",
        target: "dloss",
        minus: { score: "magnitude", target: "absdloss" },
        disattenuate: true,
      }, { value: 0 }),
    ],
  });
  const rs = testHypotheses(cellsFromStore(store), spec.hypotheses);
  assert.deepEqual(verdicts(rs), {
    TRUE: "confirmed",
    SMALL: "refuted",
    FALSE: "refuted",
    DISATTENUATED: "confirmed",
  });
  assert.ok(Math.abs(rs[0].effect - 0.3) < 0.02, describeResult(rs[0]));
  assert.ok(Math.abs(rs[3].effect - (0.52 / 0.7 - 0.5 / 0.95)) < 0.03, describeResult(rs[3]));
  assert.match(rs[3].metricText, /each ρ \/ its attainable ρ/);
  assert.match(rs[1].reason, /too small/);
  assert.match(rs[2].reason, /opposite/);
  assert.match(rs[0].metricText, /spearman\(signed2, dloss\) − spearman\(magnitude, absdloss\)/);
  store.close();
});

Deno.test("hypotheses: input normalization vs Wanda's advantage, restricted to the first layer", async () => {
  // wanda − magnitude is +0.12 in the first layer with unit input, 0 with standard input and in
  // every other layer.
  const rho: Rho = (f, layer, score) =>
    0.4 + (score === "wanda" && layer === "fc1" && f.inputNorm === "unit" ? 0.12 : 0);
  const store = synthStore({
    factors: { inputNorm: ["unit", "standard"], norm: ["none", "batch"] },
    seeds: 4,
    rho,
    scores: ["magnitude", "wanda"],
    targets: ["absdloss"],
  });
  const spec = await synthSpec({ inputNorm: ["unit", "standard"], norm: ["none", "batch"] }, 4, {
    analysis: { scores: ["magnitude", "wanda"] },
    hypotheses: [
      hyp("TRUE", { score: "wanda - magnitude", layer: "first" }, {
        factor: "input-norm",
        levels: ["unit", "standard"],
      }),
      hyp("SMALL", { score: "wanda - magnitude", layer: "last" }, {
        factor: "inputNorm",
        levels: ["unit", "standard"],
      }),
      hyp("FALSE", { score: "wanda - magnitude", layer: "fc1" }, {
        factor: "inputNorm",
        levels: ["standard", "unit"],
      }),
    ],
  });
  const rs = testHypotheses(cellsFromStore(store), spec.hypotheses);
  assert.deepEqual(verdicts(rs), { TRUE: "confirmed", SMALL: "refuted", FALSE: "refuted" });
  assert.equal(rs[0].n, 8); // 2 norms x 4 seeds
  assert.ok(Math.abs(rs[0].effect - 0.12) < 0.03, describeResult(rs[0]));
  assert.match(rs[1].reason, /too small/);
  assert.match(rs[2].reason, /opposite/);
  store.close();
});

Deno.test("hypotheses: sparse vs dense at matched convergence (converged: true keeps only cells stopped by the plateau rule)", async () => {
  // Converged cells: static 0.1 above dense. Dense cells that hit the epoch maximum (seeds 0-1,
  // never converged) sit 0.3 above static, so ignoring convergence would flip the answer.
  const stopped = (f: Record<string, string>) =>
    f.method === "dense" && Number(f.seed) < 2
      ? null
      : "plateau: train loss within 1 % for 3 epochs";
  const rho: Rho = (f) =>
    f.method === "static"
      ? 0.5
      : stopped(f) === null
      ? 0.8
      : 0.4 + (f.activation === "tanh" ? 0.0 : 0);
  const store = synthStore({
    factors: { activation: ["relu", "tanh"], method: ["static", "dense"] },
    seeds: 6,
    rho,
    scores: ["magnitude"],
    targets: ["absdloss"],
    stopped,
  });
  const spec = await synthSpec({ activation: ["relu", "tanh"], method: ["static", "dense"] }, 6, {
    analysis: { scores: ["magnitude"] },
    hypotheses: [
      hyp("TRUE", { score: "magnitude" }, { factor: "method", levels: ["static", "dense"] }, {
        converged: true,
      }),
      hyp("FALSE", { score: "magnitude" }, { factor: "method", levels: ["dense", "static"] }, {
        converged: true,
      }),
      hyp("SMALL", { score: "magnitude" }, { factor: "method", levels: ["static", "dense"] }, {
        converged: true,
        sesoi: 0.2,
      }),
      hyp("UNMATCHED", { score: "magnitude" }, { factor: "method", levels: ["static", "dense"] }),
    ],
  });
  const rs = testHypotheses(cellsFromStore(store), spec.hypotheses);
  assert.deepEqual(verdicts(rs), {
    TRUE: "confirmed",
    FALSE: "refuted",
    SMALL: "refuted",
    UNMATCHED: "inconclusive",
  });
  assert.equal(rs[0].n, 8); // 2 activations x seeds 2-5: both cells converged
  assert.equal(rs[3].n, 12);
  assert.ok(Math.abs(rs[0].effect - 0.1) < 0.02, describeResult(rs[0]));
  assert.match(rs[0].metricText, /converged cells/);
  // An SESOI of 0.2 makes +0.1 too small to matter... but it also lies above -0.2: "too small".
  assert.match(rs[2].reason, /too small|excludes/);
  store.close();
});

Deno.test("hypotheses: the layer pseudo-factor compares two layers of the same cell", async () => {
  const rho: Rho = (_f, layer) =>
    ({ conv1: 0.2, conv2: 0.28, fc1: 0.5 } as Record<string, number>)[layer] ?? 0.21;
  const store = synthStore({
    factors: { activation: ["relu"] },
    layers: ["conv1", "conv2", "fc1", "out"],
    seeds: 8,
    rho,
    scores: ["magnitude"],
    targets: ["absdloss"],
  });
  const spec = await synthSpec({}, 8, {
    analysis: { scores: ["magnitude"] },
    hypotheses: [
      {
        ...hyp("TRUE", { score: "magnitude" }, { factor: "layer", levels: ["conv1", "fc1"] }),
        direction: "less",
      },
      {
        ...hyp("SMALL", { score: "magnitude" }, { factor: "layer", levels: ["conv1", "out"] }),
        direction: "less",
      },
      {
        ...hyp("FALSE", { score: "magnitude" }, { factor: "layer", levels: ["conv2", "conv1"] }),
        direction: "less",
      },
      {
        // The TRUE effect on five seeds only: the sign-flip test cannot go below p = 1/16.
        ...hyp("FEW", { score: "magnitude" }, { factor: "layer", levels: ["conv1", "fc1"] }, {
          where: { seed: [0, 1, 2, 3, 4] },
        }),
        direction: "less",
      },
    ],
  });
  const rs = testHypotheses(cellsFromStore(store), spec.hypotheses);
  assert.deepEqual(verdicts(rs), {
    TRUE: "confirmed",
    SMALL: "refuted",
    FALSE: "refuted",
    FEW: "inconclusive",
  });
  assert.ok(Math.abs(rs[0].effect + 0.3) < 0.02, describeResult(rs[0]));
  assert.equal(rs[3].n, 5);
  assert.match(rs[3].reason, /smallest attainable p is 0.063, too large for Holm over 4/);
  assert.equal(smallestP(5), 1 / 16);
  assert.match(rs[1].reason, /too small/);
  assert.match(rs[2].reason, /opposite/);
  store.close();
});

Deno.test("hypotheses: agnostic retention, trained vs degree-matched masks, per activation x norm (by)", async () => {
  // Sign-only weights keep 0.10 more accuracy on the trained topology than on a degree-matched
  // random one for SET with relu, 0.01 more with tanh; shared weights keep 0.08 LESS.
  const agnostic = (f: Record<string, string>) => [
    { mask: "trained", weights: "signed", acc: 0.6 },
    { mask: "degree-matched", weights: "signed", acc: f.activation === "relu" ? 0.5 : 0.59 },
    { mask: "shuffled", weights: "signed", acc: 0.3 },
    { mask: "trained", weights: "shared", acc: 0.3 },
    { mask: "degree-matched", weights: "shared", acc: 0.38 },
    { mask: "shuffled", weights: "shared", acc: 0.2 },
  ];
  const store = synthStore({
    factors: { activation: ["relu", "tanh"], norm: ["none", "batch"], method: ["set"] },
    seeds: 8,
    rho: () => 0.5,
    scores: ["magnitude"],
    targets: ["absdloss"],
    agnostic,
  });
  const spec = await synthSpec(
    { activation: ["relu", "tanh"], norm: ["none", "batch"], method: ["set"] },
    8,
    {
      analysis: { scores: ["magnitude"], agnostic: true },
      hypotheses: [
        hyp(
          "SIGNED",
          { statistic: "agnostic", weights: "signed", target: undefined },
          { factor: "mask", levels: ["trained", "degree-matched"] },
          { by: ["activation", "norm"], where: { method: ["set"] } },
        ),
        hyp(
          "SHARED",
          { statistic: "agnostic", weights: "shared", over: "best", target: undefined },
          { factor: "mask", levels: ["trained", "degree-matched"] },
        ),
      ],
    },
  );
  const rs = testHypotheses(cellsFromStore(store), spec.hypotheses);
  assert.deepEqual(verdicts(rs), {
    "SIGNED[activation=relu, norm=none]": "confirmed",
    "SIGNED[activation=relu, norm=batch]": "confirmed",
    "SIGNED[activation=tanh, norm=none]": "refuted",
    "SIGNED[activation=tanh, norm=batch]": "refuted",
    SHARED: "refuted",
  });
  assert.equal(rs[0].n, 8);
  assert.equal(rs[0].group, "activation=relu, norm=none");
  assert.ok(Math.abs(rs[0].effect - 0.1) < 0.02, describeResult(rs[0]));
  assert.match(rs[2].reason, /too small/);
  assert.match(rs[4].reason, /opposite/);
  assert.equal(rs[4].n, 32);
  store.close();
});

Deno.test("spec: the new hypothesis keys are validated with one-line errors", async () => {
  const base = {
    name: "synth",
    factors: { activation: ["relu", "tanh"], seed: [0, 1] },
    train: { dataset: "synthetic", hidden: [8], epochs: 2 },
    analysis: { scores: ["magnitude", "signed2"] },
  };
  const bad = async (h: Record<string, unknown>, re: RegExp, analysis?: unknown) =>
    await assert.rejects(
      () =>
        parseStudySpec({
          ...base,
          ...(analysis !== undefined ? { analysis } : {}),
          hypotheses: [{ ...hyp("X", { score: "magnitude" }, { value: 0 }), ...h }],
        }),
      re,
    );
  await bad(
    { metric: { statistic: "agnostic", epoch: "final" } },
    /metric agnostic needs an analysis/,
    false,
  );
  await bad(
    { metric: { ...metric, mask: "trained" } },
    /weights, mask and over are for agnostic only/,
  );
  await bad(
    { metric: { ...metric, minus: { score: "wanda" } } },
    /"wanda" is not one of the analysis scores/,
  );
  await bad(
    { metric: { statistic: "testAccuracy", epoch: "final", minus: { target: "dloss" } } },
    /minus: only for statistic spearman/,
  );
  await bad(
    { comparison: { factor: "mask", levels: ["trained", "shuffled"] } },
    /needs statistic agnostic/,
  );
  await bad(
    {
      metric: { statistic: "agnostic", epoch: "final" },
      comparison: { factor: "mask", levels: ["trained", "random"] },
    },
    /"random" is not a mask/,
    { scores: ["magnitude"], agnostic: true },
  );
  await bad({ by: ["colour"] }, /by: "colour" is not a factor/);
  await bad(
    { by: ["activation"], comparison: { factor: "activation", levels: ["tanh", "relu"] } },
    /is the compared factor/,
  );
  await bad({ by: ["seed"] }, /not a factor other than the seed/);
  // agnostic: absent leaves the cell id as it was; set, it changes it.
  const a = await parseStudySpec(base);
  const b = await parseStudySpec({ ...base, analysis: { ...base.analysis, agnostic: true } });
  assert.equal(b.cells[0].analysis?.agnostic, true);
  assert.equal(a.cells[0].analysis?.agnostic, undefined);
  assert.notEqual(a.cells[0].id, b.cells[0].id);
});

Deno.test("hypotheses: agnostic over mean / best / scale1 read the stored summary and rows", () => {
  const row = (mask: string, scale: number, maskSeed: number | null, accuracy: number) => ({
    mask,
    weights: "signed",
    scale,
    maskSeed,
    accuracy,
    loss: 1,
  });
  const agnostic = {
    samples: 10,
    baseline: { accuracy: 0.9, loss: 0.3 },
    scales: [-1, 1],
    seeds: 2,
    layers: [],
    rows: [
      row("trained", -1, null, 0.1),
      row("trained", 1, null, 0.8),
      row("degree-matched", -1, 0, 0.1),
      row("degree-matched", 1, 0, 0.5),
      row("degree-matched", -1, 1, 0.1),
      row("degree-matched", 1, 1, 0.6),
    ],
    summary: [
      { mask: "trained", weights: "signed", meanAccuracy: 0.45, bestAccuracy: 0.8, bestScale: 1 },
      {
        mask: "degree-matched",
        weights: "signed",
        meanAccuracy: 0.325,
        bestAccuracy: 0.55,
        bestScale: 1,
      },
    ],
  };
  const cell = { factors: {}, accuracy: {}, analyses: { final: { agnostic } } } as never;
  const m = (over: string, mask: string) =>
    ({
      statistic: "agnostic",
      weights: "signed",
      mask,
      over,
      layer: "mean",
      split: "train",
      epoch: "final",
    }) as never;
  const v = (over: string, mask: string) => metricValue(cell, m(over, mask), "mean", "final");
  assert.equal(v("mean", "trained"), 0.45);
  assert.equal(v("best", "degree-matched"), 0.55);
  assert.equal(v("scale1", "trained"), 0.8);
  assert.ok(Math.abs(v("scale1", "degree-matched")! - 0.55) < 1e-12);
  assert.equal(v("scale1", "shuffled"), undefined);
});
