import { matmul } from "../src/kernels/matmul.ts";
import { type Gpu, roundUp4 } from "../src/gpu/mod.ts";
import { kernelBench } from "./_harness.ts";

// Dense layer shapes at batch 128, feature-major activations X[in][ld], weights W[in][out]:
// forward Y = Wᵀ·X (TN), backward data dX = W·dY (NN), weight gradient dW = X·dYᵀ (NT).
const BATCH = 128;
const ld = roundUp4(BATCH);

function zeros(gpu: Gpu, rows: number, cols: number) {
  return gpu.tensor("f32", [rows, cols], { zero: true });
}

for (const [inF, outF] of [[784, 1000], [1000, 1000], [4096, 4096]]) {
  const flops = 2 * inF * outF * BATCH;
  const shape = `${inF}x${outF} b${BATCH}`;
  kernelBench({
    group: "matmul",
    name: `fwd TN Y=Wᵀ·X ${shape}`,
    flops,
    setup(gpu) {
      const w = zeros(gpu, inF, outF), x = zeros(gpu, inF, ld), y = zeros(gpu, outF, ld);
      return (rec) => matmul(rec, { a: w, b: x, c: y, m: outF, n: ld, k: inF, transA: true });
    },
  });
  kernelBench({
    group: "matmul",
    name: `bwd NN dX=W·dY ${shape}`,
    flops,
    setup(gpu) {
      const w = zeros(gpu, inF, outF), dy = zeros(gpu, outF, ld), dx = zeros(gpu, inF, ld);
      return (rec) => matmul(rec, { a: w, b: dy, c: dx, m: inF, n: ld, k: outF });
    },
  });
  kernelBench({
    group: "matmul",
    name: `dW NT dW=X·dYᵀ ${shape}`,
    flops,
    setup(gpu) {
      const x = zeros(gpu, inF, ld), dy = zeros(gpu, outF, ld), dw = zeros(gpu, inF, outF);
      return (rec) => matmul(rec, { a: x, b: dy, c: dw, m: inF, n: outF, k: ld, transB: true });
    },
  });
}

// Square SGEMM C = A·B (NN). 4096³ is 137 GFLOP (several seconds per call on llvmpipe): the
// harness still runs 2 calls per sample, so keep its target pass short.
for (const s of [1024, 4096]) {
  kernelBench({
    group: "matmul",
    name: `sgemm NN ${s}^3`,
    flops: 2 * s * s * s,
    passMs: s > 1024 ? 1 : 60,
    setup(gpu) {
      const a = zeros(gpu, s, s), b = zeros(gpu, s, s), c = zeros(gpu, s, s);
      return (rec) => matmul(rec, { a, b, c, m: s, n: s, k: s });
    },
  });
}
