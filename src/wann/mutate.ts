/**
 * WANN mutations (one per child, chosen by roulette as in the reference's `_variation.py`):
 * add a feed-forward connection, add a node by splitting an enabled connection (random
 * activation), re-enable a disabled connection, change a hidden node's activation. An operator
 * that cannot apply to a genome (no disabled edge to enable, ...) drops out of the roulette.
 *
 * {@link Innovations} hands out innovation numbers: the same (source, destination) gets the same
 * number everywhere in a run, and splitting the same connection gives the same new node id
 * (unless the genome already has that node, then a fresh one).
 *
 * @example
 * ```ts
 * import { DataRng } from "../data/random.ts";
 * import { initialGenome, validateGenome } from "./genome.ts";
 * import { Innovations, mutate } from "./mutate.ts";
 * const shape = { features: 4, outputs: 2, outputAct: 1 };
 * const innov = Innovations.start(shape);
 * const rng = new DataRng(3);
 * let g = initialGenome(shape, rng, 0.5);
 * for (let i = 0; i < 20; i++) g = mutate(g, rng, innov).child;
 * validateGenome(g); // still a DAG with unique innovation numbers
 * ```
 * @module
 */
import type { DataRng } from "../data/random.ts";
import { cloneGenome, type Genome, type GenomeShape, topoOrder } from "./genome.ts";

/** Roulette weights of the four mutations (the reference's defaults). */
export interface MutationProbs {
  addConn: number;
  addNode: number;
  enable: number;
  mutAct: number;
}

/** Defaults of the reference code (`prob_addConn` 0.2, `prob_addNode` 0.25, `prob_enable` 0.05, `prob_mutAct` 0.5). */
export const DEFAULT_MUTATION: MutationProbs = {
  addConn: 0.2,
  addNode: 0.25,
  enable: 0.05,
  mutAct: 0.5,
};

/** The hidden activation pool of the reference's MNIST task: every id but step (2). */
export const MNIST_HIDDEN_ACTS: readonly number[] = [1, 3, 4, 5, 6, 7, 8, 9, 10];

/** Run-wide innovation record (serialisable for checkpoints). */
export class Innovations {
  constructor(
    public nextInnov: number,
    public nextNode: number,
    readonly conns: Map<string, number> = new Map(),
    readonly splits: Map<number, number> = new Map(),
  ) {}

  /** The record right after the initial population of `shape`. */
  static start(shape: GenomeShape): Innovations {
    const r = new Innovations(
      (shape.features + 1) * shape.outputs,
      shape.features + shape.outputs + 1,
    );
    for (let o = 0; o < shape.outputs; o++) {
      for (let s = 0; s <= shape.features; s++) {
        r.conns.set(`${s},${shape.features + 1 + o}`, o * (shape.features + 1) + s);
      }
    }
    return r;
  }

  /** Innovation number of the edge src -> dst. */
  conn(src: number, dst: number): number {
    const key = `${src},${dst}`;
    let i = this.conns.get(key);
    if (i === undefined) {
      i = this.nextInnov++;
      this.conns.set(key, i);
    }
    return i;
  }

  /** Node id for splitting connection `innov` in a genome whose node ids are `has`. */
  splitNode(innov: number, has: (id: number) => boolean): number {
    const id = this.splits.get(innov);
    if (id !== undefined && !has(id)) return id;
    const fresh = this.nextNode++;
    if (id === undefined) this.splits.set(innov, fresh);
    return fresh;
  }

  /** Plain JSON form. */
  toJSON(): {
    nextInnov: number;
    nextNode: number;
    conns: [string, number][];
    splits: [number, number][];
  } {
    return {
      nextInnov: this.nextInnov,
      nextNode: this.nextNode,
      conns: [...this.conns],
      splits: [...this.splits],
    };
  }

  /** Inverse of {@link Innovations.toJSON}. */
  static fromJSON(j: ReturnType<Innovations["toJSON"]>): Innovations {
    return new Innovations(j.nextInnov, j.nextNode, new Map(j.conns), new Map(j.splits));
  }
}

/** Mutation names, in roulette order. */
export const MUTATIONS = ["addConn", "addNode", "enable", "mutAct"] as const;
/** A mutation name. */
export type MutationName = typeof MUTATIONS[number];

type Op = (g: Genome, rng: DataRng, innov: Innovations, acts: readonly number[]) => boolean;

/** A connection from an earlier to a later node of the topological order, not already present. */
const addConn: Op = (g, rng, innov) => {
  const order = topoOrder(g);
  const pos = new Map(order.map((id, i) => [id, i]));
  const kind = new Map(g.nodes.map((n) => [n.id, n.kind]));
  const has = new Set(g.conns.map((c) => `${c.src},${c.dst}`));
  const dsts = order.filter((id) => kind.get(id) === "hidden" || kind.get(id) === "output");
  while (dsts.length) {
    const d = dsts.splice(rng.int(dsts.length), 1)[0];
    const srcs = order.slice(0, pos.get(d)).filter((s) =>
      kind.get(s) !== "output" && !has.has(`${s},${d}`)
    );
    if (srcs.length) {
      const s = srcs[rng.int(srcs.length)];
      g.conns.push({ innov: innov.conn(s, d), src: s, dst: d, enabled: true });
      return true;
    }
  }
  return false;
};

/** Splits an enabled connection: src -> new -> dst, the old one disabled. */
const addNode: Op = (g, rng, innov, acts) => {
  const on = g.conns.filter((c) => c.enabled);
  if (!on.length) return false;
  const c = on[rng.int(on.length)];
  const ids = new Set(g.nodes.map((n) => n.id));
  const id = innov.splitNode(c.innov, (x) => ids.has(x));
  c.enabled = false;
  g.nodes.push({ id, kind: "hidden", act: acts[rng.int(acts.length)] });
  g.conns.push({ innov: innov.conn(c.src, id), src: c.src, dst: id, enabled: true });
  g.conns.push({ innov: innov.conn(id, c.dst), src: id, dst: c.dst, enabled: true });
  return true;
};

const enable: Op = (g, rng) => {
  const off = g.conns.filter((c) => !c.enabled);
  if (!off.length) return false;
  off[rng.int(off.length)].enabled = true;
  return true;
};

/** A hidden node gets a different activation from the pool. */
const mutAct: Op = (g, rng, _innov, acts) => {
  const hidden = g.nodes.filter((n) => n.kind === "hidden");
  if (!hidden.length) return false;
  const n = hidden[rng.int(hidden.length)];
  const other = acts.filter((a) => a !== n.act);
  if (!other.length) return false;
  n.act = other[rng.int(other.length)];
  return true;
};

/** The operators as a table, one row per mutation. */
const OPS: Record<MutationName, Op> = { addConn, addNode, enable, mutAct };

/**
 * A child of `parent` with exactly one mutation (roulette over `probs`, inapplicable operators
 * removed); `op` is null only if no operator applies.
 */
export function mutate(
  parent: Genome,
  rng: DataRng,
  innov: Innovations,
  opts: { probs?: MutationProbs; acts?: readonly number[] } = {},
): { child: Genome; op: MutationName | null } {
  const probs = opts.probs ?? DEFAULT_MUTATION;
  const acts = opts.acts ?? MNIST_HIDDEN_ACTS;
  const child = cloneGenome(parent);
  const left = MUTATIONS.filter((m) => probs[m] > 0);
  while (left.length) {
    const total = left.reduce((a, m) => a + probs[m], 0);
    let r = rng.next() * total;
    let i = 0;
    while (i < left.length - 1 && r >= probs[left[i]]) r -= probs[left[i++]];
    const m = left[i];
    if (OPS[m](child, rng, innov, acts)) return { child, op: m };
    left.splice(i, 1);
  }
  return { child, op: null };
}
