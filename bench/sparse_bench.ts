// Sparse kernels at batch 128: forward SpMM (fused bias + ReLU), backward data SpMMᵀ (fused
// ReLU'), and SDDMM weight gradient, on uniformly random masks. flops = 2·nnz·batch per call.
import { type Gpu, roundUp4 } from "../src/gpu/mod.ts";
import { sddmm, spmm, spmmT } from "../src/kernels/sparse.ts";
import { type CsrHost, type CsrLayer, randomCsr, uploadCsr } from "../src/sparse/csr.ts";
import { Rng } from "../src/testing/mod.ts";
import { kernelBench } from "./_harness.ts";

const BATCH = 128;
const SIZES: [number, number][] = [[784, 1000], [1000, 1000], [4096, 4096]];
const DENSITIES = [0.01, 0.05, 0.1, 0.2];

const hosts = new Map<string, CsrHost>();
const layers = new Map<string, CsrLayer>();
function layerFor(gpu: Gpu, nIn: number, nOut: number, d: number): CsrLayer {
  const key = `${nIn}x${nOut}@${d}`;
  let l = layers.get(key);
  if (!l) {
    let h = hosts.get(key);
    if (!h) {
      const rng = new Rng(1234);
      h = randomCsr(nIn, nOut, d, rng, () => rng.next() - 0.5);
      hosts.set(key, h);
    }
    l = uploadCsr(gpu, h, key);
    layers.set(key, l);
  }
  return l;
}

function act(gpu: Gpu, rows: number, label: string) {
  const ld = roundUp4(BATCH);
  const data = new Float32Array(rows * ld);
  const rng = new Rng(rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < BATCH; c++) data[r * ld + c] = rng.next() - 0.5;
  }
  return gpu.tensor("f32", [rows, ld], { data, label });
}

for (const [nIn, nOut] of SIZES) {
  for (const d of DENSITIES) {
    const nnz = Math.round(d * nIn * nOut);
    const flops = 2 * nnz * BATCH;
    const tag = `${nIn}x${nOut} ${(d * 100).toFixed(0)}% b${BATCH}`;
    kernelBench({
      group: "sparse",
      name: `spmm+bias+relu ${tag}`,
      flops,
      setup(gpu) {
        const layer = layerFor(gpu, nIn, nOut, d);
        const x = act(gpu, nIn, "x");
        const y = gpu.tensor("f32", [nOut, roundUp4(BATCH)]);
        const bias = gpu.tensor("f32", [nOut], { zero: true });
        return (rec) => spmm(rec, { layer, x, y, bias, batch: BATCH, activation: "relu" });
      },
    });
    kernelBench({
      group: "sparse",
      name: `spmmT+relu' ${tag}`,
      flops,
      setup(gpu) {
        const layer = layerFor(gpu, nIn, nOut, d);
        const dy = act(gpu, nOut, "dy");
        const z = act(gpu, nIn, "z");
        const dx = gpu.tensor("f32", [nIn, roundUp4(BATCH)]);
        return (rec) => spmmT(rec, { layer, dy, dx, z, batch: BATCH, activation: "relu" });
      },
    });
    kernelBench({
      group: "sparse",
      name: `sddmm ${tag}`,
      flops,
      setup(gpu) {
        const layer = layerFor(gpu, nIn, nOut, d);
        const x = act(gpu, nIn, "x");
        const dy = act(gpu, nOut, "dy");
        const dvalues = gpu.tensor("f32", [layer.nnz]);
        return (rec) => sddmm(rec, { layer, x, dy, dvalues, batch: BATCH });
      },
    });
  }
}
