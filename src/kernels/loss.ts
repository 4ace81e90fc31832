/**
 * Loss kernels on feature-major outputs `[classes][ld]` (`ld = roundUp4(batch)`): fused,
 * max-subtracted softmax cross-entropy, and mean-squared error with an optional fused sigmoid.
 * Shader: shaders/loss.wgsl; reference: loss_ref.ts.
 *
 * Formulas (per sample c; `scale` defaults to `1/batch`, so the gradient is that of the batch
 * mean of the per-sample losses):
 * - softmax cross-entropy: `loss[c] = logsumexp_k z[k][c] - z[label[c]][c]`,
 *   `dz[k][c] = scale * (softmax_k - [k == label[c]])`; optional `argmax[c]` (first maximum).
 * - MSE: `y = act(z)` (identity or sigmoid), `loss[c] = 0.5 * sum_k (y[k][c] - t[k][c])^2`,
 *   `dz[k][c] = scale * (y - t) * act'(z)`; `t` is one-hot from labels or a dense target.
 *
 * Per-sample outputs (`loss`, `argmax`) are written for `c < batch` only; gradient padding
 * columns are written 0. Labels are u32 and must be `< classes`. No argument may alias another.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { softmaxXent } from "./loss.ts";
 * const gpu = await getGpu();
 * // 2 classes x batch 1 (ld 4), equal logits, label 1
 * const logits = gpu.tensor("f32", [2, 4], { zero: true });
 * const labels = gpu.tensor("u32", [1], { data: new Uint32Array([1]) });
 * const loss = gpu.tensor("f32", [1]);
 * const dlogits = gpu.tensor("f32", [2, 4]);
 * const rec = gpu.recorder();
 * softmaxXent(rec, { logits, labels, loss, dlogits, classes: 2, batch: 1 });
 * rec.submit();
 * assert.ok(Math.abs((await gpu.read(loss))[0] - Math.LN2) < 1e-6);
 * assert.deepEqual([...await gpu.read(dlogits)], [0.5, 0, 0, 0, -0.5, 0, 0, 0]);
 * ```
 * @module
 */
import code from "../../shaders/loss.wgsl" with { type: "text" };
import {
  defineKernel,
  f32,
  FiligreeError,
  type Gpu,
  grid,
  MAX_LOOP_TRIPS,
  packParams,
  type Recorder,
  roundUp4,
  type Tensor,
} from "../gpu/mod.ts";

/** Default workgroup size (override `WG`): one invocation per quad of 4 samples. */
export const LOSS_WG = 8;

/** Softmax cross-entropy: loss, gradient, optional argmax. */
export const SOFTMAX_XENT = defineKernel({
  shader: "loss.wgsl",
  code,
  entry: "softmax_xent",
  textureInputs: true,
  bindings: [
    ["p", "uniform"],
    ["z", "read"],
    ["labels", "read"],
    ["dz", "read_write"],
    ["loss", "read_write"],
    ["argmax", "read_write"],
    ["counter", "read_write"],
  ],
});
/** MSE against one-hot labels. */
export const MSE_LABELS = defineKernel({
  shader: "loss.wgsl",
  code,
  entry: "mse_labels",
  textureInputs: true,
  bindings: [["p", "uniform"], ["z", "read"], ["labels", "read"], ["dz", "read_write"], [
    "loss",
    "read_write",
  ]],
});
/** MSE against a dense target. */
export const MSE_DENSE = defineKernel({
  shader: "loss.wgsl",
  code,
  entry: "mse_dense",
  textureInputs: true,
  bindings: [["p", "uniform"], ["z", "read"], ["tgt", "read"], ["dz", "read_write"], [
    "loss",
    "read_write",
  ]],
});

/** Sizes shared by the loss ops. */
export interface LossShape {
  classes: number;
  batch: number;
  /** Gradient scale; default `1 / batch` (gradient of the batch-mean loss). */
  scale?: number;
  /** Workgroup size override (tests use 1 to reach a 2-D grid cheaply); default {@link LOSS_WG}. */
  wg?: number;
}

/** Arguments of {@link softmaxXent}. */
export interface SoftmaxXentArgs extends LossShape {
  /** f32 `[classes][ld]`. */
  logits: Tensor;
  /** u32, >= batch elements, each < classes. */
  labels: Tensor;
  /** f32, >= batch elements: per-sample loss. */
  loss: Tensor;
  /** f32 `[classes][ld]`: `scale * (softmax - onehot)`, padding 0. */
  dlogits: Tensor;
  /** Optional u32, >= batch elements: index of the largest logit per sample. */
  argmax?: Tensor;
  /**
   * Optional: add the number of samples whose prediction is their label to `counter[index]`
   * (u32), as `countCorrect` on the same logits would (its argmax: lowest index on ties, a NaN
   * never wins), in the same pass.
   */
  count?: { counter: Tensor; index: number };
}

/** Arguments of {@link mseLoss}: give exactly one of `labels` and `target`. */
export interface MseArgs extends LossShape {
  /** f32 `[classes][ld]`: the output pre-activation (the output itself for "identity"). */
  pred: Tensor;
  /** u32, >= batch elements: one-hot target classes. */
  labels?: Tensor;
  /** f32 `[classes][ld]`: dense target. */
  target?: Tensor;
  /** f32, >= batch elements: per-sample loss `0.5 * sum_k (y - t)^2`. */
  loss: Tensor;
  /** f32 `[classes][ld]`: `scale * (y - t) * act'(pred)`, padding 0. */
  dpred: Tensor;
  /** Output activation fused before the loss (default "identity"). */
  outputActivation?: "identity" | "sigmoid";
}

function need(t: Tensor, dtype: Tensor["dtype"], n: number, what: string) {
  if (t.dtype !== dtype) {
    throw new FiligreeError(`${what}: tensor ${t.label} is ${t.dtype}, needs ${dtype}`);
  }
  if (t.size < n) {
    throw new FiligreeError(`${what}: tensor ${t.label} has ${t.size} elements, needs ${n}`);
  }
}

function shape(op: string, a: LossShape, trips: number): { ld: number; scale: number; wg: number } {
  for (const [k, v] of [["classes", a.classes], ["batch", a.batch]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new FiligreeError(`${op}: ${k} must be an integer >= 1, got ${v}`);
    }
  }
  if (trips > MAX_LOOP_TRIPS) {
    throw new FiligreeError(
      `${op}: ${a.classes} classes need ${trips} loop iterations per invocation, over the bound ${MAX_LOOP_TRIPS}`,
    );
  }
  const wg = a.wg ?? LOSS_WG;
  if (!Number.isInteger(wg) || wg < 1) {
    throw new FiligreeError(`${op}: wg must be an integer >= 1, got ${wg}`);
  }
  const scale = a.scale ?? 1 / a.batch;
  if (!Number.isFinite(scale)) throw new FiligreeError(`${op}: scale must be finite, got ${scale}`);
  return { ld: roundUp4(a.batch), scale, wg };
}

const placeholders = new WeakMap<Gpu, Map<string, Tensor>>();
function placeholder(gpu: Gpu, what: "argmax" | "counter"): Tensor {
  let byWhat = placeholders.get(gpu);
  if (!byWhat) placeholders.set(gpu, byWhat = new Map());
  let t = byWhat.get(what);
  if (!t) {
    t = gpu.tensor("u32", [4], { label: `${what} placeholder` });
    byWhat.set(what, t);
  }
  return t;
}

/**
 * Fused softmax cross-entropy: per-sample loss, gradient w.r.t. the logits, optional argmax.
 * Loop bound: 2·classes - 1 iterations per invocation (classes <= 32,500).
 *
 * @example
 * ```ts ignore
 * softmaxXent(rec, { logits, labels, loss, dlogits, argmax, classes: 10, batch: 128 });
 * ```
 */
export function softmaxXent(rec: Recorder, a: SoftmaxXentArgs): void {
  const op = "softmaxXent";
  const { ld, scale, wg } = shape(op, a, 2 * a.classes - 1);
  need(a.logits, "f32", a.classes * ld, `${op} logits`);
  need(a.dlogits, "f32", a.classes * ld, `${op} dlogits`);
  need(a.labels, "u32", a.batch, `${op} labels`);
  need(a.loss, "f32", a.batch, `${op} loss`);
  if (a.argmax) need(a.argmax, "u32", a.batch, `${op} argmax`);
  const index = a.count?.index ?? 0;
  if (a.count) {
    if (!Number.isInteger(index) || index < 0) {
      throw new FiligreeError(`${op}: bad counter index ${index}`);
    }
    need(a.count.counter, "u32", index + 1, `${op} counter`);
  }
  const k = rec.gpu.kernel(SOFTMAX_XENT, {
    WG: wg,
    WRITE_ARGMAX: a.argmax ? 1 : 0,
    COUNT: a.count ? 1 : 0,
  });
  rec.dispatch(k, {
    p: rec.gpu.uniform(packParams([a.classes, a.batch, ld, f32(scale), 0, index])),
    z: a.logits,
    labels: a.labels,
    dz: a.dlogits,
    loss: a.loss,
    argmax: a.argmax ?? placeholder(rec.gpu, "argmax"),
    counter: a.count?.counter ?? placeholder(rec.gpu, "counter"),
  }, grid(rec.gpu, Math.ceil(ld / 4 / wg)));
}

/**
 * Mean-squared error `0.5 * sum_k (act(pred) - t)^2` per sample, and its gradient w.r.t. `pred`
 * through the optional sigmoid. Loop bound: classes iterations per invocation.
 *
 * @example
 * ```ts ignore
 * mseLoss(rec, { pred, labels, loss, dpred, classes: 10, batch: 128, outputActivation: "sigmoid" });
 * ```
 */
export function mseLoss(rec: Recorder, a: MseArgs): void {
  const op = "mseLoss";
  const { ld, scale, wg } = shape(op, a, a.classes);
  if ((a.labels === undefined) === (a.target === undefined)) {
    throw new FiligreeError(`${op}: give exactly one of labels and target`);
  }
  const act = a.outputActivation ?? "identity";
  if (act !== "identity" && act !== "sigmoid") {
    throw new FiligreeError(
      `${op}: outputActivation must be "identity" or "sigmoid", got "${act}"`,
    );
  }
  need(a.pred, "f32", a.classes * ld, `${op} pred`);
  need(a.dpred, "f32", a.classes * ld, `${op} dpred`);
  need(a.loss, "f32", a.batch, `${op} loss`);
  const p = rec.gpu.uniform(
    packParams([a.classes, a.batch, ld, f32(scale), act === "sigmoid" ? 1 : 0, 0]),
  );
  const groups = grid(rec.gpu, Math.ceil(ld / 4 / wg));
  if (a.labels) {
    need(a.labels, "u32", a.batch, `${op} labels`);
    const k = rec.gpu.kernel(MSE_LABELS, { WG: wg });
    rec.dispatch(k, { p, z: a.pred, labels: a.labels, dz: a.dpred, loss: a.loss }, groups);
  } else {
    need(a.target!, "f32", a.classes * ld, `${op} target`);
    const k = rec.gpu.kernel(MSE_DENSE, { WG: wg });
    rec.dispatch(k, { p, z: a.pred, tgt: a.target!, dz: a.dpred, loss: a.loss }, groups);
  }
}
