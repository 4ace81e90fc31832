/**
 * Sparse products of a CSR layer (src/sparse/csr.ts) with feature-major activations
 * `[features][ld]`, `ld = roundUp4(batch)`. Shader: shaders/sparse.wgsl; references:
 * sparse_ref.ts.
 *
 * - {@link spmm}: forward `z = Wᵀ·x + bias`, `y = act(z)` (gather over CSR(Wᵀ), fused epilogue).
 * - {@link spmmT}: backward data `dx = W·dy`, optionally times `act'(z)` of the layer below
 *   (gather over CSR(W) reading the shared value array through `perm`).
 * - {@link sddmm}: weight gradient at the nonzeros `dvalues[k] = sum_b x[i][b]·dy[j][b]`, in the
 *   value order.
 *
 * No float atomics; every output element has one owner. Padding columns written are zero.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, uploadCsr } from "../sparse/csr.ts";
 * import { spmm } from "./sparse.ts";
 * const gpu = await getGpu();
 * // W (2 x 1): W[0][0] = 2, W[1][0] = -1; batch 3 (ld 4)
 * const layer = uploadCsr(gpu, csrFromCoo(2, 1, [0, 1], [0, 0], [2, -1]));
 * const x = gpu.tensor("f32", [2, 4], { data: new Float32Array([1, 2, 3, 0, 4, 1, 9, 0]) });
 * const y = gpu.tensor("f32", [1, 4]);
 * const rec = gpu.recorder();
 * spmm(rec, { layer, x, y, batch: 3, activation: "relu" });
 * rec.submit();
 * console.log(await gpu.read(y)); // Float32Array [0, 3, 0, 0]
 * ```
 * @module
 */
import code from "../../shaders/sparse.wgsl" with { type: "text" };
import {
  defineKernel,
  f32,
  FiligreeError,
  type Gpu,
  grid,
  packParams,
  type Recorder,
  requireTensor,
  roundUp4,
  type Tensor,
} from "../gpu/mod.ts";
import type { CsrLayer } from "../sparse/csr.ts";
import { activationId, activationParam, withActivations } from "./activation_ids.ts";

const CODE = withActivations(code);

/**
 * llvmpipe stops an invocation after 65,535 loop iterations (all loops together, silently):
 * every wrapper keeps its per-invocation trip count at or below this.
 */
export const MAX_LOOP_TRIPS = 65_000;

/** Forward gather kernel (`spmm` entry of shaders/sparse.wgsl). */
export const SPMM = defineKernel({
  shader: "sparse.wgsl",
  code: CODE,
  entry: "spmm",
  bindings: [
    ["p", "uniform"],
    ["row_ptr_t", "read"],
    ["col_t", "read"],
    ["vals", "read"],
    ["x_in", "read"],
    ["bias", "read"],
    ["y_out", "read_write"],
    ["z_out", "read_write"],
  ],
});
/** Backward data gather kernel (`spmm_t` entry). */
export const SPMM_T = defineKernel({
  shader: "sparse.wgsl",
  code: CODE,
  entry: "spmm_t",
  bindings: [
    ["p", "uniform"],
    ["row_ptr", "read"],
    ["col", "read"],
    ["vals", "read"],
    ["perm", "read"],
    ["dy_in", "read"],
    ["dx_out", "read_write"],
    ["zp_in", "read"],
  ],
});
/** Weight gradient kernel (`sddmm` entry). */
export const SDDMM = defineKernel({
  shader: "sparse.wgsl",
  code: CODE,
  entry: "sddmm",
  bindings: [
    ["p", "uniform"],
    ["row_ptr_t", "read"],
    ["col_t", "read"],
    ["dvals", "read_write"],
    ["x_in", "read"],
    ["dy_in", "read"],
  ],
});

/**
 * Blocking of the two gathers (override constants): `wg` invocations along the batch per row,
 * `vb` quads (vec4) per invocation (1..4, `wg` quads apart), `rj` rows per workgroup. One
 * workgroup covers `4 · wg · vb` samples of `rj` rows.
 */
export interface GatherTuning {
  wg: number;
  vb: number;
  rj: number;
}
/** The probes' winner on llvmpipe: 8 invocations x 4 quads = batch 128 per workgroup, one row. */
export const GATHER_TUNING: Readonly<GatherTuning> = { wg: 8, vb: 4, rj: 1 };

/**
 * Blocking of {@link sddmm}: `sg` invocations per output row striding over its nonzeros, `ch`
 * quads of dy (1..8) held in registers per chunk.
 */
export interface SddmmTuning {
  sg: number;
  ch: number;
}
/** The probes' winner on llvmpipe (sddmm_row_reg8_wg8). */
export const SDDMM_TUNING: Readonly<SddmmTuning> = { sg: 8, ch: 8 };

/** Forward arguments: `z[j] = sum_i W[i][j]·x[i] + bias[j]`, `y = act(z)`. */
export interface SpmmArgs {
  layer: CsrLayer;
  /** f32 `[nIn][ld]` input activation. */
  x: Tensor;
  /** f32 `[nOut][ld]` output (post-activation). */
  y: Tensor;
  batch: number;
  /** f32 `[nOut][ld]`: also store the pre-activation (for the backward of non-ReLU activations). */
  z?: Tensor;
  /** f32 `[nOut]`. */
  bias?: Tensor;
  /** Activation name (activation_ids.ts), identity when omitted. */
  activation?: string;
  /** The activation's scalar parameter (default: activationParam's default for the activation). */
  actParam?: number;
  tune?: Partial<GatherTuning>;
}

/** Backward data arguments: `dx[i] = (sum_j W[i][j]·dy[j]) · act'(z[i])`. */
export interface SpmmTArgs {
  layer: CsrLayer;
  /** f32 `[nOut][ld]` gradient w.r.t. this layer's pre-activation. */
  dy: Tensor;
  /** f32 `[nIn][ld]` result. */
  dx: Tensor;
  batch: number;
  /** f32 `[nIn][ld]` pre-activation of the layer below; required with a non-identity activation. */
  z?: Tensor;
  /** Activation of the layer below whose derivative is fused; none when omitted. */
  activation?: string;
  actParam?: number;
  tune?: Partial<GatherTuning>;
}

/** Weight gradient arguments: `dvalues[k] (+)= sum_b x[colT[k]][b]·dy[j][b]`. */
export interface SddmmArgs {
  layer: CsrLayer;
  /** f32 `[nIn][ld]` input activation of the layer. */
  x: Tensor;
  /** f32 `[nOut][ld]` gradient w.r.t. the pre-activation. */
  dy: Tensor;
  /** f32 `[nnz]` result, in the order of `layer.values`. */
  dvalues: Tensor;
  batch: number;
  /** Add to `dvalues` instead of overwriting it (gradient accumulation). */
  accumulate?: boolean;
  tune?: Partial<SddmmTuning>;
}

const placeholders = new WeakMap<Gpu, { read: Tensor; write: Tensor }>();
/** 1-element tensors bound where an optional input/output is absent (never accessed). */
function placeholder(gpu: Gpu): { read: Tensor; write: Tensor } {
  let p = placeholders.get(gpu);
  if (!p) {
    p = {
      read: gpu.tensor("f32", [1], { zero: true, label: "sparse.unused_in" }),
      write: gpu.tensor("f32", [1], { zero: true, label: "sparse.unused_out" }),
    };
    placeholders.set(gpu, p);
  }
  return p;
}

const need = (t: Tensor, n: number, what: string, dtype: "f32" | "u32" = "f32") =>
  requireTensor(t, n, what, dtype);

function distinct(op: string, ts: [string, Tensor | undefined][]) {
  for (let a = 0; a < ts.length; a++) {
    for (let b = a + 1; b < ts.length; b++) {
      const ta = ts[a][1];
      const tb = ts[b][1];
      if (ta && tb && ta.buffer === tb.buffer) {
        throw new FiligreeError(`${op}: ${ts[a][0]} and ${ts[b][0]} must be different tensors`);
      }
    }
  }
}

function checkBatch(op: string, batch: number): number {
  if (!Number.isInteger(batch) || batch < 1) {
    throw new FiligreeError(`${op}: batch must be a positive integer, got ${batch}`);
  }
  return roundUp4(batch);
}

function checkLayer(op: string, l: CsrLayer, orientation: "T" | "W") {
  if (orientation === "T") {
    need(l.rowPtrT, l.nOut + 1, `${op} rowPtrT`, "u32");
    need(l.colT, l.nnz, `${op} colT`, "u32");
  } else {
    need(l.rowPtr, l.nIn + 1, `${op} rowPtr`, "u32");
    need(l.col, l.nnz, `${op} col`, "u32");
    need(l.perm, l.nnz, `${op} perm`, "u32");
  }
}

function gatherTuning(gpu: Gpu, op: string, t: Partial<GatherTuning> = {}): GatherTuning {
  const g = { ...GATHER_TUNING, ...t };
  const ok = [g.wg, g.rj].every((v) => Number.isInteger(v) && v >= 1) && Number.isInteger(g.vb) &&
    g.vb >= 1 &&
    g.vb <= 4;
  if (!ok) throw new FiligreeError(`${op}: bad tuning wg ${g.wg}, vb ${g.vb} (1..4), rj ${g.rj}`);
  gpu.checkLimit("maxComputeWorkgroupSizeX", g.wg, `${op} workgroup`);
  gpu.checkLimit("maxComputeWorkgroupSizeY", g.rj, `${op} workgroup`);
  gpu.checkLimit("maxComputeInvocationsPerWorkgroup", g.wg * g.rj, `${op} workgroup`);
  return g;
}

/** Workgroups of a gather: (row blocks of rj) x (batch blocks of wg·vb quads), flattened. */
function gatherGrid(rec: Recorder, rows: number, ld4: number, g: GatherTuning) {
  const blocks = Math.ceil(ld4 / (g.wg * g.vb));
  return { blocks, groups: grid(rec.gpu, Math.ceil(rows / g.rj) * blocks) };
}

/**
 * Forward sparse layer: `z[j][b] = sum_k values[k]·x[colT[k]][b] + bias[j]` over row `j` of
 * CSR(Wᵀ), `y = act(z)`, optionally storing `z`. Padding columns of `y` and `z` become 0.
 * Per-invocation loop: one row of CSR(Wᵀ), at most `nIn` iterations (`nIn <= MAX_LOOP_TRIPS`).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, uploadCsr } from "../sparse/csr.ts";
 * import { spmm } from "./sparse.ts";
 * const gpu = await getGpu();
 * const layer = uploadCsr(gpu, csrFromCoo(1, 2, [0, 0], [0, 1], [1, -1]));
 * const x = gpu.tensor("f32", [1, 4], { data: new Float32Array([1, 2, 0, 0]) });
 * const bias = gpu.tensor("f32", [2], { data: new Float32Array([0.5, 0.5]) });
 * const y = gpu.tensor("f32", [2, 4]);
 * const z = gpu.tensor("f32", [2, 4]);
 * const rec = gpu.recorder();
 * spmm(rec, { layer, x, y, z, bias, batch: 2, activation: "relu" });
 * rec.submit();
 * console.log(await gpu.read(y)); // [1.5, 2.5, 0, 0, 0, 0, 0, 0]
 * console.log(await gpu.read(z)); // [1.5, 2.5, 0, 0, -0.5, -1.5, 0, 0]
 * ```
 */
export function spmm(rec: Recorder, a: SpmmArgs): void {
  const op = "spmm";
  const { layer } = a;
  const ld = checkBatch(op, a.batch);
  checkLayer(op, layer, "T");
  need(layer.values, layer.nnz, `${op} values`);
  need(a.x, layer.nIn * ld, `${op} x`);
  need(a.y, layer.nOut * ld, `${op} y`);
  if (a.z) need(a.z, layer.nOut * ld, `${op} z`);
  if (a.bias) need(a.bias, layer.nOut, `${op} bias`);
  distinct(op, [["x", a.x], ["y", a.y], ["z", a.z]]);
  if (layer.nIn > MAX_LOOP_TRIPS) {
    throw new FiligreeError(
      `${op}: nIn ${layer.nIn} exceeds the per-invocation loop bound ${MAX_LOOP_TRIPS} (a row of Wᵀ may hold nIn nonzeros)`,
    );
  }
  const g = gatherTuning(rec.gpu, op, a.tune);
  const { blocks, groups } = gatherGrid(rec, layer.nOut, ld / 4, g);
  const ph = placeholder(rec.gpu);
  const act = a.activation ?? "identity";
  const p = rec.gpu.uniform(
    packParams([
      layer.nOut,
      a.batch,
      ld / 4,
      blocks,
      0,
      0,
      0,
      f32(activationParam(act, a.actParam)),
    ]),
  );
  const k = rec.gpu.kernel(SPMM, {
    ACT: activationId(act),
    HAS_BIAS: a.bias ? 1 : 0,
    STORE_Z: a.z ? 1 : 0,
    WG: g.wg,
    VB: g.vb,
    RJ: g.rj,
  });
  rec.dispatch(k, {
    p,
    row_ptr_t: layer.rowPtrT,
    col_t: layer.colT,
    vals: layer.values,
    x_in: a.x,
    bias: a.bias ?? ph.read,
    y_out: a.y,
    z_out: a.z ?? ph.write,
  }, groups);
}

/**
 * Backward data: `dx[i][b] = sum_m values[perm[m]]·dy[col[m]][b]` over row `i` of CSR(W), times
 * `act'(z[i][b])` when an activation (of the layer below) is given. Padding columns of `dx`
 * become 0. Per-invocation loop: one row of CSR(W), at most `nOut` iterations
 * (`nOut <= MAX_LOOP_TRIPS`).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, uploadCsr } from "../sparse/csr.ts";
 * import { spmmT } from "./sparse.ts";
 * const gpu = await getGpu();
 * const layer = uploadCsr(gpu, csrFromCoo(1, 2, [0, 0], [0, 1], [1, -1]));
 * const dy = gpu.tensor("f32", [2, 4], { data: new Float32Array([1, 2, 0, 0, 3, 5, 0, 0]) });
 * const z = gpu.tensor("f32", [1, 4], { data: new Float32Array([1, -1, 0, 0]) });
 * const dx = gpu.tensor("f32", [1, 4]);
 * const rec = gpu.recorder();
 * spmmT(rec, { layer, dy, dx, z, batch: 2, activation: "relu" });
 * rec.submit();
 * console.log(await gpu.read(dx)); // [-2, -0, 0, 0]
 * ```
 */
export function spmmT(rec: Recorder, a: SpmmTArgs): void {
  const op = "spmmT";
  const { layer } = a;
  const ld = checkBatch(op, a.batch);
  checkLayer(op, layer, "W");
  need(layer.values, layer.nnz, `${op} values`);
  need(a.dy, layer.nOut * ld, `${op} dy`);
  need(a.dx, layer.nIn * ld, `${op} dx`);
  const actName = a.activation ?? "identity";
  const act = activationId(actName);
  const useZ = act !== activationId("identity");
  if (useZ && !a.z) {
    throw new FiligreeError(
      `${op}: activation "${a.activation}" needs z (the pre-activation of the layer below)`,
    );
  }
  if (useZ && a.z) need(a.z, layer.nIn * ld, `${op} z`);
  distinct(op, [["dy", a.dy], ["dx", a.dx], ["z", useZ ? a.z : undefined]]);
  if (layer.nOut > MAX_LOOP_TRIPS) {
    throw new FiligreeError(
      `${op}: nOut ${layer.nOut} exceeds the per-invocation loop bound ${MAX_LOOP_TRIPS} (a row of W may hold nOut nonzeros)`,
    );
  }
  const g = gatherTuning(rec.gpu, op, a.tune);
  const { blocks, groups } = gatherGrid(rec, layer.nIn, ld / 4, g);
  const p = rec.gpu.uniform(
    packParams([
      layer.nIn,
      a.batch,
      ld / 4,
      blocks,
      0,
      0,
      0,
      f32(activationParam(actName, a.actParam)),
    ]),
  );
  const k = rec.gpu.kernel(SPMM_T, {
    ACT: act,
    HAS_ZP: useZ ? 1 : 0,
    WG: g.wg,
    VB: g.vb,
    RJ: g.rj,
  });
  rec.dispatch(k, {
    p,
    row_ptr: layer.rowPtr,
    col: layer.col,
    vals: layer.values,
    perm: layer.perm,
    dy_in: a.dy,
    dx_out: a.dx,
    zp_in: useZ && a.z ? a.z : placeholder(rec.gpu).read,
  }, groups);
}

/**
 * Quads of the batch one sddmm dispatch may cover: an invocation runs
 * `ceil(quads / ch) · (ceil(nIn / sg) + 2)` loop iterations (chunks x (nonzeros of a row / sg,
 * plus loop exits)), kept at or below {@link MAX_LOOP_TRIPS}.
 *
 * @example
 * ```ts
 * import { sddmmQuadsPerDispatch } from "./sparse.ts";
 * console.log(sddmmQuadsPerDispatch(784)); // 5200 (batch 20,800 in one dispatch)
 * console.log(sddmmQuadsPerDispatch(1000, { sg: 1, ch: 1 })); // 64
 * ```
 */
export function sddmmQuadsPerDispatch(nIn: number, t: Partial<SddmmTuning> = {}): number {
  const s = { ...SDDMM_TUNING, ...t };
  const perChunk = Math.ceil(nIn / s.sg) + 2;
  return Math.floor(MAX_LOOP_TRIPS / perChunk) * s.ch;
}

/**
 * Weight gradient at the nonzeros: `dvalues[k] = sum_{b < batch} x[colT[k]][b]·dy[j][b]` for `k`
 * in row `j` of CSR(Wᵀ) (the order of `layer.values`); with `accumulate`, added to `dvalues`.
 * Padding columns of `x` and `dy` are ignored. Large batches are split over several dispatches
 * (see {@link sddmmQuadsPerDispatch}) to respect the loop bound.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/mod.ts";
 * import { csrFromCoo, uploadCsr } from "../sparse/csr.ts";
 * import { sddmm } from "./sparse.ts";
 * const gpu = await getGpu();
 * const layer = uploadCsr(gpu, csrFromCoo(2, 1, [0, 1], [0, 0], [0, 0]));
 * const x = gpu.tensor("f32", [2, 4], { data: new Float32Array([1, 2, 0, 0, 3, 4, 0, 0]) });
 * const dy = gpu.tensor("f32", [1, 4], { data: new Float32Array([1, 1, 0, 0]) });
 * const dvalues = gpu.tensor("f32", [2]);
 * const rec = gpu.recorder();
 * sddmm(rec, { layer, x, dy, dvalues, batch: 2 });
 * rec.submit();
 * console.log(await gpu.read(dvalues)); // [3, 7]
 * ```
 */
export function sddmm(rec: Recorder, a: SddmmArgs): void {
  const op = "sddmm";
  const { layer } = a;
  const ld = checkBatch(op, a.batch);
  checkLayer(op, layer, "T");
  need(a.x, layer.nIn * ld, `${op} x`);
  need(a.dy, layer.nOut * ld, `${op} dy`);
  need(a.dvalues, layer.nnz, `${op} dvalues`);
  distinct(op, [["x", a.x], ["dy", a.dy], ["dvalues", a.dvalues]]);
  const s = { ...SDDMM_TUNING, ...a.tune };
  if (!Number.isInteger(s.sg) || s.sg < 1 || !Number.isInteger(s.ch) || s.ch < 1 || s.ch > 8) {
    throw new FiligreeError(`${op}: bad tuning sg ${s.sg}, ch ${s.ch} (1..8)`);
  }
  rec.gpu.checkLimit("maxComputeWorkgroupSizeX", s.sg, `${op} workgroup`);
  const step = sddmmQuadsPerDispatch(layer.nIn, s);
  if (step < 1) {
    throw new FiligreeError(
      `${op}: nIn ${layer.nIn} exceeds the per-invocation loop bound (${MAX_LOOP_TRIPS} iterations with sg ${s.sg})`,
    );
  }
  const k = rec.gpu.kernel(SDDMM, { SG: s.sg, CH: s.ch });
  const groups = grid(rec.gpu, layer.nOut);
  const ld4 = ld / 4;
  for (let q0 = 0; q0 < ld4; q0 += step) {
    const q1 = Math.min(ld4, q0 + step);
    const acc = q0 > 0 || a.accumulate ? 1 : 0;
    const p = rec.gpu.uniform(packParams([layer.nOut, a.batch, ld4, 0, q0, q1, acc, f32(0)]));
    rec.dispatch(k, {
      p,
      row_ptr_t: layer.rowPtrT,
      col_t: layer.colT,
      dvals: a.dvalues,
      x_in: a.x,
      dy_in: a.dy,
    }, groups);
  }
}
