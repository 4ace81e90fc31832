// Element-wise activation, SReLU and dropout kernels. GB/s counts the bytes each call must move:
// forward 2 × 4 B/element (read z, write y), backward 3 × 4 B (read z, dy, write dz).
import {
  activationBackward,
  activationForward,
  sreluBackward,
  sreluForward,
  sreluInitParams,
} from "../src/kernels/activation.ts";
import { dropoutForward } from "../src/kernels/dropout.ts";
import { type Gpu, roundUp4, type Tensor } from "../src/gpu/mod.ts";
import { kernelBench } from "./_harness.ts";

const BATCH = 128;
const ld = roundUp4(BATCH);

// One set of buffers per size, shared by every case (16M elements = 64 MiB per buffer).
const buffers = new Map<number, { z: Tensor; dy: Tensor; out: Tensor }>();
function bufs(gpu: Gpu, rows: number) {
  let b = buffers.get(rows);
  if (!b) {
    b = {
      z: gpu.tensor("f32", [rows, ld], { zero: true }),
      dy: gpu.tensor("f32", [rows, ld], { zero: true }),
      out: gpu.tensor("f32", [rows, ld], { zero: true }),
    };
    buffers.set(rows, b);
  }
  return b;
}

const label = (rows: number) =>
  rows * ld >= 2 ** 20 ? `${rows}x${BATCH} (${(rows * ld) / 2 ** 20}M)` : `${rows}x${BATCH}`;

// 4096x128 (a hidden layer), then 1M, 4M, 16M elements.
for (const rows of [4096, 8192, 32768, 131072]) {
  const n = rows * ld;
  for (const activation of ["relu", "gelu", "tanh"]) {
    kernelBench({
      group: "activation",
      name: `${activation} fwd ${label(rows)}`,
      bytes: 2 * n * 4,
      setup(gpu) {
        const { z, out } = bufs(gpu, rows);
        return (rec) => activationForward(rec, { z, y: out, rows, batch: BATCH, activation });
      },
    });
    kernelBench({
      group: "activation",
      name: `${activation} bwd ${label(rows)}`,
      bytes: 3 * n * 4,
      setup(gpu) {
        const { z, dy, out } = bufs(gpu, rows);
        return (rec) => activationBackward(rec, { z, dy, dz: out, rows, batch: BATCH, activation });
      },
    });
  }
}

for (const rows of [4096]) {
  const n = rows * ld;
  kernelBench({
    group: "activation",
    name: `srelu fwd ${label(rows)}`,
    bytes: 2 * n * 4,
    setup(gpu) {
      const { z, out } = bufs(gpu, rows);
      const params = gpu.tensor("f32", [4, rows], { data: sreluInitParams(rows) });
      return (rec) => sreluForward(rec, { z, params, y: out, rows, batch: BATCH });
    },
  });
  kernelBench({
    group: "activation",
    name: `srelu bwd+param grad ${label(rows)}`,
    bytes: 2 * 3 * n * 4,
    setup(gpu) {
      const { z, dy, out } = bufs(gpu, rows);
      const params = gpu.tensor("f32", [4, rows], { data: sreluInitParams(rows) });
      const dparams = gpu.tensor("f32", [4, rows]);
      return (rec) => sreluBackward(rec, { z, dy, params, dz: out, dparams, rows, batch: BATCH });
    },
  });
}

for (const rows of [4096, 32768]) {
  kernelBench({
    group: "dropout",
    name: `dropout p=0.3 ${label(rows)}`,
    bytes: 2 * rows * ld * 4,
    setup(gpu) {
      const { z, out } = bufs(gpu, rows);
      return (rec) =>
        dropoutForward(rec, { x: z, y: out, rows, batch: BATCH, p: 0.3, seed: 1, step: 0 });
    },
  });
}
