import {
  FiligreeError,
  type Gpu,
  preferTextures,
  type Tensor,
  TEXTURE_TWINS,
} from "../../src/gpu/mod.ts";
import {
  MULTI_STEP,
  NEW_ENTRY,
  Optimizer,
  type OptimizerConfig,
  remapState,
  zeroAt,
} from "../../src/kernels/optim.ts";
import { adamRef, remapRef, sgdRef, zeroAtRef } from "../../src/kernels/optim_ref.ts";
import { asF32, assertClose, gpuTest, type Rng, spyDispatches } from "../../src/testing/mod.ts";

// Sizes: 1, primes, non-multiples of the vec4 and of the 64 x 4 elements one workgroup covers.
const SIZES = [1, 7, 97, 1031, 4099];
// Extra elements after the n optimized ones: must come back untouched (tail-lane masking).
const EXTRA = 3;
const STEPS = 5;
const LRS = [0.05, 0.03, 0.02, 0.04, 0.01]; // a changing schedule: each step sees its own lr

// Tolerance: 5 steps in f32 vs float64 on O(1) parameters with updates of O(lr): a few ulps
// of the parameter per step.
const TOL = { rtol: 1e-5, atol: 1e-6 };

const VARIANTS: { name: string; config: OptimizerConfig }[] = [
  { name: "sgd plain + wd", config: { kind: "sgd", weightDecay: 0.01 } },
  { name: "sgd momentum + wd", config: { kind: "sgd", momentum: 0.9, weightDecay: 2e-4 } },
  {
    name: "sgd nesterov + wd",
    config: { kind: "sgd", momentum: 0.8, nesterov: true, weightDecay: 0.05 },
  },
  {
    name: "adam + L2",
    config: { kind: "adam", beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 },
  },
  {
    name: "adamw",
    config: { kind: "adamw", beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 },
  },
];

/** Throws unless `fn` throws an instance of `cls` whose message contains `text`. */
function assertThrows(fn: () => unknown, cls: new (...args: never[]) => Error, text: string) {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof cls) || !(e as Error).message.includes(text)) {
      throw new Error(`expected ${cls.name} containing "${text}", got ${e}`);
    }
    return;
  }
  throw new Error(`expected ${cls.name} containing "${text}", nothing was thrown`);
}

/** Float64 reference for one step of the optimizer `opt` (same hyperparameters, same t). */
function refStep(
  opt: Optimizer,
  w: Float64Array,
  g: Float64Array,
  state: Float64Array[],
  lr: number,
) {
  const h = opt.hyper;
  if (h.kind === "sgd") {
    sgdRef(w, g, state[0] ?? null, {
      lr,
      momentum: h.momentum,
      nesterov: h.nesterov,
      weightDecay: h.weightDecay,
    });
  } else {
    adamRef(w, g, state[0], state[1], opt.t, {
      lr,
      beta1: h.beta1,
      beta2: h.beta2,
      eps: h.eps,
      weightDecay: h.weightDecay,
      decoupled: h.kind === "adamw",
    });
  }
}

/** A gradient tensor whose padding is NaN (poisoned before the upload). */
function gradTensor(gpu: Gpu, g: Float64Array): Tensor {
  const t = gpu.tensor("f32", [g.length]);
  gpu.poison(t);
  gpu.write(t, Float32Array.from(g));
  return t;
}

gpuTest(
  "optimizer steps match float64 references (all variants, state carried; old values read " +
    "from mirrors and from the buffers)",
  async (gpu, rng) => {
    // Which entries ran: the `*_in` kernels read the old values through texture mirrors where
    // twins run (the software adapter), the plain ones from the buffers.
    await withAndWithoutTwins(async (twins, entries) => {
      await allVariants(gpu, rng);
      const viaMirrors = twins && preferTextures(gpu);
      for (const e of ["sgd_plain", "sgd_momentum", "adam"]) {
        const want = viaMirrors ? `${e}_in` : e;
        if (!entries.includes(want)) {
          throw new Error(`twins ${twins}: ${want} never ran (ran: ${entries.join(", ")})`);
        }
      }
    });
  },
);

/**
 * Runs `body` with texture twins on, then off, passing the entries dispatched so far in that
 * pass (reset before each), and restores the switch.
 */
async function withAndWithoutTwins(body: (twins: boolean, entries: string[]) => Promise<void>) {
  const spy = spyDispatches();
  const twinsWere = TEXTURE_TWINS.enabled;
  try {
    for (const twins of [true, false]) {
      TEXTURE_TWINS.enabled = twins;
      spy.entries.length = 0;
      await body(twins, spy.entries);
    }
  } finally {
    spy.restore();
    TEXTURE_TWINS.enabled = twinsWere;
  }
}

async function allVariants(gpu: Gpu, rng: Rng) {
  for (const { name, config } of VARIANTS) {
    for (const n of SIZES) {
      const opt = new Optimizer(gpu, n, config, `w${n}`);
      const w0 = asF32(rng.normal(n + EXTRA));
      const tw = gpu.tensor("f32", [n + EXTRA], { data: Float32Array.from(w0) });
      const w = w0.slice(0, n);
      const state = opt.state.map(() => new Float64Array(n));
      const grads = LRS.map(() => asF32(rng.normal(n)));
      const tg = grads.map((g) => gradTensor(gpu, g));
      let rec = gpu.recorder();
      for (let s = 0; s < STEPS; s++) {
        opt.step(rec, { param: tw, grad: tg[s], lr: LRS[s] });
        refStep(opt, w, grads[s], state, LRS[s]);
        // Steps 1 and 2 are submitted alone; steps 3..5 share one encoder (one uniform each).
        if (s < 2) {
          rec.submit();
          rec = gpu.recorder();
        }
      }
      rec.submit();
      const label = `${name} n=${n}`;
      const got = await gpu.read(tw);
      assertClose(got, w, { ...TOL, label: `${label} param` });
      for (let k = n; k < n + EXTRA; k++) {
        if (got[k] !== w0[k]) {
          throw new Error(
            `${label}: element ${k} past n changed: ${w0[k]} -> ${got[k]}`,
          );
        }
      }
      for (let k = 0; k < state.length; k++) {
        assertClose(await gpu.read(opt.state[k]), state[k], {
          ...TOL,
          label: `${label} state ${k}`,
        });
      }
      if (opt.t !== STEPS) throw new Error(`${label}: t = ${opt.t}`);
      opt.release();
      for (const t of [tw, ...tg]) gpu.release(t);
    }
  }
}

gpuTest(
  "Optimizer.stepMany (optim_multi.wgsl): small SGD-momentum arrays four to a dispatch, bit for bit one step each " +
    "and float64 (groups of four, two and one); others step alone",
  async (gpu, rng) => {
    await withAndWithoutTwins(async (twins, entries) => {
      for (const nesterov of [false, true]) {
        const config: OptimizerConfig = {
          kind: "sgd",
          momentum: 0.85,
          nesterov,
          weightDecay: 0.01,
        };
        // Small arrays of odd sizes (5: four to a dispatch, the fifth alone; 6: four, then two
        // with two slots unused), one large, one Adam.
        const smalls = nesterov ? 6 : 5;
        const sizes = [...[1, 7, 301, 1031, 97, 2].slice(0, smalls), MULTI_STEP.below + 5, 13];
        const adam = sizes.length - 1;
        const configs = sizes.map((_, i): OptimizerConfig =>
          i === adam ? { kind: "adam" } : config
        );
        const w0 = sizes.map((n) => asF32(rng.normal(n + EXTRA)));
        const make = () =>
          sizes.map((n, i) => ({
            opt: new Optimizer(gpu, n, configs[i]),
            param: gpu.tensor("f32", [n + EXTRA], { data: Float32Array.from(w0[i]) }),
          }));
        const [many, one] = [make(), make()];
        const refW = sizes.map((n, i) => w0[i].slice(0, n));
        const refS = sizes.map((n, i) => many[i].opt.state.map(() => new Float64Array(n)));
        for (let s = 0; s < 3; s++) {
          const lr = LRS[s];
          const grads = sizes.map((n) => asF32(rng.normal(n)));
          const tg = grads.map((g) => gradTensor(gpu, g));
          entries.length = 0;
          const rec = gpu.recorder();
          Optimizer.stepMany(rec, many.map((m, i) => ({ ...m, grad: tg[i], lr })));
          const ran = [...entries];
          one.forEach((m, i) => m.opt.step(rec, { param: m.param, grad: tg[i], lr }));
          rec.submit();
          sizes.forEach((_, i) => refStep(many[i].opt, refW[i], grads[i], refS[i], lr));
          const x4 = ran.filter((e) => e === "sgd_momentum_x4").length;
          const [wantX4, others] = smalls === 5 ? [1, 3] : [2, 2];
          if (x4 !== wantX4 || ran.length !== wantX4 + others) {
            throw new Error(
              `stepMany ran ${ran.join(", ")}: want ${wantX4} x4 dispatches and ${others} others`,
            );
          }
          tg.forEach((t) => gpu.release(t));
        }
        for (let i = 0; i < sizes.length; i++) {
          const label = `twins ${twins} nesterov ${nesterov} n=${sizes[i]}`;
          const [a, b] = await Promise.all([gpu.read(many[i].param), gpu.read(one[i].param)]);
          if (!a.every((v, k) => Object.is(v, b[k]))) throw new Error(`${label}: bits differ`);
          assertClose(a.slice(0, sizes[i]), refW[i], { ...TOL, label });
          for (let k = sizes[i]; k < sizes[i] + EXTRA; k++) {
            if (a[k] !== w0[i][k]) throw new Error(`${label}: element ${k} past n changed`);
          }
          for (let k = 0; k < refS[i].length; k++) {
            const [sa, sb] = await Promise.all([
              gpu.read(many[i].opt.state[k]),
              gpu.read(one[i].opt.state[k]),
            ]);
            if (!sa.every((v, e) => Object.is(v, sb[e]))) throw new Error(`${label}: state bits`);
            assertClose(sa, refS[i][k], { ...TOL, label: `${label} state ${k}` });
          }
          if (many[i].opt.t !== 3) throw new Error(`${label}: t = ${many[i].opt.t}`);
        }
        for (const m of [...many, ...one]) {
          m.opt.release();
          gpu.release(m.param);
        }
      }
    });
  },
);

gpuTest(
  "sgd nesterov on 16,776,961 parameters (2-D grid: 65,536 workgroups of 64)",
  async (gpu, rng) => {
    const n = 16_776_961; // prime; ceil(n / 4 / 64) = 65,536 > 65,535 workgroups per dimension
    const opt = new Optimizer(gpu, n, {
      kind: "sgd",
      momentum: 0.9,
      nesterov: true,
      weightDecay: 1e-3,
    });
    const w = asF32(rng.uniform(n));
    const tw = gpu.tensor("f32", [n], { data: Float32Array.from(w) });
    const grads = [asF32(rng.uniform(n)), asF32(rng.uniform(n))];
    const tg = grads.map((g) => gradTensor(gpu, g));
    const rec = gpu.recorder();
    const v = new Float64Array(n);
    for (let s = 0; s < 2; s++) {
      opt.step(rec, { param: tw, grad: tg[s], lr: LRS[s] });
      sgdRef(w, grads[s], v, { lr: LRS[s], momentum: 0.9, nesterov: true, weightDecay: 1e-3 });
    }
    rec.submit();
    assertClose(await gpu.read(tw), w, { ...TOL, label: "nesterov 16M param" });
    assertClose(await gpu.read(opt.state[0]), v, { ...TOL, label: "nesterov 16M velocity" });
    opt.release();
    for (const t of [tw, ...tg]) gpu.release(t);
  },
);

function randomMask(rng: Rng, n: number): Uint32Array {
  // ~30 % set, with assorted nonzero words (any nonzero value counts).
  const m = new Uint32Array(n);
  for (let k = 0; k < n; k++) {
    if (rng.next() < 0.3) m[k] = [1, 7, 0x80000000, 0xffffffff][rng.int(4)];
  }
  return m;
}

gpuTest("zeroAt zeroes exactly the masked entries", async (gpu, rng) => {
  for (const n of [1, 13, 1031]) {
    const x = asF32(rng.normal(n + EXTRA));
    const mask = randomMask(rng, n + EXTRA); // mask past n must be ignored
    const tx = gpu.tensor("f32", [n + EXTRA], { data: Float32Array.from(x) });
    const tm = gpu.tensor("u32", [n + EXTRA], { data: mask });
    const rec = gpu.recorder();
    zeroAt(rec, { target: tx, mask: tm, n });
    rec.submit();
    const want = x.slice();
    zeroAtRef(want.subarray(0, n), mask);
    assertClose(await gpu.read(tx), want, { rtol: 0, atol: 0, label: `zeroAt n=${n}` });
  }
});

gpuTest("remapState gathers state for a new ordering (new entries zero)", async (gpu, rng) => {
  for (const [srcN, n] of [[1, 1], [11, 13], [1031, 997]]) {
    const src = asF32(rng.normal(srcN));
    const from = new Uint32Array(n);
    for (let k = 0; k < n; k++) {
      const u = rng.next();
      from[k] = u < 0.2 ? NEW_ENTRY : u < 0.25 ? srcN + rng.int(5) : rng.int(srcN);
    }
    const ts = gpu.tensor("f32", [srcN], { data: Float32Array.from(src) });
    const tf = gpu.tensor("u32", [n], { data: from });
    const td = gpu.tensor("f32", [n]);
    gpu.poison(td);
    const rec = gpu.recorder();
    remapState(rec, { src: ts, from: tf, dst: td });
    rec.submit();
    assertClose(await gpu.read(td), remapRef(src, from), {
      rtol: 0,
      atol: 0,
      label: `remap ${srcN}->${n}`,
    });
  }
});

gpuTest("Optimizer.resetAt: regrown weights restart their Adam moments", async (gpu, rng) => {
  const n = 257;
  const opt = new Optimizer(gpu, n, { kind: "adam", weightDecay: 0.01 });
  const w = asF32(rng.normal(n));
  const tw = gpu.tensor("f32", [n], { data: Float32Array.from(w) });
  const m = new Float64Array(n);
  const v = new Float64Array(n);
  const mask = randomMask(rng, n);
  const tm = gpu.tensor("u32", [n], { data: mask });
  const ref = () => ({
    lr: 1e-2,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0.01,
    decoupled: false,
  });
  const rec = gpu.recorder();
  for (let s = 0; s < 3; s++) {
    const g = asF32(rng.normal(n));
    const tg = gradTensor(gpu, g);
    opt.step(rec, { param: tw, grad: tg, lr: 1e-2 });
    adamRef(w, g, m, v, opt.t, ref());
    if (s === 1) {
      opt.resetAt(rec, tm);
      zeroAtRef(m, mask);
      zeroAtRef(v, mask);
    }
  }
  rec.submit();
  assertClose(await gpu.read(tw), w, { ...TOL, label: "resetAt param" });
  assertClose(await gpu.read(opt.state[0]), m, { ...TOL, label: "resetAt m" });
  assertClose(await gpu.read(opt.state[1]), v, { ...TOL, label: "resetAt v" });
});

gpuTest("optimizer rejects bad hyperparameters and sizes with FiligreeError", (gpu) => {
  const w = gpu.tensor("f32", [10]);
  const g = gpu.tensor("f32", [10]);
  assertThrows(
    () => new Optimizer(gpu, 10, { kind: "sgd", nesterov: true }),
    FiligreeError,
    "Nesterov",
  );
  assertThrows(() => new Optimizer(gpu, 10, { kind: "adam", beta2: 1 }), FiligreeError, "beta2");
  const opt = new Optimizer(gpu, 10, { kind: "sgd", momentum: 0.5 });
  const rec = gpu.recorder();
  assertThrows(() => opt.step(rec, { param: w, grad: g, lr: -1 }), FiligreeError, "learning rate");
  assertThrows(() => opt.step(rec, { param: w, grad: w, lr: 0.1 }), FiligreeError, "same buffer");
  const big = new Optimizer(gpu, 11, { kind: "sgd" });
  assertThrows(() => big.step(rec, { param: w, grad: g, lr: 0.1 }), FiligreeError, "needs 11");
  opt.hyper.momentum = 0;
  assertThrows(() => opt.step(rec, { param: w, grad: g, lr: 0.1 }), FiligreeError, "momentum");
});
