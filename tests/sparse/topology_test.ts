// rebuildTopology (drop / grow / rebuild on the GPU) against the CPU reference rebuildRef.
// Exact: positions, both CSR orientations, perm, values, born steps and per-nonzero state
// must match bit for bit after every one of many random updates (tolerance 0; grown weights
// drawn on the GPU are checked statistically).
import assert from "node:assert/strict";
import { FiligreeError, type Gpu } from "../../src/gpu/mod.ts";
import { topoScratch } from "../../src/kernels/scan.ts";
import { checkCsr, csrFromCoo, randomMask, uploadCsr } from "../../src/sparse/csr.ts";
import { rebuildTopology } from "../../src/sparse/topology.ts";
import {
  type LayerSnapshot,
  positionsOf,
  rebuildRef,
  snapshotLayer,
} from "../../src/sparse/topology_ref.ts";
import { SparseLinear } from "../../src/nn/layers.ts";
import { gpuTest, type Rng } from "../../src/testing/mod.ts";

/** A random layer with `nStates` per-nonzero state tensors and random born steps < 100. */
function makeLayer(
  gpu: Gpu,
  rng: Rng,
  nIn: number,
  nOut: number,
  density: number,
  nStates = 2,
): SparseLinear {
  const m = randomMask(nIn, nOut, density, rng);
  const vals = Float32Array.from(m.rows, () => rng.normal(1, 0.5)[0]);
  const layer = new SparseLinear(
    gpu,
    "l",
    uploadCsr(gpu, csrFromCoo(nIn, nOut, m.rows, m.cols, vals)),
    {},
  );
  const nnz = layer.csr.nnz;
  gpu.write(layer.bornStep, Uint32Array.from({ length: layer.bornStep.size }, () => rng.int(100)));
  for (let s = 0; s < nStates; s++) {
    layer.perNonzero.push(
      gpu.tensor("f32", [nnz], {
        data: Float32Array.from({ length: nnz }, () => rng.normal(1)[0] + 10 * s),
      }),
    );
  }
  return layer;
}

/** Fills the scratch the update uses with poison, so no kernel can rely on stale contents. */
function poisonScratch(gpu: Gpu, size: number) {
  for (
    const key of [
      "row of",
      "grow mask",
      "keep",
      "keep pos",
      "coo i",
      "coo j",
      "coo src",
      "grow pos",
      "rowptr t",
      "col t",
      "perm t",
      "from t",
      "inv t",
      "rowptr",
      "col",
      "perm",
      "new values",
      "new born",
      "state tmp",
    ]
  ) gpu.poison(topoScratch(gpu, `topo ${key}`, Math.max(4, size)));
}

function assertSnapshot(got: LayerSnapshot, want: LayerSnapshot, label: string) {
  checkCsr(got.csr);
  assert.equal(got.csr.nnz, want.csr.nnz, `${label}: nnz`);
  for (const key of ["rowPtrT", "colT", "values", "rowPtr", "col", "perm"] as const) {
    assert.deepEqual(Array.from(got.csr[key]), Array.from(want.csr[key]), `${label}: ${key}`);
  }
  assert.deepEqual(Array.from(got.born), Array.from(want.born), `${label}: born steps`);
  got.states.forEach((st, s) =>
    assert.deepEqual(Array.from(st), Array.from(want.states[s]), `${label}: state ${s}`)
  );
  // W-order entries read the right weight through perm (independently of checkCsr).
  const pos = positionsOf(got.csr);
  for (let i = 0; i < got.csr.nIn; i++) {
    for (let m = got.csr.rowPtr[i]; m < got.csr.rowPtr[i + 1]; m++) {
      assert.equal(pos[got.csr.perm[m]], i * got.csr.nOut + got.csr.col[m], `${label}: perm[${m}]`);
    }
  }
}

/** Random drop mask with fraction q; scores in [0, 1) with some exact ties. */
function randomUpdate(rng: Rng, nnz: number, denseN: number, q: number) {
  const drop = Uint32Array.from({ length: nnz }, () => (rng.next() < q ? 1 : 0));
  const scores = Float32Array.from(
    { length: denseN },
    () => (rng.next() < 0.2 ? Math.floor(rng.next() * 4) / 4 : rng.next()),
  );
  return { drop, scores, nDrop: drop.reduce((a, b) => a + b, 0) };
}

async function runUpdates(
  gpu: Gpu,
  rng: Rng,
  nIn: number,
  nOut: number,
  density: number,
  updates: number,
) {
  const layer = makeLayer(gpu, rng, nIn, nOut, density);
  const denseN = nIn * nOut;
  const storage = layer.csr.values.size;
  const kbuf = gpu.tensor("u32", [8]);
  const dropT = gpu.tensor("u32", [storage]);
  const scoresT = gpu.tensor("f32", [denseN]);
  for (let u = 0; u < updates; u++) {
    const before = await snapshotLayer(gpu, layer);
    const nnz = before.csr.nnz;
    // q: mostly partial drops; one update drops everything, one drops nothing
    const q = u === 1 ? 1 : u === 2 ? 0 : rng.next() * 0.6;
    const { drop, scores, nDrop } = randomUpdate(rng, nnz, denseN, q);
    // SET/RigL keep nnz; every third update prunes instead (grows fewer than it drops)
    const prune = u % 3 === 2 && nDrop > 0 && nDrop < nnz;
    const growCount = prune ? Math.floor(nDrop / 2) : nDrop;
    const newNnz = nnz - nDrop + growCount;
    const step = 1000 + u;
    gpu.poison(dropT);
    gpu.write(dropT, drop);
    gpu.write(scoresT, scores);
    gpu.poison(kbuf);
    poisonScratch(gpu, denseN);
    const onGpu = u % 2 === 1; // grow count as a GPU word on odd updates
    if (onGpu) gpu.write(kbuf, new Uint32Array([0, 0, growCount]));
    const rec = gpu.recorder();
    rebuildTopology(rec, layer, {
      drop: dropT,
      growCount: onGpu ? { tensor: kbuf, index: 2 } : growCount,
      growScores: scoresT,
      newNnz,
      step,
      seed: rng.int(2 ** 31),
      initStd: 0,
      kbuf,
    });
    rec.submit();
    const got = await snapshotLayer(gpu, layer);
    const want = rebuildRef(before, { drop, growScores: scores, growCount, step });
    assertSnapshot(got, want, `${nIn}x${nOut} update ${u} (drop ${nDrop}, grow ${growCount})`);
    assert.equal(layer.csr.nnz, newNnz);
  }
}

gpuTest(
  "rebuildTopology: 37x53 at 10%, 12 updates match the reference exactly",
  async (gpu, rng) => {
    await runUpdates(gpu, rng, 37, 53, 0.1, 12);
  },
);

gpuTest(
  "rebuildTopology: 200x150 at 5%, 8 updates match the reference exactly",
  async (gpu, rng) => {
    await runUpdates(gpu, rng, 200, 150, 0.05, 8);
  },
);

gpuTest("rebuildTopology: tiny layers (1x7, 5x1, 3x3 full)", async (gpu, rng) => {
  await runUpdates(gpu, rng, 1, 7, 0.3, 4);
  await runUpdates(gpu, rng, 5, 1, 0.6, 4);
  await runUpdates(gpu, rng, 3, 3, 1, 4);
});

gpuTest(
  "rebuildTopology: 2-D dispatch grids (max 16 workgroups per dimension)",
  async (gpu, rng) => {
    const limits = gpu.limits as unknown as Record<string, number>;
    const saved = limits.maxComputeWorkgroupsPerDimension;
    limits.maxComputeWorkgroupsPerDimension = 16;
    try {
      await runUpdates(gpu, rng, 211, 97, 0.05, 3); // 20467 positions: 80 groups of 256 -> 2-D
    } finally {
      limits.maxComputeWorkgroupsPerDimension = saved;
    }
  },
);

gpuTest(
  "rebuildTopology: random regrowth is N(0, initStd²), everything else exact",
  async (gpu, rng) => {
    const layer = makeLayer(gpu, rng, 120, 90, 0.1, 1);
    const denseN = 120 * 90;
    const before = await snapshotLayer(gpu, layer);
    const { drop, scores, nDrop } = randomUpdate(rng, before.csr.nnz, denseN, 0.7);
    const dropT = gpu.tensor("u32", [before.csr.nnz], { data: drop });
    const scoresT = gpu.tensor("f32", [denseN], { data: scores });
    const initStd = 0.37;
    const rec = gpu.recorder();
    rebuildTopology(rec, layer, {
      drop: dropT,
      growCount: nDrop,
      growScores: scoresT,
      newNnz: before.csr.nnz,
      step: 555,
      seed: rng.int(2 ** 31),
      initStd,
      kbuf: gpu.tensor("u32", [8]),
    });
    rec.submit();
    const got = await snapshotLayer(gpu, layer);
    const want = rebuildRef(before, { drop, growScores: scores, growCount: nDrop, step: 555 });
    const grown: number[] = [];
    want.born.forEach((b, k) => {
      if (b === 555) {
        grown.push(got.csr.values[k]);
        want.csr.values[k] = got.csr.values[k];
      }
    });
    assertSnapshot(got, want, "random regrowth");
    assert.equal(grown.length, nDrop);
    const n = grown.length;
    const mean = grown.reduce((a, b) => a + b, 0) / n;
    const std = Math.sqrt(grown.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    assert.ok(grown.every(Number.isFinite), "grown weights finite");
    assert.ok(Math.abs(mean) < (5 * initStd) / Math.sqrt(n), `grown mean ${mean} (n ${n})`);
    assert.ok(Math.abs(std / initStd - 1) < 0.15, `grown std ${std}, want ${initStd} (n ${n})`);
    assert.equal(new Set(grown).size, n, "grown values distinct");
  },
);

gpuTest("rebuildTopology: rejects growth past storage and growth without scores", (gpu, rng) => {
  const layer = makeLayer(gpu, rng, 10, 10, 0.2, 0);
  const drop = gpu.tensor("u32", [20], { zero: true });
  const kbuf = gpu.tensor("u32", [8]);
  const rec = gpu.recorder();
  const base = { drop, step: 1, seed: 1, initStd: 0, kbuf };
  assert.throws(
    () => rebuildTopology(rec, layer, { ...base, growCount: 5, newNnz: 25 }),
    (e) => e instanceof FiligreeError && /storage/.test(e.message),
  );
  assert.throws(
    () => rebuildTopology(rec, layer, { ...base, growCount: 5, newNnz: 20 }),
    (e) => e instanceof FiligreeError && /grow scores/.test(e.message),
  );
});
