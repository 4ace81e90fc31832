"""PyTorch peer for `bench/train_bench.ts`: SET-style training epochs of a sparse MLP in PyTorch,
float32, at the same architecture, nonzero counts, batch, optimizer and SET update as Filigree's
run, on the CPU (torch.set_num_threads(1)) or on CUDA (eager, or the step replayed as a CUDA
graph). Gradients are written out by hand (no autograd), as in bench/train_peer.py.

Implementations (`impl`):
  masked  every layer a dense W (nIn x nOut) times its 0/1 mask: forward X·W, weight gradient
          (Xᵀ·dY) ⊙ M, backward dY·Wᵀ (what sparse_learning / RigL-style PyTorch code runs);
  csr     sparse layers as torch.sparse CSR: forward Wᵀ_csr·A and backward W_csr·dZ (feature-major
          activations A [nIn][B]; values gathered into the transposed CSR each step), weight
          gradient as the dense dZ·Aᵀ picked at the nonzeros; the dense output layer dense.
Per step: ReLU, softmax cross-entropy, SGD with momentum and coupled weight decay. After each
epoch SET's per-sign drop of the zeta smallest positive and negative weights of each sparse layer
and regrowth at uniformly random empty positions with zero weight and zero momentum (Filigree's
default `regrowInit: zero`). The training set lives on the device; batches are gathered there.

Usage: python3 bench/train_torch_peer.py '<json>' with the keys of bench/train_peer.py plus
  impl ("masked" | "csr"), device ("cpu" | "cuda"), graphs (bool, CUDA only)
Prints one JSON object per epoch: {"impl", "device", "graphs", "epoch", "steps",
  "seconds": {"train", "topology", "total"}, "trainLoss", "nnz", "torch", "threads"}.
       python3 bench/train_torch_peer.py --info  (torch version, threads, CUDA device)
"""
import json
import sys
import time
import warnings

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from train_peer import load  # noqa: E402  (the IDX reader shared with the numpy peer)

warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")


class Layer:
    """One weight layer. masked: W [nIn][nOut] + mask; csr: flat positions p = j * nIn + i."""

    def __init__(self, n_in, n_out, nnz, std, impl, dev, gen):
        self.n_in, self.n_out, self.dense = n_in, n_out, nnz is None
        self.impl, self.dev, self.std = impl, dev, std
        self.b = torch.zeros(n_out, device=dev)
        self.vb = torch.zeros_like(self.b)
        if self.dense:
            w = (torch.randn(n_in, n_out, generator=gen) * std).to(dev)
            self.w = w if impl == "masked" else w.t().contiguous()  # csr impl: Wᵀ [nOut][nIn]
            self.vw = torch.zeros_like(self.w)
            return
        flat = torch.randperm(n_in * n_out, generator=gen)[:nnz].to(dev)  # j * nIn + i
        vals = (torch.randn(nnz, generator=gen) * std).to(dev)
        self.set_positions(flat, vals, torch.zeros(nnz, device=dev))

    @property
    def nnz(self):
        if self.dense:
            return self.n_in * self.n_out
        return int(self.m.sum().item()) if self.impl == "masked" else self.flat.numel()

    def set_positions(self, flat, vals, mom):
        """flat: positions j * nIn + i (any order); builds the representation of `impl`."""
        if self.impl == "masked":
            i, j = flat % self.n_in, flat // self.n_in
            self.w = torch.zeros(self.n_in, self.n_out, device=self.dev)
            self.m = torch.zeros(self.n_in, self.n_out, device=self.dev)
            self.vw = torch.zeros_like(self.w)
            self.w[i, j] = vals
            self.m[i, j] = 1.0
            self.vw[i, j] = mom
            return
        order = torch.argsort(flat)
        self.flat, self.vals, self.vw = flat[order], vals[order].contiguous(), mom[order]
        j, i = self.flat // self.n_in, self.flat % self.n_in
        self.crow = torch.zeros(self.n_out + 1, dtype=torch.int64, device=self.dev)
        self.crow[1:] = torch.cumsum(torch.bincount(j, minlength=self.n_out), 0)
        self.col = i.contiguous()
        # the transposed CSR (rows i): values in (i, j) order = vals[perm_t]
        self.perm_t = torch.argsort(i * self.n_out + j)
        self.crow_t = torch.zeros(self.n_in + 1, dtype=torch.int64, device=self.dev)
        self.crow_t[1:] = torch.cumsum(torch.bincount(i, minlength=self.n_in), 0)
        self.col_t = j[self.perm_t].contiguous()

    # ---- the step (sample-major for masked, feature-major for csr) ----
    def forward(self, a):
        if self.impl == "masked":
            return torch.addmm(self.b, a, self.w)  # [B][nOut]
        if self.dense:
            return torch.addmm(self.b[:, None], self.w, a)  # [nOut][B]
        wt = torch.sparse_csr_tensor(self.crow, self.col, self.vals, (self.n_out, self.n_in))
        return torch.addmm(self.b[:, None], wt, a)

    def backward(self, a, dz, need_da):
        """Returns (grad W (as stored), grad b, dA or None)."""
        if self.impl == "masked":
            g = torch.mm(a.t(), dz)
            if not self.dense:
                g.mul_(self.m)
            return g, dz.sum(0), (torch.mm(dz, self.w.t()) if need_da else None)
        if self.dense:
            return torch.mm(dz, a.t()), dz.sum(1), (torch.mm(self.w.t(), dz) if need_da else None)
        g = torch.mm(dz, a.t()).view(-1)[self.flat]
        da = None
        if need_da:
            w = torch.sparse_csr_tensor(self.crow_t, self.col_t, self.vals[self.perm_t],
                                        (self.n_in, self.n_out))
            da = torch.mm(w, dz)
        return g, dz.sum(1), da

    def sgd(self, g, gb, lr, mu, wd):
        w = self.w if (self.impl == "masked" or self.dense) else self.vals
        # v = mu v - lr (g + wd w); w += v (in place; masked: g and w are 0 off the mask)
        self.vw.mul_(mu).add_(g, alpha=-lr).add_(w, alpha=-lr * wd)
        w.add_(self.vw)
        self.vb.mul_(mu).add_(gb, alpha=-lr).add_(self.b, alpha=-lr * wd)
        self.b.add_(self.vb)

    # ---- SET ----
    def evolve(self, zeta, gen):
        if self.impl == "masked":
            on = self.m.t().reshape(-1) > 0  # positions j * nIn + i
            flat = torch.nonzero(on).squeeze(1)
            vals = self.w.t().reshape(-1)[flat]
            mom = self.vw.t().reshape(-1)[flat]
        else:
            flat, vals, mom = self.flat, self.vals, self.vw
        pos, neg = vals > 0, vals < 0
        kp, kn = int(zeta * int(pos.sum())), int(zeta * int(neg.sum()))
        inf = torch.tensor(float("inf"), device=self.dev)
        drop = torch.zeros_like(pos)
        if kp:
            drop[torch.topk(torch.where(pos, vals, inf), kp, largest=False).indices] = True
        if kn:
            drop[torch.topk(torch.where(neg, -vals, inf), kn, largest=False).indices] = True
        keep = ~drop
        occupied = torch.zeros(self.n_in * self.n_out, dtype=torch.bool, device=self.dev)
        occupied[flat[keep]] = True  # a dropped position may be regrown, as in Filigree
        k = kp + kn
        score = torch.rand(self.n_in * self.n_out, generator=gen).to(self.dev)
        score[occupied] = -1.0
        grown = torch.topk(score, k).indices
        self.set_positions(torch.cat([flat[keep], grown]),
                           torch.cat([vals[keep], torch.zeros(k, device=self.dev)]),
                           torch.cat([mom[keep], torch.zeros(k, device=self.dev)]))


def make_step(layers, lr, mu, wd, impl):
    last = len(layers) - 1

    def step(xb, yb, loss_acc):
        b = xb.shape[0]
        a = xb if impl == "masked" else xb.t()
        acts, zs = [a], []
        for li, layer in enumerate(layers):
            z = layer.forward(acts[-1])
            zs.append(z)
            if li < last:
                acts.append(torch.relu(z))
        logits = zs[-1] if impl == "masked" else zs[-1].t()
        p = torch.softmax(logits, 1)
        loss_acc.sub_(torch.log(p.gather(1, yb[:, None]) + 1e-12).sum())
        p[torch.arange(b, device=p.device), yb] -= 1.0
        dz = p / b if impl == "masked" else (p / b).t()
        grads = [None] * len(layers)
        for li in range(last, -1, -1):
            g, gb, da = layers[li].backward(acts[li], dz, li > 0)
            grads[li] = (g, gb)
            if li > 0:
                dz = da * (zs[li - 1] > 0)
        for layer, (g, gb) in zip(layers, grads):
            layer.sgd(g, gb, lr, mu, wd)

    return step


def run(cfg):
    impl, device, graphs = cfg["impl"], cfg.get("device", "cpu"), bool(cfg.get("graphs"))
    torch.set_num_threads(1)
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("train_torch_peer: device cuda but torch.cuda.is_available() is False")
    if graphs and device != "cuda":
        raise SystemExit("train_torch_peer: graphs needs device cuda")
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(cfg.get("seed", 1))
    x, y = load(cfg)
    if cfg.get("trainSubset"):
        x, y = x[: cfg["trainSubset"]], y[: cfg["trainSubset"]]
    X = torch.from_numpy(np.ascontiguousarray(x)).to(dev)
    Y = torch.from_numpy(y).to(dev)
    layers = [Layer(n_in, n_out, nnz, std, impl, dev, gen)
              for (n_in, n_out, nnz), std in zip(cfg["layers"], cfg["initStd"])]
    bsz, n = cfg["batch"], X.shape[0]
    steps = n // bsz + (1 if n % bsz else 0)
    full = n // bsz
    step = make_step(layers, cfg["lr"], cfg["momentum"], cfg["weightDecay"], impl)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    loss_acc = torch.zeros((), device=dev)
    graph = None
    if graphs:
        idx_s = torch.zeros(bsz, dtype=torch.int64, device=dev)

        def captured():
            step(X.index_select(0, idx_s), Y.index_select(0, idx_s), loss_acc)

    with torch.no_grad():
        # warm-up: one step (and, with graphs, the capture) before timing; changes the weights once
        step(X[:bsz], Y[:bsz], loss_acc)
        sync()
        for epoch in range(cfg["epochs"]):
            if graphs and graph is None or (graphs and impl == "csr"):
                # (re)capture: the CSR structure changes after every topology update
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(2):
                        captured()
                torch.cuda.current_stream().wait_stream(s)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    captured()
                sync()
            loss_acc.zero_()
            order = torch.randperm(n, generator=gen).to(dev)
            sync()
            t0 = time.perf_counter()
            for s_ in range(steps):
                idx = order[s_ * bsz: (s_ + 1) * bsz]
                if graph is not None and s_ < full:
                    idx_s.copy_(idx)
                    graph.replay()
                else:
                    step(X.index_select(0, idx), Y.index_select(0, idx), loss_acc)
            sync()
            t1 = time.perf_counter()
            for layer in layers:
                if not layer.dense:
                    layer.evolve(cfg["zeta"], gen)
            sync()
            t2 = time.perf_counter()
            if graphs and impl == "masked":
                graph = None  # the masks are new tensors: capture again next epoch
            print(json.dumps({
                "impl": impl, "device": device, "graphs": graphs, "epoch": epoch + 1,
                "steps": steps,
                "seconds": {"train": t1 - t0, "topology": t2 - t1, "total": t2 - t0},
                "trainLoss": loss_acc.item() / n,
                "nnz": [layer.nnz for layer in layers],
                "torch": torch.__version__, "threads": torch.get_num_threads(),
            }), flush=True)


def info():
    out = {"torch": torch.__version__, "threads": (torch.set_num_threads(1), torch.get_num_threads())[1],
           "python": sys.version.split()[0], "cuda": torch.cuda.is_available()}
    if out["cuda"]:
        out["device"] = torch.cuda.get_device_name(0)
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--info":
        info()
    else:
        run(json.loads(sys.argv[1]))
