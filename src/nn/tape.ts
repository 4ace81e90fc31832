/**
 * Tape-based autograd. Ops record their forward dispatches into a Recorder and push a
 * closure that records their backward dispatches; `backward` replays the closures in reverse.
 * Nothing is read back: a whole training step (forward, loss, backward, optimizer) is one
 * command encoder.
 *
 * @example
 * ```ts
 * import { Tape } from "./tape.ts";
 * const tape = new Tape();
 * const order: string[] = [];
 * tape.push("a", () => order.push("a"));
 * tape.push("b", () => order.push("b"));
 * tape.backward();
 * console.log(order); // ["b", "a"]
 * ```
 * @module
 */

/** One recorded op: its name (for profiling and errors) and the closure recording its backward. */
export interface TapeEntry {
  name: string;
  backward: () => void;
}

/** The list of ops executed in a forward pass, replayed backwards. */
export class Tape {
  readonly entries: TapeEntry[] = [];

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
