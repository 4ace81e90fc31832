/**
 * `sweep` as a user runs it (child processes, store lock): a diverging cell is recorded as
 * failed and the study goes on; reruns skip it unless --retry-failed; the report lists it;
 * --quiet prints no per-cell lines; a second sweep on the same store is refused; killing the
 * parent stops its child.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { failedCells } from "../../src/study/failures.ts";
import { processAlive, StoreLock } from "../../src/study/lock.ts";
import { gpuTest } from "../../src/testing/mod.ts";

const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;

const spec = (name: string, lr: string, epochs: number, samples: number) => `
name: ${name}
factors:
  lr: ${lr}
train:
  dataset: synthetic
  syntheticSamples: ${samples}
  method: set
  epsilon: 10
  hidden: [16]
  epochs: ${epochs}
  batchSize: 64
analysis:
  evalSamples: 50
  maxWeights: 100
  plots: false
  curves: false
`;

function sweepCmd(args: string[], stdio: "piped" | "null" = "piped") {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "sweep", ...args],
    stdout: stdio,
    stderr: stdio,
    env: { NO_COLOR: "1" },
  });
}

async function sweep(args: string[]) {
  const r = await sweepCmd(args).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

function storeState(path: string) {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const cells = db.prepare("select cell_index from cells order by cell_index").all()
      .map((r) => Number(r.cell_index));
    return { cells, failures: failedCells(db) };
  } finally {
    db.close();
  }
}

gpuTest(
  "sweep CLI: a diverging cell fails alone, is skipped, retried on request and reported",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/bad.yaml`, spec("badcell", "[1000000, 0.05]", 1, 600));
      const store = `${dir}/store.sqlite`;
      const common = [`${dir}/bad.yaml`, "--store", store, "--runs", `${dir}/cells`];

      // --quiet: no per-cell lines (training, analysis); only the line that says cells failed.
      let r = await sweep([...common, "--quiet"]);
      assert.equal(r.code, 0, r.stderr);
      const out = r.stdout.trim().split("\n").filter(Boolean);
      assert.equal(out.length, 1, `quiet printed:\n${r.stdout}`);
      assert.deepEqual(
        storeState(store).failures.map((f) => f.cell_index),
        [0],
        JSON.stringify(storeState(store).failures),
      );
      assert.match(
        out[0],
        /every cell done in .*; 1 failed: listed by `report`, rerun them with --retry-failed/,
      );
      let s = storeState(store);
      assert.deepEqual(s.cells, [1], "the good cell is recorded");
      assert.deepEqual(s.failures.map((f) => [f.cell_index, f.status, f.attempts]), [
        [0, "failed", 1],
      ]);
      assert.match(s.failures[0].message, /training diverged/);

      // A rerun skips the failed cell (trains nothing) and says so.
      r = await sweep(common);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /cell 0 .*lr=1000000: skipped, it failed in an earlier sweep: training diverged/,
      );
      assert.doesNotMatch(r.stdout, /^\[\d+\/\d+\] .*: training$/m, "nothing trained");
      assert.equal(storeState(store).failures[0].attempts, 1);

      // --retry-failed runs it again (it fails again: a second attempt is counted).
      r = await sweep([...common, "--retry-failed"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /retrying 1 failed cells/);
      assert.match(r.stdout, /cell 0 .*: FAILED: training diverged/);
      s = storeState(store);
      assert.deepEqual(s.cells, [1]);
      assert.deepEqual(s.failures.map((f) => [f.status, f.attempts]), [["failed", 2]]);

      // The report lists the failed cell; an output directory under a file is one line, exit 1.
      const rep = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "report", store, "--out", `${dir}/report`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(rep.code, 0, new TextDecoder().decode(rep.stderr));
      const md = await Deno.readTextFile(`${dir}/report/report.md`);
      assert.match(md, /## Failed cells \(1\)/);
      assert.match(md, /cell 0 \(lr=1000000\): training diverged.*\(failed 2 times\)/);
      const bad = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "report", store, "--out", `${dir}/bad.yaml/report`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(bad.stderr).trim().split("\n");
      assert.equal(bad.code, 1);
      assert.equal(err.length, 1, err.join("\n"));
      assert.match(err[0], /^filigree: error: /);

      // A second sweep on a store in use is refused in one line.
      await Deno.writeTextFile(
        StoreLock.pathOf(store),
        JSON.stringify({ pid: Deno.pid, host: Deno.hostname(), started: "now", children: [] }),
      );
      r = await sweep(common);
      assert.equal(r.code, 1);
      assert.deepEqual(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /^filigree: error: .*store\.sqlite is in use by another sweep \(pid/);
      await Deno.remove(StoreLock.pathOf(store));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest(
  "sweep CLI: killing the parent stops its child (no orphan races the next sweep)",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/long.yaml`, spec("long", "[0.05]", 40, 3000));
      const store = `${dir}/store.sqlite`;
      const parent = sweepCmd(
        [`${dir}/long.yaml`, "--store", store, "--runs", `${dir}/cells`, "--quiet"],
        "null",
      ).spawn();
      let child = 0;
      for (let i = 0; i < 300 && !child; i++) {
        await new Promise((r) => setTimeout(r, 200));
        child = StoreLock.read(store)?.children[0] ?? 0;
      }
      assert.ok(child > 0, "the parent never started a child");
      assert.equal(StoreLock.read(store)?.pid, parent.pid);
      parent.kill("SIGKILL");
      await parent.status;
      let alive = true;
      // The child notices the closed pipe between GPU waits; a loaded machine can delay it.
      for (let i = 0; i < 600 && alive; i++) {
        await new Promise((r) => setTimeout(r, 100));
        alive = processAlive(child);
      }
      assert.equal(alive, false, `child ${child} outlived its parent`);
      // The next sweep takes the stale lock over without waiting.
      const logs: string[] = [];
      const lock = await StoreLock.acquire(store, { log: (l) => logs.push(l), waitChildrenSec: 1 });
      lock.release();
      assert.ok(logs.some((l) => /removed the stale lock/.test(l)), logs.join("\n"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
