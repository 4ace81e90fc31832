/**
 * Test utilities shared by tests/ and bench/: seeded random inputs, padding to the
 * feature-major layout, tolerance checks that report the worst element, finite-difference
 * gradient checks, and a `gpuTest` wrapper.
 *
 * Inputs are "fresh": each test draws a new seed (printed on failure) unless FILIGREE_SEED
 * pins it, so a failure can be replayed exactly.
 *
 * @example
 * ```ts
 * import { assertClose, Rng } from "./mod.ts";
 * const r = new Rng(1);
 * const a = r.normal(5);
 * assertClose(Float32Array.from(a), a, { rtol: 1e-6, atol: 1e-7, label: "roundtrip" });
 * ```
 * @module
 */
import {
  getGpu,
  type Gpu,
  type KernelDef,
  preferTextures,
  Recorder,
  roundUp4,
  TEXTURE_TWINS,
} from "../gpu/mod.ts";

/** Small, fast, seeded PRNG (mulberry32) with uniform and normal draws. */
export class Rng {
  #s: number;
  constructor(readonly seed: number) {
    this.#s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** `n` uniforms in [lo, hi). */
  uniform(n: number, lo = -1, hi = 1): Float64Array {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * this.next();
    return a;
  }
  /** `n` standard normals (Box-Muller), scaled. */
  normal(n: number, std = 1): Float64Array {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const u = 1 - this.next();
      const v = this.next();
      a[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }
    return a;
  }
}

/** A fresh seed per call (or FILIGREE_SEED if set), for "fresh random inputs" in tests. */
export function freshSeed(): number {
  const pinned = Deno.env.get("FILIGREE_SEED");
  if (pinned) return Number(pinned);
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Copies dense `[rows][batch]` values into a zero-padded feature-major `[rows][roundUp4(batch)]` f32 array. */
export function toPadded(a: ArrayLike<number>, rows: number, batch: number): Float32Array {
  const ld = roundUp4(batch);
  const out = new Float32Array(rows * ld);
  for (let r = 0; r < rows; r++) for (let c = 0; c < batch; c++) out[r * ld + c] = a[r * batch + c];
  return out;
}

/**
 * Inverse of {@link toPadded}. Throws if a padding column is not exactly zero (kernels must
 * keep padding at zero so batch reductions stay correct).
 */
export function fromPadded(
  a: ArrayLike<number>,
  rows: number,
  batch: number,
  label = "output",
): Float64Array {
  const ld = roundUp4(batch);
  const out = new Float64Array(rows * batch);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < ld; c++) {
      const v = a[r * ld + c];
      if (c < batch) out[r * batch + c] = v;
      else if (v !== 0) throw new Error(`${label}: padding [${r}][${c}] is ${v}, expected 0`);
    }
  }
  return out;
}

/** Tolerance for {@link assertClose}: |got - want| <= atol + rtol * |want| elementwise. */
export interface Tolerance {
  rtol: number;
  atol: number;
  label?: string;
}

/** Elementwise closeness; NaN anywhere fails. Reports the worst element and the seed context. */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): void {
  const label = tol.label ?? "value";
  if (got.length < want.length) {
    throw new Error(`${label}: got ${got.length} elements, want ${want.length}`);
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if (!Number.isFinite(g) && g !== w) {
      throw new Error(`${label}[${i}]: got ${g}, want ${w} (non-finite: output not written?)`);
    }
    const excess = Math.abs(g - w) - (tol.atol + tol.rtol * Math.abs(w));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${label}[${worst}]: got ${got[worst]}, want ${want[worst]} (|diff| ${
        Math.abs(got[worst] - want[worst]).toExponential(2)
      } > atol ${tol.atol} + rtol ${tol.rtol}·|want|)`,
    );
  }
}

/** Relative L2 error ||got - want|| / max(||want||, tiny). */
export function relL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

/**
 * Finite-difference check of a float64 backward function. `forward` maps inputs to outputs;
 * `backward` maps (inputs, dOut) to one gradient per input. The scalar checked is
 * L = sum(forward(inputs) * dOut) for a random dOut; `samples` coordinates per input are
 * perturbed by ±eps (central differences).
 */
export function gradCheck(
  forward: (inputs: Float64Array[]) => Float64Array,
  backward: (inputs: Float64Array[], dOut: Float64Array) => Float64Array[],
  inputs: Float64Array[],
  opts: {
    rng: Rng;
    eps?: number;
    rtol?: number;
    atol?: number;
    samples?: number;
    label?: string;
    skip?: (input: number, index: number) => boolean;
  },
): void {
  const eps = opts.eps ?? 1e-6;
  const y = forward(inputs);
  const dOut = opts.rng.normal(y.length);
  const grads = backward(inputs, dOut);
  const loss = (ins: Float64Array[]) => {
    const o = forward(ins);
    let s = 0;
    for (let i = 0; i < o.length; i++) s += o[i] * dOut[i];
    return s;
  };
  inputs.forEach((inp, k) => {
    const n = Math.min(inp.length, opts.samples ?? 24);
    for (let t = 0; t < n; t++) {
      const i = inp.length <= (opts.samples ?? 24) ? t : opts.rng.int(inp.length);
      if (opts.skip?.(k, i)) continue;
      const orig = inp[i];
      inp[i] = orig + eps;
      const lp = loss(inputs);
      inp[i] = orig - eps;
      const lm = loss(inputs);
      inp[i] = orig;
      const fd = (lp - lm) / (2 * eps);
      const an = grads[k][i];
      const tol = (opts.atol ?? 1e-6) + (opts.rtol ?? 1e-4) * Math.max(Math.abs(fd), Math.abs(an));
      if (!(Math.abs(fd - an) <= tol)) {
        throw new Error(
          `${opts.label ?? "grad"}: input ${k} index ${i}: analytic ${an}, finite difference ${fd}`,
        );
      }
    }
  });
}

/** Float64 copy of a float32 array (what the GPU actually sees, for the reference). */
export function f64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a);
}

/** Rounds float64 values to float32 precision (so the reference sees the GPU's inputs). */
export function asF32(a: Float64Array): Float64Array {
  return Float64Array.from(Float32Array.from(a));
}

/**
 * `Deno.test` for GPU tests: shares one device, disables the op/resource sanitizers (WebGPU
 * keeps device resources alive across tests), and prints the seed when a test fails.
 */
export function gpuTest(name: string, fn: (gpu: Gpu, rng: Rng) => Promise<void> | void): void {
  Deno.test({
    name,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const gpu = await getGpu();
      const seed = freshSeed();
      try {
        await fn(gpu, new Rng(seed));
        gpu.throwIfErrors();
      } catch (e) {
        (e as Error).message += ` [seed ${seed}; rerun with FILIGREE_SEED=${seed}]`;
        throw e;
      }
    },
  });
}

/**
 * Records the entry point of every kernel `Recorder.dispatch` runs until `restore()` (what a
 * test asserts when a wrapper chooses between kernels). Use in `try ... finally`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spyDispatches } from "./mod.ts";
 * const spy = spyDispatches();
 * spy.restore();
 * assert.deepEqual(spy.entries, []);
 * ```
 */
export function spyDispatches(): { entries: string[]; restore: () => void } {
  const entries: string[] = [];
  const dispatch = Recorder.prototype.dispatch;
  Recorder.prototype.dispatch = function (k, r, g, o) {
    entries.push(k.def.entry);
    dispatch.call(this, k, r, g, o);
  };
  return { entries, restore: () => void (Recorder.prototype.dispatch = dispatch) };
}

/**
 * Runs `body` with every kernel reading its inputs from storage buffers, then, where the adapter
 * prefers texture mirrors, again through the kernels' texture twins (src/gpu/textured.ts), so
 * that a kernel test checks both paths. Asserts that the named entry points really ran as twins
 * on the second pass, and as themselves on the first. Use for kernels that opt in
 * (`textureInputs: true`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu, preferTextures } from "../gpu/mod.ts";
 * import { eachInputPath } from "./mod.ts";
 * const gpu = await getGpu();
 * const paths: string[] = [];
 * await eachInputPath(gpu, [], (path) => Promise.resolve(void paths.push(path)));
 * assert.deepEqual(paths, preferTextures(gpu) ? ["buffers", "textures"] : ["buffers"]);
 * ```
 */
export async function eachInputPath(
  gpu: Gpu,
  entries: readonly string[],
  body: (path: "buffers" | "textures") => Promise<void>,
): Promise<void> {
  const was = TEXTURE_TWINS.enabled;
  const resolve = Recorder.prototype.resolveTextures;
  const ran = new Map<string, boolean>();
  Recorder.prototype.resolveTextures = function (k, r, o) {
    const out = resolve.call(this, k, r, o);
    ran.set(k.def.entry, out[0].def.shader.includes("+textures"));
    return out;
  };
  try {
    for (const twins of preferTextures(gpu) ? [false, true] : [false]) {
      TEXTURE_TWINS.enabled = twins;
      ran.clear();
      await body(twins ? "textures" : "buffers");
      for (const e of entries) {
        if (ran.get(e) !== twins) {
          throw new Error(
            `${e}: ${
              ran.has(e) ? `ran ${twins ? "without" : "as"} its texture twin` : "never ran"
            }`,
          );
        }
      }
    }
  } finally {
    TEXTURE_TWINS.enabled = was;
    Recorder.prototype.resolveTextures = resolve;
  }
}

function isKernelDef(v: unknown): v is KernelDef {
  return typeof v === "object" && v !== null && "shader" in v && "code" in v && "entry" in v &&
    "bindings" in v;
}

/**
 * Every kernel definition exported from src/kernels/, src/sparse/ and src/data/ (references
 * `*_ref.ts` aside), in file order: what the shader and texture-twin tests check.
 */
export async function allKernelDefs(): Promise<KernelDef[]> {
  const defs: KernelDef[] = [];
  for (const sub of ["kernels", "sparse", "data"]) {
    const dir = new URL(`../${sub}/`, import.meta.url);
    for (const e of [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name))) {
      if (!e.name.endsWith(".ts") || e.name.endsWith("_ref.ts")) continue;
      const mod = await import(new URL(e.name, dir).href);
      for (const v of Object.values(mod)) if (isKernelDef(v)) defs.push(v);
    }
  }
  return defs;
}
