/**
 * Training runs on disk: {@link trainRun} trains a {@link TrainConfig} to its last epoch and
 * keeps a run directory up to date (config.json, metrics.jsonl, checkpoint.safetensors after
 * every epoch; the layout and its readers are in rundir.ts); {@link readConfigFile} reads a YAML/JSON config file; {@link withSparsityDefaults}
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
import {
  checkpointStopped,
  keepsEpoch,
  loadCheckpoint,
  saveCheckpoint,
  saveKeptEpoch,
} from "./checkpoint.ts";
import { PLATEAU_PATIENCE } from "./schedule.ts";
import { Progress } from "./progress.ts";
import { cnnShapes } from "../nn/cnn.ts";
import {
  checkpointEpoch,
  prepareRunDir,
  readMetrics,
  runPaths,
  writeMetrics,
  writeRunConfig,
} from "./rundir.ts";

/**
 * Parses a list of positive integers like "1000,1000,1000" (the `hidden` key and flag).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIntList } from "./run.ts";
 * assert.deepEqual(parseIntList("300,100"), [300, 100]);
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
 * import assert from "node:assert/strict";
 * import { kebabToCamel } from "./run.ts";
 * assert.deepEqual(kebabToCamel("input-norm"), "inputNorm");
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
 * density 0.05 for prune/rigl; density 0.1 with ERK layer densities (unless `init` is given) for
 * set/static, the SET configuration that reaches 98 % on MNIST (docs/TRAINING-RESULTS.md).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withSparsityDefaults } from "./run.ts";
 * assert.deepEqual(withSparsityDefaults({ method: "set" }), { method: "set", density: 0.1, init: "erk" });
 * ```
 */
export function withSparsityDefaults(raw: Record<string, unknown>): Record<string, unknown> {
  if (raw.density === undefined && raw.epsilon === undefined) {
    const m = raw.method ?? "set";
    if (m === "prune" || m === "rigl") return { ...raw, density: 0.05 };
    if (m !== "dense") return { ...raw, density: 0.1, init: raw.init ?? "erk" };
  }
  return raw;
}

function fmtSeconds(sec: number): string {
  if (sec < 90) return `${sec.toFixed(0)} s`;
  if (sec < 5400) return `${(sec / 60).toFixed(1)} min`;
  return `${(sec / 3600).toFixed(1)} h`;
}

/** Options of {@link trainRun}. */
export interface TrainRunOptions {
  /** No output at all. */
  quiet?: boolean;
  /** One JSON line per epoch on stdout instead of the human-readable lines. */
  json?: boolean;
  /**
   * Continue from `dir/checkpoint.safetensors` (from epoch 1 when no epoch finished yet; a
   * finished run trains nothing and says so).
   */
  resume?: boolean;
  /** New run only: replace a run already in `dir` (its analysis/ too) instead of refusing. */
  overwrite?: boolean;
  /** Stop once this many epochs are done (the run stays resumable). */
  stopAfterEpochs?: number;
  /**
   * Called after every epoch once its metrics and checkpoint are on disk (a throw stops the
   * run there, as a kill would).
   */
  onEpoch?: (m: EpochMetrics) => void | Promise<void>;
}

/**
 * The model's shape for the start line, e.g. `mlp 784-1000-10`,
 * `lstm 28 steps x 28 inputs, h128 + head 128-10`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrainConfig } from "./config.ts";
 * import { describeModelShape } from "./run.ts";
 * const cfg = parseTrainConfig({ model: "lstm", hidden: [64], lstmHidden: 32 });
 * const shape = describeModelShape(cfg, { features: 784, classes: 10, shape: [28, 28] });
 * assert.deepEqual(shape, "lstm 28 steps x 28 inputs, h32 + head 32-64-10");
 * ```
 */
export function describeModelShape(
  cfg: TrainConfig,
  data: { features: number; classes: number; shape: number[] },
): string {
  if (cfg.model === "lstm") {
    const [steps, inputs] = data.shape.length === 2 ? data.shape : [1, data.features];
    return `lstm ${steps} steps x ${inputs} inputs, h${cfg.lstmHidden} + head ${
      [cfg.lstmHidden, ...cfg.hidden, data.classes].join("-")
    }`;
  }
  if (cfg.model === "cnn") {
    const { flat } = cnnShapes(data.shape, cfg.convChannels, cfg.kernelSize);
    return `cnn ${data.shape.join("x")} conv ${
      cfg.convChannels.join(",")
    } k${cfg.kernelSize} + head ${[flat, ...cfg.hidden, data.classes].join("-")}`;
  }
  return `mlp ${[data.features, ...cfg.hidden, data.classes].join("-")}`;
}

/**
 * Trains to cfg.epochs, writing the run directory after every epoch (metrics.jsonl first, then
 * the checkpoint, so metrics.jsonl always covers at least the checkpoint's epochs). A new run
 * refuses a directory that already holds one unless `overwrite` (rundir.ts, `prepareRunDir`).
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
  const log = (s: string) => !opts.quiet && !opts.json && console.log(s);
  const paths = runPaths(dir);
  dir = paths.dir;
  let history: EpochMetrics[] = [];
  let resumeFrom = 0;
  if (opts.resume) {
    resumeFrom = await checkpointEpoch(dir);
    const read = await readMetrics(dir);
    history = read.metrics.slice(0, resumeFrom);
    if (read.discarded > 0) {
      log(
        `${paths.metrics}: kept epochs 1-${read.metrics.length}, discarded ${read.discarded} ` +
          `damaged line${read.discarded === 1 ? "" : "s"} from line ${read.firstBadLine}`,
      );
    }
    if (history.length < resumeFrom) {
      log(
        `${paths.metrics}: no metrics for epochs ${history.length + 1}-${resumeFrom} ` +
          `(the checkpoint has them; their metrics are lost)`,
      );
    }
    const stoppedBy = resumeFrom > 0 ? await checkpointStopped(paths.checkpoint) : null;
    if (resumeFrom >= cfg.epochs || stoppedBy) {
      log(
        `run ${dir} is finished: ${resumeFrom}/${cfg.epochs} epochs trained${
          stoppedBy ? ` (${stoppedBy})` : ""
        }; nothing to do ` +
          `(a longer run is a new run: train --config ${paths.config} --epochs N --out NEW_DIR)`,
      );
      return read.metrics.slice(0, Math.min(cfg.epochs, resumeFrom));
    }
  } else {
    const replaced = await prepareRunDir(dir, { overwrite: opts.overwrite });
    if (replaced) log(`${dir}: ${replaced}`);
  }
  const gpu = await getGpu();
  if (!opts.resume) await writeRunConfig(dir, cfg, gpu.report());
  const t = await Trainer.create(gpu, cfg);
  if (opts.resume) {
    if (resumeFrom > 0) await loadCheckpoint(t, paths.checkpoint);
    log(
      resumeFrom > 0
        ? `resuming ${dir} at epoch ${t.epoch + 1}/${cfg.epochs}`
        : `resuming ${dir}: no epoch finished yet, starting at epoch 1/${cfg.epochs}`,
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
    `model ${describeModelShape(cfg, t.dataset)} ${cfg.method} on ${cfg.dataset} (${
      t.data.size("train")
    } train / ${t.data.size("test")} test); density: ${dens.join(", ")}`,
  );
  log(`adapter ${gpu.info.description || gpu.info.vendor} [${gpu.backend}]; run directory ${dir}`);
  const progress = new Progress({ quiet: opts.quiet || opts.json });
  if (cfg.plateauTol !== undefined) {
    log(
      `stop rule: plateau of the training loss (relative improvement < ${cfg.plateauTol} for ${
        cfg.plateauPatience ?? PLATEAU_PATIENCE
      } epochs), at most ${cfg.epochs} epochs`,
    );
  }
  const firstEpoch = t.epoch;
  let estimated = false, mark: [number, number] | null = null;
  while (
    t.epoch < cfg.epochs && !t.stopped &&
    (opts.stopAfterEpochs === undefined || t.epoch < opts.stopAfterEpochs)
  ) {
    progress.start(`epoch ${t.epoch + 1}/${cfg.epochs}`, t.stepsPerEpoch);
    const m = await runEpoch(
      t,
      (done, total, mm) => {
        if (!estimated && t.epoch === firstEpoch && mark === null) {
          mark = [performance.now(), done]; // pipelines compiled by now
        } else if (!estimated && t.epoch === firstEpoch && mark) {
          // Up-front estimate from the steps between the first two progress reports.
          estimated = true;
          const perStep = (performance.now() - mark[0]) / 1000 / (done - mark[1]);
          progress.note(
            `estimated time: ${fmtSeconds(perStep * total * (cfg.epochs - firstEpoch))} for ${
              cfg.epochs - firstEpoch
            } epochs (${(t.data.batchSize / perStep).toFixed(0)} samples/s over steps ${
              mark[1]
            }-${done}${
              cfg.plateauTol !== undefined ? "; a maximum: the stop rule may end it sooner" : ""
            })`,
          );
        }
        progress.update(
          done,
          // Accuracy in % like the epoch line.
          { loss: mm.loss, acc: `${(mm.accuracy * 100).toFixed(2)}%` },
          "samples",
          t.data.batchSize,
        );
      },
    );
    progress.stop();
    history.push(m);
    await writeMetrics(dir, history);
    // Kept copy first: a kill before the run's checkpoint redoes this epoch, and with it the copy.
    if (keepsEpoch(cfg.keepEpochs, m.epoch)) await saveKeptEpoch(t, dir);
    await saveCheckpoint(t, paths.checkpoint);
    if (opts.json) console.log(JSON.stringify(m));
    else {
      log(
        `epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)} acc ${
          (m.trainAccuracy * 100).toFixed(2)
        }% | test loss ${m.testLoss.toFixed(4)} acc ${(m.testAccuracy * 100).toFixed(2)}% | ${
          m.samplesPerSecond.toFixed(0)
        } samples/s, topology ${m.seconds.topology.toFixed(2)}s | nnz ${m.nnz.join(",")}${
          m.beforeUpdate
            ? ` | before the topology update: test acc ${
              (m.beforeUpdate.testAccuracy * 100).toFixed(2)
            }%`
            : ""
        }`,
      );
      if (m.stopped) log(`stopped: ${m.stopped}`);
    }
    await opts.onEpoch?.(m);
  }
  return history;
}
