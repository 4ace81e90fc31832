/**
 * `deno task bench:peers`: Filigree kernels against the same products computed by numpy /
 * scipy.sparse on this machine, in the same run. Filigree is timed with {@link measure} (GPU
 * timestamp queries, median of 3 passes); the peers by `python3 bench/peers.py` (wall clock,
 * median of 5–7 calls). Cases come in blocks (one per shape and family); peer and Filigree
 * alternate which goes first in each block so that load from other processes hits both alike.
 *
 * Options: `--quick` (fewer cases), `--json FILE` (write all rows as JSON; needs --allow-write),
 * `--blas-threads N` (OPENBLAS_NUM_THREADS for the peers; default: OpenBLAS's own choice).
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
  ms: number;
  gflops?: number;
  gbps?: number;
}

async function runPeers(cases: Record<string, unknown>[]): Promise<Map<string, PeerResult>> {
  const out = await pyRun(["bench/peers.py"], JSON.stringify(cases));
  const m = new Map<string, PeerResult>();
  for (const line of out.split("\n")) {
    if (line.trim()) {
      const r = JSON.parse(line) as PeerResult;
      m.set(r.case, r);
    }
  }
  return m;
}

let blasThreads: string | undefined;

async function pyRun(args: string[], stdin: string): Promise<string> {
  const cmd = new Deno.Command("python3", {
    args,
    env: blasThreads ? { OPENBLAS_NUM_THREADS: blasThreads } : {},
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  });
  const p = cmd.spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const o = await p.output();
  if (!o.success) throw new Error(`python3 ${args.join(" ")} exited with ${o.code}`);
  return new TextDecoder().decode(o.stdout);
}

function fmt(v: number, w = 9): string {
  const s = v >= 100 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
  return s.padStart(w);
}

async function main() {
  const args = Deno.args;
  const quick = args.includes("--quick");
  const ji = args.indexOf("--json");
  const jsonPath = ji >= 0 ? args[ji + 1] : undefined;
  if (ji >= 0 && !jsonPath) throw new Error("--json needs a file name");

  const bi = args.indexOf("--blas-threads");
  if (bi >= 0) blasThreads = args[bi + 1];
  const pyInfo = async () =>
    JSON.parse((await pyRun(["bench/peers.py", "--info"], "")).trim()).info as Record<
      string,
      string
    >;
  const info = await pyInfo();
  const gpu = await getGpu();
  const adapter = gpu.info.description || gpu.info.vendor || "unknown adapter";
  const header = {
    date: new Date().toISOString(),
    cpu: `${info.cpu} (${info.ncpu} logical CPUs)`,
    adapter,
    backend: gpu.backend,
    deno: Deno.version.deno,
    peers: `python ${info.python}, numpy ${info.numpy} (${info.blas}, ${info.blas_threads} ` +
      `threads), scipy ${info.scipy}`,
    loadStart: info.loadavg,
    loadEnd: "",
    command: `deno task bench:peers ${args.join(" ")}`.trim(),
  };
  console.log(`Filigree vs CPU peers, batch ${BATCH}${quick ? " (--quick)" : ""}`);
  console.log(`date     ${header.date}`);
  console.log(`cpu      ${header.cpu}`);
  console.log(`adapter  ${adapter} [backend ${gpu.backend}], Deno ${header.deno}`);
  console.log(`peers    ${header.peers}`);
  console.log(`load     ${header.loadStart} (1/5/15 min loadavg at start)`);
  console.log(
    "Filigree: GPU timestamp queries, median of 3 passes; peers: wall clock, median of 5-7 calls.\n",
  );

  const rows: PeerRow[] = [];
  const blocks = buildBlocks(quick);
  const head = `${"case".padEnd(36)} ${"unit".padEnd(8)} ${"Filigree ms".padStart(11)} ${
    "Filigree".padStart(9)
  } ${"peer ms".padStart(9)} ${"peer".padStart(9)} ${"F/peer".padStart(7)}  peer`;
  console.log(head);
  console.log("-".repeat(head.length + 8));
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
    let peers = new Map<string, PeerResult>();
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
      const p = peers.get(c.name);
      if (!p) throw new Error(`peers.py gave no result for ${c.name}`);
      const fms = fil.get(c.name)!;
      const unit = c.bytes !== undefined ? "GB/s" : "GFLOP/s";
      const work = c.bytes ?? c.flops ?? 0;
      const f = work / (fms * 1e6);
      const pv = (unit === "GB/s" ? p.gbps : p.gflops) ?? NaN;
      const peerLib = c.family === "spmm"
        ? "scipy X@W_csr"
        : c.family === "sddmm"
        ? "numpy gather+einsum"
        : c.family === "matmul"
        ? "numpy X@W"
        : "numpy maximum";
      const row: PeerRow = {
        family: c.family,
        name: c.name,
        unit,
        filigreeMs: fms,
        filigree: f,
        peerMs: p.ms,
        peer: pv,
        ratio: f / pv,
        peerLib,
      };
      rows.push(row);
      console.log(
        `${c.name.padEnd(36)} ${unit.padEnd(8)} ${fmt(fms, 11)} ${fmt(f)} ${fmt(p.ms)} ${fmt(pv)} ${
          fmt(row.ratio, 7)
        }  ${peerLib}`,
      );
    }
  }
  header.loadEnd = (await pyInfo()).loadavg;
  console.log(`\nload     ${header.loadEnd} (1/5/15 min loadavg at end)`);
  if (jsonPath) {
    Deno.writeTextFileSync(jsonPath, JSON.stringify({ ...header, rows }, null, 2) + "\n");
    console.log(`wrote ${jsonPath}`);
  }
  gpu.destroy();
}

if (import.meta.main) await main();
