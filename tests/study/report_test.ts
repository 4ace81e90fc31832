/**
 * Tests of the study report and its generated statements on a synthetic store: activation ×
 * norm × method × seed cells where normalization lowers the magnitude-vs-ablation Spearman ρ
 * (planted effect) and does nothing to test accuracy (null effect).
 */
import { DatabaseSync } from "node:sqlite";
import { FiligreeError } from "../../src/gpu/errors.ts";
import { STORE_SCHEMA, STORE_SCHEMA_VERSION } from "../../src/study/schema.ts";
import { ANALYSIS_FORMAT, type AnalysisSummary } from "../../src/analysis/summary.ts";
import { type CellFacts, deriveRules } from "../../src/study/rules.ts";
import { readStore, writeReport } from "../../src/study/report.ts";
import { reportCommand, resolveStorePath } from "../../cli/report.ts";
import { DataRng } from "../../src/data/random.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

const ACTS = ["relu", "tanh", "sigmoid"];
const NORMS = ["batch", "none"];
const SEEDS = [0, 1, 2, 3];

function analysis(rng: DataRng, seed: number, rhoMag: number): AnalysisSummary {
  const edges = Array.from({ length: 21 }, (_, i) => -4 + (i * 3.5) / 20);
  const layer = (name: string, shift: number) => ({
    name,
    nIn: 20,
    nOut: 10,
    nnz: 150 + rng.int(10),
    ablated: 100,
    magnitudeHistogram: {
      log10Edges: edges.map((e) => e + shift),
      counts: edges.slice(1).map((_, i) => Math.round(100 * Math.exp(-((i - 12) ** 2) / 8))),
    },
    helpful: 0.1 + 0.05 * rng.next(),
    fanInSpearman: 0.1,
    fanOutSpearman: 0.05,
  });
  const est = (v: number) => ({ value: v, ci: [v - 0.05, v + 0.05] as [number, number] });
  const agree = (score: "magnitude" | "snip" | "random", v: number) => ({
    score,
    scope: "all",
    n: 300,
    spearman: est(v),
    kendall: est(v * 0.7),
    precisionLeast10: 0.3,
    precisionMost10: 0.4,
  });
  const fr = [0.1, 0.3, 0.5, 0.7, 0.9];
  const curve = (score: string, drop: number) => ({
    score,
    scope: "global",
    finetuneSteps: 0,
    points: fr.map((f) => ({
      fraction: f,
      accuracy: 0.95 - drop * f ** 2 + 0.01 * rng.next(),
      loss: 0.2 + f,
    })),
  });
  return {
    format: ANALYSIS_FORMAT,
    run: "runs/x",
    seed,
    evalSet: { split: "test", samples: 500, seed: 1 },
    baseline: { loss: 0.2, accuracy: 0.95 },
    scores: ["magnitude", "snip", "random"],
    layers: [layer("fc1", 0), layer("fc2", 0.3)],
    helpful: 0.12,
    agreement: [
      agree("magnitude", rhoMag),
      agree("snip", 0.5 + 0.08 * rng.normal()),
      agree("random", 0.02 * rng.normal()),
    ],
    curves: [curve("magnitude", 0.3), curve("random", 0.8), curve("magnitude-desc", 0.9)],
    seconds: { scores: 1, ablation: 2 },
    ablationsPerSecond: 1000,
  };
}

/** Builds a store; returns its path. Planted: norm=batch lowers magnitude rho by 0.35. */
function buildStore(dir: string): string {
  const path = `${dir}/store.sqlite`;
  const db = new DatabaseSync(path);
  db.exec(STORE_SCHEMA);
  db.prepare("insert into meta (key, value) values (?, ?)").run("schema", STORE_SCHEMA_VERSION);
  db.prepare("insert into meta (key, value) values (?, ?)").run(
    "command",
    "deno task study x.yaml",
  );
  const rng = new DataRng(20240611);
  const ins = db.prepare(
    `insert into cells values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const ep = db.prepare("insert into epochs values (?, ?, ?, ?, ?, ?, ?, ?)");
  let idx = 0;
  for (const method of ["set", "dense"]) {
    for (const activation of ACTS) {
      for (const norm of NORMS) {
        for (const seed of SEEDS) {
          const id = `c${idx}`;
          const base = { relu: 0.97, tanh: 0.96, sigmoid: 0.94 }[activation]!;
          const acc = base - (method === "set" ? 0.005 : 0) + 0.004 * rng.normal(); // no norm effect
          const rho = 0.75 - (norm === "batch" ? 0.35 : 0) + 0.04 * rng.normal();
          const dense = 784 * 100 + 100 * 10;
          const nnz = method === "dense" ? dense : Math.round(dense * 0.1);
          ins.run(
            id,
            "synthetic",
            idx,
            JSON.stringify({ activation, norm, method, seed }),
            "{}",
            `runs/${id}`,
            acc,
            0.1,
            acc + 0.01,
            0.08,
            3,
            10 + rng.next(),
            method === "dense" ? 2 + 0.1 * rng.next() : 1 + 0.1 * rng.next(),
            nnz,
            dense,
            method === "dense" ? dense * 4 : nnz * 8,
            method === "dense" && seed === 3 ? null : JSON.stringify(analysis(rng, seed, rho)),
            method === "dense" && seed === 3 ? null : 5,
            "llvmpipe (test)",
            "0.1.0",
            `2026-01-01T00:00:${String(idx % 60).padStart(2, "0")}Z`,
            null, // stopped: trained to its epochs
          );
          for (let e = 1; e <= 3; e++) {
            ep.run(id, e, 0.5 / e, 0.8 + e * 0.05, 0.5 / e, acc - 0.1 / e, "{}", "[]");
          }
          idx++;
        }
      }
    }
  }
  db.close();
  return path;
}

Deno.test("writeReport: files, self-contained HTML, planted effect supported, null not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = buildStore(dir);
    const out = `${dir}/out`;
    const t0 = performance.now();
    const { html, md } = await writeReport(store, out);
    const ms = performance.now() - t0;
    const h = await Deno.readTextFile(html);
    const m = await Deno.readTextFile(md);
    for (
      const name of [
        "accuracy",
        "agreement_magnitude",
        "agreement_scores",
        "curves",
        "magnitudes",
        "methods",
        "speed",
        "learning",
      ]
    ) {
      for (const ext of ["svg", "png"]) {
        const st = await Deno.stat(`${out}/img/${name}.${ext}`);
        assert(st.isFile && st.size > 100, `img/${name}.${ext}`);
      }
      assert(m.includes(`(img/${name}.png)`), `md links img/${name}.png`);
    }
    assert((h.match(/<svg/g) ?? []).length === 8, "8 inline SVGs");
    assert(
      !/<script|<link|<img|<iframe|@import|(src|href)\s*=\s*["']?https?:/i.test(h),
      "no external refs",
    );
    assert(!/NaN/.test(h), "no NaN in the report");
    assert(h.includes("deno task study x.yaml") && h.includes("llvmpipe (test)"), "header facts");
    assert(h.includes("48 (42 analyzed)"), "cell count");
    // Supported / not supported sections, in that order.
    const sup = m.slice(m.indexOf("## Appendix A"), m.indexOf("## Appendix B"));
    const uns = m.slice(m.indexOf("## Appendix B"));
    const planted =
      "under norm=batch, magnitude predicts ablation importance worse than under norm=none";
    assert(sup.includes(planted), `planted effect supported:\n${sup}`);
    assert(!sup.includes("under norm=batch, test accuracy"), "null effect not supported");
    assert(
      uns.includes("under norm=batch, test accuracy is"),
      `null effect listed as not supported`,
    );
    assert(
      sup.includes("with activation=relu, small weights are unimportant"),
      "small-weights family",
    );
    assert(!sup.includes("random predicts"), "the random score's null is not supported");
    // Deterministic: a second run gives the same markdown.
    await writeReport(store, `${dir}/out2`);
    assert((await Deno.readTextFile(`${dir}/out2/report.md`)) === m, "deterministic");
    console.log(`report of 48 cells written in ${ms.toFixed(0)} ms`);
    const keep = Deno.env.get("FILIGREE_KEEP_REPORT"); // debugging: keep a copy to look at
    if (keep) await writeReport(store, keep);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deriveRules: Holm across the family, min pairs, templates filled with numbers", () => {
  // Three factor-pair candidates with known exact permutation p-values; n = 4 pairs each.
  const mk = (norm: string, seed: number, m: Record<string, number>): CellFacts => ({
    factors: { norm, seed: String(seed) },
    metrics: m,
  });
  const cells: CellFacts[] = [];
  const dA = [0.1, 0.2, 0.3, 0.4]; // all positive: exact p = 2/16 = 0.125
  for (let s = 0; s < 4; s++) {
    cells.push(mk("a", s, { test_accuracy: 0.5 + dA[s] }), mk("b", s, { test_accuracy: 0.5 }));
  }
  let r = deriveRules(cells);
  assert(r.statements.length === 1, "one candidate");
  const s0 = r.statements[0];
  assert(Math.abs(s0.p - 0.125) < 1e-12 && s0.test === "permutation", `p ${s0.p}`);
  assert(Math.abs(s0.pHolm - 0.125) < 1e-12 && !s0.supported, "m=1: Holm p = p; not supported");
  assert(s0.text.includes("0.750 vs 0.500, diff +0.250") && s0.text.includes("n=4"), s0.text);
  // Twelve pairs, Wilcoxon: all positive -> p = 2/4096; a second metric with no effect.
  const big: CellFacts[] = [];
  for (let s = 0; s < 12; s++) {
    const z = s % 2 ? 0.01 * (s + 1) : -0.01 * (s + 1);
    big.push(
      mk("a", s, { test_accuracy: 0.9 + 0.01 + 0.001 * s, "rho:snip": 0.5 + z }),
      mk("b", s, { test_accuracy: 0.9, "rho:snip": 0.5 }),
    );
  }
  r = deriveRules(big);
  const acc = r.statements.find((s) => s.metric === "test_accuracy")!;
  const snip = r.statements.find((s) => s.metric === "rho:snip")!;
  assert(acc.test === "wilcoxon" && Math.abs(acc.p - 2 / 4096) < 1e-12, `acc p ${acc.p}`);
  // Holm with m = 2: the smaller p doubles; the larger keeps max(its own, the running max).
  assert(Math.abs(acc.pHolm - 4 / 4096) < 1e-12, `acc Holm ${acc.pHolm}`);
  assert(snip.pHolm === Math.max(snip.p, acc.pHolm), "step-down");
  assert(acc.supported && !snip.supported, "planted supported, null not");
  assert(r.supported.length === 1 && r.unsupported.length === 1, "partition");
  assert(
    acc.ci[0] >= 0.01 && acc.ci[1] <= 0.021 && acc.ci[0] < acc.diff && acc.diff < acc.ci[1],
    `CI ${acc.ci}`,
  );
  // Fewer than minPairs pairs never supported even with p small (alpha = 1 for the check).
  const two = [
    mk("a", 0, { test_accuracy: 1 }),
    mk("b", 0, { test_accuracy: 0 }),
    mk("a", 1, { test_accuracy: 1 }),
    mk("b", 1, { test_accuracy: 0 }),
  ];
  const r2 = deriveRules(two, { alpha: 1.01 });
  assert(r2.statements[0].n === 2 && !r2.statements[0].supported, "n < 3 never supported");
  assert(
    deriveRules(two, { alpha: 1.01, minPairs: 2 }).statements[0].supported,
    "minPairs honored",
  );
  // Unmatched cells (a different other-factor value) do not pair.
  const un = [mk("a", 0, { test_accuracy: 1 }), mk("b", 1, { test_accuracy: 0 })];
  assert(deriveRules(un).statements.length === 0, "no pairs, no statement");
});

Deno.test("readStore, writeReport and the CLI: one-line errors on missing or corrupt stores", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let e: unknown;
    try {
      readStore(`${dir}/nope.sqlite`);
    } catch (err) {
      e = err;
    }
    assert(e instanceof FiligreeError && e.message.includes("no results store"), `missing: ${e}`);
    await Deno.writeTextFile(
      `${dir}/bad.sqlite`,
      "this is not a database at all, just text".repeat(50),
    );
    e = undefined;
    try {
      await writeReport(`${dir}/bad.sqlite`, dir);
    } catch (err) {
      e = err;
    }
    assert(e instanceof FiligreeError && !e.message.includes("\n"), `corrupt: ${e}`);
    const empty = new DatabaseSync(`${dir}/empty.sqlite`);
    empty.exec(STORE_SCHEMA);
    empty.close();
    e = undefined;
    try {
      await writeReport(`${dir}/empty.sqlite`, dir);
    } catch (err) {
      e = err;
    }
    assert(e instanceof FiligreeError && e.message.includes("no finished cells"), `empty: ${e}`);
    // Study file -> default store path.
    await Deno.writeTextFile(`${dir}/my-study.yaml`, "grid:\n  seed: [0, 1]\n");
    assert(
      await resolveStorePath(`${dir}/my-study.yaml`) === "runs/studies/my-study/store.sqlite",
      "basename",
    );
    await Deno.writeTextFile(`${dir}/s2.yml`, "name: fancy\n");
    assert(await resolveStorePath(`${dir}/s2.yml`) === "runs/studies/fancy/store.sqlite", "name:");
    assert(await resolveStorePath("a/b.sqlite") === "a/b.sqlite", "store path as is");
    assert(reportCommand().name() === "report", "command name");
    // The CLI exits non-zero with one line on stderr.
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../cli/report.ts", import.meta.url).pathname,
        `${dir}/nope.sqlite`,
      ],
      stdout: "piped",
      stderr: "piped",
    });
    const res = await cmd.output();
    const err = new TextDecoder().decode(res.stderr).trim();
    assert(
      res.code === 1 && err.split("\n").length === 1 && err.includes("no results store"),
      `cli: ${res.code} ${err}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
