// shaders/row_order.wgsl (block ranks, sort keys) + sort.wgsl: the row order of the row kernels.
import {
  ROW_ORDER_CAP,
  ROW_ORDER_SCOPE,
  rowOrder,
  rowOrderRef,
} from "../../src/kernels/row_order.ts";
import { gpuTest, type Rng } from "../../src/testing/mod.ts";

// Exact integer outputs: every slot of the order compared with the CPU reference.

/** A pointer array of `n` rows with lengths drawn from `len`. */
function pointers(rng: Rng, n: number, len: (rng: Rng) => number): Uint32Array {
  const ptr = new Uint32Array(n + 1);
  for (let j = 0; j < n; j++) ptr[j + 1] = ptr[j] + len(rng);
  return ptr;
}

function same(got: ArrayLike<number>, want: ArrayLike<number>, label: string) {
  if (got.length < want.length) throw new Error(`${label}: ${got.length} < ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) throw new Error(`${label}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

/** Runs `fn` with {@link ROW_ORDER_SCOPE} set to `block`, restoring it after. */
async function withScope(block: number, fn: () => Promise<void>) {
  const saved = ROW_ORDER_SCOPE.block;
  ROW_ORDER_SCOPE.block = block;
  try {
    await fn();
  } finally {
    ROW_ORDER_SCOPE.block = saved;
  }
}

gpuTest(
  "rowOrder: rows by length, longest first, ties by index, in blocks or over all rows (cap, empty rows, sizes off 32)",
  async (gpu, rng) => {
    const cases: [string, number, number, (r: Rng) => number][] = [
      ["one row", 1, 10, () => 3],
      ["binomial", 37, 300, (r) => r.int(12)],
      ["ties and empty rows", 1000, 1000, (r) => r.int(3) * 5],
      [
        "long rows past the cap",
        4097,
        5000,
        (r) => (r.int(50) === 0 ? ROW_ORDER_CAP + r.int(3000) : r.int(80)),
      ],
      ["rowMax below the lengths", 65, 4, (r) => r.int(9)],
    ];
    for (const block of [64, 16, 0]) {
      await withScope(block, async () => {
        for (const [label, n, rowMax, len] of cases) {
          const host = pointers(rng, n, len);
          const ptr = gpu.tensor("u32", [n + 1], { data: host, label });
          const rec = gpu.recorder();
          const order = rowOrder(rec, ptr, n, rowMax)!;
          rec.submit();
          // Blocks rank exact lengths; the global sort buckets them at the cap.
          const cap = block ? Infinity : Math.min(rowMax, ROW_ORDER_CAP);
          same(await gpu.read(order), rowOrderRef(host, n, cap, block), `${label}, block ${block}`);
          gpu.release(ptr);
        }
      });
    }
  },
);

gpuTest(
  "rowOrder: reused until the pointer buffer is written, then recomputed (either scope)",
  async (gpu, rng) => {
    for (const block of [64, 0]) {
      await withScope(block, async () => {
        const n = 300;
        const cap = block ? Infinity : 784;
        const a = pointers(rng, n, (r) => r.int(40));
        const ptr = gpu.tensor("u32", [n + 1], { data: a });
        const r1 = gpu.recorder();
        const o1 = rowOrder(r1, ptr, n, 784)!;
        const first = r1.dispatches;
        if (first === 0) throw new Error("no dispatch recorded for a new structure");
        // The same command buffer, then a later one: no new dispatch.
        if (rowOrder(r1, ptr, n, 784) !== o1 || r1.dispatches !== first) {
          throw new Error("not reused");
        }
        r1.submit();
        const r2 = gpu.recorder();
        rowOrder(r2, ptr, n, 784);
        if (r2.dispatches !== 0) {
          throw new Error(`recomputed after submit: ${r2.dispatches} dispatches`);
        }
        r2.submit();
        same(await gpu.read(o1), rowOrderRef(a, n, cap, block), "first");
        // A write (an upload here; a topology update records copies) invalidates it.
        const b = pointers(rng, n, (r) => r.int(40));
        gpu.write(ptr, b);
        const r3 = gpu.recorder();
        const o3 = rowOrder(r3, ptr, n, 784)!;
        if (r3.dispatches !== first) throw new Error(`after a write: ${r3.dispatches} dispatches`);
        r3.submit();
        same(await gpu.read(o3), rowOrderRef(b, n, cap, block), "after a write");
        // A second recorder that did not see the first one submitted recomputes rather than
        // read an order not yet computed.
        gpu.write(ptr, a);
        const r4 = gpu.recorder();
        rowOrder(r4, ptr, n, 784);
        const r5 = gpu.recorder();
        const o5 = rowOrder(r5, ptr, n, 784)!;
        if (r5.dispatches !== first) throw new Error(`unsubmitted order reused: ${r5.dispatches}`);
        r5.submit();
        same(await gpu.read(o5), rowOrderRef(a, n, cap, block), "second recorder");
        r4.submit();
        gpu.release(ptr);
      });
    }
  },
);
