/**
 * Float64 references for conv.ts on unpadded arrays: images `[c·h·w][batch]`, columns
 * `[c·k·k][P·batch]` (column `pos·batch + b`), pooled `[c·oh·ow][batch]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maxPoolRef } from "./conv_ref.ts";
 * // one 2x2 image, batch 1 -> the maximum and its window offset
 * const r = maxPoolRef(new Float64Array([1, 4, 3, 2]), { channels: 1, height: 2, width: 2, size: 2 }, 1);
 * assert.deepEqual(r.y, new Float64Array([4]));
 * assert.deepEqual(r.argmax, new Uint32Array([1]));
 * ```
 * @module
 */
import { convDims, type ConvGeometry, poolDims, type PoolGeometry } from "./conv.ts";

/** im2col on an unpadded batch. */
export function im2colRef(x: Float64Array, g: ConvGeometry, batch: number): Float64Array {
  const d = convDims(g);
  const P = d.positions;
  const cols = new Float64Array(d.rows * P * batch);
  for (let c = 0; c < d.c; c++) {
    for (let ky = 0; ky < d.k; ky++) {
      for (let kx = 0; kx < d.k; kx++) {
        const r = (c * d.k + ky) * d.k + kx;
        for (let oy = 0; oy < d.oh; oy++) {
          for (let ox = 0; ox < d.ow; ox++) {
            const iy = oy * d.stride + ky - d.pad, ix = ox * d.stride + kx - d.pad;
            if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) continue;
            const src = ((c * d.h + iy) * d.w + ix) * batch;
            const dst = (r * P + oy * d.ow + ox) * batch;
            for (let b = 0; b < batch; b++) cols[dst + b] = x[src + b];
          }
        }
      }
    }
  }
  return cols;
}

/** The adjoint of {@link im2colRef} (scatter-add formulation, unlike the GPU's gather). */
export function col2imRef(dcols: Float64Array, g: ConvGeometry, batch: number): Float64Array {
  const d = convDims(g);
  const P = d.positions;
  const dx = new Float64Array(d.c * d.h * d.w * batch);
  for (let c = 0; c < d.c; c++) {
    for (let ky = 0; ky < d.k; ky++) {
      for (let kx = 0; kx < d.k; kx++) {
        const r = (c * d.k + ky) * d.k + kx;
        for (let oy = 0; oy < d.oh; oy++) {
          for (let ox = 0; ox < d.ow; ox++) {
            const iy = oy * d.stride + ky - d.pad, ix = ox * d.stride + kx - d.pad;
            if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) continue;
            const dst = ((c * d.h + iy) * d.w + ix) * batch;
            const src = (r * P + oy * d.ow + ox) * batch;
            for (let b = 0; b < batch; b++) dx[dst + b] += dcols[src + b];
          }
        }
      }
    }
  }
  return dx;
}

/**
 * Convolution `y[co·P + pos][b] = Σ_r w[r][co]·cols[r][pos·batch + b] + bias[co]` with dense
 * weights `w` `[c·k·k][cOut]` (row-major, the Linear layout), output `[cOut·P][batch]`.
 */
export function conv2dRef(
  x: Float64Array,
  w: Float64Array,
  bias: Float64Array,
  g: ConvGeometry,
  cOut: number,
  batch: number,
): Float64Array {
  const d = convDims(g);
  const cols = im2colRef(x, g, batch);
  const n = d.positions * batch;
  const y = new Float64Array(cOut * n);
  for (let co = 0; co < cOut; co++) {
    for (let i = 0; i < n; i++) y[co * n + i] = bias[co];
    for (let r = 0; r < d.rows; r++) {
      const wv = w[r * cOut + co];
      if (wv === 0) continue;
      for (let i = 0; i < n; i++) y[co * n + i] += wv * cols[r * n + i];
    }
  }
  return y;
}

/** Max pooling with argmax (window offset `dy·size + dx` of the first maximum). */
export function maxPoolRef(
  x: Float64Array,
  g: PoolGeometry,
  batch: number,
): { y: Float64Array; argmax: Uint32Array } {
  const { oh, ow } = poolDims(g);
  const s = g.size;
  const y = new Float64Array(g.channels * oh * ow * batch);
  const argmax = new Uint32Array(y.length);
  for (let c = 0; c < g.channels; c++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const o = ((c * oh + oy) * ow + ox) * batch;
        for (let b = 0; b < batch; b++) {
          let best = -Infinity, arg = 0;
          for (let dy = 0; dy < s; dy++) {
            for (let dx = 0; dx < s; dx++) {
              const v = x[((c * g.height + oy * s + dy) * g.width + ox * s + dx) * batch + b];
              if ((dy === 0 && dx === 0) || v > best) {
                best = v;
                arg = dy * s + dx;
              }
            }
          }
          y[o + b] = best;
          argmax[o + b] = arg;
        }
      }
    }
  }
  return { y, argmax };
}

/** Gradient of {@link maxPoolRef}: each window's gradient goes to its argmax. */
export function maxPoolBackwardRef(
  dy: Float64Array,
  argmax: Uint32Array,
  g: PoolGeometry,
  batch: number,
): Float64Array {
  const { oh, ow } = poolDims(g);
  const s = g.size;
  const dx = new Float64Array(g.channels * g.height * g.width * batch);
  for (let c = 0; c < g.channels; c++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const o = ((c * oh + oy) * ow + ox) * batch;
        for (let b = 0; b < batch; b++) {
          const a = argmax[o + b];
          const iy = oy * s + Math.floor(a / s), ix = ox * s + (a % s);
          dx[((c * g.height + iy) * g.width + ix) * batch + b] += dy[o + b];
        }
      }
    }
  }
  return dx;
}
