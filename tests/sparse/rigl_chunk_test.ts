// RigL's growth over row chunks of the dense gradient (topology.ts gradGrowCandidates) against
// the dense path and the CPU reference. Inputs are small integers, so every |X·dZᵀ| score is
// exact in f32 and there are many exact ties: the grown positions must match bit for bit
// (tolerance 0), ties included (lower position first), whatever the chunking.
import assert from "node:assert/strict";
import { FiligreeError, type Gpu } from "../../src/gpu/mod.ts";
import { topoScratch } from "../../src/kernels/scan.ts";
import { markRef } from "../../src/kernels/topo_ref.ts";
import { allocAct } from "../../src/nn/act.ts";
import { SparseLinear } from "../../src/nn/layers.ts";
import { createAlgorithm, type TrainerView } from "../../src/sparse/algorithms.ts";
import { checkCsr, csrFromCoo, randomMask, uploadCsr } from "../../src/sparse/csr.ts";
import {
  chunkRows,
  denseBudgetBytes,
  gradGrowCandidates,
  needsRowChunks,
} from "../../src/sparse/topology.ts";
import {
  gradScoresRef,
  type LayerSnapshot,
  positionsOf,
  rebuildRef,
  snapshotLayer,
} from "../../src/sparse/topology_ref.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { riglDropFraction } from "../../src/sparse/schedule.ts";
import { gpuTest, type Rng, toPadded } from "../../src/testing/mod.ts";

const CHUNK_KEYS = [
  "x",
  "grad",
  "scores",
  "positions",
  "new scores",
  "new positions",
  "selected",
  "selected at",
  "select result",
  "row of",
];

/** Poisons every scratch array of the chunked search (sizes as the search will ask). */
function poisonChunkScratch(gpu: Gpu, n: number) {
  for (const key of CHUNK_KEYS) gpu.poison(topoScratch(gpu, `rigl chunk ${key}`, n));
}

/** Weights with exact ties (multiples of 1/8) and distinct magnitudes elsewhere. */
function randomValues(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => {
    const u = rng.next();
    if (u < 0.2) return Math.round(rng.normal(1)[0] * 8) / 8;
    return rng.normal(1, 0.5)[0];
  });
}

/** Two layers with the same random topology and weights (one per path). */
function twinLayers(gpu: Gpu, rng: Rng, nIn: number, nOut: number, density: number) {
  const m = randomMask(nIn, nOut, density, rng);
  const csr = csrFromCoo(nIn, nOut, m.rows, m.cols);
  const vals = randomValues(rng, csr.nnz);
  const born = Uint32Array.from({ length: csr.nnz }, () => rng.int(100));
  const state = Float32Array.from({ length: csr.nnz }, () => 1 + rng.next());
  return [0, 1].map((t) => {
    const layer = new SparseLinear(gpu, `l${t}`, uploadCsr(gpu, csr), {});
    gpu.write(layer.csr.values, vals);
    gpu.write(layer.bornStep, born);
    layer.perNonzero.push(gpu.tensor("f32", [csr.nnz], { data: state }));
    return layer;
  });
}

/** Integer activations (x >= 0 like ReLU outputs, dz signed): exact f32 dot products. */
function integerBatch(rng: Rng, rows: number, batch: number, signed: boolean): Float64Array {
  return Float64Array.from(
    { length: rows * batch },
    () => signed ? rng.int(7) - 3 : rng.int(4),
  );
}

/** CPU expectation: top-k of |X·dZᵀ| over positions not kept (ties: lower position first). */
function expectedGrown(
  h: LayerSnapshot["csr"],
  drop: Uint32Array,
  scores: Float64Array,
  k: number,
): number[] {
  const s = Float64Array.from(scores);
  positionsOf(h).forEach((p, e) => {
    if (!drop[e]) s[p] = -1;
  });
  const mask = markRef(s, k, "value", true);
  const out: number[] = [];
  mask.forEach((v, p) => v && out.push(p));
  return out;
}

async function searchCase(
  gpu: Gpu,
  rng: Rng,
  nIn: number,
  nOut: number,
  density: number,
  batch: number,
  budgets: number[],
) {
  const [layer] = twinLayers(gpu, rng, nIn, nOut, density);
  const ld = Math.ceil(batch / 4) * 4;
  const xv = integerBatch(rng, nIn, batch, false), dv = integerBatch(rng, nOut, batch, true);
  const x = allocAct(gpu, nIn, batch, "x"), dz = allocAct(gpu, nOut, batch, "dz");
  gpu.write(x.t, toPadded(xv, nIn, batch));
  gpu.write(dz.t, toPadded(dv, nOut, batch));
  const h = (await snapshotLayer(gpu, layer)).csr;
  const scores = gradScoresRef(
    toPadded(xv, nIn, batch),
    toPadded(dv, nOut, batch),
    nIn,
    nOut,
    batch,
    ld,
  );
  for (const budgetBytes of budgets) {
    // random drop mask: between none and all of the entries
    const q = rng.next();
    const drop = Uint32Array.from({ length: h.nnz }, () => (rng.next() < q ? 1 : 0));
    const free = nIn * nOut - (h.nnz - drop.reduce((a, b) => a + b, 0));
    const cap = 2 ** Math.floor(Math.log2(budgetBytes / 4)); // score slots of the budget
    const kMax = Math.min(free, Math.max(1, Math.floor(h.nnz / 2)), cap - nOut);
    const k = 1 + rng.int(kMax);
    const rows = chunkRows(layer, k, budgetBytes);
    const dropT = gpu.tensor("u32", [Math.max(1, h.nnz)], { data: drop });
    poisonChunkScratch(gpu, Math.max(4, k + rows * nOut));
    const rec = gpu.recorder();
    const pos = gradGrowCandidates(rec, layer, {
      x: x.t,
      dz: dz.t,
      ld,
      drop: dropT,
      k,
      budgetBytes,
    });
    rec.submit();
    const got = Array.from((await gpu.read(pos)).slice(0, k));
    const want = expectedGrown(h, drop, scores, k);
    assert.deepEqual(
      got,
      want,
      `${nIn}x${nOut} k ${k}: ${Math.ceil(nIn / rows)} chunks of ${rows} rows`,
    );
    gpu.release(dropT);
  }
}

gpuTest(
  "gradGrowCandidates: exact top-k over 1, 3+ and one-row chunks (37x53, 131x47, 1x7)",
  async (gpu, rng) => {
    // budgets: everything in one chunk, ~4 chunks, and one input row per chunk
    await searchCase(gpu, rng, 37, 53, 0.1, 13, [1 << 20, 4 * 512, 4 * 128]);
    await searchCase(gpu, rng, 131, 47, 0.1, 5, [1 << 20, 4 * 2048, 4 * 1024, 4 * 256]);
    await searchCase(gpu, rng, 1, 7, 0.5, 1, [4 * 16, 1 << 12]);
    await searchCase(gpu, rng, 61, 1, 0.3, 3, [4 * 32, 4 * 64]);
  },
);

gpuTest(
  "gradGrowCandidates: 2-D dispatch grids (max 16 workgroups per dimension)",
  async (gpu, rng) => {
    const limits = gpu.limits as unknown as Record<string, number>;
    const saved = limits.maxComputeWorkgroupsPerDimension;
    limits.maxComputeWorkgroupsPerDimension = 16;
    try {
      // 211x97 = 20467 positions; chunks of 8192 scores -> 32 groups of 256 -> 2-D grids
      await searchCase(gpu, rng, 211, 97, 0.05, 9, [4 * 8192]);
    } finally {
      limits.maxComputeWorkgroupsPerDimension = saved;
    }
  },
);

gpuTest("chunkRows: budget too small for one row next to k candidates", (gpu, rng) => {
  const [layer] = twinLayers(gpu, rng, 20, 30, 0.2);
  assert.equal(chunkRows(layer, 10, 4 * 64), 1); // 64 slots: 10 + 1·30
  assert.equal(chunkRows(layer, 10, 4 * 128), 3); // 128 slots: 10 + 3·30
  assert.equal(chunkRows(layer, 10, 1 << 20), 20); // capped at nIn
  assert.throws(() => chunkRows(layer, 40, 4 * 64), FiligreeError);
  assert.ok(needsRowChunks(layer, 4 * 512)); // 600 positions -> 1024-element scratch
  assert.ok(!needsRowChunks(layer, 4 * 1024));
  assert.equal(denseBudgetBytes(gpu, 1), 1 << 20);
  assert.equal(
    denseBudgetBytes(gpu, 1e9),
    gpu.limits.maxStorageBufferBindingSize,
    "never above the binding limit",
  );
});

function view(
  cfg: ReturnType<typeof parseTrainConfig>,
  layers: SparseLinear[],
  step: number,
): TrainerView {
  return { step, epoch: 0, stepsPerEpoch: 20, cfg, sparseLayers: layers };
}

gpuTest(
  "RigL with a tiny gradBudgetMB (>= 3 chunks) grows exactly what the dense path and rebuildRef grow",
  async (gpu, rng) => {
    const nIn = 131, nOut = 47, batch = 13, ld = 16;
    const [dense, chunked] = twinLayers(gpu, rng, nIn, nOut, 0.1);
    const base = { method: "rigl", riglAlpha: 0.3, riglStop: 0.75, epochs: 10, updateInterval: 7 };
    const cfgDense = parseTrainConfig(base);
    // 8 KiB: 2048 score slots, k <= 0.3·nnz ~ 185 candidates -> 39 rows of 47 -> 4 chunks
    const cfgChunked = parseTrainConfig({ ...base, gradBudgetMB: 8 / 1024 });
    const budget = denseBudgetBytes(gpu, cfgChunked.gradBudgetMB);
    assert.ok(!needsRowChunks(dense, denseBudgetBytes(gpu, cfgDense.gradBudgetMB)));
    assert.ok(needsRowChunks(chunked, budget));
    const algoDense = createAlgorithm(view(cfgDense, [dense], 0), cfgDense);
    const algoChunked = createAlgorithm(view(cfgChunked, [chunked], 0), cfgChunked);
    for (const s of [7, 14, 63, 119]) {
      const step = s + 1;
      const xv = integerBatch(rng, nIn, batch, false), dv = integerBatch(rng, nOut, batch, true);
      const x = allocAct(gpu, nIn, batch, "x"), dz = allocAct(gpu, nOut, batch, "dz");
      gpu.write(x.t, toPadded(xv, nIn, batch));
      gpu.write(dz.t, toPadded(dv, nOut, batch));
      dense.lastBatch = chunked.lastBatch = { x, dz };
      // "training" between updates: the same new weights in both layers
      const vals = randomValues(rng, dense.csr.nnz);
      gpu.write(dense.csr.values, vals);
      gpu.write(chunked.csr.values, vals);
      const before = await snapshotLayer(gpu, dense);
      const f = riglDropFraction(cfgDense.riglAlpha, s, 150);
      const k = Math.floor(f * before.csr.nnz);
      const rows = chunkRows(chunked, k, budget);
      assert.ok(Math.ceil(nIn / rows) >= 3, `only ${Math.ceil(nIn / rows)} chunks`);
      poisonChunkScratch(gpu, k + rows * nOut);
      for (const [algo, layer] of [[algoDense, dense], [algoChunked, chunked]] as const) {
        const rec = gpu.recorder();
        algo.update(rec, view(layer === dense ? cfgDense : cfgChunked, [layer], step));
        rec.submit();
      }
      const gotDense = await snapshotLayer(gpu, dense);
      const gotChunked = await snapshotLayer(gpu, chunked);
      checkCsr(gotChunked.csr);
      const label = `step ${step} (k ${k}, ${Math.ceil(nIn / rows)} chunks)`;
      for (const key of ["rowPtrT", "colT", "values", "rowPtr", "col", "perm"] as const) {
        assert.deepEqual(
          Array.from(gotChunked.csr[key]),
          Array.from(gotDense.csr[key]),
          `${label}: ${key} chunked vs dense`,
        );
      }
      assert.deepEqual(Array.from(gotChunked.born), Array.from(gotDense.born), `${label}: born`);
      assert.deepEqual(
        Array.from(gotChunked.states[0]),
        Array.from(gotDense.states[0]),
        `${label}: state`,
      );
      // both against the CPU reference with exact scores
      const drop = markRef(before.csr.values, k, "abs", false);
      // the chunked layer really went through the chunked search: its (poisoned) candidate
      // list now holds the grown positions, ascending
      const kept = new Set<number>();
      positionsOf(before.csr).forEach((p, e) => !drop[e] && kept.add(p));
      const grown = Array.from(positionsOf(gotChunked.csr)).filter((p) => !kept.has(p));
      grown.sort((a, b) => a - b);
      const list = await gpu.read(topoScratch(gpu, "rigl chunk positions", k));
      assert.deepEqual(Array.from(list.slice(0, k)), grown, `${label}: chunked candidate list`);
      const scores = gradScoresRef(
        toPadded(xv, nIn, batch),
        toPadded(dv, nOut, batch),
        nIn,
        nOut,
        batch,
        ld,
      );
      const want = rebuildRef(before, { drop, growScores: scores, growCount: k, step });
      for (const key of ["rowPtrT", "colT", "values", "rowPtr", "col", "perm"] as const) {
        assert.deepEqual(
          Array.from(gotChunked.csr[key]),
          Array.from(want.csr[key]),
          `${label}: ${key} vs rebuildRef`,
        );
      }
      assert.deepEqual(Array.from(gotChunked.born), Array.from(want.born), `${label}: born ref`);
      assert.deepEqual(
        Array.from(gotChunked.states[0]),
        Array.from(want.states[0]),
        `${label}: state ref`,
      );
    }
  },
);
