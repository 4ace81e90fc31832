/**
 * The safetensors format, written and read by hand (checkpoints, weights, normalization stats):
 *
 * ```text
 * u64 little-endian N | N bytes of UTF-8 JSON header, space-padded so 8 + N is a multiple of 8 | data
 * header = { "__metadata__": { string: string }, name: { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ... }
 * ```
 *
 * Offsets are relative to the start of the data section, elements are little-endian and
 * row-major. Reading validates everything (header length, UTF-8/JSON, dtypes, shapes, offsets in
 * range, sizes matching shapes, no overlaps and no holes) and reports a problem as one
 * {@link FiligreeError} line naming the file. Writing orders tensors by element size (largest
 * first), then name, so every tensor is naturally aligned in the file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors({ w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } }, { step: "10" });
 * const f = decodeSafetensors(bytes, "ckpt.safetensors");
 * assert.deepEqual(f.tensors.get("w")!.data, new Float32Array([1, 2]));
 * assert.deepEqual(f.metadata.step, "10"); // metadata values are strings
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";
import { writeFileAtomic } from "./atomic.ts";

/** Element sizes in bytes of the safetensors dtypes. */
export const DTYPE_SIZE = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
} as const;

/** A safetensors element type. */
export type StDType = keyof typeof DTYPE_SIZE;

/** The typed array holding a tensor of a dtype (F16/BF16 as raw bits, F8/BOOL as bytes). */
export type StArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** One tensor: dtype, shape (row-major) and elements. */
export interface StTensor {
  /** Element type. */
  dtype: StDType;
  /** Dimensions, row-major (`[]` for a scalar). */
  shape: number[];
  /** `product(shape)` elements of the dtype's array type. */
  data: StArray;
}

/** A decoded file: tensors in file order and the `__metadata__` string map. */
export interface SafetensorsFile {
  /** Tensors by name, in header order. */
  tensors: Map<string, StTensor>;
  /** The `__metadata__` map (empty when absent). */
  metadata: Record<string, string>;
}

type Ctor = {
  new (buf: ArrayBuffer, off?: number, len?: number): StArray;
  new (n: number): StArray;
};
const CTOR: Record<StDType, Ctor> = {
  BOOL: Uint8Array,
  U8: Uint8Array,
  I8: Int8Array,
  F8_E5M2: Uint8Array,
  F8_E4M3: Uint8Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  F32: Float32Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
  F64: Float64Array,
};

/** Largest header accepted on read (the reference implementation uses the same 100 MB bound). */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new FiligreeError("safetensors: big-endian hosts are not supported");
}

function isDType(s: unknown): s is StDType {
  return typeof s === "string" && Object.hasOwn(DTYPE_SIZE, s);
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Tensors to write, by name. */
export type TensorInput = Record<string, StTensor> | Map<string, StTensor>;

/**
 * Encodes tensors and string metadata as safetensors bytes. Each tensor's `data` must be the
 * typed array of its dtype (see {@link StArray}) with exactly `product(shape)` elements.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeSafetensors } from "./safetensors.ts";
 * const b = encodeSafetensors({ ids: { dtype: "U32", shape: [3], data: new Uint32Array([1, 2, 3]) } });
 * const headerLength = Number(new DataView(b.buffer).getBigUint64(0, true));
 * assert.deepEqual((8 + headerLength) % 8, 0); // the data starts 8-byte aligned
 * assert.deepEqual(b.length, 8 + headerLength + 12);
 * ```
 */
export function encodeSafetensors(
  tensors: TensorInput,
  metadata: Record<string, string> = {},
): Uint8Array {
  assertLittleEndian();
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))];
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") {
      throw new FiligreeError(`safetensors: metadata "${k}" must be a string, got ${typeof v}`);
    }
  }
  for (const [name, t] of entries) {
    const at = `safetensors: tensor "${name}"`;
    if (name === "" || name === "__metadata__") {
      throw new FiligreeError(`${at}: reserved or empty name`);
    }
    if (!isDType(t.dtype)) throw new FiligreeError(`${at}: unknown dtype ${t.dtype}`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new FiligreeError(
        `${at}: shape must be non-negative integers, got ${JSON.stringify(t.shape)}`,
      );
    }
    if (!(t.data instanceof CTOR[t.dtype])) {
      throw new FiligreeError(
        `${at}: ${t.dtype} data must be a ${CTOR[t.dtype].name}, got ${t.data?.constructor?.name}`,
      );
    }
    if (t.data.length !== numel(t.shape)) {
      throw new FiligreeError(
        `${at}: shape [${t.shape.join(", ")}] needs ${
          numel(t.shape)
        } elements, data has ${t.data.length}`,
      );
    }
  }
  entries.sort(([a, ta], [b, tb]) =>
    DTYPE_SIZE[tb.dtype] - DTYPE_SIZE[ta.dtype] || (a < b ? -1 : a > b ? 1 : 0)
  );
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const [name, t] of entries) {
    const len = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + len] };
    off += len;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Decodes and validates safetensors bytes. `name` (usually the file name) starts every error
 * message. Tensor data is copied into fresh, aligned typed arrays.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors } from "./safetensors.ts";
 * assert.throws(() => decodeSafetensors(new Uint8Array(4), "bad.safetensors"), {
 *   message: "bad.safetensors: truncated: 4 bytes, shorter than the 8-byte header length",
 * });
 * ```
 */
export function decodeSafetensors(bytes: Uint8Array, name = "safetensors"): SafetensorsFile {
  assertLittleEndian();
  const fail = (what: string): never => {
    throw new FiligreeError(`${name}: ${what}`);
  };
  if (bytes.length < 8) {
    fail(`truncated: ${bytes.length} bytes, shorter than the 8-byte header length`);
  }
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    fail(`bad header length ${n64} (more than ${MAX_HEADER_BYTES} bytes)`);
  }
  const n = Number(n64);
  if (n < 2) fail(`bad header length ${n}`);
  if (8 + n > bytes.length) {
    fail(`truncated: header length ${n} but only ${bytes.length - 8} bytes follow it`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail("header is not valid UTF-8");
  }
  if (!text.startsWith("{")) {
    fail(`header does not start with "{" (got ${JSON.stringify(text.slice(0, 10))})`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON: ${(e as Error).message.split("\n")[0]}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("header is not a JSON object");
  }
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const infos: { name: string; dtype: StDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [key, value] of Object.entries(header as Record<string, unknown>)) {
    if (key === "__metadata__") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        fail("__metadata__ is not an object");
      }
      for (const [mk, mv] of Object.entries(value as Record<string, unknown>)) {
        if (typeof mv !== "string") fail(`__metadata__ "${mk}" is not a string`);
        metadata[mk] = mv as string;
      }
      continue;
    }
    const at = `tensor "${key}"`;
    if (typeof value !== "object" || value === null) fail(`${at}: entry is not an object`);
    const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDType(v.dtype)) fail(`${at}: unknown dtype ${JSON.stringify(v.dtype)}`);
    const dtype = v.dtype as StDType;
    if (!Array.isArray(v.shape) || !v.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${at}: bad shape ${JSON.stringify(v.shape)}`);
    }
    const shape = v.shape as number[];
    const o = v.data_offsets;
    if (
      !Array.isArray(o) || o.length !== 2 || !o.every((x) => Number.isSafeInteger(x) && x >= 0) ||
      o[0] > o[1]
    ) {
      fail(`${at}: bad data_offsets ${JSON.stringify(o)}`);
    }
    const [begin, end] = o as [number, number];
    if (end > dataLen) {
      fail(
        `${at}: data_offsets [${begin}, ${end}] out of range (data section has ${dataLen} bytes)`,
      );
    }
    const need = numel(shape) * DTYPE_SIZE[dtype];
    if (end - begin !== need) {
      fail(
        `${at}: shape [${
          shape.join(", ")
        }] ${dtype} needs ${need} bytes, data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    infos.push({ name: key, dtype, shape, begin, end });
  }
  const sorted = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i];
    if (i > 0 && t.begin < sorted[i - 1].end) {
      const p = sorted[i - 1];
      fail(
        `tensors "${p.name}" [${p.begin}, ${p.end}] and "${t.name}" [${t.begin}, ${t.end}] overlap`,
      );
    }
    if (t.begin > covered) fail(`data bytes [${covered}, ${t.begin}) belong to no tensor`);
    covered = t.end;
  }
  if (covered !== dataLen) {
    fail(`data bytes [${covered}, ${dataLen}) belong to no tensor (trailing or truncated data)`);
  }
  const tensors = new Map<string, StTensor>();
  for (const t of infos) {
    const copy = bytes.slice(dataStart + t.begin, dataStart + t.end);
    const data = new CTOR[t.dtype](copy.buffer, 0, (t.end - t.begin) / DTYPE_SIZE[t.dtype]);
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data });
  }
  return { tensors, metadata };
}

/**
 * Writes a safetensors file atomically (see atomic.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * const path = (await Deno.makeTempDir()) + "/w.safetensors";
 * await writeSafetensors(path, { b: { dtype: "F32", shape: [1], data: new Float32Array([0.5]) } });
 * assert.deepEqual((await readSafetensors(path)).tensors.get("b")!.data[0], 0.5);
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorInput,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/**
 * Reads and validates a safetensors file; errors name the file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * const path = (await Deno.makeTempDir()) + "/m.safetensors";
 * await writeSafetensors(path, {}, { note: "empty" });
 * assert.deepEqual((await readSafetensors(path)).metadata.note, "empty");
 * ```
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new FiligreeError(`${path}: file not found`);
    throw new FiligreeError(`${path}: cannot read: ${(e as Error).message.split("\n")[0]}`);
  }
  return decodeSafetensors(bytes, path);
}
