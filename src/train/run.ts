/**
 * Training runs on disk: {@link trainRun} trains a {@link TrainConfig} to its last epoch and
 * keeps a run directory up to date (config.json, metrics.jsonl, checkpoint.safetensors after
 * every epoch); {@link readConfigFile} reads a YAML/JSON config file; {@link withSparsityDefaults}
 * fills the sparsity defaults. Used by `deno task train` and the study sweep.
 *
 * @example
 * ```ts ignore
 * import { parseTrainConfig } from "./config.ts";
 * import { trainRun, withSparsityDefaults } from "./run.ts";
 * const cfg = parseTrainConfig(withSparsityDefaults({ dataset: "synthetic", hidden: [32], epochs: 2 }));
 * const history = await trainRun(cfg, "runs/example", { quiet: true });
 * console.log(history.at(-1)?.testAccuracy);
 * ```
 * @module
 */
import { parse as parseYaml } from "yaml";
import { FiligreeError } from "../gpu/errors.ts";
import { getGpu } from "../gpu/device.ts";
import type { TrainConfig } from "./config.ts";
import { type EpochMetrics, runEpoch, Trainer } from "./trainer.ts";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { Progress } from "./progress.ts";

/**
 * Parses a list of positive integers like "1000,1000,1000" (the `hidden` key and flag).
 *
 * @example
 * ```ts
 * import { parseIntList } from "./run.ts";
 * console.log(parseIntList("300,100")); // [300, 100]
 * ```
 */
export function parseIntList(v: string): number[] {
  const xs = v.split(",").map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x <= 0)) {
    throw new FiligreeError(`--hidden: expected a list like 1000,1000,1000, got "${v}"`);
  }
  return xs;
}

/**
 * Turns a kebab-case key into camelCase ("batch-size" -> "batchSize").
 *
 * @example
 * ```ts
 * import { kebabToCamel } from "./run.ts";
 * console.log(kebabToCamel("input-norm")); // inputNorm
 * ```
 */
export function kebabToCamel(k: string): string {
  return k.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
}

/**
 * Reads a YAML (or JSON) config file into a plain object with camelCase keys.
 *
 * @example
 * ```ts ignore
 * import { readConfigFile } from "./run.ts";
 * const raw = await readConfigFile("my-run.yaml"); // e.g. { method: "set", batchSize: 64 }
 * ```
 */
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
    ) => [kebabToCamel(k), k === "hidden" && typeof v === "string" ? parseIntList(v) : v]),
  );
}

/**
 * Fills the defaults that depend on other keys (sparsity given by neither density nor epsilon):
 * density 0.05 for prune/rigl, epsilon 20 for the other sparse methods.
 *
 * @example
 * ```ts
 * import { withSparsityDefaults } from "./run.ts";
 * console.log(withSparsityDefaults({ method: "set" })); // { method: "set", epsilon: 20 }
 * ```
 */
export function withSparsityDefaults(raw: Record<string, unknown>): Record<string, unknown> {
  if (raw.density === undefined && raw.epsilon === undefined) {
    const m = raw.method ?? "set";
    if (m === "prune" || m === "rigl") return { ...raw, density: 0.05 };
    if (m !== "dense") return { ...raw, epsilon: 20 };
  }
  return raw;
}

/** Options of {@link trainRun}. */
export interface TrainRunOptions {
  /** No output at all. */
  quiet?: boolean;
  /** One JSON line per epoch on stdout instead of the human-readable lines. */
  json?: boolean;
  /** Continue from `dir/checkpoint.safetensors`. */
  resume?: boolean;
  /** Stop once this many epochs are done (the run stays resumable). */
  stopAfterEpochs?: number;
  /**
   * Called after every epoch once its metrics and checkpoint are on disk (a throw stops the
   * run there, as a kill would).
   */
  onEpoch?: (m: EpochMetrics) => void | Promise<void>;
}

/**
 * Trains to cfg.epochs, writing the run directory after every epoch (metrics.jsonl first, then
 * the checkpoint, so metrics.jsonl always covers at least the checkpoint's epochs).
 *
 * @example
 * ```ts ignore
 * const h = await trainRun(cfg, "runs/x", { quiet: true, stopAfterEpochs: 1 });
 * const rest = await trainRun(cfg, "runs/x", { quiet: true, resume: true });
 * ```
 */
export async function trainRun(
  cfg: TrainConfig,
  dir: string,
  opts: TrainRunOptions,
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
  const sparse = new Set(t.model.sparseLayers);
  const dens = [
    ...t.model.sparseLayers.map((l) =>
      `${l.name} ${((l.csr.nnz / (l.csr.nIn * l.csr.nOut)) * 100).toFixed(2)}%`
    ),
    ...t.model.layers.filter((l) => "weight" in l && !sparse.has(l as never)).map((l) =>
      `${l.name} 100%`
    ),
  ];
  log(
    `model ${
      cfg.model === "cnn"
        ? `cnn conv ${cfg.convChannels.join(",")} k${cfg.kernelSize} + `
        : cfg.model === "lstm"
        ? `lstm h${cfg.lstmHidden} + `
        : ""
    }${
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
    await writeFileAtomic(
      `${dir}/metrics.jsonl`,
      history.map((h) => JSON.stringify(h)).join("\n") + "\n",
    );
    await saveCheckpoint(t, `${dir}/checkpoint.safetensors`);
    if (opts.json) console.log(JSON.stringify(m));
    else {
      log(
        `epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)} acc ${
          (m.trainAccuracy * 100).toFixed(2)
        }% | test loss ${m.testLoss.toFixed(4)} acc ${(m.testAccuracy * 100).toFixed(2)}% | ${
          m.samplesPerSecond.toFixed(0)
        } samples/s, topology ${m.seconds.topology.toFixed(2)}s | nnz ${m.nnz.join(",")}`,
      );
    }
    await opts.onEpoch?.(m);
  }
  return history;
}
