/**
 * Sharding a study over machines or GPUs: `--shard i/N` runs the cells whose index k has
 * k mod N = i (a deterministic partition: every cell is in exactly one shard), and each shard
 * writes its own store, merged afterwards with `deno task merge`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultStorePath, parseShard, shardCells } from "./shard.ts";
 * const s = parseShard("1/3");
 * assert.deepEqual(shardCells([0, 1, 2, 3, 4].map((index) => ({ index })), s).map((c) => c.index), [1, 4]);
 * assert.deepEqual(defaultStorePath("smoke", s), "runs/studies/smoke/store-1-of-3.sqlite");
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";

/** Shard `index` of `count` (0 <= index < count). */
export interface Shard {
  index: number;
  count: number;
}

/**
 * Parses "i/N" (0-based i).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseShard } from "./shard.ts";
 * assert.deepEqual(parseShard("0/4"), { index: 0, count: 4 });
 * ```
 */
export function parseShard(s: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(s);
  if (!m) throw new FiligreeError(`--shard: expected i/N like 0/4, got "${s}"`);
  const index = Number(m[1]), count = Number(m[2]);
  if (count < 1 || index >= count) {
    throw new FiligreeError(`--shard ${s}: need 0 <= i < N (shards are numbered 0..N-1)`);
  }
  return { index, count };
}

/**
 * The cells of one shard (cell k goes to shard k mod N), in study order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shardCells } from "./shard.ts";
 * assert.deepEqual(shardCells([{ index: 0 }, { index: 1 }], { index: 0, count: 2 }).length, 1);
 * ```
 */
export function shardCells<T extends { index: number }>(cells: T[], shard?: Shard): T[] {
  if (!shard) return cells;
  return cells.filter((c) => c.index % shard.count === shard.index);
}

/**
 * Default store path of a study: runs/studies/NAME/store.sqlite, or store-i-of-N.sqlite for a
 * shard.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultStorePath } from "./shard.ts";
 * assert.deepEqual(defaultStorePath("x"), "runs/studies/x/store.sqlite");
 * ```
 */
export function defaultStorePath(name: string, shard?: Shard, root = "runs/studies"): string {
  const file = shard && shard.count > 1
    ? `store-${shard.index}-of-${shard.count}.sqlite`
    : "store.sqlite";
  return `${root}/${name}/${file}`;
}

/**
 * Default run directory root of a study (run dirs are ROOT/<cellId>, shared by all shards).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultRunsDir } from "./shard.ts";
 * assert.deepEqual(defaultRunsDir("x"), "runs/studies/x/cells");
 * ```
 */
export function defaultRunsDir(name: string, root = "runs/studies"): string {
  return `${root}/${name}/cells`;
}
