import assert from "node:assert/strict";
import { erDensity, erkDensities, layerDensities, nnzFor } from "../../src/sparse/density.ts";

Deno.test("ER density follows SET's epsilon rule and caps at 1", () => {
  assert.ok(Math.abs(erDensity(784, 1000, 20) - 20 * 1784 / 784000) < 1e-12);
  assert.equal(erDensity(10, 10, 20), 1);
});

Deno.test("ERK hits the target total density, capping small layers dense", () => {
  const shapes: [number, number][] = [[784, 300], [300, 100], [100, 10]];
  for (const target of [0.02, 0.1, 0.5]) {
    const d = erkDensities(shapes, target);
    const total = shapes.reduce((s, [a, b]) => s + a * b, 0);
    const nnz = shapes.reduce((s, [a, b], l) => s + d[l] * a * b, 0);
    assert.ok(Math.abs(nnz / total - target) < 1e-9, `target ${target}: got ${nnz / total}`);
    assert.ok(d.every((x) => x > 0 && x <= 1));
    // ERK keeps density proportional to (n_in+n_out)/(n_in n_out) among the non-capped layers.
    const free = d.map((x, l) => [x, l] as const).filter(([x]) => x < 1);
    for (const [x, l] of free) {
      const [a, b] = shapes[l];
      const [x0, l0] = free[0];
      const [a0, b0] = shapes[l0];
      assert.ok(Math.abs(x / x0 - ((a + b) / (a * b)) / ((a0 + b0) / (a0 * b0))) < 1e-9);
    }
  }
  assert.equal(erkDensities(shapes, 0.5)[2], 1, "the 100x10 layer caps at dense");
});

Deno.test("layerDensities validates and nnzFor rounds", () => {
  assert.throws(() => layerDensities([[3, 3]], { kind: "uniform", density: 0 }), /density must be/);
  assert.deepEqual(layerDensities([[3, 3]], { kind: "uniform", density: 0.5 }), [0.5]);
  assert.equal(nnzFor(784, 300, 0.1), 23520);
  assert.equal(nnzFor(2, 2, 1e-9), 1);
});
