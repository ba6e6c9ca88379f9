// A room above the listed size (here 2 users online) in real headless
// Chromium against the real local stack: the page shows how many are
// online instead of a member list and no join or leave notices, lists the
// members when asked, and goes back to the list when the room shrinks.
import assert from "node:assert/strict";
import { suite } from "./stack.mjs";

const { stack, scenario, newPage } = suite("large", ["-param", "ListedRoomSize=2"]);

async function user(name, room) {
  const page = await newPage();
  await page.goto(`${stack.webURL}?room=${room}`);
  await page.getByLabel("Your name").fill(name);
  await page.getByRole("button", { name: "Join" }).click();
  await page.locator("#state").filter({ hasText: "Online" }).waitFor({ timeout: 30000 });
  return page;
}

const names = (page) => page.locator("#members li").allTextContents();

scenario("a large room shows a count, lists its members on request, and its list again once small", async () => {
  const ana = await user("Ana", "crowd");
  const bo = await user("Bo", "crowd");
  await ana.locator("#members li", { hasText: "Bo" }).waitFor();
  const cy = await user("Cy", "crowd");
  for (const page of [ana, bo, cy]) {
    await page.locator("#online-count", { hasText: "3 online" }).waitFor();
    await page.getByRole("button", { name: "Show who is here" }).waitFor();
    assert.deepEqual(await names(page), [], "a large room lists nobody until asked");
  }
  assert.equal(await ana.locator("#messages li.notice", { hasText: "Cy joined" }).count(), 0, "a large room announced a join");

  await cy.getByRole("button", { name: "Show who is here" }).click();
  await cy.waitForFunction(() => document.querySelectorAll("#members li").length === 3);
  assert.deepEqual((await names(cy)).sort(), ["Ana", "Bo", "Cy (you)"]);

  // Messages reach everyone as in any room.
  await bo.getByLabel("Message", { exact: true }).fill("hello crowd");
  await bo.getByLabel("Message", { exact: true }).press("Enter");
  for (const page of [ana, cy]) await page.locator("#messages li.message", { hasText: "hello crowd" }).waitFor();

  // Cy leaves: two online, the room is listed again.
  await cy.getByRole("button", { name: "Leave" }).click();
  for (const page of [ana, bo]) {
    await page.locator("#online-count", { hasText: "2 online" }).waitFor({ timeout: 20000 });
    await page.waitForFunction(() => document.querySelectorAll("#members li").length === 2, null, { timeout: 20000 });
    assert.ok(await page.getByRole("button", { name: "Show who is here" }).isHidden());
  }
  assert.deepEqual((await names(ana)).sort(), ["Ana (you)", "Bo"]);
  for (const page of [ana, bo, cy]) assert.deepEqual(page.errors, []);
});
