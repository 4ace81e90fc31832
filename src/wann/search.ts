/**
 * The WANN search loop: genome operations on the CPU, evaluation of the whole population at every
 * shared weight on the GPU ({@link WannEvaluator}), NSGA-II ranking, culling, elitism and
 * tournament selection as in the reference's `_variation.py`.
 *
 * Generation `g` draws all its randomness (the training batch, the choice of objectives, the
 * tournaments and mutations) from one generator seeded by `(seed, g)`, so a run is reproducible
 * and a resumed run equals an uninterrupted one.
 *
 * Run directory:
 * - `config.json` the resolved configuration and task; `checkpoint.json` the population about to
 *   be evaluated, the innovation record and the history (written atomically);
 * - `history.json` one record per generation (champion's batch statistics, periodic test);
 * - `front.json` the current Pareto front; `champions/gen-NNNNN.json` the champion of every
 *   generation (enabled genes plus the expressed network: load with {@link readChampion}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { parseWannConfig } from "./config.ts";
 * import { runSearch } from "./search.ts";
 * import { makeSyntheticTask } from "./tasks.ts";
 * const cfg = parseWannConfig({ task: "synthetic", population: 16, generations: 2, samplesPerEval: 64, tournament: 4 });
 * const dir = await Deno.makeTempDir();
 * const s = await runSearch(cfg, makeSyntheticTask(), dir, { gpu: await getGpu(), quiet: true });
 * assert.deepEqual(s.generation, 2);
 * assert.deepEqual(s.history.length, 2);
 * ```
 * @module
 */
import { DataRng, deriveSeed } from "../data/random.ts";
import { FiligreeError, type Gpu } from "../gpu/mod.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { WannEvaluator } from "../kernels/wann.ts";
import { packNets, type WannNet } from "../kernels/wann_net.ts";
import { Progress } from "../train/progress.ts";
import type { WannConfig } from "./config.ts";
import { enabledCount, expressGenome, type Genome, initialGenome } from "./genome.ts";
import { Innovations, mutate } from "./mutate.ts";
import { nsgaRank, paretoFronts } from "./nsga2.ts";
import { gatherBatch, type WannTask } from "./tasks.ts";

/** Statistics of one network on one batch, per shared weight. */
export interface NetStats {
  /** Accuracy per weight. */
  acc: number[];
  /** Mean cross-entropy per weight. */
  ce: number[];
  /** Majority-vote accuracy over the weights. */
  ensemble: number;
  /** Fitness per weight (−CE or accuracy), its mean and max. */
  mean: number;
  max: number;
}

/** One generation's record. */
export interface GenRecord {
  generation: number;
  /** Networks evaluated so far (population x generations). */
  evaluations: number;
  seconds: number;
  objectives: "mean,1/conns" | "mean,max";
  champion: { index: number; connections: number; nodes: number } & NetStats;
  /** Population means. */
  meanFitness: number;
  meanConnections: number;
  frontSize: number;
  /** Champion on the test split (every `testEvery` generations and at the end). */
  test?: TestStats;
}

/** Champion on the test split. */
export interface TestStats {
  samples: number;
  acc: number[];
  /** Mean and sample standard deviation of the accuracy over the weights. */
  meanAcc: number;
  sdAcc: number;
  bestAcc: number;
  bestWeight: number;
  ensemble: number;
}

/** Search state (what a checkpoint holds). */
export interface SearchState {
  /** Generations done; `population` is the one to evaluate next. */
  generation: number;
  population: Genome[];
  innov: Innovations;
  history: GenRecord[];
  seconds: number;
}

/** Options of {@link runSearch}. */
export interface SearchOptions {
  gpu: Gpu;
  quiet?: boolean;
  /** Stop (with a checkpoint) after this many generations of this call: simulates an interruption. */
  stopAfter?: number;
  /** Stop (with a checkpoint) once `Date.now()` passes this. */
  deadline?: number;
  /** Called after each generation. */
  onGeneration?: (r: GenRecord) => void;
}

const CHECKPOINT_VERSION = 1;

/** Genome -> compact JSON (connection genes as [innov, src, dst, enabled]). */
function packGenome(g: Genome, enabledOnly = false) {
  return {
    nodes: g.nodes.map((n) => [n.id, n.kind, n.act]),
    conns: g.conns.filter((c) => !enabledOnly || c.enabled).map((c) => [
      c.innov,
      c.src,
      c.dst,
      c.enabled ? 1 : 0,
    ]),
  };
}

type PackedGenome = ReturnType<typeof packGenome>;

function unpackGenome(p: PackedGenome): Genome {
  return {
    nodes: p.nodes.map(([id, kind, act]) => ({ id, kind, act } as Genome["nodes"][number])),
    conns: p.conns.map(([innov, src, dst, en]) => ({ innov, src, dst, enabled: en === 1 })),
  };
}

/** A champion file as written by the search. */
export interface ChampionFile {
  generation: number;
  task: string;
  weights: number[];
  stats: NetStats;
  connections: number;
  genome: Genome;
  net: WannNet;
  activationNames: string[];
}

/** Reads a champion file (`champions/gen-NNNNN.json` or `champion.json`). */
export async function readChampion(path: string): Promise<ChampionFile> {
  let j;
  try {
    j = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new FiligreeError(`cannot read champion ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  return { ...j, genome: unpackGenome(j.genome) };
}

function statsOf(s: Float32Array, i: number, W: number, fitness: "ce" | "acc"): NetStats {
  const acc: number[] = [], ce: number[] = [];
  for (let w = 0; w < W; w++) {
    ce.push(s[(i * (W + 1) + w) * 2]);
    acc.push(s[(i * (W + 1) + w) * 2 + 1]);
  }
  const fit = fitness === "ce" ? ce.map((v) => -v) : acc;
  return {
    acc,
    ce,
    ensemble: s[(i * (W + 1) + W) * 2 + 1],
    mean: fit.reduce((a, b) => a + b, 0) / W,
    max: Math.max(...fit),
  };
}

/** `k` distinct indices of `0..n-1` (partial Fisher-Yates). */
function sample(n: number, k: number, rng: DataRng): Uint32Array {
  if (k > n) throw new FiligreeError(`WANN: samplesPerEval ${k} > ${n} training samples`);
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(n - i);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a.slice(0, k);
}

/** Evaluates `net` on (a prefix of) the test split at every weight. */
export async function testNet(
  ev: WannEvaluator,
  net: WannNet,
): Promise<TestStats> {
  const { stats } = await ev.evaluate(packNets([net]));
  const W = ev.weights.length;
  const acc = Array.from({ length: W }, (_, w) => stats[w * 2 + 1]);
  const meanAcc = acc.reduce((a, b) => a + b, 0) / W;
  const sdAcc = W > 1 ? Math.sqrt(acc.reduce((a, b) => a + (b - meanAcc) ** 2, 0) / (W - 1)) : 0;
  const best = acc.indexOf(Math.max(...acc));
  return {
    samples: 0,
    acc,
    meanAcc,
    sdAcc,
    bestAcc: acc[best],
    bestWeight: ev.weights[best],
    ensemble: stats[W * 2 + 1],
  };
}

/** A test-split evaluator for a task. */
export function testEvaluator(
  gpu: Gpu,
  cfg: WannConfig,
  task: WannTask,
): { ev: WannEvaluator; samples: number } {
  const n = Math.min(task.test.n, cfg.testSamples ?? task.test.n, 65_000);
  const idx = Uint32Array.from({ length: n }, (_, i) => i);
  const ev = new WannEvaluator(gpu, { weights: cfg.weights });
  ev.setData(
    gatherBatch(task.test, task.features, idx),
    task.test.labels.subarray(0, n),
    task.features,
  );
  return { ev, samples: n };
}

/** The config as stored (everything but the run length decides the trajectory). */
function identity(cfg: WannConfig): string {
  const { generations: _g, testEvery: _t, checkpointEvery: _c, ...rest } = cfg;
  return JSON.stringify(rest);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Loads the checkpoint of `runDir`, or null when there is none. */
export async function loadSearchState(
  runDir: string,
  cfg: WannConfig,
): Promise<SearchState | null> {
  const path = `${runDir}/checkpoint.json`;
  if (!(await exists(path))) {
    if (await exists(`${runDir}/config.json`)) {
      throw new FiligreeError(
        `${runDir} has a config.json but no checkpoint.json: use another run directory`,
      );
    }
    return null;
  }
  let j;
  try {
    j = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new FiligreeError(`cannot read ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  if (j.version !== CHECKPOINT_VERSION) {
    throw new FiligreeError(`${path}: unknown checkpoint version ${j.version}`);
  }
  if (identity(j.config) !== identity(cfg)) {
    throw new FiligreeError(
      `${runDir} holds a run with a different configuration (only generations, testEvery and checkpointEvery may change on resume): use another run directory`,
    );
  }
  return {
    generation: j.generation,
    population: j.population.map(unpackGenome),
    innov: Innovations.fromJSON(j.innov),
    history: j.history,
    seconds: j.seconds,
  };
}

async function saveCheckpoint(runDir: string, cfg: WannConfig, s: SearchState): Promise<void> {
  await writeFileAtomic(
    `${runDir}/checkpoint.json`,
    JSON.stringify({
      version: CHECKPOINT_VERSION,
      config: cfg,
      generation: s.generation,
      population: s.population.map((g) => packGenome(g)),
      innov: s.innov.toJSON(),
      history: s.history,
      seconds: s.seconds,
    }),
  );
  await writeFileAtomic(`${runDir}/history.json`, JSON.stringify(s.history, null, 1));
}

/**
 * Runs (or resumes) a search in `runDir` until `cfg.generations` generations are done (or
 * `stopAfter` more); returns the final state.
 */
export async function runSearch(
  cfg: WannConfig,
  task: WannTask,
  runDir: string,
  opts: SearchOptions,
): Promise<SearchState> {
  const W = cfg.weights.length;
  if (cfg.samplesPerEval > task.train.n) {
    throw new FiligreeError(
      `WANN: samplesPerEval ${cfg.samplesPerEval} > ${task.train.n} training samples`,
    );
  }
  await Deno.mkdir(`${runDir}/champions`, { recursive: true });
  const shape = { features: task.features, outputs: task.classes, outputAct: cfg.outputAct };
  let state = await loadSearchState(runDir, cfg);
  if (!state) {
    const rng = new DataRng(deriveSeed(cfg.seed, 0x7fffffff));
    state = {
      generation: 0,
      population: Array.from(
        { length: cfg.population },
        () => initialGenome(shape, rng, cfg.probInitEnable),
      ),
      innov: Innovations.start(shape),
      history: [],
      seconds: 0,
    };
    await writeFileAtomic(
      `${runDir}/config.json`,
      JSON.stringify({ config: cfg, task: task.description }, null, 2),
    );
    await saveCheckpoint(runDir, cfg, state);
  }
  const ev = new WannEvaluator(opts.gpu, { weights: cfg.weights });
  const test = testEvaluator(opts.gpu, cfg, task);
  const progress = new Progress({ quiet: opts.quiet });
  progress.start(`WANN ${task.name}`, cfg.generations);
  progress.update(state.generation, {}, "gen");
  let done = 0;
  try {
    while (
      state.generation < cfg.generations && (opts.stopAfter === undefined || done < opts.stopAfter)
    ) {
      const t0 = performance.now();
      const g = state.generation;
      const rng = new DataRng(deriveSeed(cfg.seed, g));
      const idx = sample(task.train.n, cfg.samplesPerEval, rng);
      const labels = Uint8Array.from(idx, (i) => task.train.labels[i]);
      ev.setData(gatherBatch(task.train, task.features, idx), labels, task.features);
      const pop = state.population;
      const nets = pop.map(expressGenome);
      const { stats } = await ev.evaluate(packNets(nets));
      const st = pop.map((_, i) => statsOf(stats, i, W, cfg.fitness));
      const conns = pop.map(enabledCount);
      const moo = rng.next() < cfg.probMoo;
      const objs = st.map((s, i) => (moo ? [s.mean, 1 / Math.max(1, conns[i])] : [s.mean, s.max]));
      const order = nsgaRank(objs);
      let champ = 0;
      for (let i = 1; i < pop.length; i++) {
        if (
          st[i].mean > st[champ].mean || (st[i].mean === st[champ].mean && conns[i] < conns[champ])
        ) {
          champ = i;
        }
      }
      const front = paretoFronts(objs)[0];
      const rec: GenRecord = {
        generation: g + 1,
        evaluations: (g + 1) * cfg.population,
        seconds: 0,
        objectives: moo ? "mean,1/conns" : "mean,max",
        champion: {
          index: champ,
          connections: conns[champ],
          nodes: nets[champ].act.length,
          ...st[champ],
        },
        meanFitness: st.reduce((a, s) => a + s.mean, 0) / pop.length,
        meanConnections: conns.reduce((a, b) => a + b, 0) / pop.length,
        frontSize: front.length,
      };
      if ((g + 1) % cfg.testEvery === 0 || g + 1 === cfg.generations) {
        rec.test = { ...(await testNet(test.ev, nets[champ])), samples: test.samples };
      }
      const champFile = {
        generation: g + 1,
        task: task.name,
        weights: cfg.weights,
        stats: st[champ],
        test: rec.test,
        connections: conns[champ],
        genome: packGenome(pop[champ], true),
        net: {
          features: nets[champ].features,
          outputs: nets[champ].outputs,
          act: nets[champ].act,
          incoming: nets[champ].incoming,
        },
        activationNames: [
          "",
          "linear",
          "step",
          "sin",
          "gauss",
          "tanh",
          "sigmoid",
          "inverse",
          "abs",
          "relu",
          "cos",
        ],
      };
      const text = JSON.stringify(champFile);
      await writeFileAtomic(`${runDir}/champions/gen-${String(g + 1).padStart(5, "0")}.json`, text);
      await writeFileAtomic(`${runDir}/champion.json`, text);
      await writeFileAtomic(
        `${runDir}/front.json`,
        JSON.stringify({
          generation: g + 1,
          objectives: rec.objectives,
          members: front.map((i) => ({
            index: i,
            objectives: objs[i],
            connections: conns[i],
            mean: st[i].mean,
            max: st[i].max,
          })),
        }),
      );
      // Reproduction: cull the worst, keep the best unchanged, the rest are mutated tournament winners.
      const ranked = order.map((i) => pop[i]);
      const pool = ranked.slice(0, cfg.population - Math.floor(cfg.cullRatio * cfg.population));
      const nElite = Math.floor(cfg.eliteRatio * pool.length);
      const next: Genome[] = pool.slice(0, nElite);
      while (next.length < cfg.population) {
        let win = pool.length;
        for (let t = 0; t < cfg.tournament; t++) win = Math.min(win, rng.int(pool.length));
        next.push(
          mutate(pool[win], rng, state.innov, { probs: cfg.mutation, acts: cfg.hiddenActs }).child,
        );
      }
      const dt = (performance.now() - t0) / 1000;
      state.seconds += dt;
      rec.seconds = state.seconds;
      state.history.push(rec);
      state.population = next;
      state.generation = g + 1;
      done++;
      if (
        state.generation % cfg.checkpointEvery === 0 || state.generation === cfg.generations ||
        done === opts.stopAfter
      ) {
        await saveCheckpoint(runDir, cfg, state);
      }
      opts.onGeneration?.(rec);
      progress.update(state.generation, {
        acc: Math.max(...st[champ].acc),
        ens: st[champ].ensemble,
        conns: conns[champ],
      }, "gen");
    }
  } finally {
    progress.stop();
    ev.dispose();
    test.ev.dispose();
  }
  return state;
}
