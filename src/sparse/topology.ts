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
 * 4096×4096: 64 MB, below the 128 MiB binding limit). Past that (or past a smaller budget),
 * growth by score can instead be given as a list of grown positions (`grownPositions`), which
 * {@link gradGrowCandidates} computes for RigL in row chunks of the dense gradient: each chunk's
 * scores are ranked together with the k best candidates of the chunks before it, so only
 * k + rows·nOut scores are ever held, and the result is exactly the dense top-k (same ties).
 * SET's random scores still need the dense array (a FiligreeError says so past the limit).
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
import { matmul } from "../kernels/matmul.ts";
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

/**
 * Kernels of the row-chunked RigL growth search and of growth from a position list. Hand-written
 * WGSL kept next to its only user; one invocation per element, no loops.
 */
const CHUNK_WGSL = /* wgsl */ `
struct ChunkParams {
  n_in: u32,
  n_out: u32,
  nnz: u32,      // nonzeros (values order)
  k: u32,        // candidate slots (chunk search) / grown entries (list scatter)
  row0: u32,     // first input row of the chunk
  rows: u32,     // input rows in the chunk
  chunk_n: u32,  // rows * n_out
  total_n: u32,  // k + chunk_n: length of the ranked array [candidates | chunk]
  new_nnz: u32,  // nonzeros after the update (list scatter)
}

const NO_POS: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> cp: ChunkParams;

fn flat(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * 256u; }

// Empty candidate slots rank below every real (>= 0) and occupied (-1) score.
@group(0) @binding(1) var<storage, read_write> init_scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> init_pos: array<u32>;

@compute @workgroup_size(256)
fn cand_init(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = flat(gid, nwg);
  if (q >= cp.k) { return; }
  init_scores[q] = -2.0;
  init_pos[q] = NO_POS;
}

// Chunk scores |g| behind the k candidate slots.
@group(0) @binding(1) var<storage, read> g_chunk: array<f32>;
@group(0) @binding(2) var<storage, read_write> s_chunk: array<f32>;

@compute @workgroup_size(256)
fn chunk_scores(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = flat(gid, nwg);
  if (q >= cp.chunk_n) { return; }
  s_chunk[cp.k + q] = abs(g_chunk[q]);
}

// Kept entries whose input row lies in the chunk cannot be grown: score -1.
@group(0) @binding(1) var<storage, read> ex_col_t: array<u32>;
@group(0) @binding(2) var<storage, read> ex_row: array<u32>;
@group(0) @binding(3) var<storage, read> ex_drop: array<u32>;
@group(0) @binding(4) var<storage, read_write> ex_scores: array<f32>;

@compute @workgroup_size(256)
fn chunk_exclude(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = flat(gid, nwg);
  if (e >= cp.nnz || ex_drop[e] != 0u) { return; }
  let i = ex_col_t[e];
  if (i < cp.row0 || i - cp.row0 >= cp.rows) { return; }
  ex_scores[cp.k + (i - cp.row0) * cp.n_out + ex_row[e]] = -1.0;
}

// The selected elements of [candidates | chunk], in index (= dense position) order, become the
// new candidates.
@group(0) @binding(1) var<storage, read> cc_scores: array<f32>;
@group(0) @binding(2) var<storage, read> cc_pos: array<u32>;
@group(0) @binding(3) var<storage, read> cc_sel: array<u32>;
@group(0) @binding(4) var<storage, read> cc_at: array<u32>;
@group(0) @binding(5) var<storage, read_write> cc_new_scores: array<f32>;
@group(0) @binding(6) var<storage, read_write> cc_new_pos: array<u32>;

@compute @workgroup_size(256)
fn cand_compact(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = flat(gid, nwg);
  if (q >= cp.total_n || cc_sel[q] == 0u) { return; }
  let o = cc_at[q];
  if (o >= cp.k) { return; } // never when the select is exact; guards the buffers
  cc_new_scores[o] = cc_scores[q];
  if (q < cp.k) {
    cc_new_pos[o] = cc_pos[q];
  } else {
    cc_new_pos[o] = cp.row0 * cp.n_out + (q - cp.k);
  }
}

// Grown entries from a list of dense positions, after the kept ones (kbuf[3] = kept count).
@group(0) @binding(1) var<storage, read> gl_pos: array<u32>;
@group(0) @binding(2) var<storage, read> gl_kcount: array<u32>;
@group(0) @binding(3) var<storage, read_write> gl_coo_i: array<u32>;
@group(0) @binding(4) var<storage, read_write> gl_coo_j: array<u32>;
@group(0) @binding(5) var<storage, read_write> gl_coo_src: array<u32>;

@compute @workgroup_size(256)
fn scatter_grown_list(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = flat(gid, nwg);
  if (g >= cp.k) { return; }
  let at = gl_kcount[3] + g;
  let q = gl_pos[g];
  if (at >= cp.new_nnz || q >= cp.n_in * cp.n_out) { return; } // guards only
  gl_coo_i[at] = q / cp.n_out;
  gl_coo_j[at] = q % cp.n_out;
  gl_coo_src[at] = 0xffffffffu; // NEW_ENTRY of topology.wgsl
}
`;

const defChunk = (entry: string, bindings: [string, "uniform" | "read" | "read_write"][]) =>
  defineKernel({
    shader: "topology_chunk.wgsl",
    code: CHUNK_WGSL,
    entry,
    bindings: [["cp", "uniform"], ...bindings],
  });

export const CHUNK_CAND_INIT = defChunk("cand_init", [["init_scores", "read_write"], [
  "init_pos",
  "read_write",
]]);
export const CHUNK_SCORES = defChunk("chunk_scores", [["g_chunk", "read"], [
  "s_chunk",
  "read_write",
]]);
export const CHUNK_EXCLUDE = defChunk("chunk_exclude", [
  ["ex_col_t", "read"],
  ["ex_row", "read"],
  ["ex_drop", "read"],
  ["ex_scores", "read_write"],
]);
export const CHUNK_COMPACT = defChunk("cand_compact", [
  ["cc_scores", "read"],
  ["cc_pos", "read"],
  ["cc_sel", "read"],
  ["cc_at", "read"],
  ["cc_new_scores", "read_write"],
  ["cc_new_pos", "read_write"],
]);
export const CHUNK_SCATTER_LIST = defChunk("scatter_grown_list", [
  ["gl_pos", "read"],
  ["gl_kcount", "read"],
  ["gl_coo_i", "read_write"],
  ["gl_coo_j", "read_write"],
  ["gl_coo_src", "read_write"],
]);

/** Bound on the per-invocation loop of `rows_of_entries` (a CSR(Wᵀ) row, <= nIn entries). */
export const MAX_ROW_TRIPS = 65_000;

/** Parameters of one update. */
export interface TopologyUpdate {
  /** u32 [nnz]: 1 = remove this nonzero. */
  drop: Tensor;
  /** How many positions to grow (0 for pruning). */
  growCount: number | GpuK;
  /** f32 [nIn·nOut] scores (larger = grow first); overwritten. Growing needs this or `grownPositions`. */
  growScores?: Tensor;
  /**
   * Instead of `growScores`: u32 [growCount] dense positions `i·nOut + j` to grow, ascending,
   * none held by a kept entry (e.g. from {@link gradGrowCandidates}); `growCount` must be a
   * CPU number. No dense-sized array is used then.
   */
  grownPositions?: Tensor;
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
    `${layer.name}: random (SET) grow scores over all ${layer.csr.nIn}x${layer.csr.nOut} positions ` +
      "(only RigL's gradient growth is computed in row chunks)",
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

  // 1. grow mask over dense positions (or a given list of grown positions)
  const growing = typeof u.growCount !== "number" || u.growCount > 0;
  const fromList = growing && u.grownPositions !== undefined;
  if (fromList) {
    const gp = u.grownPositions!;
    if (typeof u.growCount !== "number") {
      throw new FiligreeError(`${layer.name}: grownPositions needs a CPU grow count`);
    }
    if (gp.dtype === "f32" || gp.size < u.growCount) {
      throw new FiligreeError(
        `${layer.name}: grownPositions must be u32 with >= ${u.growCount} elements`,
      );
    }
  }
  const growMask = fromList ? s("grow mask", 4) : s("grow mask", denseN);
  if (growing && !fromList) {
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
  if (fromList) {
    const n = u.growCount as number;
    rec.dispatch(gpu.kernel(CHUNK_SCATTER_LIST), {
      cp: chunkParams(gpu, layer, { k: n, newNnz: u.newNnz }),
      gl_pos: u.grownPositions!,
      gl_kcount: u.kbuf,
      gl_coo_i: cooI,
      gl_coo_j: cooJ,
      gl_coo_src: cooSrc,
    }, g1(n));
  } else if (growing) {
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

// ------------------------------------------------------------------ row-chunked RigL growth

function chunkParams(
  gpu: Gpu,
  layer: SparseLinear,
  u: { k: number; row0?: number; rows?: number; newNnz?: number },
): GPUBuffer {
  const c = layer.csr;
  const rows = u.rows ?? 0;
  return gpu.uniform(packParams([
    c.nIn,
    c.nOut,
    c.nnz,
    u.k,
    u.row0 ?? 0,
    rows,
    rows * c.nOut,
    u.k + rows * c.nOut,
    u.newNnz ?? c.nnz,
  ]));
}

/**
 * Bytes the dense-position scratch of one layer may take: `gradBudgetMB` MiB, and never more
 * than the adapter's `maxStorageBufferBindingSize`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { denseBudgetBytes } from "./topology.ts";
 * assert.deepEqual(denseBudgetBytes(await getGpu(), 1), 1048576);
 * ```
 */
export function denseBudgetBytes(gpu: Gpu, gradBudgetMB: number): number {
  return Math.min(
    Math.floor(gradBudgetMB * 1024 * 1024),
    gpu.limits.maxStorageBufferBindingSize,
  );
}

/** Elements of a scratch tensor of `n` elements as topoScratch allocates it (a power of two). */
function scratchElems(n: number): number {
  return Math.max(16, 2 ** Math.ceil(Math.log2(Math.max(1, n))));
}

/**
 * Whether `layer`'s dense arrays (4·nIn·nOut bytes, rounded up to a power of two like all
 * topology scratch) exceed `budgetBytes`, i.e. whether RigL must search its growth in row chunks.
 *
 * @example
 * ```ts ignore
 * if (needsRowChunks(layer, denseBudgetBytes(gpu, cfg.gradBudgetMB))) { ... }
 * ```
 */
export function needsRowChunks(layer: SparseLinear, budgetBytes: number): boolean {
  return 4 * scratchElems(layer.csr.nIn * layer.csr.nOut) > budgetBytes;
}

/**
 * Input rows per chunk of the chunked growth search for `k` grown entries: the ranked array
 * [k candidates | rows·nOut chunk scores] (a power-of-two scratch) must fit `budgetBytes`.
 * Throws a one-line FiligreeError when not even one row fits.
 *
 * @example
 * ```ts ignore
 * const rows = chunkRows(layer, 300, 1 << 20); // 4-byte scores: (300 + rows·nOut) <= 262144
 * ```
 */
export function chunkRows(layer: SparseLinear, k: number, budgetBytes: number): number {
  const c = layer.csr;
  const cap = 2 ** Math.floor(Math.log2(Math.max(1, budgetBytes / 4)));
  const rows = Math.min(c.nIn, Math.floor((cap - k) / c.nOut));
  if (rows < 1) {
    throw new FiligreeError(
      `${layer.name}: gradient budget of ${budgetBytes} bytes holds no row of ${c.nOut} scores next to ${k} candidates (raise gradBudgetMB)`,
    );
  }
  return rows;
}

/** Arguments of {@link gradGrowCandidates}. */
export interface GrowCandidatesArgs {
  /** The layer's input activations of the batch, feature-major f32 [nIn][ld]. */
  x: Tensor;
  /** Gradient of the layer's pre-activations, feature-major f32 [nOut][ld]. */
  dz: Tensor;
  /** Leading dimension (roundUp4(batch)); padding columns are zero. */
  ld: number;
  /** u32 [nnz] drop mask (values order): kept entries are not growth candidates. */
  drop: Tensor;
  /** How many positions to grow: 1 <= k <= the number of positions not kept. */
  k: number;
  /** Most bytes one scratch array may take (see {@link denseBudgetBytes}). */
  budgetBytes: number;
}

/**
 * RigL's growth without a dense gradient array: the k positions not held by a kept entry with
 * the largest |X·dZᵀ| (ties: lower position first), exactly as the dense select picks them,
 * computed in chunks of input rows. Per chunk: the rows of X·dZᵀ by one matmul, their
 * magnitudes behind the current k candidates, kept positions set to −1, then a radix select
 * of the top k of [candidates | chunk] whose mask, compacted in index order, gives the new
 * candidates (candidates hold lower positions than the chunk, so index order is position
 * order and ties resolve as in one dense select). Returns a scratch u32 tensor whose first k
 * words are the grown positions, ascending (valid until the next call records over it).
 *
 * @example
 * ```ts ignore
 * const pos = gradGrowCandidates(rec, layer, { x: act.t, dz: dz.t, ld, drop, k, budgetBytes: 1 << 20 });
 * rebuildTopology(rec, layer, { drop, growCount: k, grownPositions: pos, newNnz, step, seed, initStd: 0, kbuf });
 * ```
 */
export function gradGrowCandidates(
  rec: Recorder,
  layer: SparseLinear,
  a: GrowCandidatesArgs,
): Tensor {
  const gpu = rec.gpu;
  const c = layer.csr;
  const k = a.k;
  if (!Number.isInteger(k) || k < 1 || k > c.nIn * c.nOut) {
    throw new FiligreeError(`${layer.name}: bad growth count ${k}`);
  }
  if (c.nIn * c.nOut > 0xffffffff) {
    throw new FiligreeError(
      `${layer.name}: ${c.nIn}x${c.nOut} positions do not fit 32-bit position indices`,
    );
  }
  if (a.x.size < c.nIn * a.ld || a.dz.size < c.nOut * a.ld) {
    throw new FiligreeError(`${layer.name}: x or dz smaller than [rows][${a.ld}]`);
  }
  const rows = chunkRows(layer, k, a.budgetBytes);
  const nChunks = Math.ceil(c.nIn / rows);
  const f = (t: Tensor): Tensor => ({ ...t, dtype: "f32" });
  const sc = (key: string, n: number) => topoScratch(gpu, `rigl chunk ${key}`, Math.max(4, n));
  const g1 = (n: number) => grid(gpu, Math.ceil(Math.max(1, n) / 256));
  const maxTotal = k + rows * c.nOut;
  const xChunk = f(sc("x", rows * a.ld));
  const gChunk = f(sc("grad", rows * c.nOut));
  const ranked = f(sc("scores", maxTotal));
  const candPos = sc("positions", k);
  const newScores = f(sc("new scores", k));
  const newPos = sc("new positions", k);
  const sel = sc("selected", maxTotal);
  const selAt = sc("selected at", maxTotal);
  const result = sc("select result", SELECT_RESULT_WORDS);
  const rowOf = sc("row of", c.nnz);
  rowsOfEntries(rec, layer, rowOf);

  rec.dispatch(gpu.kernel(CHUNK_CAND_INIT), {
    cp: chunkParams(gpu, layer, { k }),
    init_scores: ranked,
    init_pos: candPos,
  }, g1(k));
  for (let ch = 0; ch < nChunks; ch++) {
    const row0 = ch * rows;
    const r = Math.min(rows, c.nIn - row0);
    const total = k + r * c.nOut;
    const cp = chunkParams(gpu, layer, { k, row0, rows: r });
    rec.copy(a.x, xChunk, r * a.ld, row0 * a.ld, 0);
    matmul(rec, {
      a: xChunk,
      b: a.dz,
      c: gChunk,
      m: r,
      n: c.nOut,
      k: a.ld,
      transB: true,
      lda: a.ld,
      ldb: a.ld,
    });
    rec.dispatch(
      gpu.kernel(CHUNK_SCORES),
      { cp, g_chunk: gChunk, s_chunk: ranked },
      g1(r * c.nOut),
    );
    rec.dispatch(gpu.kernel(CHUNK_EXCLUDE), {
      cp,
      ex_col_t: c.colT,
      ex_row: rowOf,
      ex_drop: a.drop,
      ex_scores: ranked,
    }, g1(c.nnz));
    radixSelect(rec, { data: ranked, n: total, k, mode: "value", largest: true, result });
    markSelected(rec, { data: ranked, n: total, mode: "value", largest: true, result, mask: sel });
    exclusiveScan(rec, { input: sel, output: selAt, n: total });
    rec.dispatch(gpu.kernel(CHUNK_COMPACT), {
      cp,
      cc_scores: ranked,
      cc_pos: candPos,
      cc_sel: sel,
      cc_at: selAt,
      cc_new_scores: newScores,
      cc_new_pos: newPos,
    }, g1(total));
    rec.copy(newScores, ranked, k);
    rec.copy(newPos, candPos, k);
  }
  return candPos;
}
