import { biasAdd, biasGrad } from "../src/kernels/bias.ts";
import { roundUp4 } from "../src/gpu/mod.ts";
import { kernelBench } from "./_harness.ts";

const BATCH = 128;
for (const rows of [1000, 4096]) {
  const ld = roundUp4(BATCH);
  kernelBench({
    group: "bias",
    name: `bias_add ${rows}x${BATCH}`,
    bytes: 2 * rows * ld * 4,
    setup(gpu) {
      const x = gpu.tensor("f32", [rows, ld], { zero: true });
      const b = gpu.tensor("f32", [rows], { zero: true });
      const y = gpu.tensor("f32", [rows, ld]);
      return (rec) => biasAdd(rec, { x, bias: b, y, rows, batch: BATCH });
    },
  });
  kernelBench({
    group: "bias",
    name: `bias_grad ${rows}x${BATCH}`,
    bytes: rows * ld * 4,
    setup(gpu) {
      const dy = gpu.tensor("f32", [rows, ld], { zero: true });
      const db = gpu.tensor("f32", [rows]);
      return (rec) => biasGrad(rec, { dy, dbias: db, rows, batch: BATCH });
    },
  });
}
