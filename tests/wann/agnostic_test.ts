import assert from "node:assert/strict";
import { agnosticAnalysis, randomTopology } from "../../src/analysis/agnostic.ts";
import { Probe } from "../../src/analysis/probe.ts";
import { DataRng } from "../../src/data/random.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { runEpoch, Trainer } from "../../src/train/trainer.ts";
import { freshSeed, gpuTest } from "../../src/testing/mod.ts";

Deno.test("agnostic: random topologies keep nnz (and fan-in), no duplicates, in range", () => {
  const rng = new DataRng(freshSeed());
  for (let t = 0; t < 10; t++) {
    const nIn = 1 + rng.int(40), nOut = 1 + rng.int(30);
    const all = Array.from({ length: nIn * nOut }, (_, p) => p).filter(() => rng.next() < 0.3);
    const ends = new Uint32Array(all.flatMap((p) => [Math.floor(p / nOut), p % nOut]));
    const pl = { nIn, nOut, nnz: all.length, ends };
    for (const kind of ["degree-matched", "shuffled"] as const) {
      const { rows, cols } = randomTopology(pl, kind, rng);
      assert.equal(rows.length, pl.nnz);
      const pos = new Set(Array.from(rows, (r, k) => r * nOut + cols[k]));
      assert.equal(pos.size, pl.nnz, `${kind}: duplicate position`);
      for (let k = 0; k < rows.length; k++) assert.ok(rows[k] < nIn && cols[k] < nOut);
      if (kind === "degree-matched") {
        const fan = (c: ArrayLike<number>) => {
          const f = new Array(nOut).fill(0);
          for (let k = 0; k < c.length; k++) f[c[k]]++;
          return f;
        };
        assert.deepEqual(fan(cols), fan(Array.from({ length: pl.nnz }, (_, k) => ends[2 * k + 1])));
      }
    }
  }
});

gpuTest(
  "agnostic: every variant runs, trained/trained is the baseline, the model is restored",
  async (gpu) => {
    const cfg = parseTrainConfig({
      dataset: "synthetic",
      syntheticFeatures: 12,
      syntheticClasses: 3,
      syntheticSamples: 400,
      hidden: [16, 8],
      method: "set",
      density: 0.4,
      epochs: 3,
      batchSize: 40,
      lr: 0.05,
    });
    const t = await Trainer.create(gpu, cfg);
    for (let e = 0; e < 3; e++) await runEpoch(t);
    const probe = await Probe.fromTrainer(t, { evalSamples: 90, seed: 1 });
    const before = await probe.evaluate();
    const r = await agnosticAnalysis(probe, { scales: [-1, 0.5, 1], seeds: 2 });
    // trained: 1 + 2·3 rows; each random mask: 2 seeds x 7 rows.
    assert.equal(r.rows.length, 7 + 2 * 2 * 7);
    const tt = r.rows.find((x) => x.mask === "trained" && x.weights === "trained")!;
    assert.equal(tt.accuracy, before.accuracy);
    assert.equal(r.baseline.accuracy, before.accuracy);
    const after = await probe.evaluate();
    assert.deepEqual(after, before, "model restored");
    for (const x of r.rows) {
      assert.ok(
        x.accuracy >= 0 && x.accuracy <= 1 && Number.isFinite(x.loss),
      );
    }
    // Random masks do change the model (their trained-value rows differ from the baseline somewhere).
    assert.ok(
      r.rows.some((x) => x.mask !== "trained" && x.weights === "trained" && x.loss !== before.loss),
    );
    // Shared weights with scale s and -s on a net with no signs differ only through the activation.
    assert.equal(r.summary.length, 9);
  },
);
