/**
 * The fast rank bootstrap (src/analysis/stats.ts `rankBootstrap`) against the plain one: the
 * same seeded draws, each resample built explicitly and passed to `spearman` / `kendallTauB`.
 * Every replicate must be identical to the last bit, on heavy ties, odd sizes, m-out-of-n
 * resamples, constant and non-finite inputs.
 */
import {
  bootstrapCI,
  kendallTauB,
  rankBootstrap,
  rankBootstrapCI,
  rankPrepare,
  ranks,
  type RankStatistic,
  spearman,
  spearmanRanked,
} from "../../src/analysis/stats.ts";
import { DataRng } from "../../src/data/random.ts";
import { freshSeed, Rng } from "../../src/testing/mod.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

/** The plain bootstrap: explicit resamples of `size` pairs, DataRng(seed), int(n) per pair. */
function plain(
  stat: RankStatistic,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  reps: number,
  seed: number,
  size = x.length,
): Float64Array {
  const f = stat === "spearman" ? spearman : kendallTauB;
  const rng = new DataRng(seed), n = x.length, out = new Float64Array(reps);
  const bx = new Float64Array(size), by = new Float64Array(size);
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < size; i++) {
      const k = rng.int(n);
      bx[i] = x[k];
      by[i] = y[k];
    }
    out[r] = f(bx, by);
  }
  return out;
}

function same(got: Float64Array, want: Float64Array, what: string): void {
  assert(got.length === want.length, `${what}: ${got.length} vs ${want.length} replicates`);
  for (let r = 0; r < got.length; r++) {
    const ok = Object.is(got[r], want[r]) || (got[r] === want[r]); // 0 === -0 counts as equal
    assert(ok, `${what}: replicate ${r} is ${got[r]}, the plain bootstrap gives ${want[r]}`);
  }
}

Deno.test("rankBootstrap == explicit resamples, bit for bit: ties, odd sizes, m-out-of-n", () => {
  const seed = freshSeed(), rng = new Rng(seed);
  const tag = `(FILIGREE_SEED=${seed})`;
  for (const n of [1, 2, 3, 7, 28, 101, 403]) {
    for (const ties of [0, 3, 40]) {
      // ties = 0: continuous values; else integers in [0, ties): many tie groups in x and y.
      const v = () => ties === 0 ? rng.next() * 2 - 1 : rng.int(ties);
      const x: number[] = [], y: number[] = [];
      for (let i = 0; i < n; i++) {
        x.push(v());
        y.push(rng.next() < 0.5 ? x[i] + (ties ? rng.int(3) : rng.next()) : v());
      }
      // -0 and 0 tie in both implementations (ties = 0 keeps x and y free of ties: fast paths).
      if (n > 3 && ties === 3) (x[1] = 0), (x[2] = -0);
      const px = rankPrepare(x), py = rankPrepare(y);
      const rho = spearmanRanked(px, py), want = spearman(x, y);
      assert(Object.is(rho, want), `spearmanRanked ${rho} vs spearman ${want} ${tag}`);
      assert(Array.from(px.ranks).join() === Array.from(ranks(x)).join(), `ranks ${tag}`);
      for (const stat of ["spearman", "kendall"] as RankStatistic[]) {
        const s = rng.int(1 << 30);
        for (const size of [n, Math.max(1, Math.floor(n / 3)), n + 5]) {
          const got = rankBootstrap(stat, x, y, { reps: 25, seed: s, size });
          const want = plain(stat, x, y, 25, s, size);
          same(got, want, `${stat} n ${n} ties ${ties} size ${size} ${tag}`);
          // Prepared once (rankPrepare) and reused: the same replicates.
          const prepared = rankBootstrap(stat, px, py, { reps: 25, seed: s, size });
          same(prepared, want, `${stat} prepared n ${n} ties ${ties} size ${size} ${tag}`);
        }
      }
    }
  }
});

Deno.test("rankBootstrap: constant inputs give NaN replicates, non-finite inputs the plain path", () => {
  const c = [2, 2, 2, 2, 2], y = [1, 3, 2, 5, 4];
  for (const stat of ["spearman", "kendall"] as RankStatistic[]) {
    const got = rankBootstrap(stat, c, y, { reps: 10, seed: 1 });
    assert(got.every(Number.isNaN), `${stat}: a constant x has no rank correlation`);
    same(got, plain(stat, c, y, 10, 1), `${stat} constant`);
    const withNaN = [1, NaN, 3, Infinity, 0.5, -Infinity, 2];
    const yy = [3, 1, 2, 2, 7, 4, 1];
    same(
      rankBootstrap(stat, withNaN, yy, { reps: 12, seed: 4 }),
      plain(stat, withNaN, yy, 12, 4),
      `${stat} non-finite`,
    );
  }
  assert(rankBootstrap("spearman", [], [], { reps: 3, seed: 0 }).every(Number.isNaN), "empty");
});

Deno.test("rankBootstrapCI == bootstrapCI(spearman|kendallTauB) on fresh data", () => {
  const seed = freshSeed(), rng = new Rng(seed);
  const n = 257, x = Array.from({ length: n }, () => rng.int(50));
  const y = x.map((v) => v + rng.int(30) - (rng.next() < 0.1 ? 40 : 0));
  for (const [stat, f] of [["spearman", spearman], ["kendall", kendallTauB]] as const) {
    const a = rankBootstrapCI(stat, x, y, { reps: 80, seed });
    const b = bootstrapCI(f, x, y, { reps: 80, seed });
    assert(a[0] === b[0] && a[1] === b[1], `${stat}: [${a}] vs [${b}] (FILIGREE_SEED=${seed})`);
    assert(a[0] < f(x, y) && f(x, y) < a[1], `${stat}: interval covers the estimate`);
  }
});

Deno.test("correlationCI (run.ts): m-out-of-n above 4,000 pairs equals the plain computation", async () => {
  const { correlationCI, BOOTSTRAP_MAX_PAIRS } = await import("../../src/analysis/run.ts");
  const seed = freshSeed(), rng = new Rng(seed);
  const n = BOOTSTRAP_MAX_PAIRS + 333, m = BOOTSTRAP_MAX_PAIRS;
  const x = Array.from({ length: n }, () => rng.int(400) / 7);
  const y = x.map((v) => v + rng.next() * 30);
  for (const [stat, f] of [["spearman", spearman], ["kendall", kendallTauB]] as const) {
    const reps = 12, full = f(x, y);
    const got = Array.from(plain(stat, x, y, reps, seed, m)).filter(Number.isFinite);
    const q = (p: number) => {
      const s = Float64Array.from(got).sort(), h = (s.length - 1) * p, lo = Math.floor(h);
      return s[lo] + (h - lo) * (s[Math.min(s.length - 1, lo + 1)] - s[lo]);
    };
    const c = Math.sqrt(m / n);
    const want = [full + c * (q(0.025) - full), full + c * (q(0.975) - full)];
    const ci = correlationCI(f, x, y, reps, seed);
    assert(
      ci[0] === want[0] && ci[1] === want[1],
      `${stat}: [${ci}] vs plain [${want}] (FILIGREE_SEED=${seed})`,
    );
  }
});
