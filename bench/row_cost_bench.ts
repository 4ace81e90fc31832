/**
 * What a row of the row kernels costs on this adapter (`spmm_wide`, `wgrad_t`, `grad_t`:
 * shaders/sparse.wgsl), GPU timestamps, batch 128, interleaved rounds in one process:
 *
 * - spmm over 1000x1000 layers whose rows all hold k = 0, 1, 2, 5, 10, 20 nonzeros: a
 *   least-squares line through the times splits them into a cost per row (storing its 32 output
 *   quads, whatever its nonzeros) and a cost per nonzero (32 texel fetches);
 * - the row order (`ROW_ORDER`, src/kernels/row_order.ts) over all rows, in blocks of 16-256 rows
 *   (`ROW_ORDER_SCOPE`) and off, for the three kernels, on
 *   uniformly random layers (1000x1000 at 1 % and 4 %, 784x300 at 10 %) and on a skewed one (one
 *   row of 64 nonzeros in every 8, the others empty).
 *
 * Prints ms per call (median of ROUNDS) and the load average before and after.
 *
 * @example
 * ```sh
 * deno task bench:rows
 * ```
 * @module
 */
import { getGpu, type Recorder, roundUp4 } from "../src/gpu/mod.ts";
import {
  adapterClass,
  ROW_ORDER,
  sddmm,
  SDDMM_VARIANTS,
  sparseBackward,
  spmm,
  SPMM_VARIANTS,
} from "../src/kernels/sparse.ts";
import { csrFromCoo, type CsrHost, randomCsr, uploadCsr } from "../src/sparse/csr.ts";
import { Rng } from "../src/testing/mod.ts";
import { median } from "../src/analysis/stats.ts";
import { ROW_ORDER_SCOPE } from "../src/kernels/row_order.ts";

const B = 128;
const ROUNDS = Number(Deno.env.get("FILIGREE_BENCH_ROUNDS") ?? 7);
const loadavg = () => Deno.loadavg().map((v) => v.toFixed(2)).join(" ");

const gpu = await getGpu();
const cls = adapterClass(gpu);
const rng = new Rng(2026);
const load0 = loadavg();

/** Times each encoder in interleaved rounds (after a warm-up); median ms per call. */
async function interleaved(encs: ((rec: Recorder) => void)[]): Promise<number[]> {
  for (const e of encs) await gpu.timeMs(e, 2);
  const reps = encs.map(() => 20);
  const ts = encs.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < encs.length; i++) ts[i].push(await gpu.timeMs(encs[i], reps[i]));
  }
  return ts.map(median);
}

const act = (rows: number) => {
  const ld = roundUp4(B);
  return gpu.tensor("f32", [rows, ld], {
    data: Float32Array.from({ length: rows * ld }, () => rng.next() - 0.5),
  });
};

// ---- cost per row and per nonzero
const n = 1000;
const x = act(n);
const y = gpu.tensor("f32", [n, roundUp4(B)]);
const bias = gpu.tensor("f32", [n], { zero: true });
const K = [0, 1, 2, 5, 10, 20];
const equalRows = K.map((k) => {
  const rows: number[] = [], cols: number[] = [];
  for (let j = 0; j < n; j++) {
    const s = new Set<number>();
    while (s.size < k) s.add(rng.int(n));
    for (const i of s) (rows.push(i), cols.push(j));
  }
  return uploadCsr(gpu, csrFromCoo(n, n, rows, cols, rows.map(() => rng.next() - 0.5)));
});
const tRows = await interleaved(
  equalRows.map((layer) => (rec: Recorder) =>
    spmm(rec, { layer, x, y, bias, batch: B, activation: "relu", tune: SPMM_VARIANTS.wide })
  ),
);
const mk = K.reduce((a, b) => a + b, 0) / K.length;
const mt = tRows.reduce((a, b) => a + b, 0) / K.length;
const slope = K.reduce((a, k, i) => a + (k - mk) * (tRows[i] - mt), 0) /
  K.reduce((a, k) => a + (k - mk) ** 2, 0);
const out: string[] = [];
out.push(
  `spmm_wide at ${n}x${n}, batch ${B}, every row with k nonzeros (${gpu.backend}, ` +
    `${gpu.info.description || gpu.info.vendor}):`,
);
out.push("  " + K.map((k, i) => `k ${k}: ${tRows[i].toFixed(3)} ms`).join(", "));
out.push(
  `  fit: ${(mt - slope * mk).toFixed(3)} ms for the ${n} rows' stores and setup, ` +
    `${(slope * 1000).toFixed(1)} µs per nonzero a row (${n} rows x 32 quad fetches): ` +
    `${(n * B / 4 / (slope / 1000) / 1e9).toFixed(2)} G texels/s`,
);

// ---- row order on and off
function skewed(): CsrHost {
  const rows: number[] = [], cols: number[] = [];
  for (let j = 0; j < n; j++) {
    if (j % 8 !== 3) continue;
    for (let i = 0; i < 64; i++) (rows.push((i * 7 + j) % n), cols.push(j));
  }
  return csrFromCoo(n, n, rows, cols, rows.map(() => rng.next() - 0.5));
}
function transposed(h: CsrHost): CsrHost {
  const rows: number[] = [], cols: number[] = [], vals: number[] = [];
  for (let j = 0; j < h.nOut; j++) {
    for (let k = h.rowPtrT[j]; k < h.rowPtrT[j + 1]; k++) {
      rows.push(j), cols.push(h.colT[k]), vals.push(h.values[k]);
    }
  }
  return csrFromCoo(h.nOut, h.nIn, rows, cols, vals);
}
const cases: [string, CsrHost][] = [
  ["1000x1000 1 %", randomCsr(1000, 1000, 0.01, rng, () => rng.next() - 0.5)],
  ["1000x1000 4 %", randomCsr(1000, 1000, 0.04, rng, () => rng.next() - 0.5)],
  ["784x300 10 %", randomCsr(784, 300, 0.1, rng, () => rng.next() - 0.5)],
  ["skewed rows of Wᵀ (one of 64 in 8)", skewed()],
  ["skewed rows of W (the same, transposed)", transposed(skewed())],
];
const saved = ROW_ORDER[cls];
out.push(
  `row order (${cls}: ${saved ? `on, blocks of ${ROW_ORDER_SCOPE.block || "all"}` : "off"} by ` +
    `default), ms per call: rows sorted over all rows / in blocks of 16 / 32 / 64 / 128 / 256 / ` +
    `in index order:`,
);
for (const [name, h] of cases) {
  const layer = uploadCsr(gpu, h);
  const xi = act(h.nIn), dy = act(h.nOut), yo = gpu.tensor("f32", [h.nOut, roundUp4(B)]);
  const dx = gpu.tensor("f32", [h.nIn, roundUp4(B)]), dv = gpu.tensor("f32", [Math.max(1, h.nnz)]);
  const ops: [string, (rec: Recorder) => void][] = [
    [
      "spmm",
      (rec) =>
        spmm(rec, { layer, x: xi, y: yo, batch: B, activation: "relu", tune: SPMM_VARIANTS.wide }),
    ],
    [
      "wgrad_t",
      (rec) => sddmm(rec, { layer, x: xi, dy, dvalues: dv, batch: B, tune: SDDMM_VARIANTS.wide }),
    ],
    [
      "grad_t",
      (rec) => sparseBackward(rec, { layer, x: xi, dy, dx, dvalues: dv, batch: B, path: "fused" }),
    ],
  ];
  const cells: string[] = [];
  for (const [op, enc] of ops) {
    const scoped = (b: number) =>
    (
      rec: Recorder,
    ) => (ROW_ORDER[cls] = true, ROW_ORDER_SCOPE.block = b, enc(rec));
    const off = (rec: Recorder) => (ROW_ORDER[cls] = false, enc(rec));
    const savedScope = ROW_ORDER_SCOPE.block;
    const t = await interleaved([...[0, 16, 32, 64, 128, 256].map(scoped), off]);
    ROW_ORDER_SCOPE.block = savedScope;
    cells.push(`${op} ${t.map((v) => v.toFixed(3)).join(" / ")}`);
  }
  ROW_ORDER[cls] = saved;
  out.push(`  ${name}: ${cells.join("; ")}`);
}
console.log(out.join("\n"));
console.log(`load average before ${load0}, after ${loadavg()}`);
