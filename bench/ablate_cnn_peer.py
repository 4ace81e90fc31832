"""PyTorch CPU peer of bench/ablate_cnn_bench.ts (1 thread): the naive exact ablation of
convolution weights (zero the weight, full forward, restore) of the same sparse CNN on the same
evaluation samples. Reads the spec JSON the bench writes (raw little-endian arrays), prints JSON.

Model: [conv(k, pad k//2) -> relu -> maxpool 2] per conv, flatten (c, h, w), [linear -> relu]
per hidden layer, linear output; mean softmax cross-entropy.
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
spec = json.load(open(sys.argv[1]))


def arr(name):
    f = spec["files"][name]
    dt = {"f32": np.float32, "u32": np.uint32, "f64": np.float64}[f["dtype"]]
    return np.fromfile(f["file"], dtype=dt).reshape(f["shape"])


S = spec["samples"]
x = torch.from_numpy(arr("x").T[:S].copy()).reshape(S, spec["channels"], spec["height"], spec["width"])
labels = torch.from_numpy(arr("labels").astype(np.int64)[:S])
layers = spec["layers"]
W = [torch.from_numpy(arr(f"w{i}").copy()) for i in range(len(layers))]
B = [torch.from_numpy(arr(f"b{i}").copy()) for i in range(len(layers))]


def forward():
    h = x
    for i, L in enumerate(layers):
        if L["kind"] == "conv":
            k, cin, cout = L["kernel"], L["cin"], L["cout"]
            w = W[i].reshape(cin, k, k, cout).permute(3, 0, 1, 2)
            h = F.max_pool2d(F.relu(F.conv2d(h, w, B[i], padding=k // 2)), 2)
        else:
            h = h.reshape(S, -1) @ W[i] + B[i]
            if i < len(layers) - 1:
                h = F.relu(h)
    return F.cross_entropy(h, labels).item()


with torch.no_grad():
    base = forward()
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "baseline": base, "naive": []}
    for item in spec["naive"]:
        i, r, c = item["layer"], item["row"], item["col"]
        t0 = time.perf_counter()
        v = W[i][r, c].item()
        W[i][r, c] = 0.0
        loss = forward()
        W[i][r, c] = v
        out["naive"].append({"seconds": time.perf_counter() - t0, "dLoss": loss - base})
print(json.dumps(out))
