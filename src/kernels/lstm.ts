/**
 * LSTM cell kernels on feature-major activations. Shader: shaders/lstm.wgsl; references:
 * lstm_ref.ts. The matrix products (input and recurrent weights) are the sparse kernels of
 * sparse.ts; these kernels do the rest:
 *
 * - {@link lstmSequence}: re-lays the input `[steps·features][ld]` (row `t·F + f` = feature `f`
 *   of step `t`) as `[features][steps·ld]`, so ONE SpMM/SDDMM of the input weights covers every
 *   time step (batch `steps·ld`).
 * - {@link lstmGatesForward}: step `t` of the cell: gates `i, f, o = σ`, `g = tanh` of
 *   `zx (block t) + zh`, `c_t = f·c_{t-1} + i·g`, `h_t = o·tanh(c_t)`; saves `c` and the
 *   activated gates in "all-steps" tensors `[rows][steps·ld]` (step `t` = column block `t`).
 * - {@link lstmGatesBackward}: step `t` of backpropagation through time: gate pre-activation
 *   gradients `dz_t` (a step tensor for the recurrent spmmT and block `t` of an all-steps tensor
 *   for the weight gradients) and the cell gradient carried to step `t-1`.
 *
 * Gate rows in a `4H` block: `i = [0, H)`, `f = [H, 2H)`, `g = [2H, 3H)`, `o = [3H, 4H)`.
 * No kernel here has a loop (one invocation per row and vec4 of samples).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { lstmGatesForward } from "./lstm.ts";
 * const gpu = await getGpu();
 * // H = 1, one step, batch 1 (ld 4): all gate pre-activations 0 -> i = f = o = 0.5, g = 0
 * const zx = gpu.tensor("f32", [4, 4], { zero: true });
 * const zh = gpu.tensor("f32", [4, 4], { zero: true });
 * const c = gpu.tensor("f32", [1, 4]);
 * const gates = gpu.tensor("f32", [4, 4]);
 * const h = gpu.tensor("f32", [1, 4]);
 * const hs = gpu.tensor("f32", [1, 4], { zero: true });
 * const rec = gpu.recorder();
 * lstmGatesForward(rec, { zx, zh, c, gates, h, hs, hidden: 1, steps: 1, t: 0, batch: 1 });
 * rec.submit();
 * assert.deepEqual(await gpu.read(gates), new Float32Array([0.5, 0, 0, 0, 0.5, 0, 0, 0, 0, 0, 0, 0, 0.5, 0, 0, 0]));
 * ```
 * @module
 */
import code from "../../shaders/lstm.wgsl" with { type: "text" };
import {
  defineKernel,
  FiligreeError,
  grid,
  packParams,
  type Recorder,
  requireTensor,
  roundUp4,
  type Tensor,
} from "../gpu/mod.ts";
import { withActivations } from "./activation_ids.ts";

const CODE = withActivations(code);

/** Workgroup size (override `WG`) of the three kernels: one invocation per vec4 of samples. */
export const LSTM_WG = 64;

/** Input re-layout kernel (`lstm_seq`). */
export const LSTM_SEQ = defineKernel({
  shader: "lstm.wgsl",
  code: CODE,
  entry: "lstm_seq",
  bindings: [["p", "uniform"], ["x_in", "read"], ["xs_out", "read_write"]],
  textureInputs: true,
});
/** Inverse input re-layout (`lstm_seq_t`), for the input gradient. */
export const LSTM_SEQ_T = defineKernel({
  shader: "lstm.wgsl",
  code: CODE,
  entry: "lstm_seq_t",
  bindings: [["p", "uniform"], ["dxs_in", "read"], ["dx_out", "read_write"]],
  textureInputs: true,
});
/** Forward cell kernel (`lstm_fwd`). */
export const LSTM_FWD = defineKernel({
  shader: "lstm.wgsl",
  code: CODE,
  entry: "lstm_fwd",
  bindings: [
    ["p", "uniform"],
    ["zx_in", "read"],
    ["zh_in", "read"],
    ["c_all", "read_write"],
    ["gates_out", "read_write"],
    ["h_out", "read_write"],
    ["hs_out", "read_write"],
  ],
  textureInputs: true,
});
/** Backward cell kernel (`lstm_bwd`). */
export const LSTM_BWD = defineKernel({
  shader: "lstm.wgsl",
  code: CODE,
  entry: "lstm_bwd",
  bindings: [
    ["p", "uniform"],
    ["gates_in", "read"],
    ["c_in", "read"],
    ["dh_in", "read"],
    ["dhr_in", "read"],
    ["dc_io", "read_write"],
    ["dz_out", "read_write"],
    ["dzs_out", "read_write"],
  ],
  textureInputs: true,
});

/** Tuning of the three kernels: invocations per workgroup (1-D). */
export interface LstmTuning {
  wg: number;
}

/** Arguments of {@link lstmSequence}. */
export interface LstmSequenceArgs {
  /** f32 `[steps·features][ld]`: row `t·features + f` is feature `f` of step `t`. */
  x: Tensor;
  /** f32 `[features][steps·ld]` result; padding columns of every block become 0. */
  xs: Tensor;
  steps: number;
  features: number;
  batch: number;
  tune?: Partial<LstmTuning>;
}

/** Arguments of {@link lstmSequenceBackward}. */
export interface LstmSequenceBackwardArgs {
  /** f32 `[features][steps·ld]`: the gradient of the re-laid input. */
  dxs: Tensor;
  /** f32 `[steps·features][ld]` result (the layer's input gradient); padding columns 0. */
  dx: Tensor;
  steps: number;
  features: number;
  batch: number;
  tune?: Partial<LstmTuning>;
}

/** Arguments of {@link lstmGatesForward} (H = hidden, S = steps, ld = roundUp4(batch)). */
export interface LstmForwardArgs {
  /** f32 `[4H][S·ld]`: input part of the gate pre-activations, bias included, every step. */
  zx: Tensor;
  /** f32 `[4H][ld]`: recurrent part `W_hᵀ·h_{t-1}` of this step; required for `t > 0`. */
  zh?: Tensor;
  /** f32 `[H][S·ld]`: cell states; block `t-1` is read (t > 0), block `t` written. */
  c: Tensor;
  /** f32 `[4H][S·ld]`: activated gates i, f, g, o; block `t` written. */
  gates: Tensor;
  /** f32 `[H][ld]`: `h_t`. */
  h: Tensor;
  /** f32 `[H][S·ld]`: recurrent inputs; block `t+1` gets `h_t` when `t + 1 < S`, block 0 zeroed at `t = 0`. */
  hs: Tensor;
  hidden: number;
  steps: number;
  t: number;
  batch: number;
  tune?: Partial<LstmTuning>;
}

/** Arguments of {@link lstmGatesBackward} (H = hidden, S = steps, ld = roundUp4(batch)). */
export interface LstmBackwardArgs {
  /** f32 `[4H][S·ld]`: the forward's activated gates. */
  gates: Tensor;
  /** f32 `[H][S·ld]`: the forward's cell states. */
  c: Tensor;
  /** f32 `[H][ld]`: loss gradient w.r.t. `h_{S-1}`; read at the last step only (required then). */
  dh?: Tensor;
  /** f32 `[H][ld]`: `W_h·dz_{t+1}` (gradient reaching `h_t` through the recurrence); required for `t < S-1`. */
  dhr?: Tensor;
  /** f32 `[H][ld]`: in: `dc` from step `t+1` (ignored at the last step); out: `dc_t·f_t`. */
  dc: Tensor;
  /** f32 `[4H][ld]`: gate pre-activation gradient of this step. */
  dz: Tensor;
  /** f32 `[4H][S·ld]`: block `t` gets `dz_t`. */
  dzs: Tensor;
  hidden: number;
  steps: number;
  t: number;
  batch: number;
  tune?: Partial<LstmTuning>;
}

const need = (t: Tensor, n: number, what: string) => requireTensor(t, n, what, "f32");

function distinct(op: string, ts: [string, Tensor | undefined][]) {
  for (let a = 0; a < ts.length; a++) {
    for (let b = a + 1; b < ts.length; b++) {
      const ta = ts[a][1], tb = ts[b][1];
      if (ta && tb && ta.buffer === tb.buffer) {
        throw new FiligreeError(`${op}: ${ts[a][0]} and ${ts[b][0]} must be different tensors`);
      }
    }
  }
}

function posInt(op: string, what: string, v: number) {
  if (!Number.isInteger(v) || v < 1) {
    throw new FiligreeError(`${op}: ${what} must be a positive integer, got ${v}`);
  }
}

function tuning(rec: Recorder, op: string, t: Partial<LstmTuning> = {}): number {
  const wg = t.wg ?? LSTM_WG;
  posInt(op, "tuning wg", wg);
  rec.gpu.checkLimit("maxComputeWorkgroupSizeX", wg, `${op} workgroup`);
  rec.gpu.checkLimit("maxComputeInvocationsPerWorkgroup", wg, `${op} workgroup`);
  return wg;
}

function stepArgs(op: string, a: { hidden: number; steps: number; t: number; batch: number }) {
  posInt(op, "hidden", a.hidden);
  posInt(op, "steps", a.steps);
  posInt(op, "batch", a.batch);
  if (!Number.isInteger(a.t) || a.t < 0 || a.t >= a.steps) {
    throw new FiligreeError(`${op}: step t must be in [0, ${a.steps}), got ${a.t}`);
  }
  return roundUp4(a.batch);
}

/**
 * Input re-layout `xs[f][t·ld + b] = x[t·features + f][b]` (padding columns 0), so the input
 * weights of every step are applied by one SpMM with batch `steps·ld`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { lstmSequence } from "./lstm.ts";
 * const gpu = await getGpu();
 * // 2 steps of 1 feature, batch 1: rows [1,_,_,_] (step 0) and [2,_,_,_] (step 1)
 * const x = gpu.tensor("f32", [2, 4], { data: new Float32Array([1, 0, 0, 0, 2, 0, 0, 0]) });
 * const xs = gpu.tensor("f32", [1, 8]);
 * const rec = gpu.recorder();
 * lstmSequence(rec, { x, xs, steps: 2, features: 1, batch: 1 });
 * rec.submit();
 * assert.deepEqual(await gpu.read(xs), new Float32Array([1, 0, 0, 0, 2, 0, 0, 0]));
 * ```
 */
export function lstmSequence(rec: Recorder, a: LstmSequenceArgs): void {
  relayout(rec, "lstmSequence", LSTM_SEQ, ["x_in", a.x], ["xs_out", a.xs], a);
}

/**
 * The inverse of {@link lstmSequence}: `dx[t·features + f][b] = dxs[f][t·ld + b]` (padding
 * columns 0), which turns the input weights' data gradient over all steps into the layer's
 * input gradient.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { lstmSequenceBackward } from "./lstm.ts";
 * const gpu = await getGpu();
 * // 2 steps of 1 feature, batch 1: block 0 holds 1, block 1 holds 2
 * const dxs = gpu.tensor("f32", [1, 8], { data: new Float32Array([1, 0, 0, 0, 2, 0, 0, 0]) });
 * const dx = gpu.tensor("f32", [2, 4]);
 * const rec = gpu.recorder();
 * lstmSequenceBackward(rec, { dxs, dx, steps: 2, features: 1, batch: 1 });
 * rec.submit();
 * assert.deepEqual(await gpu.read(dx), new Float32Array([1, 0, 0, 0, 2, 0, 0, 0]));
 * ```
 */
export function lstmSequenceBackward(rec: Recorder, a: LstmSequenceBackwardArgs): void {
  relayout(rec, "lstmSequenceBackward", LSTM_SEQ_T, ["dxs_in", a.dxs], ["dx_out", a.dx], a);
}

/** One dispatch of a re-layout kernel (`lstm_seq` or its inverse) between two `S·F·ld` tensors. */
function relayout(
  rec: Recorder,
  op: string,
  kernel: typeof LSTM_SEQ,
  [srcName, src]: [string, Tensor],
  [dstName, dst]: [string, Tensor],
  a: { steps: number; features: number; batch: number; tune?: Partial<LstmTuning> },
): void {
  posInt(op, "steps", a.steps);
  posInt(op, "features", a.features);
  posInt(op, "batch", a.batch);
  const ld = roundUp4(a.batch);
  const [sn, dn] = [srcName.replace(/_in$/, ""), dstName.replace(/_out$/, "")];
  need(src, a.steps * a.features * ld, `${op} ${sn}`);
  need(dst, a.steps * a.features * ld, `${op} ${dn}`);
  distinct(op, [[sn, src], [dn, dst]]);
  const wg = tuning(rec, op, a.tune);
  const p = rec.gpu.uniform(packParams([0, a.batch, ld / 4, a.steps, 0, a.features, 0, 0]));
  const k = rec.gpu.kernel(kernel, { WG: wg });
  const n = a.features * a.steps * (ld / 4);
  rec.dispatch(k, { p, [srcName]: src, [dstName]: dst }, grid(rec.gpu, Math.ceil(n / wg)));
}

/**
 * One forward step of the cell (see the module documentation). Padding columns of every output
 * are written as 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { lstmGatesForward } from "./lstm.ts";
 * const gpu = await getGpu();
 * // H = 1, 1 step, batch 1: z = [i, f, g, o] pre-activations [20, 0, 20, 20] -> c = 1, h = tanh(1)
 * const zx = gpu.tensor("f32", [4, 4], {
 *   data: new Float32Array([20, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 20, 0, 0, 0]),
 * });
 * const c = gpu.tensor("f32", [1, 4]);
 * const gates = gpu.tensor("f32", [4, 4]);
 * const h = gpu.tensor("f32", [1, 4]);
 * const hs = gpu.tensor("f32", [1, 4], { zero: true });
 * const rec = gpu.recorder();
 * lstmGatesForward(rec, { zx, c, gates, h, hs, hidden: 1, steps: 1, t: 0, batch: 1 });
 * rec.submit();
 * assert.deepEqual((await gpu.read(h))[0].toFixed(4), "0.7616");
 * ```
 */
export function lstmGatesForward(rec: Recorder, a: LstmForwardArgs): void {
  const op = "lstmGatesForward";
  const ld = stepArgs(op, a);
  const H = a.hidden, S = a.steps;
  need(a.zx, 4 * H * S * ld, `${op} zx`);
  if (a.t > 0) {
    if (!a.zh) throw new FiligreeError(`${op}: zh (recurrent pre-activations) needed at t > 0`);
    need(a.zh, 4 * H * ld, `${op} zh`);
  }
  need(a.c, H * S * ld, `${op} c`);
  need(a.gates, 4 * H * S * ld, `${op} gates`);
  need(a.h, H * ld, `${op} h`);
  need(a.hs, H * S * ld, `${op} hs`);
  distinct(op, [
    ["zx", a.zx],
    ["zh", a.t > 0 ? a.zh : undefined],
    ["c", a.c],
    ["gates", a.gates],
    ["h", a.h],
    ["hs", a.hs],
  ]);
  const wg = tuning(rec, op, a.tune);
  const p = rec.gpu.uniform(packParams([H, a.batch, ld / 4, S, a.t, 0, 0, 0]));
  const k = rec.gpu.kernel(LSTM_FWD, { WG: wg });
  rec.dispatch(k, {
    p,
    zx_in: a.zx,
    // Not read at t = 0 (h_{-1} = 0): any read-only tensor other than the outputs will do.
    zh_in: a.t > 0 && a.zh ? a.zh : a.zx,
    c_all: a.c,
    gates_out: a.gates,
    h_out: a.h,
    hs_out: a.hs,
  }, grid(rec.gpu, Math.ceil((H * ld) / 4 / wg)));
}

/**
 * One step of backpropagation through time (see the module documentation). Padding columns of
 * `dz`, `dzs` (block t) and `dc` are written as 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { lstmGatesBackward } from "./lstm.ts";
 * const gpu = await getGpu();
 * // H = 1, 1 step, batch 1: gates i = f = o = 0.5, g = 0, c = 0, dh = 1
 * // -> dc = dh·o·(1 - tanh(c)²) = 0.5, dz_g = dc·i·(1 - g²) = 0.25
 * const gates = gpu.tensor("f32", [4, 4], {
 *   data: new Float32Array([0.5, 0, 0, 0, 0.5, 0, 0, 0, 0, 0, 0, 0, 0.5, 0, 0, 0]),
 * });
 * const c = gpu.tensor("f32", [1, 4], { zero: true });
 * const dh = gpu.tensor("f32", [1, 4], { data: new Float32Array([1, 0, 0, 0]) });
 * const dc = gpu.tensor("f32", [1, 4]);
 * const dz = gpu.tensor("f32", [4, 4]);
 * const dzs = gpu.tensor("f32", [4, 4]);
 * const rec = gpu.recorder();
 * lstmGatesBackward(rec, { gates, c, dh, dc, dz, dzs, hidden: 1, steps: 1, t: 0, batch: 1 });
 * rec.submit();
 * assert.deepEqual((await gpu.read(dz))[8], 0.25);
 * ```
 */
export function lstmGatesBackward(rec: Recorder, a: LstmBackwardArgs): void {
  const op = "lstmGatesBackward";
  const ld = stepArgs(op, a);
  const H = a.hidden, S = a.steps;
  const last = a.t === S - 1;
  need(a.gates, 4 * H * S * ld, `${op} gates`);
  need(a.c, H * S * ld, `${op} c`);
  if (last) {
    if (!a.dh) throw new FiligreeError(`${op}: dh (loss gradient of h) needed at the last step`);
    need(a.dh, H * ld, `${op} dh`);
  } else {
    if (!a.dhr) throw new FiligreeError(`${op}: dhr (recurrent gradient) needed at t < steps-1`);
    need(a.dhr, H * ld, `${op} dhr`);
  }
  need(a.dc, H * ld, `${op} dc`);
  need(a.dz, 4 * H * ld, `${op} dz`);
  need(a.dzs, 4 * H * S * ld, `${op} dzs`);
  const dhIn = last ? a.dh! : a.gates; // the unread input is bound to any read-only tensor
  const dhrIn = last ? a.gates : a.dhr!;
  distinct(op, [
    ["gates", a.gates],
    ["c", a.c],
    ["dh", last ? a.dh : undefined],
    ["dhr", last ? undefined : a.dhr],
    ["dc", a.dc],
    ["dz", a.dz],
    ["dzs", a.dzs],
  ]);
  const wg = tuning(rec, op, a.tune);
  const p = rec.gpu.uniform(packParams([H, a.batch, ld / 4, S, a.t, 0, 0, 0]));
  const k = rec.gpu.kernel(LSTM_BWD, { WG: wg });
  rec.dispatch(k, {
    p,
    gates_in: a.gates,
    c_in: a.c,
    dh_in: dhIn,
    dhr_in: dhrIn,
    dc_io: a.dc,
    dz_out: a.dz,
    dzs_out: a.dzs,
  }, grid(rec.gpu, Math.ceil((H * ld) / 4 / wg)));
}
