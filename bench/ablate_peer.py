"""PyTorch CPU peer for `bench/ablate_bench.ts`: exact single-weight ablation of a ReLU MLP on the
same checkpoint and evaluation samples as Filigree's run, float32, torch.set_num_threads(1).

Variants (each the change of the mean softmax cross-entropy when one weight is zeroed):
  naive    zero the weight, full forward over all samples, restore (timed on `naive` weights,
           extrapolated to all);
  rank1    the same rank-1 carry as Filigree's batched engine, vectorized over (weight, sample)
           pairs: z_j - w x_i on every sample, then the rest of the network on every sample
           (timed on up to 2,000 weights per layer, extrapolated);
  changed  the work-efficient form: only the samples where x_i != 0, and of those only the ones
           whose unit output changes, carried along W_{l+1}[j, :] to the logits; per-sample loss
           change against the cached per-sample loss, summed per weight in float64 (all weights).
The `changed` Δloss is compared with Filigree's carry engine (dloss files) and with `naive` on its
sampled weights.

Usage: /usr/bin/python3 bench/ablate_peer.py META.json
  META: {"layers": [{"nIn", "nOut", "nnz"}], "activation": "relu", "naive": N,
         "files": {name: {"file", "dtype": "f32"|"u32"|"f64", "shape"}}} with x [S][nIn] (the
         network input exactly as Filigree feeds it), labels [S], and per layer l: ends{l}
         [nnz][2] (input i, output j), values{l} [nnz], bias{l} [nOut], dloss{l} [nnz] (Filigree).
Prints one JSON object: torch version, threads, baseline loss, variants, agreement.
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

PAIRS_PER_CHUNK = 1 << 18


def load(meta):
    out = {}
    for name, f in meta["files"].items():
        dt = {"f32": np.float32, "u32": np.uint32, "f64": np.float64}[f["dtype"]]
        out[name] = np.fromfile(f["file"], dtype=dt).reshape(f["shape"])
    return out


class Net:
    def __init__(self, meta, a):
        self.x = torch.from_numpy(a["x"].copy())
        self.y = torch.from_numpy(a["labels"].astype(np.int64))
        self.S = self.x.shape[0]
        self.W, self.b, self.ends, self.vals = [], [], [], []
        for l, L in enumerate(meta["layers"]):
            ends = torch.from_numpy(a[f"ends{l}"].astype(np.int64))
            vals = torch.from_numpy(a[f"values{l}"].copy())
            W = torch.zeros(L["nIn"], L["nOut"])
            W[ends[:, 0], ends[:, 1]] = vals
            self.W.append(W)
            self.b.append(torch.from_numpy(a[f"bias{l}"].copy()))
            self.ends.append(ends)
            self.vals.append(vals)
        self.cache()

    def forward(self):
        h = self.x
        for l, W in enumerate(self.W):
            z = torch.addmm(self.b[l], h, W)
            h = z if l == len(self.W) - 1 else torch.relu(z)
        return h

    def cache(self):
        """H[l]: input of weight layer l; Z[l]: its pre-activation; per-sample loss and hits."""
        self.H, self.Z = [], []
        h = self.x
        for l, W in enumerate(self.W):
            self.H.append(h)
            z = torch.addmm(self.b[l], h, W)
            self.Z.append(z)
            h = z if l == len(self.W) - 1 else torch.relu(z)
        self.loss0 = F.cross_entropy(h, self.y, reduction="none")
        self.hit0 = (h.argmax(1) == self.y).double()
        # Sample lists per input row of every layer: samples where the input is nonzero.
        self.lists = []
        for H in self.H:
            nz = torch.nonzero(H.t() != 0)  # sorted by input row, then sample
            counts = torch.bincount(nz[:, 0], minlength=H.shape[1])
            ptr = torch.zeros(H.shape[1] + 1, dtype=torch.int64)
            ptr[1:] = torch.cumsum(counts, 0)
            self.lists.append((ptr, counts, nz[:, 1].contiguous()))

    def naive(self, l, e):
        i, j = self.ends[l][e].tolist()
        old = self.W[l][i, j].item()
        self.W[l][i, j] = 0.0
        logits = self.forward()
        self.W[l][i, j] = old
        loss = F.cross_entropy(logits, self.y).item()
        return loss - self.loss0.mean().item()

    def pairs(self, l, es, mode):
        """(weight index into es, sample) pairs: every sample, or those with x_i != 0."""
        E = es.numel()
        if mode == "all":
            rep = torch.arange(E).repeat_interleave(self.S)
            return rep, torch.arange(self.S).repeat(E)
        ptr, counts, idx = self.lists[l]
        i = self.ends[l][es, 0]
        c = counts[i]
        rep = torch.arange(E).repeat_interleave(c)
        starts = torch.cumsum(c, 0) - c
        within = torch.arange(rep.numel()) - starts[rep]
        return rep, idx[ptr[i][rep] + within]

    def ablate(self, l, es, mode):
        """Δloss per weight es (layer l) by carrying (weight, sample) pairs to the loss."""
        last = len(self.W) - 1
        d_loss = torch.zeros(es.numel(), dtype=torch.float64)
        ends, vals = self.ends[l][es], self.vals[l][es]
        rep, s = self.pairs(l, es, mode)
        for c0 in range(0, rep.numel(), PAIRS_PER_CHUNK):
            r, t = rep[c0 : c0 + PAIRS_PER_CHUNK], s[c0 : c0 + PAIRS_PER_CHUNK]
            i, j, w = ends[r, 0], ends[r, 1], vals[r]
            zo = self.Z[l][t, j]
            zn = zo - w * self.H[l][t, i]
            if l == last:
                logits = self.Z[l][t].clone()
                logits[torch.arange(t.numel()), j] = zn
            else:
                dh = torch.relu(zn) - torch.relu(zo)
                if mode == "changed":
                    keep = dh != 0
                    r, t, j, dh = r[keep], t[keep], j[keep], dh[keep]
                z = torch.addcmul(self.Z[l + 1][t], dh[:, None], self.W[l + 1][j])
                for m in range(l + 1, last):
                    dh2 = torch.relu(z) - self.H[m + 1][t]
                    z = torch.addmm(self.Z[m + 1][t], dh2, self.W[m + 1])
                logits = z
            dl = F.cross_entropy(logits, self.y[t], reduction="none") - self.loss0[t]
            d_loss.index_add_(0, r, dl.double())
        return d_loss / self.S


def main():
    torch.set_num_threads(1)
    meta = json.load(open(sys.argv[1]))
    if meta["activation"] != "relu":
        print(f"ablate_peer: only ReLU MLPs, got {meta['activation']}", file=sys.stderr)
        sys.exit(2)
    a = load(meta)
    net = Net(meta, a)
    L = len(net.W)
    total = sum(x["nnz"] for x in meta["layers"])
    variants = []

    # naive: the same weights as Filigree's naive loop (k * 7919 mod nnz, layers in turn)
    picks = [(k % L, (k * 7919) % meta["layers"][k % L]["nnz"]) for k in range(meta["naive"])]
    times, naive_d = [], []
    for l, e in picks:
        t0 = time.perf_counter()
        naive_d.append(net.naive(l, e))
        times.append(time.perf_counter() - t0)
    variants.append(
        {"name": "naive", "seconds": float(np.median(times)) * total, "timed": len(picks),
         "extrapolated": True}
    )

    # rank1 on every sample, timed on up to 2,000 weights per layer
    sec, timed = 0.0, 0
    for l in range(L):
        n = min(2000, meta["layers"][l]["nnz"])
        t0 = time.perf_counter()
        net.ablate(l, torch.arange(n), "all")
        sec += (time.perf_counter() - t0) * meta["layers"][l]["nnz"] / n
        timed += n
    variants.append({"name": "rank1", "seconds": sec, "timed": timed, "extrapolated": True})

    # changed samples only, all weights
    t0 = time.perf_counter()
    changed = [net.ablate(l, torch.arange(meta["layers"][l]["nnz"]), "changed") for l in range(L)]
    variants.append(
        {"name": "changed", "seconds": time.perf_counter() - t0, "timed": total,
         "extrapolated": False}
    )

    max_abs, max_rel, within = 0.0, 0.0, 0
    for l in range(L):
        ref = torch.from_numpy(a[f"dloss{l}"].copy())
        diff = (changed[l] - ref).abs()
        max_abs = max(max_abs, diff.max().item())
        big = ref.abs() > 1e-4
        if big.any():
            max_rel = max(max_rel, (diff[big] / ref[big].abs()).max().item())
        within += int((diff <= 1e-5 * ref.abs() + 1e-7).sum().item())
    naive_vs_changed = max(abs(d - changed[l][e].item()) for (l, e), d in zip(picks, naive_d))
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "baselineLoss": net.loss0.mean().item(),
        "variants": variants,
        "agreement": {"maxAbs": max_abs, "maxRel": max_rel, "within": within, "compared": total,
                      "naiveVsChangedMaxAbs": naive_vs_changed},
    }))


if __name__ == "__main__":
    main()
