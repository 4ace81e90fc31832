/**
 * CPU reference of a topology update (topology.ts) and of the drop/grow rules of the sparsity
 * plugins (algorithms.ts), written independently of the GPU pipeline: entries are tracked by
 * dense position `p = i·nOut + j` in maps, and the new CSR is rebuilt with {@link csrFromCoo}.
 * Selections use `markRef` (exactly k, ties broken by lower index first, like the GPU).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { csrFromCoo } from "./csr.ts";
 * import { rebuildRef } from "./topology_ref.ts";
 * const csr = csrFromCoo(2, 2, [0, 1], [0, 1], [0.5, -1]);
 * const before = { csr, born: new Uint32Array([0, 0]), states: [] };
 * // drop the first entry (values order), grow the best empty position by score
 * const after = rebuildRef(before, { drop: [1, 0], growScores: [0, 3, 2, 0], growCount: 1, step: 7 });
 * assert.deepEqual(after.csr.colT, new Uint32Array([0, 1]));
 * assert.deepEqual(after.csr.values, new Float32Array([0, -1]));
 * assert.deepEqual(after.born, new Uint32Array([7, 0]));
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";
import type { Gpu } from "../gpu/mod.ts";
import { csrFromCoo, type CsrHost, downloadCsr } from "./csr.ts";
import { markRef } from "../kernels/topo_ref.ts";
import type { SparseLinear } from "../nn/layers.ts";

/** Host copy of a sparse layer: both CSR orientations, grown-at steps and per-nonzero state. */
export interface LayerSnapshot {
  csr: CsrHost;
  /** u32 [nnz], values order. */
  born: Uint32Array;
  /** f32 [nnz] each, values order (optimizer state). */
  states: Float32Array[];
}

/**
 * Dense position `i·nOut + j` of every nonzero, in values (CSR(Wᵀ)) order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { csrFromCoo } from "./csr.ts";
 * import { positionsOf } from "./topology_ref.ts";
 * assert.deepEqual(positionsOf(csrFromCoo(2, 3, [1, 0], [0, 2])), new Uint32Array([3, 2]));
 * ```
 */
export function positionsOf(h: CsrHost): Uint32Array {
  const pos = new Uint32Array(h.nnz);
  for (let j = 0; j < h.nOut; j++) {
    for (let k = h.rowPtrT[j]; k < h.rowPtrT[j + 1]; k++) pos[k] = h.colT[k] * h.nOut + j;
  }
  return pos;
}

/** One update for {@link rebuildRef}. */
export interface UpdateRef {
  /** Values order: nonzero = drop. */
  drop: ArrayLike<number>;
  /** Dense scores (larger = grown first); required when growCount > 0. */
  growScores?: ArrayLike<number>;
  growCount: number;
  step: number;
  /** Value of grown weights (default 0). */
  grownValue?: number;
}

/**
 * The expected layer after one drop/grow/rebuild: kept entries keep value, born step and
 * state; the `growCount` highest-scoring positions that are not kept (ties: lower position
 * first) are added with `grownValue`, born step `step` and state 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { csrFromCoo } from "./csr.ts";
 * import { rebuildRef } from "./topology_ref.ts";
 * const before = { csr: csrFromCoo(1, 3, [0], [0], [2]), born: new Uint32Array([3]), states: [new Float32Array([9])] };
 * const after = rebuildRef(before, { drop: [0], growScores: [5, 1, 4], growCount: 1, step: 10 });
 * assert.deepEqual(after.csr.col, new Uint32Array([0, 2]));
 * assert.deepEqual(after.states[0], new Float32Array([9, 0]));
 * ```
 */
export function rebuildRef(before: LayerSnapshot, u: UpdateRef): LayerSnapshot {
  const h = before.csr;
  const pos = positionsOf(h);
  if (u.drop.length < h.nnz) throw new FiligreeError("rebuildRef: drop mask shorter than nnz");
  const kept: number[] = [];
  const occupied = new Uint8Array(h.nIn * h.nOut);
  for (let k = 0; k < h.nnz; k++) {
    if (!u.drop[k]) {
      kept.push(k);
      occupied[pos[k]] = 1;
    }
  }
  let grown: number[] = [];
  if (u.growCount > 0) {
    if (!u.growScores) throw new FiligreeError("rebuildRef: growing needs scores");
    const s = Float64Array.from(u.growScores, (v, p) => (occupied[p] ? -1 : v));
    const mask = markRef(s, u.growCount, "value", true);
    grown = [];
    for (let p = 0; p < mask.length; p++) if (mask[p]) grown.push(p);
  }
  const n = kept.length + grown.length;
  const rows = new Uint32Array(n), cols = new Uint32Array(n), vals = new Float32Array(n);
  const born = new Uint32Array(n);
  const states = before.states.map(() => new Float32Array(n));
  kept.forEach((k, e) => {
    rows[e] = Math.floor(pos[k] / h.nOut);
    cols[e] = pos[k] % h.nOut;
    vals[e] = h.values[k];
    born[e] = before.born[k];
    before.states.forEach((st, s) => (states[s][e] = st[k]));
  });
  grown.forEach((p, g) => {
    const e = kept.length + g;
    rows[e] = Math.floor(p / h.nOut);
    cols[e] = p % h.nOut;
    vals[e] = u.grownValue ?? 0;
    born[e] = u.step;
  });
  // csrFromCoo orders the entries; carry born/state through the same order by position.
  const csr = csrFromCoo(h.nIn, h.nOut, rows, cols, vals);
  const slotOf = new Map<number, number>();
  positionsOf(csr).forEach((p, k) => slotOf.set(p, k));
  const born2 = new Uint32Array(n);
  const states2 = states.map(() => new Float32Array(n));
  for (let e = 0; e < n; e++) {
    const k = slotOf.get(rows[e] * h.nOut + cols[e])!;
    born2[k] = born[e];
    states.forEach((st, s) => (states2[s][k] = st[e]));
  }
  return { csr, born: born2, states: states2 };
}

/**
 * SET's drop mask (values order): per sign, the floor(ζ·#positive) smallest positive and
 * floor(ζ·#negative) negative weights closest to zero; or, `global`, the floor(ζ·nnz)
 * smallest |w|.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { setDropRef } from "./topology_ref.ts";
 * assert.deepEqual(setDropRef([0.1, -0.2, 0.3, -0.05, 0.9], 0.5, "per-sign"), new Uint32Array([1, 0, 0, 1, 0]));
 * ```
 */
export function setDropRef(
  values: ArrayLike<number>,
  zeta: number,
  ranking: "per-sign" | "global",
): Uint32Array {
  if (ranking === "global") return markRef(values, Math.floor(zeta * values.length), "abs", false);
  let np = 0, nn = 0;
  for (let k = 0; k < values.length; k++) {
    if (values[k] > 0) np++;
    else if (values[k] < 0) nn++;
  }
  const a = markRef(values, Math.floor(zeta * np), "positive", false);
  const b = markRef(values, Math.floor(zeta * nn), "negative", false);
  return a.map((v, k) => v | b[k]);
}

/**
 * RigL's dense gradient |X·dZᵀ| (float64) from feature-major `x` `[nIn][ld]` and `dz`
 * `[nOut][ld]` over the first `batch` columns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gradScoresRef } from "./topology_ref.ts";
 * assert.deepEqual(gradScoresRef([1, 2], [3, -4], 2, 2, 1, 1), new Float64Array([3, 4, 6, 8]));
 * ```
 */
export function gradScoresRef(
  x: ArrayLike<number>,
  dz: ArrayLike<number>,
  nIn: number,
  nOut: number,
  batch: number,
  ld: number,
): Float64Array {
  const g = new Float64Array(nIn * nOut);
  for (let i = 0; i < nIn; i++) {
    for (let j = 0; j < nOut; j++) {
      let s = 0;
      for (let b = 0; b < batch; b++) s += x[i * ld + b] * dz[j * ld + b];
      g[i * nOut + j] = Math.abs(s);
    }
  }
  return g;
}

/**
 * Reads a sparse layer back for comparison with {@link rebuildRef} (arrays cut to the current
 * nnz: pruning leaves the buffers longer). Test-side helper: many readbacks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, uploadCsr } from "./csr.ts";
 * import { SparseLinear } from "../nn/layers.ts";
 * import { snapshotLayer } from "./topology_ref.ts";
 * const gpu = await getGpu();
 * const layer = new SparseLinear(gpu, "l", uploadCsr(gpu, csrFromCoo(2, 2, [0], [1], [3])), {});
 * assert.deepEqual((await snapshotLayer(gpu, layer)).csr.values, new Float32Array([3]));
 * ```
 */
export async function snapshotLayer(gpu: Gpu, layer: SparseLinear): Promise<LayerSnapshot> {
  const h = await downloadCsr(gpu, layer.csr);
  const n = h.nnz;
  const csr: CsrHost = {
    ...h,
    colT: h.colT.slice(0, n),
    values: h.values.slice(0, n),
    col: h.col.slice(0, n),
    perm: h.perm.slice(0, n),
  };
  const born = ((await gpu.read(layer.bornStep)) as Uint32Array).slice(0, n);
  const states: Float32Array[] = [];
  for (const st of layer.perNonzero) {
    states.push(((await gpu.read(st)) as Float32Array).slice(0, n));
  }
  return { csr, born, states };
}
