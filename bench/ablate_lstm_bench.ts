/**
 * LSTM ablation throughput (`deno task bench:ablate-lstm`): the row-wise sequential-MNIST shape
 * (28 steps of 28 features, 128 hidden units, a 64-unit head, 10 classes) at 5 % density (SET's
 * uniform initial mask, He-initialized weights; the time does not depend on the values), on
 * `--eval-samples` synthetic samples (pixels in [0, 1), 30 % zeros), every ablation exact:
 *
 * - `engine`: src/analysis/ablation_lstm.ts, K ablated copies per batch (K from the 256 MB budget),
 *   `--ablations N` weights of `W_x` and `W_h` (half each), median of `--rounds` rounds;
 * - `naive`: zero the weight, the model's own full forward, restore (`ablateNaive`), timed on
 *   `--naive N` weights, median per ablation; its Δloss is compared with the engine's;
 * - peer (when `python3` imports numpy): bench/ablate_lstm_peer.py, the same batched algorithm
 *   in numpy float32 with dense weight matrices, 1 BLAS thread, on the same weights and samples;
 *   its Δloss is compared with the engine's.
 *
 * Prints rates, ratios, the recurrent SpMM GFLOP/s of the engine (`2·(T-1)·nnz(W_h)` per sample
 * and copy, the dominant term) and the load average before and after; writes
 * bench/ablate_lstm_results.json (atomically).
 *
 * Options: `--eval-samples N` (256), `--ablations N` (512), `--naive N` (16), `--rounds N` (3),
 * `--hidden N` (128), `--density D` (0.05), `--no-peer`, `--python PATH`, `--out FILE`.
 *
 * @example
 * ```sh
 * DENO_WEBGPU_BACKEND=gl deno task bench:ablate-lstm
 * ```
 * @module
 */
import { getGpu, roundUp4, type Tensor } from "../src/gpu/mod.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { buildLstm } from "../src/nn/lstm.ts";
import { type LstmAblation, LstmAblationEngine } from "../src/analysis/ablation_lstm.ts";
import type { CsrLayer } from "../src/sparse/csr.ts";
import { median } from "../src/analysis/stats.ts";
import { Rng } from "../src/testing/mod.ts";
import { modelSpecOf } from "../src/train/model_spec.ts";
import {
  benchFlags,
  cannotImport,
  loadavg,
  runPeerScript,
  withPeerDir,
  writeResults,
} from "./_ablate_harness.ts";

const { flag, has, requirePositive } = benchFlags("bench:ablate-lstm");
const S = Number(flag("eval-samples", "256"));
const nAbl = Number(flag("ablations", "512"));
const nNaive = Number(flag("naive", "16"));
const rounds = Number(flag("rounds", "3"));
const H = Number(flag("hidden", "128"));
const density = Number(flag("density", "0.05"));
const outFile = flag("out", "bench/ablate_lstm_results.json");
const python = flag("python", "python3");
const runPeer = !has("no-peer");
requirePositive([
  ["eval-samples", S],
  ["ablations", nAbl],
  ["naive", nNaive],
  ["rounds", rounds],
  ["hidden", H],
], { integer: true });
if (!(density > 0 && density <= 1)) {
  console.error(`bench:ablate-lstm: --density must be in (0, 1], got ${density}`);
  Deno.exit(2);
}
const T = 28, F = 28, C = 10;
const gpu = await getGpu();
const cfg = {
  ...parseTrainConfig({ model: "lstm", lstmHidden: H, method: "set", density, seed: 0 }),
  hidden: [64],
};
const model = buildLstm(gpu, modelSpecOf(cfg, { features: T * F, classes: C, shape: [T, F] }));
const rng = new Rng(1);
const ld = roundUp4(S);
const xHost = new Float32Array(T * F * ld);
for (let r = 0; r < T * F; r++) {
  for (let s = 0; s < S; s++) xHost[r * ld + s] = rng.next() < 0.3 ? 0 : rng.next();
}
const labelsHost = Uint32Array.from({ length: S }, () => rng.int(C));
const x = { t: gpu.tensor("f32", [T * F, ld], { data: xHost }), rows: T * F, batch: S };
const labels = gpu.tensor("u32", [S], { data: labelsHost });
const eng = await LstmAblationEngine.create(gpu, model, x, labels, { loss: "xent" });

const list: LstmAblation[] = Array.from(
  { length: nAbl },
  (_, k) =>
    k % 2 === 0
      ? { part: "wx", entry: (k * 7919) % eng.wx.nnz }
      : { part: "wh", entry: (k * 104729) % eng.wh.nnz },
);
const K = eng.batchSize(list.length + 1);
// Warm-up: compile every pipeline at the shapes below.
await eng.ablate(list.slice(0, Math.min(list.length, K)));
await eng.ablateNaive(list[0]);

const loadBefore = loadavg();
const engineSec: number[] = [];
let engineRes = await eng.ablate(list);
for (let r = 0; r < rounds; r++) {
  const t0 = performance.now();
  engineRes = await eng.ablate(list);
  engineSec.push((performance.now() - t0) / 1000);
}
const naiveMs: number[] = [];
let naiveDiff = 0;
for (let k = 0; k < nNaive; k++) {
  const i = (k * 31) % list.length;
  const t0 = performance.now();
  const n = await eng.ablateNaive(list[i]);
  naiveMs.push(performance.now() - t0);
  naiveDiff = Math.max(naiveDiff, Math.abs(n.dLoss - engineRes.dLoss[i]));
}
const loadAfter = loadavg();
const eSec = median(engineSec);
const perAblEngine = eSec / nAbl;
const perAblNaive = median(naiveMs) / 1000;
const flop = 2 * (T - 1) * eng.wh.nnz * S * nAbl;

// ---- numpy peer on the same weights and samples ----
interface PeerOut {
  numpy: string;
  threads: string;
  seconds: number;
  ablations: number;
  batch: number;
  baselineLoss: number;
  dLoss: number[];
}
async function denseOf(c: CsrLayer): Promise<Float32Array> {
  const [rowPtrT, colT, v] = await Promise.all([
    gpu.read(c.rowPtrT),
    gpu.read(c.colT),
    gpu.read(c.values),
  ]);
  const d = new Float32Array(c.nIn * c.nOut);
  for (let j = 0; j < c.nOut; j++) {
    for (let k = rowPtrT[j]; k < rowPtrT[j + 1]; k++) d[colT[k] * c.nOut + j] = v[k];
  }
  return d;
}
async function peer(): Promise<PeerOut | { skipped: string }> {
  const cannot = await cannotImport(python, "numpy");
  if (cannot) return { skipped: cannot };
  return await withPeerDir("ablate_lstm_peer_", undefined, async (d) => {
    const head: { name: string; nIn: number; nOut: number; act: string }[] = [];
    let nIn = H;
    for (const l of model.layers.slice(1)) {
      const L = l as unknown as {
        csr?: CsrLayer;
        weight?: Tensor;
        bias: Tensor;
        act: string;
        outFeatures: number;
      };
      const w = L.csr ? await denseOf(L.csr) : (await gpu.read(L.weight!) as Float32Array);
      const name = `head${head.length}`;
      await d.raw(`${name}.w`, w.slice(0, nIn * l.outFeatures));
      await d.raw(`${name}.b`, (await gpu.read(L.bias) as Float32Array).slice(0, l.outFeatures));
      head.push({ name, nIn, nOut: l.outFeatures, act: L.act });
      nIn = l.outFeatures;
    }
    const xs = new Float32Array(T * F * S);
    for (let r = 0; r < T * F; r++) xs.set(xHost.subarray(r * ld, r * ld + S), r * S);
    const files: [string, ArrayBufferView][] = [
      ["wx", await denseOf(eng.lstm.wx)],
      ["wh", await denseOf(eng.lstm.wh)],
      ["bias", eng.bias],
      ["x", xs],
      ["labels", labelsHost],
      [
        "abl",
        Int32Array.from(list.flatMap((a) => {
          const s = eng.spec(a);
          return [s.kind === "wx" ? 0 : 1, s.a!, s.b!];
        })),
      ],
    ];
    for (const [n, a] of files) await d.raw(n, a);
    await Deno.writeTextFile(
      `${d.dir}/meta.json`,
      JSON.stringify({ T, F, H, C, S, K, ablations: nAbl, head, rounds }),
    );
    return await runPeerScript<PeerOut>(python, "./ablate_lstm_peer.py", [d.dir], {
      OMP_NUM_THREADS: "1",
      OPENBLAS_NUM_THREADS: "1",
      MKL_NUM_THREADS: "1",
    });
  });
}
const peerRes = runPeer ? await peer() : { skipped: "--no-peer" };
const loadPeer = loadavg();

const adapter = gpu.report();
console.log(
  `LSTM ablation, T ${T}, F ${F}, H ${H}, head [64], ${C} classes, density ${density} ` +
    `(nnz W_x ${eng.wx.nnz}, W_h ${eng.wh.nnz}), ${S} samples; ${adapter.description ?? "?"}`,
);
console.log(`  load average before ${loadBefore}, after ${loadAfter}`);
console.log(
  `  engine: ${nAbl} ablations in ${
    eSec.toFixed(2)
  } s (median of ${rounds}; K ${K} copies/batch) = ` +
    `${(nAbl / eSec).toFixed(1)} ablations/s; recurrent SpMM ${
      (flop / eSec / 1e9).toFixed(2)
    } GFLOP/s`,
);
console.log(
  `  naive:  ${(perAblNaive * 1000).toFixed(1)} ms per ablation (median of ${nNaive}) = ` +
    `${(1 / perAblNaive).toFixed(1)} ablations/s; engine speed-up ${
      (perAblNaive / perAblEngine).toFixed(1)
    }x; max |ΔΔloss| ${naiveDiff.toExponential(2)}`,
);
let peerDiff: number | null = null;
if ("skipped" in peerRes) {
  console.log(`  numpy peer: skipped (${peerRes.skipped})`);
} else {
  peerDiff = 0;
  peerRes.dLoss.forEach((
    d,
    k,
  ) => (peerDiff = Math.max(peerDiff!, Math.abs(d - engineRes.dLoss[k]))));
  const per = peerRes.seconds / peerRes.ablations;
  console.log(
    `  numpy ${peerRes.numpy} peer (${peerRes.threads} BLAS thread, dense, batch ${peerRes.batch}, ` +
      `load after ${loadPeer}): ${peerRes.ablations} ablations in ${
        peerRes.seconds.toFixed(2)
      } s = ` +
      `${(1 / per).toFixed(1)} ablations/s; engine / peer time ${
        (perAblEngine / per).toFixed(2)
      }; max |ΔΔloss| ${peerDiff.toExponential(2)}`,
  );
}
await writeResults(
  outFile,
  {
    date: new Date().toISOString(),
    adapter: adapter.description,
    backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default",
    shape: { T, F, H, head: [64], classes: C, density, nnzWx: eng.wx.nnz, nnzWh: eng.wh.nnz },
    samples: S,
    loadBefore,
    loadAfter,
    engine: {
      ablations: nAbl,
      seconds: engineSec,
      median: eSec,
      batch: K,
      gflops: flop / eSec / 1e9,
    },
    naive: { timed: nNaive, msPerAblation: naiveMs, maxAbsDiff: naiveDiff },
    peer: "skipped" in peerRes
      ? peerRes
      : { ...peerRes, dLoss: undefined, maxAbsDiff: peerDiff, loadAfter: loadPeer },
  },
);
eng.destroy();
