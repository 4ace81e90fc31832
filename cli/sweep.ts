/**
 * `deno task sweep`: run a study (studies/*.yaml) — every cell trained, analyzed and recorded in
 * the study's SQLite store; safe to kill and rerun (finished cells are skipped, interrupted
 * ones resume from their checkpoint). `--shard i/N` runs every N-th cell (merge the shard
 * stores with `deno task merge`); `--dry-run` lists the cells with a time estimate.
 *
 * @example
 * ```sh
 * deno task sweep studies/smoke.yaml
 * deno task sweep studies/activation-norm-mlp.yaml --dry-run --shard 0/8
 * deno task sweep studies/activation-norm-mlp.yaml --shard 3/8
 * ```
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { FiligreeError } from "../src/gpu/errors.ts";
import { describeFactors, readStudySpec } from "../src/study/spec.ts";
import { type Analyzer, formatDuration, planStudy, runStudy } from "../src/study/sweep.ts";
import { defaultRunsDir, defaultStorePath, parseShard, shardCells } from "../src/study/shard.ts";
import { StudyStore } from "../src/study/store.ts";
import { guarded } from "./main.ts";

/** Cells of the shard not yet in the store (no GPU, no timing). */
async function pendingCells(
  spec: Awaited<ReturnType<typeof readStudySpec>>,
  storePath: string,
  shard: ReturnType<typeof parseShard> | undefined,
): Promise<number> {
  const mine = shardCells(spec.cells, shard);
  try {
    await Deno.stat(storePath);
  } catch {
    return mine.length;
  }
  const store = StudyStore.openReadOnly(storePath);
  try {
    const done = store.doneIds();
    return mine.filter((c) => !done.has(c.id)).length;
  } finally {
    store.close();
  }
}

/** The `sweep` subcommand. */
export function sweepCommand() {
  return new Command("sweep")
    .description("run a study: train, analyze and record every cell (resumable)")
    .argument("<study>", "study spec (YAML)")
    .option("--dry-run", "list the cells and estimate the time; run nothing")
    .option("--shard <i/N>", "run only cells k with k mod N = i (0-based)")
    .option("--store <path>", "SQLite store (default runs/studies/<name>/store[-i-of-N].sqlite)")
    .option("--runs <dir>", "root of the cell run directories (default runs/studies/<name>/cells)")
    .option("--quiet", "no progress output")
    .option(
      "--cells-per-process <n>",
      "run cells in child processes of n cells each, so GPU memory is returned between them " +
        "(default 4; 0 = all in this process)",
    )
    .option("--max-cells <n>", "stop after recording n cells")
    .action((study, opts) =>
      guarded(async () => {
        const spec = await readStudySpec(study);
        const shard = opts.shard ? parseShard(opts.shard) : undefined;
        const storePath = opts.store ?? defaultStorePath(spec.name, shard);
        const runsDir = opts.runs ?? defaultRunsDir(spec.name);
        if (opts.dryRun) {
          const plan = await planStudy(spec, { storePath, shard });
          const pending = new Set(plan.pending.map((c) => c.id));
          for (const c of plan.cells) {
            console.log(
              `${String(c.index).padStart(5)}  ${c.id}  ${pending.has(c.id) ? "todo" : "done"}  ${
                describeFactors(c.factors)
              }`,
            );
          }
          console.log(
            `study ${spec.name}: ${spec.cells.length} cells; ${plan.cells.length} in ${
              shard ? `shard ${shard.index}/${shard.count}` : "this run"
            }, ${plan.pending.length} not yet in ${storePath}`,
          );
          console.log(
            `estimated time: ${formatDuration(plan.estimate.seconds)} (${plan.estimate.how})`,
          );
          return;
        }
        const perProcess = opts.cellsPerProcess === undefined ? 4 : Number(opts.cellsPerProcess);
        if (!Number.isInteger(perProcess) || perProcess < 0) {
          throw new FiligreeError(`--cells-per-process: expected an integer >= 0`);
        }
        if (perProcess > 0 && opts.maxCells === undefined) {
          // Parent: children of `perProcess` cells each until the shard is done. Deno's Vulkan
          // path on lavapipe keeps ~1 MB of host memory per training step that garbage
          // collection does not return (README, "Vulkan or GL"); a child's exit returns it.
          const self = new URL("./main.ts", import.meta.url).pathname;
          const pass = Deno.args.filter((a, i, all) =>
            a !== "--cells-per-process" && all[i - 1] !== "--cells-per-process"
          );
          for (;;) {
            if (await pendingCells(spec, storePath, shard) === 0) break;
            const child = new Deno.Command(Deno.execPath(), {
              args: [
                "run",
                "--allow-read",
                "--allow-write",
                "--allow-env",
                "--allow-sys",
                "--allow-ffi",
                "--allow-run",
                self,
                ...pass,
                "--max-cells",
                String(perProcess),
              ],
              stdout: "inherit",
              stderr: "inherit",
            });
            const { code } = await child.output();
            if (code !== 0) Deno.exit(code);
          }
          if (!opts.quiet) console.log(`study ${spec.name}: all cells recorded in ${storePath}`);
          return;
        }
        let analyze: Analyzer | undefined;
        if (spec.analysis) {
          // Loaded only when needed, so studies without analysis run without it.
          try {
            const { ablateRun } = await import("../src/analysis/run.ts");
            analyze = ablateRun;
          } catch (e) {
            throw new FiligreeError(
              `the analysis step (src/analysis/run.ts) cannot be loaded: ${
                (e as Error).message.split("\n")[0]
              }; set "analysis: false" in ${study} to sweep without it`,
            );
          }
        }
        const r = await runStudy(spec, {
          storePath,
          runsDir,
          shard,
          analyze,
          quiet: opts.quiet,
          command: `filigree ${Deno.args.join(" ")}`,
          maxCells: opts.maxCells === undefined ? undefined : Number(opts.maxCells),
        });
        if (!opts.quiet) {
          console.log(
            `study ${spec.name}: ${r.recorded.length} cells recorded, ${r.skipped} already done; ` +
              `store ${storePath}`,
          );
        }
      })
    );
}
