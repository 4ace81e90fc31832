// Tolerances (GPU float32 vs float64 reference, |got - want| <= atol + rtol·|want|):
// - piecewise-linear activations (identity, relu, leaky_relu, all_relu, hard_tanh, abs,
//   inverse, step): rtol 1e-6, atol 1e-7 (one rounding of a·z); SReLU forward atol 1e-6;
// - transcendental ones: forward rtol 1e-5, atol 1e-6; backward (times dy ~ N(0, 1)) rtol 1e-5,
//   atol 4e-6; sin/cos additionally allow the f32 rounding of the argument a·z (|z| <= 4):
//   atol 1e-6 + 2.4e-7·(1 + 4|a|) forward, times 4·max(1, |a|) backward (see tol());
// - 2-D grid case (tanh fwd, silu bwd): rtol 1e-5, atol 4e-6;
// - SReLU parameter gradients (sums over the batch): rtol 1e-5, atol 1e-5·sqrt(batch).
// Every derivative is also checked against central finite differences of the float64 forward
// (gradCheck, rtol 1e-4), skipping points within 1e-4 of a kink.
import {
  activationBackward,
  activationForward,
  sreluBackward,
  sreluForward,
} from "../../src/kernels/activation.ts";
import { biasGrad } from "../../src/kernels/bias.ts";
import { biasGradRef } from "../../src/kernels/bias_ref.ts";
import {
  ACTIVATION_IDS,
  ACTIVATION_NAMES,
  activationParam,
  allReluSlope,
  withActivations,
} from "../../src/kernels/activation_ids.ts";
import {
  actDerivativeRef,
  actForwardRef,
  activationBackwardRef,
  activationForwardRef,
  activationKinks,
  erfcApprox,
  erfcRef,
  erfRef,
  sreluBackwardRef,
  sreluForwardRef,
} from "../../src/kernels/activation_ref.ts";
import {
  FiligreeError,
  type Gpu,
  grid,
  MAX_LOOP_TRIPS,
  roundUp4,
  type Tensor,
} from "../../src/gpu/mod.ts";
import {
  asF32,
  assertClose,
  fromPadded,
  gpuTest,
  gradCheck,
  type Rng,
  spyDispatches,
  toPadded,
} from "../../src/testing/mod.ts";

// Sizes: 1, primes, non-multiples of the 64-wide workgroup and of the vec4 batch axis.
const SHAPES: [number, number][] = [[1, 1], [7, 13], [67, 5], [130, 33]];

const LINEAR = new Set([
  "identity",
  "relu",
  "leaky_relu",
  "all_relu",
  "hard_tanh",
  "abs",
  "inverse",
  "step",
]);

const TRIG_ZMAX = 4;

function tol(name: string, backward: boolean, a: number) {
  if (LINEAR.has(name)) return { rtol: 1e-6, atol: 1e-7 };
  if (name === "sin" || name === "cos") {
    // The f32 argument a·z carries a rounding error of ~|a·z|·6e-8 before sin/cos sees it
    // (4 ulps allowed), times |a| again in the derivative, times |dy| <~ 4 in the backward.
    const arg = 2.4e-7 * (1 + Math.abs(a) * TRIG_ZMAX) *
      (backward ? 4 * Math.max(1, Math.abs(a)) : 1);
    return { rtol: 1e-5, atol: 1e-6 + arg };
  }
  return { rtol: 1e-5, atol: backward ? 4e-6 : 1e-6 };
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

/** Feature-major f32 upload with NaN in the padding columns (kernels must ignore them). */
function upload(gpu: Gpu, a: Float64Array, rows: number, batch: number): Tensor {
  const ld = roundUp4(batch);
  const data = toPadded(a, rows, batch);
  for (let r = 0; r < rows; r++) for (let c = batch; c < ld; c++) data[r * ld + c] = NaN;
  return gpu.tensor("f32", [rows, ld], { data });
}

/** Random pre-activations with the interesting points mixed in: kinks, tiny and huge |z|. */
function inputs(rng: Rng, n: number, name: string): Float64Array {
  const trig = name === "sin" || name === "cos";
  const z = trig
    ? rng.normal(n, 1).map((v) => Math.max(-TRIG_ZMAX, Math.min(TRIG_ZMAX, v)))
    : rng.normal(n, 2);
  const special = trig
    ? [0, 1, -1, 1e-3, -1e-3, TRIG_ZMAX, -TRIG_ZMAX]
    : [0, 1, -1, 1e-3, -1e-3, 20, -20, 90, -90, 1e-6, -1e-6];
  for (let i = 0; i < n; i++) if (rng.next() < 0.15) z[i] = special[rng.int(special.length)];
  return asF32(z);
}

/** A non-default parameter for the activations that have one (undefined = default). */
function someParam(rng: Rng, name: string): number | undefined {
  switch (name) {
    case "leaky_relu":
      return Math.fround(0.01 + 0.3 * rng.next());
    case "elu":
      return Math.fround(0.5 + rng.next());
    case "all_relu":
      return Math.fround(allReluSlope(rng.int(4), 0.6));
    case "sin":
    case "cos":
      return Math.fround(Math.PI);
    default:
      return undefined;
  }
}

Deno.test("erfc reference agrees with known values; WGSL erfc approximation error < 2e-7", () => {
  // Known values (Abramowitz & Stegun tables / high-precision evaluation).
  const known: [number, number][] = [
    [0.5, 0.4795001221869535],
    [1, 0.15729920705028513],
    [2, 0.004677734981047266],
    [3, 2.209049699858544e-5],
    [5, 1.5374597944280349e-12],
    [-1, 1.8427007929497148],
  ];
  for (const [x, want] of known) {
    const got = erfcRef(x);
    if (!(Math.abs(got - want) <= 1e-13 * want)) {
      throw new Error(`erfcRef(${x}) = ${got}, want ${want}`);
    }
  }
  if (Math.abs(erfRef(0.5) - 0.5204998778130465) > 1e-15) {
    throw new Error(`erfRef(0.5) = ${erfRef(0.5)}`);
  }
  let worstAbs = 0;
  let worstRel = 0;
  for (let x = -6; x <= 9; x += 1e-3) {
    const want = erfcRef(x);
    const got = erfcApprox(x);
    worstAbs = Math.max(worstAbs, Math.abs(got - want));
    worstRel = Math.max(worstRel, Math.abs(got - want) / want);
  }
  // Absolute error of erf (= error of erfc) under 1e-6 as required; relative error on the tail too.
  if (!(worstAbs < 2e-7)) throw new Error(`erfc approximation absolute error ${worstAbs}`);
  if (!(worstRel < 2e-7)) throw new Error(`erfc approximation relative error ${worstRel}`);
});

gpuTest(
  "every activation derivative matches finite differences of its float64 forward",
  (_gpu, rng) => {
    for (const name of ACTIVATION_NAMES) {
      for (const param of [undefined, someParam(rng, name)]) {
        const a = activationParam(name, param);
        const kinks = activationKinks(name);
        const z = rng.normal(48, 2);
        gradCheck(
          ([x]) => x.map((v) => actForwardRef(name, v, a)),
          ([x], dOut) => [x.map((v, i) => dOut[i] * actDerivativeRef(name, v, a))],
          [z],
          {
            rng,
            samples: 48,
            label: `${name}(a=${a})`,
            skip: (_k, i) => kinks.some((t) => Math.abs(z[i] - t) < 1e-4),
          },
        );
      }
    }
  },
);

gpuTest(
  "activation_fns.wgsl via activation.wgsl: forward and backward match float64 reference for every activation (odd sizes, NaN-poisoned outputs)",
  async (gpu, rng) => {
    for (const [rows, batch] of SHAPES) {
      const rec = gpu.recorder();
      const cases: {
        name: string;
        param?: number;
        z: Float64Array;
        dy: Float64Array;
        y: Tensor;
        dz: Tensor;
      }[] = [];
      for (const name of ACTIVATION_NAMES) {
        const param = rows === 1 ? undefined : someParam(rng, name);
        const z = inputs(rng, rows * batch, name);
        const dy = asF32(rng.normal(rows * batch));
        const tz = upload(gpu, z, rows, batch);
        const tdy = upload(gpu, dy, rows, batch);
        const y = gpu.tensor("f32", tz.shape);
        const dz = gpu.tensor("f32", tz.shape);
        gpu.poison(y);
        gpu.poison(dz);
        activationForward(rec, { z: tz, y, rows, batch, activation: name, param });
        activationBackward(rec, { z: tz, dy: tdy, dz, rows, batch, activation: name, param });
        cases.push({ name, param, z, dy, y, dz });
      }
      rec.submit();
      for (const c of cases) {
        const a = activationParam(c.name, c.param);
        const label = `${c.name}(a=${a}) ${rows}x${batch}`;
        const y = fromPadded(await gpu.read(c.y), rows, batch, `${label} y`);
        assertClose(y, activationForwardRef(c.z, c.name, c.param), {
          ...tol(c.name, false, a),
          label: `${label} fwd`,
        });
        const dz = fromPadded(await gpu.read(c.dz), rows, batch, `${label} dz`);
        assertClose(dz, activationBackwardRef(c.z, c.dy, c.name, c.param), {
          ...tol(c.name, true, a),
          label: `${label} bwd`,
        });
      }
    }
  },
);

gpuTest(
  "activationBackward with dbias (act_bwd_bias): dz and the bias gradient match float64 for " +
    "every activation (odd sizes, NaN-poisoned outputs), bit for bit the separate act_bwd + " +
    "biasGrad; past the loop cap the separate kernels run",
  async (gpu, rng) => {
    const spy = spyDispatches();
    const entries = spy.entries;
    try {
      for (const [rows, batch] of [...SHAPES, [2, 4 * MAX_LOOP_TRIPS + 3]] as [number, number][]) {
        const capped = roundUp4(batch) / 4 >= MAX_LOOP_TRIPS;
        for (const name of capped ? ["tanh"] : ACTIVATION_NAMES) {
          const param = rows === 1 ? undefined : someParam(rng, name);
          const z = inputs(rng, rows * batch, name);
          const dy = asF32(rng.normal(rows * batch));
          const tz = upload(gpu, z, rows, batch);
          const tdy = upload(gpu, dy, rows, batch);
          const [dz, db, dz2, db2] = [tz.shape, [rows], tz.shape, [rows]].map((s) => {
            const t = gpu.tensor("f32", s);
            gpu.poison(t);
            return t;
          });
          entries.length = 0;
          const rec = gpu.recorder();
          const args = { z: tz, dy: tdy, rows, batch, activation: name, param };
          activationBackward(rec, { ...args, dz, dbias: db });
          const fusedRan = [...entries];
          activationBackward(rec, { ...args, dz: dz2 });
          biasGrad(rec, { dy: dz2, dbias: db2, rows, batch });
          rec.submit();
          // Past the cap, biasGrad itself splits the batch into chunks (one dispatch each).
          const want = capped ? ["act_bwd", "bias_grad", "bias_grad"] : ["act_bwd_bias"];
          if (fusedRan.join() !== want.join()) {
            throw new Error(`${name} ${rows}x${batch}: ran ${fusedRan.join()}, want ${want}`);
          }
          const a = activationParam(name, param);
          const label = `${name}(a=${a}) ${rows}x${batch}`;
          const dzRef = activationBackwardRef(z, dy, name, param);
          const [gz, gb, gz2, gb2] = await Promise.all([dz, db, dz2, db2].map((t) => gpu.read(t)));
          assertClose(fromPadded(gz, rows, batch, `${label} dz`), dzRef, {
            ...tol(name, true, a),
            label: `${label} dz`,
          });
          assertClose(gb, biasGradRef(dzRef, rows, batch), {
            rtol: 1e-5,
            atol: 1e-5 * Math.sqrt(batch),
            label: `${label} dbias`,
          });
          const same = (x: Float32Array, y: Float32Array) =>
            x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
          if (!same(gz as Float32Array, gz2 as Float32Array)) {
            throw new Error(`${label}: dz differs`);
          }
          if (!same(gb as Float32Array, gb2 as Float32Array)) {
            throw new Error(`${label}: dbias differs from biasGrad's bits`);
          }
          for (const t of [tz, tdy, dz, db, dz2, db2]) gpu.release(t);
        }
      }
    } finally {
      spy.restore();
    }
  },
);

gpuTest(
  "activation on a size needing a 2-D dispatch grid (> 65,535 workgroups)",
  async (gpu, rng) => {
    // 4099 x 4097 (ld 4100): 4,201,475 vec4s = 65,649 workgroups of 64.
    const rows = 4099, batch = 4097, ld = roundUp4(batch);
    const groups = grid(gpu, Math.ceil((rows * ld) / 4 / 64));
    if (groups[1] < 2) {
      throw new Error(
        `test size should need a 2-D grid on this device, got [${groups}]`,
      );
    }
    const n = rows * ld;
    const zData = new Float32Array(n);
    const dyData = new Float32Array(n);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < ld; c++) {
        const live = c < batch;
        zData[r * ld + c] = live ? 8 * rng.next() - 4 : NaN;
        dyData[r * ld + c] = live ? 2 * rng.next() - 1 : NaN;
      }
    }
    const z = gpu.tensor("f32", [rows, ld], { data: zData });
    const dy = gpu.tensor("f32", [rows, ld], { data: dyData });
    const y = gpu.tensor("f32", [rows, ld]);
    const dz = gpu.tensor("f32", [rows, ld]);
    gpu.poison(y);
    gpu.poison(dz);
    const rec = gpu.recorder();
    activationForward(rec, { z, y, rows, batch, activation: "tanh" });
    activationBackward(rec, { z, dy, dz, rows, batch, activation: "silu" });
    rec.submit();
    for (const [t, what] of [[y, "tanh fwd"], [dz, "silu bwd"]] as const) {
      const got = await gpu.read(t);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < ld; c++) {
          const i = r * ld + c;
          const want = c >= batch
            ? 0
            : what === "tanh fwd"
            ? actForwardRef("tanh", zData[i], 0)
            : dyData[i] * actDerivativeRef("silu", zData[i], 0);
          if (!(Math.abs(got[i] - want) <= 4e-6 + 1e-5 * Math.abs(want))) {
            throw new Error(`${what} 2-D grid [${r}][${c}]: got ${got[i]}, want ${want}`);
          }
        }
      }
    }
    for (const t of [z, dy, y, dz]) gpu.release(t);
  },
);

gpuTest(
  "SReLU forward, input and parameter gradients match float64 reference",
  async (gpu, rng) => {
    for (const [rows, batch] of [...SHAPES, [3, 700]] as [number, number][]) {
      const n = rows * batch;
      const z = asF32(rng.normal(n, 1.5));
      const dy = asF32(rng.normal(n));
      // t_l in [-1, 0.5), t_r = t_l + [-0.3, 1.5): mostly ordered, sometimes t_r < t_l.
      const prm = new Float64Array(4 * rows);
      for (let r = 0; r < rows; r++) {
        prm[r] = -1 + 1.5 * rng.next();
        prm[rows + r] = 0.5 * rng.next();
        prm[2 * rows + r] = prm[r] - 0.3 + 1.8 * rng.next();
        prm[3 * rows + r] = 0.5 + rng.next();
      }
      const p32 = asF32(prm);
      const tz = upload(gpu, z, rows, batch);
      const tdy = upload(gpu, dy, rows, batch);
      const tp = gpu.tensor("f32", [4, rows], { data: Float32Array.from(p32) });
      const y = gpu.tensor("f32", tz.shape);
      const dz = gpu.tensor("f32", tz.shape);
      const dp = gpu.tensor("f32", [4, rows]);
      for (const t of [y, dz, dp]) gpu.poison(t);
      const rec = gpu.recorder();
      sreluForward(rec, { z: tz, params: tp, y, rows, batch });
      sreluBackward(rec, { z: tz, dy: tdy, params: tp, dz, dparams: dp, rows, batch });
      rec.submit();
      const label = `srelu ${rows}x${batch}`;
      assertClose(
        fromPadded(await gpu.read(y), rows, batch, label),
        sreluForwardRef(z, p32, rows, batch),
        {
          rtol: 1e-6,
          atol: 1e-6,
          label: `${label} fwd`,
        },
      );
      const want = sreluBackwardRef(z, dy, p32, rows, batch);
      assertClose(fromPadded(await gpu.read(dz), rows, batch, label), want.dz, {
        rtol: 1e-6,
        atol: 1e-7,
        label: `${label} dz`,
      });
      assertClose(await gpu.read(dp), want.dprm, {
        rtol: 1e-5,
        atol: 1e-5 * Math.sqrt(batch),
        label: `${label} dparams`,
      });
    }
  },
);

gpuTest("SReLU gradients (input and all four parameters) match finite differences", (_gpu, rng) => {
  const rows = 5, batch = 9;
  const z = rng.normal(rows * batch, 1.5);
  const prm = new Float64Array(4 * rows);
  for (let r = 0; r < rows; r++) {
    prm[r] = -0.5 - 0.5 * rng.next();
    prm[rows + r] = 0.5 * rng.next();
    prm[2 * rows + r] = 0.2 + rng.next();
    prm[3 * rows + r] = 0.5 + rng.next();
  }
  // Finite differences are meaningless where an input sits within eps of its row's threshold.
  const near = (r: number, v: number) =>
    Math.abs(v - prm[r]) < 1e-4 || Math.abs(v - prm[2 * rows + r]) < 1e-4;
  gradCheck(
    ([x, p]) => sreluForwardRef(x, p, rows, batch),
    ([x, p], dOut) => {
      const g = sreluBackwardRef(x, dOut, p, rows, batch);
      return [g.dz, g.dprm];
    },
    [z, prm],
    {
      rng,
      samples: 4 * rows,
      label: "srelu",
      skip: (k, i) => {
        if (k === 0) return near(Math.floor(i / batch), z[i]);
        const r = i % rows;
        for (let c = 0; c < batch; c++) if (near(r, z[r * batch + c])) return true;
        return false;
      },
    },
  );
});

gpuTest(
  "activation wrappers reject bad input with FiligreeError; no recompiles per batch",
  async (gpu) => {
    const z = gpu.tensor("f32", [2, 8], { zero: true });
    const y = gpu.tensor("f32", [2, 8]);
    const rec = gpu.recorder();
    throws(
      () => activationForward(rec, { z, y, rows: 2, batch: 8, activation: "relu6" }),
      "unknown name",
    );
    throws(
      () => activationForward(rec, { z, y: z, rows: 2, batch: 8, activation: "relu" }),
      "aliasing",
    );
    throws(
      () => activationForward(rec, { z, y, rows: 3, batch: 8, activation: "relu" }),
      "too small",
    );
    throws(
      () => activationForward(rec, { z, y, rows: 2, batch: 8, activation: "elu", param: NaN }),
      "NaN param",
    );
    const big = 4 * 65_001;
    const zb = gpu.tensor("f32", [1, big]);
    const pb = gpu.tensor("f32", [4]);
    throws(
      () => sreluBackward(rec, { z: zb, dy: zb, params: pb, dparams: y, rows: 1, batch: big }),
      "loop cap",
    );
    // The id must agree with the WGSL constants (a typo in either breaks this).
    for (const [name, id] of Object.entries(ACTIVATION_IDS)) {
      const wgslName = `ACT_${(name === "swish" ? "silu" : name).toUpperCase()}`;
      if (!withActivations("").includes(`const ${wgslName}: u32 = ${id}u;`)) {
        throw new Error(`${name}: WGSL constant ${wgslName} != ${id}`);
      }
    }
    activationForward(rec, { z, y, rows: 2, batch: 5, activation: "gelu" });
    const before = gpu.pipelineCount;
    activationForward(rec, { z, y, rows: 1, batch: 7, activation: "gelu" });
    activationForward(rec, { z, y, rows: 2, batch: 8, activation: "gelu", param: 3 });
    rec.submit();
    await gpu.sync();
    if (gpu.pipelineCount !== before) {
      throw new Error(
        `new batch size recompiled: ${before} -> ${gpu.pipelineCount}`,
      );
    }
    for (const t of [z, y, zb, pb]) gpu.release(t);
  },
);
