/**
 * Which Python runs the benchmark peers. The PyTorch peers need a Python that imports torch
 * (Debian's `python3-torch` lives in `/usr/bin/python3`, which is not always the first `python3`
 * on PATH); the numpy/scipy peers need numpy and scipy. The first candidate that imports torch
 * wins; failing that the first that imports numpy and scipy (the torch peers are then skipped with
 * one line). Candidates in order: `--python PATH` / $FILIGREE_PEER_PYTHON, `/usr/bin/python3`,
 * `python3`.
 *
 * @example
 * ```ts ignore
 * import { findPeerPython } from "./_peer_python.ts";
 * const py = await findPeerPython();
 * console.log(py.line); // "peers: /usr/bin/python3 (torch 1.13.0a0, 1 thread; numpy 1.24.2 ...)"
 * ```
 * @module
 */

/** The chosen interpreter and what it can import. */
export interface PeerPython {
  /** Interpreter to run (undefined: none found; every peer is skipped). */
  python?: string;
  /** `torch.__version__`, or undefined when torch cannot be imported. */
  torch?: string;
  /** `torch.get_num_threads()` after the peers' own `torch.set_num_threads(1)`. */
  torchThreads?: number;
  numpy?: string;
  scipy?: string;
  /** Why the torch peers are skipped (set when `torch` is undefined). */
  torchSkipped?: string;
  /** One line for the benchmark's header. */
  line: string;
}

const PROBE = `
import json, sys
out = {"python": sys.version.split()[0]}
try:
    import numpy; out["numpy"] = numpy.__version__
except Exception: pass
try:
    import scipy; out["scipy"] = scipy.__version__
except Exception: pass
try:
    import torch; torch.set_num_threads(1)
    out["torch"] = torch.__version__; out["threads"] = torch.get_num_threads()
except Exception as e: out["torchError"] = str(e).split("\\n")[0]
print(json.dumps(out))
`;

interface Probe {
  python: string;
  numpy?: string;
  scipy?: string;
  torch?: string;
  threads?: number;
  torchError?: string;
}

async function probe(py: string): Promise<Probe | undefined> {
  try {
    const o = await new Deno.Command(py, { args: ["-c", PROBE], stderr: "null" }).output();
    if (!o.success) return undefined;
    return JSON.parse(new TextDecoder().decode(o.stdout).trim()) as Probe;
  } catch {
    return undefined;
  }
}

/**
 * Finds the peer interpreter (see the module doc). `explicit` (a `--python` flag) is tried first,
 * then $FILIGREE_PEER_PYTHON (needs --allow-env; ignored without it).
 */
export async function findPeerPython(explicit?: string): Promise<PeerPython> {
  let env: string | undefined;
  try {
    env = Deno.env.get("FILIGREE_PEER_PYTHON");
  } catch { /* no --allow-env */ }
  const cands = [...new Set([explicit, env, "/usr/bin/python3", "python3"].filter(Boolean))];
  const found: [string, Probe][] = [];
  for (const c of cands as string[]) {
    const p = await probe(c);
    if (p) found.push([c, p]);
    if (p?.torch) break;
  }
  const withTorch = found.find(([, p]) => p.torch);
  const pick = withTorch ?? found.find(([, p]) => p.numpy && p.scipy) ?? found[0];
  if (!pick) {
    return {
      torchSkipped: `no Python found (tried ${cands.join(", ")})`,
      line: `peers: skipped: no Python among ${cands.join(", ")}`,
    };
  }
  const [python, p] = pick;
  const libs = [
    p.numpy ? `numpy ${p.numpy}` : "no numpy",
    p.scipy ? `scipy ${p.scipy}` : "no scipy",
  ].join(", ");
  if (p.torch) {
    return {
      python,
      torch: p.torch,
      torchThreads: p.threads,
      numpy: p.numpy,
      scipy: p.scipy,
      line: `peers: ${python} (Python ${p.python}), PyTorch ${p.torch} CPU with ` +
        `${p.threads} thread(s), ${libs}`,
    };
  }
  const why = `no candidate imports torch (${cands.join(", ")}; ${python}: ${
    p.torchError ?? "?"
  }); install it with scripts/setup-peers.sh`;
  return {
    python,
    numpy: p.numpy,
    scipy: p.scipy,
    torchSkipped: why,
    line: `peers: ${python} (Python ${p.python}), ${libs}; PyTorch peers skipped: ${why}`,
  };
}
