// The page under overload, in real headless Chromium against the real
// local stack, with a small stage throttle: API Gateway refuses frames
// with its own "Too Many Requests" (which does not say which frame it
// answers) and the server refuses messages over the user's rate limit.
// The page must shed, not amplify: every message gets through, in order,
// with about one frame per message, however many refusals it hears.
import assert from "node:assert/strict";
import { suite } from "./stack.mjs";

const { stack, scenario, newPage } = suite("overload", ["-throttle-rate", "6", "-throttle-burst", "6"]);

// Counts what the page's WebSocket sends (by action) and hears (the
// gateway's own error frames, and the server's by code).
function countFrames() {
  window.frames_ = { sent: {}, gateway: 0, errors: {} };
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const action = JSON.parse(data).action;
    window.frames_.sent[action] = (window.frames_.sent[action] || 0) + 1;
    if (!this.counted) {
      this.counted = true;
      this.addEventListener("message", (e) => {
        if (!e.data) return; // the empty frame a two-way route may bring, which the page ignores
        const f = JSON.parse(e.data);
        if (!f.type && f.message) window.frames_.gateway++;
        if (f.type === "error") window.frames_.errors[f.code] = (window.frames_.errors[f.code] || 0) + 1;
      });
    }
    return send.call(this, data);
  };
}

async function user(name, room) {
  const page = await newPage();
  await page.addInitScript(countFrames);
  await page.goto(`${stack.webURL}?room=${room}`);
  await page.getByLabel("Your name").fill(name);
  await page.getByRole("button", { name: "Join" }).click();
  await page.locator("#state").filter({ hasText: "Online" }).waitFor({ timeout: 30000 });
  return page;
}

scenario("a burst far over the limits: every message once, in order, about one frame each", async () => {
  const ana = await user("Ana", "burst");
  const bo = await user("Bo", "burst");
  await ana.locator("#members li", { hasText: "Bo" }).waitFor();
  const typed = Array.from({ length: 30 }, (_, i) => `burst ${i + 1}`);
  const box = ana.getByLabel("Message", { exact: true });
  for (const t of typed) {
    await box.fill(t);
    await box.press("Enter");
  }
  await ana.waitForFunction(() => document.querySelectorAll("#messages li.pending").length === 0, null, { timeout: 60000 });
  await bo.waitForFunction((n) => document.querySelectorAll("#messages li.message").length === n, typed.length, { timeout: 30000 });
  const texts = (page) => page.locator("#messages li.message .text").allTextContents();
  assert.deepEqual(await texts(ana), typed);
  assert.deepEqual(await texts(bo), typed);

  const frames = await ana.evaluate(() => window.frames_);
  const refusals = frames.gateway + (frames.errors.rate_limited || 0);
  assert.ok(refusals > 0, `the burst was never refused (${JSON.stringify(frames)}): the test shows nothing`);
  // K refusals never make K × P frames (here about 30 × 30 = 900): the page
  // backs off and paces itself, and eases its pace slowly after a refusal,
  // so the refusals are mostly the first burst's (7–11 in six runs, with
  // 38–42 frames; when each ack took a quarter off the pace, 24–31 refusals
  // and 55–64 frames: about one per message, docs/benchmarks.md §16).
  assert.ok(frames.sent["new-message"] <= 2 * typed.length && refusals <= (2 * typed.length) / 3,
    `${typed.length} messages took ${frames.sent["new-message"]} frames after ${refusals} refusals: ${JSON.stringify(frames)}`);
  assert.deepEqual(ana.errors, []);
});
