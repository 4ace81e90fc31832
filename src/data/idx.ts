/**
 * The IDX file format (MNIST, Fashion-MNIST): a 4-byte magic number `00 00 TT NN` (TT = element
 * type, NN = number of dimensions), NN big-endian u32 dimension sizes, then the elements in
 * row-major order, big-endian. Parsing checks the magic, the type code and the exact byte length,
 * and reports problems as one-line {@link FiligreeError}s naming the file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeIdx, parseIdx } from "./idx.ts";
 * const bytes = encodeIdx("u8", [2, 3], new Uint8Array([1, 2, 3, 4, 5, 6]));
 * const f = parseIdx(bytes, "demo-idx2-ubyte");
 * assert.deepEqual(f.dims, [2, 3]);
 * assert.deepEqual(f.data[5], 6);
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";

/** Element types of IDX files (type codes 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E). */
export type IdxType = "u8" | "i8" | "i16" | "i32" | "f32" | "f64";

/** The array type holding an IDX file's elements. */
export type IdxArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Float32Array
  | Float64Array;

/** A parsed IDX file. For `u8` files `data` is a view into the input bytes (no copy). */
export interface IdxFile {
  /** Element type. */
  type: IdxType;
  /** Dimension sizes from the header. */
  dims: number[];
  /** The elements, row-major, in host order. */
  data: IdxArray;
}

const CODES: Record<number, [IdxType, number]> = {
  0x08: ["u8", 1],
  0x09: ["i8", 1],
  0x0b: ["i16", 2],
  0x0c: ["i32", 4],
  0x0d: ["f32", 4],
  0x0e: ["f64", 8],
};
const TYPE_CODE: Record<IdxType, number> = {
  u8: 0x08,
  i8: 0x09,
  i16: 0x0b,
  i32: 0x0c,
  f32: 0x0d,
  f64: 0x0e,
};
const TYPE_SIZE: Record<IdxType, number> = { u8: 1, i8: 1, i16: 2, i32: 4, f32: 4, f64: 8 };

function hex(b: number): string {
  return "0x" + b.toString(16).padStart(2, "0");
}

/**
 * Parses IDX bytes. `name` (usually the file name) starts every error message, e.g.
 * `train-images-idx3-ubyte: truncated: header says 60000x28x28 = 47040000 bytes of data, file has 1000`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIdx } from "./idx.ts";
 * assert.throws(() => parseIdx(new Uint8Array([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]), "labels"), {
 *   message: "labels: truncated: header says 9 = 9 bytes of data, file has 2",
 * });
 * ```
 */
export function parseIdx(bytes: Uint8Array, name: string): IdxFile {
  const fail = (what: string): never => {
    throw new FiligreeError(`${name}: ${what}`);
  };
  if (bytes.length < 4) {
    fail(`not an IDX file: ${bytes.length} bytes, shorter than the 4-byte magic number`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    fail(
      `not an IDX file: bad magic number ${
        [...bytes.subarray(0, 4)].map(hex).join(" ")
      } (expected 0x00 0x00 <type> <ndim>)` +
        (bytes[0] === 0x1f && bytes[1] === 0x8b ? "; it is gzip-compressed" : ""),
    );
  }
  const code = CODES[bytes[2]];
  if (!code) {
    fail(`unknown IDX element type ${hex(bytes[2])} (known: 0x08 0x09 0x0b 0x0c 0x0d 0x0e)`);
  }
  const [type, size] = code;
  const ndim = bytes[3];
  if (ndim === 0) fail("IDX header has 0 dimensions");
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes) {
    fail(
      `truncated: the ${ndim}-dimensional header needs ${headerBytes} bytes, file has ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const need = count * size;
  const have = bytes.length - headerBytes;
  const shape = `header says ${dims.join("x")} = ${need} bytes of data`;
  if (have < need) fail(`truncated: ${shape}, file has ${have}`);
  if (have > need) fail(`${have - need} unexpected trailing bytes: ${shape}, file has ${have}`);
  const body = bytes.subarray(headerBytes);
  let data: IdxArray;
  if (type === "u8") data = body;
  else if (type === "i8") data = new Int8Array(body.buffer, body.byteOffset, count);
  else {
    const out = type === "i16"
      ? new Int16Array(count)
      : type === "i32"
      ? new Int32Array(count)
      : type === "f32"
      ? new Float32Array(count)
      : new Float64Array(count);
    const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
    for (let i = 0; i < count; i++) {
      const o = i * size;
      out[i] = type === "i16"
        ? dv.getInt16(o, false)
        : type === "i32"
        ? dv.getInt32(o, false)
        : type === "f32"
        ? dv.getFloat32(o, false)
        : dv.getFloat64(o, false);
    }
    data = out;
  }
  return { type, dims, data };
}

/**
 * Encodes elements as an IDX file (big-endian), the inverse of {@link parseIdx}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeIdx } from "./idx.ts";
 * assert.deepEqual(encodeIdx("u8", [3], new Uint8Array([7, 8, 9])).length, 11);
 * ```
 */
export function encodeIdx(
  type: IdxType,
  dims: readonly number[],
  data: ArrayLike<number>,
): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new FiligreeError(
      `encodeIdx: dims ${dims.join("x")} need ${count} elements, got ${data.length}`,
    );
  }
  const size = TYPE_SIZE[type];
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + count * size);
  const dv = new DataView(out.buffer);
  out[2] = TYPE_CODE[type];
  out[3] = dims.length;
  dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < count; i++) {
    const o = header + i * size;
    const v = data[i];
    if (type === "u8") dv.setUint8(o, v);
    else if (type === "i8") dv.setInt8(o, v);
    else if (type === "i16") dv.setInt16(o, v, false);
    else if (type === "i32") dv.setInt32(o, v, false);
    else if (type === "f32") dv.setFloat32(o, v, false);
    else dv.setFloat64(o, v, false);
  }
  return out;
}

/**
 * Decompresses gzip bytes with the web-standard `DecompressionStream`; corrupt input is a
 * one-line error naming `name`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gunzip } from "./idx.ts";
 * const gz = new Uint8Array(await new Response(new Blob(["hi"]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
 * assert.deepEqual(new TextDecoder().decode(await gunzip(gz, "hi.gz")), "hi");
 * ```
 */
export async function gunzip(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
      new DecompressionStream("gzip"),
    );
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new FiligreeError(`${name}: corrupt gzip data: ${(e as Error).message.split("\n")[0]}`);
  }
}

/**
 * Reads and parses an IDX file; a name ending in `.gz` is decompressed first. Errors name the
 * file (its last path component) and say what is wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeIdx, readIdxFile } from "./idx.ts";
 * const path = await Deno.makeTempFile({ suffix: "-idx1-ubyte" });
 * await Deno.writeFile(path, encodeIdx("u8", [2], new Uint8Array([3, 4])));
 * assert.deepEqual((await readIdxFile(path)).dims, [2]);
 * ```
 */
export async function readIdxFile(path: string | URL): Promise<IdxFile> {
  const s = path instanceof URL ? decodeURIComponent(path.pathname) : path;
  const name = s.split(/[\\/]/).pop() || s;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new FiligreeError(`${s}: file not found`);
    throw new FiligreeError(`${s}: cannot read: ${(e as Error).message.split("\n")[0]}`);
  }
  if (name.endsWith(".gz")) bytes = await gunzip(bytes, name);
  return parseIdx(bytes, name);
}
