/**
 * The GPU runtime: adapter and device acquisition with explicit limits, tensors, uniform
 * parameter blocks, kernels (pipeline cache + binding checks), command recording and readback.
 *
 * One code path for every adapter (llvmpipe/lavapipe on a CPU, Vulkan on an NVIDIA GPU):
 * nothing here branches on the adapter beyond reading its limits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Gpu } from "./device.ts";
 * const gpu = await Gpu.create();
 * const t = gpu.tensor("f32", [4], { data: new Float32Array([1, 2, 3, 4]) });
 * assert.deepEqual(await gpu.read(t), new Float32Array([1, 2, 3, 4]));
 * gpu.destroy();
 * ```
 * @module
 */
import { FiligreeError, GpuError, LimitError, NoAdapterError, ShaderError } from "./errors.ts";
import { type ArrayFor, type DType, shapeSize, type Tensor } from "./tensor.ts";
import { Kernel, type KernelDef } from "./kernel.ts";
import { Recorder } from "./recorder.ts";
import { type BackendChoice, selectBackend } from "./backend.ts";
import { paramsToStorage, type Quirks, quirksFor } from "./quirks.ts";
import { inputSourceChoice, MIRROR_WIDTH, touch } from "./mirror.ts";
import { textureReadChoice } from "./storage_textures.ts";
import { Collector } from "./collect.ts";

/** The limits Filigree requests from the adapter (the WebGPU defaults are far smaller). */
export const REQUESTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxUniformBufferBindingSize",
  "maxBindGroups",
  "maxBindingsPerBindGroup",
  "maxTextureDimension2D",
  "maxSampledTexturesPerShaderStage",
  "maxStorageTexturesPerShaderStage",
] as const;

/** A limit name Filigree checks sizes against. */
export type LimitName = typeof REQUESTED_LIMITS[number];

/** Options for {@link Gpu.create}. */
export interface GpuOptions {
  /** "high-performance" by default. */
  powerPreference?: GPUPowerPreference;
  /** Request timestamp-query when the adapter has it (default true). */
  timestamps?: boolean;
}

/** Facts about the adapter, printed by `deno task info` and stored in run configs. */
export interface AdapterReport {
  description: string;
  vendor: string;
  architecture: string;
  device: string;
  backend: string;
  /** Why this backend: the environment, or Filigree's choice (see src/gpu/backend.ts). */
  backendReason: string;
  /** Driver workarounds in effect (src/gpu/quirks.ts). */
  quirks: Quirks;
  /** Where kernels read their read-only arrays (src/gpu/mirror.ts) and why. */
  inputs: string;
  inputsReason: string;
  /** How kernels read texture mirrors (src/gpu/storage_textures.ts) and why. */
  textureReads: string;
  textureReadsReason: string;
  /** Whether garbage GPU wrappers are collected by force (src/gpu/collect.ts) and how often. */
  collect: string;
  isFallbackAdapter: boolean;
  /** Features the adapter offers. */
  features: string[];
  /** Features requested on the device (what kernels may use). */
  deviceFeatures: string[];
  limits: Record<string, number>;
}

let nextId = 1;
const bufferIds = new WeakMap<GPUBuffer | GPUTexture, number>();
/** A stable small integer per buffer (or texture), for bind-group cache keys. */
export function bufferId(b: GPUBuffer | GPUTexture): number {
  let id = bufferIds.get(b);
  if (id === undefined) {
    id = nextId++;
    bufferIds.set(b, id);
  }
  return id;
}

function detectBackend(): string {
  const env = Deno.env.get("DENO_WEBGPU_BACKEND");
  if (env) return env;
  try {
    const maps = Deno.readTextFileSync("/proc/self/maps");
    if (maps.includes("libvulkan")) return "vulkan";
    if (maps.includes("libEGL") || maps.includes("libGL")) return "gl";
  } catch {
    // No /proc or no read permission: the backend is informational only.
  }
  return "unknown";
}

/**
 * Bytes of a tensor's buffer: its elements padded to 16 bytes; above 16 KiB, whole 64 KiB rows
 * (one rgba32 mirror row, four r32 ones) where the limits allow, so that a mirror copy
 * (src/gpu/mirror.ts) is one copy, not full rows plus a partial one (at most 64 KiB more a
 * tensor, under 4x only for tensors of 16-64 KiB).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allocationBytes } from "./device.ts";
 * assert.equal(allocationBytes(10, 1 << 27), 48);
 * assert.equal(allocationBytes(23_520, 1 << 27), 131_072); // 94,080 bytes -> two 64 KiB rows
 * ```
 */
export function allocationBytes(size: number, limit: number): number {
  const exact = Math.max(16, Math.ceil((size * 4) / 16) * 16);
  const row = MIRROR_WIDTH * 16;
  if (exact <= MIRROR_WIDTH * 4) return exact;
  const rows = Math.ceil(exact / row) * row;
  return rows <= limit ? rows : exact;
}

/** The device and everything cached on it. Create one per process with {@link Gpu.create}. */
export class Gpu {
  readonly limits: Record<LimitName, number>;
  readonly features: ReadonlySet<string>;
  readonly hasTimestamps: boolean;
  readonly backend: string;
  /** Why {@link Gpu.backend} was chosen. */
  readonly backendReason: string;
  /** Driver workarounds in effect on this device. */
  readonly quirks: Quirks;
  readonly info: GPUAdapterInfo;
  #kernels = new Map<string, Kernel>();
  #kernelsByDef = new WeakMap<KernelDef, Map<string, Kernel>>();
  #modules = new Map<string, { module: GPUShaderModule; def: KernelDef }>();
  #uniforms = new Map<string, GPUBuffer>();
  #errors: string[] = [];
  #pool = new Map<string, GPUBuffer[]>();
  #destroyed = false;
  /** Command-buffer submissions so far (tests and the memory benchmark read it). */
  submits = 0;
  /** Forces a full collection now and then so garbage GPU wrappers free their native state. */
  collector: Collector = new Collector();

  private constructor(
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    choice: BackendChoice,
  ) {
    const l: Record<string, number> = {};
    for (const k of REQUESTED_LIMITS) l[k] = device.limits[k] as number;
    this.limits = l as Record<LimitName, number>;
    this.features = new Set([...device.features] as string[]);
    this.hasTimestamps = device.features.has("timestamp-query");
    const b = detectBackend();
    // Without read access to /proc/self/maps, infer: wgpu's Vulkan backend offers shader-f16
    // on lavapipe and NVIDIA, its GL backend does not.
    this.backend = b !== "unknown"
      ? b
      : adapter.features.has("shader-f16")
      ? "vulkan (inferred)"
      : "gl (inferred)";
    this.info = adapter.info;
    this.backendReason = choice.reason;
    this.quirks = quirksFor(this.backend, {
      description: this.info.description,
      vendor: this.info.vendor,
      isFallbackAdapter: (this.info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    });
    device.addEventListener("uncapturederror", (e) => {
      const err = (e as GPUUncapturedErrorEvent).error;
      this.#errors.push(err.message);
    });
  }

  /**
   * Chooses the backend (first call in the process, {@link selectBackend}), acquires the
   * adapter, reads its limits and features, and requests a device with them.
   */
  static async create(opts: GpuOptions = {}): Promise<Gpu> {
    if (!("gpu" in navigator) || !navigator.gpu) throw new NoAdapterError();
    const choice = await selectBackend();
    const adapter = await navigator.gpu.requestAdapter({
      powerPreference: opts.powerPreference ?? "high-performance",
    });
    if (!adapter) throw new NoAdapterError();
    const requiredLimits: Record<string, number> = {};
    for (const k of REQUESTED_LIMITS) {
      const v = adapter.limits[k];
      if (typeof v === "number") requiredLimits[k] = v;
    }
    const requiredFeatures: GPUFeatureName[] = [];
    if ((opts.timestamps ?? true) && adapter.features.has("timestamp-query")) {
      requiredFeatures.push("timestamp-query");
    }
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
    return new Gpu(adapter, device, choice);
  }

  /** Adapter facts for `deno task info` and run configs. */
  report(): AdapterReport {
    return {
      description: this.info.description,
      vendor: this.info.vendor,
      architecture: this.info.architecture,
      device: this.info.device,
      backend: this.backend,
      backendReason: this.backendReason,
      quirks: { ...this.quirks },
      inputs: inputSourceChoice(this).source,
      inputsReason: inputSourceChoice(this).reason,
      textureReads: textureReadChoice(this).read,
      textureReadsReason: textureReadChoice(this).reason,
      collect: this.collector.active
        ? `a full collection at most every ${this.collector.intervalMs} ms of submits (gc exposed)`
        : "not forced (run with --v8-flags=--expose-gc, as every deno task does: without it host memory can grow ~10 KB per training step)",
      isFallbackAdapter: (this.info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
      features: [...this.adapter.features].map(String).sort(),
      deviceFeatures: [...this.features].sort(),
      limits: { ...this.limits },
    };
  }

  /** Throws a {@link LimitError} when `requested` exceeds the device limit `limit`. */
  checkLimit(limit: LimitName, requested: number, what: string): void {
    const actual = this.limits[limit];
    if (requested > actual) throw new LimitError(limit, requested, actual, what);
  }

  // ---------------------------------------------------------------- tensors

  /**
   * A new storage tensor. `data` uploads initial contents; otherwise the contents are zero
   * (fresh buffers) unless it comes from the pool, in which case `zero: true` clears it.
   */
  tensor<D extends DType>(
    dtype: D,
    shape: readonly number[],
    opts: { data?: ArrayFor<D>; label?: string; zero?: boolean } = {},
  ): Tensor {
    const size = shapeSize(shape);
    if (!Number.isInteger(size) || size < 0) {
      throw new FiligreeError(`tensor ${opts.label ?? ""}: bad shape [${shape.join(", ")}]`);
    }
    const label = opts.label ?? `${dtype}[${shape.join("x")}]`;
    const bytes = allocationBytes(
      size,
      Math.min(this.limits.maxBufferSize, this.limits.maxStorageBufferBindingSize),
    );
    this.checkLimit("maxBufferSize", bytes, `tensor ${label} (${bytes} bytes)`);
    this.checkLimit("maxStorageBufferBindingSize", bytes, `tensor ${label} (${bytes} bytes)`);
    const buffer = this.#acquire(bytes, label);
    touch(buffer); // a pooled buffer's contents change owner
    const t: Tensor = { buffer, shape: [...shape], dtype, size, label };
    if (opts.data) {
      if (opts.data.length !== size) {
        throw new FiligreeError(
          `tensor ${label}: data has ${opts.data.length} elements, shape needs ${size}`,
        );
      }
      this.write(t, opts.data);
    } else if (opts.zero) {
      const enc = this.device.createCommandEncoder();
      enc.clearBuffer(buffer);
      this.submit(enc.finish());
    }
    return t;
  }

  #acquire(bytes: number, label: string): GPUBuffer {
    const free = this.#pool.get(String(bytes));
    const reused = free?.pop();
    if (reused) return reused;
    return this.device.createBuffer({
      label,
      size: bytes,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
  }

  /** Returns a tensor's buffer to the pool; its contents are undefined when reused. */
  release(t: Tensor): void {
    const key = String(t.buffer.size);
    const list = this.#pool.get(key) ?? [];
    list.push(t.buffer);
    this.#pool.set(key, list);
  }

  /** Uploads `data` into a tensor (queued: ordered before later submits). */
  write(t: Tensor, data: ArrayBufferView, elementOffset = 0): void {
    if (data.byteLength === 0) return; // Deno 2.9 panics on a zero-byte writeBuffer
    touch(t.buffer);
    this.device.queue.writeBuffer(
      t.buffer,
      elementOffset * 4,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
  }

  /** Fills a tensor with NaN (f32) or 0xFFFFFFFF (integers): the poison tests use. */
  poison(t: Tensor): void {
    const words = new Uint32Array(t.buffer.size / 4).fill(
      t.dtype === "f32" ? 0x7fc00000 : 0xffffffff,
    );
    touch(t.buffer);
    this.device.queue.writeBuffer(t.buffer, 0, words);
  }

  /** Reads a tensor back (one await, ~11 ms in Deno: never inside a training step). */
  async read<D extends DType>(t: Tensor & { dtype: D }): Promise<ArrayFor<D>>;
  async read(t: Tensor): Promise<Float32Array | Uint32Array | Int32Array>;
  async read(t: Tensor): Promise<Float32Array | Uint32Array | Int32Array> {
    const bytes = Math.ceil((t.size * 4) / 4) * 4;
    const padded = Math.max(16, Math.ceil(bytes / 16) * 16);
    const staging = this.device.createBuffer({
      size: padded,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(t.buffer, 0, staging, 0, padded);
    this.submit(enc.finish());
    await staging.mapAsync(GPUMapMode.READ);
    const copy = staging.getMappedRange(0, padded).slice(0, t.size * 4);
    staging.unmap();
    staging.destroy();
    this.throwIfErrors();
    if (t.dtype === "f32") return new Float32Array(copy);
    if (t.dtype === "u32") return new Uint32Array(copy);
    return new Int32Array(copy);
  }

  /** Submits command buffers (every submit of the runtime goes through here). */
  submit(...buffers: GPUCommandBuffer[]): void {
    this.device.queue.submit(buffers);
    this.submits++;
    this.collector.maybeCollect();
  }

  /** Waits until all submitted work has finished, then reports any device error. */
  async sync(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfErrors();
  }

  /** Throws the first asynchronous device error collected since the last call. */
  throwIfErrors(): void {
    if (this.#errors.length === 0) return;
    const first = this.#errors[0];
    const more = this.#errors.length > 1 ? ` (+${this.#errors.length - 1} more)` : "";
    this.#errors = [];
    throw new GpuError(
      `WebGPU error: ${first.split("\n").filter((l) => l.trim()).join(" | ")}${more}`,
    );
  }

  // ---------------------------------------------------------------- uniforms

  /**
   * A uniform buffer holding `data`, cached by content: static parameter blocks (sizes,
   * strides) are created once and shared. For values that change every step, use
   * {@link Gpu.mutableUniform} and write it yourself.
   */
  uniform(data: ArrayBuffer | ArrayBufferView): GPUBuffer {
    const bytes = data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    let key = "";
    for (let i = 0; i < bytes.length; i += 4) {
      key +=
        (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)).toString(
          36,
        ) + ",";
    }
    let buf = this.#uniforms.get(key);
    if (!buf) {
      buf = this.mutableUniform(bytes.byteLength);
      this.device.queue.writeBuffer(buf, 0, bytes.slice().buffer);
      this.#uniforms.set(key, buf);
    }
    return buf;
  }

  /** A uniform buffer owned by the caller (update with `device.queue.writeBuffer`). */
  mutableUniform(byteLength: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(byteLength / 16) * 16);
    this.checkLimit("maxUniformBufferBindingSize", size, "uniform block");
    return this.device.createBuffer({
      size,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST |
        (this.quirks.paramsInStorage ? GPUBufferUsage.STORAGE : 0),
    });
  }

  // ---------------------------------------------------------------- kernels

  /**
   * The compiled kernel for a definition and override constants, from the pipeline cache.
   * Binding declarations are checked against the reflected WGSL before anything compiles.
   */
  kernel(def: KernelDef, overrides: Record<string, number> = {}): Kernel {
    // Fast path (a step asks for ~25 kernels): per definition, the overrides in the caller's
    // key order. A miss falls back to the canonical (sorted) key, so key order never compiles
    // a second pipeline.
    let byDef = this.#kernelsByDef.get(def);
    if (!byDef) this.#kernelsByDef.set(def, byDef = new Map());
    let quick = "";
    for (const name in overrides) quick += `${name}=${overrides[name]};`;
    let k = byDef.get(quick);
    if (k) return k;
    const key = `${def.shader}:${def.entry}:${
      JSON.stringify(overrides, Object.keys(overrides).sort())
    }`;
    k = this.#kernels.get(key);
    if (!k) {
      const module = this.#module(def);
      k = new Kernel(this, def, module, overrides, key);
      this.#kernels.set(key, k);
    }
    byDef.set(quick, k);
    return k;
  }

  /** Number of distinct compiled pipelines (tests check that batch sizes don't recompile). */
  get pipelineCount(): number {
    return this.#kernels.size;
  }

  #module(def: KernelDef): GPUShaderModule {
    let m = this.#modules.get(def.shader);
    if (!m) {
      const code = this.quirks.paramsInStorage ? paramsToStorage(def.code) : def.code;
      m = { module: this.device.createShaderModule({ label: def.shader, code }), def };
      this.#modules.set(def.shader, m);
    }
    return m.module;
  }

  /**
   * Compiles a shader on the adapter and returns its errors and warnings as
   * `shader:line:column: message` lines (empty when clean).
   */
  async compileMessages(shader: string, code: string): Promise<string[]> {
    // An error scope keeps a broken shader from also raising an uncaptured device error.
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ label: shader, code });
    const info = await module.getCompilationInfo();
    await this.device.popErrorScope();
    return info.messages.map((m) =>
      `${shader}:${m.lineNum}:${m.linePos}: ${m.type}: ${
        m.message.split("\n").map((l) => l.trim()).filter((l) => l).join(" | ")
      }`
    );
  }

  /** Throws a {@link ShaderError} with line:column if any shader created so far fails to compile. */
  async checkShaders(): Promise<void> {
    for (const [name, { module }] of this.#modules) {
      const info = await module.getCompilationInfo();
      const errs = info.messages.filter((m) => m.type === "error");
      if (errs.length) {
        throw new ShaderError(
          errs.map((m) => `${name}:${m.lineNum}:${m.linePos}: ${m.message}`).join("; "),
        );
      }
    }
  }

  // ---------------------------------------------------------------- recording

  /** A recorder batching dispatches into one command encoder and compute pass. */
  recorder(label = "work"): Recorder {
    return new Recorder(this, label);
  }

  /**
   * Times `encode` with timestamp queries: `reps` repetitions of what `encode` records (dispatches
   * share a compute pass; copies it records, e.g. texture mirrors, split passes and are timed
   * too), between an empty timestamped pass before and one after. Returns milliseconds per
   * repetition. Falls back to wall clock (minus nothing: an upper bound) when the adapter has no
   * timestamp-query.
   */
  async timeMs(encode: (rec: Recorder) => void, reps: number): Promise<number> {
    const rec = this.recorder("timed");
    if (!this.hasTimestamps) {
      for (let i = 0; i < reps; i++) encode(rec);
      const t0 = performance.now();
      rec.submit();
      await this.sync();
      return (performance.now() - t0) / reps;
    }
    const qs = this.device.createQuerySet({ type: "timestamp", count: 2 });
    const resolve = this.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const staging = this.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    rec.beginPass({ querySet: qs, beginningOfPassWriteIndex: 0 });
    rec.endPass();
    for (let i = 0; i < reps; i++) encode(rec);
    rec.beginPass({ querySet: qs, endOfPassWriteIndex: 1 });
    rec.endPass();
    rec.encoder.resolveQuerySet(qs, 0, 2, resolve, 0);
    rec.encoder.copyBufferToBuffer(resolve, 0, staging, 0, 16);
    rec.submit();
    await staging.mapAsync(GPUMapMode.READ);
    const ts = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    staging.destroy();
    resolve.destroy();
    qs.destroy();
    this.throwIfErrors();
    return Number(ts[1] - ts[0]) / 1e6 / reps;
  }

  /** Releases the device. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.device.destroy();
  }
}

let shared: Promise<Gpu> | undefined;
/** A process-wide device, created on first use (tests and the CLI share one). */
export function getGpu(): Promise<Gpu> {
  shared ??= Gpu.create();
  return shared;
}

/**
 * Destroys the process-wide device (and with it every buffer it holds, on llvmpipe host memory);
 * the next {@link getGpu} creates a fresh one. Long-running drivers (the sweep) call it between
 * runs so memory does not grow with the number of runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu, releaseGpu } from "./device.ts";
 * const a = await getGpu();
 * await releaseGpu();
 * assert.ok((await getGpu()) !== a);
 * ```
 */
export async function releaseGpu(): Promise<void> {
  const g = shared;
  shared = undefined;
  if (g) (await g).destroy();
}
