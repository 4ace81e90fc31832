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
import { describeFactors, readStudySpec, type StudyCell } from "../src/study/spec.ts";
import { type Analyzer, formatDuration, planStudy, runStudy } from "../src/study/sweep.ts";
import { defaultRunsDir, defaultStorePath, parseShard, shardCells } from "../src/study/shard.ts";
import { StudyStore } from "../src/study/store.ts";
import { reuseCells } from "../src/study/reuse.ts";
import {
  cellToBlame,
  failedCells,
  type FailureRow,
  markRetry,
  recordFailure,
  skippedFailures,
} from "../src/study/failures.ts";
import { StoreLock } from "../src/study/lock.ts";
import { guarded } from "./main.ts";
import { nonNegativeInt, number, positiveInt } from "./args.ts";

/** Cells of the shard neither in the store nor failed before, in order (no GPU, no timing). */
async function pendingCells(
  spec: Awaited<ReturnType<typeof readStudySpec>>,
  storePath: string,
  shard: ReturnType<typeof parseShard> | undefined,
): Promise<StudyCell[]> {
  const mine = shardCells(spec.cells, shard);
  try {
    await Deno.stat(storePath);
  } catch {
    return mine;
  }
  const store = StudyStore.openReadOnly(storePath);
  try {
    const done = store.doneIds();
    const failed = skippedFailures(store.db);
    return mine.filter((c) => !done.has(c.id) && !failed.has(c.id));
  } finally {
    store.close();
  }
}

/** The failure rows the sweep will skip (status "failed"). */
async function failedBefore(storePath: string): Promise<FailureRow[]> {
  try {
    await Deno.stat(storePath);
  } catch {
    return [];
  }
  const store = StudyStore.openReadOnly(storePath);
  try {
    return failedCells(store.db).filter((f) => f.status === "failed");
  } finally {
    store.close();
  }
}

/**
 * Environment variable set in a sweep's child processes: the parent's pid. A child stops when
 * its stdin (a pipe from the parent, never written) closes, i.e. when the parent is gone, so a
 * killed sweep leaves no orphan racing the next one over a cell.
 */
const CHILD_ENV = "FILIGREE_SWEEP_PARENT";

/** In a child: exit as soon as the parent's pipe on stdin closes. */
function watchParent(): void {
  (async () => {
    const buf = new Uint8Array(64);
    try {
      while ((await Deno.stdin.read(buf)) !== null) {
        // the parent never writes; wait for end-of-file
      }
    } catch {
      // a closed or broken pipe: the parent is gone as well
    }
    console.error(`filigree: sweep child ${Deno.pid}: parent sweep is gone, stopping`);
    Deno.exit(3);
  })();
}

/** Environment variable through which a sweep's child processes learn the user's command. */
const COMMAND_ENV = "FILIGREE_SWEEP_COMMAND";
/** Environment variable passing the parent's --max-minutes deadline (ms since the epoch). */
const DEADLINE_ENV = "FILIGREE_SWEEP_DEADLINE";
/** Exit code of a child that stopped at the deadline with cells left (EX_TEMPFAIL). */
const OUT_OF_TIME_EXIT = 75;

/** The command line as typed (arguments with spaces or quotes quoted). */
function userCommand(): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
  return ["filigree", ...Deno.args.map(q)].join(" ");
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
      nonNegativeInt(),
    )
    .option("--max-cells <n>", "stop after recording n cells (in this process)", positiveInt())
    .option(
      "--max-minutes <m>",
      "time budget: start no cell that would end after m minutes (a running cell finishes); " +
        "run the sweep again to go on",
      number({ gt: 0 }),
    )
    .option(
      "--reuse <store>",
      "copy the cells of this study that another study's store already holds (same training " +
        "config and analysis: same cell id) instead of running them; repeatable",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option(
      "--retry-failed",
      "run the cells that failed in earlier sweeps again (by default they are skipped)",
    )
    .action((study, opts) =>
      guarded(async () => {
        const spec = await readStudySpec(study);
        const shard = opts.shard ? parseShard(opts.shard) : undefined;
        const storePath = opts.store ?? defaultStorePath(spec.name, shard);
        const runsDir = opts.runs ?? defaultRunsDir(spec.name);
        if (opts.dryRun) {
          // The estimate times one analysis when the store has none yet (issue 15 item 4): one
          // line says so (a CNN or LSTM analysis takes minutes on a software adapter), its own
          // progress output stays quiet.
          const ablateRun = spec.analysis
            ? (await import("../src/analysis/run.ts")).ablateRun
            : undefined;
          const analyze: Analyzer | undefined = ablateRun &&
            ((dir, o) => {
              console.log(
                "estimating: timing one analysis of an untrained model with the study's analysis options ...",
              );
              return ablateRun(dir, o, { quiet: true });
            });
          const plan = await planStudy(spec, { storePath, shard, analyze, reuse: opts.reuse });
          const pending = new Set(plan.pending.map((c) => c.id));
          const reusable = new Set(plan.reusable.map((c) => c.id));
          for (const c of plan.cells) {
            const state = pending.has(c.id) ? "todo" : reusable.has(c.id) ? "reuse" : "done";
            console.log(
              `${String(c.index).padStart(5)}  ${c.id}  ${state.padEnd(5)}  ${
                describeFactors(c.factors)
              }`,
            );
          }
          console.log(
            `study ${spec.name}: ${spec.cells.length} cells; ${plan.cells.length} in ${
              shard ? `shard ${shard.index}/${shard.count}` : "this run"
            }, ${plan.pending.length + plan.reusable.length} not yet in ${storePath}` +
              (opts.reuse.length
                ? ` (${plan.reusable.length} of them to be copied from ${opts.reuse.join(", ")})`
                : ""),
          );
          console.log(
            `estimated time: ${formatDuration(plan.estimate.seconds)} (${plan.estimate.how})`,
          );
          return;
        }
        const perProcess = opts.cellsPerProcess ?? 4;
        // The budget is absolute: children inherit the parent's deadline, not a fresh budget.
        const envDeadline = Number(Deno.env.get(DEADLINE_ENV) ?? NaN);
        const deadline = Number.isFinite(envDeadline)
          ? envDeadline
          : opts.maxMinutes !== undefined
          ? Date.now() + opts.maxMinutes * 60_000
          : undefined;
        const isChild = Deno.env.get(CHILD_ENV) !== undefined;
        if (isChild) watchParent();
        // One sweep per store: the parent (or a sweep running in-process) holds the lock; its
        // children run under it.
        const lock = isChild ? null : await StoreLock.acquire(storePath, {
          log: (l) => !opts.quiet && console.log(l),
        });
        let childOutOfTime = false;
        const bye = (code: number) => {
          lock?.release();
          Deno.exit(code);
        };
        const onSignal = (code: number) => () => bye(code);
        const signals: [Deno.Signal, () => void][] = [
          ["SIGINT", onSignal(130)],
          ["SIGTERM", onSignal(143)],
        ];
        for (const [sig, f] of signals) Deno.addSignalListener(sig, f);
        try {
          if (opts.reuse.length && !isChild) {
            const r = reuseCells(spec, storePath, opts.reuse, shard);
            if (!opts.quiet || r.added) {
              console.log(
                `study ${spec.name}: reused ${r.added} cells (` +
                  r.bySource.map((b) => `${b.added} from ${b.from}, study ${b.study}`).join("; ") +
                  `)`,
              );
            }
          }
          if (opts.retryFailed && !isChild) {
            const store = StudyStore.open(storePath, { study: spec.name });
            try {
              const n = markRetry(store.db);
              if (!opts.quiet) console.log(`study ${spec.name}: retrying ${n} failed cells`);
            } finally {
              store.close();
            }
          }
          if (perProcess > 0 && opts.maxCells === undefined) {
            // Parent: children of `perProcess` cells each until the shard is done. A child's exit
            // returns all of its device memory and a crash costs one batch of cells (lavapipe's
            // per-dispatch leak is worked around in the runtime: README, "Vulkan or GL").
            const self = new URL("./main.ts", import.meta.url).pathname;
            const pass = Deno.args.filter((a, i, all) =>
              a !== "--cells-per-process" && all[i - 1] !== "--cells-per-process" &&
              a !== "--max-minutes" && all[i - 1] !== "--max-minutes" &&
              !a.startsWith("--max-minutes=") && a !== "--retry-failed" &&
              a !== "--reuse" && all[i - 1] !== "--reuse" && !a.startsWith("--reuse=")
            );
            let outOfTime = false;
            let crashed = 0;
            const skipped = await failedBefore(storePath);
            if (skipped.length && !opts.quiet) {
              const mineIds = new Set(shardCells(spec.cells, shard).map((c) => c.id));
              for (const f of skipped.filter((f) => mineIds.has(f.cell_id))) {
                console.log(
                  `cell ${f.cell_index} ${f.cell_id} ${
                    describeFactors(JSON.parse(f.factors))
                  }: skipped, it failed in an earlier sweep: ${f.message} ` +
                    `(sweep --retry-failed runs it again)`,
                );
              }
            }
            for (;;) {
              const todo = await pendingCells(spec, storePath, shard);
              if (todo.length === 0) break;
              if (deadline !== undefined && Date.now() >= deadline) {
                outOfTime = true;
                break;
              }
              const child = new Deno.Command(Deno.execPath(), {
                args: [
                  "run",
                  "--v8-flags=--expose-gc",
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
                stdin: "piped",
                stdout: "inherit",
                stderr: "inherit",
                // The store records the user's command, not the child's injected --max-cells.
                env: {
                  [COMMAND_ENV]: userCommand(),
                  [CHILD_ENV]: String(Deno.pid),
                  ...(deadline !== undefined ? { [DEADLINE_ENV]: String(deadline) } : {}),
                },
              }).spawn();
              lock?.setChildren([child.pid]);
              const status = await child.status;
              lock?.setChildren([]);
              await child.stdin.close().catch(() => {});
              if (status.code === OUT_OF_TIME_EXIT) {
                outOfTime = true;
                break;
              }
              if (status.success) continue;
              // 1 and 2 are errors the child reported itself (a bad spec, an unwritable store):
              // they concern the sweep, not one cell.
              if (status.signal === null && (status.code === 1 || status.code === 2)) {
                bye(status.code);
              }
              // The child died (crash, out of memory, killed): the cell it was running is the
              // first one still pending. Record it as failed and go on with the others. A child
              // that had done all its cells died at exit: nothing was lost, nothing to record.
              const now = await pendingCells(spec, storePath, shard);
              const how = status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
              const cell = cellToBlame(todo, now, perProcess);
              if (!cell) {
                console.error(
                  `filigree: a sweep child died (${how}) at exit, after storing its ` +
                    `${todo.length - now.length} cells; going on`,
                );
                continue;
              }
              const message = `the child process running this cell died (${how})`;
              const store = StudyStore.open(storePath, { study: spec.name });
              try {
                recordFailure(store.db, {
                  cellId: cell.id,
                  cellIndex: cell.index,
                  factors: JSON.stringify(cell.factors),
                  message,
                });
              } finally {
                store.close();
              }
              crashed++;
              console.error(
                `filigree: cell ${cell.index} ${cell.id} ${
                  describeFactors(cell.factors)
                }: FAILED: ${message} (recorded; going on)`,
              );
            }
            const store = StudyStore.openReadOnly(storePath);
            const failed = skippedFailures(store.db).size;
            store.close();
            if (outOfTime) {
              const left = (await pendingCells(spec, storePath, shard)).length;
              console.log(
                `study ${spec.name}: time budget (--max-minutes ${opts.maxMinutes ?? "?"}) ` +
                  `reached; ${left} cells left in ${storePath}: run the same command again to go on`,
              );
              return;
            }
            if (!opts.quiet || failed) {
              console.log(
                `study ${spec.name}: every cell done in ${storePath}` +
                  (failed
                    ? `; ${failed} failed${
                      crashed ? ` (${crashed} crashed their process)` : ""
                    }: listed by \`report\`, rerun them with --retry-failed`
                    : ""),
              );
            }
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
            command: Deno.env.get(COMMAND_ENV) ?? userCommand(),
            maxCells: opts.maxCells,
            deadline,
          });
          childOutOfTime = r.outOfTime === true;
          if (r.outOfTime && !isChild) {
            console.log(
              `study ${spec.name}: time budget (--max-minutes ${opts.maxMinutes}) reached; ` +
                `run the same command again to go on`,
            );
          }
          if (!opts.quiet) {
            console.log(
              `study ${spec.name}: ${r.recorded.length} cells recorded, ${r.skipped} already done` +
                (r.failed.length ? `, ${r.failed.length} failed` : "") + `; store ${storePath}`,
            );
          }
        } finally {
          for (const [sig, f] of signals) Deno.removeSignalListener(sig, f);
          lock?.release();
        }
        // A child's pending read of its stdin would keep it alive: leave explicitly.
        if (isChild) Deno.exit(childOutOfTime ? OUT_OF_TIME_EXIT : 0);
      })
    );
}
