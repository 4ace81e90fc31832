/**
 * Kernel definitions: a WGSL entry point plus the bindings the TypeScript side will pass.
 * The declaration is checked against the shader's reflected bindings (wgsl_reflect) when the
 * pipeline is created, so a mismatch fails with a message naming shader, group and binding
 * instead of a GPU validation error (or silent garbage) at dispatch time.
 *
 * Every kernel uses bind group 0, and binding `i` is the i-th declared binding.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineKernel } from "./kernel.ts";
 * const FILL = defineKernel({
 *   shader: "example.wgsl",
 *   code: `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
 *     @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
 *       if (g.x < arrayLength(&y)) { y[g.x] = 1.0; } }`,
 *   entry: "main",
 *   bindings: [["y", "read_write"]],
 * });
 * assert.deepEqual(FILL.entry, "main");
 * ```
 * @module
 */
import type { Gpu } from "./device.ts";
import { bufferId } from "./device.ts";
import { ShaderError } from "./errors.ts";
import { type BindingKind, reflectShader, type ShaderReflection } from "./reflect.ts";
import type { Tensor } from "./tensor.ts";

/** A WGSL compute entry point and the bindings (group 0, in binding order) it takes. */
export interface KernelDef {
  /** Shader file name, used in messages and as the module cache key. */
  readonly shader: string;
  /** WGSL source. */
  readonly code: string;
  /** Compute entry point. */
  readonly entry: string;
  /** `[name, kind]` for `@binding(0)`, `@binding(1)`, ... of group 0. */
  readonly bindings: readonly (readonly [string, BindingKind])[];
  /**
   * May read its read-only arrays through texture mirrors (src/gpu/textured.ts): set it on
   * kernels that read most of every array they bind (the mirror copies the whole buffer).
   */
  readonly textureInputs?: boolean;
}

/** Identity helper that gives a kernel definition its type. */
export function defineKernel(def: KernelDef): KernelDef {
  return def;
}

/**
 * Loop iterations one invocation may run, all its loops together. llvmpipe stops an invocation
 * after 65,535 (silently: tests/gpu/runtime_test.ts measures it); every kernel wrapper keeps its
 * per-invocation trip count at or below this, splitting the work (chunks of the batch, passes,
 * dispatches) or refusing with a one-line error where it cannot (e.g. a matmul's k above
 * `4 · MAX_LOOP_TRIPS`, its vec4 loop).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_LOOP_TRIPS } from "./kernel.ts";
 * assert.ok(MAX_LOOP_TRIPS < 65_535);
 * ```
 */
export const MAX_LOOP_TRIPS = 65_000;

const reflections = new Map<string, ShaderReflection>();
function reflectionOf(def: KernelDef): ShaderReflection {
  let r = reflections.get(def.code);
  if (!r) {
    try {
      r = reflectShader(def.code);
    } catch (e) {
      throw new ShaderError(`${def.shader}: WGSL parse error: ${(e as Error).message}`);
    }
    reflections.set(def.code, r);
  }
  return r;
}

/**
 * Compares the declared bindings with the shader. Returns a list of problems (empty when
 * they agree); exported so tests can check every definition without a device.
 */
export function bindingProblems(def: KernelDef): string[] {
  const r = reflectionOf(def);
  const where = `${def.shader} entry ${def.entry}`;
  const used = r.entries.get(def.entry);
  if (!used) {
    return [
      `${def.shader}: no compute entry point "${def.entry}" (has: ${
        [...r.entries.keys()].join(", ")
      })`,
    ];
  }
  const problems: string[] = [];
  for (const b of used) {
    const at = `${where}, group ${b.group} binding ${b.binding}`;
    if (b.group !== 0) {
      problems.push(`${at}: "${b.name}" is in group ${b.group}; Filigree kernels use group 0 only`);
      continue;
    }
    const d = def.bindings[b.binding];
    if (!d) {
      problems.push(
        `${at}: shader uses "${b.name}" (${b.kind}) but TypeScript declares nothing there`,
      );
    } else if (d[0] !== b.name || d[1] !== b.kind) {
      problems.push(
        `${at}: TypeScript declares "${d[0]}" (${d[1]}), shader has "${b.name}" (${b.kind})`,
      );
    }
  }
  def.bindings.forEach(([name, kind], i) => {
    // A module may declare several variables at one binding for different entry points.
    const all = r.declared.filter((x) => x.group === 0 && x.binding === i);
    const s = all.find((x) => x.name === name && x.kind === kind) ?? all[0];
    if (!s) {
      problems.push(
        `${where}, group 0 binding ${i}: TypeScript declares "${name}" but the shader has no binding ${i}`,
      );
    } else if (s.name !== name || s.kind !== kind) {
      if (!problems.some((p) => p.includes(`binding ${i}:`))) {
        problems.push(
          `${where}, group 0 binding ${i}: TypeScript declares "${name}" (${kind}), shader has "${s.name}" (${s.kind})`,
        );
      }
    }
  });
  return problems;
}

/**
 * The bind-group layout entry of a binding (uniforms become read-only storage under the quirk;
 * textures are read with `textureLoad`, so unfilterable).
 */
function layoutEntry(
  kind: BindingKind,
  paramsInStorage: boolean,
): Pick<GPUBindGroupLayoutEntry, "buffer" | "texture" | "storageTexture"> {
  if (kind.startsWith("stex_")) {
    return {
      storageTexture: { access: "read-only", format: kind.slice(5) as GPUTextureFormat },
    };
  }
  if (kind === "texture_f32") return { texture: { sampleType: "unfilterable-float" } };
  if (kind === "texture_u32") return { texture: { sampleType: "uint" } };
  if (kind === "uniform") {
    return { buffer: { type: paramsInStorage ? "read-only-storage" : "uniform" } };
  }
  return { buffer: { type: kind === "read" ? "read-only-storage" : "storage" } };
}

const views = new WeakMap<GPUTexture, GPUTextureView>();
/** One view per texture, shared by every bind group (a view per group grew GL's memory). */
function viewOf(t: GPUTexture): GPUTextureView {
  let v = views.get(t);
  if (!v) views.set(t, v = t.createView());
  return v;
}

/** A resource a kernel binding takes: a tensor or raw buffer, or a texture for texture kinds. */
export type Resource = Tensor | GPUBuffer | GPUTexture;

/** A compiled pipeline with an explicit bind-group layout and a bind-group cache. */
export class Kernel {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  #groups = new Map<string, GPUBindGroup>();

  constructor(
    readonly gpu: Gpu,
    readonly def: KernelDef,
    module: GPUShaderModule,
    readonly overrides: Record<string, number>,
    readonly key: string,
  ) {
    const problems = bindingProblems(def);
    if (problems.length) throw new ShaderError(problems.join("; "));
    const r = reflectionOf(def);
    for (const name of Object.keys(overrides)) {
      if (!r.overrides.includes(name)) {
        throw new ShaderError(
          `${def.shader} entry ${def.entry}: override "${name}" is not declared (has: ${
            r.overrides.join(", ") || "none"
          })`,
        );
      }
    }
    const inStorage = gpu.quirks.paramsInStorage;
    const storageCount =
      def.bindings.filter(([, k]) =>
        k === "read" || k === "read_write" || (inStorage && k === "uniform")
      ).length;
    gpu.checkLimit(
      "maxStorageBuffersPerShaderStage",
      storageCount,
      `${def.shader} entry ${def.entry}`,
    );
    this.layout = gpu.device.createBindGroupLayout({
      label: `${def.shader}:${def.entry}`,
      entries: def.bindings.map(([, kind], binding) => ({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        ...layoutEntry(kind, inStorage),
      })),
    });
    this.pipeline = gpu.device.createComputePipeline({
      label: `${def.shader}:${def.entry}`,
      layout: gpu.device.createPipelineLayout({ bindGroupLayouts: [this.layout] }),
      compute: { module, entryPoint: def.entry, constants: overrides },
    });
  }

  /** The bind group for these resources (cached by buffer identity). */
  bindGroup(resources: Record<string, Resource>): GPUBindGroup {
    const buffers: (GPUBuffer | GPUTexture)[] = [];
    for (const [name, kind] of this.def.bindings) {
      const r = resources[name];
      if (!r) {
        throw new ShaderError(
          `${this.def.shader} entry ${this.def.entry}: no resource given for "${name}"`,
        );
      }
      const isTex = r instanceof GPUTexture;
      if (isTex !== (kind.startsWith("texture") || kind.startsWith("stex_"))) {
        throw new ShaderError(
          `${this.def.shader} entry ${this.def.entry}: "${name}" is a ${kind} binding, got a ${
            isTex ? "texture" : "buffer"
          }`,
        );
      }
      buffers.push(r instanceof GPUBuffer || r instanceof GPUTexture ? r : r.buffer);
    }
    const extra = Object.keys(resources).filter((n) => !this.def.bindings.some(([b]) => b === n));
    if (extra.length) {
      throw new ShaderError(
        `${this.def.shader} entry ${this.def.entry}: unknown resource(s) ${extra.join(", ")}`,
      );
    }
    const key = buffers.map(bufferId).join(",");
    let g = this.#groups.get(key);
    if (!g) {
      if (this.#groups.size > 4096) this.#groups.clear();
      g = this.gpu.device.createBindGroup({
        label: this.key,
        layout: this.layout,
        entries: buffers.map((r, binding) => ({
          binding,
          resource: r instanceof GPUTexture ? viewOf(r) : { buffer: r },
        })),
      });
      this.#groups.set(key, g);
    }
    return g;
  }
}
