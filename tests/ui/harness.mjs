// What the browser tests share: options, results, skipping, a free port and
// playwright-core from node_modules (driving Debian's chromium, never a
// downloaded browser).
//
//   import { check, finish, loadChromium, option, skipOrFail } from "./harness.mjs";
//   const chromium = await loadChromium("my_test");
//   check(1 + 1 === 2, "arithmetic");
//   finish();
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../..");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
const CI = process.env.CI === "true" || process.env.CI === "1";

export function option(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

let passed = 0;
let failed = 0;
const results = [];
export function check(cond, what, detail) {
  if (cond) {
    passed++;
    results.push("ok   " + what);
  } else {
    failed++;
    results.push("FAIL " + what + (detail !== undefined ? ": " + detail : ""));
  }
  return cond;
}

// Prints every result and exits 0 when all passed, 1 otherwise.
export function finish() {
  for (const r of results) console.log(r);
  console.log(passed + " passed, " + failed + " failed");
  process.exit(failed ? 1 : 0);
}

// Exit 77 (a skip) when something the test needs is missing, but under
// CI=true a failure: in CI nothing may skip.
export function skipOrFail(test, why) {
  if (CI) {
    console.error(test + ": " + why + " (CI=true: failing, not skipping)");
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
  console.error(test + ": skipped: " + why);
  process.exit(77);
}

// playwright-core's chromium, once Debian's chromium is there.
export async function loadChromium(test) {
  if (!fs.existsSync(CHROMIUM)) skipOrFail(test, CHROMIUM + " is missing: install Debian's chromium (scripts/setup.sh)");
  try {
    const { chromium } = await import(pathToFileURL(path.join(repo, "node_modules/playwright-core/index.mjs")).href);
    return chromium;
  } catch (e) {
    skipOrFail(test, "playwright-core is not installed: run `npm ci` at the repository root (" + e.message + ")");
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Waits (up to 10 s) until GET base/ping answers 200; otherwise throws,
// with `log()` (say, the server's stderr) in the message.
export async function waitUp(base, log = () => "") {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(base + "/ping");
      if (r.ok) return;
    } catch (_) {
      /* not yet */
    }
    await sleep(50);
  }
  const text = log();
  throw new Error("metrics-server did not start on " + base + (text ? ":\n" + text : ""));
}
