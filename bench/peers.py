"""CPU (or CUDA) peers for `deno task bench:peers`: the products Filigree's kernels compute, at the
same shapes, on the same machine, in the same run, by
  - numpy (dense, OpenBLAS) and scipy.sparse (CSR), and
  - PyTorch, when it imports: dense `X @ W`, `torch.sparse` CSR `Wᵀ_csr @ X` (and, for the SpMM
    cases, the masked-dense alternative `X @ (W ⊙ M)`), the weight gradient as dense `X·dYᵀ`
    picked at the nonzeros, `clamp_min` for ReLU. torch.set_num_threads(1) on the CPU.
Prints one JSON object per (case, implementation):
  {"case": ..., "impl": ..., "lib": "numpy"|"torch", "ms": median, "gflops"|"gbps": ...}.

Usage: python3 bench/peers.py [--libs numpy,torch] [--device cpu|cuda]  (case list as JSON on stdin)
       python3 bench/peers.py --info  (one JSON line: versions, torch threads, CPU, load average)
"""
import json
import os
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")


def arg(name, default):
    if name in sys.argv:
        i = sys.argv.index(name)
        if i + 1 < len(sys.argv):
            return sys.argv[i + 1]
    return default


DEVICE = arg("--device", "cpu")


def try_torch():
    try:
        import torch

        torch.set_num_threads(1)
        return torch
    except Exception:
        return None


def median_ms(fn, reps=7, warm=2, sync=None):
    for _ in range(warm):
        fn()
    if sync:
        sync()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[len(ts) // 2]


def cuda_median_ms(torch, fn, reps=20, warm=3, inner=10):
    """CUDA: events around `inner` back-to-back calls, median over `reps` (ms per call)."""
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(inner):
            fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) / inner)
    ts.sort()
    return ts[len(ts) // 2]


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def info():
    blas = "?"
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg["Build Dependencies"]["blas"]
        blas = f'{b.get("name", "?")} {b.get("version", "")}'.strip()
    except Exception:  # older numpy: no dict mode
        pass
    out = {"python": sys.version.split()[0], "numpy": np.__version__, "blas": blas,
           "ncpu": os.cpu_count(),
           "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}
    try:
        import scipy

        out["scipy"] = scipy.__version__
    except Exception:
        out["scipy"] = "absent"
    torch = try_torch()
    if torch is not None:
        out["torch"] = torch.__version__
        out["torch_threads"] = torch.get_num_threads()
        if DEVICE == "cuda" and torch.cuda.is_available():
            out["torch_device"] = torch.cuda.get_device_name(0)
    # Deno needs --allow-all to read /proc, so the CPU model and load average come from here.
    cpu = "unknown CPU"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    out["cpu"] = cpu
    out["loadavg"] = " ".join(read("/proc/loadavg").split()[:3]) or "n/a"
    print(json.dumps({"info": out}), flush=True)


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


def emit(case, impl, lib, ms, work, unit, **extra):
    key = "gbps" if unit == "GB/s" else "gflops"
    print(json.dumps({"case": case, "impl": impl, "lib": lib, "ms": ms, key: work / ms / 1e6,
                      **extra}), flush=True)


def numpy_case(c, rng):
    import scipy.sparse as sp

    kind, name = c["kind"], c["name"]
    if kind == "gemm":
        m, n, k = c["m"], c["n"], c["k"]
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        out = np.empty((m, n), dtype=np.float32)
        ms = median_ms(lambda: np.matmul(a, b, out=out), reps=5 if m * n * k > 1e9 else 7)
        emit(name, "numpy X@W", "numpy", ms, 2 * m * n * k, "GFLOP/s")
    elif kind in ("spmm", "sddmm"):
        nin, nout, d, batch = c["nin"], c["nout"], c["density"], c["batch"]
        w = sp.random(nin, nout, density=d, format="csr", dtype=np.float32, random_state=1)
        x = rng.standard_normal((batch, nin), dtype=np.float32)
        if kind == "spmm":
            # SET's forward: X @ W with W in CSR (scipy, single-threaded C++).
            ms = median_ms(lambda: x @ w)
            emit(name, "scipy X@W_csr", "numpy", ms, 2 * w.nnz * batch, "GFLOP/s", nnz=int(w.nnz))
        else:
            # SDDMM peer: per-nonzero gather + einsum (what SET-style numpy code does).
            coo = w.tocoo()
            dy = rng.standard_normal((batch, nout), dtype=np.float32)
            ms = median_ms(sddmm_fn(x, dy, coo.row, coo.col))
            emit(name, "numpy gather+einsum", "numpy", ms, 2 * w.nnz * batch, "GFLOP/s",
                 nnz=int(w.nnz))
    elif kind == "relu":
        n = c["n"]
        x = rng.standard_normal(n, dtype=np.float32)
        y = np.empty_like(x)
        ms = median_ms(lambda: np.maximum(x, 0, out=y))
        emit(name, "numpy maximum", "numpy", ms, 8 * n, "GB/s")
    else:
        raise SystemExit(f"peers.py: unknown case kind {kind}")


def random_mask(torch, nin, nout, d, gen, dev):
    """A uniformly random mask with round(d * nin * nout) nonzeros, as (rows i, cols j)."""
    nnz = max(1, round(d * nin * nout))
    flat = torch.randperm(nin * nout, generator=gen)[:nnz].sort().values
    return (flat // nout).to(dev), (flat % nout).to(dev), nnz


def torch_case(torch, c, gen):
    dev = torch.device(DEVICE)
    if DEVICE == "cuda":
        timer = lambda fn, reps=7: cuda_median_ms(torch, fn)  # noqa: E731
    else:
        timer = lambda fn, reps=7: median_ms(fn, reps=reps)  # noqa: E731
    kind, name = c["kind"], c["name"]

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(dev)

    with torch.no_grad():
        if kind == "gemm":
            m, n, k = c["m"], c["n"], c["k"]
            a, b = randn(m, k), randn(k, n)
            out = torch.empty(m, n, device=dev)
            ms = timer(lambda: torch.mm(a, b, out=out), 5 if m * n * k > 1e9 else 7)
            emit(name, "torch X@W", "torch", ms, 2 * m * n * k, "GFLOP/s")
        elif kind == "spmm":
            nin, nout, d, batch = c["nin"], c["nout"], c["density"], c["batch"]
            i, j, nnz = random_mask(torch, nin, nout, d, gen, dev)
            vals = randn(nnz)
            wt = torch.sparse_coo_tensor(torch.stack([j, i]), vals, (nout, nin)).coalesce()
            wt_csr = wt.to_sparse_csr()
            xt = randn(nin, batch)  # feature-major, as Filigree's layers hold activations
            bias = randn(nout, 1)
            ms = timer(lambda: torch.relu_(torch.addmm(bias, wt_csr, xt)))
            emit(name, "torch CSR W^T@X+b,relu", "torch", ms, 2 * nnz * batch, "GFLOP/s", nnz=nnz)
            w = torch.zeros(nin, nout, device=dev)
            w[i, j] = vals
            x = xt.t().contiguous()
            bias_row = bias.t().contiguous()
            ms = timer(lambda: torch.relu_(torch.addmm(bias_row, x, w)))
            # masked dense does the dense work; GFLOP/s counts the useful (nonzero) work only
            emit(name, "torch masked dense", "torch", ms, 2 * nnz * batch, "GFLOP/s", nnz=nnz)
        elif kind == "sddmm":
            nin, nout, d, batch = c["nin"], c["nout"], c["density"], c["batch"]
            i, j, nnz = random_mask(torch, nin, nout, d, gen, dev)
            flat = i * nout + j
            xt, dyt = randn(nin, batch), randn(nout, batch)
            g = torch.empty(nin, nout, device=dev)
            ms = timer(lambda: torch.mm(xt, dyt.t(), out=g).view(-1)[flat])
            emit(name, "torch dense X.dY^T, pick", "torch", ms, 2 * nnz * batch, "GFLOP/s",
                 nnz=nnz)
        elif kind == "relu":
            n = c["n"]
            x = randn(n)
            y = torch.empty_like(x)
            ms = timer(lambda: torch.clamp_min(x, 0, out=y))
            emit(name, "torch clamp_min", "torch", ms, 8 * n, "GB/s")
        else:
            raise SystemExit(f"peers.py: unknown case kind {kind}")


def main():
    if "--info" in sys.argv:
        info()
        return
    libs = arg("--libs", "numpy,torch").split(",")
    cases = json.load(sys.stdin)
    rng = np.random.default_rng(0)
    torch = try_torch() if "torch" in libs else None
    gen = None
    if torch is not None:
        if DEVICE == "cuda" and not torch.cuda.is_available():
            raise SystemExit("peers.py: --device cuda but torch.cuda.is_available() is False")
        gen = torch.Generator().manual_seed(0)
    for c in cases:
        if "numpy" in libs:
            numpy_case(c, rng)
        if torch is not None:
            try:
                torch_case(torch, c, gen)
            except Exception as e:  # one failing torch kernel must not lose the other rows
                msg = str(e).strip().split("\n")[0][:200]
                print(f"peers.py: torch {c['name']}: {msg}", file=sys.stderr)
                print(json.dumps({"case": c["name"], "impl": "torch (failed)", "lib": "torch",
                                  "ms": None, "error": msg}), flush=True)


if __name__ == "__main__":
    main()
