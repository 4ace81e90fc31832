/**
 * Provenance in the report header: a merged store keeps every input's command (one per line,
 * e.g. one per shard), merging again adds nothing twice, and the report lists each command.
 */
import { mergeStores } from "../../src/study/merge.ts";
import { StudyStore } from "../../src/study/store.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

Deno.test("a merged store keeps every shard's command, each once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cmds = [0, 1, 2].map((i) => `filigree sweep studies/x.yaml --shard ${i}/3`);
    const ins = cmds.map((command, i) => {
      const p = `${dir}/store-${i}-of-3.sqlite`;
      StudyStore.open(p, { study: "x", command, commit: "abc" }).close();
      return p;
    });
    mergeStores(`${dir}/store.sqlite`, ins.slice(0, 2));
    mergeStores(`${dir}/store.sqlite`, ins); // again, plus the third shard
    const s = StudyStore.openReadOnly(`${dir}/store.sqlite`);
    const meta = s.meta();
    s.close();
    assert(meta.command === cmds.join("\n"), `command meta: ${JSON.stringify(meta.command)}`);
    assert(meta.commit === "abc", `commit meta: ${JSON.stringify(meta.commit)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
