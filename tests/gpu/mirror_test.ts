// Texture mirrors (src/gpu/mirror.ts): what a kernel reads through textureLoad is the buffer's
// content, element for element, in every format, a partial last row included; a texture binding
// is checked like a buffer one; the sparse kernels fall back to buffers where a mirror is
// impossible, and the environment override is validated.
import assert from "node:assert/strict";
import {
  canMirror,
  defineKernel,
  FiligreeError,
  type Gpu,
  mirror,
  MIRROR_WIDTH,
  type MirrorFormat,
  ShaderError,
} from "../../src/gpu/mod.ts";
import { adapterClass, INPUT_SOURCES, sparseInputs } from "../../src/kernels/sparse.ts";
import { gpuTest } from "../../src/testing/mod.ts";

// Reads every texel of a mirror back into a buffer through textureLoad (what the kernels do).
const read = (type: "f32" | "u32") => `
struct Params { width: u32, height: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var tex: texture_2d<${type}>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<${type}>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let i = g.x;
  if (i >= p.width * p.height) { return; }
  out[i] = textureLoad(tex, vec2u(i % p.width, i / p.width), 0);
}`;
const READ_F32 = defineKernel({
  shader: "mirror_read_f32.wgsl",
  code: read("f32"),
  entry: "main",
  bindings: [["p", "uniform"], ["tex", "texture_f32"], ["out", "read_write"]],
});
const READ_U32 = defineKernel({
  shader: "mirror_read_u32.wgsl",
  code: read("u32"),
  entry: "main",
  bindings: [["p", "uniform"], ["tex", "texture_u32"], ["out", "read_write"]],
});

/** The texels of a mirror in order, 4 channels each (r32 formats: channel 0 is the value). */
async function readTexels(gpu: Gpu, tex: GPUTexture): Promise<Uint32Array> {
  const n = tex.width * tex.height;
  const out = gpu.tensor("u32", [n * 4]);
  gpu.poison(out);
  const rec = gpu.recorder();
  const p = gpu.uniform(new Uint32Array([tex.width, tex.height, 0, 0]));
  const k = gpu.kernel(tex.format === "r32uint" ? READ_U32 : READ_F32);
  rec.dispatch(k, { p, tex, out }, Math.ceil(n / 64));
  rec.submit();
  const got = new Uint32Array(await gpu.read(out));
  gpu.release(out);
  return got;
}

gpuTest(
  "mirror: texel t holds elements of t in every format and size, refreshed by each copy",
  async (gpu, rng) => {
    const cases: [number, MirrorFormat][] = [
      [1, "r32float"],
      [7, "r32uint"],
      [MIRROR_WIDTH, "r32float"],
      [2 * MIRROR_WIDTH + 13, "r32uint"],
      [4 * 3, "rgba32float"],
      [4 * (MIRROR_WIDTH + 5), "rgba32float"],
    ];
    for (const [n, format] of cases) {
      const bits = new Uint32Array(new Float32Array(rng.normal(n)).buffer);
      const t = gpu.tensor(format === "r32uint" ? "u32" : "f32", [n + 3], { label: "m" });
      gpu.write(t, bits);
      let rec = gpu.recorder();
      const tex = mirror(rec, t, { n, format });
      rec.submit();
      const e = format === "rgba32float" ? 4 : 1;
      assert.deepEqual(
        [tex.width, tex.height, tex.format],
        [Math.min(n / e, MIRROR_WIDTH), Math.ceil(n / e / MIRROR_WIDTH), format],
      );
      const pick = (texels: Uint32Array) =>
        Uint32Array.from({ length: n }, (_, k) => e === 4 ? texels[k] : texels[4 * k] // rgba: texel k/4 channel k%4 = flat k
        );
      assert.deepEqual(pick(await readTexels(gpu, tex)), bits, `${format} n ${n}`);
      // The same texture is reused and a new copy is recorded on every call.
      const next = bits.map((v) => v ^ 0x5a5a);
      gpu.write(t, next);
      rec = gpu.recorder();
      assert.equal(mirror(rec, t, { n, format }), tex);
      rec.submit();
      assert.deepEqual(pick(await readTexels(gpu, tex)), next, `${format} n ${n} refreshed`);
      gpu.release(t);
    }
  },
);

gpuTest(
  "mirror: impossible layouts and short tensors are one-line errors; bindings are kind-checked",
  (gpu) => {
    const t = gpu.tensor("f32", [60], { label: "acts" });
    const rec = gpu.recorder();
    assert.equal(canMirror(gpu, 6, "rgba32float"), false);
    assert.throws(
      () => mirror(rec, t, { n: 6, format: "rgba32float" }),
      (e: Error) => e instanceof FiligreeError && /not whole texels/.test(e.message),
    );
    const tall = 4 * MIRROR_WIDTH * (gpu.limits.maxTextureDimension2D + 1);
    assert.equal(canMirror(gpu, tall, "rgba32float"), false);
    assert.throws(
      () => mirror(rec, t, { n: 64, format: "r32float" }),
      /acts has 60 elements, needs 64/,
    );
    // A buffer where the kernel declares a texture is refused by name.
    const p = gpu.uniform(new Uint32Array([1, 1, 0, 0]));
    assert.throws(
      () => rec.dispatch(gpu.kernel(READ_F32), { p, tex: t, out: t }, 1),
      (e: Error) =>
        e instanceof ShaderError && /"tex" is a texture_f32 binding, got a buffer/.test(e.message),
    );
    gpu.release(t);
  },
);

gpuTest(
  "sparseInputs: the adapter's default, forced choices, the override, the fallback",
  (gpu) => {
    const env = Deno.env.get("FILIGREE_INPUTS");
    assert.equal(sparseInputs(gpu, [784, 300], 128, 5000), env || INPUT_SOURCES[adapterClass(gpu)]);
    assert.equal(sparseInputs(gpu, [784, 300], 100, 5000, "buffer"), "buffer");
    assert.equal(sparseInputs(gpu, [784, 300], 100, 5000, "texture"), "texture");
    // More activations than a texture holds: buffers.
    const rows = MIRROR_WIDTH * (gpu.limits.maxTextureDimension2D + 1) / 32;
    assert.equal(sparseInputs(gpu, [rows], 128, 5000, "texture"), "buffer");
    try {
      Deno.env.set("FILIGREE_INPUTS", "bogus");
      assert.throws(
        () => sparseInputs(gpu, [784, 300], 128, 5000),
        /FILIGREE_INPUTS must be "buffer" or "texture", got "bogus"/,
      );
      Deno.env.set("FILIGREE_INPUTS", "buffer");
      assert.equal(sparseInputs(gpu, [784, 300], 128, 5000), "buffer");
    } finally {
      if (env === undefined) Deno.env.delete("FILIGREE_INPUTS");
      else Deno.env.set("FILIGREE_INPUTS", env);
    }
  },
);

gpuTest(
  "mirror: one recorder copies once, and again after a recorded copy or kernel writes the buffer",
  async (gpu) => {
    const n = 8;
    const t = gpu.tensor("f32", [n], { data: new Float32Array(n).fill(1) });
    const two = gpu.tensor("f32", [n], { data: new Float32Array(n).fill(2) });
    const outs = [0, 1, 2].map(() => gpu.tensor("f32", [4 * n]));
    const FILL = defineKernel({
      shader: "mirror_fill.wgsl",
      code: `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
        @compute @workgroup_size(8) fn main(@builtin(global_invocation_id) g: vec3u) {
          if (g.x < 8u) { y[g.x] = 3.0; } }`,
      entry: "main",
      bindings: [["y", "read_write"]],
    });
    const rec = gpu.recorder();
    const p = gpu.uniform(new Uint32Array([n, 1, 0, 0]));
    const read = (out: typeof outs[0]) =>
      rec.dispatch(
        gpu.kernel(READ_F32),
        { p, tex: mirror(rec, t, { n, format: "r32float" }), out },
        1,
      );
    read(outs[0]);
    rec.copy(two, t); // a recorded copy into t: the next mirror copies again
    read(outs[1]);
    rec.dispatch(gpu.kernel(FILL), { y: t }, 1); // a kernel writing t: again
    read(outs[2]);
    rec.submit();
    for (const [i, want] of [1, 2, 3].entries()) {
      const got = new Float32Array(await gpu.read(outs[i]));
      assert.deepEqual(
        Array.from({ length: n }, (_, k) => got[4 * k]),
        new Array(n).fill(want),
        `read ${i}`,
      );
    }
    for (const x of [t, two, ...outs]) gpu.release(x);
  },
);

gpuTest(
  "mirror across command buffers: never read before its copy runs, never stale after out-of-order submits",
  async (gpu) => {
    const n = 8;
    const x = gpu.tensor("f32", [n], { data: new Float32Array(n).fill(1) });
    const two = gpu.tensor("f32", [n], { data: new Float32Array(n).fill(2) });
    const p = gpu.uniform(new Uint32Array([n, 1, 0, 0]));
    const readInto = (rec: ReturnType<typeof gpu.recorder>) => {
      const out = gpu.tensor("f32", [4 * n]);
      gpu.poison(out);
      const tex = mirror(rec, x, { n, format: "r32float" });
      rec.dispatch(gpu.kernel(READ_F32), { p, tex, out }, 1);
      return out;
    };
    const values = async (out: ReturnType<typeof gpu.tensor>) => {
      const got = new Float32Array(await gpu.read(out));
      return Array.from({ length: n }, (_, k) => got[4 * k]);
    };
    // 1. A copies but is submitted after B: B must have recorded its own copy.
    const a = gpu.recorder(), b = gpu.recorder();
    const outA = readInto(a), outB = readInto(b);
    b.submit();
    a.submit();
    assert.deepEqual(await values(outB), new Array(n).fill(1), "B before A");
    assert.deepEqual(await values(outA), new Array(n).fill(1), "A");
    // 2. C records a write to x before D copies x; D is submitted first, C after: E sees the write.
    const c = gpu.recorder(), d = gpu.recorder();
    c.copy(two, x);
    const outD = readInto(d);
    d.submit();
    c.submit();
    const e = gpu.recorder();
    const outE = readInto(e);
    e.submit();
    assert.deepEqual(await values(outD), new Array(n).fill(1), "D ran before C's write");
    assert.deepEqual(await values(outE), new Array(n).fill(2), "E after C's write");
    // 3. Nothing written since: a later command buffer reuses the mirror and still reads 2.
    const f = gpu.recorder();
    const outF = readInto(f);
    f.submit();
    assert.deepEqual(await values(outF), new Array(n).fill(2), "F reuses the mirror");
  },
);
