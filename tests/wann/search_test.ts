import assert from "node:assert/strict";
import { FiligreeError } from "../../src/gpu/errors.ts";
import { parseWannConfig } from "../../src/wann/config.ts";
import { readChampion, runSearch } from "../../src/wann/search.ts";
import { makeSyntheticTask } from "../../src/wann/tasks.ts";
import { gpuTest } from "../../src/testing/mod.ts";
import { packNets } from "../../src/kernels/wann_net.ts";
import { wannEvalRef } from "../../src/kernels/wann_ref.ts";

const cfg = (over: Record<string, unknown> = {}) =>
  parseWannConfig({
    task: "synthetic",
    population: 24,
    generations: 12,
    samplesPerEval: 96,
    tournament: 4,
    probInitEnable: 0.3,
    testEvery: 4,
    seed: 7,
    fitness: "acc",
    ...over,
  });
const task = makeSyntheticTask({ features: 8, classes: 3, train: 400, test: 200, seed: 2 });

async function tmp() {
  return await Deno.makeTempDir({ prefix: "wann_test_" });
}

gpuTest("wann search: same seed, same run; a different seed differs", async (gpu) => {
  const [a, b, c] = [await tmp(), await tmp(), await tmp()];
  const sa = await runSearch(cfg(), task, a, { gpu, quiet: true });
  const sb = await runSearch(cfg(), task, b, { gpu, quiet: true });
  const sc = await runSearch(cfg({ seed: 8 }), task, c, { gpu, quiet: true });
  const strip = (h: typeof sa.history) => JSON.stringify(h.map((r) => ({ ...r, seconds: 0 })));
  assert.equal(strip(sa.history), strip(sb.history));
  assert.deepEqual(sa.population, sb.population);
  assert.notEqual(strip(sa.history), strip(sc.history));
  assert.equal(sa.history.length, 12);
  // The champion file of the last generation loads and re-evaluates to its recorded test accuracy.
  const champ = await readChampion(`${a}/champions/gen-00012.json`);
  const idx = Array.from({ length: task.test.n }, (_, i) => i);
  const x = new Float64Array(8 * task.test.n);
  for (const s of idx) for (let f = 0; f < 8; f++) x[f * task.test.n + s] = task.test.x[s * 8 + f];
  const ref = wannEvalRef(packNets([champ.net]), x, task.test.labels, champ.weights);
  const last = sa.history[11].test!;
  for (let w = 0; w < 6; w++) {
    assert.ok(Math.abs(ref.stats[w * 2 + 1] - last.acc[w]) <= 2 / task.test.n, `w ${w}`);
  }
  // The search learns: the champion beats chance (1/3) clearly by the end.
  assert.ok(last.bestAcc > 0.45, `best single-weight test accuracy ${last.bestAcc} (chance 0.33)`);
  assert.ok(JSON.parse(await Deno.readTextFile(`${a}/front.json`)).members.length >= 1);
});

gpuTest(
  "wann search: interrupted and resumed equals uninterrupted; config change is refused",
  async (gpu) => {
    const [a, b] = [await tmp(), await tmp()];
    const whole = await runSearch(cfg(), task, a, { gpu, quiet: true });
    const part = await runSearch(cfg({ checkpointEvery: 5 }), task, b, {
      gpu,
      quiet: true,
      stopAfter: 7,
    });
    assert.equal(part.generation, 7);
    const resumed = await runSearch(cfg(), task, b, { gpu, quiet: true });
    const strip = (h: typeof whole.history) => JSON.stringify(h.map((r) => ({ ...r, seconds: 0 })));
    assert.equal(strip(resumed.history), strip(whole.history));
    assert.deepEqual(resumed.population, whole.population);
    assert.deepEqual(resumed.innov.toJSON(), whole.innov.toJSON());
    let msg = "";
    await runSearch(cfg({ seed: 9 }), task, b, { gpu, quiet: true }).catch((e) => {
      assert.ok(e instanceof FiligreeError);
      msg = e.message;
    });
    assert.ok(msg.includes("different configuration"), msg);
  },
);
