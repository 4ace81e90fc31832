import assert from "node:assert/strict";
import { FiligreeError } from "../../src/gpu/errors.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import {
  inspectRunDir,
  prepareRunDir,
  readMetrics,
  readRunConfig,
  RUN_FILES,
  runPaths,
} from "../../src/train/rundir.ts";
import { trainRun } from "../../src/train/run.ts";
import { gpuTest } from "../../src/testing/mod.ts";

const base = {
  dataset: "synthetic",
  hidden: [16],
  epochs: 3,
  batchSize: 50,
  syntheticSamples: 400,
  method: "set",
  density: 0.5,
} as const;

/** Runs `f` with console.log captured. */
async function captured<T>(f: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.map(String).join(" "));
  try {
    return { value: await f(), lines };
  } finally {
    console.log = orig;
  }
}

Deno.test("rundir: metrics.jsonl keeps its good leading lines and counts what it discards", async () => {
  const dir = await Deno.makeTempDir();
  const p = runPaths(dir);
  assert.deepEqual(await readMetrics(dir), { metrics: [], discarded: 0 }, "missing file");
  await Deno.writeTextFile(p.metrics, '{"epoch":1}\n{"epoch":2}\n{"epoch":3,"trainLo');
  let m = await readMetrics(dir);
  assert.deepEqual(m.metrics.map((x) => x.epoch), [1, 2]);
  assert.equal(m.discarded, 1);
  assert.equal(m.firstBadLine, 3);
  // A bad line in the middle: everything after it is discarded too (epochs must be 1..k).
  await Deno.writeTextFile(p.metrics, '{"epoch":1}\ngarbage\n{"epoch":3}\n\n');
  m = await readMetrics(dir);
  assert.deepEqual([m.metrics.length, m.discarded, m.firstBadLine], [1, 2, 2]);
  // Out of order epochs are not accepted as good lines.
  await Deno.writeTextFile(p.metrics, '{"epoch":2}\n');
  assert.equal((await readMetrics(dir)).metrics.length, 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("rundir: a new run refuses an existing one unless overwrite, which removes analysis/", async () => {
  const root = await Deno.makeTempDir();
  const dir = `${root}/a/b`;
  assert.equal(await prepareRunDir(dir), "", "created with its parents");
  assert.equal((await Deno.stat(dir)).isDirectory, true);
  // Only config.json (no epoch finished): nothing to lose, replaced.
  await Deno.writeTextFile(`${dir}/${RUN_FILES.config}`, "{}");
  assert.match(await prepareRunDir(dir), /replaced config\.json/);
  await Deno.writeTextFile(`${dir}/${RUN_FILES.config}`, "{}");
  await Deno.writeTextFile(`${dir}/${RUN_FILES.metrics}`, '{"epoch":1}\n');
  await Deno.mkdir(`${dir}/${RUN_FILES.analysis}/plots`, { recursive: true });
  await assert.rejects(
    () => prepareRunDir(dir),
    (e) =>
      e instanceof FiligreeError && /already holds a run.*--resume.*--overwrite/.test(e.message),
  );
  assert.deepEqual((await inspectRunDir(dir)).runFiles, [
    "analysis",
    "config.json",
    "metrics.jsonl",
  ]);
  assert.match(await prepareRunDir(dir, { overwrite: true }), /replaced analysis/);
  assert.deepEqual((await inspectRunDir(dir)).runFiles, [], "stale analysis/ removed");
  // A directory with other files is never used as a run directory.
  await Deno.writeTextFile(`${dir}/notes.txt`, "mine");
  await assert.rejects(() => prepareRunDir(dir, { overwrite: true }), /not empty and not a run/);
  assert.equal(await Deno.readTextFile(`${dir}/notes.txt`), "mine");
  // A path under a file.
  await assert.rejects(() => prepareRunDir(`${dir}/notes.txt/x`), /a parent is a file/);
  await assert.rejects(() => readRunConfig(`${root}/none`), /does not exist/);
  await Deno.remove(root, { recursive: true });
});

gpuTest(
  "trainRun: refuses an existing run, resumes past a damaged last metrics line, says when a run is finished",
  async () => {
    const cfg = parseTrainConfig(base);
    const dir = await Deno.makeTempDir();
    const full = await trainRun(cfg, `${dir}/ref`, { quiet: true });
    await trainRun(cfg, `${dir}/run`, { quiet: true, stopAfterEpochs: 2 });
    // A second fresh run in the same directory is refused and changes nothing.
    const before = await Deno.readTextFile(`${dir}/run/metrics.jsonl`);
    await assert.rejects(() => trainRun(cfg, `${dir}/run`, { quiet: true }), /already holds a run/);
    assert.equal(await Deno.readTextFile(`${dir}/run/metrics.jsonl`), before);
    // Damage: a half-written third line after the two good ones.
    await Deno.writeTextFile(`${dir}/run/metrics.jsonl`, before + '{"epoch":3,"trainLoss":0.');
    const r = await captured(() => trainRun(cfg, `${dir}/run`, { resume: true }));
    assert.ok(
      r.lines.some((l) => /kept epochs 1-2, discarded 1 damaged line from line 3/.test(l)),
      r.lines.join("\n"),
    );
    assert.ok(r.lines.some((l) => /resuming .* at epoch 3\/3/.test(l)), r.lines.join("\n"));
    const strip = (m: typeof full[number]) => ({ ...m, seconds: 0, samplesPerSecond: 0 });
    assert.deepEqual(
      r.value.map(strip),
      full.map(strip),
      "epochs 1-2 kept, epoch 3 as uninterrupted",
    );
    const lines = (await Deno.readTextFile(`${dir}/run/metrics.jsonl`)).trim().split("\n");
    assert.deepEqual(lines.map((l) => JSON.parse(l).epoch), [1, 2, 3]);
    // Resuming a finished run trains nothing and says it is finished.
    const mtime = (await Deno.stat(`${dir}/run/checkpoint.safetensors`)).mtime;
    const f = await captured(() => trainRun(cfg, `${dir}/run`, { resume: true }));
    assert.ok(f.lines.some((l) => /is finished: 3\/3 epochs trained; nothing to do/.test(l)));
    assert.ok(!f.lines.some((l) => /resuming/.test(l)), f.lines.join("\n"));
    assert.equal(f.value.length, 3);
    assert.deepEqual((await Deno.stat(`${dir}/run/checkpoint.safetensors`)).mtime, mtime);
    // --overwrite replaces the run and its stale analysis/.
    await Deno.mkdir(`${dir}/run/analysis`);
    await Deno.writeTextFile(`${dir}/run/analysis/summary.json`, "{}");
    const again = await trainRun(cfg, `${dir}/run`, {
      quiet: true,
      overwrite: true,
      stopAfterEpochs: 1,
    });
    assert.equal(again.length, 1);
    await assert.rejects(() => Deno.stat(`${dir}/run/analysis`), Deno.errors.NotFound);
    await Deno.remove(dir, { recursive: true });
  },
);
