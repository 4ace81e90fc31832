/**
 * Storage of a sparse layer `W` (`nIn` x `nOut`, forward `Y = X·W`) in both CSR orientations,
 * sharing one value array, plus the CPU helpers that build, check, upload and download it.
 *
 * Activations are feature-major (`[features][ld]`), so the forward pass in feature-major terms is
 * `Y[j][b] = sum_i W[i][j] · X[i][b]`: a gather over the rows of **CSR(Wᵀ)** (one row per output
 * neuron `j`). The backward data pass `dX[i][b] = sum_j W[i][j] · dY[j][b]` is a gather over the
 * rows of **CSR(W)** (one row per input neuron `i`) that reads the same value array through `perm`.
 * No float atomics are needed in either direction.
 *
 * Layout (all arrays 32-bit, `k` is a position in CSR(Wᵀ) order, `m` a position in CSR(W) order):
 *
 * | array | length | contents |
 * |---|---|---|
 * | `rowPtrT` | nOut + 1 | row `j` of CSR(Wᵀ) is `k in [rowPtrT[j], rowPtrT[j+1])`; `rowPtrT[0] = 0`, `rowPtrT[nOut] = nnz` |
 * | `colT` | nnz | input index `i` of entry `k`, strictly ascending within a row |
 * | `values` | nnz | `W[colT[k]][j]` for `k` in row `j` (the one value array; optimizers update it in place) |
 * | `rowPtr` | nIn + 1 | row `i` of CSR(W) is `m in [rowPtr[i], rowPtr[i+1])`; `rowPtr[nIn] = nnz` |
 * | `col` | nnz | output index `j` of entry `m`, strictly ascending within a row |
 * | `perm` | nnz | `k` of entry `m`: `W[i][col[m]] = values[perm[m]]`, and `colT[perm[m]] = i` |
 *
 * `perm` is a bijection onto `0..nnz-1`. Both orientations list the same set of positions, so
 * CSR(W) is the stable transpose of CSR(Wᵀ): a topology update on the GPU can rebuild
 * `rowPtr`/`col`/`perm` from `rowPtrT`/`colT` with a counting sort by input index.
 * {@link checkCsr} verifies every invariant above (use it on arrays rebuilt elsewhere).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { csrFromCoo, toDense } from "./csr.ts";
 * // W (2 x 3): W[0][1] = 5, W[1][0] = 7, W[1][2] = 9
 * const h = csrFromCoo(2, 3, [0, 1, 1], [1, 0, 2], [5, 7, 9]);
 * assert.deepEqual(h.rowPtrT, new Uint32Array([0, 1, 2, 3]));
 * assert.deepEqual(h.colT, new Uint32Array([1, 0, 1]));
 * assert.deepEqual(h.values, new Float32Array([7, 5, 9]));
 * assert.deepEqual(h.rowPtr, new Uint32Array([0, 1, 3]));
 * assert.deepEqual(h.col, new Uint32Array([1, 0, 2]));
 * assert.deepEqual(h.perm, new Uint32Array([1, 0, 2]));
 * assert.deepEqual(toDense(h), new Float64Array([0, 5, 0, 7, 0, 9]));
 * ```
 * @module
 */
import { FiligreeError, type Gpu, type Tensor } from "../gpu/mod.ts";

/** GPU storage of a sparse layer; see the module documentation for the layout. */
export interface CsrLayer {
  nIn: number;
  nOut: number;
  nnz: number;
  /** u32[nOut + 1]: row pointers of CSR(Wᵀ) (rows = output neurons). */
  rowPtrT: Tensor;
  /** u32[nnz]: input index of each CSR(Wᵀ) entry, ascending within a row. */
  colT: Tensor;
  /** f32[nnz]: the weights, in CSR(Wᵀ) order. */
  values: Tensor;
  /** u32[nIn + 1]: row pointers of CSR(W) (rows = input neurons). */
  rowPtr: Tensor;
  /** u32[nnz]: output index of each CSR(W) entry, ascending within a row. */
  col: Tensor;
  /** u32[nnz]: position in `values` of each CSR(W) entry. */
  perm: Tensor;
}

/** Host copy of a {@link CsrLayer}: the same arrays as typed arrays. */
export interface CsrHost {
  nIn: number;
  nOut: number;
  nnz: number;
  rowPtrT: Uint32Array;
  colT: Uint32Array;
  values: Float32Array;
  rowPtr: Uint32Array;
  col: Uint32Array;
  perm: Uint32Array;
}

/** Positions of the nonzeros of `W` as coordinate lists (`rows[n]` = input `i`, `cols[n]` = output `j`). */
export interface CooMask {
  rows: Uint32Array;
  cols: Uint32Array;
}

/** A uniform source in [0, 1): a function, or an object with `next()` (e.g. the testing `Rng`). */
export type RandomSource = (() => number) | { next(): number };

function uniformOf(r: RandomSource): () => number {
  return typeof r === "function" ? r : () => r.next();
}

function checkDims(nIn: number, nOut: number, what: string) {
  for (const [n, v] of [["nIn", nIn], ["nOut", nOut]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 0x7fffffff) {
      throw new FiligreeError(`${what}: ${n} must be a positive integer, got ${v}`);
    }
  }
}

/** Stable counting sort of `order` by `key[order[n]]` in `[0, nKeys)`; returns the order and the row pointers. */
function countingSort(
  order: Uint32Array,
  key: ArrayLike<number>,
  nKeys: number,
): { order: Uint32Array; ptr: Uint32Array } {
  const ptr = new Uint32Array(nKeys + 1);
  for (let n = 0; n < order.length; n++) ptr[key[order[n]] + 1]++;
  for (let r = 0; r < nKeys; r++) ptr[r + 1] += ptr[r];
  const next = ptr.slice(0, nKeys);
  const out = new Uint32Array(order.length);
  for (let n = 0; n < order.length; n++) out[next[key[order[n]]]++] = order[n];
  return { order: out, ptr };
}

/**
 * Builds both CSR orientations from coordinate lists (any order). `values[n]` is the weight at
 * `(rows[n], cols[n])` (zeros when omitted). Throws a {@link FiligreeError} on an index out of
 * range, a non-integer index, a duplicate position or mismatched lengths.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { csrFromCoo } from "./csr.ts";
 * const h = csrFromCoo(3, 2, [2, 0], [1, 1], [0.5, -1]);
 * assert.deepEqual(h.colT, new Uint32Array([0, 2]));
 * assert.deepEqual(h.values, new Float32Array([-1, 0.5]));
 * ```
 */
export function csrFromCoo(
  nIn: number,
  nOut: number,
  rows: ArrayLike<number>,
  cols: ArrayLike<number>,
  values?: ArrayLike<number>,
): CsrHost {
  checkDims(nIn, nOut, "csrFromCoo");
  const nnz = rows.length;
  if (cols.length !== nnz || (values && values.length !== nnz)) {
    throw new FiligreeError(
      `csrFromCoo: rows (${nnz}), cols (${cols.length})${
        values ? ` and values (${values.length})` : ""
      } differ in length`,
    );
  }
  if (nnz > nIn * nOut) {
    throw new FiligreeError(`csrFromCoo: ${nnz} positions in a ${nIn}x${nOut} matrix`);
  }
  const ri = new Uint32Array(nnz);
  const cj = new Uint32Array(nnz);
  for (let n = 0; n < nnz; n++) {
    const i = rows[n];
    const j = cols[n];
    if (!Number.isInteger(i) || i < 0 || i >= nIn) {
      throw new FiligreeError(`csrFromCoo: input index ${i} at position ${n} outside [0, ${nIn})`);
    }
    if (!Number.isInteger(j) || j < 0 || j >= nOut) {
      throw new FiligreeError(
        `csrFromCoo: output index ${j} at position ${n} outside [0, ${nOut})`,
      );
    }
    ri[n] = i;
    cj[n] = j;
  }
  // LSD radix: by j, then stably by i -> (i, j) order = CSR(W); then stably by j -> CSR(Wᵀ)
  // with i ascending inside every row.
  const ident = new Uint32Array(nnz);
  for (let n = 0; n < nnz; n++) ident[n] = n;
  const byJ = countingSort(ident, cj, nOut).order;
  const w = countingSort(byJ, ri, nIn);
  for (let m = 1; m < nnz; m++) {
    const a = w.order[m - 1];
    const b = w.order[m];
    if (ri[a] === ri[b] && cj[a] === cj[b]) {
      throw new FiligreeError(
        `csrFromCoo: duplicate position (${ri[b]}, ${cj[b]}) at entries ${a} and ${b}`,
      );
    }
  }
  const wt = countingSort(w.order, cj, nOut);
  const colT = new Uint32Array(nnz);
  const vals = new Float32Array(nnz);
  const posT = new Uint32Array(nnz); // original entry -> k
  for (let k = 0; k < nnz; k++) {
    const n = wt.order[k];
    colT[k] = ri[n];
    if (values) vals[k] = values[n];
    posT[n] = k;
  }
  const col = new Uint32Array(nnz);
  const perm = new Uint32Array(nnz);
  for (let m = 0; m < nnz; m++) {
    const n = w.order[m];
    col[m] = cj[n];
    perm[m] = posT[n];
  }
  return { nIn, nOut, nnz, rowPtrT: wt.ptr, colT, values: vals, rowPtr: w.ptr, col, perm };
}

/**
 * A uniformly random mask with exactly `round(density · nIn · nOut)` distinct positions,
 * sorted by (input, output). Deterministic for a seeded `rand`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { randomMask } from "./csr.ts";
 * let s = 1;
 * const m = randomMask(10, 20, 0.1, () => ((s = (s * 48271) % 2147483647) / 2147483647));
 * assert.deepEqual(m.rows.length, 20);
 * ```
 */
export function randomMask(
  nIn: number,
  nOut: number,
  density: number,
  rand: RandomSource,
): CooMask {
  checkDims(nIn, nOut, "randomMask");
  if (!(density >= 0 && density <= 1)) {
    throw new FiligreeError(`randomMask: density must be in [0, 1], got ${density}`);
  }
  const u = uniformOf(rand);
  const total = nIn * nOut;
  const count = Math.round(density * total);
  const picked = new Float64Array(count);
  if (count * 20 < total) {
    // Floyd's sampling: `count` distinct flat indices, then sorted.
    const set = new Set<number>();
    for (let t = total - count; t < total; t++) {
      const r = Math.floor(u() * (t + 1));
      set.add(set.has(r) ? t : r);
    }
    let n = 0;
    for (const v of set) picked[n++] = v;
    picked.sort();
  } else {
    // Selection sampling (Knuth's algorithm S): one sorted pass over all positions.
    let need = count;
    for (let t = 0, n = 0; t < total && need > 0; t++) {
      if ((total - t) * u() < need) {
        picked[n++] = t;
        need--;
      }
    }
  }
  const rows = new Uint32Array(count);
  const cols = new Uint32Array(count);
  for (let n = 0; n < count; n++) {
    rows[n] = Math.floor(picked[n] / nOut);
    cols[n] = picked[n] - rows[n] * nOut;
  }
  return { rows, cols };
}

/**
 * A random layer: {@link randomMask} positions with weights from `value()` (zero when omitted).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { randomCsr } from "./csr.ts";
 * const h = randomCsr(784, 1000, 0.05, Math.random, () => Math.random() - 0.5);
 * assert.deepEqual(h.nnz, 39200);
 * ```
 */
export function randomCsr(
  nIn: number,
  nOut: number,
  density: number,
  rand: RandomSource,
  value?: () => number,
): CsrHost {
  const m = randomMask(nIn, nOut, density, rand);
  const vals = value ? Float32Array.from(m.rows, () => value()) : undefined;
  return csrFromCoo(nIn, nOut, m.rows, m.cols, vals);
}

/**
 * Checks every invariant of the layout (lengths, row pointers, sorted in-range indices, `perm` a
 * bijection linking equal positions). Throws a {@link FiligreeError} naming the first violation.
 *
 * @example
 * ```ts
 * import { checkCsr, csrFromCoo } from "./csr.ts";
 * checkCsr(csrFromCoo(2, 2, [0, 1], [1, 1])); // passes
 * ```
 */
export function checkCsr(h: CsrHost): void {
  const bad = (msg: string): never => {
    throw new FiligreeError(`checkCsr ${h.nIn}x${h.nOut} (nnz ${h.nnz}): ${msg}`);
  };
  const lens: [string, number, number][] = [
    ["rowPtrT", h.rowPtrT.length, h.nOut + 1],
    ["colT", h.colT.length, h.nnz],
    ["values", h.values.length, h.nnz],
    ["rowPtr", h.rowPtr.length, h.nIn + 1],
    ["col", h.col.length, h.nnz],
    ["perm", h.perm.length, h.nnz],
  ];
  for (const [name, got, want] of lens) {
    if (got !== want) bad(`${name} has ${got} entries, expected ${want}`);
  }
  const rows = (ptr: Uint32Array, idx: Uint32Array, nRows: number, nCols: number, name: string) => {
    if (ptr[0] !== 0 || ptr[nRows] !== h.nnz) bad(`${name} row pointers must run from 0 to nnz`);
    for (let r = 0; r < nRows; r++) {
      if (ptr[r + 1] < ptr[r]) bad(`${name} row pointer decreases at row ${r}`);
      for (let k = ptr[r]; k < ptr[r + 1]; k++) {
        if (idx[k] >= nCols) bad(`${name} row ${r}: index ${idx[k]} out of range [0, ${nCols})`);
        if (k > ptr[r] && idx[k] <= idx[k - 1]) {
          bad(`${name} row ${r}: indices not strictly ascending at entry ${k}`);
        }
      }
    }
  };
  rows(h.rowPtrT, h.colT, h.nOut, h.nIn, "CSR(Wᵀ)");
  rows(h.rowPtr, h.col, h.nIn, h.nOut, "CSR(W)");
  const rowOfT = new Uint32Array(h.nnz);
  for (let j = 0; j < h.nOut; j++) {
    for (let k = h.rowPtrT[j]; k < h.rowPtrT[j + 1]; k++) rowOfT[k] = j;
  }
  const seen = new Uint8Array(h.nnz);
  for (let i = 0; i < h.nIn; i++) {
    for (let m = h.rowPtr[i]; m < h.rowPtr[i + 1]; m++) {
      const k = h.perm[m];
      if (k >= h.nnz || seen[k]) bad(`perm[${m}] = ${k} is out of range or repeated`);
      seen[k] = 1;
      if (h.colT[k] !== i || rowOfT[k] !== h.col[m]) {
        bad(`perm[${m}] = ${k} links (${i}, ${h.col[m]}) to (${h.colT[k]}, ${rowOfT[k]})`);
      }
    }
  }
}

/**
 * Uploads a host layer into new GPU tensors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, uploadCsr } from "./csr.ts";
 * const gpu = await getGpu();
 * const layer = uploadCsr(gpu, csrFromCoo(2, 2, [0, 1], [1, 0], [3, 4]), "w1");
 * assert.deepEqual(layer.values.label, "w1.values");
 * ```
 */
export function uploadCsr(gpu: Gpu, h: CsrHost, label = "csr"): CsrLayer {
  checkDims(h.nIn, h.nOut, "uploadCsr");
  // Zero-length uploads are skipped: Deno 2.9's queue.writeBuffer panics on an empty write.
  const u = (data: Uint32Array, name: string) =>
    gpu.tensor("u32", [data.length], {
      data: data.length ? data : undefined,
      label: `${label}.${name}`,
    });
  const lens = [h.colT, h.values, h.col, h.perm].map((a) => a.length);
  if (
    h.rowPtrT.length !== h.nOut + 1 || h.rowPtr.length !== h.nIn + 1 ||
    lens.some((n) => n !== h.nnz)
  ) {
    throw new FiligreeError(
      `uploadCsr ${label}: array lengths do not match ${h.nIn}x${h.nOut}, nnz ${h.nnz}`,
    );
  }
  return {
    nIn: h.nIn,
    nOut: h.nOut,
    nnz: h.nnz,
    rowPtrT: u(h.rowPtrT, "rowPtrT"),
    colT: u(h.colT, "colT"),
    values: gpu.tensor("f32", [h.nnz], {
      data: h.nnz ? h.values : undefined,
      label: `${label}.values`,
    }),
    rowPtr: u(h.rowPtr, "rowPtr"),
    col: u(h.col, "col"),
    perm: u(h.perm, "perm"),
  };
}

/**
 * Reads a layer back (six readbacks: for tests and checkpoints, never inside a step).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, downloadCsr, uploadCsr } from "./csr.ts";
 * const gpu = await getGpu();
 * const back = await downloadCsr(gpu, uploadCsr(gpu, csrFromCoo(2, 2, [0], [1], [3])));
 * assert.deepEqual(back.values, new Float32Array([3]));
 * ```
 */
export async function downloadCsr(gpu: Gpu, layer: CsrLayer): Promise<CsrHost> {
  const u = async (t: Tensor) => (await gpu.read(t)) as Uint32Array;
  return {
    nIn: layer.nIn,
    nOut: layer.nOut,
    nnz: layer.nnz,
    rowPtrT: await u(layer.rowPtrT),
    colT: await u(layer.colT),
    values: (await gpu.read(layer.values)) as Float32Array,
    rowPtr: await u(layer.rowPtr),
    col: await u(layer.col),
    perm: await u(layer.perm),
  };
}

/**
 * Returns a layer's six buffers to the tensor pool.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, releaseCsr, uploadCsr } from "./csr.ts";
 * const gpu = await getGpu();
 * releaseCsr(gpu, uploadCsr(gpu, csrFromCoo(1, 1, [0], [0], [1])));
 * ```
 */
export function releaseCsr(gpu: Gpu, layer: CsrLayer): void {
  for (const t of [layer.rowPtrT, layer.colT, layer.values, layer.rowPtr, layer.col, layer.perm]) {
    gpu.release(t);
  }
}

/**
 * The dense weight matrix `W` as row-major `[nIn][nOut]` float64 (from the CSR(Wᵀ) side),
 * for references.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { csrFromCoo, toDense } from "./csr.ts";
 * assert.deepEqual(toDense(csrFromCoo(1, 2, [0], [1], [2])), new Float64Array([0, 2]));
 * ```
 */
export function toDense(h: CsrHost): Float64Array {
  const w = new Float64Array(h.nIn * h.nOut);
  for (let j = 0; j < h.nOut; j++) {
    for (let k = h.rowPtrT[j]; k < h.rowPtrT[j + 1]; k++) w[h.colT[k] * h.nOut + j] = h.values[k];
  }
  return w;
}

/**
 * Longest row of each orientation (what bounds the kernels' per-invocation loops).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { csrFromCoo, maxRowLengths } from "./csr.ts";
 * assert.deepEqual(maxRowLengths(csrFromCoo(2, 2, [0, 1, 1], [0, 0, 1])), { out: 2, in: 2 });
 * ```
 */
export function maxRowLengths(h: CsrHost): { out: number; in: number } {
  let out = 0;
  let inn = 0;
  for (let j = 0; j < h.nOut; j++) out = Math.max(out, h.rowPtrT[j + 1] - h.rowPtrT[j]);
  for (let i = 0; i < h.nIn; i++) inn = Math.max(inn, h.rowPtr[i + 1] - h.rowPtr[i]);
  return { out, in: inn };
}
