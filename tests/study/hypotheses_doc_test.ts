/**
 * docs/HYPOTHESES.md's machine-form YAML blocks are valid study hypotheses: each block (a
 * design's factors, analysis additions and hypotheses) is parsed with the `train` and `analysis`
 * blocks of studies/activation-norm-mlp-converged.yaml, and every hypothesis of the doc's table
 * (H1 ... H9) has a machine form in some block.
 */
import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { parseStudySpec, readStudySpec } from "../../src/study/spec.ts";

const DOC = new URL("../../docs/HYPOTHESES.md", import.meta.url);
const CONVERGED = new URL("../../studies/activation-norm-mlp-converged.yaml", import.meta.url);

/** The ```yaml blocks of the doc that start with "# design: NAME", by name. */
export function designBlocks(md: string): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const m of md.matchAll(/```yaml\n(# design: ([\w-]+)[^\n]*\n[\s\S]*?)```/g)) {
    out.set(m[2], parseYaml(m[1]) as Record<string, unknown>);
  }
  return out;
}

Deno.test("docs/HYPOTHESES.md: every machine-form block parses against the converged study's train and analysis", async () => {
  const md = await Deno.readTextFile(DOC);
  const base = parseYaml(await Deno.readTextFile(CONVERGED)) as Record<string, unknown>;
  const blocks = designBlocks(md);
  assert.deepEqual([...blocks.keys()], [
    "core",
    "input-norm",
    "dense",
    "rigl",
    "model",
    "model-final",
    "agnostic",
  ]);
  const ids: string[] = [];
  for (const [name, b] of blocks) {
    const factors = { ...(b.factors as Record<string, unknown>) };
    const spec = await parseStudySpec({
      name,
      factors,
      train: base.train,
      analysis: { ...(base.analysis as object), ...(b.analysis as object ?? {}) },
      hypotheses: b.hypotheses,
    });
    assert.ok(spec.hypotheses.length > 0, name);
    if (name === "model" || name === "model-final") {
      // MLP vs CNN vs LSTM (H8) runs as written: every cell builds on the converged train block.
      assert.deepEqual(
        [...new Set(spec.cells.map((c) => c.config.model))],
        ["mlp", "cnn", "lstm"],
      );
    }
    ids.push(...spec.hypotheses.map((h) => h.id));
  }
  // The core block is the converged study's list: 12 hypotheses, on the study's own factors.
  const core = blocks.get("core")!;
  assert.equal((core.hypotheses as unknown[]).length, 12);
  assert.deepEqual(core.factors, base.factors);
  // Every hypothesis of the table has a machine form.
  const table = [...md.matchAll(/^\| (H\d) \|/gm)].map((m) => m[1]);
  assert.deepEqual(table, ["H1", "H2", "H3", "H4", "H5", "H6", "H7", "H8", "H9"]);
  for (const h of table) assert.ok(ids.some((id) => id.startsWith(h)), `${h} has no machine form`);
});

Deno.test("each follow-up design has its study file, equal to its block and the converged study's train and analysis", async () => {
  const md = await Deno.readTextFile(DOC);
  const base = parseYaml(await Deno.readTextFile(CONVERGED)) as Record<string, unknown>;
  for (const [name, b] of designBlocks(md)) {
    if (name === "core") continue;
    const path = new URL(
      `../../studies/activation-norm-mlp-converged-${name}.yaml`,
      import.meta.url,
    );
    const file = parseYaml(await Deno.readTextFile(path)) as Record<string, unknown>;
    assert.equal(file.name, `activation-norm-mlp-converged-${name}`);
    assert.deepEqual(file.factors, b.factors, `${name}: factors`);
    assert.deepEqual(file.train, base.train, `${name}: train`);
    assert.deepEqual(
      file.analysis,
      { ...(base.analysis as object), ...(b.analysis as object ?? {}) },
      `${name}: analysis`,
    );
    assert.deepEqual(file.hypotheses, b.hypotheses, `${name}: hypotheses`);
    const spec = await readStudySpec(path.pathname);
    assert.ok(spec.cells.length > 0 && spec.hypotheses.length > 0, name);
  }
});
