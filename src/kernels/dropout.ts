/**
 * Inverted dropout on feature-major activations with a counter-based GPU RNG: element (r, c)
 * is kept with probability 1 − p and scaled by 1/(1 − p), else zeroed. The keep decision is a
 * hash of (seed, step, stream, r·batch + c) (two rounds of a PCG hash, mirrored bit-exactly in
 * dropout_ref.ts), so the same seed and step give the same mask on any device and a new step
 * gives a new mask. The backward pass recomputes the mask instead of storing it (no mask
 * buffer, no extra memory traffic); pass the same seed, step and stream to both directions.
 * Shader: shaders/dropout.wgsl.
 *
 * Seed and step come either as numbers (a content-cached uniform per distinct (seed, step):
 * fine for tests and occasional calls) or as a caller-owned uniform from
 * {@link dropoutRngUniform}, rewritten each step with {@link writeDropoutRng} (what a training
 * loop should do: no new buffer per step). `stream` separates dropout sites (e.g. the layer
 * index) sharing one seed and step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { dropoutForward } from "./dropout.ts";
 * const gpu = await getGpu();
 * const x = gpu.tensor("f32", [2, 8], { data: new Float32Array(16).fill(1) });
 * const y = gpu.tensor("f32", [2, 8]);
 * const rec = gpu.recorder();
 * dropoutForward(rec, { x, y, rows: 2, batch: 8, p: 0.5, seed: 42, step: 0 });
 * rec.submit();
 * const out = await gpu.read(y);
 * assert.ok(out.every((v) => v === 0 || v === 2)); // kept x 1/(1-p), or dropped
 * assert.ok(out.includes(0) && out.includes(2));
 * ```
 * @module
 */
import code from "../../shaders/dropout.wgsl" with { type: "text" };
import {
  defineKernel,
  f32,
  FiligreeError,
  type Gpu,
  grid,
  packParams,
  type Recorder,
  roundUp4,
  type Tensor,
} from "../gpu/mod.ts";

const WG = 64;

/** `y = x · mask · scale` (forward) and `dx = dy · mask · scale` (backward). */
export const DROPOUT_APPLY = defineKernel({
  shader: "dropout.wgsl",
  code,
  entry: "dropout_apply",
  textureInputs: true,
  bindings: [["p", "uniform"], ["rng", "uniform"], ["x", "read"], ["y", "read_write"]],
});
/** Same, also writing the multiplier (0 or 1/(1 − p)) to `mask`. */
export const DROPOUT_APPLY_MASK = defineKernel({
  shader: "dropout.wgsl",
  code,
  entry: "dropout_apply_mask",
  textureInputs: true,
  bindings: [["p", "uniform"], ["rng", "uniform"], ["x", "read"], ["y", "read_write"], [
    "mask",
    "read_write",
  ]],
});

/** Where the random stream comes from: numbers, or a caller-owned uniform ({@link dropoutRngUniform}). */
export interface DropoutRng {
  /** Drop probability, 0 ≤ p < 1. */
  p: number;
  /** u32 seed (ignored when `rng` is given). */
  seed?: number;
  /** u32 step counter (ignored when `rng` is given). */
  step?: number;
  /** A uniform holding `{ seed: u32, step: u32 }`, written with {@link writeDropoutRng}. */
  rng?: GPUBuffer;
  /** u32 dropout-site id (e.g. layer index), default 0. */
  stream?: number;
}

/** Sizes of a feature-major activation: `rows` features by `batch` samples, stride roundUp4(batch). */
export interface ActShape {
  rows: number;
  batch: number;
}

/** The u32 keep threshold: an element is kept iff its hash ≥ `round(p · 2³²)`. */
export function dropoutThreshold(p: number): number {
  return Math.min(0xffffffff, Math.round(p * 2 ** 32));
}

/** The f32 scale 1/(1 − p) applied to kept elements. */
export function dropoutScale(p: number): number {
  return Math.fround(1 / (1 - p));
}

function u32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new FiligreeError(`${what} ${v} must be an integer in [0, 2^32)`);
  }
  return v;
}

/**
 * A 16-byte uniform for `{ seed, step }` that the caller rewrites every step (queue-ordered:
 * a write lands before the next submit, so record one step per submit when reusing it).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/mod.ts";
 * import { dropoutRngUniform, writeDropoutRng } from "./dropout.ts";
 * const gpu = await getGpu();
 * const rng = dropoutRngUniform(gpu);
 * writeDropoutRng(gpu, rng, 1234, 0); // then dropoutForward(rec, { ..., rng })
 * ```
 */
export function dropoutRngUniform(gpu: Gpu): GPUBuffer {
  return gpu.mutableUniform(16);
}

/** Writes `{ seed, step }` into a uniform from {@link dropoutRngUniform}. */
export function writeDropoutRng(gpu: Gpu, rng: GPUBuffer, seed: number, step: number): void {
  const words = new Uint32Array([u32(seed, "dropout seed"), u32(step, "dropout step"), 0, 0]);
  gpu.device.queue.writeBuffer(rng, 0, words);
}

function dispatch(
  rec: Recorder,
  what: string,
  a: ActShape & DropoutRng,
  x: Tensor,
  y: Tensor,
  mask: Tensor | undefined,
): void {
  if (!Number.isInteger(a.rows) || a.rows < 0 || !Number.isInteger(a.batch) || a.batch < 0) {
    throw new FiligreeError(`${what}: rows ${a.rows} and batch ${a.batch} must be integers >= 0`);
  }
  if (!(a.p >= 0 && a.p < 1)) {
    throw new FiligreeError(`${what}: drop probability ${a.p} must be in [0, 1)`);
  }
  const ld = roundUp4(a.batch);
  if (a.rows * a.batch > 2 ** 32) {
    throw new FiligreeError(`${what}: ${a.rows}x${a.batch} elements exceed the u32 counter`);
  }
  for (const [t, name] of [[x, "input"], [y, "output"], [mask, "mask"]] as const) {
    if (t && t.size < a.rows * ld) {
      throw new FiligreeError(
        `${what} ${name}: tensor ${t.label} has ${t.size} elements, needs ${a.rows * ld}`,
      );
    }
  }
  if (x.buffer === y.buffer || (mask && (mask.buffer === x.buffer || mask.buffer === y.buffer))) {
    throw new FiligreeError(
      `${what}: input, output and mask must be distinct tensors (WebGPU forbids aliasing)`,
    );
  }
  let rng = a.rng;
  if (!rng) {
    if (a.seed === undefined || a.step === undefined) {
      throw new FiligreeError(`${what}: give seed and step, or rng`);
    }
    rng = rec.gpu.uniform(packParams([u32(a.seed, `${what} seed`), u32(a.step, `${what} step`)]));
  }
  const stream = u32(a.stream ?? 0, `${what} stream`);
  const p = rec.gpu.uniform(
    packParams([a.rows, a.batch, ld, dropoutThreshold(a.p), f32(dropoutScale(a.p)), stream]),
  );
  const groups = grid(rec.gpu, Math.ceil((a.rows * ld) / 4 / WG));
  if (mask) {
    rec.dispatch(rec.gpu.kernel(DROPOUT_APPLY_MASK, { WG }), { p, rng, x, y, mask }, groups);
  } else rec.dispatch(rec.gpu.kernel(DROPOUT_APPLY, { WG }), { p, rng, x, y }, groups);
}

/**
 * `y = x · keep / (1 − p)`; padding columns of `y` (and `mask`) become 0. With `mask`, also
 * writes the per-element multiplier (0 or 1/(1 − p)).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { dropoutForward } from "./dropout.ts";
 * const gpu = await getGpu();
 * const x = gpu.tensor("f32", [1, 4], { data: new Float32Array([1, 2, 3, 0]) });
 * const y = gpu.tensor("f32", [1, 4]);
 * const mask = gpu.tensor("f32", [1, 4]);
 * const rec = gpu.recorder();
 * dropoutForward(rec, { x, y, mask, rows: 1, batch: 3, p: 0.25, seed: 7, step: 3, stream: 1 });
 * rec.submit();
 * const m = await gpu.read(mask);
 * assert.ok(m.slice(0, 3).every((v) => v === 0 || v === Math.fround(1 / 0.75)));
 * assert.deepEqual(m[3], 0); // the padding column
 * ```
 */
export function dropoutForward(
  rec: Recorder,
  a: ActShape & DropoutRng & { x: Tensor; y: Tensor; mask?: Tensor },
): void {
  dispatch(rec, "dropoutForward", a, a.x, a.y, a.mask);
}

/**
 * `dx = dy · keep / (1 − p)` with the mask recomputed from the same seed, step and stream as
 * the forward call; padding columns of `dx` become 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { dropoutBackward } from "./dropout.ts";
 * const gpu = await getGpu();
 * const dy = gpu.tensor("f32", [1, 4], { data: new Float32Array([1, 1, 1, 0]) });
 * const dx = gpu.tensor("f32", [1, 4]);
 * const rec = gpu.recorder();
 * dropoutBackward(rec, { dy, dx, rows: 1, batch: 3, p: 0.5, seed: 7, step: 3 });
 * rec.submit();
 * const d = await gpu.read(dx);
 * assert.ok(d.slice(0, 3).every((v) => v === 0 || v === 2));
 * assert.deepEqual(d[3], 0); // the padding column
 * ```
 */
export function dropoutBackward(
  rec: Recorder,
  a: ActShape & DropoutRng & { dy: Tensor; dx: Tensor },
): void {
  dispatch(rec, "dropoutBackward", a, a.dy, a.dx, undefined);
}
