// The page in real headless Chromium against the real local stack
// (emulated API Gateway, the Go handlers, DynamoDB Local).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { Stack, launch, withScreenshots } from "./stack.mjs";

const dataDir = mkdtempSync(path.join(os.tmpdir(), "chat-browser-"));
// Frames overtake each other on their way to the functions, as in AWS.
const stack = new Stack({ dataDir, prefix: `browser-${process.pid}-`, args: ["-fault-invoke-jitter", "60ms"] });
let browser;
let pages = [];

before(async () => {
  await stack.start();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await stack.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A user with their own browser profile (localStorage), joined to room. */
async function user(name, room) {
  const context = await browser.newContext();
  const page = await context.newPage();
  pages.push(page);
  page.errors = [];
  page.dialogs = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  page.on("dialog", (d) => {
    page.dialogs.push(d.message());
    d.dismiss();
  });
  await page.goto(`${stack.webURL}?room=${room}`);
  await page.getByLabel("Your name").fill(name);
  await page.getByRole("button", { name: "Join" }).click();
  await online(page);
  return page;
}

const online = (page) => page.locator("#state").filter({ hasText: "Online" }).waitFor({ timeout: 30000 });
const messages = (page) => page.locator("#messages li.message");
const texts = (page) => page.locator("#messages li.message .text").allTextContents();

function scenario(name, fn) {
  test(name, async () => {
    pages = [];
    try {
      await withScreenshots(name, () => pages, fn, () => stack.output);
    } finally {
      await Promise.all(pages.map((p) => p.context().close()));
    }
  });
}

scenario("two users chat both ways, with names, times, join and leave", async () => {
  const ana = await user("Ana", "lobby");
  const bo = await user("Bo", "lobby");
  await ana.locator("#messages li.notice", { hasText: "Bo joined" }).waitFor();
  await ana.locator("#members li", { hasText: "Bo" }).waitFor();
  await bo.locator("#members li", { hasText: "Ana" }).waitFor();

  await ana.getByLabel("Message", { exact: true }).fill("hello Bo");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  const got = bo.locator("#messages li.message", { hasText: "hello Bo" });
  await got.waitFor();
  assert.equal(await got.locator(".name").textContent(), "Ana");
  assert.match(await got.locator("time").getAttribute("datetime"), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  await ana.locator("#messages li.message:not(.pending)", { hasText: "hello Bo" }).waitFor(); // acked

  await bo.getByLabel("Message", { exact: true }).pressSequentially("hi Ana");
  await ana.locator("#typing", { hasText: "Bo is typing…" }).waitFor();
  await bo.getByRole("button", { name: "Send" }).click();
  await ana.locator("#messages li.message", { hasText: "hi Ana" }).waitFor();
  assert.deepEqual(await texts(ana), ["hello Bo", "hi Ana"]);
  assert.deepEqual(await texts(bo), ["hello Bo", "hi Ana"]);

  await bo.getByRole("button", { name: "Leave" }).click();
  await ana.locator("#messages li.notice", { hasText: "Bo left" }).waitFor();
  assert.equal(await ana.locator("#members li", { hasText: "Bo" }).count(), 0);

  // A reload returns straight to the room, with the name and the history.
  await ana.reload();
  await online(ana);
  assert.equal(await ana.locator("#room-title").textContent(), "#lobby");
  assert.match(ana.url(), /\?room=lobby$/);
  await ana.locator("#messages li.message", { hasText: "hi Ana" }).waitFor();
  assert.deepEqual(await texts(ana), ["hello Bo", "hi Ana"]);
  assert.deepEqual([...ana.errors, ...bo.errors], []);
});

scenario("user text is shown as text and runs nothing", async () => {
  const xss = "<img src=x onerror=alert(1)>";
  const ana = await user("Ana", "xss");
  const mallory = await user("<b>Mallory</b>", "xss");
  await mallory.getByLabel("Message", { exact: true }).fill(xss);
  await mallory.getByLabel("Message", { exact: true }).press("Enter");
  const item = ana.locator("#messages li.message", { hasText: xss });
  await item.waitFor();
  assert.equal(await item.locator(".text").textContent(), xss);
  assert.equal(await item.locator(".name").textContent(), "<b>Mallory</b>");
  assert.equal(await ana.locator("#messages img, #messages b").count(), 0);
  await ana.waitForTimeout(300); // an onerror handler would have fired by now
  assert.deepEqual([...ana.dialogs, ...mallory.dialogs], []);

  const res = await ana.request.get(stack.webURL);
  const csp = res.headers()["content-security-policy"];
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${stack.gwPort};`));
});

scenario("the form checks names and the Send button checks length", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  pages.push(page);
  await page.goto(stack.webURL);
  await page.getByLabel("Your name").fill("x".repeat(33));
  await page.getByRole("button", { name: "Join" }).click();
  await page.locator("#join-error", { hasText: "at most 32 characters" }).waitFor();
  assert.equal(await page.locator("#chat").isHidden(), true);
  await page.getByLabel("Your name").fill("Zoë");
  await page.getByLabel("Room", { exact: true }).fill("no spaces");
  await page.getByRole("button", { name: "Join" }).click();
  await page.locator("#join-error", { hasText: "letters" }).waitFor();
  await page.getByLabel("Room", { exact: true }).fill("limits");
  await page.getByRole("button", { name: "Join" }).click();
  await online(page);

  const send = page.getByRole("button", { name: "Send" });
  assert.equal(await send.isDisabled(), true, "empty text");
  await page.getByLabel("Message", { exact: true }).fill("   ");
  assert.equal(await send.isDisabled(), true, "blank text");
  await page.getByLabel("Message", { exact: true }).fill("é".repeat(1900));
  assert.equal(await send.isEnabled(), true);
  assert.equal(await page.locator("#counter").textContent(), "1900 / 2000");
  await page.getByLabel("Message", { exact: true }).fill("é".repeat(2001));
  assert.equal(await send.isDisabled(), true, "over the limit");
  assert.equal(await page.locator("#counter").textContent(), "2001 / 2000");
});

scenario("after the gateway restarts the page reconnects and recovers what it missed", async () => {
  const ana = await user("Ana", "restart");
  await ana.getByLabel("Message", { exact: true }).fill("before");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  await ana.locator("#messages li.message:not(.pending)", { hasText: "before" }).waitFor();

  await stack.stop();
  await ana.locator("#state", { hasText: "Reconnecting…" }).waitFor();
  await ana.getByLabel("Message", { exact: true }).fill("sent while offline");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  await stack.start();

  const bo = await user("Bo", "restart");
  for (const t of ["missed 1", "missed 2"]) {
    await bo.getByLabel("Message", { exact: true }).fill(t);
    await bo.getByLabel("Message", { exact: true }).press("Enter");
  }
  await online(ana);
  await ana.locator("#messages li.message", { hasText: "missed 2" }).waitFor({ timeout: 30000 });
  await ana.locator("#messages li.message:not(.pending)", { hasText: "sent while offline" }).waitFor({ timeout: 30000 });
  await bo.locator("#messages li.message", { hasText: "sent while offline" }).waitFor();
  const got = await texts(ana);
  assert.deepEqual(got.filter((t) => t !== "sent while offline"), ["before", "missed 1", "missed 2"]);
  assert.equal(got.filter((t) => t === "sent while offline").length, 1);
  assert.equal(await messages(ana).count(), 4);
});

scenario("messages typed while offline appear in typed order on both pages", async () => {
  const ana = await user("Ana", "offline");
  const bo = await user("Bo", "offline");
  await ana.locator("#members li", { hasText: "Bo" }).waitFor();
  await stack.stop();
  await ana.locator("#state", { hasText: "Reconnecting…" }).waitFor();
  const typed = Array.from({ length: 8 }, (_, i) => `offline ${i + 1}`);
  for (const t of typed) {
    await ana.getByLabel("Message", { exact: true }).fill(t);
    await ana.getByLabel("Message", { exact: true }).press("Enter");
  }
  assert.equal(await ana.locator("#messages li.pending").count(), 8);
  await stack.start();
  await online(ana);
  await ana.locator("#messages li.pending").first().waitFor({ state: "detached", timeout: 30000 });
  await ana.waitForFunction(() => document.querySelectorAll("#messages li.pending").length === 0, null, { timeout: 30000 });
  await bo.locator("#messages li.message", { hasText: "offline 8" }).waitFor({ timeout: 30000 });
  await bo.waitForFunction(() => document.querySelectorAll("#messages li.message").length === 8, null, { timeout: 30000 });
  assert.deepEqual(await texts(ana), typed);
  assert.deepEqual(await texts(bo), typed);
  const seqs = await bo.locator("#messages li.message").evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  assert.deepEqual([...ana.errors, ...bo.errors], []);
});

scenario("two people named Ana are two members, told apart", async () => {
  const first = await user("Ana", "twins");
  const second = await user("Ana", "twins");
  await first.locator("#members li").nth(1).waitFor();
  await second.locator("#members li").nth(1).waitFor();
  const firstList = await first.locator("#members li").allTextContents();
  const secondList = await second.locator("#members li").allTextContents();
  assert.equal(firstList.length, 2, `first Ana's list: ${firstList}`);
  assert.equal(firstList.filter((n) => n.endsWith("(you)")).length, 1);
  assert.equal(secondList.filter((n) => n.endsWith("(you)")).length, 1);
  for (const n of [...firstList, ...secondList]) assert.match(n, /^Ana \([a-z2-7]{4}\)( \(you\))?$/);
  const secondMark = secondList.find((n) => n.endsWith("(you)")).replace(" (you)", "");
  assert.ok(firstList.includes(secondMark), `the first Ana sees the second as ${secondMark}`);

  await second.getByLabel("Message", { exact: true }).pressSequentially("from the second Ana");
  await first.locator("#typing", { hasText: `${secondMark} is typing…` }).waitFor();
  await second.getByLabel("Message", { exact: true }).press("Enter");
  const got = first.locator("#messages li.message", { hasText: "from the second Ana" });
  await got.waitFor();
  assert.equal(await got.locator(".name").textContent(), secondMark);
  assert.equal(await got.evaluate((li) => li.classList.contains("mine")), false, "another Ana's message shown as mine");
  const own = second.locator("#messages li.message:not(.pending)", { hasText: "from the second Ana" });
  await own.waitFor();
  assert.equal(await own.evaluate((li) => li.classList.contains("mine")), true);
});

scenario("a burst over the rate limit goes out in order after a short notice", async () => {
  const ana = await user("Ana", "burst");
  const bo = await user("Bo", "burst");
  const typed = Array.from({ length: 25 }, (_, i) => `burst ${i + 1}`);
  for (const t of typed) {
    await ana.getByLabel("Message", { exact: true }).fill(t);
    await ana.getByLabel("Message", { exact: true }).press("Enter");
  }
  await ana.locator("#problem", { hasText: "faster than the room allows" }).waitFor();
  await bo.waitForFunction((n) => document.querySelectorAll("#messages li.message").length === n, typed.length, { timeout: 30000 });
  assert.deepEqual(await texts(bo), typed);
  await ana.waitForFunction(() => document.querySelectorAll("#messages li.pending").length === 0, null, { timeout: 30000 });
  assert.deepEqual(await texts(ana), typed);
});
