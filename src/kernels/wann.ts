/**
 * Weight-agnostic network evaluation on the GPU: a population of feed-forward DAG networks
 * (packed by wann_net.ts), each run at every shared weight on every sample, in one recorded
 * chain of dispatches per population chunk: `wann_eval` (node values), `wann_score` (softmax
 * cross-entropy and argmax), `wann_vote` (majority vote over weights), `wann_reduce` (means over
 * samples). Shader: shaders/wann.wgsl; reference: wann_ref.ts.
 *
 * The population is split into chunks whose node values fit one storage binding
 * (`maxStorageBufferBindingSize`); all chunks are recorded into one submission and the statistics
 * of every network land in one buffer, read back once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu } from "../gpu/mod.ts";
 * import { packNets, WANN_ACT } from "./wann_net.ts";
 * import { WannEvaluator } from "./wann.ts";
 * const gpu = await getGpu();
 * // output 0 = linear(w * x), output 1 = linear(w * bias)
 * const nets = packNets([{ features: 1, outputs: 2, act: [WANN_ACT.linear, WANN_ACT.linear], incoming: [[1], [0]] }]);
 * const ev = new WannEvaluator(gpu, { weights: [-1, 1] });
 * ev.setData(new Float32Array([3, -3]), new Uint32Array([0, 0]), 1);
 * const { stats } = await ev.evaluate(nets);
 * // [mean CE, accuracy] at w = -1, at w = 1, then [0, ensemble accuracy]
 * assert.deepEqual(stats[1], 0.5);
 * assert.deepEqual(stats[3], 0.5);
 * assert.deepEqual(stats[5], 1); // each sample's vote ties 1-1; a tie goes to the lower class, 0
 * ```
 * @module
 */
import code from "../../shaders/wann.wgsl" with { type: "text" };
import {
  defineKernel,
  FiligreeError,
  type Gpu,
  grid,
  LimitError,
  packParams,
  type Recorder,
  type Tensor,
} from "../gpu/mod.ts";
import { netTrips, type PackedNets } from "./wann_net.ts";

const WG = 64;
/** llvmpipe stops an invocation after 65,535 loop iterations; every WANN loop stays below this. */
export const WANN_MAX_TRIPS = 65_000;
/** At most this many shared weights (the vote loops weights² times). */
export const WANN_MAX_WEIGHTS = 64;
/** The paper's shared weights ("standard" series of the reference code). */
export const WANN_DEFAULT_WEIGHTS: readonly number[] = [-2, -1, -0.5, 0.5, 1, 2];

const P = ["p", "uniform"] as const;
export const WANN_EVAL = defineKernel({
  shader: "wann.wgsl",
  code,
  entry: "wann_eval",
  bindings: [
    P,
    ["x_in", "read"],
    ["w_shared", "read"],
    ["net_node", "read"],
    ["node_ptr", "read"],
    ["node_act", "read"],
    ["edge_src", "read"],
    ["scratch", "read_write"],
  ],
});
export const WANN_SCORE = defineKernel({
  shader: "wann.wgsl",
  code,
  entry: "wann_score",
  bindings: [
    P,
    ["labels", "read"],
    ["score_nets", "read"],
    ["values", "read"],
    ["ce_out", "read_write"],
    ["pred_out", "read_write"],
  ],
});
export const WANN_VOTE = defineKernel({
  shader: "wann.wgsl",
  code,
  entry: "wann_vote",
  bindings: [P, ["pred_in", "read"], ["vote_labels", "read"], ["vote_out", "read_write"]],
});
export const WANN_REDUCE = defineKernel({
  shader: "wann.wgsl",
  code,
  entry: "wann_reduce",
  bindings: [
    P,
    ["r_ce", "read"],
    ["r_pred", "read"],
    ["r_vote", "read"],
    ["r_labels", "read"],
    ["stats", "read_write"],
  ],
});

/** Options of a {@link WannEvaluator}. */
export interface WannEvalOptions {
  /** Shared weight values (default {@link WANN_DEFAULT_WEIGHTS}). */
  weights?: readonly number[];
  /** Cap on the floats of one chunk's node values (default: the adapter's binding limit). */
  maxScratchFloats?: number;
}

/** One chunk of the population: networks `net0..net0+nets-1`, computed nodes `node0..node0+nodes-1`. */
export interface WannChunk {
  net0: number;
  nets: number;
  node0: number;
  nodes: number;
}

/** What {@link WannEvaluator.evaluate} returns. */
export interface WannEvalResult {
  /** `[net][weights + 1][2]`: mean CE and accuracy per weight, then (0, ensemble accuracy). */
  stats: Float32Array;
  /** Chunks the population was split into. */
  chunks: number;
  /** With `inspect` (one chunk only): node values `[node][weight][sample]` of all networks. */
  values?: Float32Array;
  /** With `inspect`: `[net][weight][sample]` cross-entropy. */
  ce?: Float32Array;
  /** With `inspect`: `[net][weight][sample]` argmax (0xFFFFFFFF: a non-finite output). */
  pred?: Uint32Array;
  /** With `inspect`: `[net][sample]` 1 where the vote over weights is right. */
  vote?: Uint32Array;
}

/**
 * Splits a population into chunks whose node values (`nodes · weights · samples` floats) and
 * per-sample scores (`nets · weights · samples`) fit `maxFloats`.
 */
export function planChunks(
  p: PackedNets,
  weights: number,
  samples: number,
  maxFloats: number,
): WannChunk[] {
  const per = weights * samples;
  const chunks: WannChunk[] = [];
  let net0 = 0;
  while (net0 < p.nets) {
    let n = net0;
    while (
      n < p.nets &&
      (p.netNode[n + 1] - p.netNode[net0]) * per <= maxFloats &&
      (n + 1 - net0) * per <= maxFloats
    ) n++;
    if (n === net0) {
      throw new LimitError(
        "maxStorageBufferBindingSize",
        (p.netNode[n + 1] - p.netNode[n]) * per * 4,
        maxFloats * 4,
        `WANN network ${n} (${
          p.netNode[n + 1] - p.netNode[n]
        } nodes x ${weights} weights x ${samples} samples)`,
      );
    }
    chunks.push({
      net0,
      nets: n - net0,
      node0: p.netNode[net0],
      nodes: p.netNode[n] - p.netNode[net0],
    });
    net0 = n;
  }
  return chunks;
}

/**
 * Evaluates populations of WANNs on one batch of samples (set with {@link WannEvaluator.setData}).
 * Buffers are released back to the device pool after each call.
 */
export class WannEvaluator {
  readonly weights: readonly number[];
  #x: Tensor | null = null;
  #labels: Tensor | null = null;
  #w: Tensor;
  #features = 0;
  #samples = 0;
  #labelMax = 0;
  #maxFloats: number;

  constructor(readonly gpu: Gpu, opts: WannEvalOptions = {}) {
    this.weights = opts.weights ?? WANN_DEFAULT_WEIGHTS;
    const W = this.weights.length;
    if (W < 1 || W > WANN_MAX_WEIGHTS || !this.weights.every(Number.isFinite)) {
      throw new FiligreeError(
        `WANN: need 1..${WANN_MAX_WEIGHTS} finite shared weights, got [${this.weights.join(", ")}]`,
      );
    }
    const limit = Math.floor(
      Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize) / 4,
    );
    this.#maxFloats = Math.min(limit, opts.maxScratchFloats ?? limit);
    this.#w = gpu.tensor("f32", [W], {
      data: Float32Array.from(this.weights),
      label: "wann weights",
    });
  }

  /** Samples of the next evaluations: `x` feature-major `[features][samples]`, one label each. */
  setData(x: Float32Array, labels: ArrayLike<number>, features: number): void {
    const S = labels.length;
    if (S < 1 || S > WANN_MAX_TRIPS) {
      throw new FiligreeError(`WANN: ${S} samples per evaluation, need 1..${WANN_MAX_TRIPS}`);
    }
    if (x.length !== features * S) {
      throw new FiligreeError(
        `WANN: inputs have ${x.length} values, ${features} features x ${S} samples need ${
          features * S
        }`,
      );
    }
    if (this.#x) this.gpu.release(this.#x);
    if (this.#labels) this.gpu.release(this.#labels);
    this.#x = this.gpu.tensor("f32", [features, S], { data: x, label: "wann x" });
    const lab = Uint32Array.from(labels);
    this.#labelMax = lab.reduce((a, b) => Math.max(a, b), 0);
    this.#labels = this.gpu.tensor("u32", [S], { data: lab, label: "wann labels" });
    this.#features = features;
    this.#samples = S;
  }

  /** Evaluates every network; `inspect` also reads back per-sample values (one chunk only). */
  async evaluate(p: PackedNets, opts: { inspect?: boolean } = {}): Promise<WannEvalResult> {
    const gpu = this.gpu;
    const W = this.weights.length, S = this.#samples;
    if (!this.#x || !this.#labels) throw new FiligreeError("WANN: setData before evaluate");
    if (p.features !== this.#features) {
      throw new FiligreeError(
        `WANN: networks have ${p.features} inputs, data has ${this.#features}`,
      );
    }
    if (this.#labelMax >= p.outputs) {
      throw new FiligreeError(
        `WANN: label ${this.#labelMax} but networks have ${p.outputs} outputs`,
      );
    }
    if (3 * p.outputs > WANN_MAX_TRIPS) {
      throw new FiligreeError(`WANN: ${p.outputs} outputs over the loop bound`);
    }
    for (let n = 0; n < p.nets; n++) {
      const t = netTrips(p, n);
      if (t > WANN_MAX_TRIPS) {
        throw new FiligreeError(
          `WANN: network ${n} has nodes + edges = ${t}, over the per-invocation loop bound ${WANN_MAX_TRIPS}`,
        );
      }
    }
    const chunks = planChunks(p, W, S, this.#maxFloats);
    if (opts.inspect && chunks.length > 1) {
      throw new FiligreeError(
        `WANN: inspect needs one chunk, the population needs ${chunks.length}`,
      );
    }
    const maxNodes = Math.max(...chunks.map((c) => c.nodes));
    const maxNets = Math.max(...chunks.map((c) => c.nets));
    const t = (dtype: "f32" | "u32", n: number, label: string, data?: Uint32Array) =>
      data
        ? gpu.tensor("u32", [n], { data, label })
        : gpu.tensor(dtype, [Math.max(1, n)], { label });
    const netNode = t("u32", p.nets + 1, "wann net_node", p.netNode);
    const nodePtr = t("u32", p.nodes + 1, "wann node_ptr", p.nodePtr);
    const nodeAct = t("u32", Math.max(1, p.nodes), "wann node_act", padded(p.nodeAct));
    const edgeSrc = t("u32", Math.max(1, p.edges), "wann edge_src", padded(p.edgeSrc));
    const scratch = t("f32", maxNodes * W * S, "wann scratch");
    const ce = t("f32", maxNets * W * S, "wann ce");
    const pred = t("u32", maxNets * W * S, "wann pred");
    const vote = t("u32", maxNets * S, "wann vote");
    const stats = t("f32", p.nets * (W + 1) * 2, "wann stats");
    if (opts.inspect) { for (const b of [scratch, ce, pred, vote, stats]) gpu.poison(b); }
    const rec = gpu.recorder("wann");
    for (const c of chunks) {
      this.#record(rec, p, c, {
        netNode,
        nodePtr,
        nodeAct,
        edgeSrc,
        scratch,
        ce,
        pred,
        vote,
        stats,
      });
    }
    rec.submit();
    const out: WannEvalResult = {
      stats: await gpu.read(stats) as Float32Array,
      chunks: chunks.length,
    };
    if (opts.inspect) {
      out.values = (await gpu.read(scratch) as Float32Array).slice(0, p.nodes * W * S);
      out.ce = (await gpu.read(ce) as Float32Array).slice(0, p.nets * W * S);
      out.pred = (await gpu.read(pred) as Uint32Array).slice(0, p.nets * W * S);
      out.vote = (await gpu.read(vote) as Uint32Array).slice(0, p.nets * S);
    }
    for (const b of [netNode, nodePtr, nodeAct, edgeSrc, scratch, ce, pred, vote, stats]) {
      gpu.release(b);
    }
    return out;
  }

  #record(rec: Recorder, p: PackedNets, c: WannChunk, b: Record<string, Tensor>): void {
    const gpu = this.gpu;
    const W = this.weights.length, S = this.#samples;
    const inv = c.nets * W * S;
    if (inv > 0xffffffff) {
      throw new FiligreeError(`WANN: ${inv} invocations in one chunk exceed 32-bit indexing`);
    }
    const params = gpu.uniform(
      packParams([c.nets, W, S, p.features, p.outputs, c.net0, c.node0, 0]),
    );
    rec.dispatch(gpu.kernel(WANN_EVAL, { WG }), {
      p: params,
      x_in: this.#x!,
      w_shared: this.#w,
      net_node: b.netNode,
      node_ptr: b.nodePtr,
      node_act: b.nodeAct,
      edge_src: b.edgeSrc,
      scratch: b.scratch,
    }, grid(gpu, Math.ceil(inv / WG)));
    rec.dispatch(gpu.kernel(WANN_SCORE, { WG }), {
      p: params,
      labels: this.#labels!,
      score_nets: b.netNode,
      values: b.scratch,
      ce_out: b.ce,
      pred_out: b.pred,
    }, grid(gpu, Math.ceil(inv / WG)));
    rec.dispatch(gpu.kernel(WANN_VOTE, { WG }), {
      p: params,
      pred_in: b.pred,
      vote_labels: this.#labels!,
      vote_out: b.vote,
    }, grid(gpu, Math.ceil((c.nets * S) / WG)));
    rec.dispatch(gpu.kernel(WANN_REDUCE, { WG }), {
      p: params,
      r_ce: b.ce,
      r_pred: b.pred,
      r_vote: b.vote,
      r_labels: this.#labels!,
      stats: b.stats,
    }, grid(gpu, Math.ceil((c.nets * (W + 1)) / WG)));
  }

  /** Returns the data buffers to the pool. */
  dispose(): void {
    for (const b of [this.#x, this.#labels, this.#w]) if (b) this.gpu.release(b);
    this.#x = this.#labels = null;
  }
}

function padded(a: Uint32Array): Uint32Array {
  return a.length > 0 ? a : new Uint32Array(1);
}
