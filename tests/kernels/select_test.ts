import { FiligreeError, type Gpu, type Tensor } from "../../src/gpu/mod.ts";
import {
  markSelected,
  radixSelect,
  SEL,
  SELECT_BLOCK,
  SELECT_RESULT_WORDS,
  selectMask,
  type SelectMode,
} from "../../src/kernels/select.ts";
import { markRef, selectRef, type SelectRefResult } from "../../src/kernels/topo_ref.ts";
import { gpuTest, type Rng } from "../../src/testing/mod.ts";

// Selection is exact: the threshold must equal the reference's f32 value bit for bit (−0 and
// +0 distinguished in "value" mode), counts and every mask element must match (tolerance 0).

const MODES: SelectMode[] = ["value", "abs", "positive", "negative"];

async function withSmallGrid<T>(gpu: Gpu, max: number, fn: () => Promise<T>): Promise<T> {
  const limits = gpu.limits as Record<string, number>;
  const saved = limits.maxComputeWorkgroupsPerDimension;
  limits.maxComputeWorkgroupsPerDimension = max;
  try {
    return await fn();
  } finally {
    limits.maxComputeWorkgroupsPerDimension = saved;
  }
}

/**
 * Float32 data with many ties: values on a coarse grid (±k/8), ±0, a few NaNs, infinities and
 * denormals, plus some continuous values.
 */
function tiedData(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.next();
    if (u < 0.5) a[i] = Math.round(rng.normal(1)[0] * 4) / 8;
    else if (u < 0.55) a[i] = rng.next() < 0.5 ? -0 : 0;
    else if (u < 0.56) a[i] = NaN;
    else if (u < 0.565) a[i] = rng.next() < 0.5 ? Infinity : -Infinity;
    else if (u < 0.575) a[i] = (rng.next() < 0.5 ? -1 : 1) * 1e-40; // denormal
    else a[i] = rng.normal(1, 0.3)[0];
  }
  return a;
}

async function readU32(gpu: Gpu, t: Tensor): Promise<Uint32Array> {
  const a = await gpu.read(t);
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function sameBits(got: number, want: number): boolean {
  return Object.is(got, Math.fround(want)) || (Number.isNaN(got) && Number.isNaN(want));
}

function checkResult(
  r: Uint32Array,
  data: Float32Array,
  k: number,
  mode: SelectMode,
  largest: boolean,
  label: string,
): SelectRefResult {
  const want = selectRef(data, k, mode, largest);
  const thr = new Float32Array(r.buffer.slice(0))[SEL.THRESHOLD];
  const got = {
    threshold: thr,
    below: r[SEL.BELOW],
    take: r[SEL.TAKE],
    k: r[SEL.K],
    eligible: r[SEL.ELIGIBLE],
  };
  const ok = sameBits(got.threshold, want.threshold) && got.below === want.below &&
    got.take === want.take && got.k === want.k && got.eligible === want.eligible &&
    r[SEL.K_REQUESTED] === k;
  if (!ok) {
    throw new Error(`${label}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)} (k ${k})`);
  }
  return want;
}

function checkMask(
  got: Uint32Array,
  data: Float32Array,
  sel: SelectRefResult,
  mode: SelectMode,
  largest: boolean,
  label: string,
) {
  const k = sel.k;
  const want = markRef(data, k, mode, largest, sel);
  let ones = 0;
  for (let i = 0; i < data.length; i++) {
    if (got[i] !== want[i]) {
      throw new Error(`${label}: mask[${i}] = ${got[i]}, want ${want[i]} (k ${k})`);
    }
    ones += got[i];
  }
  if (ones !== k) throw new Error(`${label}: ${ones} ones, want exactly ${k}`);
}

/** Runs select + mask for several (mode, largest, k) on one data array, all in one submit. */
async function runCases(
  gpu: Gpu,
  data: Float32Array,
  cases: { mode: SelectMode; largest: boolean; k: number }[],
  label: string,
  withMask = true,
) {
  const n = data.length;
  const td = gpu.tensor("f32", [n], { data });
  const results = cases.map(() => gpu.tensor("u32", [SELECT_RESULT_WORDS]));
  const masks = cases.map(() => (withMask ? gpu.tensor("u32", [n]) : undefined));
  for (const t of [...results, ...masks]) if (t) gpu.poison(t);
  const rec = gpu.recorder();
  cases.forEach((c, j) => {
    radixSelect(rec, { data: td, n, k: c.k, mode: c.mode, largest: c.largest, result: results[j] });
    const mask = masks[j];
    if (mask) {
      markSelected(rec, {
        data: td,
        n,
        mode: c.mode,
        largest: c.largest,
        result: results[j],
        mask,
      });
    }
  });
  // Gather every output into two tensors: two reads (awaits) instead of two per case.
  const allRes = gpu.tensor("u32", [cases.length * SELECT_RESULT_WORDS]);
  const allMask = gpu.tensor("u32", [withMask ? cases.length * n : 1]);
  cases.forEach((_, j) => {
    rec.copy(results[j], allRes, SELECT_RESULT_WORDS, 0, j * SELECT_RESULT_WORDS);
    const mask = masks[j];
    if (mask) rec.copy(mask, allMask, n, 0, j * n);
  });
  rec.submit();
  const res = await readU32(gpu, allRes);
  const mk = withMask ? await readU32(gpu, allMask) : undefined;
  for (let j = 0; j < cases.length; j++) {
    const c = cases[j];
    const l = `${label} n=${n} ${c.mode}${c.largest ? " largest" : ""}`;
    const r = res.slice(j * SELECT_RESULT_WORDS, (j + 1) * SELECT_RESULT_WORDS);
    const sel = checkResult(r, data, c.k, c.mode, c.largest, l);
    if (mk) checkMask(mk.subarray(j * n, (j + 1) * n), data, sel, c.mode, c.largest, l);
  }
  for (const t of [td, allRes, allMask, ...results, ...masks]) if (t) gpu.release(t);
}

gpuTest(
  "radixSelect + exactly-k mask: every mode, ties, k edge cases, small and prime n",
  async (gpu, rng) => {
    for (const n of [1, 2, 7, 97, 4099, 16_411]) {
      const data = tiedData(rng, n);
      const cases: { mode: SelectMode; largest: boolean; k: number }[] = [];
      for (const mode of MODES) {
        for (const largest of [false, true]) {
          const ks = new Set([0, 1, Math.max(0, n - 1), n, n + 5, rng.int(n + 1), rng.int(n + 1)]);
          // k within the eligible count, where the interesting ties are.
          const m = selectRef(data, n, mode, largest).eligible;
          if (m > 0) ks.add(1 + rng.int(m));
          for (const k of ks) cases.push({ mode, largest, k });
        }
      }
      await runCases(gpu, data, cases, "tied");
    }
  },
);

gpuTest("radixSelect on ~3M floats (multi-block, many ties) and a 2-D grid", async (gpu, rng) => {
  const n = 3_000_017;
  const data = tiedData(rng, n);
  await runCases(gpu, data, [
    { mode: "abs", largest: false, k: rng.int(n) },
    { mode: "positive", largest: false, k: Math.floor(0.3 * 0.45 * n) },
    { mode: "negative", largest: false, k: Math.floor(0.3 * 0.45 * n) },
    { mode: "value", largest: true, k: n - 1 },
  ], "3M");
  // 2-D grid: 25 blocks of SELECT_BLOCK on a 7-workgroup dimension limit.
  const n2 = 24 * SELECT_BLOCK + 13;
  const d2 = tiedData(rng, n2);
  await withSmallGrid(gpu, 7, () =>
    runCases(gpu, d2, [
      { mode: "value", largest: false, k: rng.int(n2) },
      { mode: "abs", largest: true, k: 1 + rng.int(n2) },
    ], "2-D grid"));
});

gpuTest("radixSelect with k in a GPU buffer; mask accumulate (SET prune set)", async (gpu, rng) => {
  const n = 50_021;
  const data = tiedData(rng, n);
  const td = gpu.tensor("f32", [n], { data });
  // k just past the many ties at ±0.25 (a grid value), so the tie rule decides the mask.
  let kPos = 2;
  let kNeg = 2;
  for (const v of data) {
    if (v > 0 && v < 0.25) kPos++;
    if (v < 0 && v > -0.25) kNeg++;
  }
  const kt = gpu.tensor("u32", [5], { data: new Uint32Array([7, 7, kPos, kNeg, 7]) });
  const rPos = gpu.tensor("u32", [SELECT_RESULT_WORDS]);
  const rNeg = gpu.tensor("u32", [SELECT_RESULT_WORDS]);
  const mask = gpu.tensor("u32", [n]);
  for (const t of [rPos, rNeg, mask]) gpu.poison(t);
  const rec = gpu.recorder();
  selectMask(rec, {
    data: td,
    n,
    k: { tensor: kt, index: 2 },
    mode: "positive",
    result: rPos,
    mask,
  });
  selectMask(rec, {
    data: td,
    n,
    k: { tensor: kt, index: 3 },
    mode: "negative",
    result: rNeg,
    mask,
    accumulate: true,
  });
  rec.submit();
  checkResult(await readU32(gpu, rPos), data, kPos, "positive", false, "gpu k positive");
  checkResult(await readU32(gpu, rNeg), data, kNeg, "negative", false, "gpu k negative");
  const want = markRef(data, kPos, "positive", false);
  const wantNeg = markRef(data, kNeg, "negative", false);
  const got = await readU32(gpu, mask);
  for (let i = 0; i < n; i++) {
    if (got[i] !== (want[i] | wantNeg[i])) throw new Error(`accumulated mask[${i}] = ${got[i]}`);
  }
});

gpuTest("radixSelect rejects bad arguments", (gpu) => {
  const d = gpu.tensor("f32", [10]);
  const r = gpu.tensor("u32", [SELECT_RESULT_WORDS]);
  const rec = gpu.recorder();
  const bad = [
    () => radixSelect(rec, { data: d, n: 11, k: 1, result: r }),
    () => radixSelect(rec, { data: d, n: 10, k: -1, result: r }),
    () => radixSelect(rec, { data: d, n: 10, k: 1.5, result: r }),
    () => radixSelect(rec, { data: d, n: 10, k: 1, result: gpu.tensor("u32", [4]) }),
    () => radixSelect(rec, { data: d, n: 10, k: { tensor: r, index: 0 }, result: r }),
    () => radixSelect(rec, { data: d, n: 10, k: 1, mode: "median" as SelectMode, result: r }),
    () => markSelected(rec, { data: d, n: 10, result: r, mask: gpu.tensor("u32", [9]) }),
  ];
  for (const f of bad) {
    let ok = false;
    try {
      f();
    } catch (e) {
      ok = e instanceof FiligreeError;
    }
    if (!ok) throw new Error(`expected a FiligreeError from ${f}`);
  }
});
