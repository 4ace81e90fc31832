/**
 * Per-layer densities of a sparse network: uniform, Erdős–Rényi with SET's epsilon, and ERK
 * (RigL's Erdős–Rényi-Kernel, solved for a target overall density with layers capped at 1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layerDensities } from "./density.ts";
 * const shapes = [[784, 1000], [1000, 1000], [1000, 1000]] as [number, number][];
 * const d = layerDensities(shapes, { kind: "er", epsilon: 20 }).map((d) => d.toFixed(4));
 * assert.deepEqual(d, ["0.0455", "0.0400", "0.0400"]);
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

/** The sparsity keys of a training config that decide its layer densities. */
export interface DensityConfig {
  method: "dense" | "static" | "set" | "rigl" | "prune";
  sparseLayers: "hidden" | "all";
  density?: number;
  epsilon?: number;
  init?: "uniform" | "er" | "erk";
}

/**
 * Densities of a model's weight layers `[nIn, nOut]` (in order, the output layer last) under a
 * training config: dense method -> all 1; pruning starts dense; else ER with `epsilon`, or
 * uniform/ERK at `density` (ERK by default for RigL; "er" with a density is ERK's scaling). The
 * output layer stays dense unless `sparseLayers` is "all"; a sparse layer at density 1 is kept on
 * the sparse path (0.999999) since its topology may change.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { configDensities } from "./density.ts";
 * const cfg = { method: "set", sparseLayers: "hidden", density: 0.2 } as const;
 * assert.deepEqual(configDensities(cfg, [[25, 16], [400, 32], [1568, 10]]), [0.2, 0.2, 1]);
 * ```
 */
export function configDensities(cfg: DensityConfig, shapes: [number, number][]): number[] {
  if (cfg.method === "dense") return shapes.map(() => 1);
  const sparseCount = cfg.sparseLayers === "all" ? shapes.length : shapes.length - 1;
  if (cfg.method === "prune") {
    // Pruning starts dense (its sparse layers on the sparse path); targetDensities says where
    // it ends.
    return shapes.map((_, l) => (l < sparseCount ? 0.999999 : 1));
  }
  return targetDensities(cfg, shapes);
}

/**
 * The densities a config's weight layers end at — the one place densities are defaulted: ER
 * with `epsilon`, or uniform / ERK at `density` (default 0.1; ERK by default for RigL, and for
 * any method with `init: "er"` or `"erk"`). For every method but pruning this is also where it
 * starts; gradual magnitude pruning starts dense and prunes each layer to this density (so
 * `--method prune --epsilon 20` ends at SET's Erdős–Rényi densities, not 10 %).
 *
 * @example
 * ```ts
 * import { erDensity, targetDensities } from "./density.ts";
 * const cfg = { method: "prune", sparseLayers: "hidden", epsilon: 20 } as const;
 * const d = targetDensities(cfg, [[784, 300], [300, 100], [100, 10]]);
 * if (d[0] !== erDensity(784, 300, 20) || d[1] !== erDensity(300, 100, 20) || d[2] !== 1) {
 *   throw new Error(String(d));
 * }
 * ```
 */
export function targetDensities(cfg: DensityConfig, shapes: [number, number][]): number[] {
  if (cfg.method === "dense") return shapes.map(() => 1);
  const sparseCount = cfg.sparseLayers === "all" ? shapes.length : shapes.length - 1;
  const sparseShapes = shapes.slice(0, sparseCount);
  let d: number[];
  if (cfg.epsilon !== undefined) {
    d = layerDensities(sparseShapes, { kind: "er", epsilon: cfg.epsilon });
  } else {
    const density = cfg.density ?? 0.1;
    const kind = cfg.init ?? (cfg.method === "rigl" ? "erk" : "uniform");
    d = layerDensities(
      sparseShapes,
      kind === "uniform" ? { kind: "uniform", density } : { kind: "erk", density },
    );
  }
  return [...d.map((x) => Math.min(x, 0.999999)), ...shapes.slice(sparseCount).map(() => 1)];
}
