import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type CellRecord, storeHistory, StudyStore } from "../../src/study/store.ts";
import { mergeStores } from "../../src/study/merge.ts";
import { parseStudySpec, type StudyCell } from "../../src/study/spec.ts";
import { parseShard, shardCells } from "../../src/study/shard.ts";
import { STORE_SCHEMA_VERSION } from "../../src/study/schema.ts";
import { Rng } from "../../src/testing/mod.ts";

/** A made-up record for a cell, deterministic in (cell, salt). */
function fakeRecord(study: string, c: StudyCell, rng: Rng, epochs = 3): CellRecord {
  return {
    cell: {
      cell_id: c.id,
      study,
      cell_index: c.index,
      factors: JSON.stringify(c.factors),
      config: JSON.stringify(c.config),
      run_dir: `runs/x/${c.id}`,
      test_accuracy: rng.next(),
      test_loss: rng.next(),
      train_accuracy: rng.next(),
      train_loss: rng.next(),
      epochs,
      train_seconds: 1 + rng.next(),
      step_ms: c.index % 2 ? null : rng.next(),
      nnz: 100 + c.index,
      dense_weights: 1000,
      param_bytes: 900,
      analysis: c.index % 3 ? JSON.stringify({ helpful: rng.next() }) : null,
      analysis_seconds: c.index % 3 ? 0.5 : null,
      adapter: "fake",
      filigree_version: "0.1.0",
      finished_at: new Date(1e12 + c.index).toISOString(),
    },
    epochs: Array.from({ length: epochs }, (_, e) => ({
      cell_id: c.id,
      epoch: e + 1,
      train_loss: rng.next(),
      train_accuracy: rng.next(),
      test_loss: rng.next(),
      test_accuracy: rng.next(),
      seconds: JSON.stringify({ total: 1 }),
      nnz: JSON.stringify([1, 2]),
    })),
  };
}

async function spec() {
  return await parseStudySpec({
    name: "st",
    factors: { activation: ["relu", "tanh", "elu"], seed: [0, 1, 2, 3] },
    train: { dataset: "synthetic", hidden: [8] },
    analysis: false,
  });
}

/** Every row of both tables, as a comparable value. */
function dump(path: string): unknown {
  const db = new DatabaseSync(path, { readOnly: true });
  const r = {
    cells: db.prepare("select * from cells order by cell_id").all(),
    epochs: db.prepare("select * from epochs order by cell_id, epoch").all(),
  };
  db.close();
  return JSON.parse(JSON.stringify(r));
}

Deno.test("store: a cell is recorded once, with its epochs, in one transaction", async () => {
  const dir = await Deno.makeTempDir();
  const s = await spec();
  const rng = new Rng(7);
  const path = `${dir}/sub/store.sqlite`;
  const store = StudyStore.open(path, { study: "st", spec: "{}", command: "cmd", commit: "abc" });
  const { history: h0, ...rest } = store.meta();
  assert.deepEqual(rest, {
    schema: STORE_SCHEMA_VERSION,
    study: "st",
    spec: "{}",
    command: "cmd",
    commit: "abc",
  });
  assert.deepEqual(
    storeHistory({ history: h0 }).map((h) => [h.commit, h.command, h.cellsBefore]),
    [["abc", "cmd", 0]],
  );
  assert.equal(store.db.prepare("pragma journal_mode").get()?.journal_mode, "wal");
  const r0 = fakeRecord("st", s.cells[0], rng);
  assert.equal(store.isDone(s.cells[0].id), false);
  assert.equal(store.recordCell(r0), true);
  assert.equal(store.isDone(s.cells[0].id), true);
  assert.equal(store.epochs(s.cells[0].id).length, 3);
  // Recording it again (e.g. another process finished it too) changes nothing.
  const again = fakeRecord("st", s.cells[0], new Rng(8), 5);
  again.cell.finished_at = "2030-01-01T00:00:00.000Z";
  assert.equal(store.recordCell(again), false);
  assert.equal(store.cell(s.cells[0].id)?.finished_at, r0.cell.finished_at);
  assert.equal(store.cell(s.cells[0].id)?.test_accuracy, r0.cell.test_accuracy);
  assert.equal(store.epochs(s.cells[0].id).length, 3);
  // A failing record leaves nothing behind (duplicate epoch row -> primary key violation).
  const broken = fakeRecord("st", s.cells[1], rng);
  broken.epochs.push({ ...broken.epochs[0] });
  assert.throws(() => store.recordCell(broken), /UNIQUE|constraint/i);
  assert.equal(store.isDone(s.cells[1].id), false);
  assert.equal(store.epochs(s.cells[1].id).length, 0);
  assert.equal(store.db.isTransaction, false);
  store.close();
  // Reopening keeps the cells, updates command/commit, refuses another study.
  const re = StudyStore.open(path, { study: "st", command: "cmd2" });
  assert.equal(re.meta().command, "cmd2");
  assert.equal(re.meta().commit, "abc");
  assert.deepEqual([...re.doneIds()], [s.cells[0].id]);
  // Each chunk is kept: which code wrote the cells finished after it began.
  assert.deepEqual(
    storeHistory(re.meta()).map((h) => [h.commit, h.command, h.cellsBefore]),
    [["abc", "cmd", 0], ["unknown", "cmd2", 1]],
  );
  re.close();
  // Reopening with the same code and command (a sweep's worker) is the same chunk.
  const again2 = StudyStore.open(path, { study: "st", command: "cmd2" });
  assert.equal(storeHistory(again2.meta()).length, 2);
  again2.close();
  assert.throws(
    () => StudyStore.open(path, { study: "other" }),
    /store of study "st", not "other"/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("merge: shard stores merge into the unsharded cell set; merging twice changes nothing", async () => {
  const dir = await Deno.makeTempDir();
  const s = await spec();
  const rec = (c: StudyCell) => fakeRecord("st", c, new Rng(1000 + c.index));
  const whole = StudyStore.open(`${dir}/whole.sqlite`, { study: "st" });
  for (const c of s.cells) whole.recordCell(rec(c));
  whole.close();
  for (const n of [1, 2, 3, 5]) {
    const inputs: string[] = [];
    for (let i = 0; i < n; i++) {
      const p = `${dir}/n${n}-s${i}.sqlite`;
      const st = StudyStore.open(p, { study: "st", spec: "S", command: "c", commit: "h" });
      for (const c of shardCells(s.cells, parseShard(`${i}/${n}`))) st.recordCell(rec(c));
      st.close();
      inputs.push(p);
    }
    const out = `${dir}/merged-${n}.sqlite`;
    const r1 = mergeStores(out, inputs);
    assert.deepEqual(r1, { study: "st", added: s.cells.length, present: 0, total: s.cells.length });
    assert.deepEqual(dump(out), dump(`${dir}/whole.sqlite`), `N=${n}: merged != unsharded`);
    const before = dump(out);
    const r2 = mergeStores(out, inputs);
    assert.deepEqual(r2, { study: "st", added: 0, present: s.cells.length, total: s.cells.length });
    assert.deepEqual(dump(out), before, `N=${n}: second merge changed the store`);
    const m = StudyStore.openReadOnly(out);
    assert.equal(m.meta().spec, "S");
    m.close();
  }
  // Partial overlap: a store holding some cells already gets only the missing ones.
  const part = `${dir}/part.sqlite`;
  const ps = StudyStore.open(part, { study: "st" });
  ps.recordCell(rec(s.cells[4]));
  ps.close();
  assert.deepEqual(mergeStores(part, [`${dir}/whole.sqlite`]), {
    study: "st",
    added: s.cells.length - 1,
    present: 1,
    total: s.cells.length,
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("merge: refuses other studies and schemas with one line, writing nothing", async () => {
  const dir = await Deno.makeTempDir();
  const s = await spec();
  const a = StudyStore.open(`${dir}/a.sqlite`, { study: "st" });
  a.recordCell(fakeRecord("st", s.cells[0], new Rng(1)));
  a.close();
  const b = StudyStore.open(`${dir}/b.sqlite`, { study: "other" });
  b.recordCell(fakeRecord("other", s.cells[1], new Rng(2)));
  b.close();
  const one = (re: RegExp) => (e: Error) => {
    assert.match(e.message, re);
    assert.ok(!e.message.includes("\n"));
    return true;
  };
  assert.throws(
    () => mergeStores(`${dir}/out.sqlite`, [`${dir}/a.sqlite`, `${dir}/b.sqlite`]),
    one(/b\.sqlite: store of study "other", not "st"/),
  );
  assert.throws(() => Deno.statSync(`${dir}/out.sqlite`), Deno.errors.NotFound);
  assert.throws(
    () => mergeStores(`${dir}/a.sqlite`, [`${dir}/b.sqlite`]),
    one(/a\.sqlite: store of study "st", not "other"/),
  );
  const db = new DatabaseSync(`${dir}/b.sqlite`);
  db.exec("update meta set value = 'st' where key = 'study'");
  db.exec("update meta set value = 'filigree-store-0' where key = 'schema'");
  db.close();
  assert.throws(
    () => mergeStores(`${dir}/a.sqlite`, [`${dir}/b.sqlite`]),
    one(/store schema "filigree-store-0"/),
  );
  await Deno.writeTextFile(`${dir}/junk.sqlite`, "");
  assert.throws(
    () => mergeStores(`${dir}/a.sqlite`, [`${dir}/junk.sqlite`]),
    one(/not a Filigree study store/),
  );
  assert.throws(
    () => mergeStores(`${dir}/a.sqlite`, [`${dir}/missing.sqlite`]),
    one(/no such store/),
  );
  const a2 = StudyStore.openReadOnly(`${dir}/a.sqlite`);
  assert.equal(a2.cells().length, 1);
  a2.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("store: a version-1 store stays readable and is migrated in place when opened for writing", async () => {
  const { DatabaseSync } = await import("node:sqlite");
  const { StudyStore } = await import("../../src/study/store.ts");
  const dir = await Deno.makeTempDir();
  const path = `${dir}/v1.sqlite`;
  // The version-1 layout: cells without `stopped`, no `analyses` table.
  const db = new DatabaseSync(path);
  db.exec(`create table meta (key text primary key, value text not null);
    create table cells (cell_id text primary key, study text not null, cell_index integer not null,
      factors text not null, config text not null, run_dir text not null, test_accuracy real not null,
      test_loss real not null, train_accuracy real not null, train_loss real not null,
      epochs integer not null, train_seconds real not null, step_ms real, nnz integer not null,
      dense_weights integer not null, param_bytes integer not null, analysis text,
      analysis_seconds real, adapter text not null, filigree_version text not null,
      finished_at text not null);
    create table epochs (cell_id text not null, epoch integer not null, train_loss real,
      train_accuracy real, test_loss real, test_accuracy real, seconds text, nnz text,
      primary key (cell_id, epoch));
    insert into meta values ('schema', 'filigree-store-1'), ('study', 'old');
    insert into cells values ('aaaaaaaaaaaaaaaa', 'old', 0, '{"seed":0}', '{}', 'r', 0.9, 0.1, 0.9,
      0.1, 4, 1, 1, 10, 100, 80, '{"x":1}', 2, 'a', '0.1.0', 't');`);
  db.close();
  const ro = StudyStore.openReadOnly(path);
  assert.equal(ro.meta().schema, "filigree-store-1");
  assert.deepEqual(ro.analyses("aaaaaaaaaaaaaaaa").map((a) => [a.epoch, a.final, a.analysis]), [
    [4, 1, '{"x":1}'],
  ]);
  ro.close();
  const rw = StudyStore.open(path, { study: "old" });
  assert.equal(rw.meta().schema, "filigree-store-2");
  assert.equal(rw.cell("aaaaaaaaaaaaaaaa")?.stopped, null);
  const rows = rw.db.prepare("select epoch, final from analyses").all();
  assert.deepEqual(rows.map((r) => [r.epoch, r.final]), [[4, 1]]);
  rw.close();
  await Deno.remove(dir, { recursive: true });
});
