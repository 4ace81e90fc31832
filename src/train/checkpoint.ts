/**
 * Checkpoints in safetensors format, written atomically. Layout (numpy/PyTorch users read it
 * with `safetensors` or by hand):
 *
 * - sparse layer `L` (weights W, nIn x nOut, Y = X·W): `L.crow_indices` (U32 [nIn+1]),
 *   `L.col_indices` (U32 [nnz]), `L.values` (F32 [nnz]), i.e. standard CSR of W, rows = inputs;
 *   `L.born_step` (U32 [nnz], step at which each nonzero was last grown) and optimizer state
 *   `L.values.opt{s}` in the same order; `L.bias`.
 * - dense tensors (Linear weight `[in][out]`, biases, norm gamma/beta, running stats, SReLU
 *   parameters): their own names, F32; optimizer state as `name.opt{s}`.
 * - metadata: `format` = "filigree-checkpoint-1", `config` (JSON), `epoch`, `step`, `optimizer_t`,
 *   `train_losses` (JSON: epoch-mean training losses so far), `stopped` (the stop rule's
 *   criterion, only when a stop rule ended the run).
 *
 * Kept epochs (`keepEpochs`): `RUN/epochs/epoch-NNN/` holds `checkpoint.safetensors` (this
 * layout, the state after epoch NNN) and a copy of the run's `config.json`, so it is itself a
 * run directory that `ablate` (and `train --resume`) accept; its analysis goes to
 * `RUN/epochs/epoch-NNN/analysis/`. {@link keptEpochDir} names it.
 *
 * `torch.sparse_csr_tensor(crow.long(), col.long(), values, (nIn, nOut))` rebuilds W.
 *
 * @example
 * ```ts ignore
 * await saveCheckpoint(trainer, "runs/x/checkpoint.safetensors");
 * await loadCheckpoint(trainer, "runs/x/checkpoint.safetensors");
 * ```
 * @module
 */
import { FiligreeError } from "../gpu/errors.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { readSafetensors, type StTensor, writeSafetensors } from "../io/safetensors.ts";
import { csrFromCoo } from "../sparse/csr.ts";
import type { SparseLinear } from "../nn/layers.ts";
import { analysisOf } from "../nn/analyzable.ts";
import type { Trainer } from "./trainer.ts";
import { writeFileAtomic } from "../io/atomic.ts";

/** The checkpoint format version this code reads and writes. */
export const CHECKPOINT_FORMAT = "filigree-checkpoint-1";

/** Writes the trainer's full state (weights, topology, optimizer state, counters). */
export async function saveCheckpoint(t: Trainer, path: string): Promise<void> {
  const gpu = t.gpu;
  const out = new Map<string, StTensor>();
  const params = t.model.params;
  // Every read is issued before the first is awaited: a Deno read waits ~11 ms however small,
  // and concurrent ones share that wait.
  const reads = new Map<Tensor, Promise<Float32Array | Uint32Array | Int32Array>>();
  const read = (x: Tensor) => {
    let r = reads.get(x);
    if (!r) reads.set(x, r = gpu.read(x));
    return r;
  };
  params.forEach((p, i) => {
    const c = p.sparse?.csr;
    const own = c ? [c.rowPtr, c.col, c.perm, c.values, p.sparse!.bornStep] : [p.value];
    for (const x of [...own, ...t.optims[i].opt.state]) read(x);
  });
  for (const l of t.model.layers) {
    for (const b of analysisOf(l).persistentBuffers?.() ?? []) read(b.tensor);
  }
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    const opt = t.optims[i].opt;
    if (p.sparse) {
      const L = p.sparse;
      const c = L.csr;
      const name = L.name;
      const [rowPtr, col, perm, vals, born] = await Promise.all([
        read(c.rowPtr),
        read(c.col),
        read(c.perm),
        read(c.values),
        read(L.bornStep),
      ]) as [Uint32Array, Uint32Array, Uint32Array, Float32Array, Uint32Array];
      const nnz = c.nnz;
      const wv = new Float32Array(nnz), wb = new Uint32Array(nnz);
      for (let w = 0; w < nnz; w++) {
        wv[w] = vals[perm[w]];
        wb[w] = born[perm[w]];
      }
      out.set(`${name}.crow_indices`, {
        dtype: "U32",
        shape: [c.nIn + 1],
        data: rowPtr.slice(0, c.nIn + 1),
      });
      out.set(`${name}.col_indices`, { dtype: "U32", shape: [nnz], data: col.slice(0, nnz) });
      out.set(`${name}.values`, { dtype: "F32", shape: [nnz], data: wv });
      out.set(`${name}.born_step`, { dtype: "U32", shape: [nnz], data: wb });
      for (let s = 0; s < opt.state.length; s++) {
        const st = await read(opt.state[s]) as Float32Array;
        const ws = new Float32Array(nnz);
        for (let w = 0; w < nnz; w++) ws[w] = st[perm[w]];
        out.set(`${name}.values.opt${s}`, { dtype: "F32", shape: [nnz], data: ws });
      }
    } else {
      out.set(p.name, {
        dtype: "F32",
        shape: [...p.value.shape],
        data: await read(p.value) as Float32Array,
      });
      for (let s = 0; s < opt.state.length; s++) {
        out.set(`${p.name}.opt${s}`, {
          dtype: "F32",
          shape: [opt.state[s].size],
          data: await read(opt.state[s]) as Float32Array,
        });
      }
    }
  }
  for (const l of t.model.layers) {
    // Non-parameter state (batch norm's running statistics): nn/analyzable.ts.
    for (const b of analysisOf(l).persistentBuffers?.() ?? []) {
      out.set(b.name, {
        dtype: "F32",
        shape: [b.tensor.size],
        data: await read(b.tensor) as Float32Array,
      });
    }
  }
  await writeSafetensors(path, out, {
    format: CHECKPOINT_FORMAT,
    config: JSON.stringify(t.cfg),
    epoch: String(t.epoch),
    step: String(t.step),
    optimizer_t: String(t.optims[0]?.opt.t ?? 0),
    train_losses: JSON.stringify(t.trainLosses),
    ...(t.stopped ? { stopped: t.stopped } : {}),
  });
}

/** Reads a checkpoint's metadata and tensors, checking the format. */
export async function readCheckpoint(path: string) {
  let f;
  try {
    f = await readSafetensors(path);
  } catch (e) {
    if (e instanceof FiligreeError) throw e;
    throw new FiligreeError(`cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  if (f.metadata.format !== CHECKPOINT_FORMAT) {
    throw new FiligreeError(
      `${path}: not a ${CHECKPOINT_FORMAT} file (format "${f.metadata.format ?? "none"}")`,
    );
  }
  return f;
}

/** Restores a trainer (built from the same config) to the checkpoint's state. */
export async function loadCheckpoint(t: Trainer, path: string): Promise<void> {
  const f = await readCheckpoint(path);
  const gpu = t.gpu;
  const get = (name: string) => {
    const x = f.tensors.get(name);
    if (!x) {
      throw new FiligreeError(`${path}: missing tensor "${name}" (checkpoint from another model?)`);
    }
    return x;
  };
  const params = t.model.params;
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    const opt = t.optims[i].opt;
    if (p.sparse) {
      const L: SparseLinear = p.sparse;
      const c = L.csr;
      const crow = get(`${L.name}.crow_indices`).data as Uint32Array;
      const col = get(`${L.name}.col_indices`).data as Uint32Array;
      const vals = get(`${L.name}.values`).data as Float32Array;
      const nnz = col.length;
      if (crow.length !== c.nIn + 1 || nnz > c.values.size) {
        throw new FiligreeError(`${path}: layer ${L.name} does not fit the model`);
      }
      const rows = new Uint32Array(nnz);
      for (let r = 0; r < c.nIn; r++) for (let k = crow[r]; k < crow[r + 1]; k++) rows[k] = r;
      const h = csrFromCoo(c.nIn, c.nOut, rows, col, vals);
      // h.perm[w] = values-order slot of W-order entry w (the order the file uses).
      const toT = <T extends Float32Array | Uint32Array>(src: T, make: (n: number) => T): T => {
        const d = make(nnz);
        for (let w = 0; w < nnz; w++) d[h.perm[w]] = src[w];
        return d;
      };
      gpu.write(c.rowPtrT, h.rowPtrT);
      gpu.write(c.colT, h.colT);
      gpu.write(c.values, h.values);
      gpu.write(c.rowPtr, h.rowPtr);
      gpu.write(c.col, h.col);
      gpu.write(c.perm, h.perm);
      gpu.write(
        L.bornStep,
        toT(get(`${L.name}.born_step`).data as Uint32Array, (n) => new Uint32Array(n)),
      );
      for (let s = 0; s < opt.state.length; s++) {
        gpu.write(
          opt.state[s],
          toT(get(`${L.name}.values.opt${s}`).data as Float32Array, (n) => new Float32Array(n)),
        );
      }
      c.nnz = nnz;
    } else {
      gpu.write(p.value, get(p.name).data as Float32Array);
      for (let s = 0; s < opt.state.length; s++) {
        gpu.write(opt.state[s], get(`${p.name}.opt${s}`).data as Float32Array);
      }
    }
    opt.t = Number(f.metadata.optimizer_t ?? 0);
  }
  for (const l of t.model.layers) {
    for (const b of analysisOf(l).persistentBuffers?.() ?? []) {
      gpu.write(b.tensor, get(b.name).data as Float32Array);
    }
  }
  t.epoch = Number(f.metadata.epoch);
  t.step = Number(f.metadata.step);
  t.stopped = f.metadata.stopped ?? null;
  t.trainLosses = f.metadata.train_losses ? JSON.parse(f.metadata.train_losses) : [];
  await gpu.sync();
}

/**
 * The directory of a kept epoch's checkpoint: `RUN/epochs/epoch-NNN` (3 digits at least).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keptEpochDir } from "./checkpoint.ts";
 * assert.deepEqual(keptEpochDir("runs/x", 3), "runs/x/epochs/epoch-003");
 * ```
 */
export function keptEpochDir(runDir: string, epoch: number): string {
  return `${runDir}/epochs/epoch-${String(epoch).padStart(3, "0")}`;
}

/**
 * Whether epoch `epoch` (1-based) of a run is in its `keepEpochs` list ("final" is the run's own
 * checkpoint and needs no copy).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keepsEpoch } from "./checkpoint.ts";
 * assert.deepEqual(keepsEpoch([1, 3, "final"], 3), true);
 * assert.deepEqual(keepsEpoch([1, 3, "final"], 2), false);
 * ```
 */
export function keepsEpoch(
  keep: readonly (number | "final")[] | undefined,
  epoch: number,
): boolean {
  return (keep ?? []).includes(epoch);
}

/**
 * Writes the kept copy of epoch `t.epoch` (see the module doc): the checkpoint (atomic, like
 * every checkpoint) and the run's config.json, in `keptEpochDir(runDir, t.epoch)`.
 */
export async function saveKeptEpoch(t: Trainer, runDir: string): Promise<string> {
  const dir = keptEpochDir(runDir, t.epoch);
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(`${dir}/config.json`, await Deno.readTextFile(`${runDir}/config.json`));
  await saveCheckpoint(t, `${dir}/checkpoint.safetensors`);
  return dir;
}

/**
 * Resolves `ablate RUN --epoch E`: "final" (or undefined) is RUN itself; a number is the kept
 * epoch's directory, which must exist (one-line error listing the kept epochs otherwise).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveEpochDir } from "./checkpoint.ts";
 * assert.deepEqual(await resolveEpochDir("runs/x", "final"), "runs/x");
 * ```
 */
export async function resolveEpochDir(runDir: string, epoch: string | undefined): Promise<string> {
  if (epoch === undefined || epoch === "final") return runDir;
  const e = Number(epoch);
  if (!Number.isInteger(e) || e < 1) {
    throw new FiligreeError(`--epoch: expected a positive integer or "final", got "${epoch}"`);
  }
  const dir = keptEpochDir(runDir, e);
  try {
    await Deno.stat(`${dir}/checkpoint.safetensors`);
  } catch {
    const kept: string[] = [];
    try {
      for await (const d of Deno.readDir(`${runDir}/epochs`)) {
        const m = /^epoch-(\d+)$/.exec(d.name);
        if (m) kept.push(String(Number(m[1])));
      }
    } catch {
      // no epochs/ directory
    }
    kept.sort((a, b) => Number(a) - Number(b));
    throw new FiligreeError(
      `${runDir}: epoch ${e} was not kept (kept: ${kept.length ? kept.join(", ") : "none"}, ` +
        `and final; train with --keep-epochs)`,
    );
  }
  return dir;
}

/**
 * The stop rule's criterion recorded in a checkpoint (null when training ran to its epochs or is
 * still running).
 */
export async function checkpointStopped(path: string): Promise<string | null> {
  return (await readCheckpoint(path)).metadata.stopped ?? null;
}
