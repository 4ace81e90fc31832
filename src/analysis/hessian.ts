/**
 * The exact diagonal of the loss Hessian with respect to every weight of a plain MLP, in float64
 * on the CPU, for the second-order signed predictor `-g·w + ½·H_ii·w²` (score `signed2h`).
 *
 * For a weight `w_ij` of a weight layer (input unit i, output unit j), the pre-activation is
 * linear in `w_ij` and its input `x_i` does not depend on it, so with `L = (1/S)·Σ_s ℓ_s`
 *
 *     ∂²L/∂w_ij² = (1/S)·Σ_s x_i[s]² · ∂²ℓ_s/∂z_j[s]².
 *
 * The per-sample curvature `M = ∂²ℓ_s/∂z²` of a layer's pre-activations is back-propagated exactly
 * (no Gauss-Newton or diagonal approximation): at the logits `M = diag(p) - p·pᵀ` (softmax
 * cross-entropy), and through weight layer `W` (`[in][out]`) with activation f between,
 *
 *     M_below = D·W·M·Wᵀ·D + diag(f''(z) ⊙ (W·∂ℓ/∂z)),   D = diag(f'(z)).
 *
 * The full matrix is formed only for layers that have a weight layer below them; the first
 * weight layer needs only its diagonal, `f'(z_i)²·Σ_{j,j'} W_ij·M_jj'·W_ij' + f''(z_i)·(W∂ℓ/∂z)_i`,
 * summed over the nonzeros of row i. `f''` is the central difference (float64, step 1e-4·max(1,|z|))
 * of the analytic float64 derivative `actDerivativeRef`: relative error ~1e-8, far below float32.
 *
 * Supported: weight layers (dense or sparse) with a fused activation, evaluation-mode dropout
 * between them, softmax cross-entropy. Not supported (the caller reports why): normalization
 * layers (batch norm in evaluation mode is a per-unit affine map and could be added; layer norm
 * couples all units of a sample, so its own Jacobian and Hessian would enter every term),
 * separate activation layers (SReLU), and the MSE losses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exactHessianDiagonal } from "./hessian.ts";
 * // One linear layer 1 -> 2 (logits z = w·x), one sample x = 2, label 0, w = [0, 0]:
 * // p = [½, ½], ∂²ℓ/∂z_j² = p_j(1 - p_j) = ¼, so H = x²·¼ = 1 for both weights.
 * const h = exactHessianDiagonal({
 *   layers: [{ nIn: 1, nOut: 2, values: new Float32Array([0, 0]), ends: new Uint32Array([0, 0, 0, 1]), act: "identity", actParam: 0 }],
 *   x: [new Float32Array([2])], z: [new Float32Array([0, 0])], labels: new Uint32Array([0]), samples: 1, ld: 1,
 * });
 * assert.deepEqual(Array.from(h[0]), [1, 1]);
 * ```
 * @module
 */
import { actDerivativeRef } from "../kernels/activation_ref.ts";

/** One weight layer of a plain MLP, entries in any fixed order. */
export interface HessianLayer {
  nIn: number;
  nOut: number;
  /** Weight of each entry. */
  values: Float32Array;
  /** Per entry: input unit i, output unit j (length 2·nnz). */
  ends: Uint32Array;
  /** The activation applied to this layer's pre-activation (the last layer: "identity"). */
  act: string;
  actParam: number;
}

/** Inputs of {@link exactHessianDiagonal}: feature-major `[rows][ld]` activations per layer. */
export interface HessianInput {
  layers: HessianLayer[];
  /** Per weight layer: its input X (`[nIn][ld]`). */
  x: Float32Array[];
  /** Per weight layer: its pre-activation Z (`[nOut][ld]`); the last is the logits. */
  z: Float32Array[];
  labels: Uint32Array;
  samples: number;
  /** Row stride of x and z (≥ samples). */
  ld: number;
}

/** Floating-point operations of {@link exactHessianDiagonal} (to decide whether it is affordable). */
export function hessianCost(layers: HessianLayer[], samples: number): number {
  let f = 0;
  for (let l = layers.length - 1; l >= 0; l--) {
    const L = layers[l], nnz = L.values.length;
    f += 2 * nnz; // accumulation x²·M_jj
    if (l === 0) continue;
    const below = layers[l - 1];
    if (l - 1 >= 1) f += 2 * nnz * (L.nOut + below.nOut);
    else {
      // Σ_i nnz_i² (pairs within each input row), at most nnz·nOut.
      f += 2 * Math.min(nnz * L.nOut, (nnz * nnz) / Math.max(1, L.nIn));
    }
  }
  return f * samples;
}

function secondDerivative(act: string, z: number, a: number): number {
  if (act === "identity") return 0;
  const h = 1e-4 * Math.max(1, Math.abs(z));
  return (actDerivativeRef(act, z + h, a) - actDerivativeRef(act, z - h, a)) / (2 * h);
}

/** Per weight layer, `∂²L/∂w²` of every entry (entry order of `layers[w].values`). */
export function exactHessianDiagonal(inp: HessianInput): Float64Array[] {
  const { layers, x, z, labels, samples: S, ld } = inp;
  const nL = layers.length;
  const out = layers.map((L) => new Float64Array(L.values.length));
  // Entries of each layer grouped by input row (for the diagonal-only step).
  const byRow = layers.map((L) => {
    const nnz = L.values.length, start = new Uint32Array(L.nIn + 1);
    for (let e = 0; e < nnz; e++) start[L.ends[2 * e] + 1]++;
    for (let i = 0; i < L.nIn; i++) start[i + 1] += start[i];
    const fill = start.slice(0, L.nIn), list = new Uint32Array(nnz);
    for (let e = 0; e < nnz; e++) list[fill[L.ends[2 * e]]++] = e;
    return { start, list };
  });
  const C = layers[nL - 1].nOut;
  for (let s = 0; s < S; s++) {
    // Logits: softmax, dℓ/dz and M = diag(p) - p pᵀ.
    const zo = z[nL - 1];
    let mx = -Infinity;
    for (let c = 0; c < C; c++) mx = Math.max(mx, zo[c * ld + s]);
    const p = new Float64Array(C);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += p[c] = Math.exp(zo[c * ld + s] - mx);
    for (let c = 0; c < C; c++) p[c] /= sum;
    let g = Float64Array.from(p);
    g[labels[s]] -= 1;
    let M: Float64Array | null = new Float64Array(C * C);
    for (let a = 0; a < C; a++) {
      for (let b = 0; b < C; b++) M[a * C + b] = (a === b ? p[a] : 0) - p[a] * p[b];
    }
    let diag = Float64Array.from({ length: C }, (_, c) => M![c * C + c]);
    for (let l = nL - 1; l >= 0; l--) {
      const L = layers[l], xl = x[l], H = out[l], nnz = L.values.length;
      for (let e = 0; e < nnz; e++) {
        const xi = xl[L.ends[2 * e] * ld + s];
        H[e] += xi * xi * diag[L.ends[2 * e + 1]];
      }
      if (l === 0) break;
      // Down through W_l and the activation of layer l-1.
      const below = layers[l - 1], n = L.nIn, m = L.nOut, zb = z[l - 1];
      const dh = new Float64Array(n);
      for (let e = 0; e < nnz; e++) dh[L.ends[2 * e]] += L.values[e] * g[L.ends[2 * e + 1]];
      const d1 = new Float64Array(n), c = new Float64Array(n), gb = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const u = zb[i * ld + s];
        d1[i] = actDerivativeRef(below.act, u, below.actParam);
        c[i] = secondDerivative(below.act, u, below.actParam) * dh[i];
        gb[i] = d1[i] * dh[i];
      }
      const newDiag = new Float64Array(n);
      if (l - 1 >= 1) {
        // Full M_below = D (W M Wᵀ) D + diag(c).
        const WM = new Float64Array(n * m);
        for (let e = 0; e < nnz; e++) {
          const i = L.ends[2 * e], j = L.ends[2 * e + 1], w = L.values[e];
          for (let k = 0; k < m; k++) WM[i * m + k] += w * M![j * m + k];
        }
        const Mb = new Float64Array(n * n);
        for (let e = 0; e < nnz; e++) {
          const i2 = L.ends[2 * e], j = L.ends[2 * e + 1], w = L.values[e];
          for (let i = 0; i < n; i++) Mb[i * n + i2] += WM[i * m + j] * w;
        }
        for (let i = 0; i < n; i++) {
          for (let i2 = 0; i2 < n; i2++) Mb[i * n + i2] *= d1[i] * d1[i2];
          Mb[i * n + i] += c[i];
          newDiag[i] = Mb[i * n + i];
        }
        M = Mb;
      } else {
        const { start, list } = byRow[l];
        for (let i = 0; i < n; i++) {
          let q = 0;
          for (let a = start[i]; a < start[i + 1]; a++) {
            const ea = list[a], ja = L.ends[2 * ea + 1], wa = L.values[ea];
            for (let b = start[i]; b < start[i + 1]; b++) {
              const eb = list[b];
              q += wa * L.values[eb] * M![ja * m + L.ends[2 * eb + 1]];
            }
          }
          newDiag[i] = d1[i] * d1[i] * q + c[i];
        }
        M = null;
      }
      diag = newDiag;
      g = gb;
    }
  }
  for (const H of out) for (let e = 0; e < H.length; e++) H[e] /= S;
  return out;
}
