/**
 * Findings are generated from the hypothesis engine: the pooled verdict is the report's, and the
 * slices (seed, layer, epoch, factor level) reproduce the planted effects, marking where a rule
 * did not hold.
 */
import assert from "node:assert/strict";
import { findings, findingsMarkdown } from "../../src/study/findings.ts";
import type { HypothesisCell } from "../../src/study/hypotheses.ts";
import type { AnalysisSummary } from "../../src/analysis/summary.ts";
import type { HypothesisSpec } from "../../src/study/spec.ts";

// rho(magnitude, |dL|) per layer: fc1 gains 0.2 from epoch 3 to final, fc2 gains 0.01 (the rule
// does not hold there); under norm=layer fc1 gains only 0.02.
function cell(seed: number, norm: string): HypothesisCell {
  const jitter = (k: number) => ((seed * 7 + k * 3) % 5) / 1000;
  const summary = (gain1: number, gain2: number, k: number) =>
    ({
      agreement2: [
        ["fc1", 0.5 + gain1 + jitter(k)],
        ["fc2", 0.6 + gain2 + jitter(k + 1)],
        ["fisher-z mean", 0.55 + (gain1 + gain2) / 2 + jitter(k)],
      ].map(([layer, rho]) => ({
        split: "train",
        layer,
        score: "magnitude",
        target: "absdloss",
        spearman: rho,
        attainable: 0.95,
      })),
    }) as unknown as AnalysisSummary;
  const final = summary(norm === "layer" ? 0.02 : 0.2, 0.01, 1);
  return {
    factors: { norm, seed: String(seed) },
    analyses: { "1": summary(-0.1, -0.05, 2), "3": summary(0, 0, 3), "30": final, final },
    accuracy: { final: 0.97 },
  };
}

const H: HypothesisSpec = {
  id: "H1",
  statement: "rho(|w|, |dL|) rises from epoch 3 to convergence",
  source: "test",
  metric: {
    statistic: "spearman",
    score: "magnitude",
    target: "absdloss",
    layer: "mean",
    split: "train",
    epoch: "final",
  },
  comparison: { factor: "epoch", levels: ["final", 3] },
  sesoi: 0.05,
  direction: "greater",
};

Deno.test("findings: pooled verdict plus seed, layer and condition slices; † where it fails", () => {
  const cells = [0, 1, 2, 3].flatMap((s) => ["none", "batch", "layer"].map((n) => cell(s, n)));
  const [f] = findings(cells, [H]);
  assert.equal(f.result.verdict, "confirmed");
  assert.equal(f.result.n, 12);
  assert.deepEqual(f.seeds.map((s) => s.label), ["seed=0", "seed=1", "seed=2", "seed=3"]);
  assert.deepEqual(f.layers.map((s) => [s.label, s.holds]), [["fc1", true], ["fc2", false]]);
  const fc1 = f.layers[0].effect, fc2 = f.layers[1].effect;
  assert.ok(Math.abs(fc1 - (0.2 * 2 + 0.02) / 3) < 0.01, String(fc1));
  assert.ok(Math.abs(fc2 - 0.01) < 0.01, String(fc2));
  // The comparison is over epochs: no epoch slices. norm=layer fails the SESOI.
  assert.deepEqual(f.epochs, []);
  const failed = f.conditions.filter((s) => !s.holds).map((s) => s.label);
  assert.deepEqual(failed, ["norm=layer"]);
  const md = findingsMarkdown([f], {
    command: "deno task report x --findings y",
    commit: "abc",
    cells: cells.length,
    scope: ["norm: none, batch, layer"],
    generatedAt: "now",
  });
  assert.match(md, /## Rule 1 \(H1\)/);
  assert.match(md, /fc2 [+−]0\.0\d+ \(n=12\)†/);
  assert.match(md, /\*\*Did not hold\*\* in: fc2, norm=layer\./);
});

Deno.test("findings: epoch slices for a factor comparison skip the final epoch's numbered copy", () => {
  const cells = [0, 1, 2, 3, 4, 5].flatMap((s) => ["none", "layer"].map((n) => cell(s, n)));
  const byNorm: HypothesisSpec = {
    ...H,
    id: "N",
    statement: "no norm beats layer norm at convergence",
    comparison: { factor: "norm", levels: ["none", "layer"] },
  };
  const [f] = findings(cells, [byNorm]);
  assert.deepEqual(f.epochs.map((s) => s.label), ["epoch 1", "epoch 3", "final"]);
  assert.ok(Math.abs(f.epochs[2].effect - 0.09) < 0.01, String(f.epochs[2].effect));
  assert.ok(Math.abs(f.epochs[1].effect) < 0.01); // identical at epoch 3
  assert.equal(f.result.verdict, "confirmed");
  const md = findingsMarkdown([f], {
    command: "c",
    commit: "abc",
    cells: 12,
    scope: [],
    generatedAt: "now",
  });
  assert.match(md, /epoch 3 [+−]0\.00\d \(n=6\)†/);
});

Deno.test("findings: refuted and inconclusive hypotheses are listed with their reasons, no rule", () => {
  const cells = [0, 1, 2, 3].flatMap((s) => ["none", "layer"].map((n) => cell(s, n)));
  const tooSmall: HypothesisSpec = { ...H, id: "S", sesoi: 0.5 };
  const md = findingsMarkdown(findings(cells, [tooSmall]), {
    command: "c",
    commit: "abc",
    cells: 8,
    scope: [],
    generatedAt: "now",
  });
  assert.match(md, /No hypothesis is confirmed yet: no rule\./);
  assert.match(md, /## Refuted\n\n- \*\*S\*\*/);
});
