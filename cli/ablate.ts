/**
 * `deno task ablate RUN_DIR`: importance scores, exact ablation and their agreement (see
 * src/analysis/run.ts for the outputs).
 *
 * @example
 * ```sh
 * deno task ablate runs/mnist-set                      # 5,000 train + 5,000 test samples, all scores
 * deno task ablate runs/mnist-set --splits train --eval-samples 2000 --scores magnitude,snip
 * ```
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { parseAblateOptions } from "../src/analysis/options.ts";
import { SCORE_NAMES } from "../src/analysis/summary.ts";
import { ablateRun } from "../src/analysis/run.ts";
import { resolveEpochDir } from "../src/train/checkpoint.ts";
import { guarded } from "./main.ts";
import { nameList, number } from "./args.ts";

// Malformed values are one-line usage errors (cli/args.ts, exit 2); ranges are checked by
// parseAblateOptions.
const int = (_name: string) => number({ integer: true });
const list = nameList();

/** The `ablate` subcommand. */
export function ablateCommand() {
  return new Command("ablate")
    .description(
      "importance scores, exact single-weight/unit ablation on the GPU, and how they agree",
    )
    .argument("<run_dir>", "a run directory written by `train`")
    .option(
      "--scores <list>",
      `scores (default all): ${SCORE_NAMES.join(",")}`,
      list,
    )
    .option(
      "--eval-samples <n>",
      "samples of each split's seeded evaluation set, two halves together (default 5000)",
      int("eval-samples"),
    )
    .option(
      "--splits <list>",
      "splits measured, each with its split-half reliability: train,test (default both)",
      list,
    )
    .option("--sesoi <d>", "smallest effect size of interest (Δρ), recorded", number())
    .option("--layers <list>", "weight layers to ablate (default all)", list)
    .option(
      "--max-weights <n>",
      "most weights ablated per layer; above it a magnitude-stratified sample (default 20000)",
      int("max-weights"),
    )
    .option("--units", "also ablate every hidden unit")
    .option("--no-curves", "skip the group-ablation curves")
    .option("--curve-layers", "per-layer curves as well as the global one")
    .option(
      "--finetune-steps <n>",
      "fine-tune steps after group removal (default 0)",
      int("finetune-steps"),
    )
    .option("--no-plots", "skip SVG/PNG plots")
    .option(
      "--budget-mb <n>",
      "GPU memory for one batch of ablations (default 256)",
      int("budget-mb"),
    )
    .option(
      "--probe-samples <n>",
      "most evaluation samples per probe (default: what the device holds); larger sets are ablated in shards",
      int("probe-samples"),
    )
    .option(
      "--seed <s>",
      "seed of the evaluation sets and halves, sample, bootstrap, random score (default: the run's seed)",
      int("seed"),
    )
    .option(
      "--epoch <n>",
      "analyze the checkpoint kept at epoch n (train --keep-epochs), into RUN/epochs/epoch-NNN/analysis; default final",
    )
    .option("--quiet", "no progress output")
    .option("--json", "print the summary as JSON")
    .action((dir, o) =>
      guarded(async () => {
        const opts = parseAblateOptions(Object.fromEntries(
          Object.entries({
            scores: o.scores,
            evalSamples: o.evalSamples,
            splits: o.splits,
            sesoi: o.sesoi,
            layers: o.layers,
            maxWeights: o.maxWeights,
            units: o.units,
            curves: o.curves,
            curveLayers: o.curveLayers,
            finetuneSteps: o.finetuneSteps,
            plots: o.plots,
            budgetMB: o.budgetMb,
            probeSamples: o.probeSamples,
            seed: o.seed,
          }).filter(([, v]) => v !== undefined),
        ));
        const runDir = await resolveEpochDir(dir.replace(/\/+$/, ""), o.epoch);
        const s = await ablateRun(runDir, opts, { quiet: o.quiet || o.json });
        if (o.json) console.log(JSON.stringify(s));
      })
    );
}
