/**
 * `filigree report STORE_OR_STUDY [--out DIR]`: write the study report (report.html,
 * report.md, img/) from a results store. Given a study file (.yaml/.yml), the store is the
 * study's default `runs/studies/<name>/store.sqlite`, where the name is the file's `name:` key
 * or else its base name without extension. The report goes next to the store unless --out
 * says otherwise. A missing or corrupt store, or an output directory that cannot be written, is
 * a one-line error with exit status 1 (cli/args.ts).
 *
 * @example
 * ```sh
 * deno run -A cli/main.ts report studies/activations.yaml
 * deno run -A cli/main.ts report runs/studies/activations/store.sqlite --out /tmp/report
 * ```
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { parse as parseYaml } from "yaml";
import { FiligreeError } from "../src/gpu/errors.ts";
import { writeReport } from "../src/study/report.ts";
import { parseStudySpec, readStudySpec } from "../src/study/spec.ts";
import { findings, findingsMarkdown } from "../src/study/findings.ts";
import { cellsFromStore } from "../src/study/hypotheses.ts";
import { gitCommit } from "../src/study/sweep.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { StudyStore } from "../src/study/store.ts";
import { guarded } from "./main.ts";
import { nonNegativeInt, reportError } from "./args.ts";

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : path.slice(0, i) || "/";
}

/**
 * The store path for a `report` argument: a study file maps to its default store, anything
 * else is taken as the store path itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveStorePath } from "./report.ts";
 * assert.deepEqual(await resolveStorePath("runs/studies/x/store.sqlite"), "runs/studies/x/store.sqlite");
 * ```
 */
export async function resolveStorePath(arg: string): Promise<string> {
  if (!/\.ya?ml$/i.test(arg)) return arg;
  let text: string;
  try {
    text = await Deno.readTextFile(arg);
  } catch {
    throw new FiligreeError(`cannot read study file ${arg}`);
  }
  let name: unknown;
  try {
    const obj = parseYaml(text) as Record<string, unknown> | null;
    name = obj && typeof obj === "object" ? obj.name : undefined;
  } catch (e) {
    throw new FiligreeError(`${arg}: ${(e as Error).message.split("\n")[0]}`);
  }
  const base = arg.slice(arg.lastIndexOf("/") + 1).replace(/\.ya?ml$/i, "");
  const study = typeof name === "string" && name.trim() ? name.trim() : base;
  if (/[/\\]|^\.\.?$/.test(study)) throw new FiligreeError(`${arg}: invalid study name "${study}"`);
  return `runs/studies/${study}/store.sqlite`;
}

/**
 * The `report` subcommand (wired into cli/main.ts by the caller).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reportCommand } from "./report.ts";
 * assert.deepEqual(reportCommand().name(), "report");
 * ```
 */
export function reportCommand() {
  return new Command("report")
    .description("write the HTML + Markdown report of a study from its results store")
    .argument("<store-or-study>", "results store (.sqlite) or study file (.yaml)")
    .option("--out <dir>", "output directory (default: the store's directory)")
    .option("--seed <n>", "seed of the bootstrap intervals", nonNegativeInt(), 0)
    .option(
      "--hypotheses <spec.yaml>",
      "test the hypotheses of this study spec (same study name) instead of those stored with " +
        "the store; the report names the file",
    )
    .option(
      "--findings <file.md>",
      "also write the findings (rules = confirmed hypotheses, each with its effect across " +
        "seeds, layers, epochs and factor levels; src/study/findings.ts) to this file",
    )
    .action((target, opts) =>
      guarded(async () => {
        const store = await resolveStorePath(target);
        let hypotheses, hypothesesSource;
        if (opts.hypotheses) {
          const spec = await readStudySpec(opts.hypotheses);
          const s = StudyStore.openReadOnly(store);
          const study = s.meta().study;
          s.close();
          if (study !== spec.name) {
            throw new FiligreeError(
              `${opts.hypotheses} is study "${spec.name}", the store holds study "${study}"`,
            );
          }
          hypotheses = spec.hypotheses;
          hypothesesSource = opts.hypotheses;
        }
        const { html, md } = await writeReport(store, opts.out ?? dirname(store), {
          seed: opts.seed,
          hypotheses,
          hypothesesSource,
        });
        console.log(`wrote ${html}\nwrote ${md}`);
        if (opts.findings) {
          const s = StudyStore.openReadOnly(store);
          const cells = cellsFromStore(s);
          const meta = s.meta();
          s.close();
          const spec = meta.spec
            ? await parseStudySpec(JSON.parse(meta.spec), meta.study ?? "study")
            : null;
          const hyps = hypotheses ?? spec?.hypotheses ?? [];
          if (!hyps.length) {
            throw new FiligreeError(`${store}: no hypotheses to turn into findings`);
          }
          const scope = [...new Set(cells.flatMap((c) => Object.keys(c.factors)))].map((k) =>
            `${k}: ${[...new Set(cells.map((c) => c.factors[k]))].join(", ")}`
          );
          const cmd = ["deno task report", target];
          if (opts.hypotheses) cmd.push("--hypotheses", opts.hypotheses);
          if (opts.out) cmd.push("--out", opts.out);
          cmd.push("--findings", opts.findings);
          const text = findingsMarkdown(findings(cells, hyps, { seed: opts.seed }), {
            command: cmd.join(" "),
            commit: await gitCommit(),
            storeCommit: meta.commit,
            cells: cells.length,
            planned: spec?.cells.length,
            scope,
            generatedAt: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          });
          await writeFileAtomic(opts.findings, text);
          console.log(`wrote ${opts.findings}`);
        }
      })
    );
}

if (import.meta.main) {
  try {
    await reportCommand().parseAsync(Deno.args, { from: "user" });
  } catch (e) {
    reportError(e);
  }
}
