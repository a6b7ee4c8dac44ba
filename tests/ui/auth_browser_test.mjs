// Logging in to the web UI in a real browser: Debian's chromium driven by
// playwright-core against a real metrics-server started with --web-config
// (basic_auth_users with a bcrypt hash).
//
//   node tests/ui/auth_browser_test.mjs --server build/.../metrics-server
//
// Checks: without credentials the page is a 401 that asks the browser's
// way (WWW-Authenticate: Basic) and shows no data; wrong credentials are a
// 401 too; with the right ones (playwright's httpCredentials answer the
// browser's own prompt) the instance list loads and every API call of the
// page succeeds; no URL the page requests carries the credentials; /ping
// stays open.
//
// Exit codes: 0 passed, 1 failed, 77 skipped (chromium or playwright-core
// missing while CI is not set; under CI=true that is a failure).
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { CHROMIUM, CHROMIUM_ARGS, check, finish, freePort, loadChromium, option, waitUp } from "./harness.mjs";

const serverBinary = option("--server");
if (!serverBinary || !fs.existsSync(serverBinary)) {
  console.error("auth_browser_test: --server PATH (metrics-server) is required");
  process.exit(1);
}
const chromium = await loadChromium("auth_browser_test");

const USER = "alice";
const PASSWORD = "correct horse battery staple";
// bcrypt of PASSWORD at cost 4 (a fast test), made once with libxcrypt's
// crypt(3) ($2b$, as htpasswd -B and Python's bcrypt make them).
const hash = "$2b$04$k2rSGdgtOva5oWTleH0W4eItK9M87o5hX0lrVFQTV/ZFMWPYUll7K";


const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "auth-browser-"));
const webConfig = path.join(tmp, "web.yml");
fs.writeFileSync(webConfig, "basic_auth_users:\n  " + USER + ": " + hash + "\n");

const port = await freePort();
const base = "http://127.0.0.1:" + port;
const env = { ...process.env };
for (const k of ["ADDRESS", "KEY", "WEB_CONFIG", "WEB_TOKENS", "CONFIG", "TLS_CERT", "TLS_KEY"]) delete env[k];
const server = spawn(
  serverBinary,
  ["-a", "127.0.0.1:" + port, "--log-level", "warn", "-f", "", "--history-dir", "", "--web-config", webConfig],
  { stdio: ["ignore", "ignore", "pipe"], env }
);
let serverLog = "";
server.stderr.on("data", (d) => {
  serverLog += d;
  if (serverLog.length > 20000) serverLog = serverLog.slice(-20000);
});
server.on("exit", (code, sig) => {
  if (!server.stopping) console.error("metrics-server exited (" + (code ?? sig) + "):\n" + serverLog);
});
process.on("exit", () => {
  server.stopping = true;
  if (server.exitCode === null) server.kill("SIGTERM");
  fs.rmSync(tmp, { recursive: true, force: true });
});

const MiB = 1048576;
async function push(labels, metrics) {
  // Writes keep the signature rules (no key here): no credentials needed.
  const r = await fetch(base + "/updates/", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ labels, metrics }),
  });
  if (!r.ok) throw new Error("push answered " + r.status + ": " + (await r.text()));
}

let browser;
try {
  await waitUp(base, () => serverLog);
  check((await fetch(base + "/ping")).status === 200, "/ping stays open");
  await push({ instance: "web-1", job: "shop" }, [{ id: "ProcessRSS", type: "gauge", value: 200 * MiB }]);
  const bare = await fetch(base + "/api/v1/query?query=1");
  check(bare.status === 401, "the query API without credentials is a 401", bare.status);
  check(/^Basic realm="metrics-server"/.test(bare.headers.get("www-authenticate") || ""), "the 401 asks for Basic credentials", bare.headers.get("www-authenticate"));

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });

  // Chromium answers a Basic challenge it has no credentials for by giving
  // up the navigation (net::ERR_INVALID_AUTH_CREDENTIALS) where a person
  // would see the browser's own login prompt; either way the page gets no
  // data. The 401 and its challenge are seen on the wire.
  async function visit(credentials) {
    const context = await browser.newContext(credentials ? { httpCredentials: credentials } : {});
    const page = await context.newPage();
    const seen = [];
    page.on("response", async (r) => {
      if (r.url() === base + "/ui/") seen.push({ status: r.status(), challenge: (await r.allHeaders())["www-authenticate"] || "" });
    });
    let status = null;
    let error = "";
    try {
      status = (await page.goto(base + "/ui/")).status();
    } catch (e) {
      error = e.message;
    }
    const content = await page.content().catch(() => "");
    await context.close();
    return { status, error, seen, content };
  }

  // ---- No credentials.
  {
    const v = await visit(null);
    check(v.status === 401 || /ERR_INVALID_AUTH_CREDENTIALS/.test(v.error), "/ui/ without credentials is refused", v.status + " " + v.error);
    check(v.seen.some((r) => r.status === 401 && /^Basic realm="metrics-server"/.test(r.challenge)), "the browser is asked the Basic way (401, WWW-Authenticate: Basic)", JSON.stringify(v.seen));
    check(!v.content.includes("web-1") && !v.content.includes("metricsUi"), "no page and no data without credentials");
  }

  // ---- Wrong credentials.
  {
    const v = await visit({ username: USER, password: "wrong" });
    check(v.status === 401 || /ERR_INVALID_AUTH_CREDENTIALS/.test(v.error), "/ui/ with a wrong password is refused", v.status + " " + v.error);
    check(v.seen.length > 0 && v.seen.every((r) => r.status === 401), "every answer to a wrong password is a 401", JSON.stringify(v.seen));
  }

  // ---- The right credentials: the UI loads and its API calls succeed.
  {
    const context = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD } });
    const page = await context.newPage();
    page.setDefaultTimeout(10000);
    const urls = [];
    const apiStatus = [];
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("request", (r) => urls.push(r.url()));
    page.on("response", (r) => {
      if (r.url().includes("/api/v1/")) apiStatus.push(r.status());
    });
    const res = await page.goto(base + "/ui/#/instances");
    check(res.status() === 200, "/ui/ with the right credentials loads", res.status());
    const shown = await page
      .waitForSelector('tr[data-instance="web-1"]', { timeout: 15000 })
      .then(() => true, () => false);
    check(shown, "the logged-in page lists the pushed instance");
    check(apiStatus.length > 0 && apiStatus.every((s) => s === 200), "every API call of the page succeeds", JSON.stringify(apiStatus));
    const leaking = urls.filter((u) => u.includes(USER) || u.includes(encodeURIComponent(PASSWORD)) || u.includes("@127.0.0.1"));
    check(leaking.length === 0, "no URL carries the credentials", JSON.stringify(leaking));
    check(!(await page.evaluate(() => location.href)).includes(USER), "the page's own URL carries no user");
    check(pageErrors.length === 0, "no script errors", JSON.stringify(pageErrors));
    await context.close();
  }
} catch (e) {
  check(false, "the test ran to the end", e.stack || String(e));
} finally {
  if (browser) await browser.close();
}

finish();
