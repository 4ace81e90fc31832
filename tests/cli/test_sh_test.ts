/**
 * scripts/test.sh's `settle`: a deno process that printed a summary with nothing failed and then
 * died of SIGABRT or SIGSEGV (a native crash at exit) does not fail the suite; every other exit
 * status stands, and a signal after a failed summary stays a failure.
 */
import assert from "node:assert/strict";

const script = new URL("../../scripts/test.sh", import.meta.url).pathname;

async function settle(status: number, log: string): Promise<{ out: string; err: string }> {
  const dir = await Deno.makeTempDir({ prefix: "filigree_settle_" });
  try {
    await Deno.writeTextFile(`${dir}/log`, log);
    // Only the function: sourcing the whole script would run the suite.
    const body = `eval "$(sed -n '/^settle() {/,/^}/p' "$1")"; settle "$2" "$3"`;
    const r = await new Deno.Command("bash", {
      args: ["-c", body, "bash", script, String(status), `${dir}/log`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    const dec = new TextDecoder();
    return { out: dec.decode(r.stdout).trim(), err: dec.decode(r.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("test.sh settle: a crash at exit after a clean summary is said, not counted", async () => {
  const ok = "x ... ok (1ms)\n\nok | 325 passed | 0 failed | 1 ignored (2m42s)\n\n" +
    "corrupted double-linked list\n";
  const bad = "x ... FAILED (1ms)\n\nFAILED | 324 passed | 1 failed (2m42s)\n";
  for (const sig of [134, 139]) {
    const r = await settle(sig, ok);
    assert.equal(r.out, "0");
    assert.match(r.err, new RegExp(`died of signal ${sig - 128} at exit`));
    assert.equal((await settle(sig, bad)).out, String(sig));
  }
  assert.equal((await settle(1, ok)).out, "1");
  assert.equal((await settle(0, ok)).out, "0");
  assert.equal((await settle(134, "no summary at all\n")).out, "134");
  // An earlier clean summary does not cover a later failed one (the last summary counts).
  assert.equal((await settle(134, ok + bad)).out, "134");
});
