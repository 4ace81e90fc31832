/**
 * Sparsity schedules as pure functions of the step: RigL's cosine drop fraction and Zhu & Gupta's
 * cubic density schedule for gradual magnitude pruning.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gmpDensity, riglDropFraction } from "./schedule.ts";
 * assert.deepEqual(riglDropFraction(0.3, 0, 1000), 0.3);
 * assert.deepEqual(riglDropFraction(0.3, 1000, 1000), 0);
 * assert.deepEqual(gmpDensity(1, 0.1, 0, 100, 100), 0.1);
 * assert.deepEqual(gmpDensity(1, 0.1, 0, 100, 50), 0.1 + 0.9 / 8);
 * ```
 * @module
 */

/** RigL's drop fraction f(t) = alpha/2·(1 + cos(pi·t/T_end)), zero from T_end on. */
export function riglDropFraction(alpha: number, t: number, tEnd: number): number {
  if (t >= tEnd) return 0;
  return (alpha / 2) * (1 + Math.cos((Math.PI * t) / tEnd));
}

/**
 * Zhu & Gupta (2017) gradual pruning: density d(t) = d_f + (d_0 - d_f)·(1 - (t - t0)/(t1 - t0))³
 * between t0 and t1, d_0 before, d_f after.
 */
export function gmpDensity(d0: number, dFinal: number, t0: number, t1: number, t: number): number {
  if (t <= t0) return d0;
  if (t >= t1) return dFinal;
  const r = 1 - (t - t0) / (t1 - t0);
  return dFinal + (d0 - dFinal) * r * r * r;
}
