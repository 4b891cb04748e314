// A headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, step by step from a
// test over stdin/stdout: one JSON command per line in, one JSON answer per line out. The tests
// (tests/e2e/test_dashboard.py) keep the assertions; this only does what they ask and reports
// everything the page said on its console, its uncaught errors and its failed requests.
//
//   node tests/browser/driver.mjs            (web/node_modules must hold playwright-core: make)
//   {"cmd":"goto","url":"http://127.0.0.1:PORT/"}       -> {"ok":true}
//   {"cmd":"wait","selector":"tr.alert-row","text":"x","timeout":5000} -> {"ok":true,"t":<epoch ms>}
//   {"cmd":"click","selector":"..."} {"cmd":"fill","selector":"...","value":"..."}
//   {"cmd":"eval","js":"1+1"}  {"cmd":"screenshot","path":"..."}  {"cmd":"problems"}  {"cmd":"quit"}
//   {"cmd":"metrics"} -> Chromium's performance counters of the page (CDP Performance.getMetrics)
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const require = createRequire(new URL("../../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");

// The flags keep Chromium off the network (this machine reaches only loopback) and quiet; playwright
// gives it a fresh empty profile of its own.
const browser = await chromium.launch({
  executablePath: process.env.TW_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
         "--metrics-recording-only", "--no-default-browser-check"],
});
const problems = [];
let context, page, cdp;
async function fresh() {
  // A new context: empty cache, no cookies (a first visit).
  if (context) await context.close();
  context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  // Chromium's own counters of the page's renderer (main-thread CPU time, script, layout): what the
  // page itself costs, apart from waiting for the network or for a loaded machine's CPU.
  cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable", { timeDomain: "threadTicks" });
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(m.type() + ": " + m.text());
  });
  page.on("pageerror", (e) => problems.push("pageerror: " + e.message));
  page.on("requestfailed", (r) => {
    // A live stream cut by navigation or a stopped server is not a page problem.
    if (!r.url().includes("/api/stream")) problems.push("requestfailed: " + r.url() + " " + (r.failure() || {}).errorText);
  });
}
await fresh();

async function run(c) {
  const timeout = c.timeout || 10000;
  switch (c.cmd) {
    case "goto":
      await page.goto(c.url, { waitUntil: "load", timeout });
      return {};
    case "wait": {
      const loc = c.text ? page.locator(c.selector, { hasText: c.text }) : page.locator(c.selector);
      await loc.first().waitFor({ state: c.state || "visible", timeout });
      return { t: Date.now() };
    }
    case "click":
      await (c.text ? page.locator(c.selector, { hasText: c.text }) : page.locator(c.selector)).first().click({ timeout });
      return {};
    case "fill":
      await page.locator(c.selector).first().fill(c.value, { timeout });
      return {};
    case "text":
      return { text: await page.locator(c.selector).first().innerText({ timeout }) };
    case "count":
      return { count: await page.locator(c.selector).count() };
    case "eval":
      return { value: await page.evaluate(c.js) };
    case "screenshot":
      await page.screenshot({ path: c.path, fullPage: !!c.full });
      return {};
    case "metrics": {
      const { metrics } = await cdp.send("Performance.getMetrics");
      return { metrics: Object.fromEntries(metrics.map((m) => [m.name, m.value])) };
    }
    case "problems":
      return { problems: problems.splice(0) };
    case "fresh":
      await fresh();
      return {};
    default:
      throw new Error("unknown command " + c.cmd);
  }
}

const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
out({ ok: true, ready: true, version: browser.version() });
const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let c;
  try {
    c = JSON.parse(line);
  } catch (e) {
    out({ ok: false, error: "bad command: " + e.message });
    continue;
  }
  if (c.cmd === "quit") break;
  try {
    out({ ok: true, ...(await run(c)) });
  } catch (e) {
    out({ ok: false, error: String(e.message || e).split("\n").slice(0, 6).join("\n") });
  }
}
await browser.close();
