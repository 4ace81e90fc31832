/**
 * The command line's shared parsing and error layer: typed parsers for flag values (numbers,
 * integers, lists) that every subcommand uses, and {@link reportError}, which turns any error
 * that reaches the top into one line on stderr and an exit status:
 *
 * - a malformed flag value is a usage error: commander prints
 *   `error: option '--lr <x>' argument 'abc' is invalid. expected a finite number` (exit 2);
 * - {@link UsageError} (conflicting flags, ...): one line, exit 2;
 * - {@link FiligreeError} (bad config, missing run, ...) and operating-system errors
 *   (`Deno.errors.*`: permission denied, not a directory, ...): one line, exit 1;
 * - anything else is a bug: its stack, exit 70.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { intList, number } from "./args.ts";
 * assert.deepEqual(number({ gt: 0 })("0.05"), 0.05);
 * assert.deepEqual(intList()("300,100"), [300, 100]);
 * let msg = "";
 * try {
 *   number()("abc");
 * } catch (e) {
 *   msg = (e as Error).message;
 * }
 * if (msg !== "expected a finite number") throw new Error(msg);
 * ```
 * @module
 */
import { InvalidArgumentError } from "@commander-js/extra-typings";
import { FiligreeError } from "../src/gpu/errors.ts";

/** A wrong combination of flags: printed as one line, exit status 2. */
export class UsageError extends FiligreeError {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Bounds of {@link number}. */
export interface NumberRule {
  /** Whole numbers only. */
  integer?: boolean;
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound. */
  gt?: number;
  /** Inclusive upper bound. */
  max?: number;
  /** Exclusive upper bound. */
  lt?: number;
}

function describeRule(r: NumberRule): string {
  const parts: string[] = [];
  if (r.gt !== undefined) parts.push(`> ${r.gt}`);
  if (r.min !== undefined) parts.push(`>= ${r.min}`);
  if (r.lt !== undefined) parts.push(`< ${r.lt}`);
  if (r.max !== undefined) parts.push(`<= ${r.max}`);
  return `${r.integer ? "an integer" : "a number"}${parts.length ? " " + parts.join(" and ") : ""}`;
}

/**
 * Checks one number against a rule; returns the problem, or null when it is fine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkNumber } from "./args.ts";
 * assert.deepEqual(checkNumber(0, { integer: true, min: 1 }), "expected an integer >= 1");
 * assert.deepEqual(checkNumber(3, { integer: true, min: 1 }), null);
 * ```
 */
export function checkNumber(n: number, r: NumberRule = {}): string | null {
  const bad = (r.integer && !Number.isInteger(n)) ||
    (r.gt !== undefined && !(n > r.gt)) || (r.min !== undefined && !(n >= r.min)) ||
    (r.lt !== undefined && !(n < r.lt)) || (r.max !== undefined && !(n <= r.max));
  return bad ? `expected ${describeRule(r)}` : null;
}

function toNumber(v: string): number {
  const s = v.trim();
  // Number("") is 0 and Number("0x10") is 16: accept plain decimal notation only.
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s)) {
    throw new InvalidArgumentError("expected a finite number");
  }
  const n = Number(s);
  if (!Number.isFinite(n)) throw new InvalidArgumentError("expected a finite number");
  return n;
}

/**
 * A commander parser of one number with optional bounds (decimal notation; NaN, Infinity, hex
 * and the empty string are refused).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { number } from "./args.ts";
 * assert.deepEqual(number({ integer: true, min: 1 })("20"), 20);
 * ```
 */
export function number(rule: NumberRule = {}): (v: string) => number {
  return (v: string) => {
    const n = toNumber(v);
    const problem = checkNumber(n, rule);
    if (problem) throw new InvalidArgumentError(problem);
    return n;
  };
}

/**
 * A parser of a positive integer (a count or size).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { positiveInt } from "./args.ts";
 * assert.deepEqual(positiveInt()("128"), 128);
 * ```
 */
export function positiveInt(): (v: string) => number {
  return number({ integer: true, min: 1 });
}

/**
 * A parser of an integer >= 0 (a seed, a count that may be zero).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nonNegativeInt } from "./args.ts";
 * assert.deepEqual(nonNegativeInt()("0"), 0);
 * ```
 */
export function nonNegativeInt(): (v: string) => number {
  return number({ integer: true, min: 0 });
}

/**
 * A parser of a comma-separated list of integers (each >= `min`, default 1), e.g. `1000,1000`.
 * Empty items (`16,,16`) are refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { intList } from "./args.ts";
 * assert.deepEqual(intList()("16, 32"), [16, 32]);
 * ```
 */
export function intList(min = 1): (v: string) => number[] {
  return (v: string) => {
    const items = v.split(",").map((s) => s.trim());
    if (items.some((s) => !/^[+-]?\d+$/.test(s))) {
      throw new InvalidArgumentError(`expected a comma-separated list of integers like 300,100`);
    }
    const xs = items.map(Number);
    if (xs.some((x) => x < min)) {
      throw new InvalidArgumentError(`expected integers >= ${min}, like 300,100`);
    }
    return xs;
  };
}

/**
 * A parser of a comma-separated list of names (empty items dropped; an empty list refused).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nameList } from "./args.ts";
 * assert.deepEqual(nameList()("magnitude, snip"), ["magnitude", "snip"]);
 * ```
 */
export function nameList(): (v: string) => string[] {
  return (v: string) => {
    const xs = v.split(",").map((s) => s.trim()).filter(Boolean);
    if (!xs.length) throw new InvalidArgumentError("expected a comma-separated list of names");
    return xs;
  };
}

const OS_ERRORS = [
  Deno.errors.NotFound,
  Deno.errors.PermissionDenied,
  Deno.errors.NotCapable,
  Deno.errors.AlreadyExists,
  Deno.errors.NotADirectory,
  Deno.errors.IsADirectory,
  Deno.errors.InvalidData,
  Deno.errors.WriteZero,
  Deno.errors.UnexpectedEof,
  Deno.errors.FilesystemLoop,
  Deno.errors.Busy,
  Deno.errors.BrokenPipe,
  Deno.errors.TimedOut,
  Deno.errors.Interrupted,
];

/**
 * The exit status and one-line message for an error that reached the command line, or null
 * for a bug (print its stack, exit 70).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyError, UsageError } from "./args.ts";
 * assert.deepEqual(classifyError(new UsageError("--lr conflicts with --resume"))?.code, 2);
 * assert.deepEqual(classifyError(new Deno.errors.PermissionDenied("mkdir 'x'"))?.code, 1);
 * assert.deepEqual(classifyError(new TypeError("bug")), null);
 * ```
 */
export function classifyError(e: unknown): { code: number; message: string } | null {
  const line = (m: string) => m.split("\n").map((s) => s.trim()).filter(Boolean).join("; ");
  if (e instanceof UsageError) return { code: 2, message: line(e.message) };
  if (e instanceof FiligreeError) return { code: 1, message: line(e.message) };
  if (OS_ERRORS.some((k) => e instanceof k)) {
    return { code: 1, message: line((e as Error).message) };
  }
  // node:sqlite errors (a file that is not a database, a locked or read-only store).
  if (e instanceof Error && (e as { code?: string }).code === "ERR_SQLITE_ERROR") {
    return { code: 1, message: line(e.message) };
  }
  return null;
}

/**
 * Prints an error as `filigree: error: ...` (one line) and exits with its status; a bug
 * prints its stack and exits 70.
 */
export function reportError(e: unknown): never {
  const c = classifyError(e);
  if (c) {
    console.error(`filigree: error: ${c.message}`);
    Deno.exit(c.code);
  }
  console.error(e);
  Deno.exit(70);
}
