// Dropout: the GPU mask must equal the TypeScript hash bit for bit, and outputs must equal
// fround(x · fround(1/(1 − p))) exactly (tolerance 0). Statistical checks use 5-sigma bounds
// (false-failure probability ~6e-7 per check).
import {
  dropoutBackward,
  dropoutForward,
  dropoutRngUniform,
  dropoutScale,
  writeDropoutRng,
} from "../../src/kernels/dropout.ts";
import { dropoutMaskRef, dropoutRef, pcgHash } from "../../src/kernels/dropout_ref.ts";
import { FiligreeError, type Gpu, grid, roundUp4, type Tensor } from "../../src/gpu/mod.ts";
import { asF32, fromPadded, gpuTest, toPadded } from "../../src/testing/mod.ts";

const SHAPES: [number, number][] = [[1, 1], [7, 13], [67, 5], [130, 33]];

function upload(gpu: Gpu, a: Float64Array, rows: number, batch: number): Tensor {
  const ld = roundUp4(batch);
  const data = toPadded(a, rows, batch);
  for (let r = 0; r < rows; r++) for (let c = batch; c < ld; c++) data[r * ld + c] = NaN;
  return gpu.tensor("f32", [rows, ld], { data });
}

function exact(got: ArrayLike<number>, want: ArrayLike<number>, label: string) {
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i]) && !(got[i] === 0 && want[i] === 0)) {
      throw new Error(`${label}[${i}]: got ${got[i]}, want ${want[i]}`);
    }
  }
}

function throws(fn: () => unknown, what: string) {
  try {
    fn();
  } catch (e) {
    if (e instanceof FiligreeError) return;
    throw new Error(
      `${what}: threw ${(e as Error).name}, expected FiligreeError: ${(e as Error).message}`,
    );
  }
  throw new Error(`${what}: did not throw`);
}

function within5Sigma(observed: number, expected: number, sigma: number, what: string) {
  if (!(Math.abs(observed - expected) <= 5 * sigma)) {
    throw new Error(`${what}: ${observed} vs expected ${expected} ± ${5 * sigma} (5 sigma)`);
  }
}

Deno.test("pcg hash matches known u32 values (guards the reference itself)", () => {
  // Hand-computed from the definition with BigInt arithmetic.
  const big = (v: number) => {
    const M = 0xffffffffn;
    const s = (BigInt(v) * 747796405n + 2891336453n) & M;
    const w = (((s >> ((s >> 28n) + 4n)) ^ s) * 277803737n) & M;
    return Number((w >> 22n) ^ w);
  };
  for (const v of [0, 1, 2, 12345, 0x7fffffff, 0x80000000, 0xffffffff, 2891336453]) {
    if (pcgHash(v) !== big(v)) throw new Error(`pcgHash(${v}) = ${pcgHash(v)}, want ${big(v)}`);
  }
});

gpuTest(
  "dropout forward/backward/mask equal the TypeScript hash reference exactly",
  async (gpu, rng) => {
    for (const [rows, batch] of SHAPES) {
      for (const p of [0, 0.1, 0.5, 0.9]) {
        const seed = rng.int(2 ** 32), step = rng.int(2 ** 32), stream = rng.int(8);
        const x = asF32(rng.normal(rows * batch));
        const dy = asF32(rng.normal(rows * batch));
        const tx = upload(gpu, x, rows, batch);
        const tdy = upload(gpu, dy, rows, batch);
        const y = gpu.tensor("f32", tx.shape);
        const mask = gpu.tensor("f32", tx.shape);
        const dx = gpu.tensor("f32", tx.shape);
        for (const t of [y, mask, dx]) gpu.poison(t);
        const rec = gpu.recorder();
        dropoutForward(rec, { x: tx, y, mask, rows, batch, p, seed, step, stream });
        dropoutBackward(rec, { dy: tdy, dx, rows, batch, p, seed, step, stream });
        rec.submit();
        const label = `dropout ${rows}x${batch} p=${p}`;
        exact(
          fromPadded(await gpu.read(y), rows, batch, label),
          dropoutRef(x, rows, batch, p, seed, step, stream),
          `${label} y`,
        );
        const keep = dropoutMaskRef(rows, batch, p, seed, step, stream);
        const scale = dropoutScale(p);
        exact(
          fromPadded(await gpu.read(mask), rows, batch, label),
          Array.from(keep, (k) => k * scale),
          `${label} mask`,
        );
        exact(
          fromPadded(await gpu.read(dx), rows, batch, label),
          dropoutRef(dy, rows, batch, p, seed, step, stream),
          `${label} dx`,
        );
        for (const t of [tx, tdy, y, mask, dx]) gpu.release(t);
      }
    }
  },
);

gpuTest(
  "dropout keep rate, per-lane rate, mean, independence across elements and steps",
  async (gpu, rng) => {
    const rows = 1009, batch = 1001, ld = roundUp4(batch), n = rows * batch;
    const p = 0.3, q = 1 - p;
    const seed = rng.int(2 ** 32), step = rng.int(2 ** 31);
    const ones = gpu.tensor("f32", [rows, ld], {
      data: toPadded(new Float64Array(n).fill(1), rows, batch),
    });
    const y0 = gpu.tensor("f32", [rows, ld]);
    const y1 = gpu.tensor("f32", [rows, ld]);
    const rec = gpu.recorder();
    dropoutForward(rec, { x: ones, y: y0, rows, batch, p, seed, step });
    dropoutForward(rec, { x: ones, y: y1, rows, batch, p, seed, step: step + 1 });
    rec.submit();
    const a = fromPadded(await gpu.read(y0), rows, batch, "y0");
    const b = fromPadded(await gpu.read(y1), rows, batch, "y1");
    const scale = dropoutScale(p);
    let kept = 0, sum = 0, both = 0, adjacent = 0, agree = 0;
    const lane = [0, 0, 0, 0], laneN = [0, 0, 0, 0];
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < batch; c++) {
        const i = r * batch + c;
        if (a[i] !== 0 && a[i] !== scale) throw new Error(`y[${i}] = ${a[i]}, not 0 or ${scale}`);
        const k = a[i] !== 0 ? 1 : 0;
        kept += k;
        sum += a[i];
        lane[c % 4] += k;
        laneN[c % 4]++;
        if (c + 1 < batch && k && a[i + 1] !== 0) adjacent++;
        if (k && b[i] !== 0) both++;
        if (k === (b[i] !== 0 ? 1 : 0)) agree++;
      }
    }
    const sd = (m: number, pr: number) => Math.sqrt(m * pr * (1 - pr));
    within5Sigma(kept, q * n, sd(n, q), "keep count");
    // Inverted scaling preserves the mean of a constant input: E[y] = 1.
    within5Sigma(sum / n, 1, (scale * sd(n, q)) / n, "mean of dropout(1)");
    for (let l = 0; l < 4; l++) {
      within5Sigma(
        lane[l],
        q * laneN[l],
        sd(laneN[l], q),
        `keep count of vec4 lane ${l}`,
      );
    }
    // Neighbours and consecutive steps are independent: P(both kept) = q^2.
    const pairs = rows * (batch - 1);
    within5Sigma(adjacent, q * q * pairs, sd(pairs, q * q), "adjacent elements both kept");
    within5Sigma(both, q * q * n, sd(n, q * q), "kept at step t and t+1");
    if (agree === n) throw new Error("consecutive steps gave the same mask");
    for (const t of [ones, y0, y1]) gpu.release(t);
  },
);

gpuTest(
  "dropout is deterministic per (seed, step, stream); rng uniform equals numbers",
  async (gpu, rng) => {
    const rows = 37, batch = 29, ld = roundUp4(batch), n = rows * batch, p = 0.5;
    const x = gpu.tensor("f32", [rows, ld], { data: toPadded(asF32(rng.normal(n)), rows, batch) });
    const seed = rng.int(2 ** 32), step = rng.int(1000);
    const runs: [string, Record<string, number>][] = [
      ["base", { seed, step, stream: 0 }],
      ["again", { seed, step, stream: 0 }],
      ["step+1", { seed, step: step + 1, stream: 0 }],
      ["stream 1", { seed, step, stream: 1 }],
      ["seed+1", { seed: (seed + 1) >>> 0, step, stream: 0 }],
    ];
    const outs: Float32Array[] = [];
    for (const [, args] of runs) {
      const y = gpu.tensor("f32", [rows, ld]);
      gpu.poison(y);
      const rec = gpu.recorder();
      dropoutForward(rec, { x, y, rows, batch, p, ...args });
      rec.submit();
      outs.push(await gpu.read(y) as Float32Array);
      gpu.release(y);
    }
    exact(outs[1], outs[0], "same seed and step");
    for (let k = 2; k < runs.length; k++) {
      let same = 0;
      for (let i = 0; i < outs[0].length; i++) {
        if ((outs[0][i] !== 0) === (outs[k][i] !== 0)) {
          same++;
        }
      }
      // Independent masks agree on ~half the elements (p = 0.5); identical ones on all.
      within5Sigma(
        same - (ld - batch) * rows,
        n / 2,
        Math.sqrt(n) / 2,
        `mask agreement base vs ${runs[k][0]}`,
      );
    }
    // A caller-owned uniform gives the same mask as the numbers it holds.
    const u = dropoutRngUniform(gpu);
    writeDropoutRng(gpu, u, seed, step);
    const y = gpu.tensor("f32", [rows, ld]);
    gpu.poison(y);
    const rec = gpu.recorder();
    dropoutForward(rec, { x, y, rows, batch, p, rng: u });
    rec.submit();
    exact(await gpu.read(y), outs[0], "rng uniform vs numbers");
    gpu.release(y);
    gpu.release(x);
  },
);

gpuTest(
  "dropout on a size needing a 2-D dispatch grid matches the reference mask",
  async (gpu, rng) => {
    const rows = 4099, batch = 4097, ld = roundUp4(batch), p = 0.5;
    if (grid(gpu, Math.ceil((rows * ld) / 4 / 64))[1] < 2) {
      throw new Error(
        "test size should need a 2-D grid",
      );
    }
    const seed = rng.int(2 ** 32), step = rng.int(2 ** 32);
    const data = new Float32Array(rows * ld);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < ld; c++) {
        data[r * ld + c] = c < batch ? 1 + (c % 7) : NaN;
      }
    }
    const x = gpu.tensor("f32", [rows, ld], { data });
    const y = gpu.tensor("f32", [rows, ld]);
    gpu.poison(y);
    const rec = gpu.recorder();
    dropoutBackward(rec, { dy: x, dx: y, rows, batch, p, seed, step });
    rec.submit();
    const got = await gpu.read(y);
    const keep = dropoutMaskRef(rows, batch, p, seed, step);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < ld; c++) {
        const want = c < batch && keep[r * batch + c] ? 2 * (1 + (c % 7)) : 0;
        if (got[r * ld + c] !== want) {
          throw new Error(
            `2-D grid [${r}][${c}]: got ${got[r * ld + c]}, want ${want}`,
          );
        }
      }
    }
    gpu.release(x);
    gpu.release(y);
  },
);

gpuTest("dropout wrappers reject bad arguments with FiligreeError", (gpu) => {
  const x = gpu.tensor("f32", [2, 4], { zero: true });
  const y = gpu.tensor("f32", [2, 4]);
  const rec = gpu.recorder();
  const base = { x, y, rows: 2, batch: 4, seed: 1, step: 0 };
  throws(() => dropoutForward(rec, { ...base, p: 1 }), "p = 1");
  throws(() => dropoutForward(rec, { ...base, p: -0.1 }), "p < 0");
  throws(() => dropoutForward(rec, { ...base, p: 0.5, seed: -1 }), "negative seed");
  throws(() => dropoutForward(rec, { ...base, p: 0.5, step: 1.5 }), "fractional step");
  throws(() => dropoutForward(rec, { ...base, p: 0.5, y: x }), "aliasing");
  throws(() => dropoutForward(rec, { ...base, p: 0.5, rows: 3 }), "too small");
  throws(() => dropoutForward(rec, { x, y, rows: 2, batch: 4, p: 0.5 }), "no seed");
  gpu.release(x);
  gpu.release(y);
});
