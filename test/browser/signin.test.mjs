// Sign-in in real headless Chromium: the local stack with Auth=jwt and its
// local OpenID provider (mock-oauth2-server), whose login page signs in any
// user name.
import assert from "node:assert/strict";
import { suite } from "./stack.mjs";

const { stack, scenario, newPage } = suite("signin", ["-param", "Auth=jwt"]);

const online = (page) => page.locator("#state").filter({ hasText: "Online" }).waitFor({ timeout: 30000 });

/** Opens the page at query, signs in at the provider as user, and waits until online. */
async function signIn(user, query) {
  const page = await newPage();
  await page.goto(`${stack.webURL}${query}`);
  assert.equal(await page.getByLabel("Your name").isVisible(), false, "the name comes from the account, not a field");
  await page.getByRole("button", { name: "Sign in and join" }).click();
  // The provider's own login page.
  await page.locator("input[name=username]").fill(user);
  await page.getByRole("button", { name: "Sign-in" }).click();
  await online(page);
  return page;
}

scenario("people sign in, chat under their accounts' names, and sign out", async () => {
  // A name in the URL is ignored: the account's is used.
  const ana = await signIn("ana", "?room=team&name=Mallory");
  assert.match(ana.url(), /\?room=team$/, "the code and state are gone from the address");
  assert.equal(await ana.locator("#room-title").textContent(), "#team");
  const bo = await signIn("bo", "?room=team");
  await ana.locator("#members li", { hasText: "bo" }).waitFor();
  await bo.locator("#members li", { hasText: "ana" }).waitFor();

  await ana.getByLabel("Message", { exact: true }).fill("signed hello");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  const got = bo.locator("#messages li.message", { hasText: "signed hello" });
  await got.waitFor();
  assert.equal(await got.locator(".name").textContent(), "ana");

  // A reload keeps the sign-in (this tab's) and returns to the room.
  await ana.reload();
  await online(ana);
  await ana.locator("#messages li.message", { hasText: "signed hello" }).waitFor();

  await bo.getByRole("button", { name: "Sign out" }).click();
  await ana.locator("#messages li.notice", { hasText: "bo left" }).waitFor();
  await bo.getByRole("button", { name: "Sign in and join" }).waitFor();
  assert.equal(await bo.evaluate(() => sessionStorage.getItem("chat.signin")), null, "the tokens are forgotten");
  assert.deepEqual([...ana.errors, ...bo.errors], []);
});

scenario("a forged token is refused and the page asks to sign in again", async () => {
  const eve = await signIn("eve", "?room=team");
  // Her token's signature tampered with, and no refresh token to mend it.
  await eve.evaluate(() => {
    const held = JSON.parse(sessionStorage.getItem("chat.signin"));
    held.idToken = held.idToken.slice(0, -6) + "AAAAAA";
    held.refreshToken = "";
    sessionStorage.setItem("chat.signin", JSON.stringify(held));
  });
  await eve.reload();
  await eve.locator("#state").filter({ hasText: "Reconnecting" }).waitFor({ timeout: 30000 });
  assert.notEqual(await eve.locator("#state").textContent(), "Online");
  // Expired: the page cannot refresh it, so it signs out and says so.
  await eve.evaluate(() => {
    const held = JSON.parse(sessionStorage.getItem("chat.signin"));
    held.expiresAt = Date.now() - 1000;
    sessionStorage.setItem("chat.signin", JSON.stringify(held));
  });
  await eve.getByRole("button", { name: "Reconnect now" }).click();
  await eve.locator("#join-error", { hasText: "Your sign-in has ended" }).waitFor();
  assert.deepEqual(eve.errors, []);
});

scenario("a private room: its maker gets in, an outsider is told why not", async () => {
  const ana = await signIn("ana", "?room=~crew");
  assert.equal(await ana.locator("#room-title").textContent(), "#~crew");
  await ana.getByLabel("Message", { exact: true }).fill("crew only");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  await ana.locator("#messages li.message:not(.pending)", { hasText: "crew only" }).waitFor();
  // Bo is signed in too, but not a member: refused, and told so.
  const bo = await newPage();
  await bo.goto(`${stack.webURL}?room=~crew`);
  await bo.getByRole("button", { name: "Sign in and join" }).click();
  await bo.locator("input[name=username]").fill("bo");
  await bo.getByRole("button", { name: "Sign-in" }).click();
  await bo.locator("#problem", { hasText: "you are not one of its members" }).waitFor({ timeout: 30000 });
  assert.equal(await bo.locator("#messages li.message").count(), 0, "nothing of the room shown");
});
