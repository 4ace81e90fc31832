/**
 * How kernels read their texture mirrors: as sampled textures (`texture_2d<f32|u32>`,
 * `textureLoad(t, at, 0)`) or as read-only storage textures (`texture_storage_2d<format, read>`,
 * `textureLoad(t, at)`). Kernels are written once, sampled; where storage reads are chosen,
 * {@link Recorder.dispatch} runs a storage twin of the kernel made by one textual rewrite of its
 * texture declarations and loads, for the formats of the mirrors bound (one twin per format set).
 *
 * Why: Mesa 22.3's llvmpipe fetches a texel of a read-only storage texture about twice as fast
 * as one of a sampled texture (`deno task bench:fetch`, Zen 2 host, GL: rgba32float 0.82 vs
 * 0.38 G fetches a second; Vulkan 0.48 vs 0.39), and the sparse gathers are bound by that rate.
 * Storage reads need the WGSL language feature `readonly_and_readwrite_storage_textures` and
 * enough `maxStorageTexturesPerShaderStage`; without them, or for a kernel binding more textures
 * than the limit, kernels stay sampled.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineKernel } from "./kernel.ts";
 * import { storageTextureDef } from "./storage_textures.ts";
 * const def = defineKernel({
 *   shader: "copy.wgsl",
 *   code: `@group(0) @binding(0) var src: texture_2d<f32>;
 *     @group(0) @binding(1) var<storage, read_write> dst: array<vec4f>;
 *     @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
 *       dst[g.x] = textureLoad(src, vec2u(g.x, 0u), 0); }`,
 *   entry: "main",
 *   bindings: [["src", "texture_f32"], ["dst", "read_write"]],
 * });
 * const twin = storageTextureDef(def, { src: "rgba32float" });
 * assert.deepEqual(twin.bindings, [["src", "stex_rgba32float"], ["dst", "read_write"]]);
 * assert.match(twin.code, /var src: texture_storage_2d<rgba32float, read>;/);
 * assert.match(twin.code, /textureLoad\(src, vec2u\(g\.x, 0u\)\)/);
 * ```
 * @module
 */
import type { Gpu } from "./device.ts";
import { FiligreeError } from "./errors.ts";
import type { KernelDef, Resource } from "./kernel.ts";
import { adapterClass, type MirrorFormat } from "./mirror.ts";
import type { BindingKind } from "./reflect.ts";

/** How a kernel reads a texture mirror. */
export type TextureRead = "sampled" | "storage";

/**
 * Preferred texture reads per adapter class (where the device supports storage reads).
 * llvmpipe: storage (2.1x the sampled fetch rate on GL, 1.25x on Vulkan: bench/RESULTS.md);
 * GPUs: sampled (mirrors are not used there by default; not measured). Mutable so that a
 * benchmark can compare both in one process; `FILIGREE_TEXTURE_READS=sampled|storage` overrides
 * it for a run.
 */
export const TEXTURE_READS: Record<"cpu" | "gpu", TextureRead> = { cpu: "storage", gpu: "sampled" };

/** The WGSL language feature that read-only storage textures need. */
export const STORAGE_READ_FEATURE = "readonly_and_readwrite_storage_textures";

function envReads(): TextureRead | undefined {
  let v: string | undefined;
  try {
    v = Deno.env.get("FILIGREE_TEXTURE_READS");
  } catch {
    return undefined;
  }
  if (v === undefined || v === "") return undefined;
  if (v !== "sampled" && v !== "storage") {
    throw new FiligreeError(`FILIGREE_TEXTURE_READS must be "sampled" or "storage", got "${v}"`);
  }
  return v;
}

/**
 * Storage textures a kernel may bind on this device: 0 where the WGSL language feature is
 * missing (storage reads are then never used).
 */
export function storageReadSlots(gpu: Gpu): number {
  let n = slots.get(gpu);
  if (n === undefined) slots.set(gpu, n = querySlots(gpu));
  return n;
}
const slots = new WeakMap<Gpu, number>();
function querySlots(gpu: Gpu): number {
  const features = (navigator.gpu as unknown as { wgslLanguageFeatures?: ReadonlySet<string> })
    .wgslLanguageFeatures;
  if (!features?.has(STORAGE_READ_FEATURE)) return 0;
  return gpu.limits.maxStorageTexturesPerShaderStage ?? 0;
}

/**
 * How kernels read mirrors on this device, and why (printed by `deno task info`): the environment
 * override, else {@link TEXTURE_READS} for the adapter class, storage only where supported.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "./mod.ts";
 * import { textureReadChoice } from "./storage_textures.ts";
 * const gpu = await getGpu();
 * assert.ok(["sampled", "storage"].includes(textureReadChoice(gpu).read));
 * ```
 */
export function textureReadChoice(gpu: Gpu): { read: TextureRead; reason: string } {
  const env = envReads();
  const want = wanted(gpu);
  const why = env ? "FILIGREE_TEXTURE_READS" : `${adapterClass(gpu)}-class default`;
  if (want === "storage" && storageReadSlots(gpu) === 0) {
    return {
      read: "sampled",
      reason: `${why} asks storage, but ${STORAGE_READ_FEATURE} is missing`,
    };
  }
  return {
    read: want,
    reason: want === "storage"
      ? `${why}: read-only storage textures (llvmpipe fetches them ~2x faster than sampled ones)`
      : `${why}: sampled textures`,
  };
}

/** The texture reads asked for: the environment override, else the adapter class's default. */
const wanted = (gpu: Gpu): TextureRead => envReads() ?? TEXTURE_READS[adapterClass(gpu)];

/** How kernels read mirrors on this device: {@link textureReadChoice} without the reason. */
export function textureReads(gpu: Gpu): TextureRead {
  return wanted(gpu) === "storage" && storageReadSlots(gpu) > 0 ? "storage" : "sampled";
}

const SAMPLED = /^texture_(f32|u32)$/;
const STORAGE_KINDS: Record<MirrorFormat, BindingKind> = {
  r32float: "stex_r32float",
  r32uint: "stex_r32uint",
  rgba32float: "stex_rgba32float",
  rgba32uint: "stex_rgba32uint",
};

/** Drops the level argument of every `textureLoad(name, coords, level)` of the given textures. */
function rewriteLoads(code: string, names: Set<string>): string {
  const re = /textureLoad\s*\(\s*(\w+)\s*,/g;
  let out = "";
  let pos = 0;
  for (;;) {
    re.lastIndex = pos;
    const m = re.exec(code);
    if (!m) return out + code.slice(pos);
    if (!names.has(m[1])) {
      out += code.slice(pos, m.index + m[0].length);
      pos = m.index + m[0].length;
      continue;
    }
    // Top-level commas of the argument list after the texture name.
    let depth = 1;
    let i = m.index + m[0].length;
    const commas: number[] = [];
    for (; i < code.length && depth > 0; i++) {
      const ch = code[i];
      if (ch === "(" || ch === "[") depth++;
      else if (ch === ")" || ch === "]") depth--;
      else if (ch === "," && depth === 1) commas.push(i);
    }
    if (depth !== 0) throw new Error(`unbalanced parentheses after textureLoad(${m[1]},`);
    const end = i - 1; // the closing parenthesis
    const args = code.slice(m.index + m[0].length, commas.length ? commas[0] : end);
    out += code.slice(pos, m.index) +
      `textureLoad(${m[1]}, ${rewriteLoads(args, names).trim()})`;
    pos = end + 1;
  }
}

const twins = new WeakMap<KernelDef, Map<string, KernelDef>>();

/**
 * The storage-read twin of a kernel definition for the given formats of its texture bindings
 * (cached per definition and format set): each `var name: texture_2d<...>;` of those bindings
 * becomes `texture_storage_2d<format, read>`, each `textureLoad(name, at, level)` loses its level.
 */
export function storageTextureDef(
  def: KernelDef,
  formats: Record<string, MirrorFormat>,
): KernelDef {
  const key = Object.keys(formats).sort().map((n) => `${n}=${formats[n]}`).join(",");
  let byKey = twins.get(def);
  if (!byKey) twins.set(def, byKey = new Map());
  let twin = byKey.get(key);
  if (twin) return twin;
  const names = new Set(Object.keys(formats));
  let code = def.code;
  for (const name of names) {
    const decl = new RegExp(`(var\\s+${name}\\s*:\\s*)texture_2d\\s*<\\s*(f32|u32)\\s*>`, "g");
    if (!decl.test(code)) throw new Error(`${def.shader}: no texture_2d declaration of ${name}`);
    code = code.replace(decl, `$1texture_storage_2d<${formats[name]}, read>`);
  }
  code = rewriteLoads(code, names);
  twin = {
    ...def,
    shader: `${def.shader}+stex(${key})`,
    code,
    bindings: def.bindings.map(([n, k]) =>
      names.has(n) && SAMPLED.test(k) ? [n, STORAGE_KINDS[formats[n]]] as const : [n, k] as const
    ),
  };
  byKey.set(key, twin);
  return twin;
}

/**
 * The storage-read twin of `def` that {@link Recorder.dispatch} runs for these resources, where
 * this device reads mirrors through storage textures and every texture `def` binds is a mirror
 * format within the storage-texture limit; else `null` (run `def` itself). `reads` is
 * {@link textureReads} when the caller has it already.
 */
export function storageTwinDef(
  gpu: Gpu,
  def: KernelDef,
  resources: Record<string, Resource>,
  reads: TextureRead = textureReads(gpu),
): KernelDef | null {
  if (reads !== "storage") return null;
  // Per definition, the texture formats in binding order (a step asks for every dispatch).
  let key = `${storageReadSlots(gpu)}:`;
  for (const [name, kind] of def.bindings) {
    if (!SAMPLED.test(kind)) continue;
    const r = resources[name];
    if (!(r instanceof GPUTexture)) return null;
    key += `${formatOf(r)},`;
  }
  let byKey = chosen.get(def);
  if (!byKey) chosen.set(def, byKey = new Map());
  const known = byKey.get(key);
  if (known !== undefined) return known;
  const formats: Record<string, MirrorFormat> = {};
  let n = 0, ok = true;
  for (const [name, kind] of def.bindings) {
    if (!SAMPLED.test(kind)) continue;
    const f = formatOf(resources[name] as GPUTexture);
    if (!(f in STORAGE_KINDS)) ok = false;
    formats[name] = f as MirrorFormat;
    n++;
  }
  const twin = ok && n > 0 && n <= storageReadSlots(gpu) ? storageTextureDef(def, formats) : null;
  byKey.set(key, twin);
  return twin;
}

const chosen = new WeakMap<KernelDef, Map<string, KernelDef | null>>();
const formats = new WeakMap<GPUTexture, GPUTextureFormat>();
/** A texture's format, asked of the runtime once per texture (the getter is a native call). */
function formatOf(t: GPUTexture): GPUTextureFormat {
  let f = formats.get(t);
  if (f === undefined) formats.set(t, f = t.format);
  return f;
}
