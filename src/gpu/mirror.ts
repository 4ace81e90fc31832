/**
 * Texture mirrors of storage buffers: a kernel that reads a buffer many times can read a texture
 * copy of it instead (`textureLoad`), refreshed by a buffer-to-texture copy recorded just before
 * the kernel. Why: Mesa llvmpipe (22.x) loads every storage-buffer element through a per-lane
 * scalar loop that inserts into the SIMD vector via the stack, while texel fetches are gathered in
 * registers; on hosts where the stack round trip stalls (measured on AMD Zen 2: 4-5x for spmm),
 * the texture read is far faster. Hardware GPUs keep reading buffers (the choice is the kernel
 * wrapper's: src/kernels/sparse.ts `sparseInputs`).
 *
 * Layout: a buffer of `n` 4-byte elements becomes a 2-D texture {@link MIRROR_WIDTH} texels wide,
 * texel `t` at `(t % MIRROR_WIDTH, t / MIRROR_WIDTH)`, in one of three formats: `r32float` or
 * `r32uint` (texel = element), or `rgba32float` (texel = 4 consecutive elements, e.g. a vec4 quad
 * of feature-major activations; `n` a multiple of 4). Any size fits: full rows are copied in one
 * go (rows of 16 or 64 KiB, multiples of WebGPU's 256-byte copy pitch) and the last, partial row
 * in a second copy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "./mod.ts";
 * import { mirror } from "./mirror.ts";
 * const gpu = await getGpu();
 * const t = gpu.tensor("u32", [5], { data: new Uint32Array([1, 2, 3, 4, 5]) });
 * const rec = gpu.recorder();
 * const tex = mirror(rec, t, { n: 5, format: "r32uint" });
 * rec.submit();
 * assert.deepEqual([tex.width, tex.height, tex.format], [5, 1, "r32uint"]);
 * ```
 * @module
 */
import type { Gpu } from "./device.ts";
import { FiligreeError } from "./errors.ts";
import type { Recorder } from "./recorder.ts";
import { storageReadSlots } from "./storage_textures.ts";
import type { Tensor } from "./tensor.ts";

/**
 * Adapter class for kernel-variant tables: `"cpu"` for software adapters (llvmpipe/lavapipe,
 * WARP, SwiftShader: `adapter.info.isFallbackAdapter`), else `"gpu"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "./mod.ts";
 * import { adapterClass } from "./mirror.ts";
 * const gpu = await getGpu();
 * assert.ok(["cpu", "gpu"].includes(adapterClass(gpu)));
 * ```
 */
export function adapterClass(gpu: Gpu): "cpu" | "gpu" {
  const info = gpu.info as { isFallbackAdapter?: boolean; description?: string };
  if (info.isFallbackAdapter) return "cpu";
  return /llvmpipe|lavapipe|swiftshader|softpipe/i.test(info.description ?? "") ? "cpu" : "gpu";
}

/**
 * Where a kernel reads its read-only arrays: storage buffers, or texture mirrors of them copied in
 * just before the kernel.
 */
export type InputSource = "buffer" | "texture";
/**
 * Default operand source per adapter class, for every kernel with a texture variant (the sparse
 * gathers, the work-efficient ablation, and the kernels whose definition sets `textureInputs`:
 * src/gpu/textured.ts). llvmpipe: textures (Mesa 22.3 loads a storage buffer element by a
 * per-lane scalar loop through the stack and a texel by a register gather: 3.9-5.3x faster spmm and
 * 2-3.5x faster element-wise kernels, copies included, on an AMD Zen 2 host, 2026-12-06,
 * bench/RESULTS.md; about even on the faster host of the earlier sessions). GPUs: buffers
 * (coalesced loads; not measured here).
 * Mutable so a benchmark can compare whole steps both ways in one process; the environment
 * variable `FILIGREE_INPUTS=buffer|texture` overrides it for a run.
 */
export const INPUT_SOURCES: Record<"cpu" | "gpu", InputSource> = { cpu: "texture", gpu: "buffer" };

function envInputs(): InputSource | undefined {
  let v: string | undefined;
  try {
    v = Deno.env.get("FILIGREE_INPUTS");
  } catch {
    return undefined; // no --allow-env: the table decides
  }
  if (v === undefined || v === "") return undefined;
  if (v !== "buffer" && v !== "texture") {
    throw new FiligreeError(`FILIGREE_INPUTS must be "buffer" or "texture", got "${v}"`);
  }
  return v;
}

/**
 * Whether a kernel with a texture variant should read textures: `want` when given, else the
 * environment override `FILIGREE_INPUTS`, else {@link INPUT_SOURCES} for the adapter class
 * (the caller still checks that its operands can be mirrored).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "./mod.ts";
 * import { preferTextures } from "./mirror.ts";
 * const gpu = await getGpu();
 * assert.equal(preferTextures(gpu, "buffer"), false);
 * ```
 */
export function preferTextures(gpu: Gpu, want: InputSource | "auto" = "auto"): boolean {
  return (want !== "auto" ? want : envInputs() ?? INPUT_SOURCES[adapterClass(gpu)]) === "texture";
}

/**
 * The operand source kernels use on this device and why (printed by `deno task info`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "./mod.ts";
 * import { inputSourceChoice } from "./mirror.ts";
 * const gpu = await getGpu();
 * assert.ok(["buffer", "texture"].includes(inputSourceChoice(gpu).source));
 * ```
 */
export function inputSourceChoice(gpu: Gpu): { source: InputSource; reason: string } {
  const env = envInputs();
  if (env) return { source: env, reason: "FILIGREE_INPUTS" };
  return adapterClass(gpu) === "cpu"
    ? {
      source: INPUT_SOURCES.cpu,
      reason:
        "software adapter: read-only arrays through texture mirrors (llvmpipe's buffer loads stall on some CPUs; FILIGREE_INPUTS=buffer to override)",
    }
    : { source: INPUT_SOURCES.gpu, reason: "hardware GPU: storage buffers" };
}

/**
 * Whether a mirror copied by a command buffer already submitted is reused while its buffer has not
 * been written since (every write path calls {@link touch}; a recorder touches what it wrote once
 * more when it submits, so a write submitted after the copy invalidates it); else a mirror is
 * copied once per command buffer. On: LeNet-300-100 steps 8.34 → 7.57 ms, SET-MLP ε 20 22.75 →
 * 22.21 (llvmpipe GL, Zen 2, 5 interleaved rounds; the index arrays and weights no longer copied
 * every step). Mutable so a benchmark can compare both.
 */
export const MIRROR_REUSE = { acrossSubmits: true };

/** Texels per row of a mirror (a power of two; shaders/sparse_textures_fns.wgsl agrees). */
export const MIRROR_WIDTH = 4096;

/** Texel formats of a mirror. */
export type MirrorFormat = "r32float" | "r32uint" | "rgba32float" | "rgba32uint";

/** The first `n` elements of a tensor, as texels of `format`. */
export interface MirrorLayout {
  n: number;
  format: MirrorFormat;
}

const texelElems = (f: MirrorFormat) => (f.startsWith("rgba") ? 4 : 1);

/** Whether `n` elements fit a mirror of `format` (`maxTextureDimension2D` rows at most). */
export function canMirror(gpu: Gpu, n: number, format: MirrorFormat): boolean {
  const e = texelElems(format);
  return n % e === 0 && Math.ceil(n / e / MIRROR_WIDTH) <= gpu.limits.maxTextureDimension2D;
}

const placeholders = new WeakMap<Gpu, Map<MirrorFormat, GPUTexture>>();
/**
 * A one-texel texture of `format` (zero), usable wherever a mirror of that format is: bound for
 * an array a dispatch never reads (`Recorder.dispatch`'s `unread`), so nothing is copied.
 */
export function placeholderMirror(gpu: Gpu, format: MirrorFormat): GPUTexture {
  let byFormat = placeholders.get(gpu);
  if (!byFormat) placeholders.set(gpu, byFormat = new Map());
  let t = byFormat.get(format);
  if (!t) {
    t = gpu.device.createTexture({
      label: `placeholder ${format}`,
      size: { width: 1, height: 1 },
      format,
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST |
        (storageReadSlots(gpu) > 0 ? GPUTextureUsage.STORAGE_BINDING : 0),
    });
    // Zeros written once (otherwise wgpu zero-initializes it lazily at its first use).
    gpu.device.queue.writeTexture({ texture: t }, new Uint8Array(16), { bytesPerRow: 256 }, {
      width: 1,
      height: 1,
    });
    byFormat.set(format, t);
  }
  return t;
}

const versions = new WeakMap<GPUBuffer, number>();
/**
 * Marks a buffer as (possibly) written: the recorder calls it for every read-write binding, copy
 * destination and clear it records, the device for every upload. A mirror is copied again after
 * any such write.
 */
export function touch(b: GPUBuffer): void {
  versions.set(b, (versions.get(b) ?? 0) + 1);
}

/**
 * How many times `b` has been marked written ({@link touch}): data derived from a buffer on the
 * GPU (a mirror, a row order) is recomputed when this has changed since.
 */
export function bufferVersion(b: GPUBuffer): number {
  return versions.get(b) ?? 0;
}

interface MirrorEntry {
  tex: GPUTexture;
  /** The recorder and command-buffer generation of the last recorded copy, and the version. */
  rec: Recorder | null;
  gen: number;
  version: number;
}
const mirrors = new WeakMap<GPUBuffer, Map<string, MirrorEntry>>();

/**
 * The mirror texture of `t`'s first `layout.n` elements, with a copy of their current values
 * recorded into `rec` (ordered after the work recorded before it), unless the same command buffer
 * (recorder and generation) already copied them and nothing has written the buffer since (a
 * forward and a backward that read the same activations, values or index arrays copy them once).
 * One texture per buffer and layout, reused.
 */
export function mirror(rec: Recorder, t: Tensor, layout: MirrorLayout): GPUTexture {
  const gpu = rec.gpu;
  const { n, format } = layout;
  if (t.size < n) {
    throw new FiligreeError(`mirror: tensor ${t.label} has ${t.size} elements, needs ${n}`);
  }
  if (!canMirror(gpu, n, format)) {
    throw new FiligreeError(
      `mirror: ${n} elements of ${t.label} cannot be a ${format} texture (${
        n % texelElems(format) ? "not whole texels" : "taller than maxTextureDimension2D"
      })`,
    );
  }
  const e = texelElems(format);
  const texels = n / e;
  const width = Math.max(1, Math.min(texels, MIRROR_WIDTH));
  const height = Math.max(1, Math.ceil(texels / MIRROR_WIDTH));
  const key = `${format}:${width}x${height}`;
  let byKey = mirrors.get(t.buffer);
  if (!byKey) mirrors.set(t.buffer, byKey = new Map());
  let entry = byKey.get(key);
  if (!entry) {
    const tex = gpu.device.createTexture({
      label: `${t.label}.mirror`,
      size: { width, height },
      format,
      // Storage binding too where kernels may read it as a read-only storage texture.
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST |
        (storageReadSlots(gpu) > 0 ? GPUTextureUsage.STORAGE_BINDING : 0),
    });
    byKey.set(key, entry = { tex, rec: null, gen: -1, version: -1 });
  }
  const tex = entry.tex;
  const version = bufferVersion(t.buffer);
  // Reuse: the same command buffer copied it, or (across submits) the command buffer that copied
  // it has been submitted; either way nothing has written the buffer since.
  if (
    entry.version === version && entry.rec !== null &&
    ((entry.rec === rec && entry.gen === rec.generation) ||
      (MIRROR_REUSE.acrossSubmits && entry.rec.generation > entry.gen))
  ) return tex;
  entry.rec = rec;
  entry.gen = rec.generation;
  entry.version = version;
  rec.endPass();
  const enc = rec.encoder;
  let full = Math.floor(texels / MIRROR_WIDTH);
  let rest = texels - full * MIRROR_WIDTH;
  const rowBytes = MIRROR_WIDTH * 4 * e;
  // One copy where the buffer holds the last row whole (Gpu.tensor allocates whole mirror rows
  // from 16 KiB up): the texels past n are copied but never read. A copy is a GL upload of its
  // own (~8 µs on llvmpipe, bytes aside).
  if (rest > 0 && full > 0 && t.buffer.size >= (full + 1) * rowBytes) {
    full++;
    rest = 0;
  }
  if (full > 0) {
    enc.copyBufferToTexture(
      { buffer: t.buffer, bytesPerRow: rowBytes, rowsPerImage: full },
      { texture: tex },
      { width: MIRROR_WIDTH, height: full },
    );
  }
  if (rest > 0) {
    enc.copyBufferToTexture(
      { buffer: t.buffer, offset: full * rowBytes },
      { texture: tex, origin: { x: 0, y: full } },
      { width: rest, height: 1 },
    );
  }
  return tex;
}
