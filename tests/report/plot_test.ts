/**
 * Tests of src/report/plot.ts: every builder renders to an SVG carrying its titles, PNGs have
 * the PNG signature, writeChart writes both files; charts fit the report page, facets keep the
 * caller's order without empty slots, epoch ticks are integers, each score has one colour.
 */
import {
  barChartWithCI,
  type ChartSpec,
  gridColumns,
  heatmapChart,
  hexbinChart,
  lineChart,
  MAX_CHART_WIDTH,
  renderChart,
  SCORE_COLORS,
  scoreColorScale,
  svgToPng,
  writeChart,
} from "../../src/report/plot.ts";
import { SCORE_NAMES } from "../../src/analysis/summary.ts";
import { freshSeed, Rng } from "../../src/testing/mod.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}
const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
function isPng(b: Uint8Array): boolean {
  return b.length > 100 && PNG_MAGIC.every((v, i) => b[i] === v);
}
function textOf(svg: string): string {
  return svg.replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">");
}

Deno.test("plot builders render to SVG with their titles; PNG has the signature", async () => {
  const rng = new Rng(freshSeed());
  const w = rng.normal(500, 0.1);
  const pts = Array.from(w, (v, i) => ({
    x: v,
    y: v * v + 0.001 * rng.next(),
    facet: i % 2 ? "fc1" : "fc2",
  }));
  const hex = hexbinChart(pts, { logX: true, logY: true, xTitle: "|w|", yTitle: "Δloss" });
  const bars = barChartWithCI([
    { x: "relu", y: 0.7, lo: 0.6, hi: 0.8, group: "magnitude" },
    { x: "relu", y: 0.3, lo: 0.2, hi: 0.4, group: "snip" },
    { x: "tanh", y: 0.5, lo: 0.45, hi: 0.55, group: "magnitude" },
  ], { yTitle: "Spearman rho", xTitle: "activation" });
  const lines = lineChart([
    { x: 0.1, y: 0.95, series: "magnitude", facet: "relu", lo: 0.94, hi: 0.96 },
    { x: 0.5, y: 0.9, series: "magnitude", facet: "relu", lo: 0.88, hi: 0.92 },
    { x: 0.1, y: 0.9, series: "random", facet: "tanh" },
    { x: 0.5, y: 0.5, series: "random", facet: "tanh" },
  ], { xTitle: "fraction removed", yTitle: "test accuracy" });
  const heat = heatmapChart([
    { row: "relu", col: "none", value: 0.97, label: "0.970 ± 0.004" },
    { row: "relu", col: "batch", value: 0.95 },
    { row: "tanh", col: "none", value: NaN },
  ], { xTitle: "normalization", yTitle: "activation", valueTitle: "accuracy" });
  const want: [string, unknown, string[]][] = [
    ["hexbin", hex, ["log10 |w|", "log10 Δloss", "fc1", "fc2", "count"]],
    ["bars", bars, ["Spearman rho", "activation", "magnitude", "snip", "tanh"]],
    ["lines", lines, ["fraction removed", "test accuracy", "relu", "tanh", "random"]],
    ["heat", heat, ["normalization", "activation", "0.970 ± 0.004", "0.950", "n/a", "batch"]],
  ];
  for (const [name, spec, texts] of want) {
    const { svg } = await renderChart(spec as Parameters<typeof renderChart>[0]);
    assert(svg.startsWith("<svg"), `${name}: starts with <svg`);
    const t = textOf(svg);
    for (const s of texts) assert(t.includes(`>${s}<`), `${name}: SVG has text "${s}"`);
    assert(!t.includes(">NaN<"), `${name}: no NaN labels`);
  }
  const { svg } = await renderChart(heat);
  const png = await svgToPng(svg, { width: 300 });
  assert(isPng(png), "PNG magic");
  // IHDR width (big-endian at byte 16) honors the requested width.
  const width = new DataView(png.buffer, png.byteOffset).getUint32(16);
  assert(width === 300, `PNG width ${width}`);
});

Deno.test("writeChart writes .svg and .png atomically, no temp files left", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { svg } = await writeChart(lineChart([{ x: 1, y: 2, series: "a" }]), `${dir}/c`);
    assert((await Deno.readTextFile(`${dir}/c.svg`)) === svg, "svg content");
    assert(isPng(await Deno.readFile(`${dir}/c.png`)), "png content");
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert(names.join() === "c.png,c.svg", `files: ${names}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The width attribute of a rendered SVG. */
function svgWidth(svg: string): number {
  return Number(/<svg[^>]*\swidth="([\d.]+)"/.exec(svg)![1]);
}

Deno.test("every builder stays within MAX_CHART_WIDTH on many bars, facets and long labels", async () => {
  const scores = Object.keys(SCORE_COLORS);
  const groups = ["relu", "tanh", "sigmoid"].flatMap((a) =>
    ["none", "batch", "layer", "rms"].map((n) => `activation=${a}, norm=${n}, method=set`)
  );
  const rng = new Rng(freshSeed());
  const bar = (g: string[], s: string[]) =>
    g.flatMap((x) =>
      s.map((group) => {
        const y = rng.next();
        return { x, y, lo: y - 0.1, hi: y + 0.1, group };
      })
    );
  const specs: [string, ChartSpec][] = [
    ["8 groups × 8 scores", barChartWithCI(bar(groups.slice(0, 8), scores.slice(0, 8)))],
    ["12 groups × 13 scores (panels)", barChartWithCI(bar(groups, scores))],
    [
      "40 ungrouped bars",
      barChartWithCI(groups.concat(groups, groups).map((x, i) => ({ x: `${x} ${i}`, y: i }))),
    ],
    [
      "12 facets of curves",
      lineChart(
        groups.flatMap((f) =>
          ["magnitude", "random"].flatMap((series) =>
            [0.1, 0.5, 0.9].map((x) => ({ x, y: rng.next(), series, facet: f, lo: 0, hi: 1 }))
          )
        ),
      ),
    ],
    [
      "12 learning curves",
      lineChart(groups.flatMap((series) => [1, 2].map((x) => ({ x, y: rng.next(), series }))), {
        integerX: true,
      }),
    ],
    [
      "hexbin of 12 layers",
      hexbinChart(
        Array.from({ length: 1200 }, (_, i) => ({
          x: rng.next(),
          y: rng.next() - 0.5,
          facet: `layer ${i % 12}`,
        })),
        { symlogY: 1e-5 },
      ),
    ],
    [
      "12 × 12 heatmap",
      heatmapChart(
        groups.flatMap((row) => groups.map((col) => ({ row, col, value: rng.next() }))),
      ),
    ],
  ];
  for (const [name, spec] of specs) {
    const w = svgWidth((await renderChart(spec)).svg);
    assert(w <= MAX_CHART_WIDTH, `${name}: ${w} px wide > ${MAX_CHART_WIDTH}`);
  }
});

Deno.test("facets follow the caller's order and fill the grid; every panel has its axes", async () => {
  const order = ["fc1", "fc2", "out", "global"];
  const pts = order.flatMap((facet) =>
    [0.1, 0.9].map((x) => ({ x, y: 1 - x, series: "magnitude", facet }))
  );
  const spec = lineChart(pts, { xTitle: "fraction removed" }) as unknown as {
    facet: { sort: string[] };
    columns: number;
  };
  assert(spec.facet.sort.join() === order.join(), `facet order ${spec.facet.sort}`);
  assert(spec.columns === 2, `4 panels in ${spec.columns} columns (want 2 × 2, no empty slot)`);
  const t = textOf((await renderChart(spec as unknown as ChartSpec)).svg);
  const at = order.map((f) => t.indexOf(`>${f}<`));
  assert(at.every((v, i) => v >= 0 && (i === 0 || v > at[i - 1])), `panel order in SVG: ${at}`);
  const titles = t.split(">fraction removed<").length - 1;
  assert(titles === 4, `an x axis under each of the 4 panels, found ${titles}`);
  assert(
    gridColumns(4, 330) === 2 && gridColumns(6, 330) === 3 && gridColumns(2, 330) === 2,
    "grid",
  );
  assert(gridColumns(5, 330) === 3, "5 panels: 3 + 2");
});

Deno.test("integerX puts epoch ticks on integers only", async () => {
  const spec = lineChart([1, 2].flatMap((x) => [{ x, y: 0.5 * x, series: "a" }]), {
    integerX: true,
    xTitle: "epoch",
  });
  const t = textOf((await renderChart(spec)).svg);
  const ticks = [
    ...t.matchAll(/text-anchor="[a-z]+" transform="translate\([\d.]+,16\)"[^>]*>([^<]+)</g),
  ]
    .map((m) => m[1]);
  assert(ticks.length >= 2, `x tick labels: ${ticks}`);
  for (const v of ticks) assert(/^\d+$/.test(v), `non-integer epoch tick "${v}" in ${ticks}`);
});

Deno.test("one colour per score: the table covers every score, distinct, used by bars and lines", async () => {
  for (const s of [...SCORE_NAMES, "magnitude-desc"]) {
    assert(s in SCORE_COLORS, `${s} has no colour`);
  }
  const colours = Object.values(SCORE_COLORS);
  assert(new Set(colours).size === colours.length, "colours are distinct");
  // The same score gets the same colour whatever the other scores in the chart.
  const bars = barChartWithCI([
    { x: "a", y: 0.5, group: "snip" },
    { x: "a", y: 0.7, group: "magnitude" },
  ]);
  const lines = lineChart([
    { x: 0, y: 1, series: "random" },
    { x: 1, y: 0, series: "random" },
    { x: 0, y: 1, series: "magnitude" },
    { x: 1, y: 1, series: "magnitude" },
  ]);
  const b = (await renderChart(bars)).svg, l = (await renderChart(lines)).svg;
  assert(
    new RegExp(`group: magnitude"[^>]*fill="${SCORE_COLORS.magnitude}"`).test(b),
    "magnitude bar in its colour",
  );
  assert(
    new RegExp(`series: magnitude"[^>]*stroke="${SCORE_COLORS.magnitude}"`).test(l),
    "magnitude line in its colour",
  );
  assert(scoreColorScale(["relu"]) === undefined, "non-scores keep the default scheme");
});

Deno.test("symlogY labels the axis in the original units", async () => {
  const rng = new Rng(freshSeed());
  const pts = Array.from({ length: 400 }, () => ({
    x: rng.next() + 0.01,
    y: (rng.next() - 0.5) * 10 ** (-6 * rng.next()),
  }));
  const t = textOf(
    (await renderChart(hexbinChart(pts, { logX: true, symlogY: 1e-5, yTitle: "loss change" })))
      .svg,
  );
  assert(/>-?\de-\d</.test(t), "labels like 3e-4");
  assert(t.includes(">loss change<") && !t.includes("log10 loss change"), "plain y title");
});
