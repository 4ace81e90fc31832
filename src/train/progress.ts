/**
 * A progress display for long work: a live bar (cli-progress) when stdout is a terminal, plain
 * lines every few seconds when it is not, nothing with `quiet`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Progress } from "./progress.ts";
 * const lines: string[] = [];
 * const log = console.log;
 * console.log = (s: string) => lines.push(s); // plain mode prints with console.log
 * const p = new Progress({ plain: true });
 * p.start("ablate weights", 10);
 * for (let i = 1; i <= 10; i++) p.update(i, { acc: "97.10%" }, "ablations");
 * p.update(10, { acc: "97.10%" }, "ablations"); // a repeated final update prints nothing
 * p.stop();
 * console.log = log;
 * assert.equal(lines.length, 1); // within 5 s only the final line
 * assert.match(lines[0], /^ablate weights 10\/10 acc 97\.10% \| \d+ ablations\/s \| ETA 0s$/);
 * ```
 * @module
 */
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";

/** Options of a {@link Progress}. */
export interface ProgressOptions {
  quiet?: boolean;
  /** Force plain lines (default: when stdout is not a terminal). */
  plain?: boolean;
  /** Seconds between plain lines (default 5). */
  plainEverySec?: number;
}

function fmtEta(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return "?";
  if (sec < 60) return `${sec.toFixed(0)}s`;
  if (sec < 3600) {
    return `${Math.floor(sec / 60)}m${String(Math.round(sec % 60)).padStart(2, "0")}s`;
  }
  return `${Math.floor(sec / 3600)}h${String(Math.round((sec % 3600) / 60)).padStart(2, "0")}m`;
}

/** One bar at a time: start, update, stop. */
export class Progress {
  #bar: cliProgress.SingleBar | null = null;
  #plain: boolean;
  #label = "";
  #total = 0;
  #t0 = 0;
  #lastPlain = 0;
  /** The `done` of the last plain line (-1: none), so a repeated final update prints once. */
  #lastPlainDone = -1;
  #done = 0;

  constructor(readonly opts: ProgressOptions = {}) {
    this.#plain = opts.plain ?? !Deno.stdout.isTerminal();
  }

  /** Starts a bar of `total` units. */
  start(label: string, total: number): void {
    this.stop();
    this.#label = label;
    this.#total = total;
    this.#t0 = performance.now();
    this.#lastPlain = this.#t0;
    this.#lastPlainDone = -1;
    this.#done = 0;
    if (this.opts.quiet || this.#plain) return;
    this.#startBar(0, "", "");
  }

  #startBar(value: number, metrics: string, rate: string): void {
    this.#bar = new cliProgress.SingleBar({
      format: `${this.#label} [{bar}] {value}/{total} {metrics} | {rate} | ETA {eta_formatted}`,
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    }, cliProgress.Presets.shades_classic);
    this.#bar.start(this.#total, value, { metrics, rate });
  }

  /**
   * Prints a line (e.g. a time estimate) above the current bar; the bar goes on from where it
   * was, with the same clock (its rate and ETA are not restarted).
   */
  note(line: string): void {
    if (this.opts.quiet) return;
    if (!this.#bar) {
      console.log(line);
      return;
    }
    this.#bar.stop();
    console.log(line);
    this.#startBar(this.#done, "", "");
  }

  /**
   * Reports progress `done` of total, with metrics shown beside the bar (numbers with 4
   * decimals, strings as given, e.g. `"97.12%"`).
   */
  update(
    done: number,
    metrics: Record<string, number | string> = {},
    unit = "samples",
    perUnit = 1,
  ): void {
    const el = (performance.now() - this.#t0) / 1000;
    const rate = el > 0 ? (done * perUnit) / el : 0;
    const m = Object.entries(metrics).map(([k, v]) =>
      `${k} ${typeof v === "string" || Number.isInteger(v) ? v : v.toFixed(4)}`
    ).join(" ");
    const rateStr = `${rate.toFixed(0)} ${unit}/s`;
    this.#done = done;
    if (this.#bar) {
      this.#bar.update(done, { metrics: m, rate: rateStr });
    } else if (!this.opts.quiet) {
      const now = performance.now();
      const due = done >= this.#total ||
        now - this.#lastPlain > (this.opts.plainEverySec ?? 5) * 1000;
      if (due && done !== this.#lastPlainDone) {
        this.#lastPlain = now;
        this.#lastPlainDone = done;
        const eta = done > 0 ? (el * (this.#total - done)) / done : NaN;
        console.log(`${this.#label} ${done}/${this.#total} ${m} | ${rateStr} | ETA ${fmtEta(eta)}`);
      }
    }
  }

  /** Ends the current bar. */
  stop(): void {
    this.#bar?.stop();
    this.#bar = null;
  }
}
