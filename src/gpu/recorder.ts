/**
 * Records dispatches into one command encoder and as few compute passes as possible; nothing
 * runs until {@link Recorder.submit}. A training step (or many) is one recorder.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "./device.ts";
 * import { defineKernel } from "./kernel.ts";
 * const gpu = await getGpu();
 * const ONES = defineKernel({
 *   shader: "ones.wgsl",
 *   code: `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
 *     @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
 *       if (g.x < arrayLength(&y)) { y[g.x] = 1.0; } }`,
 *   entry: "main",
 *   bindings: [["y", "read_write"]],
 * });
 * const y = gpu.tensor("f32", [100]);
 * const rec = gpu.recorder();
 * rec.dispatch(gpu.kernel(ONES), { y }, Math.ceil(100 / 64));
 * rec.submit();
 * assert.deepEqual((await gpu.read(y))[99], 1);
 * ```
 * @module
 */
import type { Gpu } from "./device.ts";
import { LimitError } from "./errors.ts";
import type { Kernel, KernelDef, Resource } from "./kernel.ts";
import {
  canMirror,
  mirror,
  type MirrorFormat,
  placeholderMirror,
  preferTextures,
  touch,
} from "./mirror.ts";
import { storageTwinDef, type TextureRead, textureReads } from "./storage_textures.ts";
import { TEXTURE_TWINS, textureTwin } from "./textured.ts";
import type { Tensor } from "./tensor.ts";

/** Options of {@link Recorder.dispatch}. */
export interface DispatchOptions {
  /** Read-only arrays the dispatch never reads (their texture twins bind a placeholder). */
  unread?: readonly string[];
}

/** Workgroup counts: a number (x only) or `[x, y, z]`. */
export type Groups = number | readonly [number, number?, number?];

/**
 * Splits `n` workgroups into an `[x, y, 1]` grid within `maxComputeWorkgroupsPerDimension`.
 * Shaders recover the flat index as `wid.x + wid.y * nwg.x` and return when it is `>= n`.
 */
export function grid(gpu: Gpu, n: number): [number, number, number] {
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (n <= max) return [Math.max(1, n), 1, 1];
  const y = Math.ceil(n / max);
  if (y > max) {
    throw new LimitError("maxComputeWorkgroupsPerDimension", y, max, `grid of ${n} workgroups`);
  }
  return [Math.ceil(n / y), y, 1];
}

/**
 * One command encoder; compute dispatches share a pass until a copy or clear splits it.
 *
 * The encoder is created on first use and dropped by {@link Recorder.submit}: a recorder that
 * is submitted and then discarded leaves no unfinished encoder behind (on Vulkan an abandoned
 * encoder holds ~100 KB of driver memory until the garbage collector finds its small JS object).
 */
export class Recorder {
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  /** Dispatches recorded since creation (for tests and profiling). */
  dispatches = 0;
  /** Command buffers submitted so far: what is recorded now goes into number `generation`. */
  generation = 0;
  /** Buffers written by the command buffer being recorded (touched again when it is submitted). */
  #written = new Set<GPUBuffer>();

  /**
   * Marks a buffer written: now (a mirror recorded later must copy it again) and again at submit
   * (a mirror copied meanwhile by another command buffer, submitted first, holds the old values).
   */
  #wrote(b: GPUBuffer): void {
    touch(b);
    this.#written.add(b);
  }

  /**
   * Operand decisions read once per recorder (the environment overrides are an op call each;
   * a step asks them for every dispatch): whether texture twins read mirrors, and how.
   */
  #choice?: { textures: boolean; reads: TextureRead };
  get #decided(): { textures: boolean; reads: TextureRead } {
    return this.#choice ??= {
      textures: preferTextures(this.gpu),
      reads: textureReads(this.gpu),
    };
  }

  constructor(readonly gpu: Gpu, readonly label: string) {}

  /** The current command encoder (a new one after each {@link Recorder.submit}). */
  get encoder(): GPUCommandEncoder {
    this.#encoder ??= this.gpu.device.createCommandEncoder({ label: this.label });
    return this.#encoder;
  }

  /** Opens a compute pass explicitly (e.g. with timestamp writes). */
  beginPass(timestampWrites?: GPUComputePassTimestampWrites): GPUComputePassEncoder {
    this.endPass();
    this.#pass = this.encoder.beginComputePass(timestampWrites ? { timestampWrites } : {});
    return this.#pass;
  }

  /** Closes the current compute pass, if any. */
  endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }

  /**
   * Records one dispatch of `kernel` with named resources. `opts.unread` names read-only arrays
   * this dispatch never reads (a branch its overrides or sizes rule out): a texture twin binds a
   * one-texel placeholder for them instead of copying a mirror.
   */
  dispatch(
    kernel: Kernel,
    resources: Record<string, Resource>,
    groups: Groups,
    opts?: DispatchOptions,
  ): void {
    const [x, y = 1, z = 1] = typeof groups === "number" ? [groups] : groups;
    const max = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    const worst = Math.max(x, y, z);
    if (worst > max) {
      throw new LimitError(
        "maxComputeWorkgroupsPerDimension",
        worst,
        max,
        `dispatch of ${kernel.def.shader}:${kernel.def.entry}`,
      );
    }
    [kernel, resources] = this.resolveTextures(kernel, resources, opts);
    const bg = kernel.bindGroup(resources);
    for (const [name, kind] of kernel.def.bindings) {
      if (kind !== "read_write") continue;
      const r = resources[name];
      if (r instanceof GPUBuffer) this.#wrote(r);
      else if (r && !(r instanceof GPUTexture)) this.#wrote(r.buffer);
    }
    if (x === 0 || y === 0 || z === 0) return;
    const pass = this.#pass ?? this.beginPass();
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
  }

  /**
   * What {@link Recorder.dispatch} runs: the kernel's texture twin (src/gpu/textured.ts) with
   * mirrors of its read-only arrays, whose copies this records, where the kernel opts in, twins
   * are enabled, textures are preferred and every such array fits a mirror; else the kernel and
   * resources as given; then, where mirrors are read as storage textures, that kernel's storage
   * twin (src/gpu/storage_textures.ts). (A profiler calls it first to keep the copies out of a
   * timed pass.)
   */
  resolveTextures(
    kernel: Kernel,
    resources: Record<string, Resource>,
    opts?: DispatchOptions,
  ): [Kernel, Record<string, Resource>] {
    // The definition to run is settled before compiling: a texture twin read through storage
    // textures never compiles its sampled form.
    const [twin, r] = this.#twin(kernel, resources, opts?.unread);
    const def = storageTwinDef(this.gpu, twin ?? kernel.def, r, this.#decided.reads) ?? twin;
    return [def ? this.gpu.kernel(def, kernel.overrides) : kernel, r];
  }

  /**
   * Whether {@link Recorder.dispatch} would run `kernel`'s texture twin for these resources
   * (records nothing). A kernel that reads a read-write array's old values through a read-only
   * alias of the same buffer (e.g. the optimizer's `*_in` variants) may only be dispatched when
   * this is true: as buffers, the two bindings would alias.
   */
  runsTwin(kernel: Kernel, resources: Record<string, Resource>): boolean {
    return this.#twinViews(kernel, resources) !== null;
  }

  /** The texture twin's definition with the mirrored resources, or `null` and the resources. */
  #twin(
    kernel: Kernel,
    resources: Record<string, Resource>,
    unread: readonly string[] = [],
  ): [KernelDef | null, Record<string, Resource>] {
    const t = this.#twinViews(kernel, resources);
    if (!t) return [null, resources];
    const out: Record<string, Resource> = { ...resources };
    for (const [name, view, format] of t.views) {
      out[name] = unread.includes(name)
        ? placeholderMirror(this.gpu, format)
        : mirror(this, view, { n: view.size, format });
    }
    return [t.def, out];
  }

  /** The twin and the views its mirrors copy, where the twin runs. */
  #twinViews(
    kernel: Kernel,
    resources: Record<string, Resource>,
  ): { def: KernelDef; views: [string, Tensor, MirrorFormat][] } | null {
    if (!kernel.def.textureInputs || !TEXTURE_TWINS.enabled) return null;
    const twin = textureTwin(kernel.def);
    if (!twin || !this.#decided.textures) return null;
    // Whole texels: a vec4 view reads the last quad up to the buffer's 16-byte padding.
    const views: [string, Tensor, MirrorFormat][] = [];
    for (const [name, format] of Object.entries(twin.formats)) {
      const r = resources[name];
      if (!r || r instanceof GPUTexture) return null;
      const buffer = r instanceof GPUBuffer ? r : r.buffer;
      const e = format.startsWith("rgba") ? 4 : 1;
      const size = r instanceof GPUBuffer ? r.size / 4 : r.size;
      const n = Math.min(Math.ceil(size / e) * e, Math.floor(buffer.size / 4 / e) * e);
      if (n < size || n === 0 || !canMirror(this.gpu, n, format)) return null;
      views.push([name, { buffer, shape: [n], dtype: "f32", size: n, label: name }, format]);
    }
    return { def: twin.def, views };
  }

  /** Copies `count` 4-byte elements between tensors. */
  copy(src: Tensor, dst: Tensor, count = src.size, srcOffset = 0, dstOffset = 0): void {
    this.endPass();
    const bytes = Math.ceil((count * 4) / 4) * 4;
    if (bytes === 0) return;
    this.#wrote(dst.buffer);
    this.encoder.copyBufferToBuffer(src.buffer, srcOffset * 4, dst.buffer, dstOffset * 4, bytes);
  }

  /** Zeroes a tensor's whole buffer. */
  clear(t: Tensor): void {
    this.endPass();
    this.#wrote(t.buffer);
    this.encoder.clearBuffer(t.buffer);
  }

  /** Finishes and submits the recorded work; the next recording starts a fresh encoder. */
  submit(): void {
    this.endPass();
    const enc = this.encoder; // an empty submit still flushes queued writeBuffer calls
    this.#encoder = null;
    this.generation++;
    for (const b of this.#written) touch(b);
    this.#written.clear();
    this.gpu.submit(enc.finish());
  }
}
