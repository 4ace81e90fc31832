/** Packed (brotli) study stores: read in place, never written, byte-identical when unpacked. */
import assert from "node:assert/strict";
import { FiligreeError } from "../../src/gpu/errors.ts";
import {
  isPacked,
  packStore,
  readablePath,
  removeStaleCopies,
  unpackStore,
} from "../../src/study/packed.ts";
import { readStore } from "../../src/study/report.ts";
import { StudyStore } from "../../src/study/store.ts";

const bytes = (p: string) => Deno.readFileSync(p);

Deno.test("packed stores: read in place by the store and the report, refused for writing, unpacked byte for byte", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/store.sqlite`;
    const s = StudyStore.open(path, { study: "packed-demo" });
    s.close();
    packStore(path, `${path}.br`);
    assert.ok(isPacked(`${path}.br`));
    assert.ok(Deno.statSync(`${path}.br`).size < Deno.statSync(path).size);
    const ro = StudyStore.openReadOnly(`${path}.br`);
    assert.equal(ro.meta().study, "packed-demo");
    assert.equal(ro.cells().length, 0);
    ro.close();
    assert.equal(readStore(`${path}.br`).cells.length, 0);
    // One unpacked copy per process and version of the packed file, outside the repository.
    const tmp = readablePath(`${path}.br`);
    assert.equal(readablePath(`${path}.br`), tmp);
    assert.ok(!tmp.startsWith(dir));
    assert.throws(
      () => StudyStore.open(`${path}.br`, { study: "packed-demo" }),
      (e) => e instanceof FiligreeError && /read-only; unpack it .*store:unpack/.test(e.message),
    );
    unpackStore(`${path}.br`, `${dir}/back.sqlite`);
    assert.deepEqual(bytes(`${dir}/back.sqlite`), bytes(path));
    // Bad input: one-line errors naming the file.
    await Deno.writeTextFile(`${dir}/junk.sqlite.br`, "plain text, not brotli");
    assert.throws(
      () => StudyStore.openReadOnly(`${dir}/junk.sqlite.br`),
      (e) => e instanceof FiligreeError && /junk\.sqlite\.br: not a packed store/.test(e.message),
    );
    assert.throws(
      () => readablePath(`${dir}/missing.sqlite.br`),
      (e) => e instanceof FiligreeError && /missing\.sqlite\.br: no such store/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store:pack / store:unpack: round trip, never overwrite, one-line errors", async () => {
  const dir = await Deno.makeTempDir();
  const script = new URL("../../scripts/store-pack.ts", import.meta.url).pathname;
  const run = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-ffi", script, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, err: new TextDecoder().decode(out.stderr).trim() };
  };
  try {
    const path = `${dir}/store.sqlite`;
    StudyStore.open(path, { study: "cli-demo" }).close();
    assert.equal((await run("pack", path)).code, 0);
    const again = await run("pack", path);
    assert.equal(again.code, 2);
    assert.match(again.err, /^store-pack: .*store\.sqlite\.br exists; remove it first$/);
    assert.equal((await run("unpack", `${path}.br`, `${dir}/copy.sqlite`)).code, 0);
    assert.deepEqual(bytes(`${dir}/copy.sqlite`), bytes(path));
    const missing = await run("unpack", `${dir}/nope.sqlite.br`);
    assert.equal(missing.code, 2);
    assert.equal(missing.err.split("\n").length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("packed stores: the copies a killed process left behind are removed, live ones kept", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const child = new Deno.Command("true").spawn();
    await child.status; // its pid now names no running process (reaped)
    const dead = `${tmp}/filigree-store-${child.pid}-x1`;
    const mine = `${tmp}/filigree-store-${Deno.pid}-x2`;
    const other = `${tmp}/filigree-store-unrelated`;
    for (const d of [dead, mine, other]) await Deno.mkdir(d);
    await Deno.writeTextFile(`${dead}/store.sqlite`, "left behind");
    assert.deepEqual(removeStaleCopies(tmp), [dead]);
    assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name).sort(), [
      `filigree-store-${Deno.pid}-x2`,
      "filigree-store-unrelated",
    ]);
    assert.deepEqual(removeStaleCopies(`${tmp}/missing`), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
