/**
 * One sweep per store: `STORE.lock` (created with O_EXCL) names the sweep that owns the store
 * (pid, host, start time, and the pids of its child processes). A second sweep on the same
 * store refuses with one line. A lock whose sweep is gone (same host, no such process, e.g. after
 * `kill -9`) is taken over, after waiting for that sweep's child processes to exit: they watch
 * their parent through a pipe on stdin and stop when it closes (cli/sweep.ts), so they never
 * race the new sweep over a cell.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StoreLock } from "./lock.ts";
 * const store = `${await Deno.makeTempDir()}/store.sqlite`;
 * const lock = await StoreLock.acquire(store);
 * let refused = false;
 * try {
 *   await StoreLock.acquire(store);
 * } catch {
 *   refused = true;
 * }
 * lock.release();
 * assert.ok(refused);
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";

/** What the lock file holds. */
export interface LockInfo {
  pid: number;
  host: string;
  started: string;
  /** Pids of the child processes running cells now. */
  children: number[];
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/**
 * Whether process `pid` exists on this machine (Linux: /proc/PID; elsewhere every process is
 * assumed alive, so only a manual removal frees the lock).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { processAlive } from "./lock.ts";
 * assert.ok(processAlive(Deno.pid));
 * ```
 */
export function processAlive(pid: number): boolean {
  const stat = procStat(pid);
  if (stat === undefined) return true; // cannot tell
  // A zombie (state Z) has exited; it only waits for its parent to reap it.
  return stat !== null && !/^\d+ \(.*\) Z /.test(stat);
}

/**
 * `/proc/PID/stat` of a process: its text, null when the process does not exist, undefined
 * when this machine or these permissions cannot tell. Deno refuses /proc reads without
 * --allow-all (NotCapable), so the file is then read by `cat` (needs --allow-run).
 */
function procStat(pid: number): string | null | undefined {
  const path = `/proc/${pid}/stat`;
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    if (!(e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied)) {
      return undefined;
    }
  }
  try {
    if (!Deno.statSync("/proc").isDirectory) return undefined;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined; // no /proc (not Linux)
  }
  try {
    const o = new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
      .outputSync();
    return o.success ? new TextDecoder().decode(o.stdout) : null;
  } catch {
    return undefined;
  }
}

/** Options of {@link StoreLock.acquire}. */
export interface AcquireOptions {
  /** Seconds to wait for the children of a dead sweep to exit (default 60). */
  waitChildrenSec?: number;
  /** Lines about taking over a stale lock. */
  log?: (line: string) => void;
}

/** A held store lock. */
export class StoreLock {
  #released = false;
  private constructor(readonly path: string, readonly info: LockInfo) {}

  /** The lock file of a store. */
  static pathOf(storePath: string): string {
    return `${storePath}.lock`;
  }

  /** Reads a store's lock, or null when it is not locked (or the file is unreadable). */
  static read(storePath: string): LockInfo | null {
    try {
      return JSON.parse(Deno.readTextFileSync(StoreLock.pathOf(storePath))) as LockInfo;
    } catch {
      return null;
    }
  }

  /** Takes the store's lock, or throws a one-line error naming the sweep that holds it. */
  static async acquire(storePath: string, opts: AcquireOptions = {}): Promise<StoreLock> {
    const path = StoreLock.pathOf(storePath);
    const dir = path.replace(/[\\/][^\\/]*$/, "");
    if (dir !== path && dir) await Deno.mkdir(dir, { recursive: true });
    const info: LockInfo = {
      pid: Deno.pid,
      host: hostname(),
      started: new Date().toISOString(),
      children: [],
    };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const f = await Deno.open(path, { write: true, createNew: true });
        try {
          await f.write(new TextEncoder().encode(JSON.stringify(info) + "\n"));
        } finally {
          f.close();
        }
        return new StoreLock(path, info);
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) {
          throw new FiligreeError(
            `cannot create the lock ${path}: ${(e as Error).message.split("\n")[0]}`,
          );
        }
      }
      const held = StoreLock.read(storePath);
      if (held && (held.host !== info.host || processAlive(held.pid))) {
        throw new FiligreeError(
          `${storePath} is in use by another sweep (pid ${held.pid} on ${held.host}, since ${held.started}); ` +
            `wait for it to finish, or remove ${path} if that sweep is gone`,
        );
      }
      // The sweep that held it is gone: wait for its children to notice, then take over.
      const children = (held?.children ?? []).filter(processAlive);
      if (children.length) {
        opts.log?.(
          `${path}: sweep ${held!.pid} is gone; waiting for its child process ${
            children.join(", ")
          } to stop`,
        );
        const until = performance.now() + (opts.waitChildrenSec ?? 60) * 1000;
        while (children.some(processAlive) && performance.now() < until) {
          await new Promise((r) => setTimeout(r, 200));
        }
        const alive = children.filter(processAlive);
        if (alive.length) {
          throw new FiligreeError(
            `${storePath}: child process ${
              alive.join(", ")
            } of a killed sweep is still running; stop it before sweeping again`,
          );
        }
      }
      opts.log?.(`${path}: removed the stale lock of sweep ${held?.pid ?? "(unreadable)"}`);
      await Deno.remove(path).catch(() => {});
    }
    throw new FiligreeError(`${storePath}: could not take the lock ${path}`);
  }

  /** Records the child processes now running cells (read by a sweep taking over a stale lock). */
  setChildren(pids: number[]): void {
    this.info.children = pids;
    try {
      Deno.writeTextFileSync(this.path, JSON.stringify(this.info) + "\n");
    } catch {
      // the lock still holds; only the stale-lock wait loses this information
    }
  }

  /** Releases the lock (idempotent). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    try {
      Deno.removeSync(this.path);
    } catch {
      // already gone
    }
  }
}
