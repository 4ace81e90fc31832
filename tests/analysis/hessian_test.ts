import { exactHessianDiagonal, type HessianLayer } from "../../src/analysis/hessian.ts";
import { actForwardRef } from "../../src/kernels/activation_ref.ts";
import { DataRng } from "../../src/data/random.ts";

/** A random sparse MLP (entries in shuffled order), float64 forward and loss. */
function randomNet(rng: DataRng, widths: number[], act: string, density: number) {
  const layers: HessianLayer[] = [];
  for (let l = 0; l + 1 < widths.length; l++) {
    const nIn = widths[l], nOut = widths[l + 1], ends: number[] = [], vals: number[] = [];
    for (let i = 0; i < nIn; i++) {
      for (let j = 0; j < nOut; j++) {
        if (rng.next() < density) {
          ends.push(i, j);
          vals.push((rng.next() * 2 - 1) * 1.5 / Math.sqrt(nIn * density));
        }
      }
    }
    // Shuffle the entry order: the Hessian code must not assume any order.
    const order = Array.from({ length: vals.length }, (_, k) => k);
    for (let k = order.length - 1; k > 0; k--) {
      const r = rng.int(k + 1);
      [order[k], order[r]] = [order[r], order[k]];
    }
    layers.push({
      nIn,
      nOut,
      values: Float32Array.from(order, (k) => vals[k]),
      ends: Uint32Array.from(order.flatMap((k) => [ends[2 * k], ends[2 * k + 1]])),
      act: l + 2 === widths.length ? "identity" : act,
      actParam: 0,
    });
  }
  return layers;
}

/** Mean softmax cross-entropy in float64, with the weights `vals` (per layer). */
function loss(
  layers: HessianLayer[],
  vals: Float64Array[],
  x0: Float64Array,
  labels: Uint32Array,
  S: number,
): { loss: number; xs: Float64Array[]; zs: Float64Array[] } {
  let h = x0;
  const xs: Float64Array[] = [], zs: Float64Array[] = [];
  let total = 0;
  layers.forEach((L, l) => {
    xs.push(h);
    const z = new Float64Array(L.nOut * S);
    for (let e = 0; e < vals[l].length; e++) {
      const i = L.ends[2 * e], j = L.ends[2 * e + 1], w = vals[l][e];
      for (let s = 0; s < S; s++) z[j * S + s] += w * h[i * S + s];
    }
    // A fixed bias so units are not all centered at 0.
    for (let j = 0; j < L.nOut; j++) for (let s = 0; s < S; s++) z[j * S + s] += 0.1 * (j % 3 - 1);
    zs.push(z);
    h = z.map((v) => actForwardRef(L.act, v, L.actParam));
  });
  const C = layers.at(-1)!.nOut;
  for (let s = 0; s < S; s++) {
    let m = -Infinity, sum = 0;
    for (let c = 0; c < C; c++) m = Math.max(m, h[c * S + s]);
    for (let c = 0; c < C; c++) sum += Math.exp(h[c * S + s] - m);
    total += m + Math.log(sum) - h[labels[s] * S + s];
  }
  return { loss: total / S, xs, zs };
}

for (
  const [act, widths] of [
    ["tanh", [7, 5, 4]],
    ["silu", [6, 9, 5, 3]],
    ["sigmoid", [5, 7, 6, 5, 3]],
    ["gelu", [9, 11, 3]],
  ] as const
) {
  Deno.test(`exact Hessian diagonal matches float64 second differences (${act}, ${widths})`, () => {
    const rng = new DataRng(widths.length * 97 + act.length);
    const layers = randomNet(rng, [...widths], act, 0.7);
    const S = 13, x0 = new Float64Array(widths[0] * S).map(() => rng.next() * 2 - 1);
    const labels = Uint32Array.from({ length: S }, () => rng.int(widths.at(-1)!));
    const vals = layers.map((L) => Float64Array.from(L.values));
    const f = loss(layers, vals, x0, labels, S);
    const H = exactHessianDiagonal({
      layers,
      x: f.xs.map((a) => Float32Array.from(a)),
      z: f.zs.map((a) => Float32Array.from(a)),
      labels,
      samples: S,
      ld: S,
    });
    const h = 1e-3;
    let worst = 0;
    layers.forEach((L, l) => {
      for (let e = 0; e < L.values.length; e++) {
        const v = vals[l][e];
        vals[l][e] = v + h;
        const up = loss(layers, vals, x0, labels, S).loss;
        vals[l][e] = v - h;
        const dn = loss(layers, vals, x0, labels, S).loss;
        vals[l][e] = v;
        const fd = (up - 2 * f.loss + dn) / (h * h);
        const err = Math.abs(H[l][e] - fd) / (1e-3 + Math.abs(fd));
        worst = Math.max(worst, err);
      }
    });
    // float32 activations in, float64 arithmetic: measured agreement ~1e-6 relative.
    if (!(worst < 1e-4)) throw new Error(`worst relative error ${worst}`);
  });
}

Deno.test("exact Hessian diagonal: a deliberately wrong curvature is caught", () => {
  // Guard against a test that cannot fail: drop the f'' term (Gauss-Newton) on a tanh net and
  // the comparison above must see a difference.
  const rng = new DataRng(5);
  const layers = randomNet(rng, [6, 8, 3], "tanh", 0.8);
  const S = 9, x0 = new Float64Array(6 * S).map(() => rng.next() * 4 - 2);
  const labels = Uint32Array.from({ length: S }, () => rng.int(3));
  const f = loss(layers, layers.map((L) => Float64Array.from(L.values)), x0, labels, S);
  const inp = {
    layers,
    x: f.xs.map((a) => Float32Array.from(a)),
    z: f.zs.map((a) => Float32Array.from(a)),
    labels,
    samples: S,
    ld: S,
  };
  const exact = exactHessianDiagonal(inp);
  const gn = exactHessianDiagonal({
    ...inp,
    layers: layers.map((L, l) => (l === 0 ? { ...L, act: "identity" } : L)),
    z: inp.z.map((z, l) => (l === 0 ? z.map(Math.tanh) : z)),
  });
  const diff = exact[0].reduce((a, v, e) => Math.max(a, Math.abs(v - gn[0][e])), 0);
  if (!(diff > 1e-3)) throw new Error(`the activation's curvature made no difference (${diff})`);
});
