/**
 * Per-layer densities of a sparse network: uniform, Erdős–Rényi with SET's epsilon, and ERK
 * (RigL's Erdős–Rényi-Kernel, solved for a target overall density with layers capped at 1).
 *
 * @example
 * ```ts
 * import { layerDensities } from "./density.ts";
 * const shapes = [[784, 1000], [1000, 1000], [1000, 1000]] as [number, number][];
 * console.log(layerDensities(shapes, { kind: "er", epsilon: 20 }).map((d) => d.toFixed(4)));
 * // ["0.0455", "0.0400", "0.0400"]
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";

/** How densities are chosen. */
export type DensitySpec =
  | { kind: "uniform"; density: number }
  | { kind: "er"; epsilon: number }
  | { kind: "erk"; density: number };

/** SET's Erdős–Rényi density: epsilon·(n_in + n_out)/(n_in·n_out), capped at 1. */
export function erDensity(nIn: number, nOut: number, epsilon: number): number {
  return Math.min(1, (epsilon * (nIn + nOut)) / (nIn * nOut));
}

/**
 * ERK: density_l = eps·(n_in+n_out)/(n_in·n_out) with eps solved so that the total number of
 * nonzeros equals density·(total weights); layers whose density would exceed 1 become dense and
 * eps is solved again over the rest (RigL's procedure, erk_power_scale 1).
 */
export function erkDensities(shapes: readonly [number, number][], density: number): number[] {
  const n = shapes.map(([a, b]) => a * b);
  const p = shapes.map(([a, b]) => (a + b) / (a * b));
  const dense = new Set<number>();
  for (let iter = 0; iter <= shapes.length; iter++) {
    const total = n.reduce((s, x) => s + x, 0);
    let budget = density * total;
    let denom = 0;
    shapes.forEach((_, l) => {
      if (dense.has(l)) budget -= n[l];
      else denom += p[l] * n[l];
    });
    if (denom === 0) break;
    const eps = budget / denom;
    let worst = -1;
    shapes.forEach((_, l) => {
      if (!dense.has(l) && eps * p[l] > 1 && (worst < 0 || p[l] > p[worst])) worst = l;
    });
    if (worst < 0) return shapes.map((_, l) => (dense.has(l) ? 1 : Math.max(0, eps * p[l])));
    dense.add(worst);
  }
  return shapes.map(() => 1);
}

/** Densities per layer for a spec. */
export function layerDensities(shapes: readonly [number, number][], spec: DensitySpec): number[] {
  switch (spec.kind) {
    case "uniform":
      if (!(spec.density > 0 && spec.density <= 1)) {
        throw new FiligreeError(`density must be in (0, 1], got ${spec.density}`);
      }
      return shapes.map(() => spec.density);
    case "er":
      if (!(spec.epsilon > 0)) throw new FiligreeError(`epsilon must be > 0, got ${spec.epsilon}`);
      return shapes.map(([a, b]) => erDensity(a, b, spec.epsilon));
    case "erk":
      if (!(spec.density > 0 && spec.density <= 1)) {
        throw new FiligreeError(`density must be in (0, 1], got ${spec.density}`);
      }
      return erkDensities(shapes, spec.density);
  }
}

/** Exact nonzero count of a layer at a density (at least 1). */
export function nnzFor(nIn: number, nOut: number, density: number): number {
  return Math.max(1, Math.min(nIn * nOut, Math.round(density * nIn * nOut)));
}
