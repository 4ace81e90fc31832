"""CPU peer for `bench/train_bench.ts`: one SET-style training epoch of a sparse MLP in numpy /
scipy.sparse, float32, at the same architecture, nonzero counts and batch size as Filigree's run.

Per step: forward with scipy CSR products (sparse layers) or numpy (dense output layer), ReLU,
softmax cross-entropy; backward with the data gradient through the transposed CSR and the
weight gradient at the nonzeros only (gather + row-wise dot, in blocks); SGD with momentum and
coupled weight decay. After the epoch: SET's per-sign drop of the zeta smallest positive and
negative weights of each sparse layer, regrowth at uniformly random empty positions (rejection
sampling on linear indices), the CSR rebuilt and the momentum moved with its weights (grown
entries start at 0 momentum). Phases are timed with time.perf_counter.

Usage: python3 bench/train_peer.py '<json>'  with keys
  dataset ("fashion-mnist" | "mnist"), dataDir, gz (bool), layers ([[nIn, nOut, nnz or null
  for dense], ...]), batch, epochs, lr, momentum, weightDecay, zeta, seed, initStd ([per layer]),
  trainSubset (optional: the first N training samples)
Prints one JSON object per epoch: {"epoch", "seconds": {...}, "steps", "trainLoss", "nnz"}.
       python3 bench/train_peer.py --info  (numpy / scipy versions)
"""
import gzip
import json
import os
import sys
import time

import numpy as np

try:  # the PyTorch peer imports `load` from here and needs no scipy
    import scipy.sparse as sp
except ImportError:  # pragma: no cover
    sp = None


def read_idx(path, gz):
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(cfg):
    suffix = ".gz" if cfg["gz"] else ""
    d = cfg["dataDir"]
    x = read_idx(os.path.join(d, "train-images-idx3-ubyte" + suffix), cfg["gz"])
    y = read_idx(os.path.join(d, "train-labels-idx1-ubyte" + suffix), cfg["gz"])
    x = x.reshape(x.shape[0], -1).astype(np.float32) / np.float32(255.0)
    return x, y.astype(np.int64)


class SparseLayer:
    """W (nIn x nOut) stored as CSR of W^T (nOut x nIn): z = W^T a for feature-major a."""

    def __init__(self, n_in, n_out, nnz, std, rng):
        self.n_in, self.n_out = n_in, n_out
        pos = rng.choice(n_in * n_out, size=nnz, replace=False)
        self.set_positions(pos, (rng.standard_normal(nnz) * std).astype(np.float32),
                           np.zeros(nnz, np.float32))
        self.b = np.zeros((n_out, 1), np.float32)
        self.vb = np.zeros_like(self.b)
        self.std = std

    def set_positions(self, pos, vals, mom):
        # positions p = j * nIn + i (row j of W^T); CSR sorted by (j, i)
        order = np.argsort(pos, kind="stable")
        pos, vals, mom = pos[order], vals[order], mom[order]
        rows = (pos // self.n_in).astype(np.int32)
        cols = (pos % self.n_in).astype(np.int32)
        indptr = np.zeros(self.n_out + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=self.n_out), out=indptr[1:])
        self.wt = sp.csr_matrix((vals, cols, indptr), shape=(self.n_out, self.n_in))
        self.rows, self.cols = rows, cols
        self.vw = mom

    @property
    def nnz(self):
        return self.wt.nnz

    def forward(self, a):
        return self.wt @ a + self.b

    def backward_data(self, dz):
        return self.wt.T @ dz

    def grad_w(self, a, dz):
        # dW at the nonzeros only: g[e] = sum_b dz[row_e, b] * a[col_e, b], in blocks
        g = np.empty(self.nnz, np.float32)
        blk = 1 << 15
        for s in range(0, self.nnz, blk):
            r, c = self.rows[s : s + blk], self.cols[s : s + blk]
            g[s : s + blk] = np.einsum("eb,eb->e", dz[r], a[c])
        return g

    def sgd(self, gw, gb, lr, mu, wd):
        w = self.wt.data
        self.vw *= mu
        self.vw -= lr * (gw + wd * w)
        w += self.vw
        self.vb *= mu
        self.vb -= lr * (gb + wd * self.b)
        self.b += self.vb

    def evolve(self, zeta, rng):
        w = self.wt.data
        pos = self.rows.astype(np.int64) * self.n_in + self.cols
        pos_idx = np.flatnonzero(w > 0)
        neg_idx = np.flatnonzero(w < 0)
        kp = int(zeta * len(pos_idx))
        kn = int(zeta * len(neg_idx))
        drop = np.zeros(len(w), bool)
        if kp:
            drop[pos_idx[np.argpartition(w[pos_idx], kp - 1)[:kp]]] = True
        if kn:
            drop[neg_idx[np.argpartition(-w[neg_idx], kn - 1)[:kn]]] = True
        keep = ~drop
        kept_pos = pos[keep]
        k = int(drop.sum())
        grown = np.empty(0, np.int64)
        occupied = kept_pos
        while len(grown) < k:
            cand = np.unique(rng.integers(0, self.n_in * self.n_out, size=2 * (k - len(grown))))
            cand = cand[~np.isin(cand, occupied)]
            cand = rng.permutation(cand)[: k - len(grown)]
            grown = np.concatenate([grown, cand])
            occupied = np.concatenate([occupied, cand])
        vals = np.concatenate([w[keep], (rng.standard_normal(k) * self.std).astype(np.float32)])
        mom = np.concatenate([self.vw[keep], np.zeros(k, np.float32)])
        self.set_positions(np.concatenate([kept_pos, grown]), vals, mom)


class DenseLayer:
    def __init__(self, n_in, n_out, std, rng):
        self.wt = (rng.standard_normal((n_out, n_in)) * std).astype(np.float32)
        self.b = np.zeros((n_out, 1), np.float32)
        self.vw = np.zeros_like(self.wt)
        self.vb = np.zeros_like(self.b)
        self.nnz = n_in * n_out

    def forward(self, a):
        return self.wt @ a + self.b

    def backward_data(self, dz):
        return self.wt.T @ dz

    def grad_w(self, a, dz):
        return dz @ a.T

    def sgd(self, gw, gb, lr, mu, wd):
        self.vw *= mu
        self.vw -= lr * (gw + wd * self.wt)
        self.wt += self.vw
        self.vb *= mu
        self.vb -= lr * (gb + wd * self.b)
        self.b += self.vb


def run(cfg):
    rng = np.random.default_rng(cfg.get("seed", 1))
    x, y = load(cfg)
    if cfg.get("trainSubset"):
        x, y = x[: cfg["trainSubset"]], y[: cfg["trainSubset"]]
    layers = []
    for (n_in, n_out, nnz), std in zip(cfg["layers"], cfg["initStd"]):
        if nnz is None:
            layers.append(DenseLayer(n_in, n_out, std, rng))
        else:
            layers.append(SparseLayer(n_in, n_out, nnz, std, rng))
    bsz = cfg["batch"]
    lr, mu, wd = np.float32(cfg["lr"]), np.float32(cfg["momentum"]), np.float32(cfg["weightDecay"])
    n = x.shape[0]
    steps = n // bsz + (1 if n % bsz else 0)
    for epoch in range(cfg["epochs"]):
        order = rng.permutation(n)
        t = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0, "topology": 0.0, "data": 0.0}
        loss_sum = 0.0
        t_epoch = time.perf_counter()
        for s in range(steps):
            t0 = time.perf_counter()
            idx = order[s * bsz : (s + 1) * bsz]
            a = np.ascontiguousarray(x[idx].T)  # feature-major [784][B]
            labels = y[idx]
            b = a.shape[1]
            t1 = time.perf_counter()
            acts, zs = [a], []
            for li, layer in enumerate(layers):
                z = layer.forward(acts[-1])
                zs.append(z)
                if li < len(layers) - 1:
                    acts.append(np.maximum(z, 0))
            logits = zs[-1]
            m = logits.max(axis=0, keepdims=True)
            e = np.exp(logits - m)
            p = e / e.sum(axis=0, keepdims=True)
            loss_sum += float(-np.log(p[labels, np.arange(b)] + 1e-12).sum())
            t2 = time.perf_counter()
            dz = p
            dz[labels, np.arange(b)] -= 1
            dz /= np.float32(b)
            grads = [None] * len(layers)
            for li in range(len(layers) - 1, -1, -1):
                layer = layers[li]
                grads[li] = (layer.grad_w(acts[li], dz), dz.sum(axis=1, keepdims=True))
                if li > 0:
                    da = layer.backward_data(dz)
                    dz = da * (zs[li - 1] > 0)
            t3 = time.perf_counter()
            for layer, (gw, gb) in zip(layers, grads):
                layer.sgd(gw, gb, lr, mu, wd)
            t4 = time.perf_counter()
            t["data"] += t1 - t0
            t["forward"] += t2 - t1
            t["backward"] += t3 - t2
            t["optimizer"] += t4 - t3
        t5 = time.perf_counter()
        for layer in layers:
            if isinstance(layer, SparseLayer):
                layer.evolve(cfg["zeta"], rng)
        t["topology"] = time.perf_counter() - t5
        t["total"] = time.perf_counter() - t_epoch
        print(json.dumps({
            "epoch": epoch + 1,
            "steps": steps,
            "seconds": t,
            "trainLoss": loss_sum / n,
            "nnz": [int(layer.nnz) for layer in layers],
        }), flush=True)


def info():
    import scipy
    print(json.dumps({"numpy": np.__version__, "scipy": scipy.__version__,
                      "python": sys.version.split()[0]}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--info":
        info()
    else:
        run(json.loads(sys.argv[1]))
