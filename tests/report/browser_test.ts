/**
 * The study report in a real browser: a report generated from a synthetic store built to
 * stress the layout (tests/report/synthetic_store.ts: 48 cells, long factor labels, every score)
 * is opened in headless Chromium at 1280 px wide. Nothing may overflow horizontally (the page's
 * `document.documentElement.scrollWidth` <= 1280, no chart wider than the 1,100 px page or
 * scrolling inside its figure), every chart is drawn, and a screenshot is taken (a PNG 1280 px
 * wide; kept in FILIGREE_SCREENSHOT_DIR when that is set).
 *
 * Needs Debian's `chromium` (or FILIGREE_CHROMIUM=/path/to/chrome): without one the test is
 * ignored with a loud message, unless FILIGREE_REQUIRE_BROWSER=1 (CI: .ci/run installs chromium
 * and sets it), where a missing browser fails the test.
 */
import { writeReport } from "../../src/study/report.ts";
import { SYNTHETIC_COMMANDS, writeSyntheticStore } from "./synthetic_store.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

const WIDTH = 1280;
const PAGE = 1100;

/** The first of FILIGREE_CHROMIUM, chromium, chromium-browser, google-chrome found on PATH. */
function findBrowser(): string | undefined {
  const env = Deno.env.get("FILIGREE_CHROMIUM");
  if (env) return env;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").filter(Boolean)) {
    for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

const BROWSER = findBrowser();
const REQUIRED = Deno.env.get("FILIGREE_REQUIRE_BROWSER") === "1";
if (!BROWSER && !REQUIRED) {
  console.error(
    "\n*** tests/report/browser_test.ts SKIPPED: no chromium on PATH (apt-get install chromium, " +
      "or set FILIGREE_CHROMIUM); CI runs it (FILIGREE_REQUIRE_BROWSER=1) ***\n",
  );
}

/** Runs headless Chromium with `args`; returns stdout. */
async function chromium(profile: string, args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(BROWSER!, {
    args: [
      "--headless",
      "--no-sandbox", // needed as root (CI containers); the page is our own file
      "--disable-gpu",
      "--no-first-run",
      "--disable-extensions",
      `--user-data-dir=${profile}`,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const out = new TextDecoder().decode(stdout);
  if (code !== 0) {
    const err = new TextDecoder().decode(stderr).trim().split("\n").slice(-5).join("\n");
    throw new Error(`${BROWSER} exited with ${code}:\n${err}`);
  }
  return out;
}

/** Measures the page after layout; the result lands in the DOM that --dump-dom prints. */
const PROBE = `<script>
(() => {
  const doc = document.documentElement;
  const figs = [...document.querySelectorAll("figure")].map((f) => {
    const svg = f.querySelector("svg");
    return {
      scrollWidth: f.scrollWidth,
      clientWidth: f.clientWidth,
      svgWidth: svg ? svg.getBoundingClientRect().width : -1,
      svgRight: svg ? svg.getBoundingClientRect().right : -1,
    };
  });
  const wide = [...document.querySelectorAll("body *")].filter((e) =>
    e.getBoundingClientRect().right > innerWidth + 0.5
  ).map((e) => e.tagName + (e.id ? "#" + e.id : "")).slice(0, 10);
  const pre = document.createElement("pre");
  pre.id = "filigree-probe";
  pre.textContent = JSON.stringify({
    innerWidth, scrollWidth: doc.scrollWidth, height: doc.scrollHeight, figs, wide,
  });
  document.body.appendChild(pre);
})();
</script>`;

Deno.test({
  name: "report in headless Chromium at 1280 px: no horizontal overflow, every chart drawn",
  ignore: !BROWSER && !REQUIRED,
  fn: async () => {
    assert(
      BROWSER,
      "FILIGREE_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)",
    );
    const dir = await Deno.makeTempDir({ prefix: "filigree-browser-" });
    try {
      const cells = writeSyntheticStore(`${dir}/store.sqlite`);
      assert(cells === 48, `synthetic store has ${cells} cells`);
      const { html } = await writeReport(`${dir}/store.sqlite`, `${dir}/report`, { noPng: true });
      const page = await Deno.readTextFile(html);
      // Provenance: the merged store's two commands, each in the header.
      for (const c of SYNTHETIC_COMMANDS) assert(page.includes(c), `header lacks "${c}"`);
      assert(!/<script/i.test(page), "the report itself has no scripts");
      const probePath = `${dir}/report/probe.html`;
      await Deno.writeTextFile(probePath, page.replace("</body>", `${PROBE}</body>`));
      const dom = await chromium(`${dir}/profile`, [
        `--window-size=${WIDTH},1000`,
        "--dump-dom",
        `file://${probePath}`,
      ]);
      const m = /<pre id="filigree-probe">([^<]*)<\/pre>/.exec(dom);
      assert(m, "the probe script did not run (no result in the dumped DOM)");
      const r = JSON.parse(m[1].replace(/&quot;/g, '"').replace(/&amp;/g, "&")) as {
        innerWidth: number;
        scrollWidth: number;
        height: number;
        figs: { scrollWidth: number; clientWidth: number; svgWidth: number; svgRight: number }[];
        wide: string[];
      };
      assert(r.innerWidth === WIDTH, `window is ${r.innerWidth} px wide, not ${WIDTH}`);
      assert(
        r.scrollWidth <= WIDTH,
        `horizontal overflow: scrollWidth ${r.scrollWidth} > ${WIDTH}; wide elements: ${r.wide}`,
      );
      assert(r.wide.length === 0, `elements past the right edge: ${r.wide}`);
      const charts = (page.match(/<figure>/g) ?? []).length;
      assert(charts >= 6 && r.figs.length === charts, `${r.figs.length} of ${charts} figures`);
      r.figs.forEach((f, i) => {
        assert(f.svgWidth > 50, `figure ${i}: no chart drawn (svg ${f.svgWidth} px)`);
        assert(f.svgWidth <= PAGE, `figure ${i}: chart ${f.svgWidth} px wide > ${PAGE}`);
        assert(
          f.scrollWidth <= f.clientWidth,
          `figure ${i}: scrolls inside (${f.scrollWidth} > ${f.clientWidth})`,
        );
      });
      // A screenshot of the whole page at 1280 px.
      const shot = `${dir}/report-1280.png`;
      await chromium(`${dir}/profile`, [
        `--window-size=${WIDTH},${Math.min(16000, r.height)}`,
        "--hide-scrollbars",
        `--screenshot=${shot}`,
        `file://${html}`,
      ]);
      const png = await Deno.readFile(shot);
      assert(png[1] === 0x50 && png[2] === 0x4e && png[3] === 0x47, "screenshot is a PNG");
      const w = new DataView(png.buffer, png.byteOffset).getUint32(16);
      assert(w === WIDTH, `screenshot ${w} px wide`);
      const keep = Deno.env.get("FILIGREE_SCREENSHOT_DIR");
      if (keep) {
        await Deno.mkdir(keep, { recursive: true });
        await Deno.copyFile(shot, `${keep}/report-synthetic-1280.png`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
