/**
 * `deno task train`: train a model (default: a sparse 784-1000-1000-1000-10 MLP with SET on
 * MNIST) and write a run directory: config.json, metrics.jsonl, checkpoint.safetensors.
 *
 * @example
 * ```sh
 * deno task train --method rigl --density 0.1 --hidden 300,100 --epochs 20
 * deno task train --config studies/x.yaml --seed 3
 * deno task train --resume runs/2026-11-25T10-00-00-set-mnist
 * ```
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { FiligreeError } from "../src/gpu/errors.ts";
import {
  DATASETS,
  INPUT_NORMS,
  LOSSES,
  METHODS,
  NORMS,
  OPTIMIZERS,
  parseTrainConfig,
  SCHEDULES,
  type TrainConfig,
} from "../src/train/config.ts";
import { parseIntList, readConfigFile, trainRun, withSparsityDefaults } from "../src/train/run.ts";
import { guarded } from "./main.ts";

// Re-exported for existing callers; the implementations live in src/train/run.ts.
export { readConfigFile, trainRun, withSparsityDefaults };

const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) {
    throw new FiligreeError(`--${name}: expected a number, got "${v}"`);
  }
  return n;
};
const intList = parseIntList;

function runDirName(cfg: TrainConfig): string {
  const ts = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  return `runs/${ts}-${cfg.method}-${cfg.dataset}-s${cfg.seed}`;
}

/** The `train` subcommand. */
export function trainCommand() {
  return new Command("train")
    .description("train a (sparse) MLP, CNN or LSTM and write a run directory")
    .option("--config <file>", "YAML config file with the same keys (flags override it)")
    .option("--resume <dir>", "continue an interrupted run from its last checkpoint")
    .addOption(new Option("--model <name>", "model").choices(["mlp", "cnn", "lstm"] as const))
    .option("--conv-channels <list>", "CNN: output channels per convolution, e.g. 16,32", intList)
    .option("--kernel-size <n>", "CNN: square convolution kernel size", num("kernel-size"))
    .option(
      "--lstm-hidden <n>",
      "LSTM: hidden size (image rows are the time steps)",
      num("lstm-hidden"),
    )
    .addOption(new Option("--dataset <name>", "dataset").choices(DATASETS))
    .option("--train-subset <n>", "seeded class-stratified training subset", num("train-subset"))
    .option("--test-subset <n>", "seeded class-stratified test subset", num("test-subset"))
    .addOption(new Option("--method <name>", "training method").choices(METHODS))
    .option(
      "--density <d>",
      "weight density of the sparse layers (uniform; ERK for rigl)",
      num("density"),
    )
    .option("--epsilon <e>", "SET's Erdős–Rényi epsilon (instead of --density)", num("epsilon"))
    .addOption(
      new Option("--init <kind>", "density distribution").choices(
        ["uniform", "er", "erk"] as const,
      ),
    )
    .option("--zeta <z>", "SET drop fraction", num("zeta"))
    .addOption(
      new Option(
        "--set-ranking <kind>",
        "SET drop ranking: per-sign (reference code) or global |w|",
      )
        .choices(["per-sign", "global"] as const),
    )
    .addOption(
      new Option("--regrow-init <kind>", "SET regrown weights: random (layer init) or zero")
        .choices(["random", "zero"] as const),
    )
    .option("--update-interval <n>", "steps between RigL/pruning updates", num("update-interval"))
    .option("--hidden <list>", "hidden widths, e.g. 1000,1000,1000", intList)
    .option("--activation <name>", "hidden activation (any kernel-library name, or srelu)")
    .addOption(new Option("--norm <kind>", "normalization").choices(NORMS))
    .addOption(
      new Option("--norm-placement <where>", "norm before or after the activation").choices(
        ["before", "after"] as const,
      ),
    )
    .addOption(new Option("--input-norm <kind>", "input normalization").choices(INPUT_NORMS))
    .option("--dropout <p>", "dropout probability", num("dropout"))
    .addOption(new Option("--loss <kind>", "loss").choices(LOSSES))
    .addOption(
      new Option("--output-activation <kind>", "output activation for the MSE loss").choices(
        ["identity", "sigmoid"] as const,
      ),
    )
    .addOption(new Option("--optimizer <name>", "optimizer").choices(OPTIMIZERS))
    .option("--lr <x>", "learning rate", num("lr"))
    .addOption(new Option("--lr-schedule <kind>", "learning-rate schedule").choices(SCHEDULES))
    .option("--momentum <x>", "SGD momentum", num("momentum"))
    .option("--weight-decay <x>", "weight decay", num("weight-decay"))
    .option("--epochs <n>", "epochs", num("epochs"))
    .option("--batch-size <n>", "batch size", num("batch-size"))
    .option("--seed <n>", "seed", num("seed"))
    .option("--out <dir>", "run directory (default runs/<time>-<method>-<dataset>-s<seed>)")
    .option("--quiet", "no progress output")
    .option("--json", "print one JSON line per epoch")
    .action((opts) =>
      guarded(async () => {
        const { config, resume, quiet, json, out, ...flags } = opts;
        if (resume) {
          let saved;
          try {
            saved = JSON.parse(await Deno.readTextFile(`${resume}/config.json`));
          } catch {
            throw new FiligreeError(
              `--resume ${resume}: no readable config.json (not a run directory?)`,
            );
          }
          const cfg = parseTrainConfig(saved.config);
          await trainRun(cfg, resume, { quiet, json, resume: true });
          return;
        }
        const file = config ? await readConfigFile(config) : {};
        const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
        const raw = withSparsityDefaults({ ...file, ...given, ...(out ? { out } : {}) });
        if (given.density !== undefined && file.epsilon !== undefined) delete raw.epsilon;
        if (given.epsilon !== undefined && file.density !== undefined) delete raw.density;
        const cfg = parseTrainConfig(raw);
        await trainRun(cfg, cfg.out ?? runDirName(cfg), { quiet, json });
      })
    );
}
