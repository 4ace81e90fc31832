/**
 * What a new user sees from `deno task train` (issue 15, item 4): `--help` shows every flag's
 * default and the config keys without a flag; a run prints the model shape, an estimated time
 * before the first epoch line, progress lines with accuracy in %, and each progress line once.
 * Each case spawns `deno run cli/main.ts` as a user would.
 */
import assert from "node:assert/strict";
import { parseTrainConfig, TrainConfigSchema } from "../../src/train/config.ts";

const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped", // not a terminal: progress degrades to plain lines
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

const show = (v: unknown) => Array.isArray(v) ? v.join(",") : String(v);
const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

Deno.test("cli: train --help shows every flag's default and the config-only keys", async () => {
  const r = await cli(["train", "--help"]);
  assert.equal(r.code, 0, r.stderr);
  const help = r.stdout.replace(/\s+/g, " "); // commander wraps descriptions
  // One entry per option: "--lr <x> learning rate (default: 0.1)".
  const options = new Map(
    r.stdout.split(/\n(?= {2}-)/).map((b) => b.replace(/\s+/g, " ").trim())
      .filter((b) => b.startsWith("--")).map((b) => [b.split(" ")[0].slice(2), b]),
  );
  const d = parseTrainConfig({}) as Record<string, unknown>;
  let checked = 0;
  for (const [k, v] of Object.entries(d)) {
    const text = options.get(kebab(k));
    if (v === undefined || text === undefined) continue;
    assert.ok(text.includes(`(default: ${show(v)})`), `no "(default: ${show(v)})" in: ${text}`);
    checked++;
  }
  assert.ok(checked >= 20, `only ${checked} flags with defaults`);
  // Defaults filled outside the schema are stated too.
  assert.match(help, /--density <d> .*\(default: density 0\.1 with ERK for set\/static/);
  assert.match(help, /--update-interval <n> .*\(default: 100\)/);
  assert.match(help, /--plateau-patience <n> .*\(default: 3\)/);
  // Every schema key without a flag is listed with its default.
  const listed = help.slice(help.indexOf("Config-file keys without a flag"));
  for (const k of Object.keys(TrainConfigSchema.shape)) {
    if (options.has(kebab(k)) || k === "out") continue;
    assert.match(listed, new RegExp(`\\b${k} \\(`), `config-only key ${k} not listed`);
  }
});

Deno.test("cli: a train run prints shape, estimate, progress in %, each line once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cfg = `${dir}/c.yaml`;
    // 3,000 synthetic samples at batch 16: 188 steps per epoch; progress reports at steps 51,
    // 101, 151, so the estimate (steps 51-101) comes before the first epoch ends.
    await Deno.writeTextFile(cfg, "syntheticSamples: 3000\nsyntheticFeatures: 20\n");
    const r = await cli([
      "train",
      "--config",
      cfg,
      "--dataset",
      "synthetic",
      "--hidden",
      "16",
      "--epochs",
      "2",
      "--batch-size",
      "16",
      "--out",
      `${dir}/run`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    const model = at(/^model mlp 20-16-4 set on synthetic \(\d+ train \/ \d+ test\); density: /);
    const estimate = at(
      /^estimated time: \d+ s for 2 epochs \(\d+ samples\/s over steps 51-101\)$/,
    );
    const epoch1 = at(/^epoch 1: train loss [\d.]+ acc [\d.]+% \| test loss [\d.]+ acc [\d.]+%/);
    assert.ok(model >= 0, `no model line:\n${r.stdout}`);
    assert.ok(estimate > model, `no estimate after the model line:\n${r.stdout}`);
    assert.ok(epoch1 > estimate, `the estimate is not printed before epoch 1 ends:\n${r.stdout}`);
    const progress = lines.filter((l) => /^epoch \d\/2 \d+\/\d+ /.test(l));
    assert.ok(progress.length >= 2, `no progress lines:\n${r.stdout}`);
    for (const l of progress) {
      const m = / acc \d+\.\d\d% \| (\d+) samples\/s \| ETA /.exec(l);
      assert.ok(m, l);
      // The estimate does not restart the bar's clock (it did: "292067191 samples/s").
      assert.ok(Number(m[1]) < 1e7, `implausible rate: ${l}`);
    }
    assert.equal(new Set(progress).size, progress.length, "a progress line printed twice");
    // The final line of each epoch's bar once (it used to print twice).
    for (const e of [1, 2]) {
      const finals = progress.filter((l) => new RegExp(`^epoch ${e}/2 (\\d+)/\\1 `).test(l));
      assert.equal(finals.length, 1, `epoch ${e}: ${finals.length} final progress lines`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
