import assert from "node:assert/strict";
import { parseStudySpec, type StudyCell, type StudySpec } from "../../src/study/spec.ts";
import { type CellRecord, StudyStore } from "../../src/study/store.ts";
import { reuseCells, reuseLog } from "../../src/study/reuse.ts";
import { planStudy } from "../../src/study/sweep.ts";
import { parseShard, shardCells } from "../../src/study/shard.ts";
import { cellRow } from "./_fixtures.ts";

const TRAIN = { dataset: "synthetic", hidden: [8], epochs: 2 };

/** A finished cell of `study` with two epochs and an analysis per epoch. */
function record(study: string, c: StudyCell): CellRecord {
  const analysis = (e: number) => JSON.stringify({ helpful: c.index / 10 + e });
  return {
    cell: cellRow({
      cell_id: c.id,
      study,
      cell_index: c.index,
      factors: JSON.stringify(c.factors),
      config: JSON.stringify(c.config),
      analysis: analysis(2),
      run_dir: `runs/${study}/${c.id}`,
      test_accuracy: 0.5 + c.index / 100,
      finished_at: `2026-01-01T00:00:${String(c.index).padStart(2, "0")}Z`,
    }),
    epochs: [1, 2].map((epoch) => ({
      cell_id: c.id,
      epoch,
      train_loss: 1 / epoch,
      train_accuracy: 0.5,
      test_loss: 1 / epoch,
      test_accuracy: 0.5,
      seconds: JSON.stringify({ total: 1 }),
      nnz: JSON.stringify([3]),
    })),
    analyses: [1, 2].map((epoch) => ({
      cell_id: c.id,
      epoch,
      final: epoch === 2 ? 1 : 0,
      analysis: analysis(epoch),
      analysis_seconds: 1,
    })),
  };
}

async function designs(): Promise<{ a: StudySpec; b: StudySpec }> {
  // B shares the relu cells of seeds 1 and 2 with A (inputNorm "unit" is the default, so its
  // unit-input cells are A's), lists its factors in another order and adds a level A lacks.
  const a = await parseStudySpec({
    factors: { seed: [0, 1, 2], activation: ["relu", "tanh"] },
    train: TRAIN,
  }, "a");
  const b = await parseStudySpec({
    factors: { activation: ["relu"], inputNorm: ["unit", "standard"], seed: [1, 2, 3] },
    train: TRAIN,
  }, "b");
  return { a, b };
}

function storeOf(dir: string, spec: StudySpec): string {
  const path = `${dir}/${spec.name}.sqlite`;
  const s = StudyStore.open(path, { study: spec.name, commit: "abc1234def" });
  for (const c of spec.cells) s.recordCell(record(spec.name, c));
  s.close();
  return path;
}

Deno.test("reuse: copies exactly the shared cells, rewriting only study, index and factors", async () => {
  const dir = await Deno.makeTempDir();
  const { a, b } = await designs();
  const from = storeOf(dir, a);
  const shared = b.cells.filter((c) => a.cells.some((x) => x.id === c.id));
  assert.equal(shared.length, 2, "the designs share the relu/unit cells of seeds 1 and 2");
  const to = `${dir}/b.sqlite`;
  const r = reuseCells(b, to, [from]);
  assert.deepEqual(r, { added: 2, bySource: [{ from, study: "a", added: 2 }] });

  const src = StudyStore.openReadOnly(from);
  const dst = StudyStore.openReadOnly(to);
  const got = dst.cells();
  assert.deepEqual(got.map((c) => c.cell_id).sort(), shared.map((c) => c.id).sort());
  for (const c of shared) {
    const row = dst.cell(c.id)!;
    const orig = src.cell(c.id)!;
    assert.equal(row.study, "b");
    assert.equal(row.cell_index, c.index);
    assert.deepEqual(JSON.parse(row.factors), c.factors);
    assert.ok("inputNorm" in JSON.parse(row.factors) && !("inputNorm" in JSON.parse(orig.factors)));
    // Everything else is the source's, byte for byte.
    for (const k of ["config", "run_dir", "test_accuracy", "analysis", "finished_at"] as const) {
      assert.deepEqual(row[k], orig[k], k);
    }
    assert.deepEqual(dst.epochs(c.id), src.epochs(c.id));
    assert.deepEqual(dst.analyses(c.id), src.analyses(c.id));
  }
  const log = reuseLog(dst.meta());
  assert.equal(log.length, 1);
  assert.deepEqual(
    { from: log[0].from, study: log[0].study, commit: log[0].commit, cells: log[0].cells },
    { from, study: "a", commit: "abc1234def", cells: 2 },
  );
  src.close();
  dst.close();

  // Idempotent: nothing added, no new log entry.
  assert.equal(reuseCells(b, to, [from]).added, 0);
  const again = StudyStore.openReadOnly(to);
  assert.equal(reuseLog(again.meta()).length, 1);
  again.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("reuse: a shard copies only its own cells; the first source holding a cell wins", async () => {
  const dir = await Deno.makeTempDir();
  const { a, b } = await designs();
  const from = storeOf(dir, a);
  // A second source: b's own cells recorded as another study "b-old" (all six).
  const other = `${dir}/b-old.sqlite`;
  const o = StudyStore.open(other, { study: "b-old" });
  for (const c of b.cells) o.recordCell(record("b-old", c));
  o.close();
  const shard = parseShard("1/2");
  const mine = new Set(shardCells(b.cells, shard).map((c) => c.id));
  const r = reuseCells(b, `${dir}/b-1.sqlite`, [from, other], shard);
  const shared = b.cells.filter((c) => mine.has(c.id) && a.cells.some((x) => x.id === c.id));
  assert.deepEqual(r.bySource.map((s) => s.added), [shared.length, mine.size - shared.length]);
  const dst = StudyStore.openReadOnly(`${dir}/b-1.sqlite`);
  assert.deepEqual(new Set(dst.cells().map((c) => c.cell_id)), mine);
  for (const c of shared) assert.equal(dst.cell(c.id)!.run_dir, `runs/a/${c.id}`);
  dst.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("reuse: the plan counts reusable cells apart from pending ones", async () => {
  const dir = await Deno.makeTempDir();
  const { a, b } = await designs();
  const from = storeOf(dir, a);
  const plan = await planStudy(b, { storePath: `${dir}/b.sqlite`, reuse: [from] });
  const shared = new Set(
    b.cells.filter((c) => a.cells.some((x) => x.id === c.id)).map((c) => c.id),
  );
  assert.deepEqual(new Set(plan.reusable.map((c) => c.id)), shared);
  assert.equal(plan.pending.length, b.cells.length - shared.size);
  assert.ok(plan.pending.every((c) => !shared.has(c.id)));
  // Timings come from the reuse store (the target has no cells yet).
  assert.match(plan.estimate.how, /^6 cells in the stores trained at/);
  // After the copy the same cells are done, not reusable.
  reuseCells(b, `${dir}/b.sqlite`, [from]);
  const after = await planStudy(b, { storePath: `${dir}/b.sqlite`, reuse: [from] });
  assert.equal(after.reusable.length, 0);
  assert.equal(after.pending.length, plan.pending.length);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("reuse: refuses the target itself, a missing store and another study's target", async () => {
  const dir = await Deno.makeTempDir();
  const { a, b } = await designs();
  const from = storeOf(dir, a);
  const oneLine = (re: RegExp) => (e: Error) => {
    assert.match(e.message, re);
    assert.ok(!e.message.includes("\n"));
    return true;
  };
  assert.throws(() => reuseCells(a, from, [from]), oneLine(/that is the target store itself/));
  assert.throws(
    () => reuseCells(b, `${dir}/b.sqlite`, [`${dir}/nope.sqlite`]),
    oneLine(/no such store/),
  );
  // A target that belongs to another study is refused by the store, before anything is copied.
  const c = StudyStore.open(`${dir}/c.sqlite`, { study: "c" });
  c.close();
  assert.throws(
    () => reuseCells(b, `${dir}/c.sqlite`, [from]),
    oneLine(/store of study "c", not "b"/),
  );
  const after = StudyStore.openReadOnly(`${dir}/c.sqlite`);
  assert.equal(after.cells().length, 0);
  after.close();
  await Deno.remove(dir, { recursive: true });
});
