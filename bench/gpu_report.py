"""Collects the outputs of bench/gpu.sh into ONE results file: gpu_results.json (every step's raw
results, exit status, time, load average, device) and the same as markdown tables in
gpu_results.md. Standard library only (runs on the GPU host's python3 and here).

Usage: python3 bench/gpu_report.py --work DIR --out DIR --mode gpu|dry [--note TEXT] [--data-note TEXT]
"""
import json
import os
import sys
import tempfile
from datetime import datetime, timezone


def arg(name, default=None):
    if name in sys.argv:
        i = sys.argv.index(name)
        if i + 1 < len(sys.argv):
            return sys.argv[i + 1]
    return default


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_lines(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def num(x, d=3):
    if x is None:
        return "-"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if x != x:
        return "NaN"
    if abs(x) >= 100:
        return f"{x:.1f}"
    return f"{x:.{d}f}"


def write_atomic(path, text):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp_")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main():
    work, out, mode = arg("--work"), arg("--out"), arg("--mode", "gpu")
    if not work or not out:
        print("gpu_report.py: needs --work DIR --out DIR", file=sys.stderr)
        sys.exit(2)
    steps = read_lines(os.path.join(work, "steps.jsonl"))
    kernels = read_lines(os.path.join(work, "kernels.jsonl"))
    peers = read_json(os.path.join(work, "peers.json"))
    train = read_json(os.path.join(work, "train.json"))
    ablate = read_json(os.path.join(work, "ablate.json"))
    device = tail(os.path.join(work, "device.txt"), 20).strip()
    logs = {s["step"]: tail(os.path.join(work, s["step"] + ".log"), 25) for s in steps}
    note = arg("--note", "") or None
    data_note = arg("--data-note", "") or None
    md = []
    md.append(f"# bench/gpu.sh results ({mode})\n")
    md.append(f"Written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.\n")
    md.append("```text\n" + device + "\n```\n")
    if note:
        md.append(f"**PyTorch peers:** {note}\n")
    if data_note:
        md.append(f"**Data:** {data_note}\n")
    md.append("| step | exit | seconds | limit | load average after |")
    md.append("| --- | --- | --- | --- | --- |")
    for s in steps:
        status = "timed out" if s["rc"] == 124 else str(s["rc"])
        md.append(f"| {s['step']} | {status} | {num(s['seconds'], 1)} | {s['limit']} | {s['load']} |")
    md.append("")

    if kernels:
        md.append("## Kernels (GPU timestamp queries, median of 3 passes)\n")
        md.append("| group | case | ms | GFLOP/s | GB/s |")
        md.append("| --- | --- | --- | --- | --- |")
        for k in kernels:
            md.append(f"| {k.get('group', '')} | {k.get('name', '')} | {num(k.get('ms'))} | "
                      f"{num(k.get('gflops'), 2)} | {num(k.get('gbps'), 2)} |")
        md.append("")

    if peers:
        md.append("## Filigree vs peers (bench:peers)\n")
        md.append(f"Adapter {peers.get('adapter')} [{peers.get('backend')}]; {peers.get('torchLine')}; "
                  f"load {peers.get('loadStart')} -> {peers.get('loadEnd')}. "
                  "F/x = Filigree throughput / peer throughput (> 1: Filigree faster).\n")
        md.append("| case | unit | Filigree ms | Filigree | peer | peer ms | peer value | F/peer |")
        md.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in peers.get("rows", []):
            for p in r.get("peers", []):
                md.append(f"| {r['name']} | {r['unit']} | {num(r['filigreeMs'])} | "
                          f"{num(r['filigree'], 2)} | {p['impl']} | {num(p['ms'])} | "
                          f"{num(p['value'], 2)} | {num(p['ratio'], 2)} |")
        md.append("")

    if train:
        md.append("## SET-MLP epoch (bench:train)\n")
        ad = train.get("adapter") or {}
        if isinstance(ad, dict):
            ad = f"{ad.get('description') or ad.get('vendor')} [{ad.get('backend')}]"
        tv = train.get("torch")
        md.append(f"Adapter {ad}; PyTorch {tv or 'not run'} on {train.get('torchDevice')}; load "
                  f"{train.get('loadavg')}.\n")
        md.append("| who | epsilon | nnz | steps | train s | ms/step | topology s | epoch s |")
        md.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in train.get("rows", []):
            md.append(f"| Filigree | {r['epsilon']} | {r['totalNnz']} | {r['stepsPerEpoch']} | "
                      f"{num(r['trainSeconds'])} | {num(r['msPerStep'])} | "
                      f"{num(r['seconds']['topology'])} | {num(r['seconds']['total'])} |")
        tp = train.get("torchPeers")
        if isinstance(tp, list):
            for r in tp:
                who = f"torch {r['impl']}{' (CUDA graph)' if r.get('graphs') else ''} on {r.get('device')}"
                if r.get("error"):
                    md.append(f"| {who} | failed: {r['error']} | | | | | | |")
                    continue
                md.append(f"| {who} | | {sum(r.get('nnz') or [])} | {r['steps']} | "
                          f"{num(r['seconds']['train'])} | {num(r['msPerStep'])} | "
                          f"{num(r['seconds']['topology'])} | {num(r['seconds']['total'])} |")
        elif isinstance(tp, dict):
            md.append(f"\nPyTorch peers skipped: {tp.get('skipped')}")
        md.append("")

    if ablate:
        md.append("## Exact ablation (bench:ablate)\n")
        eps = ablate.get("epsilon")
        spars = f"SET epsilon {eps}" if eps is not None else f"density {ablate.get('density')}"
        md.append(f"Model {ablate.get('model')} at {spars}, {ablate.get('evalSamples')} evaluation "
                  f"samples, adapter {ablate.get('adapter')} [{ablate.get('backend')}], load "
                  f"{ablate.get('loadAverage')}.\n")
        md.append("| layer | weights | carry s | carry timed | batched s (extrapolated) | max abs carry-batched |")
        md.append("| --- | --- | --- | --- | --- | --- |")
        for l in ablate.get("layers", []):
            md.append(f"| {l['layer']} | {l['weights']} | {num(l['carrySeconds'])} | "
                      f"{l.get('carryTimed', l['weights'])} | {num(l['batchedSeconds'])} | "
                      f"{l['maxAbsDiff']:.1e} |")
        c, b, n = ablate.get("carry", {}), ablate.get("batched", {}), ablate.get("naive", {})
        md.append("")
        md.append(f"carry {num(c.get('seconds'))} s for {c.get('weights')} weights "
                  f"({num(c.get('perSecond'), 0)}/s); batched {num(b.get('seconds'))} s; naive "
                  f"{num(n.get('medianMs'))} ms each -> {num(n.get('secondsForAll'))} s.\n")
        p = ablate.get("peer") or {}
        if "skipped" in p:
            md.append(f"PyTorch peer skipped: {p['skipped']}\n")
        elif p:
            md.append(f"PyTorch {p.get('torch')} on {p.get('device')} ({p.get('threads')} CPU "
                      f"thread(s)), budget {p.get('budgetSeconds')} s per variant:\n")
            md.append("| variant | seconds for all | CPU s | timed weights | extrapolated | peer / Filigree carry |")
            md.append("| --- | --- | --- | --- | --- | --- |")
            for v in p.get("variants", []):
                ratio = v["seconds"] / c["seconds"] if c.get("seconds") else None
                md.append(f"| {v['name']} | {num(v['seconds'])} | {num(v.get('cpuSeconds'))} | "
                          f"{v['timed']} | {v['extrapolated']} | {num(ratio, 2)} |")
            a = p.get("agreement", {})
            md.append(f"\nExactness: 'changed' vs Filigree's carry on {a.get('compared')} weights: "
                      f"max abs {a.get('maxAbs')}, max rel {a.get('maxRel')}, within tolerance "
                      f"{a.get('within')}.\n")

    result = {
        "mode": mode,
        "written": datetime.now(timezone.utc).isoformat(),
        "device": device,
        "peerNote": note,
        "dataNote": data_note,
        "steps": steps,
        "kernels": kernels,
        "peers": peers,
        "train": train,
        "ablate": ablate,
        "logTails": logs,
        "markdown": "\n".join(md) + "\n",
    }
    os.makedirs(out, exist_ok=True)
    write_atomic(os.path.join(out, "gpu_results.json"), json.dumps(result, indent=1) + "\n")
    write_atomic(os.path.join(out, "gpu_results.md"), result["markdown"])
    print(result["markdown"])
    print(f"wrote {os.path.join(out, 'gpu_results.json')} and gpu_results.md")


if __name__ == "__main__":
    main()
