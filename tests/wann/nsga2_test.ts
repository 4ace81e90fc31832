import assert from "node:assert/strict";
import { crowdingDistance, dominates, nsgaRank, paretoFronts } from "../../src/wann/nsga2.ts";
import { freshSeed, Rng } from "../../src/testing/mod.ts";

Deno.test("nsga2: fronts of a hand-made set", () => {
  // (mean, 1/conns): A and B trade off, C is dominated by A only, D by everyone, E equals A.
  const objs = [[0.9, 0.1], [0.5, 0.5], [0.8, 0.05], [0.1, 0.01], [0.9, 0.1]];
  assert.ok(dominates(objs[0], objs[2]));
  assert.ok(!dominates(objs[0], objs[4]), "equal points do not dominate");
  assert.deepEqual(paretoFronts(objs), [[0, 1, 4], [2], [3]]);
  // Maximisation: a NaN objective counts as -Infinity.
  assert.deepEqual(paretoFronts([[NaN, 1], [0, 1]]), [[1], [0]]);
});

Deno.test("nsga2: crowding distance and rank order on a hand-made front", () => {
  const objs = [[0, 4], [1, 3], [3, 1], [4, 0], [2, 2.5]];
  assert.deepEqual(paretoFronts(objs), [[0, 1, 2, 3, 4]]);
  const d = crowdingDistance(objs, [0, 1, 2, 3, 4]);
  assert.deepEqual(Array.from(d), [Infinity, 0.875, 1.125, Infinity, 1]);
  assert.deepEqual(nsgaRank(objs), [0, 3, 2, 4, 1]);
  // A dominated point ranks after the whole first front whatever its crowding.
  assert.deepEqual(nsgaRank([...objs, [0.5, 0.5]]).at(-1), 5);
});

Deno.test("nsga2: fronts are mutually non-dominated and each point is dominated by the front before", () => {
  const rng = new Rng(freshSeed());
  for (let t = 0; t < 20; t++) {
    const objs = Array.from(
      { length: 1 + rng.int(60) },
      () => [rng.int(6), rng.int(6), rng.next()].slice(0, 2 + rng.int(2)),
    );
    const m = objs[0].length;
    for (const o of objs) o.length = m;
    const fronts = paretoFronts(objs);
    assert.equal(fronts.flat().length, objs.length);
    fronts.forEach((f, k) => {
      for (const i of f) {
        for (const j of f) assert.ok(!dominates(objs[i], objs[j]));
        if (k > 0) assert.ok(fronts[k - 1].some((j) => dominates(objs[j], objs[i])));
      }
    });
    const order = nsgaRank(objs);
    assert.deepEqual([...order].sort((a, b) => a - b), objs.map((_, i) => i));
  }
});
