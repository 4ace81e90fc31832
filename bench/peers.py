"""CPU peers for `deno task bench:peers`: numpy (dense, OpenBLAS) and scipy.sparse (CSR) timings
of the products Filigree's kernels compute, at the same shapes, on the same machine, in the same
run. Prints one JSON object per line: {"case": ..., "ms": median, "gflops"|"gbps": ...}.

Usage: python3 bench/peers.py  (reads the case list as JSON on stdin)
"""
import json
import sys
import time

import numpy as np
import scipy.sparse as sp


def median_ms(fn, reps=7, warm=2):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    cases = json.load(sys.stdin)
    rng = np.random.default_rng(0)
    for c in cases:
        kind = c["kind"]
        if kind == "gemm":
            m, n, k = c["m"], c["n"], c["k"]
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            out = np.empty((m, n), dtype=np.float32)
            ms = median_ms(lambda: np.matmul(a, b, out=out), reps=5 if m * n * k > 1e10 else 7)
            print(json.dumps({"case": c["name"], "ms": ms, "gflops": 2 * m * n * k / ms / 1e6}), flush=True)
        elif kind in ("spmm", "sddmm"):
            nin, nout, d, batch = c["nin"], c["nout"], c["density"], c["batch"]
            w = sp.random(nin, nout, density=d, format="csr", dtype=np.float32, random_state=1)
            x = rng.standard_normal((batch, nin), dtype=np.float32)
            if kind == "spmm":
                # SET's forward: X @ W with W in CSR (scipy, single-threaded C++).
                ms = median_ms(lambda: x @ w)
                flops = 2 * w.nnz * batch
            else:
                # SDDMM peer: per-nonzero gather + einsum (what SET-style numpy code does).
                coo = w.tocoo()
                dy = rng.standard_normal((batch, nout), dtype=np.float32)
                ms = median_ms(lambda: np.einsum("bk,bk->k", x[:, coo.row], dy[:, coo.col]))
                flops = 2 * w.nnz * batch
            print(json.dumps({"case": c["name"], "ms": ms, "gflops": flops / ms / 1e6, "nnz": int(w.nnz)}), flush=True)
        elif kind == "relu":
            n = c["n"]
            x = rng.standard_normal(n, dtype=np.float32)
            y = np.empty_like(x)
            ms = median_ms(lambda: np.maximum(x, 0, out=y))
            print(json.dumps({"case": c["name"], "ms": ms, "gbps": 8 * n / ms / 1e6}), flush=True)
        else:
            raise SystemExit(f"peers.py: unknown case kind {kind}")


if __name__ == "__main__":
    main()
