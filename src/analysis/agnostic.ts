/**
 * How weight-agnostic is a trained sparse network (MLP, CNN or LSTM)? Its weights are replaced,
 * layer by layer, and the test accuracy retained is measured, for three topologies:
 *
 * - `trained`: the run's own masks;
 * - `degree-matched`: per sparse layer, every output unit keeps its fan-in count but draws its
 *   sources uniformly at random;
 * - `shuffled`: per sparse layer, the same number of connections placed uniformly at random.
 *
 * On a random topology the layer's trained values are dealt to the new connections in a random
 * order (the value and sign multiset is kept). Dense layers keep their full connectivity. Layers are
asked through their analysis view (src/nn/analyzable.ts): a sparse view's `replaceCsr` swaps a
random topology in and the trained one back, so a convolution (`[c_in·k·k, c_out]`, fan-in per
output channel) and an LSTM's `W_x` / `W_h` (`[in, 4·hidden]`) get random masks like a
fully-connected layer.
 *
 * Weight variants (a row per variant in {@link WEIGHT_VARIANTS}), with `m` = the layer's mean |w|
 * and `s` a scale from the WANN shared-weight list (default -2, -1, -0.5, 0.5, 1, 2):
 * `trained` (the values themselves), `shared` (every weight `s·m`: one shared weight per layer,
 * no signs), `signed` (`sign(w)·s·m`: the learned signs with one shared magnitude; `s = 1` is
 * "learned signs times the layer's mean |w|").
 *
 * Batch/layer norm runs in evaluation mode with the trained statistics, so a normalized model's
 * retained accuracy also says how much its normalization statistics tie it to its weights.
 *
 * @example
 * ```ts ignore
 * import { Probe } from "./probe.ts";
 * import { agnosticAnalysis } from "./agnostic.ts";
 * const probe = await Probe.fromRun("runs/mnist-set", { evalSamples: 2000, seed: 0 });
 * const r = await agnosticAnalysis(probe, { seeds: 2 });
 * console.log(r.summary);
 * ```
 * @module
 */
import { DataRng, deriveSeed } from "../data/random.ts";
import type { Tensor } from "../gpu/mod.ts";
import { csrFromCoo, type CsrLayer, releaseCsr, uploadCsr } from "../sparse/csr.ts";
import type { Probe, ProbeLayer } from "./probe.ts";

/** Topologies compared. */
export const MASK_VARIANTS = ["trained", "degree-matched", "shuffled"] as const;
/** A topology. */
export type MaskVariant = typeof MASK_VARIANTS[number];

/** Weight replacements, one row each: new values from the base values of a layer and a scale. */
export const WEIGHT_VARIANTS: readonly {
  name: "trained" | "shared" | "signed";
  scaled: boolean;
  values: (base: Float32Array, meanAbs: number, s: number) => Float32Array;
}[] = [
  { name: "trained", scaled: false, values: (b) => b },
  { name: "shared", scaled: true, values: (b, m, s) => new Float32Array(b.length).fill(s * m) },
  {
    name: "signed",
    scaled: true,
    values: (b, m, s) => b.map((v) => (v > 0 ? 1 : v < 0 ? -1 : 0) * s * m),
  },
];

/** Options of {@link agnosticAnalysis}. */
export interface AgnosticOptions {
  /** Shared-weight scales (multiples of each layer's mean |w|). */
  scales?: readonly number[];
  /** Random topologies per random mask variant (default 2). */
  seeds?: number;
  /** Seed of the random topologies (default 0). */
  seed?: number;
}

/** One evaluation. */
export interface AgnosticRow {
  mask: MaskVariant;
  weights: "trained" | "shared" | "signed";
  /** Scale (shared/signed). */
  scale: number | null;
  /** Mask seed index (random masks). */
  maskSeed: number | null;
  accuracy: number;
  loss: number;
}

/** Per (mask, weights): accuracy of the trained scale-1 signed net, mean and best over scales and seeds. */
export interface AgnosticSummary {
  mask: MaskVariant;
  weights: string;
  /** Mean over scales and mask seeds. */
  meanAccuracy: number;
  /** Best scale (mean over mask seeds). */
  bestAccuracy: number;
  bestScale: number | null;
  /** Accuracy / trained accuracy of the trained model (mean and best). */
  retainedMean: number;
  retainedBest: number;
}

/** Everything {@link agnosticAnalysis} measures. */
export interface AgnosticReport {
  samples: number;
  baseline: { accuracy: number; loss: number };
  scales: number[];
  seeds: number;
  layers: {
    name: string;
    sparse: boolean;
    nnz: number;
    nIn: number;
    nOut: number;
    meanAbs: number;
  }[];
  rows: AgnosticRow[];
  summary: AgnosticSummary[];
}

const meanAbs = (v: Float32Array) => v.reduce((a, b) => a + Math.abs(b), 0) / Math.max(1, v.length);

function shuffled(v: Float32Array, rng: DataRng): Float32Array {
  const a = v.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/** Coordinates of a random topology for layer `pl` (see the module comment). */
export function randomTopology(
  pl: { nIn: number; nOut: number; nnz: number; ends: Uint32Array },
  kind: "degree-matched" | "shuffled",
  rng: DataRng,
): { rows: Uint32Array; cols: Uint32Array } {
  const rows = new Uint32Array(pl.nnz), cols = new Uint32Array(pl.nnz);
  if (kind === "degree-matched") {
    const fanIn = new Uint32Array(pl.nOut);
    for (let k = 0; k < pl.nnz; k++) fanIn[pl.ends[2 * k + 1]]++;
    const pool = Uint32Array.from({ length: pl.nIn }, (_, i) => i);
    let n = 0;
    for (let j = 0; j < pl.nOut; j++) {
      for (let t = 0; t < fanIn[j]; t++) {
        const r = t + rng.int(pl.nIn - t);
        const x = pool[t];
        pool[t] = pool[r];
        pool[r] = x;
        rows[n] = pool[t];
        cols[n++] = j;
      }
    }
  } else {
    const total = pl.nIn * pl.nOut;
    const seen = new Set<number>();
    let n = 0;
    while (n < pl.nnz) {
      const p = Math.floor(rng.next() * total);
      if (seen.has(p)) continue;
      seen.add(p);
      rows[n] = Math.floor(p / pl.nOut);
      cols[n++] = p % pl.nOut;
    }
  }
  return { rows, cols };
}

/**
 * Runs every (mask, weights, scale, seed) combination on the probe's evaluation set; the probe's
 * model is restored (trained topology and values) afterwards, also on error.
 */
export async function agnosticAnalysis(
  probe: Probe,
  opts: AgnosticOptions = {},
): Promise<AgnosticReport> {
  const scales = [...(opts.scales ?? [-2, -1, -0.5, 0.5, 1, 2])];
  const seeds = opts.seeds ?? 2;
  const gpu = probe.gpu;
  probe.restoreValues();
  const baseline = await probe.evaluate();
  const layers = probe.layers as ProbeLayer[];
  const rows: AgnosticRow[] = [];
  for (const mask of MASK_VARIANTS) {
    for (let seedIdx = 0; seedIdx < (mask === "trained" ? 1 : seeds); seedIdx++) {
      const rng = new DataRng(
        deriveSeed(opts.seed ?? 0, MASK_VARIANTS.indexOf(mask) * 1000 + seedIdx),
      );
      // Base values per layer, in the value order of the topology in place.
      const base: Float32Array[] = [];
      // The value array each layer's forward reads (a random topology's own, once swapped in).
      const target: (Tensor | null)[] = layers.map(() => null);
      const swapped: { w: number; placed: CsrLayer; orig: CsrLayer }[] = [];
      try {
        layers.forEach((pl, w) => {
          // Dense layers keep their full connectivity (see the module doc).
          if (mask === "trained" || !pl.sparse) {
            base.push(pl.values);
            return;
          }
          const { rows: r, cols: c } = randomTopology(pl, mask, rng);
          const host = csrFromCoo(pl.nIn, pl.nOut, r, c, shuffled(pl.values, rng));
          const placed = uploadCsr(gpu, host, `${pl.name}.${mask}`);
          swapped.push({ w, placed, orig: pl.view.replaceCsr(placed) });
          target[w] = placed.values;
          base.push(host.values);
        });
        for (const v of WEIGHT_VARIANTS) {
          for (const s of v.scaled ? scales : [null]) {
            layers.forEach((pl, w) => {
              const vals = v.values(base[w], meanAbs(pl.values), s ?? 1);
              const t = target[w];
              // The probe writes the trained topology's value array; a swapped-in one is ours.
              if (t) gpu.write(t, vals);
              else probe.setValues(w, vals);
            });
            const m = await probe.evaluate();
            rows.push({
              mask,
              weights: v.name,
              scale: s,
              maskSeed: mask === "trained" ? null : seedIdx,
              accuracy: m.accuracy,
              loss: m.loss,
            });
          }
        }
      } finally {
        for (const { w, placed, orig } of swapped) {
          layers[w].view.replaceCsr(orig);
          releaseCsr(gpu, placed);
        }
        probe.restoreValues();
      }
    }
  }
  const summary: AgnosticSummary[] = [];
  for (const mask of MASK_VARIANTS) {
    for (const v of WEIGHT_VARIANTS) {
      const rs = rows.filter((r) => r.mask === mask && r.weights === v.name);
      const byScale = new Map<number | null, number[]>();
      for (const r of rs) byScale.set(r.scale, [...(byScale.get(r.scale) ?? []), r.accuracy]);
      let best = -1, bestScale: number | null = null;
      for (const [s, a] of byScale) {
        const m = a.reduce((x, y) => x + y, 0) / a.length;
        if (m > best) {
          best = m;
          bestScale = s;
        }
      }
      const mean = rs.reduce((a, r) => a + r.accuracy, 0) / rs.length;
      summary.push({
        mask,
        weights: v.name,
        meanAccuracy: mean,
        bestAccuracy: best,
        bestScale,
        retainedMean: mean / baseline.accuracy,
        retainedBest: best / baseline.accuracy,
      });
    }
  }
  return {
    samples: probe.samples,
    baseline,
    scales,
    seeds,
    layers: layers.map((pl) => ({
      name: pl.name,
      sparse: pl.sparse,
      nnz: pl.nnz,
      nIn: pl.nIn,
      nOut: pl.nOut,
      meanAbs: meanAbs(pl.values),
    })),
    rows,
    summary,
  };
}
