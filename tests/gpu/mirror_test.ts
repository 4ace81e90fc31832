// Texture mirrors (src/gpu/mirror.ts): what a kernel reads through textureLoad is the buffer's
// content, element for element, in both layouts; a texture binding is checked like a buffer one;
// the sparse kernels fall back to buffers where a mirror is impossible.
import assert from "node:assert/strict";
import {
  canMirrorRows,
  defineKernel,
  FiligreeError,
  type Gpu,
  mirror,
  MIRROR_WIDTH,
  ShaderError,
  type Tensor,
} from "../../src/gpu/mod.ts";
import { adapterClass, SPARSE_INPUTS, sparseInputs } from "../../src/kernels/sparse.ts";
import { gpuTest } from "../../src/testing/mod.ts";

// Reads every texel of a mirror back into a buffer through textureLoad (what the kernels do).
const READ = `
struct Params { width: u32, height: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var tex: texture_2d<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let i = g.x;
  if (i >= p.width * p.height) { return; }
  out[i] = textureLoad(tex, vec2u(i % p.width, i / p.width), 0);
}`;
const READ_TEX = defineKernel({
  shader: "mirror_read.wgsl",
  code: READ,
  entry: "main",
  bindings: [["p", "uniform"], ["tex", "texture_f32"], ["out", "read_write"]],
});

async function readTexels(gpu: Gpu, tex: GPUTexture): Promise<Float32Array> {
  const n = tex.width * tex.height;
  const out = gpu.tensor("f32", [n * 4]);
  gpu.poison(out);
  const rec = gpu.recorder();
  const p = gpu.uniform(new Uint32Array([tex.width, tex.height, 0, 0]));
  rec.dispatch(gpu.kernel(READ_TEX), { p, tex, out }, Math.ceil(n / 64));
  rec.submit();
  const got = new Float32Array(await gpu.read(out));
  gpu.release(out);
  return got;
}

gpuTest(
  "mirror rows4: texel (q, r) is quad q of row r, refreshed by each recorded copy",
  async (gpu, rng) => {
    const rows = 5;
    const ld4 = 16; // 256-byte rows
    const data = Float32Array.from(rng.normal(rows * ld4 * 4));
    const t: Tensor = gpu.tensor("f32", [rows, ld4 * 4], { data, label: "acts" });
    let rec = gpu.recorder();
    const tex = mirror(rec, t, { kind: "rows4", rows, ld4 });
    rec.submit();
    assert.deepEqual([tex.width, tex.height, tex.format], [ld4, rows, "rgba32float"]);
    assert.deepEqual(await readTexels(gpu, tex), data);
    // A new copy is recorded on every call and the same texture is reused.
    const next = data.map((v) => v * 2 + 1);
    gpu.write(t, next);
    rec = gpu.recorder();
    assert.equal(mirror(rec, t, { kind: "rows4", rows, ld4 }), tex);
    rec.submit();
    assert.deepEqual(await readTexels(gpu, tex), next);
    gpu.release(t);
  },
);

gpuTest(
  "mirror flat: element k is texel (k % width, k / width), a partial last row included",
  async (gpu, rng) => {
    for (const n of [1, 7, MIRROR_WIDTH, 2 * MIRROR_WIDTH + 13]) {
      const data = Float32Array.from(rng.normal(n));
      const t = gpu.tensor("f32", [n], { data });
      const rec = gpu.recorder();
      const tex = mirror(rec, t, { kind: "flat", n, format: "r32float" });
      rec.submit();
      assert.deepEqual([tex.width, tex.height], [
        Math.min(n, MIRROR_WIDTH),
        Math.ceil(n / MIRROR_WIDTH),
      ]);
      const texels = await readTexels(gpu, tex);
      const got = Float32Array.from({ length: n }, (_, k) => texels[4 * k]);
      assert.deepEqual(got, data, `n ${n}`);
      gpu.release(t);
    }
  },
);

gpuTest(
  "mirror: impossible layouts and short tensors are one-line errors; bindings are kind-checked",
  (gpu) => {
    const t = gpu.tensor("f32", [3 * 20], { label: "acts" });
    const rec = gpu.recorder();
    assert.equal(canMirrorRows(gpu, 3, 5), false); // 80-byte rows
    assert.throws(
      () => mirror(rec, t, { kind: "rows4", rows: 3, ld4: 5 }),
      (e: Error) => e instanceof FiligreeError && /multiple of 256 bytes/.test(e.message),
    );
    assert.throws(
      () => mirror(rec, t, { kind: "rows4", rows: 3, ld4: 16 }),
      /tensor acts has 60 elements, needs 192/,
    );
    // A buffer where the kernel declares a texture (and the reverse) is refused by name.
    const p = gpu.uniform(new Uint32Array([1, 1, 0, 0]));
    assert.throws(
      () => rec.dispatch(gpu.kernel(READ_TEX), { p, tex: t, out: t }, 1),
      (e: Error) =>
        e instanceof ShaderError && /"tex" is a texture_f32 binding, got a buffer/.test(e.message),
    );
    gpu.release(t);
  },
);

gpuTest("sparseInputs: the adapter's default, forced choices, and the buffer fallback", (gpu) => {
  const env = Deno.env.get("FILIGREE_SPARSE_INPUTS");
  assert.equal(
    sparseInputs(gpu, [784, 300], 128, 5000),
    env || SPARSE_INPUTS[adapterClass(gpu)],
  );
  try {
    Deno.env.set("FILIGREE_SPARSE_INPUTS", "bogus");
    assert.throws(
      () => sparseInputs(gpu, [784, 300], 128, 5000),
      /FILIGREE_SPARSE_INPUTS must be "buffer" or "texture", got "bogus"/,
    );
    Deno.env.set("FILIGREE_SPARSE_INPUTS", "buffer");
    assert.equal(sparseInputs(gpu, [784, 300], 128, 5000), "buffer");
  } finally {
    if (env === undefined) Deno.env.delete("FILIGREE_SPARSE_INPUTS");
    else Deno.env.set("FILIGREE_SPARSE_INPUTS", env);
  }
  assert.equal(sparseInputs(gpu, [784, 300], 128, 5000, "buffer"), "buffer");
  assert.equal(sparseInputs(gpu, [784, 300], 128, 5000, "texture"), "texture");
  // 100 samples: rows of 400 bytes cannot be copied into a texture.
  assert.equal(sparseInputs(gpu, [784, 300], 100, 5000, "texture"), "buffer");
  // More rows than a texture may have.
  const tall = gpu.limits.maxTextureDimension2D + 1;
  assert.equal(sparseInputs(gpu, [tall], 128, 5000, "texture"), "buffer");
});
