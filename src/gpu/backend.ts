/**
 * Which wgpu backend Filigree runs on, and why.
 *
 * Deno 2.9 reads `DENO_WEBGPU_BACKEND` once, when the process (or worker) first asks for an
 * adapter; after that the backend cannot change. With Mesa's lavapipe installed Deno picks
 * Vulkan, although on a software adapter the GL backend (llvmpipe through EGL) is 1.4-3.3x faster
 * per training step. So before the first adapter request, {@link selectBackend} asks a
 * short-lived worker (its own WebGPU instance) what Vulkan offers, decides with
 * {@link chooseBackend} (a pure function: environment + probed adapter facts in, backend +
 * reason out), and sets `DENO_WEBGPU_BACKEND` for this process and its children:
 *
 * | situation                                     | backend            |
 * | --------------------------------------------- | ------------------ |
 * | `DENO_WEBGPU_BACKEND` set (non-empty)         | that value         |
 * | Vulkan offers a hardware adapter              | vulkan             |
 * | Vulkan offers a software adapter (lavapipe)   | gl                 |
 * | Vulkan offers no adapter                      | gl                 |
 * | the probe could not run                       | Deno's own default |
 *
 * It also points `XDG_RUNTIME_DIR` at a private temporary directory when it is unset, which
 * silences the Vulkan loader's "XDG_RUNTIME_DIR is invalid or not set" line on stderr.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chooseBackend } from "./backend.ts";
 * const sw = { description: "llvmpipe (LLVM 15.0.6, 256 bits)", vendor: "65541", isFallbackAdapter: true };
 * assert.deepEqual(chooseBackend({ env: undefined, vulkan: sw }).backend, "gl");
 * assert.deepEqual(chooseBackend({ env: "vulkan", vulkan: sw }).backend, "vulkan");
 * ```
 * @module
 */

/** What the probe learned about the adapter a backend offers. */
export interface AdapterFacts {
  description: string;
  vendor: string;
  isFallbackAdapter: boolean;
}

/** Input of {@link chooseBackend}. */
export interface BackendInput {
  /** `DENO_WEBGPU_BACKEND` as found (undefined when unset). */
  env: string | undefined;
  /**
   * `FILIGREE_BACKEND_CHOICE` (`backend|reason`): set when a parent Filigree process chose the
   * backend; it counts only while `DENO_WEBGPU_BACKEND` still holds that backend.
   */
  inherited?: string;
  /** The adapter Vulkan offers; null: none; "unprobed": the probe could not run. */
  vulkan: AdapterFacts | null | "unprobed";
  /** Why the probe could not run (with "unprobed"). */
  probeError?: string;
}

/** Output of {@link chooseBackend}. */
export interface BackendChoice {
  /** Value for `DENO_WEBGPU_BACKEND`; undefined: leave it unset (Deno's default). */
  backend: string | undefined;
  /** One line for `deno task info` and run configs. */
  reason: string;
  /** "user": the environment decided; "auto": Filigree decided. */
  source: "user" | "inherited" | "auto" | "default";
}

/** True for CPU implementations (llvmpipe/lavapipe, SwiftShader, WARP, softpipe). */
export function isSoftwareAdapter(a: AdapterFacts): boolean {
  return a.isFallbackAdapter ||
    /llvmpipe|lavapipe|softpipe|swiftshader|microsoft basic render|warp/i.test(a.description);
}

/** One row of the decision table: the first row whose `when` holds decides. */
interface Rule {
  when: (i: BackendInput) => boolean;
  decide: (i: BackendInput) => BackendChoice;
}

const describe = (a: AdapterFacts) => a.description || `vendor ${a.vendor}`;

/** The decision table (see the module doc). */
export const BACKEND_RULES: readonly Rule[] = [
  {
    when: (i) => !!i.env && i.inherited?.split("|")[0] === i.env,
    decide: (i) => ({
      backend: i.env,
      reason: `${i.inherited!.slice(i.env!.length + 1)} (chosen by the parent process)`,
      source: "inherited",
    }),
  },
  {
    when: (i) => !!i.env,
    decide: (i) => ({
      backend: i.env,
      reason: `DENO_WEBGPU_BACKEND=${i.env} was set in the environment`,
      source: "user",
    }),
  },
  {
    when: (i) => i.vulkan === "unprobed",
    decide: (i) => ({
      backend: undefined,
      reason: `Deno's default (the adapter probe could not run${
        i.probeError ? `: ${i.probeError}` : ""
      })`,
      source: "default",
    }),
  },
  {
    when: (i) => i.vulkan === null,
    decide: () => ({ backend: "gl", reason: "Vulkan offers no adapter", source: "auto" }),
  },
  {
    when: (i) => typeof i.vulkan === "object" && i.vulkan !== null && isSoftwareAdapter(i.vulkan),
    decide: (i) => ({
      backend: "gl",
      reason: `software adapter (${
        describe(i.vulkan as AdapterFacts)
      }): GL is faster than Vulkan there (set DENO_WEBGPU_BACKEND=vulkan to override)`,
      source: "auto",
    }),
  },
  {
    when: () => true,
    decide: (i) => ({
      backend: "vulkan",
      reason: `hardware adapter (${describe(i.vulkan as AdapterFacts)}) through Vulkan`,
      source: "auto",
    }),
  },
];

/** The backend for an environment and a probed Vulkan adapter (pure; see the table above). */
export function chooseBackend(input: BackendInput): BackendChoice {
  // An empty DENO_WEBGPU_BACKEND makes Deno find no adapter at all: treat it as unset.
  const i = { ...input, env: input.env?.trim() || undefined };
  for (const r of BACKEND_RULES) if (r.when(i)) return r.decide(i);
  throw new Error("unreachable: the last backend rule always applies");
}

/** Asks a worker (its own WebGPU instance) which adapter the Vulkan backend offers. */
export async function probeVulkan(timeoutMs = 20_000): Promise<AdapterFacts | null> {
  const url = new URL("./backend_probe_worker.ts", import.meta.url);
  const worker = new Worker(url.href, { type: "module" });
  try {
    return await new Promise<AdapterFacts | null>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timed out")), timeoutMs);
      worker.onmessage = (e: MessageEvent<AdapterFacts | null>) => {
        clearTimeout(timer);
        resolve(e.data);
      };
      worker.onerror = (e: ErrorEvent) => {
        clearTimeout(timer);
        e.preventDefault();
        reject(new Error(e.message));
      };
    });
  } finally {
    worker.terminate();
  }
}

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: nothing to read or set
  }
}

function envSet(name: string, value: string): boolean {
  try {
    Deno.env.set(name, value);
    return true;
  } catch {
    return false;
  }
}

/**
 * Points `XDG_RUNTIME_DIR` at a private temporary directory (removed at exit) when it is unset;
 * without write permission, at a path that does not exist (the loader then stays quiet too).
 */
export function ensureXdgRuntimeDir(): void {
  if (envGet("XDG_RUNTIME_DIR")) return;
  let dir: string | undefined;
  try {
    dir = Deno.makeTempDirSync({ prefix: "filigree-xdg-" });
    Deno.chmodSync(dir, 0o700);
    const made = dir;
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(made, { recursive: true });
      } catch {
        // already gone
      }
    });
  } catch {
    dir = "/nonexistent/filigree-xdg";
  }
  envSet("XDG_RUNTIME_DIR", dir);
}

let selected: Promise<BackendChoice> | undefined;

/**
 * Decides the backend once per process, before the first adapter request, and sets
 * `DENO_WEBGPU_BACKEND` (and `FILIGREE_BACKEND_CHOICE` for child processes) accordingly.
 * Later calls return the same choice.
 */
export function selectBackend(): Promise<BackendChoice> {
  selected ??= (async () => {
    ensureXdgRuntimeDir();
    const env = envGet("DENO_WEBGPU_BACKEND");
    const inherited = envGet("FILIGREE_BACKEND_CHOICE");
    let vulkan: BackendInput["vulkan"] = "unprobed";
    let probeError: string | undefined;
    if (!env?.trim()) {
      if (envSet("DENO_WEBGPU_BACKEND", "vulkan")) {
        try {
          vulkan = await probeVulkan();
        } catch (e) {
          probeError = (e as Error).message.split("\n")[0];
        }
        if (env === undefined) Deno.env.delete("DENO_WEBGPU_BACKEND");
        else envSet("DENO_WEBGPU_BACKEND", env);
      } else probeError = "no --allow-env";
    }
    const choice = chooseBackend({ env, inherited, vulkan, probeError });
    if (choice.backend && choice.source === "auto") {
      envSet("DENO_WEBGPU_BACKEND", choice.backend);
      envSet("FILIGREE_BACKEND_CHOICE", `${choice.backend}|${choice.reason}`);
    }
    return choice;
  })();
  return selected;
}
