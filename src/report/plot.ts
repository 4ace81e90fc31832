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
 * console.log(svg.startsWith("<svg")); // true
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
 * console.log(svg.includes("<svg")); // true
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
 * console.log(png[1] === 0x50); // true ("P" of the PNG signature)
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
 * console.log((await Deno.stat(`${dir}/curve.png`)).isFile); // true
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
  /** Facet label (e.g. the layer name). */
  facet?: string;
}

/**
 * A binned 2-D density heatmap (count per cell, log color): e.g. |w| against single-weight
 * Δloss, one panel per layer. With `logX`/`logY` the axis shows log10|value| (non-positive or
 * non-finite values are dropped from that axis); binning happens in the displayed units.
 *
 * @example
 * ```ts
 * import { hexbinChart } from "./plot.ts";
 * const spec = hexbinChart([{ x: 0.1, y: 0.01, facet: "fc1" }], {
 *   logX: true,
 *   xTitle: "|w|",
 *   yTitle: "Δloss",
 * });
 * console.log(typeof spec); // object
 * ```
 */
export function hexbinChart(
  points: BinPoint[],
  opts: ChartOptions & { logX?: boolean; logY?: boolean; bins?: number; columns?: number } = {},
): ChartSpec {
  const bins = opts.bins ?? 40;
  const tx = (v: number) => (opts.logX ? (v !== 0 ? Math.log10(Math.abs(v)) : NaN) : v);
  const ty = (v: number) => (opts.logY ? (v !== 0 ? Math.log10(Math.abs(v)) : NaN) : v);
  const values = points.map((p) => ({ x: tx(p.x), y: ty(p.y), facet: p.facet ?? "" }))
    .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xTitle = opts.xTitle ?? "x", yTitle = opts.yTitle ?? "y";
  const faceted = values.some((v) => v.facet !== "");
  const inner = {
    width: opts.width ?? 220,
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
        title: opts.logY ? `log10 ${yTitle}` : yTitle,
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
  return {
    $schema: SCHEMA,
    title: opts.title,
    config: CONFIG,
    data: { values },
    facet: { field: "facet", type: "nominal", title: null },
    columns: opts.columns ?? 3,
    spec: inner,
    resolve: { scale: { x: "independent", y: "independent" } },
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
  /** Group within a category (side-by-side bars, colored). */
  group?: string;
}

/**
 * Bars with error bars (e.g. correlation with its bootstrap CI, or mean ± sd over seeds);
 * with `group` set, grouped side-by-side bars colored by group.
 *
 * @example
 * ```ts
 * import { barChartWithCI } from "./plot.ts";
 * const spec = barChartWithCI([{ x: "relu", y: 0.7, lo: 0.6, hi: 0.8, group: "magnitude" }], {
 *   yTitle: "Spearman ρ",
 * });
 * console.log(typeof spec); // object
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
  const x = { field: "x", type: "nominal" as const, title: opts.xTitle ?? "", sort: null };
  const offset = grouped ? { xOffset: { field: "group", type: "nominal" as const } } : {};
  const color = grouped
    ? { color: { field: "group", type: "nominal" as const, title: null } }
    : { color: { value: "#4c78a8" } };
  return {
    $schema: SCHEMA,
    title: opts.title,
    config: CONFIG,
    width: opts.width ?? Math.max(200, 40 * values.length),
    height: opts.height ?? 220,
    data: { values },
    encoding: { x, ...offset },
    layer: [
      {
        mark: { type: "bar" },
        encoding: {
          y: { field: "y", type: "quantitative", title: opts.yTitle ?? "value" },
          ...color,
        },
      },
      {
        mark: { type: "rule", color: "black" },
        encoding: { y: { field: "lo", type: "quantitative" }, y2: { field: "hi" } },
      },
    ],
  } as ChartSpec;
}

/** One point of {@link lineChart}. */
export interface LinePoint {
  x: number;
  y: number;
  /** Line (color) this point belongs to. */
  series: string;
  /** Panel (optional). */
  facet?: string;
  /** Band around the line (e.g. ± sd), optional. */
  lo?: number;
  hi?: number;
}

/**
 * Curves (lines with points unless `points: false`), colored by series, optionally one panel per facet and a shaded
 * band where `lo`/`hi` are given: e.g. accuracy against the fraction of weights removed.
 *
 * @example
 * ```ts
 * import { lineChart } from "./plot.ts";
 * const spec = lineChart([
 *   { x: 0.1, y: 0.95, series: "magnitude", facet: "relu" },
 *   { x: 0.5, y: 0.9, series: "magnitude", facet: "relu" },
 * ], { xTitle: "fraction removed", yTitle: "test accuracy" });
 * console.log(typeof spec); // object
 * ```
 */
export function lineChart(
  points: LinePoint[],
  opts: ChartOptions & { columns?: number; logX?: boolean; points?: boolean } = {},
): ChartSpec {
  const values = points.map((p) => ({
    x: p.x,
    y: p.y,
    series: p.series,
    facet: p.facet ?? "",
    lo: p.lo ?? p.y,
    hi: p.hi ?? p.y,
  }));
  const banded = points.some((p) => p.lo !== undefined);
  const x = {
    field: "x",
    type: "quantitative" as const,
    title: opts.xTitle ?? "x",
    ...(opts.logX ? { scale: { type: "log" as const } } : {}),
  };
  const color = { field: "series", type: "nominal" as const, title: null };
  const layers: unknown[] = [{
    mark: { type: "line", point: opts.points ?? true },
    encoding: {
      x,
      y: { field: "y", type: "quantitative", title: opts.yTitle ?? "y" },
      color,
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
      },
    });
  }
  const inner = { width: opts.width ?? 260, height: opts.height ?? 200, layer: layers };
  if (!values.some((v) => v.facet !== "")) {
    return {
      $schema: SCHEMA,
      title: opts.title,
      config: CONFIG,
      data: { values },
      ...inner,
    } as ChartSpec;
  }
  return {
    $schema: SCHEMA,
    title: opts.title,
    config: CONFIG,
    data: { values },
    facet: { field: "facet", type: "nominal", title: null },
    columns: opts.columns ?? 3,
    spec: inner,
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
 * seeds by activation × normalization).
 *
 * @example
 * ```ts
 * import { heatmapChart } from "./plot.ts";
 * const spec = heatmapChart([{ row: "relu", col: "batch", value: 0.97, label: "0.97 ± 0.01" }], {
 *   xTitle: "norm",
 *   yTitle: "activation",
 * });
 * console.log(typeof spec); // object
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
  return {
    $schema: SCHEMA,
    title: opts.title,
    config: CONFIG,
    width: opts.width ?? Math.max(120, 110 * cols),
    height: opts.height ?? Math.max(60, 34 * rows),
    data: { values },
    encoding: {
      x: { field: "col", type: "nominal", title: opts.xTitle ?? "", sort: null },
      y: { field: "row", type: "nominal", title: opts.yTitle ?? "", sort: null },
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
