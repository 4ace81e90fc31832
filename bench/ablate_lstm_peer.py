"""numpy peer of bench/ablate_lstm_bench.ts: exact LSTM ablation, the engine's batched algorithm.

Reads the directory the bench writes (dense float32 wx [F][4H], wh [H][4H], bias [4H], head
layers, x [T*F][S], labels [S], ablations (kind 0 = wx / 1 = wh, a, b) and meta.json), then runs
K ablated copies side by side through the recurrence: per step one dense product of the shared
W_h over all K*S columns, the removed term subtracted exactly per copy, the cell update, then the
head and the mean cross-entropy per copy. The first copy is the unablated model. float32, the
BLAS thread count as set by the caller's environment (the bench sets 1). Prints one JSON line:
seconds (median of the rounds), ablations, batch, baseline loss, dLoss per ablation.
"""
import json
import os
import sys
import time

import numpy as np


def main(d):
    m = json.load(open(os.path.join(d, "meta.json")))
    T, F, H, C, S, K = m["T"], m["F"], m["H"], m["C"], m["S"], m["K"]
    G = 4 * H
    rd = lambda n, dt=np.float32: np.fromfile(os.path.join(d, n), dtype=dt)
    wx = rd("wx").reshape(F, G)
    wh = rd("wh").reshape(H, G)
    bias = rd("bias")[:G]
    x = rd("x").reshape(T, F, S)
    labels = rd("labels", np.uint32).astype(np.int64)
    abl = rd("abl", np.int32).reshape(-1, 3)
    head = [
        (rd(h["name"] + ".w").reshape(h["nIn"], h["nOut"]), rd(h["name"] + ".b"), h["act"])
        for h in m["head"]
    ]
    # zx[t] = wx^T x_t + b, shared by every copy: [T][4H][S]
    zx = np.einsum("fg,tfs->tgs", wx, x, optimize=True) + bias[None, :, None]
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))

    def run(batch):  # batch: rows of abl (or -1 for the unablated copy)
        k = len(batch)
        kind = np.array([abl[i, 0] if i >= 0 else -1 for i in batch])
        a = np.array([abl[i, 1] if i >= 0 else 0 for i in batch])
        b = np.array([abl[i, 2] if i >= 0 else 0 for i in batch])
        w = np.array(
            [(wx if kind[j] == 0 else wh)[a[j], b[j]] if kind[j] >= 0 else 0 for j in range(k)],
            dtype=np.float32,
        )
        h = np.zeros((H, k * S), np.float32)
        c = np.zeros((H, k * S), np.float32)
        for t in range(T):
            z = np.tile(zx[t], (1, k))
            if t > 0:
                z += wh.T @ h
            z = z.reshape(G, k, S)
            for j in range(k):
                if kind[j] == 0:
                    z[b[j], j] -= w[j] * x[t, a[j]]
                elif kind[j] == 1 and t > 0:
                    z[b[j], j] -= w[j] * h.reshape(H, k, S)[a[j], j]
            z = z.reshape(G, k * S)
            i, f, g, o = sig(z[:H]), sig(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), sig(z[3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
        y = h
        for W, bb, act in head:
            y = W.T @ y + bb[:, None]
            if act == "relu":
                y = np.maximum(y, 0)
            elif act == "tanh":
                y = np.tanh(y)
            elif act != "identity":
                raise SystemExit(f"peer: activation {act} not implemented")
        y = y.reshape(C, k, S)
        mx = y.max(axis=0)
        lse = mx + np.log(np.exp(y - mx[None]).sum(axis=0))
        picked = np.take_along_axis(y, labels[None, None, :].repeat(k, axis=1), axis=0)[0]
        return (lse - picked).mean(axis=1)

    n = m["ablations"]
    order = [-1] + list(range(n))
    times, losses = [], None
    for _ in range(m["rounds"]):
        t0 = time.perf_counter()
        out = []
        for s in range(0, len(order), K):
            out.append(run(order[s:s + K]))
        times.append(time.perf_counter() - t0)
        losses = np.concatenate(out)
    print(json.dumps({
        "numpy": np.__version__,
        "threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "seconds": float(np.median(times)),
        "ablations": n,
        "batch": K,
        "baselineLoss": float(losses[0]),
        "dLoss": [float(v - losses[0]) for v in losses[1:]],
    }))


if __name__ == "__main__":
    main(sys.argv[1])
