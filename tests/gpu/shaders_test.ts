// Every shader in shaders/ compiles on this adapter (naga via getCompilationInfo), and every
// kernel definition exported from src/kernels/ agrees with its shader's reflected bindings.
import assert from "node:assert/strict";
import { bindingProblems } from "../../src/gpu/mod.ts";
import { allKernelDefs, gpuTest } from "../../src/testing/mod.ts";

gpuTest(
  "every kernel's WGSL compiles on the adapter and matches its declared bindings",
  async (gpu) => {
    const defs = await allKernelDefs();
    assert.ok(defs.length > 0);
    const seen = new Set<string>();
    const problems: string[] = [];
    for (const d of defs) {
      problems.push(...bindingProblems(d));
      if (seen.has(d.code)) continue;
      seen.add(d.code);
      const msgs = await gpu.compileMessages(d.shader, d.code);
      problems.push(...msgs.filter((m) => m.includes(": error: ")));
    }
    assert.deepEqual(problems, []);
    // Every shader file (function libraries aside) is used by some kernel definition.
    const files = [...Deno.readDirSync(new URL("../../shaders/", import.meta.url))]
      .map((e) => e.name).filter((n) => n.endsWith(".wgsl") && !n.endsWith("_fns.wgsl"));
    const used = new Set(defs.map((d) => d.shader));
    assert.deepEqual(
      files.filter((f) => !used.has(f)),
      [],
      "shader files without a kernel definition",
    );
  },
);
