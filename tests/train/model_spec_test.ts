/**
 * The model is described once: src/train/model_spec.ts turns a training config into a ModelSpec
 * (densities defaulted there, by the config's rules), src/nn/ builds from the spec alone and
 * imports nothing of training, and src/sparse/ nothing of train/.
 */
import assert from "node:assert/strict";
import { getGpu } from "../../src/gpu/mod.ts";
import { buildModel, weightShapes } from "../../src/nn/models.ts";
import { erDensity, erkDensities } from "../../src/sparse/density.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { modelSpecOf } from "../../src/train/model_spec.ts";

const MNIST = { features: 784, classes: 10, shape: [28, 28] };

Deno.test("nn/ and sparse/ import nothing from train/ (or study/, analysis/)", async () => {
  for (const dir of ["src/nn", "src/sparse"]) {
    for await (const e of Deno.readDir(dir)) {
      if (!e.name.endsWith(".ts")) continue;
      const code = await Deno.readTextFile(`${dir}/${e.name}`);
      // Static (also multi-line: the `} from "..."` line) and dynamic imports; not JSDoc.
      const imports = code.split("\n").filter((l) =>
        !/^\s*(\*|\/\/)/.test(l) && /(from\s+|import\()"/.test(l)
      );
      for (const l of imports) {
        assert.doesNotMatch(l, /"\.\.\/(train|study|analysis|report)\//, `${dir}/${e.name}: ${l}`);
      }
    }
  }
});

Deno.test("modelSpecOf: one density per weight layer of every architecture, by the config's rules", () => {
  const set = parseTrainConfig({ method: "set", epsilon: 20, hidden: [300, 100] });
  const mlp = modelSpecOf(set, { features: 784, classes: 10, shape: [784] });
  assert.deepEqual(mlp.densities, [erDensity(784, 300, 20), erDensity(300, 100, 20), 1]);

  const cnn = modelSpecOf(
    parseTrainConfig({ model: "cnn", convChannels: [6, 16], kernelSize: 5, hidden: [120] }),
    MNIST,
  );
  assert.deepEqual(weightShapes(cnn), [[25, 6], [150, 16], [784, 120], [120, 10]]);
  assert.equal(cnn.densities.length, 4);
  assert.equal(cnn.densities[3], 1); // output layer dense

  const rigl = parseTrainConfig({ model: "lstm", method: "rigl", density: 0.1, lstmHidden: 32 });
  const lstm = modelSpecOf({ ...rigl, hidden: [16] }, MNIST);
  const shapes: [number, number][] = [[28, 128], [32, 128], [32, 16]];
  assert.deepEqual(weightShapes(lstm), [...shapes, [16, 10]]);
  assert.deepEqual(lstm.densities, [...erkDensities(shapes, 0.1), 1]); // ERK by default for RigL

  // Pruning starts dense on the sparse path; the builders see densities just below 1.
  const prune = modelSpecOf(parseTrainConfig({ method: "prune", epsilon: 20 }), MNIST);
  assert.deepEqual(prune.densities, [0.999999, 0.999999, 1]);
  // The spec holds the data's shape, not the dataset.
  assert.deepEqual(Object.keys(prune.data).sort(), ["classes", "features", "shape"]);
});

Deno.test("buildModel: a wrong number of densities or a non-image CNN is a one-line error", async () => {
  const gpu = await getGpu();
  const spec = modelSpecOf(parseTrainConfig({ method: "set", density: 0.2, hidden: [8] }), {
    features: 12,
    classes: 3,
    shape: [12],
  });
  assert.throws(
    () => buildModel(gpu, { ...spec, densities: [0.2] }),
    /2 weight layers; 1 densities/,
  );
  assert.throws(
    () =>
      modelSpecOf(parseTrainConfig({ model: "cnn" }), { features: 12, classes: 3, shape: [12] }),
    /needs an image dataset/,
  );
  const m = buildModel(gpu, spec);
  assert.deepEqual(m.weightCounts().length, 2);
  assert.equal(m.weightCounts()[1], 8 * 3);
});

Deno.test("hidden: [] is a CNN/LSTM without a head (SNIP's LSTM-s); the MLP refuses it", () => {
  assert.throws(() => parseTrainConfig({ hidden: [] }), /needs at least one width for the MLP/);
  const cfg = parseTrainConfig({ model: "lstm", hidden: [], lstmHidden: 128, density: 0.05 });
  const spec = modelSpecOf(cfg, MNIST);
  assert.deepEqual(weightShapes(spec), [[28, 512], [128, 512], [128, 10]]);
  assert.deepEqual(spec.densities, [0.05, 0.05, 1]);
});
