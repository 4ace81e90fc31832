import { ablateRun } from "../../src/analysis/run.ts";
import { parseAblateOptions } from "../../src/analysis/options.ts";
import { trainRun } from "../../src/train/run.ts";
import { parseTrainConfig } from "../../src/train/config.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { gpuTest } from "../../src/testing/mod.ts";
import type { AnalysisSummary } from "../../src/analysis/summary.ts";

async function trainedRun(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "filigree-ablate-" });
  const cfg = parseTrainConfig({
    dataset: "synthetic",
    syntheticFeatures: 16,
    syntheticClasses: 4,
    syntheticSamples: 800,
    hidden: [24, 12],
    method: "set",
    density: 0.4,
    epochs: 3,
    batchSize: 50,
    lr: 0.1,
  });
  await trainRun(cfg, dir, { quiet: true });
  return dir;
}

const strip = (s: AnalysisSummary) => ({ ...s, seconds: {}, ablationsPerSecond: 0 });

gpuTest("ablate writes aligned outputs, is reproducible, and restarts cleanly", async () => {
  const dir = await trainedRun();
  const opts = parseAblateOptions({ evalSamples: 150, maxWeights: 100, units: true, seed: 3 });
  // A stale partial directory from an interrupted run is replaced, never merged.
  await Deno.mkdir(`${dir}/.analysis-partial`, { recursive: true });
  await Deno.writeTextFile(`${dir}/.analysis-partial/junk`, "half-written");
  const a = await ablateRun(dir, opts, { quiet: true });
  for (
    const f of [
      "ablation.safetensors",
      "summary.json",
      "plots/magnitude_vs_dloss.svg",
      "plots/ablation_curves.png",
      "plots/unit_ablation.svg", // units: true makes its plot
    ]
  ) {
    await Deno.stat(`${dir}/analysis/${f}`);
  }
  let stale = true;
  await Deno.stat(`${dir}/analysis/junk`).catch(() => (stale = false));
  if (stale) throw new Error("stale partial file leaked into analysis/");
  const ck = await readSafetensors(`${dir}/checkpoint.safetensors`);
  const an = await readSafetensors(`${dir}/analysis/ablation.safetensors`);
  // Scores are in the checkpoint's CSR order: magnitude is |values| entry by entry.
  const vals = ck.tensors.get("fc1.values")!.data as Float32Array;
  const mag = an.tensors.get("fc1.train.score.magnitude")!.data as Float32Array;
  if (mag.length !== vals.length || mag.some((m, i) => m !== Math.abs(vals[i]))) {
    throw new Error("fc1.train.score.magnitude is not |fc1.values| in checkpoint order");
  }
  const abl = an.tensors.get("fc1.ablated")!.data as Uint32Array;
  if (abl.length !== 100 || abl.some((v, i) => v >= vals.length || (i > 0 && v <= abl[i - 1]))) {
    throw new Error("fc1.ablated: expected 100 sorted distinct checkpoint positions");
  }
  // Both splits: full-set Δ is the exact size-weighted mean of the halves' Δ.
  for (const split of ["train", "test"]) {
    const g = (n: string) => an.tensors.get(`out.${split}.${n}`)!.data as Float32Array;
    const half = an.tensors.get(`${split}.half`)!.data as Uint8Array;
    const nB = half.reduce((x, y) => x + y, 0), nA = half.length - nB;
    const [f, da, db] = [g("delta_loss"), g("delta_loss.a"), g("delta_loss.b")];
    if (
      f.length !== 48 ||
      f.some((v, k) => Math.abs(v - (nA * da[k] + nB * db[k]) / (nA + nB)) > 1e-6)
    ) {
      throw new Error(`${split}: full-set Δloss is not the recombined halves`);
    }
  }
  const p = a.protocol!;
  if (p.version !== 2 || p.splits.train!.samples !== 150 || p.splits.test!.seed !== 3) {
    throw new Error(`protocol ${JSON.stringify(p)}`);
  }
  for (const split of ["train", "test"] as const) {
    const rows = a.agreement2!.filter((r) => r.split === split);
    const layers = new Set(rows.map((r) => r.layer));
    if (!["fc1", "fc2", "out", "fisher-z mean"].every((l) => layers.has(l))) {
      throw new Error(`${split}: layers ${[...layers]}`);
    }
    if (rows.some((r) => r.score === "taylor")) throw new Error("taylor duplicates snip");
    const m = rows.find((r) =>
      r.layer === "fc1" && r.score === "magnitude" && r.target === "absdloss"
    )!;
    if (!(m.primary && m.ci[0] <= m.spearman + 1e-12 && Number.isFinite(m.ceiling))) {
      throw new Error(JSON.stringify(m));
    }
    if (a.layerFacts2!.filter((f) => f.split === split).length !== 3) throw new Error("facts");
  }
  if (a.layerFacts2!.find((f) => f.layer === "fc1")!.dropPrecision === undefined) {
    throw new Error("no drop precision for a SET layer");
  }
  if (an.tensors.get("fc2.train.input_unit_delta_loss")!.shape[0] !== 24) {
    throw new Error("unit ablation of the 24 units feeding fc2 missing");
  }
  // Same run, same seed: the same numbers.
  const b = await ablateRun(dir, opts, { quiet: true });
  if (JSON.stringify(strip(a)) !== JSON.stringify(strip(b))) throw new Error("not reproducible");
  // Agreement entries for every score, overall and per layer, with intervals around the value.
  const mag1 = a.agreement.find((x) => x.score === "magnitude" && x.scope === "all")!;
  if (!(mag1.n === 100 + 100 + 48 && mag1.spearman.ci[0] <= mag1.spearman.value + 1e-12)) {
    throw new Error(`bad agreement entry ${JSON.stringify(mag1)}`);
  }
  // The SET paper's control: removing the largest weights first breaks the network long
  // before removing the smallest first does.
  const at = (score: string) =>
    a.curves.find((c) => c.score === score && c.scope === "global")!.points.find((p) =>
      p.fraction === 0.3
    )!.accuracy;
  if (!(at("magnitude-desc") < at("magnitude") - 0.2)) {
    throw new Error(`largest-first ${at("magnitude-desc")} vs smallest-first ${at("magnitude")}`);
  }
  await Deno.remove(dir, { recursive: true });
});

async function cli(args: string[]): Promise<{ code: number; err: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../cli/main.ts", import.meta.url).pathname, "ablate", ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: o.code, err: new TextDecoder().decode(o.stderr).trim() };
}

gpuTest("ablate: a bad run directory is a one-line error", async () => {
  const dir = await trainedRun();
  const expectOneLine = async (args: string[], want: RegExp) => {
    const r = await cli(args);
    if (r.code !== 1 || r.err.split("\n").length !== 1 || !want.test(r.err)) {
      throw new Error(`ablate ${args.join(" ")}: exit ${r.code}, stderr: ${r.err}`);
    }
  };
  await expectOneLine(["/nonexistent/run"], /does not exist/);
  for (
    const [args, want] of [
      [["--splits", "foo"], /splits.*train, test/],
      [["--eval-samples", "abc"], /eval-samples.*abc/],
      [["--splits", "train,train"], /listed twice/],
    ] as const
  ) {
    const r = await cli([dir, ...args]);
    if (r.code === 0 || r.err.split("\n").length !== 1 || !want.test(r.err)) {
      throw new Error(`ablate ${args.join(" ")}: exit ${r.code}, stderr: ${r.err}`);
    }
  }
  await expectOneLine([dir, "--layers", "fc9"], /unknown layer "fc9"/);
  const cfg = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ ...cfg, filigree: "7.0.0" }));
  await expectOneLine([dir], /written by filigree 7\.0\.0/);
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(cfg));
  const ck = await Deno.readFile(`${dir}/checkpoint.safetensors`);
  await Deno.writeFile(`${dir}/checkpoint.safetensors`, ck.subarray(0, ck.length >> 1));
  await expectOneLine([dir], /checkpoint/);
  await Deno.remove(dir, { recursive: true });
});
