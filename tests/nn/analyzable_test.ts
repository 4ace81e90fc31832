/**
 * The analysis interface of the layers (nn/analyzable.ts): what every weight layer of the MLP
 * and CNN answers, and that checkpoints carry every layer's persistent buffers (batch norm's
 * running statistics of a CNN) through the interface.
 */
import { analysisOf, isWeightLayer } from "../../src/nn/analyzable.ts";
import { loadCheckpoint, saveCheckpoint } from "../../src/train/checkpoint.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { trainedCnn } from "../analysis/cnn_fixture.ts";
import { gpuTest } from "../../src/testing/mod.ts";
import { SparseLinear } from "../../src/nn/layers.ts";
import { csrFromCoo, uploadCsr } from "../../src/sparse/csr.ts";

gpuTest("weight views of a CNN: kinds, shapes, positions, cached buffers", async (gpu) => {
  const t = await trainedCnn(gpu, { norm: "batch", convChannels: [3, 5], hidden: [7] });
  const views = t.model.layers.filter(isWeightLayer).map((l) => l.weightView());
  const got = views.map((v) => `${v.kind}:${v.nIn}x${v.nOut}@${v.positions}/${v.unitRows}`);
  const want = ["conv:9x3@784/784", "conv:27x5@196/196", "linear:245x7@1/1", "linear:7x10@1/1"];
  if (got.join() !== want.join()) throw new Error(`views ${got}, want ${want}`);
  // Forward at an odd batch, then the buffers the analysis reads have the documented shapes.
  const B = 7;
  const x = { t: gpu.tensor("f32", [784, 8], { zero: true }), rows: 784, batch: B };
  const rec = gpu.recorder();
  t.model.forward({ rec, tape: null }, x);
  rec.submit();
  for (const v of views) {
    const z = v.preActivation(B), xin = v.weightInput(B);
    if (z.rows !== v.nOut * v.positions || z.batch !== B || z.t.size < z.rows * 8) {
      throw new Error(`${v.name}: pre-activation ${z.rows}x${z.batch}`);
    }
    if (xin.rows !== v.nIn * v.positions || xin.t.size < xin.rows * 8) {
      throw new Error(`${v.name}: weight input ${xin.rows}`);
    }
  }
  const ops = await Promise.all(
    t.model.layers.filter((l) => !isWeightLayer(l)).map(async (l) =>
      `${l.name}:${(await analysisOf(l).unitOp?.())?.kind}`
    ),
  );
  if (!ops.includes("conv1.bn:bn") || !ops.includes("conv1.pool:mixing")) {
    throw new Error(`unit ops ${ops}`);
  }
});

gpuTest(
  "checkpoints carry batch norm running statistics of a CNN (persistent buffers)",
  async (gpu) => {
    const t = await trainedCnn(gpu, { norm: "batch", convChannels: [3], hidden: [5] });
    const dir = await Deno.makeTempDir();
    try {
      await saveCheckpoint(t, `${dir}/c.safetensors`);
      const fresh = await Trainer.create(gpu, parseTrainConfig(JSON.parse(JSON.stringify(t.cfg))));
      await loadCheckpoint(fresh, `${dir}/c.safetensors`);
      let n = 0;
      for (let i = 0; i < t.model.layers.length; i++) {
        const a = analysisOf(t.model.layers[i]).persistentBuffers?.() ?? [];
        const b = analysisOf(fresh.model.layers[i]).persistentBuffers?.() ?? [];
        for (let k = 0; k < a.length; k++) {
          const [va, vb] = [await gpu.read(a[k].tensor), await gpu.read(b[k].tensor)];
          if (va.every((v) => v === 0 || v === 1)) throw new Error(`${a[k].name}: untrained`);
          if (va.some((v, e) => v !== vb[e])) throw new Error(`${a[k].name} not restored`);
          n++;
        }
      }
      if (n < 4) throw new Error(`${n} persistent buffers (conv1.bn, fc1.bn: 2 each expected)`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest(
  "the tape refuses fan-out (an activation feeding two ops) with a clear error",
  async (gpu) => {
    const { Linear } = await import("../../src/nn/layers.ts");
    const { Tape } = await import("../../src/nn/tape.ts");
    const { DataRng } = await import("../../src/data/random.ts");
    const a = new Linear(gpu, "a", 3, 4, { rng: new DataRng(1) });
    const b = new Linear(gpu, "b", 4, 2, { rng: new DataRng(2) });
    const c = new Linear(gpu, "c", 4, 2, { rng: new DataRng(3) });
    const x = { t: gpu.tensor("f32", [3, 8], { zero: true }), rows: 3, batch: 5 };
    const tape = new Tape();
    const rec = gpu.recorder();
    const h = a.forward({ rec, tape }, x);
    b.forward({ rec, tape }, h); // one consumer: fine
    let msg = "";
    try {
      c.forward({ rec, tape }, h); // a skip connection: would silently lose b's gradient
    } catch (e) {
      msg = (e as Error).message;
    }
    if (!msg.includes("fan-out")) throw new Error(`no fan-out error (${msg})`);
    // A new step (reset) starts clean.
    tape.reset();
    const h2 = a.forward({ rec, tape }, x);
    b.forward({ rec, tape }, h2);
  },
);

gpuTest(
  "skipStoredZeros: a sparse view's forward skips stored zeros while on, not after",
  async (gpu) => {
    // W 4x3 fully stored; input row 2's weights are stored zeros and its input is NaN: a forward
    // that multiplies them gives NaN (0·NaN), one that skips them does not.
    const rows: number[] = [], cols: number[] = [], vals: number[] = [];
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 3; j++) (rows.push(i), cols.push(j), vals.push(i === 2 ? 0 : 1 + i + j));
    }
    const layer = new SparseLinear(
      gpu,
      "l",
      uploadCsr(gpu, csrFromCoo(4, 3, rows, cols, vals)),
      {},
    );
    const x = Float32Array.from({ length: 4 * 4 }, (_, e) => (Math.floor(e / 4) === 2 ? NaN : 1));
    const act = { t: gpu.tensor("f32", [4, 4], { data: x }), rows: 4, batch: 3 };
    const run = async () => {
      const rec = gpu.recorder();
      const y = layer.forward({ rec, tape: null }, act);
      rec.submit();
      return Array.from((await gpu.read(y.t)).subarray(0, 3 * 4));
    };
    const view = layer.weightView();
    const plain = await run();
    view.skipStoredZeros(true);
    const skipped = await run();
    view.skipStoredZeros(false);
    const after = await run();
    // Row j, sample s: sum over i in {0, 1, 3} of (1 + i + j) = 3j + 7 (inputs 1).
    const want = [0, 1, 2].flatMap((j) => [0, 1, 2, 3].map((s) => (s < 3 ? 3 * j + 7 : 0)));
    if (!plain.some(Number.isNaN)) throw new Error(`plain forward ${plain}: expected 0·NaN`);
    if (skipped.join() !== want.join()) {
      throw new Error(
        `skipping forward ${skipped}, want ${want}`,
      );
    }
    if (!after.some(Number.isNaN)) throw new Error(`after turning it off ${after}: still skipping`);
  },
);
