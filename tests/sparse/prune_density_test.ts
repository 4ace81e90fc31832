/**
 * Gradual magnitude pruning ends at the config's densities (one place: sparse/density.ts
 * targetDensities): `--method prune --epsilon 20` prunes each layer to SET's Erdős–Rényi
 * density, `--init erk` to ERK's, `--density d` to d (before the fix every layer ended at 10 %).
 */
import { erDensity, erkDensities, targetDensities } from "../../src/sparse/density.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { runEpoch, Trainer } from "../../src/train/trainer.ts";
import type { PruneAlgorithm } from "../../src/sparse/algorithms.ts";
import { gpuTest } from "../../src/testing/mod.ts";

gpuTest(
  "prune ends at ER densities with epsilon, ERK with init erk, uniform density",
  async (gpu) => {
    const base = {
      dataset: "synthetic",
      syntheticFeatures: 40,
      syntheticClasses: 3,
      syntheticSamples: 200,
      hidden: [30, 24],
      method: "prune",
      epochs: 2,
      batchSize: 50,
      updateInterval: 1,
    } as const;
    const shapes: [number, number][] = [[40, 30], [30, 24]];
    const cases = [
      [{ epsilon: 5 }, shapes.map(([a, b]) => erDensity(a, b, 5))],
      [{ init: "erk", density: 0.3 }, erkDensities(shapes, 0.3)],
      [{ density: 0.25 }, [0.25, 0.25]],
    ] as const;
    for (const [over, want] of cases) {
      const cfg = parseTrainConfig({ ...base, ...over });
      const t = await Trainer.create(gpu, cfg);
      const targets = (t.algorithm as PruneAlgorithm).targets;
      if (targets.length !== 2 || targets.some((d, l) => Math.abs(d - want[l]) > 1e-6)) {
        throw new Error(`${JSON.stringify(over)}: targets ${targets}, want ${want}`);
      }
      if (want.every((d) => Math.abs(d - 0.1) < 1e-3)) throw new Error("test cannot tell 10 %");
      // Starts dense, ends at the targets.
      if (t.sparseLayers.some((l) => l.csr.nnz !== l.csr.nIn * l.csr.nOut)) {
        throw new Error(`${JSON.stringify(over)}: pruning did not start dense`);
      }
      for (let e = 0; e < cfg.epochs; e++) await runEpoch(t);
      t.sparseLayers.forEach((l, k) => {
        const d = l.csr.nnz / (l.csr.nIn * l.csr.nOut);
        if (Math.abs(d - want[k]) > 1.5 / (l.csr.nIn * l.csr.nOut) + 1e-6) {
          throw new Error(`${JSON.stringify(over)} ${l.name}: density ${d}, want ${want[k]}`);
        }
      });
    }
    // The pure rule: the output layer stays dense unless sparseLayers is "all".
    const d = targetDensities(
      { method: "prune", sparseLayers: "hidden", epsilon: 20 },
      [[784, 300], [300, 100], [100, 10]],
    );
    if (d[0] !== erDensity(784, 300, 20) || d[1] !== erDensity(300, 100, 20) || d[2] !== 1) {
      throw new Error(`targetDensities ${d}`);
    }
  },
);
