/**
 * The helper that prepends the ablation kernels' WGSL function library
 * (shaders/ablation_fns.wgsl: `batch_cell`, the row, column, ablation and sample of an element of
 * a batch of K ablations over S samples) to a shader. Used by kernels/analysis.ts and
 * kernels/ablation_conv.ts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withAblationFns } from "./ablation_fns.ts";
 * const code = withAblationFns("// my kernel");
 * assert.ok(code.includes("fn batch_cell"));
 * assert.ok(code.endsWith("// my kernel"));
 * ```
 * @module
 */
import fns from "../../shaders/ablation_fns.wgsl" with { type: "text" };

/** Prepends the ablation function library to a kernel's WGSL. */
export function withAblationFns(code: string): string {
  return fns + "\n" + code;
}
