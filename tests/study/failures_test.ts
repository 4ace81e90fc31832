import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { FiligreeError } from "../../src/gpu/errors.ts";
import {
  clearFailure,
  copyFailures,
  failedCells,
  markRetry,
  recordFailure,
  skippedFailures,
} from "../../src/study/failures.ts";
import { processAlive, StoreLock } from "../../src/study/lock.ts";
import { mergeStores } from "../../src/study/merge.ts";
import { StudyStore } from "../../src/study/store.ts";

const fail = (id: string, message = "training diverged") => ({
  cellId: id,
  cellIndex: Number(id.slice(1)),
  factors: JSON.stringify({ lr: 1e6 }),
  message,
});

Deno.test("failures: record, count attempts, retry, clear; a store without the table has none", () => {
  const db = new DatabaseSync(":memory:");
  assert.deepEqual(failedCells(db), []);
  assert.equal(markRetry(db), 0);
  clearFailure(db, "c0"); // no table: a no-op
  recordFailure(db, fail("c3", "line one\n  line two"));
  recordFailure(db, fail("c1"));
  assert.deepEqual(failedCells(db).map((f) => f.cell_id), ["c1", "c3"], "by cell index");
  assert.equal(failedCells(db)[1].message, "line one; line two", "one line");
  assert.deepEqual([...skippedFailures(db)].sort(), ["c1", "c3"]);
  assert.equal(markRetry(db), 2);
  assert.equal(skippedFailures(db).size, 0, "retry: not skipped");
  recordFailure(db, fail("c1", "diverged again"));
  const c1 = failedCells(db)[0];
  assert.deepEqual([c1.status, c1.attempts, c1.message], ["failed", 2, "diverged again"]);
  clearFailure(db, "c3");
  assert.deepEqual(failedCells(db).map((f) => f.cell_id), ["c1"]);
  // Copying into another store drops cells that store has finished.
  const other = new DatabaseSync(":memory:");
  recordFailure(db, fail("c5"));
  assert.equal(copyFailures(other, failedCells(db), new Set(["c5"])), 1);
  assert.deepEqual(failedCells(other).map((f) => [f.cell_id, f.attempts]), [["c1", 2]]);
});

Deno.test("store lock: a second sweep is refused in one line; a dead sweep's lock is taken over", async () => {
  const dir = await Deno.makeTempDir();
  const store = `${dir}/sub/store.sqlite`;
  const a = await StoreLock.acquire(store);
  assert.equal(StoreLock.read(store)?.pid, Deno.pid);
  await assert.rejects(
    () => StoreLock.acquire(store),
    (e) =>
      e instanceof FiligreeError && !e.message.includes("\n") &&
      /in use by another sweep \(pid \d+ on .*\); wait for it to finish, or remove .*store\.sqlite\.lock/
        .test(e.message),
  );
  a.setChildren([12345]);
  assert.deepEqual(StoreLock.read(store)?.children, [12345]);
  a.release();
  a.release();
  assert.equal(StoreLock.read(store), null);
  // A lock left by a process that no longer exists (kill -9), with a child that exited too.
  const gone = new Deno.Command("true").spawn();
  await gone.status;
  // Reaping can trail the exit status by a moment on a loaded machine: poll for up to 5 s.
  for (let i = 0; i < 50 && processAlive(gone.pid); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(processAlive(gone.pid), false);
  const host = Deno.hostname();
  await Deno.writeTextFile(
    StoreLock.pathOf(store),
    JSON.stringify({ pid: gone.pid, host, started: "x", children: [gone.pid] }),
  );
  const logs: string[] = [];
  const b = await StoreLock.acquire(store, { log: (l) => logs.push(l) });
  assert.ok(logs.some((l) => /removed the stale lock of sweep/.test(l)), logs.join("\n"));
  assert.equal(StoreLock.read(store)?.pid, Deno.pid);
  b.release();
  // A dead sweep whose child still runs: wait for it, then refuse if it does not stop.
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  await Deno.writeTextFile(
    StoreLock.pathOf(store),
    JSON.stringify({ pid: gone.pid, host, started: "x", children: [child.pid] }),
  );
  await assert.rejects(
    () => StoreLock.acquire(store, { waitChildrenSec: 0.3 }),
    /child process \d+ of a killed sweep is still running/,
  );
  child.kill("SIGKILL");
  await child.status;
  (await StoreLock.acquire(store, { waitChildrenSec: 5 })).release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("merge: failed cells of the shards are carried into the merged store", async () => {
  const dir = await Deno.makeTempDir();
  const shards = [0, 1].map((i) => `${dir}/store-${i}-of-2.sqlite`);
  for (const [i, p] of shards.entries()) {
    const s = StudyStore.open(p, { study: "m", command: `sweep --shard ${i}/2`, commit: "t" });
    recordFailure(s.db, fail(`c${i}`, `diverged in shard ${i}`));
    s.close();
  }
  const out = `${dir}/merged.sqlite`;
  mergeStores(out, shards);
  mergeStores(out, shards);
  const m = StudyStore.openReadOnly(out);
  assert.deepEqual(
    failedCells(m.db).map((f) => [f.cell_id, f.message, f.attempts]),
    [["c0", "diverged in shard 0", 1], ["c1", "diverged in shard 1", 1]],
  );
  m.close();
  await Deno.remove(dir, { recursive: true });
});
