import { biasAdd, biasGrad } from "../../src/kernels/bias.ts";
import { biasAddRef, biasGradRef } from "../../src/kernels/bias_ref.ts";
import {
  asF32,
  assertClose,
  fromPadded,
  gpuTest,
  gradCheck,
  toPadded,
} from "../../src/testing/mod.ts";

// Sizes: 1, primes, non-multiples of the 64-wide workgroup and of the vec4 batch axis.
const SHAPES: [number, number][] = [[1, 1], [7, 13], [67, 5], [129, 130], [1000, 3]];

gpuTest("bias_add matches float64 reference (fwd), padding zero", async (gpu, rng) => {
  for (const [rows, batch] of SHAPES) {
    const x = asF32(rng.normal(rows * batch));
    const b = asF32(rng.normal(rows));
    const tx = gpu.tensor("f32", [rows, Math.ceil(batch / 4) * 4], {
      data: toPadded(x, rows, batch),
    });
    const tb = gpu.tensor("f32", [rows], { data: Float32Array.from(b) });
    const ty = gpu.tensor("f32", tx.shape);
    gpu.poison(ty);
    const rec = gpu.recorder();
    biasAdd(rec, { x: tx, bias: tb, y: ty, rows, batch });
    rec.submit();
    const y = fromPadded(await gpu.read(ty), rows, batch, "bias_add y");
    assertClose(y, biasAddRef(x, b, rows, batch), {
      rtol: 1e-6,
      atol: 1e-6,
      label: `bias_add ${rows}x${batch}`,
    });
  }
});

gpuTest("bias_grad matches float64 reference and finite differences", async (gpu, rng) => {
  for (const [rows, batch] of SHAPES) {
    const dy = asF32(rng.normal(rows * batch));
    const tdy = gpu.tensor("f32", [rows, Math.ceil(batch / 4) * 4], {
      data: toPadded(dy, rows, batch),
    });
    // One dispatch per row, and the chunked reduction (a convolution's batch of positions x
    // samples can pass llvmpipe's loop cap): chunks of 2 and 3 quads, the first writing over the
    // poisoned output, the rest accumulating.
    for (const maxQuads of [undefined, 2, 3]) {
      const tdb = gpu.tensor("f32", [rows]);
      gpu.poison(tdb);
      const rec = gpu.recorder();
      biasGrad(rec, { dy: tdy, dbias: tdb, rows, batch, maxQuads });
      rec.submit();
      assertClose(await gpu.read(tdb), biasGradRef(dy, rows, batch), {
        rtol: 1e-5,
        atol: 1e-5 * Math.sqrt(batch),
        label: `bias_grad ${rows}x${batch} maxQuads ${maxQuads}`,
      });
    }
  }
  // d/db of sum(y * dOut) with y = x + b is the bias gradient of dOut.
  const rows = 5, batch = 7;
  gradCheck(
    ([x, b]) => biasAddRef(x, b, rows, batch),
    ([_x, _b], dOut) => [dOut, biasGradRef(dOut, rows, batch)],
    [rng.normal(rows * batch), rng.normal(rows)],
    { rng, label: "bias" },
  );
});
