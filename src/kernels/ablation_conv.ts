/**
 * Kernels of exact ablation and per-sample gradients for convolutions (shaders/ablation_conv.wgsl;
 * float64 references: ablation_conv_ref.ts).
 *
 * A convolution weight `w_ij` (`i` a row `c_in·k·k` of the im2col matrix, `j` an output
 * channel) is shared by the P = oh·ow output positions, so zeroing it changes the P
 * pre-activation rows `j·P + p` by `-w_ij·cols[i·P + p]` (`cols` = the layer's im2col input
 * viewed as `[nIn·P][ld]`). {@link convPatch} builds K such corrected copies side by side (the
 * probe pushes them through the activation, batch norm, pooling and the rest of the network in
 * one forward); its zero mode zeroes the `h·w` rows of one input channel (unit ablation). It is
 * `patchColumns` of kernels/analysis.ts with row groups (the kernel is shared: with group 1 it is
 * the fully-connected patch).
 *
 * {@link convFisher}: the empirical Fisher of a shared weight needs the per-sample gradient
 * `g_s = Σ_p cols[i·P+p][s]·dz[j·P+p][s]` before squaring (squares summed over positions
 * would be wrong): entries in chunks, `[chunk][ld]` per-sample gradients, then their row sums of
 * squares.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/mod.ts";
 * import { convPatch } from "./ablation_conv.ts";
 * const gpu = await getGpu();
 * // z: 1 channel x 2 positions, 1 sample (ld 4); cols: 1 row x 2 positions; remove w = 2.
 * const z = gpu.tensor("f32", [2, 4], { data: Float32Array.of(5, 0, 0, 0, 7, 0, 0, 0) });
 * const cols = gpu.tensor("f32", [2, 4], { data: Float32Array.of(1, 0, 0, 0, 3, 0, 0, 0) });
 * const out = gpu.tensor("f32", [2, 4]);
 * const rec = gpu.recorder();
 * convPatch(rec, { cached: z, x: cols, rows: 2, group: 2, samples: 1, ablations: [{ i: 0, j: 0, w: 2 }], out });
 * rec.submit();
 * const r = await gpu.read(out);
 * if (r[0] !== 3 || r[4] !== 1) throw new Error(String(r));
 * ```
 * @module
 */
import convCode from "../../shaders/ablation_conv.wgsl" with { type: "text" };
import {
  defineKernel,
  FiligreeError,
  grid,
  MAX_LOOP_TRIPS,
  packParams,
  type Recorder,
  requireTensor,
  roundUp4,
  type Tensor,
} from "../gpu/mod.ts";
import { type PatchArgs, patchColumns, rowSumSq } from "./analysis.ts";
import { withAblationFns } from "./ablation_fns.ts";

const WG = 64;
const code = withAblationFns(convCode);

export const CONV_SAMPLE_GRAD = defineKernel({
  shader: "ablation_conv.wgsl",
  code,
  entry: "conv_sample_grad",
  bindings: [
    ["gp", "uniform"],
    ["cols", "read"],
    ["dz", "read"],
    ["ends", "read"],
    ["gs", "read_write"],
  ],
});

/**
 * Arguments of {@link convPatch}: those of `patchColumns` with the group required (`cached`
 * the pre-activation (rank-1) or the layer input (zero), `x` the im2col input
 * `[nIn·group][roundUp4(samples)]`, `group` the positions P (rank-1) or `h·w` (zero)).
 */
export type ConvPatchArgs = PatchArgs & { group: number };

/** K patched copies of a cached convolution activation (see the module doc). */
export function convPatch(rec: Recorder, a: ConvPatchArgs): void {
  patchColumns(rec, a, "convPatch");
}

export const CONV_CHANNEL_NEXT = defineKernel({
  shader: "ablation_conv.wgsl",
  code,
  entry: "conv_channel_next",
  bindings: [
    ["np", "uniform"],
    ["z_cached", "read"],
    ["x_cached", "read"],
    ["pooled", "read"],
    ["w_next", "read"],
    ["abl_n", "read"],
    ["z_out", "read_write"],
  ],
  textureInputs: true,
});

/**
 * `conv_channel_next` with four columns per invocation (vec4 loads and stores, the same bits);
 * {@link convChannelNext} runs it when the sample count is a multiple of 4.
 */
export const CONV_CHANNEL_NEXT4 = defineKernel({
  shader: "ablation_conv.wgsl",
  code,
  entry: "conv_channel_next4",
  bindings: [
    ["np", "uniform"],
    ["z4_cached", "read"],
    ["x4_cached", "read"],
    ["pooled4", "read"],
    ["w_next", "read"],
    ["abl_n", "read"],
    ["z4_out", "read_write"],
  ],
  textureInputs: true,
});

/** Arguments of {@link convChannelNext}. */
export interface ChannelNextArgs {
  /** The next layer's cached pre-activation `[rows][roundUp4(S)]`. */
  zCached: Tensor;
  /** Its cached input (the pooled channels) `[channels·q][roundUp4(S)]`. */
  xCached: Tensor;
  /** The ablated channel's new pooled rows `[q][roundUp4(K·S)]`, copy k in columns k·S + s. */
  pooled: Tensor;
  /** The next layer's weights, dense `[channels·q][rows]`. */
  wNext: Tensor;
  /** The ablations (`j` = the channel). */
  ablations: Tensor;
  rows: number;
  q: number;
  samples: number;
  count: number;
  /** `[rows][roundUp4(K·S)]`. */
  out: Tensor;
  /**
   * `vec4`: four columns per invocation (needs `samples % 4 == 0`); `scalar`: one. Default:
   * `vec4` where it applies.
   */
  variant?: "scalar" | "vec4";
}

/**
 * The next fully-connected layer's pre-activation when only channel `j_k` of its input changed:
 * `out[r][k·S+s] = zCached[r][s] + Σ_q W[j·q + q'][r]·(pooled[q'][k·S+s] − xCached[j·q + q'][s])`.
 */
export function convChannelNext(rec: Recorder, a: ChannelNextArgs): void {
  const gpu = rec.gpu;
  if (a.q > MAX_LOOP_TRIPS) {
    throw new FiligreeError(`convChannelNext: ${a.q} rows per channel over the loop bound`);
  }
  const ldS = roundUp4(a.samples), ldN = roundUp4(a.count * a.samples);
  requireTensor(a.zCached, a.rows * ldS, "convChannelNext zCached");
  requireTensor(a.pooled, a.q * ldN, "convChannelNext pooled");
  requireTensor(a.ablations, 3 * a.count, "convChannelNext ablations");
  requireTensor(a.out, a.rows * ldN, "convChannelNext out");
  const p = gpu.uniform(packParams([a.rows, a.samples, ldS, ldN, a.count, a.q]));
  const vec4 = (a.variant ?? (a.samples % 4 === 0 ? "vec4" : "scalar")) === "vec4";
  if (vec4 && a.samples % 4 !== 0) {
    throw new FiligreeError(
      `convChannelNext: the vec4 variant needs samples % 4 == 0, got ${a.samples}`,
    );
  }
  rec.dispatch(
    gpu.kernel(vec4 ? CONV_CHANNEL_NEXT4 : CONV_CHANNEL_NEXT, { WG }),
    vec4
      ? {
        np: p,
        z4_cached: a.zCached,
        x4_cached: a.xCached,
        pooled4: a.pooled,
        w_next: a.wNext,
        abl_n: a.ablations,
        z4_out: a.out,
      }
      : {
        np: p,
        z_cached: a.zCached,
        x_cached: a.xCached,
        pooled: a.pooled,
        w_next: a.wNext,
        abl_n: a.ablations,
        z_out: a.out,
      },
    grid(gpu, Math.ceil((a.rows * ldN) / (vec4 ? 4 : 1) / WG)),
  );
}

/** Arguments of {@link convSampleGrad}. */
export interface SampleGradArgs {
  /** `[nIn·P][roundUp4(samples)]`. */
  cols: Tensor;
  /** `[nOut·P][roundUp4(samples)]`. */
  dz: Tensor;
  /** u32 `[2·entries]`: input row i, output channel j per entry. */
  ends: Tensor;
  first: number;
  count: number;
  positions: number;
  samples: number;
  /** `[count][roundUp4(samples)]` per-sample gradients (padding columns zero). */
  out: Tensor;
}

/** Per-sample gradients of `count` shared weights from entry `first` (see the module doc). */
export function convSampleGrad(rec: Recorder, a: SampleGradArgs): void {
  const gpu = rec.gpu;
  if (a.positions > MAX_LOOP_TRIPS) {
    throw new FiligreeError(
      `convSampleGrad: ${a.positions} positions over the loop bound ${MAX_LOOP_TRIPS}`,
    );
  }
  const ld = roundUp4(a.samples);
  requireTensor(a.ends, 2 * (a.first + a.count), "convSampleGrad ends");
  requireTensor(a.out, a.count * ld, "convSampleGrad out");
  const p = gpu.uniform(packParams([a.first, a.count, a.samples, ld, a.positions]));
  rec.dispatch(
    gpu.kernel(CONV_SAMPLE_GRAD, { WG }),
    { gp: p, cols: a.cols, dz: a.dz, ends: a.ends, gs: a.out },
    grid(gpu, Math.ceil((a.count * ld) / WG)),
  );
}

/** Largest per-sample-gradient scratch of {@link convFisher}, f32 values. */
export const FISHER_SCRATCH = 1 << 22;

/**
 * `fisher[e] = Σ_s g_s[e]²` for `entries` shared weights (per-sample gradients of
 * {@link convSampleGrad}, in chunks of at most {@link FISHER_SCRATCH} values). Returns the
 * scratch tensors, for the caller to release once the recorder is submitted.
 */
export function convFisher(
  rec: Recorder,
  a: Omit<SampleGradArgs, "first" | "count" | "out"> & { entries: number; fisher: Tensor },
): Tensor[] {
  const gpu = rec.gpu;
  const ld = roundUp4(a.samples);
  requireTensor(a.fisher, a.entries, "convFisher fisher");
  const chunk = Math.max(1, Math.min(a.entries, Math.floor(FISHER_SCRATCH / ld)));
  const gs = gpu.tensor("f32", [chunk, ld], { label: "per-sample gradients" });
  const sq = gpu.tensor("f32", [chunk], { label: "fisher chunk" });
  for (let first = 0; first < a.entries; first += chunk) {
    const count = Math.min(chunk, a.entries - first);
    convSampleGrad(rec, { ...a, first, count, out: gs });
    rowSumSq(rec, { x: gs, out: sq, rows: count, batch: a.samples });
    rec.copy(sq, a.fisher, count, 0, first);
  }
  return [gs, sq];
}
