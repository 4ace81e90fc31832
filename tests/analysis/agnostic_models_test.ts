/**
 * Weight-agnostic evaluation (src/analysis/agnostic.ts) through the layer interface: random
 * topologies are swapped in with `WeightView.replaceCsr`, on MLP, CNN and LSTM runs alike, and
 * every weight variant is written into the topology the forward pass actually reads.
 */
import assert from "node:assert/strict";
import { agnosticAnalysis, type AgnosticReport } from "../../src/analysis/agnostic.ts";
import { Probe } from "../../src/analysis/probe.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { runEpoch, Trainer } from "../../src/train/trainer.ts";
import { gpuTest } from "../../src/testing/mod.ts";
import { DataRng } from "../../src/data/random.ts";
import { FiligreeError } from "../../src/gpu/mod.ts";
import { Linear, SparseLinear } from "../../src/nn/layers.ts";
import { csrFromCoo, uploadCsr } from "../../src/sparse/csr.ts";
import { trainedCnn } from "./cnn_fixture.ts";

/**
 * Scale 0 zeroes every weight of the shared/signed variants, so the network computes its biases
 * only and the topology cannot matter: a random mask's scale-0 row must equal the trained mask's.
 * (Writing the variant into a value array the forward does not read breaks exactly this; every
 * layer is sparse here, since a zeroed dense output layer would hide it.)
 */
function checkReport(r: AgnosticReport, before: { loss: number; accuracy: number }): void {
  const tt = r.rows.find((x) => x.mask === "trained" && x.weights === "trained")!;
  assert.equal(tt.accuracy, before.accuracy);
  assert.equal(r.baseline.accuracy, before.accuracy);
  for (const x of r.rows) assert.ok(x.accuracy >= 0 && x.accuracy <= 1 && Number.isFinite(x.loss));
  for (const weights of ["shared", "signed"] as const) {
    const at0 = r.rows.filter((x) => x.weights === weights && x.scale === 0);
    const ref = at0.find((x) => x.mask === "trained")!;
    assert.equal(at0.length, 1 + 2 * 2);
    for (const x of at0) {
      assert.ok(
        Math.abs(x.loss - ref.loss) <= 1e-5 * Math.max(1, Math.abs(ref.loss)),
        `${weights} ${x.mask}: ${x.loss} vs ${ref.loss}`,
      );
    }
  }
  // Random masks do change the model: some trained-value row differs from the baseline.
  assert.ok(
    r.rows.some((x) => x.mask !== "trained" && x.weights === "trained" && x.loss !== before.loss),
  );
}

async function run(t: Trainer) {
  const probe = await Probe.fromTrainer(t, { evalSamples: 60, seed: 3 });
  const before = await probe.evaluate();
  const r = await agnosticAnalysis(probe, { scales: [0, 1], seeds: 2, seed: 5 });
  checkReport(r, before);
  assert.deepEqual(await probe.evaluate(), before, "model restored");
  return r;
}

gpuTest(
  "agnostic: MLP random masks get every weight variant (scale 0 is topology-free)",
  async (gpu) => {
    const cfg = parseTrainConfig({
      dataset: "synthetic",
      syntheticFeatures: 12,
      syntheticClasses: 3,
      syntheticSamples: 300,
      hidden: [16, 8],
      method: "set",
      density: 0.4,
      sparseLayers: "all",
      epochs: 2,
      batchSize: 50,
      lr: 0.05,
    });
    const t = await Trainer.create(gpu, cfg);
    for (let e = 0; e < 2; e++) await runEpoch(t);
    const r = await run(t);
    assert.deepEqual(r.layers.map((l) => [l.name, l.sparse]), [
      ["fc1", true],
      ["fc2", true],
      ["out", true],
    ]);
  },
);

gpuTest("agnostic: a CNN run's convolutions get random masks", async (gpu) => {
  const t = await trainedCnn(gpu, { testSubset: 60 });
  const r = await run(t);
  assert.deepEqual(r.layers.map((l) => l.name), ["conv1", "conv2", "fc1", "out"]);
  assert.ok(r.layers.every((l) => l.sparse));
});

gpuTest("agnostic: an LSTM run's input and recurrent weights get random masks", async (gpu) => {
  const cfg = parseTrainConfig({
    model: "lstm",
    dataset: "mnist",
    trainSubset: 200,
    testSubset: 60,
    lstmHidden: 6,
    hidden: [5],
    method: "set",
    density: 0.5,
    sparseLayers: "all",
    epochs: 1,
    batchSize: 50,
  });
  const t = await Trainer.create(gpu, cfg);
  await runEpoch(t);
  const r = await run(t);
  assert.deepEqual(r.layers.map((l) => [l.name, l.sparse]), [
    ["lstm.wx", true],
    ["lstm.wh", true],
    ["fc1", true],
    ["out", true],
  ]);
});

gpuTest(
  "WeightView.replaceCsr: swaps and returns the old topology; dense or misshapen refused",
  (gpu) => {
    const rng = new DataRng(1);
    const dense = new Linear(gpu, "fc", 4, 3, { rng });
    assert.throws(
      () => dense.weightView().replaceCsr(uploadCsr(gpu, csrFromCoo(4, 3, [0], [0], [1]), "x")),
      (e: Error) => e instanceof FiligreeError && /fc: a dense layer/.test(e.message),
    );
    const a = uploadCsr(gpu, csrFromCoo(4, 3, [0, 1], [0, 2], [1, 2]), "a");
    const b = uploadCsr(gpu, csrFromCoo(4, 3, [2, 3], [1, 1], [3, 4]), "b");
    const sparse = new SparseLinear(gpu, "sp", a, {});
    assert.equal(sparse.weightView().replaceCsr(b), a);
    assert.equal(sparse.csr, b);
    assert.throws(
      () => sparse.weightView().replaceCsr(uploadCsr(gpu, csrFromCoo(5, 3, [0], [0], [1]), "c")),
      /sp: replacement topology is 5x3, the layer 4x3/,
    );
    assert.equal(sparse.weightView().replaceCsr(a), b);
  },
);
