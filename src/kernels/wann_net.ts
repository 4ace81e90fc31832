/**
 * The expressed form of a weight-agnostic network (what the WANN evaluator runs) and its packed,
 * population-wide CSR layout shared by the GPU kernels (wann.ts) and the float64 reference
 * (wann_ref.ts).
 *
 * A network has `features` inputs, a bias node and a list of *computed* nodes in topological
 * order: the hidden nodes first, the `outputs` output nodes last. Each computed node lists its
 * incoming edges by source id: `0` is the bias (value 1), `1..features` an input, and
 * `features + 1 + k` the computed node `k` of the same network, which must come earlier
 * (`k` < the node's own index). Every edge carries the shared weight.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packNets, WANN_ACT } from "./wann_net.ts";
 * // 2 inputs, 1 hidden tanh node fed by both inputs, 1 linear output fed by the hidden node and the bias.
 * const packed = packNets([{
 *   features: 2,
 *   outputs: 1,
 *   act: [WANN_ACT.tanh, WANN_ACT.linear],
 *   incoming: [[1, 2], [3, 0]],
 * }]);
 * assert.deepEqual(packed.nodes, 2);
 * assert.deepEqual(packed.edges, 4);
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";

/** WANN activation ids, numbered as in the reference code (`applyAct` in wann_src/ind.py). */
export const WANN_ACT = {
  linear: 1,
  step: 2,
  sin: 3,
  gauss: 4,
  tanh: 5,
  sigmoid: 6,
  inverse: 7,
  abs: 8,
  relu: 9,
  cos: 10,
} as const;

/** An activation name. */
export type WannActName = keyof typeof WANN_ACT;

/** Activation names by id (index 0 unused). */
export const WANN_ACT_NAMES: readonly string[] = [
  "",
  ...Object.keys(WANN_ACT),
];

/** The ten activations as a table (id, name, float64 function): one row per activation. */
export const WANN_ACTIVATIONS: readonly {
  id: number;
  name: WannActName;
  f: (v: number) => number;
}[] = [
  { id: 1, name: "linear", f: (v) => v },
  { id: 2, name: "step", f: (v) => (v > 0 ? 1 : 0) },
  { id: 3, name: "sin", f: (v) => Math.sin(Math.PI * v) },
  { id: 4, name: "gauss", f: (v) => Math.exp(-0.5 * v * v) },
  { id: 5, name: "tanh", f: (v) => Math.tanh(v) },
  { id: 6, name: "sigmoid", f: (v) => 0.5 * (Math.tanh(0.5 * v) + 1) },
  { id: 7, name: "inverse", f: (v) => -v },
  { id: 8, name: "abs", f: (v) => Math.abs(v) },
  { id: 9, name: "relu", f: (v) => (v > 0 ? v : 0) },
  { id: 10, name: "cos", f: (v) => Math.cos(Math.PI * v) },
];

/** One expressed network. */
export interface WannNet {
  /** Inputs (not counting the bias). */
  features: number;
  /** Output nodes: the last `outputs` computed nodes. */
  outputs: number;
  /** Activation id per computed node (hidden nodes in topological order, then the outputs). */
  act: ArrayLike<number>;
  /** Source ids of the incoming edges of each computed node. */
  incoming: ArrayLike<number>[];
}

/** A population of networks in CSR form (all networks share `features` and `outputs`). */
export interface PackedNets {
  features: number;
  outputs: number;
  /** Number of networks. */
  nets: number;
  /** Computed nodes in all networks. */
  nodes: number;
  /** Edges in all networks. */
  edges: number;
  /** `nets + 1` offsets: network n owns computed nodes `netNode[n] .. netNode[n+1]-1`. */
  netNode: Uint32Array;
  /** `nodes + 1` offsets into `edgeSrc`. */
  nodePtr: Uint32Array;
  /** Activation id per computed node. */
  nodeAct: Uint32Array;
  /** Source id per edge (see the module comment). */
  edgeSrc: Uint32Array;
}

/** Per-network work of one evaluator invocation: computed nodes plus edges (its loop trips). */
export function netTrips(p: PackedNets, n: number): number {
  const a = p.netNode[n], b = p.netNode[n + 1];
  return b - a + p.nodePtr[b] - p.nodePtr[a];
}

/**
 * Packs networks into one CSR population, checking that each is a valid feed-forward DAG in the
 * stated order; a violation is a one-line {@link FiligreeError}.
 */
export function packNets(nets: readonly WannNet[]): PackedNets {
  if (nets.length === 0) throw new FiligreeError("packNets: no networks");
  const { features, outputs } = nets[0];
  let nodes = 0, edges = 0;
  nets.forEach((net, n) => {
    if (net.features !== features || net.outputs !== outputs) {
      throw new FiligreeError(
        `packNets: network ${n} has ${net.features} inputs / ${net.outputs} outputs, network 0 has ${features} / ${outputs}`,
      );
    }
    if (net.act.length !== net.incoming.length || net.act.length < outputs || outputs < 1) {
      throw new FiligreeError(
        `packNets: network ${n} has ${net.act.length} activations, ${net.incoming.length} node edge lists and ${outputs} outputs`,
      );
    }
    nodes += net.act.length;
    for (const inc of net.incoming) edges += inc.length;
  });
  const netNode = new Uint32Array(nets.length + 1);
  const nodePtr = new Uint32Array(nodes + 1);
  const nodeAct = new Uint32Array(nodes);
  const edgeSrc = new Uint32Array(edges);
  let k = 0, e = 0;
  nets.forEach((net, n) => {
    netNode[n] = k;
    for (let j = 0; j < net.act.length; j++, k++) {
      const a = net.act[j];
      if (!(Number.isInteger(a) && a >= 1 && a <= 10)) {
        throw new FiligreeError(
          `packNets: network ${n} node ${j}: activation id ${a} not in 1..10`,
        );
      }
      nodeAct[k] = a;
      nodePtr[k] = e;
      for (let t = 0; t < net.incoming[j].length; t++) {
        const s = net.incoming[j][t];
        if (!(Number.isInteger(s) && s >= 0 && s < features + 1 + j)) {
          throw new FiligreeError(
            `packNets: network ${n} node ${j}: source ${s} is not the bias, an input or an earlier node`,
          );
        }
        if (s > features && s - features - 1 >= net.act.length - outputs) {
          throw new FiligreeError(`packNets: network ${n} node ${j}: an output node feeds a node`);
        }
        edgeSrc[e++] = s;
      }
    }
  });
  netNode[nets.length] = k;
  nodePtr[nodes] = e;
  return { features, outputs, nets: nets.length, nodes, edges, netNode, nodePtr, nodeAct, edgeSrc };
}
