/**
 * `filigree` command line: one entry point with subcommands; deno.json tasks call it.
 * Errors meant for users (FiligreeError) print as one line and exit 1; anything else is a bug
 * and prints its stack (exit 70).
 *
 * @example
 * ```sh
 * deno task info
 * ```
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { FiligreeError } from "../src/gpu/errors.ts";
import { infoCommand } from "./info.ts";
import { trainCommand } from "./train.ts";
import { ablateCommand } from "./ablate.ts";
import { reportCommand } from "./report.ts";
import { sweepCommand } from "./sweep.ts";
import { mergeCommand } from "./merge.ts";

/** Runs an async action, turning user errors into one-line messages and exit codes. */
export async function guarded(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (e) {
    if (e instanceof FiligreeError) {
      console.error(`filigree: error: ${e.message}`);
      Deno.exit(1);
    }
    console.error(e);
    Deno.exit(70);
  }
}

/** Builds the command tree (exported for tests and completions). */
export function buildProgram(): Command {
  const program = new Command()
    .name("filigree")
    .description("WebGPU engine for training and understanding sparse neural networks")
    .showSuggestionAfterError(true)
    .exitOverride((err) => {
      // commander prints its own one-line message; keep its exit code for usage errors.
      Deno.exit(err.exitCode === 0 ? 0 : 2);
    });
  program.addCommand(infoCommand());
  program.addCommand(trainCommand());
  program.addCommand(ablateCommand());
  program.addCommand(sweepCommand());
  program.addCommand(mergeCommand());
  program.addCommand(reportCommand());
  return program as unknown as Command;
}

if (import.meta.main) {
  await buildProgram().parseAsync(Deno.args, { from: "user" });
}
