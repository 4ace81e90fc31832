/**
 * Schedules as pure functions of the step: learning rate (constant, cosine, step decay), RigL's
 * cosine drop fraction, and Zhu & Gupta's cubic sparsity schedule for gradual magnitude pruning.
 *
 * @example
 * ```ts
 * import { learningRate, riglDropFraction, gmpDensity } from "./schedule.ts";
 * console.log(learningRate({ kind: "cosine", lr: 0.1, totalSteps: 100 }, 50)); // 0.05
 * console.log(riglDropFraction(0.3, 0, 1000)); // 0.3
 * console.log(gmpDensity(1, 0.1, 0, 100, 100)); // 0.1
 * ```
 * @module
 */

/** A learning-rate schedule. */
export type LrSchedule =
  | { kind: "constant"; lr: number }
  | { kind: "cosine"; lr: number; totalSteps: number }
  | { kind: "step"; lr: number; everySteps: number; gamma: number };

/** The learning rate at step t (0-based). */
export function learningRate(s: LrSchedule, t: number): number {
  switch (s.kind) {
    case "constant":
      return s.lr;
    case "cosine":
      return 0.5 * s.lr * (1 + Math.cos((Math.PI * Math.min(t, s.totalSteps)) / s.totalSteps));
    case "step":
      return s.lr * Math.pow(s.gamma, Math.floor(t / s.everySteps));
  }
}

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
