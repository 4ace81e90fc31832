"""PyTorch peer for `bench/ablate_bench.ts`: exact single-weight ablation of a ReLU MLP on the
same checkpoint and evaluation samples as Filigree's run, float32, torch.set_num_threads(1) on the
CPU (or on CUDA with "device": "cuda").

Variants (each the change of the mean softmax cross-entropy when one weight is zeroed):
  naive    zero the weight, full forward over all samples, restore (timed on `naive` weights,
           extrapolated to all);
  rank1    the same rank-1 carry as Filigree's batched engine, vectorized over (weight, sample)
           pairs: z_j - w x_i on every sample, then the rest of the network densely on every
           sample;
  changed  the work-efficient form, the best exact method this peer has: only the samples where
           x_i != 0; of those only the ones whose unit output changes; that change carried along
           the nonzero entries of row j of the next layer's weights (CSR by input row); of those
           only the units whose output changes, scattered into a dense block and carried densely
           through the remaining layers (or straight into the logits); per-sample loss change
           against the cached per-sample loss, summed per weight in float64.
rank1 and changed run layer by layer in chunks of weights until every weight is done or the
layer's share of `budgetSeconds` is spent (then the time is extrapolated to all the layer's weights
from the chunks done). Wall time and the process's CPU time (time.process_time: on a loaded
machine the wall time also counts waiting for a core) are both reported. Every Δloss computed by `changed` is compared with Filigree's carry engine
(dloss files); `naive`'s sampled weights with `changed` where both ran.

Usage: python3 bench/ablate_peer.py META.json
  META: {"layers": [{"nIn", "nOut", "nnz"}], "activation": "relu", "naive": N, "device": "cpu",
         "budgetSeconds": 60, "files": {name: {"file", "dtype": "f32"|"u32"|"f64", "shape"}}}
         with x [S][nIn] (the network input exactly as Filigree feeds it), labels [S], and per
         layer l: ends{l} [nnz][2] (input i, output j), values{l} [nnz], bias{l} [nOut],
         dloss{l} [nnz] (Filigree's).
Prints one JSON object: torch version, threads, device, baseline loss, variants, agreement.
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

PAIRS_PER_CHUNK = 1 << 18  # (weight, sample) pairs per chunk
DENSE_FLOATS = 1 << 22  # largest dense (pairs x width) block of the changed variant


def load(meta):
    out = {}
    for name, f in meta["files"].items():
        dt = {"f32": np.float32, "u32": np.uint32, "f64": np.float64}[f["dtype"]]
        out[name] = np.fromfile(f["file"], dtype=dt).reshape(f["shape"])
    return out


class Net:
    def __init__(self, meta, a, dev):
        self.dev = dev
        self.x = torch.from_numpy(a["x"].copy()).to(dev)
        self.y = torch.from_numpy(a["labels"].astype(np.int64)).to(dev)
        self.S = self.x.shape[0]
        self.W, self.b, self.ends, self.vals, self.rows = [], [], [], [], []
        for l, L in enumerate(meta["layers"]):
            ends = torch.from_numpy(a[f"ends{l}"].astype(np.int64)).to(dev)
            vals = torch.from_numpy(a[f"values{l}"].copy()).to(dev)
            W = torch.zeros(L["nIn"], L["nOut"], device=dev)
            W[ends[:, 0], ends[:, 1]] = vals
            self.W.append(W)
            self.b.append(torch.from_numpy(a[f"bias{l}"].copy()).to(dev))
            self.ends.append(ends)
            self.vals.append(vals)
            # CSR by input row: the nonzero entries of row i of W (for the sparse hop)
            order = torch.argsort(ends[:, 0] * L["nOut"] + ends[:, 1])
            ptr = torch.zeros(L["nIn"] + 1, dtype=torch.int64, device=dev)
            ptr[1:] = torch.cumsum(torch.bincount(ends[:, 0], minlength=L["nIn"]), 0)
            self.rows.append((ptr, ends[order, 1].contiguous(), vals[order].contiguous()))
        self.cache()

    def forward(self):
        h = self.x
        for l, W in enumerate(self.W):
            z = torch.addmm(self.b[l], h, W)
            h = z if l == len(self.W) - 1 else torch.relu(z)
        return h

    def cache(self):
        """H[l]: input of weight layer l; Z[l]: its pre-activation; per-sample loss."""
        self.H, self.Z = [], []
        h = self.x
        for l, W in enumerate(self.W):
            self.H.append(h)
            z = torch.addmm(self.b[l], h, W)
            self.Z.append(z)
            h = z if l == len(self.W) - 1 else torch.relu(z)
        self.loss0 = F.cross_entropy(h, self.y, reduction="none")
        # Sample lists per input row of every layer: samples where the input is nonzero.
        self.lists = []
        for H in self.H:
            nz = torch.nonzero(H.t() != 0)  # sorted by input row, then sample
            counts = torch.bincount(nz[:, 0], minlength=H.shape[1])
            ptr = torch.zeros(H.shape[1] + 1, dtype=torch.int64, device=self.dev)
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

    def expand(self, ptr, counts, keys):
        """For each key k (a row), the positions ptr[k]..ptr[k+1]-1: returns (owner, position)."""
        c = counts[keys]
        owner = torch.repeat_interleave(torch.arange(keys.numel(), device=self.dev), c)
        starts = torch.cumsum(c, 0) - c
        within = torch.arange(owner.numel(), device=self.dev) - starts[owner]
        return owner, ptr[keys][owner] + within

    def pairs(self, l, es, mode):
        """(weight index into es, sample) pairs: every sample, or those with x_i != 0."""
        E = es.numel()
        if mode == "rank1":
            rep = torch.arange(E, device=self.dev).repeat_interleave(self.S)
            return rep, torch.arange(self.S, device=self.dev).repeat(E)
        ptr, counts, idx = self.lists[l]
        rep, at = self.expand(ptr, counts, self.ends[l][es, 0])
        return rep, idx[at]

    def dense_tail(self, m, t, dz):
        """Pre-activation change dz [P][nOut_m] of layer m on samples t -> logits [P][C]."""
        last = len(self.W) - 1
        z = self.Z[m][t] + dz
        while m < last:
            dh = torch.relu(z) - self.H[m + 1][t]
            z = torch.addmm(self.Z[m + 1][t], dh, self.W[m + 1])
            m += 1
        return z

    def ablate(self, l, es, mode):
        """Δloss (float64, summed over samples) per weight es of layer l."""
        last = len(self.W) - 1
        d_loss = torch.zeros(es.numel(), dtype=torch.float64, device=self.dev)
        ends, vals = self.ends[l][es], self.vals[l][es]
        rep, s = self.pairs(l, es, mode)
        for c0 in range(0, rep.numel(), PAIRS_PER_CHUNK):
            r, t = rep[c0: c0 + PAIRS_PER_CHUNK], s[c0: c0 + PAIRS_PER_CHUNK]
            i, j, w = ends[r, 0], ends[r, 1], vals[r]
            zo = self.Z[l].view(-1)[t * self.Z[l].shape[1] + j]
            zn = zo - w * self.H[l].view(-1)[t * self.H[l].shape[1] + i]
            if l == last:
                logits = self.Z[l][t].clone()
                logits[torch.arange(t.numel(), device=self.dev), j] = zn
                self.add_loss(d_loss, r, t, logits)
                continue
            dh = torch.relu(zn) - torch.relu(zo)
            if mode == "rank1":
                dz = dh[:, None] * self.W[l + 1][j]
                self.add_loss(d_loss, r, t, self.dense_tail(l + 1, t, dz))
                continue
            keep = dh != 0
            r, t, j, dh = r[keep], t[keep], j[keep], dh[keep]
            self.sparse_hop(d_loss, l + 1, r, t, j, dh)
        return d_loss

    def sparse_hop(self, d_loss, m, r, t, j, dh):
        """Carry dh (unit j of layer m's input, per pair) along row j's nonzeros of W[m]: only
        the (pair, unit) entries that exist, then only those whose output changes."""
        last = len(self.W) - 1
        ptr, cols, rv = self.rows[m]
        counts = ptr[1:] - ptr[:-1]
        width = self.W[m].shape[1]
        zf = self.Z[m].view(-1)
        avg = max(1, int(counts.float().mean().item()))
        step = max(1, min(DENSE_FLOATS // self.W[-1].shape[1], DENSE_FLOATS // avg))
        if m + 1 < last:
            step = max(1, min(step, DENSE_FLOATS // width))
        for p0 in range(0, r.numel(), step):
            rr, tt, jj, dd = r[p0: p0 + step], t[p0: p0 + step], j[p0: p0 + step], dh[p0: p0 + step]
            owner, at = self.expand(ptr, counts, jj)
            k = cols[at]
            flat = tt[owner] * width + k
            zn = zf[flat] + dd[owner] * rv[at]
            if m == last:
                logits = self.Z[m][tt]
                logits.view(-1)[owner * width + k] = zn  # (pair, k) unique: row j has k once
                self.add_loss(d_loss, rr, tt, logits)
                continue
            dh2 = torch.relu(zn) - self.H[m + 1].view(-1)[flat]
            keep = dh2 != 0
            owner, k, dh2 = owner[keep], k[keep], dh2[keep]
            if m + 1 == last:
                logits = self.Z[last][tt]
                logits.index_add_(0, owner, dh2[:, None] * self.W[last][k])
            else:
                dH = torch.zeros(rr.numel(), width, device=self.dev)
                dH.view(-1)[owner * width + k] = dh2
                logits = self.dense_tail(m + 1, tt, torch.mm(dH, self.W[m + 1]))
            self.add_loss(d_loss, rr, tt, logits)

    def add_loss(self, d_loss, r, t, logits):
        dl = F.cross_entropy(logits, self.y[t], reduction="none") - self.loss0[t]
        d_loss.index_add_(0, r, dl.double())


def timed_layer(net, l, nnz, mode, budget, sync):
    """Runs `mode` on layer l in chunks until done or over budget: (seconds for all, done, dloss)."""
    out = torch.zeros(nnz, dtype=torch.float64, device=net.dev)
    # chunk of weights: about PAIRS_PER_CHUNK pairs (rank1 pairs every sample with a weight)
    per_w = net.S if mode == "rank1" else max(1, int(net.lists[l][1].float().mean().item()))
    chunk = max(1, min(nnz, 4 * PAIRS_PER_CHUNK // max(1, per_w)))
    done, sec, cpu = 0, 0.0, 0.0
    while done < nnz and sec < budget:
        es = torch.arange(done, min(nnz, done + chunk), device=net.dev)
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        out[es] = net.ablate(l, es, mode)
        sync()
        sec += time.perf_counter() - t0
        cpu += time.process_time() - c0
        done += es.numel()
    return sec * nnz / done, cpu * nnz / done, done, out[:done] / net.S


def main():
    torch.set_num_threads(1)
    meta = json.load(open(sys.argv[1]))
    if meta["activation"] != "relu":
        print(f"ablate_peer: only ReLU MLPs, got {meta['activation']}", file=sys.stderr)
        sys.exit(2)
    device = meta.get("device", "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        print("ablate_peer: device cuda but torch.cuda.is_available() is False", file=sys.stderr)
        sys.exit(2)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    budget = float(meta.get("budgetSeconds", 60))
    a = load(meta)
    with torch.no_grad():
        net = Net(meta, a, dev)
        L = len(net.W)
        nnzs = [x["nnz"] for x in meta["layers"]]
        total = sum(nnzs)
        variants = []

        # naive: the same weights as Filigree's naive loop (k * 7919 mod nnz, layers in turn)
        picks = [(k % L, (k * 7919) % nnzs[k % L]) for k in range(meta["naive"])]
        net.naive(0, 0)  # warm-up
        times, cpus, naive_d = [], [], []
        for l, e in picks:
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            naive_d.append(net.naive(l, e))
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        variants.append({"name": "naive", "seconds": float(np.median(times)) * total,
                         "cpuSeconds": float(np.median(cpus)) * total,
                         "timed": len(picks), "extrapolated": True, "perLayer": []})

        results = {}
        for mode in ("rank1", "changed"):
            sec, cpu, timed, per_layer, res = 0.0, 0.0, 0, [], []
            for l in range(L):
                s_l, c_l, done, d = timed_layer(net, l, nnzs[l], mode, budget / L, sync)
                sec += s_l
                cpu += c_l
                timed += done
                per_layer.append({"seconds": s_l, "cpuSeconds": c_l, "timed": done,
                                  "weights": nnzs[l]})
                res.append(d)
            results[mode] = res
            variants.append({"name": mode, "seconds": sec, "cpuSeconds": cpu, "timed": timed,
                             "extrapolated": timed < total, "perLayer": per_layer})

    max_abs, max_rel, within, compared = 0.0, 0.0, 0, 0
    for l in range(L):
        got = results["changed"][l].cpu()
        ref = torch.from_numpy(a[f"dloss{l}"].copy())[: got.numel()]
        ok = ~torch.isnan(ref)  # weights Filigree's run did not reach (its --carry-budget)
        if not ok.any():
            continue
        got, ref = got[ok], ref[ok]
        diff = (got - ref).abs()
        max_abs = max(max_abs, diff.max().item())
        big = ref.abs() > 1e-4
        if big.any():
            max_rel = max(max_rel, (diff[big] / ref[big].abs()).max().item())
        within += int((diff <= 1e-5 * ref.abs() + 1e-7).sum().item())
        compared += got.numel()
    nvc = [abs(d - results["changed"][l][e].item()) for (l, e), d in zip(picks, naive_d)
           if e < results["changed"][l].numel()]
    r1 = max(((results["rank1"][l] - results["changed"][l][: results["rank1"][l].numel()])
              .abs().max().item() for l in range(L)), default=0.0)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "baselineLoss": net.loss0.mean().item(),
        "budgetSeconds": budget,
        "variants": variants,
        "agreement": {"maxAbs": max_abs, "maxRel": max_rel, "within": within, "compared": compared,
                      "naiveVsChangedMaxAbs": max(nvc) if nvc else None,
                      "rank1VsChangedMaxAbs": r1},
    }))


if __name__ == "__main__":
    main()
