/**
 * Dynamic-sparse-training rules as small plugins over one drop/grow/rebuild machinery
 * (topology.ts). A rule says when to update and, per sparse layer, which nonzeros to drop
 * (a u32 mask) and how to score empty positions for growth; the shared code rebuilds CSR in
 * both orientations, moves optimizer state and stamps grown weights, all on the GPU.
 *
 * - `dense`, `static`: never update.
 * - `set`: after every epoch but the last, per layer drop fraction zeta of the positive weights
 *   closest to zero and zeta of the negative ones (the reference code's per-sign rule; or one
 *   global |w| ranking), regrow as many at uniformly random empty positions with the layer's
 *   initialization (or zero). nnz stays constant.
 * - `rigl`: every ΔT steps until riglStop of training, drop k = f(t)·nnz smallest |w| and grow
 *   the k empty positions with the largest |dense gradient| (X·dZᵀ of the current batch,
 *   computed only on update steps), new weights and state start at zero. When the layer's
 *   dense arrays exceed `gradBudgetMB` (or the binding limit) the gradient is computed in row
 *   chunks and the top k is kept across chunks (same positions as the dense path).
 * - `prune`: gradual magnitude pruning from dense (Zhu & Gupta cubic schedule) to the target
 *   density, every ΔT steps between pruneStart and pruneEnd of training; nnz shrinks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ALGORITHMS } from "./algorithms.ts";
 * assert.deepEqual(Object.keys(ALGORITHMS), ["dense", "static", "set", "rigl", "prune"]);
 * ```
 * @module
 */
import type { Recorder, Tensor } from "../gpu/mod.ts";
import { deriveSeed } from "../data/random.ts";
import { markSelected, radixSelect, SELECT_RESULT_WORDS } from "../kernels/select.ts";
import { matmul } from "../kernels/matmul.ts";
import { initStd, type SparseLinear } from "../nn/layers.ts";
import { topoScratch } from "../kernels/scan.ts";
import { type DensityConfig, targetDensities } from "./density.ts";
import { gmpDensity, riglDropFraction } from "./schedule.ts";
import {
  checkDenseScratch,
  denseBudgetBytes,
  gradGrowCandidates,
  needsRowChunks,
  rebuildTopology,
  TOPO_COUNT_SIGNS,
  TOPO_GRAD_SCORES,
  TOPO_RANDOM_SCORES,
  TOPO_SET_K,
  topoParams,
} from "./topology.ts";
import { grid } from "../gpu/mod.ts";

/**
 * The settings the sparse-training rules read (a training config satisfies it; `sparse/` does not
 * depend on `train/`).
 */
export interface TopologyConfig extends DensityConfig {
  epochs: number;
  seed: number;
  weightInit: "he" | "xavier" | "set";
  zeta: number;
  setRanking: "per-sign" | "global";
  regrowInit: "random" | "zero";
  updateInterval?: number;
  riglAlpha: number;
  riglStop: number;
  gradBudgetMB: number;
  pruneStart: number;
  pruneEnd: number;
}

/** What a rule sees of the training run. */
export interface TrainerView {
  readonly step: number;
  readonly epoch: number;
  readonly stepsPerEpoch: number;
  readonly cfg: TopologyConfig;
  readonly sparseLayers: SparseLinear[];
}

/** A sparse-training rule. */
export interface SparsityAlgorithm {
  readonly name: string;
  /** Whether the step just taken (global step index `step - 1`) triggers an update. */
  updateAfterStep(t: TrainerView): boolean;
  /** Whether an update follows the epoch that just ended (epoch index `epoch - 1`). */
  updateAfterEpoch(t: TrainerView): boolean;
  /** Records the update of every sparse layer. */
  update(rec: Recorder, t: TrainerView): void;
  /** Whether the update needs the current batch's activations and gradients (RigL). */
  readonly needsGradients: boolean;
}

function kbufFor(rec: Recorder): Tensor {
  return topoScratch(rec.gpu, "topo kbuf", 8);
}

function layerInitStd(layer: SparseLinear, cfg: TopologyConfig): number {
  const density = layer.csr.nnz / (layer.csr.nIn * layer.csr.nOut);
  return initStd(cfg.weightInit, Math.max(1, density * layer.csr.nIn), density * layer.csr.nOut);
}

/** Drop mask of the k smallest |w| (exactly k). */
function dropSmallest(rec: Recorder, layer: SparseLinear, k: number): Tensor {
  const c = layer.csr;
  const result = topoScratch(rec.gpu, "drop select", SELECT_RESULT_WORDS);
  const drop = topoScratch(rec.gpu, "drop mask", c.nnz);
  radixSelect(rec, { data: c.values, n: c.nnz, k, mode: "abs", result });
  markSelected(rec, { data: c.values, n: c.nnz, mode: "abs", result, mask: drop });
  return drop;
}

const never = {
  updateAfterStep: () => false,
  updateAfterEpoch: () => false,
  update() {},
  needsGradients: false,
};

/** SET (Mocanu et al. 2018). */
export class SetAlgorithm implements SparsityAlgorithm {
  readonly name = "set";
  readonly needsGradients = false;
  updateAfterStep(): boolean {
    return false;
  }
  updateAfterEpoch(t: TrainerView): boolean {
    return t.epoch < t.cfg.epochs; // after every epoch except the last
  }
  update(rec: Recorder, t: TrainerView): void {
    const gpu = rec.gpu;
    t.sparseLayers.forEach((layer, l) => {
      const c = layer.csr;
      checkDenseScratch(gpu, layer);
      const seed = deriveSeed(deriveSeed(t.cfg.seed, 7000 + t.epoch), l);
      const kbuf = kbufFor(rec);
      let drop: Tensor;
      let growCount: number | { tensor: Tensor; index: number };
      if (t.cfg.setRanking === "per-sign") {
        const p = topoParams(gpu, layer, { zeta: t.cfg.zeta });
        rec.clear(kbuf);
        rec.dispatch(
          gpu.kernel(TOPO_COUNT_SIGNS),
          { p, vals: c.values, counts: kbuf },
          grid(gpu, Math.ceil(c.nnz / 256)),
        );
        rec.dispatch(gpu.kernel(TOPO_SET_K), { p, kbuf }, 1);
        const result = topoScratch(gpu, "drop select", SELECT_RESULT_WORDS);
        drop = topoScratch(gpu, "drop mask", c.nnz);
        radixSelect(rec, {
          data: c.values,
          n: c.nnz,
          k: { tensor: kbuf, index: 0 },
          mode: "positive",
          result,
        });
        markSelected(rec, { data: c.values, n: c.nnz, mode: "positive", result, mask: drop });
        radixSelect(rec, {
          data: c.values,
          n: c.nnz,
          k: { tensor: kbuf, index: 1 },
          mode: "negative",
          result,
        });
        markSelected(rec, {
          data: c.values,
          n: c.nnz,
          mode: "negative",
          result,
          mask: drop,
          accumulate: true,
        });
        growCount = { tensor: kbuf, index: 2 };
      } else {
        const k = Math.floor(t.cfg.zeta * c.nnz);
        drop = dropSmallest(rec, layer, k);
        growCount = k;
      }
      const scores = topoScratch(gpu, "grow scores", c.nIn * c.nOut);
      const sf = { ...scores, dtype: "f32" as const };
      rec.dispatch(gpu.kernel(TOPO_RANDOM_SCORES), {
        p: topoParams(gpu, layer, { seed }),
        scores: sf,
      }, grid(gpu, Math.ceil((c.nIn * c.nOut) / 256)));
      rebuildTopology(rec, layer, {
        drop,
        growCount,
        growScores: sf,
        newNnz: c.nnz,
        step: t.step,
        seed: seed ^ 0x5bd1e995,
        initStd: t.cfg.regrowInit === "zero" ? 0 : layerInitStd(layer, t.cfg),
        kbuf,
      });
    });
  }
}

/** RigL (Evci et al. 2020). */
export class RiglAlgorithm implements SparsityAlgorithm {
  readonly name = "rigl";
  readonly needsGradients = true;
  constructor(readonly interval: number) {}
  #tEnd(t: TrainerView): number {
    return Math.floor(t.cfg.riglStop * t.cfg.epochs * t.stepsPerEpoch);
  }
  updateAfterStep(t: TrainerView): boolean {
    const s = t.step - 1;
    return s > 0 && s % this.interval === 0 && s < this.#tEnd(t);
  }
  updateAfterEpoch(): boolean {
    return false;
  }
  update(rec: Recorder, t: TrainerView): void {
    const gpu = rec.gpu;
    const f = riglDropFraction(t.cfg.riglAlpha, t.step - 1, this.#tEnd(t));
    for (const layer of t.sparseLayers) {
      const c = layer.csr;
      const k = Math.floor(f * c.nnz);
      if (k === 0) continue;
      const grads = layer.weightView().gradFactors();
      if (!grads) continue;
      const ld = Math.ceil(grads.x.batch / 4) * 4;
      const budget = denseBudgetBytes(gpu, t.cfg.gradBudgetMB);
      if (needsRowChunks(layer, budget)) {
        // Too large for one dense gradient: top-k growth over row chunks of X·dZᵀ.
        const drop = dropSmallest(rec, layer, k);
        const grown = gradGrowCandidates(rec, layer, {
          x: grads.x.t,
          dz: grads.dz.t,
          ld,
          drop,
          k,
          budgetBytes: budget,
        });
        rebuildTopology(rec, layer, {
          drop,
          growCount: k,
          grownPositions: grown,
          newNnz: c.nnz,
          step: t.step,
          seed: deriveSeed(t.cfg.seed, t.step),
          initStd: 0,
          kbuf: kbufFor(rec),
        });
        continue;
      }
      checkDenseScratch(gpu, layer);
      // Dense weight gradient X·dZᵀ of the current batch, only on update steps.
      const dense = topoScratch(gpu, "dense grad", c.nIn * c.nOut);
      const df = { ...dense, dtype: "f32" as const };
      matmul(rec, {
        a: grads.x.t,
        b: grads.dz.t,
        c: df,
        m: c.nIn,
        n: c.nOut,
        k: ld,
        transB: true,
        lda: ld,
        ldb: ld,
      });
      const scores = { ...topoScratch(gpu, "grow scores", c.nIn * c.nOut), dtype: "f32" as const };
      rec.dispatch(gpu.kernel(TOPO_GRAD_SCORES), {
        p: topoParams(gpu, layer, {}),
        grad: df,
        grad_scores: scores,
      }, grid(gpu, Math.ceil((c.nIn * c.nOut) / 256)));
      const drop = dropSmallest(rec, layer, k);
      rebuildTopology(rec, layer, {
        drop,
        growCount: k,
        growScores: scores,
        newNnz: c.nnz,
        step: t.step,
        seed: deriveSeed(t.cfg.seed, t.step),
        initStd: 0,
        kbuf: kbufFor(rec),
      });
    }
  }
}

/** Gradual magnitude pruning (Zhu & Gupta 2017) from dense to the target density. */
export class PruneAlgorithm implements SparsityAlgorithm {
  readonly name = "prune";
  readonly needsGradients = false;
  constructor(readonly interval: number, readonly targets: number[]) {}
  #window(t: TrainerView): [number, number] {
    const total = t.cfg.epochs * t.stepsPerEpoch;
    return [Math.floor(t.cfg.pruneStart * total), Math.floor(t.cfg.pruneEnd * total)];
  }
  updateAfterStep(t: TrainerView): boolean {
    const [t0, t1] = this.#window(t);
    const s = t.step;
    return s >= t0 && (s <= t1 && (s - t0) % this.interval === 0 || s === t1);
  }
  updateAfterEpoch(): boolean {
    return false;
  }
  update(rec: Recorder, t: TrainerView): void {
    const [t0, t1] = this.#window(t);
    t.sparseLayers.forEach((layer, l) => {
      const c = layer.csr;
      const dense = c.nIn * c.nOut;
      const target = Math.max(
        1,
        Math.round(gmpDensity(1, this.targets[l], t0, t1, t.step) * dense),
      );
      const k = c.nnz - target;
      if (k <= 0) return;
      const drop = dropSmallest(rec, layer, k);
      rebuildTopology(rec, layer, {
        drop,
        growCount: 0,
        newNnz: target,
        step: t.step,
        seed: 0,
        initStd: 0,
        kbuf: kbufFor(rec),
      });
    });
  }
}

/** The rules by name. */
export const ALGORITHMS = {
  dense: (): SparsityAlgorithm => ({ name: "dense", ...never }),
  static: (): SparsityAlgorithm => ({ name: "static", ...never }),
  set: () => new SetAlgorithm(),
  rigl: (interval: number) => new RiglAlgorithm(interval),
  prune: (interval: number, targets: number[]) => new PruneAlgorithm(interval, targets),
} as const;

/**
 * Final densities of the sparse layers under pruning: `targetDensities` of the config (ER with
 * epsilon, ERK with `init`, else uniform `density`) over the shapes of the sparse layers, which
 * are the layers the config makes sparse (so "hidden"/"all" is already applied).
 */
export function pruneTargetsOf(t: TrainerView, cfg: TopologyConfig): number[] {
  const shapes = t.sparseLayers.map((l): [number, number] => [l.csr.nIn, l.csr.nOut]);
  return targetDensities({ ...cfg, sparseLayers: "all" }, shapes);
}

/** The rule a config asks for. */
export function createAlgorithm(
  t: TrainerView,
  cfg: TopologyConfig,
  pruneTargets: number[] = [],
): SparsityAlgorithm {
  switch (cfg.method) {
    case "dense":
    case "static":
      return ALGORITHMS[cfg.method]();
    case "set":
      return ALGORITHMS.set();
    case "rigl":
      return ALGORITHMS.rigl(cfg.updateInterval ?? 100);
    case "prune":
      return ALGORITHMS.prune(
        cfg.updateInterval ?? 100,
        pruneTargets.length ? pruneTargets : pruneTargetsOf(t, cfg),
      );
  }
}
