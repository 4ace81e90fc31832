import { FiligreeError } from "../../src/gpu/errors.ts";
import { writeFileAtomic, writeFileAtomicSync } from "../../src/io/atomic.ts";

function assert(cond: unknown, msg: string): void {
  if (!cond) throw new Error(msg);
}

Deno.test("writeFileAtomic: writes, replaces, leaves no temp files, reports errors in one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = `${dir}/metrics.json`;
    await writeFileAtomic(p, "first");
    assert((await Deno.readTextFile(p)) === "first", "string written");
    const big = new Uint8Array(3_000_001).map((_, i) => i * 7);
    await writeFileAtomic(p, big);
    const got = await Deno.readFile(p);
    assert(got.length === big.length && got.every((v, i) => v === big[i]), "bytes replaced whole");
    writeFileAtomicSync(p, "sync");
    assert(Deno.readTextFileSync(p) === "sync", "sync variant");
    // Concurrent writers: the file ends up as one complete version.
    await Promise.all(
      Array.from({ length: 8 }, (_, k) => writeFileAtomic(p, `writer ${k} `.repeat(10_000))),
    );
    const final = await Deno.readTextFile(p);
    assert(
      /^(writer \d )+$/.test(final) && new Set(final.match(/\d/g)).size === 1,
      "one writer's complete content",
    );
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert(names.length === 1 && names[0] === "metrics.json", `no temp files left: ${names}`);
    for (
      const fn of [
        () => writeFileAtomic(`${dir}/missing/x.json`, "x"),
        () => Promise.resolve().then(() => writeFileAtomicSync(`${dir}/nope/y`, "y")),
      ]
    ) {
      try {
        await fn();
        throw new Error("expected an error");
      } catch (e) {
        assert(
          e instanceof FiligreeError && e.message.startsWith(`cannot write ${dir}/`) &&
            !e.message.includes("\n"),
          `${e}`,
        );
      }
    }
    assert([...Deno.readDirSync(dir)].length === 1, "failed writes leave nothing behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
