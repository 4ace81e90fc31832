import assert from "node:assert/strict";
import { type AdapterFacts, chooseBackend, isSoftwareAdapter } from "../../src/gpu/backend.ts";
import { paramsToStorage, quirksFor } from "../../src/gpu/quirks.ts";
import { Gpu } from "../../src/gpu/device.ts";
import { verifyOneKernel } from "../../cli/info.ts";

const LLVMPIPE: AdapterFacts = {
  description: "llvmpipe (LLVM 15.0.6, 256 bits)",
  vendor: "65541",
  isFallbackAdapter: true,
};
const H100: AdapterFacts = {
  description: "NVIDIA H100 80GB HBM3",
  vendor: "4318",
  isFallbackAdapter: false,
};

Deno.test("backend choice: the environment wins, software adapters get GL, hardware Vulkan", () => {
  assert.deepEqual(chooseBackend({ env: "vulkan", vulkan: LLVMPIPE }).backend, "vulkan");
  assert.deepEqual(chooseBackend({ env: "vulkan", vulkan: LLVMPIPE }).source, "user");
  assert.deepEqual(chooseBackend({ env: "gl", vulkan: H100 }).backend, "gl");
  const sw = chooseBackend({ env: undefined, vulkan: LLVMPIPE });
  assert.deepEqual([sw.backend, sw.source], ["gl", "auto"]);
  assert.match(sw.reason, /software adapter \(llvmpipe/);
  const hw = chooseBackend({ env: undefined, vulkan: H100 });
  assert.deepEqual([hw.backend, hw.source], ["vulkan", "auto"]);
  assert.match(hw.reason, /hardware adapter \(NVIDIA H100/);
  assert.deepEqual(chooseBackend({ env: undefined, vulkan: null }).backend, "gl");
  // An empty variable makes Deno find no adapter: it counts as unset.
  assert.deepEqual(chooseBackend({ env: " ", vulkan: LLVMPIPE }).backend, "gl");
  const unprobed = chooseBackend({ env: undefined, vulkan: "unprobed", probeError: "denied" });
  assert.deepEqual([unprobed.backend, unprobed.source], [undefined, "default"]);
  assert.match(unprobed.reason, /denied/);
});

Deno.test("backend choice: a parent's choice is inherited only while the variable still holds it", () => {
  const inherited = "gl|software adapter (llvmpipe)";
  const c = chooseBackend({ env: "gl", inherited, vulkan: "unprobed" });
  assert.deepEqual([c.backend, c.source], ["gl", "inherited"]);
  assert.match(c.reason, /^software adapter \(llvmpipe\) \(chosen by the parent process\)$/);
  // The user changed it in between: the user's value, and the user's reason.
  const u = chooseBackend({ env: "vulkan", inherited, vulkan: "unprobed" });
  assert.deepEqual([u.backend, u.source], ["vulkan", "user"]);
});

Deno.test("software adapters are recognised by the fallback flag or the driver name", () => {
  assert(isSoftwareAdapter(LLVMPIPE));
  assert(isSoftwareAdapter({ ...LLVMPIPE, isFallbackAdapter: false }));
  assert(
    isSoftwareAdapter({ description: "SwiftShader Device", vendor: "", isFallbackAdapter: false }),
  );
  assert(!isSoftwareAdapter(H100));
});

Deno.test("quirks: parameter blocks in storage only on lavapipe through Vulkan", () => {
  const saved = Deno.env.get("FILIGREE_PARAMS");
  Deno.env.delete("FILIGREE_PARAMS");
  try {
    assert.deepEqual(quirksFor("vulkan", LLVMPIPE).paramsInStorage, true);
    assert.deepEqual(quirksFor("gl", LLVMPIPE).paramsInStorage, false);
    assert.deepEqual(quirksFor("vulkan", H100).paramsInStorage, false);
    Deno.env.set("FILIGREE_PARAMS", "uniform");
    assert.deepEqual(quirksFor("vulkan", LLVMPIPE).paramsInStorage, false);
    Deno.env.set("FILIGREE_PARAMS", "storage");
    assert.deepEqual(quirksFor("gl", H100).paramsInStorage, true);
  } finally {
    if (saved === undefined) Deno.env.delete("FILIGREE_PARAMS");
    else Deno.env.set("FILIGREE_PARAMS", saved);
  }
  assert.deepEqual(
    paramsToStorage("@group(0) @binding(0) var<uniform> p: P;\nvar< uniform > q: Q;"),
    "@group(0) @binding(0) var<storage, read> p: P;\nvar<storage, read> q: Q;",
  );
});

Deno.test("a device with parameter blocks in storage computes what the uniform one does", async () => {
  const saved = Deno.env.get("FILIGREE_PARAMS");
  for (const mode of ["storage", "uniform"]) {
    Deno.env.set("FILIGREE_PARAMS", mode);
    const gpu = await Gpu.create();
    try {
      assert.deepEqual(gpu.quirks.paramsInStorage, mode === "storage");
      const check = await verifyOneKernel(gpu); // random inputs vs float64, throws on mismatch
      assert(check.maxAbsError < 1e-5);
    } finally {
      gpu.destroy();
    }
  }
  if (saved === undefined) Deno.env.delete("FILIGREE_PARAMS");
  else Deno.env.set("FILIGREE_PARAMS", saved);
});

Deno.test("deno task info names the backend and why, with nothing on stderr", async () => {
  // A clean environment: no DENO_WEBGPU_BACKEND, no XDG_RUNTIME_DIR, no inherited choice.
  const env: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "DENO_DIR", "NO_COLOR"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "cli/main.ts", "info", "--json"],
    env,
    clearEnv: true,
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert(out.success, stderr);
  assert.deepEqual(stderr.trim(), "");
  const report = JSON.parse(new TextDecoder().decode(out.stdout)).adapter;
  assert(typeof report.backend === "string" && report.backend.length > 0);
  assert(typeof report.backendReason === "string" && report.backendReason.length > 0);
  if (report.isFallbackAdapter) {
    // On a software adapter the automatic choice is GL.
    assert.deepEqual(report.backend, "gl");
    assert.match(report.backendReason, /software adapter/);
    // ... and read-only arrays through texture mirrors (clearEnv: no FILIGREE_INPUTS override).
    assert.deepEqual(report.inputs, "texture");
    assert.match(report.inputsReason, /software adapter.*FILIGREE_INPUTS=buffer/);
  } else {
    assert.deepEqual(report.inputs, "buffer");
  }
});
