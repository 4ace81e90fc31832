// Texture twins (src/gpu/textured.ts): the rewrite itself; every opted-in kernel definition has a
// twin that compiles on the adapter and matches its bindings; and kernels give bit-identical
// results reading buffers or textures (the default paths are checked against float64 in each
// kernel family's tests; this pins the other path to them).
import assert from "node:assert/strict";
import {
  bindingProblems,
  defineKernel,
  type Gpu,
  type KernelDef,
  storageReadSlots,
  storageTextureDef,
  type Tensor,
  type TextureRead,
  textureTwin,
} from "../../src/gpu/mod.ts";
import { ACT_BWD, activationBackward } from "../../src/kernels/activation.ts";
import { biasGrad } from "../../src/kernels/bias.ts";
import { matmul } from "../../src/kernels/matmul.ts";
import { allKernelDefs, gpuTest } from "../../src/testing/mod.ts";

const base = (code: string, bindings: KernelDef["bindings"]) =>
  defineKernel({ shader: "t.wgsl", code, entry: "main", bindings, textureInputs: true });

Deno.test("textureTwin: nested loads, vec4 and u32 arrays, comments; pointers and opt-out", () => {
  const code = `// idx[ in a comment is left alone
@group(0) @binding(0) var<storage, read> idx: array<u32>;
@group(0) @binding(1) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4f>;
@compute @workgroup_size(8) fn main(@builtin(global_invocation_id) g: vec3u) {
  out[g.x] = v[idx[g.x + 1u]] * vec4f(f32(idx[0]));
}`;
  const twin = textureTwin(base(code, [["idx", "read"], ["v", "read"], ["out", "read_write"]]))!;
  assert.deepEqual(twin.formats, { idx: "r32uint", v: "rgba32float" });
  assert.deepEqual(twin.def.bindings, [["idx", "texture_u32"], ["v", "texture_f32"], [
    "out",
    "read_write",
  ]]);
  assert.match(
    twin.def.code,
    /out\[g\.x\] = textureLoad\(v, _tw_at\(u32\(textureLoad\(idx, _tw_at\(u32\(g\.x \+ 1u\)\), 0\)\.x\)\), 0\)/,
  );
  assert.doesNotMatch(twin.def.code, /idx\[ in a comment/);
  assert.deepEqual(bindingProblems(twin.def), []);
  // arrayLength or a pointer to a read-only array: no twin; not opted in: no twin.
  const len = code.replace("f32(idx[0])", "f32(arrayLength(&idx))");
  assert.equal(
    textureTwin(base(len, [["idx", "read"], ["v", "read"], ["out", "read_write"]])),
    null,
  );
  assert.equal(
    textureTwin({
      ...base(code, [["idx", "read"], ["v", "read"], ["out", "read_write"]]),
      textureInputs: false,
    }),
    null,
  );
});

gpuTest(
  "every opted-in kernel has a texture twin (and a storage-read twin) that compiles and matches its bindings",
  async (gpu) => {
    const opted = (await allKernelDefs()).filter((d) => d.textureInputs);
    assert.ok(opted.length >= 20, `only ${opted.length} kernels opt in`);
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const d of opted) {
      const twin = textureTwin(d);
      if (!twin) {
        problems.push(`${d.shader}:${d.entry}: no twin`);
        continue;
      }
      problems.push(...bindingProblems(twin.def));
      if (seen.has(twin.def.code)) continue;
      seen.add(twin.def.code);
      const msgs = await gpu.compileMessages(twin.def.shader, twin.def.code);
      problems.push(...msgs.filter((m) => m.includes(": error: ")));
      // Its storage-read twin (src/gpu/storage_textures.ts) for the mirrors' formats.
      if (storageReadSlots(gpu) === 0) continue;
      const st = storageTextureDef(twin.def, twin.formats);
      problems.push(...bindingProblems(st));
      const stMsgs = await gpu.compileMessages(st.shader, st.code);
      problems.push(...stMsgs.filter((m) => m.includes(": error: ")));
    }
    assert.deepEqual(problems, []);
  },
);

/**
 * Runs `body` with FILIGREE_INPUTS set to each source and, for textures, each way of reading them
 * (FILIGREE_TEXTURE_READS: sampled, storage where the device has storage reads), checking on `probe` (the
 * activation backward's z and dy) that the choice took; returns the outputs read back per mode.
 */
async function bothSources(
  gpu: Gpu,
  probe: Record<string, Tensor>,
  body: () => Tensor[],
): Promise<Record<string, Float32Array[]>> {
  const saved = Deno.env.get("FILIGREE_INPUTS");
  const savedReads = Deno.env.get("FILIGREE_TEXTURE_READS");
  const out: Record<string, Float32Array[]> = {};
  const modes: [string, "buffer" | "texture", TextureRead][] = [
    ["buffer", "buffer", "sampled"],
    ["texture", "texture", "sampled"],
  ];
  if (storageReadSlots(gpu) >= 2) modes.push(["storage texture", "texture", "storage"]);
  try {
    for (const [mode, src, read] of modes) {
      Deno.env.set("FILIGREE_INPUTS", src);
      Deno.env.set("FILIGREE_TEXTURE_READS", read);
      // The override takes: the activation kernel resolves to its twin only under "texture",
      // and to the twin's storage-read twin only under "storage".
      const k = gpu.kernel(ACT_BWD, { ACT: 0, WG: 64 });
      const [ran] = gpu.recorder().resolveTextures(k, probe);
      const want = src === "buffer"
        ? "activation.wgsl"
        : read === "sampled"
        ? "activation.wgsl+textures"
        : "activation.wgsl+textures+stex(dy=rgba32float,z=rgba32float)";
      assert.equal(ran.def.shader, want, mode);
      const ts = body();
      out[mode] = [];
      for (const t of ts) out[mode].push(new Float32Array(await gpu.read(t)));
    }
  } finally {
    for (const [name, v] of [["FILIGREE_INPUTS", saved], ["FILIGREE_TEXTURE_READS", savedReads]]) {
      if (v === undefined) Deno.env.delete(name!);
      else Deno.env.set(name!, v);
    }
  }
  return out;
}

gpuTest(
  "buffers and textures give bit-identical results (activation, bias, matmul)",
  async (gpu, rng) => {
    const rows = 37, batch = 29, ld = 32;
    const rand = (n: number) => gpu.tensor("f32", [n], { data: Float32Array.from(rng.normal(n)) });
    const z = rand(rows * ld), dy = rand(rows * ld);
    // m x k times k x n with odd sizes (A 45 x 31, B 31 x 19).
    const a = rand(45 * 31), b = rand(31 * 19);
    const got = await bothSources(gpu, { z, dy }, () => {
      const dz = gpu.tensor("f32", [rows * ld]);
      const dbias = gpu.tensor("f32", [rows]);
      const c = gpu.tensor("f32", [45 * 19]);
      for (const t of [dz, dbias, c]) gpu.poison(t);
      const rec = gpu.recorder();
      activationBackward(rec, { z, dy, dz, rows, batch, activation: "gelu" });
      biasGrad(rec, { dy, dbias, rows, batch });
      matmul(rec, { a, b, c, m: 45, n: 19, k: 31 });
      rec.submit();
      return [dz, dbias, c];
    });
    for (let i = 0; i < 3; i++) {
      assert.ok(got.buffer[i].every((v) => Number.isFinite(v)), `output ${i} has poison left`);
      for (const mode of Object.keys(got)) {
        assert.deepEqual(got[mode][i], got.buffer[i], `output ${i}, ${mode}`);
      }
    }
  },
);
