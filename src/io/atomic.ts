/**
 * Atomic file writes for every run output (configs, metrics, checkpoints, plots): the bytes go
 * to a temporary file in the same directory, which is flushed to disk (fsync) and then renamed
 * over the destination, so a reader sees either the old file or the complete new one, never a
 * partial write — even if the process is killed. The directory is fsynced afterwards where the
 * platform allows it, so the rename itself survives a crash.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFileAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/config.json`, JSON.stringify({ lr: 0.01 }));
 * assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/config.json`)), { lr: 0.01 });
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";

function split(path: string): { dir: string; base: string } {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i < 0
    ? { dir: ".", base: path }
    : { dir: path.slice(0, i) || "/", base: path.slice(i + 1) };
}

function tempName(path: string): string {
  const { dir, base } = split(path);
  const rand = crypto.getRandomValues(new Uint32Array(2));
  return `${dir}/.${base}.${Deno.pid}.${rand[0].toString(36)}${rand[1].toString(36)}.tmp`;
}

function describe(path: string, e: unknown): FiligreeError {
  const msg = (e as Error).message?.split("\n")[0] ?? String(e);
  return new FiligreeError(`cannot write ${path}: ${msg}`);
}

async function syncDir(dir: string): Promise<void> {
  // Linux allows fsync on a directory opened read-only; elsewhere this is a best effort.
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // Not supported on this platform or file system: the rename is still atomic.
  }
}

/**
 * Writes `data` (bytes, or a string as UTF-8) to `path` atomically: temp file in the same
 * directory, write, fsync, rename. The directory must exist. On failure the temp file is removed
 * and a one-line {@link FiligreeError} names the path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFileAtomic } from "./atomic.ts";
 * const path = await Deno.makeTempFile();
 * await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
 * assert.deepEqual((await Deno.readFile(path)).length, 3);
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  opts: { mode?: number } = {},
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = tempName(path);
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true, mode: opts.mode ?? 0o644 });
    let off = 0;
    while (off < bytes.length) off += await file.write(bytes.subarray(off));
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (e) {
    try {
      file?.close();
    } catch {
      // already closed
    }
    await Deno.remove(tmp).catch(() => {});
    throw describe(path, e);
  }
  await syncDir(split(path).dir);
}

/**
 * Synchronous {@link writeFileAtomic} (for exit handlers and other places that cannot await).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFileAtomicSync } from "./atomic.ts";
 * const path = await Deno.makeTempFile();
 * writeFileAtomicSync(path, "done\n");
 * assert.deepEqual(Deno.readTextFileSync(path), "done\n");
 * ```
 */
export function writeFileAtomicSync(
  path: string,
  data: Uint8Array | string,
  opts: { mode?: number } = {},
): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = tempName(path);
  let file: Deno.FsFile | undefined;
  try {
    file = Deno.openSync(tmp, { write: true, createNew: true, mode: opts.mode ?? 0o644 });
    let off = 0;
    while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
    file.syncSync();
    file.close();
    file = undefined;
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      file?.close();
    } catch {
      // already closed
    }
    try {
      Deno.removeSync(tmp);
    } catch {
      // never created
    }
    throw describe(path, e);
  }
  try {
    const d = Deno.openSync(split(path).dir, { read: true });
    try {
      d.syncSync();
    } finally {
      d.close();
    }
  } catch {
    // best effort, as in writeFileAtomic
  }
}
