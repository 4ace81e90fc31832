"""numpy peer of the WANN evaluator (bench/wann_bench.ts).

Evaluates a population the way the reference code does (WANNRelease/WANN/wann_src/ind.py `act`,
re-implemented here, not copied): each network is a dense N x N connection matrix in topological
order (row = source, column = destination; node 0 the bias, then the inputs, hidden nodes,
outputs), multiplied by the shared weight; nodes are computed one after another as
`act_i = f_i(A @ W[:, i])` over all samples at once, in float64; then softmax cross-entropy and
argmax per weight, and the majority vote over weights.

Usage: python3 bench/wann_peer.py POP.json DATA.bin [reps]
  POP.json: {"features", "outputs", "samples", "weights", "nets": [{"act": [...], "incoming": [[...]]}]}
  DATA.bin: float32 x [samples][features] (sample-major) then uint32 labels [samples]
Prints one JSON line: median seconds per population evaluation and the statistics.
"""
import json
import os
import sys
import time

import numpy as np


def apply_act(a, x):
    if a == 1:
        return x
    if a == 2:
        return (x > 0).astype(np.float64)
    if a == 3:
        return np.sin(np.pi * x)
    if a == 4:
        return np.exp(-0.5 * x * x)
    if a == 5:
        return np.tanh(x)
    if a == 6:
        return 0.5 * (np.tanh(0.5 * x) + 1.0)
    if a == 7:
        return -x
    if a == 8:
        return np.abs(x)
    if a == 9:
        return np.maximum(0.0, x)
    if a == 10:
        return np.cos(np.pi * x)
    raise ValueError(a)


def to_matrix(net, features):
    """Dense connectivity matrix over [bias, inputs, computed nodes] and the activation vector."""
    k = len(net["act"])
    n = features + 1 + k
    conn = np.zeros((n, n))
    acts = np.ones(n, dtype=np.int64)
    for j, inc in enumerate(net["incoming"]):
        for s in inc:
            conn[s, features + 1 + j] = 1.0
        acts[features + 1 + j] = net["act"][j]
    return conn, acts


def forward(conn, acts, x, w, features):
    n = conn.shape[0]
    node = np.zeros((x.shape[0], n))
    node[:, 0] = 1.0
    node[:, 1:features + 1] = x
    wmat = conn * w
    for i in range(features + 1, n):
        node[:, i] = apply_act(acts[i], node @ wmat[:, i])
    return node


def evaluate(pop, x, labels):
    features, outputs, weights = pop["features"], pop["outputs"], pop["weights"]
    stats = []
    for net in pop["nets"]:
        conn, acts = to_matrix(net, features)
        preds = []
        row = []
        for w in weights:
            out = forward(conn, acts, x, w, features)[:, -outputs:]
            m = out.max(axis=1, keepdims=True)
            lse = np.log(np.exp(out - m).sum(axis=1)) + m[:, 0]
            ce = lse - out[np.arange(len(labels)), labels]
            pred = out.argmax(axis=1)
            preds.append(pred)
            row.append([float(ce.mean()), float((pred == labels).mean())])
        p = np.stack(preds)  # [weights][samples]
        votes = np.zeros((outputs, p.shape[1]), dtype=np.int64)
        for c in range(outputs):
            votes[c] = (p == c).sum(axis=0)
        ens = float((votes.argmax(axis=0) == labels).mean())  # ties: smaller class, as the GPU
        row.append([0.0, ens])
        stats.append(row)
    return stats


def main():
    pop = json.load(open(sys.argv[1]))
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    s, f = pop["samples"], pop["features"]
    raw = np.fromfile(sys.argv[2], dtype=np.uint8)
    x = np.frombuffer(raw[: s * f * 4].tobytes(), dtype=np.float32).reshape(s, f).astype(np.float64)
    labels = np.frombuffer(raw[s * f * 4: s * f * 4 + s * 4].tobytes(), dtype=np.uint32).astype(np.int64)
    times = []
    stats = None
    for _ in range(reps):
        t0 = time.perf_counter()
        stats = evaluate(pop, x, labels)
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "seconds": sorted(times)[len(times) // 2],
        "times": times,
        "numpy": np.__version__,
        "threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "stats": stats,
    }))


if __name__ == "__main__":
    main()
