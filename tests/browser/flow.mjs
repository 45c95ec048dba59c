// Drives Debian's chromium (headless) against a sender's flow page, for
// tests/flow_page.rs and scripts/flow-screenshot.sh. Prints one JSON object.
//
//   node flow.mjs check URL [SCREENSHOT]   // console errors, requests, rows, nodes, width at 375 px
//   node flow.mjs sink-error URL SINK_IP   // waits (at most 15 s) until the page marks SINK_IP as failing
//   node flow.mjs screenshot URL PNG       // a screenshot at 1000 x 900, a fault row among the newest
import { chromium } from "playwright-core";

const [mode, url, arg] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic"],
});
const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
const consoleErrors = [];
const requests = [];
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
page.on("pageerror", (e) => consoleErrors.push(String(e)));
page.on("request", (r) => requests.push(r.url()));

const rows = () => page.$$eval("#messages tr", (trs) => trs.map((tr) => {
  const cells = [...tr.querySelectorAll("td")];
  const version = (td) => td.querySelector(".version")?.textContent ?? null;
  return {
    id: cells[0].textContent, relay: cells[1].dataset.ip, relayVersion: version(cells[1]),
    sink: cells[2].dataset.ip, sinkVersion: version(cells[2]), status: cells[3].textContent, marked: tr.className === "bad",
    note: cells[3].querySelector(".note")?.textContent ?? "",
  };
}));
const nodes = (column) => page.$$eval(`#${column} .node`, (divs) => divs.map((d) => ({
  name: d.dataset.name, failing: d.classList.contains("bad"), text: d.textContent,
  version: d.closest(".group")?.dataset.version ?? null,
})));

let result;
try {
  await page.goto(url, { waitUntil: "load" });
  if (mode === "check") {
    // Enough rows, and one of them a fault's (the test's sender has SEND_FAULT).
    await page.waitForFunction(() => document.querySelectorAll("#messages tr").length >= 5
      && document.querySelector("#messages").textContent.includes("fault:"), null, { timeout: 15000 });
    const found = { rows: await rows(), relays: await nodes("relays"), sinks: await nodes("sinks") };
    // At a phone's width, once the page has drawn a fresh /flow there.
    await page.setViewportSize({ width: 375, height: 800 });
    await page.waitForResponse((r) => r.url().endsWith("/flow"));
    await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
    const width = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, viewport: window.innerWidth }));
    if (arg) await page.screenshot({ path: arg, fullPage: true });
    result = { ...found, width, consoleErrors, requests };
  } else if (mode === "sink-error") {
    const started = Date.now();
    const handle = await page.waitForFunction((sink) => {
      const node = [...document.querySelectorAll("#sinks .node.bad")].find((d) => d.dataset.name === sink);
      const row = [...document.querySelectorAll("#messages tr.bad")].find((tr) => tr.textContent.includes(sink));
      return node && row ? { node: node.textContent, row: row.textContent } : null;
    }, arg, { timeout: 15000, polling: 250 });
    result = { ...(await handle.jsonValue()), seconds: (Date.now() - started) / 1000, consoleErrors };
  } else if (mode === "screenshot") {
    // A full table, with a fault's row among the newest (in the picture).
    await page.waitForFunction(() => {
      const trs = [...document.querySelectorAll("#messages tr")];
      return trs.length >= 20 && trs.slice(0, 6).some((tr) => tr.textContent.includes("fault:"));
    }, null, { timeout: 60000, polling: 100 });
    await page.screenshot({ path: arg });
    result = { screenshot: arg };
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} catch (e) {
  result = { error: String(e), consoleErrors };
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
