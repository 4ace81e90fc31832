/**
 * Float64 references of src/kernels/ablation_conv.ts on unpadded arrays (`[rows][S]`).
 *
 * @example
 * ```ts
 * import { convPatchRef } from "./ablation_conv_ref.ts";
 * // z: 1 channel x 2 positions, 1 sample; cols: 1 row x 2 positions; remove w = 2.
 * const out = convPatchRef(Float64Array.of(5, 7), Float64Array.of(1, 3), 2, 1, [{ i: 0, j: 0, w: 2 }], "rank1", 2);
 * if (out.join() !== "3,1") throw new Error(String(out));
 * ```
 * @module
 */
import type { WeightAblation } from "./analysis.ts";

/**
 * K patched copies `[rows][K·S]` of `cached` `[rows][S]`: rank-1 mode subtracts
 * `w·x[i·G + r%G]` from the rows `r` with `⌊r/G⌋ = j`; zero mode zeroes those rows.
 */
export function convPatchRef(
  cached: Float64Array,
  x: Float64Array,
  rows: number,
  samples: number,
  abl: readonly WeightAblation[],
  mode: "rank1" | "zero" | "channel",
  group: number,
): Float64Array {
  const S = samples, K = abl.length, out = new Float64Array(rows * K * S);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < K; k++) {
      const a = abl[k];
      for (let s = 0; s < S; s++) {
        if (mode === "channel") {
          out[r * K * S + k * S + s] = cached[(a.j * group + r) * S + s] -
            a.w * x[(a.i * group + r) * S + s];
          continue;
        }
        let v = cached[r * S + s];
        if (Math.floor(r / group) === a.j) {
          v = mode === "zero" ? 0 : v - a.w * x[(a.i * group + (r % group)) * S + s];
        }
        out[r * K * S + k * S + s] = v;
      }
    }
  }
  return out;
}

/** Per-sample gradients `g[e][s] = Σ_p cols[i·P + p][s]·dz[j·P + p][s]` of entries (i, j). */
export function convSampleGradRef(
  cols: Float64Array,
  dz: Float64Array,
  ends: Uint32Array,
  positions: number,
  samples: number,
): Float64Array {
  const n = ends.length / 2, P = positions, S = samples, g = new Float64Array(n * S);
  for (let e = 0; e < n; e++) {
    const i = ends[2 * e], j = ends[2 * e + 1];
    for (let s = 0; s < S; s++) {
      let acc = 0;
      for (let p = 0; p < P; p++) acc += cols[(i * P + p) * S + s] * dz[(j * P + p) * S + s];
      g[e * S + s] = acc;
    }
  }
  return g;
}

/** {@link convChannelNext}'s float64 reference (`w` dense `[channels·q][rows]`). */
export function convChannelNextRef(
  zCached: Float64Array,
  xCached: Float64Array,
  pooled: Float64Array,
  w: Float64Array,
  abl: readonly WeightAblation[],
  rows: number,
  q: number,
  samples: number,
): Float64Array {
  const S = samples, K = abl.length, out = new Float64Array(rows * K * S);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < K; k++) {
      for (let s = 0; s < S; s++) {
        let acc = zCached[r * S + s];
        for (let t = 0; t < q; t++) {
          const row = abl[k].j * q + t;
          acc += w[row * rows + r] * (pooled[t * K * S + k * S + s] - xCached[row * S + s]);
        }
        out[r * K * S + k * S + s] = acc;
      }
    }
  }
  return out;
}
