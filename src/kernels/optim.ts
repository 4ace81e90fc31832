/**
 * Optimizer steps on flat f32 parameter arrays: SGD (plain, momentum, Nesterov), Adam and AdamW
 * with bias correction, in PyTorch's conventions (see shaders/optim.wgsl for the formulas). The
 * same kernels serve dense weights, biases and CSR value arrays: a parameter is just `n` floats.
 *
 * {@link Optimizer} owns the optimizer state of one parameter tensor (velocity, or Adam's m and
 * v) and the uniform blocks holding the hyperparameters, which it rewrites (with
 * `device.queue.writeBuffer`) when {@link Optimizer.step} records a step whose block differs from
 * what that uniform last received (SGD's block only changes with the learning rate; Adam's with
 * every step).
 *
 * **Ordering of the hyperparameter uniform.** A `writeBuffer` takes effect at the next
 * `queue.submit`, for everything in that submit. The optimizer therefore uses one uniform
 * buffer per step recorded into the same command encoder (a small ring it grows on demand and
 * rewinds when it sees a new encoder, i.e. after `rec.submit()`), so several steps recorded into
 * one encoder each see their own `lr` and `t`. Do not interleave steps of one optimizer across
 * two recorders that are both unsubmitted: the second recorder rewinds the ring and overwrites
 * the first one's values.
 *
 * **Sparse topology changes.** When weights are removed and regrown, the new weights must start
 * without optimizer state: {@link Optimizer.resetAt} / {@link zeroAt} zero the state where a u32
 * mask is nonzero (same positions), and {@link remapState} rebuilds a state array for a new CSR
 * ordering (`dst[k] = src[from[k]]`, `0xFFFFFFFF` = new entry, zero state). Adam's bias correction
 * uses the optimizer's global step count for regrown weights too (as in sparse-training
 * practice); only their moments restart from zero.
 *
 * Shader: shaders/optim.wgsl; float64 references: optim_ref.ts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { createOptimizer } from "./optim.ts";
 * const gpu = await getGpu();
 * const w = gpu.tensor("f32", [3], { data: new Float32Array([1, 2, 3]) });
 * const g = gpu.tensor("f32", [3], { data: new Float32Array([1, 1, 1]) });
 * const opt = createOptimizer(gpu, 3, { kind: "sgd", momentum: 0.9 });
 * const rec = gpu.recorder();
 * opt.step(rec, { param: w, grad: g, lr: 0.1 });
 * rec.submit();
 * assert.deepEqual(await gpu.read(w), new Float32Array([0.9, 1.9, 2.9]));
 * ```
 * @module
 */
import code from "../../shaders/optim.wgsl" with { type: "text" };
import multiCode from "../../shaders/optim_multi.wgsl" with { type: "text" };
import {
  defineKernel,
  f32,
  FiligreeError,
  type Gpu,
  grid,
  type KernelDef,
  packParams,
  type Recorder,
  type Tensor,
} from "../gpu/mod.ts";

const WG = 64;

/** Plain SGD (no state). */
export const SGD_PLAIN = defineKernel({
  shader: "optim.wgsl",
  code,
  entry: "sgd_plain",
  textureInputs: true,
  bindings: [["p", "uniform"], ["param", "read_write"], ["grad", "read"]],
});
/** SGD with momentum; override `NESTEROV` selects Nesterov's variant. */
export const SGD_MOMENTUM = defineKernel({
  shader: "optim.wgsl",
  code,
  entry: "sgd_momentum",
  textureInputs: true,
  bindings: [["p", "uniform"], ["param", "read_write"], ["grad", "read"], ["vel", "read_write"]],
});
/** Adam and AdamW (the uniform decides L2 vs decoupled decay). */
export const ADAM = defineKernel({
  shader: "optim.wgsl",
  code,
  entry: "adam",
  textureInputs: true,
  bindings: [
    ["p", "uniform"],
    ["param", "read_write"],
    ["grad", "read"],
    ["m1", "read_write"],
    ["m2", "read_write"],
  ],
});
/**
 * Parameters from which {@link Optimizer.step} reads the old values through mirrors where it
 * can (below, the copies cost more than the storage loads they save). Mutable for benchmarks.
 */
export const OPTIM_MIRRORS = { from: 4096 };

/**
 * The update kernels reading the old values through read-only aliases of the arrays they
 * write (`*_in` bindings, the same buffers): run only as texture twins, whose mirrors of those
 * arrays are copied before the dispatch (see shaders/optim.wgsl); {@link Optimizer.step} picks
 * them where {@link Recorder.runsTwin} says the twin runs.
 */
export const SGD_PLAIN_IN = defineKernel({
  ...SGD_PLAIN,
  entry: "sgd_plain_in",
  bindings: [...SGD_PLAIN.bindings, ["plain_param_in", "read"]],
});
/** {@link SGD_MOMENTUM} reading `param` and `vel` through mirrors (see {@link SGD_PLAIN_IN}). */
export const SGD_MOMENTUM_IN = defineKernel({
  ...SGD_MOMENTUM,
  entry: "sgd_momentum_in",
  bindings: [...SGD_MOMENTUM.bindings, ["param_in", "read"], ["vel_in", "read"]],
});
/** {@link ADAM} reading `param`, `m1` and `m2` through mirrors (see {@link SGD_PLAIN_IN}). */
export const ADAM_IN = defineKernel({
  ...ADAM,
  entry: "adam_in",
  bindings: [...ADAM.bindings, ["adam_param_in", "read"], ["adam_m1_in", "read"], [
    "adam_m2_in",
    "read",
  ]],
});
/**
 * SGD with momentum on up to four arrays in one dispatch (see shaders/optim_multi.wgsl). No
 * texture twin: its arrays are small, so mirroring the gradients (a GL upload each) costs more
 * than the storage loads it would save.
 */
export const SGD_MOMENTUM_X4 = defineKernel({
  shader: "optim_multi.wgsl",
  code: multiCode,
  entry: "sgd_momentum_x4",
  bindings: [
    ["p", "uniform"],
    ...[0, 1, 2, 3].flatMap((k) =>
      [[`param${k}`, "read_write"], [`vel${k}`, "read_write"], [`grad${k}`, "read"]] as const
    ),
  ],
});

/**
 * Which steps {@link Optimizer.stepMany} groups four to a dispatch: SGD with momentum on arrays
 * of fewer than `below` elements that share hyperparameters and learning rate (a LeNet-300-100
 * step: 5 of its 6 arrays, 3 dispatches fewer, ~0.1 ms of 4.5 on llvmpipe, A/B in one process).
 * Mutable so a benchmark can compare both in one process.
 */
export const MULTI_STEP = { enabled: true, below: 4096 };

/** `tgt[k] = 0` where `mask[k] != 0`. */
export const ZERO_AT = defineKernel({
  shader: "optim.wgsl",
  code,
  entry: "zero_at",
  bindings: [["q", "uniform"], ["mask", "read"], ["tgt", "read_write"]],
});
/** `dst[k] = fromIdx[k] < srcN ? src[fromIdx[k]] : 0`. */
export const REMAP = defineKernel({
  shader: "optim.wgsl",
  code,
  entry: "remap",
  bindings: [["r", "uniform"], ["src", "read"], ["fromIdx", "read"], ["dst", "read_write"]],
});

/** SGD in PyTorch's convention (dampening 0). */
export interface SgdConfig {
  kind: "sgd";
  /** Momentum `mu` in [0, 1); 0 (default) is plain SGD without a velocity buffer. */
  momentum?: number;
  /** Nesterov momentum (needs momentum > 0). */
  nesterov?: boolean;
  /** L2 weight decay added to the gradient (default 0). */
  weightDecay?: number;
}

/** Adam (L2 weight decay added to the gradient) or AdamW (decoupled weight decay). */
export interface AdamConfig {
  kind: "adam" | "adamw";
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Default 0 for Adam, 0.01 for AdamW (PyTorch's defaults). */
  weightDecay?: number;
}

/** Which optimizer and its fixed hyperparameters (the learning rate comes with each step). */
export type OptimizerConfig = SgdConfig | AdamConfig;

/** Hyperparameters with defaults filled in; mutable between steps. */
export interface Hyper {
  /** Fixed at creation (it decides the state tensors). */
  readonly kind: "sgd" | "adam" | "adamw";
  momentum: number;
  nesterov: boolean;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/**
 * Fills in PyTorch's defaults and validates (throws {@link FiligreeError}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConfig } from "./optim.ts";
 * assert.deepEqual(resolveConfig({ kind: "adamw" }).weightDecay, 0.01);
 * ```
 */
export function resolveConfig(c: OptimizerConfig): Hyper {
  const h: Hyper = c.kind === "sgd"
    ? {
      kind: "sgd",
      momentum: c.momentum ?? 0,
      nesterov: c.nesterov ?? false,
      beta1: 0,
      beta2: 0,
      eps: 0,
      weightDecay: c.weightDecay ?? 0,
    }
    : {
      kind: c.kind,
      momentum: 0,
      nesterov: false,
      beta1: c.beta1 ?? 0.9,
      beta2: c.beta2 ?? 0.999,
      eps: c.eps ?? 1e-8,
      weightDecay: c.weightDecay ?? (c.kind === "adamw" ? 0.01 : 0),
    };
  checkHyper(h);
  return h;
}

function checkHyper(h: Hyper) {
  const bad = (what: string, v: number) => {
    throw new FiligreeError(`optimizer ${h.kind}: bad ${what} ${v}`);
  };
  if (!["sgd", "adam", "adamw"].includes(h.kind)) {
    throw new FiligreeError(`optimizer: unknown kind "${h.kind}" (use sgd, adam or adamw)`);
  }
  if (!(h.momentum >= 0 && h.momentum < 1)) bad("momentum (need 0 <= momentum < 1)", h.momentum);
  if (h.nesterov && !(h.momentum > 0)) bad("momentum for Nesterov (need > 0)", h.momentum);
  if (!(h.weightDecay >= 0 && Number.isFinite(h.weightDecay))) bad("weightDecay", h.weightDecay);
  if (h.kind !== "sgd") {
    if (!(h.beta1 >= 0 && h.beta1 < 1)) bad("beta1 (need 0 <= beta1 < 1)", h.beta1);
    if (!(h.beta2 >= 0 && h.beta2 < 1)) bad("beta2 (need 0 <= beta2 < 1)", h.beta2);
    if (!(h.eps > 0 && Number.isFinite(h.eps))) bad("eps (need > 0)", h.eps);
  }
}

/**
 * The uniform block of one step: `n`, `lr`, then the fields of `OptParams` in optim.wgsl.
 * Bias corrections for step `t` (1-based) are computed here in float64.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packOptParams, resolveConfig } from "./optim.ts";
 * const bytes = packOptParams(resolveConfig({ kind: "adam" }), 1000, 1e-3, 1);
 * assert.deepEqual(bytes.byteLength, 48);
 * ```
 */
export function packOptParams(h: Hyper, n: number, lr: number, t: number): ArrayBuffer {
  if (!(lr >= 0 && Number.isFinite(lr))) {
    throw new FiligreeError(`optimizer ${h.kind}: bad learning rate ${lr}`);
  }
  if (!(Number.isInteger(t) && t >= 1)) throw new FiligreeError(`optimizer: bad step count ${t}`);
  if (h.kind === "sgd") {
    return packParams([
      n,
      f32(lr),
      f32(h.momentum),
      f32(h.weightDecay),
      f32(0),
      f32(0),
      f32(0),
      f32(0),
      f32(1),
    ]);
  }
  const bc1 = 1 - h.beta1 ** t;
  const bc2 = 1 - h.beta2 ** t;
  const adamw = h.kind === "adamw";
  return packParams([
    n,
    f32(lr),
    f32(h.beta1),
    f32(adamw ? 0 : h.weightDecay),
    f32(h.beta2),
    f32(h.eps),
    f32(lr / bc1),
    f32(1 / Math.sqrt(bc2)),
    f32(adamw ? 1 - lr * h.weightDecay : 1),
  ]);
}

function checkF32(t: Tensor, n: number, what: string) {
  if (t.dtype !== "f32") {
    throw new FiligreeError(`${what}: tensor ${t.label} is ${t.dtype}, needs f32`);
  }
  checkLen(t, n, what);
}

function checkLen(t: Tensor, n: number, what: string) {
  // vec4 kernels touch the whole last vec4: the (16-byte padded) buffer must hold it.
  if (t.size < n || t.buffer.size < Math.ceil(n / 4) * 16) {
    throw new FiligreeError(`${what}: tensor ${t.label} has ${t.size} elements, needs ${n}`);
  }
}

function checkN(n: number, what: string) {
  if (!Number.isInteger(n) || n < 0 || n > 0xfffffff0) {
    throw new FiligreeError(`${what}: bad element count ${n}`);
  }
}

/** One optimizer step's inputs. */
export interface StepArgs {
  /** The parameters, updated in place (first `n` elements). */
  param: Tensor;
  /** Their gradient (first `n` elements). Must not be the same buffer as `param`. */
  grad: Tensor;
  /** Learning rate for this step. */
  lr: number;
}

/**
 * Uniform blocks for steps recorded into one command encoder: one per step (a `writeBuffer`
 * lands at the next submit, for everything in it), rewound when a new encoder starts, each
 * rewritten only when its bytes change (SGD's stay the same while the rate does).
 */
class UniformRing {
  #bufs: GPUBuffer[] = [];
  #bytes: Uint8Array[] = [];
  #encoder: GPUCommandEncoder | null = null;
  #slot = 0;
  constructor(readonly gpu: Gpu) {}

  next(rec: Recorder, bytes: ArrayBuffer): GPUBuffer {
    if (rec.encoder !== this.#encoder) {
      this.#encoder = rec.encoder;
      this.#slot = 0;
    }
    if (this.#slot === this.#bufs.length) {
      this.#bufs.push(this.gpu.mutableUniform(48));
      this.#bytes.push(new Uint8Array(0));
    }
    const slot = this.#slot++;
    const was = this.#bytes[slot], b = new Uint8Array(bytes);
    // Queue writes land in order, so an unchanged block needs no second write.
    if (was.length !== b.length || was.some((v, i) => v !== b[i])) {
      this.gpu.device.queue.writeBuffer(this.#bufs[slot], 0, bytes);
      this.#bytes[slot] = b;
    }
    return this.#bufs[slot];
  }

  destroy(): void {
    for (const u of this.#bufs) u.destroy();
    this.#bufs = [];
    this.#bytes = [];
  }
}

/**
 * Optimizer state for one parameter tensor of `n` floats: state tensors (zero-initialized) and
 * the per-step uniforms. `t` counts steps taken (Adam's bias correction uses `t` after the
 * increment, so the first step has t = 1); set it to resume. `hyper` may be changed between
 * steps (e.g. a weight-decay schedule).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { Optimizer } from "./optim.ts";
 * const gpu = await getGpu();
 * const w = gpu.tensor("f32", [2], { data: new Float32Array([1, -1]) });
 * const g = gpu.tensor("f32", [2], { data: new Float32Array([0.5, -0.5]) });
 * const adam = new Optimizer(gpu, 2, { kind: "adamw", weightDecay: 0 });
 * const rec = gpu.recorder();
 * adam.step(rec, { param: w, grad: g, lr: 0.01 }); // first Adam step moves by ~lr·sign(g)
 * rec.submit();
 * const [a, b] = await gpu.read(w); // ≈ [0.99, -0.99]
 * assert.ok(Math.abs(a - 0.99) < 1e-5 && Math.abs(b + 0.99) < 1e-5);
 * ```
 */
export class Optimizer {
  /** Hyperparameters other than the learning rate; read at every step. */
  readonly hyper: Hyper;
  /** State tensors: `[velocity]` (SGD with momentum), `[m, v]` (Adam/AdamW), `[]` (plain SGD). */
  readonly state: Tensor[];
  /** Steps taken so far. */
  t = 0;
  /** Uniforms of this optimizer's steps, and of the grouped steps it leads. */
  #own: UniformRing;
  #x4: UniformRing;

  constructor(readonly gpu: Gpu, readonly n: number, config: OptimizerConfig, label = "param") {
    checkN(n, "optimizer");
    this.hyper = resolveConfig(config);
    const count = this.hyper.kind === "sgd" ? (this.hyper.momentum > 0 ? 1 : 0) : 2;
    const names = this.hyper.kind === "sgd" ? ["velocity"] : ["adam_m", "adam_v"];
    this.state = [];
    for (let k = 0; k < count; k++) {
      this.state.push(gpu.tensor("f32", [n], { zero: true, label: `${label}.${names[k]}` }));
    }
    this.#own = new UniformRing(gpu);
    this.#x4 = new UniformRing(gpu);
  }

  /** Throws on arguments {@link Optimizer.step} cannot take. */
  #check(a: StepArgs): void {
    const h = this.hyper;
    checkHyper(h);
    checkF32(a.param, this.n, "optimizer step param");
    checkF32(a.grad, this.n, "optimizer step grad");
    if (a.param.buffer === a.grad.buffer) {
      throw new FiligreeError(
        `optimizer step: param and grad are the same buffer (${a.param.label})`,
      );
    }
    if (h.kind === "sgd" && (h.momentum > 0) !== (this.state.length === 1)) {
      throw new FiligreeError(
        "optimizer step: momentum switched between zero and nonzero after creation (no velocity buffer)",
      );
    }
  }

  /**
   * Records one step of each optimizer on its parameter, as {@link Optimizer.step} on each would
   * (the same bits), with the SGD-with-momentum steps on small arrays that share
   * hyperparameters and learning rate four to a dispatch ({@link MULTI_STEP}), where the
   * device allows the 12 storage arrays that kernel binds.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { getGpu } from "../gpu/mod.ts";
   * import { Optimizer } from "./optim.ts";
   * const gpu = await getGpu();
   * const ws = [1, 2, 3].map((v) => gpu.tensor("f32", [2], { data: new Float32Array([v, v]) }));
   * const g = gpu.tensor("f32", [2], { data: new Float32Array([1, 1]) });
   * const opts = ws.map(() => new Optimizer(gpu, 2, { kind: "sgd", momentum: 0.9 }));
   * const rec = gpu.recorder();
   * Optimizer.stepMany(rec, ws.map((param, i) => ({ opt: opts[i], param, grad: g, lr: 0.5 })));
   * rec.submit();
   * assert.deepEqual(await gpu.read(ws[2]), new Float32Array([2.5, 2.5]));
   * ```
   */
  static stepMany(rec: Recorder, items: readonly (StepArgs & { opt: Optimizer })[]): void {
    const gpu = rec.gpu;
    const fits = gpu.limits.maxStorageBuffersPerShaderStage >=
      12 + (gpu.quirks.paramsInStorage ? 1 : 0);
    const groups = new Map<string, (StepArgs & { opt: Optimizer })[]>();
    for (const it of items) {
      const h = it.opt.hyper;
      if (
        !MULTI_STEP.enabled || !fits || h.kind !== "sgd" || !(h.momentum > 0) ||
        it.opt.n >= MULTI_STEP.below
      ) {
        it.opt.step(rec, it);
        continue;
      }
      it.opt.#check(it);
      const key = `${h.momentum}/${h.nesterov}/${h.weightDecay}/${it.lr}`;
      const g = groups.get(key);
      if (g) g.push(it);
      else groups.set(key, [it]);
    }
    for (const g of groups.values()) {
      for (let s = 0; s < g.length; s += 4) {
        const chunk = g.slice(s, s + 4);
        if (chunk.length === 1) chunk[0].opt.step(rec, chunk[0]);
        else chunk[0].opt.#stepX4(rec, chunk);
      }
    }
  }

  /** One {@link SGD_MOMENTUM_X4} dispatch for 2-4 checked steps; this optimizer leads it. */
  #stepX4(rec: Recorder, chunk: (StepArgs & { opt: Optimizer })[]): void {
    const h = this.hyper as Hyper & { kind: "sgd" };
    const n = [0, 0, 0, 0], end = [0, 0, 0, 0];
    let total = 0;
    for (let k = 0; k < 4; k++) {
      n[k] = chunk[k]?.opt.n ?? 0;
      total += Math.ceil(n[k] / 4);
      end[k] = total;
    }
    const bytes = packParams([
      ...n,
      ...end,
      f32(chunk[0].lr),
      f32(h.momentum),
      f32(h.weightDecay),
      f32(0),
    ]);
    const res: Record<string, Tensor | GPUBuffer> = { p: this.#x4.next(rec, bytes) };
    for (let k = 0; k < 4; k++) {
      const it = chunk[k] ?? chunk[0]; // an unused slot (n = 0) repeats slot 0's arrays
      res[`param${k}`] = it.param;
      res[`vel${k}`] = it.opt.state[0];
      res[`grad${k}`] = it.grad;
    }
    for (const it of chunk) it.opt.t++;
    const k = rec.gpu.kernel(SGD_MOMENTUM_X4, { WG, NESTEROV: h.nesterov ? 1 : 0 });
    rec.dispatch(k, res, grid(rec.gpu, Math.ceil(total / WG)));
  }

  /** Records one step: `param -= update(grad, state)`; increments `t`. */
  step(rec: Recorder, a: StepArgs): void {
    const h = this.hyper;
    this.#check(a);
    const bytes = packOptParams(h, this.n, a.lr, this.t + 1);
    this.t++;
    const p = this.#own.next(rec, bytes);
    const groups = grid(rec.gpu, Math.ceil(Math.ceil(this.n / 4) / WG));
    const { param, grad } = a;
    const [m1, m2] = this.state;
    const [plain, fromMirrors, overrides, res, viaIn]: [
      KernelDef,
      KernelDef,
      Record<string, number>,
      Record<string, Tensor | GPUBuffer>,
      Record<string, Tensor>,
    ] = h.kind !== "sgd"
      ? [ADAM, ADAM_IN, { WG }, { p, param, grad, m1, m2 }, {
        adam_param_in: param,
        adam_m1_in: m1,
        adam_m2_in: m2,
      }]
      : h.momentum > 0
      ? [
        SGD_MOMENTUM,
        SGD_MOMENTUM_IN,
        { WG, NESTEROV: h.nesterov ? 1 : 0 },
        { p, param, grad, vel: m1 },
        { param_in: param, vel_in: m1 },
      ]
      : [SGD_PLAIN, SGD_PLAIN_IN, { WG }, { p, param, grad }, { plain_param_in: param }];
    // Old values through mirrors where the twin runs (texel fetches, not storage loads) and
    // the array is long enough for the loads saved to outweigh the copies.
    const k = rec.gpu.kernel(fromMirrors, overrides);
    const withIn = { ...res, ...viaIn };
    if (this.n >= OPTIM_MIRRORS.from && rec.runsTwin(k, withIn)) rec.dispatch(k, withIn, groups);
    else rec.dispatch(rec.gpu.kernel(plain, overrides), res, groups);
  }

  /** Zeroes every state tensor where `mask[k] != 0` (regrown weights lose their state). */
  resetAt(rec: Recorder, mask: Tensor): void {
    for (const s of this.state) zeroAt(rec, { target: s, mask, n: this.n });
  }

  /** Returns the state tensors to the pool; the optimizer must not be used afterwards. */
  release(): void {
    for (const s of this.state) this.gpu.release(s);
    this.state.length = 0;
    this.#own.destroy();
    this.#x4.destroy();
  }
}

/**
 * Creates the optimizer state for a parameter tensor of `n` floats (see {@link Optimizer}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { createOptimizer } from "./optim.ts";
 * const gpu = await getGpu();
 * const opt = createOptimizer(gpu, 1000, { kind: "sgd", momentum: 0.9, weightDecay: 2e-4 });
 * assert.deepEqual(opt.state.length, 1); // velocity
 * ```
 */
export function createOptimizer(
  gpu: Gpu,
  n: number,
  config: OptimizerConfig,
  label?: string,
): Optimizer {
  return new Optimizer(gpu, n, config, label);
}

/**
 * `target[k] = 0` wherever `mask[k] != 0`, for `k < n` (default: `target.size`); other entries
 * are untouched. `mask` is u32, one word per element.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { zeroAt } from "./optim.ts";
 * const gpu = await getGpu();
 * const v = gpu.tensor("f32", [3], { data: new Float32Array([1, 2, 3]) });
 * const mask = gpu.tensor("u32", [3], { data: new Uint32Array([0, 1, 0]) });
 * const rec = gpu.recorder();
 * zeroAt(rec, { target: v, mask });
 * rec.submit();
 * assert.deepEqual(await gpu.read(v), new Float32Array([1, 0, 3]));
 * ```
 */
export function zeroAt(rec: Recorder, a: { target: Tensor; mask: Tensor; n?: number }): void {
  const n = a.n ?? a.target.size;
  checkN(n, "zeroAt");
  checkF32(a.target, n, "zeroAt target");
  if (a.mask.dtype === "f32") throw new FiligreeError(`zeroAt: mask ${a.mask.label} must be u32`);
  checkLen(a.mask, n, "zeroAt mask");
  const q = rec.gpu.uniform(packParams([n]));
  rec.dispatch(
    rec.gpu.kernel(ZERO_AT, { WG }),
    { q, mask: a.mask, tgt: a.target },
    grid(rec.gpu, Math.ceil(Math.ceil(n / 4) / WG)),
  );
}

/** Marks a new entry in {@link remapState}'s `from` array: its state starts at zero. */
export const NEW_ENTRY = 0xffffffff;

/**
 * Rebuilds a state array for a new parameter ordering (e.g. a CSR value array after prune and
 * regrow): `dst[k] = from[k] < srcN ? src[from[k]] : 0` for `k < n`. `from` is u32; use
 * {@link NEW_ENTRY} for regrown weights. `src` and `dst` must be different buffers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { NEW_ENTRY, remapState } from "./optim.ts";
 * const gpu = await getGpu();
 * const src = gpu.tensor("f32", [3], { data: new Float32Array([10, 20, 30]) });
 * const from = gpu.tensor("u32", [3], { data: new Uint32Array([2, NEW_ENTRY, 0]) });
 * const dst = gpu.tensor("f32", [3]);
 * const rec = gpu.recorder();
 * remapState(rec, { src, from, dst });
 * rec.submit();
 * assert.deepEqual(await gpu.read(dst), new Float32Array([30, 0, 10]));
 * ```
 */
export function remapState(
  rec: Recorder,
  a: { src: Tensor; from: Tensor; dst: Tensor; n?: number; srcN?: number },
): void {
  const n = a.n ?? a.dst.size;
  const srcN = a.srcN ?? a.src.size;
  checkN(n, "remapState");
  checkN(srcN, "remapState");
  checkF32(a.dst, n, "remapState dst");
  checkF32(a.src, srcN, "remapState src");
  if (a.from.dtype === "f32") {
    throw new FiligreeError(`remapState: from ${a.from.label} must be u32`);
  }
  checkLen(a.from, n, "remapState from");
  if (a.src.buffer === a.dst.buffer) {
    throw new FiligreeError("remapState: src and dst are the same buffer");
  }
  const r = rec.gpu.uniform(packParams([n, srcN]));
  rec.dispatch(
    rec.gpu.kernel(REMAP, { WG }),
    { r, src: a.src, fromIdx: a.from, dst: a.dst },
    grid(rec.gpu, Math.ceil(n / WG)),
  );
}
