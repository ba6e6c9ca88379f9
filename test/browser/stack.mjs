// Starts the local stack (bin/localgw, built by `make test`) and Chromium
// for the browser tests.
import { spawn } from "node:child_process";
import { once } from "node:events";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Fails on any serious or critical problem axe-core finds in the page as it is now. */
export async function audit(page, where) {
  await page.evaluate(readFileSync(path.join(root, "test", "browser", "node_modules", "axe-core", "axe.min.js"), "utf8")); // through the debugger protocol: the page's CSP does not apply
  const { violations } = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${where}: ${v.id} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`), []);
}

export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address();
  srv.close();
  await once(srv, "close");
  return port;
}

/** Runs bin/localgw until stop(); the same ports and data survive a restart. */
export class Stack {
  constructor({ dataDir, prefix, args = [] }) {
    this.dataDir = dataDir;
    this.prefix = prefix;
    this.extraArgs = args;
    this.output = "";
  }

  async start() {
    this.gwPort ??= await freePort();
    this.webPort ??= await freePort();
    this.webURL = `http://127.0.0.1:${this.webPort}/`;
    const args = ["-addr", `127.0.0.1:${this.gwPort}`, "-web-addr", `127.0.0.1:${this.webPort}`,
      "-web", path.join(root, "web"), "-template", path.join(root, "template.yaml"),
      "-data", this.dataDir, "-table-prefix", this.prefix, ...this.extraArgs];
    this.proc = spawn(path.join(root, "bin", "localgw"), args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    const from = this.output.length; // a restart must not take the last start's banner for its own
    const ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stack did not start:\n${this.output.slice(from)}`)), 90000);
      const onData = (d) => {
        this.output += d;
        if (this.output.indexOf("Chat running", from) >= 0) {
          clearTimeout(timer);
          resolve();
        }
      };
      this.proc.stdout.on("data", onData);
      this.proc.stderr.on("data", onData);
      this.proc.on("exit", (code) => reject(new Error(`stack exited (${code}):\n${this.output.slice(from)}`)));
    });
    await ready;
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    const exited = once(this.proc, "exit");
    this.proc.kill("SIGINT");
    await exited;
  }
}

export function browserPath() {
  return process.env.CHROME_PATH || "/usr/bin/chromium";
}

export async function launch() {
  return chromium.launch({
    executablePath: browserPath(),
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
      "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
}

/** Runs fn; if it throws, saves a screenshot of each page and the log first. */
export async function withScreenshots(name, pages, fn, log) {
  try {
    await fn();
  } catch (err) {
    const dir = path.join(root, "test", "browser", "screenshots");
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `${name.replace(/\W+/g, "-")}.log`), log());
    for (const [i, p] of pages().entries()) {
      await p.screenshot({ path: path.join(dir, `${name.replace(/\W+/g, "-")}-${i}.png`), fullPage: true }).catch(() => {});
    }
    // CI shows the error only: with the end of the stack's log, it says why.
    if (err instanceof Error) err.message += `\n--- the stack's log ends:\n${log().split("\n").slice(-25).join("\n")}`;
    throw err;
  }
}

/**
 * Sets up a test file: a stack of its own (bin/localgw with args) and
 * Chromium, started before its tests and stopped after. scenario runs a
 * test whose pages (from newPage) are closed after it, with screenshots if
 * it fails.
 */
export function suite(name, args = []) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `chat-${name}-`));
  const s = { stack: new Stack({ dataDir, prefix: `${name}-${process.pid}-`, args }), browser: null, pages: [] };
  before(async () => {
    await s.stack.start();
    s.browser = await launch();
  });
  after(async () => {
    await s.browser?.close();
    await s.stack.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  s.scenario = (title, fn) =>
    test(title, { timeout: 120000 }, async () => {
      s.pages = [];
      try {
        await withScreenshots(title, () => s.pages, fn, () => s.stack.output);
      } finally {
        await Promise.all(s.pages.map((p) => p.context().close()));
      }
    });
  /** A page in a browser profile of its own, recording its script errors in page.errors. */
  s.newPage = async (options = {}) => {
    const context = await s.browser.newContext(options);
    const page = await context.newPage();
    s.pages.push(page);
    page.errors = [];
    page.on("pageerror", (e) => page.errors.push(e.message));
    return page;
  };
  return s;
}
