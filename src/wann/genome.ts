/**
 * WANN genomes: node genes (bias, inputs, outputs, hidden nodes with an activation) and connection
 * genes (innovation number, source, destination, enabled). All connection genes, enabled or not,
 * form a DAG, so enabling any of them keeps the network feed-forward. A genome is expressed
 * (topologically sorted, enabled edges only, dead hidden nodes dropped) into the
 * {@link WannNet} the GPU evaluator runs.
 *
 * Node ids: 0 bias, `1..features` inputs, `features+1..features+outputs` outputs, then hidden
 * nodes. The initial connection `src -> output o` has innovation number `o·(features+1) + src`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DataRng } from "../data/random.ts";
 * import { expressGenome, initialGenome } from "./genome.ts";
 * const g = initialGenome({ features: 3, outputs: 2, outputAct: 1 }, new DataRng(1), 1);
 * assert.deepEqual(g.conns.length, 8);
 * assert.deepEqual(expressGenome(g).incoming[0].length, 4);
 * ```
 * @module
 */
import type { DataRng } from "../data/random.ts";
import { FiligreeError } from "../gpu/errors.ts";
import type { WannNet } from "../kernels/wann_net.ts";

/** Node roles. */
export type NodeKind = "bias" | "input" | "output" | "hidden";

/** A node gene. */
export interface NodeGene {
  id: number;
  kind: NodeKind;
  /** WANN activation id (1..10); inputs and bias carry 1. */
  act: number;
}

/** A connection gene. */
export interface ConnGene {
  innov: number;
  src: number;
  dst: number;
  enabled: boolean;
}

/** A genome. */
export interface Genome {
  nodes: NodeGene[];
  conns: ConnGene[];
}

/** What every genome of a task shares. */
export interface GenomeShape {
  features: number;
  outputs: number;
  /** Activation of the output nodes (linear for classification: a softmax follows). */
  outputAct: number;
}

/** The shape of a genome (read from its node genes). */
export function shapeOf(g: Genome): { features: number; outputs: number } {
  let features = 0, outputs = 0;
  for (const n of g.nodes) {
    if (n.kind === "input") features++;
    else if (n.kind === "output") outputs++;
  }
  return { features, outputs };
}

/**
 * The initial genome: every bias/input -> output connection present, each enabled with
 * probability `probEnable` (the reference's `prob_initEnable`).
 */
export function initialGenome(shape: GenomeShape, rng: DataRng, probEnable: number): Genome {
  const { features, outputs } = shape;
  const nodes: NodeGene[] = [{ id: 0, kind: "bias", act: 1 }];
  for (let i = 1; i <= features; i++) nodes.push({ id: i, kind: "input", act: 1 });
  for (let o = 0; o < outputs; o++) {
    nodes.push({ id: features + 1 + o, kind: "output", act: shape.outputAct });
  }
  const conns: ConnGene[] = [];
  for (let o = 0; o < outputs; o++) {
    for (let s = 0; s <= features; s++) {
      conns.push({
        innov: o * (features + 1) + s,
        src: s,
        dst: features + 1 + o,
        enabled: rng.next() < probEnable,
      });
    }
  }
  return { nodes, conns };
}

/** Deep copy. */
export function cloneGenome(g: Genome): Genome {
  return { nodes: g.nodes.map((n) => ({ ...n })), conns: g.conns.map((c) => ({ ...c })) };
}

/** Enabled connections. */
export function enabledCount(g: Genome): number {
  let n = 0;
  for (const c of g.conns) if (c.enabled) n++;
  return n;
}

/**
 * Node ids in a topological order of *all* connection genes: bias, inputs, hidden nodes (Kahn's
 * algorithm, ties by id), outputs. Throws if the connections have a cycle.
 */
export function topoOrder(g: Genome): number[] {
  const hidden = g.nodes.filter((n) => n.kind === "hidden").map((n) => n.id).sort((a, b) => a - b);
  const indeg = new Map<number, number>(hidden.map((h) => [h, 0]));
  const out = new Map<number, number[]>();
  for (const c of g.conns) {
    if (indeg.has(c.dst) && indeg.has(c.src)) {
      indeg.set(c.dst, indeg.get(c.dst)! + 1);
      const l = out.get(c.src) ?? [];
      l.push(c.dst);
      out.set(c.src, l);
    }
  }
  // Ready hidden nodes, kept sorted so the order depends on ids only.
  const ready = hidden.filter((h) => indeg.get(h) === 0);
  const order: number[] = [];
  while (ready.length) {
    const h = ready.shift()!;
    order.push(h);
    for (const d of out.get(h) ?? []) {
      const k = indeg.get(d)! - 1;
      indeg.set(d, k);
      if (k === 0) {
        let i = 0;
        while (i < ready.length && ready[i] < d) i++;
        ready.splice(i, 0, d);
      }
    }
  }
  if (order.length !== hidden.length) throw new FiligreeError("genome: connections form a cycle");
  const first = g.nodes.filter((n) => n.kind === "bias" || n.kind === "input").map((n) => n.id);
  const outs = g.nodes.filter((n) => n.kind === "output").map((n) => n.id);
  return [...first.sort((a, b) => a - b), ...order, ...outs.sort((a, b) => a - b)];
}

/**
 * Checks the genome invariants: unique node ids and innovation numbers, one gene per
 * (source, destination), sources not outputs, destinations hidden or outputs, known nodes,
 * hidden activations in 1..10, and no cycle. Throws a {@link FiligreeError} naming the problem.
 */
export function validateGenome(g: Genome): void {
  const kind = new Map<number, NodeKind>();
  for (const n of g.nodes) {
    if (kind.has(n.id)) throw new FiligreeError(`genome: duplicate node id ${n.id}`);
    kind.set(n.id, n.kind);
    if (!(Number.isInteger(n.act) && n.act >= 1 && n.act <= 10)) {
      throw new FiligreeError(`genome: node ${n.id} has activation ${n.act}`);
    }
  }
  const innovs = new Set<number>(), pairs = new Set<string>();
  for (const c of g.conns) {
    if (innovs.has(c.innov)) throw new FiligreeError(`genome: duplicate innovation ${c.innov}`);
    innovs.add(c.innov);
    const key = `${c.src},${c.dst}`;
    if (pairs.has(key)) throw new FiligreeError(`genome: two genes for edge ${key}`);
    pairs.add(key);
    const ks = kind.get(c.src), kd = kind.get(c.dst);
    if (ks === undefined || kd === undefined) {
      throw new FiligreeError(`genome: edge ${key} to an unknown node`);
    }
    if (ks === "output") throw new FiligreeError(`genome: edge ${key} leaves an output`);
    if (kd !== "hidden" && kd !== "output") {
      throw new FiligreeError(`genome: edge ${key} enters a ${kd} node`);
    }
  }
  topoOrder(g);
}

/**
 * The network the evaluator runs: enabled edges only, hidden nodes in topological order, outputs
 * last; hidden nodes from which no output can be reached through enabled edges are dropped
 * (they cannot change an output).
 */
export function expressGenome(g: Genome): WannNet & { nodeIds: number[] } {
  const { features, outputs } = shapeOf(g);
  const order = topoOrder(g);
  const node = new Map(g.nodes.map((n) => [n.id, n]));
  const enabled = g.conns.filter((c) => c.enabled);
  // Live: can reach an output through enabled edges (walk the order backwards).
  const live = new Set<number>(g.nodes.filter((n) => n.kind === "output").map((n) => n.id));
  const outs = new Map<number, number[]>();
  for (const c of enabled) {
    const l = outs.get(c.src) ?? [];
    l.push(c.dst);
    outs.set(c.src, l);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const id = order[i];
    if (node.get(id)!.kind === "hidden" && (outs.get(id) ?? []).some((d) => live.has(d))) {
      live.add(id);
    }
  }
  const computed = order.filter((id) => {
    const k = node.get(id)!.kind;
    return k === "output" || (k === "hidden" && live.has(id));
  });
  const srcId = new Map<number, number>();
  srcId.set(0, 0);
  for (const n of g.nodes) if (n.kind === "input") srcId.set(n.id, n.id);
  computed.forEach((id, k) => srcId.set(id, features + 1 + k));
  const incoming: number[][] = computed.map(() => []);
  const at = new Map(computed.map((id, k) => [id, k]));
  for (const c of enabled) {
    const k = at.get(c.dst);
    const s = srcId.get(c.src);
    if (k !== undefined && s !== undefined) incoming[k].push(s);
  }
  for (const l of incoming) l.sort((a, b) => a - b);
  return {
    features,
    outputs,
    act: computed.map((id) => node.get(id)!.act),
    incoming,
    nodeIds: computed,
  };
}
