/**
 * Exclusive prefix sum of u32 arrays of any length, entirely on the GPU (reduce-then-scan:
 * block sums, a recursive scan of the block sums, then a block scan that adds the block
 * offsets), with the total written to a chosen GPU word. Used for CSR row pointers,
 * compaction offsets and (with `op: "popcount"`) ranks in an occupancy bitmap.
 * Shader: shaders/scan.wgsl; reference: topo_ref.ts (`exclusiveScanRef`).
 *
 * Each level handles blocks of `SCAN_BLOCK` = 8,192 elements, so a scan of n elements records
 * 2·L - 1 dispatches for L = ceil(log_8192 n) levels (1 for n <= 8,192, 3 for n <= 67M).
 * Per-invocation loops have constant trip counts (no llvmpipe loop-cap concern). Sums must
 * fit in u32 (the caller's responsibility: counts of at most 2^32 - 1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { exclusiveScan } from "./scan.ts";
 * const gpu = await getGpu();
 * const counts = gpu.tensor("u32", [4], { data: new Uint32Array([3, 0, 2, 5]) });
 * const rowPtr = gpu.tensor("u32", [5]);
 * const rec = gpu.recorder();
 * exclusiveScan(rec, { input: counts, output: rowPtr, n: 4, total: { tensor: rowPtr, index: 4 } });
 * rec.submit();
 * assert.deepEqual(await gpu.read(rowPtr), new Uint32Array([0, 3, 3, 5, 10]));
 * ```
 * @module
 */
import code from "../../shaders/scan.wgsl" with { type: "text" };
import {
  defineKernel,
  FiligreeError,
  type Gpu,
  grid,
  packParams,
  type Recorder,
  type Tensor,
} from "../gpu/mod.ts";

// 8,192 elements per workgroup: large blocks amortise the workgroup scan's barriers (on
// llvmpipe, 256 × 2 vec4s ran 2× slower than 128 × 16).
const WG = 128;
const VPT = 16;
/** Elements per scan block (one workgroup): WG invocations × VPT vec4s. */
export const SCAN_BLOCK = WG * VPT * 4;

/** Block sums (first pass of a level). */
export const SCAN_REDUCE = defineKernel({
  shader: "scan.wgsl",
  code,
  entry: "scan_reduce",
  bindings: [["p", "uniform"], ["x", "read"], ["sums", "read_write"]],
});
/** Block scan plus block offsets (second pass of a level); writes the total. */
export const SCAN_BLOCK_KERNEL = defineKernel({
  shader: "scan.wgsl",
  code,
  entry: "scan_block",
  bindings: [
    ["p", "uniform"],
    ["x", "read"],
    ["offs", "read"],
    ["out", "read_write"],
    ["tot", "read_write"],
  ],
});

// ------------------------------------------------------------------ scratch buffers

const scratchByGpu = new WeakMap<Gpu, Map<string, Tensor>>();

/**
 * A u32 scratch tensor owned by the topology kernels, cached per device under `key` and
 * grown to the next power of two, so repeated calls (every training step) allocate nothing.
 * Scratch is reused by later calls; dispatches in one recorder run in order, so this is
 * safe as long as a scratch tensor is never handed out to callers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { topoScratch } from "./scan.ts";
 * const gpu = await getGpu();
 * assert.ok(topoScratch(gpu, "demo", 100).size >= 100);
 * ```
 */
export function topoScratch(gpu: Gpu, key: string, size: number): Tensor {
  let m = scratchByGpu.get(gpu);
  if (!m) {
    m = new Map();
    scratchByGpu.set(gpu, m);
  }
  const have = m.get(key);
  if (have && have.size >= size) return have;
  // A smaller one is dropped, not released: work already recorded may still use it.
  const cap = Math.max(16, 2 ** Math.ceil(Math.log2(Math.max(1, size))));
  const t = gpu.tensor("u32", [cap], { label: `topo scratch ${key}` });
  m.set(key, t);
  return t;
}

/**
 * Returns all scratch tensors of the topology kernels (scan, select, sort) on this device to
 * the pool, e.g. after a one-off large sort (only once the work recorded with them is submitted).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/mod.ts";
 * import { releaseTopoScratch } from "./scan.ts";
 * releaseTopoScratch(await getGpu());
 * ```
 */
export function releaseTopoScratch(gpu: Gpu): void {
  const m = scratchByGpu.get(gpu);
  if (!m) return;
  for (const t of m.values()) gpu.release(t);
  m.clear();
}

// ------------------------------------------------------------------ scan

/** Where the total of a scan goes: one u32 word of a GPU tensor. */
export interface ScanTotal {
  tensor: Tensor;
  index: number;
}

/** Arguments of {@link exclusiveScan}. */
export interface ScanArgs {
  /** u32 input, at least `n` elements (not modified). Must not be the output tensor. */
  input: Tensor;
  /** u32 output, at least `n` elements: `output[i] = sum_{j < i} input[j]`. */
  output: Tensor;
  /** Number of elements to scan, >= 1. */
  n: number;
  /** Also write the sum of all n elements here (may be `output` itself at an index >= n). */
  total?: ScanTotal;
  /** "popcount": scan the number of set bits of each input word instead of the words. */
  op?: "sum" | "popcount";
  /** Workgroup shape knobs (the defaults suit both llvmpipe and GPUs); tests shrink them. */
  tuning?: ScanTuning;
}

/** Override constants of the scan kernels: a block is `wg × vpt` vec4s. */
export interface ScanTuning {
  /** Invocations per workgroup: a power of two in [1, 256] (default 128). */
  wg?: number;
  /** vec4s per invocation, in [1, 64] (default 16). */
  vpt?: number;
}

function need(t: Tensor, n: number, what: string) {
  if (t.dtype === "f32") throw new FiligreeError(`${what}: tensor ${t.label} is f32, needs u32`);
  if (t.size < n) {
    throw new FiligreeError(`${what}: tensor ${t.label} has ${t.size} elements, needs ${n}`);
  }
}

/**
 * Records an exclusive prefix sum of `input[0..n)` into `output[0..n)` (and the total into
 * `total`, if given). Everything stays on the GPU; scratch comes from {@link topoScratch}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { exclusiveScan } from "./scan.ts";
 * const gpu = await getGpu();
 * const x = gpu.tensor("u32", [3], { data: new Uint32Array([1, 1, 1]) });
 * const y = gpu.tensor("u32", [3]);
 * const rec = gpu.recorder();
 * exclusiveScan(rec, { input: x, output: y, n: 3 });
 * rec.submit();
 * assert.deepEqual(await gpu.read(y), new Uint32Array([0, 1, 2]));
 * ```
 */
export function exclusiveScan(rec: Recorder, a: ScanArgs): void {
  if (!Number.isInteger(a.n) || a.n < 1) {
    throw new FiligreeError(`exclusiveScan: n must be a positive integer, got ${a.n}`);
  }
  need(a.input, a.n, "exclusiveScan input");
  need(a.output, a.n, "exclusiveScan output");
  if (a.input.buffer === a.output.buffer) {
    throw new FiligreeError(
      `exclusiveScan: input and output are the same tensor (${a.input.label})`,
    );
  }
  let totalMode = 0;
  let totalIndex = 0;
  let tot: Tensor | undefined;
  if (a.total) {
    const t = a.total;
    if (!Number.isInteger(t.index) || t.index < 0) {
      throw new FiligreeError(`exclusiveScan: bad total index ${t.index}`);
    }
    need(t.tensor, t.index + 1, "exclusiveScan total");
    if (t.tensor.buffer === a.input.buffer) {
      throw new FiligreeError("exclusiveScan: the total cannot go into the input tensor");
    }
    if (t.tensor.buffer === a.output.buffer) {
      if (t.index < a.n) {
        throw new FiligreeError(
          `exclusiveScan: total index ${t.index} would overwrite output element ${t.index} < n = ${a.n}`,
        );
      }
      totalMode = 1;
    } else {
      totalMode = 2;
      tot = t.tensor;
    }
    totalIndex = t.index;
  }
  const wg = a.tuning?.wg ?? WG;
  const vpt = a.tuning?.vpt ?? VPT;
  if (!Number.isInteger(Math.log2(wg)) || wg < 1 || wg > 256) {
    throw new FiligreeError(
      `exclusiveScan: tuning.wg must be a power of two in [1, 256], got ${wg}`,
    );
  }
  if (!Number.isInteger(vpt) || vpt < 1 || vpt > 64) {
    throw new FiligreeError(`exclusiveScan: tuning.vpt must be an integer in [1, 64], got ${vpt}`);
  }
  const knobs = { WG: wg, VPT: vpt };
  const op = a.op === "popcount" ? 1 : 0;
  scanLevel(rec, a.input, a.output, a.n, op, totalMode, totalIndex, tot, 0, knobs);
}

function scanLevel(
  rec: Recorder,
  input: Tensor,
  output: Tensor,
  n: number,
  op: number,
  totalMode: number,
  totalIndex: number,
  tot: Tensor | undefined,
  level: number,
  knobs: { WG: number; VPT: number },
): void {
  const gpu = rec.gpu;
  const nBlocks = Math.ceil(n / (knobs.WG * knobs.VPT * 4));
  const nq = Math.ceil(n / 4);
  // The input buffer is read as vec4 words: tensors are padded to 16 bytes, so the last vec4
  // exists; elements past n are masked in the shader.
  if (input.buffer.size < nq * 16) {
    throw new FiligreeError(`exclusiveScan: input buffer ${input.label} too small for ${n} words`);
  }
  let offs = topoScratch(gpu, "scan unused offs", 4);
  if (nBlocks > 1) {
    const sums = topoScratch(gpu, `scan sums ${level}`, nBlocks);
    offs = topoScratch(gpu, `scan offs ${level}`, nBlocks);
    const pr = gpu.uniform(packParams([n, nq, nBlocks, 0, op, 0, 0]));
    rec.dispatch(
      gpu.kernel(SCAN_REDUCE, knobs),
      { p: pr, x: input, sums },
      grid(gpu, nBlocks),
    );
    scanLevel(rec, sums, offs, nBlocks, 0, 0, 0, undefined, level + 1, knobs);
  }
  const p = gpu.uniform(
    packParams([n, nq, nBlocks, nBlocks > 1 ? 1 : 0, op, totalMode, totalIndex]),
  );
  rec.dispatch(
    gpu.kernel(SCAN_BLOCK_KERNEL, knobs),
    { p, x: input, offs, out: output, tot: tot ?? topoScratch(gpu, "scan unused tot", 4) },
    grid(gpu, nBlocks),
  );
}
