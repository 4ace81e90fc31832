import { Optimizer, type OptimizerConfig } from "../src/kernels/optim.ts";
import { sum } from "../src/kernels/reduce.ts";
import { kernelBench } from "./_harness.ts";

// Optimizer steps: GB/s counts every f32 read and written per parameter
// (plain SGD: w, g read + w written = 3; momentum: + v read/written = 5; Adam: w, g, m, v read +
// w, m, v written = 7).
const CASES: { name: string; config: OptimizerConfig; words: number }[] = [
  { name: "sgd", config: { kind: "sgd", weightDecay: 1e-4 }, words: 3 },
  { name: "sgd_momentum", config: { kind: "sgd", momentum: 0.9, weightDecay: 1e-4 }, words: 5 },
  { name: "adamw", config: { kind: "adamw" }, words: 7 },
];

for (const n of [1 << 20, 1 << 24]) {
  const label = n === 1 << 20 ? "1M" : "16M";
  for (const c of CASES) {
    kernelBench({
      group: "optim",
      name: `${c.name} ${label}`,
      bytes: c.words * 4 * n,
      setup(gpu) {
        const param = gpu.tensor("f32", [n], { zero: true });
        const grad = gpu.tensor("f32", [n], { zero: true });
        const opt = new Optimizer(gpu, n, c.config);
        return (rec) => opt.step(rec, { param, grad, lr: 1e-3 });
      },
    });
  }
}

// Deterministic tree sum of 16M floats (bytes read).
const N_SUM = 1 << 24;
kernelBench({
  group: "reduce",
  name: "sum 16M",
  bytes: 4 * N_SUM,
  setup(gpu) {
    const x = gpu.tensor("f32", [N_SUM], { zero: true });
    const out = gpu.tensor("f32", [1]);
    return (rec) => sum(rec, { x, out });
  },
});
