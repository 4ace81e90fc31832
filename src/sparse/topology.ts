/**
 * Drop/grow/rebuild of a sparse layer's topology, entirely on the GPU: the shared machinery
 * under SET, RigL and gradual magnitude pruning. No weight array is read back.
 *
 * One update, given a u32 drop mask over the nonzeros (values order) and, optionally, dense
 * grow scores over all `nIn·nOut` positions and a grow count (CPU number or GPU word):
 * 1. occupied positions that are kept get grow score −1, the top `growCount` scores are
 *    marked (radix select + exactly-k mask, select.ts);
 * 2. the new COO list is compacted by exclusive scans (kept entries, then grown positions);
 * 3. CSR(Wᵀ) and CSR(W) are rebuilt by the bitmap counting sort (sort.ts), the latter with
 *    the new values-order slot as payload, which is exactly its permutation;
 * 4. values, per-nonzero arrays (optimizer state: moved, new entries 0) and the grown-at
 *    step are gathered into the new order; grown weights start at N(0, initStd²) or 0.
 *
 * Memory: the dense score and grow-mask arrays are 4·nIn·nOut bytes each (1000×1000: 4 MB,
 * 4096×4096: 64 MB, below the 128 MiB binding limit); past ~5792×5792 they would need
 * chunking by rows, which is not implemented (a FiligreeError says so).
 *
 * @example
 * ```ts ignore
 * rebuildTopology(rec, layer, { drop, growCount: { tensor: kbuf, index: 2 }, growScores, newNnz: layer.csr.nnz, step, seed, initStd: 0 });
 * ```
 * @module
 */
import {
  defineKernel,
  f32,
  FiligreeError,
  type Gpu,
  grid,
  packParams,
  type Recorder,
  type Tensor,
} from "../gpu/mod.ts";
import code from "../../shaders/topology.wgsl" with { type: "text" };
import { exclusiveScan, topoScratch } from "../kernels/scan.ts";
import { type GpuK, markSelected, radixSelect, SELECT_RESULT_WORDS } from "../kernels/select.ts";
import { sortToCsr } from "../kernels/sort.ts";
import { remapState } from "../kernels/optim.ts";
import type { SparseLinear } from "../nn/layers.ts";

const def = (entry: string, bindings: [string, "uniform" | "read" | "read_write"][]) =>
  defineKernel({ shader: "topology.wgsl", code, entry, bindings: [["p", "uniform"], ...bindings] });

export const TOPO_COUNT_SIGNS = def("count_signs", [["vals", "read"], ["counts", "read_write"]]);
export const TOPO_SET_K = def("set_k", [["kbuf", "read_write"]]);
export const TOPO_ROWS_OF = def("rows_of_entries", [["row_ptr_t", "read"], [
  "row_of",
  "read_write",
]]);
export const TOPO_RANDOM_SCORES = def("random_scores", [["scores", "read_write"]]);
export const TOPO_GRAD_SCORES = def("gradient_scores", [["grad", "read"], [
  "grad_scores",
  "read_write",
]]);
export const TOPO_EXCLUDE = def("exclude_kept", [["col_t", "read"], ["entry_row", "read"], [
  "drop",
  "read",
], ["occupied_scores", "read_write"]]);
export const TOPO_KEEP = def("keep_flags", [["drop_in", "read"], ["keep", "read_write"]]);
export const TOPO_SCATTER_KEPT = def("scatter_kept", [
  ["kcol_t", "read"],
  ["krow", "read"],
  ["kdrop", "read"],
  ["kpos", "read"],
  ["coo_i", "read_write"],
  ["coo_j", "read_write"],
  ["coo_src", "read_write"],
]);
export const TOPO_SCATTER_GROWN = def("scatter_grown", [
  ["grow", "read"],
  ["gpos", "read"],
  ["kcount", "read"],
  ["gcoo_i", "read_write"],
  ["gcoo_j", "read_write"],
  ["gcoo_src", "read_write"],
]);
export const TOPO_SOURCES = def("sources", [["perm_t", "read"], ["src_of", "read"], [
  "from_t",
  "read_write",
], ["inv_t", "read_write"]]);
export const TOPO_GATHER = def("gather_values", [
  ["from_v", "read"],
  ["old_vals", "read"],
  ["old_born", "read"],
  ["new_vals", "read_write"],
  ["new_born", "read_write"],
]);

/** Bound on the per-invocation loop of `rows_of_entries` (a CSR(Wᵀ) row, <= nIn entries). */
export const MAX_ROW_TRIPS = 65_000;

/** Parameters of one update. */
export interface TopologyUpdate {
  /** u32 [nnz]: 1 = remove this nonzero. */
  drop: Tensor;
  /** How many positions to grow (0 for pruning). */
  growCount: number | GpuK;
  /** f32 [nIn·nOut] scores (larger = grow first); overwritten. Required when growing. */
  growScores?: Tensor;
  /** Nonzeros after the update (CPU-known: SET/RigL keep nnz, pruning lowers it). */
  newNnz: number;
  /** Global step, stamped on grown weights. */
  step: number;
  /** Seed of this update (regrowth values). */
  seed: number;
  /** Std of grown weights; 0 = zero-initialized. */
  initStd: number;
  /** u32 [>= 4] work buffer; word 3 receives the kept count. */
  kbuf: Tensor;
}

/** Uniform of the topology kernels. */
export function topoParams(
  gpu: Gpu,
  layer: SparseLinear,
  u: { zeta?: number; seed?: number; step?: number; initStd?: number; newNnz?: number },
): GPUBuffer {
  const c = layer.csr;
  return gpu.uniform(packParams([
    c.nIn,
    c.nOut,
    c.nnz,
    c.nIn * c.nOut,
    f32(u.zeta ?? 0),
    (u.seed ?? 0) >>> 0,
    u.step ?? 0,
    f32(u.initStd ?? 0),
    u.newNnz ?? c.nnz,
  ]));
}

/** Dense-position scratch limit check. */
export function checkDenseScratch(gpu: Gpu, layer: SparseLinear): void {
  const n = layer.csr.nIn * layer.csr.nOut;
  gpu.checkLimit(
    "maxStorageBufferBindingSize",
    n * 4,
    `${layer.name}: dense grow scores (${layer.csr.nIn}x${layer.csr.nOut}; row chunking not implemented)`,
  );
}

/** Output row of every nonzero (values order), into `rowOf` (u32 [nnz]). */
export function rowsOfEntries(rec: Recorder, layer: SparseLinear, rowOf: Tensor): void {
  const gpu = rec.gpu;
  // One invocation walks one CSR(Wᵀ) row: at most nIn trips (llvmpipe stops loops at 65,535).
  if (layer.csr.nIn > MAX_ROW_TRIPS) {
    throw new FiligreeError(
      `${layer.name}: ${layer.csr.nIn} inputs exceed the per-invocation loop bound ${MAX_ROW_TRIPS} of rows_of_entries`,
    );
  }
  rec.dispatch(gpu.kernel(TOPO_ROWS_OF), {
    p: topoParams(gpu, layer, {}),
    row_ptr_t: layer.csr.rowPtrT,
    row_of: rowOf,
  }, grid(gpu, Math.ceil(layer.csr.nOut / 64)));
}

/** Records one drop/grow/rebuild of `layer` (see the module documentation). */
export function rebuildTopology(rec: Recorder, layer: SparseLinear, u: TopologyUpdate): void {
  const gpu = rec.gpu;
  const c = layer.csr;
  const nnz = c.nnz;
  const denseN = c.nIn * c.nOut;
  if (u.newNnz > c.values.size) {
    throw new FiligreeError(
      `${layer.name}: update would grow nnz to ${u.newNnz} beyond its storage ${c.values.size}`,
    );
  }
  const p = topoParams(gpu, layer, {
    seed: u.seed,
    step: u.step,
    initStd: u.initStd,
    newNnz: u.newNnz,
  });
  const g1 = (n: number) => grid(gpu, Math.ceil(Math.max(1, n) / 256));
  const s = (key: string, n: number) => topoScratch(gpu, `topo ${key}`, Math.max(4, n));

  const rowOf = s("row of", nnz);
  rowsOfEntries(rec, layer, rowOf);

  // 1. grow mask over dense positions
  const growMask = s("grow mask", denseN);
  const growing = typeof u.growCount !== "number" || u.growCount > 0;
  if (growing) {
    if (!u.growScores) throw new FiligreeError(`${layer.name}: growing needs grow scores`);
    rec.dispatch(gpu.kernel(TOPO_EXCLUDE), {
      p,
      col_t: c.colT,
      entry_row: rowOf,
      drop: u.drop,
      occupied_scores: u.growScores,
    }, g1(nnz));
    const result = s("grow select", SELECT_RESULT_WORDS);
    radixSelect(rec, {
      data: u.growScores,
      n: denseN,
      k: u.growCount,
      mode: "value",
      largest: true,
      result,
    });
    markSelected(rec, {
      data: u.growScores,
      n: denseN,
      mode: "value",
      largest: true,
      result,
      mask: growMask,
    });
  }

  // 2. compact: kept entries, then grown positions
  const keep = s("keep", nnz);
  const keepPos = s("keep pos", nnz);
  rec.dispatch(gpu.kernel(TOPO_KEEP), { p, drop_in: u.drop, keep }, g1(nnz));
  exclusiveScan(rec, { input: keep, output: keepPos, n: nnz, total: { tensor: u.kbuf, index: 3 } });
  const cooI = s("coo i", u.newNnz), cooJ = s("coo j", u.newNnz), cooSrc = s("coo src", u.newNnz);
  rec.dispatch(gpu.kernel(TOPO_SCATTER_KEPT), {
    p,
    kcol_t: c.colT,
    krow: rowOf,
    kdrop: u.drop,
    kpos: keepPos,
    coo_i: cooI,
    coo_j: cooJ,
    coo_src: cooSrc,
  }, g1(nnz));
  if (growing) {
    const growPos = s("grow pos", denseN);
    exclusiveScan(rec, { input: growMask, output: growPos, n: denseN });
    rec.dispatch(gpu.kernel(TOPO_SCATTER_GROWN), {
      p,
      grow: growMask,
      gpos: growPos,
      kcount: u.kbuf,
      gcoo_i: cooI,
      gcoo_j: cooJ,
      gcoo_src: cooSrc,
    }, g1(denseN));
  }

  // 3. CSR(Wᵀ) by (j, i); then CSR(W) by (i, j) with the new slot as payload = its permutation
  const newRowPtrT = s("rowptr t", c.nOut + 1),
    newColT = s("col t", u.newNnz),
    permT = s("perm t", u.newNnz);
  sortToCsr(rec, {
    rows: cooJ,
    cols: cooI,
    nnz: u.newNnz,
    nRows: c.nOut,
    nCols: c.nIn,
    rowPtr: newRowPtrT,
    colIdx: newColT,
    perm: permT,
  });
  const fromT = s("from t", u.newNnz), invT = s("inv t", u.newNnz);
  rec.dispatch(gpu.kernel(TOPO_SOURCES), {
    p,
    perm_t: permT,
    src_of: cooSrc,
    from_t: fromT,
    inv_t: invT,
  }, g1(u.newNnz));
  const newRowPtr = s("rowptr", c.nIn + 1),
    newCol = s("col", u.newNnz),
    newPerm = s("perm", u.newNnz);
  sortToCsr(rec, {
    rows: cooI,
    cols: cooJ,
    nnz: u.newNnz,
    nRows: c.nIn,
    nCols: c.nOut,
    payload: invT,
    rowPtr: newRowPtr,
    colIdx: newCol,
    perm: newPerm,
  });

  // 4. values, grown-at steps and per-nonzero optimizer state into the new order
  const newVals = s("new values", u.newNnz), newBorn = s("new born", u.newNnz);
  const vf = { ...newVals, dtype: "f32" as const };
  rec.dispatch(gpu.kernel(TOPO_GATHER), {
    p,
    from_v: fromT,
    old_vals: c.values,
    old_born: layer.bornStep,
    new_vals: vf,
    new_born: newBorn,
  }, g1(u.newNnz));
  const stateTmp = { ...s("state tmp", u.newNnz), dtype: "f32" as const };
  for (const st of layer.perNonzero) {
    remapState(rec, { src: st, from: fromT, dst: stateTmp, n: u.newNnz, srcN: nnz });
    rec.copy(stateTmp, st, u.newNnz);
  }
  rec.copy(newVals, c.values, u.newNnz);
  rec.copy(newBorn, layer.bornStep, u.newNnz);
  rec.copy(newRowPtrT, c.rowPtrT, c.nOut + 1);
  rec.copy(newColT, c.colT, u.newNnz);
  rec.copy(newRowPtr, c.rowPtr, c.nIn + 1);
  rec.copy(newCol, c.col, u.newNnz);
  rec.copy(newPerm, c.perm, u.newNnz);
  c.nnz = u.newNnz;
}
