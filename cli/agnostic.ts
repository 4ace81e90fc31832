/**
 * `deno task agnostic RUN_DIR`: how much test accuracy a trained run (MLP, CNN or LSTM) keeps when
 * its weights are replaced by one shared weight per layer (with and without the learned signs), on
 * its own topology, a degree-matched random one and a shuffled one (src/analysis/agnostic.ts). Writes
 * RUN_DIR/agnostic.json (refuses to replace it without --overwrite) and prints a table.
 *
 * @example
 * ```sh
 * deno task agnostic runs/mnist-set --eval-samples 2000 --seeds 2
 * ```
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { agnosticAnalysis } from "../src/analysis/agnostic.ts";
import { Probe } from "../src/analysis/probe.ts";
import { FiligreeError } from "../src/gpu/errors.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { guarded } from "./main.ts";
import { nonNegativeInt, positiveInt } from "./args.ts";

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

/** The `agnostic` subcommand. */
export function agnosticCommand() {
  return new Command("agnostic")
    .description(
      "accuracy a trained run keeps with shared / sign-only weights, vs random topologies",
    )
    .argument("<run_dir>", "a run directory written by `train` (MLP, CNN or LSTM)")
    .option("--eval-samples <n>", "test samples (stratified)", positiveInt(), 2000)
    .option("--seeds <n>", "random topologies per random-mask variant", positiveInt(), 2)
    .option(
      "--seed <n>",
      "seed of the evaluation subset and random topologies",
      nonNegativeInt(),
      0,
    )
    .option(
      "--scales <list>",
      "shared-weight scales (x the layer's mean |w|)",
      "-2,-1,-0.5,0.5,1,2",
    )
    .option("--out <file>", "output file (default RUN_DIR/agnostic.json)")
    .option("--overwrite", "replace an existing output file")
    .action((dir, o) =>
      guarded(async () => {
        const scales = o.scales.split(",").map(Number);
        if (!scales.length || !scales.every(Number.isFinite)) {
          throw new FiligreeError(
            `--scales: expected numbers separated by commas, got "${o.scales}"`,
          );
        }
        const out = o.out ?? `${dir}/agnostic.json`;
        if (!o.overwrite) {
          const exists = await Deno.stat(out).then(() => true, () => false);
          if (exists) throw new FiligreeError(`${out} exists: pass --overwrite to replace it`);
        }
        const probe = await Probe.fromRun(dir, { evalSamples: o.evalSamples, seed: o.seed });
        const r = await agnosticAnalysis(probe, { scales, seeds: o.seeds, seed: o.seed });
        await writeFileAtomic(out, JSON.stringify({ run: dir, ...r }, null, 1));
        console.log(
          `agnostic: ${dir}, ${r.samples} test samples, trained accuracy ${
            pct(r.baseline.accuracy)
          }; ` +
            `scales ${scales.join(", ")} x each layer's mean |w|`,
        );
        console.log("  mask            weights   mean acc  best acc (scale)  retained mean/best");
        for (const s of r.summary) {
          console.log(
            `  ${s.mask.padEnd(15)} ${s.weights.padEnd(8)} ${pct(s.meanAccuracy).padStart(8)} ${
              pct(s.bestAccuracy).padStart(9)
            } (${s.bestScale ?? "-"})`.padEnd(58) +
              `${pct(s.retainedMean)} / ${pct(s.retainedBest)}`,
          );
        }
        console.log(`agnostic: wrote ${out}`);
      })
    );
}
