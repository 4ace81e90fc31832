/**
 * Packs a kernel's uniform parameter struct. WGSL structs of 4-byte scalars are laid out in
 * declaration order with 4-byte alignment; the total is padded to 16 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { f32, packParams } from "./params.ts";
 * // struct Params { rows: u32, batch: u32, lr: f32 }
 * const bytes = packParams([3, 128, f32(0.01)]);
 * assert.deepEqual(bytes.byteLength, 16);
 * ```
 * @module
 */

/** A float field of a parameter struct (plain numbers are u32). */
export interface F32Field {
  readonly f32: number;
}
/** A signed integer field of a parameter struct. */
export interface I32Field {
  readonly i32: number;
}
/** One 4-byte field: a plain number is u32. */
export type ParamField = number | F32Field | I32Field;

/** Marks a value as f32. */
export function f32(v: number): F32Field {
  return { f32: v };
}
/** Marks a value as i32. */
export function i32(v: number): I32Field {
  return { i32: v };
}

/** Packs fields into a 16-byte-padded ArrayBuffer. */
export function packParams(fields: readonly ParamField[]): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(buf);
  fields.forEach((f, i) => {
    if (typeof f === "number") {
      if (!Number.isInteger(f) || f < 0 || f > 0xffffffff) {
        throw new RangeError(`u32 parameter ${i} out of range: ${f}`);
      }
      view.setUint32(i * 4, f, true);
    } else if ("f32" in f) view.setFloat32(i * 4, f.f32, true);
    else view.setInt32(i * 4, f.i32, true);
  });
  return buf;
}
