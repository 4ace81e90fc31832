import { roundUp4 } from "../src/gpu/mod.ts";
import { lstmGatesBackward, lstmGatesForward } from "../src/kernels/lstm.ts";
import { DataRng } from "../src/data/random.ts";
import { Lstm } from "../src/nn/lstm.ts";
import { makeSparseLayer } from "../src/nn/mlp.ts";
import { Tape } from "../src/nn/tape.ts";
import { kernelBench } from "./_harness.ts";

// Row-MNIST shapes: 28 steps of 28 features, batch 128.
const S = 28, F = 28, B = 128;
const ld = roundUp4(B);

for (const H of [128, 256]) {
  const G = 4 * H;
  // One step of the cell: reads zx, zh (4 rows each) and c_{t-1}; writes c, 4 gates, h, hs.
  kernelBench({
    group: "lstm",
    name: `lstm_fwd step H${H} B${B}`,
    bytes: (9 + 7) * H * ld * 4,
    setup(gpu) {
      const zx = gpu.tensor("f32", [G, S * ld], { zero: true });
      const zh = gpu.tensor("f32", [G, ld], { zero: true });
      const c = gpu.tensor("f32", [H, S * ld], { zero: true });
      const gates = gpu.tensor("f32", [G, S * ld], { zero: true });
      const h = gpu.tensor("f32", [H, ld], { zero: true });
      const hs = gpu.tensor("f32", [H, S * ld], { zero: true });
      return (rec) =>
        lstmGatesForward(rec, { zx, zh, c, gates, h, hs, hidden: H, steps: S, t: 5, batch: B });
    },
  });
  // One BPTT step: reads 4 gates, c, c_{t-1}, dhr, dc; writes dc, dz (4 rows), dzs (4 rows).
  kernelBench({
    group: "lstm",
    name: `lstm_bwd step H${H} B${B}`,
    bytes: (8 + 9) * H * ld * 4,
    setup(gpu) {
      const gates = gpu.tensor("f32", [G, S * ld], { zero: true });
      const c = gpu.tensor("f32", [H, S * ld], { zero: true });
      const dhr = gpu.tensor("f32", [H, ld], { zero: true });
      const dc = gpu.tensor("f32", [H, ld], { zero: true });
      const dz = gpu.tensor("f32", [G, ld], { zero: true });
      const dzs = gpu.tensor("f32", [G, S * ld], { zero: true });
      return (rec) =>
        lstmGatesBackward(rec, {
          gates,
          c,
          dhr,
          dc,
          dz,
          dzs,
          hidden: H,
          steps: S,
          t: 5,
          batch: B,
        });
    },
  });
}

// The whole LSTM layer, forward + BPTT (weight and bias gradients), density 0.3: what one
// training step of `--model lstm --lstm-hidden 128` spends in the LSTM (head/loss/optimizer
// excluded). Reported as samples per second.
for (const H of [128]) {
  kernelBench({
    group: "lstm",
    name: `lstm layer fwd+bwd T${S} H${H} B${B} d0.3`,
    items: B,
    setup(gpu) {
      const rng = new DataRng(1);
      const wx = makeSparseLayer(gpu, F, 4 * H, 0.3, rng, "he", "b.wx");
      const wh = makeSparseLayer(gpu, H, 4 * H, 0.3, rng, "he", "b.wh");
      const layer = new Lstm(gpu, "b", { steps: S, features: F, hidden: H, wx, wh });
      const x = { t: gpu.tensor("f32", [S * F, ld], { zero: true }), rows: S * F, batch: B };
      const dy = { t: gpu.tensor("f32", [H, ld], { zero: true }), rows: H, batch: B };
      const tape = new Tape();
      return (rec) => {
        tape.reset();
        const y = layer.forward({ rec, tape }, x);
        tape.gradFor(y, () => dy);
        tape.backward();
      };
    },
  });
}
