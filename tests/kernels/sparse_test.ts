import {
  FiligreeError,
  type Gpu,
  placeholderMirror,
  roundUp4,
  storageReadSlots,
  type Tensor,
  TEXTURE_READS,
} from "../../src/gpu/mod.ts";
import {
  checkCsr,
  csrFromCoo,
  type CsrHost,
  type CsrLayer,
  downloadCsr,
  maxRowLengths,
  randomCsr,
  randomMask,
  releaseCsr,
  toDense,
  uploadCsr,
} from "../../src/sparse/csr.ts";
import {
  adapterClass,
  chunkedQuadsPerDispatch,
  defaultGatherTuning,
  type GatherTuning,
  gradTQuadsPerDispatch,
  type GradTTuning,
  type InputSource,
  pickDense,
  ROW_ORDER,
  rowPasses,
  sddmm,
  SDDMM_VARIANTS,
  sddmmQuadsPerDispatch,
  type SddmmTuning,
  sparseBackward,
  sparseInputs,
  sparseParams,
  spmm,
  SPMM_VARIANTS,
  SPMM_WIDE,
  spmmT,
  weightGrad,
  type WeightGradPath,
  weightGradPath,
  WGRAD_RULES,
  wideChunk,
} from "../../src/kernels/sparse.ts";
import { sddmmRef, spmmAbsRef, spmmRef, spmmTRef } from "../../src/kernels/sparse_ref.ts";
import { rowOrder } from "../../src/kernels/row_order.ts";
import { f32 } from "../../src/gpu/mod.ts";
import { asF32, fromPadded, gpuTest, gradCheck, type Rng } from "../../src/testing/mod.ts";

// Tolerance (all three kernels): float32 sums of n products, checked per element as
// |gpu - ref| <= 1e-5 · sum|terms| (+1e-30), i.e. relative to the sum of absolute terms; inputs are
// rounded to f32 before the float64 reference sees them. A dropped or doubled term fails by O(1).
const REL = 1e-5;

function assertScaled(
  got: ArrayLike<number>,
  want: Float64Array,
  scale: Float64Array,
  label: string,
) {
  if (got.length !== want.length) {
    throw new Error(`${label}: got ${got.length} values, want ${want.length}`);
  }
  for (let i = 0; i < want.length; i++) {
    const tol = REL * scale[i] + 1e-30;
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      throw new Error(
        `${label}[${i}]: got ${got[i]}, want ${want[i]} (tol ${tol.toExponential(2)})`,
      );
    }
  }
}

/** Feature-major padded upload whose padding columns hold NaN (kernels must ignore them). */
function upload(gpu: Gpu, a: Float64Array, rows: number, batch: number, label: string): Tensor {
  const ld = roundUp4(batch);
  const data = new Float32Array(rows * ld).fill(NaN);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < batch; c++) data[r * ld + c] = a[r * batch + c];
  }
  return gpu.tensor("f32", [rows, ld], { data, label });
}

function output(gpu: Gpu, rows: number, batch: number, label: string): Tensor {
  const t = gpu.tensor("f32", [rows, roundUp4(batch)], { label });
  gpu.poison(t);
  return t;
}

const abs = (a: Float64Array) => a.map(Math.abs);

/**
 * Records and submits both row orders of a layer (the row kernels compute them once per
 * structure, then reuse them), so that a later dispatch count covers the kernels alone.
 */
function withOrders(gpu: Gpu, l: CsrLayer): CsrLayer {
  const r = gpu.recorder();
  rowOrder(r, l.rowPtrT, l.nOut, l.nIn);
  rowOrder(r, l.rowPtr, l.nIn, l.nOut);
  r.submit();
  return l;
}

/** Random layer with optional forced structure; weights N(0, 1) rounded to f32. */
function layer(
  rng: Rng,
  nIn: number,
  nOut: number,
  density: number,
  force: { emptyOut?: number; emptyIn?: number; denseOut?: number; denseIn?: number } = {},
): CsrHost {
  const m = randomMask(nIn, nOut, density, rng);
  const keep = new Set<number>();
  for (let n = 0; n < m.rows.length; n++) {
    if (m.cols[n] === force.emptyOut || m.rows[n] === force.emptyIn) continue;
    keep.add(m.rows[n] * nOut + m.cols[n]);
  }
  if (force.denseOut !== undefined) {
    for (let i = 0; i < nIn; i++) keep.add(i * nOut + force.denseOut);
  }
  if (force.denseIn !== undefined) {
    for (let j = 0; j < nOut; j++) keep.add(force.denseIn * nOut + j);
  }
  const flat = [...keep];
  const vals = asF32(rng.normal(flat.length));
  return csrFromCoo(
    nIn,
    nOut,
    flat.map((f) => Math.floor(f / nOut)),
    flat.map((f) => f % nOut),
    vals,
  );
}

interface Case {
  name: string;
  make: (rng: Rng) => CsrHost;
}

const CASES: Case[] = [
  { name: "1x1", make: (r) => layer(r, 1, 1, 1) },
  { name: "2x3 empty", make: (r) => layer(r, 2, 3, 0) },
  {
    name: "13x7 empty out 2, empty in 5",
    make: (r) => layer(r, 13, 7, 0.4, { emptyOut: 2, emptyIn: 5 }),
  },
  {
    name: "13x7 dense out 4, dense in 11",
    make: (r) => layer(r, 13, 7, 0.3, { denseOut: 4, denseIn: 11 }),
  },
  { name: "31x67 30%", make: (r) => layer(r, 31, 67, 0.3, { emptyOut: 66, denseOut: 0 }) },
  { name: "784x1000 1%", make: (r) => layer(r, 784, 1000, 0.01) },
  { name: "784x1000 5%", make: (r) => layer(r, 784, 1000, 0.05, { denseOut: 999, emptyOut: 0 }) },
];
// Batches 7 and 125 read their operands through texture mirrors (the loaders of
// shaders/sparse_textures_fns.wgsl), 1, 13 and 130 through storage buffers (sparse_buffers_fns.wgsl;
// inputsFor): both operand sources see small and large batches with NaN padding lanes, and the
// wide kernels (32-quad chunks from batch 125) run on both.
const BATCHES = [1, 7, 13, 125, 130];
/** The operand source the main tests force for a batch (and check that it is the one used). */
function inputsFor(gpu: Gpu, batch: number, rows: number[], nnz: number): InputSource {
  const want: InputSource = batch === 7 || batch === 125 ? "texture" : "buffer";
  const got = sparseInputs(gpu, rows, roundUp4(batch), nnz, want);
  if (got !== want) throw new Error(`batch ${batch}: ${want} operands unavailable (${got})`);
  return want;
}
const GATHER_TUNES: Partial<GatherTuning>[] = [
  {},
  { vb: 1 },
  { wg: 4, vb: 3, rj: 2 },
  {
    wg: 16,
    vb: 2,
  },
  { wg: 2, vb: 7, rj: 3, contiguous: true },
  { wg: 8, vb: 4, rj: 1, contiguous: false },
];
const SDDMM_TUNES: Partial<SddmmTuning>[] = [{}, { sg: 5, ch: 3 }, { sg: 1, ch: 1 }, {
  sg: 32,
  ch: 8,
}, { sg: 3, ch: 5, rs: 3 }];

Deno.test("csr: both orientations from COO match the dense matrix; invariants; errors", () => {
  // Hand-checked example (module docs).
  const h = csrFromCoo(2, 3, [1, 0, 1], [2, 1, 0], [9, 5, 7]);
  if (
    `${h.rowPtrT}|${h.colT}|${h.values}|${h.rowPtr}|${h.col}|${h.perm}` !==
      "0,1,2,3|1,0,1|7,5,9|0,1,3|1,0,2|1,0,2"
  ) {
    throw new Error(`csrFromCoo layout: ${JSON.stringify(h)}`);
  }
  let seed = 12345;
  const rand = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  for (
    const [nIn, nOut, d] of [[13, 7, 0.4], [50, 3, 0.9], [1, 1, 1], [97, 101, 0.02], [
      5,
      8,
      0,
    ]] as const
  ) {
    const m = randomMask(nIn, nOut, d, rand);
    if (m.rows.length !== Math.round(d * nIn * nOut)) {
      throw new Error(`randomMask count ${m.rows.length}`);
    }
    for (let n = 1; n < m.rows.length; n++) {
      if (m.rows[n] * nOut + m.cols[n] <= m.rows[n - 1] * nOut + m.cols[n - 1]) {
        throw new Error("randomMask order");
      }
    }
    // Shuffle the COO order: the builder must not depend on it.
    const order = [...m.rows.keys()].sort(() => rand() - 0.5);
    const vals = order.map(() => rand() - 0.5);
    const host = csrFromCoo(
      nIn,
      nOut,
      order.map((n) => m.rows[n]),
      order.map((n) => m.cols[n]),
      vals,
    );
    checkCsr(host);
    const dense = new Float64Array(nIn * nOut);
    order.forEach((n, t) => (dense[m.rows[n] * nOut + m.cols[n]] = Math.fround(vals[t])));
    const got = toDense(host);
    for (let t = 0; t < dense.length; t++) {
      if (got[t] !== dense[t]) throw new Error(`toDense[${t}]`);
    }
    // CSR(W) side agrees with the dense matrix through perm.
    for (let i = 0; i < nIn; i++) {
      for (let k = host.rowPtr[i]; k < host.rowPtr[i + 1]; k++) {
        if (host.values[host.perm[k]] !== dense[i * nOut + host.col[k]]) {
          throw new Error(`perm row ${i}`);
        }
      }
    }
  }
  const throws = (f: () => unknown, what: string) => {
    try {
      f();
    } catch (e) {
      if (e instanceof FiligreeError) return;
      throw e;
    }
    throw new Error(`expected FiligreeError: ${what}`);
  };
  throws(() => csrFromCoo(3, 3, [0, 1, 0], [2, 2, 2]), "duplicate");
  throws(() => csrFromCoo(3, 3, [3], [0]), "input out of range");
  throws(() => csrFromCoo(3, 3, [0], [-1]), "output out of range");
  throws(() => csrFromCoo(3, 3, [0.5], [0]), "non-integer");
  throws(() => csrFromCoo(3, 3, [0, 1], [0]), "length mismatch");
  throws(() => randomMask(3, 3, 1.5, rand), "density");
  const bad = csrFromCoo(3, 3, [0, 1], [1, 1]);
  bad.perm.reverse();
  throws(() => checkCsr(bad), "checkCsr perm");
  const bad2 = csrFromCoo(3, 3, [0, 0], [1, 2]);
  bad2.col.reverse();
  throws(() => checkCsr(bad2), "checkCsr order");
});

gpuTest("csr: upload/download round trip", async (gpu, rng) => {
  for (const h of [randomCsr(37, 11, 0.2, rng, () => rng.next()), csrFromCoo(4, 5, [], [])]) {
    const l = uploadCsr(gpu, h, "rt");
    const back = await downloadCsr(gpu, l);
    checkCsr(back);
    for (const k of ["rowPtrT", "colT", "values", "rowPtr", "col", "perm"] as const) {
      if (back[k].join() !== h[k].join()) throw new Error(`round trip ${k}`);
    }
    releaseCsr(gpu, l);
  }
});

gpuTest(
  "spmm matches float64 reference: fused bias+relu and identity with z, padding zero",
  async (gpu, rng) => {
    let t = 0;
    for (const c of CASES) {
      const h = c.make(rng);
      const l = uploadCsr(gpu, h, c.name);
      const v = Float64Array.from(h.values);
      for (const batch of BATCHES) {
        const tune = GATHER_TUNES[t++ % GATHER_TUNES.length];
        const x = asF32(rng.normal(h.nIn * batch));
        const bias = asF32(rng.normal(h.nOut));
        const tx = upload(gpu, x, h.nIn, batch, "x");
        const tb = gpu.tensor("f32", [h.nOut], { data: Float32Array.from(bias) });
        const ty = output(gpu, h.nOut, batch, "y");
        const tz = output(gpu, h.nOut, batch, "z");
        const ty2 = output(gpu, h.nOut, batch, "y2");
        const rec = gpu.recorder();
        const inputs = inputsFor(gpu, batch, [h.nIn], h.nnz);
        spmm(rec, { layer: l, x: tx, y: ty, bias: tb, batch, activation: "relu", tune, inputs });
        spmm(rec, { layer: l, x: tx, y: ty2, z: tz, batch, activation: "identity", tune, inputs });
        rec.submit();
        const label = `spmm ${c.name} batch ${batch} ${inputs} tune ${JSON.stringify(tune)}`;
        const scale = spmmAbsRef(h, v, x, batch);
        const relu = spmmRef(h, v, x, batch, bias, "relu");
        const ident = spmmRef(h, v, x, batch);
        const scaleB = scale.map((s, n) => s + Math.abs(bias[Math.floor(n / batch)]));
        assertScaled(
          fromPadded(await gpu.read(ty), h.nOut, batch, `${label} y`),
          relu.y,
          scaleB,
          `${label} relu y`,
        );
        assertScaled(
          fromPadded(await gpu.read(ty2), h.nOut, batch, `${label} y2`),
          ident.y,
          scale,
          `${label} id y`,
        );
        assertScaled(
          fromPadded(await gpu.read(tz), h.nOut, batch, `${label} z`),
          ident.z,
          scale,
          `${label} id z`,
        );
        for (const u of [tx, tb, ty, tz, ty2]) gpu.release(u);
      }
      releaseCsr(gpu, l);
    }
  },
);

gpuTest(
  "spmm skipZero: masked (stored-zero) weights skipped, the same outputs as without and float64",
  async (gpu, rng) => {
    for (const [nIn, nOut, density, batch] of [[37, 29, 0.3, 13], [101, 7, 0.5, 130]]) {
      const h = layer(rng, nIn, nOut, density);
      // Half of the stored values masked to zero, as the removal curves do.
      const values = Float32Array.from(h.values, (v) => (rng.uniform(1, 0, 1)[0] < 0.5 ? 0 : v));
      const hm = { ...h, values };
      const l = uploadCsr(gpu, hm);
      const x = asF32(rng.normal(nIn * batch));
      const bias = asF32(rng.normal(nOut));
      const tx = upload(gpu, x, nIn, batch, "x");
      const tb = gpu.tensor("f32", [nOut], { data: Float32Array.from(bias) });
      const outs: ReturnType<typeof fromPadded>[] = [];
      for (const tune of [{}, { skipZero: true }, { vb: 3, wg: 2, rj: 3, skipZero: true }]) {
        const ty = output(gpu, nOut, batch, "y");
        const rec = gpu.recorder();
        spmm(rec, { layer: l, x: tx, y: ty, bias: tb, batch, activation: "tanh", tune });
        rec.submit();
        outs.push(fromPadded(await gpu.read(ty), nOut, batch, "y"));
        gpu.release(ty);
      }
      const ref = spmmRef(hm, Float64Array.from(values), x, batch, bias, "tanh");
      const scale = spmmAbsRef(hm, Float64Array.from(values), x, batch).map((v, n) =>
        v + Math.abs(bias[Math.floor(n / batch)])
      );
      assertScaled(outs[1], ref.y, scale, `skipZero ${nIn}x${nOut}`);
      for (const o of outs.slice(1)) {
        o.forEach((v, n) => {
          if (v !== outs[0][n]) {
            throw new Error(`skipZero ${nIn}x${nOut} [${n}]: ${v} vs ${outs[0][n]}`);
          }
        });
      }
      for (const u of [tx, tb]) gpu.release(u);
      releaseCsr(gpu, l);
    }
  },
);

gpuTest("spmm stores z with bias+relu; a new batch size does not recompile", async (gpu, rng) => {
  const h = layer(rng, 29, 41, 0.2, { emptyOut: 3 });
  const l = uploadCsr(gpu, h);
  const v = Float64Array.from(h.values);
  let pipelines = -1;
  for (const batch of [5, 11, 23]) {
    const x = asF32(rng.normal(h.nIn * batch));
    const bias = asF32(rng.normal(h.nOut));
    const tx = upload(gpu, x, h.nIn, batch, "x");
    const tb = gpu.tensor("f32", [h.nOut], { data: Float32Array.from(bias) });
    const ty = output(gpu, h.nOut, batch, "y");
    const tz = output(gpu, h.nOut, batch, "z");
    const rec = gpu.recorder();
    spmm(rec, { layer: l, x: tx, y: ty, z: tz, bias: tb, batch, activation: "relu" });
    rec.submit();
    if (pipelines >= 0 && gpu.pipelineCount !== pipelines) {
      throw new Error(`batch ${batch} compiled a new pipeline`);
    }
    pipelines = gpu.pipelineCount;
    const want = spmmRef(h, v, x, batch, bias, "relu");
    const scale = spmmAbsRef(h, v, x, batch).map((s, n) =>
      s + Math.abs(bias[Math.floor(n / batch)])
    );
    assertScaled(
      fromPadded(await gpu.read(ty), h.nOut, batch, "y"),
      want.y,
      scale,
      `spmm y batch ${batch}`,
    );
    assertScaled(
      fromPadded(await gpu.read(tz), h.nOut, batch, "z"),
      want.z,
      scale,
      `spmm z batch ${batch}`,
    );
  }
});

gpuTest("spmmT matches float64 reference, plain and fused with relu'(z)", async (gpu, rng) => {
  let t = 0;
  for (const c of CASES) {
    const h = c.make(rng);
    const l = uploadCsr(gpu, h, c.name);
    const v = Float64Array.from(h.values);
    for (const batch of BATCHES) {
      const tune = GATHER_TUNES[t++ % GATHER_TUNES.length];
      const dy = asF32(rng.normal(h.nOut * batch));
      const z = asF32(rng.normal(h.nIn * batch));
      const tdy = upload(gpu, dy, h.nOut, batch, "dy");
      const tz = upload(gpu, z, h.nIn, batch, "z");
      const tdx = output(gpu, h.nIn, batch, "dx");
      const tdx2 = output(gpu, h.nIn, batch, "dx2");
      const rec = gpu.recorder();
      const inputs = inputsFor(gpu, batch, [h.nOut], h.nnz);
      spmmT(rec, { layer: l, dy: tdy, dx: tdx, batch, tune, inputs });
      spmmT(rec, { layer: l, dy: tdy, dx: tdx2, z: tz, batch, activation: "relu", tune, inputs });
      rec.submit();
      const label = `spmmT ${c.name} batch ${batch} ${inputs} tune ${JSON.stringify(tune)}`;
      const scale = spmmTRef(h, abs(v), abs(dy), batch);
      assertScaled(
        fromPadded(await gpu.read(tdx), h.nIn, batch, label),
        spmmTRef(h, v, dy, batch),
        scale,
        label,
      );
      assertScaled(
        fromPadded(await gpu.read(tdx2), h.nIn, batch, `${label} relu`),
        spmmTRef(h, v, dy, batch, z, "relu"),
        scale,
        `${label} relu`,
      );
      for (const u of [tdy, tz, tdx, tdx2]) gpu.release(u);
    }
    releaseCsr(gpu, l);
  }
});

gpuTest(
  "sddmm matches float64 reference (overwrite and accumulate), padding ignored",
  async (gpu, rng) => {
    let t = 0;
    for (const c of CASES) {
      const h = c.make(rng);
      const l = uploadCsr(gpu, h, c.name);
      for (const batch of BATCHES) {
        const tune = SDDMM_TUNES[t++ % SDDMM_TUNES.length];
        const x = asF32(rng.normal(h.nIn * batch));
        const dy = asF32(rng.normal(h.nOut * batch));
        const prior = asF32(rng.normal(h.nnz));
        const tx = upload(gpu, x, h.nIn, batch, "x");
        const tdy = upload(gpu, dy, h.nOut, batch, "dy");
        const tdv = gpu.tensor("f32", [h.nnz]);
        gpu.poison(tdv);
        const tacc = gpu.tensor("f32", [h.nnz], {
          data: h.nnz ? Float32Array.from(prior) : undefined,
        });
        const rec = gpu.recorder();
        const inputs = inputsFor(gpu, batch, [h.nIn, h.nOut], h.nnz);
        sddmm(rec, { layer: l, x: tx, dy: tdy, dvalues: tdv, batch, tune, inputs });
        sddmm(rec, {
          layer: l,
          x: tx,
          dy: tdy,
          dvalues: tacc,
          batch,
          tune,
          accumulate: true,
          inputs,
        });
        rec.submit();
        const label = `sddmm ${c.name} batch ${batch} ${inputs} tune ${JSON.stringify(tune)}`;
        const want = sddmmRef(h, x, dy, batch);
        const scale = sddmmRef(h, abs(x), abs(dy), batch);
        assertScaled(await gpu.read(tdv), want, scale, label);
        assertScaled(
          await gpu.read(tacc),
          want.map((w, k) => w + prior[k]),
          scale.map((s, k) => s + Math.abs(prior[k])),
          `${label} accumulate`,
        );
        for (const u of [tx, tdy, tdv, tacc]) gpu.release(u);
      }
      releaseCsr(gpu, l);
    }
  },
);

const GRAD_T_TUNES: Partial<GradTTuning>[] = [
  {},
  { ch: 1 },
  { ch: 3, gr: 5 },
  { ch: 8, gr: 1 },
  { ch: 5, gr: 32 },
  { ch: 32 },
  { ch: 13, gr: 3 },
];

gpuTest(
  "sparseBackward (grad_t: spmmT and sddmm in one pass) matches both float64 references",
  async (gpu, rng) => {
    let t = 0;
    for (const c of CASES) {
      const h = c.make(rng);
      const l = uploadCsr(gpu, h, c.name);
      const v = Float64Array.from(h.values);
      for (const batch of BATCHES) {
        const tune = GRAD_T_TUNES[t++ % GRAD_T_TUNES.length];
        const x = asF32(rng.normal(h.nIn * batch));
        const dy = asF32(rng.normal(h.nOut * batch));
        const prior = asF32(rng.normal(h.nnz));
        const tx = upload(gpu, x, h.nIn, batch, "x");
        const tdy = upload(gpu, dy, h.nOut, batch, "dy");
        const label = `grad_t ${c.name} batch ${batch} tune ${JSON.stringify(tune)}`;
        const wantDv = sddmmRef(h, x, dy, batch);
        const scaleDv = sddmmRef(h, abs(x), abs(dy), batch);
        const wantDx = spmmTRef(h, v, dy, batch);
        const scaleDx = spmmTRef(h, abs(v), abs(dy), batch);
        for (const accumulate of [false, true]) {
          const tdx = output(gpu, h.nIn, batch, "dx");
          const tdv = gpu.tensor("f32", [h.nnz], {
            data: accumulate && h.nnz ? Float32Array.from(prior) : undefined,
          });
          if (!accumulate) gpu.poison(tdv);
          const rec = gpu.recorder();
          const inputs = inputsFor(gpu, batch, [h.nIn, h.nOut], h.nnz);
          const args = {
            layer: l,
            x: tx,
            dy: tdy,
            dx: tdx,
            dvalues: tdv,
            batch,
            accumulate,
            tune,
            inputs,
          };
          const path = sparseBackward(rec, { ...args, path: "fused" });
          if (h.nnz > 0 && path !== "fused") throw new Error(`${label}: took ${path}`);
          rec.submit();
          const lbl = `${label}${accumulate ? " accumulate" : ""}`;
          assertScaled(
            fromPadded(await gpu.read(tdx), h.nIn, batch, `${lbl} dx`),
            wantDx,
            scaleDx,
            `${lbl} dx`,
          );
          assertScaled(
            await gpu.read(tdv),
            accumulate ? wantDv.map((w, k) => w + prior[k]) : wantDv,
            accumulate ? scaleDv.map((s, k) => s + Math.abs(prior[k])) : scaleDv,
            `${lbl} dvalues`,
          );
          gpu.release(tdx);
          gpu.release(tdv);
        }
        gpu.release(tx);
        gpu.release(tdy);
      }
      releaseCsr(gpu, l);
    }
  },
);

gpuTest(
  "sparseBackward: long rows split the batch over dispatches; auto and separate paths agree",
  async (gpu, rng) => {
    // ch 1: a row of W with 1000 nonzeros allows 32 quads per dispatch; batch 300 is 75 quads.
    const h = layer(rng, 5, 1000, 0.01, { denseIn: 2 });
    if (maxRowLengths(h).in !== 1000) throw new Error("test layer: row 2 should be dense");
    if (gradTQuadsPerDispatch(1000, { ch: 1 }) !== 32) throw new Error("quads per dispatch");
    const l = withOrders(gpu, uploadCsr(gpu, h));
    const dense = csrFromCoo(3, 2, [0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1], [1, -2, 3, 0.5, -1, 2]);
    const ld = uploadCsr(gpu, dense);
    for (const [hh, ll, batch] of [[h, l, 300], [dense, ld, 9]] as const) {
      const x = asF32(rng.normal(hh.nIn * batch));
      const dy = asF32(rng.normal(hh.nOut * batch));
      const tx = upload(gpu, x, hh.nIn, batch, "x");
      const tdy = upload(gpu, dy, hh.nOut, batch, "dy");
      const vv = Float64Array.from(hh.values);
      for (const [path, tune] of [["fused", { ch: 1 }], ["auto", {}], ["separate", {}]] as const) {
        const tdx = output(gpu, hh.nIn, batch, "dx");
        const tdv = gpu.tensor("f32", [hh.nnz]);
        gpu.poison(tdv);
        const rec = gpu.recorder();
        const took = sparseBackward(rec, {
          layer: ll,
          x: tx,
          dy: tdy,
          dx: tdx,
          dvalues: tdv,
          batch,
          path,
          tune,
        });
        if (hh === h && path === "fused" && rec.dispatches !== 3) {
          throw new Error(`expected 2 dispatches, got ${rec.dispatches}`);
        }
        if (path === "separate" && took === "fused") throw new Error("separate path fused");
        if (hh === dense && path === "auto" && took !== weightGradPath(gpu, 3, 2, 6, batch)) {
          throw new Error(`auto on a dense layer took ${took}`);
        }
        rec.submit();
        const label = `${hh === h ? "long rows" : "dense"} ${path}`;
        assertScaled(
          fromPadded(await gpu.read(tdx), hh.nIn, batch, label),
          spmmTRef(hh, vv, dy, batch),
          spmmTRef(hh, abs(vv), abs(dy), batch),
          `${label} dx`,
        );
        assertScaled(
          await gpu.read(tdv),
          sddmmRef(hh, x, dy, batch),
          sddmmRef(hh, abs(x), abs(dy), batch),
          `${label} dvalues`,
        );
        gpu.release(tdx);
        gpu.release(tdv);
      }
      gpu.release(tx);
      gpu.release(tdy);
    }
    releaseCsr(gpu, l);
    releaseCsr(gpu, ld);
  },
);

gpuTest(
  "spmm/spmmT fused non-ReLU activations (leaky_relu with a parameter, tanh)",
  async (gpu, rng) => {
    // Extra tolerance for the activation's own float32 evaluation: 2e-6·(1 + |want|).
    const h = layer(rng, 37, 23, 0.3, { emptyOut: 1, denseOut: 2 });
    const l = uploadCsr(gpu, h);
    const v = Float64Array.from(h.values);
    const batch = 13;
    for (const [act, param] of [["leaky_relu", 0.1], ["tanh", undefined]] as const) {
      const x = asF32(rng.normal(h.nIn * batch));
      const dy = asF32(rng.normal(h.nOut * batch));
      const zp = asF32(rng.normal(h.nIn * batch));
      const tx = upload(gpu, x, h.nIn, batch, "x");
      const tdy = upload(gpu, dy, h.nOut, batch, "dy");
      const tzp = upload(gpu, zp, h.nIn, batch, "zp");
      const ty = output(gpu, h.nOut, batch, "y");
      const tz = output(gpu, h.nOut, batch, "z");
      const tdx = output(gpu, h.nIn, batch, "dx");
      const rec = gpu.recorder();
      spmm(rec, { layer: l, x: tx, y: ty, z: tz, batch, activation: act, actParam: param });
      spmmT(rec, { layer: l, dy: tdy, dx: tdx, z: tzp, batch, activation: act, actParam: param });
      rec.submit();
      const want = spmmRef(h, v, x, batch, undefined, act, param);
      const scale = spmmAbsRef(h, v, x, batch);
      const loose = (w: Float64Array, s: Float64Array) =>
        s.map((u, n) => u + (2e-6 / REL) * (1 + Math.abs(w[n])));
      assertScaled(
        fromPadded(await gpu.read(tz), h.nOut, batch, "z"),
        want.z,
        scale,
        `spmm ${act} z`,
      );
      assertScaled(
        fromPadded(await gpu.read(ty), h.nOut, batch, "y"),
        want.y,
        loose(want.y, scale),
        `spmm ${act} y`,
      );
      const wantDx = spmmTRef(h, v, dy, batch, zp, act, param);
      const scaleDx = spmmTRef(h, abs(v), abs(dy), batch);
      assertScaled(
        fromPadded(await gpu.read(tdx), h.nIn, batch, "dx"),
        wantDx,
        loose(wantDx, scaleDx),
        `spmmT ${act}'`,
      );
      for (const u of [tx, tdy, tzp, ty, tz, tdx]) gpu.release(u);
    }
  },
);

gpuTest("more than 65,535 rows: 2-D grids for spmm, spmmT and sddmm", async (gpu, rng) => {
  const batch = 3;
  const wide = layer(rng, 3, 70_001, 0.4); // spmm/sddmm: 70,001 output rows
  const tall = layer(rng, 70_001, 3, 0.4); // spmmT: 70,001 input rows
  const lw = uploadCsr(gpu, wide);
  const lt = uploadCsr(gpu, tall);
  const vw = Float64Array.from(wide.values);
  const vt = Float64Array.from(tall.values);
  const x = asF32(rng.normal(3 * batch));
  const dyW = asF32(rng.normal(70_001 * batch));
  const dyT = asF32(rng.normal(3 * batch));
  const tx = upload(gpu, x, 3, batch, "x");
  const tdyW = upload(gpu, dyW, 70_001, batch, "dyW");
  const tdyT = upload(gpu, dyT, 3, batch, "dyT");
  const ty = output(gpu, 70_001, batch, "y");
  const tdx = output(gpu, 70_001, batch, "dx");
  const tdv = gpu.tensor("f32", [wide.nnz]);
  gpu.poison(tdv);
  const rec = gpu.recorder();
  spmm(rec, { layer: lw, x: tx, y: ty, batch });
  spmmT(rec, { layer: lt, dy: tdyT, dx: tdx, batch });
  sddmm(rec, { layer: lw, x: tx, dy: tdyW, dvalues: tdv, batch });
  rec.submit();
  assertScaled(
    fromPadded(await gpu.read(ty), 70_001, batch, "y"),
    spmmRef(wide, vw, x, batch).y,
    spmmAbsRef(wide, vw, x, batch),
    "spmm 2-D grid",
  );
  assertScaled(
    fromPadded(await gpu.read(tdx), 70_001, batch, "dx"),
    spmmTRef(tall, vt, dyT, batch),
    spmmTRef(tall, abs(vt), abs(dyT), batch),
    "spmmT 2-D grid",
  );
  assertScaled(
    await gpu.read(tdv),
    sddmmRef(wide, x, dyW, batch),
    sddmmRef(wide, abs(x), abs(dyW), batch),
    "sddmm 2-D grid",
  );
});

gpuTest(
  "loop bounds: the wide spmm and sddmm split long batches over dispatches, fall back when a chunk cannot fit",
  async (gpu, rng) => {
    // A row of 1,000 nonzeros walked once per 32-quad chunk is 1,002 · 33 = 33,066 iterations:
    // one chunk per dispatch, so batch 300 (75 quads) takes 3 dispatches.
    if (chunkedQuadsPerDispatch(1000, 32) !== 32) throw new Error("chunk bound");
    const batch = 300;
    const hs = layer(rng, 1000, 3, 0.01, { denseOut: 1 }); // spmm: row 1 of Wᵀ is dense
    const hw = layer(rng, 3, 1000, 0.01, { denseIn: 1 }); // wgrad_t: row 1 of W is dense
    const ls = withOrders(gpu, uploadCsr(gpu, hs));
    const lw = withOrders(gpu, uploadCsr(gpu, hw));
    const x = asF32(rng.normal(1000 * batch));
    const x3 = asF32(rng.normal(3 * batch));
    const dy = asF32(rng.normal(1000 * batch));
    const tx = upload(gpu, x, 1000, batch, "x");
    const tx3 = upload(gpu, x3, 3, batch, "x3");
    const tdy = upload(gpu, dy, 1000, batch, "dy");
    const ty = output(gpu, 3, batch, "y");
    const tdv = gpu.tensor("f32", [hw.nnz]);
    gpu.poison(tdv);
    const rec = gpu.recorder();
    spmm(rec, { layer: ls, x: tx, y: ty, batch, tune: { ...SPMM_VARIANTS.wide } });
    const afterSpmm = rec.dispatches;
    sddmm(rec, { layer: lw, x: tx3, dy: tdy, dvalues: tdv, batch, tune: SDDMM_VARIANTS.wide });
    const counts = [afterSpmm, rec.dispatches - afterSpmm];
    if (counts.join() !== "3,3") throw new Error(`wide spmm, sddmm dispatches: ${counts}`);
    rec.submit();
    const v = Float64Array.from(hs.values);
    assertScaled(
      fromPadded(await gpu.read(ty), 3, batch, "spmm wide split"),
      spmmRef(hs, v, x, batch).y,
      spmmAbsRef(hs, v, x, batch),
      "spmm wide split",
    );
    assertScaled(
      await gpu.read(tdv),
      sddmmRef(hw, x3, dy, batch),
      sddmmRef(hw, abs(x3), abs(dy), batch),
      "sddmm wide split",
    );
    // Rows of 2,000 cannot take a 32-quad chunk (2,002 · 33 > 65,000): rows up to 1,967 take one
    // pass at 32 quads, longer ones (here the dense row) a second in 16-quad chunks, one per
    // dispatch, so batch 128 takes 1 + 2 dispatches per kernel; the short row is in the first.
    if (wideChunk(32, 32, 2000) !== 16 || chunkedQuadsPerDispatch(2000, 16) !== 16) {
      throw new Error("chunk-16 bound");
    }
    const passes = rowPasses(32, 32, 2000);
    if (
      JSON.stringify(passes.map((s) => [s.lo, s.hi, s.ch, s.step])) !==
        "[[0,1967,32,32],[1968,4294967295,16,16]]"
    ) {
      throw new Error(`row passes ${JSON.stringify(passes)}`);
    }
    const hs8 = layer(rng, 2000, 2, 0.01, { denseOut: 1 });
    const hw8 = layer(rng, 2, 2000, 0.01, { denseIn: 1 });
    const ls8 = withOrders(gpu, uploadCsr(gpu, hs8));
    const lw8 = withOrders(gpu, uploadCsr(gpu, hw8));
    const x8 = asF32(rng.normal(2000 * 128));
    const x2 = asF32(rng.normal(2 * 128));
    const dy8 = asF32(rng.normal(2000 * 128));
    const tx8 = upload(gpu, x8, 2000, 128, "x8");
    const tx2 = upload(gpu, x2, 2, 128, "x2");
    const tdy8 = upload(gpu, dy8, 2000, 128, "dy8");
    const ty8 = output(gpu, 2, 128, "y8");
    const tdv8 = gpu.tensor("f32", [hw8.nnz]);
    gpu.poison(tdv8);
    const r8 = gpu.recorder();
    spmm(r8, { layer: ls8, x: tx8, y: ty8, batch: 128, tune: { ...SPMM_VARIANTS.wide } });
    sddmm(r8, {
      layer: lw8,
      x: tx2,
      dy: tdy8,
      dvalues: tdv8,
      batch: 128,
      tune: SDDMM_VARIANTS.wide,
    });
    // The fused backward over the same W: the short row at 32 quads, the dense one at 8 quads
    // (gradTChunk; 24 quads a dispatch: 2 dispatches).
    const tdx2 = output(gpu, 2, 128, "dx2");
    const tdvF = gpu.tensor("f32", [hw8.nnz]);
    gpu.poison(tdvF);
    const took = sparseBackward(r8, {
      layer: lw8,
      x: tx2,
      dy: tdy8,
      dx: tdx2,
      dvalues: tdvF,
      batch: 128,
      path: "fused",
    });
    if (took !== "fused" || r8.dispatches !== 9) {
      throw new Error(`passes: ${took}, ${r8.dispatches} dispatches, not fused in 3 + 3 + 3`);
    }
    r8.submit();
    const v8 = Float64Array.from(hs8.values);
    assertScaled(
      fromPadded(await gpu.read(ty8), 2, 128, "spmm wide chunk 16"),
      spmmRef(hs8, v8, x8, 128).y,
      spmmAbsRef(hs8, v8, x8, 128),
      "spmm wide chunk 16",
    );
    assertScaled(
      await gpu.read(tdv8),
      sddmmRef(hw8, x2, dy8, 128),
      sddmmRef(hw8, abs(x2), abs(dy8), 128),
      "sddmm wide chunk 16",
    );
    const vw8 = Float64Array.from(hw8.values);
    assertScaled(
      fromPadded(await gpu.read(tdx2), 2, 128, "grad_t passes"),
      spmmTRef(hw8, vw8, dy8, 128),
      spmmTRef(hw8, abs(vw8), abs(dy8), 128),
      "grad_t passes dx",
    );
    assertScaled(
      await gpu.read(tdvF),
      sddmmRef(hw8, x2, dy8, 128),
      sddmmRef(hw8, abs(x2), abs(dy8), 128),
      "grad_t passes dW",
    );
    // Rows of 8,000 fit no chunk: the lane gather and the Wᵀ-row SDDMM run (one dispatch each).
    const big = uploadCsr(gpu, csrFromCoo(8000, 1, [0, 7999], [0, 0], [1, 2]));
    const bigW = uploadCsr(gpu, csrFromCoo(1, 8000, [0, 0], [0, 7999], [1, 2]));
    const a = gpu.tensor("f32", [8000 * 128], { zero: true });
    const b = gpu.tensor("f32", [8000 * 128], { zero: true });
    const r = gpu.recorder();
    spmm(r, { layer: big, x: a, y: b, batch: 128, tune: { ...SPMM_VARIANTS.wide } });
    sddmm(r, { layer: bigW, x: b, dy: a, dvalues: tdv, batch: 128, tune: SDDMM_VARIANTS.wide });
    if (r.dispatches !== 2) throw new Error(`fallbacks: ${r.dispatches} dispatches, not 2`);
    r.submit();
    await gpu.sync();
    for (const l of [ls, lw, ls8, lw8, big, bigW]) releaseCsr(gpu, l);
  },
);

gpuTest(
  "row passes: a pass of spmm_wide writes exactly the rows of its length band",
  async (gpu, rng) => {
    // W (30 x 4): row j of Wᵀ has 2j + 1 nonzeros (1, 3, 5, 7); the band [3, 5] is rows 1 and 2.
    const rows: number[] = [];
    const cols: number[] = [];
    for (let j = 0; j < 4; j++) {
      for (let i = 0; i < 2 * j + 1; i++) {
        (rows.push(i * 4 + j), cols.push(j));
      }
    }
    const h = csrFromCoo(30, 4, rows, cols, Array.from(rows, () => rng.next() - 0.5));
    const l = uploadCsr(gpu, h);
    const batch = 37;
    const x = asF32(rng.normal(30 * batch));
    const tx = upload(gpu, x, 30, batch, "x");
    const ty = output(gpu, 4, batch, "y");
    const ld4 = roundUp4(batch) / 4;
    const rec = gpu.recorder();
    const k = gpu.kernel(SPMM_WIDE, {
      ACT: 0,
      HAS_BIAS: 0,
      STORE_Z: 0,
      GR: 8,
      CHT: 8,
      SKIP_ZERO: 0,
    });
    const pass = { lo: 3, hi: 5, ch: 8, step: ld4 };
    rec.dispatch(k, {
      p: gpu.uniform(sparseParams([4, batch, ld4, 0, 0, ld4, 0, f32(0)], pass)),
      row_ptr_t: l.rowPtrT,
      col_t: l.colT,
      vals: l.values,
      x_in: tx,
      bias: gpu.tensor("f32", [4], { zero: true }),
      y_out: ty,
      z_out: gpu.tensor("f32", [4 * 4 * ld4], { zero: true }),
      row_order8: placeholderMirror(gpu, "r32uint"),
    }, [1, 1, 1]);
    rec.submit();
    const y = await gpu.read(ty); // padded rows of 4 · ld4; rows outside the band keep the poison
    const want = spmmRef(h, Float64Array.from(h.values), x, batch).z;
    for (let j = 0; j < 4; j++) {
      for (let b = 0; b < batch; b++) {
        const v = y[j * 4 * ld4 + b];
        const inBand = j === 1 || j === 2;
        if (inBand ? !(Math.abs(v - want[j * batch + b]) <= 1e-5) : !Number.isNaN(v)) {
          throw new Error(`row ${j} (length ${2 * j + 1}), sample ${b}: ${v}`);
        }
      }
    }
    releaseCsr(gpu, l);
  },
);

gpuTest(
  "row order: spmm_wide, wgrad_t and grad_t give bit-identical results walking rows longest first or in index order",
  async (gpu, rng) => {
    const saved = { ...ROW_ORDER };
    try {
      for (const batch of [37, 128]) {
        const h = layer(rng, 301, 257, 0.07, { denseOut: 5, denseIn: 7, emptyOut: 9, emptyIn: 11 });
        const xs = asF32(rng.normal(301 * batch));
        const x = upload(gpu, xs, 301, batch, "x");
        const dy = upload(gpu, asF32(rng.normal(257 * batch)), 257, batch, "dy");
        const runs: ArrayLike<number>[][] = [];
        for (const on of [true, false]) {
          ROW_ORDER.cpu = ROW_ORDER.gpu = on;
          const l = uploadCsr(gpu, h); // a fresh structure: its orders are not cached yet
          const y = output(gpu, 257, batch, "y");
          const dx = output(gpu, 301, batch, "dx");
          const dw = gpu.tensor("f32", [h.nnz]);
          const dwF = gpu.tensor("f32", [h.nnz]);
          gpu.poison(dw);
          gpu.poison(dwF);
          const rec = gpu.recorder();
          spmm(rec, { layer: l, x, y, batch, activation: "relu", tune: SPMM_VARIANTS.wide });
          sddmm(rec, { layer: l, x, dy, dvalues: dw, batch, tune: SDDMM_VARIANTS.wide });
          const took = sparseBackward(rec, {
            layer: l,
            x,
            dy,
            dx,
            dvalues: dwF,
            batch,
            path: "fused",
          });
          // spmm 1 + wgrad_t 1 + grad_t 1 dispatches, plus two sorts when ordered
          if (took !== "fused" || (rec.dispatches > 3) !== on) {
            throw new Error(`ordered ${on}: ${took}, ${rec.dispatches} dispatches`);
          }
          rec.submit();
          runs.push(await Promise.all([y, dw, dx, dwF].map((t) => gpu.read(t))));
          releaseCsr(gpu, l);
        }
        runs[0].forEach((a, n) => {
          const b = runs[1][n];
          for (let e = 0; e < a.length; e++) {
            if (!Object.is(a[e], b[e])) {
              throw new Error(`batch ${batch}, output ${n}, element ${e}: ${a[e]} vs ${b[e]}`);
            }
          }
        });
        const v = Float64Array.from(h.values);
        assertScaled(
          fromPadded(runs[0][0], 257, batch, "y"),
          spmmRef(h, v, xs, batch, undefined, "relu").y,
          spmmAbsRef(h, v, xs, batch),
          "ordered spmm",
        );
      }
    } finally {
      Object.assign(ROW_ORDER, saved);
    }
  },
);

gpuTest(
  "loop bounds: sddmm splits long batches into dispatches; oversize layers refused",
  async (gpu, rng) => {
    // sg 1, ch 1: a row of 1000 nonzeros over 75 quads is 75,000 inner iterations in one
    // invocation, over llvmpipe's cap: the wrapper must split the batch (64 quads per dispatch).
    const h = layer(rng, 1000, 3, 0.01, { denseOut: 1 });
    if (maxRowLengths(h).out !== 1000) throw new Error("test layer: row 1 should be dense");
    const batch = 300;
    const tune = { sg: 1, ch: 1, wide: 0 };
    if (sddmmQuadsPerDispatch(1000, tune) !== 64) {
      throw new Error(
        `quads ${sddmmQuadsPerDispatch(1000, tune)}`,
      );
    }
    const l = uploadCsr(gpu, h);
    const x = asF32(rng.normal(h.nIn * batch));
    const dy = asF32(rng.normal(h.nOut * batch));
    const tx = upload(gpu, x, h.nIn, batch, "x");
    const tdy = upload(gpu, dy, h.nOut, batch, "dy");
    const tdv = gpu.tensor("f32", [h.nnz]);
    gpu.poison(tdv);
    const rec = gpu.recorder();
    sddmm(rec, { layer: l, x: tx, dy: tdy, dvalues: tdv, batch, tune });
    if (rec.dispatches !== 2) throw new Error(`expected 2 dispatches, got ${rec.dispatches}`);
    rec.submit();
    assertScaled(
      await gpu.read(tdv),
      sddmmRef(h, x, dy, batch),
      sddmmRef(h, abs(x), abs(dy), batch),
      "sddmm split",
    );

    const expectError = (f: () => void, what: string) => {
      try {
        f();
      } catch (e) {
        if (e instanceof FiligreeError) return;
        throw e;
      }
      throw new Error(`expected FiligreeError: ${what}`);
    };
    const big = uploadCsr(gpu, csrFromCoo(70_000, 2, [0], [1], [1]));
    const bigT = uploadCsr(gpu, csrFromCoo(2, 70_000, [0], [1], [1]));
    const a = gpu.tensor("f32", [70_000 * 4]);
    const b = gpu.tensor("f32", [70_000 * 4]);
    const r = gpu.recorder();
    expectError(
      () => spmm(r, { layer: big, x: a, y: b, batch: 1 }),
      "spmm nIn over the loop bound",
    );
    expectError(
      () => spmmT(r, { layer: bigT, dy: a, dx: b, batch: 1 }),
      "spmmT nOut over the loop bound",
    );
    expectError(
      () => spmmT(r, { layer: l, dy: tdy, dx: tx, batch, activation: "relu" }),
      "spmmT relu without z",
    );
    expectError(() => spmm(r, { layer: l, x: tx, y: tdy, batch: batch + 4 }), "spmm x too small");
    expectError(() => spmm(r, { layer: l, x: tx, y: tx, batch }), "spmm x aliasing y");
    expectError(() => spmm(r, { layer: l, x: tx, y: a, batch, tune: { vb: 9 } }), "spmm vb 9");
    expectError(
      () => sddmm(r, { layer: l, x: tx, dy: tdy, dvalues: tdv, batch, tune: { ch: 9 } }),
      "sddmm ch 9",
    );
    expectError(() => spmm(r, { layer: l, x: tx, y: a, batch: 0 }), "batch 0");
    expectError(
      () => spmm(r, { layer: l, x: tx, y: a, batch, activation: "nope" }),
      "unknown activation",
    );
    if (r.dispatches !== 0) throw new Error("a refused call dispatched");
  },
);

gpuTest(
  "gradients: finite differences of the float64 references, then GPU vs reference",
  async (gpu, rng) => {
    const h = layer(rng, 17, 11, 0.35, { emptyOut: 4, denseOut: 2 });
    const batch = 7;
    const v = Float64Array.from(h.values);
    const rowSums = (d: Float64Array, rows: number) => {
      const s = new Float64Array(rows);
      for (let j = 0; j < rows; j++) for (let b = 0; b < batch; b++) s[j] += d[j * batch + b];
      return s;
    };
    // Linear layer: d/dx, d/dvalues, d/dbias of sum(y · dOut), y = Wᵀx + bias.
    gradCheck(
      ([x, vals, bias]) => spmmRef(h, vals, x, batch, bias).y,
      (
        [x, vals],
        dOut,
      ) => [spmmTRef(h, vals, dOut, batch), sddmmRef(h, x, dOut, batch), rowSums(dOut, h.nOut)],
      [rng.normal(h.nIn * batch), rng.normal(h.nnz), rng.normal(h.nOut)],
      { rng, label: "spmm linear", samples: 40 },
    );
    // Fused chain: y = relu(Wᵀ relu(z0)); d/dz0 is spmmT with relu'(z0) fused, d/dvalues is sddmm
    // at x = relu(z0) with dz = dOut · relu'(z).
    const relu = (a: Float64Array) => a.map((u) => Math.max(u, 0));
    const chainGrads = (z0: Float64Array, vals: Float64Array, dOut: Float64Array) => {
      const { z } = spmmRef(h, vals, relu(z0), batch);
      const dz = dOut.map((d, n) => (z[n] > 0 ? d : 0));
      return {
        dz,
        dz0: spmmTRef(h, vals, dz, batch, z0, "relu"),
        dv: sddmmRef(h, relu(z0), dz, batch),
      };
    };
    gradCheck(
      ([z0, vals]) => spmmRef(h, vals, relu(z0), batch, undefined, "relu").y,
      ([z0, vals], dOut) => {
        const g = chainGrads(z0, vals, dOut);
        return [g.dz0, g.dv];
      },
      [rng.normal(h.nIn * batch), rng.normal(h.nnz)],
      { rng, label: "spmm relu chain", samples: 40 },
    );

    // GPU backward kernels against the checked reference gradients.
    const z0 = asF32(rng.normal(h.nIn * batch));
    const dOut = asF32(rng.normal(h.nOut * batch));
    const g = chainGrads(z0, v, dOut);
    const dz = asF32(g.dz);
    const x = relu(z0);
    const l = uploadCsr(gpu, h);
    const tz0 = upload(gpu, z0, h.nIn, batch, "z0");
    const tx = upload(gpu, x, h.nIn, batch, "x");
    const tdz = upload(gpu, dz, h.nOut, batch, "dz");
    const tdz0 = output(gpu, h.nIn, batch, "dz0");
    const tdv = gpu.tensor("f32", [h.nnz]);
    gpu.poison(tdv);
    const rec = gpu.recorder();
    spmmT(rec, { layer: l, dy: tdz, dx: tdz0, z: tz0, batch, activation: "relu" });
    sddmm(rec, { layer: l, x: tx, dy: tdz, dvalues: tdv, batch });
    rec.submit();
    assertScaled(
      fromPadded(await gpu.read(tdz0), h.nIn, batch, "dz0"),
      spmmTRef(h, v, dz, batch, z0, "relu"),
      spmmTRef(h, abs(v), abs(dz), batch),
      "GPU spmmT vs reference gradient",
    );
    assertScaled(
      await gpu.read(tdv),
      sddmmRef(h, x, dz, batch),
      sddmmRef(h, x, abs(dz), batch),
      "GPU sddmm vs reference",
    );
  },
);

gpuTest(
  "spmm/spmmT: every named variant matches float64 at batches 1, 3, 37, 129 (empty and full rows)",
  async (gpu, rng) => {
    const layers = [
      layer(rng, 37, 53, 0.2, { emptyOut: 5, emptyIn: 7, denseOut: 11, denseIn: 13 }),
      layer(rng, 301, 97, 0.05, { emptyOut: 0, denseOut: 96 }),
    ];
    if (!Object.values(SPMM_VARIANTS).includes(defaultGatherTuning(gpu))) {
      throw new Error("the default gather tuning is not a named variant");
    }
    for (const h of layers) {
      const l = uploadCsr(gpu, h);
      const v = Float64Array.from(h.values);
      for (const batch of [1, 3, 37, 129]) {
        const x = asF32(rng.normal(h.nIn * batch));
        const bias = asF32(rng.normal(h.nOut));
        const dy = asF32(rng.normal(h.nOut * batch));
        const zp = asF32(rng.normal(h.nIn * batch));
        const tx = upload(gpu, x, h.nIn, batch, "x");
        const tdy = upload(gpu, dy, h.nOut, batch, "dy");
        const tzp = upload(gpu, zp, h.nIn, batch, "zp");
        const tb = gpu.tensor("f32", [h.nOut], { data: Float32Array.from(bias) });
        const want = spmmRef(h, v, x, batch, bias, "relu");
        const scale = spmmAbsRef(h, v, x, batch).map((u, n) =>
          u + Math.abs(bias[Math.floor(n / batch)])
        );
        const wantDx = spmmTRef(h, v, dy, batch, zp, "relu");
        const scaleDx = spmmTRef(h, abs(v), abs(dy), batch);
        for (const [name, tune] of Object.entries(SPMM_VARIANTS)) {
          const ty = output(gpu, h.nOut, batch, "y");
          const tz = output(gpu, h.nOut, batch, "z");
          const tdx = output(gpu, h.nIn, batch, "dx");
          const rec = gpu.recorder();
          spmm(rec, { layer: l, x: tx, y: ty, z: tz, bias: tb, batch, activation: "relu", tune });
          spmmT(rec, { layer: l, dy: tdy, dx: tdx, z: tzp, batch, activation: "relu", tune });
          rec.submit();
          const label = `${name} ${h.nIn}x${h.nOut} batch ${batch}`;
          const padded = (t: Tensor, rows: number) =>
            gpu.read(t).then((a) => {
              const ld = roundUp4(batch);
              for (let r = 0; r < rows; r++) {
                for (let c = batch; c < ld; c++) {
                  if (a[r * ld + c] !== 0) throw new Error(`${label}: padding [${r}][${c}] not 0`);
                }
              }
              return fromPadded(a, rows, batch, label);
            });
          assertScaled(await padded(ty, h.nOut), want.y, scale, `${label} spmm y`);
          assertScaled(await padded(tz, h.nOut), want.z, scale, `${label} spmm z`);
          assertScaled(await padded(tdx, h.nIn), wantDx, scaleDx, `${label} spmmT dx`);
          for (const u of [ty, tz, tdx]) gpu.release(u);
        }
        for (const u of [tx, tdy, tzp, tb]) gpu.release(u);
      }
      releaseCsr(gpu, l);
    }
  },
);

gpuTest(
  "weightGrad: sddmm and dense+pick match float64 (overwrite, accumulate); pickDense alone",
  async (gpu, rng) => {
    for (
      const h of [
        layer(rng, 37, 53, 0.3, { emptyOut: 5, emptyIn: 7, denseOut: 11, denseIn: 13 }),
        layer(rng, 131, 29, 0.05, { denseOut: 0 }),
        layer(rng, 3, 2, 0),
      ]
    ) {
      const l = uploadCsr(gpu, h);
      for (const batch of [1, 3, 37, 129]) {
        const x = asF32(rng.normal(h.nIn * batch));
        const dy = asF32(rng.normal(h.nOut * batch));
        const prior = asF32(rng.normal(h.nnz));
        const tx = upload(gpu, x, h.nIn, batch, "x");
        const tdy = upload(gpu, dy, h.nOut, batch, "dy");
        const want = sddmmRef(h, x, dy, batch);
        const scale = sddmmRef(h, abs(x), abs(dy), batch);
        const runs: [WeightGradPath, Partial<SddmmTuning> | undefined][] = [
          ...Object.values(SDDMM_VARIANTS).map((t): [WeightGradPath, SddmmTuning] => ["sddmm", t]),
          ["dense", undefined],
        ];
        for (const [path, tune] of runs) {
          const tdv = gpu.tensor("f32", [Math.max(1, h.nnz)]);
          gpu.poison(tdv);
          const tacc = gpu.tensor("f32", [Math.max(1, h.nnz)], {
            data: h.nnz ? Float32Array.from(prior) : undefined,
          });
          const rec = gpu.recorder();
          const took = weightGrad(rec, {
            layer: l,
            x: tx,
            dy: tdy,
            dvalues: tdv,
            batch,
            path,
            tune,
          });
          weightGrad(rec, {
            layer: l,
            x: tx,
            dy: tdy,
            dvalues: tacc,
            batch,
            path,
            tune,
            accumulate: true,
          });
          rec.submit();
          if (h.nnz && took !== path) throw new Error(`asked ${path}, took ${took}`);
          const label = `weightGrad ${path} ${JSON.stringify(tune ?? {})} ${h.nIn}x${h.nOut} ` +
            `nnz ${h.nnz} batch ${batch}`;
          assertScaled((await gpu.read(tdv)).subarray(0, h.nnz), want, scale, label);
          assertScaled(
            (await gpu.read(tacc)).subarray(0, h.nnz),
            want.map((w, k) => w + prior[k]),
            scale.map((u, k) => u + Math.abs(prior[k])),
            `${label} accumulate`,
          );
          gpu.release(tdv);
          gpu.release(tacc);
        }
        gpu.release(tx);
        gpu.release(tdy);
      }
      releaseCsr(gpu, l);
    }
    // pickDense on a hand-made dense matrix: value k of row j is D[colT[k]][j].
    const h = layer(rng, 9, 6, 0.5, { denseOut: 2, emptyOut: 4 });
    const l = uploadCsr(gpu, h);
    const d = asF32(rng.normal(h.nIn * h.nOut));
    const td = gpu.tensor("f32", [h.nIn * h.nOut], { data: Float32Array.from(d) });
    const tdv = gpu.tensor("f32", [h.nnz]);
    gpu.poison(tdv);
    const rec = gpu.recorder();
    pickDense(rec, { layer: l, dense: td, dvalues: tdv });
    rec.submit();
    const got = await gpu.read(tdv);
    for (let j = 0; j < h.nOut; j++) {
      for (let k = h.rowPtrT[j]; k < h.rowPtrT[j + 1]; k++) {
        if (got[k] !== Math.fround(d[h.colT[k] * h.nOut + j])) {
          throw new Error(`pickDense value ${k}: got ${got[k]}`);
        }
      }
    }
  },
);

gpuTest(
  "weightGrad: the dense-vs-SDDMM rule picks both branches; each passes a finite-difference check",
  async (gpu, rng) => {
    const rule = WGRAD_RULES[adapterClass(gpu)];
    // Loss L(v) = sum(relu(Wᵀx) · dOut); dL/dv = sddmm(x, dOut · relu'(z)). Central differences
    // of the float64 reference forward against the GPU gradient of the path the rule chose.
    const batch = 7;
    const nIn = 23;
    const nOut = 19;
    const below = Math.max(0.01, rule.denseFrom * 0.5);
    const above = Math.min(1, Math.max(rule.denseFrom * 1.5, rule.denseFrom + 0.05));
    const seen = new Set<string>();
    for (const density of [below, above]) {
      const h = layer(rng, nIn, nOut, density, { denseOut: 3 });
      const expected = h.nnz / (nIn * nOut) >= rule.denseFrom ? "dense" : "sddmm";
      const path = weightGradPath(gpu, nIn, nOut, h.nnz, batch);
      if (path !== expected) {
        throw new Error(`density ${h.nnz / (nIn * nOut)}: rule gave ${path}, want ${expected}`);
      }
      seen.add(path);
      const v = Float64Array.from(h.values);
      const x = asF32(rng.normal(nIn * batch));
      const dOut = rng.normal(nOut * batch);
      const { z } = spmmRef(h, v, x, batch);
      const dz = asF32(dOut.map((g, n) => (z[n] > 0 ? g : 0)));
      const l = uploadCsr(gpu, h);
      const tx = upload(gpu, x, nIn, batch, "x");
      const tdz = upload(gpu, dz, nOut, batch, "dz");
      const tdv = gpu.tensor("f32", [h.nnz]);
      gpu.poison(tdv);
      const rec = gpu.recorder();
      const took = weightGrad(rec, { layer: l, x: tx, dy: tdz, dvalues: tdv, batch });
      rec.submit();
      if (took !== path) throw new Error(`weightGrad took ${took}, rule said ${path}`);
      const got = await gpu.read(tdv);
      const loss = (vals: Float64Array) => {
        const y = spmmRef(h, vals, x, batch, undefined, "relu").y;
        let s = 0;
        for (let n = 0; n < y.length; n++) s += y[n] * dOut[n];
        return s;
      };
      const eps = 1e-6;
      const scale = sddmmRef(h, abs(x), abs(dz), batch);
      let checked = 0;
      for (let k = 0; k < h.nnz; k++) {
        const vp = Float64Array.from(v);
        const vm = Float64Array.from(v);
        vp[k] += eps;
        vm[k] -= eps;
        const fd = (loss(vp) - loss(vm)) / (2 * eps);
        const tol = 1e-5 * scale[k] + 1e-7 * (1 + Math.abs(fd));
        if (!(Math.abs(got[k] - fd) <= tol)) {
          throw new Error(`${path} dvalues[${k}]: gpu ${got[k]}, finite difference ${fd}`);
        }
        checked++;
      }
      if (checked < 10) throw new Error(`only ${checked} weights checked`);
      for (const u of [tx, tdz, tdv]) gpu.release(u);
      releaseCsr(gpu, l);
    }
    if (seen.size !== 2) throw new Error(`rule exercised only ${[...seen]}`);
  },
);

gpuTest(
  "texture reads: sampled and read-only storage textures give bit-identical results (every sparse kernel)",
  async (gpu, rng) => {
    if (storageReadSlots(gpu) === 0) return; // no storage reads here: nothing to compare
    const h = layer(rng, 131, 67, 0.1, { denseOut: 3, emptyIn: 5 });
    const l = uploadCsr(gpu, h);
    const batch = 129;
    const tx = upload(gpu, asF32(rng.normal(h.nIn * batch)), h.nIn, batch, "x");
    const tdy = upload(gpu, asF32(rng.normal(h.nOut * batch)), h.nOut, batch, "dy");
    const tz = upload(gpu, asF32(rng.normal(h.nIn * batch)), h.nIn, batch, "z");
    // The adapter-class table, not the environment: test files run in parallel workers of one
    // process, which share its environment but not their modules.
    const cls = adapterClass(gpu);
    const saved = TEXTURE_READS[cls];
    const got: Record<string, Float32Array[]> = {};
    try {
      for (const read of ["sampled", "storage"] as const) {
        TEXTURE_READS[cls] = read;
        const outs = [
          output(gpu, h.nOut, batch, "y"),
          output(gpu, h.nIn, batch, "dx"),
          gpu.tensor("f32", [h.nnz]),
          gpu.tensor("f32", [h.nnz]),
          gpu.tensor("f32", [h.nnz]),
          output(gpu, h.nIn, batch, "dx2"),
        ];
        for (const t of outs.slice(2, 5)) gpu.poison(t);
        const [y, dx, dvWide, dvRow, dvFused, dx2] = outs;
        const rec = gpu.recorder();
        // Which kernel each dispatch ran: storage twins ("+stex(...)") only under "storage".
        const ran: string[] = [];
        const resolve = rec.resolveTextures.bind(rec);
        rec.resolveTextures = (k, r) => {
          const out = resolve(k, r);
          ran.push(out[0].def.shader);
          return out;
        };
        const inputs = "texture" as const;
        spmm(rec, { layer: l, x: tx, y, batch, activation: "relu", inputs });
        spmmT(rec, { layer: l, dy: tdy, dx, z: tz, batch, activation: "relu", inputs });
        sddmm(rec, { layer: l, x: tx, dy: tdy, dvalues: dvWide, batch, inputs });
        sddmm(rec, {
          layer: l,
          x: tx,
          dy: tdy,
          dvalues: dvRow,
          batch,
          inputs,
          tune: SDDMM_VARIANTS.row8,
        });
        sparseBackward(rec, {
          layer: l,
          x: tx,
          dy: tdy,
          dx: dx2,
          dvalues: dvFused,
          batch,
          path: "fused",
          inputs,
        });
        rec.submit();
        const stex = ran.filter((n) => n.includes("+stex(")).length;
        if (ran.length < 5 || stex !== (read === "storage" ? ran.length : 0)) {
          throw new Error(`${read}: ran ${ran.join(", ")}`);
        }
        got[read] = [];
        for (const t of outs) got[read].push(new Float32Array(await gpu.read(t)));
      }
    } finally {
      TEXTURE_READS[cls] = saved;
    }
    const names = ["spmm y", "spmmT dx", "sddmm wide", "sddmm row8", "grad_t dw", "grad_t dx"];
    names.forEach((n, i) => {
      if (!got.sampled[i].every(Number.isFinite)) throw new Error(`${n}: not finite`);
      for (let k = 0; k < got.sampled[i].length; k++) {
        if (got.sampled[i][k] !== got.storage[i][k]) {
          throw new Error(
            `${n}[${k}]: sampled ${got.sampled[i][k]} vs storage ${got.storage[i][k]}`,
          );
        }
      }
    });
    releaseCsr(gpu, l);
  },
);
