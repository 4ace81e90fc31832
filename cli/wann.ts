/**
 * `deno task wann CONFIG.yaml`: weight-agnostic network search (src/wann/search.ts). Re-running
 * with the same run directory resumes from its checkpoint; a larger `--generations` extends a
 * finished run. Pictures of the champion (network, accuracy vs shared weight, progress) are
 * written into the run directory at the end.
 *
 * @example
 * ```sh
 * deno task wann configs/wann/synthetic.yaml
 * deno task wann configs/wann/mnist16-paper.yaml --run-dir runs/wann/mnist16-paper
 * ```
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { getGpu } from "../src/gpu/mod.ts";
import { readWannConfig } from "../src/wann/config.ts";
import { readChampion, runSearch, testEvaluator, testNet } from "../src/wann/search.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { loadTask } from "../src/wann/tasks.ts";
import { writeRunPictures } from "../src/wann/render.ts";
import { guarded } from "./main.ts";
import { positiveInt } from "./args.ts";

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

/** The `wann` subcommand. */
export function wannCommand() {
  return new Command("wann")
    .description("weight-agnostic neural network search (shared-weight evaluation on the GPU)")
    .argument("<config>", "YAML config (see configs/wann/)")
    .option("--run-dir <dir>", "run directory (default runs/wann/<config name>)")
    .option("--generations <n>", "override the config's generations", positiveInt())
    .option(
      "--max-minutes <m>",
      "stop after this wall time (checkpointed; rerun to resume)",
      positiveInt(),
    )
    .option("--quiet", "no progress display")
    .action((config, o) =>
      guarded(async () => {
        const cfg = await readWannConfig(config);
        if (o.generations) cfg.generations = o.generations;
        const name = config.split("/").pop()!.replace(/\.(ya?ml|json)$/, "");
        const dir = o.runDir ?? `runs/wann/${name}`;
        const task = await loadTask(cfg.task, {
          features: cfg.syntheticFeatures,
          classes: cfg.syntheticClasses,
          train: cfg.syntheticTrain,
          test: cfg.syntheticTest,
          seed: cfg.seed,
        });
        const gpu = await getGpu();
        console.log(
          `wann: ${task.description}; population ${cfg.population}, ${cfg.generations} generations, ` +
            `${cfg.samplesPerEval} samples x ${cfg.weights.length} weights per evaluation; ` +
            `adapter ${gpu.report().description} (${gpu.backend}); run dir ${dir}`,
        );
        const deadline = o.maxMinutes ? Date.now() + o.maxMinutes * 60_000 : undefined;
        const s = await runSearch(cfg, task, dir, { gpu, quiet: o.quiet, deadline });
        // The champion of the last checkpointed generation (a killed run may have written later ones).
        const champ = await readChampion(
          `${dir}/champions/gen-${String(s.generation).padStart(5, "0")}.json`,
        );
        const last = s.history.at(-1);
        if (last && !last.test) {
          // Stopped between periodic tests: test the last champion now (kept beside the history).
          const t = testEvaluator(gpu, cfg, task);
          last.test = { ...(await testNet(t.ev, champ.net)), samples: t.samples };
          t.ev.dispose();
          await writeFileAtomic(
            `${dir}/final_test.json`,
            JSON.stringify({ generation: last.generation, test: last.test }, null, 1),
          );
        }
        await writeRunPictures(
          dir,
          champ.net,
          s.history,
          cfg.weights,
          `WANN ${task.name} champion, generation ${champ.generation}`,
        );
        const t = [...s.history].reverse().find((r) => r.test)?.test;
        if (t) {
          console.log(
            `wann: champion (gen ${champ.generation}, ${champ.connections} connections) test accuracy ` +
              `${pct(t.meanAcc)} ± ${pct(t.sdAcc)} over weights, best ${
                pct(t.bestAcc)
              } (w = ${t.bestWeight}), ` +
              `ensemble ${
                pct(t.ensemble)
              } on ${t.samples} samples; ${s.generation} generations in ${s.seconds.toFixed(0)} s`,
          );
        }
      })
    );
}
