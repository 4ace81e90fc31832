/**
 * Charts for reports and analysis: vega-lite specs rendered to SVG without a browser, SVG to
 * PNG with resvg, and builders for the chart kinds Filigree draws (binned 2-D heatmaps, bars
 * with error bars, curves, annotated heatmaps). The builders return plain vega-lite spec
 * objects, so callers can adjust them before rendering.
 *
 * The heavy modules (vega, vega-lite, resvg) are imported lazily on first render; building a
 * spec costs nothing. Text in PNGs needs system fonts (Debian: fonts-dejavu-core).
 *
 * @example
 * ```ts
 * import { lineChart, renderChart } from "./plot.ts";
 * const spec = lineChart([{ x: 0.1, y: 0.9, series: "magnitude" }], {
 *   xTitle: "fraction removed",
 *   yTitle: "accuracy",
 * });
 * const { svg } = await renderChart(spec);
 * if (!svg.startsWith("<svg")) throw new Error("not an SVG");
 * ```
 * @module
 */
import type { TopLevelSpec } from "vega-lite";
import { FiligreeError } from "../gpu/errors.ts";
import { writeFileAtomic } from "../io/atomic.ts";

/** A vega-lite top-level specification (re-exported type). */
export type ChartSpec = TopLevelSpec;

/** Default font family of every chart (also the PNG renderer's fallback). */
export const CHART_FONT = "DejaVu Sans, sans-serif";

/**
 * The widest a chart may render, legend included, in pixels: the report page is 1,100 px wide
 * (1,068 px of content). Builders wrap facets into rows and shrink bars to stay within it.
 */
export const MAX_CHART_WIDTH = 1060;

/**
 * One colour per importance score (and per curve control), the same in every chart: the run
 * plots of `ablate` and every chart of the study report. A score missing here is drawn grey;
 * tests/report/plot_test.ts checks that every name of `SCORE_NAMES` has its own colour.
 */
export const SCORE_COLORS: Readonly<Record<string, string>> = {
  magnitude: "#1f77b4",
  "magnitude-desc": "#000000",
  snip: "#ff7f0e",
  taylor: "#ffbb78",
  obd: "#2ca02c",
  grasp: "#d62728",
  synflow: "#9467bd",
  wanda: "#8c564b",
  random: "#7f7f7f",
  effmag: "#17becf",
  signed1: "#e377c2",
  signed2: "#bcbd22",
  signed2h: "#393b79",
};

/**
 * The colour scale for `names`: the {@link SCORE_COLORS} entries when every name is a score,
 * otherwise undefined (the default categorical scheme).
 *
 * @example
 * ```ts
 * import { scoreColorScale } from "./plot.ts";
 * const s = scoreColorScale(["snip", "magnitude"])!;
 * if (s.range[1] !== "#1f77b4") throw new Error("magnitude is blue everywhere");
 * if (scoreColorScale(["relu, norm=batch"]) !== undefined) throw new Error("not scores");
 * ```
 */
export function scoreColorScale(
  names: string[],
): { domain: string[]; range: string[] } | undefined {
  const domain = [...new Set(names)];
  if (domain.length === 0 || !domain.every((n) => n in SCORE_COLORS)) return undefined;
  return { domain, range: domain.map((n) => SCORE_COLORS[n]) };
}

/**
 * Columns of a wrapped facet grid of `n` panels, each `cellWidth` px wide with its axes: as many
 * as fit in `maxWidth`, then the count that leaves the fewest empty slots in the last row (ties:
 * more columns).
 *
 * @example
 * ```ts
 * import { gridColumns } from "./plot.ts";
 * if (gridColumns(4, 330) !== 2) throw new Error("2 × 2, not 3 + 1");
 * if (gridColumns(3, 330) !== 3) throw new Error("one row");
 * ```
 */
export function gridColumns(n: number, cellWidth: number, maxWidth = MAX_CHART_WIDTH): number {
  const fit = Math.max(1, Math.floor(maxWidth / cellWidth));
  if (n <= fit) return Math.max(1, n);
  let best = fit, empty = Infinity;
  for (let c = fit; c >= Math.max(1, Math.ceil(fit / 2)); c--) {
    const e = c * Math.ceil(n / c) - n;
    if (e < empty) [best, empty] = [c, e];
  }
  return best;
}

/** Distinct values in first-appearance order (the facet and series order callers give). */
function firstSeen(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** Columns of a legend below a chart, so that its widest label still fits the page. */
function legendColumns(labels: string[], most = 6): number {
  const widest = Math.max(1, ...labels.map((l) => Math.min(320, 8 * l.length) + 40));
  return Math.max(1, Math.min(most, labels.length, Math.floor(MAX_CHART_WIDTH / widest)));
}

/** Room for a panel's y axis (labels and title) beside its plot area. */
const AXIS_ROOM = 70;

const CONFIG = {
  font: CHART_FONT,
  view: { stroke: "#ddd" },
  axis: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320 },
  legend: { labelLimit: 320 },
};

/**
 * Renders a vega-lite spec to a standalone SVG string (no browser, no canvas).
 *
 * @example
 * ```ts
 * import { barChartWithCI, renderChart } from "./plot.ts";
 * const { svg } = await renderChart(barChartWithCI([{ x: "a", y: 1, lo: 0.5, hi: 1.5 }]));
 * if (!svg.includes("<svg")) throw new Error("not an SVG");
 * ```
 */
export async function renderChart(spec: ChartSpec): Promise<{ svg: string }> {
  const vega = await import("vega");
  const vl = await import("vega-lite");
  let compiled;
  try {
    compiled = vl.compile(spec).spec;
  } catch (e) {
    throw new FiligreeError(`invalid chart spec: ${(e as Error).message.split("\n")[0]}`);
  }
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    const svg = await view.toSVG();
    return { svg };
  } finally {
    view.finalize();
  }
}

/**
 * Rasterizes an SVG string to PNG bytes with resvg (system fonts, DejaVu Sans as fallback).
 * `width` scales the image to that many pixels (default: twice the SVG's own width).
 *
 * @example
 * ```ts
 * import { svgToPng } from "./plot.ts";
 * const png = await svgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
 * if (png[1] !== 0x50) throw new Error("not a PNG"); // "P" of the PNG signature
 * ```
 */
export async function svgToPng(svg: string, opts: { width?: number } = {}): Promise<Uint8Array> {
  const { Resvg } = await import("@resvg/resvg-js");
  const m = /<svg[^>]*\swidth="([\d.]+)"/.exec(svg);
  const width = opts.width ?? (m ? Math.round(2 * Number(m[1])) : 800);
  const r = new Resvg(svg, {
    font: {
      loadSystemFonts: true,
      defaultFontFamily: "DejaVu Sans",
      sansSerifFamily: "DejaVu Sans",
    },
    fitTo: { mode: "width", value: width },
    background: "white",
  });
  return new Uint8Array(r.render().asPng());
}

/**
 * Renders `spec` and writes `basePath.svg` and `basePath.png` (each atomically); returns the
 * SVG text (for inlining in HTML). The directory must exist.
 *
 * @example
 * ```ts
 * import { lineChart, writeChart } from "./plot.ts";
 * const dir = await Deno.makeTempDir();
 * await writeChart(lineChart([{ x: 1, y: 2, series: "a" }]), `${dir}/curve`);
 * if (!(await Deno.stat(`${dir}/curve.png`)).isFile) throw new Error("no PNG");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeChart(
  spec: ChartSpec,
  basePath: string,
  opts: { width?: number } = {},
): Promise<{ svg: string }> {
  const { svg } = await renderChart(spec);
  await writeFileAtomic(`${basePath}.svg`, svg);
  await writeFileAtomic(`${basePath}.png`, await svgToPng(svg, opts));
  return { svg };
}

/** Common options of the builders. */
export interface ChartOptions {
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** Width and height of one panel in pixels. */
  width?: number;
  height?: number;
}

/** One point of {@link hexbinChart}. */
export interface BinPoint {
  x: number;
  y: number;
  /** Facet label (e.g. the layer name); panels follow first appearance. */
  facet?: string;
}

/** The facet part of a wrapped facet spec: panels in `order`, grid that fits the page. */
function facetGrid(order: string[], panelWidth: number, extraWidth = 0) {
  return {
    facet: {
      field: "facet",
      type: "nominal" as const,
      title: null,
      sort: order,
      // "activation=relu, norm=batch" headers: one line per factor.
      header: { labelLimit: panelWidth, labelFontSize: 12, labelExpr: "split(datum.label, ', ')" },
    },
    columns: gridColumns(order.length, panelWidth + AXIS_ROOM, MAX_CHART_WIDTH - extraWidth),
  };
}

/**
 * A binned 2-D density heatmap (count per cell, log color): e.g. |w| against single-weight
 * Δloss, one panel per layer (in the order the points give). With `logX`/`logY` the axis shows
 * log10|value| (non-positive or non-finite values are dropped from that axis); with
 * `symlogY: c` it shows sign(y)·log10(1 + |y|/c), labelled in the original units (values near 0
 * and values many decades larger on one axis, e.g. Δloss). Binning happens in the displayed units.
 *
 * @example
 * ```ts
 * import { hexbinChart, renderChart } from "./plot.ts";
 * const spec = hexbinChart([{ x: 0.1, y: 0.01, facet: "fc1" }, { x: 0.2, y: -1e-4, facet: "fc1" }], {
 *   logX: true,
 *   symlogY: 1e-5,
 *   xTitle: "|w|",
 *   yTitle: "loss change when removed",
 * });
 * const { svg } = await renderChart(spec);
 * if (!svg.includes("loss change when removed")) throw new Error("y title missing");
 * ```
 */
export function hexbinChart(
  points: BinPoint[],
  opts: ChartOptions & {
    logX?: boolean;
    logY?: boolean;
    symlogY?: number;
    bins?: number;
    columns?: number;
  } = {},
): ChartSpec {
  const bins = opts.bins ?? 40;
  const c = opts.symlogY;
  const tx = (v: number) => (opts.logX ? (v !== 0 ? Math.log10(Math.abs(v)) : NaN) : v);
  const ty = (v: number) =>
    c !== undefined
      ? Math.sign(v) * Math.log10(1 + Math.abs(v) / c)
      : opts.logY
      ? (v !== 0 ? Math.log10(Math.abs(v)) : NaN)
      : v;
  const values = points.map((p) => ({ x: tx(p.x), y: ty(p.y), facet: p.facet ?? "" }))
    .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xTitle = opts.xTitle ?? "x", yTitle = opts.yTitle ?? "y";
  const order = firstSeen(values.map((v) => v.facet));
  const faceted = order.some((f) => f !== "");
  const width = opts.width ?? 220;
  const yAxis = c !== undefined
    ? {
      axis: {
        labelExpr: `datum.value == 0 ? '0' : format((datum.value < 0 ? -1 : 1) * ` +
          `(pow(10, abs(datum.value)) - 1) * ${c}, '.0e')`,
      },
    }
    : {};
  const inner = {
    width,
    height: opts.height ?? 200,
    mark: { type: "rect" as const },
    encoding: {
      x: {
        field: "x",
        type: "quantitative" as const,
        bin: { maxbins: bins },
        title: opts.logX ? `log10 ${xTitle}` : xTitle,
      },
      y: {
        field: "y",
        type: "quantitative" as const,
        bin: { maxbins: bins },
        title: opts.logY && c === undefined ? `log10 ${yTitle}` : yTitle,
        ...yAxis,
      },
      color: {
        aggregate: "count" as const,
        type: "quantitative" as const,
        scale: { type: "log" as const, scheme: "viridis" },
        title: "count",
      },
    },
  };
  if (!faceted) {
    return { $schema: SCHEMA, title: opts.title, config: CONFIG, data: { values }, ...inner };
  }
  const grid = facetGrid(order, width, 90);
  return {
    $schema: SCHEMA,
    title: opts.title,
    config: CONFIG,
    data: { values },
    ...grid,
    columns: opts.columns ?? grid.columns,
    spec: inner,
    resolve: {
      scale: { x: "independent", y: "independent" },
      axis: { x: "independent", y: "independent" },
    },
  } as ChartSpec;
}

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** One bar of {@link barChartWithCI}. */
export interface BarRow {
  /** Category on the x axis. */
  x: string;
  /** Bar height. */
  y: number;
  /** Error bar ends (omit for no error bar). */
  lo?: number;
  hi?: number;
  /** Group within a category (side-by-side bars, colored; scores get their SCORE_COLORS). */
  group?: string;
}

/**
 * Bars with error bars (e.g. correlation with its bootstrap CI, or mean ± sd over seeds);
 * with `group` set, grouped side-by-side bars colored by group (legend below the chart).
 * Categories and groups keep the order the rows give. The chart stays within
 * {@link MAX_CHART_WIDTH}: bars get narrower, and when even 6 px bars would not fit, the
 * categories become panels wrapped into rows.
 *
 * @example
 * ```ts
 * import { barChartWithCI, MAX_CHART_WIDTH, renderChart } from "./plot.ts";
 * const rows = ["relu", "tanh"].flatMap((x) =>
 *   ["magnitude", "snip"].map((group) => ({ x, y: 0.7, lo: 0.6, hi: 0.8, group }))
 * );
 * const { svg } = await renderChart(barChartWithCI(rows, { yTitle: "Spearman ρ" }));
 * const width = Number(/width="([\d.]+)"/.exec(svg)![1]);
 * if (!(width <= MAX_CHART_WIDTH)) throw new Error(`chart ${width} px wide`);
 * ```
 */
export function barChartWithCI(rows: BarRow[], opts: ChartOptions = {}): ChartSpec {
  const grouped = rows.some((r) => r.group !== undefined);
  const values = rows.map((r) => ({
    x: r.x,
    y: r.y,
    lo: r.lo ?? r.y,
    hi: r.hi ?? r.y,
    group: r.group ?? "",
  }));
  const cats = firstSeen(values.map((v) => v.x));
  const groups = firstSeen(values.map((v) => v.group));
  const scale = grouped ? scoreColorScale(groups) : undefined;
  const color = grouped
    ? {
      color: {
        field: "group",
        type: "nominal" as const,
        title: null,
        sort: groups,
        ...(scale ? { scale } : {}),
        legend: { orient: "bottom" as const, columns: legendColumns(groups) },
      },
    }
    : { color: { value: "#4c78a8" } };
  const yEnc = { field: "y", type: "quantitative" as const, title: opts.yTitle ?? "value" };
  const layer = [
    { mark: { type: "bar" as const }, encoding: { y: yEnc, ...color } },
    {
      mark: { type: "rule" as const, color: "black" },
      encoding: {
        y: { field: "lo", type: "quantitative" as const },
        y2: { field: "hi" },
      },
    },
  ];
  const avail = MAX_CHART_WIDTH - AXIS_ROOM;
  const perCat = Math.max(1, groups.length);
  const nBars = cats.length * perCat;
  const base = { $schema: SCHEMA, title: opts.title, config: CONFIG, data: { values } };
  if (!grouped || nBars * 6 <= avail) {
    // One panel: bars 6-40 px wide.
    const width = opts.width ?? Math.min(avail, Math.max(200, 40 * nBars));
    // Labels like "activation=relu, norm=batch" go on one line per factor.
    const longest = Math.max(...cats.flatMap((c) => c.split(", ").map((p) => p.length)));
    const fits = longest * 7.2 <= width / cats.length; // DejaVu Sans 11 px: ~7 px a character
    const xAxis = {
      labelExpr: "split(datum.label, ', ')",
      // Vertical when too long: slanted labels would stick out left of the chart.
      labelAngle: fits ? 0 : -90,
      labelLimit: 220,
    };
    return {
      ...base,
      width,
      height: opts.height ?? 220,
      encoding: {
        x: {
          field: "x",
          type: "nominal" as const,
          title: opts.xTitle ?? "",
          sort: cats,
          axis: xAxis,
        },
        ...(grouped ? { xOffset: { field: "group", type: "nominal" as const, sort: groups } } : {}),
      },
      layer,
    } as ChartSpec;
  }
  // Too many bars for one row: a panel per category, groups on each panel's x axis.
  const width = opts.width ?? Math.max(60, Math.min(240, 12 * perCat));
  const grid = facetGrid(cats, width);
  return {
    ...base,
    data: { values: values.map((v) => ({ ...v, facet: v.x })) },
    ...grid,
    spec: {
      width,
      height: opts.height ?? 180,
      encoding: {
        x: {
          field: "group",
          type: "nominal" as const,
          title: null,
          sort: groups,
          axis: { labels: false, ticks: false },
        },
      },
      layer,
    },
  } as ChartSpec;
}

/** One point of {@link lineChart}. */
export interface LinePoint {
  x: number;
  y: number;
  /** Line (color) this point belongs to; scores get their SCORE_COLORS. */
  series: string;
  /** Line style (dash pattern) within a colour, e.g. a second factor (optional). */
  dash?: string;
  /** Panel (optional); panels follow first appearance. */
  facet?: string;
  /** Band around the line (e.g. ± sd), optional. */
  lo?: number;
  hi?: number;
}

/**
 * Curves (lines with points unless `points: false`), colored by series (in first-appearance
 * order; scores in their {@link SCORE_COLORS}), optionally dashed by `dash`, one panel per facet
 * (first-appearance order, wrapped to fit the page without empty slots where possible, every
 * panel with its own axes) and a shaded band where `lo`/`hi` are given: e.g. accuracy against
 * the fraction of weights removed. `integerX` puts ticks on integers only (epochs).
 *
 * @example
 * ```ts
 * import { lineChart, renderChart } from "./plot.ts";
 * const spec = lineChart([
 *   { x: 1, y: 0.95, series: "magnitude", facet: "relu" },
 *   { x: 2, y: 0.9, series: "magnitude", facet: "relu" },
 * ], { xTitle: "epoch", yTitle: "test accuracy", integerX: true });
 * const { svg } = await renderChart(spec);
 * if (svg.includes(">1.5<")) throw new Error("a tick between epochs");
 * ```
 */
export function lineChart(
  points: LinePoint[],
  opts: ChartOptions & {
    columns?: number;
    logX?: boolean;
    points?: boolean;
    integerX?: boolean;
  } = {},
): ChartSpec {
  const values = points.map((p) => ({
    x: p.x,
    y: p.y,
    series: p.series,
    dash: p.dash ?? "",
    facet: p.facet ?? "",
    lo: p.lo ?? p.y,
    hi: p.hi ?? p.y,
  }));
  const banded = points.some((p) => p.lo !== undefined);
  const dashes = firstSeen(values.map((v) => v.dash));
  const dashed = dashes.some((d) => d !== "");
  const series = firstSeen(values.map((v) => v.series));
  const scale = scoreColorScale(series);
  const x = {
    field: "x",
    type: "quantitative" as const,
    title: opts.xTitle ?? "x",
    ...(opts.logX ? { scale: { type: "log" as const } } : {}),
    ...(opts.integerX ? { axis: { tickMinStep: 1, format: "d" } } : {}),
  };
  const order = firstSeen(values.map((v) => v.facet));
  const faceted = order.some((f) => f !== "");
  const legendBelow = faceted || series.length > 8;
  const color = {
    field: "series",
    type: "nominal" as const,
    title: null,
    sort: series,
    ...(scale ? { scale } : {}),
    ...(legendBelow
      ? { legend: { orient: "bottom" as const, columns: legendColumns(series, 4) } }
      : {}),
  };
  const strokeDash = dashed
    ? {
      strokeDash: {
        field: "dash",
        type: "nominal" as const,
        title: null,
        sort: dashes,
        legend: {
          symbolType: "stroke",
          symbolSize: 400,
          symbolStrokeWidth: 2,
          encode: { symbols: { update: { stroke: { value: "#444" } } } },
          ...(legendBelow ? { orient: "bottom" as const } : {}),
        },
      },
    }
    : {};
  const layers: unknown[] = [{
    mark: { type: "line", point: opts.points ?? true },
    encoding: {
      x,
      y: { field: "y", type: "quantitative", title: opts.yTitle ?? "y" },
      color,
      ...strokeDash,
      ...(dashed ? { detail: { field: "dash", type: "nominal" } } : {}),
    },
  }];
  if (banded) {
    // After the lines, so the legend takes the lines' symbols (the band is translucent).
    layers.push({
      mark: { type: "area", opacity: 0.15 },
      encoding: {
        x,
        y: { field: "lo", type: "quantitative" },
        y2: { field: "hi" },
        color,
        ...(dashed ? { detail: { field: "dash", type: "nominal" } } : {}),
      },
    });
  }
  const legendRoom = legendBelow ? 0 : 180;
  const width = opts.width ??
    (faceted ? 260 : Math.min(560, MAX_CHART_WIDTH - AXIS_ROOM - legendRoom));
  const inner = { width, height: opts.height ?? 200, layer: layers };
  if (!faceted) {
    return {
      $schema: SCHEMA,
      title: opts.title,
      config: CONFIG,
      data: { values },
      ...inner,
    } as ChartSpec;
  }
  const grid = facetGrid(order, width);
  return {
    $schema: SCHEMA,
    title: opts.title,
    config: CONFIG,
    data: { values },
    ...grid,
    columns: opts.columns ?? grid.columns,
    spec: inner,
    resolve: { axis: { x: "independent", y: "independent" } },
  } as ChartSpec;
}

/** One cell of {@link heatmapChart}. */
export interface HeatCell {
  row: string;
  col: string;
  /** Color value (e.g. the mean over seeds). */
  value: number;
  /** Text in the cell (e.g. "0.912 ± 0.004"); default: value with 3 decimals. */
  label?: string;
}

/**
 * A rows × columns heatmap with a text label in every cell (e.g. accuracy mean ± sd over
 * seeds by activation × normalization). Columns shrink to fit {@link MAX_CHART_WIDTH}.
 *
 * @example
 * ```ts
 * import { heatmapChart, renderChart } from "./plot.ts";
 * const spec = heatmapChart([{ row: "relu", col: "batch", value: 0.97, label: "0.97 ± 0.01" }], {
 *   xTitle: "normalization",
 *   yTitle: "activation",
 * });
 * const { svg } = await renderChart(spec);
 * if (!svg.includes("0.97 ± 0.01")) throw new Error("cell label missing");
 * ```
 */
export function heatmapChart(
  cells: HeatCell[],
  opts: ChartOptions & { valueTitle?: string; scheme?: string } = {},
): ChartSpec {
  const values = cells.map((c) => ({
    row: c.row,
    col: c.col,
    value: c.value,
    label: c.label ?? (Number.isFinite(c.value) ? c.value.toFixed(3) : "n/a"),
  }));
  const rows = new Set(values.map((v) => v.row)).size;
  const cols = new Set(values.map((v) => v.col)).size;
  const fin = values.map((v) => v.value).filter(Number.isFinite);
  const mid = fin.length ? (Math.min(...fin) + Math.max(...fin)) / 2 : 0;
  // Room for row labels (up to 220 px) and the colour legend.
  const avail = MAX_CHART_WIDTH - 220 - 90;
  return {
    $schema: SCHEMA,
    title: opts.title,
    config: CONFIG,
    width: opts.width ?? Math.min(avail, Math.max(120, 110 * cols)),
    height: opts.height ?? Math.max(60, 34 * rows),
    data: { values },
    encoding: {
      x: {
        field: "col",
        type: "nominal",
        title: opts.xTitle ?? "",
        sort: null,
        axis: { labelAngle: 0, labelLimit: Math.max(40, avail / Math.max(1, cols)) },
      },
      y: {
        field: "row",
        type: "nominal",
        title: opts.yTitle ?? "",
        sort: null,
        axis: { labelLimit: 220 },
      },
    },
    layer: [
      {
        mark: { type: "rect" },
        encoding: {
          color: {
            field: "value",
            type: "quantitative",
            title: opts.valueTitle ?? "value",
            scale: { scheme: opts.scheme ?? "viridis" },
          },
        },
      },
      {
        mark: { type: "text", fontSize: 11 },
        encoding: {
          text: { field: "label", type: "nominal" },
          color: {
            condition: { test: `datum.value > ${mid}`, value: "black" },
            value: "white",
          },
        },
      },
    ],
  } as ChartSpec;
}
