import { FiligreeError, type Gpu } from "../../src/gpu/mod.ts";
import { exclusiveScan } from "../../src/kernels/scan.ts";
import { exclusiveScanRef } from "../../src/kernels/topo_ref.ts";
import { gpuTest, type Rng } from "../../src/testing/mod.ts";

// Exact integer results: tolerance 0 (every element compared).

function randomU32(rng: Rng, n: number, max: number): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.int(max);
  return a;
}

function firstDiff(got: ArrayLike<number>, want: ArrayLike<number>, label: string) {
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) throw new Error(`${label}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

function assertEquals(got: unknown, want: unknown, label = "value") {
  if (got !== want) throw new Error(`${label}: got ${got}, want ${want}`);
}

function assertThrows(fn: () => unknown, cls: new (...a: never[]) => Error) {
  try {
    fn();
  } catch (e) {
    if (e instanceof cls) return;
    throw new Error(`expected ${cls.name}, got ${e}`);
  }
  throw new Error(`expected ${cls.name}, nothing thrown`);
}

/** Runs `fn` with a smaller workgroups-per-dimension limit so `grid` must produce 2-D grids. */
export async function withSmallGrid<T>(gpu: Gpu, max: number, fn: () => Promise<T>): Promise<T> {
  const limits = gpu.limits as Record<string, number>;
  const saved = limits.maxComputeWorkgroupsPerDimension;
  limits.maxComputeWorkgroupsPerDimension = max;
  try {
    return await fn();
  } finally {
    limits.maxComputeWorkgroupsPerDimension = saved;
  }
}

gpuTest(
  "exclusiveScan matches reference (lengths 1..1e6+3), total into output end",
  async (gpu, rng) => {
    for (const n of [1, 3, 255, 256, 257, 2047, 2049, 8191, 8192, 8193, 12_289, 1_000_003]) {
      const x = randomU32(rng, n, n > 100_000 ? 1000 : 1 << 16);
      const tx = gpu.tensor("u32", [n], { data: x });
      const ty = gpu.tensor("u32", [n + 1]);
      gpu.poison(ty);
      const rec = gpu.recorder();
      exclusiveScan(rec, { input: tx, output: ty, n, total: { tensor: ty, index: n } });
      rec.submit();
      const got = await gpu.read(ty);
      const ref = exclusiveScanRef(x);
      firstDiff(got, ref.out, `scan n=${n}`);
      assertEquals(got[n], ref.total, `scan n=${n} total`);
      gpu.release(tx);
      gpu.release(ty);
    }
  },
);

gpuTest("exclusiveScan: separate total tensor, popcount op, 2-D grids", async (gpu, rng) => {
  // Two levels with a 2-D grid: 123 blocks at level 0 on a limit of 40 workgroups per dimension.
  const n = 1_000_003;
  const x = randomU32(rng, n, 0xffffffff);
  for (let i = 0; i < n; i += 1 + rng.int(5)) x[i] = 0;
  const tx = gpu.tensor("u32", [n], { data: x });
  const ty = gpu.tensor("u32", [n]);
  const tt = gpu.tensor("u32", [7]);
  gpu.poison(ty);
  gpu.poison(tt);
  await withSmallGrid(gpu, 40, async () => {
    const rec = gpu.recorder();
    exclusiveScan(rec, {
      input: tx,
      output: ty,
      n,
      op: "popcount",
      total: { tensor: tt, index: 5 },
    });
    rec.submit();
    await gpu.sync();
  });
  const pc = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let v = x[i];
    while (v) {
      pc[i] += v & 1;
      v >>>= 1;
    }
  }
  const ref = exclusiveScanRef(pc);
  firstDiff(await gpu.read(ty), ref.out, "popcount scan");
  const t = await gpu.read(tt);
  assertEquals(t[5], ref.total, "popcount total");
  assertEquals(t[4], 0xffffffff, "words next to the total untouched");
  // Three and four levels: shrink the block to 32 invocations × 1 vec4 = 128 elements.
  for (const n3 of [128 * 128 + 17, 128 * 128 * 128 + 5]) {
    const x3 = randomU32(rng, n3, 100);
    const in3 = gpu.tensor("u32", [n3], { data: x3 });
    const out3 = gpu.tensor("u32", [n3 + 1]);
    gpu.poison(out3);
    const rec = gpu.recorder();
    exclusiveScan(rec, {
      input: in3,
      output: out3,
      n: n3,
      total: { tensor: out3, index: n3 },
      tuning: { wg: 32, vpt: 1 },
    });
    rec.submit();
    const ref = exclusiveScanRef(x3);
    const got3 = await gpu.read(out3);
    firstDiff(got3, ref.out, `small-block scan n=${n3}`);
    assertEquals(got3[n3], ref.total, `small-block scan n=${n3} total`);
    gpu.release(in3);
    gpu.release(out3);
  }
  for (const t of [tx, ty, tt]) gpu.release(t);
});

gpuTest("exclusiveScan rejects bad arguments", (gpu) => {
  const a = gpu.tensor("u32", [10]);
  const b = gpu.tensor("u32", [10]);
  const rec = gpu.recorder();
  assertThrows(() => exclusiveScan(rec, { input: a, output: a, n: 10 }), FiligreeError);
  assertThrows(() => exclusiveScan(rec, { input: a, output: b, n: 11 }), FiligreeError);
  assertThrows(() => exclusiveScan(rec, { input: a, output: b, n: 0 }), FiligreeError);
  assertThrows(
    () => exclusiveScan(rec, { input: a, output: b, n: 10, total: { tensor: b, index: 3 } }),
    FiligreeError,
  );
  assertThrows(
    () => exclusiveScan(rec, { input: a, output: b, n: 10, tuning: { wg: 48 } }),
    FiligreeError,
  );
});
