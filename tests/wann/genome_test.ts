import assert from "node:assert/strict";
import { DataRng } from "../../src/data/random.ts";
import { FiligreeError } from "../../src/gpu/errors.ts";
import {
  enabledCount,
  expressGenome,
  type Genome,
  initialGenome,
  topoOrder,
  validateGenome,
} from "../../src/wann/genome.ts";
import { Innovations, mutate, type MutationName } from "../../src/wann/mutate.ts";
import { packNets } from "../../src/kernels/wann_net.ts";
import { freshSeed } from "../../src/testing/mod.ts";

const shape = { features: 5, outputs: 3, outputAct: 1 };

/** Evolves a small population for `steps` rounds of one mutation each; returns all genomes seen. */
function evolve(seed: number, steps: number) {
  const rng = new DataRng(seed);
  const innov = Innovations.start(shape);
  let pop = Array.from({ length: 8 }, () => initialGenome(shape, rng, 0.5));
  const seen: Genome[] = [...pop];
  const ops = new Map<MutationName | null, number>();
  for (let s = 0; s < steps; s++) {
    pop = pop.map((g) => {
      const { child, op } = mutate(g, rng, innov);
      ops.set(op, (ops.get(op) ?? 0) + 1);
      return child;
    });
    seen.push(...pop);
  }
  return { seen, innov, ops };
}

Deno.test("wann genome: initial genome has every bias/input -> output gene, enabled with the probability", () => {
  const rng = new DataRng(freshSeed());
  const g = initialGenome({ features: 200, outputs: 10, outputAct: 1 }, rng, 0.05);
  assert.equal(g.conns.length, 201 * 10);
  assert.deepEqual(g.conns.map((c) => c.innov), g.conns.map((_, i) => i));
  const frac = enabledCount(g) / g.conns.length;
  assert.ok(frac > 0.025 && frac < 0.08, `enabled fraction ${frac}`);
  validateGenome(g);
});

Deno.test("wann mutate: children stay acyclic and feed-forward, innovation numbers are per edge", () => {
  const seed = freshSeed();
  const { seen, innov, ops } = evolve(seed, 60);
  const byEdge = new Map<string, number>();
  for (const g of seen) {
    validateGenome(g); // unique ids/innovations, no edge out of an output or into an input, no cycle
    const order = topoOrder(g);
    const pos = new Map(order.map((id, i) => [id, i]));
    for (const c of g.conns) {
      assert.ok(
        pos.get(c.src)! < pos.get(c.dst)!,
        `edge ${c.src}->${c.dst} against the order [seed ${seed}]`,
      );
      const k = `${c.src},${c.dst}`;
      if (byEdge.has(k)) {
        assert.equal(byEdge.get(k), c.innov, `edge ${k} has two innovation numbers`);
      }
      byEdge.set(k, c.innov);
      assert.equal(innov.conns.get(k), c.innov);
    }
    // The expressed network is valid for the evaluator (sources precede destinations).
    packNets([expressGenome(g)]);
  }
  // All four operators were exercised.
  for (const m of ["addConn", "addNode", "enable", "mutAct"] as const) {
    assert.ok((ops.get(m) ?? 0) > 0, `${m} never applied [seed ${seed}]`);
  }
  const nodes = new Set(
    seen.flatMap((g) => g.nodes.filter((n) => n.kind === "hidden").map((n) => n.id)),
  );
  assert.ok(Math.max(...nodes) < innov.nextNode);
});

Deno.test("wann mutate: each operator does what it says", () => {
  const rng = new DataRng(freshSeed());
  const innov = Innovations.start(shape);
  const g0 = initialGenome(shape, rng, 1);
  const only = (m: MutationName) => ({ addConn: 0, addNode: 0, enable: 0, mutAct: 0, [m]: 1 });
  const split = mutate(g0, rng, innov, { probs: only("addNode") });
  assert.equal(split.op, "addNode");
  assert.equal(split.child.nodes.length, g0.nodes.length + 1);
  assert.equal(enabledCount(split.child), enabledCount(g0) + 1); // one disabled, two added
  assert.equal(enabledCount(g0), g0.conns.length, "parent untouched");
  const act = mutate(split.child, rng, innov, { probs: only("mutAct"), acts: [3, 4] });
  const h0 = split.child.nodes.at(-1)!, h1 = act.child.nodes.at(-1)!;
  assert.notEqual(h0.act, h1.act);
  const en = mutate(split.child, rng, innov, { probs: only("enable") });
  assert.equal(enabledCount(en.child), enabledCount(split.child) + 1);
  // Full input->output connectivity: the only new edges possible involve the hidden node.
  const ac = mutate(split.child, rng, innov, { probs: only("addConn") });
  assert.equal(ac.op, "addConn");
  const added = ac.child.conns.at(-1)!;
  assert.ok(added.src === h0.id || added.dst === h0.id);
  // Nothing applies: enable with every gene enabled falls back to null.
  assert.equal(mutate(g0, rng, innov, { probs: only("enable") }).op, null);
});

Deno.test("wann genome: express drops dead hidden nodes and disabled edges; cycles are rejected", () => {
  const g: Genome = {
    nodes: [
      { id: 0, kind: "bias", act: 1 },
      { id: 1, kind: "input", act: 1 },
      { id: 2, kind: "output", act: 1 },
      { id: 3, kind: "hidden", act: 5 },
      { id: 4, kind: "hidden", act: 3 }, // dead: reaches no output
    ],
    conns: [
      { innov: 0, src: 1, dst: 3, enabled: true },
      { innov: 1, src: 3, dst: 2, enabled: true },
      { innov: 2, src: 1, dst: 4, enabled: true },
      { innov: 3, src: 0, dst: 2, enabled: false },
    ],
  };
  const net = expressGenome(g);
  assert.deepEqual(net.act, [5, 1]);
  assert.deepEqual(net.incoming, [[1], [2]]);
  g.conns.push({ innov: 4, src: 3, dst: 4, enabled: false }, {
    innov: 5,
    src: 4,
    dst: 3,
    enabled: false,
  });
  assert.throws(
    () => validateGenome(g),
    (e: Error) => e instanceof FiligreeError && e.message.includes("cycle"),
  );
});
