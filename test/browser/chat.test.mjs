// The page in real headless Chromium against the real local stack
// (emulated API Gateway, the Go handlers, DynamoDB Local).
import assert from "node:assert/strict";
import { audit, suite } from "./stack.mjs";

// Frames overtake each other on their way to the functions, as in AWS.
const { stack, scenario, newPage } = suite("browser", ["-fault-invoke-jitter", "60ms"]);

/** A frame from the server decoded; the empty frame a two-way route may bring is {}. */
const fromServer = (m) => (m ? JSON.parse(m) : {});

/** A user with their own browser profile (localStorage), joined to room. */
async function user(name, room, options = {}) {
  const page = await newPage(options);
  page.dialogs = [];
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

scenario("two users chat both ways, with names, times, join and leave", async () => {
  const ana = await user("Ana", "lobby");
  // Ana's first sync is in before Bo comes (on a cold stack it can take a
  // while): else it may list Bo already, and no join is news to her.
  await ana.locator("#members li", { hasText: "Ana" }).waitFor();
  const bo = await user("Bo", "lobby");
  await ana.locator("#messages li.notice", { hasText: "Bo joined" }).waitFor();
  await ana.locator("#members li", { hasText: "Bo" }).waitFor();
  await bo.locator("#members li", { hasText: "Ana" }).waitFor();
  await ana.locator("#online-count", { hasText: "2 online" }).waitFor(); // with the list, not at the next pong

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
  assert.equal(await ana.locator("#online-count").textContent(), "1 online");

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
  const page = await newPage();
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
  for (const n of [...firstList, ...secondList]) assert.match(n, /^Ana \([a-z2-7]{12}\)( \(you\))?$/);
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

  // The second Ana leaves: her past message keeps its mark, and so does a
  // page that arrives later and sees only the messages.
  await second.getByRole("button", { name: "Leave" }).click();
  await first.locator("#members li").nth(1).waitFor({ state: "detached" });
  assert.equal(await got.locator(".name").textContent(), secondMark);
  await first.getByLabel("Message", { exact: true }).fill("from the first Ana");
  await first.getByLabel("Message", { exact: true }).press("Enter");
  const bo = await user("Bo", "twins");
  const seen = bo.locator("#messages li.message", { hasText: "from the second Ana" });
  await seen.waitFor();
  assert.equal(await seen.locator(".name").textContent(), secondMark);
});

scenario("a join the page never got is noticed by its number and fetched", async () => {
  // Ana's page loses Bo's join on its way (as when API Gateway fails to
  // deliver it after every retry); Cy's join, numbered after it, shows
  // the gap, and the page asks for just the missing event.
  const ana = await newPage();
  const asked = [];
  let dropped = 0;
  await ana.routeWebSocket((url) => url.port === String(stack.gwPort), (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      if (JSON.parse(m).action === "presence") asked.push(JSON.parse(m));
      server.send(m);
    });
    server.onMessage((m) => {
      const f = fromServer(m);
      if (f.type === "join" && f.name === "Bo" && !dropped++) return;
      ws.send(m);
    });
  });
  await ana.goto(`${stack.webURL}?room=gaps`);
  await ana.getByLabel("Your name").fill("Ana");
  await ana.getByRole("button", { name: "Join" }).click();
  await online(ana);
  const bo = await user("Bo", "gaps");
  await bo.locator("#members li", { hasText: "Ana" }).waitFor();
  await ana.waitForTimeout(500);
  assert.equal(dropped, 1, "Bo's join was not dropped on its way to Ana");
  assert.equal(await ana.locator("#members li", { hasText: "Bo" }).count(), 0, "Ana heard of Bo without the join");

  await user("Cy", "gaps");
  await ana.locator("#members li", { hasText: "Cy" }).waitFor();
  await ana.locator("#members li", { hasText: "Bo" }).waitFor({ timeout: 10000 });
  await ana.locator("#messages li.notice", { hasText: "Bo joined" }).waitFor();
  assert.equal(asked.length, 1, `presence fetches: ${JSON.stringify(asked)}`);
  assert.ok(asked[0].after >= 1, `asked after ${asked[0].after}`);
  assert.deepEqual(ana.errors, []);
});

scenario("a lost reply to the first sync is asked for again, and what was typed goes out", async () => {
  const ana = await newPage();
  let syncs = 0;
  let replies = 0;
  await ana.routeWebSocket((url) => url.port === String(stack.gwPort), (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      if (JSON.parse(m).action === "sync") syncs++;
      server.send(m);
    });
    server.onMessage((m) => {
      if (fromServer(m).type === "sync" && replies++ === 0) return; // the first is lost
      ws.send(m);
    });
  });
  await ana.goto(`${stack.webURL}?room=lostsync`);
  await ana.getByLabel("Your name").fill("Ana");
  await ana.getByRole("button", { name: "Join" }).click();
  await online(ana);
  await ana.getByLabel("Message", { exact: true }).fill("typed before the sync came");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  await ana.locator("#messages li.message:not(.pending)", { hasText: "typed before the sync came" }).waitFor({ timeout: 15000 });
  assert.equal(replies, 2, "two sync replies: the first lost, the second delivered");
  assert.equal(syncs, 2, `syncs sent: ${syncs}`);
  assert.deepEqual(ana.errors, []);
});

/**
 * A user whose sockets go through a proxy that can go silent both ways
 * while keeping the socket open (a laptop asleep, a Wi-Fi hand-over): each
 * socket's {silent} switch in page.sockets, the latest last.
 */
async function userBehindProxy(name, room) {
  const page = await newPage();
  page.sockets = [];
  await page.routeWebSocket((url) => url.port === String(stack.gwPort), (ws) => {
    const server = ws.connectToServer();
    const s = { silent: false };
    page.sockets.push(s);
    ws.onMessage((m) => s.silent || server.send(m));
    server.onMessage((m) => s.silent || ws.send(m));
  });
  await page.goto(`${stack.webURL}?room=${room}`);
  await page.getByLabel("Your name").fill(name);
  await page.getByRole("button", { name: "Join" }).click();
  await online(page);
  return page;
}

/** Records every text the page's connection state shows, in window.states. */
const recordStates = (page) =>
  page.evaluate(() => {
    const state = document.getElementById("state");
    window.states = [];
    new MutationObserver(() => window.states.push(state.textContent)).observe(state, { childList: true, characterData: true, subtree: true });
  });

scenario("a socket held open but silent is noticed, replaced, and both users' messages arrive once, in order", async () => {
  const ana = await userBehindProxy("Ana", "stall");
  const sockets = ana.sockets;
  const bo = await user("Bo", "stall");
  await ana.locator("#members li", { hasText: "Bo" }).waitFor();

  sockets.at(-1).silent = true;
  const stalledAt = Date.now();
  await bo.getByLabel("Message", { exact: true }).fill("from Bo during the stall");
  await bo.getByLabel("Message", { exact: true }).press("Enter");
  await bo.locator("#messages li.message:not(.pending)", { hasText: "from Bo during the stall" }).waitFor();
  await ana.getByLabel("Message", { exact: true }).fill("from Ana during the stall");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  // The new socket opens at once here: "Reconnecting…" may show only for
  // a moment, so every state shown is recorded.
  await recordStates(ana);
  await ana.waitForFunction(() => window.states.includes("Reconnecting…"), null, { timeout: 15000 });
  const noticed = Date.now() - stalledAt;
  assert.ok(noticed <= 15000, `noticed after ${noticed} ms`);
  await online(ana);
  assert.equal(sockets.length, 2, "the silent socket was replaced by one new one");

  const want = ["from Bo during the stall", "from Ana during the stall"];
  for (const page of [ana, bo]) {
    await page.locator("#messages li.message:not(.pending)", { hasText: want[1] }).waitFor({ timeout: 15000 });
    await page.locator("#messages li.message", { hasText: want[0] }).waitFor({ timeout: 15000 });
    assert.deepEqual(await texts(page), want);
  }
  assert.deepEqual(ana.errors, []);
});

scenario("a page that only reads notices its silent socket while visible, and gets what was said", async () => {
  // Bo only reads; his socket goes silent both ways. Nothing he sends is
  // watched, so only the visible page's ping after about 30 s of silence
  // can tell.
  const bo = await userBehindProxy("Bo", "reader");
  const sockets = bo.sockets;
  const ana = await user("Ana", "reader");
  await bo.locator("#members li", { hasText: "Ana" }).waitFor();
  await recordStates(bo);

  sockets.at(-1).silent = true;
  const stalledAt = Date.now();
  await ana.getByLabel("Message", { exact: true }).fill("said while Bo's socket was silent");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  await bo.waitForFunction(() => window.states.includes("Reconnecting…"), null, { timeout: 65000 });
  const noticed = Date.now() - stalledAt;
  // At most 45 s of silence (15–45 s), then the ping's 4 s and the pong's 6 s.
  assert.ok(noticed <= 57000, `noticed after ${noticed} ms`);
  await bo.emulateMedia({ colorScheme: "dark" });
  await audit(bo, "a silent socket noticed, dark");
  await online(bo);
  assert.equal(sockets.length, 2, "the silent socket was replaced by one new one");
  await bo.locator("#messages li.message", { hasText: "said while Bo's socket was silent" }).waitFor({ timeout: 15000 });
  assert.deepEqual(await texts(bo), ["said while Bo's socket was silent"]);
  assert.deepEqual(bo.errors, []);
});

scenario("a message written offline waits for the connection, says so, and goes when it is back", async () => {
  const ana = await newPage();
  await ana.clock.install(); // 20 s pass in a moment
  await ana.goto(`${stack.webURL}?room=waiting`);
  await ana.getByLabel("Your name").fill("Ana");
  await ana.getByRole("button", { name: "Join" }).click();
  await online(ana);
  await ana.context().setOffline(true);
  await ana.locator("#state", { hasText: "Reconnecting…" }).waitFor({ timeout: 5000 });
  await ana.getByLabel("Message", { exact: true }).fill("written on the train");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  const li = ana.locator("#messages li.message", { hasText: "written on the train" });
  await ana.clock.fastForward(21000);
  await li.locator(".status", { hasText: "Waiting for the connection" }).waitFor({ timeout: 5000 });
  assert.equal(await li.locator(".status", { hasText: "Not sent" }).count(), 0, "said not sent while it waits to go");
  await ana.context().setOffline(false);
  await ana.locator("#messages li.message:not(.pending)", { hasText: "written on the train" }).waitFor({ timeout: 15000 });
  assert.deepEqual(await texts(ana), ["written on the train"]);
  assert.deepEqual(ana.errors, []);
});

scenario("the browser going offline shows Reconnecting at once, and online reconnects", async () => {
  const ana = await user("Ana", "network");
  await ana.context().setOffline(true);
  await ana.locator("#state", { hasText: "Reconnecting…" }).waitFor({ timeout: 2000 });
  await audit(ana, "reconnecting");
  assert.match(await ana.getByLabel("Message", { exact: true }).getAttribute("placeholder"), /^Reconnecting… Messages wait/);
  await ana.emulateMedia({ colorScheme: "dark" });
  await audit(ana, "reconnecting, dark");
  await ana.context().setOffline(false);
  await online(ana);
});

scenario("a message refused or taking too long shows Not sent with Retry or Edit, and Delete; one whose ack was lost is sent", async () => {
  // Ana's frames go through a proxy that spoils, holds back or loses what
  // the test says, by the message's text.
  const ana = await newPage();
  const rule = { refuse: true, hold: true, loseAck: true };
  const acks = new Map(); // clientId → text, to lose the right ack
  let ackLostSent = 0;
  const sockets = [];
  await ana.routeWebSocket((url) => url.port === String(stack.gwPort), (ws) => {
    const server = ws.connectToServer();
    sockets.push(ws);
    ws.onMessage((m) => {
      const f = JSON.parse(m);
      if (f.action === "new-message") {
        acks.set(f.clientId, f.text);
        if (f.text.startsWith("ack lost")) ackLostSent++;
        if (rule.refuse && f.text.startsWith("refused")) return server.send(JSON.stringify({ ...f, text: " " })); // the server refuses an empty text
        if (rule.hold && f.text.startsWith("held")) return; // never reaches the server
      }
      server.send(m);
    });
    server.onMessage((m) => {
      const f = fromServer(m);
      if (f.type === "ack" && rule.loseAck && acks.get(f.clientId)?.startsWith("ack lost")) return;
      ws.send(m);
    });
  });
  await ana.goto(`${stack.webURL}?room=notsent`);
  await ana.getByLabel("Your name").fill("Ana");
  await ana.getByRole("button", { name: "Join" }).click();
  await online(ana);
  const say = async (text) => {
    await ana.getByLabel("Message", { exact: true }).fill(text);
    await ana.getByLabel("Message", { exact: true }).press("Enter");
    return ana.locator("#messages li.message", { hasText: text });
  };

  // Refused for its text: Not sent at once, with the reason; no Retry (it
  // would be refused again) but Edit, which puts it back in the composer;
  // Delete drops it.
  const refused = await say("refused, then edited");
  await refused.locator(".status", { hasText: "Not sent" }).waitFor({ timeout: 5000 });
  assert.equal(await refused.getByRole("button", { name: "Retry" }).count(), 0, "Retry offered for a text refused");
  await refused.getByRole("button", { name: "Edit" }).click();
  assert.equal(await refused.count(), 0);
  assert.equal(await ana.getByLabel("Message", { exact: true }).inputValue(), "refused, then edited");
  rule.refuse = false;
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  await ana.locator("#messages li.message:not(.pending)", { hasText: "refused, then edited" }).waitFor({ timeout: 10000 });
  rule.refuse = true;
  const deleted = await say("refused, then deleted");
  await deleted.getByRole("button", { name: "Delete" }).click();
  assert.equal(await deleted.count(), 0);

  // Held back: Sending…, then Not sent after a bounded time; Retry sends it.
  const held = await say("held, then retried");
  await held.locator(".status", { hasText: "Sending…" }).waitFor();
  await held.locator(".status", { hasText: "Not sent" }).waitFor({ timeout: 30000 });
  assert.doesNotMatch(await held.textContent(), /sending/i, "a message not sent says it is sending");
  await audit(ana, "a message not sent");
  await ana.emulateMedia({ colorScheme: "dark" });
  await audit(ana, "a message not sent, dark");
  await ana.emulateMedia({ colorScheme: "light" });
  rule.hold = false;
  await held.getByRole("button", { name: "Retry" }).click();
  await ana.locator("#messages li.message:not(.pending)", { hasText: "held, then retried" }).waitFor({ timeout: 10000 });

  // Its ack lost: the sync of a new connection brings it with its
  // clientId, and it is sent, never sent again.
  const lost = await say("ack lost");
  await ana.waitForTimeout(500);
  assert.equal(await lost.locator(".status", { hasText: "Sending…" }).count(), 1, "still pending without its ack");
  sockets.at(-1).close();
  await ana.locator("#messages li.message:not(.pending)", { hasText: "ack lost" }).waitFor({ timeout: 15000 });
  assert.equal(await ana.locator("#messages li.message", { hasText: "ack lost" }).count(), 1);
  assert.equal(ackLostSent, 1, "the message whose ack was lost was sent again");
  assert.deepEqual(await texts(ana), ["refused, then edited", "held, then retried", "ack lost"]);
  assert.deepEqual(ana.errors, []);
});

scenario("screen readers hear each message once, no separator again, and a status without symbols", async () => {
  const ana = await user("Ana", "readers");
  const bo = await user("Bo", "readers");
  await ana.locator("#members li", { hasText: "Bo" }).waitFor();
  // What the message list's live region would announce: every insertion
  // made while it is live (not while the page has it quiet).
  await ana.evaluate(() => {
    const log = document.getElementById("log");
    window.announced = [];
    new MutationObserver((records) => {
      for (const r of records) {
        for (const n of r.addedNodes) {
          if (n.nodeType === 1 && log.getAttribute("aria-live") !== "off") window.announced.push(`${n.className}: ${n.textContent}`);
        }
      }
    }).observe(document.getElementById("messages"), { childList: true });
  });
  for (const text of ["first of mine", "second of mine"]) {
    await ana.getByLabel("Message", { exact: true }).fill(text);
    await ana.getByLabel("Message", { exact: true }).press("Enter");
    await ana.locator("#messages li.message:not(.pending)", { hasText: text }).waitFor();
  }
  await bo.getByLabel("Message", { exact: true }).fill("one from Bo");
  await bo.getByLabel("Message", { exact: true }).press("Enter");
  await ana.locator("#messages li.message", { hasText: "one from Bo" }).waitFor();
  const announced = await ana.evaluate(() => window.announced);
  assert.equal(announced.filter((a) => a.includes("first of mine")).length, 1, `announced: ${announced.join(" | ")}`);
  assert.equal(announced.filter((a) => a.includes("second of mine")).length, 1, `announced: ${announced.join(" | ")}`);
  // The room's first message brings the day's separator; no later one brings it again.
  assert.equal(announced.filter((a) => a.startsWith("day")).length, 1, `day separators announced: ${announced.join(" | ")}`);
  assert.equal(await ana.locator("#messages li.day").count(), 1);
  const status = await ana.locator("#state").ariaSnapshot();
  assert.match(status, /Online/);
  assert.doesNotMatch(status, /●/);
});

scenario("notifications, opted into: for mentions and while hidden, never one's own, not in a muted room", async () => {
  const ana = await newPage();
  // The Notification API, recorded: what the page shows, and that it asks.
  await ana.addInitScript(() => {
    window.notes = [];
    window.Notification = class {
      static permission = "default";
      static async requestPermission() {
        window.asked = (window.asked || 0) + 1;
        return (this.permission = "granted");
      }
      constructor(title, { body }) {
        window.notes.push(`${title}: ${body}`);
      }
      addEventListener() {}
      close() {}
    };
    // The sound, counted: one tone is one oscillator.
    window.tones = 0;
    const Audio = window.AudioContext;
    window.AudioContext = class extends Audio {
      createOscillator() {
        window.tones++;
        return super.createOscillator();
      }
    };
  });
  await ana.goto(`${stack.webURL}?room=alerts`);
  await ana.getByLabel("Your name").fill("Ana");
  await ana.getByRole("button", { name: "Join" }).click();
  await online(ana);
  const bo = await user("Bo", "alerts");
  await ana.locator("#members li", { hasText: "Bo" }).waitFor();
  assert.equal(await ana.evaluate(() => window.asked || 0), 0, "permission asked before the person opted in");
  await ana.locator("#alerts summary").click();
  await ana.getByLabel("Desktop notifications").check();
  assert.equal(await ana.evaluate(() => window.asked), 1);
  await ana.getByLabel("Sound").check();

  const say = async (page, text, shown = text) => {
    await page.getByLabel("Message", { exact: true }).fill(text);
    await page.getByLabel("Message", { exact: true }).press("Enter");
    await ana.locator("#messages li.message:not(.pending)", { hasText: shown }).waitFor();
  };
  const setHidden = (hidden) => ana.evaluate((h) => {
    Object.defineProperty(document, "hidden", { value: h, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
  await say(bo, "hello everyone"); // seen, no mention: no notification
  await say(bo, "hi @ana, *look*", "hi @ana, look"); // a note has no formatting: the words, not the marks
  await say(ana, "@Ana talking to myself");
  await setHidden(true);
  await say(bo, "while you are away");
  await ana.getByLabel("Mute this room").check();
  await say(bo, "in a muted room");
  await setHidden(false);
  assert.deepEqual(await ana.evaluate(() => window.notes), ["Bo in #alerts: hi @ana, look", "Bo in #alerts: while you are away"]);
  assert.equal(await ana.evaluate(() => window.tones), 2, "a tone for each of the two notifications, and no other");
  // What is not formatting stays as typed: a fence never closed, marks in a block, stars inside words.
  const plain = await ana.evaluate(async () => {
    const { plainText } = await import("./render.js");
    return ["use ``` to open a block", "```\nrm *.log *.tmp\n```", "see```x```now", "2*3*4 and file_*name*", "**bold** `code` *em*"].map(plainText);
  });
  assert.deepEqual(plain, ["use ``` to open a block", "rm *.log *.tmp", "see x now", "2*3*4 and file_*name*", "bold code em"]);
  await ana.reload();
  await online(ana);
  await ana.locator("#alerts summary").click();
  assert.equal(await ana.getByLabel("Mute this room").isChecked(), true, "the room's mute is kept");
  assert.deepEqual(ana.errors, []);
});

scenario("an empty room says so until someone speaks; the landing says what this is and lists recent rooms", async () => {
  const ana = await user("Ana", "quietone");
  const hint = ana.locator("#messages li.start .empty-hint");
  await hint.waitFor();
  assert.match(await hint.textContent(), /Nothing here yet/);
  await ana.getByLabel("Message", { exact: true }).fill("hello, first one here");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  await ana.locator("#messages li.message:not(.pending)", { hasText: "hello, first one here" }).waitFor();
  assert.equal(await hint.isVisible(), false, "the empty room's hint stays after a message");

  await ana.getByRole("button", { name: "Leave" }).click();
  assert.match(await ana.locator("#join .lead").textContent(), /real-time chat/);
  const recent = ana.getByRole("navigation", { name: "Recent rooms" }).getByRole("link", { name: "#quietone" });
  await recent.click();
  await ana.waitForURL(/room=quietone/);
  await ana.waitForLoadState();
  assert.equal(await ana.getByRole("textbox", { name: "Room", exact: true }).inputValue(), "quietone");
  await ana.getByRole("button", { name: "Join" }).click();
  await online(ana);
  await ana.locator("#messages li.message", { hasText: "hello, first one here" }).waitFor();
  assert.equal(new URL(ana.url()).searchParams.get("room"), "quietone");
  assert.deepEqual(ana.errors, []);
});

scenario("messages read as runs with avatars and colours, with safe formatting, folding and a way back to the latest", async () => {
  const ana = await user("Ana", "looks");
  const bo = await user("Bo", "looks");
  await ana.getByLabel("Message", { exact: true }).fill("**bold** `a<b>c` *soft* and ```\nblock <i>x</i>\n```");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  const formatted = bo.locator("#messages li.message", { hasText: "bold" });
  await formatted.waitFor();
  assert.equal(await formatted.locator(".text strong").textContent(), "bold");
  assert.equal(await formatted.locator(".text code").first().textContent(), "a<b>c");
  assert.equal(await formatted.locator(".text em").textContent(), "soft");
  assert.equal(await formatted.locator(".text pre code").textContent(), "block <i>x</i>");
  assert.equal(await bo.locator("#messages i, #messages b").count(), 0, "HTML from a message's text");
  assert.equal(await formatted.locator(".avatar").textContent(), "AN");
  await bo.getByLabel("Message", { exact: true }).fill("hi Ana");
  await bo.getByLabel("Message", { exact: true }).press("Enter");
  const reply = ana.locator("#messages li.message", { hasText: "hi Ana" });
  await reply.waitFor();
  const colour = (li) => li.locator(".name").evaluate((n) => getComputedStyle(n).color);
  assert.notEqual(await colour(formatted), await colour(bo.locator("#messages li.message.mine", { hasText: "hi Ana" })), "Ana and Bo in one colour");

  // A very long message is folded, and unfolds on request.
  const long = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join("\n");
  await ana.getByLabel("Message", { exact: true }).fill(long);
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  const folded = bo.locator("#messages li.message", { hasText: "line 30" });
  await folded.waitFor();
  const more = folded.getByRole("button", { name: "Show more" });
  assert.equal(await more.getAttribute("aria-expanded"), "false");
  const before = (await folded.boundingBox()).height;
  await more.click();
  assert.equal(await folded.getByRole("button", { name: "Show less" }).getAttribute("aria-expanded"), "true");
  assert.ok((await folded.boundingBox()).height > before, "Show more did not unfold it");

  // Away from the bottom, a button leads back to the latest message.
  await bo.setViewportSize({ width: 800, height: 420 }); // more than one screen of messages
  await bo.locator("#log").evaluate((l) => (l.scrollTop = l.scrollHeight));
  await bo.locator("#log").evaluate((l) => (l.scrollTop = 0)); // reading back up
  await bo.locator("#new-messages").click(); // "Jump to latest ↓" (or "New messages ↓" if some came meanwhile)
  assert.ok(await bo.locator("#log").evaluate((l) => l.scrollHeight - l.scrollTop - l.clientHeight < 40), "not at the latest");

  // The composer's focus is the page's blue ring, light and dark (no other colour).
  for (const colorScheme of ["light", "dark"]) {
    await bo.emulateMedia({ colorScheme });
    await bo.getByLabel("Message", { exact: true }).focus();
    await bo.keyboard.press("Shift"); // focus-visible, as from the keyboard
    const [ring, accent] = await bo.getByLabel("Message", { exact: true }).evaluate((el) => {
      const probe = Object.assign(document.createElement("span"), { style: "color: var(--accent)" });
      document.body.append(probe);
      const a = getComputedStyle(probe).color;
      probe.remove();
      return [getComputedStyle(el).borderColor, a];
    });
    assert.equal(ring, accent, `${colorScheme}: the composer's focus ring is ${ring}, not the accent ${accent}`);
  }
  assert.deepEqual([...ana.errors, ...bo.errors], []);
});

scenario("a burst over the rate limit goes out in order after a short notice", async () => {
  const ana = await user("Ana", "burst");
  const bo = await user("Bo", "burst");
  const typed = Array.from({ length: 40 }, (_, i) => `burst ${i + 1}`);
  // Sent at once from inside the page (as fast as pasting and pressing
  // Enter can go): well past 20 at once and 5 a second, whatever the speed
  // of the machine that runs the test.
  await ana.evaluate((typed) => {
    for (const t of typed) {
      document.getElementById("text").value = t;
      document.getElementById("text").dispatchEvent(new Event("input"));
      document.getElementById("send-form").requestSubmit();
    }
  }, typed);
  await ana.locator("#problem", { hasText: "faster than the room allows" }).waitFor();
  await bo.waitForFunction((n) => document.querySelectorAll("#messages li.message").length === n, typed.length, { timeout: 30000 });
  assert.deepEqual(await texts(bo), typed);
  await ana.waitForFunction(() => document.querySelectorAll("#messages li.pending").length === 0, null, { timeout: 30000 });
  assert.deepEqual(await texts(ana), typed);
});

/** Stores n messages in room through `senders` sockets opened from page (each has its own rate limit). */
async function seed(page, room, n, senders = 10) {
  await page.evaluate(async ({ url, room, n, senders }) => {
    const each = Math.ceil(n / senders);
    await Promise.all(Array.from({ length: senders }, (_, s) => new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url}?room=${room}&name=seed${s}`);
      let acked = 0;
      const count = Math.min(each, n - s * each);
      ws.onerror = reject;
      ws.onclose = (e) => reject(new Error(`seed socket ${s} closed (${e.code}) after ${acked} acks; last frame ${last}`));
      // Paced (40 a second in all), within the stage's throttling and what
      // DynamoDB Local does for one room's head on two cores.
      ws.onopen = async () => {
        for (let i = 0; i < count; i++) {
          ws.send(JSON.stringify({ action: "new-message", text: `seed ${s * each + i}`, clientId: `s${s}-${i}`, frame: i + 1 }));
          await new Promise((r) => setTimeout(r, 250));
        }
      };
      setTimeout(() => reject(new Error(`seed socket ${s}: ${acked} of ${count} acked; last frame ${last}`)), 20000);
      let last = "";
      ws.onmessage = (e) => {
        last = e.data;
        if (e.data && JSON.parse(e.data).type === "ack" && ++acked === count) {
          ws.close();
          resolve();
        }
      };
    })));
  }, { url: `ws://127.0.0.1:${stack.gwPort}/prod`, room, n, senders });
}

scenario("older history loads to the first message, keeping the reading position", async () => {
  const ana = await user("Ana", "history");
  await seed(ana, "history", 200);
  const bo = await user("Bo", "history");
  await bo.waitForFunction(() => document.querySelectorAll("#messages li.message").length === 50);
  assert.equal(await bo.locator("#messages li.start").count(), 0, "a start marker with 150 older messages");
  const older = bo.getByRole("button", { name: "Load older messages" });
  await older.waitFor();
  // Scrolling to the top loads the page before, and what was read stays where it was.
  const firstSeq = await bo.locator("#messages li.message").first().getAttribute("data-seq");
  const first = bo.locator(`#messages li[data-seq="${firstSeq}"]`);
  const top = async () => (await first.boundingBox()).y - (await bo.locator("#log").boundingBox()).y;
  await bo.locator("#log").evaluate((l) => (l.scrollTop = 0));
  const before = await top();
  await bo.waitForFunction(() => document.querySelectorAll("#messages li.message").length >= 100);
  const after = await top();
  assert.ok(Math.abs(after - before) < 40, `the message read moved from ${before}px to ${after}px`);
  // The keyboard way: the button.
  const shown = await bo.locator("#messages li.message").count();
  await older.click();
  await bo.waitForFunction((n) => document.querySelectorAll("#messages li.message").length > n, shown);
  // The scrolling way: to the top, until the start.
  for (let i = 0; i < 10 && (await bo.locator("#messages li.start").count()) === 0; i++) {
    await bo.locator("#log").evaluate((l) => (l.scrollTop = 0));
    await bo.waitForTimeout(300);
  }
  await bo.locator("#messages li.start", { hasText: "start of the conversation" }).waitFor();
  const seqs = await bo.locator("#messages li.message").evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, Array.from({ length: 200 }, (_, i) => i + 1));
  assert.equal(await bo.locator("#older").isHidden(), true);
  assert.equal(await bo.locator("#messages li.day", { hasText: "Today" }).count(), 1);
  const labels = await bo.evaluate(async () => {
    const { dayLabel } = await import("./render.js");
    const now = new Date(2026, 10, 25, 9, 0);
    return [dayLabel(new Date(2026, 10, 25, 0, 1), now), dayLabel(new Date(2026, 10, 24, 23, 59), now), dayLabel(new Date(2026, 10, 20), now)];
  });
  assert.deepEqual(labels.slice(0, 2), ["Today", "Yesterday"]);
  assert.match(labels[2], /2026/);
});

scenario("links, line breaks, Shift+Enter, and own messages set apart", async () => {
  const ana = await user("Ana", "links");
  const bo = await user("Bo", "links", { locale: "en-US" }); // times of 8 characters: "03:12 AM"
  const hostile = "see https://example.com/a?b=1&c=<x>, javascript:alert(1) data:text/html,<b>x</b> <a href=//evil>e</a>";
  await ana.getByLabel("Message", { exact: true }).fill(hostile);
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  const got = bo.locator("#messages li.message", { hasText: "javascript:alert(1)" });
  await got.waitFor();
  assert.equal(await got.locator(".text").textContent(), hostile);
  const links = await got.locator("a").evaluateAll((as) => as.map((a) => [a.href, a.rel, a.target, a.textContent]));
  assert.deepEqual(links, [["https://example.com/a?b=1&c=", "noopener noreferrer", "_blank", "https://example.com/a?b=1&c="]]);
  assert.equal(await got.locator(".text").getAttribute("dir"), "auto");

  // A link's own parentheses stay in it; the sentence's do not.
  const parens = "read https://en.wikipedia.org/wiki/Chat_(disambiguation). (or https://example.com/b)";
  await ana.getByLabel("Message", { exact: true }).fill(parens);
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  const withParens = bo.locator("#messages li.message", { hasText: "disambiguation" });
  await withParens.waitFor();
  assert.deepEqual(await withParens.locator("a").evaluateAll((as) => as.map((a) => a.textContent)),
    ["https://en.wikipedia.org/wiki/Chat_(disambiguation)", "https://example.com/b"]);

  const box = ana.getByLabel("Message", { exact: true });
  await box.pressSequentially("line one");
  await box.press("Shift+Enter");
  await box.pressSequentially("line two");
  assert.equal(await ana.locator("#messages li.message", { hasText: "line one" }).count(), 0, "Shift+Enter sent the message");
  await box.press("Enter");
  const multi = bo.locator("#messages li.message", { hasText: "line two" });
  await multi.waitFor();
  assert.equal(await multi.locator(".text").textContent(), "line one\nline two");
  assert.ok((await multi.locator(".text").boundingBox()).height > 30, "the line break is shown");
  assert.equal(await multi.evaluate((li) => li.classList.contains("grouped")), true, "Ana's second message is not grouped under the first");
  assert.equal(await multi.locator(".name").isVisible(), false);

  // A follow-up's time shows on hover, beside it: others' and one's own.
  const ownMulti = ana.locator("#messages li.message.mine", { hasText: "line two" });
  for (const li of [multi, ownMulti]) {
    assert.equal(await li.evaluate((el) => el.classList.contains("grouped")), true);
    assert.equal(await li.locator("time").isVisible(), false, "a follow-up's time shown without hover");
    await li.hover();
    await li.locator("time").waitFor({ state: "visible", timeout: 2000 });
    const [t, m] = [await li.locator("time").boundingBox(), await li.boundingBox()];
    assert.ok(t.x >= 0 && t.y + t.height > m.y && t.y < m.y + m.height, `the time is beside its message: ${JSON.stringify([t, m])}`);
  }
  // Others' follow-up time fits the gutter whole ("03:12 AM" was cut to "03:12 A"), clear of the text.
  const gutter = multi.locator("time");
  assert.match(await gutter.textContent(), /^\d\d:\d\d [AP]M$/);
  assert.ok(await gutter.evaluate((el) => el.scrollWidth <= el.clientWidth), "the time is cut in the gutter");
  const [t, text] = [await gutter.boundingBox(), await multi.locator(".text").boundingBox()];
  assert.ok(t.x + t.width <= text.x, `the time runs into the text: ${JSON.stringify([t, text])}`);

  // A right-to-left override in a message reverses neither the rest of its
  // line nor its author: the server closes it at the line's end, and the
  // page isolates the name and the text.
  const rlo = "abc \u202Egnirts desrever def";
  await ana.getByLabel("Message", { exact: true }).fill(rlo);
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  const turned = bo.locator("#messages li.message", { hasText: "desrever" });
  await turned.waitFor();
  assert.equal(await turned.locator(".text").textContent(), rlo + "\u202C", "the override is closed where the line ends");
  for (const part of [".text", ".name"]) {
    const el = bo.locator("#messages li.message", { hasText: "javascript:alert(1)" }).locator(part);
    assert.equal(await el.evaluate((e) => getComputedStyle(e).unicodeBidi), "isolate", `${part} not isolated`);
  }
  assert.equal(await turned.locator(".text").evaluate((e) => getComputedStyle(e).unicodeBidi), "isolate");

  // Own messages are on the other side and marked, not only tinted.
  const mine = await ana.locator("#messages li.message.mine").first().evaluate((li) => getComputedStyle(li).alignSelf);
  const theirs = await bo.locator("#messages li.message").first().evaluate((li) => getComputedStyle(li).alignSelf);
  assert.equal(mine, "flex-end");
  assert.equal(theirs, "flex-start");
});

scenario("a hidden tab counts unread messages in its title; typing clears when the message comes", async () => {
  const ana = await user("Ana", "signals");
  const bo = await user("Bo", "signals");
  assert.equal(await ana.title(), "#signals – Chat");
  const setHidden = (page, hidden) => page.evaluate((h) => {
    Object.defineProperty(document, "hidden", { value: h, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
  await setHidden(ana, true);
  await bo.getByLabel("Message", { exact: true }).pressSequentially("one");
  await ana.locator("#typing", { hasText: "Bo is typing…" }).waitFor();
  await bo.getByLabel("Message", { exact: true }).press("Enter");
  await ana.locator("#messages li.message", { hasText: "one" }).waitFor();
  assert.equal(await ana.locator("#typing").textContent(), "", "typing still shown after Bo's message");
  await bo.getByLabel("Message", { exact: true }).fill("two");
  await bo.getByLabel("Message", { exact: true }).press("Enter");
  await ana.waitForFunction(() => document.title === "(2) #signals – Chat");
  assert.equal(await ana.locator("#messages li.unread + li.message .text").textContent(), "one");
  await setHidden(ana, false);
  await ana.waitForFunction(() => document.title === "#signals – Chat");
  const favicon = await ana.request.get(new URL("favicon.svg", stack.webURL).href);
  assert.equal(favicon.status(), 200);
  await ana.getByRole("button", { name: "Leave" }).click();
  assert.equal(await ana.title(), "Chat");
});

scenario("switching rooms from the chat, and a link that returns to the room", async () => {
  const ana = await user("Ana", "first-room");
  await ana.getByLabel("Go to room").fill("second-room");
  await ana.getByRole("button", { name: "Go", exact: true }).click();
  await online(ana);
  assert.equal(await ana.locator("#room-title").textContent(), "#second-room");
  assert.match(ana.url(), /\?room=second-room$/);
  assert.deepEqual(await ana.locator("#recent-rooms option").evaluateAll((os) => os.map((o) => o.value)), ["second-room", "first-room"]);
  await ana.getByRole("button", { name: "Copy link" }).click();
  await ana.locator("#notice[role=status]", { hasText: "?room=second-room" }).waitFor(); // a confirmation, not an alert
  assert.equal(await ana.locator("#problem").textContent(), "");
  // A link to another room opens it straight away, with the saved name.
  await ana.goto(`${stack.webURL}?room=third-room`);
  await online(ana);
  assert.equal(await ana.locator("#room-title").textContent(), "#third-room");
  assert.equal(await ana.locator("#members li").first().textContent(), "Ana (you)");
  // Each room switched to is a step in the browser's history: Back returns to the room before.
  await ana.getByLabel("Go to room").fill("fourth-room");
  await ana.getByRole("button", { name: "Go", exact: true }).click();
  await ana.locator("#room-title", { hasText: "#fourth-room" }).waitFor();
  await ana.goBack();
  await ana.locator("#room-title", { hasText: "#third-room" }).waitFor();
  await online(ana);
  await ana.goForward();
  await ana.locator("#room-title", { hasText: "#fourth-room" }).waitFor();
  await online(ana);
  // A bad room name is flagged as it is typed, not only on Go.
  await ana.getByLabel("Go to room").fill("no spaces");
  await ana.locator("#switch-room-error", { hasText: "letters A–Z, digits" }).waitFor();
  assert.equal(await ana.getByLabel("Go to room").getAttribute("aria-invalid"), "true");
});

scenario("the room list counts what is new in other rooms; room names ignore case", async () => {
  const ana = await user("Ana", "Team-A");
  const bo = await user("Bo", "team-a"); // the same room
  await ana.locator("#members li", { hasText: "Bo" }).waitFor();
  await bo.locator("#members li", { hasText: "Ana" }).waitFor();
  const go = async (r) => {
    await ana.getByLabel("Go to room").fill(r);
    await ana.getByRole("button", { name: "Go", exact: true }).click();
    await ana.locator("#room-title", { hasText: `#${r}` }).waitFor();
    await online(ana);
  };
  await ana.getByLabel("Message", { exact: true }).fill("hi");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  await bo.locator("#messages li.message", { hasText: "hi" }).waitFor();
  await go("other-room");
  for (const text of ["one", "two"]) {
    await bo.getByLabel("Message", { exact: true }).fill(text);
    await bo.getByLabel("Message", { exact: true }).press("Enter");
  }
  await bo.getByLabel("Message", { exact: true }).pressSequentially("@An");
  await bo.getByRole("option", { name: "Ana" }).click(); // Ana is gone, but she wrote here
  await bo.getByLabel("Message", { exact: true }).pressSequentially("three");
  await bo.getByLabel("Message", { exact: true }).press("Enter");
  await bo.locator("#messages li.message:not(.pending)", { hasText: "three" }).waitFor();
  await bo.locator("#messages li.message.pending").waitFor({ state: "detached" });
  // A reaction is news, not a message: the count stays at the messages.
  const one = bo.locator("#messages li.message", { hasText: "one" });
  await one.getByRole("button", { name: /^Actions for the message of Bo/ }).click();
  await bo.getByRole("button", { name: "React with 👍" }).click();
  await one.locator(".reaction[aria-pressed=true]").waitFor();

  // A room opened asks at once how the other recent rooms stand.
  await go("third-room");
  const rooms = ana.getByRole("navigation", { name: "Rooms" });
  const teamA = rooms.getByRole("link", { name: /^#Team-A\s*3 new messages\s*@1\s*,\s*one mentions you$/ });
  await teamA.waitFor({ timeout: 10000 });
  assert.equal(await teamA.locator(".badge:not(.mention)").evaluate((b) => b.firstChild.textContent), "3", "the count shown");
  assert.equal(await teamA.locator(".badge.mention").evaluate((b) => b.firstChild.textContent), "@1", "the mentions of Ana, apart");
  assert.equal(await rooms.getByRole("link", { name: "#other-room" }).locator(".badge").count(), 0, "nothing was said there");
  assert.equal(await rooms.locator("[aria-current=page]").textContent(), "#third-room");
  await audit(ana, "room list with news");

  await teamA.click();
  await ana.locator("#room-title", { hasText: "#Team-A" }).waitFor();
  assert.match(ana.url(), /\?room=Team-A$/);
  await ana.locator("#messages li.message.mention", { hasText: "three" }).waitFor();
  // What was shown is seen: back in another room, Team-A has nothing new.
  await ana.goBack();
  await ana.locator("#room-title", { hasText: "#third-room" }).waitFor();
  await online(ana);
  await rooms.getByRole("link", { name: "#Team-A", exact: true }).waitFor();
  assert.equal(await rooms.locator(".badge").count(), 0);
  // One entry per room, whatever the case it was typed in, each where it was first put.
  await go("TEAM-A");
  assert.deepEqual(await rooms.getByRole("link").allTextContents(), ["#third-room", "#other-room", "#TEAM-A"]);
  await ana.locator("#messages li.message", { hasText: "three" }).waitFor();
  assert.deepEqual(await texts(ana), ["hi", "one", "two", "@Ana three"]);
});

scenario("what was typed and not sent comes back with its room, and goes out once", async () => {
  const ana = await user("Ana", "keep");
  const bo = await user("Bo", "keep");
  await ana.locator("#members li", { hasText: "Bo" }).waitFor();
  const composer = ana.getByLabel("Message", { exact: true });
  await ana.context().setOffline(true);
  await ana.locator("#state", { hasText: "Reconnecting…" }).waitFor();
  await composer.fill("sent while offline");
  await composer.press("Enter");
  await composer.fill("half-written");
  // Away to another room, and back: the message goes out, the draft is there.
  await ana.getByLabel("Go to room").fill("elsewhere");
  await ana.getByRole("button", { name: "Go", exact: true }).click();
  await ana.locator("#room-title", { hasText: "#elsewhere" }).waitFor();
  assert.equal(await composer.inputValue(), "");
  await ana.context().setOffline(false);
  await online(ana);
  await ana.goBack();
  await ana.locator("#room-title", { hasText: "#keep" }).waitFor();
  await ana.waitForFunction(() => document.getElementById("text").value === "half-written"); // once the room has answered
  await ana.locator("#messages li.message:not(.pending)", { hasText: "sent while offline" }).waitFor({ timeout: 15000 });
  await bo.locator("#messages li.message", { hasText: "sent while offline" }).waitFor();

  // A reload with a message whose ack was lost: it goes again with its
  // clientId, and is stored once.
  let lost = 0;
  await ana.routeWebSocket((url) => url.port === String(stack.gwPort), (ws) => {
    const server = ws.connectToServer();
    let clientId = "";
    ws.onMessage((m) => {
      const f = JSON.parse(m);
      if (f.text === "sent before a reload") clientId = f.clientId;
      server.send(m);
    });
    server.onMessage((m) => (fromServer(m).type === "ack" && fromServer(m).clientId === clientId && lost++ === 0) || ws.send(m));
  });
  await ana.reload();
  await online(ana);
  await composer.fill("sent before a reload");
  await composer.press("Enter");
  await bo.locator("#messages li.message", { hasText: "sent before a reload" }).waitFor();
  assert.equal(lost, 1, "its ack was lost");
  assert.equal(await ana.locator("#messages li.message.pending", { hasText: "sent before a reload" }).count(), 1);
  await ana.reload();
  await ana.locator("#messages li.message:not(.pending)", { hasText: "sent before a reload" }).waitFor({ timeout: 15000 });
  await ana.waitForTimeout(1000); // a second copy, if the page sent one under a new clientId, would be in by now
  for (const page of [ana, bo]) assert.deepEqual(await texts(page), ["sent while offline", "sent before a reload"]);
});

scenario("messages live: edit, react, reply with a mention, delete; seen by both, once, in place, after a reload too", async () => {
  const ana = await user("Ana", "living");
  await ana.locator("#members li", { hasText: "Ana" }).waitFor();
  const bo = await user("Bo", "living");
  await ana.locator("#members li", { hasText: "Bo" }).waitFor();
  const composer = (page) => page.getByLabel("Message", { exact: true });
  const message = (page, text) => page.locator("#messages li.message", { hasText: text });
  await composer(ana).fill("helo wrold");
  await composer(ana).press("Enter");
  await message(bo, "helo wrold").waitFor();
  await ana.locator("#messages li.message:not(.pending)", { hasText: "helo wrold" }).waitFor();

  // Up arrow in the empty composer edits the last message; Enter saves it.
  await composer(ana).press("ArrowUp");
  assert.equal(await composer(ana).inputValue(), "helo wrold");
  await ana.locator("#compose-what", { hasText: "Editing" }).waitFor();
  await composer(ana).fill("hello **world**");
  await composer(ana).press("Enter");
  for (const page of [ana, bo]) {
    await message(page, "hello world").locator(".edited").waitFor();
    assert.equal(await message(page, "helo wrold").count(), 0);
  }
  // Escape leaves an edit without changing anything.
  await composer(ana).press("ArrowUp");
  await composer(ana).press("Escape");
  assert.equal(await composer(ana).inputValue(), "");

  // Bo reacts from the message's actions; Ana adds hers with the button, and takes it back.
  await message(bo, "hello world").hover();
  await message(bo, "hello world").getByRole("button", { name: "Actions for the message of Ana" }).click();
  await bo.getByRole("button", { name: "React with 👍" }).click();
  const thumbs = (page) => message(page, "hello world").locator(".reaction[data-emoji='👍']");
  await thumbs(ana).filter({ hasText: "👍 1" }).waitFor();
  assert.equal(await thumbs(bo).getAttribute("aria-pressed"), "true");
  assert.equal(await thumbs(ana).getAttribute("aria-pressed"), "false");
  await thumbs(ana).click();
  await thumbs(bo).filter({ hasText: "👍 2" }).waitFor();
  await ana.locator("#messages .reaction[aria-pressed=true]", { hasText: "👍 2" }).waitFor();
  await thumbs(ana).click();
  await thumbs(bo).filter({ hasText: "👍 1" }).waitFor();

  // Bo replies, mentioning Ana through the suggestions.
  await message(bo, "hello world").getByRole("button", { name: "Actions for the message of Ana" }).click();
  await bo.locator("#message-menu").getByRole("button", { name: "Reply" }).click();
  await bo.locator("#compose-what", { hasText: "Replying to Ana: “hello world”" }).waitFor(); // the words, not the marks
  await composer(bo).pressSequentially("@An");
  await bo.getByRole("option", { name: "Ana" }).waitFor();
  await composer(bo).press("Enter"); // chooses the name, sends nothing
  assert.equal(await composer(bo).inputValue(), "@Ana ");
  await composer(bo).pressSequentially("it works");
  await composer(bo).press("Enter");
  const reply = message(ana, "@Ana it works");
  await reply.waitFor();
  assert.match(await reply.getAttribute("class"), /\bmention\b/, "a mention of Ana is highlighted for her");
  assert.equal(await reply.locator(".quote").innerText(), "Ana hello world"); // not **world**
  await audit(ana, "a reply with a mention, reactions");
  // A mention typed whole, not chosen, names her too (in the frame Bo's
  // page sends); an address does not.
  const anaId = await ana.locator("#my-id").textContent();
  await bo.evaluate(() => {
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
      (window.sentFrames ||= []).push(JSON.parse(data));
      return send.call(this, data);
    };
  });
  for (const [text, mentions] of [["mail bo@ana.example", false], ["typed, @ana: not chosen", true]]) {
    await composer(bo).fill(text);
    await composer(bo).press("Enter");
    const typed = message(ana, text);
    await typed.waitFor();
    const sent = await bo.evaluate((t) => window.sentFrames.find((f) => f.text === t), text);
    assert.deepEqual(sent.mentions || [], mentions ? [anaId] : [], `${text}: the mentions Bo's page sent`);
    assert.equal(/\bmention\b/.test(await typed.getAttribute("class")), mentions, `${text}: a mention of Ana ${mentions ? "not " : ""}highlighted`);
  }
  await reply.locator(".quote").click(); // goes to the message it answers
  await ana.waitForFunction(() => document.activeElement?.matches("li.message") && document.activeElement.querySelector(".text")?.textContent === "hello world");

  // Ana deletes hers, after confirming; everyone sees it gone, in place, and the reply's quote says so.
  await message(ana, "hello world").getByRole("button", { name: "Actions for the message of Ana" }).click();
  await ana.locator("#message-menu").getByRole("button", { name: "Delete", exact: true }).click();
  await audit(ana, "delete, asked to confirm");
  await ana.locator("#message-menu .confirm").getByRole("button", { name: "Yes, delete it" }).click();
  for (const page of [ana, bo]) {
    await page.locator("#messages li.message.deleted", { hasText: "Message deleted" }).waitFor();
    await page.locator("#messages .quote", { hasText: "message deleted" }).waitFor();
    assert.equal(await page.locator("#messages", { hasText: "hello world" }).count(), 0, "the text is gone everywhere");
  }
  // After a reload, and for someone who comes later: the same, once, in order.
  await bo.reload();
  const cy = await user("Cy", "living");
  for (const page of [bo, cy]) {
    await page.locator("#messages li.message.deleted", { hasText: "Message deleted" }).waitFor();
    assert.deepEqual(await texts(page), ["Message deleted", "@Ana it works", "mail bo@ana.example", "typed, @ana: not chosen"]);
    assert.equal(await page.locator("#messages .reaction").count(), 0);
    assert.equal(await page.locator("#messages .quote").innerText(), "Ana message deleted");
  }
});

scenario("changes made while a page is offline reach it in place, once; a reply's quote fetches its original; reacting by keyboard; a mention counted in the title", async () => {
  const ana = await user("Ana", "catchup");
  const bo = await user("Bo", "catchup");
  const composer = (page) => page.getByLabel("Message", { exact: true });
  const message = (page, text) => page.locator("#messages li.message", { hasText: text });
  const say = async (page, text) => {
    await composer(page).fill(text);
    await composer(page).press("Enter");
    await page.locator("#messages li.message:not(.pending)", { hasText: text }).waitFor();
  };
  await say(bo, "the original, typo'd");
  await say(ana, "Ana's to be reacted to");
  await say(bo, "Bo's to be deleted");
  await message(ana, "Bo's to be deleted").waitFor();

  // Ana reacts by keyboard alone: the actions button, Enter, Tab to ❤️, Enter.
  const actions = message(ana, "the original").getByRole("button", { name: /^Actions for the message of Bo/ });
  await actions.focus();
  await ana.keyboard.press("Enter");
  await ana.keyboard.press("Tab");
  assert.equal(await ana.evaluate(() => document.activeElement.getAttribute("aria-label")), "React with ❤️");
  await ana.keyboard.press("Enter");
  await message(bo, "the original").locator(".reaction[data-emoji='❤️']", { hasText: "1" }).waitFor();
  await bo.locator("#notice", { hasText: "Ana reacted ❤️ to your message." }).waitFor(); // told, as it happens

  // Ana goes offline; Bo edits, reacts and deletes meanwhile.
  await ana.context().setOffline(true);
  await ana.locator("#state", { hasText: "Reconnecting…" }).waitFor({ timeout: 5000 });
  await message(bo, "the original").getByRole("button", { name: /^Actions/ }).click();
  await bo.locator("#message-menu").getByRole("button", { name: "Edit" }).click();
  await composer(bo).fill("the original, fixed");
  await composer(bo).press("Enter");
  await message(bo, "the original, fixed").locator(".edited").waitFor();
  await message(bo, "Ana's to be reacted to").getByRole("button", { name: /^Actions/ }).click();
  await bo.getByRole("button", { name: "React with 🎉" }).click();
  await message(bo, "Ana's to be reacted to").locator(".reaction[data-emoji='🎉']").waitFor();
  await message(bo, "Bo's to be deleted").getByRole("button", { name: /^Actions/ }).click();
  await bo.locator("#message-menu").getByRole("button", { name: "Delete", exact: true }).click();
  await bo.locator("#message-menu .confirm").getByRole("button", { name: "Yes, delete it" }).click();
  await bo.locator("#messages li.message.deleted").waitFor();

  await ana.context().setOffline(false);
  await online(ana);
  await message(ana, "the original, fixed").locator(".edited").waitFor({ timeout: 15000 });
  await message(ana, "Ana's to be reacted to").locator(".reaction[data-emoji='🎉']", { hasText: "1" }).waitFor();
  await ana.locator("#messages li.message.deleted", { hasText: "Message deleted" }).waitFor();
  assert.deepEqual(await texts(ana), ["the original, fixed", "Ana's to be reacted to", "Message deleted"], "each once, in place");
  assert.equal(await message(ana, "the original, fixed").locator(".reaction[data-emoji='❤️'][aria-pressed=true]").count(), 1, "her own reaction kept");

  // Bo replies to the original, mentioning Ana, after more than a page of
  // messages: someone who comes later holds the reply, not the original,
  // and its quote fetches older history to reach it.
  for (let i = 1; i <= 52; i++) {
    await composer(bo).fill(`filler ${i}`);
    await composer(bo).press("Enter");
  }
  await bo.locator("#messages li.message:not(.pending)", { hasText: "filler 52" }).waitFor({ timeout: 60000 });
  const setHidden = (page, hidden) => page.evaluate((h) => {
    Object.defineProperty(document, "hidden", { value: h, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
  await setHidden(ana, true);
  await message(bo, "the original, fixed").scrollIntoViewIfNeeded();
  await bo.waitForTimeout(300); // a scroll closes the menu: done before it opens
  await message(bo, "the original, fixed").getByRole("button", { name: /^Actions/ }).click();
  await bo.locator("#message-menu").getByRole("button", { name: "Reply" }).click();
  await composer(bo).pressSequentially("@An");
  await bo.getByRole("option", { name: "Ana" }).waitFor();
  await composer(bo).press("Enter");
  await composer(bo).pressSequentially("see above");
  await composer(bo).press("Enter");
  await message(ana, "see above").waitFor();
  assert.match(await ana.title(), /^\(\d+ · @1\) #catchup/, "a mention counted apart in the title");
  assert.equal(await message(ana, "see above").locator(".visually-hidden").textContent(), "Mentions you: ");
  await setHidden(ana, false);

  const cy = await user("Cy", "catchup");
  const replyCy = message(cy, "see above");
  await replyCy.waitFor();
  assert.equal((await texts(cy)).includes("the original, fixed"), false, "the original is older than the first page");
  await replyCy.locator(".quote").click();
  await cy.waitForFunction(() => document.activeElement?.matches("li.message") && document.activeElement.querySelector(".text")?.textContent === "the original, fixed", null, { timeout: 15000 });
  assert.deepEqual(cy.errors, []);
  assert.deepEqual(ana.errors, []);
});

scenario("message actions stay in reach and in their room: the menu on screen, tabbed out of, gone with a deleted message; a draft set aside by an edit; changes watched are not news", async () => {
  const ana = await newPage({ viewport: { width: 375, height: 740 } });
  await ana.goto(`${stack.webURL}?room=keep-y`);
  await ana.getByLabel("Your name").fill("Ana");
  await ana.getByRole("button", { name: "Join" }).click();
  await online(ana);
  await ana.goto(`${stack.webURL}?room=keep-x`);
  await online(ana);
  const bo = await user("Bo", "keep-x");
  const composer = ana.getByLabel("Message", { exact: true });
  await bo.getByLabel("Message", { exact: true }).fill("ok");
  await bo.getByLabel("Message", { exact: true }).press("Enter");
  const ok = ana.locator("#messages li.message", { hasText: "ok" });
  await ok.waitFor();
  // The menu of the last, short message of someone else, on a phone: all on screen.
  await ok.getByRole("button", { name: /^Actions for the message of Bo/ }).click();
  const menu = await ana.locator("#message-menu").boundingBox();
  assert.ok(menu.x >= 0 && menu.x + menu.width <= 375 && menu.y >= 0 && menu.y + menu.height <= 740, `menu at ${JSON.stringify(menu)}`);
  await ana.getByRole("button", { name: "React with 👍" }).click();
  await ok.locator(".reaction[aria-pressed=true]").waitFor();
  // Tabbing out of the menu closes it.
  await ok.getByRole("button", { name: /^Actions for the message of Bo/ }).click();
  for (let i = 0; i < 12; i++) await ana.keyboard.press("Tab");
  await ana.locator("#message-menu").waitFor({ state: "hidden" });
  // An edit sets aside what was being written, and gives it back.
  await composer.fill("mine");
  await composer.press("Enter");
  await ana.locator("#messages li.message.mine:not(.pending)", { hasText: "mine" }).waitFor();
  await composer.fill("half a thought");
  await ana.locator("#messages li.message.mine", { hasText: "mine" }).getByRole("button", { name: /^Actions/ }).click();
  await ana.locator("#message-menu").getByRole("button", { name: "Edit" }).click();
  assert.equal(await composer.inputValue(), "mine");
  await composer.press("Escape");
  assert.equal(await composer.inputValue(), "half a thought");
  // Deleted: no actions left on it.
  await ana.locator("#messages li.message.mine", { hasText: "mine" }).getByRole("button", { name: /^Actions/ }).click();
  await ana.locator("#message-menu").getByRole("button", { name: "Delete", exact: true }).click();
  await ana.locator("#message-menu").getByRole("button", { name: "Yes, delete it" }).click();
  const deleted = ana.locator("#messages li.message.deleted");
  await deleted.waitFor();
  assert.equal(await deleted.locator("button.actions").count(), 0);
  // Bo reacts while Ana watches: in another room, keep-x has nothing new for her.
  await bo.locator("#messages li.message", { hasText: "ok" }).locator(".reaction").first().waitFor();
  await bo.locator("#messages li.message", { hasText: "ok" }).locator(".reaction").first().click(); // his own 👍 with Ana's
  await ok.locator(".reaction", { hasText: "👍 2" }).waitFor();
  await ana.goto(`${stack.webURL}?room=keep-y`);
  await online(ana);
  await ana.getByRole("button", { name: /^Menu/ }).click();
  await ana.locator("#menu-room-list a", { hasText: "#keep-x" }).waitFor();
  await ana.waitForTimeout(1500); // the rooms frame's answer (asked on the first sync)
  assert.equal(await ana.locator("#menu-room-list .badge").count(), 0, "changes watched are not news");
  // Bo's message 1 in keep-y, with his 👍: not pressed for Ana (hers was on keep-x's 1).
  const boY = await user("Bo", "keep-y");
  await boY.getByLabel("Message", { exact: true }).fill("y1");
  await boY.getByLabel("Message", { exact: true }).press("Enter");
  const y1 = boY.locator("#messages li.message", { hasText: "y1" });
  await y1.getByRole("button", { name: /^Actions/ }).click();
  await boY.getByRole("button", { name: "React with 👍" }).click();
  const y1Ana = ana.locator("#messages li.message", { hasText: "y1" });
  await y1Ana.locator(".reaction", { hasText: "👍 1" }).waitFor();
  assert.equal(await y1Ana.locator(".reaction").getAttribute("aria-pressed"), "false");
});

scenario("a guest sees their own name and renames, staying the same person", async () => {
  const ana = await user("Ana", "rename");
  const bo = await user("Bo", "rename");
  await ana.getByLabel("Message", { exact: true }).fill("before the new name");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  await bo.locator("#messages li.message", { hasText: "before the new name" }).waitFor();
  await ana.locator("#me-name", { hasText: "Ana" }).waitFor();
  await ana.locator("#me-menu summary").click();
  await ana.waitForFunction(() => document.getElementById("new-name").value === "Ana"); // filled in as it opens
  await ana.getByLabel("New name").fill("\u0301\u0301");
  await ana.locator("#rename-error", { hasText: "combining marks" }).waitFor();
  await ana.getByLabel("New name").fill("Ana Lima");
  await ana.getByRole("button", { name: "Rename" }).click();
  await ana.locator("#me-name", { hasText: "Ana Lima" }).waitFor();
  await online(ana);
  await bo.locator("#members li", { hasText: "Ana Lima" }).waitFor();
  await ana.getByLabel("Message", { exact: true }).fill("after the new name");
  await ana.getByLabel("Message", { exact: true }).press("Enter");
  const after = bo.locator("#messages li.message", { hasText: "after the new name" });
  await after.waitFor();
  assert.equal(await after.locator(".name").textContent(), "Ana Lima");
  const userIds = await bo.locator("#messages li.message").evaluateAll((lis) => [...new Set(lis.map((li) => li.dataset.userId))]);
  assert.equal(userIds.length, 1, "the renamed guest became someone else");
  // Bo is told of the rename in one notice, not a leave and a join; Ana
  // is not told she left.
  await bo.locator("#messages li.notice", { hasText: "Ana is now Ana Lima" }).waitFor();
  for (const page of [ana, bo]) assert.equal(await page.locator("#messages li.notice", { hasText: /Ana left|Ana Lima joined/ }).count(), 0);
  // A reload is no news: Bo's leave and join leave no notice with Ana.
  // (When Bo's new connection comes before his old one goes, the server
  // tells nothing; when after, a leave and a join, which Ana's page hides.)
  const joins = await ana.locator("#messages li.notice").count();
  await bo.reload();
  await online(bo);
  await bo.getByLabel("Message", { exact: true }).fill("back after a reload");
  await bo.getByLabel("Message", { exact: true }).press("Enter");
  await ana.locator("#messages li.message", { hasText: "back after a reload" }).waitFor();
  await ana.locator("#members li", { hasText: "Bo" }).waitFor();
  await ana.waitForTimeout(500); // a join behind the message
  assert.equal(await ana.locator("#messages li.notice").count(), joins, (await ana.locator("#messages li.notice").allTextContents()).join(" | "));
  assert.deepEqual([...ana.errors, ...bo.errors], []);
});

scenario("a bad room name from a link is flagged on arrival", async () => {
  const page = await newPage();
  await page.goto(`${stack.webURL}?room=${encodeURIComponent("bad room!")}`);
  await page.locator("#join-error", { hasText: "letters A–Z, digits" }).waitFor();
  assert.equal(await page.locator("#room").getAttribute("aria-invalid"), "true");
  assert.equal(await page.locator("#room-hint").innerText(), "Letters, digits, _ and -.", "a guest's hint speaks of signing in");
});

scenario("offline, members and typing are shown as stale, and Reconnect now is offered", async () => {
  const ana = await user("Ana", "stale");
  await stack.stop();
  await ana.locator("#state", { hasText: "Reconnecting…" }).waitFor();
  assert.equal(await ana.locator("#chat.stale").count(), 1);
  const reconnect = ana.getByRole("button", { name: "Reconnect now" });
  await reconnect.waitFor();
  await stack.start();
  await reconnect.click();
  await online(ana);
  assert.equal(await ana.locator("#chat.stale").count(), 0);
  assert.equal(await reconnect.isHidden(), true);
});

scenario("at 320 px nothing is clipped and members are reachable", async () => {
  const ana = await user("Ana", "narrow");
  await user("Bo", "narrow");
  await ana.setViewportSize({ width: 320, height: 640 });
  await ana.locator("#members li", { hasText: "Bo" }).waitFor();
  const width = await ana.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 320, `the page is ${width}px wide at 320px`);
  const header = await ana.locator("#chat header").boundingBox();
  assert.ok(header.height < 60, `the header is ${header.height}px high: more than one row`);
  await ana.getByRole("button", { name: "Menu" }).click(); // the room's actions
  for (const name of ["Leave", "Send"]) {
    const b = await ana.getByRole("button", { name }).boundingBox();
    assert.ok(b.x >= 0 && b.x + b.width <= 320, `${name} is clipped: ${JSON.stringify(b)}`);
  }
  assert.equal(await ana.locator("#members li", { hasText: "Bo" }).isVisible(), true);
});

scenario("no serious accessibility problems, light and dark, narrow and wide, menus open", async () => {
  for (const colorScheme of ["light", "dark"]) {
    for (const width of [320, 1200]) {
      const page = await newPage({ colorScheme, viewport: { width, height: 800 } });
      await page.goto(`${stack.webURL}?room=a11y`);
      await audit(page, `join form, ${colorScheme}, ${width}px`);
      await page.getByLabel("Your name").fill("Ana");
      await page.getByRole("button", { name: "Join" }).click();
      await online(page);
      await page.getByLabel("Message", { exact: true }).fill("hello https://example.com");
      await page.getByLabel("Message", { exact: true }).press("Enter");
      await page.locator("#messages li.message:not(.pending)").first().waitFor();
      await audit(page, `chat, ${colorScheme}, ${width}px`);
      // The menus open: on a phone the room's actions behind Menu, and the Alerts and You menus.
      if (width < 600) await page.getByRole("button", { name: "Menu" }).click();
      await page.locator("#alerts summary").click();
      await page.getByLabel("Desktop notifications").waitFor();
      await audit(page, `Alerts open, ${colorScheme}, ${width}px`);
      // Its settings on screen, each box beside its words.
      const panel = await page.locator("#alerts .alerts-menu").boundingBox();
      assert.ok(panel.x >= 0 && panel.x + panel.width <= width, `${width}px: the Alerts panel at ${JSON.stringify(panel)}`);
      for (const name of ["Desktop notifications", "Sound", "Mute this room"]) {
        const [box, words] = [await page.getByLabel(name).boundingBox(), await page.locator("#alerts label", { hasText: name }).boundingBox()];
        assert.ok(box.y + box.height > words.y && box.y < words.y + words.height && box.x - words.x <= 6 && box.width < 30, `${width}px: ${name}'s box ${JSON.stringify(box)} is not beside its words ${JSON.stringify(words)}`);
      }
      await page.keyboard.press("Escape"); // closes it, back on its button
      assert.equal(await page.locator("#alerts[open]").count(), 0);
      assert.equal(await page.evaluate(() => document.activeElement.closest("details")?.id), "alerts");
      await page.locator("#me-menu summary").click();
      await page.getByLabel("New name").waitFor();
      await audit(page, `You open, ${colorScheme}, ${width}px`);
      await page.keyboard.press("Escape");
      await page.getByLabel("New name").waitFor({ state: "hidden" });
    }
  }
});
