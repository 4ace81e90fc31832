/**
 * The adapter's raw load rates, the floor under every gather kernel: each invocation of a
 * 16,384-invocation dispatch runs 32 x 32 loads (32 rows picked per lane, 32 consecutive quads
 * along each, the access pattern of `spmm_wide`) and sums them, from
 *
 * - an rgba32float texture (`textureLoad`, lane-varying rows: the sparse kernels' x and dy),
 * - the same with every lane on the same texels (uniform addresses),
 * - an r32float texture (the index and value arrays),
 * - the same two formats as read-only storage textures (src/gpu/storage_textures.ts), where the
 *   device has them,
 * - a storage buffer of vec4 and of f32 (the `FILIGREE_INPUTS=buffer` path),
 * - no load at all (the loop and one vec4 FMA per trip: the kernel-side floor),
 * - stores instead of loads: 32 consecutive vec4 per lane into a storage buffer (a row kernel's
 *   output row) and the same into a write-only rgba32float storage texture.
 *
 * Wall time of one dispatch, median of 5 after a warm-up, loads per second and GB/s; the load
 * average before and after. On Mesa llvmpipe a gather SpMM does one vec4 load per 4 FMAs, so
 * G vec4 loads/s x 8 is its GFLOP/s ceiling (bench/RESULTS.md "Wide gathers").
 *
 * @example
 * ```sh
 * deno run -A bench/fetch_bench.ts
 * ```
 * @module
 */
import { getGpu, storageReadSlots } from "../src/gpu/mod.ts";

const SHADER = `
@group(0) @binding(0) var t4: texture_2d<f32>;
@group(0) @binding(0) var t1: texture_2d<f32>;
@group(0) @binding(0) var s4: texture_storage_2d<rgba32float, read>;
@group(0) @binding(0) var s1: texture_storage_2d<r32float, read>;
@group(0) @binding(0) var<storage, read> b4: array<vec4f>;
@group(0) @binding(0) var<storage, read> b1: array<f32>;
@group(0) @binding(1) var<storage, read_write> o: array<vec4f>;
// 32 rows per lane (lane-varying unless SAME), 32 consecutive elements along each; rows of 32.
fn first(g: u32, k: u32, same: bool) -> u32 {
  let r = select((g * 2654435761u) % 4096u, 0u, same);
  return ((r + k * 97u) % 4096u) * 32u;
}
fn at(i: u32) -> vec2u { return vec2u(i & 4095u, i >> 12u); }
@compute @workgroup_size(64)
fn tex4(@builtin(global_invocation_id) g: vec3u) {
  var acc = vec4f(0.0);
  for (var k = 0u; k < 32u; k++) {
    let b = first(g.x, k, false);
    for (var u = 0u; u < 32u; u++) { acc += textureLoad(t4, at(b + u), 0); }
  }
  o[g.x] = acc;
}
@compute @workgroup_size(64)
fn tex4_same(@builtin(global_invocation_id) g: vec3u) {
  var acc = vec4f(0.0);
  for (var k = 0u; k < 32u; k++) {
    let b = first(g.x, k, true);
    for (var u = 0u; u < 32u; u++) { acc += textureLoad(t4, at(b + u), 0); }
  }
  o[g.x] = acc;
}
@compute @workgroup_size(64)
fn tex1(@builtin(global_invocation_id) g: vec3u) {
  var acc = 0.0;
  for (var k = 0u; k < 32u; k++) {
    let b = first(g.x, k, false);
    for (var u = 0u; u < 32u; u++) { acc += textureLoad(t1, at(b + u), 0).x; }
  }
  o[g.x] = vec4f(acc);
}
@compute @workgroup_size(64)
fn stex4(@builtin(global_invocation_id) g: vec3u) {
  var acc = vec4f(0.0);
  for (var k = 0u; k < 32u; k++) {
    let b = first(g.x, k, false);
    for (var u = 0u; u < 32u; u++) { acc += textureLoad(s4, at(b + u)); }
  }
  o[g.x] = acc;
}
@compute @workgroup_size(64)
fn stex1(@builtin(global_invocation_id) g: vec3u) {
  var acc = 0.0;
  for (var k = 0u; k < 32u; k++) {
    let b = first(g.x, k, false);
    for (var u = 0u; u < 32u; u++) { acc += textureLoad(s1, at(b + u)).x; }
  }
  o[g.x] = vec4f(acc);
}
@compute @workgroup_size(64)
fn buf4(@builtin(global_invocation_id) g: vec3u) {
  var acc = vec4f(0.0);
  for (var k = 0u; k < 32u; k++) {
    let b = first(g.x, k, false);
    for (var u = 0u; u < 32u; u++) { acc += b4[b + u]; }
  }
  o[g.x] = acc;
}
@compute @workgroup_size(64)
fn buf1(@builtin(global_invocation_id) g: vec3u) {
  var acc = 0.0;
  for (var k = 0u; k < 32u; k++) {
    let b = first(g.x, k, false);
    for (var u = 0u; u < 32u; u++) { acc += b1[b + u]; }
  }
  o[g.x] = vec4f(acc);
}
// Stores: 32 consecutive vec4 per lane (a row kernel's output row), 32 times over.
@group(0) @binding(2) var<storage, read_write> sb: array<vec4f>;
@group(0) @binding(3) var st: texture_storage_2d<rgba32float, write>;
@compute @workgroup_size(64)
fn store4(@builtin(global_invocation_id) g: vec3u) {
  for (var k = 0u; k < 32u; k++) {
    for (var u = 0u; u < 32u; u++) { sb[g.x * 32u + ((u + k) & 31u)] = vec4f(f32(k), f32(u), 0.0, 1.0); }
  }
  o[g.x] = vec4f(1.0);
}
@compute @workgroup_size(64)
fn storet(@builtin(global_invocation_id) g: vec3u) {
  for (var k = 0u; k < 32u; k++) {
    for (var u = 0u; u < 32u; u++) {
      textureStore(st, at(g.x * 32u + ((u + k) & 31u)), vec4f(f32(k), f32(u), 0.0, 1.0));
    }
  }
  o[g.x] = vec4f(1.0);
}
@compute @workgroup_size(64)
fn none(@builtin(global_invocation_id) g: vec3u) {
  var acc = vec4f(f32(g.x));
  for (var k = 0u; k < 32u; k++) {
    for (var u = 0u; u < 32u; u++) { acc = fma(acc, vec4f(0.999), vec4f(f32(u))); }
  }
  o[g.x] = acc;
}
`;

const loadavg = () => {
  try {
    return Deno.loadavg().map((v) => v.toFixed(2)).join(" ");
  } catch {
    return "n/a";
  }
};
const load0 = loadavg();
const gpu = await getGpu();
const device = gpu.device;
const W = 4096, H = 32; // 131,072 texels: 4,096 rows of 32 (row-major), 2 MiB as rgba32float
const GROUPS = 256, LOADS = 32 * 32;
const storage = storageReadSlots(gpu) > 0;
const texture = (format: "rgba32float" | "r32float", comps: number) => {
  const t = device.createTexture({
    size: [W, H],
    format,
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST |
      (storage ? GPUTextureUsage.STORAGE_BINDING : 0),
  });
  const data = new Float32Array(W * H * comps).map((_, i) => (i % 7) * 0.1);
  device.queue.writeTexture({ texture: t }, data, { bytesPerRow: W * 4 * comps }, [W, H]);
  return t.createView();
};
const buffer = (comps: number) => {
  const b = device.createBuffer({
    size: W * H * 4 * comps,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(b, 0, new Float32Array(W * H * comps).map((_, i) => (i % 7) * 0.1));
  return { buffer: b };
};
const out = device.createBuffer({ size: GROUPS * 64 * 16, usage: GPUBufferUsage.STORAGE });
// One row of 32 quads per lane: GROUPS · 64 · 32 quads (8 MiB), as a buffer and a texture.
const storeBuffer = {
  buffer: device.createBuffer({ size: GROUPS * 64 * 32 * 16, usage: GPUBufferUsage.STORAGE }),
};
const storeTexture = device.createTexture({
  size: [W, (GROUPS * 64 * 32) / W],
  format: "rgba32float",
  usage: GPUTextureUsage.STORAGE_BINDING,
}).createView();
const CASES: [string, string, GPUBindingResource | null, number, number?][] = [
  ["rgba32float texture, lane-varying rows", "tex4", texture("rgba32float", 4), 16],
  ["rgba32float texture, uniform addresses", "tex4_same", texture("rgba32float", 4), 16],
  ["r32float texture, lane-varying rows", "tex1", texture("r32float", 1), 4],
  ...(storage
    ? [
      ["rgba32float storage texture, lane-varying", "stex4", texture("rgba32float", 4), 16],
      ["r32float storage texture, lane-varying", "stex1", texture("r32float", 1), 4],
    ] as [string, string, GPUBindingResource, number][]
    : []),
  ["storage vec4, lane-varying rows", "buf4", buffer(4), 16],
  ["storage f32, lane-varying rows", "buf1", buffer(1), 4],
  ["vec4 stores, 32 consecutive per lane", "store4", storeBuffer, 16, 2],
  ["rgba32float storage-texture stores", "storet", storeTexture, 16, 3],
  ["no load (loop + vec4 FMA)", "none", null, 0],
];
// Without storage reads the module must not declare storage textures.
const module = device.createShaderModule({
  code: storage ? SHADER : SHADER.replace(/.*texture_storage_2d.*\n/g, "").replace(
    /@compute @workgroup_size\(64\)\nfn stex[\s\S]*?\n}\n/g,
    "",
  ),
});
const rows: string[] = [];
for (const [name, entry, input, bytes, binding = 0] of CASES) {
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module, entryPoint: entry },
  });
  const entries: GPUBindGroupEntry[] = [{ binding: 1, resource: { buffer: out } }];
  if (input) entries.push({ binding, resource: input });
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  const ts: number[] = [];
  for (let r = 0; r < 6; r++) {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(GROUPS);
    pass.end();
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    if (r > 0) ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  const ms = ts[ts.length >> 1];
  const loads = GROUPS * 64 * LOADS;
  rows.push(
    `${name.padEnd(40)} ${ms.toFixed(1).padStart(7)} ms  ${(loads / ms / 1e6).toFixed(3)} G/s` +
      (bytes ? `  ${(loads * bytes / ms / 1e6).toFixed(2)} GB/s` : "  (trips/s)"),
  );
}
console.log(
  `raw load rates, ${GROUPS * 64} invocations x ${LOADS} loads, ${gpu.info.description} ` +
    `[${gpu.backend}]; load average before ${load0}, after ${loadavg()}`,
);
for (const r of rows) console.log(r);
