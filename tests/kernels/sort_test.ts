import { FiligreeError, type Gpu } from "../../src/gpu/mod.ts";
import { SORT_STATUS, sortToCsr } from "../../src/kernels/sort.ts";
import { csrSortRef } from "../../src/kernels/topo_ref.ts";
import { gpuTest, type Rng } from "../../src/testing/mod.ts";

// Exact integer outputs: tolerance 0, every element of rowPtr, colIdx and perm compared.

function sameArray(got: ArrayLike<number>, want: ArrayLike<number>, label: string) {
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) throw new Error(`${label}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

async function withSmallGrid<T>(gpu: Gpu, max: number, fn: () => Promise<T>): Promise<T> {
  const limits = gpu.limits as Record<string, number>;
  const saved = limits.maxComputeWorkgroupsPerDimension;
  limits.maxComputeWorkgroupsPerDimension = max;
  try {
    return await fn();
  } finally {
    limits.maxComputeWorkgroupsPerDimension = saved;
  }
}

function shuffle(rng: Rng, a: number[]) {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
}

/** Unique random cells at the given density, in random order; `extra` cells are forced in. */
function randomPairs(
  rng: Rng,
  nRows: number,
  nCols: number,
  density: number,
  extra: number[] = [],
) {
  const cells = new Set<number>(extra);
  const want = Math.round(density * nRows * nCols);
  while (cells.size < want) cells.add(rng.int(nRows * nCols));
  const list = [...cells];
  shuffle(rng, list);
  return {
    rows: Uint32Array.from(list, (x) => Math.floor(x / nCols)),
    cols: Uint32Array.from(list, (x) => x % nCols),
  };
}

async function runSort(
  gpu: Gpu,
  rows: Uint32Array,
  cols: Uint32Array,
  nRows: number,
  nCols: number,
  payload?: Uint32Array,
) {
  const nnz = rows.length;
  const len = Math.max(nnz, 1);
  const tr = gpu.tensor("u32", [len], { data: nnz ? rows : new Uint32Array(1) });
  const tc = gpu.tensor("u32", [len], { data: nnz ? cols : new Uint32Array(1) });
  const tp = payload ? gpu.tensor("u32", [len], { data: payload }) : undefined;
  const rowPtr = gpu.tensor("u32", [nRows + 1]);
  const colIdx = gpu.tensor("u32", [len]);
  const perm = gpu.tensor("u32", [len]);
  const status = gpu.tensor("u32", [2]);
  for (const t of [rowPtr, colIdx, perm, status]) gpu.poison(t);
  const rec = gpu.recorder();
  sortToCsr(rec, {
    rows: tr,
    cols: tc,
    nnz,
    nRows,
    nCols,
    payload: tp,
    rowPtr,
    colIdx,
    perm,
    status,
  });
  rec.submit();
  const out = {
    rowPtr: await gpu.read(rowPtr),
    colIdx: await gpu.read(colIdx),
    perm: await gpu.read(perm),
    status: await gpu.read(status),
  };
  for (const t of [tr, tc, rowPtr, colIdx, perm, status]) gpu.release(t);
  if (tp) gpu.release(tp);
  return out;
}

async function check(
  gpu: Gpu,
  rows: Uint32Array,
  cols: Uint32Array,
  nRows: number,
  nCols: number,
  label: string,
  payload?: Uint32Array,
) {
  const got = await runSort(gpu, rows, cols, nRows, nCols, payload);
  const ref = csrSortRef(rows, cols, nRows, payload);
  sameArray(got.rowPtr, ref.rowPtr, `${label} rowPtr`);
  sameArray(got.colIdx.subarray(0, rows.length), ref.cols, `${label} colIdx`);
  sameArray(got.perm.subarray(0, rows.length), ref.perm, `${label} perm`);
  sameArray(got.status, [0, 0], `${label} status`);
}

gpuTest(
  "sortToCsr matches reference: tiny, empty rows/cols, dense row, payload, transpose",
  async (gpu, rng) => {
    await check(gpu, new Uint32Array([0]), new Uint32Array([0]), 1, 1, "1x1");
    await check(gpu, new Uint32Array(0), new Uint32Array(0), 1, 1, "1x1 empty");
    await check(gpu, new Uint32Array(0), new Uint32Array(0), 5, 70, "5x70 empty");
    // 7x13: row 3 fully dense, rows 0 and 6 and column 12 empty (apart from row 3).
    const cells: number[] = [];
    for (let c = 0; c < 13; c++) cells.push(3 * 13 + c);
    for (let r = 1; r < 6; r++) {
      for (let c = 0; c < 12; c++) if (r !== 3 && rng.next() < 0.3) cells.push(r * 13 + c);
    }
    shuffle(rng, cells);
    const rows = Uint32Array.from(cells, (x) => Math.floor(x / 13));
    const cols = Uint32Array.from(cells, (x) => x % 13);
    await check(gpu, rows, cols, 7, 13, "7x13");
    // Transposed orientation: same routine with (col, row).
    await check(gpu, cols, rows, 13, 7, "7x13 transposed");
    // A dense 3x97 matrix (rows wider than one 32-bit word, last word partial) with a payload.
    const dense = randomPairs(rng, 3, 97, 1);
    const payload = Uint32Array.from({ length: dense.rows.length }, () => rng.int(0xffffffff));
    await check(gpu, dense.rows, dense.cols, 3, 97, "3x97 dense payload", payload);
  },
);

gpuTest(
  "sortToCsr matches reference: 1000x784 at 5%, 4096x4096 at 1% (both orientations)",
  async (gpu, rng) => {
    const a = randomPairs(rng, 1000, 784, 0.05, [17 * 784 + 783, 999 * 784]);
    await check(gpu, a.rows, a.cols, 1000, 784, "1000x784");
    await check(gpu, a.cols, a.rows, 784, 1000, "784x1000 (transposed)");
    const b = randomPairs(rng, 4096, 4096, 0.01);
    await check(gpu, b.rows, b.cols, 4096, 4096, "4096x4096");
  },
);

gpuTest("sortToCsr with 2-D dispatch grids", async (gpu, rng) => {
  // 30 workgroups per dimension: 39,200 entries need 154 groups of 256 -> a 2-D grid.
  const a = randomPairs(rng, 1000, 784, 0.05);
  await withSmallGrid(gpu, 30, () => check(gpu, a.rows, a.cols, 1000, 784, "1000x784 2-D grid"));
});

gpuTest("sortToCsr reports out-of-range and duplicate entries, rejects bad sizes", async (gpu) => {
  const rows = new Uint32Array([0, 1, 1, 5, 1]);
  const cols = new Uint32Array([0, 2, 2, 0, 9]);
  const got = await runSort(gpu, rows, cols, 2, 3);
  sameArray(got.status, [2, 1], "status");
  if (got.status[SORT_STATUS.DUPLICATES] !== 1) throw new Error("duplicate count slot");
  sameArray(got.rowPtr, [0, 1, 2], "rowPtr of the valid unique pairs");
  sameArray(got.colIdx.subarray(0, 2), [0, 2], "colIdx of the valid unique pairs");
  const t = gpu.tensor("u32", [4]);
  const rec = gpu.recorder();
  const bad = [
    () =>
      sortToCsr(rec, {
        rows: t,
        cols: t,
        nnz: 5,
        nRows: 2,
        nCols: 2,
        rowPtr: t,
        colIdx: t,
        perm: t,
      }),
    () =>
      sortToCsr(rec, {
        rows: t,
        cols: t,
        nnz: 1,
        nRows: 1 << 16,
        nCols: 1 << 16,
        rowPtr: gpu.tensor("u32", [1]),
        colIdx: gpu.tensor("u32", [1]),
        perm: gpu.tensor("u32", [1]),
      }),
    () =>
      sortToCsr(rec, {
        rows: t,
        cols: t,
        nnz: 1,
        nRows: 2,
        nCols: 2,
        rowPtr: t,
        colIdx: gpu.tensor("u32", [1]),
        perm: gpu.tensor("u32", [1]),
      }),
  ];
  for (const f of bad) {
    let ok = false;
    try {
      f();
    } catch (e) {
      ok = e instanceof FiligreeError;
    }
    if (!ok) throw new Error(`expected a FiligreeError from ${f}`);
  }
});
