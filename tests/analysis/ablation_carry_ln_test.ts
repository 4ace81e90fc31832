/**
 * The layer-norm carry (shaders/ablation_carry_ln.wgsl through the probe's planner) against "zero
 * the weight, run the full forward" (Probe.ablateNaive) and the batched patched-copy engine, on
 * trained MLPs with layer norm before and after the activation.
 */
import { Probe } from "../../src/analysis/probe.ts";
import { parseTrainConfig, type TrainConfig } from "../../src/train/config.ts";
import { runEpoch, Trainer } from "../../src/train/trainer.ts";
import { gpuTest } from "../../src/testing/mod.ts";
import type { Gpu } from "../../src/gpu/mod.ts";

async function trained(gpu: Gpu, over: Partial<TrainConfig>): Promise<Trainer> {
  const cfg = parseTrainConfig({
    dataset: "synthetic",
    syntheticFeatures: 13,
    syntheticClasses: 3,
    syntheticSamples: 400,
    hidden: [11, 7],
    method: "static",
    density: 0.6,
    epochs: 2,
    batchSize: 40,
    lr: 0.05,
    norm: "layer",
    ...over,
  });
  const t = await Trainer.create(gpu, cfg);
  for (let e = 0; e < 2; e++) await runEpoch(t);
  return t;
}

gpuTest(
  "layer-norm carry equals the naive full forward: relu/tanh/sigmoid/silu, LN before and after",
  async (gpu, rng) => {
    let worst = 0, worstRel = 0, checked = 0;
    // The last case is wider than CARRY_LN_MAX_PRIV: fc1's carry keeps W1's change in the
    // scratch binding instead of a private array.
    const cases: Partial<TrainConfig>[] = [
      ...(["before", "after"] as const).flatMap((normPlacement) =>
        ["relu", "tanh", "sigmoid", "silu"].map((activation) => ({ normPlacement, activation }))
      ),
      { normPlacement: "before", activation: "relu", hidden: [9, 261] },
    ];
    for (const c of cases) {
      const { normPlacement, activation } = c;
      const t = await trained(gpu, { ...c, seed: rng.int(1000) });
      // 43 samples (not a multiple of 4 or of a workgroup); a tiny budget for the batched path.
      const probe = await Probe.fromTrainer(t, { evalSamples: 43, seed: 3, budgetMB: 0.05 });
      const label = `${activation} LN ${normPlacement}`;
      for (let w = 0; w < probe.layers.length; w++) {
        const pl = probe.layers[w];
        const d = await probe.carryDecision(w);
        if (!d.carried) throw new Error(`${label} ${pl.name}: not carried (${d.reason})`);
        const entries = Uint32Array.from({ length: pl.nnz }, (_, i) => i);
        probe.engine = "carry";
        const r = await probe.ablateWeights(w, entries);
        probe.engine = "batched";
        const b = await probe.ablateWeights(w, entries);
        probe.engine = "carry";
        r.dLoss.forEach((v, e) => {
          if (!(Math.abs(v - b.dLoss[e]) <= 2e-6 + 1e-4 * Math.abs(v))) {
            throw new Error(`${label} ${pl.name} entry ${e}: carry ${v}, batched ${b.dLoss[e]}`);
          }
          if (Math.abs(r.dAccuracy[e] - b.dAccuracy[e]) > 1.01 / probe.samples) {
            throw new Error(`${label} ${pl.name} entry ${e}: dAcc differs`);
          }
        });
        for (let n = 0; n < 4; n++) {
          const e = rng.int(pl.nnz);
          const naive = await probe.ablateNaive(w, e);
          const err = Math.abs(r.dLoss[e] - naive.dLoss);
          worst = Math.max(worst, err);
          worstRel = Math.max(worstRel, err / Math.max(1e-6, Math.abs(naive.dLoss)));
          checked++;
          if (!(err <= 2e-6 + 1e-4 * Math.abs(naive.dLoss))) {
            throw new Error(
              `${label} ${pl.name} entry ${e}: carry dLoss ${r.dLoss[e]}, naive ${naive.dLoss}`,
            );
          }
          if (Math.abs(r.dAccuracy[e] - naive.dAccuracy) > 1.01 / probe.samples) {
            throw new Error(`${label} ${pl.name} entry ${e}: dAcc ${r.dAccuracy[e]} vs naive`);
          }
        }
      }
    }
    console.log(
      `layer-norm carry vs naive: ${checked} ablations, worst |ΔdLoss| ${worst.toExponential(2)}` +
        ` (relative ${worstRel.toExponential(2)})`,
    );
  },
);
