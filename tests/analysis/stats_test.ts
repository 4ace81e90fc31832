/**
 * Tests of src/analysis/stats.ts against values computed with scipy 1.17 (pasted as
 * constants) and against naive reference implementations on fresh random data.
 */
import {
  bootstrapCI,
  bootstrapMeanCI,
  bootstrapMeanDiffCI,
  holm,
  kendallTauB,
  mean,
  median,
  normalCdf,
  pairedPermutationTest,
  pearson,
  precisionAtFraction,
  quantile,
  ranks,
  sd,
  spearman,
  wilcoxonSignedRank,
} from "../../src/analysis/stats.ts";
import { freshSeed, Rng } from "../../src/testing/mod.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}
function near(got: number, want: number, tol: number, what: string): void {
  assert(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} (tol ${tol})`);
}

/** O(n^2) Kendall tau-b straight from the definition. */
function naiveKendall(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let c = 0, d = 0, tx = 0, ty = 0;
  for (let i = 0; i < x.length; i++) {
    for (let j = i + 1; j < x.length; j++) {
      const sx = Math.sign(x[i] - x[j]), sy = Math.sign(y[i] - y[j]);
      if (sx === 0 && sy === 0) continue;
      if (sx === 0) tx++;
      else if (sy === 0) ty++;
      else if (sx === sy) c++;
      else d++;
    }
  }
  return (c - d) / Math.sqrt((c + d + tx) * (c + d + ty));
}

Deno.test("ranks, mean, sd, quantile, median: hand-computed values", () => {
  assert(ranks([10, 30, 20, 20]).join() === "1,4,2.5,2.5", "average ties");
  assert(ranks([3, 3, 3]).join() === "2,2,2", "all tied");
  assert(ranks([7]).join() === "1", "single");
  near(mean([1, 2, 6]), 3, 0, "mean");
  near(sd([2, 4, 4, 4, 5, 5, 7, 9]), 2.1380899352993950, 1e-14, "sd");
  near(quantile([1, 2, 3, 4], 0.25), 1.75, 1e-15, "q25 (numpy: 1.75)");
  near(quantile([4, 1, 3, 2], 1), 4, 0, "q100");
  near(median([5, 1, 3, 2]), 2.5, 0, "median even");
  near(median([5, 1, 3]), 3, 0, "median odd");
  assert(Number.isNaN(mean([])) && Number.isNaN(median([])), "empty -> NaN");
  near(normalCdf(1.959963984540054), 0.975, 1e-7, "normal cdf");
});

Deno.test("spearman and kendall tau-b match scipy on known inputs", () => {
  near(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 0.8207826816681233, 1e-12, "spearman ties");
  near(kendallTauB([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]), -0.4714045207910316, 1e-12, "kendall");
  const x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], y = [2, 1, 4, 3, 6, 5, 8, 7, 10, 9];
  near(spearman(x, y), 0.9393939393939393, 1e-12, "spearman scipy");
  near(kendallTauB(x, y), 0.7777777777777777, 1e-12, "kendall scipy");
  assert(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])), "constant -> NaN");
  assert(Number.isNaN(kendallTauB([1, 2, 3], [4, 4, 4])), "constant -> NaN");
});

Deno.test("properties on fresh random data: monotone invariance, Knight == naive O(n^2)", () => {
  const seed = freshSeed();
  const rng = new Rng(seed);
  const tag = `(seed ${seed}; replay with FILIGREE_SEED)`;
  for (const n of [2, 3, 17, 101, 257]) {
    const x = rng.normal(n);
    const y = Float64Array.from(x, (v) => Math.exp(3 * v) + 1); // strictly increasing
    near(spearman(x, y), 1, 1e-12, `spearman monotone n=${n} ${tag}`);
    near(kendallTauB(x, y), 1, 1e-12, `kendall monotone n=${n} ${tag}`);
    const z = Float64Array.from(x, (v) => -(v ** 3));
    near(spearman(x, z), -1, 1e-12, `spearman decreasing n=${n} ${tag}`);
    // Heavy ties: small integer values.
    const a = Float64Array.from({ length: n }, () => rng.int(5));
    const b = Float64Array.from({ length: n }, (_, i) => rng.int(4) + (a[i] > 2 ? 1 : 0));
    const want = naiveKendall(a, b);
    const got = kendallTauB(a, b);
    if (Number.isNaN(want)) assert(Number.isNaN(got), `kendall NaN case n=${n} ${tag}`);
    else near(got, want, 1e-12, `kendall vs naive with ties n=${n} ${tag}`);
    const c = rng.normal(n);
    const wantCa = naiveKendall(c, a);
    if (Number.isNaN(wantCa)) assert(Number.isNaN(kendallTauB(c, a)), `NaN n=${n} ${tag}`);
    else near(kendallTauB(c, a), wantCa, 1e-12, `kendall x-distinct n=${n} ${tag}`);
    // Spearman = Pearson of ranks, checked against a direct formula without ties.
    if (n > 2) {
      const rx = ranks(c), ry = ranks(x);
      let d2 = 0;
      for (let i = 0; i < n; i++) d2 += (rx[i] - ry[i]) ** 2;
      near(spearman(c, x), 1 - (6 * d2) / (n * (n * n - 1)), 1e-12, `spearman formula ${tag}`);
    }
  }
  // Large n runs in O(n log n).
  const n = 100_000;
  const x = rng.normal(n);
  const y = Float64Array.from(x, (v) => v + rng.normal(1)[0]);
  const t0 = performance.now();
  const tau = kendallTauB(x, y);
  const ms = performance.now() - t0;
  // For a bivariate normal with correlation r = 1/sqrt(2), tau = (2/pi) asin(r) = 0.5.
  near(tau, 0.5, 0.01, `kendall n=100k ${tag}`);
  assert(ms < 5000, `kendall n=100k took ${ms.toFixed(0)} ms`);
  near(pearson(x, x), 1, 1e-12, "pearson self");
});

Deno.test("bootstrap intervals: seeded, cover the estimate, shrink with n", () => {
  const seed = freshSeed();
  const rng = new Rng(seed);
  const x = rng.normal(60);
  const y = Float64Array.from(x, (v) => v + rng.normal(1, 0.7)[0]);
  const ci = bootstrapCI(spearman, x, y, { reps: 300, seed: 5 });
  const again = bootstrapCI(spearman, x, y, { reps: 300, seed: 5 });
  assert(ci[0] === again[0] && ci[1] === again[1], "same seed, same interval");
  const rho = spearman(x, y);
  assert(ci[0] < rho && rho < ci[1] && ci[0] > 0.3, `CI ${ci} around ${rho} (seed ${seed})`);
  const small = bootstrapMeanCI(rng.normal(10), { seed: 1 });
  const big = bootstrapMeanCI(rng.normal(1000), { seed: 1 });
  assert(big[1] - big[0] < (small[1] - small[0]) / 4, `CI width shrinks (seed ${seed})`);
  // A mean of N(0,1) over 1000 draws: the 95% interval has width ~ 2*1.96/sqrt(1000) = 0.124.
  near(big[1] - big[0], 0.124, 0.03, `CI width (seed ${seed})`);
  const [lo, hi] = bootstrapMeanDiffCI([5, 6, 7, 6, 5], [1, 2, 1, 2, 1], { seed: 2 });
  assert(lo > 3 && hi < 6 && lo < 4.4 && hi > 4.4, `mean diff CI ${lo} ${hi}`);
});

Deno.test("precisionAtFraction: hand-computed cases", () => {
  const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const t = [2, 1, 3, 4, 5, 6, 7, 8, 10, 9];
  near(precisionAtFraction(s, t, 0.2, "least"), 1, 0, "least 20%");
  near(precisionAtFraction(s, t, 0.1, "least"), 0, 0, "least 10% (1 vs 2 swapped)");
  near(precisionAtFraction(s, t, 0.1, "most"), 0, 0, "most 10%");
  near(precisionAtFraction(s, t, 0.3, "most"), 1, 0, "most 30%");
  near(precisionAtFraction(s, s.map((v) => -v), 0.5, "least"), 0, 0, "reversed");
  near(precisionAtFraction([3], [1], 0.1, "least"), 1, 0, "n=1 -> k=1");
});

Deno.test("wilcoxonSignedRank: scipy values, exact tie handling vs brute force", () => {
  const d = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75];
  const r = wilcoxonSignedRank(d);
  assert(r.method === "exact" && r.statistic === 24, `statistic ${r.statistic}`);
  near(r.p, 0.041259765625, 1e-12, "exact p (scipy)");
  // n > 25 with ties and zeros: normal approximation (scipy asymptotic, no continuity corr.).
  const d3 = [
    0.6,
    1.1,
    0.6,
    -1.0,
    1.2,
    0.7,
    -0.2,
    0.9,
    0.7,
    0.6,
    0.3,
    0.8,
    -0.4,
    0.1,
    -0.2,
    0.9,
    0.3,
    0.0,
    -0.5,
    0.0,
    0.3,
    0.0,
    1.6,
    1.3,
    -2.4,
    -1.6,
    0.1,
    -0.1,
    0.5,
    0.5,
    2.4,
    -0.8,
    -0.1,
    2.3,
    0.9,
    1.0,
    -0.2,
    -1.3,
    0.5,
    0.4,
  ];
  const r3 = wilcoxonSignedRank(d3);
  assert(
    r3.method === "normal" && r3.n === 37 && r3.statistic === 200.5,
    `r3 ${JSON.stringify(r3)}`,
  );
  near(r3.p, 0.02264188405867039, 2e-6, "asymptotic p (scipy)");
  // Exact with ties: brute force over all 2^n sign flips of the tied ranks.
  const seed = freshSeed();
  const rng = new Rng(seed);
  for (const n of [1, 5, 11]) {
    const dd = Array.from({ length: n }, () => (rng.int(7) - 3) || 1);
    const rk = ranks(dd.map(Math.abs));
    const total = rk.reduce((a, b) => a + b, 0);
    let wp = 0;
    dd.forEach((v, i) => v > 0 && (wp += rk[i]));
    const w = Math.min(wp, total - wp);
    let hits = 0;
    for (let m = 0; m < 2 ** n; m++) {
      let s = 0;
      for (let i = 0; i < n; i++) if ((m >> i) & 1) s += rk[i];
      if (s <= w + 1e-9) hits++;
    }
    const want = Math.min(1, (2 * hits) / 2 ** n);
    const got = wilcoxonSignedRank(dd);
    near(got.p, want, 1e-12, `exact tied n=${n} (seed ${seed})`);
  }
  near(wilcoxonSignedRank([0, 0]).p, 1, 0, "all zero");
});

Deno.test("pairedPermutationTest: exact enumeration and Monte Carlo agree", () => {
  near(pairedPermutationTest([1, 2, 3]), 0.25, 0, "hand: 2 of 8 flips reach |6|");
  near(pairedPermutationTest([1, -1]), 1, 0, "balanced");
  near(pairedPermutationTest([]), 1, 0, "empty");
  const seed = freshSeed();
  const rng = new Rng(seed);
  const d = Array.from(rng.normal(16, 1), (v) => v + 0.4);
  const exact = pairedPermutationTest(d);
  const d17 = [...d, 0]; // a zero difference changes nothing but forces Monte Carlo
  const mc = pairedPermutationTest(d17, { reps: 20000, seed: 3 });
  near(mc, exact, 0.015, `MC vs exact (seed ${seed})`);
  assert(pairedPermutationTest(Array(20).fill(1), { seed: 1 }) < 0.001, "all positive, n=20");
});

Deno.test("holm: hand values, order preserved, monotone, NaN kept out", () => {
  const got = holm([0.01, 0.04, 0.03, 0.005]);
  const want = [0.03, 0.06, 0.06, 0.02];
  got.forEach((v, i) => near(v, want[i], 1e-15, `holm[${i}]`));
  const g2 = holm([0.5, NaN, 0.01]);
  assert(Number.isNaN(g2[1]), "NaN stays NaN");
  near(g2[2], 0.02, 1e-15, "m counts only non-NaN");
  near(g2[0], 0.5, 1e-15, "largest");
  near(holm([0.9, 0.8])[0], 1, 1e-15, "step-down max: 0.8 * 2 caps at 1, then 0.9 -> 1");
  near(holm([0.9, 0.01])[0], 0.9, 1e-15, "largest keeps its own value");
  assert(holm([0.6, 0.7, 0.8]).every((v) => v <= 1), "capped at 1");
});
