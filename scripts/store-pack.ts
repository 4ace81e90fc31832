/**
 * Packs a finished study store (brotli, about a tenth of its size) or unpacks one
 * (src/study/packed.ts). A packed store is read in place by the report, `--reuse`, merge inputs
 * and progress; unpack it to sweep into it again.
 *
 *   deno task store:pack STORE.sqlite [OUT.sqlite.br]      (default OUT: STORE.sqlite.br)
 *   deno task store:unpack STORE.sqlite.br [OUT.sqlite]    (default OUT: the name without .br)
 *
 * Never overwrites OUT (remove it first); packing checkpoints the store's WAL first and checks
 * that the packed file unpacks to the same bytes.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { brotliDecompressSync } from "node:zlib";
import { FiligreeError } from "../src/gpu/errors.ts";
import { isPacked, PACKED_SUFFIX, packStore, unpackStore } from "../src/study/packed.ts";

function fail(msg: string): never {
  console.error(`store-pack: ${msg}`);
  Deno.exit(2);
}

const [mode, src, outArg] = Deno.args;
if ((mode !== "pack" && mode !== "unpack") || !src || Deno.args.length > 3) {
  fail("usage: store-pack.ts pack STORE.sqlite [OUT.sqlite.br] | unpack STORE.sqlite.br [OUT]");
}
const exists = (p: string) => {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
};
if (!exists(src)) fail(`${src}: no such store`);
try {
  if (mode === "pack") {
    if (isPacked(src)) fail(`${src} is packed already`);
    const out = outArg ?? `${src}${PACKED_SUFFIX}`;
    if (exists(out)) fail(`${out} exists; remove it first`);
    // Fold a write-ahead log into the file so that the packed bytes are the whole store.
    const db = new DatabaseSync(src);
    db.exec("pragma wal_checkpoint(TRUNCATE)");
    db.close();
    packStore(src, out);
    const same = brotliDecompressSync(Deno.readFileSync(out));
    const orig = Deno.readFileSync(src);
    if (same.length !== orig.length || !same.every((b, i) => b === orig[i])) {
      Deno.removeSync(out);
      fail(`${out}: the packed file does not unpack to ${src}; nothing written`);
    }
    console.log(`${src} (${orig.length} bytes) -> ${out} (${Deno.statSync(out).size} bytes)`);
  } else {
    if (!isPacked(src)) fail(`${src}: a packed store ends in ${PACKED_SUFFIX}`);
    const out = outArg ?? src.slice(0, -PACKED_SUFFIX.length);
    if (exists(out)) fail(`${out} exists; remove it first`);
    unpackStore(src, out);
    console.log(`${src} -> ${out} (${Deno.statSync(out).size} bytes)`);
  }
} catch (e) {
  if (e instanceof FiligreeError) fail(e.message);
  throw e;
}
