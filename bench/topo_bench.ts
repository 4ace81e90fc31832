// Topology primitives: radix select (+ exactly-k mask), exclusive scan, (row, col) -> CSR sort.
// GB/s counts the bytes the kernels read and write (select: 4 histogram passes over the data;
// mask: 2 more reads + the mask write; scan: 2 reads + 1 write). The sort cases report
// entries per second in the GFLOP/s column: flops = 1000·nnz, so "GFLOP/s" reads as
// M entries/s (the harness has no item-rate column).
import { markSelected, radixSelect, SELECT_RESULT_WORDS } from "../src/kernels/select.ts";
import { exclusiveScan } from "../src/kernels/scan.ts";
import { sortToCsr } from "../src/kernels/sort.ts";
import { Rng } from "../src/testing/mod.ts";
import { kernelBench } from "./_harness.ts";

const rng = new Rng(20261124);

function weights(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng.next() - 0.5) * 0.1;
  return a;
}

for (const [label, n] of [["1M", 1 << 20], ["16M", 1 << 24]] as const) {
  kernelBench({
    group: "topo",
    name: `select abs ${label} (k = n/5)`,
    bytes: 4 * 4 * n,
    setup(gpu) {
      const data = gpu.tensor("f32", [n], { data: weights(n) });
      const result = gpu.tensor("u32", [SELECT_RESULT_WORDS]);
      return (rec) => radixSelect(rec, { data, n, k: Math.floor(n / 5), mode: "abs", result });
    },
  });
  kernelBench({
    group: "topo",
    name: `select+mask positive ${label} (k = n/10)`,
    bytes: (4 + 2) * 4 * n + 4 * n,
    setup(gpu) {
      const data = gpu.tensor("f32", [n], { data: weights(n) });
      const result = gpu.tensor("u32", [SELECT_RESULT_WORDS]);
      const mask = gpu.tensor("u32", [n]);
      return (rec) => {
        radixSelect(rec, { data, n, k: Math.floor(n / 10), mode: "positive", result });
        markSelected(rec, { data, n, mode: "positive", result, mask });
      };
    },
  });
}

{
  const n = 1 << 24;
  kernelBench({
    group: "topo",
    name: "scan u32 16M",
    bytes: 3 * 4 * n,
    setup(gpu) {
      const x = new Uint32Array(n);
      for (let i = 0; i < n; i++) x[i] = rng.int(16);
      const input = gpu.tensor("u32", [n], { data: x });
      const output = gpu.tensor("u32", [n + 1]);
      return (rec) => exclusiveScan(rec, { input, output, n, total: { tensor: output, index: n } });
    },
  });
}

for (const [nRows, nCols, density] of [[784, 1000, 0.1], [4096, 4096, 0.05]] as const) {
  const nnz = Math.round(nRows * nCols * density);
  kernelBench({
    group: "topo",
    name: `sort→CSR ${nRows}x${nCols} ${density * 100}% [M entries/s]`,
    flops: 1000 * nnz,
    setup(gpu) {
      const cells = new Set<number>();
      while (cells.size < nnz) cells.add(rng.int(nRows * nCols));
      const list = Uint32Array.from(cells);
      const rows = gpu.tensor("u32", [nnz], { data: list.map((x) => Math.floor(x / nCols)) });
      const cols = gpu.tensor("u32", [nnz], { data: list.map((x) => x % nCols) });
      const rowPtr = gpu.tensor("u32", [nRows + 1]);
      const colIdx = gpu.tensor("u32", [nnz]);
      const perm = gpu.tensor("u32", [nnz]);
      return (rec) => sortToCsr(rec, { rows, cols, nnz, nRows, nCols, rowPtr, colIdx, perm });
    },
  });
}
