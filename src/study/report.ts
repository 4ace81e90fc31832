/**
 * The study report: reads a results store (tables `meta`, `cells`, `epochs`, `analyses` and,
 * when present, `failures`) and writes `report.html` (self-contained: SVG charts inline, no
 * scripts, fonts or links to fetch) and `report.md` (PNG charts in `img/`, next to their SVGs).
 *
 * Sections, in order (each a chart and/or a table of the mean and spread over seeds):
 * 1. header facts (study, store, cells, factors, adapter, version, commands, commit);
 * 2. the **pre-registered hypotheses** of the study's spec (src/study/hypotheses.ts: verdict
 *    confirmed / refuted / inconclusive, effect, 95 % interval over seeds, paired test, p, Holm p,
 *    n, why), always first;
 * 3. **per-layer correlations with their noise ceilings**, per split, at the final epoch: ρ of
 *    every designated score-target pair per layer (and the fisher-z mean), the target's
 *    split-half ceiling and attainable ρ, ρ / attainable; then ρ(|w|, |ΔL|) per layer and
 *    condition (`agreement2` rows, protocol v2);
 * 4. **statistics along training** (cells analyzed at several epochs, `analysis.epochs`): per
 *    layer, ρ of each score with its target, the attainable ρ, the helpful-removal fraction and
 *    the drop precision against epoch (the final analysis at the mean of the cells' last epochs);
 * 5. **accuracy per cell and convergence**: epochs run / maximum, the stop rule's criterion,
 *    train loss and accuracy, test accuracy;
 * 6. accuracy by activation × normalization, importance agreement (legacy pooled `agreement`),
 *    ablation curves, weight-magnitude distributions, method comparison, sparse-vs-dense speed
 *    and memory, grown vs surviving weights, **weight-agnostic retention** (analysis option
 *    `agnostic`), learning curves;
 * 7. appendices: the exploratory statements of {@link deriveRules} (supported only when they
 *    clear the SESOI as well as Holm), and failed cells.
 *
 * Factors are whatever the cells' `factors` JSON holds; a section whose factor has a single
 * level, or whose data are absent, is replaced by a one-line note.
 *
 * @example
 * ```ts ignore
 * import { writeReport } from "./report.ts";
 * const { html, md } = await writeReport("runs/studies/demo/store.sqlite", "runs/studies/demo");
 * console.log(html, md); // paths of report.html and report.md
 * ```
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { FiligreeError } from "../gpu/errors.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import type { AnalysisSummary, Curve } from "../analysis/summary.ts";
import { mean, median, sd } from "../analysis/stats.ts";
import {
  barChartWithCI,
  type BarRow,
  type ChartSpec,
  type HeatCell,
  heatmapChart,
  lineChart,
  type LinePoint,
  writeChart,
} from "../report/plot.ts";
import { readablePath } from "./packed.ts";
import { type CellRow, READABLE_STORE_VERSIONS } from "./schema.ts";
import { failedCells, type FailureRow } from "./failures.ts";
import {
  cellFacts,
  deriveRules,
  type Rules,
  SESOI_ACCURACY,
  SESOI_RHO,
  sortLevels,
  type Statement,
} from "./rules.ts";
import {
  cellsFromStore,
  describeResult,
  type HypothesisCell,
  type HypothesisResult,
  testHypotheses,
} from "./hypotheses.ts";
import { type HypothesisSpec, parseStudySpec } from "./spec.ts";
import { cellsPerChunk, storeHistory, StudyStore } from "./store.ts";
import { reuseLog } from "./reuse.ts";

/** Options of {@link writeReport}. */
export interface ReportOptions {
  /** Seed of the bootstrap intervals of the statements (default 0). */
  seed?: number;
  /** Family-wise error level of the statements (default 0.05). */
  alpha?: number;
  /** Skip PNG rendering (report.md then links the SVGs). */
  noPng?: boolean;
  /** Hypotheses to test (default: those of the spec stored in the store's meta table). */
  hypotheses?: HypothesisSpec[];
  /** Where {@link ReportOptions.hypotheses} came from (a spec file), named in the report. */
  hypothesesSource?: string;
}

/** What the report reads from a store. */
export interface StoreData {
  meta: Record<string, string>;
  cells: CellRow[];
  epochs: EpochRow[];
  /** Cells that failed (src/study/failures.ts); empty for stores without the table. */
  failures: FailureRow[];
}

/** A row of `epochs` (JSON columns still strings). */
export interface EpochRow {
  cell_id: string;
  epoch: number;
  train_loss: number | null;
  train_accuracy: number | null;
  test_loss: number | null;
  test_accuracy: number | null;
}

/**
 * Reads a store read-only. A missing file, a file that is not SQLite, or a store without the
 * `cells` table gives a one-line {@link FiligreeError}.
 *
 * @example
 * ```ts ignore
 * import { readStore } from "./report.ts";
 * const data = readStore("runs/studies/demo/store.sqlite");
 * console.log(data.cells.length);
 * ```
 */
export function readStore(path: string): StoreData {
  try {
    if (!Deno.statSync(path).isFile) throw new Error("not a file");
  } catch {
    throw new FiligreeError(`no results store at ${path}`);
  }
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(readablePath(path), { readOnly: true });
    const meta: Record<string, string> = {};
    for (const r of db.prepare("select key, value from meta").all()) {
      meta[String(r.key)] = String(r.value);
    }
    if (
      meta.schema !== undefined &&
      !(READABLE_STORE_VERSIONS as readonly string[]).includes(meta.schema)
    ) {
      throw new Error(
        `schema ${meta.schema}, expected one of ${READABLE_STORE_VERSIONS.join(", ")}`,
      );
    }
    const cells = db.prepare("select * from cells order by cell_index, cell_id")
      .all() as unknown as CellRow[];
    const epochs = db.prepare(
      "select cell_id, epoch, train_loss, train_accuracy, test_loss, test_accuracy from epochs order by cell_id, epoch",
    ).all() as unknown as EpochRow[];
    return { meta, cells, epochs, failures: failedCells(db) };
  } catch (e) {
    const msg = (e as Error).message?.split("\n")[0] ?? String(e);
    throw new FiligreeError(`${path} is not a readable Filigree results store: ${msg}`);
  } finally {
    try {
      db?.close();
    } catch {
      // never opened
    }
  }
}

/** A table: header and rows of already formatted cells. */
interface Table {
  header: string[];
  rows: string[][];
}

interface Section {
  title: string;
  /** One-line note (e.g. why the section is skipped). */
  note?: string;
  chart?: { name: string; spec: ChartSpec };
  table?: Table;
  /** Bullet items (statements). */
  items?: string[];
  /** Filled in when rendering. */
  svg?: string;
}

/** The cells that failed (diverged, crashed), with their messages; none when all succeeded. */
function failedSections(failures: FailureRow[]): Section[] {
  if (!failures.length) return [];
  return [{
    title: `Failed cells (${failures.length})`,
    note: "Not in any statistic above; `sweep --retry-failed` runs them again.",
    items: failures.map((f) =>
      `cell ${f.cell_index} (${
        Object.entries(JSON.parse(f.factors) as Record<string, unknown>).map(([k, v]) =>
          `${k}=${v}`
        )
          .join(", ")
      }): ${f.message}${f.attempts > 1 ? ` (failed ${f.attempts} times)` : ""}${
        f.status === "retry" ? "; marked for retry" : ""
      }`
    ),
  }];
}

interface Cell {
  row: CellRow;
  factors: Record<string, string>;
  analysis: AnalysisSummary | null;
}

const SEED = "seed";

function fixed(v: number, digits: number): string {
  const s = v.toFixed(digits);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
}

function pm(xs: number[], digits: number): string {
  const v = xs.filter(Number.isFinite);
  if (v.length === 0) return "n/a";
  const m = fixed(mean(v), digits);
  return v.length > 1 ? `${m} ± ${fixed(sd(v), digits)}` : m;
}

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    if (!m.has(k)) m.set(k, []);
    m.get(k)!.push(x);
  }
  return m;
}

function parseAnalysis(s: string | null): AnalysisSummary | null {
  if (!s) return null;
  try {
    return JSON.parse(s) as AnalysisSummary;
  } catch {
    return null;
  }
}

/** The study's factors: levels per factor, and how cells are labelled by row/column. */
class Layout {
  readonly levels: Map<string, string[]>;
  /** Non-seed factors with more than one level. */
  readonly varying: string[];
  readonly rowF: string | undefined;
  readonly colF: string | undefined;
  /** Varying factors other than rowF/colF, appended to row labels. */
  readonly extra: string[];
  constructor(cells: Cell[]) {
    const names = sortLevels(cells.flatMap((c) => Object.keys(c.factors)));
    this.levels = new Map(names.map((f) => [f, sortLevels(cells.map((c) => c.factors[f] ?? "-"))]));
    this.varying = names.filter((f) => f !== SEED && this.levels.get(f)!.length > 1);
    this.rowF = this.varying.includes("activation") ? "activation" : undefined;
    this.colF = this.varying.includes("norm") ? "norm" : undefined;
    this.extra = this.varying.filter((f) => f !== this.rowF && f !== this.colF);
  }
  nLevels(f: string): number {
    return this.levels.get(f)?.length ?? 0;
  }
  rowLabel(c: Cell, without: string[] = []): string {
    const parts: string[] = [];
    if (this.rowF && !without.includes(this.rowF)) parts.push(c.factors[this.rowF] ?? "-");
    for (const f of this.extra) {
      if (!without.includes(f)) parts.push(`${f}=${c.factors[f] ?? "-"}`);
    }
    return parts.join(", ") || "all";
  }
  colLabel(c: Cell): string {
    return this.colF ? c.factors[this.colF] ?? "-" : "all";
  }
  groupLabel(c: Cell, without: string[] = []): string {
    const parts = this.varying.filter((f) => !without.includes(f)).map((f) =>
      `${f}=${c.factors[f] ?? "-"}`
    );
    return parts.join(", ") || "all";
  }
  /** Sort key that follows the factor level order. */
  order(c: Cell): string {
    return this.varying.map((f) =>
      String(this.levels.get(f)!.indexOf(c.factors[f] ?? "-")).padStart(4, "0")
    )
      .join("|");
  }
}

function orderedGroups(cells: Cell[], L: Layout, key: (c: Cell) => string): [string, Cell[]][] {
  const sorted = [...cells].sort((
    a,
    b,
  ) => (L.order(a) < L.order(b) ? -1 : L.order(a) > L.order(b) ? 1 : 0));
  return [...groupBy(sorted, key)];
}

function accuracySection(cells: Cell[], L: Layout): Section {
  const title = "Test accuracy by activation × normalization";
  if (!L.rowF && !L.colF) {
    return { title, note: "skipped: neither activation nor norm has more than one level." };
  }
  const heat: HeatCell[] = [];
  const rows: string[][] = [];
  for (const [, g] of orderedGroups(cells, L, (c) => `${L.rowLabel(c)}\u0000${L.colLabel(c)}`)) {
    const acc = g.map((c) => c.row.test_accuracy);
    heat.push({
      row: L.rowLabel(g[0]),
      col: L.colLabel(g[0]),
      value: mean(acc),
      label: pm(acc, 3),
    });
    rows.push([
      L.rowLabel(g[0]),
      L.colLabel(g[0]),
      String(g.length),
      pm(acc, 4),
      pm(g.map((c) => c.row.train_accuracy), 4),
      pm(g.map((c) => c.row.test_loss), 4),
    ]);
  }
  return {
    title,
    chart: {
      name: "accuracy",
      spec: heatmapChart(heat, {
        xTitle: L.colF ?? "",
        yTitle: [L.rowF, ...L.extra].filter(Boolean).join(", "),
        valueTitle: "test accuracy",
        title: "test accuracy, mean ± sd over seeds",
      }),
    },
    table: {
      header: [L.rowF ?? "group", L.colF ?? "-", "n", "test acc", "train acc", "test loss"],
      rows,
    },
  };
}

function agreementOf(c: Cell): Map<string, number> {
  const m = new Map<string, number>();
  for (const g of c.analysis?.agreement ?? []) {
    if (g.scope === "all" && Number.isFinite(g.spearman?.value)) m.set(g.score, g.spearman.value);
  }
  return m;
}

function agreementSections(cells: Cell[], L: Layout): Section[] {
  const title = "Importance agreement with single-weight ablation (Spearman ρ, scope all)";
  const analyzed = cells.filter((c) => agreementOf(c).size > 0);
  if (analyzed.length === 0) return [{ title, note: "skipped: no analyzed cells in the store." }];
  const scores = sortLevels(analyzed.flatMap((c) => [...agreementOf(c).keys()]));
  scores.sort((a, b) => (a === "magnitude" ? -1 : b === "magnitude" ? 1 : a < b ? -1 : 1));
  const groups = orderedGroups(analyzed, L, (c) => `${L.rowLabel(c)}\u0000${L.colLabel(c)}`);
  const out: Section[] = [];
  if (scores.includes("magnitude") && (L.rowF || L.colF)) {
    const heat = groups.map(([, g]) => {
      const v = g.map((c) => agreementOf(c).get("magnitude") ?? NaN).filter(Number.isFinite);
      return { row: L.rowLabel(g[0]), col: L.colLabel(g[0]), value: mean(v), label: pm(v, 2) };
    });
    out.push({
      title: "Magnitude vs ablation Δloss (Spearman ρ) by activation × normalization",
      chart: {
        name: "agreement_magnitude",
        spec: heatmapChart(heat, {
          xTitle: L.colF ?? "",
          yTitle: [L.rowF, ...L.extra].filter(Boolean).join(", "),
          valueTitle: "Spearman ρ",
          title: "magnitude ρ, mean ± sd over seeds",
        }),
      },
    });
  }
  const bars: BarRow[] = [];
  const rows: string[][] = [];
  for (const [, g] of groups) {
    const label = L.groupLabel(g[0]);
    const row = [label, String(g.length)];
    for (const s of scores) {
      const v = g.map((c) => agreementOf(c).get(s) ?? NaN).filter(Number.isFinite);
      row.push(pm(v, 3));
      if (v.length) {
        const m = mean(v), e = v.length > 1 ? sd(v) : 0;
        bars.push({ x: label, y: m, lo: m - e, hi: m + e, group: s });
      }
    }
    rows.push(row);
  }
  out.push({
    title,
    chart: {
      name: "agreement_scores",
      spec: barChartWithCI(bars, {
        yTitle: "Spearman ρ with ablation Δloss",
        title: "every score, mean ± sd over seeds",
      }),
    },
    table: { header: ["group", "n", ...scores], rows },
  });
  return out;
}

const CURVE_SCORES = ["magnitude", "random", "magnitude-desc"];

function curvesSection(cells: Cell[], L: Layout): Section {
  const title = "Ablation curves (global removal of the lowest-scored weights)";
  const pick = (c: Cell): Curve[] => {
    const cs = (c.analysis?.curves ?? []).filter((k) =>
      k.scope === "global" && CURVE_SCORES.includes(k.score)
    );
    const ft = Math.min(...cs.map((k) => k.finetuneSteps));
    return cs.filter((k) => k.finetuneSteps === ft);
  };
  const withCurves = cells.filter((c) => pick(c).length > 0);
  if (withCurves.length === 0) {
    return { title, note: "skipped: no global ablation curves in the store." };
  }
  const facetOf = (c: Cell) => L.rowLabel(c);
  const seriesOf = (
    c: Cell,
    score: string,
  ) => (L.colF ? `${score}, ${L.colF}=${c.factors[L.colF]}` : score);
  const acc = new Map<
    string,
    { facet: string; series: string; score: string; dash?: string; x: number; ys: number[] }
  >();
  for (const c of [...withCurves].sort((a, b) => (L.order(a) < L.order(b) ? -1 : 1))) {
    for (const k of pick(c)) {
      for (const p of k.points) {
        const key = `${facetOf(c)}\u0000${seriesOf(c, k.score)}\u0000${p.fraction}`;
        if (!acc.has(key)) {
          acc.set(key, {
            facet: facetOf(c),
            series: seriesOf(c, k.score),
            // Colour = score (the same in every chart), dash = the column factor's level.
            score: k.score,
            dash: L.colF ? `${L.colF}=${c.factors[L.colF]}` : undefined,
            x: p.fraction,
            ys: [],
          });
        }
        acc.get(key)!.ys.push(p.accuracy);
      }
    }
  }
  const pts: LinePoint[] = [];
  const table = new Map<string, Map<number, string>>();
  const fractions = sortLevels([...acc.values()].map((v) => String(v.x))).map(Number);
  for (const v of acc.values()) {
    const m = mean(v.ys), e = v.ys.length > 1 ? sd(v.ys) : 0;
    pts.push({
      x: v.x,
      y: m,
      lo: m - e,
      hi: m + e,
      series: v.score,
      dash: v.dash,
      facet: L.rowF || L.extra.length ? v.facet : undefined,
    });
    const k = `${v.facet}\u0000${v.series}`;
    if (!table.has(k)) table.set(k, new Map());
    table.get(k)!.set(v.x, pm(v.ys, 3));
  }
  return {
    title,
    chart: {
      name: "curves",
      spec: lineChart(pts, {
        xTitle: "fraction of weights removed",
        yTitle: "test accuracy",
        title: "accuracy after removal, mean ± sd over seeds (no fine-tuning)",
      }),
    },
    table: {
      header: ["group", "curve", ...fractions.map((f) => `${f}`)],
      rows: [...table].map(([k, m]) => {
        const [facet, series] = k.split("\u0000");
        return [facet, series, ...fractions.map((f) => m.get(f) ?? "")];
      }),
    },
  };
}

const HIST_BINS = 40;

/** Redistributes a histogram onto common bins (uniform density within each source bin). */
function rebin(edges: number[], counts: number[], lo: number, hi: number): Float64Array {
  const out = new Float64Array(HIST_BINS);
  const w = (hi - lo) / HIST_BINS;
  for (let i = 0; i < counts.length; i++) {
    const a = edges[i], b = edges[i + 1];
    if (!(b > a) || counts[i] === 0) continue;
    for (let j = Math.max(0, Math.floor((a - lo) / w)); j < HIST_BINS; j++) {
      const l = lo + j * w, r = l + w;
      if (l >= b) break;
      const overlap = Math.min(b, r) - Math.max(a, l);
      if (overlap > 0) out[j] += (counts[i] * overlap) / (b - a);
    }
  }
  return out;
}

function histMedian(edges: number[], counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return NaN;
  let run = 0;
  for (let i = 0; i < counts.length; i++) {
    if (run + counts[i] >= total / 2 && counts[i] > 0) {
      return edges[i] + ((total / 2 - run) / counts[i]) * (edges[i + 1] - edges[i]);
    }
    run += counts[i];
  }
  return edges[edges.length - 1];
}

function magnitudeSection(cells: Cell[], L: Layout): Section {
  const title = "Weight-magnitude distributions (log10 |w| of the nonzero weights)";
  const ok = cells.filter((c) =>
    (c.analysis?.layers ?? []).some((l) => l.magnitudeHistogram?.counts?.length)
  );
  if (ok.length === 0) return { title, note: "skipped: no magnitude histograms in the store." };
  let lo = Infinity, hi = -Infinity;
  for (const c of ok) {
    for (const l of c.analysis!.layers) {
      const e = l.magnitudeHistogram.log10Edges;
      if (e.length) {
        lo = Math.min(lo, e[0]);
        hi = Math.max(hi, e[e.length - 1]);
      }
    }
  }
  if (!(hi > lo)) return { title, note: "skipped: degenerate magnitude histograms." };
  const w = (hi - lo) / HIST_BINS;
  const pts: LinePoint[] = [];
  const rows: string[][] = [];
  for (const [label, g] of orderedGroups(ok, L, (c) => L.groupLabel(c))) {
    const layers = [...new Set(g.flatMap((c) => c.analysis!.layers.map((l) => l.name)))];
    for (const name of layers) {
      const per = g.map((c) => c.analysis!.layers.find((l) => l.name === name)).filter((l) =>
        l !== undefined
      );
      const fr = per.map((l) => {
        const h = rebin(l.magnitudeHistogram.log10Edges, l.magnitudeHistogram.counts, lo, hi);
        const t = h.reduce((a, b) => a + b, 0) || 1;
        return h.map((v) => v / t);
      });
      for (let j = 0; j < HIST_BINS; j++) {
        pts.push({
          x: lo + (j + 0.5) * w,
          y: mean(fr.map((f) => f[j])),
          series: name,
          facet: label,
        });
      }
      rows.push([
        label,
        name,
        String(per.length),
        pm(per.map((l) => l.nnz), 0),
        pm(
          per.map((l) => histMedian(l.magnitudeHistogram.log10Edges, l.magnitudeHistogram.counts)),
          2,
        ),
        pm(per.map((l) => l.helpful), 3),
      ]);
    }
  }
  return {
    title,
    chart: {
      name: "magnitudes",
      spec: lineChart(pts, {
        xTitle: "log10 |w|",
        yTitle: "fraction of weights",
        points: false,
        title: "magnitude histograms per layer, mean over seeds",
      }),
    },
    table: { header: ["group", "layer", "n", "nnz", "median log10|w|", "helpful removals"], rows },
  };
}

function methodSection(cells: Cell[], L: Layout): Section {
  const title = "Method comparison (test accuracy)";
  if (L.nLevels("method") < 2) {
    return { title, note: "skipped: the method factor has fewer than two levels." };
  }
  const bars: BarRow[] = [];
  const rows: string[][] = [];
  const others = L.varying.filter((f) => f !== "method");
  for (
    const [, g] of orderedGroups(
      cells,
      L,
      (c) => `${c.factors.method}\u0000${L.groupLabel(c, ["method"])}`,
    )
  ) {
    const acc = g.map((c) => c.row.test_accuracy);
    const m = mean(acc), e = acc.length > 1 ? sd(acc) : 0;
    const rest = L.groupLabel(g[0], ["method"]);
    bars.push({
      x: g[0].factors.method,
      y: m,
      lo: m - e,
      hi: m + e,
      ...(others.length ? { group: rest } : {}),
    });
    rows.push([
      g[0].factors.method,
      rest,
      String(g.length),
      pm(acc, 4),
      pm(g.map((c) => c.row.nnz / c.row.dense_weights), 4),
    ]);
  }
  return {
    title,
    chart: {
      name: "methods",
      spec: barChartWithCI(bars, {
        xTitle: "method",
        yTitle: "test accuracy",
        title: "mean ± sd over seeds",
      }),
    },
    table: { header: ["method", "other factors", "n", "test acc", "density"], rows },
  };
}

function speedSection(cells: Cell[], L: Layout): Section {
  const title = "Sparse vs dense: speed and memory";
  if (L.nLevels("method") < 2) {
    return { title, note: "skipped: the method factor has fewer than two levels." };
  }
  const groups = orderedGroups(cells, L, (c) => c.factors.method);
  const denseStep = groups.find(([m]) => m === "dense")?.[1].map((c) => c.row.step_ms).filter((
    v,
  ): v is number => v !== null);
  const denseMs = denseStep && denseStep.length ? median(denseStep) : NaN;
  const bars: BarRow[] = [];
  const rows: string[][] = [];
  for (const [m, g] of groups) {
    const step = g.map((c) => c.row.step_ms).filter((v): v is number =>
      v !== null && Number.isFinite(v)
    );
    if (step.length) {
      const mu = mean(step), e = step.length > 1 ? sd(step) : 0;
      bars.push({ x: m, y: mu, lo: mu - e, hi: mu + e });
    }
    const bytes = g.map((c) => c.row.param_bytes),
      denseBytes = g.map((c) => c.row.dense_weights * 4);
    rows.push([
      m,
      String(g.length),
      pm(step, 2),
      Number.isFinite(denseMs) && step.length ? `${(denseMs / median(step)).toFixed(2)}×` : "n/a",
      pm(g.map((c) => c.row.train_seconds), 1),
      pm(bytes.map((b) => b / 1e6), 3),
      pm(denseBytes.map((b) => b / 1e6), 3),
      pm(bytes.map((b, i) => b / denseBytes[i]), 3),
    ]);
  }
  return {
    title,
    chart: bars.length
      ? {
        name: "speed",
        spec: barChartWithCI(bars, {
          xTitle: "method",
          yTitle: "ms per training step",
          title: "median step time per cell, mean ± sd over cells",
        }),
      }
      : undefined,
    table: {
      header: [
        "method",
        "n",
        "step ms",
        "speed vs dense",
        "train s",
        "param MB",
        "dense MB (weights × 4)",
        "memory ratio",
      ],
      rows,
    },
  };
}

function grownSection(cells: Cell[], L: Layout): Section {
  const title = "Grown vs surviving weights, removals that help, fan-in/fan-out";
  const ok = cells.filter((c) => c.analysis);
  if (!ok.length) return { title, note: "skipped: no analyzed cells." };
  const rows: string[][] = [];
  for (const [label, g] of orderedGroups(ok, L, (c) => L.groupLabel(c))) {
    const helpful = g.map((c) => c.analysis!.helpful);
    const fan = (k: "fanInSpearman" | "fanOutSpearman") =>
      g.map((c) => {
        const v = c.analysis!.layers.map((l) => l[k]).filter(Number.isFinite);
        return v.length ? mean(v) : NaN;
      }).filter(Number.isFinite);
    const fin = fan("fanInSpearman"), fout = fan("fanOutSpearman");
    const grownMed: number[] = [], survMed: number[] = [], grownN: number[] = [];
    for (const c of g) {
      const ls = c.analysis!.layers.filter((l) => l.grown && l.surviving);
      if (!ls.length) continue;
      // Pool the layers of a cell by their group sizes.
      const w = (f: "grown" | "surviving") => {
        const n = ls.reduce((a, l) => a + l[f]!.n, 0);
        return n ? ls.reduce((a, l) => a + l[f]!.medianDeltaLoss * l[f]!.n, 0) / n : NaN;
      };
      grownMed.push(w("grown"));
      survMed.push(w("surviving"));
      grownN.push(
        ls.reduce((a, l) => a + l.grown!.n, 0) /
          ls.reduce((a, l) => a + l.grown!.n + l.surviving!.n, 0),
      );
    }
    rows.push([
      label,
      String(g.length),
      pm(helpful, 3),
      grownN.length ? pm(grownN, 3) : "–",
      grownMed.length ? pm(grownMed, 6) : "–",
      survMed.length ? pm(survMed, 6) : "–",
      fin.length ? pm(fin, 3) : "–",
      fout.length ? pm(fout, 3) : "–",
    ]);
  }
  return {
    title,
    note: "Per cell over its ablated weights: the fraction whose removal lowers the evaluation " +
      "loss; for SET/RigL cells, the share of ablated weights grown by a topology update " +
      "(born_step > 0) and the median single-weight Δloss of grown and of surviving weights " +
      "(layer medians weighted by count); Spearman ρ of Δloss with the fan-in of the unit a " +
      "weight feeds and the fan-out of the unit it reads (mean over layers); mean ± sd over cells.",
    table: {
      header: [
        "group",
        "n",
        "removal helps",
        "grown share",
        "median Δloss grown",
        "median Δloss surviving",
        "ρ fan-in",
        "ρ fan-out",
      ],
      rows,
    },
  };
}

function learningSection(cells: Cell[], epochs: EpochRow[], L: Layout): Section {
  const title = "Learning curves (test accuracy per epoch)";
  const byCell = groupBy(epochs.filter((e) => e.test_accuracy !== null), (e) => e.cell_id);
  if (byCell.size === 0) return { title, note: "skipped: no per-epoch rows in the store." };
  const acc = new Map<string, { series: string; x: number; ys: number[] }>();
  for (const c of [...cells].sort((a, b) => (L.order(a) < L.order(b) ? -1 : 1))) {
    for (const e of byCell.get(c.row.cell_id) ?? []) {
      const series = L.groupLabel(c);
      const key = `${series}\u0000${e.epoch}`;
      if (!acc.has(key)) acc.set(key, { series, x: e.epoch, ys: [] });
      acc.get(key)!.ys.push(e.test_accuracy!);
    }
  }
  const pts = [...acc.values()].map((v) => ({ x: v.x, y: mean(v.ys), series: v.series }));
  return {
    title,
    chart: {
      name: "learning",
      spec: lineChart(pts, {
        xTitle: "epoch",
        yTitle: "test accuracy",
        title: "mean over seeds",
        integerX: true,
      }),
    },
  };
}

function rulesSections(rules: Rules): Section[] {
  const line = (s: Statement) => s.text;
  return [
    {
      title: "Appendix A: exploratory statements that clear the SESOI",
      note:
        `Not pre-registered: every pair of levels of every factor on every metric (${rules.statements.length} candidates). ` +
        `Listed as supported only when Holm-adjusted p < 0.05 over the whole family, n ≥ 3 pairs, AND the 95 % interval of the mean difference lies entirely beyond the smallest effect of interest ` +
        `(Δρ ${SESOI_RHO}, Δaccuracy ${SESOI_ACCURACY}); ` +
        "paired differences between cells identical in every other factor (seed included); Wilcoxon signed-rank for n ≥ 6, exact sign-flip test below; intervals: 95 % bootstrap of the mean difference. Read them as leads for the next pre-registered hypotheses, not as findings.",
      items: rules.supported.length ? rules.supported.map(line) : ["(none)"],
    },
    {
      title: "Appendix B: exploratory statements not supported",
      note: "Holm p ≥ 0.05, fewer than 3 pairs, or an interval that does not clear the SESOI.",
      items: rules.unsupported.length ? rules.unsupported.map(line) : ["(none)"],
    },
  ];
}

function pStr(x: number): string {
  if (!Number.isFinite(x)) return "n/a";
  return x < 0.001 ? x.toExponential(1) : String(+x.toPrecision(2));
}

function hypothesisSection(results: HypothesisResult[] | string, source?: string): Section {
  const title = "Pre-registered hypotheses";
  if (typeof results === "string") return { title, note: results };
  const from = source
    ? `Hypotheses read from ${source} (report --hypotheses), not from the spec stored with the cells. `
    : "";
  const f = (v: number) => Number.isFinite(v) ? (v >= 0 ? "+" : "") + v.toFixed(3) : "n/a";
  return {
    title,
    note: from +
      "Each hypothesis was written in the study spec before the data (docs/HYPOTHESES.md). " +
      "Effect: mean paired difference A − B over cells matched in every other factor and the seed; " +
      "95 % bootstrap interval over the pairs (cells resampled); Wilcoxon signed-rank for n ≥ 6, " +
      "else the exact sign-flip test; Holm over the hypotheses. Confirmed: the interval lies beyond " +
      "the SESOI in the predicted direction and Holm p < 0.05. Refuted: the interval excludes every " +
      "predicted effect of at least the SESOI, or the effect is significant in the opposite " +
      "direction. Inconclusive: anything else (or fewer than 3 pairs).",
    table: {
      header: [
        "id",
        "verdict",
        "statement",
        "metric",
        "comparison (A − B)",
        "predicted",
        "effect",
        "95 % interval",
        "test",
        "p",
        "Holm p",
        "n",
        "why",
      ],
      rows: results.map((r) => [
        r.id,
        r.verdict,
        `${r.statement} (${r.source})`,
        r.metricText,
        r.comparisonText,
        `${r.direction === "greater" ? ">" : "<"} ${
          r.direction === "greater" ? "+" : "−"
        }${r.sesoi}`,
        f(r.effect),
        `[${f(r.ci[0])}, ${f(r.ci[1])}]`,
        r.test === "wilcoxon" ? "Wilcoxon" : r.test,
        pStr(r.p),
        pStr(r.pHolm),
        String(r.n),
        r.reason,
      ]),
    },
    items: results.map(describeResult),
  };
}

const TARGET_LABEL: Record<string, string> = { dloss: "ΔL", absdloss: "|ΔL|", dacc: "Δacc" };

/** A cell's analysis rows of one kind, keyed by epoch ("final" = its last checkpoint). */
interface EpochAnalysis {
  cell: number;
  /** "final" or the kept epoch's number. */
  key: string;
  /** The epoch the checkpoint was taken after. */
  epoch: number;
  analysis: AnalysisSummary;
}

function epochAnalyses(hcells: HypothesisCell[], rows: CellRow[]): EpochAnalysis[] {
  const out: EpochAnalysis[] = [];
  hcells.forEach((c, i) => {
    for (const [k, a] of Object.entries(c.analyses)) {
      if (!a) continue;
      // The final analysis is also stored under its epoch number: keep it once, as "final".
      if (k !== "final" && Number(k) >= rows[i].epochs && c.analyses.final) continue;
      out.push({ cell: i, key: k, epoch: k === "final" ? rows[i].epochs : Number(k), analysis: a });
    }
  });
  return out;
}

/** Layers in network order (the rows' order), the fisher-z mean row last. */
function layerOrder(rows: { layer: string }[]): string[] {
  const ls = [...new Set(rows.map((r) => r.layer))];
  return [...ls.filter((l) => l !== "fisher-z mean"), ...ls.filter((l) => l === "fisher-z mean")];
}

/**
 * Per-layer correlations with their noise ceilings, per split, at each cell's final epoch:
 * every designated (primary) score-target pair, mean ± sd over cells of ρ, and the mean
 * split-half ceiling and attainable ρ (√ceiling) of the target; then ρ(|w|, |ΔL|) per layer
 * and condition.
 */
function layerSections(hcells: HypothesisCell[], cells: Cell[], L: Layout): Section[] {
  const title = "Per-layer correlations with their noise ceilings";
  const finals = hcells.map((c) => c.analyses.final?.agreement2 ?? []);
  const all = finals.flat();
  if (!all.length) {
    return [{
      title,
      note: "skipped: the analyses have no per-layer agreement rows (agreement2; protocol v2).",
    }];
  }
  const out: Section[] = [];
  for (const split of ["train", "test"]) {
    const rows = all.filter((r) => r.split === split && r.primary && r.target !== "dacc");
    if (!rows.length) continue;
    const layers = layerOrder(rows);
    const pairs = [...new Set(rows.map((r) => `${r.score}\u0000${r.target}`))];
    const table: string[][] = [];
    const bars: BarRow[] = [];
    for (const layer of layers) {
      for (const pr of pairs) {
        const [score, target] = pr.split("\u0000");
        const rs = rows.filter((r) =>
          r.layer === layer && r.score === score && r.target === target
        );
        if (!rs.length) continue;
        const rho = rs.map((r) => r.spearman).filter(Number.isFinite);
        const att = rs.map((r) => r.attainable).filter(Number.isFinite);
        const ratio = rs.map((r) => r.spearman / r.attainable).filter(Number.isFinite);
        table.push([
          layer,
          score,
          TARGET_LABEL[target] ?? target,
          String(rs.length),
          pm(rho, 3),
          pm(rs.map((r) => r.ceiling).filter(Number.isFinite), 3),
          pm(att, 3),
          ratio.length ? pm(ratio, 2) : "n/a",
        ]);
        if (rho.length) {
          const m = mean(rho), e = rho.length > 1 ? sd(rho) : 0;
          bars.push({ x: layer, y: m, lo: m - e, hi: m + e, group: score });
        }
      }
    }
    out.push({
      title: `Per-layer correlations with their noise ceilings (${split} split)`,
      note: `Spearman ρ of each score with its designated target (signed scores with signed ΔL, ` +
        `unsigned with |ΔL|) on the ${split}-split oracle at each cell's final epoch, per layer; ` +
        "mean ± sd over cells. Ceiling: the Spearman-Brown corrected split-half reliability of " +
        "the target; attainable: √ceiling, the ρ a noise-free predictor of the true target could " +
        "reach; ρ / attainable says how much of the reachable agreement a score attains. The " +
        "fisher-z mean row averages the layers' Fisher z (unweighted), never a pooled ranking.",
      chart: {
        name: `layers_${split}`,
        spec: barChartWithCI(bars, {
          xTitle: "layer",
          yTitle: `Spearman ρ with its target (${split})`,
          title: "every score per layer, mean ± sd over cells (final epoch)",
        }),
      },
      table: {
        header: ["layer", "score", "target", "n", "ρ", "ceiling", "attainable", "ρ / attainable"],
        rows: table,
      },
    });
  }
  // ρ(|w|, |ΔL|) per layer and condition, train split (else the first split there is).
  const split = all.some((r) => r.split === "train") ? "train" : all[0].split;
  const mag = (i: number, layer: string) =>
    finals[i].find((r) =>
      r.split === split && r.layer === layer && r.score === "magnitude" && r.target === "absdloss"
    );
  const layers = layerOrder(all.filter((r) => r.split === split && r.score === "magnitude"));
  if (layers.length) {
    const index = new Map(cells.map((c, i) => [c, i]));
    const rows: string[][] = [];
    for (const [label, g] of orderedGroups(cells, L, (c) => L.groupLabel(c))) {
      const row = [label, String(g.length)];
      for (const layer of layers) {
        const rs = g.map((c) => mag(index.get(c)!, layer)).filter((r) => r !== undefined);
        const rho = rs.map((r) => r.spearman).filter(Number.isFinite);
        row.push(
          rho.length ? `${pm(rho, 3)} (att. ${fixed(mean(rs.map((r) => r.attainable)), 2)})` : "–",
        );
      }
      rows.push(row);
    }
    out.push({
      title: `Magnitude vs |ΔL| per layer and condition (${split} split)`,
      note: "ρ(|w|, |ΔL|) at the final epoch, mean ± sd over seeds, with the mean attainable ρ " +
        "(√ of the split-half ceiling) of |ΔL| in that layer.",
      table: { header: ["group", "n", ...layers], rows },
    });
  }
  return out;
}

/**
 * Statistics along training: per layer (and the fisher-z mean), ρ of each score with its
 * designated target, the attainable ρ of each target, the helpful-removal fraction and the drop
 * precision, at every analyzed epoch ("final" at the mean of the cells' last epochs).
 */
function epochSections(hcells: HypothesisCell[], rows: CellRow[]): Section[] {
  const title = "Importance along training";
  const multi = hcells.some((c) => Object.keys(c.analyses).filter((k) => k !== "final").length > 1);
  if (!multi) {
    return [{
      title,
      note: "skipped: each cell was analyzed at one epoch only (analysis.epochs).",
    }];
  }
  const eas = epochAnalyses(hcells, rows);
  // x of a key: the epoch number, or for "final" the mean of the cells' last epochs.
  const finalEpochs = eas.filter((e) => e.key === "final").map((e) => e.epoch);
  const finalX = finalEpochs.length ? mean(finalEpochs) : NaN;
  const xOf = (k: string) => k === "final" ? finalX : Number(k);
  const keys = [...new Set(eas.map((e) => e.key))].sort((a, b) => xOf(a) - xOf(b));
  const colName = (k: string) =>
    k === "final"
      ? `final (epoch ${fixed(finalX, 1)}${
        Math.min(...finalEpochs) !== Math.max(...finalEpochs)
          ? `, ${Math.min(...finalEpochs)}–${Math.max(...finalEpochs)}`
          : ""
      })`
      : `epoch ${k}`;
  type Acc = Map<string, { score: string; target: string; layer: string; k: string; ys: number[] }>;
  const rhoAcc: Acc = new Map(), attAcc: Acc = new Map(), factAcc: Acc = new Map();
  const add = (m: Acc, score: string, target: string, layer: string, k: string, y: number) => {
    if (!Number.isFinite(y)) return;
    const key = [score, target, layer, k].join("\u0000");
    if (!m.has(key)) m.set(key, { score, target, layer, k, ys: [] });
    m.get(key)!.ys.push(y);
  };
  const allRows: { layer: string }[] = [];
  for (const e of eas) {
    for (const r of e.analysis.agreement2 ?? []) {
      if (r.split !== "train" || !r.primary || r.target === "dacc") continue;
      allRows.push(r);
      add(rhoAcc, r.score, r.target, r.layer, e.key, r.spearman);
      if (r.score === (r.target === "dloss" ? "signed2" : "magnitude")) {
        add(attAcc, "attainable", r.target, r.layer, e.key, r.attainable);
      }
    }
    for (const f of e.analysis.layerFacts2 ?? []) {
      if (f.split !== "train") continue;
      allRows.push(f);
      add(factAcc, "helpful removals", "", f.layer, e.key, f.helpfulFraction);
      if (f.dropPrecision !== undefined) {
        add(factAcc, "drop precision", "", f.layer, e.key, f.dropPrecision);
      }
    }
  }
  if (!rhoAcc.size) {
    return [{
      title,
      note: "skipped: the analyses have no per-layer agreement rows (agreement2).",
    }];
  }
  const layers = layerOrder(allRows);
  const byLayer = (m: Acc) =>
    [...m.values()].sort((a, b) =>
      layers.indexOf(a.layer) - layers.indexOf(b.layer) || xOf(a.k) - xOf(b.k)
    );
  const integer = Number.isInteger(finalX) || !finalEpochs.length;
  const tableOf = (m: Acc, label: (v: { score: string; target: string }) => string) => {
    const series = new Map<string, Map<string, string>>();
    for (const v of byLayer(m)) {
      const id = `${v.layer}\u0000${label(v)}`;
      if (!series.has(id)) series.set(id, new Map());
      series.get(id)!.set(v.k, pm(v.ys, 3));
    }
    return [...series].map(([id, byK]) => {
      const [layer, what] = id.split("\u0000");
      return [layer, what, ...keys.map((k) => byK.get(k) ?? "")];
    });
  };
  const rhoLabel = (v: { score: string; target: string }) =>
    `${v.score} vs ${TARGET_LABEL[v.target] ?? v.target}`;
  const out: Section[] = [{
    title,
    note: "Spearman ρ of each score with its designated target (signed scores with signed ΔL, " +
      "unsigned with |ΔL|; line style = target) on the training-split oracle, per layer and as " +
      "the Fisher-z mean over layers, mean ± sd over cells, at each analyzed epoch; the final " +
      "analysis sits at the mean of the cells' last epochs (they stop at different epochs under " +
      "the plateau rule). Read each ρ against the attainable ρ of its target at the same epoch " +
      "(next chart).",
    chart: {
      name: "along-training",
      spec: lineChart(
        byLayer(rhoAcc).map((v) => ({
          x: xOf(v.k),
          y: mean(v.ys),
          series: v.score,
          dash: `vs ${TARGET_LABEL[v.target] ?? v.target}`,
          facet: v.layer,
        })),
        { xTitle: "epoch", yTitle: "Spearman ρ (train oracle)", integerX: integer },
      ),
    },
    table: {
      header: ["layer", "score vs target", ...keys.map(colName)],
      rows: tableOf(rhoAcc, rhoLabel),
    },
  }];
  if (attAcc.size || factAcc.size) {
    const facts = new Map([...attAcc, ...factAcc]);
    const label = (v: { score: string; target: string }) =>
      v.score === "attainable" ? `attainable ρ of ${TARGET_LABEL[v.target]}` : v.score;
    out.push({
      title: "Noise ceilings, helpful removals and drop precision along training",
      note: "Per layer on the training-split oracle, mean ± sd over cells: the attainable ρ " +
        "(√ split-half ceiling) of |ΔL| and of ΔL, the fraction of ablated weights whose removal " +
        "lowers the training loss (a network at a minimum has none), and the share of the " +
        "weights the topology rule would drop next that fall in the least-important fifth by " +
        "|ΔL| (chance 0.2).",
      chart: {
        name: "along-training-facts",
        spec: lineChart(
          byLayer(facts).map((v) => ({
            x: xOf(v.k),
            y: mean(v.ys),
            series: label(v),
            facet: v.layer,
          })),
          { xTitle: "epoch", yTitle: "value (train oracle)", integerX: integer },
        ),
      },
      table: {
        header: ["layer", "statistic", ...keys.map(colName)],
        rows: tableOf(facts, label),
      },
    });
  }
  return out;
}

/** Accuracy per cell with the epoch it stopped at and why: did the networks converge? */
function convergenceSection(cells: Cell[], L: Layout): Section {
  const title = "Accuracy per cell and convergence";
  const maxEpochs = (c: Cell) => {
    try {
      const e = (JSON.parse(c.row.config) as { epochs?: unknown }).epochs;
      return typeof e === "number" ? e : undefined;
    } catch {
      return undefined;
    }
  };
  const stoppedN = cells.filter((c) => c.row.stopped).length;
  const rows = [...cells].sort((a, b) => a.row.cell_index - b.row.cell_index).map((c) => {
    const max = maxEpochs(c);
    return [
      String(c.row.cell_index),
      L.groupLabel(c),
      c.factors[SEED] ?? "–",
      max !== undefined ? `${c.row.epochs} / ${max}` : String(c.row.epochs),
      c.row.stopped
        ? c.row.stopped
        : max !== undefined && c.row.epochs >= max
        ? "none: ran to the maximum"
        : "none",
      fixed(c.row.train_loss, 4),
      fixed(c.row.train_accuracy, 4),
      fixed(c.row.test_accuracy, 4),
    ];
  });
  return {
    title,
    note: `${stoppedN} of ${cells.length} cells stopped by their stop rule (plateau of the ` +
      "training loss); the others ran to their maximum epochs. Epochs: run / maximum; accuracy " +
      "and loss at the last epoch.",
    table: {
      header: [
        "cell",
        "condition",
        "seed",
        "epochs",
        "stop criterion",
        "train loss",
        "train acc",
        "test acc",
      ],
      rows,
    },
  };
}

/** Weight-agnostic retention (analysis option `agnostic`), per condition. */
function agnosticSection(hcells: HypothesisCell[], cells: Cell[], L: Layout): Section[] {
  const ag = hcells.map((c) => c.analyses.final?.agnostic);
  if (!ag.some(Boolean)) return [];
  const index = new Map(cells.map((c, i) => [c, i]));
  // Signed weights at scale 1 (the learned signs × each layer's mean |w|; negative scales flip
  // every sign), shared weights at their best scale (WANN's best single weight).
  const variants = [
    ["trained", "signed"],
    ["degree-matched", "signed"],
    ["shuffled", "signed"],
    ["trained", "shared"],
    ["degree-matched", "shared"],
    ["shuffled", "shared"],
  ];
  const valueOf = (r: NonNullable<AnalysisSummary["agnostic"]>, mask: string, weights: string) => {
    if (weights === "signed") {
      const at1 = r.rows.filter((x) =>
        x.mask === mask && x.weights === weights && (x.scale ?? 1) === 1
      ).map((x) => x.accuracy);
      return at1.length ? mean(at1) : NaN;
    }
    return r.summary.find((s) => s.mask === mask && s.weights === weights)?.bestAccuracy ?? NaN;
  };
  const rows: string[][] = [];
  const bars: BarRow[] = [];
  const withAg = cells.filter((c) => ag[index.get(c)!]);
  for (const [label, g] of orderedGroups(withAg, L, (c) => L.groupLabel(c))) {
    const reps = g.map((c) => ag[index.get(c)!]!);
    const row = [label, String(g.length), pm(reps.map((r) => r.baseline.accuracy), 3)];
    for (const [mask, weights] of variants) {
      const v = reps.map((r) => valueOf(r, mask, weights)).filter(Number.isFinite);
      row.push(pm(v, 3));
      if (weights === "signed" && v.length) {
        const m = mean(v), e = v.length > 1 ? sd(v) : 0;
        bars.push({ x: label, y: m, lo: m - e, hi: m + e, group: `${mask} mask` });
      }
    }
    rows.push(row);
  }
  return [{
    title: "Weight-agnostic retention (sign-only and shared weights)",
    note: "Test accuracy of each cell's final network with its weights replaced: signed = the " +
      "learned signs times each layer's mean |w| (scale s = 1; negative scales flip every " +
      "sign), shared = one weight s × mean |w| per layer without signs, at its best scale " +
      "s ∈ {−2, −1, −0.5, 0.5, 1, 2}; random topologies averaged. Masks: the trained topology, " +
      "a degree-matched random one (each unit keeps its fan-in) and a shuffled one; mean ± sd " +
      "over seeds (src/analysis/agnostic.ts).",
    chart: {
      name: "agnostic",
      spec: barChartWithCI(bars, {
        yTitle: "test accuracy, signs × mean |w|",
        title: "learned signs × mean |w| on the trained vs random topologies, mean ± sd over seeds",
      }),
    },
    table: {
      header: [
        "group",
        "n",
        "trained acc",
        ...variants.map(([m, w]) => `${w === "signed" ? "signed s=1" : "shared best"}, ${m}`),
      ],
      rows,
    },
  }];
}

function distinct(xs: string[]): string {
  return [...new Set(xs)].join("; ");
}

function headerFacts(
  data: StoreData,
  cells: Cell[],
  L: Layout,
  storePath: string,
): [string, string][] {
  const facts: [string, string][] = [
    ["study", distinct(data.cells.map((c) => c.study)) || data.meta.study || "(unnamed)"],
    ["store", storePath],
    ["cells", `${cells.length} (${cells.filter((c) => c.analysis).length} analyzed)`],
    [
      "factors",
      [...L.levels].map(([f, lv]) => `${f}: ${lv.join(", ")}`).join(" | ") || "(none)",
    ],
    ["adapter", distinct(data.cells.map((c) => c.adapter))],
    ["filigree version", distinct(data.cells.map((c) => c.filigree_version))],
  ];
  const fin = data.cells.map((c) => c.finished_at).sort();
  if (fin.length) facts.push(["finished", `${fin[0]} … ${fin[fin.length - 1]}`]);
  for (const k of ["command", "commit"]) {
    // A merged store keeps every input's command (one per line, e.g. one per shard).
    const v = data.meta[k]?.split("\n").filter((x) => x !== "") ?? [];
    v.forEach((x, i) => facts.push([v.length > 1 ? `${k} ${i + 1}/${v.length}` : k, x]));
  }
  // Which code wrote which cells: one entry per sweep chunk (store meta `history`).
  const history = storeHistory(data.meta);
  if (history.length > 1) {
    const counts = cellsPerChunk(history, fin);
    facts.push([
      "chunks",
      history.map((h, i) => `${h.commit.slice(0, 7)} from ${h.at.slice(0, 16)}: ${counts[i]} cells`)
        .join("; "),
    ]);
  }
  // Cells copied from other studies' stores (sweep --reuse), which no chunk of this store ran.
  for (const r of reuseLog(data.meta)) {
    facts.push([
      "reused",
      `${r.cells} cells from ${r.from} (study ${r.study}, commit ${
        r.commit.split("\n").map((c) => c.slice(0, 7)).join(", ")
      }) at ${r.at.slice(0, 16)}`,
    ]);
  }
  return facts;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}
function mdEsc(s: string): string {
  return s.replace(/\|/g, "\\|");
}

function toHtml(title: string, facts: [string, string][], sections: Section[]): string {
  const parts = [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${esc(title)}</title>`,
    "<style>body{font-family:'DejaVu Sans',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}" +
    "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}" +
    "th{background:#f4f4f4}.note{color:#666;font-style:italic}li{margin:.3em 0}figure{margin:0;overflow-x:auto}</style>",
    "</head><body>",
    `<h1>${esc(title)}</h1>`,
    "<table>",
    ...facts.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`),
    "</table>",
  ];
  for (const s of sections) {
    parts.push(`<h2>${esc(s.title)}</h2>`);
    if (s.note) parts.push(`<p class="note">${esc(s.note)}</p>`);
    if (s.svg) parts.push(`<figure>${s.svg}</figure>`);
    if (s.table) {
      parts.push(
        "<table><tr>" + s.table.header.map((h) => `<th>${esc(h)}</th>`).join("") + "</tr>",
      );
      for (const r of s.table.rows) {
        parts.push("<tr>" + r.map((c) => `<td>${esc(c)}</td>`).join("") + "</tr>");
      }
      parts.push("</table>");
    }
    if (s.items) parts.push("<ul>" + s.items.map((i) => `<li>${esc(i)}</li>`).join("") + "</ul>");
  }
  parts.push("</body></html>", "");
  return parts.join("\n");
}

function toMarkdown(
  title: string,
  facts: [string, string][],
  sections: Section[],
  ext: string,
): string {
  const out = [
    `# ${title}`,
    "",
    "| | |",
    "|---|---|",
    ...facts.map(([k, v]) => `| ${mdEsc(k)} | ${mdEsc(v)} |`),
    "",
  ];
  for (const s of sections) {
    out.push(`## ${s.title}`, "");
    if (s.note) out.push(`_${s.note}_`, "");
    if (s.chart && s.svg) out.push(`![${s.title}](img/${s.chart.name}.${ext})`, "");
    if (s.table) {
      out.push(
        `| ${s.table.header.map(mdEsc).join(" | ")} |`,
        `|${s.table.header.map(() => "---").join("|")}|`,
      );
      for (const r of s.table.rows) out.push(`| ${r.map(mdEsc).join(" | ")} |`);
      out.push("");
    }
    if (s.items) out.push(...s.items.map((i) => `- ${i}`), "");
  }
  return out.join("\n");
}

/**
 * Reads the store at `storePath` and writes `outDir/report.html`, `outDir/report.md` and the
 * charts in `outDir/img/` (SVG and PNG); returns the paths of the two reports. Every file is
 * written atomically. Deterministic for a given store and options.
 *
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { writeReport } from "./report.ts";
 * const out = await writeReport("runs/studies/demo/store.sqlite", "/tmp/demo-report");
 * assert.deepEqual(out.html, "/tmp/demo-report/report.html");
 * ```
 */
export async function writeReport(
  storePath: string,
  outDir: string,
  opts: ReportOptions = {},
): Promise<{ html: string; md: string }> {
  const data = readStore(storePath);
  if (data.cells.length === 0) {
    throw new FiligreeError(`${storePath}: the store has no finished cells yet`);
  }
  const cells: Cell[] = data.cells.map((row) => {
    let factors: Record<string, string>;
    try {
      factors = cellFacts(row).factors;
    } catch {
      throw new FiligreeError(`${storePath}: cell ${row.cell_id} has unreadable factors JSON`);
    }
    return { row, factors, analysis: parseAnalysis(row.analysis) };
  });
  const L = new Layout(cells);
  const facts = cells.map((c) => cellFacts(c.row));
  const rules = deriveRules(facts, { seed: opts.seed ?? 0, alpha: opts.alpha ?? 0.05 });
  // Hypotheses and per-epoch analyses come from the store's analyses (v1 stores: final only).
  const ro = StudyStore.openReadOnly(storePath);
  let hcells: HypothesisCell[];
  try {
    hcells = cellsFromStore(ro);
  } finally {
    ro.close();
  }
  let hyp: HypothesisResult[] | string | undefined;
  let specs = opts.hypotheses;
  if (!specs) {
    try {
      specs = data.meta.spec
        ? (await parseStudySpec(JSON.parse(data.meta.spec), data.meta.study ?? "study")).hypotheses
        : [];
    } catch (e) {
      specs = [];
      hyp = `the stored study spec could not be read (${
        (e as Error).message
      }); no hypotheses tested.`;
    }
  }
  hyp ??= specs.length
    ? testHypotheses(hcells, specs, { seed: opts.seed ?? 0, alpha: opts.alpha ?? 0.05 })
    : "none: this study's spec has no hypotheses section, so everything below is exploratory.";
  const sections: Section[] = [
    hypothesisSection(hyp, opts.hypothesesSource),
    ...layerSections(hcells, cells, L),
    ...epochSections(hcells, data.cells),
    convergenceSection(cells, L),
    accuracySection(cells, L),
    ...agreementSections(cells, L),
    curvesSection(cells, L),
    magnitudeSection(cells, L),
    methodSection(cells, L),
    speedSection(cells, L),
    grownSection(cells, L),
    ...agnosticSection(hcells, cells, L),
    learningSection(cells, data.epochs, L),
    ...rulesSections(rules),
    ...failedSections(data.failures),
  ];
  await Deno.mkdir(`${outDir}/img`, { recursive: true });
  for (const s of sections) {
    if (!s.chart) continue;
    if (opts.noPng) {
      const { renderChart } = await import("../report/plot.ts");
      s.svg = (await renderChart(s.chart.spec)).svg;
      await writeFileAtomic(`${outDir}/img/${s.chart.name}.svg`, s.svg);
    } else s.svg = (await writeChart(s.chart.spec, `${outDir}/img/${s.chart.name}`)).svg;
    // Inline SVGs share one document: keep their element ids (gradients, clips) apart.
    s.svg = s.svg.replace(/\b(id="|url\(#|href="#)([^"#)]+)/g, `$1${s.chart.name}-$2`);
  }
  const study = distinct(data.cells.map((c) => c.study)) || "study";
  const title = `Filigree study report: ${study}`;
  const hfacts = headerFacts(data, cells, L, storePath);
  const html = `${outDir}/report.html`, md = `${outDir}/report.md`;
  await writeFileAtomic(html, toHtml(title, hfacts, sections));
  await writeFileAtomic(md, toMarkdown(title, hfacts, sections, opts.noPng ? "svg" : "png"));
  return { html, md };
}
