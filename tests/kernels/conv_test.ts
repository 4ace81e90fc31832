import assert from "node:assert/strict";
import {
  col2im,
  convDims,
  im2col,
  maxPoolBackward,
  maxPoolForward,
  poolDims,
  zeroBatchPadding,
} from "../../src/kernels/conv.ts";
import {
  col2imRef,
  im2colRef,
  maxPoolBackwardRef,
  maxPoolRef,
} from "../../src/kernels/conv_ref.ts";
import { FiligreeError, grid, roundUp4 } from "../../src/gpu/mod.ts";
import {
  asF32,
  assertClose,
  eachInputPath,
  fromPadded,
  gpuTest,
  gradCheck,
  toPadded,
} from "../../src/testing/mod.ts";

// [channels, height, width, kernel, stride, pad, batch, wg, qb]: 1x1 images, primes, even
// kernel, stride 2, "valid" padding, batches not multiples of 4, several quad chunks per element
// (qb 3 with 4 or 10 quads), and a wg-1/qb-1 case whose im2col and col2im grids exceed 65,535
// workgroups (2-D dispatch).
type ConvCase = [number, number, number, number, number, number, number, number, number];
const CONVS: ConvCase[] = [
  [1, 1, 1, 1, 1, 0, 1, 64, 8],
  [2, 5, 7, 3, 1, 1, 5, 64, 8],
  [3, 6, 4, 5, 2, 2, 3, 64, 8],
  [1, 7, 5, 4, 1, 2, 13, 64, 3],
  [2, 4, 3, 3, 1, 0, 4, 64, 8],
  [2, 9, 8, 3, 2, 1, 37, 64, 3],
  [8, 31, 37, 3, 1, 1, 29, 1, 1],
];
// [channels, height, width, size, batch, wg, qb]
const POOLS: [number, number, number, number, number, number, number][] = [
  [1, 1, 1, 1, 1, 64, 8],
  [2, 5, 7, 2, 5, 64, 8],
  [3, 6, 6, 3, 3, 64, 8],
  [1, 7, 9, 2, 13, 64, 3],
  [2, 5, 6, 2, 37, 64, 3],
  [8, 31, 37, 2, 29, 1, 1],
];

gpuTest("conv: the wg-1 cases really need a 2-D grid", (gpu) => {
  const [c, h, w, , , , b] = CONVS[CONVS.length - 1];
  assert.ok(grid(gpu, c * h * w * roundUp4(b) / 4)[1] > 1);
  const [pc, ph, pw, , pb] = POOLS[POOLS.length - 1];
  assert.ok(grid(gpu, pc * ph * pw * roundUp4(pb) / 4)[1] > 1);
});

gpuTest("im2col matches the float64 reference (exact copy), padding zero", async (gpu, rng) => {
  await eachInputPath(gpu, ["im2col"], async (source) => {
    for (const [channels, height, width, kernel, stride, pad, batch, wg, qb] of CONVS) {
      const g = { channels, height, width, kernel, stride, pad };
      const d = convDims(g);
      const ld = roundUp4(batch);
      const xs = asF32(rng.normal(channels * height * width * batch));
      const x = gpu.tensor("f32", [channels * height * width, ld], {
        data: toPadded(xs, channels * height * width, batch),
      });
      const cols = gpu.tensor("f32", [d.rows, d.positions * ld]);
      gpu.poison(cols);
      const rec = gpu.recorder();
      im2col(rec, { ...g, x, cols, batch, wg, qb });
      rec.submit();
      // [rows][P·ld] is [rows·P][ld]: unpad per position.
      const got = fromPadded(await gpu.read(cols), d.rows * d.positions, batch, "im2col cols");
      assertClose(got, im2colRef(xs, g, batch), {
        rtol: 0,
        atol: 0,
        label:
          `${source} im2col ${g.channels}x${height}x${width} k${kernel} s${stride} p${pad} b${batch}`,
      });
    }
  });
});

gpuTest("col2im matches the float64 reference and is the adjoint of im2col", async (gpu, rng) => {
  await eachInputPath(gpu, ["col2im"], async (source) => {
    for (const [channels, height, width, kernel, stride, pad, batch, wg, qb] of CONVS) {
      const g = { channels, height, width, kernel, stride, pad };
      const d = convDims(g);
      const ld = roundUp4(batch);
      const dcs = asF32(rng.normal(d.rows * d.positions * batch));
      const dcols = gpu.tensor("f32", [d.rows, d.positions * ld], {
        data: toPadded(dcs, d.rows * d.positions, batch),
      });
      const dx = gpu.tensor("f32", [channels * height * width, ld]);
      gpu.poison(dx);
      const rec = gpu.recorder();
      col2im(rec, { ...g, dcols, dx, batch, wg, qb });
      rec.submit();
      const got = fromPadded(await gpu.read(dx), channels * height * width, batch, "col2im dx");
      // Each input element sums at most k·k float32 terms.
      assertClose(got, col2imRef(dcs, g, batch), {
        rtol: 1e-6,
        atol: 1e-6 * kernel,
        label:
          `${source} col2im ${channels}x${height}x${width} k${kernel} s${stride} p${pad} b${batch}`,
      });
    }
  });
  for (const [channels, height, width, kernel, stride, pad] of CONVS.slice(0, 6)) {
    const g = { channels, height, width, kernel, stride, pad };
    const batch = 3;
    gradCheck(
      ([x]) => im2colRef(x, g, batch),
      (_x, dOut) => [col2imRef(dOut, g, batch)],
      [rng.normal(channels * height * width * batch)],
      { rng, label: `im2col/col2im k${kernel} s${stride}` },
    );
  }
});

gpuTest("maxpool forward and backward match float64 references and FD", async (gpu, rng) => {
  await eachInputPath(gpu, ["maxpool_fwd", "maxpool_bwd"], async (source) => {
    for (const [channels, height, width, size, batch, wg, qb] of POOLS) {
      const g = { channels, height, width, size };
      const { oh, ow } = poolDims(g);
      const ld = roundUp4(batch);
      const inRows = channels * height * width, outRows = channels * oh * ow;
      const xs = asF32(rng.normal(inRows * batch));
      const x = gpu.tensor("f32", [inRows, ld], { data: toPadded(xs, inRows, batch) });
      const y = gpu.tensor("f32", [outRows, ld]);
      const arg = gpu.tensor("u32", [outRows, ld]);
      const dys = asF32(rng.normal(outRows * batch));
      const dy = gpu.tensor("f32", [outRows, ld], { data: toPadded(dys, outRows, batch) });
      const dx = gpu.tensor("f32", [inRows, ld]);
      gpu.poison(y);
      gpu.poison(arg);
      gpu.poison(dx);
      const rec = gpu.recorder();
      maxPoolForward(rec, { ...g, x, y, argmax: arg, batch, wg, qb });
      maxPoolBackward(rec, { ...g, dy, argmax: arg, dx, batch, wg, qb });
      rec.submit();
      const label = `${source} maxpool ${channels}x${height}x${width} s${size} b${batch}`;
      const ref = maxPoolRef(xs, g, batch);
      // A copy of one input element: exact.
      assertClose(fromPadded(await gpu.read(y), outRows, batch, `${label} y`), ref.y, {
        rtol: 0,
        atol: 0,
        label: `${label} y`,
      });
      assertClose(fromPadded(await gpu.read(arg), outRows, batch, `${label} argmax`), ref.argmax, {
        rtol: 0,
        atol: 0,
        label: `${label} argmax`,
      });
      assertClose(
        fromPadded(await gpu.read(dx), inRows, batch, `${label} dx`),
        maxPoolBackwardRef(dys, ref.argmax, g, batch),
        { rtol: 0, atol: 0, label: `${label} dx` },
      );
    }
  });
  for (const [channels, height, width, size] of POOLS.slice(0, 5)) {
    const g = { channels, height, width, size };
    const batch = 3;
    gradCheck(
      ([x]) => maxPoolRef(x, g, batch).y,
      ([x], dOut) => [maxPoolBackwardRef(dOut, maxPoolRef(x, g, batch).argmax, g, batch)],
      [rng.normal(channels * height * width * batch)],
      { rng, label: `maxpool s${size}` },
    );
  }
});

gpuTest("zeroBatchPadding zeroes only padding lanes; skips batches of 4k", async (gpu, rng) => {
  for (const [blocks, batch] of [[1, 1], [7, 5], [130, 3], [3, 4]]) {
    const ld = roundUp4(batch);
    const data = Float32Array.from(rng.normal(blocks * ld));
    const t = gpu.tensor("f32", [blocks, ld], { data });
    const rec = gpu.recorder();
    zeroBatchPadding(rec, { t, blocks, batch });
    assert.equal(rec.dispatches, batch % 4 === 0 ? 0 : 1);
    rec.submit();
    const got = fromPadded(await gpu.read(t), blocks, batch, "masked");
    const want = Float64Array.from(data).filter((_, i) => i % ld < batch);
    assertClose(got, want, { rtol: 0, atol: 0, label: `mask ${blocks}x${batch}` });
  }
});

gpuTest("conv wrappers reject bad geometry and short tensors with FiligreeError", (gpu) => {
  assert.throws(
    () => convDims({ channels: 1, height: 2, width: 2, kernel: 5, pad: 0 }),
    FiligreeError,
  );
  assert.throws(() => convDims({ channels: 1, height: 8, width: 8, kernel: 300 }), FiligreeError);
  assert.throws(() => poolDims({ channels: 1, height: 1, width: 4, size: 2 }), FiligreeError);
  const x = gpu.tensor("f32", [4, 4]);
  const cols = gpu.tensor("f32", [4]);
  // qb x (k·k + k + 1) over the loop bound
  const big = { channels: 1, height: 60, width: 60, kernel: 50, batch: 512, qb: 64 };
  assert.throws(() => col2im(gpu.recorder(), { ...big, dcols: x, dx: cols }), /exceed the bound/);
  assert.throws(
    () =>
      im2col(gpu.recorder(), {
        channels: 1,
        height: 2,
        width: 2,
        kernel: 3,
        x,
        cols,
        batch: 1,
      }),
    FiligreeError,
  );
});
