/**
 * Row order of a CSR pointer array: its rows sorted by length, longest first (ties by index),
 * within blocks of consecutive rows or over all of them, computed on the GPU and cached until the
 * pointer buffer is written again. The chunked row kernels (`spmm_wide`, `spmm_t_wide`,
 * `grad_t`, `wgrad_t` in shaders/sparse.wgsl) give each invocation one row and run the
 * invocations of a workgroup in lock step on a SIMD CPU (llvmpipe) or a GPU, so a workgroup takes
 * as long as its longest row; walking the rows in this order puts rows of about the same length
 * together (the "row swizzle" of Gale et al. 2020, Sparse GPU Kernels for Deep Learning, §5.2).
 * The order only decides which rows share a workgroup: every row's result is the same with or
 * without it.
 *
 * Two scopes ({@link ROW_ORDER_SCOPE}), kept side by side and compared by `deno task bench:rows`:
 * - blocks of 64 rows (default): one dispatch, each workgroup ranks its 64 rows against each
 *   other; lanes get rows of equal length and a workgroup's rows stay near each other;
 * - all rows: sort.ts's counting sort of (key, row) pairs with key = cap - min(length, cap), one
 *   key kernel plus the sort's ~7 dispatches; lengths of `cap` ({@link ROW_ORDER_CAP}) or more
 *   share a bucket. On llvmpipe it was the slower of the two (Zen 2, GL, 2026-12-07, 7
 *   interleaved rounds: 784x300 10 % grad_t 1.33 ms against 1.10 in blocks of 64 and 1.24
 *   unordered; 1000x1000 4 % spmm 1.33 / 1.23 / 1.35): scattering a workgroup's rows over the
 *   whole matrix costs more than the balance gains.
 *
 * Either is recorded only when the pointer buffer has been written since the last order
 * ({@link bufferVersion}; a topology update or an upload).
 * Shader: shaders/row_order.wgsl; reference: {@link rowOrderRef}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { rowOrder } from "./row_order.ts";
 * const gpu = await getGpu();
 * // rows of length 1, 3, 0, 3
 * const ptr = gpu.tensor("u32", [5], { data: new Uint32Array([0, 1, 4, 4, 7]) });
 * const rec = gpu.recorder();
 * const order = rowOrder(rec, ptr, 4, 3)!;
 * rec.submit();
 * assert.deepEqual(await gpu.read(order), new Uint32Array([1, 3, 0, 2]));
 * ```
 * @module
 */
import code from "../../shaders/row_order.wgsl" with { type: "text" };
import {
  bufferVersion,
  defineKernel,
  FiligreeError,
  grid,
  packParams,
  type Recorder,
  type Tensor,
} from "../gpu/mod.ts";
import { topoScratch } from "./scan.ts";
import { sortToCsr } from "./sort.ts";

/** Sort keys and row ids of a pointer array (`row_keys` entry). */
export const ROW_KEYS = defineKernel({
  shader: "row_order.wgsl",
  code,
  entry: "row_keys",
  bindings: [["p", "uniform"], ["row_ptr_in", "read"], ["keys", "read_write"], [
    "ids",
    "read_write",
  ]],
});

/**
 * Lengths at or above this share one bucket of the order: rows that long are far past what a
 * sparse layer's rows hold, and the sort's bitmap grows with the number of buckets.
 */
export const ROW_ORDER_CAP = 1023;

/** Sorts each block of BLOCK consecutive rows by length (`row_order_block` entry). */
export const ROW_ORDER_BLOCK = defineKernel({
  shader: "row_order.wgsl",
  code,
  entry: "row_order_block",
  bindings: [["p", "uniform"], ["row_ptr_in", "read"], ["order_out", "read_write"]],
});

/**
 * Rows sorted together: blocks of this many consecutive rows (default 64: the best of 16-256 on
 * llvmpipe, `deno task bench:rows`), or 0 for all of them (a counting sort). Mutable so that a
 * benchmark can compare them.
 */
export const ROW_ORDER_SCOPE = { block: 64 };

interface Cached {
  order: Tensor;
  version: number;
  rec: Recorder;
  gen: number;
}
/** Per pointer buffer and {@link ROW_ORDER_SCOPE}. */
const cache = new WeakMap<GPUBuffer, Map<number, Cached>>();

/**
 * The rows `0..nRows-1` of the pointer array `ptr` (`nRows + 1` u32 entries) ordered by length,
 * longest first, ties by index, within each block of {@link ROW_ORDER_SCOPE} rows (over all rows
 * when it is 0, lengths of min(`rowMax`, {@link ROW_ORDER_CAP}) or more then tying): a u32 tensor
 * of `nRows` entries, recorded into `rec` when `ptr` has been written since the cached one was
 * (or that one was recorded into a command buffer not yet submitted by another recorder).
 * `undefined` when the global sort's bitmap would exceed a storage binding (the caller then walks
 * rows in index order).
 */
export function rowOrder(
  rec: Recorder,
  ptr: Tensor,
  nRows: number,
  rowMax: number,
): Tensor | undefined {
  const gpu = rec.gpu;
  if (!Number.isInteger(nRows) || nRows < 1 || ptr.size < nRows + 1) {
    throw new FiligreeError(
      `rowOrder: ${nRows} rows need a pointer array of ${nRows + 1}, ${ptr.label} has ${ptr.size}`,
    );
  }
  const scope = ROW_ORDER_SCOPE.block;
  const wpr = Math.ceil(nRows / 32);
  const maxWords = gpu.limits.maxStorageBufferBindingSize / 4 - 1;
  const cap = Math.min(Math.max(1, rowMax), ROW_ORDER_CAP, Math.floor(maxWords / wpr) - 1);
  if (scope === 0 && cap < 1) return undefined;
  if (scope > 0) gpu.checkLimit("maxComputeWorkgroupSizeX", scope, "rowOrder block");
  const version = bufferVersion(ptr.buffer);
  let byScope = cache.get(ptr.buffer);
  if (!byScope) cache.set(ptr.buffer, byScope = new Map());
  const hit = byScope.get(scope);
  if (
    hit && hit.order.size >= nRows && hit.version === version &&
    ((hit.rec === rec && hit.gen === rec.generation) || hit.rec.generation > hit.gen)
  ) return hit.order;
  const order = hit && hit.order.size >= nRows
    ? hit.order
    : gpu.tensor("u32", [nRows], { label: `${ptr.label}.order` });
  if (hit && hit.order !== order) gpu.release(hit.order);
  if (scope > 0) {
    rec.dispatch(
      gpu.kernel(ROW_ORDER_BLOCK, { BLOCK: scope }),
      { p: gpu.uniform(packParams([nRows, 0xffffffff])), row_ptr_in: ptr, order_out: order },
      grid(gpu, Math.ceil(nRows / scope)),
    );
    byScope.set(scope, { order, version, rec, gen: rec.generation });
    return order;
  }
  const keys = topoScratch(gpu, "row order keys", nRows);
  const ids = topoScratch(gpu, "row order ids", nRows);
  const p = gpu.uniform(packParams([nRows, cap]));
  rec.dispatch(
    gpu.kernel(ROW_KEYS, { WG: 256 }),
    { p, row_ptr_in: ptr, keys, ids },
    grid(gpu, Math.ceil(nRows / 256)),
  );
  sortToCsr(rec, {
    rows: keys,
    cols: ids,
    nnz: nRows,
    nRows: cap + 1,
    nCols: nRows,
    rowPtr: topoScratch(gpu, "row order buckets", cap + 2),
    colIdx: order,
    perm: topoScratch(gpu, "row order perm", nRows),
  });
  byScope.set(scope, { order, version, rec, gen: rec.generation });
  return order;
}

/**
 * CPU reference of {@link rowOrder}: within each block of `block` consecutive rows (all rows when
 * 0), rows by min(length, cap) descending, then index.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rowOrderRef } from "./row_order.ts";
 * // lengths 1, 3, 0, 3
 * assert.deepEqual(rowOrderRef(new Uint32Array([0, 1, 4, 4, 7]), 4, 2), new Uint32Array([1, 3, 0, 2]));
 * assert.deepEqual(rowOrderRef(new Uint32Array([0, 1, 4, 4, 7]), 4, 9, 2), new Uint32Array([1, 0, 3, 2]));
 * ```
 */
export function rowOrderRef(
  ptr: Uint32Array,
  nRows: number,
  cap: number,
  block = 0,
): Uint32Array {
  const len = (j: number) => Math.min(ptr[j + 1] - ptr[j], cap);
  const size = block > 0 ? block : nRows;
  const out: number[] = [];
  for (let b0 = 0; b0 < nRows; b0 += size) {
    const rows = [...Array(Math.min(size, nRows - b0)).keys()].map((k) => b0 + k);
    out.push(...rows.sort((a, b) => len(b) - len(a) || a - b));
  }
  return Uint32Array.from(out);
}
