import assert from "node:assert/strict";
import {
  Collector,
  defineKernel,
  grid,
  LimitError,
  packParams,
  ShaderError,
} from "../../src/gpu/mod.ts";
import { biasAdd } from "../../src/kernels/bias.ts";
import { gpuTest } from "../../src/testing/mod.ts";

const COPY = `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) { if (g.x < p.n) { dst[g.x] = src[g.x]; } }`;

gpuTest("binding mismatch fails at pipeline creation naming shader, group and binding", (gpu) => {
  const wrongName = defineKernel({
    shader: "copy.wgsl",
    code: COPY,
    entry: "main",
    bindings: [["p", "uniform"], ["source", "read"], ["dst", "read_write"]],
  });
  assert.throws(() => gpu.kernel(wrongName), (e: Error) => {
    assert(e instanceof ShaderError);
    assert.match(
      e.message,
      /copy\.wgsl entry main, group 0 binding 1: TypeScript declares "source" \(read\), shader has "src" \(read\)/,
    );
    return true;
  });
  const wrongAccess = defineKernel({
    shader: "copy.wgsl",
    code: COPY,
    entry: "main",
    bindings: [["p", "uniform"], ["src", "read"], ["dst", "read"]],
  });
  assert.throws(
    () => gpu.kernel(wrongAccess),
    /binding 2: TypeScript declares "dst" \(read\), shader has "dst" \(read_write\)/,
  );
  const missing = defineKernel({
    shader: "copy.wgsl",
    code: COPY,
    entry: "main",
    bindings: [["p", "uniform"], ["src", "read"]],
  });
  assert.throws(
    () => gpu.kernel(missing),
    /binding 2: shader uses "dst" \(read_write\) but TypeScript declares nothing there/,
  );
  const noEntry = defineKernel({ shader: "copy.wgsl", code: COPY, entry: "nope", bindings: [] });
  assert.throws(() => gpu.kernel(noEntry), /no compute entry point "nope"/);
  assert.throws(
    () =>
      gpu.kernel({
        ...wrongAccess,
        bindings: [["p", "uniform"], ["src", "read"], ["dst", "read_write"]],
      }, { BOGUS: 1 }),
    /override "BOGUS" is not declared/,
  );
});

gpuTest("sizes over adapter limits fail naming the limit, requested and actual", (gpu) => {
  const max = gpu.limits.maxStorageBufferBindingSize;
  assert.throws(() => gpu.tensor("f32", [max / 4 + 1024]), (e: Error) => {
    assert(e instanceof LimitError);
    assert.match(e.message, /maxStorageBufferBindingSize >= \d+, but this adapter allows \d+/);
    return true;
  });
  const big = gpu.limits.maxComputeWorkgroupsPerDimension;
  assert.throws(() => grid(gpu, big * (big + 2)), /maxComputeWorkgroupsPerDimension/);
  const [x, y] = grid(gpu, big + 5);
  assert(x <= big && y === 2 && x * y >= big + 5);
});

gpuTest("a new batch size reuses the compiled pipeline", async (gpu) => {
  const rows = 3;
  let before = -1;
  for (const batch of [7, 130, 1, 64]) {
    const ld = Math.ceil(batch / 4) * 4;
    const x = gpu.tensor("f32", [rows, ld], { zero: true });
    const b = gpu.tensor("f32", [rows], { data: new Float32Array([1, 2, 3]) });
    const y = gpu.tensor("f32", [rows, ld]);
    const rec = gpu.recorder();
    biasAdd(rec, { x, bias: b, y, rows, batch });
    rec.submit();
    const out = await gpu.read(y);
    assert.equal(out[2 * ld], 3);
    if (batch === 7) before = gpu.pipelineCount;
  }
  assert.equal(gpu.pipelineCount, before);
});

gpuTest("shader compile errors are reported with line:column", async (gpu) => {
  const msgs = await gpu.compileMessages("broken.wgsl", "fn f() -> f32 {\n  return 1u;\n}\n");
  assert(msgs.length > 0, "expected a compile error");
  assert.match(msgs[0], /^broken\.wgsl:\d+:\d+: error: .*return/);
});

gpuTest("packParams lays out u32/f32/i32 fields and rejects bad u32", () => {
  const b = packParams([1, { f32: 0.5 }, { i32: -2 }]);
  const v = new DataView(b);
  assert.deepEqual([v.getUint32(0, true), v.getFloat32(4, true), v.getInt32(8, true)], [
    1,
    0.5,
    -2,
  ]);
  assert.throws(() => packParams([-1]), RangeError);
});

// llvmpipe silently stops any invocation after 65,535 loop iterations. This probe measures the
// adapter's behaviour; every kernel whose trip count grows with the problem keeps it below
// MAX_LOOP_TRIPS and asserts that in its wrapper (see docs/KERNELS.md).
gpuTest(
  "loop-iteration cap: detected on this adapter and below every kernel bound",
  async (gpu) => {
    const code = `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1)
fn main() { var c = 0u; for (var i = 0u; i < p.n; i++) { c += 1u; } out[0] = c; }`;
    const k = gpu.kernel(
      defineKernel({
        shader: "loop.wgsl",
        code,
        entry: "main",
        bindings: [["p", "uniform"], ["out", "read_write"]],
      }),
    );
    const out = gpu.tensor("u32", [4]);
    const counts: number[] = [];
    for (const n of [60_000, 100_000]) {
      const rec = gpu.recorder();
      rec.dispatch(k, { p: gpu.uniform(packParams([n])), out }, 1);
      rec.submit();
      counts.push((await gpu.read(out))[0]);
    }
    assert.equal(counts[0], 60_000, "a 60,000-iteration loop must run fully");
    // Either the adapter runs all 100,000 (real GPUs) or stops at 65,535 (llvmpipe): nothing else.
    assert(counts[1] === 100_000 || counts[1] === 65_535, `unexpected trip count ${counts[1]}`);
    const { MAX_LOOP_TRIPS } = await import("../../src/gpu/mod.ts");
    assert(MAX_LOOP_TRIPS < 65_535);
  },
);

gpuTest(
  "every submit asks the collector; it forces a collection at most once per interval",
  (gpu) => {
    const saved = gpu.collector;
    try {
      let calls = 0;
      gpu.collector = new Collector(() => calls++, 0);
      const t = gpu.tensor("f32", [3], { data: new Float32Array([1, 2, 3]) });
      for (let i = 0; i < 3; i++) {
        const rec = gpu.recorder();
        rec.encoder.clearBuffer(t.buffer);
        rec.submit();
      }
      assert.equal(calls, 3); // interval 0: one per submit
      gpu.collector = new Collector(() => calls++, 60_000);
      for (let i = 0; i < 3; i++) gpu.recorder().submit();
      assert.equal(calls, 4); // a minute's interval: only the first
      assert.equal(gpu.collector.collections, 1);
      gpu.collector = new Collector(null);
      gpu.recorder().submit();
      assert.equal(gpu.collector.active, false);
      assert.equal(gpu.collector.collections, 0);
      gpu.release(t);
    } finally {
      gpu.collector = saved;
    }
  },
);
