/**
 * Adapter quirks: one row per known driver behaviour that the runtime works around, each with
 * the test that recognises the adapter and the evidence. Kernels and shaders stay the same; the
 * runtime ({@link Gpu}, {@link Kernel}) reads the resulting {@link Quirks}.
 *
 * | quirk | adapter | effect |
 * | --- | --- | --- |
 * | `paramsInStorage` | Mesa lavapipe (Vulkan on llvmpipe), Mesa < 23.1 | kernel parameter blocks bound as read-only storage instead of uniform buffers |
 *
 * **lavapipe recompiles a shader on every dispatch.** Mesa 22.3's lavapipe "inlines uniforms":
 * for a shader of more than 100 SSA values whose loop bounds or branches read a uniform buffer,
 * every dispatch clones the shader, substitutes the current uniform values, runs the NIR
 * optimiser and compiles a fresh llvmpipe variant (`update_inline_shader_state` in
 * `lvp_execute.c`), which is never cached or freed (Mesa 23.1 added a variant cache). Measured
 * on 784-300-100-10 training: ~1 MB of host memory and a growing share of the step time per step
 * (softmax cross-entropy ~670 KB and the reductions ~330 KB per step, 0 with those dispatches
 * skipped). Storage buffers are never inlined, so binding the parameter blocks as read-only
 * storage removes it (memory flat over 1,000 steps, see bench/memory_bench.ts).
 * `FILIGREE_PARAMS=uniform|storage` forces either binding (for measurements).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quirksFor } from "./quirks.ts";
 * const lvp = { description: "llvmpipe (LLVM 15.0.6, 256 bits)", vendor: "65541", isFallbackAdapter: true };
 * assert.ok(quirksFor("vulkan", lvp).paramsInStorage);
 * assert.deepEqual(quirksFor("gl", lvp).paramsInStorage, false);
 * ```
 * @module
 */
import type { AdapterFacts } from "./backend.ts";

/** Workarounds in effect on a device. */
export interface Quirks {
  /** Bind `var<uniform>` parameter blocks as `var<storage, read>`. */
  paramsInStorage: boolean;
}

/** One known quirk. */
interface QuirkRow {
  name: keyof Quirks;
  /** Whether the adapter (reached through `backend`) has it. */
  applies: (backend: string, adapter: AdapterFacts) => boolean;
  /** Environment variable that forces it on ("storage") or off ("uniform"). */
  env: { name: string; on: string; off: string };
}

/** The quirk table. */
export const QUIRKS: readonly QuirkRow[] = [
  {
    name: "paramsInStorage",
    applies: (backend, a) =>
      backend.startsWith("vulkan") && /llvmpipe|lavapipe/i.test(a.description),
    env: { name: "FILIGREE_PARAMS", on: "storage", off: "uniform" },
  },
];

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** The quirks of an adapter reached through `backend` (environment overrides applied). */
export function quirksFor(backend: string, adapter: AdapterFacts): Quirks {
  const q: Quirks = { paramsInStorage: false };
  for (const row of QUIRKS) {
    const forced = envGet(row.env.name);
    q[row.name] = forced === row.env.on
      ? true
      : forced === row.env.off
      ? false
      : row.applies(backend, adapter);
  }
  return q;
}

/** WGSL with every `var<uniform>` declaration turned into `var<storage, read>`. */
export function paramsToStorage(code: string): string {
  return code.replace(/var\s*<\s*uniform\s*>/g, "var<storage, read>");
}
