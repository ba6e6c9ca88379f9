// Takes the README's screenshots of the page (docs/screenshots/), at 1280 and
// 375 px wide, light and dark, from a conversation on the local stack:
//   go build -o bin/localgw ./cmd/localgw && node test/browser/shoot.mjs
// Not a test (node --test does not run it): run it after changing the look.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { launch, root, Stack } from "./stack.mjs";

const dataDir = mkdtempSync(path.join(os.tmpdir(), "chat-shoot-"));
const stack = new Stack({ dataDir, prefix: `shoot-${process.pid}-` });
await stack.start();
const browser = await launch();
try {
  const join = async (name, options, room = "design") => {
    const page = await (await browser.newContext(options)).newPage();
    await page.goto(`${stack.webURL}?room=${room}`);
    await page.getByLabel("Your name").fill(name);
    await page.getByRole("button", { name: "Join" }).click();
    await page.locator("#state", { hasText: "Online" }).waitFor();
    return page;
  };
  const message = (page, text) => page.locator("#messages li.message:not(.pending)", { hasText: text }).first();
  const say = async (page, text) => {
    await page.getByLabel("Message", { exact: true }).fill(text);
    await page.getByLabel("Message", { exact: true }).press("Enter");
    await message(page, text.slice(0, 10)).waitFor();
  };
  const act = async (page, text, button) => {
    await message(page, text).hover();
    await message(page, text).locator("button.actions").click();
    await page.locator("#message-menu").getByRole("button", { name: button }).click();
  };
  const ana = await join("Ana Lima");
  const bo = await join("Bo");
  const cy = await join("Cy Ng");
  const ops = await join("Ana Lima", {}, "ops");
  await say(ana, "Morning! The deploy to eu-west-1 went thru 🎉");
  await say(ana, "Dashboard: https://en.wikipedia.org/wiki/Chat_(disambiguation)");
  await say(bo, "Nice. Did the **fan-out alarm** stay quiet?");
  await say(cy, "It did. p99 was `41 ms` for the whole run:\n```\nchatload -clients 2000 -senders 2 -rate 1\n```");
  await say(ana, "@Bo can you check the *dead-letter queue* before lunch?");
  // An edit, reactions, and a reply that mentions.
  await act(ana, "went thru", "Edit");
  await ana.getByLabel("Message", { exact: true }).fill("Morning! The deploy to eu-west-1 went through 🎉");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  await message(ana, "went through").locator(".edited").waitFor();
  await act(bo, "went through", "React with 🎉");
  await act(cy, "went through", "React with 🎉");
  await act(cy, "fan-out alarm", "React with 👍");
  await act(bo, "dead-letter", "Reply");
  await bo.getByLabel("Message", { exact: true }).pressSequentially("@An");
  await bo.getByRole("option", { name: "Ana Lima" }).waitFor();
  await bo.getByLabel("Message", { exact: true }).press("Enter"); // chooses the name
  await bo.getByLabel("Message", { exact: true }).pressSequentially("on it.");
  await bo.getByLabel("Message", { exact: true }).press("Enter");
  await message(bo, "on it.").waitFor();
  for (const [width, height] of [[1280, 800], [375, 740]]) {
    for (const colorScheme of ["light", "dark"]) {
      // Dee was in #ops before: the room list counts what was said there since.
      const page = await join("Dee", { viewport: { width, height }, colorScheme }, "ops");
      await page.locator("#messages li.start").waitFor(); // #ops shown, as far as it goes
      await page.goto(`${stack.webURL}?room=design`);
      await page.locator("#messages li.message", { hasText: "on it." }).waitFor();
      await say(ops, "Alarm cleared on the fan-out queue");
      await say(ops, "Post-mortem at 3");
      await page.reload();
      await page.locator("#messages li.message", { hasText: "on it." }).waitFor();
      await page.locator("#menu-toggle.news, #room-list .badge").first().waitFor({ state: "attached" });
      await page.screenshot({ path: path.join(root, "docs", "screenshots", `chat-${width}-${colorScheme}.png`) });
      await page.context().close();
      // Gone before the next one comes: its leave is not news to it.
      await ana.locator("#members li", { hasText: "Dee" }).waitFor({ state: "detached" });
    }
  }
} finally {
  await browser.close();
  await stack.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
