/**
 * The one place that imports `wgsl_reflect` (its bare npm import does not resolve under Deno;
 * the module subpath with explicit types does).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reflectShader } from "./reflect.ts";
 * const r = reflectShader(
 *   "@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n" +
 *     "@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) { y[g.x] = 1.0; }",
 * );
 * assert.deepEqual(r.entries.get("main"), [{ group: 0, binding: 0, name: "y", kind: "read_write" }]);
 * ```
 * @module
 */
// @ts-types="wgsl_reflect/types/index.d.ts"
import { WgslReflect } from "wgsl_reflect/wgsl_reflect.module.js";

/**
 * How a shader resource is accessed: a uniform buffer, read-only storage, read-write storage, a
 * sampled 2-D texture read with `textureLoad` (`texture_2d<f32>` / `texture_2d<u32>`), or a
 * read-only storage texture of a format (`texture_storage_2d<format, read>`, src/gpu/storage_textures.ts).
 */
export type BindingKind =
  | "uniform"
  | "read"
  | "read_write"
  | "texture_f32"
  | "texture_u32"
  | "stex_r32float"
  | "stex_r32uint"
  | "stex_rgba32float"
  | "stex_rgba32uint";

/** One `@group(g) @binding(b) var<...> name` declaration as the shader sees it. */
export interface ReflectedBinding {
  group: number;
  binding: number;
  name: string;
  kind: BindingKind;
}

/** What the TypeScript side needs to know about a WGSL module. */
export interface ShaderReflection {
  /** All resource declarations of the module. */
  declared: ReflectedBinding[];
  /** Per compute entry point: the resources it actually uses. */
  entries: Map<string, ReflectedBinding[]>;
  /** Names of `override` constants. */
  overrides: string[];
}

// deno-lint-ignore no-explicit-any
function toBinding(v: any): ReflectedBinding {
  const kind: BindingKind = v.resourceType === TEXTURE
    ? (v.type?.format?.name === "u32" ? "texture_u32" : "texture_f32")
    : v.resourceType === STORAGE_TEXTURE
    ? `stex_${v.type?.format?.name}` as BindingKind
    : v.resourceType === 0
    ? "uniform"
    : v.access === "read"
    ? "read"
    : "read_write";
  return { group: v.group, binding: v.binding, name: v.name, kind };
}

/** wgsl_reflect's resource types: 0 uniform, 1 storage, 3 sampled texture, 5 storage texture. */
const TEXTURE = 3;
const STORAGE_TEXTURE = 5;
const bound = (t: number) => t <= 1 || t === TEXTURE || t === STORAGE_TEXTURE;

/** Parses WGSL with wgsl_reflect (syntax only: the adapter's compiler validates semantics). */
export function reflectShader(code: string): ShaderReflection {
  const r = new WgslReflect(code);
  const declared = [...r.uniforms, ...r.storage, ...r.textures].map(toBinding);
  const entries = new Map<string, ReflectedBinding[]>();
  for (const e of r.entry.compute) {
    entries.set(e.name, e.resources.filter((x) => bound(x.resourceType)).map(toBinding));
  }
  return { declared, entries, overrides: r.overrides.map((o) => o.name) };
}
