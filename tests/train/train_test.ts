import assert from "node:assert/strict";
import { trainRun, withSparsityDefaults } from "../../cli/train.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { readCheckpoint } from "../../src/train/checkpoint.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { gpuTest } from "../../src/testing/mod.ts";

const base = {
  dataset: "synthetic",
  hidden: [48, 24],
  epochs: 3,
  batchSize: 50,
  syntheticSamples: 1200,
  lr: 0.05,
} as const;

gpuTest(
  "train: every method learns the synthetic task; SET/RigL keep nnz, pruning reaches its density",
  async () => {
    for (const method of ["dense", "static", "set", "rigl", "prune"] as const) {
      const dir = await Deno.makeTempDir();
      const cfg = parseTrainConfig(
        withSparsityDefaults({
          ...base,
          method,
          density: method === "dense" ? undefined : 0.3,
          updateInterval: 10,
          dropout: method === "set" ? 0.1 : 0,
          norm: method === "static" ? "batch" : method === "rigl" ? "layer" : "none",
        }),
      );
      const h = await trainRun(cfg, dir, { quiet: true });
      const last = h[h.length - 1];
      assert.ok(last.testAccuracy > 0.8, `${method}: test accuracy ${last.testAccuracy}`);
      if (method === "set" || method === "rigl" || method === "static") {
        assert.deepEqual(last.nnz, h[0].nnz, `${method} nnz changed`);
      }
      if (method === "prune") {
        const dense = 64 * 48; // first layer: 64 synthetic features x 48
        assert.ok(
          Math.abs(last.nnz[0] / dense - 0.3) < 0.02,
          `prune density ${last.nnz[0] / dense}`,
        );
      }
      const lines = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n");
      assert.equal(lines.length, 3);
      const ck = await readCheckpoint(`${dir}/checkpoint.safetensors`);
      assert.equal(ck.metadata.epoch, "3");
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest(
  "train: an interrupted run resumed from its checkpoint ends exactly like an uninterrupted one",
  async () => {
    for (const method of ["set", "rigl"] as const) {
      const cfg = parseTrainConfig({
        ...base,
        method,
        density: 0.3,
        updateInterval: 7,
        dropout: 0.1,
        optimizer: method === "rigl" ? "adam" : "sgd",
        lr: method === "rigl" ? 0.01 : 0.05,
      });
      const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
      const full = await trainRun(cfg, a, { quiet: true });
      await trainRun(cfg, b, { quiet: true, stopAfterEpochs: 1 });
      const resumed = await trainRun(cfg, b, { quiet: true, resume: true });
      const strip = (m: typeof full[number]) => ({ ...m, seconds: 0, samplesPerSecond: 0 });
      assert.deepEqual(resumed.map(strip), full.map(strip), `${method}: resumed run differs`);
      await Deno.remove(a, { recursive: true });
      await Deno.remove(b, { recursive: true });
    }
  },
);

Deno.test("config: bad keys and values give one-line errors naming the key", () => {
  assert.throws(() => parseTrainConfig({ methd: "set" }), /unknown config key "methd"/);
  assert.throws(
    () => parseTrainConfig({ method: "sett" }),
    /bad value for "method": allowed values are dense, static, set, rigl, prune/,
  );
  assert.throws(() => parseTrainConfig({ density: 2 }), /bad value for "density"/);
  assert.throws(
    () => parseTrainConfig({ density: 0.1, epsilon: 20 }),
    /either "density" or "epsilon"/,
  );
});

gpuTest(
  "train: a dropout step draws its mask from (seed, step): the same batch twice gives two losses",
  async (gpu) => {
    // lr ~0: the weights do not move, so two steps on one batch differ only by their masks.
    const losses = async (dropout: number) => {
      const cfg = parseTrainConfig({ ...base, method: "dense", dropout, lr: 1e-9, momentum: 0 });
      const t = await Trainer.create(gpu, cfg);
      t.data.epochOrder(0, cfg.seed);
      t.trainStep(0);
      const first = (await t.readTrainMetrics(1)).loss; // summed over the batch
      t.trainStep(0);
      return [first, (await t.readTrainMetrics(1)).loss - first];
    };
    const [a, b] = await losses(0);
    assert.ok(Math.abs(a - b) <= 1e-4 * Math.abs(a), `no dropout: ${a} vs ${b}`);
    const [c, d] = await losses(0.5);
    assert.ok(Math.abs(c - d) > 1e-3 * Math.abs(c), `dropout 0.5, steps 0 and 1: ${c} vs ${d}`);
  },
);
