/**
 * Pieces of src/analysis/run.ts that were made cheaper: the curves' removal order (sorted once,
 * prefixes per fraction) against the plain per-fraction sort, and per-layer curves (evaluated
 * from the layer's cached input) against a full forward of the masked model; the half-set
 * probes take the carry engine.
 */
import {
  ablateRun,
  CURVE_FRACTIONS,
  lowestMask,
  probeOn,
  removalOrder,
} from "../../src/analysis/run.ts";
import { parseAblateOptions } from "../../src/analysis/options.ts";
import { Probe } from "../../src/analysis/probe.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { trainRun } from "../../src/train/run.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { freshSeed, gpuTest, Rng } from "../../src/testing/mod.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

/** The previous implementation: one sort of (key, layer, entry) triples per fraction. */
function plainLowestMask(keys: Float32Array[], fraction: number): Float32Array[] {
  const all: [number, number, number][] = [];
  keys.forEach((k, l) => k.forEach((v, e) => all.push([v, l, e])));
  all.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  const masks = keys.map((k) => new Float32Array(k.length).fill(1));
  const m = Math.round(fraction * all.length);
  for (let q = 0; q < m; q++) masks[all[q][1]][all[q][2]] = 0;
  return masks;
}

Deno.test("lowestMask with a shared removalOrder == one sort per fraction (ties, odd sizes)", () => {
  const seed = freshSeed(), rng = new Rng(seed);
  for (const sizes of [[1], [7, 3], [101, 13, 9], [250, 1, 33]]) {
    // Few distinct values: ties within and across layers, broken by layer then position.
    const keys = sizes.map((n) => Float32Array.from({ length: n }, () => rng.int(6) - 2));
    const order = removalOrder(keys);
    for (const f of [...CURVE_FRACTIONS, 0, 1, 0.333]) {
      const got = lowestMask(keys, f, order), want = plainLowestMask(keys, f);
      got.forEach((m, l) =>
        assert(
          m.every((v, e) => v === want[l][e]),
          `sizes ${sizes} fraction ${f} layer ${l} (FILIGREE_SEED=${seed})`,
        )
      );
    }
  }
});

gpuTest(
  "per-layer curves (from the cached layer input) == full forward of the masked model",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "filigree-runtest-" });
    await trainRun(
      parseTrainConfig({
        dataset: "synthetic",
        syntheticFeatures: 13,
        syntheticClasses: 3,
        syntheticSamples: 600,
        hidden: [21, 11],
        method: "set",
        density: 0.45,
        epochs: 3,
        batchSize: 50,
        lr: 0.1,
      }),
      dir,
      { quiet: true },
    );
    const opts = parseAblateOptions({
      evalSamples: 97,
      maxWeights: 40,
      curveLayers: true,
      scores: ["magnitude", "random"],
      plots: false,
      seed: 5,
    });
    const s = await ablateRun(dir, opts, { quiet: true });
    assert(s.protocol?.curvesSplit === "test", "curves on the test split");
    const probe = await Probe.fromRun(dir, { evalSamples: 97, evalSplit: "test", seed: 5 });
    let checked = 0;
    for (const [w, pl] of probe.layers.entries()) {
      for (const score of ["magnitude", "magnitude-desc"]) {
        const key = pl.values.map((v) => (score === "magnitude" ? 1 : -1) * Math.abs(v));
        const curve = s.curves.find((c) => c.score === score && c.scope === pl.name);
        assert(curve, `no ${score} curve for ${pl.name}`);
        for (const p of curve.points) {
          const mask = plainLowestMask([key], p.fraction)[0];
          probe.setValues(w, Float32Array.from(pl.values, (v, e) => v * mask[e]));
          const m = await probe.evaluate();
          probe.setValues(w, pl.values);
          assert(
            Math.abs(m.loss - p.loss) <= 1e-6 * Math.max(1, m.loss) && m.accuracy === p.accuracy,
            `${pl.name} ${score} at ${p.fraction}: full forward ${m.loss}/${m.accuracy}, ` +
              `curve ${p.loss}/${p.accuracy}`,
          );
          checked++;
        }
      }
    }
    assert(checked === 3 * 2 * CURVE_FRACTIONS.length, `checked ${checked} points`);
    // The half-set probes (probeOn) ablate with the work-efficient carry engine on every layer.
    const half = await probeOn(probe.trainer, "test", probe.evalIndices.slice(0, 48), 256);
    assert(half.engine === "carry" && half.samples === 48, `half probe ${half.engine}`);
    for (let w = 0; w < half.layers.length; w++) {
      const d = await half.carryDecision(w);
      assert(d.carried, `${half.layers[w].name} falls back: ${d.reason}`);
    }
    // The default measures the global scope only.
    const d = await ablateRun(dir, parseAblateOptions({ evalSamples: 60, plots: false }), {
      quiet: true,
    });
    assert(d.curves.every((c) => c.scope === "global"), "default curves are global only");
    await Deno.remove(dir, { recursive: true });
  },
);

gpuTest(
  "an evaluation set larger than a probe holds is ablated in shards: the same targets and baseline",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "filigree-shardtest-" });
    await trainRun(
      parseTrainConfig({
        dataset: "synthetic",
        syntheticFeatures: 11,
        syntheticClasses: 3,
        syntheticSamples: 500,
        hidden: [17, 9],
        method: "set",
        density: 0.5,
        epochs: 2,
        batchSize: 50,
        lr: 0.1,
      }),
      dir,
      { quiet: true },
    );
    const base = {
      evalSamples: 91,
      splits: ["test", "train"],
      maxWeights: 30,
      scores: ["magnitude"],
      units: false,
      curves: false,
      plots: false,
      seed: 4,
    };
    const whole = await ablateRun(dir, parseAblateOptions(base), { quiet: true });
    const wholeT = (await readSafetensors(`${dir}/analysis/ablation.safetensors`)).tensors;
    // 91 samples: halves of 46 and 45, each in 3 parts (16 + 16 + 14, 16 + 16 + 13) for probes
    // of at most 16 samples: unequal parts, so a wrongly weighted recombination shows.
    const sharded = await ablateRun(dir, parseAblateOptions({ ...base, probeSamples: 16 }), {
      quiet: true,
    });
    const shardT = (await readSafetensors(`${dir}/analysis/ablation.safetensors`)).tensors;
    for (const split of ["test", "train"] as const) {
      const w = whole.protocol!.splits[split]!, s = sharded.protocol!.splits[split]!;
      assert(w.sharded === undefined, `${split}: the whole set fits one probe`);
      assert(
        JSON.stringify(s.sharded) ===
          JSON.stringify({ shards: 6, shardSamples: 16, probeSamples: 16 }),
        `${split}: sharding ${JSON.stringify(s.sharded)}`,
      );
      assert(s.samples === 91 && w.samples === 91, `${split}: ${s.samples} samples`);
      const close = (a: number, b: number) => Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b));
      assert(
        close(s.baseline.loss, w.baseline.loss) && close(s.baseline.accuracy, w.baseline.accuracy),
        `${split} baseline ${JSON.stringify(s.baseline)} vs ${JSON.stringify(w.baseline)}`,
      );
    }
    let compared = 0;
    for (const [name, t] of wholeT) {
      if (!/delta_(loss|accuracy)(\.a|\.b)?$|eval_indices$|\.half$|\.ablated$/.test(name)) continue;
      const got = Array.from(shardT.get(name)!.data, Number), want = Array.from(t.data, Number);
      assert(got.length === want.length && got.length > 0, `${name}: lengths`);
      for (let k = 0; k < want.length; k++) {
        assert(
          Math.abs(got[k] - want[k]) <= 1e-5 * Math.max(1e-3, Math.abs(want[k])),
          `${name}[${k}]: sharded ${got[k]}, whole ${want[k]}`,
        );
      }
      compared++;
    }
    // 3 weight layers x 2 splits x 6 delta tensors + eval indices and halves + ablated entries.
    assert(compared === 3 * 2 * 6 + 2 * 2 + 3, `compared ${compared} tensors`);
    await Deno.remove(dir, { recursive: true });
  },
);
