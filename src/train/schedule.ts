/**
 * Schedules as pure functions of the step: the learning rate (constant, cosine, step decay) and
 * the plateau stop rule. The sparsity schedules (RigL's drop fraction, gradual pruning) live in
 * src/sparse/schedule.ts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { learningRate } from "./schedule.ts";
 * assert.deepEqual(learningRate({ kind: "cosine", lr: 0.1, totalSteps: 100 }, 50), 0.05);
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

/** Default of `plateauPatience`. */
export const PLATEAU_PATIENCE = 3;

/** Decision of {@link plateauStop} after the last epoch of `losses`. */
export interface PlateauDecision {
  stop: boolean;
  /** Relative improvement of each epoch over the best earlier epoch (NaN for the first). */
  improvements: number[];
  /** One line: the rule and the numbers it stopped (or did not stop) on. */
  criterion: string;
}

/**
 * The plateau stop rule on epoch-mean training losses L_1..L_e: with best_{<k} the lowest loss
 * before epoch k, the relative improvement is r_k = (best_{<k} - L_k) / best_{<k}; stop after
 * epoch e when r_k < tol for each of the last `patience` epochs (so never before epoch
 * patience + 1). A loss that rises counts as no improvement. Non-finite losses never stop the
 * run here (divergence is reported elsewhere).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plateauStop } from "./schedule.ts";
 * const falling = [1, 0.5, 0.25, 0.125];
 * assert.deepEqual(plateauStop(falling, 0.01, 2).stop, false);
 * const flat = [1, 0.5, 0.499, 0.4985, 0.498];
 * const d = plateauStop(flat, 0.01, 3);
 * assert.ok(d.stop);
 * assert.ok(d.criterion.startsWith("plateau"));
 * ```
 */
export function plateauStop(
  losses: readonly number[],
  tol: number,
  patience = PLATEAU_PATIENCE,
): PlateauDecision {
  const improvements: number[] = [];
  let best = Infinity;
  for (const L of losses) {
    improvements.push(
      Number.isFinite(best) && best > 0 ? (best - L) / best : Number.isFinite(best) ? 0 : NaN,
    );
    if (L < best) best = L;
  }
  const last = improvements.slice(-patience);
  const stop = losses.length > patience && losses.every(Number.isFinite) &&
    last.every((r) => r < tol);
  const shown = last.map((r) => r.toExponential(1)).join(", ");
  const criterion = stop
    ? `plateau: training loss improved by less than ${tol} (relative, vs the best earlier epoch) ` +
      `for ${patience} epochs (${shown}) at epoch ${losses.length}`
    : `max-epochs: epoch ${losses.length}`;
  return { stop, improvements, criterion };
}
