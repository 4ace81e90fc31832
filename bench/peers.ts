/**
 * `deno task bench:peers`: Filigree kernels against the same products computed by numpy /
 * scipy.sparse and, when the peer Python imports torch, PyTorch (dense, `torch.sparse` CSR and
 * masked dense; 1 CPU thread) on this machine, in the same run. Filigree is timed with
 * {@link measure} (GPU timestamp queries, median of 3 passes); the peers by `bench/peers.py`
 * (wall clock, median of 5–7 calls; CUDA events with `--device cuda`). Cases come in blocks (one
 * per shape and family); peers and Filigree alternate which goes first in each block so that load
 * from other processes hits both alike. The Python is chosen by bench/_peer_python.ts (the first
 * of `--python`, $FILIGREE_PEER_PYTHON, /usr/bin/python3, python3 that imports torch); without
 * torch the PyTorch columns are skipped with one line.
 *
 * Options: `--quick` (fewer cases), `--json FILE` (write all rows as JSON; needs --allow-write),
 * `--blas-threads N` (OPENBLAS_NUM_THREADS for the peers; default: OpenBLAS's own choice),
 * `--python PATH`, `--libs numpy,torch` (which peers), `--device cpu|cuda` (PyTorch's device).
 *
 * @example
 * ```sh
 * deno run --allow-read --allow-env --allow-run --allow-write bench/peers.ts --quick --json peers.json
 * ```
 * @module
 */
import { getGpu, type Gpu, type Recorder, roundUp4, type Tensor } from "../src/gpu/mod.ts";
import { matmul } from "../src/kernels/matmul.ts";
import { sddmm, spmm } from "../src/kernels/sparse.ts";
import { activationForward } from "../src/kernels/activation.ts";
import { type CsrLayer, randomCsr, releaseCsr, uploadCsr } from "../src/sparse/csr.ts";
import { Rng } from "../src/testing/mod.ts";
import { measure } from "./_harness.ts";
import { findPeerPython } from "./_peer_python.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";

const BATCH = 128;
const LD = roundUp4(BATCH);

/** One product, timed on both sides. */
interface PeerCase {
  family: "matmul" | "spmm" | "sddmm" | "relu";
  name: string;
  /** The JSON object peers.py receives (its `name` must equal `name`). */
  peer: Record<string, unknown>;
  /** Filigree's work per call: flops (GFLOP/s) or bytes (GB/s). */
  flops?: number;
  bytes?: number;
  /** Builds inputs; returns the encoder and a cleanup. */
  setup: (gpu: Gpu) => { encode: (rec: Recorder) => void; free: () => void };
  /** Target pass length for {@link measure} (ms). */
  passMs?: number;
}

/** A measured row of the table. */
export interface PeerRow {
  family: string;
  name: string;
  unit: "GFLOP/s" | "GB/s";
  filigreeMs: number;
  filigree: number;
  peerMs: number;
  peer: number;
  /** Filigree throughput / peer throughput (> 1: Filigree is faster). */
  ratio: number;
  peerLib: string;
  /** Every peer implementation timed for this case (numpy/scipy and PyTorch). */
  peers: { impl: string; lib: string; ms: number; value: number; ratio: number }[];
}

function randTensor(gpu: Gpu, rows: number, cols: number, rng: Rng, label: string): Tensor {
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = rng.next() - 0.5;
  return gpu.tensor("f32", [rows, cols], { data, label });
}

/** Feature-major activation [rows][LD] with random values in the first BATCH columns. */
function randAct(gpu: Gpu, rows: number, rng: Rng, label: string): Tensor {
  const data = new Float32Array(rows * LD);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < BATCH; c++) data[r * LD + c] = rng.next() - 0.5;
  }
  return gpu.tensor("f32", [rows, LD], { data, label });
}

/** Returns the case's tensors to the pool so that the 4096² blocks do not pile up. */
function destroy(gpu: Gpu, ...ts: Tensor[]) {
  for (const t of ts) gpu.release(t);
}

function csr(gpu: Gpu, nIn: number, nOut: number, d: number): CsrLayer {
  const rng = new Rng(1234);
  return uploadCsr(gpu, randomCsr(nIn, nOut, d, rng, () => rng.next() - 0.5), `w${nIn}x${nOut}`);
}

function buildBlocks(quick: boolean): PeerCase[][] {
  const sizes: [number, number][] = quick ? [[784, 1000], [1000, 1000]] : [
    [784, 1000],
    [1000, 1000],
    [4096, 4096],
  ];
  const spmmD = quick ? [0.05, 0.2] : [0.01, 0.05, 0.1, 0.2];
  const sddmmD = [0.05, 0.2];
  const blocks: PeerCase[][] = [];
  for (const [nIn, nOut] of sizes) {
    const shape = `${nIn}x${nOut} b${BATCH}`;
    // Dense forward, TN as the layers call it: Y[out][ld] = Wᵀ·X, W [in][out], X [in][ld].
    blocks.push([{
      family: "matmul",
      name: `matmul fwd TN ${shape}`,
      peer: { kind: "gemm", m: BATCH, n: nOut, k: nIn },
      flops: 2 * nIn * nOut * BATCH,
      setup(gpu) {
        const rng = new Rng(7);
        const w = randTensor(gpu, nIn, nOut, rng, "w");
        const x = randAct(gpu, nIn, rng, "x");
        const y = gpu.tensor("f32", [nOut, LD], { label: "y" });
        return {
          encode: (rec) => matmul(rec, { a: w, b: x, c: y, m: nOut, n: LD, k: nIn, transA: true }),
          free: () => destroy(gpu, w, x, y),
        };
      },
    }]);
    const sp: PeerCase[] = [];
    for (const d of spmmD) {
      sp.push({
        family: "spmm",
        name: `spmm+bias+relu ${nIn}x${nOut} ${d * 100}% b${BATCH}`,
        peer: { kind: "spmm", nin: nIn, nout: nOut, density: d, batch: BATCH },
        flops: 0, // set from the layer's nnz in setup
        setup(gpu) {
          const layer = csr(gpu, nIn, nOut, d);
          this.flops = 2 * layer.nnz * BATCH;
          const rng = new Rng(8);
          const x = randAct(gpu, nIn, rng, "x");
          const y = gpu.tensor("f32", [nOut, LD], { label: "y" });
          const bias = randTensor(gpu, 1, nOut, rng, "bias");
          return {
            encode: (rec) => spmm(rec, { layer, x, y, bias, batch: BATCH, activation: "relu" }),
            free: () => {
              destroy(gpu, x, y, bias);
              releaseCsr(gpu, layer);
            },
          };
        },
      });
    }
    blocks.push(sp);
    const sd: PeerCase[] = [];
    for (const d of sddmmD) {
      sd.push({
        family: "sddmm",
        name: `sddmm dW ${nIn}x${nOut} ${d * 100}% b${BATCH}`,
        peer: { kind: "sddmm", nin: nIn, nout: nOut, density: d, batch: BATCH },
        flops: 0,
        setup(gpu) {
          const layer = csr(gpu, nIn, nOut, d);
          this.flops = 2 * layer.nnz * BATCH;
          const rng = new Rng(9);
          const x = randAct(gpu, nIn, rng, "x");
          const dy = randAct(gpu, nOut, rng, "dy");
          const dvalues = gpu.tensor("f32", [layer.nnz], { label: "dvalues" });
          return {
            encode: (rec) => sddmm(rec, { layer, x, dy, dvalues, batch: BATCH }),
            free: () => {
              destroy(gpu, x, dy, dvalues);
              releaseCsr(gpu, layer);
            },
          };
        },
      });
    }
    blocks.push(sd);
  }
  const relu: PeerCase[] = [];
  for (const rows of quick ? [8192] : [8192, 131072]) {
    const n = rows * LD; // 1M and 16M floats
    relu.push({
      family: "relu",
      name: `relu fwd ${n / 2 ** 20}M floats`,
      peer: { kind: "relu", n },
      bytes: 8 * n,
      setup(gpu) {
        const rng = new Rng(10);
        const z = randAct(gpu, rows, rng, "z");
        const y = gpu.tensor("f32", [rows, LD], { label: "y" });
        return {
          encode: (rec) => activationForward(rec, { z, y, rows, batch: BATCH, activation: "relu" }),
          free: () => destroy(gpu, z, y),
        };
      },
    });
  }
  blocks.push(relu);
  for (const b of blocks) for (const c of b) c.peer.name = c.name;
  return blocks;
}

interface PeerResult {
  case: string;
  impl: string;
  lib: "numpy" | "torch";
  ms: number;
  gflops?: number;
  gbps?: number;
}

/** Options of one run (from the command line). */
interface RunOptions {
  python: string;
  libs: string[];
  device: string;
  blasThreads?: string;
}
let opts: RunOptions = { python: "python3", libs: ["numpy"], device: "cpu" };

async function runPeers(cases: Record<string, unknown>[]): Promise<PeerResult[]> {
  const out = await pyRun(
    ["bench/peers.py", "--libs", opts.libs.join(","), "--device", opts.device],
    JSON.stringify(cases),
  );
  return out.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as PeerResult);
}

async function pyRun(args: string[], stdin: string): Promise<string> {
  const cmd = new Deno.Command(opts.python, {
    args,
    env: opts.blasThreads ? { OPENBLAS_NUM_THREADS: opts.blasThreads } : {},
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  });
  const p = cmd.spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const o = await p.output();
  if (!o.success) throw new Error(`${opts.python} ${args.join(" ")} exited with ${o.code}`);
  return new TextDecoder().decode(o.stdout);
}

function fmt(v: number, w = 9): string {
  if (!Number.isFinite(v)) return "-".padStart(w);
  const s = v >= 100 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
  return s.padStart(w);
}

function fail(msg: string): never {
  console.error(`bench:peers: ${msg}`);
  Deno.exit(2);
}

async function main() {
  const args = Deno.args;
  const flag = (name: string) => {
    const i = args.indexOf(`--${name}`);
    if (i < 0) return undefined;
    if (i + 1 >= args.length || args[i + 1].startsWith("--")) fail(`--${name} needs a value`);
    return args[i + 1];
  };
  const quick = args.includes("--quick");
  const jsonPath = flag("json");
  const py = await findPeerPython(flag("python"));
  if (!py.python) fail(py.line);
  const libs = (flag("libs") ?? "numpy,torch").split(",").filter((l) => {
    if (l !== "numpy" && l !== "torch") fail(`--libs: unknown peer library "${l}" (numpy, torch)`);
    return l !== "torch" || py.torch !== undefined;
  });
  const device = flag("device") ?? "cpu";
  if (device !== "cpu" && device !== "cuda") fail(`--device must be cpu or cuda, got ${device}`);
  opts = { python: py.python, libs, device, blasThreads: flag("blas-threads") };
  if (libs.length === 0) fail("no peer library left to run (torch absent and --libs torch)");
  const pyInfo = async () =>
    JSON.parse((await pyRun(["bench/peers.py", "--info", "--device", device], "")).trim())
      .info as Record<string, string>;
  const info = await pyInfo();
  const gpu = await getGpu();
  const adapter = gpu.info.description || gpu.info.vendor || "unknown adapter";
  const torchLine = info.torch && libs.includes("torch")
    ? `PyTorch ${info.torch} ${
      device === "cuda" ? `CUDA (${info.torch_device ?? "?"})` : "CPU"
    }, ${info.torch_threads} CPU thread(s)`
    : `PyTorch peers skipped: ${py.torchSkipped ?? "not asked for (--libs)"}`;
  const header = {
    date: new Date().toISOString(),
    cpu: `${info.cpu} (${info.ncpu} logical CPUs)`,
    adapter,
    backend: gpu.backend,
    deno: Deno.version.deno,
    python: opts.python,
    peers: `python ${info.python}, numpy ${info.numpy} (${info.blas}, ${info.blas_threads} ` +
      `threads), scipy ${info.scipy}`,
    torch: info.torch && libs.includes("torch") ? info.torch : null,
    torchThreads: info.torch && libs.includes("torch") ? Number(info.torch_threads) : null,
    torchDevice: device === "cuda" ? info.torch_device ?? null : "cpu",
    torchLine,
    loadStart: info.loadavg,
    loadEnd: "",
    command: `deno task bench:peers ${args.join(" ")}`.trim(),
  };
  console.log(`Filigree vs peers, batch ${BATCH}${quick ? " (--quick)" : ""}`);
  console.log(`date     ${header.date}`);
  console.log(`cpu      ${header.cpu}`);
  console.log(`adapter  ${adapter} [backend ${gpu.backend}], Deno ${header.deno}`);
  console.log(`peers    ${opts.python}: ${header.peers}`);
  console.log(`torch    ${torchLine}`);
  console.log(`load     ${header.loadStart} (1/5/15 min loadavg at start)`);
  console.log(
    "Filigree: GPU timestamp queries, median of 3 passes; peers: wall clock, median of 5-7 calls" +
      (device === "cuda" ? " (torch: CUDA events, median of 20 x 10 calls)" : "") + ".",
  );
  console.log(
    "F/x = Filigree's throughput / the peer's (> 1: Filigree faster). torch: X@W (matmul), " +
      "CSR Wᵀ·X + bias, ReLU (spmm), dense X·dYᵀ picked at the nonzeros (sddmm), clamp_min " +
      "(relu); 'dense' = torch masked dense X·(W⊙M) + bias, ReLU (spmm rows, useful flops only).\n",
  );

  const rows: PeerRow[] = [];
  const blocks = buildBlocks(quick);
  const head = `${"case".padEnd(36)} ${"unit".padEnd(8)} ${"Fil ms".padStart(8)} ${
    "Filigree".padStart(8)
  } ${"np/sp".padStart(8)} ${"F/np".padStart(6)} ${"torch".padStart(8)} ${"F/torch".padStart(7)} ${
    "dense".padStart(8)
  } ${"F/dense".padStart(7)}`;
  console.log(head);
  console.log("-".repeat(head.length));
  for (let bi = 0; bi < blocks.length; bi++) {
    const block = blocks[bi];
    const fil = new Map<string, number>();
    const doFiligree = async () => {
      for (const c of block) {
        const { encode, free } = c.setup(gpu);
        fil.set(c.name, (await measure(gpu, encode, c.passMs ?? 60)).ms);
        free();
      }
    };
    let peers: PeerResult[] = [];
    const doPeers = async () => {
      peers = await runPeers(block.map((c) => c.peer));
    };
    if (bi % 2 === 0) {
      await doPeers();
      await doFiligree();
    } else {
      await doFiligree();
      await doPeers();
    }
    for (const c of block) {
      const mine = peers.filter((p) => p.case === c.name);
      if (mine.length === 0) throw new Error(`peers.py gave no result for ${c.name}`);
      const fms = fil.get(c.name)!;
      const unit = c.bytes !== undefined ? "GB/s" : "GFLOP/s";
      const work = c.bytes ?? c.flops ?? 0;
      const f = work / (fms * 1e6);
      const val = (p?: PeerResult) => p ? ((unit === "GB/s" ? p.gbps : p.gflops) ?? NaN) : NaN;
      const np = mine.find((p) => p.lib === "numpy");
      const tp = mine.find((p) => p.lib === "torch" && p.impl !== "torch masked dense");
      const td = mine.find((p) => p.impl === "torch masked dense");
      const row: PeerRow = {
        family: c.family,
        name: c.name,
        unit,
        filigreeMs: fms,
        filigree: f,
        peerMs: np?.ms ?? NaN,
        peer: val(np),
        ratio: f / val(np),
        peerLib: np?.impl ?? "",
        peers: mine.map((p) => ({
          impl: p.impl,
          lib: p.lib,
          ms: p.ms,
          value: val(p),
          ratio: f / val(p),
        })),
      };
      rows.push(row);
      console.log(
        `${c.name.padEnd(36)} ${unit.padEnd(8)} ${fmt(fms, 8)} ${fmt(f, 8)} ${fmt(val(np), 8)} ${
          fmt(f / val(np), 6)
        } ${fmt(val(tp), 8)} ${fmt(f / val(tp), 7)} ${fmt(val(td), 8)} ${fmt(f / val(td), 7)}`,
      );
    }
  }
  header.loadEnd = (await pyInfo()).loadavg;
  console.log(`\nload     ${header.loadEnd} (1/5/15 min loadavg at end)`);
  if (jsonPath) {
    await writeFileAtomic(jsonPath, JSON.stringify({ ...header, rows }, null, 2) + "\n");
    console.log(`wrote ${jsonPath}`);
  }
  gpu.destroy();
}

if (import.meta.main) await main();
