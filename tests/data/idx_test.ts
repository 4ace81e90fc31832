import { FiligreeError } from "../../src/gpu/errors.ts";
import { encodeIdx, type IdxType, parseIdx, readIdxFile } from "../../src/data/idx.ts";
import { freshSeed, Rng } from "../../src/testing/mod.ts";

function assertEquals(actual: unknown, expected: unknown, msg = ""): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${e.slice(0, 300)}, got ${a.slice(0, 300)}`);
  }
}

function throwsOneLine(fn: () => unknown, includes: string[]): string {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof FiligreeError)) throw e;
    const m = (e as Error).message;
    if (m.includes("\n")) throw new Error(`message is not one line: ${m}`);
    for (const s of includes) if (!m.includes(s)) throw new Error(`message "${m}" lacks "${s}"`);
    return m;
  }
  throw new Error(`expected a FiligreeError containing ${includes.join(", ")}`);
}

async function rejectsOneLine(fn: () => Promise<unknown>, includes: string[]): Promise<string> {
  try {
    await fn();
  } catch (e) {
    return throwsOneLine(() => {
      throw e;
    }, includes);
  }
  throw new Error(`expected a FiligreeError containing ${includes.join(", ")}`);
}

Deno.test("idx: every element type round-trips through encode/parse (big-endian)", () => {
  const rng = new Rng(freshSeed());
  const cases: [IdxType, number[], (i: number) => number][] = [
    ["u8", [3, 5, 7], () => rng.int(256)],
    ["i8", [11], () => rng.int(256) - 128],
    ["i16", [2, 13], () => rng.int(65536) - 32768],
    ["i32", [4, 3], () => rng.int(2 ** 32) - 2 ** 31],
    ["f32", [1, 1, 1, 5], () => Math.fround(rng.normal(1)[0] * 1e3)],
    ["f64", [6], () => rng.normal(1)[0]],
  ];
  for (const [type, dims, gen] of cases) {
    const n = dims.reduce((a, b) => a * b, 1);
    const vals = Array.from({ length: n }, (_, i) => gen(i));
    const bytes = encodeIdx(type, dims, vals);
    const f = parseIdx(bytes, `x-${type}`);
    assertEquals(f.type, type);
    assertEquals(f.dims, dims);
    assertEquals(Array.from(f.data), vals, `values of ${type}`);
  }
  // Big-endian on disk: i16 258 is bytes 01 02.
  const b = encodeIdx("i16", [1], [258]);
  assertEquals([...b.subarray(8)], [1, 2]);
  assertEquals([...b.subarray(0, 4)], [0, 0, 0x0b, 1]);
});

Deno.test("idx: corrupt, truncated and wrong-magic bytes give one-line errors naming the file", async () => {
  const good = encodeIdx("u8", [6, 4, 5], new Uint8Array(120).map((_, i) => i));
  const name = "train-images-idx3-ubyte";
  // Truncated data: the message quoted in the design.
  const m = throwsOneLine(() => parseIdx(good.subarray(0, 16 + 100), name), [
    name,
    "truncated",
    "6x4x5 = 120 bytes",
    "has 100",
  ]);
  assertEquals(m, `${name}: truncated: header says 6x4x5 = 120 bytes of data, file has 100`);
  throwsOneLine(() => parseIdx(good.subarray(0, 10), name), [
    name,
    "truncated",
    "header needs 16 bytes",
    "has 10",
  ]);
  throwsOneLine(() => parseIdx(good.subarray(0, 3), name), [name, "shorter than the 4-byte magic"]);
  const trailing = new Uint8Array(good.length + 3);
  trailing.set(good);
  throwsOneLine(() => parseIdx(trailing, name), [name, "3 unexpected trailing bytes"]);
  const badMagic = good.slice();
  badMagic[0] = 0x50;
  throwsOneLine(() => parseIdx(badMagic, name), [name, "bad magic number 0x50 0x00 0x08 0x03"]);
  const gz = good.slice();
  gz[0] = 0x1f;
  gz[1] = 0x8b;
  throwsOneLine(() => parseIdx(gz, name), ["gzip-compressed"]);
  const badType = good.slice();
  badType[2] = 0x0a;
  throwsOneLine(() => parseIdx(badType, name), [name, "unknown IDX element type 0x0a"]);
  const zeroDims = good.slice();
  zeroDims[3] = 0;
  throwsOneLine(() => parseIdx(zeroDims, name), [name, "0 dimensions"]);

  // Files: good (plain and gzip), truncated, corrupt gzip, missing.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/a-idx3-ubyte`, good);
    const f = await readIdxFile(`${dir}/a-idx3-ubyte`);
    assertEquals(f.dims, [6, 4, 5]);
    assertEquals(f.data[119], 119);
    const gzBytes = new Uint8Array(
      await new Response(
        new Blob([good as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
          new CompressionStream("gzip"),
        ),
      ).arrayBuffer(),
    );
    await Deno.writeFile(`${dir}/a-idx3-ubyte.gz`, gzBytes);
    assertEquals(
      Array.from((await readIdxFile(`${dir}/a-idx3-ubyte.gz`)).data),
      Array.from(good.subarray(16)),
    );
    await Deno.writeFile(`${dir}/t-idx3-ubyte`, good.subarray(0, 50));
    await rejectsOneLine(() => readIdxFile(`${dir}/t-idx3-ubyte`), [
      "t-idx3-ubyte: truncated",
      "file has 34",
    ]);
    await Deno.writeFile(`${dir}/c-idx3-ubyte.gz`, gzBytes.subarray(0, gzBytes.length - 20));
    await rejectsOneLine(() => readIdxFile(`${dir}/c-idx3-ubyte.gz`), [
      "c-idx3-ubyte.gz: corrupt gzip data",
    ]);
    await rejectsOneLine(() => readIdxFile(`${dir}/missing-idx1-ubyte`), [
      "missing-idx1-ubyte: file not found",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
