import {
  combineParts,
  spearmanBrown,
  splitHalf,
  splitIndices,
} from "../../src/analysis/reliability.ts";
import { fisherZMean, spearman } from "../../src/analysis/stats.ts";
import { dropPrecision, dropRule } from "../../src/analysis/run.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { DataRng } from "../../src/data/random.ts";

function normal(rng: DataRng): number {
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}

Deno.test("split-half + Spearman-Brown recovers a known full-set reliability", () => {
  // True scores t ~ N(0,1); each half measures t + e, e ~ N(0, σ²). The full set (mean of the
  // halves) has Pearson reliability 1/(1 + σ²/2); for normal data its Spearman is
  // (6/π)·asin(ρ/2). The Spearman-Brown value of the half Spearman must land there.
  for (const sigma2 of [0.25, 1, 3]) {
    const expected = (6 / Math.PI) * Math.asin(1 / (1 + sigma2 / 2) / 2);
    const got: number[] = [];
    for (let seed = 0; seed < 20; seed++) {
      const rng = new DataRng(1000 * sigma2 + seed), n = 3000, s = Math.sqrt(sigma2);
      const t = Array.from({ length: n }, () => normal(rng));
      const a = t.map((v) => v + s * normal(rng)), b = t.map((v) => v + s * normal(rng));
      got.push(splitHalf(a, b).ceiling);
    }
    const m = got.reduce((x, y) => x + y) / got.length;
    if (!(Math.abs(m - expected) < 0.01)) {
      throw new Error(`σ²=${sigma2}: mean ceiling ${m}, expected ${expected}`);
    }
    if (got.some((g) => Math.abs(g - expected) > 0.1)) throw new Error(`σ²=${sigma2}: ${got}`);
  }
  if (spearmanBrown(0.5).toFixed(6) !== (2 / 3).toFixed(6)) throw new Error("spearmanBrown(0.5)");
});

Deno.test("halves are disjoint, cover the set, class-balanced; recombination is exact", () => {
  const rng = new DataRng(4);
  const idx = Uint32Array.from({ length: 501 }, (_, k) => 3 * k + 1);
  const cls = Array.from(idx, () => rng.int(7));
  const [a, b] = splitIndices(idx, cls, 11);
  const all = new Set([...a, ...b]);
  if (a.length + b.length !== 501 || all.size !== 501 || Math.abs(a.length - b.length) > 1) {
    throw new Error(`halves ${a.length} + ${b.length}, union ${all.size}`);
  }
  const cOf = new Map(Array.from(idx, (v, k) => [v, cls[k]]));
  for (let c = 0; c < 7; c++) {
    const na = [...a].filter((v) => cOf.get(v) === c).length;
    const nb = [...b].filter((v) => cOf.get(v) === c).length;
    if (Math.abs(na - nb) > 1) throw new Error(`class ${c}: ${na} vs ${nb}`);
  }
  const [a2] = splitIndices(idx, cls, 12);
  if (a2.every((v, k) => v === a[k])) throw new Error("the seed does not change the halves");
  // Mean over the full set = size-weighted mean of the half means.
  const x = Array.from({ length: 9 }, () => rng.next());
  const full = x.reduce((p, q) => p + q) / 9;
  const mA = (x[0] + x[1] + x[2] + x[3]) / 4, mB = (x[4] + x[5] + x[6] + x[7] + x[8]) / 5;
  if (Math.abs(combineParts([{ values: [mA], n: 4 }, { values: [mB], n: 5 }])[0] - full) > 1e-15) {
    throw new Error("combine");
  }
});

Deno.test("fisherZMean: unweighted mean in z with a normal interval", () => {
  const m = fisherZMean([0.2, 0.6, NaN], [100, 1000, 50]);
  const z = (Math.atanh(0.2) + Math.atanh(0.6)) / 2;
  const se = Math.sqrt(1.06 / 97 + 1.06 / 997) / 2;
  if (m.n !== 2 || Math.abs(m.value - Math.tanh(z)) > 1e-12) throw new Error(JSON.stringify(m));
  if (Math.abs(m.ci[0] - Math.tanh(z - 1.96 * se)) > 1e-12) throw new Error("ci");
  // Not a pooled correlation: two layers with opposite relations average to ~0.
  const x = Array.from({ length: 200 }, (_, i) => i), y = x.map((v) => -v);
  const pooledish = spearman([...x, ...x], [...x, ...y]);
  const mean = fisherZMean([spearman(x, x), spearman(x, y)], [200, 200]).value;
  if (!(Math.abs(mean) < 1e-9 && Math.abs(pooledish) < 0.6)) throw new Error(`${mean}`);
});

Deno.test("snip and taylor rank weights identically (why taylor is left out of agreement)", () => {
  const rng = new DataRng(2);
  const wg = Array.from({ length: 500 }, () => normal(rng));
  const snip = wg.map(Math.abs), taylor = wg.map((v) => v * v);
  if (spearman(snip, taylor) !== 1) throw new Error("not rank-identical");
});

Deno.test("drop rule and drop precision", () => {
  const v = Float32Array.from([0.5, -0.1, 0.05, -0.9, 0.3, -0.02, 0.7, -0.4, 0.01, -0.6]);
  const set = dropRule(parseTrainConfig({ method: "set", zeta: 0.4 }), v);
  // 5 positive, 5 negative: floor(0.4·5) = 2 of each nearest zero.
  const dropped = [...set.drop.keys()].filter((e) => set.drop[e]).sort((a, b) => a - b);
  if (dropped.join() !== "1,2,5,8") throw new Error(`set drops ${dropped}`);
  const rigl = dropRule(parseTrainConfig({ method: "rigl", riglAlpha: 0.3 }), v);
  const rd = [...rigl.drop.keys()].filter((e) => rigl.drop[e]).sort((a, b) => a - b);
  if (rd.join() !== "2,5,8") throw new Error(`rigl drops ${rd}`);
  // |Δloss| ranks: items 0 and 1 lowest of 10 -> least-important fifth is {0, 1}.
  const d = [0.001, 0.002, 1, 2, 3, 4, 5, 6, 7, 8];
  const p = dropPrecision(d, [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
  if (p.count !== 2 || p.precision !== 0.5) throw new Error(JSON.stringify(p));
});
