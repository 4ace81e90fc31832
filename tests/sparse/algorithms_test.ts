// The sparsity plugins (SET, RigL, gradual magnitude pruning, and a custom rule written here)
// over many updates of random layers, against the CPU reference (topology_ref.ts). Drop sets
// and the rebuilt layer are compared exactly (tolerance 0: selections are exact, ties broken
// by lower index first on both sides); random regrowth is checked structurally (grown
// positions were not kept, count, born step, zero state) and statistically (uniform positions,
// N(0, σ²) values); RigL's growth is compared with |X·dZᵀ| in float64 with a tolerance of
// 1e-4 · max score for near-ties (the GPU computes the dense gradient in f32).
import assert from "node:assert/strict";
import { type Gpu, grid, type Recorder, type Tensor } from "../../src/gpu/mod.ts";
import { markRef } from "../../src/kernels/topo_ref.ts";
import { markSelected, radixSelect, SELECT_RESULT_WORDS } from "../../src/kernels/select.ts";
import { topoScratch } from "../../src/kernels/scan.ts";
import { checkCsr, csrFromCoo, randomMask, uploadCsr } from "../../src/sparse/csr.ts";
import {
  ALGORITHMS,
  createAlgorithm,
  type SparsityAlgorithm,
  type TrainerView,
} from "../../src/sparse/algorithms.ts";
import { rebuildTopology, TOPO_RANDOM_SCORES, topoParams } from "../../src/sparse/topology.ts";
import {
  gradScoresRef,
  type LayerSnapshot,
  positionsOf,
  rebuildRef,
  setDropRef,
  snapshotLayer,
} from "../../src/sparse/topology_ref.ts";
import { initStd, SparseLinear } from "../../src/nn/layers.ts";
import { allocAct } from "../../src/nn/act.ts";
import { parseTrainConfig, type TrainConfig } from "../../src/train/config.ts";
import { gmpDensity, riglDropFraction } from "../../src/sparse/schedule.ts";
import { gpuTest, type Rng, toPadded } from "../../src/testing/mod.ts";

function makeLayer(gpu: Gpu, rng: Rng, nIn: number, nOut: number, density: number): SparseLinear {
  const m = randomMask(nIn, nOut, density, rng);
  const layer = new SparseLinear(
    gpu,
    `l${nIn}x${nOut}`,
    uploadCsr(gpu, csrFromCoo(nIn, nOut, m.rows, m.cols)),
    {},
  );
  perturb(gpu, rng, layer);
  gpu.write(layer.bornStep, Uint32Array.from({ length: layer.bornStep.size }, () => rng.int(100)));
  // a fake optimizer state: known random values that must move with their weights
  const nnz = layer.csr.nnz;
  layer.perNonzero.push(
    gpu.tensor("f32", [nnz], { data: Float32Array.from({ length: nnz }, () => 1 + rng.next()) }),
  );
  return layer;
}

/** "Training": new random weights, with exact ties (multiples of 1/8) and some exact zeros. */
function perturb(gpu: Gpu, rng: Rng, layer: SparseLinear) {
  const v = Float32Array.from({ length: layer.csr.nnz }, () => {
    const u = rng.next();
    if (u < 0.03) return 0;
    if (u < 0.15) return Math.round(rng.normal(1)[0] * 8) / 8;
    return rng.normal(1, 0.4)[0];
  });
  gpu.write(layer.csr.values, v);
}

function view(
  cfg: TrainConfig,
  layers: SparseLinear[],
  step: number,
  epoch: number,
  stepsPerEpoch: number,
): TrainerView {
  return { step, epoch, stepsPerEpoch, cfg, sparseLayers: layers };
}

function run(gpu: Gpu, algo: SparsityAlgorithm, t: TrainerView) {
  const rec = gpu.recorder();
  algo.update(rec, t);
  rec.submit();
}

/**
 * Checks an update whose growth is not predictable on the CPU (random): grown entries are those
 * at positions that were not kept; with them as the grow set, the rest must match rebuildRef exactly.
 * Returns the grown dense positions and values.
 */
function checkWithGrown(
  before: LayerSnapshot,
  got: LayerSnapshot,
  drop: Uint32Array,
  step: number,
  label: string,
) {
  const h = got.csr;
  const denseN = h.nIn * h.nOut;
  const gotPos = positionsOf(h);
  const keptPos = new Set<number>();
  const bpos = positionsOf(before.csr);
  bpos.forEach((p, k) => {
    if (!drop[k]) keptPos.add(p);
  });
  const grownPos: number[] = [];
  const grownVals: number[] = [];
  checkCsr(h);
  gotPos.forEach((p, k) => {
    if (!keptPos.has(p)) {
      grownPos.push(p);
      grownVals.push(h.values[k]);
      assert.equal(got.born[k], step, `${label}: born step of grown position ${p}`);
    }
  });
  const scores = new Float32Array(denseN);
  for (const p of grownPos) scores[p] = 1;
  const want = rebuildRef(before, { drop, growScores: scores, growCount: grownPos.length, step });
  // grown values come from the GPU's generator: take them over, checked separately
  positionsOf(want.csr).forEach((p, k) => {
    if (!keptPos.has(p)) want.csr.values[k] = h.values[k];
  });
  for (const key of ["rowPtrT", "colT", "values", "rowPtr", "col", "perm"] as const) {
    assert.deepEqual(Array.from(h[key]), Array.from(want.csr[key]), `${label}: ${key}`);
  }
  assert.deepEqual(Array.from(got.born), Array.from(want.born), `${label}: born`);
  got.states.forEach((s, i) =>
    assert.deepEqual(Array.from(s), Array.from(want.states[i]), `${label}: state ${i}`)
  );
  return { grownPos, grownVals };
}

function stats(a: number[]) {
  const mean = a.reduce((x, y) => x + y, 0) / a.length;
  return { mean, std: Math.sqrt(a.reduce((x, y) => x + (y - mean) ** 2, 0) / a.length) };
}

async function setRun(
  gpu: Gpu,
  rng: Rng,
  ranking: "per-sign" | "global",
  regrowInit: "random" | "zero",
) {
  const cfg = parseTrainConfig({
    method: "set",
    zeta: 0.3,
    setRanking: ranking,
    regrowInit,
    epochs: 20,
    seed: rng.int(1000),
  });
  const layers = [makeLayer(gpu, rng, 37, 53, 0.1), makeLayer(gpu, rng, 200, 150, 0.05)];
  const stds = layers.map((l) => {
    const d = l.csr.nnz / (l.csr.nIn * l.csr.nOut);
    return initStd(cfg.weightInit, Math.max(1, d * l.csr.nIn), d * l.csr.nOut);
  });
  const algo = createAlgorithm(view(cfg, layers, 0, 0, 10), cfg);
  assert.equal(algo.name, "set");
  const nnz0 = layers.map((l) => l.csr.nnz);
  const grownPos = layers.map(() => [] as number[]);
  const grownVals = layers.map(() => [] as number[]);
  for (let epoch = 1; epoch <= 8; epoch++) {
    const t = view(cfg, layers, epoch * 10, epoch, 10);
    assert.ok(algo.updateAfterEpoch(t));
    layers.forEach((l) => perturb(gpu, rng, l));
    const before = await Promise.all(layers.map((l) => snapshotLayer(gpu, l)));
    run(gpu, algo, t);
    for (let l = 0; l < layers.length; l++) {
      const got = await snapshotLayer(gpu, layers[l]);
      const label = `SET ${ranking} layer ${l} epoch ${epoch}`;
      assert.equal(got.csr.nnz, nnz0[l], `${label}: nnz kept`);
      const drop = setDropRef(before[l].csr.values, cfg.zeta, ranking);
      const r = checkWithGrown(before[l], got, drop, t.step, label);
      assert.equal(r.grownPos.length, drop.reduce((a, b) => a + b, 0), `${label}: grown = dropped`);
      grownPos[l].push(...r.grownPos);
      grownVals[l].push(...r.grownVals);
    }
  }
  assert.ok(
    !algo.updateAfterEpoch(view(cfg, layers, 200, cfg.epochs, 10)),
    "no update after the last epoch",
  );
  layers.forEach((l, i) => {
    const denseN = l.csr.nIn * l.csr.nOut;
    // uniform positions: the mean normalized position of n samples is 0.5 ± 0.29/sqrt(n)
    const n = grownPos[i].length;
    const m = grownPos[i].reduce((a, b) => a + b, 0) / n / denseN;
    assert.ok(
      Math.abs(m - 0.5) < 5 * 0.29 / Math.sqrt(n),
      `layer ${i}: grown positions mean ${m} (n ${n})`,
    );
    if (regrowInit === "zero") {
      assert.ok(grownVals[i].every((v) => v === 0), "zero regrowth");
    } else {
      const s = stats(grownVals[i]);
      assert.ok(Math.abs(s.mean) < 5 * stds[i] / Math.sqrt(n), `layer ${i}: grown mean ${s.mean}`);
      assert.ok(
        Math.abs(s.std / stds[i] - 1) < 0.15,
        `layer ${i}: grown std ${s.std} vs ${stds[i]} (n ${n})`,
      );
    }
  });
}

gpuTest("SET per-sign: 8 epochs on 37x53@10% and 200x150@5%", async (gpu, rng) => {
  await setRun(gpu, rng, "per-sign", "random");
});

gpuTest("SET global ranking, zero regrowth: 8 epochs", async (gpu, rng) => {
  await setRun(gpu, rng, "global", "zero");
});

gpuTest(
  "RigL: drops the k smallest |w|, grows the k empty positions with largest |X·dZᵀ|",
  async (gpu, rng) => {
    const cfg = parseTrainConfig({
      method: "rigl",
      riglAlpha: 0.3,
      riglStop: 0.75,
      epochs: 10,
      updateInterval: 7,
    });
    const spe = 20; // T_end = 150
    const layers = [makeLayer(gpu, rng, 37, 53, 0.1), makeLayer(gpu, rng, 200, 150, 0.05)];
    const algo = createAlgorithm(view(cfg, layers, 0, 0, spe), cfg);
    assert.equal(algo.name, "rigl");
    assert.ok(algo.needsGradients);
    // schedule: after global step s = step - 1 with s > 0, s % 7 == 0, s < 150
    const fired = [];
    for (
      let step = 1;
      step <= 200;
      step++
    ) if (algo.updateAfterStep(view(cfg, layers, step, 0, spe))) fired.push(step - 1);
    assert.deepEqual(fired, Array.from({ length: 21 }, (_, i) => 7 * (i + 1)));
    // no batch recorded yet: the layers are left alone
    const untouched = await snapshotLayer(gpu, layers[0]);
    run(gpu, algo, view(cfg, layers, 8, 0, spe));
    assert.deepEqual(
      Array.from((await snapshotLayer(gpu, layers[0])).csr.colT),
      Array.from(untouched.csr.colT),
    );

    const batch = 13; // ld 16: padding columns must stay out of the gradient
    for (const s of [7, 14, 63, 98, 119]) {
      const step = s + 1;
      const xs: Float64Array[] = [], dzs: Float64Array[] = [];
      for (const l of layers) {
        perturb(gpu, rng, l);
        const x = allocAct(gpu, l.csr.nIn, batch, "x"), dz = allocAct(gpu, l.csr.nOut, batch, "dz");
        const xv = rng.normal(l.csr.nIn * batch), dv = rng.normal(l.csr.nOut * batch);
        gpu.write(x.t, toPadded(xv, l.csr.nIn, batch));
        gpu.write(dz.t, toPadded(dv, l.csr.nOut, batch));
        xs.push(Float64Array.from(toPadded(xv, l.csr.nIn, batch)));
        dzs.push(Float64Array.from(toPadded(dv, l.csr.nOut, batch)));
        l.lastBatch = { x, dz };
      }
      const before = await Promise.all(layers.map((l) => snapshotLayer(gpu, l)));
      run(gpu, algo, view(cfg, layers, step, 0, spe));
      const f = riglDropFraction(cfg.riglAlpha, s, 150);
      for (let l = 0; l < layers.length; l++) {
        const h = before[l].csr;
        const label = `RigL layer ${l} step ${step}`;
        const got = await snapshotLayer(gpu, layers[l]);
        const k = Math.floor(f * h.nnz);
        assert.ok(k > 0);
        assert.equal(got.csr.nnz, h.nnz, `${label}: nnz kept`);
        const drop = markRef(h.values, k, "abs", false);
        const r = checkWithGrown(before[l], got, drop, step, label);
        assert.equal(r.grownPos.length, k, `${label}: grew k`);
        assert.ok(r.grownVals.every((v) => v === 0), `${label}: grown weights are zero`);
        // grown = top-k of |X·dZᵀ| over the positions not kept
        const g = gradScoresRef(xs[l], dzs[l], h.nIn, h.nOut, batch, 16);
        const kept = new Set<number>();
        positionsOf(h).forEach((p, e) => {
          if (!drop[e]) kept.add(p);
        });
        const grown = new Set(r.grownPos);
        let minGrown = Infinity, maxOther = -Infinity, maxG = 0;
        for (let p = 0; p < g.length; p++) {
          maxG = Math.max(maxG, g[p]);
          if (kept.has(p)) continue;
          if (grown.has(p)) minGrown = Math.min(minGrown, g[p]);
          else maxOther = Math.max(maxOther, g[p]);
        }
        assert.ok(
          minGrown >= maxOther - 1e-4 * maxG,
          `${label}: grown min |g| ${minGrown} < best skipped ${maxOther}`,
        );
      }
    }
  },
);

gpuTest(
  "gradual magnitude pruning: nnz follows the cubic schedule, keeps the largest |w|",
  async (gpu, rng) => {
    const cfg = parseTrainConfig({
      method: "prune",
      epochs: 10,
      pruneStart: 0.1,
      pruneEnd: 0.75,
      updateInterval: 5,
    });
    const spe = 10; // 100 steps: window [10, 75]
    const layers = [makeLayer(gpu, rng, 37, 53, 0.5), makeLayer(gpu, rng, 60, 41, 0.3)];
    const targets = [0.1, 0.05];
    const algo = createAlgorithm(view(cfg, layers, 0, 0, spe), cfg, targets);
    assert.equal(algo.name, "prune");
    let updates = 0;
    for (let step = 0; step <= 100; step++) {
      const t = view(cfg, layers, step, 0, spe);
      if (!algo.updateAfterStep(t)) continue;
      updates++;
      layers.forEach((l) => perturb(gpu, rng, l));
      const before = await Promise.all(layers.map((l) => snapshotLayer(gpu, l)));
      run(gpu, algo, t);
      for (let l = 0; l < layers.length; l++) {
        const h = before[l].csr;
        const dense = h.nIn * h.nOut;
        const target = Math.min(
          h.nnz,
          Math.max(1, Math.round(gmpDensity(1, targets[l], 10, 75, step) * dense)),
        );
        const got = await snapshotLayer(gpu, layers[l]);
        const label = `prune layer ${l} step ${step}`;
        assert.equal(got.csr.nnz, target, `${label}: nnz`);
        const drop = markRef(h.values, h.nnz - target, "abs", false);
        const want = rebuildRef(before[l], { drop, growCount: 0, step });
        for (const key of ["rowPtrT", "colT", "values", "rowPtr", "col", "perm"] as const) {
          assert.deepEqual(Array.from(got.csr[key]), Array.from(want.csr[key]), `${label}: ${key}`);
        }
        assert.deepEqual(Array.from(got.born), Array.from(want.born), `${label}: born`);
        assert.deepEqual(Array.from(got.states[0]), Array.from(want.states[0]), `${label}: state`);
      }
    }
    assert.equal(updates, 14); // 10, 15, ..., 75
    layers.forEach((l, i) =>
      assert.equal(l.csr.nnz, Math.round(targets[i] * l.csr.nIn * l.csr.nOut))
    );
  },
);

/**
 * A custom rule through the plugin API: after every epoch, drop the k = ⌊ζ·nnz⌋ most negative
 * weights and regrow k at uniformly random empty positions, zero-initialized.
 */
class DropNegativeGrowRandom implements SparsityAlgorithm {
  readonly name = "drop-negative";
  readonly needsGradients = false;
  updateAfterStep(): boolean {
    return false;
  }
  updateAfterEpoch(t: TrainerView): boolean {
    return t.epoch < t.cfg.epochs;
  }
  update(rec: Recorder, t: TrainerView): void {
    const gpu = rec.gpu;
    t.sparseLayers.forEach((layer, l) => {
      const c = layer.csr;
      const k = Math.floor(t.cfg.zeta * c.nnz);
      const result = topoScratch(gpu, "custom select", SELECT_RESULT_WORDS);
      const drop = topoScratch(gpu, "custom drop", c.nnz);
      radixSelect(rec, { data: c.values, n: c.nnz, k, mode: "value", result });
      markSelected(rec, { data: c.values, n: c.nnz, mode: "value", result, mask: drop });
      const n = c.nIn * c.nOut;
      const scores: Tensor = { ...topoScratch(gpu, "custom scores", n), dtype: "f32" };
      const seed = (t.cfg.seed * 7919 + t.epoch * 131 + l) >>> 0;
      rec.dispatch(
        gpu.kernel(TOPO_RANDOM_SCORES),
        { p: topoParams(gpu, layer, { seed }), scores },
        grid(gpu, Math.ceil(n / 256)),
      );
      rebuildTopology(rec, layer, {
        drop,
        growCount: k,
        growScores: scores,
        newNnz: c.nnz,
        step: t.step,
        seed,
        initStd: 0,
        kbuf: topoScratch(gpu, "custom kbuf", 8),
      });
    });
  }
}

gpuTest("custom rule (drop most negative, grow random) keeps the invariants", async (gpu, rng) => {
  const cfg = parseTrainConfig({ method: "set", zeta: 0.2, epochs: 10 });
  const layers = [makeLayer(gpu, rng, 37, 53, 0.1), makeLayer(gpu, rng, 200, 150, 0.05)];
  const algo: SparsityAlgorithm = new DropNegativeGrowRandom();
  for (let epoch = 1; epoch <= 5; epoch++) {
    const t = view(cfg, layers, 1000 + epoch, epoch, 10);
    assert.ok(algo.updateAfterEpoch(t));
    layers.forEach((l) => perturb(gpu, rng, l));
    const before = await Promise.all(layers.map((l) => snapshotLayer(gpu, l)));
    run(gpu, algo, t);
    for (let l = 0; l < layers.length; l++) {
      const h = before[l].csr;
      const got = await snapshotLayer(gpu, layers[l]);
      const k = Math.floor(cfg.zeta * h.nnz);
      const drop = markRef(h.values, k, "value", false);
      const r = checkWithGrown(before[l], got, drop, t.step, `custom layer ${l} epoch ${epoch}`);
      assert.equal(r.grownPos.length, k);
      assert.ok(r.grownVals.every((v) => v === 0));
    }
  }
});

gpuTest("dense and static never update", () => {
  const cfg = parseTrainConfig({ method: "static" });
  for (const algo of [ALGORITHMS.dense(), ALGORITHMS.static()]) {
    const t = view(cfg, [], 5, 1, 10);
    assert.ok(!algo.updateAfterStep(t) && !algo.updateAfterEpoch(t));
  }
});
