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
import { parse as parseYaml } from "yaml";
import { FiligreeError } from "../src/gpu/errors.ts";
import { getGpu } from "../src/gpu/device.ts";
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
import { type EpochMetrics, runEpoch, Trainer } from "../src/train/trainer.ts";
import { loadCheckpoint, saveCheckpoint } from "../src/train/checkpoint.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { Progress } from "../src/train/progress.ts";
import { guarded } from "./main.ts";

const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) {
    throw new FiligreeError(`--${name}: expected a number, got "${v}"`);
  }
  return n;
};
const intList = (v: string) => {
  const xs = v.split(",").map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x <= 0)) {
    throw new FiligreeError(`--hidden: expected a list like 1000,1000,1000, got "${v}"`);
  }
  return xs;
};

function kebabToCamel(k: string): string {
  return k.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
}

/** Reads a YAML (or JSON) config file into a plain object with camelCase keys. */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    throw new FiligreeError(`cannot read config file ${path}`);
  }
  let obj: unknown;
  try {
    obj = parseYaml(text);
  } catch (e) {
    throw new FiligreeError(`${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new FiligreeError(`${path}: expected a mapping of config keys`);
  }
  return Object.fromEntries(
    Object.entries(obj).map((
      [k, v],
    ) => [kebabToCamel(k), k === "hidden" && typeof v === "string" ? intList(v) : v]),
  );
}

/** Fills the defaults that depend on other keys (sparsity given by neither density nor epsilon). */
export function withSparsityDefaults(raw: Record<string, unknown>): Record<string, unknown> {
  if (raw.density === undefined && raw.epsilon === undefined) {
    const m = raw.method ?? "set";
    if (m === "prune" || m === "rigl") return { ...raw, density: 0.05 };
    if (m !== "dense") return { ...raw, epsilon: 20 };
  }
  return raw;
}

function runDirName(cfg: TrainConfig): string {
  const ts = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  return `runs/${ts}-${cfg.method}-${cfg.dataset}-s${cfg.seed}`;
}

/** Trains to cfg.epochs, writing the run directory after every epoch. */
export async function trainRun(
  cfg: TrainConfig,
  dir: string,
  opts: { quiet?: boolean; json?: boolean; resume?: boolean; stopAfterEpochs?: number },
): Promise<EpochMetrics[]> {
  const gpu = await getGpu();
  const log = (s: string) => !opts.quiet && !opts.json && console.log(s);
  const t = await Trainer.create(gpu, cfg);
  let history: EpochMetrics[] = [];
  if (opts.resume) {
    await loadCheckpoint(t, `${dir}/checkpoint.safetensors`);
    try {
      history = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).split("\n").filter((l) =>
        l.trim()
      ).map((l) => JSON.parse(l)).slice(0, t.epoch);
    } catch {
      history = [];
    }
    log(`resuming ${dir} at epoch ${t.epoch + 1}/${cfg.epochs}`);
  } else {
    await Deno.mkdir(dir, { recursive: true });
    await writeFileAtomic(
      `${dir}/config.json`,
      JSON.stringify(
        {
          config: cfg,
          adapter: gpu.report(),
          filigree: "0.1.0",
          created: new Date().toISOString(),
        },
        null,
        2,
      ) + "\n",
    );
  }
  const dens = t.model.layers.filter((l) => "csr" in l || "weight" in l).map((l) => {
    const c = (l as unknown as { csr?: { nnz: number; nIn: number; nOut: number } }).csr;
    return `${l.name} ${(c ? (c.nnz / (c.nIn * c.nOut)) * 100 : 100).toFixed(2)}%`;
  });
  log(
    `model ${
      [t.dataset.features, ...cfg.hidden, t.dataset.classes].join("-")
    } ${cfg.method} on ${cfg.dataset} (${t.data.size("train")} train / ${
      t.data.size("test")
    } test); density: ${dens.join(", ")}`,
  );
  log(`adapter ${gpu.info.description || gpu.info.vendor} [${gpu.backend}]; run directory ${dir}`);
  const progress = new Progress({ quiet: opts.quiet || opts.json });
  while (
    t.epoch < cfg.epochs && (opts.stopAfterEpochs === undefined || t.epoch < opts.stopAfterEpochs)
  ) {
    progress.start(`epoch ${t.epoch + 1}/${cfg.epochs}`, t.stepsPerEpoch);
    const m = await runEpoch(
      t,
      (done, _total, mm) =>
        progress.update(done, { loss: mm.loss, acc: mm.accuracy }, "samples", t.data.batchSize),
    );
    progress.stop();
    history.push(m);
    await saveCheckpoint(t, `${dir}/checkpoint.safetensors`);
    await writeFileAtomic(
      `${dir}/metrics.jsonl`,
      history.map((h) => JSON.stringify(h)).join("\n") + "\n",
    );
    if (opts.json) console.log(JSON.stringify(m));
    else {log(
        `epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)} acc ${
          (m.trainAccuracy * 100).toFixed(2)
        }% | test loss ${m.testLoss.toFixed(4)} acc ${(m.testAccuracy * 100).toFixed(2)}% | ${
          m.samplesPerSecond.toFixed(0)
        } samples/s, topology ${m.seconds.topology.toFixed(2)}s | nnz ${m.nnz.join(",")}`,
      );}
  }
  return history;
}

/** The `train` subcommand. */
export function trainCommand() {
  return new Command("train")
    .description("train a (sparse) MLP and write a run directory")
    .option("--config <file>", "YAML config file with the same keys (flags override it)")
    .option("--resume <dir>", "continue an interrupted run from its last checkpoint")
    .addOption(new Option("--model <name>", "model").choices(["mlp"] as const))
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
