/**
 * CPU references (float64 values, plain sorting and counting) for the topology kernels:
 * selection of the k smallest/largest keys (select.ts), exclusive scan (scan.ts) and the
 * (row, col) → CSR counting sort (sort.ts). They are written independently of the GPU
 * algorithms: selection sorts values with a comparator, the CSR reference sorts pairs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exclusiveScanRef, selectRef } from "./topo_ref.ts";
 * assert.deepEqual(exclusiveScanRef(new Uint32Array([2, 0, 3])).out, new Uint32Array([0, 2, 2]));
 * const s = selectRef(new Float64Array([0.5, -2, 0.1, 0.1]), 2, "positive", false);
 * assert.deepEqual(s.threshold, 0.1);
 * assert.deepEqual(s.below, 0);
 * assert.deepEqual(s.take, 2);
 * ```
 * @module
 */

/**
 * Which elements take part in a selection and what is ranked:
 * - `"value"`: all elements, ranked by value (−0 ranks just below +0);
 * - `"abs"`: all elements, ranked by |value|;
 * - `"positive"`: only values > 0, ranked by value;
 * - `"negative"`: only values < 0, ranked by |value| (closest to zero first).
 * NaNs never take part.
 */
export type SelectMode = "value" | "abs" | "positive" | "negative";

/** Result of a selection, as the GPU writes it (see `SEL` in select.ts). */
export interface SelectRefResult {
  /** Ranked value of the k-th selected key (|v| for "abs"/"negative"); NaN when k = 0. */
  threshold: number;
  /** Eligible elements ranked strictly before the threshold (0 when k = 0). */
  below: number;
  /** k - below: how many elements equal to the threshold are taken (lowest indices first). */
  take: number;
  /** min(k, eligible). */
  k: number;
  /** Number of eligible elements. */
  eligible: number;
}

/**
 * Ranked value of `v` (ascending = selected first) or NaN when `v` is not eligible. Negating
 * for `largest` keeps "−0 before +0" consistent, since typed-array sorting orders −0 < +0.
 */
function rankValue(v: number, mode: SelectMode, largest: boolean): number {
  let r: number;
  switch (mode) {
    case "value":
      r = v;
      break;
    case "abs":
      r = Math.abs(v);
      break;
    case "positive":
      r = v > 0 ? v : NaN;
      break;
    case "negative":
      r = v < 0 ? -v : NaN;
      break;
  }
  return largest ? -r : r;
}

/** a ranks strictly before b (−0 before +0). */
function before(a: number, b: number): boolean {
  return a < b || (a === 0 && b === 0 && Object.is(a, -0) && !Object.is(b, -0));
}

/** The k smallest (or largest) eligible keys of `values`: threshold and tie counts. */
export function selectRef(
  values: ArrayLike<number>,
  k: number,
  mode: SelectMode,
  largest: boolean,
): SelectRefResult {
  const ranked = new Float64Array(values.length);
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const r = rankValue(values[i], mode, largest);
    if (!Number.isNaN(r)) ranked[m++] = r;
  }
  const keys = ranked.subarray(0, m).sort(); // numeric, −0 before +0
  const kk = Math.min(k, m);
  if (kk === 0) return { threshold: NaN, below: 0, take: 0, k: 0, eligible: m };
  const t = keys[kk - 1];
  let below = kk - 1;
  while (below > 0 && !before(keys[below - 1], t)) below--;
  return { threshold: largest ? -t : t, below, take: kk - below, k: kk, eligible: m };
}

/**
 * Exactly-k mask: 1 for the min(k, eligible) smallest (largest) eligible keys, ties at the
 * threshold broken by lower index first. `sel` may pass a precomputed `selectRef` result of
 * the same arguments (saves a sort).
 */
export function markRef(
  values: ArrayLike<number>,
  k: number,
  mode: SelectMode,
  largest: boolean,
  sel?: SelectRefResult,
): Uint32Array {
  const s = sel ?? selectRef(values, k, mode, largest);
  const mask = new Uint32Array(values.length);
  if (s.k === 0) return mask;
  const t = largest ? -s.threshold : s.threshold;
  let take = s.take;
  for (let i = 0; i < values.length; i++) {
    const r = rankValue(values[i], mode, largest);
    if (Number.isNaN(r)) continue;
    if (before(r, t)) mask[i] = 1;
    else if (!before(t, r) && take > 0) {
      mask[i] = 1;
      take--;
    }
  }
  return mask;
}

/** Exclusive prefix sum and total (exact: computed in float64, checked below 2^32). */
export function exclusiveScanRef(x: ArrayLike<number>): { out: Uint32Array; total: number } {
  const out = new Uint32Array(x.length);
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    out[i] = s;
    s += x[i];
  }
  if (s > 0xffffffff) throw new RangeError(`exclusiveScanRef: total ${s} overflows u32`);
  return { out, total: s };
}

/** CSR of unique (row, col) pairs: row pointers, columns ascending per row, source payloads. */
export interface CsrRef {
  rowPtr: Uint32Array;
  cols: Uint32Array;
  perm: Uint32Array;
}

/**
 * Sorts unique pairs `(rows[i], cols[i])` by (row, col) into CSR; `perm[slot]` is the payload
 * (default: the source index i) of the pair in that slot.
 */
export function csrSortRef(
  rows: ArrayLike<number>,
  cols: ArrayLike<number>,
  nRows: number,
  payload?: ArrayLike<number>,
): CsrRef {
  const nnz = rows.length;
  const order = Array.from({ length: nnz }, (_, i) => i);
  order.sort((a, b) => rows[a] - rows[b] || cols[a] - cols[b]);
  const rowPtr = new Uint32Array(nRows + 1);
  for (let i = 0; i < nnz; i++) rowPtr[rows[i] + 1]++;
  for (let r = 0; r < nRows; r++) rowPtr[r + 1] += rowPtr[r];
  const outCols = new Uint32Array(nnz);
  const perm = new Uint32Array(nnz);
  order.forEach((src, slot) => {
    outCols[slot] = cols[src];
    perm[slot] = payload ? payload[src] : src;
  });
  return { rowPtr, cols: outCols, perm };
}
