/**
 * Work-efficient exact single-weight ablation through evaluation-mode layer norm
 * (shaders/ablation_carry_ln.wgsl; float64 reference: ablation_carry_ln_ref.ts). The sibling of
 * `ablationCarry` (kernels/analysis.ts) for the chains that hold a layer norm: per ablation only
 * the samples its input reaches, the layer norm's statistics updated in O(1) from the cached ones,
 * the whole normalised layer's change carried through the next weight layer (and its chain, which
 * may hold a layer norm too) into the logits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lnStats } from "./ablation_carry_ln.ts";
 * // 2 units x 1 sample (ld 4): column [1, 3] -> mean 2, variance 1.
 * const st = lnStats(Float32Array.of(1, 0, 0, 0, 3, 0, 0, 0), 2, 1, 4, []);
 * assert.deepEqual([...st.mean, ...st.variance], [2, 1]);
 * ```
 * @module
 */
import carryLnCode from "../../shaders/ablation_carry_ln.wgsl" with { type: "text" };
import { activationId, withActivations } from "./activation_ids.ts";
import {
  CARRY_MAX_CLASSES,
  CARRY_MAX_OPS,
  type CarryOp,
  type MetricLoss,
  type RowCsr,
} from "./analysis.ts";
import { carryChainRef } from "./analysis_ref.ts";
import {
  defineKernel,
  f32,
  FiligreeError,
  grid,
  MAX_LOOP_TRIPS,
  packParams,
  type ParamField,
  type Recorder,
  requireTensor,
  roundUp4,
  type Tensor,
} from "../gpu/mod.ts";

export const ABLATION_CARRY_LN = defineKernel({
  shader: "ablation_carry_ln.wgsl",
  code: withActivations(carryLnCode),
  entry: "ablate_carry_ln",
  bindings: [
    ["cp", "uniform"],
    ["meta_u", "read"],
    ["meta_f", "read"],
    ["x_in", "read"],
    ["z_in", "read"],
    ["zl", "read"],
    ["abl", "read"],
    ["out", "read_write"],
    ["dz1", "read_write"],
  ],
});

/** Evaluation-mode layer norm over the units of a sample (biased variance, eps inside the root). */
export interface LnOp {
  kind: "ln";
  gamma: Float32Array;
  beta: Float32Array;
  eps: number;
}

/** An op of a chain between two weight layers: unit-wise, or a layer norm (at most one). */
export type CarryLnOp = CarryOp | LnOp;

/** Per-sample statistics of a layer norm's input (float64 computed, `[S]` each). */
export interface LnStats {
  mean: Float32Array;
  variance: Float32Array;
}

/** Everything {@link ablationCarryLn} needs besides the cached activations. */
export interface CarryLnSpec {
  samples: number;
  /** Per input row i of the ablated layer: the samples where `x_i != 0` (CSR over rows). */
  sampPtr: Uint32Array;
  sampIdx: Uint32Array;
  labels: Uint32Array;
  /** Weight layers after the ablated one: 1 (W1 is the output layer) or 2. */
  depth: 1 | 2;
  classes: number;
  loss: MetricLoss;
  /** Units of the ablated layer's output (rows of W1). */
  n0: number;
  /** Chain after the ablated layer and after W1 (depth 2); at least one holds a layer norm. */
  chain0: CarryLnOp[];
  chain1: CarryLnOp[];
  /** Statistics of each chain's layer norm input on the cached activations (when it has one). */
  stats0?: LnStats;
  stats1?: LnStats;
  /** W1 and (depth 2) W2 by input row. */
  row1: RowCsr;
  row2?: RowCsr;
  /**
   * Most W1 units kept in a private array per lane (default {@link CARRY_LN_MAX_PRIV}; above it,
   * in the scratch binding). Measured on llvmpipe, fc1 of a 784-300-100-10: 22.3 s private vs
   * 31.6 s scratch for 1,000 ablations on 5,000 samples.
   */
  privateMax?: number;
}

/** Packed static inputs of {@link ablationCarryLn} (upload `u` and `f` once per layer). */
export interface CarryLnMeta {
  u: Uint32Array;
  f: Float32Array;
  logitRow: number;
  /** Units of W1's output (scratch floats per invocation; 0 at depth 1). */
  n1: number;
  fields: ParamField[];
  overrides: Record<string, number>;
  /** Loop trips per reached sample (upper bound). */
  tripsPerSample: number;
  maxList: number;
  samples: number;
  baseOffset: number;
}

/** Most units of W1 whose change a lane keeps in a private array (else in the scratch binding). */
export const CARRY_LN_MAX_PRIV = 256;
const n1Of = (s: CarryLnSpec) => (s.depth === 2 ? s.row2!.ptr.length - 1 : 0);

/** Index of the layer norm in a chain, or -1; throws on two. */
function lnIndex(chain: readonly CarryLnOp[]): number {
  const at = chain.flatMap((op, o) => (op.kind === "ln" ? [o] : []));
  if (at.length > 1) throw new FiligreeError("ablationCarryLn: two layer norms in one chain");
  return at.length ? at[0] : -1;
}

/**
 * Per-sample mean and (biased) variance, in float64, of a cached `[rows][ld]` activation after
 * the unit-wise ops `pre` (the ops before a layer norm).
 */
export function lnStats(
  z: Float32Array,
  rows: number,
  samples: number,
  ld: number,
  pre: readonly CarryOp[],
): LnStats {
  const mean = new Float32Array(samples), variance = new Float32Array(samples);
  const u = new Float64Array(rows);
  for (let s = 0; s < samples; s++) {
    let sum = 0;
    for (let r = 0; r < rows; r++) {
      u[r] = pre.length ? carryChainRef(pre, r, z[r * ld + s]) : z[r * ld + s];
      sum += u[r];
    }
    const m = sum / rows;
    let v = 0;
    for (let r = 0; r < rows; r++) v += (u[r] - m) ** 2;
    mean[s] = m;
    variance[s] = v / rows;
  }
  return { mean, variance };
}

/** The unit-wise ops of a chain before its layer norm (all of them when it has none). */
export function preOps(chain: readonly CarryLnOp[]): CarryOp[] {
  const at = lnIndex(chain);
  return (at < 0 ? chain : chain.slice(0, at)) as CarryOp[];
}

function rowLen(r: RowCsr): { max: number; total: number } {
  let max = 0;
  for (let i = 0; i + 1 < r.ptr.length; i++) max = Math.max(max, r.ptr[i + 1] - r.ptr[i]);
  return { max, total: r.col.length };
}

/** Packs a {@link CarryLnSpec} (data, uniform fields, pipeline overrides, loop bound). */
export function packCarryLn(s: CarryLnSpec): CarryLnMeta {
  if (s.classes > CARRY_MAX_CLASSES || s.classes < 1) {
    throw new FiligreeError(`ablationCarryLn: ${s.classes} classes (1 to ${CARRY_MAX_CLASSES})`);
  }
  if (s.chain0.length > CARRY_MAX_OPS || s.chain1.length > CARRY_MAX_OPS) {
    throw new FiligreeError(`ablationCarryLn: more than ${CARRY_MAX_OPS} ops in a chain`);
  }
  if (s.depth === 2 && !s.row2) throw new FiligreeError("ablationCarryLn: depth 2 needs row2");
  if (s.depth === 1 && s.chain1.length) {
    throw new FiligreeError("ablationCarryLn: depth 1 has no chain after the output layer");
  }
  const ln0 = lnIndex(s.chain0), ln1 = lnIndex(s.chain1);
  if (ln0 >= 0 && !s.stats0) throw new FiligreeError("ablationCarryLn: chain 0 needs stats0");
  if (ln1 >= 0 && !s.stats1) throw new FiligreeError("ablationCarryLn: chain 1 needs stats1");
  const nc4 = Math.ceil(s.classes / 4);
  const S = s.samples;
  const u: Uint32Array[] = [], f: Float32Array[] = [];
  let nu = 0, nf = 0;
  const pushU = (a: Uint32Array) => (u.push(a), nu += a.length, nu - a.length);
  const pushF = (a: Float32Array) => (f.push(a), nf += a.length, nf - a.length);
  // The output rows first: their offset stays a multiple of 4.
  const outRows = s.depth === 2 ? s.row2! : s.row1;
  const nOutRows = outRows.ptr.length - 1;
  const dense = new Float32Array(Math.max(4, nOutRows * nc4 * 4));
  for (let i = 0; i < nOutRows; i++) {
    for (let e = outRows.ptr[i]; e < outRows.ptr[i + 1]; e++) {
      dense[i * nc4 * 4 + outRows.col[e]] = outRows.val[e];
    }
  }
  const rowsV = pushF(dense);
  const sampPtr = pushU(s.sampPtr), sampIdx = pushU(s.sampIdx), labels = pushU(s.labels);
  const empty = { ptr: new Uint32Array(1), col: new Uint32Array(0), val: new Float32Array(0) };
  const hid = s.depth === 2 ? s.row1 : empty;
  const row1Ptr = pushU(hid.ptr), row1Col = pushU(hid.col), row1Val = pushF(hid.val);
  const n1 = s.depth === 2 ? s.row2!.ptr.length - 1 : 0;
  if (s.row1.ptr.length - 1 !== s.n0) {
    throw new FiligreeError(`ablationCarryLn: W1 has ${s.row1.ptr.length - 1} rows, n0 ${s.n0}`);
  }
  const baseOff = pushF(new Float32Array(2 * S));
  const statsOff = (st?: LnStats) => {
    if (!st) return 0;
    const off = pushF(st.mean);
    pushF(st.variance);
    return off;
  };
  const stats0 = statsOff(ln0 >= 0 ? s.stats0 : undefined);
  const stats1 = statsOff(ln1 >= 0 ? s.stats1 : undefined);
  const ops: ParamField[] = [];
  const overrides: Record<string, number> = {
    NC4: nc4,
    DEPTH: s.depth,
    LOSS: s.loss === "xent" ? 0 : s.loss === "mse" ? 1 : 2,
    LN0: ln0 < 0 ? 4 : ln0,
    LN1: ln1 < 0 ? 4 : ln1,
    PRIV: n1Of(s) <= (s.privateMax ?? CARRY_LN_MAX_PRIV) ? 1 : 0,
  };
  [s.chain0, s.chain1].forEach((chain, seg) => {
    for (let o = 0; o < CARRY_MAX_OPS; o++) {
      const op = chain[o];
      const kind = !op ? 0 : ({ act: 1, bn: 2, srelu: 3, ln: 4 } as const)[op.kind];
      overrides[`K${seg}${o}`] = kind;
      overrides[`A${seg}${o}`] = op?.kind === "act" ? activationId(op.activation) : 0;
      if (!op) {
        ops.push(0, 0, 0, 0);
      } else if (op.kind === "act") {
        ops.push(f32(op.param), 0, 0, 0);
      } else if (op.kind === "bn") {
        const off = pushF(op.gamma);
        pushF(op.beta);
        pushF(op.mean);
        pushF(op.variance);
        ops.push(f32(op.eps), op.gamma.length, off, 0);
      } else if (op.kind === "ln") {
        const off = pushF(op.gamma);
        pushF(op.beta);
        ops.push(f32(op.eps), op.gamma.length, off, 0);
      } else {
        ops.push(0, op.params.length / 4, pushF(op.params), 0);
      }
    }
  });
  const cat = <T extends Uint32Array | Float32Array>(parts: T[], out: T): T => {
    let o = 0;
    for (const p of parts) (out.set(p as never, o), o += p.length);
    return out;
  };
  const U = cat(u, new Uint32Array(Math.max(4, nu)));
  const F = cat(f, new Float32Array(Math.max(4, nf)));
  const logitRow = n1;
  const fields: ParamField[] = [
    S,
    roundUp4(S),
    0, // k
    0, // chunks
    0, // chunk
    s.classes,
    sampPtr,
    sampIdx,
    labels,
    row1Ptr,
    row1Col,
    row1Val,
    logitRow,
    0, // abl_base
    0, // out_base
    0, // mode
    baseOff,
    s.n0,
    n1,
    stats0,
    stats1,
    rowsV,
    0,
    0,
    ...ops,
  ];
  // Per reached sample, upper bounds as if no loop unrolled: logits (4·nc4) and two metrics
  // (2·2·nc4 + 1); chain 0: zeroing W1's change (n1) and, with a layer norm, every unit (n0)
  // spread along its row (nc4 at depth 1; all of W1's nonzeros at depth 2), else one row; chain
  // 1: two passes over n1 units, one with its output row (nc4). A layer norm whose variance
  // shrinks much is re-measured in two more passes over its units (ln0_direct, ln1_direct).
  const r1 = rowLen(s.row1);
  const spread0 = ln0 >= 0
    ? 3 * s.n0 + (s.depth === 1 ? s.n0 * nc4 : r1.total)
    : (s.depth === 1 ? nc4 : r1.max);
  const tripsPerSample = 9 * nc4 + 1 + n1 + spread0 + (s.depth === 2 ? n1 * (4 + nc4) : 0);
  let maxList = 0;
  for (let i = 0; i + 1 < s.sampPtr.length; i++) {
    maxList = Math.max(maxList, s.sampPtr[i + 1] - s.sampPtr[i]);
  }
  return {
    u: U,
    f: F,
    logitRow,
    n1,
    fields,
    overrides,
    tripsPerSample,
    maxList,
    samples: S,
    baseOffset: baseOff,
  };
}

/** Chunking under the loop bound (null when one sample does not fit), as `carryChunking`. */
export function carryLnChunking(m: CarryLnMeta): { chunk: number; chunks: number } | null {
  const chunk = Math.min(
    Math.floor((MAX_LOOP_TRIPS - 16) / m.tripsPerSample),
    Math.max(1, m.maxList),
  );
  if (chunk < 1) return null;
  return { chunk, chunks: Math.max(1, Math.ceil(m.maxList / chunk)) };
}

/**
 * Most ablations per dispatch whose scratch (`n1` floats per invocation) fits `maxFloats` and
 * the binding limit (Infinity when W1's change is kept in private arrays).
 */
export function carryLnPerDispatch(
  m: CarryLnMeta,
  chunks: number,
  maxBindingBytes: number,
  maxFloats = 2 ** 22,
): number {
  if (m.overrides.PRIV) return Infinity;
  const per = Math.floor(Math.min(maxFloats, maxBindingBytes / 4) / (Math.max(1, m.n1) * chunks));
  if (per < 1) throw new FiligreeError("ablationCarryLn: one ablation's scratch exceeds limits");
  return per;
}

/** Arguments of {@link ablationCarryLn}. */
export interface CarryLnArgs {
  meta: CarryLnMeta;
  metaU: Tensor;
  metaF: Tensor;
  /** Cached input and pre-activation of the ablated layer, `[rows][roundUp4(S)]`. */
  x0: Tensor;
  z0: Tensor;
  /** `[logitRow + classes][roundUp4(S)]`: W1's cached pre-activations (depth 2), the logits. */
  zl: Tensor;
  ablations: Tensor;
  first: number;
  count: number;
  chunk: number;
  chunks: number;
  /** f32 `[2·chunks·total]`: per (ablation, chunk) the loss and hit delta sums. */
  out: Tensor;
  /** f32 scratch, at least `max(1, n1)·count·chunks` floats (1 with private arrays). */
  scratch: Tensor;
}

/** Fills the per-sample base metrics into `metaF` (run once after uploading `meta.f`). */
export function carryLnBase(
  rec: Recorder,
  a: { meta: CarryLnMeta; metaU: Tensor; metaF: Tensor; zl: Tensor; scratch: Tensor },
): void {
  const gpu = rec.gpu, m = a.meta;
  requireTensor(a.scratch, 2 * m.samples, "carryLnBase scratch");
  requireTensor(a.zl, (m.logitRow + 1) * roundUp4(m.samples), "carryLnBase zl");
  const fields = m.fields.slice();
  fields[15] = 1;
  rec.dispatch(
    gpu.kernel(ABLATION_CARRY_LN, m.overrides),
    {
      cp: gpu.uniform(packParams(fields)),
      meta_u: a.metaU,
      meta_f: a.metaF,
      x_in: a.zl,
      z_in: a.zl,
      zl: a.zl,
      abl: a.metaU,
      out: a.scratch,
      dz1: a.scratch, // unused in mode 1 (a second writable binding of the same buffer)
    },
    grid(gpu, Math.ceil(m.samples / 64)),
  );
  rec.copy(a.scratch, a.metaF, 2 * m.samples, 0, m.baseOffset);
}

/**
 * Work-efficient exact ablation through layer norm: per ablation and chunk of the samples it
 * reaches, the sums of the per-sample loss and hit changes (see the shader). Needs
 * {@link carryLnBase} run once on `metaF`.
 */
export function ablationCarryLn(rec: Recorder, a: CarryLnArgs): void {
  const gpu = rec.gpu;
  const m = a.meta;
  const trips = a.chunk * m.tripsPerSample + 16;
  if (trips > MAX_LOOP_TRIPS || a.chunk < 1) {
    throw new FiligreeError(`ablationCarryLn: chunk ${a.chunk} needs ${trips} loop trips`);
  }
  if (a.chunks * a.chunk < m.maxList) {
    throw new FiligreeError(`ablationCarryLn: ${a.chunks} chunks of ${a.chunk} miss samples`);
  }
  const ld = roundUp4(m.samples);
  requireTensor(a.metaU, m.u.length, "ablationCarryLn meta_u");
  requireTensor(a.metaF, m.f.length, "ablationCarryLn meta_f");
  requireTensor(a.zl, (m.logitRow + 1) * ld, "ablationCarryLn zl");
  requireTensor(a.ablations, 3 * (a.first + a.count), "ablationCarryLn ablations");
  requireTensor(a.out, 2 * a.chunks * (a.first + a.count), "ablationCarryLn out");
  const scratch = m.overrides.PRIV ? 1 : Math.max(1, m.n1) * a.count * a.chunks;
  requireTensor(a.scratch, scratch, "ablationCarryLn scratch");
  const fields = m.fields.slice();
  fields[2] = a.count;
  fields[3] = a.chunks;
  fields[4] = a.chunk;
  fields[13] = a.first;
  fields[14] = a.first * a.chunks;
  rec.dispatch(
    gpu.kernel(ABLATION_CARRY_LN, m.overrides),
    {
      cp: gpu.uniform(packParams(fields)),
      meta_u: a.metaU,
      meta_f: a.metaF,
      x_in: a.x0,
      z_in: a.z0,
      zl: a.zl,
      abl: a.ablations,
      out: a.out,
      dz1: a.scratch,
    },
    grid(gpu, Math.ceil((a.count * a.chunks) / 64)),
  );
}
