// Sparse kernels at batch 128 on uniformly random masks, every variant of a kernel measured in
// the same process in interleaved rounds (variant A, B, C, A, B, C, ...: a load spike on this
// shared machine hits all of them alike), then the CPU peers (bench/sparse_peer.py: torch CSR
// when `import torch` works, scipy CSR) on the same shapes in the same run.
//
// - spmm (forward, fused bias + ReLU) and spmmT (backward data, fused ReLU') for each named
//   gather variant of SPMM_VARIANTS (src/kernels/sparse.ts), at 784x1000, 1000x1000 and
//   4096x4096, densities 1-20 %.
// - weight gradient: SDDMM vs dense X·dYᵀ picked at the nonzeros (weightGrad's two paths) over
//   densities 2-60 % at the SET-MLP and LeNet-300-100 layer shapes; prints the measured
//   crossover density that WGRAD_RULES encodes.
// - backward of a layer whose input needs a gradient: SDDMM + spmmT vs the fused grad_t pass
//   (sparseBackward, FUSE_BACKWARD) at a few blockings.
//
// flops = 2·nnz·batch per call (useful work; the dense path's extra work is not counted).
// Prints median and min (GPU timestamp ms per call, over FILIGREE_BENCH_ROUNDS rounds, default 5)
// and the load average before and after; appends JSON lines to $FILIGREE_BENCH_OUT like
// _harness.ts. Run: `deno bench -A bench/sparse_bench.ts` (DENO_WEBGPU_BACKEND=gl|vulkan).
import { getGpu, type Gpu, type Recorder, roundUp4 } from "../src/gpu/mod.ts";
import {
  adapterClass,
  FUSE_BACKWARD,
  GATHER_DEFAULTS,
  type GatherTuning,
  INPUT_SOURCES,
  type InputSource,
  SDDMM_DEFAULTS,
  SDDMM_VARIANTS,
  sparseBackward,
  spmm,
  SPMM_VARIANTS,
  spmmT,
  weightGrad,
  WGRAD_RULES,
} from "../src/kernels/sparse.ts";
import { type CsrLayer, randomCsr, uploadCsr } from "../src/sparse/csr.ts";
import { Rng } from "../src/testing/mod.ts";

const BATCH = 128;
// FILIGREE_SPARSE_SIZES=784x1000,1000x1000 limits the spmm shapes (4096² at 20 % through storage
// buffers takes seconds a call on a slow llvmpipe host).
const SIZES: [number, number][] =
  (Deno.env.get("FILIGREE_SPARSE_SIZES") ?? "784x1000,1000x1000,4096x4096")
    .split(",").map((s) => s.split("x").map(Number) as [number, number]);
const DENSITIES = [0.01, 0.05, 0.1, 0.2];
const WGRAD_SIZES: [number, number][] = [[784, 1000], [1000, 1000], [784, 300], [300, 100]];
const WGRAD_DENSITIES = [0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6];
const ROUNDS = Number(Deno.env.get("FILIGREE_BENCH_ROUNDS") ?? 5);
const PASS_MS = 40;

interface Row {
  op: string;
  nIn: number;
  nOut: number;
  density: number;
  variant: string;
  flops: number;
  med: number;
  min: number;
  reps: number;
}
const rows: Row[] = [];
interface PeerRow {
  lib: string;
  op: string;
  nIn: number;
  nOut: number;
  density: number;
  nnz: number;
  ms: number;
}
const peerRows: PeerRow[] = [];
const peerInfo: Record<string, unknown>[] = [];
let adapter = "";
let backend = "";
let cls: "cpu" | "gpu" = "cpu";

async function loadavg(): Promise<string> {
  try {
    return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}
const loads: string[] = [];

const layers = new Map<string, CsrLayer>();
function layerFor(gpu: Gpu, nIn: number, nOut: number, d: number): CsrLayer {
  const key = `${nIn}x${nOut}@${d}`;
  let l = layers.get(key);
  if (!l) {
    const rng = new Rng(1234);
    l = uploadCsr(gpu, randomCsr(nIn, nOut, d, rng, () => rng.next() - 0.5), key);
    layers.set(key, l);
  }
  return l;
}

function act(gpu: Gpu, rows: number, label: string) {
  const ld = roundUp4(BATCH);
  const data = new Float32Array(rows * ld);
  const rng = new Rng(rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < BATCH; c++) data[r * ld + c] = rng.next() - 0.5;
  }
  return gpu.tensor("f32", [rows, ld], { data, label });
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Times the variants of one case in interleaved rounds; records median and min per variant. */
async function interleaved(
  gpu: Gpu,
  op: string,
  nIn: number,
  nOut: number,
  density: number,
  flops: number,
  variants: [string, (rec: Recorder) => void][],
) {
  const reps: number[] = [];
  for (const [, enc] of variants) {
    await gpu.timeMs(enc, 1); // compile, fault in
    const probe = await gpu.timeMs(enc, 1);
    reps.push(Math.max(2, Math.min(500, Math.round(PASS_MS / Math.max(probe, 1e-3)))));
  }
  const ts: number[][] = variants.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < variants.length; i++) ts[i].push(await gpu.timeMs(variants[i][1], reps[i]));
  }
  variants.forEach(([variant], i) =>
    rows.push({
      op,
      nIn,
      nOut,
      density,
      variant,
      flops,
      med: median(ts[i]),
      min: Math.min(...ts[i]),
      reps: reps[i],
    })
  );
}

function bench(name: string, fn: (gpu: Gpu) => Promise<void>) {
  let done = false;
  Deno.bench({
    name,
    group: "sparse",
    n: 1,
    warmup: 0,
    permissions: "inherit",
    async fn() {
      if (done) return;
      done = true;
      const gpu = await getGpu();
      adapter = gpu.info.description || gpu.info.vendor;
      backend = gpu.backend;
      cls = adapterClass(gpu);
      if (loads.length === 0) loads.push(await loadavg());
      await fn(gpu);
    },
  });
}

for (const [nIn, nOut] of SIZES) {
  for (const d of DENSITIES) {
    bench(`spmm+bias+relu / spmmT+relu' ${nIn}x${nOut} ${d * 100}% b${BATCH}`, async (gpu) => {
      const layer = layerFor(gpu, nIn, nOut, d);
      const flops = 2 * layer.nnz * BATCH;
      const x = act(gpu, nIn, "x");
      const y = gpu.tensor("f32", [nOut, roundUp4(BATCH)]);
      const bias = gpu.tensor("f32", [nOut], { zero: true });
      const dy = act(gpu, nOut, "dy");
      const z = act(gpu, nIn, "z");
      const dx = gpu.tensor("f32", [nIn, roundUp4(BATCH)]);
      // Every named variant reading storage buffers, then reading textures.
      const vs: [string, Partial<GatherTuning>, InputSource][] = (["buffer", "texture"] as const)
        .flatMap((inputs) =>
          Object.entries(SPMM_VARIANTS).map(([n, t]): [string, GatherTuning, InputSource] => [
            inputs === "texture" ? `${n} tex` : n,
            t,
            inputs,
          ])
        );
      await interleaved(
        gpu,
        "spmm",
        nIn,
        nOut,
        d,
        flops,
        vs.map(([name, tune, inputs]) => [
          name,
          (rec) => spmm(rec, { layer, x, y, bias, batch: BATCH, activation: "relu", tune, inputs }),
        ]),
      );
      await interleaved(
        gpu,
        "spmmT",
        nIn,
        nOut,
        d,
        flops,
        vs.map(([name, tune, inputs]) => [
          name,
          (rec) => spmmT(rec, { layer, dy, dx, z, batch: BATCH, activation: "relu", tune, inputs }),
        ]),
      );
      for (const t of [x, y, bias, dy, z, dx]) gpu.release(t);
    });
  }
}

for (const [nIn, nOut] of WGRAD_SIZES) {
  for (const d of WGRAD_DENSITIES) {
    bench(`weight gradient sddmm vs dense ${nIn}x${nOut} ${d * 100}% b${BATCH}`, async (gpu) => {
      const layer = layerFor(gpu, nIn, nOut, d);
      const x = act(gpu, nIn, "x");
      const dy = act(gpu, nOut, "dy");
      const dvalues = gpu.tensor("f32", [layer.nnz]);
      const sd = { layer, x, dy, dvalues, batch: BATCH, path: "sddmm" as const };
      await interleaved(
        gpu,
        "wgrad",
        nIn,
        nOut,
        d,
        2 * layer.nnz * BATCH,
        [
          ...Object.entries(SDDMM_VARIANTS).map(([name, tune]): [string, (r: Recorder) => void] => [
            `sddmm ${name}`,
            (rec) => weightGrad(rec, { ...sd, tune, inputs: "buffer" }),
          ]),
          ["sddmm tex", (rec) => weightGrad(rec, { ...sd, inputs: "texture" })],
          [
            "dense",
            (rec) => weightGrad(rec, { layer, x, dy, dvalues, batch: BATCH, path: "dense" }),
          ],
        ],
      );
      for (const t of [x, dy, dvalues]) gpu.release(t);
    });
  }
}

// The backward of a layer whose input needs a gradient: SDDMM + spmmT (two passes) vs the fused
// grad_t pass (sparseBackward) at a few blockings; flops = both products' 4·nnz·batch.
const BACKWARD_CASES: [number, number, number][] = [
  [1000, 1000, 0.04],
  [300, 100, 0.12],
  [300, 100, 0.24],
  [4096, 4096, 0.05],
];
for (const [nIn, nOut, d] of BACKWARD_CASES) {
  bench(
    `backward (dW + dX) separate vs fused ${nIn}x${nOut} ${d * 100}% b${BATCH}`,
    async (gpu) => {
      const layer = layerFor(gpu, nIn, nOut, d);
      const x = act(gpu, nIn, "x");
      const dy = act(gpu, nOut, "dy");
      const dx = gpu.tensor("f32", [nIn, roundUp4(BATCH)]);
      const dvalues = gpu.tensor("f32", [layer.nnz]);
      const args = { layer, x, dy, dx, dvalues, batch: BATCH };
      // Default operand source (INPUT_SOURCES) unless named "buffers".
      const variants: [string, (r: Recorder) => void][] = [
        ["separate", (rec) => sparseBackward(rec, { ...args, path: "separate" })],
        [
          "separate buffers",
          (rec) => sparseBackward(rec, { ...args, path: "separate", inputs: "buffer" }),
        ],
        [
          "fused ch8 gr8 buffers",
          (rec) =>
            sparseBackward(rec, {
              ...args,
              path: "fused",
              tune: { ch: 8, gr: 8 },
              inputs: "buffer",
            }),
        ],
      ];
      for (const [ch, gr] of [[4, 8], [8, 8], [8, 16], [8, 32]]) {
        variants.push([
          `fused ch${ch} gr${gr}`,
          (rec) => sparseBackward(rec, { ...args, path: "fused", tune: { ch, gr } }),
        ]);
      }
      await interleaved(gpu, "backward", nIn, nOut, d, 4 * layer.nnz * BATCH, variants);
      for (const t of [x, dy, dx, dvalues]) gpu.release(t);
    },
  );
}

bench("CPU peers (bench/sparse_peer.py: torch CSR, scipy CSR), same shapes", async () => {
  const cases = [
    ...SIZES.flatMap(([a, b]) => DENSITIES.map((d) => [a, b, d])),
    ...WGRAD_SIZES.flatMap(([a, b]) => WGRAD_DENSITIES.map((d) => [a, b, d])),
  ];
  const script = new URL("./sparse_peer.py", import.meta.url).pathname;
  // Debian's python3-torch lives in /usr/bin/python3; scipy may be in another python3 on PATH.
  for (const py of ["/usr/bin/python3", "python3"]) {
    try {
      const cmd = new Deno.Command(py, {
        args: [script],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = cmd.stdin.getWriter();
      await w.write(new TextEncoder().encode(JSON.stringify({ batch: BATCH, cases })));
      await w.close();
      const o = await cmd.output();
      if (!o.success) {
        const err = new TextDecoder().decode(o.stderr).trim().split("\n").pop();
        console.error(`peer ${py}: ${err}`);
        continue;
      }
      for (const line of new TextDecoder().decode(o.stdout).trim().split("\n")) {
        if (!line) continue;
        const j = JSON.parse(line);
        if (j.info) peerInfo.push({ interpreter: py, ...j.info });
        // keep one result per (lib, op, case): the first interpreter that has the library
        else if (
          !peerRows.some((p) =>
            p.lib === j.lib && p.op === j.op && p.nIn === j.nIn && p.nOut === j.nOut &&
            p.density === j.density
          )
        ) peerRows.push(j);
      }
    } catch (e) {
      console.error(`peer ${py}: ${(e as Error).message}`);
    }
  }
});

const gf = (flops: number, ms: number) => flops / (ms * 1e6);
const f2 = (v: number | undefined) => (v === undefined ? "-" : v.toFixed(2));

function report() {
  if (rows.length === 0) return;
  const out: string[] = [];
  out.push(
    `\nsparse kernels, batch ${BATCH}, ${adapter} [${backend}]; GPU timestamps, ${ROUNDS} ` +
      `interleaved rounds; load average before ${loads[0]}, after ${loads[1] ?? "?"}`,
  );
  for (const info of peerInfo) out.push(`peer: ${JSON.stringify(info)}`);
  const peer = (lib: string, op: string, r: Row) =>
    peerRows.find((p) =>
      p.lib === lib && p.op === op && p.nIn === r.nIn && p.nOut === r.nOut &&
      p.density === r.density
    );
  for (const op of ["spmm", "spmmT"]) {
    const names = [
      ...Object.keys(SPMM_VARIANTS),
      ...Object.keys(SPMM_VARIANTS).map((n) => `${n} tex`),
    ];
    out.push(
      `\n${op}: GFLOP/s median (min-time) per variant; ratio = best median / interleaved median; ` +
        `peers GFLOP/s (median of 7, 1 thread)`,
    );
    out.push(
      [
        "case".padEnd(20),
        ...names.map((n) => n.padStart(20)),
        "new/old".padStart(8),
        "torch".padStart(7),
        "scipy".padStart(7),
        "best/torch".padStart(11),
      ].join(" "),
    );
    const cases = [
      ...new Set(rows.filter((r) => r.op === op).map((r) => `${r.nIn}|${r.nOut}|${r.density}`)),
    ];
    for (const c of cases) {
      const rs = rows.filter((r) => r.op === op && `${r.nIn}|${r.nOut}|${r.density}` === c);
      const r0 = rs[0];
      const byName = (n: string) => rs.find((r) => r.variant === n);
      const old = byName("interleaved");
      const best = rs.reduce((a, b) => (b.med < a.med ? b : a));
      const tp = peer("torch", op, r0);
      const sp = peer("scipy", op, r0);
      out.push(
        [
          `${r0.nIn}x${r0.nOut} ${(r0.density * 100).toFixed(0)}%`.padEnd(20),
          ...names.map((n) => {
            const r = byName(n);
            return (r ? `${f2(gf(r.flops, r.med))} (${f2(gf(r.flops, r.min))})` : "-").padStart(20);
          }),
          (old ? (old.med / best.med).toFixed(2) : "-").padStart(8),
          (tp ? f2(gf(r0.flops, tp.ms)) : "-").padStart(7),
          (sp ? f2(gf(r0.flops, sp.ms)) : "-").padStart(7),
          (tp ? (tp.ms / best.med).toFixed(2) : "-").padStart(11),
        ].join(" "),
      );
    }
  }
  out.push(
    `\nweight gradient: ms median (min) per path; GFLOP/s of useful work; rule ` +
      `(${cls}): dense from ${WGRAD_RULES[cls].denseFrom * 100} % (${WGRAD_RULES[cls].source})`,
  );
  const snames = Object.keys(SDDMM_VARIANTS);
  out.push(
    [
      "case".padEnd(20),
      ...snames.map((n) => `sddmm ${n} ms`.padStart(20)),
      "sddmm tex ms".padStart(20),
      "dense ms".padStart(18),
      "faster".padStart(9),
      "torch dense+pick ms".padStart(20),
      "torch gather ms".padStart(16),
    ].join(" "),
  );
  const wcases = [
    ...new Set(rows.filter((r) => r.op === "wgrad").map((r) => `${r.nIn}|${r.nOut}|${r.density}`)),
  ];
  const crossover = new Map<string, number>();
  for (const c of wcases) {
    const rs = rows.filter((r) => r.op === "wgrad" && `${r.nIn}|${r.nOut}|${r.density}` === c);
    // The rule compares dense with the SDDMM the adapter class runs (its variant and inputs).
    const sddmmName = INPUT_SOURCES[cls] === "texture"
      ? "sddmm tex"
      : `sddmm ${SDDMM_DEFAULTS[cls]}`;
    const s = rs.find((r) => r.variant === sddmmName)!;
    const d = rs.find((r) => r.variant === "dense")!;
    const size = `${s.nIn}x${s.nOut}`;
    if (d.med < s.med && !crossover.has(size)) crossover.set(size, s.density);
    const td = peer("torch", "wgrad_dense", s);
    const tg = peer("torch", "wgrad_gather", s);
    out.push(
      [
        `${size} ${(s.density * 100).toFixed(0)}%`.padEnd(20),
        ...[...snames.map((n) => `sddmm ${n}`), "sddmm tex"].map((n) => {
          const r = rs.find((u) => u.variant === n)!;
          return `${r.med.toFixed(3)} (${r.min.toFixed(3)})`.padStart(20);
        }),
        `${d.med.toFixed(3)} (${d.min.toFixed(3)})`.padStart(18),
        (d.med < s.med ? "dense" : "sddmm").padStart(9),
        (td ? td.ms.toFixed(3) : "-").padStart(20),
        (tg ? tg.ms.toFixed(3) : "-").padStart(16),
      ].join(" "),
    );
  }
  out.push(
    `measured crossover (first density where dense is faster): ${
      [...new Set(wcases.map((c) => c.split("|").slice(0, 2).join("x")))].map((s) =>
        `${s}: ${crossover.has(s) ? `${crossover.get(s)! * 100} %` : "none <= 60 %"}`
      ).join(", ")
    }; default gather variant (${cls}): ${GATHER_DEFAULTS[cls]}`,
  );
  const bcases = [
    ...new Set(
      rows.filter((r) => r.op === "backward").map((r) => `${r.nIn}|${r.nOut}|${r.density}`),
    ),
  ];
  if (bcases.length) {
    out.push(
      `\nbackward dW + dX: ms median (min); separate = weightGrad + spmmT, fused = grad_t ` +
        `(sparseBackward; FUSE_BACKWARD.${cls} = ${FUSE_BACKWARD[cls]})`,
    );
    for (const c of bcases) {
      const rs = rows.filter((r) => r.op === "backward" && `${r.nIn}|${r.nOut}|${r.density}` === c);
      const sep = rs.find((r) => r.variant === "separate")!;
      const best = rs.reduce((a, b) => (b.med < a.med ? b : a));
      out.push(
        `${sep.nIn}x${sep.nOut} ${(sep.density * 100).toFixed(0)}%`.padEnd(20) +
          rs.map((r) => ` ${r.variant} ${r.med.toFixed(3)} (${r.min.toFixed(3)})`).join(",") +
          `; best ${best.variant}, separate/best ${(sep.med / best.med).toFixed(2)}`,
      );
    }
  }
  console.log(out.join("\n"));
  const file = Deno.env.get("FILIGREE_BENCH_OUT");
  if (file) {
    Deno.writeTextFileSync(
      file,
      rows.map((r) =>
        JSON.stringify({
          group: "sparse",
          name: `${r.op} ${r.variant} ${r.nIn}x${r.nOut} ${
            (r.density * 100).toFixed(0)
          }% b${BATCH}`,
          ms: r.med,
          gflops: gf(r.flops, r.med),
          reps: r.reps,
          adapter,
          backend,
        })
      ).join("\n") + "\n",
      { append: true },
    );
  }
}

bench("load average after", async () => {
  loads.push(await loadavg());
});
globalThis.addEventListener("unload", report);
