/**
 * The weight-agnostic evaluation of a run directory as a study step: what the sweep runs on a
 * cell's final checkpoint when its analysis options say `agnostic: true` (issue 14, item 4). The
 * result is stored in the cell's analysis summary (`AnalysisSummary.agnostic`), where the
 * hypothesis engine's `agnostic` statistic reads it (src/study/hypotheses.ts).
 *
 * Settings: the test split, `evalSamples` stratified samples (the analysis's oracle size), the
 * analysis seed (or, when it is absent, the run's training seed: every cell gets its own sample
 * and its own random topologies), two random topologies per random-mask variant and the WANN
 * scales (-2, -1, -0.5, 0.5, 1, 2) times each layer's mean |w|.
 *
 * @example
 * ```ts ignore
 * import { parseAblateOptions } from "./options.ts";
 * import { agnosticOfRun } from "./agnostic_run.ts";
 * const r = await agnosticOfRun("runs/mnist-set", parseAblateOptions({ agnostic: true }));
 * console.log(r.summary.find((s) => s.mask === "trained" && s.weights === "signed"));
 * ```
 * @module
 */
import { agnosticAnalysis, type AgnosticReport } from "./agnostic.ts";
import type { AblateOptions } from "./options.ts";
import { Probe, readRunConfig } from "./probe.ts";

/** Random topologies per random-mask variant in a study's agnostic evaluation. */
export const STUDY_AGNOSTIC_SEEDS = 2;

/** Runs the weight-agnostic evaluation of a run directory's checkpoint with a study's options. */
export async function agnosticOfRun(dir: string, opts: AblateOptions): Promise<AgnosticReport> {
  const seed = opts.seed ?? (await readRunConfig(dir)).seed;
  const probe = await Probe.fromRun(dir, { evalSamples: opts.evalSamples, seed });
  try {
    return await agnosticAnalysis(probe, { seeds: STUDY_AGNOSTIC_SEEDS, seed });
  } finally {
    // Give the evaluation tensors back (the sweep releases the rest between cells).
    const gpu = probe.gpu;
    for (const x of [probe.x.t, probe.labels, ...probe.cachedX, ...probe.cachedZ]) {
      if (x) gpu.release(x);
    }
  }
}
