/**
 * `filigree` command line: one entry point with subcommands; deno.json tasks call it.
 * Every error that reaches a user is one line on stderr (cli/args.ts, `reportError`): usage
 * errors (unknown flags, malformed flag values, conflicting flags) exit 2; errors meant for
 * users (FiligreeError) and operating-system errors (permission denied, ...) exit 1; anything
 * else is a bug and prints its stack (exit 70).
 *
 * @example
 * ```sh
 * deno task info
 * ```
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { reportError } from "./args.ts";
import { FILIGREE_VERSION } from "../src/train/rundir.ts";
import { infoCommand } from "./info.ts";
import { trainCommand } from "./train.ts";
import { ablateCommand } from "./ablate.ts";
import { reportCommand } from "./report.ts";
import { sweepCommand } from "./sweep.ts";
import { mergeCommand } from "./merge.ts";
import { wannCommand } from "./wann.ts";
import { agnosticCommand } from "./agnostic.ts";

/** Runs an async action, turning user errors into one-line messages and exit codes. */
export async function guarded(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (e) {
    reportError(e);
  }
}

/** Same behaviour for every (sub)command: one-line usage errors with exit status 2. */
function configure(cmd: Command): void {
  cmd.showSuggestionAfterError(true)
    .configureOutput({
      // commander's "(Did you mean --x?)" goes on a second line: keep the error on one.
      outputError: (str, write) => write(`filigree: ${str.trim().replace(/\n+/g, " ")}\n`),
    })
    .exitOverride((err) => {
      // commander has printed its message (or the help); keep exit 2 for usage errors.
      Deno.exit(err.exitCode === 0 ? 0 : 2);
    });
  for (const sub of cmd.commands) configure(sub as unknown as Command);
}

/** Builds the command tree (exported for tests and completions). */
export function buildProgram(version = FILIGREE_VERSION): Command {
  const program = new Command()
    .name("filigree")
    .description("WebGPU engine for training and understanding sparse neural networks")
    .version(version, "-V, --version", "print the version");
  program.addCommand(infoCommand());
  program.addCommand(trainCommand());
  program.addCommand(ablateCommand());
  program.addCommand(sweepCommand());
  program.addCommand(mergeCommand());
  program.addCommand(reportCommand());
  program.addCommand(wannCommand());
  program.addCommand(agnosticCommand());
  configure(program as unknown as Command);
  return program as unknown as Command;
}

if (import.meta.main) {
  try {
    await buildProgram().parseAsync(Deno.args, { from: "user" });
  } catch (e) {
    reportError(e);
  }
}
