"""CPU peers for bench/sparse_bench.ts: the products of Filigree's sparse kernels at the same
shapes, batch and densities, timed on the same machine in the same run, 1 thread.

- torch CSR (if `import torch` works): Y = W_csrᵀ-as-CSR @ X (torch.sparse.mm), the
  transposed product dX = W_csr @ dY, and the two weight-gradient routes: dense X·dYᵀ picked at
  the nonzeros, and a per-nonzero gather + sum (SDDMM).
- scipy CSR (if scipy imports): the same SpMM products.

Reads {"batch": B, "cases": [[nIn, nOut, density], ...]} as JSON on stdin; prints one JSON object
per line: {"lib", "op", "nIn", "nOut", "density", "nnz", "ms"} (median of 7 after 2 warm-ups)
and first an {"info": ...} line with versions and thread counts.
"""
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


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


def mask(rng, n_in, n_out, density):
    nnz = int(round(density * n_in * n_out))
    flat = rng.choice(n_in * n_out, size=nnz, replace=False)
    return np.sort(flat) // n_out, np.sort(flat) % n_out, nnz


def main():
    cfg = json.load(sys.stdin)
    batch = cfg["batch"]
    info = {"python": sys.version.split()[0], "numpy": np.__version__, "threads": 1}
    try:
        import torch

        torch.set_num_threads(1)
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except Exception:  # torch not installed
        torch = None
    try:
        import scipy
        import scipy.sparse as sp

        info["scipy"] = scipy.__version__
    except Exception:
        sp = None
    with open("/proc/loadavg") as f:
        info["loadavg"] = " ".join(f.read().split()[:3])
    print(json.dumps({"info": info}), flush=True)
    rng = np.random.default_rng(1234)
    for n_in, n_out, density in cfg["cases"]:
        rows, cols, nnz = mask(rng, n_in, n_out, density)
        vals = rng.standard_normal(nnz).astype(np.float32)
        x = rng.standard_normal((batch, n_in)).astype(np.float32)
        dy = rng.standard_normal((batch, n_out)).astype(np.float32)

        def out(lib, op, ms):
            print(json.dumps({"lib": lib, "op": op, "nIn": n_in, "nOut": n_out,
                              "density": density, "nnz": nnz, "ms": ms}), flush=True)

        if torch is not None:
            idx = torch.tensor(np.stack([rows, cols]), dtype=torch.int64)
            w = torch.sparse_coo_tensor(idx, torch.from_numpy(vals), (n_in, n_out)).coalesce()
            wt_csr = w.t().coalesce().to_sparse_csr()  # [nOut][nIn]
            w_csr = w.to_sparse_csr()  # [nIn][nOut]
            xt = torch.from_numpy(np.ascontiguousarray(x.T))  # [nIn][B] feature-major
            dyt = torch.from_numpy(np.ascontiguousarray(dy.T))  # [nOut][B]
            xb = torch.from_numpy(x)
            dyb = torch.from_numpy(dy)
            r = torch.from_numpy(rows.astype(np.int64))
            c = torch.from_numpy(cols.astype(np.int64))
            with torch.no_grad():
                out("torch", "spmm", median_ms(lambda: torch.relu(wt_csr @ xt)))
                out("torch", "spmmT", median_ms(lambda: w_csr @ dyt))
                out("torch", "wgrad_dense", median_ms(lambda: (xb.t() @ dyb)[r, c]))
                if nnz * batch <= 40_000_000:
                    out("torch", "wgrad_gather",
                        median_ms(lambda: (xb[:, r] * dyb[:, c]).sum(0)))
        if sp is not None:
            w = sp.csr_matrix((vals, (rows, cols)), shape=(n_in, n_out))
            wt = w.T.tocsr()
            xt = np.ascontiguousarray(x.T)
            dyt = np.ascontiguousarray(dy.T)
            out("scipy", "spmm", median_ms(lambda: np.maximum(wt @ xt, 0)))
            out("scipy", "spmmT", median_ms(lambda: w @ dyt))


if __name__ == "__main__":
    main()
