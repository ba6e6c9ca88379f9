// The page: the join form, then the chat. All user text reaches the DOM
// through textContent or DOM nodes (render.js), never as HTML.

import config from "./config.js";
import { ChatClient, newKey } from "./client.js";
import { SignIn } from "./signin.js";
import { actionsButton, composerDraft, composing, endCompose, mentionsIn, noteMyReaction, typedMentions, reactedByMe, resetActions, resumeReply, setEditWindow, setupActions } from "./actions.js";
import { messageItem, plainText, quoteButton, relayout, setEdited, setQuote, setReactions, setText, setTime, whenText } from "./render.js";
import { forgetKept, keep, takeKept } from "./kept.js";
import { forgetRoom, noteSeen, recentRooms, rememberRoom, renderRooms, roomKey, seenSeq } from "./rooms.js";
import { authorActions, describeAccess, dmOf, dmRoom, forgetAccess, forgetMine, isDM, isPrivate, moderate, moderates, myRooms, noteDM, noteMine, onAccess, onAudit, keepingMenu, onInviteLink, onJoined, onRole, onRoster, personMenu, rosterPeople, staffActions, renderRoster, resetAccess, roomLabel, setupAccess } from "./access.js";
import { DEFAULT_ROOM, MAX_TEXT_CHARS, length, nameError, roomError } from "./rules.js";

const $ = (id) => document.getElementById(id);
const TYPING_SHOWN_MS = 4000;
const COUNTER_FROM = Math.floor(MAX_TEXT_CHARS * 0.9);
const OLDER_PAGE_WHEN = 80; // px from the top of the list: fetch older history
// A message unacknowledged this long is shown as not sent, with Retry and
// Delete (the client keeps trying meanwhile: an ack still turns it sent).
const SEND_TIMEOUT_MS = 20000;
const ROOMS_EVERY_MS = 60000; // how often the other rooms' latest seqs are asked for, while the page is visible
const STATE_TEXT = { connecting: "Connecting…", online: "Online", reconnecting: "Reconnecting…", closed: "Offline" };
const PROBLEM_TEXT = {
  bad_json: "The page sent something the server could not read.",
  unknown_action: "The page asked the server for something it does not do.",
  invalid_message: "The server did not accept that:",
  too_long: "That is too long:",
  internal: "The server had a problem; your messages will be sent again in a moment.",
  reconnecting: "The connection was reset; your messages will be sent again, in order.",
  stalled: "The connection went silent; reconnecting. Your messages will be sent again, in order.",
  offline: "Your device is offline; the chat reconnects when the network is back.",
  rate_limited: "You are sending faster than the room allows; your messages will go out in a moment, in order.",
  signed_out: "Your sign-in has ended. Sign in again to go on.",
  outdated: "The chat has been updated: reload the page to see everyone who is here.",
  gone: "That message is no longer there (deleted, or expired).",
  not_allowed: "Not allowed:",
  too_late: "That message can no longer be edited.",
  private: "You cannot open this private room: you are not one of its members (you were never added, were removed or banned, or your invite link has expired or is not for it; or there is no such room). Ask its owner to add you.",
  private_guest: "Private rooms (names starting with ~) are for signed-in users.",
  refused_public: "This room does not let you in: you may be banned from it (or the chat cannot be reached). Trying again now and then.",
};

let client = null;
let room = "";
let storedRoom = ""; // the room as the server names it (a sync says), "" until known
let me = { userId: "", name: "" };
const members = new Map(); // userId → name, online users
// Who wrote the messages shown, by name: a name two people have used here
// is marked on every message, not only while both are online.
const authors = new Map(); // name → Set of userIds
setupActions({
  client: () => client,
  me: () => me,
  // Whom @ suggests: a private room's members, the members online and the
  // authors of the messages shown, each with the label that tells
  // same-named people apart.
  people: () => {
    const all = new Map([...rosterPeople(), ...[...authors].flatMap(([name, ids]) => [...ids].map((id) => [id, name]))]);
    for (const [id, name] of members) all.set(id, name);
    return [...all].map(([userId, name]) => ({ userId, name, label: label(userId, name) }));
  },
  jumpTo: (seq) => jumpTo(seq),
  moderates,
  authorActions,
  moderate,
});
setupAccess({
  client: () => client,
  me: () => me,
  signedIn: () => !!signin,
  // Online, an author of a message shown, or the other person of direct
  // messages (named when they were opened) before they first come.
  name: (userId) => members.get(userId) || [...authors].find(([, ids]) => ids.has(userId))?.[0] || (dmOf(room)?.peer === userId ? dmOf(room).name : ""),
  openDM,
  notice: (text) => showNotice(text),
  noticeAt: (e) => accessNotice(e),
  namesKnown: () => renameNotices(),
  room: () => room,
  removed: (text) => {
    client?.stop();
    refused(text);
  },
});
// A mark of 12 characters of the userId (60 bits) tells same-named people
// apart: not found by trying keys until an id starts the same, as 4 (20
// bits) were.
const MARK_CHARS = 12;
// A large room shows a count; its members are listed only when asked for,
// a page at a time (membersCursor: where the next page starts).
let large = false;
let membersCursor = "";
const typers = new Map(); // userId → {name, timer}
// Someone who leaves and is back within RETURN_WITHIN_MS reloaded or
// renamed themselves: a reload leaves no notice, a rename one ("Ana is
// now Ana Lima") in place of the leave.
const RETURN_WITHIN_MS = 30000;
const recentLeaves = new Map(); // userId → {li, name, at}: leave notices of the last RETURN_WITHIN_MS
let cameFrom = ""; // the room before this one, for a way back if this one refuses
let hasOlder = false; // whether history older than the first message shown exists
let unread = 0; // messages that arrived while the tab was hidden
let unreadMentions = 0; // of them, those that mention the user
// The newest state of messages not shown when a change of theirs came: a
// change can overtake its message on the way (both are broadcast as they
// are stored), and the message, when it comes, shows this state if newer.
// Bounded: a change of a message older than the page's history is shown
// with it when that history is fetched.
const earlyStates = new Map(); // seq → state
const EARLY_STATES = 100;
let replaying = false; // the messages being added are a sync's: history, not news
let inQuiet = false; // a quiet batch of insertions is being made (quietly)

// --- Joining, rejoining and switching rooms ---

// With sign-in (config.auth), the name comes from the account: the form
// asks only for the room and signs in first.
const signin = config.auth ? new SignIn(config.auth) : null;
if (signin) {
  $("name-field").hidden = true;
  $("join-submit").textContent = "Sign in and join";
  document.querySelector("#join .lead").textContent = "A real-time chat in your own AWS account: sign in, pick a room, and share the room's link.";
  $("new-room").hidden = false; // rooms are made, and owned, by accounts
}

const params = new URLSearchParams(location.search);

/**
 * The invite link's token for room r, when the page was opened with one
 * for it: given once, then dropped (it is the user's to share, not the
 * page's to keep; the membership it brings stays).
 */
function inviteFor(r) {
  const token = linkToken(r);
  params.delete("invite"); // join() writes the address without it
  return token;
}

/** The invite link's token the page was opened with, if it is for room r. */
const linkToken = (r) => (params.get("room") === r ? params.get("invite") || "" : "");
$("name").value = localStorage.getItem("chat.name") || "";
/** The room a link names, else the last one joined. */
const savedRoom = () => params.get("room") || localStorage.getItem("chat.room") || DEFAULT_ROOM;
$("room").value = savedRoom();

/**
 * Flags fields as they are typed (and as a link filled them): each field's
 * rule sets its aria-invalid, and the first problem is said in out.
 */
function checkAsTyped(fields, out) {
  const check = () => {
    let first = "";
    for (const [input, rule] of fields) {
      const problem = rule(input.value.trim());
      input.setAttribute("aria-invalid", problem ? "true" : "false");
      first ||= problem;
    }
    out.textContent = first;
  };
  for (const [input] of fields) input.addEventListener("input", check);
  check();
}
checkAsTyped([[$("name"), nameError], [$("room"), roomError]], $("join-error"));
checkAsTyped([[$("switch-room"), roomError]], $("switch-room-error"));

$("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = signin ? "" : $("name").value.trim();
  const r = $("room").value.trim() || DEFAULT_ROOM;
  const problem = nameError(name) || roomError(r);
  $("join-error").textContent = problem;
  if (problem) return;
  if (signin) {
    if (signin.signedIn) join("", r);
    else signin.begin(r, linkToken(r)).catch((err) => ($("join-error").textContent = err.message));
    return;
  }
  localStorage.setItem("chat.name", name);
  join(name, r);
});

/** This browser's guest key: made once, kept, so that every tab and visit is the same user. */
function guestKey() {
  let key = localStorage.getItem("chat.key");
  if (!key) {
    key = newKey();
    localStorage.setItem("chat.key", key);
  }
  return key;
}

/** The landing's list of the rooms this browser was in lately, as links. */
function renderRecent() {
  const rooms = recentRooms();
  $("recent").hidden = rooms.length === 0;
  $("recent-list").replaceChildren(...rooms.map((r) => {
    const a = document.createElement("a");
    a.href = `?room=${encodeURIComponent(r)}`;
    a.textContent = `#${r}`;
    const li = document.createElement("li");
    li.append(a);
    return li;
  }));
}
renderRecent();

/**
 * Opens room r as name. how: "replace" the page's history entry (a first
 * join, a reload), "push" a new one (switching rooms: Back returns to the
 * room before), or "none" (Back or Forward brought us here).
 */
function join(name, r, how = "replace") {
  room = r;
  if (creating !== r) creating = ""; // asked to make another room, and left it
  localStorage.setItem("chat.room", r);
  localStorage.setItem("chat.joined", "1");
  const rooms = rememberRoom(r);
  forgetKept(rooms.map(roomKey)); // what was kept in rooms no longer among the recent ones
  $("recent-rooms").replaceChildren(...rooms.map((x) => Object.assign(document.createElement("option"), { value: x })));
  showRooms();
  const url = `?room=${encodeURIComponent(r)}`;
  if (how === "push") history.pushState(null, "", url);
  else if (how === "replace") history.replaceState(null, "", url);
  $("join").hidden = true;
  $("chat").hidden = false;
  $("room-title").textContent = roomLabel(r);
  $("problem").replaceChildren(); // a refusal was the last room's
  $("text").disabled = false;
  resetAccess(isPrivate(r));
  unread = unreadMentions = 0;
  resetActions();
  updateTitle();
  $("messages").replaceChildren();
  $("older").hidden = true;
  hasOlder = false;
  me = { userId: "", name };
  authors.clear();
  earlyStates.clear();
  recentLeaves.clear();
  clearPeople();
  showAlertSettings();
  storedRoom = "";
  $("text").value = ""; // what was typed in the room before is kept for it (kept.js)
  textState();
  fitComposer();
  // A private room (~name) is made if there is none: its maker owns it;
  // direct messages, with the other account (dm) when this browser knows it.
  client = signin
    ? new ChatClient({ url: config.websocketUrl, room: r, token: () => signin.token(), create: creating === r, dm: isDM(r) ? dmOf(r)?.peer || "" : "", invite: inviteFor(r) })
    : new ChatClient({ url: config.websocketUrl, name, room: r, key: guestKey() });
  client.addEventListener("state", (e) => showState(e.detail.state));
  watchRefusal(client, isPrivate(r));
  client.addEventListener("ready", (e) => { // a room's roster is read again after every (re)connection
    madeRoom(e.detail.role);
    onRole(e.detail.role);
    renderMembers(); // a public room's staff act from it
  });
  client.addEventListener("sync", (e) => onSync(e.detail));
  client.addEventListener("older", (e) => onOlder(e.detail));
  client.addEventListener("members", (e) => onMembers(e.detail.members));
  client.addEventListener("online", (e) => onOnline(e.detail));
  client.addEventListener("membersPage", (e) => onMembersPage(e.detail));
  client.addEventListener("message", (e) => onMessage(e.detail));
  client.addEventListener("ack", (e) => onAck(e.detail));
  client.addEventListener("failed", (e) => onFailed(e.detail));
  client.addEventListener("presence", (e) => onPresence(e.detail));
  client.addEventListener("typing", (e) => onTyping(e.detail));
  client.addEventListener("rooms", (e) => onRooms(e.detail));
  client.addEventListener("access", (e) => onAccess(e.detail));
  client.addEventListener("roster", (e) => onRoster(e.detail));
  client.addEventListener("audit", (e) => onAudit(e.detail));
  client.addEventListener("invite-link", (e) => onInviteLink(e.detail));
  client.addEventListener("change", (e) => onChange(e.detail));
  client.addEventListener("problem", (e) => (e.detail.code === "signed_out" ? signedOut() : showProblem(e.detail)));
  client.start();
  if (!signin) restoreKept(""); // this browser's guest: at once, offline too
  $("text").focus();
}

/**
 * A room refuses a connection before it opens, and a browser does not
 * say why: a client that fails twice without ever being online there is
 * taken as refused. In a private room it stops; in a public one (a ban, or
 * the chat down) it says so and keeps trying, backing off.
 */
function watchRefusal(c, isPrivateRoom) {
  const timer = setInterval(() => {
    if (c !== client || c.state === "online" || c.stopped) return clearInterval(timer);
    if (c.attempt < 2) return; // two connections failed in a row, and none ever opened
    clearInterval(timer);
    if (!isPrivateRoom) { // a ban, or the chat down: the client keeps trying, backing off
      $("problem").textContent = PROBLEM_TEXT.refused_public;
      c.addEventListener("state", () => c.state === "online" && $("problem").textContent === PROBLEM_TEXT.refused_public && ($("problem").textContent = ""));
      return;
    }
    c.stop();
    refused(PROBLEM_TEXT[signin ? "private" : "private_guest"]);
  }, 500);
}

/**
 * The room will not have the user (refused, removed, banned): says why,
 * in words that stay, and nothing can be sent there any more; the room
 * list or the way back to the default room leads on.
 */
function refused(text) {
  $("problem").textContent = text; // stays: nothing will change it
  // Back to the room the user came from, if still listed, else the default.
  const previous = listedRooms().find((r) => roomKey(r) === roomKey(cameFrom)) || DEFAULT_ROOM;
  if (roomKey(previous) !== roomKey(room)) {
    const back = document.createElement("button");
    back.type = "button";
    back.className = "secondary";
    back.textContent = `Go to ${roomLabel(previous)}`;
    back.addEventListener("click", () => switchRoom(previous, "push"));
    $("problem").append(" ", back);
  }
  $("text").disabled = true;
  $("send").disabled = true;
  $("text").placeholder = "Nothing can be sent here.";
  forgetRoom(room); // not a room of theirs: off the room list
  forgetMine(room);
  showRooms();
  clearPeople(); // nobody is shown here any more, the user least of all
  resetAccess(false); // nor its roster
}

/** Shows nobody online or typing (a room left, or that will not have the user). */
function clearPeople() {
  typers.clear();
  showLarge(false); // and its member list
  $("online-count").textContent = "";
  renderTyping();
}

function leave() {
  keepUnsent();
  client?.stop();
  client = null;
  localStorage.removeItem("chat.joined");
  document.title = "Chat";
}

function showJoin() {
  renderRecent();
  $("chat").hidden = true;
  $("join").hidden = false;
  (signin ? $("room") : $("name")).focus();
}

$("leave").addEventListener("click", () => {
  leave();
  history.replaceState(null, "", location.pathname);
  showJoin();
});

/** The sign-in ended (its refresh failed): back to the form, which signs in again. */
function signedOut() {
  leave();
  showJoin();
  $("join-error").textContent = PROBLEM_TEXT.signed_out;
}

$("sign-out").hidden = !signin;

// On a phone the room's actions sit behind Menu, so that the header is one row.
$("menu-toggle").addEventListener("click", () => {
  const open = $("room-actions").classList.toggle("open");
  $("menu-toggle").setAttribute("aria-expanded", String(open));
});

function closeMenu() {
  $("room-actions").classList.remove("open");
  $("menu-toggle").setAttribute("aria-expanded", "false");
}

// The header's small menus behave as menus: one open at a time, closed by
// Escape or a click elsewhere.
const headerMenus = [$("alerts"), $("me-menu"), $("new-room")];
document.addEventListener("pointerdown", (e) => {
  for (const menu of headerMenus) if (menu.open && !menu.contains(e.target)) menu.open = false;
  if (!$("room-actions").contains(e.target) && !$("menu-toggle").contains(e.target)) closeMenu();
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && $("room-actions").classList.contains("open") && !headerMenus.some((m) => m.open)) {
    closeMenu();
    $("menu-toggle").focus();
  }
});
for (const menu of headerMenus) {
  menu.addEventListener("toggle", () => {
    if (menu.open) for (const other of headerMenus) if (other !== menu) other.open = false;
  });
  menu.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || !menu.open) return;
    e.stopPropagation(); // Escape closes this menu, not the phone's Menu around it
    menu.open = false;
    menu.querySelector("summary").focus();
  });
}

// A guest changes name by reconnecting with the new one: the same key, so
// the same person (userId) to everyone; messages already sent keep the name
// they were sent with. Signed in, the name is the account's.
$("rename-form").hidden = !!signin;
$("private-hint").hidden = !signin; // private rooms are for accounts
$("my-account").hidden = !signin;
$("copy-id").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(me.userId);
    showNotice("User id copied.");
  } catch {
    showNotice(`Your user id: ${me.userId}`);
  }
});
$("me-menu").addEventListener("toggle", () => {
  if (!$("me-menu").open || signin) return;
  $("new-name").value = me.name;
  $("new-name").focus();
});
checkAsTyped([[$("new-name"), nameError]], $("rename-error"));
$("rename-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("new-name").value.trim();
  const problem = nameError(name) || (name === "" ? "Choose a name." : "");
  $("rename-error").textContent = problem;
  if (problem || !client) return;
  $("me-menu").open = false;
  if (name === me.name) return;
  localStorage.setItem("chat.name", name);
  leave();
  join(name, room, "none");
});
$("sign-out").addEventListener("click", () => {
  leave();
  forgetKept(); // the next person to sign in here must not get these
  forgetAccess();
  showJoin();
  signin.signOut();
});

// A new room (signed in): a private one is ~ and the name; a public one
// is made the user's if nobody has used it yet (the server says so with
// the role it answers). Only this form makes rooms: a link or a typed
// name to a private room that is not there is refused as an outsider is,
// so that nobody learns from a link whether a room exists.
let creating = ""; // the room being made, until the server answers
$("new-room-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("new-room-name").value.trim().replace(/^~/, "");
  const r = document.querySelector("input[name=new-room-kind]:checked").value === "private" ? `~${name}` : name;
  const problem = name === "" ? "Name the room." : roomError(r);
  $("new-room-error").textContent = problem;
  if (problem) return;
  $("new-room-name").value = "";
  $("new-room").open = false;
  closeMenu();
  creating = r;
  leave(); // the room shown too: asked again, to create it
  join(me.name, r, "push");
});

/** A room the user asked to create: theirs, or, taken already, said so. */
function madeRoom(role) {
  if (creating !== room) return;
  creating = "";
  if (role !== "owner") showProblem({ code: "room", message: `#${room} is in use already (or you have made as many rooms as one account may): you are in it, but it is not yours.` });
}

$("room-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const r = $("switch-room").value.trim();
  const problem = roomError(r) || (r === "" ? "Name a room." : "");
  if (problem) {
    showProblem({ code: "room", message: problem });
    return;
  }
  $("switch-room").value = "";
  closeMenu();
  switchRoom(r, "push");
});

/** Goes to room r (how: as join's), unless it is the room shown. */
function switchRoom(r, how) {
  if (r === room) return;
  cameFrom = room;
  leave();
  join(me.name, r, how);
}

// Back and Forward move between the rooms visited.
window.addEventListener("popstate", () => {
  const r = new URLSearchParams(location.search).get("room");
  if (client && r && !roomError(r)) switchRoom(r, "none");
});

// --- The room list: recent rooms, with what was said there since ---

const roomLists = [$("room-list"), $("menu-room-list")];
const latestSeqs = new Map(); // room key → {seq, mentions}: the latest seq the server told, and the mentions above what was seen
let roomsAskedAt = 0;

/** The rooms listed: the recent ones, then the user's private rooms (signed in) not among them. */
function listedRooms() {
  const recent = recentRooms();
  return [...recent, ...myRooms().filter((r) => typeof r === "string" && !roomError(r) && !recent.some((x) => roomKey(x) === roomKey(r)))];
}

function showRooms() {
  const rooms = listedRooms();
  for (const nav of [$("rooms-nav"), $("menu-rooms")]) nav.hidden = rooms.length < 2;
  renderRooms(roomLists, rooms, room, latestSeqs, roomLabel);
  // On a phone the list is behind Menu: the button says when there is news there.
  const news = roomLists[1].querySelector(".badge") !== null;
  $("menu-toggle").classList.toggle("news", news);
  $("menu-toggle").setAttribute("aria-label", news ? "Menu, new messages in other rooms" : "Menu");
}

/** Asks for the other recent rooms' latest seqs, while the page is visible. */
function askRooms() {
  // At most the 20 a rooms frame takes; signed in, the current room at
  // least, so that the reply lists the user's private rooms.
  let others = listedRooms().filter((r) => roomKey(r) !== roomKey(room)).slice(0, 20);
  if (others.length === 0 && signin) others = [room];
  if (!client || document.hidden || others.length === 0) return;
  roomsAskedAt = Date.now();
  for (const r of others) roomsSeenAsked.set(roomKey(r), seenSeq(r));
  client.fetchRooms(others, others.map(seenSeq));
}
const roomsSeenAsked = new Map(); // room key → the seen mark the last rooms frame sent for it
setInterval(askRooms, ROOMS_EVERY_MS);

function onRooms({ rooms, mine }) {
  for (const { room: r, seq, mentions = 0, unread = 0, unreadMore = false } of rooms) {
    // The server counted the messages above the seen mark sent (0 is left out).
    const seen = roomsSeenAsked.get(roomKey(r));
    latestSeqs.set(roomKey(r), { seq, mentions, ...(seen !== undefined && seq > seen ? { seen, unread, unreadMore } : {}) });
  }
  if (signin && noteMine(mine)) setTimeout(askRooms, 0); // the new ones' latest seqs too
  showRooms();
  if (isDM(room)) $("room-title").textContent = roomLabel(room);
}

/** Opens the direct messages with account peer (called name), made on first use. */
async function openDM(peer, name) {
  const r = await dmRoom(me.userId, peer);
  noteDM(r, peer, name);
  closeMenu();
  switchRoom(r, "push");
}

/**
 * Notes what the current room holds as seen, when the page is visible:
 * every seq up to the client's contiguous mark (messages, and the edits,
 * deletes and reactions the page has applied), once for a batch.
 */
function seenNow() {
  if (seenNow.due) return;
  seenNow.due = true;
  queueMicrotask(() => {
    seenNow.due = false;
    if (!document.hidden && client?.last > 0) noteSeen(room, client.last);
  });
}

for (const list of roomLists) {
  list.addEventListener("click", (e) => {
    const a = e.target.closest("a[data-room]");
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey) return; // a new tab or window: the browser's
    e.preventDefault();
    closeMenu();
    switchRoom(a.dataset.room, "push");
  });
}

$("copy-link").addEventListener("click", async () => {
  const link = `${location.origin}${location.pathname}?room=${encodeURIComponent(room)}`;
  try {
    await navigator.clipboard.writeText(link);
    showNotice(`Link copied: ${link}`);
  } catch {
    showNotice(`Share this link: ${link}`);
  }
});

// Back from the sign-in page: into the room the user was joining. A
// reload, or a link to a room, returns straight to the chat with the saved
// name (or the account still signed in).
if (signin) {
  signin.complete().then(
    (done) => {
      const r = done?.room || savedRoom();
      if (done?.invite) {
        params.set("room", r);
        params.set("invite", done.invite);
      }
      if ((done || localStorage.getItem("chat.joined")) && signin.signedIn && !roomError(r)) join("", r);
    },
    (err) => ($("join-error").textContent = err.message),
  );
} else if (localStorage.getItem("chat.joined") && localStorage.getItem("chat.name") !== null) {
  const r = savedRoom();
  if (!roomError(r) && !nameError(localStorage.getItem("chat.name"))) join(localStorage.getItem("chat.name"), r);
}

// --- Connection state and problems ---

function showState(state) {
  $("state").textContent = STATE_TEXT[state] || state;
  $("state").dataset.state = state;
  $("reconnect").hidden = state !== "reconnecting";
  // Offline, who is here and who is typing are no longer known: shown as stale.
  $("chat").classList.toggle("stale", state !== "online");
  // The composer stays usable: what is sent now waits and goes when back.
  const told = STATE_TEXT[state] || state;
  $("text").placeholder = state === "online" ? "Write a message" : `${told}${told.endsWith("…") ? "" : "."} Messages wait and go when connected.`;
  if (state !== "online") {
    for (const t of typers.values()) clearTimeout(t.timer);
    typers.clear();
    renderTyping();
  }
}

$("reconnect").addEventListener("click", () => client?.retryNow());

/** A confirmation, not a problem: a polite status, in the page's ordinary colour. */
function showNotice(text) {
  flash($("notice"), text);
}

function showProblem(f) {
  const lead = PROBLEM_TEXT[f.code];
  const message = inWords(f);
  flash($("problem"), lead ? (lead.endsWith(":") ? `${lead} ${message}` : lead) : message);
}

/** An error frame's message, with a time in it said as the page says times. */
function inWords({ code, message, retryAfterMs }) {
  if (code === "muted" && retryAfterMs > 0) return `A moderator has muted you in this room until ${whenText(new Date(Date.now() + retryAfterMs))}.`;
  return message;
}

/** Shows text in el for 8 s (a newer text starts the 8 s again). */
function flash(el, text) {
  el.textContent = text;
  clearTimeout(el.flashTimer);
  el.flashTimer = setTimeout(() => (el.textContent = ""), 8000);
}

// --- Messages ---

/**
 * Runs a batch of insertions (a page of history) with the live region
 * quiet, so that a screen reader does not read fifty messages out one by
 * one; live messages are announced as they come.
 */
function quietly(insert) {
  const log = $("log");
  log.setAttribute("aria-live", "off");
  log.setAttribute("aria-busy", "true");
  inQuiet = true;
  try {
    insert();
  } finally {
    inQuiet = false;
  }
  // Live again only once the browser has taken the insertions into its
  // accessibility tree (a frame or two later), not in the same turn.
  requestAnimationFrame(() => requestAnimationFrame(aloud));
}

/**
 * Makes the message list live again. A live insertion made in a later task
 * than a quiet batch but before its frames came (a message sent right after
 * an ack) calls it first, or it would never be announced.
 */
function aloud() {
  $("log").removeAttribute("aria-busy");
  $("log").setAttribute("aria-live", "polite");
}

function onSync({ you, room: syncedRoom, first, more, editWindowMs }) {
  // The messages of a sync follow this event in the same task: history,
  // not news.
  quietly(() => {});
  replaying = true;
  queueMicrotask(() => (replaying = false));
  me = you;
  storedRoom = syncedRoom;
  setEditWindow(editWindowMs);
  $("me-name").textContent = you.name;
  $("my-id").textContent = you.userId;
  if (first) {
    restoreKept(you.userId); // a guest's came back with the room (join), but for a room the server names otherwise
    setOlder(more);
    queueMicrotask(askRooms); // once the client counts the connection ready
  }
  renderMembers();
  renderNames();
}

/** The room's count: a large room's as the server counts it; a listed room's, its member list's, which joins and leaves keep current. */
function onOnline({ online, large: isLarge }) {
  if (isLarge !== large) showLarge(isLarge);
  if (large) $("online-count").textContent = `${online} online`;
}

/** Switches the member list between the room's members and, for a large room, a count with a list on request. */
function showLarge(on) {
  large = on;
  membersCursor = "";
  $("show-members").hidden = !on;
  $("more-members").hidden = true;
  members.clear(); // a large room's page of members, or a list the sync for the room back at the size replaces
  renderMembers();
}

$("show-members").addEventListener("click", () => {
  members.clear();
  renderMembers();
  client?.fetchMembers();
});
$("more-members").addEventListener("click", () => client?.fetchMembers(membersCursor));

function onMembersPage({ members: page, next }) {
  if (!large) return;
  for (const m of page) members.set(m.userId, m.name);
  renderMembers();
  membersCursor = next;
  $("more-members").hidden = !next;
}

function onMembers(list) {
  if (large) return; // a large room's list comes a page at a time, when asked for
  members.clear();
  for (const m of list) members.set(m.userId, m.name);
  $("online-count").textContent = `${members.size} online`;
  renderMembers();
  renderNames();
  renderRoster();
  // "You added u-bo.": the name, once Bo is here.
  if ([...$("messages").querySelectorAll("li.notice")].some((li) => li.access && members.has(li.access.userId) && !li.access.name)) renameNotices();
}

/**
 * How a user is shown: their name, and when someone else online has the
 * same name, a short mark from their userId to tell them apart.
 */
function label(userId, name) {
  const twins = [...members].some(([id, n]) => n === name && id !== userId) ||
    [...(authors.get(name) || [])].some((id) => id !== userId);
  return !twins || !userId ? name : `${name} (${userId.slice(2, 2 + MARK_CHARS)})`;
}

/** Notes the author of a shown message; relabels when a name gains a second person. */
function noteAuthor(userId, name) {
  const ids = authors.get(name) || new Set();
  if (ids.has(userId)) return;
  ids.add(userId);
  authors.set(name, ids);
  if (ids.size === 2) queueMicrotask(renderNames);
}

/** Relabels shown messages, as names come to collide or stop colliding. */
function renderNames() {
  for (const li of $("messages").querySelectorAll("li.message[data-user-id]")) {
    li.querySelector(".name").textContent = label(li.dataset.userId, li.dataset.name);
    li.classList.toggle("mine", li.dataset.userId === me.userId);
  }
  renderTyping();
}

/** A stored message, in seq order, once. */
function storedItem(m) {
  noteAuthor(m.userId, m.name);
  const li = messageItem(label(m.userId, m.name), m.text, m.sentAt, m.userId, m.name);
  li.dataset.id = m.id;
  li.dataset.seq = m.seq;
  li.dataset.userId = m.userId;
  li.dataset.name = m.name;
  if (m.userId === me.userId) li.classList.add("mine");
  if (m.userId !== me.userId && mentionsMe(m)) {
    li.classList.add("mention");
    const cue = Object.assign(document.createElement("span"), { className: "visually-hidden mention-cue", textContent: "Mentions you: " });
    li.querySelector(".text").before(cue); // read before the text: the highlight is not seen by everyone
  }
  if (m.replyTo) li.querySelector(".text").before(quoteButton(m.replyTo));
  if (!m.deleted) li.append(actionsButton(li));
  applyState(li, m);
  const early = earlyStates.get(m.seq);
  if (early) {
    earlyStates.delete(m.seq);
    if ((early.version || 1) > (m.version || 1)) applyState(li, early);
  }
  return li;
}

/** Shows a message's state (its text or that it was deleted, an edit, its reactions) in its item. */
function applyState(li, m) {
  li.dataset.version = m.version || 1;
  li.dataset.text = m.deleted ? "" : m.text;
  if (m.deleted || li.querySelector(".text").childNodes.length === 0 || m.version > 1) setText(li, m.text, m.deleted, !!m.removedBy);
  setEdited(li, m.deleted ? "" : m.edited);
  setReactions(li, m.deleted ? [] : m.reactions, (emoji) => reactedByMe(li, emoji, m.reactions.find((r) => r.emoji === emoji)?.users));
  if (m.deleted) li.querySelectorAll("button.actions, .mention-cue").forEach((e) => e.remove()); // nothing left to do with it, or in it
}

/**
 * A change (edit, delete, reaction) of a message: its state replaces the
 * one shown if it is newer (a higher version), in the message and in the
 * quotes of replies to it.
 */
function onChange(c) {
  seenNow();
  if (c.type === "delete" && composing().replyTo?.seq === c.target) {
    endCompose(); // what was written stays, as a message of its own
    showNotice("The message you were replying to was deleted.");
  }
  if (c.type === "reaction" && c.userId === me.userId) noteMyReaction(c);
  const state = c.state;
  if (!state) return;
  // Others' changes are applied without a word (an edit reads "edited", a
  // deletion "Message deleted"), but a reaction to one's own message is
  // told, as it happens.
  if (c.live && c.type === "reaction" && !c.removed && c.userId !== me.userId && state.userId === me.userId) {
    showNotice(`${label(c.userId, c.name)} reacted ${c.emoji} to your message.`);
  }
  const li = $("messages").querySelector(`li.message[data-seq="${state.seq}"]`);
  if (!li) {
    if ((earlyStates.get(state.seq)?.version || 0) < (state.version || 1)) earlyStates.set(state.seq, state);
    if (earlyStates.size > EARLY_STATES) earlyStates.delete(earlyStates.keys().next().value);
    return;
  }
  if (Number(li.dataset.version) < (state.version || 1)) quietly(() => applyState(li, state));
  for (const q of $("messages").querySelectorAll(`button.quote[data-seq="${state.seq}"]`)) setQuote(q, state);
}

/** Goes to message seq (a reply's original), fetching older history for it if need be. */
function jumpTo(seq, pages = 0) {
  const li = $("messages").querySelector(`li.message[data-seq="${seq}"]`);
  if (li) {
    jumpTo.pending = null;
    li.scrollIntoView({ block: "center" });
    li.tabIndex = -1;
    li.focus({ preventScroll: true });
    li.classList.add("flash");
    setTimeout(() => li.classList.remove("flash"), 2000);
    return;
  }
  const first = $("messages").querySelector("li[data-seq]");
  if (!hasOlder || !first || seq > Number(first.dataset.seq) || pages >= 20) {
    jumpTo.pending = null;
    showNotice("That message is no longer here.");
    return;
  }
  jumpTo.pending = { seq, pages: pages + 1 }; // onOlder goes on
  loadOlder();
}

function insertBySeq(li) {
  const list = $("messages");
  const seq = Number(li.dataset.seq);
  let before = null;
  for (const other of list.querySelectorAll("li[data-seq]")) {
    if (Number(other.dataset.seq) > seq) {
      before = other;
      break;
    }
  }
  list.insertBefore(li, before || list.querySelector("li.pending"));
}

/** Adds a notice without a seq at the end of the list, before the user's pending messages. */
function insertLast(li) {
  $("messages").insertBefore(li, $("messages").querySelector("li.pending"));
}

function onMessage(m) {
  if ($("messages").querySelector(`li[data-seq="${m.seq}"]`)) return;
  stopTyping(m.userId);
  const li = storedItem(m);
  const unseen = document.hidden && m.userId !== me.userId;
  if (!replaying) alertOf(m);
  appendKeepingScroll(() => {
    insertBySeq(li);
    if (unseen) markUnread(li);
  });
  seenNow();
}

/** A page of older history, put above what is shown without moving what is read. */
function onOlder({ messages, more }) {
  const log = $("log");
  // The first message shown stays where it is on screen.
  const anchor = $("messages").querySelector("li[data-seq]");
  const offset = anchor ? anchor.getBoundingClientRect().top - log.getBoundingClientRect().top : 0;
  quietly(() => {
    for (const m of messages) {
      if (!$("messages").querySelector(`li[data-seq="${m.seq}"]`)) insertBySeq(storedItem(m));
    }
    relayout($("messages"));
    setOlder(more);
  });
  if (anchor) log.scrollTop += anchor.getBoundingClientRect().top - log.getBoundingClientRect().top - offset;
  $("older").disabled = false;
  if (jumpTo.pending) jumpTo(jumpTo.pending.seq, jumpTo.pending.pages);
}

function setOlder(more) {
  hasOlder = more;
  $("older").hidden = !more;
  $("messages").querySelector("li.start")?.remove();
  if (!more) {
    const li = document.createElement("li");
    li.className = "start";
    const peer = isDM(room) ? dmOf(room)?.name : "";
    li.textContent = !isDM(room) ? `This is the start of the conversation in #${room}.`
      : peer ? `This is the start of your direct messages with ${peer}.` : "This is the start of these direct messages.";
    const hint = document.createElement("span");
    hint.className = "empty-hint"; // shown while nothing follows
    hint.textContent = isDM(room) ? " Nothing here yet: only the two of you see what is said." : " Nothing here yet: say hello, everyone here will see it.";
    li.append(hint);
    $("messages").prepend(li);
  }
}

function loadOlder() {
  const first = $("messages").querySelector("li[data-seq]");
  if (!hasOlder || !client || !first) return;
  if (client.loadOlder(Number(first.dataset.seq))) $("older").disabled = true;
}

$("older").addEventListener("click", loadOlder);
$("log").addEventListener("scroll", () => {
  if ($("log").scrollTop < OLDER_PAGE_WHEN) loadOlder();
  showJump();
});

/** The way back to the latest message, whenever the list is scrolled away from it. */
function showJump() {
  if (atBottom()) $("new-messages").hidden = true;
  else if ($("new-messages").hidden) {
    $("new-messages").textContent = "Jump to latest ↓";
    $("new-messages").hidden = false;
  }
}

function onAck({ clientId, id, seq, userId, sentAt }) {
  const li = $("messages").querySelector(`li[data-client-id="${CSS.escape(clientId)}"]`);
  if (!li) return;
  clearTimeout(li.sendTimer);
  // Re-inserted in seq order (if a sync already brought it, that copy
  // stays), quietly: it was announced when it was sent.
  quietly(() => {
    li.remove();
    onMessage({ id, seq, userId, name: me.name, text: li.dataset.text, sentAt, ...li.sent });
  });
}

// --- Messages not yet sent ---

/** Shows a message of the user's, not yet acknowledged, at the end. */
function showSending(text, clientId, { replyTo, mentions, quote } = {}) {
  const li = messageItem(me.name, text, "", me.userId);
  li.classList.add("mine", "pending");
  li.dataset.clientId = clientId;
  li.dataset.userId = me.userId;
  li.dataset.text = text;
  li.sent = { replyTo: quote || (replyTo ? { seq: replyTo } : undefined), mentions };
  if (li.sent.replyTo) li.querySelector(".text").before(quoteButton(li.sent.replyTo));
  const status = document.createElement("p");
  status.className = "status";
  li.append(status);
  sending(li);
  appendKeepingScroll(() => $("messages").append(li));
}

/** Keeps what was typed in this room and not sent (kept.js), for the person signed in or this browser's guest. */
function keepUnsent() {
  const owner = signin ? me.userId : "guest";
  if (!client || !room || !owner) return;
  try {
    const { text, replyTo } = composerDraft();
    keep(storedRoom || roomKey(room), owner, client.unsent(), text, replyTo);
  } catch {} // storage full or refused: leaving the room must not fail for it
}
window.addEventListener("pagehide", keepUnsent);

/** Brings back what was kept in this room: the draft into an empty composer, the messages sent again with their clientIds. */
function restoreKept(userId) {
  const { messages, draft, replyTo } = takeKept([storedRoom, roomKey(room)], signin ? userId : "guest");
  if (draft && !$("text").value.trim()) {
    $("text").value = draft;
    textState();
    fitComposer();
    if (replyTo) resumeReply(replyTo);
  }
  for (const { clientId, body } of messages) {
    client.write(body, clientId); // its clientId: stored once, whether or not the server had it
    if (body.action === "new-message") showSending(body.text, clientId, { replyTo: body.replyTo, mentions: body.mentions });
  }
}

/** Shows a pending message as being sent, until SEND_TIMEOUT_MS says otherwise. */
function sending(li) {
  li.classList.remove("failed");
  li.querySelector(".status").replaceChildren("Sending…");
  clearTimeout(li.sendTimer);
  // Unacknowledged for SEND_TIMEOUT_MS while connected: not sent. While
  // there is no connection it waits for one, and goes when it is back (it
  // is queued, in order): said so, with Delete for one no longer wanted.
  const check = () => {
    if (!li.isConnected) return;
    if (client?.state === "online") return notSent(li, "the server has not answered it.");
    li.querySelector(".status").replaceChildren("Waiting for the connection: it goes when it is back. ", statusButton("Delete", () => discard(li)));
    li.sendTimer = setTimeout(check, SEND_TIMEOUT_MS);
  };
  li.sendTimer = setTimeout(check, SEND_TIMEOUT_MS);
}

/** A button of a message's status line. */
function statusButton(text, onClick) {
  const b = Object.assign(document.createElement("button"), { type: "button", className: "secondary", textContent: text });
  b.addEventListener("click", onClick);
  return b;
}

/** Drops a message not sent: it will not go. */
function discard(li) {
  client?.cancel(li.dataset.clientId);
  li.remove();
  $("text").focus();
}

/**
 * Shows a message as not sent, why, and what can be done: Retry, or, when
 * the text itself was refused (it would fail again unchanged), Edit, which
 * puts it back in the composer; and Delete.
 */
function notSent(li, why, code = "") {
  clearTimeout(li.sendTimer);
  li.classList.add("failed");
  const drop = () => discard(li);
  const retry = statusButton("Retry", () => {
    sending(li);
    client?.retry(li.dataset.clientId, li.dataset.text, { replyTo: li.sent?.replyTo?.seq, mentions: li.sent?.mentions });
  });
  // Back in the composer, as the reply it was (unless what it answered is
  // gone); never over what is being written there.
  const edit = statusButton("Edit", () => {
    if (composerDraft().text.trim() !== "" || composing().edit || composing().replyTo) {
      showNotice("Send or clear what you are writing first, then edit this one.");
      return;
    }
    const { text } = li.dataset;
    const quote = li.sent?.replyTo;
    drop();
    endCompose();
    if (code !== "gone" && quote?.name) resumeReply(quote);
    $("text").value = text;
    $("text").dispatchEvent(new Event("input"));
  });
  const first = { gone: [edit, " "], invalid_message: [edit, " "], too_long: [edit, " "] }[code] ?? [retry, " "];
  li.querySelector(".status").replaceChildren(`Not sent: ${why} `, ...first, statusButton("Delete", drop));
}

/** The server refused a message for good (it would fail again unchanged, or its connection is gone). */
function onFailed(f) {
  const li = $("messages").querySelector(`li[data-client-id="${CSS.escape(f.clientId)}"]`);
  if (li) notSent(li, inWords(f) || "the server refused it.", f.code);
  else showProblem(f); // an edit, a delete or a reaction
}

/** An access change (a member added, removed, muted, banned) as a notice at its place in the room's order. */
function accessNotice(e) {
  if (e.seq > 0 && $("messages").querySelector(`li[data-seq="${e.seq}"]`)) return;
  const li = noticeItem(describeAccess(e), e.sentAt);
  li.access = e;
  if (e.seq > 0) li.dataset.seq = e.seq;
  const insert = () => (e.seq > 0 ? insertBySeq(li) : insertLast(li));
  if (e.replay) quietly(() => insert()); // history
  else appendKeepingScroll(insert);
  seenNow(); // seen as it happens: not news in the room list
}

/** The access notices again, with the names the roster brought (quietly: nothing new happened). */
function renameNotices() {
  quietly(() => {
    for (const li of $("messages").querySelectorAll("li.notice")) {
      const text = li.access && describeAccess(li.access);
      if (text && li.firstChild.textContent !== text) li.firstChild.textContent = text;
    }
  });
}

/** "Ana is now Ana Lima": a rename, as a notice says it. */
const renamed = (userId, was, name) => `${label(userId, was)} is now ${label(userId, name)}`;

function onPresence({ type, userId, name, was, sentAt }) {
  if (type === "join") onJoined(userId);
  // The user's own comings and goings are no news to them: a leave of
  // theirs that a new connection hears is their last connection's (a
  // rename, a reload), and they are here.
  if (userId === me.userId) return;
  if (type === "rename") { // their new connection came before the old one went
    appendKeepingScroll(() => insertLast(noticeItem(renamed(userId, was, name), sentAt)));
    return;
  }
  const now = Date.now();
  for (const [id, l] of recentLeaves) if (now - l.at >= RETURN_WITHIN_MS) recentLeaves.delete(id);
  const left = recentLeaves.get(userId);
  recentLeaves.delete(userId);
  if (type === "join" && left?.li.isConnected) {
    if (left.name === name) quietly(() => {
      left.li.remove();
      relayout($("messages")); // the messages it stood between may group again
    });
    else left.li.querySelector(".what").textContent = renamed(userId, left.name, name);
    return;
  }
  const li = noticeItem(`${label(userId, name)} ${type === "join" ? "joined" : "left"}`, sentAt);
  if (type === "leave") recentLeaves.set(userId, { li, name, at: now });
  appendKeepingScroll(() => insertLast(li));
}

/** A notice of the message list: what happened, and when. */
function noticeItem(text, sentAt) {
  const li = document.createElement("li");
  li.className = "notice";
  const what = document.createElement("span");
  what.className = "what";
  what.textContent = text;
  const time = document.createElement("time");
  setTime(time, sentAt);
  li.append(what, " · ", time);
  return li;
}

function renderMembers() {
  const items = [...members].map(([userId, name]) => {
    const li = document.createElement("li");
    li.dataset.userId = userId;
    li.textContent = label(userId, name) + (userId === me.userId ? " (you)" : "");
    const menu = personMenu(userId, name, staffActions(userId));
    if (menu) li.append(" ", menu);
    return li;
  });
  keepingMenu($("members"), () => $("members").replaceChildren(...items));
}

function onTyping({ userId, name }) {
  clearTimeout(typers.get(userId)?.timer);
  const timer = setTimeout(() => stopTyping(userId), TYPING_SHOWN_MS);
  typers.set(userId, { name, timer });
  renderTyping();
}

function stopTyping(userId) {
  if (!typers.has(userId)) return;
  clearTimeout(typers.get(userId).timer);
  typers.delete(userId);
  renderTyping();
}

function renderTyping() {
  const names = [...typers].map(([userId, t]) => label(userId, t.name));
  $("typing").textContent =
    names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}

// --- Unread messages while the tab is hidden ---

/** Counts a message that arrived unseen; the first gets a divider above it. */
function markUnread(li) {
  unread++;
  if (li.classList.contains("mention")) unreadMentions++;
  if (!$("messages").querySelector("li.unread")) {
    const divider = document.createElement("li");
    divider.className = "unread";
    divider.textContent = "New messages";
    li.before(divider);
  }
  updateTitle();
}

function updateTitle() {
  if (!room) return;
  const mentions = unreadMentions > 0 ? ` · @${unreadMentions}` : ""; // mentions of you, counted apart
  document.title = `${unread > 0 ? `(${unread}${mentions}) ` : ""}#${room} – Chat`;
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) {
    $("messages").querySelector("li.unread")?.remove(); // a new absence gets a new divider
    return;
  }
  unread = unreadMentions = 0;
  updateTitle();
  seenNow();
  if (Date.now() - roomsAskedAt > ROOMS_EVERY_MS / 2) askRooms();
});

// --- Alerts: desktop notifications and a sound, opted into ---

// Settings kept in this browser: notifications and sound for every room,
// a mute per room.
function alertSetting(key) {
  return localStorage.getItem(`chat.${key}`) === "on";
}

function setAlertSetting(key, on) {
  if (on) localStorage.setItem(`chat.${key}`, "on");
  else localStorage.removeItem(`chat.${key}`);
}
let audio = null;

function showAlertSettings() {
  $("notify").checked = alertSetting("notify") && globalThis.Notification?.permission === "granted";
  $("notify").disabled = !globalThis.Notification || Notification.permission === "denied";
  $("sound").checked = alertSetting("sound");
  $("mute-room").checked = alertSetting(`mute.${roomKey(room)}`);
}

$("notify").addEventListener("change", async () => {
  // Asked on this click (a user gesture), never on load.
  const on = $("notify").checked && (await Notification.requestPermission()) === "granted";
  setAlertSetting("notify", on);
  showAlertSettings();
  if ($("notify").checked !== on || (Notification.permission === "denied" && !on)) {
    showNotice("Notifications are blocked for this site: allow them in the browser's site settings.");
  }
});
$("sound").addEventListener("change", () => {
  setAlertSetting("sound", $("sound").checked);
  startAudio();
});
// A browser lets a page make a sound only after a gesture of its user:
// the first one, when the sound was chosen before this visit.
document.addEventListener("pointerdown", startAudio, { once: true });
document.addEventListener("keydown", startAudio, { once: true });

function startAudio() {
  if (!audio && alertSetting("sound") && globalThis.AudioContext) audio = new AudioContext();
}
$("mute-room").addEventListener("change", () => setAlertSetting(`mute.${roomKey(room)}`, $("mute-room").checked));

/** Whether m mentions the user: by user id, or (from a client that does not say) by "@name" in its text, found as a sender finds it. */
function mentionsMe(m) {
  return (m.mentions || typedMentions(m.text)).includes(me.userId);
}

/** Alerts of a live message: one that mentions the user or comes while the tab is hidden, never their own, never in a muted room. */
function alertOf(m) {
  if (m.userId === me.userId || alertSetting(`mute.${roomKey(room)}`) || !(document.hidden || mentionsMe(m))) return;
  if (alertSetting("notify") && globalThis.Notification?.permission === "granted") {
    const n = new Notification(`${m.name} in #${room}`, { body: plainText(m.text).slice(0, 160), tag: `chat-${room}` });
    n.addEventListener("click", () => {
      window.focus();
      n.close();
    });
  }
  if (alertSetting("sound") && audio) beep();
}

/** A short, quiet tone. */
function beep() {
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.frequency.value = 880;
  gain.gain.setValueAtTime(0.05, audio.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
  osc.connect(gain).connect(audio.destination);
  osc.start();
  osc.stop(audio.currentTime + 0.25);
}

// --- Scrolling: follow new messages unless the user scrolled up ---

function atBottom() {
  const l = $("log");
  return l.scrollHeight - l.scrollTop - l.clientHeight < 40;
}

function appendKeepingScroll(insert) {
  if (!inQuiet && !replaying) aloud();
  const follow = atBottom();
  insert();
  relayout($("messages"));
  if (follow) scrollToEnd();
  else {
    $("new-messages").textContent = "New messages ↓";
    $("new-messages").hidden = false;
  }
}

function scrollToEnd() {
  const l = $("log");
  l.scrollTop = l.scrollHeight;
  $("new-messages").hidden = true;
}

$("new-messages").addEventListener("click", scrollToEnd);

// --- Composing and sending ---

function textState() {
  const text = $("text").value.trim();
  const n = length(text);
  $("send").disabled = n === 0 || n > MAX_TEXT_CHARS;
  $("counter").textContent = n >= COUNTER_FROM ? `${n} / ${MAX_TEXT_CHARS}` : "";
  $("counter").classList.toggle("over", n > MAX_TEXT_CHARS);
  // Announced only when a threshold is crossed, not at every keystroke.
  const level = n > MAX_TEXT_CHARS ? "over" : n >= COUNTER_FROM ? "near" : "";
  if (level !== textState.level) {
    textState.level = level;
    $("counter-alert").textContent = level === "over" ? `Over the limit of ${MAX_TEXT_CHARS} characters.` :
      level === "near" ? `${MAX_TEXT_CHARS - n} characters left.` : "";
  }
  return { text, ok: !$("send").disabled };
}

/** The composer grows with its text, up to a few lines (then it scrolls). */
function fitComposer() {
  const t = $("text");
  t.style.height = "auto";
  t.style.height = `${Math.min(t.scrollHeight, 160)}px`;
}

$("text").addEventListener("input", () => {
  textState();
  fitComposer();
  if ($("text").value.trim() && client) client.typing();
});

$("text").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $("send-form").requestSubmit();
  }
});

$("send-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const { text, ok } = textState();
  if (!ok || !client) return;
  const { edit, replyTo, draft = "" } = composing();
  if (edit) {
    const before = $("messages").querySelector(`li.message[data-seq="${edit}"]`)?.dataset.text;
    if (text !== before) client.edit(edit, text); // the edit event shows it, to everyone
  } else {
    const extras = { replyTo: replyTo?.seq, mentions: mentionsIn(text) };
    showSending(text, client.send(text, undefined, extras), { ...extras, quote: replyTo });
    scrollToEnd();
  }
  endCompose();
  $("text").value = draft; // what was being written before an edit comes back
  textState();
  fitComposer();
});
