/**
 * Adds the weight-agnostic evaluation (src/analysis/agnostic.ts) to every analyzed cell of a study
 * store that lacks it, without rerunning the cells (src/study/agnostic_backfill.ts): so a study
 * already running can test docs/HYPOTHESES.md H9 (`statistic: agnostic`) without changing its
 * `analysis` block (which would change every cell's id). Resumable; takes the store's lock (not
 * while a sweep of the same store runs). Exits 1 with one line on stderr on bad input.
 *
 * Usage: deno run -A scripts/agnostic-backfill.ts STORE.sqlite [--max-cells N] [--eval-samples N]
 * (default: the study's analysis evalSamples; 76 s per 784-300-100-10 cell at 5,000 samples on the
 * software adapter, GL, load 11-13)
 * @module
 */
import { FiligreeError } from "../src/gpu/errors.ts";
import { backfillAgnostic } from "../src/study/agnostic_backfill.ts";

if (import.meta.main) {
  try {
    const usage =
      "usage: scripts/agnostic-backfill.ts STORE.sqlite [--max-cells N] [--eval-samples N]";
    const [store, ...rest] = Deno.args;
    const num: Record<string, number> = {};
    for (let i = 0; i < rest.length; i += 2) {
      if (
        !["--max-cells", "--eval-samples"].includes(rest[i]) ||
        !/^[1-9]\d*$/.test(rest[i + 1] ?? "")
      ) {
        throw new FiligreeError(usage);
      }
      num[rest[i]] = Number(rest[i + 1]);
    }
    if (!store) throw new FiligreeError(usage);
    const t0 = performance.now();
    const r = await backfillAgnostic(store, {
      maxCells: num["--max-cells"],
      evalSamples: num["--eval-samples"],
      onCell: (i, s) => console.log(`cell ${i}: agnostic evaluation stored (${s.toFixed(1)} s)`),
    });
    console.log(
      `${store}: ${r.added.length} cells got their agnostic result, ${r.skipped} skipped ` +
        `(already done or not analyzed) in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );
  } catch (e) {
    if (!(e instanceof FiligreeError)) throw e;
    console.error(`agnostic-backfill: ${e.message}`);
    Deno.exit(1);
  }
}
