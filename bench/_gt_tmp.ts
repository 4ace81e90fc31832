import { getGpu, roundUp4 } from "../src/gpu/mod.ts";
import { randomCsr, uploadCsr } from "../src/sparse/csr.ts";
import { sparseBackward } from "../src/kernels/sparse.ts";
import { Rng } from "../src/testing/mod.ts";
const gpu = await getGpu();
const B = 128, ld = roundUp4(B);
const t = (rows: number) => { const r = new Rng(rows); const d = new Float32Array(rows * ld); for (let i = 0; i < rows; i++) for (let c = 0; c < B; c++) d[i*ld+c] = r.next()-0.5; return gpu.tensor("f32", [rows, ld], { data: d }); };
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const [nIn, nOut, d] of [[1000, 1000, 0.04], [300, 100, 0.238], [300, 100, 0.12], [4096, 4096, 0.05]] as const) {
  const rng = new Rng(7);
  const layer = uploadCsr(gpu, randomCsr(nIn, nOut, d, rng, () => rng.next() - 0.5));
  const x = t(nIn), dy = t(nOut), dx = gpu.tensor("f32", [nIn, ld]), dv = gpu.tensor("f32", [layer.nnz]);
  const vs: [string, any][] = [["separate", { path: "separate" }]];
  for (const ch of [4, 8]) for (const gr of [8, 16, 32]) vs.push([`ch${ch} gr${gr}`, { path: "fused", tune: { ch, gr } }]);
  const enc = (v: any) => (rec: any) => sparseBackward(rec, { layer, x, dy, dx, dvalues: dv, batch: B, ...v });
  for (const [, v] of vs) await gpu.timeMs(enc(v), 2);
  const ts = vs.map(() => [] as number[]);
  for (let r = 0; r < 5; r++) for (let i = 0; i < vs.length; i++) ts[i].push(await gpu.timeMs(enc(vs[i][1]), 5));
  console.log(`${nIn}x${nOut} d${d} nnz ${layer.nnz}: ` + vs.map(([n], i) => `${n} ${med(ts[i]).toFixed(3)}`).join(", "));
}
console.log(Deno.loadavg());
