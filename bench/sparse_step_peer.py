"""CPU peers for bench/sparse_step_bench.ts: one SGD-momentum training step (forward, backward,
update; ReLU hidden layers, softmax cross-entropy, batch B) of an MLP whose sparse layers have
the given nonzero counts, 1 thread, timed as the median of 7 steps after 2 warm-ups.

- torch (if `import torch` works): "torch masked dense" (dense W·mask products) and "torch CSR"
  (CSR forward and backward-data products, weight gradient = dense Xᵀ·dY picked at the nonzeros);
  "torch masked dense, same work" adds what Filigree's step also does: the batch gathered from a
  resident dataset by a shuffled order, biases, weight decay, and the loss and correct-count sums.
- numpy/scipy (if they import): the same two algorithms.

Reads {"batch": B, "nets": {name: [[nIn, nOut, nnz or null], ...]}} on stdin; prints
{"net", "impl", "ms"} lines after an {"info": ...} line.
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


def masks(rng, layers):
    out = []
    for n_in, n_out, nnz in layers:
        if nnz is None:
            out.append(None)
            continue
        flat = np.sort(rng.choice(n_in * n_out, size=nnz, replace=False))
        out.append((flat // n_out, flat % n_out))
    return out


def numpy_steps(layers, ms, batch, rng):
    import scipy.sparse as sp

    x0 = rng.standard_normal((batch, layers[0][0])).astype(np.float32)
    y = rng.integers(0, layers[-1][1], batch)
    lr, mom = 0.01, 0.9

    def xent_grad(logits):
        e = np.exp(logits - logits.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        p[np.arange(batch), y] -= 1
        return p / batch

    # masked dense
    Ws = [rng.standard_normal((a, b)).astype(np.float32) * 0.05 for a, b, _ in layers]
    Ms = []
    for (a, b, _), m in zip(layers, ms):
        M = np.ones((a, b), np.float32)
        if m is not None:
            M[:] = 0
            M[m] = 1
        Ms.append(M)
    Vs = [np.zeros_like(w) for w in Ws]

    def dense_step():
        acts, zs = [x0], []
        h = x0
        for i, W in enumerate(Ws):
            z = h @ W
            zs.append(z)
            h = np.maximum(z, 0) if i < len(Ws) - 1 else z
            acts.append(h)
        d = xent_grad(h)
        for i in range(len(Ws) - 1, -1, -1):
            if i < len(Ws) - 1:
                d = d * (zs[i] > 0)
            g = (acts[i].T @ d) * Ms[i]
            if i > 0:
                d = d @ Ws[i].T
            Vs[i] *= mom
            Vs[i] += g
            Ws[i] -= lr * Vs[i]

    # CSR: forward/backward-data sparse products, dW = dense Xᵀ·dY picked at the nonzeros
    csr = []
    for (a, b, _), m, W in zip(layers, ms, Ws):
        if m is None:
            csr.append(None)
        else:
            csr.append((m[0], m[1], W[m].copy(), np.zeros(len(m[0]), np.float32)))
    dense_out = [W.copy() for W in Ws]
    vd = [np.zeros_like(w) for w in Ws]

    def csr_step():
        acts, zs, mats = [x0], [], []
        h = x0
        for i, (a, b, _) in enumerate(layers):
            if csr[i] is None:
                z = h @ dense_out[i]
                mats.append(None)
            else:
                r, c, v, _ = csr[i]
                Wc = sp.csr_matrix((v, (r, c)), shape=(a, b))
                mats.append(Wc)
                z = (Wc.T @ h.T).T
            zs.append(z)
            h = np.maximum(z, 0) if i < len(layers) - 1 else z
            acts.append(h)
        d = xent_grad(h)
        for i in range(len(layers) - 1, -1, -1):
            if i < len(layers) - 1:
                d = d * (zs[i] > 0)
            if csr[i] is None:
                g = acts[i].T @ d
                if i > 0:
                    d = d @ dense_out[i].T
                vd[i] *= mom
                vd[i] += g
                dense_out[i] -= lr * vd[i]
            else:
                r, c, v, vel = csr[i]
                g = (acts[i].T @ d)[r, c]
                if i > 0:
                    d = (mats[i] @ d.T).T
                vel *= mom
                vel += g
                v -= lr * vel

    return {"numpy masked dense": median_ms(dense_step), "scipy CSR + dense dW": median_ms(csr_step)}


def torch_steps(layers, ms, batch, rng, torch):
    torch.set_num_threads(1)
    x0 = torch.from_numpy(rng.standard_normal((batch, layers[0][0])).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, layers[-1][1], batch))
    lr, mom = 0.01, 0.9
    Ws = [torch.randn(a, b) * 0.05 for a, b, _ in layers]
    Ms = []
    for (a, b, _), m in zip(layers, ms):
        M = torch.ones(a, b)
        if m is not None:
            M.zero_()
            M[torch.from_numpy(m[0]), torch.from_numpy(m[1])] = 1
        Ms.append(M)
    Vs = [torch.zeros_like(w) for w in Ws]

    def xent_grad(logits):
        p = torch.softmax(logits, 1)
        p[torch.arange(batch), y] -= 1
        return p / batch

    @torch.no_grad()
    def dense_step():
        acts, zs = [x0], []
        h = x0
        for i, W in enumerate(Ws):
            z = h @ W
            zs.append(z)
            h = torch.relu(z) if i < len(Ws) - 1 else z
            acts.append(h)
        d = xent_grad(h)
        for i in range(len(Ws) - 1, -1, -1):
            if i < len(Ws) - 1:
                d = d * (zs[i] > 0)
            g = (acts[i].t() @ d) * Ms[i]
            if i > 0:
                d = d @ Ws[i].t()
            Vs[i].mul_(mom).add_(g)
            Ws[i].sub_(lr * Vs[i])

    sp_layers = []
    for (a, b, _), m, W in zip(layers, ms, Ws):
        if m is None:
            sp_layers.append(None)
            continue
        r = torch.from_numpy(m[0].astype(np.int64))
        c = torch.from_numpy(m[1].astype(np.int64))
        sp_layers.append((r, c, W[r, c].clone(), torch.zeros(len(m[0]))))
    dense_out = [W.clone() for W in Ws]
    vd = [torch.zeros_like(w) for w in Ws]

    @torch.no_grad()
    def csr_step():
        acts, zs, mats = [x0], [], []
        h = x0
        for i, (a, b, _) in enumerate(layers):
            if sp_layers[i] is None:
                z = h @ dense_out[i]
                mats.append(None)
            else:
                r, c, v, _ = sp_layers[i]
                wt = torch.sparse_coo_tensor(torch.stack([c, r]), v, (b, a)).coalesce()
                wt_csr = wt.to_sparse_csr()
                w_csr = torch.sparse_coo_tensor(torch.stack([r, c]), v, (a, b)).to_sparse_csr()
                mats.append(w_csr)
                z = (wt_csr @ h.t()).t()
            zs.append(z)
            h = torch.relu(z) if i < len(layers) - 1 else z
            acts.append(h)
        d = xent_grad(h)
        for i in range(len(layers) - 1, -1, -1):
            if i < len(layers) - 1:
                d = d * (zs[i] > 0)
            if sp_layers[i] is None:
                g = acts[i].t() @ d
                if i > 0:
                    d = d @ dense_out[i].t()
                vd[i].mul_(mom).add_(g)
                dense_out[i].sub_(lr * vd[i])
            else:
                r, c, v, vel = sp_layers[i]
                g = (acts[i].t() @ d)[r, c]
                if i > 0:
                    d = (mats[i] @ d.t()).t()
                vel.mul_(mom).add_(g)
                v.sub_(lr * vel)

    # The same work as Filigree's step (src/train/trainer.ts trainStep): the batch gathered from a
    # resident dataset by a shuffled order, biases, weight decay on every parameter (PyTorch's
    # SGD default), and the loss and correct-prediction sums kept on the device.
    n_data = 100 * batch
    x_all = torch.from_numpy(rng.standard_normal((n_data, layers[0][0])).astype(np.float32))
    y_all = torch.from_numpy(rng.integers(0, layers[-1][1], n_data))
    order = torch.randperm(n_data)
    Ws2 = [W.clone() for W in Ws]
    Bs = [torch.zeros(b) for _, b, _ in layers]
    VWs = [torch.zeros_like(w) for w in Ws2]
    VBs = [torch.zeros_like(b) for b in Bs]
    wd = 2e-4  # bench/sparse_step_bench.ts's weightDecay
    sums = {"loss": torch.zeros(()), "correct": torch.zeros((), dtype=torch.int64), "step": 0}

    @torch.no_grad()
    def dense_full_step():
        s0 = (sums["step"] * batch) % n_data
        sums["step"] += 1
        idx = order[s0:s0 + batch]
        h, yb = x_all[idx], y_all[idx]
        acts, zs = [h], []
        for i, W in enumerate(Ws2):
            z = torch.addmm(Bs[i], h, W)
            zs.append(z)
            h = torch.relu(z) if i < len(Ws2) - 1 else z
            acts.append(h)
        logp = torch.log_softmax(h, 1)
        sums["loss"] += -logp[torch.arange(batch), yb].sum()
        sums["correct"] += (h.argmax(1) == yb).sum()
        d = logp.exp()
        d[torch.arange(batch), yb] -= 1
        d /= batch
        for i in range(len(Ws2) - 1, -1, -1):
            if i < len(Ws2) - 1:
                d = d * (zs[i] > 0)
            g = (acts[i].t() @ d) * Ms[i] + wd * Ws2[i]
            gb = d.sum(0) + wd * Bs[i]
            if i > 0:
                d = d @ Ws2[i].t()
            VWs[i].mul_(mom).add_(g)
            Ws2[i].sub_(lr * VWs[i])
            VBs[i].mul_(mom).add_(gb)
            Bs[i].sub_(lr * VBs[i])

    return {
        "torch masked dense": median_ms(dense_step),
        "torch masked dense, same work": median_ms(dense_full_step),
        "torch CSR + dense dW": median_ms(csr_step),
    }


def main():
    cfg = json.load(sys.stdin)
    info = {"python": sys.version.split()[0], "numpy": np.__version__, "threads": 1}
    try:
        import torch

        info["torch"] = torch.__version__
    except Exception:
        torch = None
    try:
        import scipy

        info["scipy"] = scipy.__version__
        have_scipy = True
    except Exception:
        have_scipy = False
    with open("/proc/loadavg") as f:
        info["loadavg"] = " ".join(f.read().split()[:3])
    print(json.dumps({"info": info}), flush=True)
    for name, layers in cfg["nets"].items():
        rng = np.random.default_rng(1)
        ms = masks(rng, layers)
        res = {}
        if torch is not None:
            res.update(torch_steps(layers, ms, cfg["batch"], rng, torch))
        if have_scipy:
            res.update(numpy_steps(layers, ms, cfg["batch"], rng))
        for impl, ms_ in res.items():
            print(json.dumps({"net": name, "impl": impl, "ms": ms_}), flush=True)


if __name__ == "__main__":
    main()
