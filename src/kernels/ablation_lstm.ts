/**
 * The step kernel of exact LSTM ablation (shaders/ablation_lstm.wgsl; float64 reference:
 * ablation_lstm_ref.ts): K ablated copies of the sequence over S samples run side by side, column
 * `k·S + s` of every per-copy tensor `[rows][roundUp4(K·S)]`. Per time step the caller records the
 * recurrent SpMM of the shared `W_h` over all `K·S` columns (kernels/sparse.ts `spmm`) and then
 * {@link ablationLstmStep}, which adds the shared input part `zx` (bias included, computed once
 * for the S samples: every step's, or one step's when all do not fit), subtracts the removed weight's exact term for each copy, and advances the
 * cell. Kinds of ablation (a row per kind, {@link LSTM_ABLATION_KINDS}):
 *
 * | kind   | a     | b        | w            | effect at every step t               |
 * | ------ | ----- | -------- | ------------ | ------------------------------------ |
 * | `wx`   | input | gate row | `W_x[a][b]`  | `z_b -= w·x_t[a]`                    |
 * | `wh`   | unit  | gate row | `W_h[a][b]`  | `z_b -= w·h_{t-1}[a]` (t > 0)        |
 * | `bias` | –     | gate row | `b_b`        | `z_b -= w`                           |
 * | `unit` | unit  | –        | –            | `h_t[a] = 0` (output and recurrence) |
 * | `none` | –     | –        | –            | the unablated model                  |
 *
 * No loop in the kernel (one invocation per unit and column), so llvmpipe's 65,535-iteration cap
 * does not apply; the wrapper checks sizes, workgroup limits and tensor sizes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packLstmAblations } from "./ablation_lstm.ts";
 * const u = packLstmAblations([{ kind: "wh", a: 2, b: 5, w: 0.5 }, { kind: "unit", a: 1 }]);
 * assert.deepEqual([...u], [1, 2, 5, 0x3f000000, 3, 1, 0, 0]);
 * ```
 * @module
 */
import code from "../../shaders/ablation_lstm.wgsl" with { type: "text" };
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

/** Invocations per workgroup (override `WG`). */
export const ABL_LSTM_WG = 64;

/** The step kernel (`abl_lstm_step`). */
export const ABL_LSTM_STEP = defineKernel({
  shader: "ablation_lstm.wgsl",
  code: withActivations(code),
  entry: "abl_lstm_step",
  bindings: [
    ["ap", "uniform"],
    ["x_in", "read"],
    ["zx_in", "read"],
    ["zh_in", "read"],
    ["hp_in", "read"],
    ["abl_in", "read"],
    ["c_io", "read_write"],
    ["h_next", "read_write"],
  ],
  textureInputs: true,
});

/**
 * The step kernel with four columns per invocation (`abl_lstm_step4`, vec4 loads and stores);
 * {@link ablationLstmStep} runs it when the sample count is a multiple of 4. Same bits.
 */
export const ABL_LSTM_STEP4 = defineKernel({
  shader: "ablation_lstm.wgsl",
  code: withActivations(code),
  entry: "abl_lstm_step4",
  bindings: [
    ["ap", "uniform"],
    ["x4_in", "read"],
    ["zx4_in", "read"],
    ["zh4_in", "read"],
    ["hp4_in", "read"],
    ["abl4_in", "read"],
    ["c4_io", "read_write"],
    ["h4_next", "read_write"],
  ],
  textureInputs: true,
});

/** Ablation kinds and their shader codes (one row per kind). */
export const LSTM_ABLATION_KINDS = { wx: 0, wh: 1, bias: 2, unit: 3, none: 4 } as const;

/** A kind of LSTM ablation. */
export type LstmAblationKind = keyof typeof LSTM_ABLATION_KINDS;

/** One ablation of an LSTM layer (see the module table for `a`, `b`, `w`). */
export interface LstmAblationSpec {
  kind: LstmAblationKind;
  a?: number;
  b?: number;
  w?: number;
}

/** Packs ablations as the shader's `[kind, a, b, bits(w)]` quadruples. */
export function packLstmAblations(list: readonly LstmAblationSpec[]): Uint32Array {
  const out = new Uint32Array(Math.max(4, 4 * list.length));
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  list.forEach((x, k) => {
    f[0] = x.w ?? 0;
    out[4 * k] = LSTM_ABLATION_KINDS[x.kind];
    out[4 * k + 1] = x.a ?? 0;
    out[4 * k + 2] = x.b ?? 0;
    out[4 * k + 3] = u[0];
  });
  return out;
}

/** Arguments of {@link ablationLstmStep} (H hidden, F features, T steps, N = K·S columns). */
export interface AblationLstmStepArgs {
  /** f32 `[T·F][roundUp4(S)]`: the evaluation input (row `t·F + f`). */
  x: Tensor;
  /**
   * f32 `[4H][zxSteps·roundUp4(S)]`: `W_xᵀ·x_t + b`, shared by the copies: of every step (block
   * t; `zxSteps` = steps, the default) or of this step only (`zxSteps` = 1).
   */
  zx: Tensor;
  zxSteps?: number;
  /** f32 `[4H][roundUp4(N)]`: `W_hᵀ·h_{t-1}` of every copy; required for t > 0. */
  zh?: Tensor;
  /** f32 `[H][roundUp4(N)]`: `h_{t-1}` of every copy; required for t > 0. */
  hPrev?: Tensor;
  /** u32 `[4K]` from {@link packLstmAblations}. */
  ablations: Tensor;
  /** f32 `[H][roundUp4(N)]`: `c_{t-1}` in (not read at t = 0), `c_t` out. */
  c: Tensor;
  /** f32 `[H][roundUp4(N)]`: `h_t` out. */
  h: Tensor;
  hidden: number;
  features: number;
  steps: number;
  t: number;
  samples: number;
  count: number;
  wg?: number;
  /**
   * `vec4`: four columns per invocation (needs `samples % 4 == 0`); `scalar`: one. Default:
   * `vec4` where it applies.
   */
  variant?: "scalar" | "vec4";
}

function posInt(what: string, v: number) {
  if (!Number.isInteger(v) || v < 1) {
    throw new FiligreeError(`ablationLstmStep: ${what} must be a positive integer, got ${v}`);
  }
}

/**
 * Step `t` of the K ablated copies (see the module documentation).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { ablationLstmStep, packLstmAblations } from "./ablation_lstm.ts";
 * const gpu = await getGpu();
 * // H = F = T = S = 1; zx: i, g, o pre-activations 20, f 0; copy 0 unablated, copy 1 loses b_g.
 * const x = gpu.tensor("f32", [1, 4], { zero: true });
 * const zx = gpu.tensor("f32", [4, 4], { data: Float32Array.from([20,0,0,0, 0,0,0,0, 20,0,0,0, 20,0,0,0]) });
 * const abl = gpu.tensor("u32", [8], {
 *   data: packLstmAblations([{ kind: "none" }, { kind: "bias", b: 2, w: 20 }]),
 * });
 * const c = gpu.tensor("f32", [1, 4]), h = gpu.tensor("f32", [1, 4]);
 * const rec = gpu.recorder();
 * ablationLstmStep(rec, {
 *   x, zx, ablations: abl, c, h, hidden: 1, features: 1, steps: 1, t: 0, samples: 1, count: 2,
 * });
 * rec.submit();
 * const out = await gpu.read(h);
 * assert.ok(Math.abs(out[0] - Math.tanh(1)) < 1e-5 && Math.abs(out[1]) < 1e-6);
 * ```
 */
export function ablationLstmStep(rec: Recorder, a: AblationLstmStepArgs): void {
  const op = "ablationLstmStep";
  for (
    const [k, v] of [
      ["hidden", a.hidden],
      ["features", a.features],
      ["steps", a.steps],
      ["samples", a.samples],
      ["count", a.count],
    ] as const
  ) posInt(k, v);
  if (!Number.isInteger(a.t) || a.t < 0 || a.t >= a.steps) {
    throw new FiligreeError(`${op}: step t must be in [0, ${a.steps}), got ${a.t}`);
  }
  const H = a.hidden, ldS = roundUp4(a.samples), ldN = roundUp4(a.count * a.samples);
  const need = (t: Tensor, n: number, what: string, dtype: "f32" | "u32" = "f32") =>
    requireTensor(t, n, `${op} ${what}`, dtype);
  need(a.x, a.steps * a.features * ldS, "x");
  const zxSteps = a.zxSteps ?? a.steps;
  if (zxSteps !== a.steps && zxSteps !== 1) {
    throw new FiligreeError(`${op}: zxSteps must be 1 or steps (${a.steps}), got ${zxSteps}`);
  }
  need(a.zx, 4 * H * zxSteps * ldS, "zx");
  need(a.ablations, 4 * a.count, "ablations", "u32");
  need(a.c, H * ldN, "c");
  need(a.h, H * ldN, "h");
  if (a.t > 0) {
    if (!a.zh || !a.hPrev) throw new FiligreeError(`${op}: zh and hPrev are needed at t > 0`);
    need(a.zh, 4 * H * ldN, "zh");
    need(a.hPrev, H * ldN, "hPrev");
  }
  const outs = [a.c.buffer, a.h.buffer];
  if (outs[0] === outs[1]) throw new FiligreeError(`${op}: c and h must be different tensors`);
  const ins: [string, Tensor | undefined][] = [
    ["x", a.x],
    ["zx", a.zx],
    ["ablations", a.ablations],
    ["zh", a.t > 0 ? a.zh : undefined],
    ["hPrev", a.t > 0 ? a.hPrev : undefined],
  ];
  for (const [name, t] of ins) {
    if (t && outs.includes(t.buffer)) {
      throw new FiligreeError(`${op}: ${name} must not alias the outputs c or h`);
    }
  }
  const wg = a.wg ?? ABL_LSTM_WG;
  posInt("wg", wg);
  rec.gpu.checkLimit("maxComputeWorkgroupSizeX", wg, `${op} workgroup`);
  rec.gpu.checkLimit("maxComputeInvocationsPerWorkgroup", wg, `${op} workgroup`);
  const p = rec.gpu.uniform(
    packParams([H, a.features, a.steps, a.t, a.samples, ldS, a.count, ldN, zxSteps]),
  );
  const vec4 = (a.variant ?? (a.samples % 4 === 0 ? "vec4" : "scalar")) === "vec4";
  if (vec4 && a.samples % 4 !== 0) {
    throw new FiligreeError(`${op}: the vec4 variant needs samples % 4 == 0, got ${a.samples}`);
  }
  // zh and hPrev are not read at t = 0 (h_{-1} = 0): bound to read-only inputs there.
  const zh = a.t > 0 ? a.zh! : a.zx, hp = a.t > 0 ? a.hPrev! : a.x;
  if (vec4) {
    rec.dispatch(rec.gpu.kernel(ABL_LSTM_STEP4, { WG: wg }), {
      ap: p,
      x4_in: a.x,
      zx4_in: a.zx,
      zh4_in: zh,
      hp4_in: hp,
      abl4_in: a.ablations,
      c4_io: a.c,
      h4_next: a.h,
    }, grid(rec.gpu, Math.ceil((H * ldN) / 4 / wg)));
    return;
  }
  rec.dispatch(rec.gpu.kernel(ABL_LSTM_STEP, { WG: wg }), {
    ap: p,
    x_in: a.x,
    zx_in: a.zx,
    zh_in: zh,
    hp_in: hp,
    abl_in: a.ablations,
    c_io: a.c,
    h_next: a.h,
  }, grid(rec.gpu, Math.ceil((H * ldN) / wg)));
}
