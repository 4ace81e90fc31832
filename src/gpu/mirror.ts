/**
 * Texture mirrors of storage buffers: a kernel that reads a buffer many times can read a texture
 * copy of it instead (`textureLoad`), refreshed by a buffer-to-texture copy recorded just before
 * the kernel. Why: Mesa llvmpipe (22.x) loads every storage-buffer element through a per-lane
 * scalar loop that inserts into the SIMD vector via the stack, while texel fetches are gathered in
 * registers; on hosts where the stack round trip stalls (measured on AMD Zen 2: 4-9x), the texture
 * read is far faster. Hardware GPUs keep reading buffers (the choice is the kernel wrapper's).
 *
 * Two layouts:
 * - `rows4`: an f32 tensor `[rows][4 * ld4]` (feature-major activations) as an `rgba32float`
 *   texture `ld4` texels wide and `rows` high: texel `(q, r)` is quad `q` of row `r`. The copy
 *   needs rows of a multiple of 256 bytes (`ld4 % 16 == 0`): {@link canMirrorRows}.
 * - `flat`: `n` 4-byte elements as an `r32float` / `r32uint` texture {@link MIRROR_WIDTH} texels
 *   wide: element `k` is texel `(k % MIRROR_WIDTH, k / MIRROR_WIDTH)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "./mod.ts";
 * import { canMirrorRows, mirror } from "./mirror.ts";
 * const gpu = await getGpu();
 * assert.equal(canMirrorRows(gpu, 3, 16), true); // 16 quads = 256 bytes a row
 * assert.equal(canMirrorRows(gpu, 3, 5), false);
 * const t = gpu.tensor("u32", [5], { data: new Uint32Array([1, 2, 3, 4, 5]) });
 * const rec = gpu.recorder();
 * const tex = mirror(rec, t, { kind: "flat", n: 5, format: "r32uint" });
 * rec.submit();
 * assert.deepEqual([tex.width, tex.height, tex.format], [5, 1, "r32uint"]);
 * ```
 * @module
 */
import type { Gpu } from "./device.ts";
import { FiligreeError } from "./errors.ts";
import type { Recorder } from "./recorder.ts";
import type { Tensor } from "./tensor.ts";

/** Texels per row of a `flat` mirror (a power of two; shaders/sparse_textures.wgsl agrees). */
export const MIRROR_WIDTH = 4096;

/** How a tensor is laid out in its mirror texture. */
export type MirrorLayout =
  | { kind: "rows4"; rows: number; ld4: number }
  | { kind: "flat"; n: number; format: "r32float" | "r32uint" };

/**
 * Whether `[rows][4 * ld4]` can be mirrored: rows a multiple of 256 bytes (WebGPU's copy pitch)
 * and both sides within `maxTextureDimension2D`.
 */
export function canMirrorRows(gpu: Gpu, rows: number, ld4: number): boolean {
  const max = gpu.limits.maxTextureDimension2D;
  return (ld4 * 16) % 256 === 0 && ld4 <= max && rows >= 1 && rows <= max;
}

/** Whether `n` elements fit a `flat` mirror. */
export function canMirrorFlat(gpu: Gpu, n: number): boolean {
  return Math.ceil(n / MIRROR_WIDTH) <= gpu.limits.maxTextureDimension2D;
}

function extent(l: MirrorLayout): { width: number; height: number; format: GPUTextureFormat } {
  if (l.kind === "rows4") return { width: l.ld4, height: l.rows, format: "rgba32float" };
  const n = Math.max(1, l.n);
  return {
    width: Math.min(n, MIRROR_WIDTH),
    height: Math.ceil(n / MIRROR_WIDTH),
    format: l.format,
  };
}

const mirrors = new WeakMap<GPUBuffer, Map<string, GPUTexture>>();

/**
 * The mirror texture of `t` in `layout`, with a copy of `t`'s current contents recorded into
 * `rec` (ordered after the work recorded before it). One texture per buffer and layout, reused.
 */
export function mirror(rec: Recorder, t: Tensor, layout: MirrorLayout): GPUTexture {
  const gpu = rec.gpu;
  const { width, height, format } = extent(layout);
  const need = layout.kind === "rows4" ? layout.rows * layout.ld4 * 4 : layout.n;
  if (t.size < need) {
    throw new FiligreeError(`mirror: tensor ${t.label} has ${t.size} elements, needs ${need}`);
  }
  if (layout.kind === "rows4" && !canMirrorRows(gpu, layout.rows, layout.ld4)) {
    throw new FiligreeError(
      `mirror: ${layout.rows} rows of ${layout.ld4} quads cannot be a texture (rows must be a multiple of 256 bytes, sides <= ${gpu.limits.maxTextureDimension2D})`,
    );
  }
  if (layout.kind === "flat" && !canMirrorFlat(gpu, layout.n)) {
    throw new FiligreeError(`mirror: ${layout.n} elements exceed a texture's height`);
  }
  const key = `${format}:${width}x${height}`;
  let byKey = mirrors.get(t.buffer);
  if (!byKey) mirrors.set(t.buffer, byKey = new Map());
  let tex = byKey.get(key);
  if (!tex) {
    tex = gpu.device.createTexture({
      label: `${t.label}.mirror`,
      size: { width, height },
      format,
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    });
    byKey.set(key, tex);
  }
  rec.endPass();
  const enc = rec.encoder;
  if (layout.kind === "rows4") {
    enc.copyBufferToTexture(
      { buffer: t.buffer, bytesPerRow: width * 16, rowsPerImage: height },
      { texture: tex },
      { width, height },
    );
    return tex;
  }
  const full = Math.floor(layout.n / MIRROR_WIDTH);
  const rest = layout.n - full * MIRROR_WIDTH;
  if (full > 0) {
    enc.copyBufferToTexture(
      { buffer: t.buffer, bytesPerRow: width * 4, rowsPerImage: full },
      { texture: tex },
      { width, height: full },
    );
  }
  if (rest > 0) {
    enc.copyBufferToTexture(
      { buffer: t.buffer, offset: full * MIRROR_WIDTH * 4 },
      { texture: tex, origin: { x: 0, y: full } },
      { width: rest, height: 1 },
    );
  }
  return tex;
}
