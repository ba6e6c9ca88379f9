// Sign-in in real headless Chromium: the local stack with Auth=jwt and its
// local OpenID provider (mock-oauth2-server), whose login page signs in any
// user name.
import assert from "node:assert/strict";
import { audit, suite } from "./stack.mjs";

const { stack, scenario, newPage } = suite("signin", ["-param", "Auth=jwt"]);

const online = (page) => page.locator("#state").filter({ hasText: "Online" }).waitFor({ timeout: 30000 });

/** Opens the page at query, signs in at the provider as user (with claims, if given), and waits until online. */
async function signIn(user, query, claims) {
  const page = await newPage();
  await page.goto(`${stack.webURL}${query}`);
  assert.equal(await page.getByLabel("Your name").isVisible(), false, "the name comes from the account, not a field");
  assert.doesNotMatch(await page.locator("#join .lead").textContent(), /pick a name/, "no name to pick when signing in");
  await page.getByRole("button", { name: "Sign in and join" }).click();
  // The provider's own login page.
  await page.locator("input[name=username]").fill(user);
  if (claims) await page.locator("[name=claims]").fill(JSON.stringify(claims));
  await page.getByRole("button", { name: "Sign-in" }).click();
  await online(page);
  return page;
}

scenario("a connection is replaced with a fresh token before its token expires, and nothing typed is lost", async () => {
  // Ana's page runs on a clock the test moves: an hour passes in a moment.
  const ana = await newPage();
  await ana.clock.install();
  const sockets = [];
  ana.on("websocket", (ws) => sockets.push(ws.url()));
  await ana.goto(`${stack.webURL}?room=renew`);
  await ana.getByRole("button", { name: "Sign in and join" }).click();
  await ana.locator("input[name=username]").fill("ana");
  await ana.getByRole("button", { name: "Sign-in" }).click();
  await online(ana);
  const bo = await signIn("bo", "?room=renew");
  await say(ana, "before the renewal");
  await bo.locator("#messages li.message", { hasText: "before the renewal" }).waitFor();
  await ana.getByLabel("Message", { exact: true }).fill("half a thought");

  // To 29 s before the token expires: past the page's 30 s.
  const held = await ana.evaluate(() => JSON.parse(sessionStorage.getItem("chat.signin")));
  const opened = sockets.length;
  await ana.clock.fastForward(held.expiresAt - (await ana.evaluate(() => Date.now())) - 29000);
  await ana.waitForFunction((old) => JSON.parse(sessionStorage.getItem("chat.signin")).idToken !== old, held.idToken, { timeout: 15000 }); // refreshed
  await online(ana);
  assert.ok(sockets.length > opened, `no new connection: ${sockets.length} sockets`);
  await ana.clock.setSystemTime(new Date(Date.now())); // the real time again: the new token is an hour away
  assert.equal(await ana.getByLabel("Message", { exact: true }).inputValue(), "half a thought", "what was typed is kept");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  await bo.locator("#messages li.message", { hasText: "half a thought" }).waitFor();
  assert.deepEqual(await bo.locator("#messages li.message .text").allTextContents(), ["before the renewal", "half a thought"]);
  assert.deepEqual([...ana.errors, ...bo.errors], []);
});

/** Makes a room from the chat's New room form ("private" or "public"), and waits until the page is in it. */
async function createRoom(page, name, kind = "private") {
  await page.locator("#new-room summary").click();
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel(kind === "private" ? "Only people you add" : "Anyone with its name").check();
  await page.getByRole("button", { name: "Create" }).click();
  await page.locator("#room-title", { hasText: kind === "private" ? `#~${name}` : `#${name}` }).waitFor();
  await online(page);
}

scenario("people sign in, chat under their accounts' names, and sign out", async () => {
  // A name in the URL is ignored: the account's is used.
  const ana = await signIn("ana", "?room=team&name=Mallory");
  assert.match(ana.url(), /\?room=team$/, "the code and state are gone from the address");
  assert.equal(await ana.locator("#room-title").textContent(), "#team");
  await ana.setViewportSize({ width: 1280, height: 800 });
  const header = await ana.locator("#chat header").boundingBox();
  assert.ok(header.height < 60, `signed in at 1280 px, the header takes ${header.height} px: more than one row`);
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

  await bo.locator("#me-menu summary").click(); // with the account: its name, its id, Sign out
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
  // Expired: the page cannot refresh it, so at its next attempt it signs out
  // and says so: asked now, or on its own if its backoff comes first (a loaded
  // CI once got there before the click).
  await eve.evaluate(() => {
    const held = JSON.parse(sessionStorage.getItem("chat.signin"));
    held.expiresAt = Date.now() - 1000;
    sessionStorage.setItem("chat.signin", JSON.stringify(held));
  });
  await eve.getByRole("button", { name: "Reconnect now" }).click({ timeout: 5000 }).catch((e) => {
    if (e.name !== "TimeoutError") throw e;
  });
  await eve.locator("#join-error", { hasText: "Your sign-in has ended" }).waitFor();
  assert.deepEqual(eve.errors, []);
});

scenario("a private room: its maker gets in, an outsider is told why not, and a link makes no room", async () => {
  const ana = await signIn("ana", "?room=lobby");
  await createRoom(ana, "crew");
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
  assert.equal(await bo.getByLabel("Message", { exact: true }).isDisabled(), true, "a composer for a room that refused");
  assert.equal((await bo.evaluate(() => JSON.parse(localStorage.getItem("chat.rooms") || "[]"))).includes("~crew"), false, "the refusing room kept among recent rooms");
  // A link to a private room that is not there is refused the same way:
  // it makes no room, and tells nothing about which rooms exist.
  const cy = await signIn("cy", "?room=lobby");
  await cy.goto(`${stack.webURL}?room=~nosuchroom`);
  await cy.locator("#problem", { hasText: "you are not one of its members" }).waitFor({ timeout: 30000 });
  await cy.goto(`${stack.webURL}?room=lobby`);
  await online(cy);
  await createRoom(cy, "nosuchroom"); // still free: the link made nothing
  assert.equal(await cy.locator("#problem").textContent(), "", "the room was made by the link before");
});

/** The user id a signed-in page shows under You: (once its first sync came). */
async function userId(page) {
  await page.locator("#me-menu summary").click();
  const id = await page.locator("#my-id", { hasText: /^u-/ }).textContent();
  await page.locator("#me-menu summary").click();
  assert.match(id, /^u-/);
  return id;
}

async function say(page, text) {
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByLabel("Message", { exact: true }).press("Enter");
}

scenario("a private room's people: added by user id, a moderator's removal seen by all, a mute, a removal mid-conversation, the log, direct messages from both sides", async () => {
  const ana = await signIn("ana", "?room=lobby");
  await createRoom(ana, "team");
  const bo = await signIn("bo", "?room=lobby");
  const cy = await signIn("cy", "?room=lobby");
  const [boId, cyId] = [await userId(bo), await userId(cy)];
  // Cy, not a member, is refused with the room's exact name.
  await cy.getByLabel("Go to room").fill("~team");
  await cy.getByLabel("Go to room").press("Enter");
  await cy.locator("#problem", { hasText: "you are not one of its members" }).waitFor({ timeout: 30000 });
  await cy.locator("#problem").getByRole("button", { name: "Go to #lobby" }).waitFor(); // back where she came from

  await ana.locator("#roster li", { hasText: "ana (you)" }).locator(".role", { hasText: "owner" }).waitFor();
  await ana.getByLabel("Add someone by user id").fill(boId);
  await ana.getByLabel("Role").selectOption("moderator");
  await ana.getByRole("button", { name: "Add", exact: true }).click();
  await ana.locator("#roster li", { hasText: boId }).locator(".role", { hasText: "moderator" }).waitFor();
  assert.equal(await ana.getByLabel("Role").inputValue(), "member", "the role chosen for Bo stays for the next one added");
  await ana.getByLabel("Add someone by user id").fill(cyId);
  await ana.getByRole("button", { name: "Add", exact: true }).click();
  await ana.locator("#roster li", { hasText: cyId }).waitFor();

  await bo.getByLabel("Go to room").fill("~team");
  await bo.getByLabel("Go to room").press("Enter");
  await online(bo);
  await bo.locator("#roster li", { hasText: "bo (you)" }).locator(".role", { hasText: "moderator" }).waitFor();
  await cy.reload(); // back into ~team, a member now
  await online(cy);
  await ana.locator("#roster li", { hasText: "cy" }).waitFor(); // named once they came

  // Bo, a moderator, removes Cy's message: everyone sees it removed, in place.
  await say(cy, "buy cheap stuff");
  const spam = bo.locator("#messages li.message", { hasText: "buy cheap stuff" });
  await spam.getByRole("button", { name: /^Actions/ }).click();
  await bo.getByRole("button", { name: "Remove (moderator)" }).click();
  await bo.getByRole("button", { name: "Yes, delete it" }).click();
  for (const page of [ana, bo, cy]) await page.locator("#messages li.message.deleted", { hasText: "removed by a moderator" }).waitFor();
  await cy.reload();
  await online(cy);
  await cy.locator("#messages li.message.deleted", { hasText: "removed by a moderator" }).waitFor();
  assert.equal(await cy.locator("#messages li.message", { hasText: "buy cheap stuff" }).count(), 0);

  // Ana mutes Cy: Cy's messages are refused, in words.
  await ana.locator("#roster [aria-label='Actions for cy']").click();
  await ana.getByRole("button", { name: "Mute for 1 hour" }).click();
  await cy.locator("#roster li", { hasText: "cy (you)" }).locator(".role", { hasText: "muted until" }).waitFor();
  await say(cy, "can I talk?");
  const refusedTalk = cy.locator("#messages li.message", { hasText: "can I talk?" });
  await refusedTalk.locator("text=Not sent").waitFor({ timeout: 30000 });
  // Until when, said as the page says times (the reader's clock), not in UTC.
  const status = await refusedTalk.locator(".status").textContent();
  // The mute was made within the last two minutes, for an hour.
  const untils = await cy.evaluate(async () => {
    const { whenText } = await import(new URL("render.js", location.href).href);
    return [0, 60000, 120000].map((early) => whenText(new Date(Date.now() + 3600000 - early)));
  });
  assert.ok(untils.some((t) => status.includes(`muted you in this room until ${t}.`)) && !status.includes("UTC"), `${status} (want until ${untils.join(" or ")})`);
  await ana.locator("#roster [aria-label='Actions for cy']").click();
  await ana.getByRole("button", { name: "Let speak" }).click();
  await cy.locator("#roster li", { hasText: "cy (you)" }).locator(".role.muted").waitFor({ state: "detached" });

  // Mid-conversation, Ana removes Cy: cut off, told why, and the room sees it.
  await say(cy, "still here");
  await ana.locator("#messages li.message", { hasText: "still here" }).waitFor();
  await ana.locator("#roster [aria-label='Actions for cy']").click();
  await ana.getByRole("button", { name: "Remove from room" }).click();
  await ana.getByRole("button", { name: "Yes, remove" }).click();
  await cy.locator("#problem", { hasText: "ana removed you from this room." }).waitFor();
  await cy.locator("#state", { hasText: "Offline" }).waitFor();
  await bo.locator("#messages li.notice", { hasText: "ana removed cy from this room." }).waitFor();
  await say(bo, "after cy");
  await ana.locator("#messages li.message", { hasText: "after cy" }).waitFor();
  assert.equal(await cy.locator("#messages li.message", { hasText: "after cy" }).count(), 0, "a removed member hears nothing more");

  // The owner's log says who did what.
  await ana.getByRole("button", { name: "Moderation log" }).click();
  await ana.locator("#audit-list li", { hasText: "ana removed cy" }).waitFor();
  await ana.locator("#audit-list li", { hasText: "bo removed a message of cy" }).waitFor();
  await ana.locator("#audit-list li", { hasText: "ana made bo a moderator" }).waitFor(); // as the chat says it
  await ana.locator("#roster [aria-label='Actions for bo']").click(); // a person's menu open
  await ana.getByRole("button", { name: "Make member" }).waitFor();
  await audit(ana, "a private room's people, a menu open, the log shown");
  await ana.locator("#roster [aria-label='Actions for bo']").click();

  // Direct messages: Bo opens them from Ana's menu; Ana finds them in her list.
  await bo.locator("#roster [aria-label='Actions for ana']").click();
  await bo.getByRole("button", { name: "Message", exact: true }).click();
  await online(bo);
  assert.equal(await bo.locator("#room-title").textContent(), "@ana");
  await bo.locator("#messages li.start", { hasText: "This is the start of your direct messages with ana." }).waitFor();
  // Ana, not there yet, is listed by her name, not her id, and @ suggests her.
  await bo.locator("#roster li .who", { hasText: /^ana$/ }).waitFor();
  await bo.getByLabel("Message", { exact: true }).pressSequentially("@an");
  await bo.getByRole("option", { name: "ana" }).waitFor();
  await bo.getByLabel("Message", { exact: true }).fill("");
  await say(bo, "just us two");
  await bo.locator("#messages li.message:not(.pending)", { hasText: "just us two" }).waitFor();
  await ana.reload(); // the room list asks the server for her rooms
  await online(ana);
  // The room's history of its people names them, also those added before they first came.
  await ana.locator("#messages li.notice", { hasText: "You added cy." }).waitFor();
  assert.deepEqual((await ana.locator("#messages li.notice").allTextContents()).filter((t) => t.includes("u-")), []);
  await ana.locator("#room-list a", { hasText: "@bo" }).click();
  await online(ana);
  await ana.locator("#messages li.message", { hasText: "just us two" }).waitFor();
  assert.equal(await ana.locator("#room-title").textContent(), "@bo");
  assert.deepEqual([...ana.errors, ...bo.errors, ...cy.errors], []);
});

scenario("an invite link lets people in, a ban keeps one out across reconnects and links until lifted, and the room keeps it all in order", async () => {
  const ana = await signIn("ana", "?room=lobby");
  await createRoom(ana, "club");
  const bo = await signIn("bo", "?room=lobby");
  const cy = await signIn("cy", "?room=lobby");
  const boId = await userId(bo);
  await ana.locator("#roster li", { hasText: "ana (you)" }).waitFor();
  await ana.getByRole("button", { name: "Make an invite link" }).click();
  await ana.locator("#link-expires", { hasText: "joins as a member" }).waitFor();
  const link = await ana.getByLabel("Invite link").inputValue();
  assert.match(link, /[?&]invite=/);

  // Bo and Cy open the link: members, and the address forgets the token.
  for (const page of [bo, cy]) {
    await page.goto(link);
    await online(page);
    assert.equal(await page.locator("#room-title").textContent(), "#~club");
    assert.doesNotMatch(page.url(), /invite=/);
  }
  await ana.locator("#roster li", { hasText: "bo" }).waitFor(); // read again when they came
  await say(bo, "hello club");
  // In the room's order: Bo's arrival before his message, for everyone.
  const notice = ana.locator("#messages li.notice", { hasText: "bo joined with an invite link." });
  await notice.waitFor();
  const order = await ana.locator("#messages li[data-seq]").evaluateAll((lis) => lis.map((li) => li.textContent));
  assert.ok(order.findIndex((t) => t.includes("bo joined with an invite link")) < order.findIndex((t) => t.includes("hello club")), order.join(" | "));

  // Ana bans Bo mid-conversation: cut off and told; kept out on reload and with the link.
  await bo.locator("#messages li.message:not(.pending)", { hasText: "hello club" }).waitFor();
  await ana.locator("#roster [aria-label='Actions for bo']").click();
  await ana.getByRole("button", { name: "Ban from room" }).click();
  await ana.getByRole("button", { name: "Yes, ban" }).click();
  await bo.locator("#problem", { hasText: "ana banned you from this room." }).waitFor();
  // His page shows nobody there, himself least of all, and the room is off his list.
  assert.equal(await bo.locator("#members li").count(), 0);
  assert.equal(await bo.locator("#online-count").textContent(), "");
  assert.equal(await bo.locator("#room-list a", { hasText: "~club" }).count(), 0);
  await cy.locator("#messages li.notice", { hasText: "ana banned bo from this room." }).waitFor();
  await ana.locator("#roster li", { hasText: "bo" }).locator(".role", { hasText: "banned" }).waitFor();
  for (const url of [`${stack.webURL}?room=~club`, link]) {
    await bo.goto(url);
    await bo.locator("#problem", { hasText: "you are not one of its members" }).waitFor({ timeout: 30000 });
  }
  await audit(ana, "a banned member in the roster, an invite link shown");

  // Lifted, Bo is only out: the link does not bring him back, Ana's invite does.
  await ana.locator("#roster [aria-label='Actions for bo']").click();
  await ana.getByRole("button", { name: "Lift the ban" }).click();
  await ana.locator("#messages li.notice", { hasText: "You lifted the ban on bo." }).waitFor();
  await ana.locator("#roster li", { hasText: "bo" }).waitFor({ state: "detached" });
  await bo.goto(link);
  await bo.locator("#problem", { hasText: "you are not one of its members" }).waitFor({ timeout: 30000 });
  await ana.getByLabel("Add someone by user id").fill(boId);
  await ana.getByRole("button", { name: "Add", exact: true }).click();
  await bo.goto(`${stack.webURL}?room=~club`);
  await online(bo);

  // Dee is invited by her e-mail address: she comes in when she signs in with it.
  await ana.getByLabel("Add someone by user id or e-mail address").fill("dee@example.com");
  await ana.getByRole("button", { name: "Add", exact: true }).click();
  await ana.locator("#notice", { hasText: "dee@example.com is invited" }).waitFor();
  await ana.locator("#invited li", { hasText: "dee@example.com" }).waitFor();
  // An address without a dotted domain is a typo, said so.
  await ana.getByLabel("Add someone by user id or e-mail address").fill("not@an");
  await ana.getByRole("button", { name: "Add", exact: true }).click();
  await ana.locator("#invite-error", { hasText: "or type their e-mail address" }).waitFor();
  // One invited by mistake is withdrawn.
  await ana.getByLabel("Add someone by user id or e-mail address").fill("zed@example.com");
  await ana.getByRole("button", { name: "Add", exact: true }).click();
  await ana.getByRole("button", { name: "Withdraw the invitation of zed@example.com" }).click();
  await ana.locator("#invited li", { hasText: "zed@example.com" }).waitFor({ state: "detached" });
  assert.equal(await ana.locator("#invited li", { hasText: "dee@example.com" }).count(), 1);
  const dee = await signIn("dee", "?room=~club", { email: "Dee@example.com", email_verified: true });
  assert.equal(await dee.locator("#room-title").textContent(), "#~club");
  // Ana's list of invitations loses the one used, without a reload.
  await ana.locator("#invited li", { hasText: "dee@example.com" }).waitFor({ state: "detached" });

  // After a reload, the room's history tells the same story, in order.
  await ana.reload();
  await online(ana);
  await ana.locator("#messages li.notice", { hasText: "You added Dee." }).waitFor(); // her name from her address
  const told = await ana.locator("#messages li.notice").allTextContents();
  const expected = ["bo joined with an invite link.", "cy joined with an invite link.", "You banned bo from this room.", "You lifted the ban on bo.", "You added bo.", "You added Dee."];
  assert.deepEqual(told.map((t) => t.split(" · ")[0]).filter((t) => expected.includes(t)), expected);
  assert.deepEqual([...ana.errors, ...bo.errors, ...cy.errors, ...dee.errors], []);
});

scenario("a public room made by its owner: a moderator named from the member list bans a spammer, who stays out, and the owner lifts it", async () => {
  const ana = await signIn("ana", "?room=lobby");
  await ana.locator("#new-room summary").click();
  await ana.getByLabel("Name", { exact: true }).fill("agora");
  await ana.getByRole("button", { name: "Create" }).click();
  await online(ana);
  assert.equal(await ana.locator("#room-title").textContent(), "#agora");
  await ana.locator("#roster-title", { hasText: "Moderators and bans" }).waitFor();
  await ana.locator("#roster li", { hasText: "ana (you)" }).locator(".role", { hasText: "owner" }).waitFor();

  const bo = await signIn("bo", "?room=agora");
  const cy = await signIn("cy", "?room=agora");
  assert.equal(await bo.locator("#roster-panel").isVisible(), false, "no staff list for a member");
  // Ana names Bo a moderator from the list of who is online.
  await ana.locator("#members [aria-label='Actions for bo']").click();
  await ana.getByRole("button", { name: "Make moderator" }).click();
  await ana.locator("#roster li", { hasText: "bo" }).locator(".role", { hasText: "moderator" }).waitFor();
  await bo.reload(); // his role comes with his next connection
  await online(bo);
  await bo.locator("#roster-title", { hasText: "Moderators and bans" }).waitFor();

  // Cy spams; Bo bans Cy from the message's menu: cut off and told; after
  // a reload still out.
  await say(cy, "buy now");
  const spam = bo.locator("#messages li.message", { hasText: "buy now" });
  await spam.waitFor();
  await spam.getByRole("button", { name: /^Actions for the message of cy/ }).click();
  const menu = bo.locator("#message-menu");
  await menu.getByRole("button", { name: "Mute for 1 hour: cy" }).waitFor();
  await menu.getByRole("button", { name: "Ban from room: cy" }).click();
  await audit(bo, "a message's menu, a ban to confirm");
  await menu.getByRole("button", { name: "Yes, ban" }).click();
  await cy.locator("#problem", { hasText: "bo banned you from this room." }).waitFor();
  await ana.locator("#messages li.notice", { hasText: "bo banned cy from this room." }).waitFor();
  await cy.reload();
  await cy.locator("#problem", { hasText: "This room does not let you in" }).waitFor({ timeout: 30000 });
  assert.notEqual(await cy.locator("#state").textContent(), "Online");
  await audit(bo, "a public room's moderator, the staff list with a ban");

  // Ana lifts it: Cy's page, still trying, gets in (at once with Reconnect now).
  await ana.locator("#roster [aria-label='Actions for cy']").click();
  await ana.getByRole("button", { name: "Lift the ban" }).click();
  await ana.locator("#roster li", { hasText: "cy" }).waitFor({ state: "detached" });
  for (const deadline = Date.now() + 40000; Date.now() < deadline && !(await cy.locator("#state", { hasText: "Online" }).count());) {
    const now = cy.getByRole("button", { name: "Reconnect now" }); // shown between attempts
    if (await now.isVisible()) await now.click().catch(() => {});
    await cy.waitForTimeout(500);
  }
  await online(cy);
  await cy.locator("#problem", { hasText: "This room does not let you in" }).waitFor({ state: "detached" }).catch(() => {});
  assert.equal(await cy.locator("#problem").textContent(), "");
  assert.deepEqual([...ana.errors, ...bo.errors, ...cy.errors], []);

  // With Bo gone, Ana's reload still tells the room's story by name (from the staff list).
  await bo.close();
  await ana.reload();
  await online(ana);
  await ana.locator("#messages li.notice", { hasText: "You added bo as a moderator." }).waitFor();
  assert.deepEqual(ana.errors, []);
});
