/**
 * Importance scores of every weight, computed on the GPU (formulas: shaders/analysis.wgsl
 * `entry_scores`; background: Lee et al. 2019 (SNIP), Molchanov et al. 2019 (Taylor), LeCun et
 * al. 1990 (OBD), Wang et al. 2020 (GraSP), Tanaka et al. 2020 (SynFlow), Sun et al. 2023
 * (Wanda)).
 *
 * - gradient g: the mean-loss gradient over the evaluation set, model in evaluation mode
 *   (batch norm with running statistics, no dropout), one backward pass.
 * - empirical Fisher `F = (1/S)·Σ_s g_s²` with `g_s` the per-sample gradient: for a sparse layer
 *   an SDDMM of the squared inputs with the squared pre-activation gradients (no per-sample
 *   gradient tensor), for a dense layer the matching matmul.
 * - GraSP's Hessian-vector product `H·g` by central differences of gradients at `w ± ε·g`,
 *   `ε = 1e-3·‖w‖/‖g‖`. Every score here is an importance (larger = keep): for GraSP that is
 *   `w·(H·g)`, the negated published score `-w·(H·g)` (GraSP removes its highest scores first).
 * - SynFlow: data-free, all-ones input through `|W|` (activations and normalization are not part
 *   of SynFlow's linear path), `|w_ij|·a_i·r_j` with the forward flow a and the backward flow r.
 * - Wanda: `|w_ij|·‖x_i‖₂` over the evaluation set.
 * - random: a seeded hash, the control.
 * - signed1 `-g·w` and signed2 `-g·w + ½·F·w²`: signed predictions of the Δloss of removing w
 *   (first order; second order with the empirical Fisher F as the curvature), computed on the
 *   CPU from the gradient and Fisher above.
 * - signed2h `-g·w + ½·H_ii·w²` with the exact Hessian diagonal (src/analysis/hessian.ts, CPU
 *   float64); only for plain MLPs with cross-entropy and when its cost is under
 *   {@link HESSIAN_MAX_FLOP}; otherwise it is left out and the reason recorded in `skipped`.
 * - effmag: `|w_ij|·|γ_j|/√(running_var_j + ε)` when a batch norm directly follows the weight
 *   layer (its evaluation-mode per-unit scale), `|w_ij|·|γ_j|` when a layer norm does (its scale
 *   1/σ is per sample and shared by all units, so within a layer only γ ranks weights), else |w|.
 *
 * @example
 * ```ts ignore
 * const probe = await Probe.fromRun("runs/x", { evalSamples: 500, seed: 0 });
 * const scores = await computeScores(probe, ["magnitude", "snip"], 0);
 * console.log(scores[0].get("snip")?.length); // nnz of the first weight layer
 * ```
 * @module
 */
import { type Gpu, roundUp4, type Tensor } from "../gpu/mod.ts";
import { entryScores, mapElements, SCORE_IDS } from "../kernels/analysis.ts";
import { mseLoss, softmaxXent } from "../kernels/loss.ts";
import { matmul } from "../kernels/matmul.ts";
import { sddmm, spmm, spmmT } from "../kernels/sparse.ts";
import { rowSumSq } from "../kernels/analysis.ts";
import { deriveSeed } from "../data/random.ts";
import { Tape } from "../nn/tape.ts";
import type { Act } from "../nn/act.ts";
import { analysisOf, type FlowPath } from "../nn/analyzable.ts";
import { convFisher } from "../kernels/ablation_conv.ts";
import type { Probe, ProbeLayer } from "./probe.ts";
import type { ScoreName } from "./summary.ts";
import { exactHessianDiagonal, hessianCost } from "./hessian.ts";

/** Per weight layer, each requested score in the layer's value order. */
export type LayerScores = Map<ScoreName, Float32Array>;

/** Scores computed by the shader's `entry_scores`; the others are computed on the CPU here. */
const GPU_SCORES = new Set<string>(Object.keys(SCORE_IDS));

/** Most floating-point operations spent on the exact Hessian diagonal (CPU) per evaluation set. */
export const HESSIAN_MAX_FLOP = 2e10;

/**
 * Per-unit scale of the normalization directly after a weight layer, for effective magnitude:
 * batch norm `|γ_j|/√(running_var_j + ε)`, layer norm `|γ_j|`, none: null (the layer's
 * `unitScale`, nn/analyzable.ts). A convolution's norm acts per (channel, position): the scale
 * of channel j is the mean over its P positions.
 */
export async function normScale(probe: Probe, pl: ProbeLayer): Promise<Float64Array | null> {
  // An LSTM's gate rows feed no normalization directly (its output h is a gated mix).
  if (pl.kind === "lstm") return null;
  const next = analysisOf(probe.model.layers[pl.index + 1] ?? { name: "", params: [] });
  if (!next.unitScale) return null;
  const u = await next.unitScale();
  const P = pl.positions;
  if (P === 1) return u.slice(0, pl.nOut);
  return Float64Array.from({ length: pl.nOut }, (_, j) => {
    let a = 0;
    for (let p = 0; p < P; p++) a += u[j * P + p];
    return a / P;
  });
}

/** Why the exact Hessian diagonal cannot be computed for this probe (null: it can). */
export function hessianUnsupported(probe: Probe): string | null {
  if (probe.cfg.loss !== "xent") {
    return `loss "${probe.cfg.loss}" (only cross-entropy is supported)`;
  }
  const shared = probe.layers.find((l) => l.kind !== "linear");
  if (shared) {
    return `${shared.name} is a ${shared.kind} layer (the exact diagonal covers fully-connected layers)`;
  }
  const wl = new Set(probe.layers.map((l) => l.index));
  for (const L of probe.model.layers) {
    if (wl.has(probe.model.layers.indexOf(L)) || analysisOf(L).evalIdentity) continue;
    return `layer ${L.constructor.name} between weight layers (only fused activations and dropout are supported)`;
  }
  const cost = hessianCost(
    probe.layers.map((pl) => ({ ...hLayer(pl) })),
    probe.samples,
  );
  if (cost > HESSIAN_MAX_FLOP) {
    return `would take ${(cost / 1e9).toFixed(0)} GFLOP on the CPU (limit ${
      HESSIAN_MAX_FLOP / 1e9
    })`;
  }
  return null;
}

function hLayer(pl: ProbeLayer) {
  return {
    nIn: pl.nIn,
    nOut: pl.nOut,
    values: pl.values,
    ends: pl.ends,
    act: pl.view.act,
    actParam: pl.view.actParam,
  };
}

function valueTensor(pl: ProbeLayer): Tensor {
  return pl.view.values;
}

function gradTensor(pl: ProbeLayer): Tensor {
  return pl.view.grad;
}

/** Records forward + loss + backward over the evaluation set in evaluation mode. */
function recordGradient(probe: Probe, rec: ReturnType<Gpu["recorder"]>, tape: Tape, bufs: {
  loss: Tensor;
  dlogits: Tensor;
}): void {
  tape.reset();
  const logits = probe.model.forward({ rec, tape, evalMode: true }, probe.x);
  const S = probe.samples;
  const dl = tape.gradFor(logits, (): Act => ({ t: bufs.dlogits, rows: logits.rows, batch: S }));
  if (probe.cfg.loss === "xent") {
    softmaxXent(rec, {
      logits: logits.t,
      labels: probe.labels,
      loss: bufs.loss,
      dlogits: dl.t,
      classes: logits.rows,
      batch: S,
    });
  } else {
    mseLoss(rec, {
      pred: logits.t,
      labels: probe.labels,
      loss: bufs.loss,
      dpred: dl.t,
      classes: logits.rows,
      batch: S,
      outputActivation: probe.cfg.outputActivation,
    });
  }
  tape.backward();
}

function norm2(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

/** Computes the requested scores for every weight layer of the probe (value order). */
export async function computeScores(
  probe: Probe,
  names: readonly ScoreName[],
  seed: number,
  /**
   * When given, receives the gradient and H·g per layer (value order), for tests and reports,
   * the Fisher diagonal and exact Hessian diagonal where computed, and the scores left out with
   * the reason.
   */
  raw?: {
    grad: Float32Array[];
    hg: Float32Array[];
    fisher?: Float64Array[];
    hessian?: Float64Array[];
    skipped?: Partial<Record<ScoreName, string>>;
  },
): Promise<LayerScores[]> {
  const gpu = probe.gpu;
  /** Reads f32 tensors concurrently: they share Deno's ~11 ms read latency. */
  const readAll = (xs: (Tensor | null | undefined)[]) =>
    Promise.all(xs.map((x) => x ? gpu.read(x) as Promise<Float32Array> : new Float32Array(0)));
  await probe.refreshCache();
  const S = probe.samples, ld = roundUp4(S);
  const layers = probe.layers;
  const want = new Set(names);
  const needGrad = ["snip", "taylor", "obd", "grasp", "signed1", "signed2", "signed2h"].some((s) =>
    want.has(s as ScoreName)
  );
  // Every scratch tensor goes back to the device's pool at the end (library callers may score
  // many models in one process).
  const owned: Tensor[] = [];
  const keep = <T extends Tensor>(x: T): T => (owned.push(x), x);
  const t = (shape: number[], label: string, zero = false) =>
    keep(gpu.tensor("f32", shape, { label, zero }));
  const classes = probe.model.layers.at(-1)!.outFeatures;
  const bufs = { loss: t([Math.max(4, S)], "score loss"), dlogits: t([classes, ld], "dlogits") };
  const tape = new Tape();
  const g = layers.map((pl) => t([pl.nnz], `${pl.name} grad`));
  const fisher = layers.map((pl) => t([pl.nnz], `${pl.name} fisher`));
  const hg = layers.map((pl) => t([pl.nnz], `${pl.name} hg`, true));
  const rowSq = layers.map((pl) => t([pl.nIn], `${pl.name} row sumsq`));
  // Convolutions: the squared norms of the im2col rows per position, summed over P below.
  const rowSqP = layers.map((pl) =>
    pl.positions > 1 ? t([pl.nIn * pl.positions], `${pl.name} row sumsq per position`) : null
  );
  const scratch: Tensor[] = [];
  const ends = layers.map((pl) =>
    keep(gpu.tensor("u32", [2 * pl.nnz], { data: pl.ends, label: `${pl.name} ends` }))
  );

  // Gradient, Fisher and activation norms from one evaluation-mode backward pass.
  {
    const rec = gpu.recorder("scores: gradient");
    if (needGrad) recordGradient(probe, rec, tape, bufs);
    layers.forEach((pl, w) => {
      const P = pl.positions;
      if (P > 1) {
        rowSumSq(rec, { x: probe.cachedCols[w], out: rowSqP[w]!, rows: pl.nIn * P, batch: S });
      } else rowSumSq(rec, { x: probe.cachedX[w], out: rowSq[w], rows: pl.nIn, batch: S });
      if (!needGrad) return;
      rec.copy(gradTensor(pl), g[w], pl.nnz);
      const lb = pl.view.gradFactors();
      if (!lb) throw new Error(`${pl.name}: no gradient factors after the backward pass`);
      if (P > 1) {
        // A shared weight's per-sample gradient sums over positions before it is squared.
        scratch.push(
          ...convFisher(rec, {
            cols: lb.x.t,
            dz: lb.dz.t,
            ends: ends[w],
            entries: pl.nnz,
            positions: P,
            samples: S,
            fisher: fisher[w],
          }),
        );
        return;
      }
      const xs = probe.cache.get(`sq x ${w}`, pl.nIn, S),
        dzs = probe.cache.get(`sq dz ${w}`, pl.nOut, S);
      mapElements(rec, { src: lb.x.t, dst: xs.t, n: pl.nIn * ld, op: "square" });
      mapElements(rec, { src: lb.dz.t, dst: dzs.t, n: pl.nOut * ld, op: "square" });
      if (pl.view.csr) {
        sddmm(rec, { layer: pl.view.csr, x: xs.t, dy: dzs.t, dvalues: fisher[w], batch: S });
      } else {
        matmul(rec, {
          a: xs.t,
          b: dzs.t,
          c: fisher[w],
          m: pl.nIn,
          n: pl.nOut,
          k: ld,
          transB: true,
          lda: ld,
          ldb: ld,
        });
      }
    });
    rec.submit();
    scratch.forEach((x) => gpu.release(x));
    for (let w = 0; w < layers.length; w++) {
      const pl = layers[w], P = pl.positions;
      if (P === 1) continue;
      const per = await gpu.read(rowSqP[w]!) as Float32Array;
      gpu.write(
        rowSq[w],
        Float32Array.from({ length: pl.nIn }, (_, i) => {
          let a = 0;
          for (let p = 0; p < P; p++) a += per[i * P + p];
          return a;
        }),
      );
    }
  }

  // GraSP: H·g by central differences of the gradient along g.
  if (want.has("grasp")) {
    const gCpu = await Promise.all(g.map((x) => gpu.read(x) as Promise<Float32Array>));
    const wNorm = norm2(layers.flatMap((pl) => Array.from(pl.values)));
    const gNorm = norm2(gCpu.flatMap((x) => Array.from(x)));
    if (gNorm > 0) {
      const eps = (1e-3 * wNorm) / gNorm;
      const orig = layers.map((pl) =>
        gpu.tensor("f32", [pl.nnz], { data: pl.values, label: `${pl.name} w0` })
      );
      const gPlus = layers.map((pl) => t([pl.nnz], `${pl.name} g+`));
      for (const [sign, dst] of [[1, gPlus], [-1, null]] as const) {
        const rec = gpu.recorder("scores: grasp");
        layers.forEach((pl, w) =>
          mapElements(rec, {
            src: orig[w],
            g: g[w],
            alpha: sign * eps,
            dst: valueTensor(pl),
            n: pl.nnz,
            op: "axpy",
          })
        );
        recordGradient(probe, rec, tape, bufs);
        layers.forEach((pl, w) => {
          if (dst) rec.copy(gradTensor(pl), dst[w], pl.nnz);
          else {
            // hg = (g+ - g-) / (2 eps), in two maps through the fisher-free scratch `orig`.
            mapElements(rec, {
              src: gPlus[w],
              g: gradTensor(pl),
              alpha: -1,
              dst: hg[w],
              n: pl.nnz,
              op: "axpy",
            });
          }
        });
        rec.submit();
      }
      probe.restoreValues();
      const rec = gpu.recorder("scores: grasp scale");
      layers.forEach((pl, w) => {
        rec.clear(orig[w]);
        mapElements(rec, {
          src: orig[w],
          g: hg[w],
          alpha: 1 / (2 * eps),
          dst: gPlus[w],
          n: pl.nnz,
          op: "axpy",
        });
        rec.copy(gPlus[w], hg[w], pl.nnz);
      });
      rec.submit();
      orig.forEach((x) => gpu.release(x));
    }
  }

  // SynFlow: forward flow a_{l+1} = |W_l|ᵀ a_l from ones, backward r_l = |W_l| r_{l+1} from ones.
  const flowIn: Tensor[] = [], flowOut: Tensor[] = [];
  // Models with convolutions (or anything but a chain of fully-connected layers): SynFlow walks
  // the layers' flow paths on the CPU in float64 (nn/analyzable.ts FlowPath).
  const skipped: Partial<Record<ScoreName, string>> = {};
  const noFlow = probe.model.layers.find((l) => !analysisOf(l).flow);
  if (want.has("synflow") && noFlow) {
    skipped.synflow = `layer ${noFlow.name} has no SynFlow path (an LSTM's gates multiply flows)`;
  }
  const cpuSynflow = want.has("synflow") && !noFlow && layers.some((pl) => pl.kind !== "linear")
    ? synflowOnCpu(probe)
    : null;
  if (want.has("synflow") && !cpuSynflow && !noFlow) {
    const rec = gpu.recorder("scores: synflow");
    const abs = layers.map((pl) => {
      const a = t([pl.nnz], `${pl.name} |w|`);
      mapElements(rec, { src: valueTensor(pl), dst: a, n: pl.nnz, op: "abs" });
      return a;
    });
    const vec = (n: number, label: string, ones = false) => {
      const d = new Float32Array(n * 4);
      if (ones) { for (let i = 0; i < n; i++) d[4 * i] = 1; }
      return keep(gpu.tensor("f32", [n, 4], { data: d, label }));
    };
    const a: Tensor[] = [vec(layers[0].nIn, "flow a0", true)];
    layers.forEach((pl, w) => {
      const next = vec(pl.nOut, `flow a${w + 1}`);
      if (pl.view.csr) {
        spmm(rec, { layer: { ...pl.view.csr, values: abs[w] }, x: a[w], y: next, batch: 1 });
      } else {
        matmul(rec, {
          a: abs[w],
          b: a[w],
          c: next,
          m: pl.nOut,
          n: 4,
          k: pl.nIn,
          transA: true,
          ldb: 4,
          ldc: 4,
        });
      }
      a.push(next);
    });
    const r: Tensor[] = [];
    r[layers.length] = vec(layers.at(-1)!.nOut, "flow r", true);
    for (let w = layers.length - 1; w >= 0; w--) {
      const pl = layers[w];
      r[w] = vec(pl.nIn, `flow r${w}`);
      if (pl.view.csr) {
        spmmT(rec, {
          layer: { ...pl.view.csr, values: abs[w] },
          dy: r[w + 1],
          dx: r[w],
          batch: 1,
        });
      } else {
        matmul(rec, {
          a: abs[w],
          b: r[w + 1],
          c: r[w],
          m: pl.nIn,
          n: 4,
          k: pl.nOut,
          ldb: 4,
          ldc: 4,
        });
      }
    }
    rec.submit();
    const col0 = async (x: Tensor, n: number) => {
      const v = await gpu.read(x) as Float32Array;
      return keep(
        gpu.tensor("f32", [n], { data: Float32Array.from({ length: n }, (_, i) => v[4 * i]) }),
      );
    };
    // Concurrent reads share Deno's ~11 ms read latency.
    flowIn.push(...await Promise.all(layers.map((l, w) => col0(a[w], l.nIn))));
    flowOut.push(...await Promise.all(layers.map((l, w) => col0(r[w + 1], l.nOut))));
  }

  if (raw) {
    const [gs, hgs] = await Promise.all([readAll(g), readAll(hg)]);
    for (let w = 0; w < layers.length; w++) {
      raw.grad[w] = gs[w].slice(0, layers[w].nnz);
      raw.hg[w] = hgs[w].slice(0, layers[w].nnz);
    }
  }
  const out: LayerScores[] = layers.map(() => new Map());
  const res = layers.map((pl) => t([pl.nnz], `${pl.name} score`));
  if (cpuSynflow) cpuSynflow.forEach((sc, w) => out[w].set("synflow", Float32Array.from(sc)));
  for (
    const name of names.filter((n) =>
      GPU_SCORES.has(n) && !(n === "synflow" && (cpuSynflow || noFlow))
    )
  ) {
    const rec = gpu.recorder(`score ${name}`);
    layers.forEach((pl, w) =>
      entryScores(rec, {
        score: name as keyof typeof SCORE_IDS,
        n: pl.nnz,
        w: valueTensor(pl),
        grad: g[w],
        hg: hg[w],
        fisher: fisher[w],
        fisherScale: S,
        ends: ends[w],
        rowSq: rowSq[w],
        flowIn: flowIn[w],
        flowOut: flowOut[w],
        seed: deriveSeed(seed, 7000 + w) >>> 0,
        out: res[w],
      })
    );
    rec.submit();
    const vals = await readAll(res);
    for (let w = 0; w < layers.length; w++) out[w].set(name, vals[w].slice(0, layers[w].nnz));
  }

  // CPU scores: signed predictors and effective magnitude.
  const signed = (["signed1", "signed2", "signed2h"] as const).filter((n) => want.has(n));
  if (signed.length) {
    let hess: Float64Array[] | null = null;
    if (want.has("signed2h")) {
      const why = hessianUnsupported(probe);
      if (why) skipped.signed2h = why;
      else {
        const [xs, zs] = await Promise.all([
          readAll(probe.cachedX.slice(0, layers.length)),
          readAll(probe.cachedZ.slice(0, layers.length)),
        ]);
        hess = exactHessianDiagonal({
          layers: layers.map(hLayer),
          x: xs,
          z: zs,
          labels: await gpu.read(probe.labels) as Uint32Array,
          samples: S,
          ld,
        });
        if (raw) raw.hessian = hess;
      }
    }
    const fis: Float64Array[] = [];
    const [gAll, fAll] = await Promise.all([readAll(g), readAll(fisher)]);
    for (let w = 0; w < layers.length; w++) {
      const pl = layers[w], v = pl.values;
      const gw = gAll[w], fw = fAll[w];
      const F = Float64Array.from({ length: pl.nnz }, (_, e) => fw[e] * S);
      fis.push(F);
      const first = Float64Array.from({ length: pl.nnz }, (_, e) => -gw[e] * v[e]);
      if (want.has("signed1")) out[w].set("signed1", Float32Array.from(first));
      if (want.has("signed2")) {
        out[w].set("signed2", Float32Array.from(first, (f, e) => f + 0.5 * F[e] * v[e] * v[e]));
      }
      if (hess) {
        out[w].set(
          "signed2h",
          Float32Array.from(first, (f, e) => f + 0.5 * hess![w][e] * v[e] * v[e]),
        );
      }
    }
    if (raw) raw.fisher = fis;
  }
  if (want.has("effmag")) {
    for (let w = 0; w < layers.length; w++) {
      const pl = layers[w], scale = await normScale(probe, pl);
      out[w].set(
        "effmag",
        Float32Array.from(
          pl.values,
          (v, e) => Math.abs(v) * (scale ? scale[pl.ends[2 * e + 1]] : 1),
        ),
      );
    }
  }
  if (raw) raw.skipped = skipped;
  owned.forEach((x) => gpu.release(x));
  return out;
}

/**
 * SynFlow through every layer's flow path (float64, one all-ones sample): the forward flow from
 * ones, the backward flow from ones at the output, and per weight `|w|·∂R/∂|w|`. Activations,
 * normalization and dropout are the identity on this path; max pooling passes the window
 * maximum and routes back to it; a convolution's weight sums over its positions.
 */
export function synflowOnCpu(probe: Probe): Float64Array[] {
  const byIndex = new Map(probe.layers.map((pl, w) => [pl.index, w]));
  const paths: FlowPath[] = [];
  const inputs: Float64Array[] = [];
  let a: Float64Array = new Float64Array(probe.x.rows).fill(1);
  for (let i = 0; i < probe.model.layers.length; i++) {
    const L = analysisOf(probe.model.layers[i]);
    const w = byIndex.get(i);
    if (!L.flow) throw new Error(`layer ${L.name} has no SynFlow path`);
    const path = w !== undefined
      ? L.flow({
        abs: probe.layers[w].values.map(Math.abs),
        ends: probe.layers[w].ends,
      })
      : L.flow();
    paths.push(path);
    inputs.push(a);
    a = path.forward(a);
  }
  const scores: Float64Array[] = [];
  let r: Float64Array = new Float64Array(a.length).fill(1);
  for (let i = probe.model.layers.length - 1; i >= 0; i--) {
    const w = byIndex.get(i);
    if (w !== undefined) scores[w] = paths[i].score!(inputs[i], r);
    r = paths[i].backward(r);
  }
  return scores;
}
