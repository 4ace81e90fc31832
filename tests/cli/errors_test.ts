/**
 * Every CLI error path a user can hit prints one line on stderr (no stack frames) and exits
 * non-zero: 2 for usage errors (malformed or conflicting flags), 1 for the rest; nothing is
 * half-written. Each case spawns `deno run cli/main.ts` as a user would.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { parseTrainConfig } from "../../src/train/config.ts";
import { FILIGREE_VERSION } from "../../src/train/rundir.ts";
import { STORE_SCHEMA, STORE_SCHEMA_VERSION } from "../../src/study/schema.ts";

const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[]): Promise<Out> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** Exit `code`, exactly one stderr line matching `pattern`, no stack frames. */
function oneLine(r: Out, code: number, pattern: RegExp, what: string): void {
  const lines = r.stderr.split("\n").filter((l) => l.trim());
  assert.equal(r.code, code, `${what}: exit ${r.code}, stderr:\n${r.stderr}`);
  assert.equal(lines.length, 1, `${what}: ${lines.length} stderr lines:\n${r.stderr}`);
  assert.match(lines[0], /^filigree: error: /, `${what}: ${lines[0]}`);
  assert.match(lines[0], pattern, `${what}: ${lines[0]}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: stack frame`);
}

/** A run directory with a config.json (no epoch trained): enough for the flag checks. */
async function fakeRun(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const config = parseTrainConfig({ dataset: "synthetic", hidden: [16], epochs: 2, density: 0.5 });
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({ config, filigree: FILIGREE_VERSION }),
  );
}

Deno.test("cli: malformed flag values are one-line usage errors (exit 2)", async () => {
  const cases: [string[], RegExp][] = [
    [["train", "--lr", "abc"], /--lr.*'abc' is invalid.*finite number/],
    [["train", "--lr", "NaN"], /--lr.*'NaN' is invalid/],
    [["train", "--lr", "0x10"], /--lr.*'0x10' is invalid/],
    [["train", "--epochs", "abc"], /--epochs.*'abc' is invalid/],
    [["train", "--epochs", "2.5"], /--epochs.*integer/],
    [["train", "--hidden", "0"], /--hidden.*'0' is invalid.*>= 1/],
    [["train", "--hidden", "16,,16"], /--hidden.*'16,,16' is invalid/],
    [["train", "--conv-channels", "0"], /--conv-channels.*'0' is invalid/],
    [["train", "--lr", "-1"], /--lr -1: bad value for "lr"/],
    [["train", "--bogus"], /unknown option '--bogus'/],
    [["train", "--resume", "x", "--out", "y"], /--out cannot be combined/],
    [["ablate", "somewhere", "--eval-samples", "abc"], /--eval-samples.*'abc' is invalid/],
    [["sweep", "study.yaml", "--max-cells", "abc"], /--max-cells.*'abc' is invalid/],
    [["sweep", "study.yaml", "--cells-per-process", "-1"], /--cells-per-process.*invalid/],
    [["report", "store.sqlite", "--seed", "x"], /--seed.*'x' is invalid/],
    [["nonsense"], /unknown command 'nonsense'/],
  ];
  for (const [args, pattern] of cases) oneLine(await cli(args), 2, pattern, args.join(" "));
});

Deno.test("cli: --version prints the version", async () => {
  const r = await cli(["--version"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), FILIGREE_VERSION);
});

Deno.test("cli: OS errors, existing runs, bad stores: one line, exit 1, nothing written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/a-file`;
    await Deno.writeTextFile(file, "not a directory\n");
    // A run directory under a file, and one where nothing may be created.
    oneLine(
      await cli(["train", "--dataset", "synthetic", "--out", `${file}/run`]),
      1,
      /a parent is a file/,
      "train --out under a file",
    );
    oneLine(
      await cli(["train", "--dataset", "synthetic", "--out", "/proc/filigree-test/run"]),
      1,
      /cannot create run directory/,
      "train --out unwritable",
    );
    assert.equal(await Deno.readTextFile(file), "not a directory\n");
    // An existing run is refused (not overwritten).
    const run = `${dir}/run`;
    await fakeRun(run);
    await Deno.writeTextFile(`${run}/metrics.jsonl`, "{}\n");
    const before = await Deno.readTextFile(`${run}/config.json`);
    oneLine(
      await cli(["train", "--dataset", "synthetic", "--out", run]),
      1,
      /already holds a run.*--resume.*--overwrite/,
      "train --out EXISTING",
    );
    assert.equal(await Deno.readTextFile(`${run}/config.json`), before, "config.json changed");
    // --resume with flags that contradict the run: a usage error naming them.
    oneLine(
      await cli(["train", "--resume", run, "--lr", "5", "--hidden", "10", "--seed", "0"]),
      2,
      new RegExp(
        `--lr 5 differs from the run's ${
          parseTrainConfig({}).lr
        }, --hidden 10 differs from the run's 16; a resumed run keeps its config`,
      ),
      "train --resume with conflicting flags",
    );
    oneLine(
      await cli(["train", "--resume", run, "--epochs", "5"]),
      2,
      /--epochs 5 differs.*cannot be extended/,
      "train --resume --epochs",
    );
    oneLine(
      await cli(["train", "--resume", `${dir}/missing`]),
      1,
      /does not exist/,
      "train --resume missing",
    );
    oneLine(
      await cli(["train", "--config", `${dir}/missing.yaml`]),
      1,
      /cannot read config file/,
      "train --config missing",
    );
    // merge given a file that is not a SQLite store: refused, no output store created.
    const out = `${dir}/merged.sqlite`;
    oneLine(await cli(["merge", out, file]), 1, /a-file/, "merge non-SQLite");
    await assert.rejects(() => Deno.stat(out), Deno.errors.NotFound);
    oneLine(await cli(["merge", out, `${dir}/none.sqlite`]), 1, /no such store/, "merge missing");
    // report: a non-store, and an output directory that cannot be created.
    oneLine(await cli(["report", file]), 1, /a-file/, "report non-SQLite");
    const store = `${dir}/store.sqlite`;
    const db = new DatabaseSync(store);
    db.exec(STORE_SCHEMA);
    db.prepare("insert into meta (key, value) values (?, ?)").run("schema", STORE_SCHEMA_VERSION);
    db.close();
    oneLine(await cli(["report", store]), 1, /no finished cells/, "report empty store");
    oneLine(await cli(["ablate", `${dir}/missing`]), 1, /does not exist/, "ablate missing run");
    oneLine(await cli(["sweep", `${dir}/missing.yaml`]), 1, /missing\.yaml/, "sweep missing spec");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
