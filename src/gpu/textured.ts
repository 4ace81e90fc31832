/**
 * Texture twins of kernels: a kernel definition that opts in (`textureInputs: true`) gets a twin
 * whose read-only storage arrays (`var<storage, read> name: array<f32 | u32 | vec4f | vec4u>`)
 * are textures, and {@link Recorder.dispatch} runs the twin, with texture mirrors of those
 * arrays copied in just before it (src/gpu/mirror.ts), wherever {@link preferTextures} says
 * so (software adapters). Why: on Mesa llvmpipe a storage-buffer load is a per-lane scalar loop
 * through the stack and a texel fetch a register gather; even a single-pass element-wise kernel
 * runs 2-3.5x faster from textures, copies included, on a host where the stack round trip
 * stalls (bench/RESULTS.md). One rewrite serves every opted-in kernel: no second WGSL to keep.
 *
 * The rewrite is textual: each such declaration becomes `var name: texture_2d<f32|u32>;` and each
 * `name[i]` (brackets matched, nested loads rewritten inside out) becomes
 * `textureLoad(name, <texel of i>, 0)` (`.x` for scalars). A module that takes a read-only
 * array's length or address (`arrayLength(&name)`, `&name`) gets no twin. Opt in only kernels
 * that read most of each array they bind: the copy costs the whole buffer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineKernel } from "./kernel.ts";
 * import { textureTwin } from "./textured.ts";
 * const def = defineKernel({
 *   shader: "scale.wgsl",
 *   code: `@group(0) @binding(0) var<storage, read> src: array<f32>;
 *     @group(0) @binding(1) var<storage, read_write> dst: array<f32>;
 *     @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
 *       if (g.x < arrayLength(&dst)) { dst[g.x] = 2.0 * src[g.x]; } }`,
 *   entry: "main",
 *   bindings: [["src", "read"], ["dst", "read_write"]],
 *   textureInputs: true,
 * });
 * const twin = textureTwin(def)!;
 * assert.deepEqual(twin.def.bindings, [["src", "texture_f32"], ["dst", "read_write"]]);
 * assert.deepEqual(twin.formats, { src: "r32float" });
 * assert.match(twin.def.code, /2\.0 \* textureLoad\(src, _tw_at\(u32\(g\.x\)\), 0\)\.x/);
 * ```
 * @module
 */
import type { KernelDef } from "./kernel.ts";
import { MIRROR_WIDTH, type MirrorFormat } from "./mirror.ts";

/**
 * Whether {@link Recorder.dispatch} may run texture twins at all (on top of `preferTextures`).
 * Mutable so that a benchmark can compare whole steps with and without them in one process.
 */
export const TEXTURE_TWINS = { enabled: true };

/** A kernel's texture twin and the mirror format of each array it reads as a texture. */
export interface TextureTwin {
  def: KernelDef;
  formats: Record<string, MirrorFormat>;
}

const ELEMS: Record<string, { sample: "f32" | "u32"; format: MirrorFormat; scalar: boolean }> = {
  "f32": { sample: "f32", format: "r32float", scalar: true },
  "u32": { sample: "u32", format: "r32uint", scalar: true },
  "vec4<f32>": { sample: "f32", format: "rgba32float", scalar: false },
  "vec4f": { sample: "f32", format: "rgba32float", scalar: false },
  "vec4<u32>": { sample: "u32", format: "rgba32uint", scalar: false },
  "vec4u": { sample: "u32", format: "rgba32uint", scalar: false },
};

const DECL =
  /(@group\(\s*\d+\s*\)\s*@binding\(\s*\d+\s*\))\s*var\s*<\s*storage\s*,\s*read\s*>\s*(\w+)\s*:\s*array\s*<\s*(f32|u32|vec4<f32>|vec4f|vec4<u32>|vec4u)\s*>\s*;/g;

/** Rewrites every `name[...]` of the given arrays into texel loads, inside out. */
function rewriteLoads(code: string, arrays: Map<string, { scalar: boolean }>): string {
  const names = [...arrays.keys()];
  if (names.length === 0) return code;
  const re = new RegExp(`(?<![\\w.])(${names.join("|")})\\s*\\[`, "g");
  let out = "";
  let pos = 0;
  for (;;) {
    re.lastIndex = pos;
    const m = re.exec(code);
    if (!m) return out + code.slice(pos);
    let depth = 1;
    let i = m.index + m[0].length;
    for (; i < code.length && depth > 0; i++) {
      if (code[i] === "[") depth++;
      else if (code[i] === "]") depth--;
    }
    if (depth !== 0) throw new Error(`unbalanced brackets after ${m[1]}[`);
    const inner = rewriteLoads(code.slice(m.index + m[0].length, i - 1), arrays);
    const suffix = arrays.get(m[1])!.scalar ? ".x" : "";
    out += code.slice(pos, m.index) + `textureLoad(${m[1]}, _tw_at(u32(${inner})), 0)${suffix}`;
    pos = i;
  }
}

const twins = new WeakMap<KernelDef, TextureTwin | null>();

/**
 * The texture twin of an opted-in kernel definition (cached), or `null` when the definition does
 * not opt in, reads no eligible array, or takes a read-only array's length or address.
 */
export function textureTwin(def: KernelDef): TextureTwin | null {
  if (twins.has(def)) return twins.get(def)!;
  let twin: TextureTwin | null = null;
  if (def.textureInputs) {
    const arrays = new Map<string, { scalar: boolean }>();
    const formats: Record<string, MirrorFormat> = {};
    const kinds: Record<string, "texture_f32" | "texture_u32"> = {};
    // Comments go first: a bracket in prose must not be taken for an index.
    let code = def.code.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/[^\n]*/g, "").replace(
      DECL,
      (_all, at: string, name: string, elem: string) => {
        const e = ELEMS[elem.replace(/\s+/g, "")];
        arrays.set(name, { scalar: e.scalar });
        formats[name] = e.format;
        kinds[name] = e.sample === "u32" ? "texture_u32" : "texture_f32";
        return `${at} var ${name}: texture_2d<${e.sample}>;`;
      },
    );
    const usedAsPointer = [...arrays.keys()].some((n) =>
      // `&name` as an argument (arrayLength(&name), f(&name)); `a & name` is a bitwise and.
      new RegExp(`[(,]\\s*&\\s*${n}(?![\\w])`).test(code)
    );
    const bound = def.bindings.filter(([n, k]) => k === "read" && arrays.has(n));
    if (!usedAsPointer && bound.length > 0) {
      code = rewriteLoads(code, arrays) +
        `\nfn _tw_at(k: u32) -> vec2u { return vec2u(k % ${MIRROR_WIDTH}u, k / ${MIRROR_WIDTH}u); }\n`;
      const used = Object.fromEntries(bound.map(([n]) => [n, formats[n]]));
      twin = {
        def: {
          ...def,
          shader: `${def.shader}+textures`,
          code,
          bindings: def.bindings.map(([n, k]) =>
            k === "read" && arrays.has(n) ? [n, kinds[n]] as const : [n, k] as const
          ),
          textureInputs: false,
        },
        formats: used,
      };
    }
  }
  twins.set(def, twin);
  return twin;
}
