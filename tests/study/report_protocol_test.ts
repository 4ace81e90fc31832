/**
 * The report of a protocol-v2 study (issues 10, 12): hypotheses first, then per-layer
 * correlations with their noise ceilings, statistics along training (analyses at epochs 1, 3 and
 * final), accuracy per cell with its stop epoch and criterion, and the weight-agnostic section.
 * The synthetic store plants known numbers; the test reads them back from the report. When
 * Chromium is on PATH the HTML is also opened at 1280 px and must not overflow horizontally.
 */
import assert from "node:assert/strict";
import { StudyStore } from "../../src/study/store.ts";
import type { AnalysisRow, CellRow } from "../../src/study/schema.ts";
import { writeReport } from "../../src/study/report.ts";
import { DataRng } from "../../src/data/random.ts";

const ACTS = ["relu", "tanh"];
const NORMS = ["none", "batch"];
const SEEDS = [0, 1, 2, 3];
const LAYERS = ["fc1", "fc2", "out"];
/** Planted ρ(|w|, |ΔL|) per layer at the final epoch (tanh adds 0.2); epoch e: × e/(e+2). */
const RHO: Record<string, number> = { fc1: 0.2, fc2: 0.4, out: 0.6 };
const ATTAINABLE = 0.9;

function summary(rng: DataRng, activation: string, epochFactor: number, final: boolean) {
  const agreement2: Record<string, unknown>[] = [];
  const layerFacts2: Record<string, unknown>[] = [];
  for (const split of ["train", "test"]) {
    for (const [score, target] of [["magnitude", "absdloss"], ["signed2", "dloss"]]) {
      const vs = LAYERS.map((l) =>
        (RHO[l] + (activation === "tanh" ? 0.2 : 0) + (score === "signed2" ? 0.1 : 0)) *
          epochFactor + (rng.next() - 0.5) * 0.01
      );
      const row = (layer: string, v: number, n: number) => ({
        split,
        layer,
        score,
        target,
        spearman: v,
        ci: [v - 0.05, v + 0.05],
        n,
        ceiling: ATTAINABLE ** 2,
        halfReliability: 0.68,
        attainable: ATTAINABLE,
        primary: true,
      });
      LAYERS.forEach((l, i) => agreement2.push(row(l, vs[i], 500)));
      const z = Math.tanh(vs.reduce((a, v) => a + Math.atanh(v), 0) / vs.length);
      agreement2.push(row("fisher-z mean", z, 3));
    }
    for (const layer of LAYERS) {
      layerFacts2.push({
        split,
        layer,
        helpfulFraction: 0.4 - 0.3 * epochFactor,
        dropPrecision: 0.5,
        nAblated: 500,
        reliability: {},
      });
    }
  }
  const s: Record<string, unknown> = { agreement2, layerFacts2, agreement: [], layers: [] };
  if (final) {
    const acc = (mask: string, weights: string) =>
      weights === "signed" ? (mask === "trained" ? 0.7 : 0.4) : 0.15;
    s.agnostic = {
      samples: 100,
      baseline: { accuracy: 0.96, loss: 0.1 },
      scales: [1],
      seeds: 2,
      layers: [],
      // Scale 1 of the signed variant: 0.75 on the trained mask, 0.45 on random ones.
      rows: ["trained", "degree-matched", "shuffled"].flatMap((mask) =>
        [1, -1].map((scale) => ({
          mask,
          weights: "signed",
          scale,
          maskSeed: mask === "trained" ? null : 0,
          accuracy: scale < 0 ? 0.1 : mask === "trained" ? 0.75 : 0.45,
          loss: 1,
        }))
      ),
      summary: ["trained", "degree-matched", "shuffled"].flatMap((mask) =>
        ["trained", "shared", "signed"].map((weights) => ({
          mask,
          weights,
          meanAccuracy: weights === "trained" && mask === "trained" ? 0.96 : acc(mask, weights),
          bestAccuracy: 0.97,
          bestScale: 1,
          retainedMean: 0.5,
          retainedBest: 0.9,
        }))
      ),
    };
  }
  return JSON.stringify(s);
}

const SPEC = {
  name: "protocol",
  factors: { activation: ACTS, norm: NORMS, seed: SEEDS },
  train: { dataset: "synthetic", hidden: [8, 8], epochs: 30, plateauTol: 0.01 },
  analysis: { epochs: [1, 3, "final"], scores: ["magnitude", "signed2"], agnostic: true },
  hypotheses: [
    {
      id: "H1",
      statement: "rho(|w|, |dL|) rises from epoch 3 to the end",
      source: "synthetic",
      metric: { score: "magnitude", target: "absdloss", epoch: "final" },
      comparison: { factor: "epoch", levels: ["final", 3] },
      direction: "greater",
    },
    {
      id: "H2",
      statement: "signed2 vs dL beats |w| vs |dL|",
      source: "synthetic",
      metric: {
        score: "signed2",
        target: "dloss",
        minus: { score: "magnitude", target: "absdloss" },
      },
      comparison: { value: 0 },
      direction: "greater",
    },
    {
      id: "H9",
      statement: "sign-only weights keep more accuracy on the trained topology",
      source: "synthetic",
      metric: { statistic: "agnostic", weights: "signed" },
      comparison: { factor: "mask", levels: ["trained", "degree-matched"] },
      sesoi: 0.05,
      direction: "greater",
    },
  ],
};

/** 16 cells; the relu cells stop by the plateau rule at epoch 20 + seed, tanh runs to 30. */
function buildStore(path: string): void {
  const store = StudyStore.open(path, {
    study: "protocol",
    spec: JSON.stringify(SPEC),
    command: "deno task sweep studies/protocol.yaml",
    commit: "test",
  });
  const rng = new DataRng(5);
  let index = 0;
  for (const activation of ACTS) {
    for (const norm of NORMS) {
      for (const seed of SEEDS) {
        const id = `p${String(index).padStart(15, "0")}`;
        const last = activation === "relu" ? 20 + seed : 30;
        const final = summary(rng, activation, 1, true);
        const cell: CellRow = {
          cell_id: id,
          study: "protocol",
          cell_index: index++,
          factors: JSON.stringify({ activation, norm, seed }),
          config: JSON.stringify({ epochs: 30 }),
          run_dir: `runs/${id}`,
          test_accuracy: 0.97 + seed / 1000,
          test_loss: 0.1,
          train_accuracy: 0.995,
          train_loss: 0.0123,
          epochs: last,
          train_seconds: 10,
          step_ms: 1,
          nnz: 100,
          dense_weights: 1000,
          param_bytes: 800,
          analysis: final,
          analysis_seconds: 3,
          adapter: "llvmpipe (test)",
          filigree_version: "0.1.0",
          finished_at: "2026-01-01T00:00:00Z",
          stopped: activation === "relu" ? "plateau: train loss within 1 % for 3 epochs" : null,
        };
        const analyses: AnalysisRow[] = [
          {
            cell_id: id,
            epoch: 1,
            final: 0,
            analysis: summary(rng, activation, 1 / 3, false),
            analysis_seconds: 1,
          },
          {
            cell_id: id,
            epoch: 3,
            final: 0,
            analysis: summary(rng, activation, 3 / 5, false),
            analysis_seconds: 1,
          },
          { cell_id: id, epoch: last, final: 1, analysis: final, analysis_seconds: 1 },
        ];
        const epochs = Array.from({ length: last }, (_, i) => ({
          cell_id: id,
          epoch: i + 1,
          train_loss: 1 / (i + 1),
          train_accuracy: 0.9,
          test_loss: 1 / (i + 1),
          test_accuracy: 0.9 + i / 1000,
          seconds: "{}",
          nnz: "[]",
        }));
        store.recordCell({ cell, epochs, analyses });
      }
    }
  }
  store.close();
}

/** The rows of the markdown table under a "## title" heading. */
function mdTable(md: string, title: string): string[][] {
  const at = md.indexOf(`## ${title}`);
  assert.ok(at >= 0, `no section "${title}"`);
  const next = md.indexOf("\n## ", at + 3);
  return md.slice(at, next < 0 ? undefined : next).split("\n").filter((l) => l.startsWith("| "))
    .map((l) => l.slice(2, -2).split(/(?<!\\) \| /).map((c) => c.replace(/\\\|/g, "|")));
}

Deno.test("report: hypotheses first, per-layer ceilings, statistics along training, accuracy per cell with stop criterion, agnostic retention", async () => {
  const dir = await Deno.makeTempDir();
  try {
    buildStore(`${dir}/store.sqlite`);
    const { html, md } = await writeReport(`${dir}/store.sqlite`, `${dir}/out`, { noPng: true });
    const m = await Deno.readTextFile(md);
    const h = await Deno.readTextFile(html);
    // Section order: hypotheses, per-layer ceilings, along training, accuracy per cell.
    const order = [
      "## Pre-registered hypotheses",
      "## Per-layer correlations with their noise ceilings (train split)",
      "## Per-layer correlations with their noise ceilings (test split)",
      "## Magnitude vs |ΔL| per layer and condition (train split)",
      "## Importance along training",
      "## Noise ceilings, helpful removals and drop precision along training",
      "## Accuracy per cell and convergence",
    ].map((t) => m.indexOf(t));
    assert.ok(order.every((i) => i > 0), `sections: ${order}`);
    assert.deepEqual([...order].sort((a, b) => a - b), order);
    assert.equal(m.indexOf("## Pre-registered hypotheses"), m.indexOf("## "), "hypotheses first");

    // Hypotheses: H1 (rho x 1 at final vs x 3/5 at epoch 3) and H2 (+0.1) and H9 (+0.3).
    const hyp = mdTable(m, "Pre-registered hypotheses");
    const verdict = (id: string) => hyp.find((r) => r[0] === id)?.[1];
    assert.equal(verdict("H1"), "confirmed");
    assert.equal(verdict("H2"), "confirmed");
    assert.equal(verdict("H9"), "confirmed");

    // Per-layer rows: planted rho (mean over relu and tanh: + 0.1) with ceiling and attainable.
    const layers = mdTable(m, "Per-layer correlations with their noise ceilings (train split)");
    assert.deepEqual(layers[0], [
      "layer",
      "score",
      "target",
      "n",
      "ρ",
      "ceiling",
      "attainable",
      "ρ / attainable",
    ]);
    for (const l of LAYERS) {
      const r = layers.find((x) => x[0] === l && x[1] === "magnitude")!;
      assert.equal(r[2], "|ΔL|");
      assert.equal(r[3], "16");
      assert.ok(Math.abs(parseFloat(r[4]) - (RHO[l] + 0.1)) < 0.01, `${l}: ${r[4]}`);
      assert.equal(r[5], "0.810 ± 0.000");
      assert.equal(r[6], "0.900 ± 0.000");
    }
    assert.ok(layers.some((x) => x[0] === "fisher-z mean"), "fisher-z mean row");
    assert.ok(layers.some((x) => x[1] === "signed2" && x[2] === "ΔL"), "signed score vs ΔL");

    // Along training: epochs 1, 3 and the final one at the mean last epoch (relu 20-23, tanh 30).
    const along = mdTable(m, "Importance along training");
    assert.deepEqual(along[0], [
      "layer",
      "score vs target",
      "epoch 1",
      "epoch 3",
      "final (epoch 25.8, 20–30)",
    ]);
    const fc1 = along.find((r) => r[0] === "fc1" && r[1] === "magnitude vs |ΔL|")!;
    assert.ok(Math.abs(parseFloat(fc1[2]) - 0.3 / 3) < 0.01, fc1.join(" "));
    assert.ok(Math.abs(parseFloat(fc1[3]) - 0.3 * 3 / 5) < 0.01, fc1.join(" "));
    assert.ok(Math.abs(parseFloat(fc1[4]) - 0.3) < 0.01, fc1.join(" "));
    const facts = mdTable(m, "Noise ceilings, helpful removals and drop precision along training");
    const helpful = facts.find((r) => r[0] === "out" && r[1] === "helpful removals")!;
    assert.deepEqual(helpful.slice(2).map(parseFloat), [0.3, 0.22, 0.1]);
    assert.ok(facts.some((r) => r[1] === "attainable ρ of |ΔL|" && parseFloat(r[4]) === 0.9));

    // Accuracy per cell: 16 rows, stop epoch and criterion.
    const acc = mdTable(m, "Accuracy per cell and convergence");
    assert.equal(acc.length, 1 + 16);
    assert.deepEqual(acc[1], [
      "0",
      "activation=relu, norm=none",
      "0",
      "20 / 30",
      "plateau: train loss within 1 % for 3 epochs",
      "0.0123",
      "0.9950",
      "0.9700",
    ]);
    assert.equal(acc[16][3], "30 / 30");
    assert.equal(acc[16][4], "none: ran to the maximum");
    assert.match(m, /8 of 16 cells stopped by their stop rule/);

    // Agnostic retention: signed weights at scale 1 0.75 on the trained mask, 0.45 on random
    // ones; shared weights at their best scale 0.97.
    const ag = mdTable(m, "Weight-agnostic retention (sign-only and shared weights)");
    assert.equal(ag[0][3], "signed s=1, trained");
    assert.deepEqual(ag[1].slice(2, 7).map(parseFloat), [0.96, 0.75, 0.45, 0.45, 0.97]);

    // Every new chart is inline in the HTML; nothing undefined or NaN leaks into it.
    for (
      const name of [
        "layers_train",
        "layers_test",
        "along-training",
        "along-training-facts",
        "agnostic",
      ]
    ) {
      assert.ok(await Deno.stat(`${dir}/out/img/${name}.svg`), name);
    }
    assert.ok(!/NaN|undefined/.test(h), "no NaN or undefined in the HTML");
    await browserCheck(dir, h);
    const keep = Deno.env.get("FILIGREE_KEEP_REPORT"); // debugging: keep a copy to look at
    if (keep) await writeReport(`${dir}/store.sqlite`, keep, { noPng: true });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** With Chromium on PATH: the page at 1280 px has no horizontal overflow (else: skipped). */
async function browserCheck(dir: string, page: string): Promise<void> {
  const browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  }) ?? Deno.env.get("FILIGREE_CHROMIUM");
  if (!browser) {
    console.error("report_protocol_test: no chromium, browser layout check skipped");
    return;
  }
  const probe = `<script>(() => {
    const wide = [...document.querySelectorAll("body *")].filter((e) =>
      e.getBoundingClientRect().right > innerWidth + 0.5).map((e) => e.tagName).slice(0, 10);
    const pre = document.createElement("pre"); pre.id = "probe";
    pre.textContent = JSON.stringify({ scrollWidth: document.documentElement.scrollWidth, wide,
      svgs: [...document.querySelectorAll("figure svg")].map((s) => s.getBoundingClientRect().width) });
    document.body.appendChild(pre); })();</script>`;
  const file = `${dir}/probe.html`;
  await Deno.writeTextFile(file, page.replace("</body>", `${probe}</body>`));
  const { code, stdout } = await new Deno.Command(browser, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      `--user-data-dir=${dir}/profile`,
      "--window-size=1280,1000",
      "--dump-dom",
      `file://${file}`,
    ],
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(120_000),
  }).output();
  assert.equal(code, 0, "chromium failed");
  const m = /<pre id="probe">([^<]*)<\/pre>/.exec(new TextDecoder().decode(stdout));
  assert.ok(m, "the probe did not run");
  const r = JSON.parse(m[1].replace(/&quot;/g, '"').replace(/&amp;/g, "&")) as {
    scrollWidth: number;
    wide: string[];
    svgs: number[];
  };
  assert.ok(r.scrollWidth <= 1280, `horizontal overflow: ${r.scrollWidth} px; ${r.wide}`);
  assert.ok(r.svgs.length >= 5 && r.svgs.every((w) => w > 50 && w <= 1100), `${r.svgs}`);
}
