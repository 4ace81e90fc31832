import assert from "node:assert/strict";
import { parseStudySpec, readStudySpec } from "../../src/study/spec.ts";
import { defaultStorePath, parseShard, shardCells } from "../../src/study/shard.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { parseAblateOptions } from "../../src/analysis/options.ts";

const grid = {
  name: "g",
  factors: { activation: ["relu", "tanh", "gelu"], norm: ["none", "batch"], seed: [0, 1] },
  train: { dataset: "synthetic", hidden: [16], epochs: 1, method: "set" },
  analysis: { evalSamples: 50 },
};

Deno.test("spec: grid is the cartesian product, last factor fastest, ids stable and distinct", async () => {
  const s = await parseStudySpec(grid);
  assert.equal(s.cells.length, 12);
  assert.deepEqual(s.cells.map((c) => c.index), [...Array(12).keys()]);
  assert.deepEqual(s.cells[0].factors, { activation: "relu", norm: "none", seed: 0 });
  assert.deepEqual(s.cells[1].factors, { activation: "relu", norm: "none", seed: 1 });
  assert.deepEqual(s.cells[2].factors, { activation: "relu", norm: "batch", seed: 0 });
  assert.deepEqual(s.cells[11].factors, { activation: "gelu", norm: "batch", seed: 1 });
  for (const c of s.cells) {
    assert.match(c.id, /^[0-9a-f]{16}$/);
    assert.equal(c.config.activation, c.factors.activation);
    assert.equal(c.config.seed, c.factors.seed);
    assert.equal(c.config.density, 0.1, "withSparsityDefaults applied");
    assert.equal(c.config.init, "erk", "SET's default: ERK densities");
    assert.equal(c.analysis?.evalSamples, 50);
  }
  assert.equal(new Set(s.cells.map((c) => c.id)).size, 12);
  // Same config, same id, whatever the study name, factor order or YAML spelling.
  const again = await parseStudySpec({
    name: "other",
    factors: { seed: [1, 0], norm: ["batch", "none"], activation: ["gelu", "tanh", "relu"] },
    train: { "method": "set", epochs: 1, hidden: "16", dataset: "synthetic" },
    analysis: { "eval-samples": 50 },
  });
  assert.deepEqual(new Set(again.cells.map((c) => c.id)), new Set(s.cells.map((c) => c.id)));
  // Any change in the training config or the analysis changes the id.
  const lr = await parseStudySpec({ ...grid, train: { ...grid.train, lr: 0.01 } });
  const an = await parseStudySpec({ ...grid, analysis: { evalSamples: 51 } });
  const none = await parseStudySpec({ ...grid, analysis: false });
  for (const t of [lr, an, none]) {
    assert.equal(t.cells.filter((c, i) => c.id === s.cells[i].id).length, 0);
  }
  assert.equal(none.analysis, null);
  assert.equal(
    (await parseStudySpec({ ...grid, analysis: undefined, analyze: false })).analysis,
    null,
  );
  assert.deepEqual(
    (await parseStudySpec({ ...grid, analysis: undefined })).analysis,
    parseAblateOptions({}),
  );
});

Deno.test("spec: cells merge defaults like the train CLI (density factor replaces epsilon)", async () => {
  const s = await parseStudySpec({
    factors: { method: ["set", "rigl", "dense"], density: [0.1] },
    train: { dataset: "synthetic", epsilon: 5 },
    analysis: false,
  }, "d");
  assert.equal(s.name, "d");
  assert.deepEqual(s.cells.map((c) => [c.config.method, c.config.density, c.config.epsilon]), [
    ["set", 0.1, undefined],
    ["rigl", 0.1, undefined],
    ["dense", 0.1, undefined],
  ]);
  const r = await parseStudySpec({ factors: { method: ["rigl", "static"] }, analysis: false });
  assert.deepEqual(r.cells.map((c) => [c.config.density, c.config.epsilon, c.config.init]), [
    [0.05, undefined, undefined],
    [0.1, undefined, "erk"],
  ]);
});

Deno.test("spec: design.cells picks a subset of the grid in the given order", async () => {
  const s = await parseStudySpec({
    ...grid,
    design: {
      cells: [{ activation: "tanh", norm: "batch", seed: 1 }, {
        activation: "relu",
        norm: "none",
        seed: 0,
      }],
    },
  });
  assert.equal(s.design, "cells");
  assert.deepEqual(s.cells.map((c) => c.factors.activation), ["tanh", "relu"]);
  const full = await parseStudySpec(grid);
  assert.equal(s.cells[1].id, full.cells[0].id);
  // Free-form cells without factors.
  const f = await parseStudySpec({
    train: { dataset: "synthetic" },
    analysis: false,
    design: { cells: [{ hidden: [8] }, { hidden: [8, 8], lr: 0.01 }] },
  });
  assert.deepEqual(f.factors, { hidden: [[8], [8, 8]], lr: [0.01] });
  assert.equal(f.cells[1].config.lr, 0.01);
});

Deno.test("spec: bad specs fail up front with one line naming the key (and the cell)", async () => {
  const bad = async (spec: Record<string, unknown>, re: RegExp) => {
    await assert.rejects(() => parseStudySpec(spec), (e: Error) => {
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"), `multi-line error: ${e.message}`);
      return true;
    });
  };
  await bad(
    { ...grid, factors: { norm: ["none", "group"] } },
    /cell 1 \(norm=group\).*"norm".*none, batch, layer/,
  );
  await bad(
    { ...grid, factors: { activation: ["relu", "rleu"] } },
    /cell 1 \(activation=rleu\).*"activation".*unknown activation "rleu"/,
  );
  await bad({ ...grid, factors: { density: [0.1, 2] } }, /cell 1 \(density=2\).*"density"/);
  await bad({ ...grid, factors: { colour: ["red"] } }, /factors\.colour: unknown config key/);
  await bad({ ...grid, train: { lerning: 1 } }, /train\.lerning: unknown config key/);
  await bad({ ...grid, train: { out: "x" } }, /train\.out: not allowed/);
  await bad({ ...grid, factors: { seed: [] } }, /factors\.seed: expected a non-empty list/);
  await bad({ ...grid, factors: { seed: [1, 1] } }, /factors\.seed: value 1 appears twice/);
  await bad({ ...grid, factors: { epochs: [1, 2] } }, /factors\.epochs: also fixed in train/);
  await bad({ ...grid, analysis: { evalSamples: -1 } }, /analysis: bad value for "evalSamples"/);
  await bad({ ...grid, analysis: { samples: 3 } }, /analysis: unknown analysis key "samples"/);
  await bad({ ...grid, desgin: "grid" }, /unknown study key "desgin"/);
  await bad({ ...grid, design: "random" }, /design: expected "grid"/);
  await bad(
    { ...grid, design: { cells: [{ activation: "elu", norm: "none", seed: 0 }] } },
    /design\.cells\[0\]\.activation: "elu" is not one of factors\.activation/,
  );
  await bad(
    { ...grid, design: { cells: [{ activation: "relu", seed: 0 }] } },
    /design\.cells\[0\]: missing factor "norm"/,
  );
  await bad({
    ...grid,
    design: {
      cells: [{ activation: "relu", norm: "none", seed: 0 }, {
        activation: "relu",
        norm: "none",
        seed: 0,
      }],
    },
  }, /cell 1 .*same configuration as cell 0/);
  // A model that does not fit the data (a CNN on feature vectors) is refused up front.
  await bad(
    { ...grid, train: { ...grid.train, model: "cnn" } },
    /cell 0 .*model "cnn" needs an image dataset/,
  );
});

Deno.test("spec: the shipped study files are valid", async () => {
  const smoke = await readStudySpec("studies/smoke.yaml");
  assert.equal(smoke.name, "smoke");
  assert.ok(smoke.cells.length >= 4 && smoke.cells.length <= 16);
  assert.ok(smoke.cells.every((c) => c.config.dataset === "synthetic" && c.analysis));
  const big = await readStudySpec("studies/activation-norm-mlp.yaml");
  assert.equal(big.cells.length, 2 * 12 * 3 * 3 * 3);
  assert.ok(big.cells.every((c) => parseTrainConfig(c.config)));
});

Deno.test("shard: for N in 1,2,3,5 the shards partition the cells, cell k in shard k mod N", async () => {
  const s = await parseStudySpec(grid);
  for (const n of [1, 2, 3, 5]) {
    const seen = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const part = shardCells(s.cells, parseShard(`${i}/${n}`));
      for (const c of part) {
        assert.equal(c.index % n, i);
        seen.set(c.id, (seen.get(c.id) ?? 0) + 1);
      }
    }
    assert.equal(seen.size, s.cells.length, `N=${n}: union is not every cell`);
    assert.ok([...seen.values()].every((v) => v === 1), `N=${n}: a cell in two shards`);
  }
  assert.throws(() => parseShard("3/3"), /0 <= i < N/);
  assert.throws(() => parseShard("1-3"), /expected i\/N/);
  assert.equal(defaultStorePath("x", parseShard("2/5")), "runs/studies/x/store-2-of-5.sqlite");
  assert.equal(defaultStorePath("x", parseShard("0/1")), "runs/studies/x/store.sqlite");
});
