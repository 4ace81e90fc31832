/**
 * Statistics for importance analysis and study reports, in plain float64 TypeScript (no GPU):
 * ranks with average ties, Spearman and Kendall tau-b correlations (Knight's O(n log n)
 * algorithm), percentile-bootstrap intervals, precision at a fraction, summary statistics,
 * paired tests (Wilcoxon signed-rank, sign-flip permutation) and Holm's step-down correction.
 *
 * Every randomized procedure takes a seed and uses {@link DataRng}, so results are
 * reproducible on every machine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { holm, kendallTauB, spearman } from "./stats.ts";
 * assert.deepEqual(spearman([1, 2, 3, 4], [10, 20, 30, 45]), 1);
 * assert.deepEqual(kendallTauB([1, 2, 3], [3, 2, 1]), -1);
 * assert.deepEqual(holm([0.01, 0.04]), [0.02, 0.04]);
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";
import { DataRng } from "../data/random.ts";

/** Numbers accepted by the functions here. */
export type Numbers = ArrayLike<number>;

function checkPair(x: Numbers, y: Numbers, what: string): void {
  if (x.length !== y.length) {
    throw new FiligreeError(`${what}: x and y differ in length (${x.length} vs ${y.length})`);
  }
}

/**
 * 1-based ranks of `x`; tied values get the average of the ranks they span.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ranks } from "./stats.ts";
 * assert.deepEqual(Array.from(ranks([10, 30, 20, 20])), [1, 4, 2.5, 2.5]);
 * ```
 */
export function ranks(x: Numbers): Float64Array {
  const n = x.length;
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  idx.sort((a, b) => x[a] - x[b]);
  const r = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i + 1;
    while (j < n && x[idx[j]] === x[idx[i]]) j++;
    const avg = (i + 1 + j) / 2; // mean of ranks i+1 .. j
    for (let k = i; k < j; k++) r[idx[k]] = avg;
    i = j;
  }
  return r;
}

/**
 * Arithmetic mean (NaN for an empty input).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mean } from "./stats.ts";
 * assert.deepEqual(mean([1, 2, 6]), 3);
 * ```
 */
export function mean(x: Numbers): number {
  if (x.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s / x.length;
}

/**
 * Sample standard deviation (n - 1 denominator; NaN below two values).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sd } from "./stats.ts";
 * assert.deepEqual(sd([2, 4, 4, 4, 5, 5, 7, 9]).toFixed(4), "2.1381");
 * ```
 */
export function sd(x: Numbers): number {
  const n = x.length;
  if (n < 2) return NaN;
  const m = mean(x);
  let s = 0;
  for (let i = 0; i < n; i++) s += (x[i] - m) ** 2;
  return Math.sqrt(s / (n - 1));
}

/**
 * The `q`-quantile (0 <= q <= 1) with linear interpolation between order statistics (the
 * default of numpy and R type 7). NaN for an empty input.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quantile } from "./stats.ts";
 * assert.deepEqual(quantile([1, 2, 3, 4], 0.25), 1.75);
 * ```
 */
export function quantile(x: Numbers, q: number): number {
  if (!(q >= 0 && q <= 1)) throw new FiligreeError(`quantile: q must be in [0, 1], got ${q}`);
  const n = x.length;
  if (n === 0) return NaN;
  const s = Float64Array.from(x).sort();
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return s[lo] + (h - lo) * (s[hi] - s[lo]);
}

/**
 * Median (the 0.5 quantile).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { median } from "./stats.ts";
 * assert.deepEqual(median([5, 1, 3, 2]), 2.5);
 * ```
 */
export function median(x: Numbers): number {
  return quantile(x, 0.5);
}

/**
 * Pearson correlation (NaN when either input is constant or shorter than 2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pearson } from "./stats.ts";
 * assert.deepEqual(pearson([1, 2, 3], [2, 4, 6]), 1);
 * ```
 */
export function pearson(x: Numbers, y: Numbers): number {
  checkPair(x, y, "pearson");
  const n = x.length;
  if (n < 2) return NaN;
  const mx = mean(x), my = mean(y);
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/**
 * Spearman rank correlation: Pearson correlation of the average-tie ranks (matches
 * `scipy.stats.spearmanr`). NaN when either input is constant.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spearman } from "./stats.ts";
 * assert.deepEqual(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 0.8207826816681233);
 * ```
 */
export function spearman(x: Numbers, y: Numbers): number {
  checkPair(x, y, "spearman");
  return pearson(ranks(x), ranks(y));
}

/** Number of tied pairs, sum over runs of equal values of t(t-1)/2, in an array sorted so ties are adjacent. */
function tiedPairs(v: Float64Array, order: Uint32Array, also?: Float64Array): number {
  let s = 0;
  let run = 1;
  for (let i = 1; i <= order.length; i++) {
    const same = i < order.length && v[order[i]] === v[order[i - 1]] &&
      (also === undefined || also[order[i]] === also[order[i - 1]]);
    if (same) run++;
    else {
      s += (run * (run - 1)) / 2;
      run = 1;
    }
  }
  return s;
}

/**
 * Kendall's tau-b with Knight's O(n log n) algorithm (sort by x then y, count discordant pairs
 * as merge-sort swaps on y, correct for ties in x, y and both). Matches `scipy.stats.kendalltau`.
 * NaN when either input is constant. Handles n in the hundreds of thousands.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kendallTauB } from "./stats.ts";
 * assert.equal(kendallTauB([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]).toFixed(4), "-0.4714");
 * ```
 */
export function kendallTauB(x: Numbers, y: Numbers): number {
  checkPair(x, y, "kendallTauB");
  const n = x.length;
  if (n < 2) return NaN;
  const xs = Float64Array.from(x), ys = Float64Array.from(y);
  let order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => xs[a] - xs[b] || ys[a] - ys[b]);
  const n0 = (n * (n - 1)) / 2;
  const n1 = tiedPairs(xs, order); // ties in x
  const n3 = tiedPairs(xs, order, ys); // joint ties
  // Bottom-up merge sort of `order` by y, counting swaps (pairs i<j with y_i > y_j).
  let buf = new Uint32Array(n);
  let swaps = 0;
  for (let width = 1; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n), hi = Math.min(lo + 2 * width, n);
      let i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        if (ys[order[j]] < ys[order[i]]) {
          buf[k++] = order[j++];
          swaps += mid - i;
        } else buf[k++] = order[i++];
      }
      while (i < mid) buf[k++] = order[i++];
      while (j < hi) buf[k++] = order[j++];
    }
    const t = order;
    order = buf;
    buf = t;
  }
  const n2 = tiedPairs(ys, order); // ties in y
  const denom = Math.sqrt((n0 - n1) * (n0 - n2));
  if (denom === 0) return NaN;
  const tau = (n0 - n1 - n2 + n3 - 2 * swaps) / denom;
  return Math.max(-1, Math.min(1, tau));
}

/** Options of the bootstrap procedures. */
export interface BootstrapOptions {
  /** Resamples (default 1000). */
  reps?: number;
  /** Seed of the resampling (default 0). */
  seed?: number;
  /** Coverage of the percentile interval (default 0.95). */
  level?: number;
}

function percentileInterval(stats: number[], level: number): [number, number] {
  const finite = stats.filter(Number.isFinite);
  if (finite.length === 0) return [NaN, NaN];
  const a = (1 - level) / 2;
  return [quantile(finite, a), quantile(finite, 1 - a)];
}

/**
 * Percentile-bootstrap interval of a paired statistic (e.g. {@link spearman}): resamples the
 * (x, y) pairs with replacement `reps` times. Resamples where the statistic is not finite
 * (e.g. a constant resample) are dropped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bootstrapCI, spearman } from "./stats.ts";
 * const x = [1, 2, 3, 4, 5, 6, 7, 8], y = [2, 1, 4, 3, 6, 5, 8, 7];
 * const [lo, hi] = bootstrapCI(spearman, x, y, { reps: 200, seed: 1 });
 * assert.deepEqual(lo <= spearman(x, y) && spearman(x, y) <= hi, true);
 * ```
 */
export function bootstrapCI(
  statistic: (x: Float64Array, y: Float64Array) => number,
  x: Numbers,
  y: Numbers,
  opts: BootstrapOptions = {},
): [number, number] {
  checkPair(x, y, "bootstrapCI");
  const { reps = 1000, seed = 0, level = 0.95 } = opts;
  const n = x.length;
  if (n === 0) return [NaN, NaN];
  const rng = new DataRng(seed);
  const bx = new Float64Array(n), by = new Float64Array(n);
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < n; i++) {
      const k = rng.int(n);
      bx[i] = x[k];
      by[i] = y[k];
    }
    out.push(statistic(bx, by));
  }
  return percentileInterval(out, level);
}

/**
 * Percentile-bootstrap interval of a mean (use it on paired differences for the CI of a mean
 * difference).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bootstrapMeanCI } from "./stats.ts";
 * const [lo, hi] = bootstrapMeanCI([0.3, 0.4, 0.35, 0.5, 0.45], { seed: 3 });
 * assert.deepEqual(lo > 0.3 && hi < 0.5, true);
 * ```
 */
export function bootstrapMeanCI(d: Numbers, opts: BootstrapOptions = {}): [number, number] {
  const { reps = 1000, seed = 0, level = 0.95 } = opts;
  const n = d.length;
  if (n === 0) return [NaN, NaN];
  const rng = new DataRng(seed);
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += d[rng.int(n)];
    out.push(s / n);
  }
  return percentileInterval(out, level);
}

/**
 * Percentile-bootstrap interval of mean(a) - mean(b) for two independent samples (each
 * resampled separately). For paired samples use {@link bootstrapMeanCI} on the differences.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bootstrapMeanDiffCI } from "./stats.ts";
 * const [lo, hi] = bootstrapMeanDiffCI([5, 6, 7, 6], [1, 2, 1, 2], { seed: 2 });
 * assert.deepEqual(lo > 3 && hi < 6, true);
 * ```
 */
export function bootstrapMeanDiffCI(
  a: Numbers,
  b: Numbers,
  opts: BootstrapOptions = {},
): [number, number] {
  const { reps = 1000, seed = 0, level = 0.95 } = opts;
  if (a.length === 0 || b.length === 0) return [NaN, NaN];
  const rng = new DataRng(seed);
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    let sa = 0, sb = 0;
    for (let i = 0; i < a.length; i++) sa += a[rng.int(a.length)];
    for (let i = 0; i < b.length; i++) sb += b[rng.int(b.length)];
    out.push(sa / a.length - sb / b.length);
  }
  return percentileInterval(out, level);
}

/**
 * Precision at a fraction: of the `fraction` of items with the lowest ("least") or highest
 * ("most") `score`, the fraction that are also among the same-sized set with the lowest /
 * highest `truth`. The set size is max(1, round(fraction * n)); ties are broken by index
 * (stable order). A random score gives about `fraction`; a perfect one gives 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { precisionAtFraction } from "./stats.ts";
 * const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
 * const t = [2, 1, 3, 4, 5, 6, 7, 8, 10, 9];
 * assert.deepEqual(precisionAtFraction(s, t, 0.2, "least"), 1);
 * assert.deepEqual(precisionAtFraction(s, t, 0.1, "most"), 0);
 * ```
 */
export function precisionAtFraction(
  score: Numbers,
  truth: Numbers,
  fraction: number,
  which: "least" | "most",
): number {
  checkPair(score, truth, "precisionAtFraction");
  if (!(fraction > 0 && fraction <= 1)) {
    throw new FiligreeError(`precisionAtFraction: fraction must be in (0, 1], got ${fraction}`);
  }
  const n = score.length;
  if (n === 0) return NaN;
  const k = Math.max(1, Math.round(fraction * n));
  const sign = which === "least" ? 1 : -1;
  const top = (v: Numbers) => {
    const idx = Array.from({ length: n }, (_, i) => i);
    idx.sort((a, b) => sign * (v[a] - v[b]) || a - b);
    return idx.slice(0, k);
  };
  const truthSet = new Set(top(truth));
  let hit = 0;
  for (const i of top(score)) if (truthSet.has(i)) hit++;
  return hit / k;
}

/** Result of a Wilcoxon signed-rank test. */
export interface WilcoxonResult {
  /** min(W+, W-): the smaller of the positive and negative rank sums. */
  statistic: number;
  /** Two-sided p-value. */
  p: number;
  /** Non-zero differences used. */
  n: number;
  /** "exact" (n <= 25) or "normal". */
  method: "exact" | "normal";
}

/** Largest n for the exact Wilcoxon distribution. */
export const WILCOXON_EXACT_MAX = 25;

/**
 * Two-sided Wilcoxon signed-rank test of paired differences against zero. Zero differences are
 * dropped (Wilcoxon's method); ties get average ranks. For n <= 25 non-zero differences the
 * p-value is exact (the sign-flip distribution of the actual, possibly tied, ranks, enumerated
 * by dynamic programming); above that the normal approximation with the tie-corrected variance
 * (no continuity correction), as `scipy.stats.wilcoxon(d, method="asymptotic")`.
 * No differences (all zero) give p = 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wilcoxonSignedRank } from "./stats.ts";
 * const r = wilcoxonSignedRank([6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]);
 * assert.deepEqual(r.statistic, 24);
 * assert.deepEqual(r.p.toFixed(5), "0.04126");
 * ```
 */
export function wilcoxonSignedRank(diffs: Numbers): WilcoxonResult {
  const d = Array.from(diffs).filter((v) => v !== 0);
  const n = d.length;
  if (d.some((v) => !Number.isFinite(v))) {
    throw new FiligreeError("wilcoxonSignedRank: differences must be finite");
  }
  if (n === 0) return { statistic: 0, p: 1, n: 0, method: "exact" };
  const r = ranks(d.map(Math.abs));
  let wPlus = 0;
  for (let i = 0; i < n; i++) if (d[i] > 0) wPlus += r[i];
  const total = (n * (n + 1)) / 2;
  const statistic = Math.min(wPlus, total - wPlus);
  if (n <= WILCOXON_EXACT_MAX) {
    // Doubled ranks are integers; count sign assignments by their positive doubled-rank sum.
    // Loop bounds: n <= 25 items times a sum of at most n(n+1) = 650.
    const r2 = Array.from(r, (v) => Math.round(2 * v));
    const maxSum = r2.reduce((a, b) => a + b, 0);
    let counts = new Float64Array(maxSum + 1);
    counts[0] = 1;
    for (const v of r2) {
      const next = counts.slice();
      for (let s = v; s <= maxSum; s++) next[s] += counts[s - v];
      counts = next;
    }
    const w2 = Math.round(2 * statistic);
    let tail = 0;
    for (let s = 0; s <= w2; s++) tail += counts[s];
    const p = Math.min(1, (2 * tail) / 2 ** n);
    return { statistic, p, n, method: "exact" };
  }
  // Normal approximation with tie correction.
  let tieTerm = 0;
  const sorted = Float64Array.from(r).sort();
  let run = 1;
  for (let i = 1; i <= n; i++) {
    if (i < n && sorted[i] === sorted[i - 1]) run++;
    else {
      tieTerm += run ** 3 - run;
      run = 1;
    }
  }
  const mu = total / 2;
  const variance = (n * (n + 1) * (2 * n + 1)) / 24 - tieTerm / 48;
  const z = (statistic - mu) / Math.sqrt(variance);
  const p = Math.min(1, 2 * normalCdf(-Math.abs(z)));
  return { statistic, p, n, method: "normal" };
}

/**
 * Standard normal cumulative distribution (erfc-based, relative error below 1e-7 in the tails).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { normalCdf } from "./stats.ts";
 * assert.ok(Math.abs(normalCdf(0) - 0.5) < 1e-7); // error < 1.5e-7 (Abramowitz & Stegun 7.1.26)
 * ```
 */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** Complementary error function (Numerical Recipes' Chebyshev fit, |rel err| < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t *
    Math.exp(
      -z * z - 1.26551223 +
        t * (1.00002368 +
            t * (0.37409196 +
                t * (0.09678418 +
                    t * (-0.18628806 +
                        t * (0.27886807 +
                            t *
                              (-1.13520398 +
                                t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Largest n for which {@link pairedPermutationTest} enumerates all 2^n sign flips. */
export const PERMUTATION_EXACT_MAX = 16;

/**
 * Two-sided paired permutation (sign-flip) test of mean(diffs) = 0: the p-value is the share
 * of sign assignments whose |sum| is at least the observed |sum|. Exact enumeration of all
 * 2^n assignments when n <= 16 (at most 65,536); otherwise `reps` random flips with
 * p = (1 + hits) / (1 + reps). An empty input gives p = 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pairedPermutationTest } from "./stats.ts";
 * assert.deepEqual(pairedPermutationTest([1, 2, 3]), 0.25);
 * ```
 */
export function pairedPermutationTest(
  diffs: Numbers,
  opts: { reps?: number; seed?: number } = {},
): number {
  const { reps = 10000, seed = 0 } = opts;
  const d = Float64Array.from(diffs);
  const n = d.length;
  if (n === 0) return 1;
  let obs = 0, scale = 0;
  for (let i = 0; i < n; i++) {
    obs += d[i];
    scale += Math.abs(d[i]);
  }
  obs = Math.abs(obs);
  const eps = 1e-12 * scale; // sums equal up to rounding count as "at least as extreme"
  let hits = 0;
  if (n <= PERMUTATION_EXACT_MAX) {
    const total = 2 ** n;
    for (let mask = 0; mask < total; mask++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += (mask >> i) & 1 ? -d[i] : d[i];
      if (Math.abs(s) >= obs - eps) hits++;
    }
    return hits / total;
  }
  const rng = new DataRng(seed);
  for (let r = 0; r < reps; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += rng.u32() & 1 ? -d[i] : d[i];
    if (Math.abs(s) >= obs - eps) hits++;
  }
  return (1 + hits) / (1 + reps);
}

/**
 * Holm's step-down adjustment of a family of p-values (controls the family-wise error rate):
 * sorted ascending, the i-th smallest (0-based) becomes max over j <= i of min(1, (m - j) p_(j)).
 * Returned in the input order. NaN p-values stay NaN and do not count toward m.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { holm } from "./stats.ts";
 * assert.deepEqual(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02]);
 * ```
 */
export function holm(pvalues: Numbers): number[] {
  const idx: number[] = [];
  for (let i = 0; i < pvalues.length; i++) if (!Number.isNaN(pvalues[i])) idx.push(i);
  idx.sort((a, b) => pvalues[a] - pvalues[b]);
  const m = idx.length;
  const out = Array.from(pvalues, () => NaN);
  let running = 0;
  for (let j = 0; j < m; j++) {
    running = Math.max(running, Math.min(1, (m - j) * pvalues[idx[j]]));
    out[idx[j]] = running;
  }
  return out;
}

/**
 * Fisher's z transform `atanh(r)` (r clamped to ±(1 - 1e-12) so a perfect correlation stays
 * finite).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fisherZ } from "./stats.ts";
 * assert.deepEqual(fisherZ(0).toFixed(3), "0.000");
 * assert.deepEqual(fisherZ(0.5).toFixed(4), "0.5493");
 * ```
 */
export function fisherZ(r: number): number {
  const c = Math.max(-1 + 1e-12, Math.min(1 - 1e-12, r));
  return Math.atanh(c);
}

/** Result of {@link fisherZMean}. */
export interface FisherZMean {
  /** tanh of the mean z. */
  value: number;
  /** 95 % interval: tanh(mean z ± 1.96·se), se from the per-correlation standard errors. */
  ci: [number, number];
  /** Correlations that entered (finite ones). */
  n: number;
}

/**
 * Unweighted mean of correlations in Fisher z, back-transformed: each correlation (e.g. one per
 * layer) counts once whatever its sample size. The interval uses the standard error of a
 * Spearman z, `√(1.06/(n_k - 3))` (Fieller, Hartley & Pearson 1957) per correlation, so
 * `se(mean z) = √(Σ se_k²)/K`. Non-finite correlations (and n_k ≤ 3) are left out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fisherZMean } from "./stats.ts";
 * const m = fisherZMean([0.2, 0.6], [100, 1000]);
 * assert.deepEqual(m.value.toFixed(4), "0.4202"); // tanh((atanh 0.2 + atanh 0.6) / 2)
 * assert.deepEqual(m.n, 2);
 * ```
 */
export function fisherZMean(r: Numbers, n: Numbers): FisherZMean {
  checkPair(r, n, "fisherZMean");
  let sz = 0, sv = 0, k = 0;
  for (let i = 0; i < r.length; i++) {
    if (!Number.isFinite(r[i]) || !(n[i] > 3)) continue;
    sz += fisherZ(r[i]);
    sv += 1.06 / (n[i] - 3);
    k++;
  }
  if (k === 0) return { value: NaN, ci: [NaN, NaN], n: 0 };
  const z = sz / k, se = Math.sqrt(sv) / k;
  return { value: Math.tanh(z), ci: [Math.tanh(z - 1.96 * se), Math.tanh(z + 1.96 * se)], n: k };
}

/** A variable's ascending order with its runs of equal values (tie groups). */
export interface TieOrder {
  /** Item indices in ascending order of value (ties adjacent). */
  order: Uint32Array;
  /** Start of each tie group in `order`, then `n` (length = groups + 1). */
  starts: Uint32Array;
  /** Per item: its tie group. */
  group: Uint32Array;
}

function tieOrder(v: Numbers, by?: Numbers): TieOrder {
  const n = v.length, order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (by) order.sort((a, b) => v[a] - v[b] || by[a] - by[b]);
  else order.sort((a, b) => v[a] - v[b]);
  const starts: number[] = [], group = new Uint32Array(n);
  for (let p = 0; p < n; p++) {
    const k = order[p], prev = order[p - 1];
    if (p === 0 || v[k] !== v[prev] || (by !== undefined && by[k] !== by[prev])) {
      starts.push(p);
    }
    group[k] = starts.length - 1;
  }
  starts.push(n);
  return { order, starts: Uint32Array.from(starts), group };
}

/**
 * Average ranks of a resample given as multiplicities (`counts[k]` copies of item k), written at
 * each item with `counts[k] > 0`: a tie group holding M drawn copies after `pos` smaller ones
 * ranks `pos + (M + 1)/2`, exactly what {@link ranks} gives the explicit resample.
 */
function resampleRanks(t: TieOrder, counts: Uint32Array, out: Float64Array): void {
  const { order, starts } = t;
  let pos = 0;
  for (let g = 0; g + 1 < starts.length; g++) {
    const a = starts[g], b = starts[g + 1];
    if (b === a + 1) {
      // A value held by one item (the common case for continuous data).
      const k = order[a], c = counts[k];
      if (c === 0) continue;
      out[k] = pos + (c + 1) / 2;
      pos += c;
      continue;
    }
    let m = 0;
    for (let p = a; p < b; p++) m += counts[order[p]];
    if (m === 0) continue;
    const avg = pos + (m + 1) / 2;
    for (let p = a; p < b; p++) out[order[p]] = avg;
    pos += m;
  }
}

/** Sum over tie groups of M(M-1)/2, M = drawn copies in the group. */
function tiedPairsOf(t: TieOrder, counts: Uint32Array): number {
  const { order, starts } = t;
  let s = 0;
  for (let g = 0; g + 1 < starts.length; g++) {
    let m = 0;
    for (let p = starts[g]; p < starts[g + 1]; p++) m += counts[order[p]];
    s += (m * (m - 1)) / 2;
  }
  return s;
}

/**
 * A variable prepared for rank statistics: its values, sorted order with tie groups and average
 * ranks, computed once and shared by every correlation and bootstrap that uses it
 * ({@link rankPrepare}).
 */
export interface Ranked {
  readonly values: Float64Array;
  /** Average-tie ranks, as {@link ranks} gives them. */
  readonly ranks: Float64Array;
  /** Sorted order and tie groups; null when a value is not finite (plain path). */
  readonly ties: TieOrder | null;
}

/**
 * Prepares `x` for {@link spearmanRanked} and {@link rankBootstrap} (one sort).
 *
 * @example
 * ```ts
 * import { rankPrepare, spearman, spearmanRanked } from "./stats.ts";
 * const a = rankPrepare([3, 1, 2, 2]), b = rankPrepare([30, 5, 10, 20]);
 * console.log(spearmanRanked(a, b) === spearman([3, 1, 2, 2], [30, 5, 10, 20])); // true
 * ```
 */
export function rankPrepare(x: Numbers | Ranked): Ranked {
  if (isRanked(x)) return x;
  const values = Float64Array.from(x);
  if (!values.every(Number.isFinite)) return { values, ranks: ranks(values), ties: null };
  const ties = tieOrder(values), r = new Float64Array(values.length);
  const { order, starts } = ties;
  for (let g = 0; g + 1 < starts.length; g++) {
    const avg = (starts[g] + 1 + starts[g + 1]) / 2; // mean of ranks a+1 .. b
    for (let p = starts[g]; p < starts[g + 1]; p++) r[order[p]] = avg;
  }
  return { values, ranks: r, ties };
}

function isRanked(x: Numbers | Ranked): x is Ranked {
  return (x as Ranked).ranks instanceof Float64Array && (x as Ranked).values !== undefined;
}

/** {@link spearman} of two prepared variables (no sorting). */
export function spearmanRanked(a: Ranked, b: Ranked): number {
  checkPair(a.values, b.values, "spearman");
  return pearson(a.ranks, b.ranks);
}

/** Rank correlations with a fast bootstrap ({@link rankBootstrap}). */
export type RankStatistic = "spearman" | "kendall";

/** Options of {@link rankBootstrap}. */
export interface RankBootstrapOptions {
  /** Resamples. */
  reps: number;
  /** Seed of the resampling. */
  seed: number;
  /** Pairs drawn per resample (default n: the ordinary bootstrap; less: m-out-of-n). */
  size?: number;
}

/**
 * Bootstrap replicates of Spearman's ρ or Kendall's τ-b: replicate r is the statistic of `size`
 * pairs drawn with replacement, the same draws (`DataRng(seed)`, `size` calls of `int(n)` per
 * resample) as {@link bootstrapCI}, and the same value as {@link spearman} / {@link kendallTauB}
 * of the explicit resample, to the last bit (both work in exact half-integer / integer
 * arithmetic). Fast: the sort and the tie groups of x and y are computed once; a resample is
 * its multiplicities, ranked in O(n) (Spearman) or counted with a Fenwick tree in O(n log n)
 * without sorting (Kendall). Inputs with a non-finite value take the explicit path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rankBootstrap, spearman } from "./stats.ts";
 * const x = [1, 2, 2, 3, 5, 4, 7], y = [2, 1, 4, 4, 6, 5, 7];
 * const reps = rankBootstrap("spearman", x, y, { reps: 50, seed: 3 });
 * assert.deepEqual(reps.length, 50);
 * assert.deepEqual(reps.every((r) => Number.isNaN(r) || Math.abs(r) <= 1), true);
 * ```
 */
export function rankBootstrap(
  statistic: RankStatistic,
  xIn: Numbers | Ranked,
  yIn: Numbers | Ranked,
  opts: RankBootstrapOptions,
): Float64Array {
  const px = rankPrepare(xIn), py = rankPrepare(yIn), x = px.values, y = py.values;
  checkPair(x, y, "rankBootstrap");
  const n = x.length, m = opts.size ?? n, reps = opts.reps;
  const out = new Float64Array(reps);
  if (n === 0) return out.fill(NaN);
  const rng = new DataRng(opts.seed);
  if (!px.ties || !py.ties) {
    // Explicit resamples (NaN orders are not total; keep the plain functions' behaviour).
    const f = statistic === "spearman" ? spearman : kendallTauB;
    const bx = new Float64Array(m), by = new Float64Array(m);
    for (let r = 0; r < reps; r++) {
      for (let i = 0; i < m; i++) {
        const k = rng.int(n);
        bx[i] = x[k];
        by[i] = y[k];
      }
      out[r] = f(bx, by);
    }
    return out;
  }
  const counts = new Uint32Array(n);
  const draw = () => {
    counts.fill(0);
    for (let i = 0; i < m; i++) counts[rng.int(n)]++;
  };
  const tx = px.ties, ty = py.ties;
  if (statistic === "spearman") {
    const rx = new Float64Array(n), ry = new Float64Array(n), mean = (m + 1) / 2;
    for (let r = 0; r < reps; r++) {
      draw();
      resampleRanks(tx, counts, rx);
      resampleRanks(ty, counts, ry);
      let sxy = 0, sxx = 0, syy = 0;
      for (let k = 0; k < n; k++) {
        const c = counts[k];
        if (c === 0) continue;
        const dx = rx[k] - mean, dy = ry[k] - mean;
        sxy += c * dx * dy;
        sxx += c * dx * dx;
        syy += c * dy * dy;
      }
      out[r] = m < 2 || sxx === 0 || syy === 0
        ? NaN
        : Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
    }
    return out;
  }
  // Kendall: walk the items in (x, y) order; discordant pairs are the weighted inversions of
  // y's dense rank (Knight's swap count), counted with a Fenwick tree over y's tie groups.
  const G = ty.starts.length - 1, singleX = tx.starts.length - 1 === n, singleY = G === n;
  const txy = singleX ? tx : tieOrder(x, y);
  const tree = new Float64Array(G + 1);
  for (let r = 0; r < reps; r++) {
    draw();
    tree.fill(0);
    let swaps = 0, seen = 0;
    for (let p = 0; p < n; p++) {
      const k = txy.order[p], c = counts[k];
      if (c === 0) continue;
      const g = ty.group[k] + 1;
      let le = 0;
      for (let i = g; i > 0; i -= i & -i) le += tree[i];
      swaps += c * (seen - le);
      for (let i = g; i <= G; i += i & -i) tree[i] += c;
      seen += c;
    }
    const n0 = (m * (m - 1)) / 2;
    // Copies of one item tie in x, y and jointly: with no ties in a variable, its tied pairs are
    // those copies' pairs alone.
    let self = 0;
    if (singleX || singleY) {
      for (let k = 0; k < n; k++) self += (counts[k] * (counts[k] - 1)) / 2;
    }
    const n1 = singleX ? self : tiedPairsOf(tx, counts);
    const n2 = singleY ? self : tiedPairsOf(ty, counts);
    const n3 = singleX || singleY ? self : tiedPairsOf(txy, counts);
    const denom = Math.sqrt((n0 - n1) * (n0 - n2));
    out[r] = m < 2 || denom === 0
      ? NaN
      : Math.max(-1, Math.min(1, (n0 - n1 - n2 + n3 - 2 * swaps) / denom));
  }
  return out;
}

/**
 * {@link bootstrapCI} of Spearman's ρ or Kendall's τ-b through {@link rankBootstrap}: the same
 * interval, computed without re-sorting each resample.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bootstrapCI, kendallTauB, rankBootstrapCI } from "./stats.ts";
 * const x = [1, 2, 2, 3, 5, 4, 7, 7], y = [2, 1, 4, 4, 6, 5, 7, 3];
 * const fast = rankBootstrapCI("kendall", x, y, { reps: 60, seed: 3 });
 * const plain = bootstrapCI(kendallTauB, x, y, { reps: 60, seed: 3 });
 * assert.deepEqual(fast[0] === plain[0] && fast[1] === plain[1], true);
 * ```
 */
export function rankBootstrapCI(
  statistic: RankStatistic,
  x: Numbers | Ranked,
  y: Numbers | Ranked,
  opts: BootstrapOptions = {},
): [number, number] {
  const { reps = 1000, seed = 0, level = 0.95 } = opts;
  const px = rankPrepare(x), py = rankPrepare(y);
  if (px.values.length === 0) return [NaN, NaN];
  return percentileInterval(Array.from(rankBootstrap(statistic, px, py, { reps, seed })), level);
}
