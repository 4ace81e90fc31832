/**
 * Packed study stores: a finished store committed brotli-compressed (`store.sqlite.br`, about a
 * tenth of the SQLite file), read in place by everything that only reads a store (the report,
 * `--reuse` sources, merge inputs, progress): the first read in a process unpacks it into a
 * temporary file, removed when the process ends (the copies a killed process left behind are
 * removed by the next process that unpacks one). Writing to a packed store is refused with the
 * command that unpacks it. `deno task store:pack` / `store:unpack` convert either way (lossless:
 * the unpacked file is byte-identical).
 *
 * Why: the repository travels whole to a lent GPU machine, whose limit (64 MiB with the Deno
 * bundle) the completed studies' SQLite files alone exceeded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPacked, packStore } from "./packed.ts";
 * import { StudyStore } from "./store.ts";
 * const dir = await Deno.makeTempDir();
 * StudyStore.open(`${dir}/s.sqlite`, { study: "demo" }).close();
 * packStore(`${dir}/s.sqlite`, `${dir}/s.sqlite.br`);
 * assert.ok(isPacked(`${dir}/s.sqlite.br`));
 * const ro = StudyStore.openReadOnly(`${dir}/s.sqlite.br`); // read in place
 * assert.equal(ro.meta().study, "demo");
 * ro.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { brotliCompressSync, brotliDecompressSync, constants } from "node:zlib";
import { FiligreeError } from "../gpu/errors.ts";
import { writeFileAtomicSync } from "../io/atomic.ts";
import { processAlive } from "./lock.ts";

/** The file name suffix of a packed store. */
export const PACKED_SUFFIX = ".br";

/** Whether `path` names a packed store (by its suffix). */
export function isPacked(path: string): boolean {
  return path.endsWith(PACKED_SUFFIX);
}

/** Packed path -> its unpacked temporary copy, with the packed file's mtime when unpacked. */
const unpacked = new Map<string, { path: string; mtime: number }>();
let cleanupRegistered = false;

function removeTemporaries(): void {
  for (const { path } of unpacked.values()) {
    try {
      Deno.removeSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    } catch {
      // already gone
    }
  }
  unpacked.clear();
}

/** The temporary directories of unpacked copies: `filigree-store-<pid>-<random>`. */
const TEMP_PREFIX = "filigree-store-";
const TEMP_NAME = /^filigree-store-(\d+)-/;

/**
 * Removes the unpacked copies in `tmpDir` that a process no longer running left behind (killed
 * before its unload handler ran); returns the directories removed. Copies of running processes,
 * and everything else in `tmpDir`, are kept. Where liveness cannot be told (no /proc) nothing is
 * removed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { removeStaleCopies } from "./packed.ts";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/filigree-store-${Deno.pid}-mine`); // this process: kept
 * assert.deepEqual(removeStaleCopies(tmp), []);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export function removeStaleCopies(tmpDir: string): string[] {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(tmpDir)];
  } catch {
    return removed;
  }
  for (const e of entries) {
    const m = e.isDirectory ? TEMP_NAME.exec(e.name) : null;
    if (!m || Number(m[1]) === Deno.pid || processAlive(Number(m[1]))) continue;
    try {
      Deno.removeSync(`${tmpDir}/${e.name}`, { recursive: true });
      removed.push(`${tmpDir}/${e.name}`);
    } catch {
      // another process removed it first, or it is not ours to remove
    }
  }
  return removed;
}

/**
 * The path to open read-only for the store at `path`: `path` itself, or for a packed store its
 * unpacked temporary copy (made once per process and packed file version). Throws a
 * {@link FiligreeError} naming `path` when it is missing or not brotli data.
 */
export function readablePath(path: string): string {
  if (!isPacked(path)) return path;
  let mtime: number;
  try {
    mtime = Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch {
    throw new FiligreeError(`${path}: no such store`);
  }
  const have = unpacked.get(path);
  if (have && have.mtime === mtime) return have.path;
  const dir = Deno.makeTempDirSync({ prefix: `${TEMP_PREFIX}${Deno.pid}-` });
  const out = `${dir}/${path.slice(path.lastIndexOf("/") + 1, -PACKED_SUFFIX.length)}`;
  try {
    unpackStore(path, out);
  } catch (e) {
    Deno.removeSync(dir, { recursive: true });
    throw e;
  }
  unpacked.set(path, { path: out, mtime });
  if (!cleanupRegistered) {
    globalThis.addEventListener("unload", removeTemporaries);
    cleanupRegistered = true;
    removeStaleCopies(dir.slice(0, dir.lastIndexOf("/")));
  }
  return out;
}

/** Throws the one-line error for a write to a packed store. */
export function refuseWrite(path: string): void {
  if (isPacked(path)) {
    throw new FiligreeError(
      `${path}: a packed store is read-only; unpack it to write to it: deno task store:unpack ${path}`,
    );
  }
}

/**
 * Writes `src` brotli-compressed (quality 11, 16 MiB window) to `dst`, atomically (a temporary
 * file beside it, then a rename).
 */
export function packStore(src: string, dst: string): void {
  const data = readStoreFile(src);
  const packed = brotliCompressSync(data, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_LGWIN]: 24,
      [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
    },
  });
  writeFileAtomicSync(dst, packed);
}

/** Writes the unpacked bytes of the packed store `src` to `dst`, atomically. */
export function unpackStore(src: string, dst: string): void {
  const data = readStoreFile(src);
  let raw: Uint8Array | undefined;
  try {
    raw = brotliDecompressSync(data);
  } catch {
    // not brotli data
  }
  // Brotli streams carry no signature: a SQLite file's header says whether this was a store.
  if (!raw || new TextDecoder().decode(raw.subarray(0, 16)) !== "SQLite format 3\0") {
    throw new FiligreeError(`${src}: not a packed store (brotli-compressed SQLite expected)`);
  }
  writeFileAtomicSync(dst, raw);
}

/** The bytes of a store file, or the one-line error naming it. */
function readStoreFile(path: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch {
    throw new FiligreeError(`${path}: no such store`);
  }
}
