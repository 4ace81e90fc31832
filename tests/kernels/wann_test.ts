import assert from "node:assert/strict";
import { FiligreeError } from "../../src/gpu/mod.ts";
import { WANN_DEFAULT_WEIGHTS, WannEvaluator } from "../../src/kernels/wann.ts";
import { NO_CLASS, wannEvalRef, wannStatsRef } from "../../src/kernels/wann_ref.ts";
import { packNets, WANN_ACT, type WannNet } from "../../src/kernels/wann_net.ts";
import { assertClose, gpuTest, type Rng } from "../../src/testing/mod.ts";

const ALL = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
// Bounded, non-periodic activations: a deep chain of them does not amplify rounding chaotically.
const SQUASH = [WANN_ACT.tanh, WANN_ACT.sigmoid, WANN_ACT.gauss];
const OPEN = [WANN_ACT.linear, WANN_ACT.inverse, WANN_ACT.abs, WANN_ACT.relu, ...SQUASH];

/** A random DAG: `hidden` hidden nodes, each fed by up to `fanIn` earlier nodes / inputs / bias. */
function randomNet(
  rng: Rng,
  features: number,
  outputs: number,
  hidden: number,
  fanIn: number,
  acts = ALL,
): WannNet {
  const act: number[] = [], incoming: number[][] = [];
  for (let j = 0; j < hidden + outputs; j++) {
    const sources = features + 1 + Math.min(j, hidden);
    const k = rng.int(fanIn + 1);
    const inc = new Set<number>();
    for (let t = 0; t < k; t++) inc.add(rng.int(sources));
    incoming.push([...inc]);
    act.push(j < hidden ? acts[rng.int(acts.length)] : WANN_ACT.linear);
  }
  return { features, outputs, act, incoming };
}

/** A chain of `depth` hidden nodes (each fed by the previous one, sometimes the bias too). */
function chainNet(rng: Rng, features: number, outputs: number, depth: number): WannNet {
  const act: number[] = [], incoming: number[][] = [];
  for (let j = 0; j < depth; j++) {
    incoming.push(
      j === 0 ? [1 + rng.int(features)] : [features + j, ...(rng.next() < 0.3 ? [0] : [])],
    );
    act.push(j % 3 === 2 ? SQUASH[rng.int(3)] : OPEN[rng.int(OPEN.length)]);
  }
  for (let o = 0; o < outputs; o++) {
    incoming.push([features + depth, ...(o % 2 ? [0] : [])]);
    act.push(o % 2 ? WANN_ACT.linear : WANN_ACT.inverse);
  }
  return { features, outputs, act, incoming };
}

/** Feature-major inputs in [0, 1) (pixels) and labels. */
function data(rng: Rng, features: number, samples: number, classes: number) {
  const x = Float32Array.from(rng.uniform(features * samples, 0, 1));
  const labels = new Uint32Array(samples).map(() => rng.int(classes));
  return { x, labels };
}

/** Checks node values, CE, argmax (where the reference margin is clear) and statistics. */
async function check(
  ev: WannEvaluator,
  nets: WannNet[],
  rng: Rng,
  samples: number,
  label: string,
  tol = { rtol: 2e-4, atol: 2e-4 },
) {
  const p = packNets(nets);
  const { x, labels } = data(rng, p.features, samples, p.outputs);
  ev.setData(x, labels, p.features);
  const got = await ev.evaluate(p, { inspect: true });
  const want = wannEvalRef(p, x, labels, ev.weights);
  const W = ev.weights.length;
  // Node values: [chunk node][weight][sample] on the GPU, per network on the reference.
  for (let n = 0; n < p.nets; n++) {
    const a = p.netNode[n] * W * samples, b = p.netNode[n + 1] * W * samples;
    assertClose(got.values!.subarray(a, b), want.values[n], {
      ...tol,
      label: `${label} values net ${n}`,
    });
  }
  assertClose(got.ce!, want.ce, { ...tol, label: `${label} ce` });
  for (let i = 0; i < want.pred.length; i++) {
    if (got.pred![i] === want.pred[i]) continue;
    // A different argmax is only acceptable on a near tie of the reference outputs.
    const n = Math.floor(i / (W * samples)), col = i % (W * samples);
    const count = p.netNode[n + 1] - p.netNode[n];
    const v = want.values[n];
    const y = (o: number) => v[(count - p.outputs + o) * W * samples + col];
    assert(
      got.pred![i] !== NO_CLASS && want.pred[i] !== NO_CLASS,
      `${label} pred[${i}] non-finite mismatch`,
    );
    const gap = Math.abs(y(got.pred![i]) - y(want.pred[i]));
    assert(
      gap <= 1e-3 * (1 + Math.abs(y(want.pred[i]))),
      `${label} pred[${i}] ${got.pred![i]} vs ${want.pred[i]}, gap ${gap}`,
    );
  }
  // Vote and statistics from the GPU's own per-sample results: exact accuracy, close mean CE.
  const own = wannStatsRef(got.ce!, got.pred!, labels, p.nets, W);
  assert.deepEqual(Array.from(got.vote!), Array.from(own.vote), `${label} vote`);
  assertClose(got.stats, own.stats, { rtol: 1e-5, atol: 1e-6, label: `${label} stats` });
  return { got, want, p };
}

gpuTest(
  "wann_eval/score/vote/reduce match the float64 reference on random DAGs (odd sizes)",
  async (gpu, rng) => {
    const ev = new WannEvaluator(gpu);
    for (
      const [nets, features, outputs, hidden, samples] of [
        [1, 1, 1, 0, 1],
        [3, 5, 2, 4, 7],
        [17, 13, 10, 9, 33],
        [5, 256, 10, 23, 131],
      ]
    ) {
      const pop = Array.from(
        { length: nets },
        () => randomNet(rng, features, outputs, rng.int(hidden + 1), 6),
      );
      await check(ev, pop, rng, samples, `${nets} nets ${features}->${outputs} S=${samples}`);
    }
    ev.dispose();
  },
);

gpuTest("wann: deep chains and wide layers match the reference", async (gpu, rng) => {
  const ev = new WannEvaluator(gpu);
  const deep = [chainNet(rng, 3, 2, 300), chainNet(rng, 3, 2, 1000), chainNet(rng, 3, 2, 5)];
  await check(ev, deep, rng, 9, "deep chains");
  // Wide: one layer of 700 hidden nodes over 64 inputs, every output reading 50 of them.
  const wide: WannNet[] = [];
  for (let n = 0; n < 2; n++) {
    const act: number[] = [], incoming: number[][] = [];
    for (let j = 0; j < 700; j++) {
      incoming.push([0, 1 + rng.int(64), 1 + rng.int(64)].filter((v, i, a) => a.indexOf(v) === i));
      act.push(ALL[rng.int(10)]);
    }
    for (let o = 0; o < 10; o++) {
      const inc = new Set<number>();
      for (let t = 0; t < 50; t++) inc.add(65 + rng.int(700));
      incoming.push([...inc]);
      act.push(WANN_ACT.linear);
    }
    wide.push({ features: 64, outputs: 10, act, incoming });
  }
  await check(ev, wide, rng, 5, "wide layers");
  ev.dispose();
});

gpuTest("wann: other weight lists, chunked populations equal one chunk", async (gpu, rng) => {
  for (const weights of [[1], [-1.5, -0.25, 0.75, 3, 0.5]]) {
    const ev = new WannEvaluator(gpu, { weights });
    const pop = Array.from({ length: 6 }, () => randomNet(rng, 7, 3, 5, 4));
    await check(ev, pop, rng, 11, `weights ${weights}`);
    ev.dispose();
  }
  // A scratch cap that forces one or two networks per chunk.
  const pop = Array.from({ length: 23 }, () => randomNet(rng, 9, 4, 1 + rng.int(12), 5));
  const p = packNets(pop);
  const { x, labels } = data(rng, 9, 37, 4);
  const whole = new WannEvaluator(gpu);
  whole.setData(x, labels, 9);
  const one = await whole.evaluate(p);
  const small = new WannEvaluator(gpu, { maxScratchFloats: 16 * 6 * 37 });
  small.setData(x, labels, 9);
  const many = await small.evaluate(p);
  assert.deepEqual(one.chunks, 1);
  assert(many.chunks > 5, `chunks ${many.chunks}`);
  assert.deepEqual(Array.from(many.stats), Array.from(one.stats));
  const want = wannEvalRef(p, x, labels, WANN_DEFAULT_WEIGHTS);
  // Accuracies agree exactly unless an argmax sits on a near tie (none expected at this size).
  for (let i = 1; i < want.stats.length; i += 2) {
    assert(Math.abs(many.stats[i] - want.stats[i]) <= 1 / 37 + 1e-6, `acc ${i}`);
  }
  whole.dispose();
  small.dispose();
});

gpuTest(
  "wann: non-finite outputs score CE 100 and no class; overflow matches the reference",
  async (gpu, rng) => {
    // A linear chain at |w| = 2 over 200 nodes overflows float32 (2^200): outputs become ±Infinity.
    const act = new Array(202).fill(WANN_ACT.linear);
    const incoming = [[1], ...Array.from({ length: 199 }, (_, j) => [2 + j]), [201], [0]];
    const ev = new WannEvaluator(gpu, { weights: [-2, 0.5, 2] });
    const { got } = await check(
      ev,
      [{ features: 1, outputs: 2, act, incoming }],
      rng,
      3,
      "overflow",
    );
    assert.deepEqual(got.ce![0], 100);
    assert.deepEqual(got.pred![0], NO_CLASS);
    assert(got.ce![3] < 100, "w = 0.5 stays finite");
    ev.dispose();
  },
);

gpuTest("wann: limits are checked before dispatch with one-line errors", async (gpu) => {
  assert.throws(() => new WannEvaluator(gpu, { weights: new Array(65).fill(1) }), FiligreeError);
  const ev = new WannEvaluator(gpu);
  assert.throws(
    () => ev.setData(new Float32Array(65_001), new Uint32Array(65_001), 1),
    (e: Error) => e instanceof FiligreeError && e.message.includes("samples"),
  );
  ev.setData(new Float32Array(4), new Uint32Array(4), 1);
  // nodes + edges over the loop bound
  const big: WannNet = {
    features: 1,
    outputs: 1,
    act: new Array(33_000).fill(1),
    incoming: Array.from({ length: 33_000 }, (_, j) => [j]),
  };
  let msg = "";
  await ev.evaluate(packNets([big])).catch((e) => (msg = (e as Error).message));
  assert(msg.includes("loop bound"), msg);
  // label out of range, wrong input count
  ev.setData(new Float32Array(2), new Uint32Array([0, 3]), 1);
  await ev.evaluate(packNets([{ features: 1, outputs: 2, act: [1, 1], incoming: [[1], [1]] }]))
    .catch((e) => (msg = (e as Error).message));
  assert(msg.includes("label 3"), msg);
  assert.throws(
    () => packNets([{ features: 1, outputs: 1, act: [1, 1], incoming: [[3], [1]] }]),
    FiligreeError,
  );
  assert.throws(
    () => packNets([{ features: 1, outputs: 2, act: [1, 1], incoming: [[1], [2]] }]),
    (e: Error) => e instanceof FiligreeError && e.message.includes("output"),
  );
  ev.dispose();
});
