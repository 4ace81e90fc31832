/**
 * `deno task info`: the adapter, its backend, the limits that matter and the features, then
 * one kernel run and verified against its float64 reference.
 *
 * @example
 * ```sh
 * deno task info --json
 * ```
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { Gpu } from "../src/gpu/device.ts";
import { roundUp4 } from "../src/gpu/tensor.ts";
import { biasAdd } from "../src/kernels/bias.ts";
import { biasAddRef } from "../src/kernels/bias_ref.ts";
import { FiligreeError } from "../src/gpu/errors.ts";
import { guarded } from "./main.ts";

/** Runs bias_add on random data and returns the max abs error against float64. */
export async function verifyOneKernel(gpu: Gpu): Promise<{ kernel: string; maxAbsError: number }> {
  const rows = 37, batch = 13, ld = roundUp4(batch);
  const x = new Float32Array(rows * batch).map(() => Math.random() * 2 - 1);
  const b = new Float32Array(rows).map(() => Math.random() * 2 - 1);
  const xp = new Float32Array(rows * ld);
  for (let r = 0; r < rows; r++) xp.set(x.subarray(r * batch, (r + 1) * batch), r * ld);
  const tx = gpu.tensor("f32", [rows, ld], { data: xp });
  const tb = gpu.tensor("f32", [rows], { data: b });
  const ty = gpu.tensor("f32", [rows, ld]);
  gpu.poison(ty);
  const rec = gpu.recorder("info");
  biasAdd(rec, { x: tx, bias: tb, y: ty, rows, batch });
  rec.submit();
  const y = await gpu.read(ty);
  const want = biasAddRef(Float64Array.from(x), Float64Array.from(b), rows, batch);
  let err = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < ld; c++) {
      const g = y[r * ld + c];
      err = Math.max(err, c < batch ? Math.abs(g - want[r * batch + c]) : Math.abs(g));
      if (Number.isNaN(g)) err = Infinity;
    }
  }
  if (!(err < 1e-5)) throw new FiligreeError(`kernel check failed: bias_add max error ${err}`);
  return { kernel: "bias_add 37x13", maxAbsError: err };
}

/** The `info` subcommand. */
export function infoCommand() {
  return new Command("info")
    .description("print the WebGPU adapter, backend, limits and features; verify one kernel")
    .option("--json", "print JSON")
    .action((opts) =>
      guarded(async () => {
        const gpu = await Gpu.create();
        const report = gpu.report();
        const check = await verifyOneKernel(gpu);
        if (opts.json) {
          console.log(JSON.stringify({ adapter: report, check }, null, 2));
        } else {
          console.log(
            `adapter   ${report.description || "(no description)"} (vendor ${report.vendor})`,
          );
          console.log(
            `backend   ${report.backend}${
              report.isFallbackAdapter ? " (software fallback adapter)" : ""
            }`,
          );
          console.log(`  why     ${report.backendReason}`);
          const quirks = Object.entries(report.quirks).filter(([, on]) => on).map(([k]) => k);
          if (quirks.length) console.log(`  quirks  ${quirks.join(", ")} (src/gpu/quirks.ts)`);
          console.log(`inputs    ${report.inputs}`);
          console.log(`  why     ${report.inputsReason}`);
          if (report.inputs === "texture") {
            console.log(`  read    ${report.textureReads}: ${report.textureReadsReason}`);
          }
          console.log(`gc        ${report.collect}`);
          console.log(`features  ${report.features.join(", ")}`);
          console.log("limits");
          for (const [k, v] of Object.entries(report.limits)) console.log(`  ${k.padEnd(36)} ${v}`);
          console.log(
            `check     ${check.kernel}: OK, max |error| vs float64 ${
              check.maxAbsError.toExponential(2)
            }`,
          );
        }
        gpu.destroy();
      })
    );
}
