import assert from "node:assert/strict";
import { parseTrainConfig } from "../../src/train/config.ts";
import { trainRun, withSparsityDefaults } from "../../src/train/run.ts";
import {
  keptEpochDir,
  loadCheckpoint,
  readCheckpoint,
  resolveEpochDir,
} from "../../src/train/checkpoint.ts";
import { plateauStop } from "../../src/train/schedule.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { getGpu } from "../../src/gpu/device.ts";
import { gpuTest } from "../../src/testing/mod.ts";

const base = {
  dataset: "synthetic",
  hidden: [32, 16],
  batchSize: 50,
  syntheticSamples: 800,
  lr: 0.05,
  method: "set",
  density: 0.3,
} as const;

Deno.test("plateauStop: the rule on synthetic loss sequences", () => {
  // Geometric decay by 10 % per epoch: relative improvement 0.1 every epoch, never below 0.05.
  const geo = Array.from({ length: 30 }, (_, i) => Math.pow(0.9, i));
  assert.equal(plateauStop(geo, 0.05, 3).stop, false);
  assert.ok(Math.abs(plateauStop(geo, 0.05, 3).improvements[5] - 0.1) < 1e-12);
  // Falls, then flat: stops exactly when `patience` flat epochs have been seen.
  const flat = [1, 0.6, 0.4, 0.399, 0.3985, 0.398];
  assert.equal(plateauStop(flat.slice(0, 4), 0.01, 3).stop, false); // one flat epoch
  assert.equal(plateauStop(flat.slice(0, 5), 0.01, 3).stop, false); // two
  const d = plateauStop(flat, 0.01, 3);
  assert.equal(d.stop, true); // three
  assert.match(d.criterion, /^plateau: .* for 3 epochs .* at epoch 6$/);
  // A rise counts as no improvement; an improvement in between resets the count.
  assert.equal(plateauStop([1, 0.5, 0.6, 0.7, 0.8], 0.01, 3).stop, true);
  assert.equal(plateauStop([1, 0.5, 0.6, 0.4, 0.41, 0.42], 0.01, 3).stop, false);
  // The best earlier epoch is the reference, not the previous epoch: a slow creep of 0.5 %
  // per epoch stays under a 1 % tolerance.
  const creep = [1, 0.5, 0.4975, 0.495, 0.4925];
  assert.equal(plateauStop(creep, 0.01, 3).stop, true);
  assert.equal(plateauStop(creep, 0.004, 3).stop, false);
  // Never before patience + 1 epochs; non-finite losses never stop.
  assert.equal(plateauStop([1, 1, 1], 0.01, 3).stop, false);
  assert.equal(plateauStop([1, 1, 1, NaN], 0.01, 3).stop, false);
});

Deno.test("config: plateauPatience without plateauTol and bad keepEpochs fail with one line", () => {
  assert.throws(() => parseTrainConfig({ plateauPatience: 2 }), /needs "plateauTol"/);
  assert.throws(() => parseTrainConfig({ keepEpochs: [0] }), /bad value for "keepEpochs/);
  assert.throws(() => parseTrainConfig({ keepEpochs: ["last"] }), /bad value for "keepEpochs/);
  assert.deepEqual(parseTrainConfig({ keepEpochs: [2, "final"] }).keepEpochs, [2, "final"]);
});

gpuTest(
  "train: the plateau rule stops a tiny run, records why, and a resume stays stopped",
  async () => {
    const dir = await Deno.makeTempDir();
    // A tolerance of 0.9 with patience 1: epoch 2 cannot improve the loss by 90 %, so the run stops
    // after epoch 2 of at most 6.
    const cfg = parseTrainConfig(withSparsityDefaults({
      ...base,
      epochs: 6,
      plateauTol: 0.9,
      plateauPatience: 1,
    }));
    const h = await trainRun(cfg, dir, { quiet: true });
    assert.equal(h.length, 2);
    assert.match(h[1].stopped ?? "", /^plateau: .* for 1 epochs .* at epoch 2$/);
    assert.equal(h[0].stopped, undefined);
    // SET skips the topology update after the stopping epoch: no "before update" numbers there.
    assert.ok(h[0].beforeUpdate !== undefined, "epoch 1 was followed by a topology update");
    assert.equal(h[1].beforeUpdate, undefined);
    const ck = await readCheckpoint(`${dir}/checkpoint.safetensors`);
    assert.equal(ck.metadata.epoch, "2");
    assert.equal(ck.metadata.stopped, h[1].stopped);
    assert.deepEqual(JSON.parse(ck.metadata.train_losses), h.map((m) => m.trainLoss));
    const again = await trainRun(cfg, dir, { quiet: true, resume: true });
    assert.equal(again.length, 2, "a stopped run is finished: resume trains nothing");
    // Without the rule the same config trains all 6 epochs.
    const dir2 = await Deno.makeTempDir();
    const full = await trainRun(
      parseTrainConfig(withSparsityDefaults({ ...base, epochs: 3 })),
      dir2,
      {
        quiet: true,
      },
    );
    assert.equal(full.length, 3);
    assert.ok(full.every((m) => m.stopped === undefined));
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(dir2, { recursive: true });
  },
);

gpuTest(
  "train --keep-epochs: kept checkpoints round-trip and resolve for ablate --epoch",
  async () => {
    const dir = await Deno.makeTempDir();
    const cfg = parseTrainConfig(withSparsityDefaults({
      ...base,
      epochs: 3,
      keepEpochs: [1, 2, "final"],
    }));
    const h = await trainRun(cfg, dir, { quiet: true });
    for (const e of [1, 2]) {
      const kd = keptEpochDir(dir, e);
      assert.equal(await resolveEpochDir(dir, String(e)), kd);
      const ck = await readCheckpoint(`${kd}/checkpoint.safetensors`);
      assert.equal(ck.metadata.epoch, String(e));
      const saved = JSON.parse(await Deno.readTextFile(`${kd}/config.json`));
      assert.deepEqual(saved.config, JSON.parse(JSON.stringify(cfg)));
      // Loading the kept checkpoint reproduces that epoch's test metrics exactly.
      const t = await Trainer.create(await getGpu(), cfg);
      await loadCheckpoint(t, `${kd}/checkpoint.safetensors`);
      const ev = await t.evaluate("test");
      assert.equal(ev.accuracy, h[e - 1].testAccuracy, `epoch ${e} accuracy`);
      assert.ok(Math.abs(ev.loss - h[e - 1].testLoss) < 1e-6, `epoch ${e} loss`);
    }
    assert.equal(await resolveEpochDir(dir, "final"), dir);
    await assert.rejects(() => resolveEpochDir(dir, "3"), /epoch 3 was not kept \(kept: 1, 2,/);
    await assert.rejects(() => resolveEpochDir(dir, "x"), /--epoch: expected a positive integer/);
    // The CLI: `ablate RUN --epoch 1` writes its analysis beside the kept checkpoint.
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../cli/main.ts", import.meta.url).pathname,
        "ablate",
        dir,
        "--epoch",
        "1",
        "--eval-samples",
        "64",
        "--max-weights",
        "40",
        "--scores",
        "magnitude,random",
        "--no-curves",
        "--no-plots",
        "--quiet",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const summary = JSON.parse(
      await Deno.readTextFile(`${keptEpochDir(dir, 1)}/analysis/summary.json`),
    );
    assert.ok(Number.isFinite(summary.baseline.accuracy));
    await assert.rejects(() => Deno.stat(`${dir}/analysis`), "the final analysis was not written");
    await Deno.remove(dir, { recursive: true });
  },
);
