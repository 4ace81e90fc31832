/**
 * The training loop: one command encoder per step (batch gather, forward, loss, backward,
 * optimizer), metrics accumulated on the GPU and read back a few times per epoch, evaluation
 * of the test split in one submit, topology updates through a {@link SparsityAlgorithm}.
 *
 * @example
 * ```ts ignore
 * import { getGpu } from "../gpu/mod.ts";
 * import { parseTrainConfig } from "./config.ts";
 * import { Trainer } from "./trainer.ts";
 * const gpu = await getGpu();
 * const t = await Trainer.create(gpu, parseTrainConfig({ dataset: "synthetic", hidden: [32], epochs: 2 }));
 * for (let e = 0; e < 2; e++) console.log(await t.runEpoch());
 * ```
 * @module
 */
import { FiligreeError, type Gpu, type Recorder, type Tensor } from "../gpu/mod.ts";
import { type Dataset, loadDataset } from "../data/datasets.ts";
import { GpuDataset } from "../data/loader.ts";
import type { Sequential } from "../nn/mlp.ts";
import { buildModel } from "../nn/models.ts";
import { Tape } from "../nn/tape.ts";
import type { Act } from "../nn/act.ts";
import type { SparseLinear } from "../nn/layers.ts";
import { Optimizer, type OptimizerConfig } from "../kernels/optim.ts";
import { mseLoss, softmaxXent } from "../kernels/loss.ts";
import { accumulateSum, countCorrect } from "../kernels/reduce.ts";
import { dropoutRngUniform, writeDropoutRng } from "../kernels/dropout.ts";
import { modelSpecOf } from "./model_spec.ts";
import type { TrainConfig } from "./config.ts";
import { runDatasetOptions } from "./rundir.ts";
import { learningRate, type LrSchedule, plateauStop } from "./schedule.ts";
import { createAlgorithm, type SparsityAlgorithm } from "../sparse/algorithms.ts";

/** One line of metrics.jsonl. */
export interface EpochMetrics {
  epoch: number;
  step: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  lr: number;
  nnz: number[];
  seconds: {
    total: number;
    forward: number;
    backward: number;
    optimizer: number;
    topology: number;
    eval: number;
  };
  samplesPerSecond: number;
  /**
   * Test loss/accuracy of the network as trained, measured BEFORE this epoch's topology update
   * (SET after every epoch but the last); present only when an update followed the epoch.
   * `testLoss`/`testAccuracy` are measured after it, on the state the checkpoint holds.
   */
  beforeUpdate?: { testLoss: number; testAccuracy: number };
  /** On the last epoch of a run that a stop rule ended: the criterion (one line). */
  stopped?: string;
}

/**
 * Densities of the weight layers of an MLP config (output layer dense unless sparseLayers =
 * "all"); for any model use `modelSpecOf(cfg, data).densities` (src/train/model_spec.ts).
 */
export function weightLayerDensities(cfg: TrainConfig, inputs: number, classes: number): number[] {
  return modelSpecOf({ ...cfg, model: "mlp" }, { features: inputs, classes, shape: [inputs] })
    .densities;
}

interface ParamState {
  opt: Optimizer;
}

/** A training run in memory: data on the GPU, model, optimizers, algorithm. */
export class Trainer {
  epoch = 0;
  step = 0;
  /** Why training ended before `cfg.epochs` (a stop rule's criterion), or null. */
  stopped: string | null = null;
  /** Epoch-mean training loss of every finished epoch (the plateau rule's input). */
  trainLosses: number[] = [];
  readonly tape = new Tape();
  readonly optims: ParamState[];
  readonly lossBuf: Tensor;
  readonly metrics: Tensor; // f32 [trainLossSum, testLossSum]
  readonly counters: Tensor; // u32 [trainCorrect, testCorrect]
  readonly dropoutRng: GPUBuffer;
  readonly schedule: LrSchedule;
  readonly stepsPerEpoch: number;
  readonly algorithm: SparsityAlgorithm;
  #dlogits = new Map<number, Act>();
  #xAct = new Map<string, Act>();

  private constructor(
    readonly gpu: Gpu,
    readonly cfg: TrainConfig,
    readonly dataset: Dataset,
    readonly data: GpuDataset,
    readonly model: Sequential,
  ) {
    const optCfg: OptimizerConfig = cfg.optimizer === "sgd"
      ? {
        kind: "sgd",
        momentum: cfg.momentum,
        nesterov: cfg.nesterov,
        weightDecay: cfg.weightDecay,
      }
      : { kind: cfg.optimizer, weightDecay: cfg.weightDecay };
    this.optims = model.params.map((p) => {
      const opt = new Optimizer(gpu, p.value.size, optCfg, p.name);
      if (p.sparse) p.sparse.perNonzero.push(...opt.state);
      return { opt };
    });
    this.lossBuf = gpu.tensor("f32", [Math.max(cfg.batchSize, 4)], {
      zero: true,
      label: "loss per sample",
    });
    this.metrics = gpu.tensor("f32", [4], { zero: true, label: "metric sums" });
    this.counters = gpu.tensor("u32", [4], { zero: true, label: "correct counts" });
    this.dropoutRng = dropoutRngUniform(gpu);
    this.stepsPerEpoch = data.batchCount("train");
    const total = this.stepsPerEpoch * cfg.epochs;
    this.schedule = cfg.lrSchedule === "cosine"
      ? { kind: "cosine", lr: cfg.lr, totalSteps: total }
      : cfg.lrSchedule === "step"
      ? {
        kind: "step",
        lr: cfg.lr,
        everySteps: cfg.lrStepEvery * this.stepsPerEpoch,
        gamma: cfg.lrStepGamma,
      }
      : { kind: "constant", lr: cfg.lr };
    this.algorithm = createAlgorithm(this, cfg);
  }

  /** Loads the data, builds the model and optimizers. */
  static async create(gpu: Gpu, cfg: TrainConfig): Promise<Trainer> {
    const ds = await loadDataset(cfg.dataset, runDatasetOptions(cfg));
    const data = await GpuDataset.create(gpu, ds, {
      batchSize: cfg.batchSize,
      norm: cfg.inputNorm,
    });
    const model = buildModel(gpu, modelSpecOf(cfg, ds));
    return new Trainer(gpu, cfg, ds, data, model);
  }

  /** Learning rate at the current step. */
  get lr(): number {
    return learningRate(this.schedule, this.step);
  }

  #act(x: Tensor, rows: number, batch: number): Act {
    const key = `${x.label}:${batch}`;
    let a = this.#xAct.get(key);
    if (!a || a.t !== x) {
      a = { t: x, rows, batch };
      this.#xAct.set(key, a);
    }
    return a;
  }

  #dlogitsFor(logits: Act): Act {
    return this.tape.gradFor(logits, () => {
      let a = this.#dlogits.get(logits.batch);
      if (!a) {
        a = {
          t: this.gpu.tensor("f32", logits.t.shape, { zero: true, label: "dlogits" }),
          rows: logits.rows,
          batch: logits.batch,
        };
        this.#dlogits.set(logits.batch, a);
      }
      return a;
    });
  }

  #lossAndMetrics(
    rec: ReturnType<Gpu["recorder"]>,
    logits: Act,
    labels: Tensor,
    dlogits: Act,
    slot: number,
  ): void {
    const classes = logits.rows, batch = logits.batch;
    const xent = this.cfg.loss === "xent";
    if (xent) {
      softmaxXent(rec, {
        logits: logits.t,
        labels,
        loss: this.lossBuf,
        dlogits: dlogits.t,
        classes,
        batch,
        count: { counter: this.counters, index: slot }, // count_correct in the same pass
      });
    } else {
      mseLoss(rec, {
        pred: logits.t,
        labels,
        loss: this.lossBuf,
        dpred: dlogits.t,
        classes,
        batch,
        outputActivation: this.cfg.outputActivation,
      });
    }
    accumulateSum(rec, { x: this.lossBuf, n: batch, acc: this.metrics, index: slot });
    if (xent) return;
    countCorrect(rec, {
      logits: logits.t,
      labels,
      classes,
      batch,
      counter: this.counters,
      index: slot,
    });
  }

  /** Records and submits one training step on batch `index` of the current epoch order. */
  trainStep(
    index: number,
    phase?: (rec: Recorder, p: "forward" | "backward" | "optimizer") => void,
    beforeSubmit?: (rec: Recorder) => void,
  ): void {
    const gpu = this.gpu;
    const rec = gpu.recorder("train step");
    let rngWritten = false;
    const dropoutRng = () => {
      if (!rngWritten) writeDropoutRng(gpu, this.dropoutRng, this.cfg.seed, this.step);
      rngWritten = true;
      return this.dropoutRng;
    };
    const b = this.data.batch(rec, index);
    const x = this.#act(b.x, this.dataset.features, b.size);
    this.tape.reset();
    phase?.(rec, "forward");
    const logits = this.model.forward({ rec, tape: this.tape, dropoutRng }, x);
    const dlogits = this.#dlogitsFor(logits);
    this.#lossAndMetrics(rec, logits, b.labels, dlogits, 0);
    phase?.(rec, "backward");
    this.tape.backward();
    const lr = this.lr;
    phase?.(rec, "optimizer");
    Optimizer.stepMany(
      rec,
      this.model.params.map((p, i) => ({
        opt: this.optims[i].opt,
        param: p.value,
        grad: p.grad,
        lr,
      })),
    );
    beforeSubmit?.(rec);
    rec.submit();
    this.step++;
  }

  /** Reads the accumulated training loss sum and correct count. */
  async readTrainMetrics(samples: number): Promise<{ loss: number; accuracy: number }> {
    const [m, c] = await Promise.all([this.gpu.read(this.metrics), this.gpu.read(this.counters)]);
    return { loss: m[0] / Math.max(1, samples), accuracy: c[0] / Math.max(1, samples) };
  }

  /** Evaluates the test split (one submit) and returns mean loss and accuracy. */
  async evaluate(split: "test" | "train" = "test"): Promise<{ loss: number; accuracy: number }> {
    const gpu = this.gpu;
    const rec = gpu.recorder("eval");
    rec.clear(this.metrics);
    rec.clear(this.counters);
    const n = this.data.batchCount(split);
    for (let i = 0; i < n; i++) {
      const b = split === "test" ? this.data.testBatch(rec, i) : this.data.batch(rec, i);
      const x = this.#act(b.x, this.dataset.features, b.size);
      const logits = this.model.forward({ rec, tape: null }, x);
      const scratch = this.#dlogits.get(logits.batch) ?? this.#dlogitsFor(logits);
      this.#lossAndMetrics(rec, logits, b.labels, scratch, 1);
    }
    rec.submit();
    const [m, c] = await Promise.all([gpu.read(this.metrics), gpu.read(this.counters)]);
    const size = this.data.size(split);
    return { loss: m[1] / size, accuracy: c[1] / size };
  }

  /** Nonzero weights per weight layer. */
  nnz(): number[] {
    return this.model.weightCounts();
  }

  /** Sparse layers of the model. */
  get sparseLayers(): SparseLinear[] {
    return this.model.sparseLayers;
  }

  /** Checks a loss value, throwing a one-line error on divergence. */
  checkFinite(loss: number, where: string): void {
    if (!Number.isFinite(loss)) {
      throw new FiligreeError(
        `training diverged (${where}: loss is ${loss}) at epoch ${
          this.epoch + 1
        }, step ${this.step}; try a lower --lr (now ${this.cfg.lr})`,
      );
    }
  }
}

/** Phases of a profiled step, timed with timestamp queries. */
const PHASES = ["forward", "backward", "optimizer"] as const;

/** Epoch loop, profiling, topology updates. */
export async function runEpoch(
  t: Trainer,
  onProgress?: (done: number, total: number, m: { loss: number; accuracy: number }) => void,
  progressEvery = 50,
): Promise<EpochMetrics> {
  const gpu = t.gpu;
  const tStart = performance.now();
  t.data.epochOrder(t.epoch, t.cfg.seed);
  const rec0 = gpu.recorder("epoch start");
  rec0.clear(t.metrics);
  rec0.clear(t.counters);
  rec0.submit();
  const n = t.stepsPerEpoch;
  const split = await profileStep(t, 0);
  let topoSec = 0;
  let seen = t.data.batchSize;
  for (let i = 1; i < n; i++) {
    t.trainStep(i);
    seen = Math.min(t.data.size("train"), (i + 1) * t.data.batchSize);
    if (t.algorithm.updateAfterStep(t)) topoSec += await timedUpdate(t);
    if (onProgress && (i % progressEvery === 0)) {
      const m = await t.readTrainMetrics(seen);
      t.checkFinite(m.loss, "training loss");
      onProgress(i + 1, n, m);
    }
  }
  const train = await t.readTrainMetrics(t.data.size("train"));
  onProgress?.(n, n, train);
  t.checkFinite(train.loss, "training loss");
  t.trainLosses.push(train.loss);
  let stopped: string | undefined;
  if (t.cfg.plateauTol !== undefined && t.epoch + 1 < t.cfg.epochs) {
    const d = plateauStop(t.trainLosses, t.cfg.plateauTol, t.cfg.plateauPatience);
    if (d.stop) t.stopped = stopped = d.criterion;
  }
  const trainSec = (performance.now() - tStart) / 1000 - topoSec;
  t.epoch++;
  const lr = t.lr;
  let beforeUpdate: EpochMetrics["beforeUpdate"];
  let evalSec = 0;
  if (!t.stopped && t.algorithm.updateAfterEpoch(t)) {
    const tb = performance.now();
    const b = await t.evaluate("test");
    evalSec += (performance.now() - tb) / 1000;
    beforeUpdate = { testLoss: b.loss, testAccuracy: b.accuracy };
    topoSec += await timedUpdate(t);
  }
  const te = performance.now();
  const test = await t.evaluate("test");
  evalSec += (performance.now() - te) / 1000;
  const stepSec = trainSec;
  const tot = split.forward + split.backward + split.optimizer || 1;
  return {
    epoch: t.epoch,
    step: t.step,
    trainLoss: train.loss,
    trainAccuracy: train.accuracy,
    testLoss: test.loss,
    testAccuracy: test.accuracy,
    lr,
    nnz: t.nnz(),
    seconds: {
      total: (performance.now() - tStart) / 1000,
      forward: (stepSec * split.forward) / tot,
      backward: (stepSec * split.backward) / tot,
      optimizer: (stepSec * split.optimizer) / tot,
      topology: topoSec,
      eval: evalSec,
    },
    samplesPerSecond: t.data.size("train") / Math.max(1e-9, trainSec),
    ...(beforeUpdate ? { beforeUpdate } : {}),
    ...(stopped ? { stopped } : {}),
  };
}

async function timedUpdate(t: Trainer): Promise<number> {
  const t0 = performance.now();
  const rec = t.gpu.recorder("topology");
  t.algorithm.update(rec, t);
  rec.submit();
  await t.gpu.sync();
  return (performance.now() - t0) / 1000;
}

/**
 * Runs training step `index` with each phase in its own timed compute pass and returns GPU ms
 * per phase (one readback: used once per epoch to split the epoch time into phases).
 */
export async function profileStep(
  t: Trainer,
  index: number,
): Promise<Record<typeof PHASES[number], number>> {
  const gpu = t.gpu;
  if (!gpu.hasTimestamps) {
    t.trainStep(index);
    return { forward: 1, backward: 1, optimizer: 1 };
  }
  const qs = gpu.device.createQuerySet({ type: "timestamp", count: 2 * PHASES.length });
  const resolve = gpu.device.createBuffer({
    size: 16 * PHASES.length,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const staging = gpu.device.createBuffer({
    size: 16 * PHASES.length,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  t.trainStep(index, (rec, phase) => {
    const i = PHASES.indexOf(phase);
    rec.beginPass({
      querySet: qs,
      beginningOfPassWriteIndex: 2 * i,
      endOfPassWriteIndex: 2 * i + 1,
    });
  }, (rec) => {
    rec.endPass();
    rec.encoder.resolveQuerySet(qs, 0, 2 * PHASES.length, resolve, 0);
    rec.encoder.copyBufferToBuffer(resolve, 0, staging, 0, 16 * PHASES.length);
  });
  await staging.mapAsync(GPUMapMode.READ);
  const ts = new BigUint64Array(staging.getMappedRange().slice(0));
  staging.unmap();
  staging.destroy();
  resolve.destroy();
  qs.destroy();
  const out = { forward: 0, backward: 0, optimizer: 0 };
  PHASES.forEach((p, i) => (out[p] = Math.max(0, Number(ts[2 * i + 1] - ts[2 * i]) / 1e6)));
  return out;
}
