"""CPU peers for `deno task bench:peers`: numpy (dense, OpenBLAS) and scipy.sparse (CSR) timings
of the products Filigree's kernels compute, at the same shapes, on the same machine, in the same
run. Prints one JSON object per line: {"case": ..., "ms": median, "gflops"|"gbps": ...}.

Usage: python3 bench/peers.py  (reads the case list as JSON on stdin)
       python3 bench/peers.py --info  (one JSON line: numpy / scipy / BLAS versions)
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


def info():
    blas = "?"
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg["Build Dependencies"]["blas"]
        blas = f'{b.get("name", "?")} {b.get("version", "")}'.strip()
    except Exception:  # older numpy: no dict mode
        pass
    import os

    import scipy

    def read(path):
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return ""

    # Deno needs --allow-all to read /proc, so the CPU model and load average come from here.
    cpu = "unknown CPU"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = " ".join(read("/proc/loadavg").split()[:3]) or "n/a"
    print(json.dumps({"info": {"python": sys.version.split()[0], "numpy": np.__version__,
                               "scipy": scipy.__version__, "blas": blas, "cpu": cpu,
                               "ncpu": os.cpu_count(), "loadavg": load,
                               "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}}),
          flush=True)


def sddmm_fn(x, dy, row, col, chunk=1 << 18):
    """dW[k] = sum_b x[b, row[k]] * dy[b, col[k]], gathered in chunks of nonzeros so the
    (batch x chunk) temporaries stay small (the 4096x4096 20 % case has 3.4 M nonzeros)."""
    out = np.empty(row.shape[0], dtype=np.float32)

    def run():
        for s in range(0, row.shape[0], chunk):
            e = s + chunk
            np.einsum("bk,bk->k", x[:, row[s:e]], dy[:, col[s:e]], out=out[s:e])
        return out

    return run


def main():
    if "--info" in sys.argv:
        info()
        return
    cases = json.load(sys.stdin)
    rng = np.random.default_rng(0)
    for c in cases:
        kind = c["kind"]
        if kind == "gemm":
            m, n, k = c["m"], c["n"], c["k"]
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            out = np.empty((m, n), dtype=np.float32)
            ms = median_ms(lambda: np.matmul(a, b, out=out), reps=5 if m * n * k > 1e9 else 7)
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
                ms = median_ms(sddmm_fn(x, dy, coo.row, coo.col))
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
