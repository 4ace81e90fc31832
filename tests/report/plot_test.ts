/**
 * Tests of src/report/plot.ts: every builder renders to an SVG carrying its titles, PNGs have
 * the PNG signature, writeChart writes both files.
 */
import {
  barChartWithCI,
  heatmapChart,
  hexbinChart,
  lineChart,
  renderChart,
  svgToPng,
  writeChart,
} from "../../src/report/plot.ts";
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
