/**
 * Pictures of a WANN run: the champion network as hand-written SVG (nodes placed in layers by
 * longest path from the inputs, coloured by activation; inputs drawn as a 16x16 grid for image
 * tasks), the champion's accuracy at each shared weight, and accuracy against evaluations.
 * PNGs through src/report/plot.ts (resvg).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { networkSvg } from "./render.ts";
 * const svg = networkSvg({ features: 2, outputs: 1, act: [5, 1], incoming: [[1, 2], [0, 3]] });
 * assert.ok(svg.startsWith("<svg"));
 * ```
 * @module
 */
import type { WannNet } from "../kernels/wann_net.ts";
import { WANN_ACT_NAMES } from "../kernels/wann_net.ts";
import { type ChartSpec, lineChart, svgToPng, writeChart } from "../report/plot.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import type { GenRecord, TestStats } from "./search.ts";

/** One colour per activation id (index 0: inputs and bias). */
export const ACT_COLORS = [
  "#999999",
  "#4c4c4c", // linear
  "#8c564b", // step
  "#1f77b4", // sin
  "#2ca02c", // gauss
  "#ff7f0e", // tanh
  "#d62728", // sigmoid
  "#9467bd", // inverse
  "#e377c2", // abs
  "#17becf", // relu
  "#bcbd22", // cos
];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** The network as SVG (see the module comment). */
export function networkSvg(net: WannNet, opts: { title?: string } = {}): string {
  const F = net.features, K = net.act.length;
  const grid = Math.sqrt(F);
  const image = Number.isInteger(grid) && F >= 16;
  // Layer of each computed node: 1 + the deepest source (inputs/bias are layer 0); outputs last.
  const layer = new Array<number>(K).fill(1);
  for (let k = 0; k < K; k++) {
    for (const s of Array.from(net.incoming[k])) {
      if (s > F) layer[k] = Math.max(layer[k], layer[s - F - 1] + 1);
    }
  }
  const hiddenLayers = Math.max(0, ...layer.slice(0, K - net.outputs));
  for (let o = K - net.outputs; o < K; o++) layer[o] = hiddenLayers + 1;
  const cols = hiddenLayers + 2;
  const inputW = image ? 200 : 60;
  const colW = 110, H = Math.max(420, 16 * Math.max(...countBy(layer)) + 80);
  const W = inputW + 60 + colW * (cols - 1) + 100;
  const pos: [number, number][] = []; // computed node positions
  const byLayer = new Map<number, number[]>();
  layer.forEach((l, k) => byLayer.set(l, [...(byLayer.get(l) ?? []), k]));
  for (const [l, ks] of byLayer) {
    ks.forEach((k, i) => {
      pos[k] = [inputW + 60 + colW * (l - 1) + 40, 50 + ((i + 0.5) * (H - 80)) / ks.length];
    });
  }
  const srcPos = (s: number): [number, number] => {
    if (s === 0) return [inputW / 2, H - 20];
    if (s <= F) {
      if (image) {
        const cell = inputW / grid, r = Math.floor((s - 1) / grid), c = (s - 1) % grid;
        return [10 + c * cell + cell / 2, 40 + r * cell + cell / 2];
      }
      return [30, 50 + ((s - 0.5) * (H - 120)) / F];
    }
    return pos[s - F - 1];
  };
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${
      H + 40
    }" font-family="DejaVu Sans, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  );
  if (opts.title) parts.push(`<text x="10" y="18" font-size="13">${esc(opts.title)}</text>`);
  if (image) {
    const cell = inputW / grid;
    const used = new Set<number>();
    for (const inc of net.incoming) {
      for (const s of Array.from(inc)) if (s >= 1 && s <= F) used.add(s);
    }
    for (let i = 1; i <= F; i++) {
      const [x, y] = srcPos(i);
      parts.push(
        `<rect x="${x - cell / 2}" y="${y - cell / 2}" width="${cell}" height="${cell}" fill="${
          used.has(i) ? "#666" : "#eee"
        }" stroke="white" stroke-width="0.5"/>`,
      );
    }
  } else {
    for (let i = 1; i <= F; i++) {
      const [x, y] = srcPos(i);
      parts.push(`<circle cx="${x}" cy="${y}" r="5" fill="${ACT_COLORS[0]}"/>`);
    }
  }
  const [bx, by] = srcPos(0);
  parts.push(
    `<circle cx="${bx}" cy="${by}" r="6" fill="white" stroke="black"/><text x="${bx + 9}" y="${
      by + 4
    }">bias</text>`,
  );
  for (let k = 0; k < K; k++) {
    for (const s of Array.from(net.incoming[k])) {
      const [x1, y1] = srcPos(s), [x2, y2] = pos[k];
      parts.push(
        `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${
          y2.toFixed(1)
        }" stroke="#000" stroke-opacity="0.15" stroke-width="0.7"/>`,
      );
    }
  }
  for (let k = 0; k < K; k++) {
    const [x, y] = pos[k];
    const out = k >= K - net.outputs;
    parts.push(
      `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${out ? 7 : 5.5}" fill="${
        ACT_COLORS[net.act[k]]
      }" stroke="black" stroke-width="${out ? 1.2 : 0.4}"/>`,
    );
    if (out) {
      parts.push(
        `<text x="${(x + 11).toFixed(1)}" y="${(y + 4).toFixed(1)}">${
          k - (K - net.outputs)
        }</text>`,
      );
    }
  }
  // Legend: activations present.
  const present = [...new Set(Array.from(net.act))].sort((a, b) => a - b);
  present.forEach((a, i) => {
    const x = 10 + i * 80, y = H + 25;
    parts.push(
      `<circle cx="${x + 6}" cy="${y - 4}" r="5" fill="${ACT_COLORS[a]}"/><text x="${
        x + 14
      }" y="${y}">${WANN_ACT_NAMES[a]}</text>`,
    );
  });
  parts.push(`</svg>`);
  return parts.join("\n");
}

function countBy(a: number[]): number[] {
  const m = new Map<number, number>();
  for (const v of a) m.set(v, (m.get(v) ?? 0) + 1);
  return [...m.values(), 1];
}

/** Writes `base.svg` and `base.png` of the network. */
export async function writeNetwork(net: WannNet, base: string, title?: string): Promise<void> {
  const svg = networkSvg(net, { title });
  await writeFileAtomic(`${base}.svg`, svg);
  await writeFileAtomic(`${base}.png`, await svgToPng(svg, { width: 1200 }));
}

/** Test accuracy of the champion at each shared weight, with the ensemble as a line. */
export function accuracyVsWeightChart(t: TestStats, weights: readonly number[]): ChartSpec {
  const pts = weights.map((w, i) => ({ x: w, y: t.acc[i], series: "single shared weight" }));
  for (const w of [Math.min(...weights), Math.max(...weights)]) {
    pts.push({ x: w, y: t.ensemble, series: "ensemble (vote over weights)" });
  }
  return lineChart(pts, {
    xTitle: "shared weight",
    yTitle: "test accuracy",
    title: "WANN champion: accuracy vs shared weight",
  });
}

/** Champion test accuracy (mean over weights, best weight, ensemble) against evaluations. */
export function accuracyVsEvaluationsChart(h: readonly GenRecord[]): ChartSpec {
  const pts = [];
  for (const r of h) {
    if (!r.test) continue;
    pts.push({
      x: r.evaluations,
      y: r.test.meanAcc,
      series: "mean over weights",
      lo: r.test.meanAcc - r.test.sdAcc,
      hi: Math.min(1, r.test.meanAcc + r.test.sdAcc),
    });
    pts.push({ x: r.evaluations, y: r.test.bestAcc, series: "best single weight" });
    pts.push({ x: r.evaluations, y: r.test.ensemble, series: "ensemble" });
  }
  return lineChart(pts, {
    xTitle: "networks evaluated",
    yTitle: "champion test accuracy",
    title: "WANN search progress",
  });
}

/** Writes the three pictures of a run into `dir`. */
export async function writeRunPictures(
  dir: string,
  net: WannNet,
  history: readonly GenRecord[],
  weights: readonly number[],
  title: string,
): Promise<void> {
  await writeNetwork(net, `${dir}/champion`, title);
  const last = [...history].reverse().find((r) => r.test);
  if (last?.test) {
    await writeChart(accuracyVsWeightChart(last.test, weights), `${dir}/accuracy_vs_weight`);
  }
  if (history.some((r) => r.test)) {
    await writeChart(accuracyVsEvaluationsChart(history), `${dir}/accuracy_vs_evaluations`);
  }
}
