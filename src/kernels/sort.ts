/**
 * Counting sort of unique (row, col) pairs into CSR, entirely on the GPU, deterministic for
 * any input order, with u32 atomics only (no float atomics, no comparison sort).
 * Shader: shaders/sort.wgsl (+ scan.wgsl); reference: topo_ref.ts (`csrSortRef`).
 *
 * Design: an occupancy bitmap of the nRows × nCols matrix (wpr = ceil(nCols/32) words per row)
 * is filled with `atomicOr`; one exclusive popcount scan over all W = nRows·wpr words gives
 * the number of entries before each word in (row, col) order. Row pointers are that scan at
 * each row's first word, and an entry's slot is the scan at its word plus the popcount of
 * the lower bits of the word, so columns come out ascending within each row. The transposed
 * orientation is the same call with `rows` and `cols` swapped.
 *
 * Cost and scaling: 7 dispatches for W <= 4M words (5 + 2 per extra scan level); work
 * O(nnz + W) and scratch 2·W u32 words (bitmap + word offsets), W·4 bytes each:
 * 784×1000 → 25k words (100 KiB), 4096×4096 → 524k words (2 MiB). The W-sized part is
 * independent of the density, so this stops paying off for large, very sparse matrices
 * (nnz ≪ W, density well below 1/32; e.g. 30000 × 30000 at 0.01 % scans 28M words for 90k
 * entries), and it stops fitting when 4·(W + 1) bytes exceed maxStorageBufferBindingSize (128 MiB on
 * llvmpipe: about 32768 × 32768). A key radix sort would be the next step there.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { sortToCsr } from "./sort.ts";
 * const gpu = await getGpu();
 * // entries (1,2) (0,1) (1,0) of a 2×3 matrix
 * const rows = gpu.tensor("u32", [3], { data: new Uint32Array([1, 0, 1]) });
 * const cols = gpu.tensor("u32", [3], { data: new Uint32Array([2, 1, 0]) });
 * const rowPtr = gpu.tensor("u32", [3]);
 * const colIdx = gpu.tensor("u32", [3]);
 * const perm = gpu.tensor("u32", [3]);
 * const rec = gpu.recorder();
 * sortToCsr(rec, { rows, cols, nnz: 3, nRows: 2, nCols: 3, rowPtr, colIdx, perm });
 * rec.submit();
 * assert.deepEqual(await gpu.read(rowPtr), new Uint32Array([0, 1, 3]));
 * assert.deepEqual(await gpu.read(colIdx), new Uint32Array([1, 0, 2]));
 * assert.deepEqual(await gpu.read(perm), new Uint32Array([1, 2, 0]));
 * ```
 * @module
 */
import code from "../../shaders/sort.wgsl" with { type: "text" };
import {
  defineKernel,
  FiligreeError,
  grid,
  packParams,
  type Recorder,
  type Tensor,
} from "../gpu/mod.ts";
import { exclusiveScan, topoScratch } from "./scan.ts";

const WG = 256;

/** Zeroes the bitmap and the status words. */
export const SORT_ZERO = defineKernel({
  shader: "sort.wgsl",
  code,
  entry: "sort_zero",
  bindings: [["p", "uniform"], ["bm", "read_write"], ["st", "read_write"]],
});
/** Sets one bitmap bit per entry (atomicOr), counts bad and repeated entries. */
export const SORT_MARK = defineKernel({
  shader: "sort.wgsl",
  code,
  entry: "sort_mark",
  bindings: [
    ["p", "uniform"],
    ["rows", "read"],
    ["cols", "read"],
    ["bma", "read_write"],
    ["sta", "read_write"],
  ],
});
/** Row pointers from the word offsets. */
export const SORT_ROWPTR = defineKernel({
  shader: "sort.wgsl",
  code,
  entry: "sort_rowptr",
  bindings: [["p", "uniform"], ["woff", "read"], ["rowPtr", "read_write"]],
});
/** Writes each entry's column and payload into its sorted slot. */
export const SORT_SCATTER = defineKernel({
  shader: "sort.wgsl",
  code,
  entry: "sort_scatter",
  bindings: [
    ["p", "uniform"],
    ["rows", "read"],
    ["cols", "read"],
    ["bmr", "read"],
    ["woffr", "read"],
    ["payload", "read"],
    ["outCols", "read_write"],
    ["perm", "read_write"],
  ],
});

/** Indices into the status tensor of {@link sortToCsr}. */
export const SORT_STATUS = {
  /** Entries with row >= nRows or col >= nCols (skipped). */
  OUT_OF_RANGE: 0,
  /** Entries whose (row, col) pair appeared before (the CSR then holds each pair once). */
  DUPLICATES: 1,
} as const;

/** Arguments of {@link sortToCsr}. */
export interface CsrSortArgs {
  /** u32 row of each entry, `nnz` elements. */
  rows: Tensor;
  /** u32 column of each entry, `nnz` elements. */
  cols: Tensor;
  /** Number of entries (may be 0). The pairs must be unique. */
  nnz: number;
  nRows: number;
  nCols: number;
  /** Optional u32 payload per entry; `perm` receives it instead of the source index. */
  payload?: Tensor;
  /** Output, u32, nRows + 1 elements. */
  rowPtr: Tensor;
  /** Output, u32, nnz elements: columns, ascending within each row. */
  colIdx: Tensor;
  /** Output, u32, nnz elements: source index (or payload) of the entry in each slot. */
  perm: Tensor;
  /**
   * Optional u32 output of >= 2 words, see {@link SORT_STATUS}; both are 0 for valid input.
   * With bad input the CSR covers the valid unique pairs (rowPtr[nRows] of them); the slots
   * after that are not written, and the perm of a repeated pair's slot is either source.
   */
  status?: Tensor;
}

function need(t: Tensor, n: number, what: string) {
  if (t.dtype === "f32") throw new FiligreeError(`${what}: tensor ${t.label} is f32, needs u32`);
  if (t.size < n) {
    throw new FiligreeError(`${what}: tensor ${t.label} has ${t.size} elements, needs ${n}`);
  }
}

/**
 * Records the sort of `nnz` unique (row, col) pairs into CSR (`rowPtr`, `colIdx` ascending per
 * row, `perm`). Scratch (bitmap, word offsets) comes from `topoScratch`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { sortToCsr } from "./sort.ts";
 * const gpu = await getGpu();
 * const r = gpu.tensor("u32", [2], { data: new Uint32Array([0, 0]) });
 * const c = gpu.tensor("u32", [2], { data: new Uint32Array([5, 3]) });
 * const [rowPtr, colIdx, perm] = [gpu.tensor("u32", [2]), gpu.tensor("u32", [2]), gpu.tensor("u32", [2])];
 * const rec = gpu.recorder();
 * // transposed orientation: swap rows and cols (CSC of the same matrix)
 * sortToCsr(rec, { rows: c, cols: r, nnz: 2, nRows: 6, nCols: 1, rowPtr: gpu.tensor("u32", [7]), colIdx, perm });
 * rec.submit();
 * assert.deepEqual(await gpu.read(perm), new Uint32Array([1, 0]));
 * ```
 */
export function sortToCsr(rec: Recorder, a: CsrSortArgs): void {
  const gpu = rec.gpu;
  for (const [v, what] of [[a.nnz, "nnz"], [a.nRows, "nRows"], [a.nCols, "nCols"]] as const) {
    if (!Number.isInteger(v) || v < (what === "nnz" ? 0 : 1)) {
      throw new FiligreeError(`sortToCsr: bad ${what} ${v}`);
    }
  }
  const wpr = Math.ceil(a.nCols / 32);
  const words = a.nRows * wpr;
  const maxWords = gpu.limits.maxStorageBufferBindingSize / 4 - 1;
  if (words > maxWords) {
    throw new FiligreeError(
      `sortToCsr: a ${a.nRows}x${a.nCols} occupancy bitmap needs ${words} words, over the ` +
        `${maxWords} a storage binding holds (maxStorageBufferBindingSize)`,
    );
  }
  need(a.rows, a.nnz, "sortToCsr rows");
  need(a.cols, a.nnz, "sortToCsr cols");
  need(a.rowPtr, a.nRows + 1, "sortToCsr rowPtr");
  need(a.colIdx, a.nnz, "sortToCsr colIdx");
  need(a.perm, a.nnz, "sortToCsr perm");
  if (a.payload) need(a.payload, a.nnz, "sortToCsr payload");
  if (a.status) need(a.status, 2, "sortToCsr status");
  const outs = [a.rowPtr, a.colIdx, a.perm, a.status].filter((t) => t).map((t) => t!.buffer);
  const ins = [a.rows, a.cols, a.payload].filter((t) => t).map((t) => t!.buffer);
  if (new Set(outs).size !== outs.length || outs.some((b) => ins.includes(b))) {
    throw new FiligreeError(
      "sortToCsr: output tensors must be distinct from each other and the inputs",
    );
  }

  const bm = topoScratch(gpu, "sort bitmap", words);
  const woff = topoScratch(gpu, "sort word offsets", words + 1);
  const st = a.status ?? topoScratch(gpu, "sort status", 2);
  const p = gpu.uniform(packParams([a.nnz, a.nRows, a.nCols, wpr, words, a.payload ? 1 : 0]));
  const groups = (n: number) => grid(gpu, Math.ceil(n / WG));

  rec.dispatch(gpu.kernel(SORT_ZERO, { WG }), { p, bm, st }, groups(Math.max(words, 2)));
  rec.dispatch(
    gpu.kernel(SORT_MARK, { WG }),
    { p, rows: a.rows, cols: a.cols, bma: bm, sta: st },
    groups(a.nnz),
  );
  exclusiveScan(rec, {
    input: bm,
    output: woff,
    n: words,
    op: "popcount",
    total: { tensor: woff, index: words },
  });
  rec.dispatch(
    gpu.kernel(SORT_ROWPTR, { WG }),
    { p, woff, rowPtr: a.rowPtr },
    groups(a.nRows + 1),
  );
  rec.dispatch(
    gpu.kernel(SORT_SCATTER, { WG }),
    {
      p,
      rows: a.rows,
      cols: a.cols,
      bmr: bm,
      woffr: woff,
      payload: a.payload ?? topoScratch(gpu, "sort unused payload", 4),
      outCols: a.colIdx,
      perm: a.perm,
    },
    groups(a.nnz),
  );
}
