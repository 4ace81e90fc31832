/**
 * The work-efficient ablation plan of one weight layer: whether its single-weight ablations can
 * be carried sample by sample to the loss (shaders/ablation_carry.wgsl), the packed inputs of the
 * kernel, and the cost model that picks it over the batched patched-copy path.
 *
 * What is carried. Removing `w_ij` of layer L0 changes unit j's pre-activation only on the
 * samples where `x_i != 0` (sample lists built from the cached input); its output changes only
 * where the unit-wise chain after L0 (activation, evaluation-mode batch norm, SReLU; dropout is
 * the identity) changes; the next weight layer W1 then changes along the nonzeros of row j; the
 * same again through W1's chain and row r of W2. The kernel keeps one sample's logits in a
 * private array, so it carries into the output layer from at most two layers below it.
 *
 * Layer norm. A layer norm (LN) between the ablated layer and the output mixes the units of a
 * sample: a change of one unit moves the sample's mean and variance and so every unit of the
 * layer. Such chains take the sibling kernel shaders/ablation_carry_ln.wgsl
 * (kernels/ablation_carry_ln.ts): per reached sample the LN statistics are updated in O(1) from the
 * cached ones (computed here in float64 from the cached pre-activations), the whole layer's change
 * is carried through the next weight layer's nonzeros (and its chain, whose LN statistics are
 * updated by exact sums over the changed units) into the logits. Per reached sample that costs
 * about one sample's recompute of the layers above, but only on the samples the ablated input
 * reaches (and, with the activation before the LN, only where the activation's output changes),
 * without the batched path's copies; LN before or after the activation, in either chain.
 *
 * Where it falls back to the batched path (patched copies through the rest of the model):
 * - three or more weight layers above the ablated one (the fan-out state exceeds the logits);
 * - more than {@link CARRY_MAX_CLASSES} classes, more than 4 ops per chain, two layer norms in
 *   one chain, a per-sample loop bound over llvmpipe's cap, or the cost model below (the layer-norm
 *   kernel's own: `planCarryLn`).
 *
 * Cost model: when to stop carrying. Per ablation, the carry costs, on each sample the ablated
 * input reaches, its fan-out `2·ops0 + r1·(1 + 2·ops1 + r2)` (r1, r2: mean nonzeros per row of W1
 * and W2; every reached sample is counted as changed, the worst case); a dense recompute of the
 * layers above costs, on every sample, `Σ (nnz + rows)` of the weight layers above L0. Both then
 * score the same logits (the loss is not counted). The carry is taken when its cost is at most
 * the recompute's. A row of W1 has at most rows(W2's input) entries, so through two layers the
 * fan-out never exceeds the recompute; past two layers it would grow as r1·r2·r3 while the
 * private state must hold a whole layer, so the plan stops there (falls back).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rowsByInput } from "./ablation_carry.ts";
 * // W: 2 inputs x 3 outputs with entries (0,2)=5, (1,0)=6, (0,1)=7 in value order.
 * const r = rowsByInput(2, Float32Array.of(5, 6, 7), Uint32Array.of(0, 2, 1, 0, 0, 1));
 * assert.deepEqual([...r.ptr], [0, 2, 3]);
 * assert.deepEqual([...r.col], [2, 1, 0]);
 * assert.deepEqual([...r.val], [5, 7, 6]);
 * ```
 * @module
 */
import { type Gpu, roundUp4, type Tensor } from "../gpu/mod.ts";
import {
  ablationCarry,
  CARRY_MAX_CLASSES,
  CARRY_MAX_OPS,
  carryBase,
  carryChunking,
  type CarryMeta,
  type CarryOp,
  packCarry,
  type RowCsr,
} from "../kernels/analysis.ts";
import {
  ablationCarryLn,
  carryLnBase,
  carryLnChunking,
  type CarryLnMeta,
  type CarryLnOp,
  carryLnPerDispatch,
  lnStats,
  packCarryLn,
  preOps,
} from "../kernels/ablation_carry_ln.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { analysisOf } from "../nn/analyzable.ts";
import type { MetricLoss } from "../kernels/analysis.ts";
import type { ProbeLayer } from "./probe.ts";
import type { Sequential } from "../nn/mlp.ts";

/** What one dispatch of a carried plan needs from the probe. */
export interface CarryDispatch {
  /** Cached input and pre-activation of the ablated layer. */
  x0: Tensor;
  z0: Tensor;
  /** Packed ablations (ordered by input row); this dispatch takes `[first, first + count)`. */
  ablations: Tensor;
  first: number;
  count: number;
  /** f32 `[2·chunks·total]`: per (ablation, chunk) the loss and hit delta sums. */
  out: Tensor;
}

/** A layer whose ablations take a carried kernel. */
export interface CarryPlan {
  /** "unit": ablation_carry.wgsl (unit-wise chains); "ln": ablation_carry_ln.wgsl. */
  kernel: "unit" | "ln";
  depth: 0 | 1 | 2;
  /** The unit kernel's packed inputs (the LN kernel's are in `lnMeta`). */
  meta?: CarryMeta;
  lnMeta?: CarryLnMeta;
  metaU: Tensor;
  metaF: Tensor;
  metaV: Tensor;
  /** Copies of W1's cached pre-activations (depth 2) and the cached logits. */
  zl: Tensor;
  chunk: number;
  chunks: number;
  /** Most ablations per dispatch (the LN kernel's scratch bound; Infinity for the unit kernel). */
  perDispatch: number;
  /** Records one dispatch of the plan's kernel. */
  dispatch(rec: Recorder, a: CarryDispatch): void;
  /** GPU tensors the plan owns (release them when dropping it). */
  tensors: Tensor[];
  /** Cost model, operations per ablation (see the module doc). */
  cost: { carry: number; recompute: number };
}

/** The carried plan, or why the layer falls back to the batched path. */
export type CarryDecision = { plan: CarryPlan; reason?: undefined } | {
  plan?: undefined;
  reason: string;
};

/** Groups a layer's nonzeros (value order, `ends` = input i, output j per entry) by input row. */
export function rowsByInput(nIn: number, values: Float32Array, ends: Uint32Array): RowCsr {
  const n = values.length;
  const ptr = new Uint32Array(nIn + 1);
  for (let e = 0; e < n; e++) ptr[ends[2 * e] + 1]++;
  for (let i = 0; i < nIn; i++) ptr[i + 1] += ptr[i];
  const fill = ptr.slice(0, nIn);
  const col = new Uint32Array(n), val = new Float32Array(n);
  for (let e = 0; e < n; e++) {
    const at = fill[ends[2 * e]]++;
    col[at] = ends[2 * e + 1];
    val[at] = values[e];
  }
  return { ptr, col, val };
}

/** Per input row of a cached `[rows][ld]` activation: the samples where it is nonzero. */
export function sampleLists(
  x: Float32Array,
  rows: number,
  samples: number,
  ld: number,
): { ptr: Uint32Array; idx: Uint32Array } {
  const ptr = new Uint32Array(rows + 1);
  let n = 0;
  for (let i = 0; i < rows; i++) {
    for (let s = 0; s < samples; s++) if (x[i * ld + s] !== 0) n++;
    ptr[i + 1] = n;
  }
  const idx = new Uint32Array(n);
  let o = 0;
  for (let i = 0; i < rows; i++) {
    for (let s = 0; s < samples; s++) if (x[i * ld + s] !== 0) idx[o++] = s;
  }
  return { ptr, idx };
}

/**
 * The unit-wise chain from weight layer `pl`'s linear output to the next weight layer's input,
 * or the reason there is none.
 */
async function unitChain(
  model: Sequential,
  pl: ProbeLayer,
  until: number,
): Promise<CarryLnOp[] | string> {
  const ops: CarryLnOp[] = [];
  if (pl.kind !== "linear") return `${pl.name} is a ${pl.kind} layer (weights shared)`;
  if (pl.view.act !== "identity") {
    ops.push({ kind: "act", activation: pl.view.act, param: pl.view.actParam });
  }
  for (let i = pl.index + 1; i < until; i++) {
    const L = analysisOf(model.layers[i]);
    const op = L.unitOp ? await L.unitOp() : null;
    if (!op) return `layer ${L.name} is not unit-wise`;
    if (op.kind === "identity") continue;
    if (op.kind === "mixing") {
      if (!L.layerNorm || ops.some((o) => o.kind === "ln")) return op.why;
      ops.push({ kind: "ln", ...(await L.layerNorm()) });
      continue;
    }
    ops.push(op);
  }
  if (ops.length > CARRY_MAX_OPS) {
    return `more than ${CARRY_MAX_OPS} unit-wise ops after ${pl.name}`;
  }
  return ops;
}

const mean = (r: RowCsr) => (r.ptr.length > 1 ? r.col.length / (r.ptr.length - 1) : 0);

/** What the planner needs from the probe (kept narrow: no import cycle at run time). */
export interface CarryInputs {
  gpu: Gpu;
  model: Sequential;
  layers: ProbeLayer[];
  samples: number;
  loss: MetricLoss;
  labels: Tensor;
  cachedX: Tensor[];
  cachedZ: Tensor[];
}

/** Decides and, when carried, packs and uploads the plan of weight layer `w`. */
export async function planCarry(p: CarryInputs, w: number): Promise<CarryDecision> {
  const { gpu, model, layers } = p;
  const pl = layers[w];
  const depth = layers.length - 1 - w;
  const out = layers[layers.length - 1];
  if (layers.slice(w).some((l) => l.kind !== "linear")) {
    return { reason: "a convolution or recurrent layer in the carried span (weights shared)" };
  }
  if (out.index !== model.layers.length - 1 || out.view.act !== "identity") {
    return { reason: "the output layer is not the model's last, identity layer" };
  }
  if (depth > 2) {
    return {
      reason:
        `${depth} weight layers above: past two, the carried fan-out outgrows a sample's logits`,
    };
  }
  const classes = out.nOut;
  if (classes > CARRY_MAX_CLASSES) return { reason: `${classes} classes > ${CARRY_MAX_CLASSES}` };
  const chain0 = depth >= 1 ? await unitChain(model, pl, layers[w + 1].index) : [];
  if (typeof chain0 === "string") return { reason: chain0 };
  const chain1 = depth === 2 ? await unitChain(model, layers[w + 1], out.index) : [];
  if (typeof chain1 === "string") return { reason: chain1 };
  const S = p.samples;
  const ld = roundUp4(S);
  const [x, labels] = await Promise.all([gpu.read(p.cachedX[w]), gpu.read(p.labels)]);
  const lists = sampleLists(x as Float32Array, pl.nIn, S, ld);
  const rows = (v: number) => rowsByInput(layers[v].nIn, layers[v].values, layers[v].ends);
  const row1 = depth >= 1 ? rows(w + 1) : undefined;
  const row2 = depth === 2 ? rows(w + 2) : undefined;
  let above = 0;
  for (let v = w + 1; v < layers.length; v++) above += layers[v].nnz + layers[v].nOut;
  const recompute = S * (above + 1);
  if ([...chain0, ...chain1].some((o) => o.kind === "ln")) {
    return await planCarryLn(p, w, {
      depth: depth as 1 | 2,
      chain0,
      chain1,
      lists,
      labels: (labels as Uint32Array).slice(0, S),
      row1: row1!,
      row2,
      recompute,
    });
  }
  const logits = await gpu.read(p.cachedZ[layers.length - 1]) as Float32Array;
  const meta = packCarry({
    logits,
    samples: S,
    sampPtr: lists.ptr,
    sampIdx: lists.idx,
    labels: (labels as Uint32Array).slice(0, S),
    depth: depth as 0 | 1 | 2,
    classes,
    loss: p.loss,
    chain0: chain0 as CarryOp[],
    chain1: chain1 as CarryOp[],
    row1,
    row2,
  });
  const chunking = carryChunking(meta);
  if (!chunking) return { reason: "one sample's carry exceeds the per-invocation loop bound" };
  const fanOut = 1 + 2 * chain0.length +
    (row1 ? mean(row1) * (1 + 2 * chain1.length + (row2 ? mean(row2) : 0)) : 0);
  const carry = (lists.idx.length / pl.nIn) * fanOut;
  if (carry > recompute) {
    return {
      reason: `cost model: carry ${carry.toFixed(0)} > recompute ${recompute} per ablation`,
    };
  }
  const metaU = gpu.tensor("u32", [meta.u.length], { data: meta.u, label: `${pl.name} carry u32` });
  const metaF = gpu.tensor("f32", [meta.f.length], { data: meta.f, label: `${pl.name} carry f32` });
  const metaV = gpu.tensor("f32", [meta.v.length], { data: meta.v, label: `${pl.name} carry v` });
  // W1's cached pre-activations (depth 2; else a placeholder, not read).
  const zl = gpu.tensor("f32", [Math.max(4, meta.hidden * ld)], { label: `${pl.name} carry zl` });
  const rec = gpu.recorder("carry base metrics");
  if (depth === 2) rec.copy(p.cachedZ[w + 1], zl, meta.hidden * ld);
  const scratch = gpu.tensor("f32", [4 * S], { label: "carry base metrics" });
  carryBase(rec, { meta, metaU, metaF, metaV, zl, scratch });
  rec.submit();
  await gpu.sync();
  gpu.release(scratch);
  const { chunk, chunks } = chunking;
  return {
    plan: {
      kernel: "unit",
      depth: depth as 0 | 1 | 2,
      meta,
      metaU,
      metaF,
      metaV,
      zl,
      chunk,
      chunks,
      perDispatch: Infinity,
      dispatch: (rec, a) =>
        ablationCarry(rec, { meta, metaU, metaF, metaV, zl, chunk, chunks, ...a }),
      tensors: [metaU, metaF, metaV, zl],
      cost: { carry, recompute },
    },
  };
}

/**
 * The plan of a layer with a layer norm in its carried span (shaders/ablation_carry_ln.wgsl):
 * the LN statistics of the cached activations in float64, packing, chunking, base metrics.
 * Cost model: per reached sample about one sample's recompute of the span, `n0 + Σ (nnz + rows)`
 * (every unit of the normalised layer, the nonzeros of W1's rows scattered, the units and rows
 * above), against the same on every sample for the batched recompute (whose patched copies also
 * pass through the ablated layer's chain): the carry is never the more expensive, it is taken
 * whenever one sample fits the loop bound.
 */
async function planCarryLn(
  p: CarryInputs,
  w: number,
  c: {
    depth: 1 | 2;
    chain0: CarryLnOp[];
    chain1: CarryLnOp[];
    lists: { ptr: Uint32Array; idx: Uint32Array };
    labels: Uint32Array;
    row1: RowCsr;
    row2?: RowCsr;
    recompute: number;
  },
): Promise<CarryDecision> {
  const { gpu, layers } = p;
  const pl = layers[w];
  const S = p.samples, ld = roundUp4(S);
  const classes = layers[layers.length - 1].nOut;
  const stats = async (v: number, chain: CarryLnOp[]) => {
    if (!chain.some((o) => o.kind === "ln")) return undefined;
    const z = await gpu.read(p.cachedZ[v]) as Float32Array;
    return lnStats(z, layers[v].nOut, S, ld, preOps(chain));
  };
  const lnMeta = packCarryLn({
    samples: S,
    sampPtr: c.lists.ptr,
    sampIdx: c.lists.idx,
    labels: c.labels,
    depth: c.depth,
    classes,
    loss: p.loss,
    n0: pl.nOut,
    chain0: c.chain0,
    chain1: c.chain1,
    stats0: await stats(w, c.chain0),
    stats1: c.depth === 2 ? await stats(w + 1, c.chain1) : undefined,
    row1: c.row1,
    row2: c.row2,
  });
  const chunking = carryLnChunking(lnMeta);
  if (!chunking) return { reason: "one sample's layer-norm carry exceeds the loop bound" };
  const perSample = pl.nOut + c.recompute / S - 1;
  const carry = (c.lists.idx.length / pl.nIn) * perSample;
  const recompute = S * (perSample + 1);
  if (carry > recompute) {
    return {
      reason: `cost model: layer-norm carry ${carry.toFixed(0)} > recompute ${recompute}`,
    };
  }
  const { chunk, chunks } = chunking;
  const perDispatch = carryLnPerDispatch(
    lnMeta,
    chunks,
    gpu.limits.maxStorageBufferBindingSize,
  );
  const metaU = gpu.tensor("u32", [lnMeta.u.length], { data: lnMeta.u, label: "ln carry u32" });
  const metaF = gpu.tensor("f32", [lnMeta.f.length], { data: lnMeta.f, label: "ln carry f32" });
  const zl = gpu.tensor("f32", [(lnMeta.logitRow + classes) * ld], { label: "ln carry zl" });
  // W1's change per lane: in private arrays (PRIV) or in this scratch, which also takes the base
  // metrics once.
  const lanes = lnMeta.overrides.PRIV ? 0 : Math.max(1, lnMeta.n1) * perDispatch * chunks;
  const scratch = gpu.tensor("f32", [Math.max(2 * S, lanes)], { label: "ln carry scratch" });
  const rec = gpu.recorder("ln carry base metrics");
  if (c.depth === 2) rec.copy(p.cachedZ[w + 1], zl, lnMeta.logitRow * ld);
  rec.copy(p.cachedZ[layers.length - 1], zl, classes * ld, 0, lnMeta.logitRow * ld);
  carryLnBase(rec, { meta: lnMeta, metaU, metaF, zl, scratch });
  rec.submit();
  await gpu.sync();
  return {
    plan: {
      kernel: "ln",
      depth: c.depth,
      lnMeta,
      metaU,
      metaF,
      metaV: metaF,
      zl,
      chunk,
      chunks,
      perDispatch,
      dispatch: (rec, a) =>
        ablationCarryLn(rec, { meta: lnMeta, metaU, metaF, zl, chunk, chunks, scratch, ...a }),
      tensors: [metaU, metaF, zl, scratch],
      cost: { carry, recompute },
    },
  };
}
