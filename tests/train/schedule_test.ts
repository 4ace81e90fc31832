import assert from "node:assert/strict";
import { learningRate } from "../../src/train/schedule.ts";
import { gmpDensity, riglDropFraction } from "../../src/sparse/schedule.ts";

Deno.test("learning-rate schedules", () => {
  assert.equal(learningRate({ kind: "constant", lr: 0.1 }, 999), 0.1);
  const cos = { kind: "cosine", lr: 0.2, totalSteps: 10 } as const;
  assert.equal(learningRate(cos, 0), 0.2);
  assert.ok(Math.abs(learningRate(cos, 5) - 0.1) < 1e-12);
  assert.ok(Math.abs(learningRate(cos, 10)) < 1e-12);
  const st = { kind: "step", lr: 1, everySteps: 3, gamma: 0.5 } as const;
  assert.deepEqual([0, 2, 3, 6].map((t) => learningRate(st, t)), [1, 1, 0.5, 0.25]);
});

Deno.test("RigL cosine drop fraction and GMP cubic density", () => {
  assert.equal(riglDropFraction(0.3, 0, 100), 0.3);
  assert.ok(Math.abs(riglDropFraction(0.3, 50, 100) - 0.15) < 1e-12);
  assert.equal(riglDropFraction(0.3, 100, 100), 0);
  assert.equal(gmpDensity(1, 0.1, 10, 20, 5), 1);
  assert.equal(gmpDensity(1, 0.1, 10, 20, 25), 0.1);
  assert.ok(Math.abs(gmpDensity(1, 0.1, 10, 20, 15) - (0.1 + 0.9 * 0.125)) < 1e-12);
  // Monotone decreasing between t0 and t1.
  let prev = 2;
  for (let t = 10; t <= 20; t++) {
    const d = gmpDensity(1, 0.1, 10, 20, t);
    assert.ok(d <= prev);
    prev = d;
  }
});
