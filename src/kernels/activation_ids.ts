/**
 * Activation ids shared by every kernel that applies an activation (element-wise kernels and
 * fused epilogues), their default scalar parameters, and the helper that prepends the WGSL
 * function library (shaders/activation_fns.wgsl) to a shader.
 *
 * Ids are stable (they are compiled into pipelines and may be stored in run configs): new
 * activations get new numbers, existing numbers never change.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { activationId, activationParam, allReluSlope, withActivations } from "./activation_ids.ts";
 * assert.deepEqual(activationId("relu"), 1);
 * assert.deepEqual(activationParam("leaky_relu"), 0.01);
 * assert.deepEqual(allReluSlope(0, 0.6), -0.6);
 * assert.deepEqual(allReluSlope(1, 0.6), 0.6);
 * const code = withActivations("// my kernel");
 * assert.ok(code.includes("fn act_forward"));
 * ```
 * @module
 */
import fns from "../../shaders/activation_fns.wgsl" with { type: "text" };
import { FiligreeError } from "../gpu/mod.ts";

/**
 * Activation name -> id used in WGSL (`ACT_*` in shaders/activation_fns.wgsl). `swish` is an
 * alias of `silu` (same id).
 *
 * Forms (`a` = the scalar parameter, defaults in {@link ACTIVATION_DEFAULT_PARAMS}):
 * - `identity` z; `relu` max(z, 0); `leaky_relu` z > 0 ? z : a·z; `all_relu` the same formula
 *   with a signed slope from {@link allReluSlope} (Curci, Mocanu & Pechenizkiy 2021).
 * - `elu` z > 0 ? z : a·(eᶻ − 1); `selu` λ·(z > 0 ? z : α(eᶻ − 1)), λ = 1.0507…, α = 1.6732…
 * - `gelu` tanh form 0.5·z·(1 + tanh(√(2/π)(z + 0.044715 z³))); `gelu_erf` z·Φ(z) (erfc
 *   approximation with relative error < 1.2e-7).
 * - `silu`/`swish` z·σ(z); `mish` z·tanh(softplus(z)); `softplus` log(1 + eᶻ); `sigmoid` σ(z);
 *   `tanh`; `hard_tanh` clamp(z, −1, 1).
 * - `sin` sin(a·z), `cos` cos(a·z) (a = 1 by default; WANN uses sin(πz), cos(πz): pass a = π).
 * - `gaussian` exp(−z²/2) (WANN's unnormalised Gaussian, peak 1 at z = 0); `abs` |z|;
 *   `inverse` −z (WANN); `step` z > 0 ? 1 : 0 (derivative 0 everywhere).
 */
export const ACTIVATION_IDS = {
  identity: 0,
  relu: 1,
  leaky_relu: 2,
  elu: 3,
  selu: 4,
  gelu: 5,
  gelu_erf: 6,
  silu: 7,
  swish: 7,
  mish: 8,
  softplus: 9,
  sigmoid: 10,
  tanh: 11,
  hard_tanh: 12,
  sin: 13,
  cos: 14,
  gaussian: 15,
  abs: 16,
  inverse: 17,
  step: 18,
  all_relu: 19,
} as const;

/** A scalar activation the kernels know by id. */
export type ActivationName = keyof typeof ACTIVATION_IDS;

/** Every activation name (aliases included), in id order. */
export const ACTIVATION_NAMES = Object.keys(ACTIVATION_IDS) as ActivationName[];

/**
 * Default scalar parameter `a` per activation (activations without a parameter have 0, which
 * their formulas ignore).
 * - `leaky_relu` 0.01 (the usual default, as in PyTorch/Keras `LeakyReLU`).
 * - `elu` 1.0 (Clevert et al. 2016).
 * - `all_relu` 0.6: the magnitude α; the signed per-layer slope comes from {@link allReluSlope}.
 *   0.6 is what the authors' public code uses for MNIST/Fashion-MNIST MLPs (0.75 appears for a
 *   larger image model); the paper tunes α per data set, so treat 0.6 as a starting point.
 * - `sin`, `cos` 1.0 (frequency; WANN uses π).
 */
export const ACTIVATION_DEFAULT_PARAMS: Readonly<Record<ActivationName, number>> = {
  identity: 0,
  relu: 0,
  leaky_relu: 0.01,
  elu: 1.0,
  selu: 0,
  gelu: 0,
  gelu_erf: 0,
  silu: 0,
  swish: 0,
  mish: 0,
  softplus: 0,
  sigmoid: 0,
  tanh: 0,
  hard_tanh: 0,
  sin: 1.0,
  cos: 1.0,
  gaussian: 0,
  abs: 0,
  inverse: 0,
  step: 0,
  all_relu: 0.6,
};

/** The id of an activation, or a one-line error listing the allowed names. */
export function activationId(name: string): number {
  const id = (ACTIVATION_IDS as Record<string, number>)[name];
  if (id === undefined) {
    throw new FiligreeError(
      `unknown activation "${name}"; allowed: ${Object.keys(ACTIVATION_IDS).join(", ")}`,
    );
  }
  return id;
}

/**
 * The scalar parameter to pass as `a`: `param` when given, else the default of `name`. For
 * `all_relu` the default is the magnitude α; use {@link allReluSlope} for the signed slope.
 */
export function activationParam(name: string, param?: number): number {
  activationId(name);
  if (param !== undefined) {
    if (!Number.isFinite(param)) {
      throw new FiligreeError(`activation "${name}": parameter ${param} is not finite`);
    }
    return param;
  }
  return ACTIVATION_DEFAULT_PARAMS[name as ActivationName];
}

/**
 * All-ReLU's signed negative-side slope for a hidden layer (Curci, Mocanu & Pechenizkiy 2021,
 * "Truly Sparse Neural Networks at Scale"): f(z) = z for z > 0 and slope·z otherwise, where
 * the slope alternates −α, +α, −α, … over the hidden layers. `hiddenLayer` counts hidden
 * layers from 0 (the first hidden layer gets −α, as in the authors' code); the output layer is
 * not an All-ReLU layer.
 */
export function allReluSlope(
  hiddenLayer: number,
  alpha: number = ACTIVATION_DEFAULT_PARAMS.all_relu,
): number {
  if (!Number.isInteger(hiddenLayer) || hiddenLayer < 0) {
    throw new FiligreeError(
      `allReluSlope: hidden layer index ${hiddenLayer} must be an integer >= 0`,
    );
  }
  return hiddenLayer % 2 === 0 ? -alpha : alpha;
}

/** Prepends the activation function library to a kernel's WGSL. */
export function withActivations(code: string): string {
  return fns + "\n" + code;
}
