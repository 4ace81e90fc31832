/**
 * Tape-based autograd. Ops record their forward dispatches into a Recorder and push a
 * closure that records their backward dispatches; `backward` replays the closures in reverse.
 * Nothing is read back: a whole training step (forward, loss, backward, optimizer) is one
 * command encoder.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tape } from "./tape.ts";
 * const tape = new Tape();
 * const order: string[] = [];
 * tape.push("a", () => order.push("a"));
 * tape.push("b", () => order.push("b"));
 * tape.backward();
 * assert.deepEqual(order, ["b", "a"]);
 * ```
 * @module
 */

import { FiligreeError } from "../gpu/errors.ts";

/** One recorded op: its name (for profiling and errors) and the closure recording its backward. */
export interface TapeEntry {
  name: string;
  backward: () => void;
}

/** The list of ops executed in a forward pass, replayed backwards. */
export class Tape {
  readonly entries: TapeEntry[] = [];
  #grads = new WeakMap<object, unknown>();
  #produced = new WeakSet<object>();
  #consumed = new WeakSet<object>();

  /**
   * The persistent gradient buffer of an activation (allocated on first use by `alloc`), so
   * the backward pass of every step writes into the same buffers.
   */
  gradFor<T>(act: object, alloc: () => T): T {
    let g = this.#grads.get(act) as T | undefined;
    if (g === undefined) {
      g = alloc();
      this.#grads.set(act, g);
    }
    return g;
  }

  /** Marks an activation as produced by a recorded op (so its producer needs its gradient). */
  markProduced(act: object): void {
    this.#produced.add(act);
  }

  /**
   * Whether an activation came from a recorded op (data inputs need no gradient). Every op
   * calls this once for its input in the forward pass, which registers it as the activation's
   * consumer: a backward WRITES its input gradient (it does not accumulate), so a second
   * consumer of the same produced activation (fan-out: a skip connection, a shared input)
   * would silently lose the first one's gradient. The tape refuses it with a clear error.
   */
  requiresGrad(act: object): boolean {
    if (!this.#produced.has(act)) return false;
    if (this.#consumed.has(act)) {
      throw new FiligreeError(
        "an activation feeds two ops (fan-out): the tape writes input gradients instead of accumulating them; add the branches with an explicit op that sums their gradients",
      );
    }
    this.#consumed.add(act);
    return true;
  }

  /** Starts a new step: forgets which activations were produced (keeps gradient buffers). */
  reset(): void {
    this.entries.length = 0;
    this.#produced = new WeakSet();
    this.#consumed = new WeakSet();
  }

  /** Records an op's backward. */
  push(name: string, backward: () => void): void {
    this.entries.push({ name, backward });
  }

  /** Replays the backward closures in reverse order and empties the tape. */
  backward(): void {
    for (let i = this.entries.length - 1; i >= 0; i--) this.entries[i].backward();
    this.entries.length = 0;
  }
}
