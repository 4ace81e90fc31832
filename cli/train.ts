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
  TrainConfigSchema,
} from "../src/train/config.ts";
import { canonicalJson } from "../src/study/spec.ts";
import { readConfigFile, trainRun, withSparsityDefaults } from "../src/train/run.ts";
import { readRunFile } from "../src/train/rundir.ts";
import { intList as intListOf, nonNegativeInt, number, positiveInt, UsageError } from "./args.ts";
import { guarded } from "./main.ts";

// Re-exported for existing callers; the implementations live in src/train/run.ts.
export { readConfigFile, trainRun, withSparsityDefaults };

// Flag values are parsed by cli/args.ts (a malformed value is a one-line usage error, exit 2);
// ranges are checked by the config schema, whose errors name the flag (`parseFlagConfig`).
const num = (_name: string) => number();
const int = (_name: string) => positiveInt();
const intList = intListOf();

const keepList = (v: string): (number | "final")[] =>
  v.split(",").map((x) => {
    const s = x.trim();
    if (s === "final") return "final" as const;
    const n = Number(s);
    if (s === "" || !Number.isInteger(n) || n < 1) {
      throw new FiligreeError(`--keep-epochs: expected a list like 1,3,10,final, got "${v}"`);
    }
    return n;
  });

function runDirName(cfg: TrainConfig): string {
  const ts = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  return `runs/${ts}-${cfg.method}-${cfg.dataset}-s${cfg.seed}`;
}

/** The `train` subcommand. */
export function trainCommand() {
  const cmd = new Command("train")
    .description("train a (sparse) MLP, CNN or LSTM and write a run directory")
    .option("--config <file>", "YAML config file with the same keys (flags override it)")
    .option("--resume <dir>", "continue an interrupted run from its last checkpoint")
    .addOption(new Option("--model <name>", "model").choices(["mlp", "cnn", "lstm"] as const))
    .option("--conv-channels <list>", "CNN: output channels per convolution, e.g. 16,32", intList)
    .option("--kernel-size <n>", "CNN: square convolution kernel size", int("kernel-size"))
    .option(
      "--lstm-hidden <n>",
      "LSTM: hidden size (image rows are the time steps)",
      int("lstm-hidden"),
    )
    .addOption(new Option("--dataset <name>", "dataset").choices(DATASETS))
    .option("--train-subset <n>", "seeded class-stratified training subset", int("train-subset"))
    .option("--test-subset <n>", "seeded class-stratified test subset", int("test-subset"))
    .addOption(new Option("--method <name>", "training method").choices(METHODS))
    .option(
      "--density <d>",
      "overall weight density of the sparse layers, spread by --init",
      num("density"),
    )
    .option("--epsilon <e>", "SET's Erdős–Rényi epsilon (instead of --density)", num("epsilon"))
    .addOption(
      new Option(
        "--init <kind>",
        "how --density is spread over the sparse layers (default: erk for rigl and for the default set/static density, else uniform)",
      ).choices(
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
    .option(
      "--update-interval <n>",
      "steps between RigL/pruning updates (default: 100)",
      int("update-interval"),
    )
    .option(
      "--hidden <list>",
      'hidden widths, e.g. 1000,1000,1000 ("none": no head, for --model cnn/lstm)',
      (v: string) => (v === "none" ? [] : intList(v)),
    )
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
    .option("--epochs <n>", "epochs (the maximum with --plateau-tol)", int("epochs"))
    .option(
      "--plateau-tol <x>",
      "stop when the epoch training loss improves by less than x (relative) for --plateau-patience epochs",
      num("plateau-tol"),
    )
    .option(
      "--plateau-patience <n>",
      "epochs of the plateau rule (default: 3)",
      num("plateau-patience"),
    )
    .option(
      "--keep-epochs <list>",
      "keep these epochs' checkpoints as RUN/epochs/epoch-NNN (e.g. 1,3,10,30,final)",
      keepList,
    )
    .option("--batch-size <n>", "batch size", int("batch-size"))
    .option("--seed <n>", "seed", nonNegativeInt())
    .option("--out <dir>", "run directory (default runs/<time>-<method>-<dataset>-s<seed>)")
    .option(
      "--overwrite",
      "replace the run already in --out (its analysis/ too) instead of refusing",
    )
    .option("--quiet", "no progress output")
    .option("--json", "print one JSON line per epoch")
    .action((opts) =>
      guarded(async () => {
        const { config, resume, quiet, json, out, overwrite, ...flags } = opts;
        const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
        if (resume) {
          const extra = [config && "--config", out && "--out", overwrite && "--overwrite"];
          if (extra.some(Boolean)) {
            throw new UsageError(
              `--resume continues a run with its own config and directory: ${
                extra.filter(Boolean).join(", ")
              } cannot be combined with it`,
            );
          }
          const saved = (await readRunFile(resume)).config;
          const conflicts = resumeConflicts(saved, given);
          if (conflicts.length) {
            throw new UsageError(
              `--resume ${resume}: ${conflicts.join(", ")}; a resumed run keeps its config` +
                (given.epochs !== undefined && given.epochs !== saved.epochs
                  ? " (the lr, SET, RigL and pruning schedules depend on the total epochs, so a " +
                    "run cannot be extended: train a new one with --out)"
                  : " (train a new run with --out to change them)"),
            );
          }
          await trainRun(saved, resume, { quiet, json, resume: true });
          return;
        }
        const file = config ? await readConfigFile(config) : {};
        const raw = withSparsityDefaults({ ...file, ...given, ...(out ? { out } : {}) });
        if (given.density !== undefined && file.epsilon !== undefined) delete raw.epsilon;
        if (given.epsilon !== undefined && file.density !== undefined) delete raw.density;
        const cfg = parseFlagConfig(raw, given);
        await trainRun(cfg, cfg.out ?? runDirName(cfg), { quiet, json, overwrite });
      })
    );
  describeDefaults(cmd);
  return cmd;
}

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const show = (v: unknown) => Array.isArray(v) ? v.join(",") : String(v);

/** Flags given with --resume whose value differs from the run's config, as "--lr 5 (run: 0.05)". */
function resumeConflicts(saved: TrainConfig, given: Record<string, unknown>): string[] {
  const s = saved as Record<string, unknown>;
  return Object.entries(given).filter(([k, v]) => canonicalJson(v) !== canonicalJson(s[k])).map((
    [k, v],
  ) =>
    `--${kebab(k)} ${show(v)} differs from the run's ${s[k] === undefined ? "(unset)" : show(s[k])}`
  );
}

/** parseTrainConfig, with errors about a value given as a flag named after the flag (exit 2). */
function parseFlagConfig(
  raw: Record<string, unknown>,
  given: Record<string, unknown>,
): TrainConfig {
  try {
    return parseTrainConfig(raw);
  } catch (e) {
    const key = /"(\w+)"/.exec((e as Error).message)?.[1];
    if (e instanceof FiligreeError && key && key in given) {
      throw new UsageError(`--${kebab(key)} ${show(given[key])}: ${e.message}`);
    }
    throw e;
  }
}

/**
 * Appends every flag's default (from the config schema) to its help text and lists the config
 * keys that have no flag, so `train --help` shows what a run uses.
 */
function describeDefaults(cmd: Command): void {
  const d = parseTrainConfig({}) as Record<string, unknown>;
  const flagged = new Set<string>();
  for (const o of cmd.options) {
    const k = o.attributeName();
    flagged.add(k);
    if (d[k] !== undefined && !/\(default/.test(o.description)) {
      o.description += ` (default: ${show(d[k])})`;
    }
  }
  for (const o of cmd.options) {
    if (o.attributeName() === "density" || o.attributeName() === "epsilon") {
      o.description +=
        " (default: density 0.1 with ERK for set/static, 0.05 for rigl/prune; --epsilon gives Erdős–Rényi densities)";
    }
  }
  const configOnly = Object.keys(TrainConfigSchema.shape).filter((k) => !flagged.has(k));
  cmd.addHelpText(
    "after",
    `\nConfig-file keys without a flag (set them in --config FILE, YAML, camelCase or kebab-case):\n  ${
      configOnly.map((k) => `${k} (${d[k] === undefined ? "unset" : show(d[k])})`).join(", ")
    }\n`,
  );
}
