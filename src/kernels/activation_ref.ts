/**
 * Float64 references for the element-wise activations and SReLU, on dense `[rows][batch]`
 * arrays (no padding). The formulas are the mathematical definitions evaluated in float64
 * (with overflow-free forms where float64 itself would overflow); `erfc` is computed to ~1e-13
 * relative so `gelu_erf` has an independent reference. {@link erfcApprox} mirrors the WGSL
 * approximation in float64 so its own error can be measured.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { actDerivativeRef, actForwardRef } from "./activation_ref.ts";
 * assert.deepEqual(actForwardRef("relu", -2, 0), 0);
 * assert.deepEqual(actDerivativeRef("tanh", 0, 0), 1);
 * ```
 * @module
 */
import { activationId, activationParam } from "./activation_ids.ts";

const SELU_LAMBDA = 1.0507009873554805;
const SELU_ALPHA = 1.6732632423543772;
const GELU_K = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;

/**
 * erfc(x) in float64: Maclaurin series of erf for |x| < 2, Laplace continued fraction (200
 * terms, evaluated backwards) for x ≥ 2, erfc(−x) = 2 − erfc(x). Relative error ≲ 1e-13.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { erfcRef } from "./activation_ref.ts";
 * assert.ok(Math.abs(erfcRef(3) / 2.209049699858544e-5 - 1) < 1e-12);
 * ```
 */
export function erfcRef(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfcRef(-x);
  if (x < 2) {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = x; // (-1)^n x^(2n+1) / n!
    let sum = x;
    for (let n = 1; n < 80; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-18 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
  let k = x;
  for (let n = 200; n >= 1; n--) k = x + n / 2 / k;
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * k);
}

/** erf(x) in float64 (see {@link erfcRef}). */
export function erfRef(x: number): number {
  return Math.abs(x) < 2 ? 1 - erfcRef(x) : Math.sign(x) * (1 - erfcRef(Math.abs(x)));
}

/**
 * The WGSL approximation of erfc (activation_fns.wgsl `act_erfc_pos`, Numerical Recipes'
 * Chebyshev-fitted form), evaluated in float64 with erfc(−x) = 2 − erfc(x): what the shader
 * computes, without float32 rounding.
 */
export function erfcApprox(x: number): number {
  const ax = Math.abs(x);
  const t = 1 / (1 + 0.5 * ax);
  const poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
                t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
                                t * (-0.82215223 + t * 0.17087277))))))));
  const r = t * Math.exp(-ax * ax + poly);
  return x >= 0 ? r : 2 - r;
}

function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

function softplus(z: number): number {
  return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
}

function phi(z: number): number {
  return 0.5 * erfcRef(-z / Math.SQRT2);
}

function sech2(x: number): number {
  const c = Math.cosh(x);
  return 1 / (c * c);
}

/** f(z) in float64 for activation `name` with scalar parameter `a`. */
export function actForwardRef(name: string, z: number, a: number): number {
  switch (activationId(name)) {
    case 0:
      return z;
    case 1:
      return Math.max(z, 0);
    case 2:
    case 19:
      return z > 0 ? z : a * z;
    case 3:
      return z > 0 ? z : a * Math.expm1(z);
    case 4:
      return SELU_LAMBDA * (z > 0 ? z : SELU_ALPHA * Math.expm1(z));
    case 5: // 0.5 z (1 + tanh u) written as z * sigmoid(2u)
      return z * sigmoid(2 * GELU_K * (z + GELU_C * z * z * z));
    case 6:
      return z * phi(z);
    case 7:
      return z * sigmoid(z);
    case 8:
      return z * Math.tanh(softplus(z));
    case 9:
      return softplus(z);
    case 10:
      return sigmoid(z);
    case 11:
      return Math.tanh(z);
    case 12:
      return Math.min(1, Math.max(-1, z));
    case 13:
      return Math.sin(a * z);
    case 14:
      return Math.cos(a * z);
    case 15:
      return Math.exp(-0.5 * z * z);
    case 16:
      return Math.abs(z);
    case 17:
      return -z;
    case 18:
      return z > 0 ? 1 : 0;
  }
  throw new Error(`actForwardRef: no reference for "${name}"`);
}

/** f'(z) in float64 (left derivative at kinks, matching the shader's conventions). */
export function actDerivativeRef(name: string, z: number, a: number): number {
  switch (activationId(name)) {
    case 0:
      return 1;
    case 1:
      return z > 0 ? 1 : 0;
    case 2:
    case 19:
      return z > 0 ? 1 : a;
    case 3:
      return z > 0 ? 1 : a * Math.exp(z);
    case 4:
      return SELU_LAMBDA * (z > 0 ? 1 : SELU_ALPHA * Math.exp(z));
    case 5: {
      const u = GELU_K * (z + GELU_C * z * z * z);
      const du = GELU_K * (1 + 3 * GELU_C * z * z);
      return sigmoid(2 * u) + 2 * z * sigmoid(2 * u) * sigmoid(-2 * u) * du;
    }
    case 6:
      return phi(z) + z * Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
    case 7:
      return sigmoid(z) + z * sigmoid(z) * sigmoid(-z);
    case 8: {
      const sp = softplus(z);
      return Math.tanh(sp) + z * sech2(sp) * sigmoid(z);
    }
    case 9:
      return sigmoid(z);
    case 10:
      return sigmoid(z) * sigmoid(-z);
    case 11:
      return sech2(z);
    case 12:
      return Math.abs(z) < 1 ? 1 : 0;
    case 13:
      return a * Math.cos(a * z);
    case 14:
      return -a * Math.sin(a * z);
    case 15:
      return -z * Math.exp(-0.5 * z * z);
    case 16:
      return z > 0 ? 1 : z < 0 ? -1 : 0;
    case 17:
      return -1;
    case 18:
      return 0;
  }
  throw new Error(`actDerivativeRef: no reference for "${name}"`);
}

/**
 * Points where f or f' is not differentiable (finite differences are meaningless within eps
 * of them): 0 for the piecewise-linear family, elu/selu, abs and step; ±1 for hard_tanh.
 */
export function activationKinks(name: string): number[] {
  switch (activationId(name)) {
    case 1:
    case 2:
    case 3:
    case 4:
    case 16:
    case 18:
    case 19:
      return [0];
    case 12:
      return [-1, 1];
    default:
      return [];
  }
}

/** `y = f(z)` element-wise (`param` defaults as in the kernels). */
export function activationForwardRef(z: Float64Array, name: string, param?: number): Float64Array {
  const a = activationParam(name, param);
  return z.map((v) => actForwardRef(name, v, a));
}

/** `dz = dy · f'(z)` element-wise. */
export function activationBackwardRef(
  z: Float64Array,
  dy: Float64Array,
  name: string,
  param?: number,
): Float64Array {
  const a = activationParam(name, param);
  return z.map((v, i) => dy[i] * actDerivativeRef(name, v, a));
}

/** SReLU forward; `prm` = `[t_l | a_l | t_r | a_r]`, each `rows` long. */
export function sreluForwardRef(
  z: Float64Array,
  prm: Float64Array,
  rows: number,
  batch: number,
): Float64Array {
  const y = new Float64Array(rows * batch);
  for (let r = 0; r < rows; r++) {
    const [tl, al, tr, ar] = [prm[r], prm[rows + r], prm[2 * rows + r], prm[3 * rows + r]];
    for (let c = 0; c < batch; c++) {
      const v = z[r * batch + c];
      y[r * batch + c] = v >= tr ? tr + ar * (v - tr) : v <= tl ? tl + al * (v - tl) : v;
    }
  }
  return y;
}

/** SReLU backward: input gradient `dz` and parameter gradients `dprm` = `[dt_l | da_l | dt_r | da_r]`. */
export function sreluBackwardRef(
  z: Float64Array,
  dy: Float64Array,
  prm: Float64Array,
  rows: number,
  batch: number,
): { dz: Float64Array; dprm: Float64Array } {
  const dz = new Float64Array(rows * batch);
  const dprm = new Float64Array(4 * rows);
  for (let r = 0; r < rows; r++) {
    const [tl, al, tr, ar] = [prm[r], prm[rows + r], prm[2 * rows + r], prm[3 * rows + r]];
    for (let c = 0; c < batch; c++) {
      const i = r * batch + c;
      const v = z[i];
      const g = dy[i];
      if (v >= tr) {
        dz[i] = g * ar;
        dprm[2 * rows + r] += g * (1 - ar);
        dprm[3 * rows + r] += g * (v - tr);
      } else if (v <= tl) {
        dz[i] = g * al;
        dprm[r] += g * (1 - al);
        dprm[rows + r] += g * (v - tl);
      } else {
        dz[i] = g;
      }
    }
  }
  return { dz, dprm };
}
