/**
 * `deno task merge OUT IN...`: merge study stores (e.g. the shards of a sweep) into one. Cells
 * already in OUT are kept, so merging is idempotent; stores of another study or schema are
 * refused.
 *
 * @example
 * ```sh
 * deno task merge runs/studies/smoke/store.sqlite runs/studies/smoke/store-*-of-4.sqlite
 * ```
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { mergeStores } from "../src/study/merge.ts";
import { guarded } from "./main.ts";

/** The `merge` subcommand. */
export function mergeCommand() {
  return new Command("merge")
    .description("merge study stores (shards) into one store; idempotent")
    .argument("<out>", "output store (created when missing)")
    .argument("<inputs...>", "input stores")
    .action((out, inputs) =>
      guarded(() => {
        const r = mergeStores(out, inputs);
        console.log(
          `merged ${r.added} new cells (${r.present} already present) into ${out}: ` +
            `${r.total} cells of study ${r.study}`,
        );
        return Promise.resolve();
      })
    );
}
