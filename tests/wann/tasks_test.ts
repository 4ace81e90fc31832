import assert from "node:assert/strict";
import { deskew, gatherBatch, makeSyntheticTask, resizeArea } from "../../src/wann/tasks.ts";
import { freshSeed, Rng } from "../../src/testing/mod.ts";

/** Second-moment shear cov(r, c) / var(r) of an image. */
function shear(img: Float64Array, n: number): number {
  let t = 0, mr = 0, mc = 0;
  for (let r = 0; r < n; r++) {
    for (
      let c = 0;
      c < n;
      c++
    ) (t += img[r * n + c], mr += r * img[r * n + c], mc += c * img[r * n + c]);
  }
  mr /= t;
  mc /= t;
  let vr = 0, cv = 0;
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      (vr += (r - mr) ** 2 * img[r * n + c], cv += (r - mr) * (c - mc) * img[r * n + c]);
    }
  }
  return cv / vr;
}

Deno.test("wann tasks: area resize keeps the mean intensity and maps a constant to itself", () => {
  const rng = new Rng(freshSeed());
  const img = Float64Array.from(rng.uniform(784, 0, 1));
  const small = resizeArea(img, 28, 16);
  const mean = (a: Float64Array) => a.reduce((x, y) => x + y, 0) / a.length;
  assert.ok(Math.abs(mean(small) - mean(img)) < 1e-12);
  assert.ok(
    resizeArea(new Float64Array(784).fill(0.7), 28, 16).every((v) => Math.abs(v - 0.7) < 1e-12),
  );
});

Deno.test("wann tasks: deskew straightens a slanted stroke and centres it", () => {
  const img = new Float64Array(784);
  for (let r = 4; r < 24; r++) img[r * 28 + Math.round(8 + 0.5 * r)] = 1; // slope 0.5 column per row
  assert.ok(Math.abs(shear(img, 28) - 0.5) < 0.05);
  const d = deskew(img);
  assert.ok(Math.abs(shear(d, 28)) < 0.05, `shear after ${shear(d, 28)}`);
  let t = 0, mc = 0;
  for (let i = 0; i < 784; i++) (t += d[i], mc += (i % 28) * d[i]);
  assert.ok(Math.abs(mc / t - 14) < 0.6, `centroid column ${mc / t}`);
  assert.deepEqual(Array.from(deskew(new Float64Array(784))), new Array(784).fill(0));
});

Deno.test("wann tasks: synthetic labels in range, every class present, batches feature-major", () => {
  const t = makeSyntheticTask({ features: 6, classes: 4, train: 300, test: 50, seed: freshSeed() });
  const counts = new Array(4).fill(0);
  for (const l of t.train.labels) counts[l]++;
  assert.ok(counts.every((c) => c > 0), `class counts ${counts}`);
  const x = gatherBatch(t.train, 6, [3, 7]);
  for (let f = 0; f < 6; f++) {
    assert.equal(x[f * 2], t.train.x[3 * 6 + f]);
    assert.equal(x[f * 2 + 1], t.train.x[7 * 6 + f]);
  }
});
