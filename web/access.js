// Rooms that belong to someone (docs/protocol.md, private rooms): the
// roster of a private room with everyone's role, the owner's form to add
// people and moderation log, the menu of each person (message them, make
// moderator, mute, remove), and direct messages: the rooms the server
// lists as the user's and opening one with another account. It sends
// through the page's ChatClient and knows the page only through the hooks
// given to setupAccess; every user string reaches the DOM as text.

import { whenText } from "./render.js";
import { load } from "./rooms.js";

const $ = (id) => document.getElementById(id);
const MUTE_MINUTES = 60;
const MAX_ROSTER_PAGES = 10; // 1,000 members: the rest stay unlisted rather than asked for without end

let hooks = null; // {client(), me(), signedIn(), name(userId), openDM(peer, name), notice(text), noticeAt(event), namesKnown(), removed(text), room()}
let role = ""; // the user's role in the room shown ("" for none)
let privateRoom = false; // whether the room shown is private (else public: anyone may come)
const roster = new Map(); // userId → {name, role, mutedUntil}
let rosterPages = 0;
let confirming = null; // {userId, act: "remove" | "ban"}: the removal or ban that waits for a yes
const LINK_MINUTES = 7 * 24 * 60; // how long an invite link the page makes lets people in

/** The direct messages known to this browser: room key → {peer, name}, kept across reloads. */
const dms = new Map(Object.entries(load("chat.dms", {})));

/** The private rooms the server last listed as the user's (signed in), kept so that a reload lists them. */
let mine = load("chat.mine", []);
if (!Array.isArray(mine)) mine = [];
export const myRooms = () => mine;

/** Forgets the user's rooms and direct messages: the next person to sign in here must not see them. */
export function forgetAccess() {
  dms.clear();
  mine = [];
  localStorage.removeItem("chat.dms");
  localStorage.removeItem("chat.mine");
}

function keepDMs() {
  localStorage.setItem("chat.dms", JSON.stringify(Object.fromEntries(dms)));
}

export const isPrivate = (room) => room.startsWith("~");
export const isDM = (room) => room.toLowerCase().startsWith("~dm-");

/** The other account of direct messages room, if this browser knows it: {peer, name}. */
export const dmOf = (room) => dms.get(room.toLowerCase());

/** How a room is called in lists and the title: #name, or @ and the other person for direct messages. */
export function roomLabel(room) {
  if (!isDM(room)) return `#${room}`;
  const dm = dmOf(room);
  return dm?.name ? `@${dm.name}` : "Direct messages";
}

/**
 * Notes the private rooms the server lists as the user's (a rooms reply's
 * mine) and says whether any is new to this page. A name this browser
 * knows for the other person of direct messages stays until the server
 * knows one.
 */
export function noteMine(listed) {
  for (const { room, peer, peerName } of listed) {
    if (!peer) continue;
    const known = dmOf(room);
    dms.set(room.toLowerCase(), { peer, name: peerName || known?.name || "" });
  }
  keepDMs();
  const before = new Set(mine);
  mine = listed.map((m) => m.room);
  localStorage.setItem("chat.mine", JSON.stringify(mine));
  return mine.some((r) => !before.has(r));
}

/** Takes a room that no longer has the user off their rooms (the server's next list agrees). */
export function forgetMine(room) {
  mine = mine.filter((r) => r.toLowerCase() !== room.toLowerCase());
  localStorage.setItem("chat.mine", JSON.stringify(mine));
}

/**
 * The room of the direct messages between accounts a and b, as the server
 * names it (internal/chat DMRoom): "~dm-" and the first 20 characters of
 * the lower-case base32 of the SHA-256 of the two ids, in order, joined by
 * a line break.
 */
export async function dmRoom(a, b) {
  if (b < a) [a, b] = [b, a];
  const sum = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${a}\n${b}`)));
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of sum) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < 20) {
      bits -= 5;
      out += alphabet[(value >> bits) & 31];
    }
    if (out.length === 20) break;
  }
  return `~dm-${out}`;
}

/** Remembers the other person of direct messages about to be opened. */
export function noteDM(room, peer, name) {
  dms.set(room.toLowerCase(), { peer, name });
  keepDMs();
}

export function setupAccess(h) {
  hooks = h;
  // A person's menu closes on Escape (focus back on it), on a click
  // outside it, and when another opens, as the page's other menus do.
  document.addEventListener("pointerdown", (e) => {
    for (const d of document.querySelectorAll("details.person-menu[open]")) if (!d.contains(e.target)) d.open = false;
  });
  document.addEventListener("keydown", (e) => {
    const d = e.key === "Escape" && document.activeElement?.closest("details.person-menu[open]");
    if (!d) return;
    d.open = false;
    d.querySelector("summary").focus();
  });
  document.addEventListener("toggle", (e) => {
    if (e.target.matches?.("details.person-menu[open]")) for (const d of document.querySelectorAll("details.person-menu[open]")) if (d !== e.target) d.open = false;
  }, true);
  $("invite-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const who = $("invite-user").value.trim();
    const email = /^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$/.test(who); // a domain with a dot: "not@an" is a typo
    const problem = email || (who.startsWith("u-") && who.length > 2) ? "" : "Paste their user id (it starts with u-: they find it under You: in their menu), or type their e-mail address.";
    $("invite-error").textContent = problem;
    if (problem) return;
    hooks.client()?.manage({ action: "invite", ...(email ? { email: who } : { userId: who }), role: $("invite-role").value });
    $("invite-user").value = "";
    $("invite-role").value = "member"; // the next one added is a member unless chosen again
  });
  $("show-audit").addEventListener("click", () => {
    auditMore = false;
    hooks.client()?.manage({ action: "audit" });
  });
  $("make-link").addEventListener("click", () => hooks.client()?.manage({ action: "invite-link", minutes: LINK_MINUTES }));
  $("copy-invite-link").addEventListener("click", async () => {
    await navigator.clipboard?.writeText($("link-url").value).catch(() => {});
    $("link-url").select();
    hooks.notice("Invite link copied.");
  });
  for (const list of [$("roster"), $("members")]) {
    list.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-act]");
      if (!b) return;
      b.closest("details")?.removeAttribute("open"); // done with the menu
      act(b.dataset.act, b.closest("li").dataset.userId);
    });
  }
}

/** Starts over for a room: its roster is asked for once the connection is ready (onRole). */
export function resetAccess(isPrivate) {
  role = "";
  privateRoom = isPrivate;
  roster.clear();
  confirming = null;
  $("roster-panel").hidden = !isPrivate;
  renderInvited([]);
  $("invite-link").hidden = true;
  $("audit-list").replaceChildren();
  $("audit-list").hidden = true;
  renderRoster();
}

/**
 * The user's role, as a connection's first full sync says it; a private
 * room's roster is read again (after every reconnect: changes may have
 * been missed), and a public room's by its owner and moderators (its
 * staff and whom they banned).
 */
export function onRole(r) {
  role = r;
  if (!privateRoom) $("roster-panel").hidden = !moderates();
  if ($("roster-panel").hidden) return;
  roster.clear();
  rosterPages = 0;
  hooks.client()?.manage({ action: "roster" });
  renderRoster();
}

/** Someone came online in the room: one the roster does not list came by an invite link, and the roster is read again. */
export function onJoined(userId) {
  if (!privateRoom || $("roster-panel").hidden || roster.size === 0 || roster.has(userId)) return;
  rosterPages = 0;
  hooks.client()?.manage({ action: "roster" });
}

/** The private room's members the roster names, online or not: whom @ may suggest too. */
export const rosterPeople = () => [...roster.keys()].filter((id) => roster.get(id).role !== "banned").map((id) => [id, nameOf(id)]).filter(([id, name]) => name !== id);

/** Whether the user may remove others' messages here. */
export const moderates = () => role === "owner" || role === "moderator";

export function onRoster({ members, next, invitations }) {
  if (rosterPages === 0) renderInvited(invitations || []);
  rosterPages++;
  for (const m of members) roster.set(m.userId, { name: m.name || "", role: m.role || "member", mutedUntil: m.mutedUntil || "" });
  if (next && rosterPages < MAX_ROSTER_PAGES) hooks.client()?.manage({ action: "roster", cursor: next });
  renderRoster();
  hooks.namesKnown(); // notices shown before may name people by id
}

/**
 * An access change, in the room's order: shown in place, and, when live
 * (not a sync's history), applied to the roster; the user removed or
 * banned is told and stops.
 */
export function onAccess(e) {
  if (e.email) { // an invitation by e-mail made or withdrawn: the list of them is read again
    hooks.notice(e.action === "remove" ? `The invitation of ${e.email} is withdrawn.` : `${e.email} is invited: they join when they sign in with that address and open this room.`);
    onRole(role);
    return;
  }
  const me = hooks.me().userId;
  const was = roster.get(e.userId);
  const name = e.name || was?.name || nameOf(e.userId);
  hooks.noticeAt(e);
  if (e.replay) return;
  // A mute in a public room names someone with no role there: a member.
  if (e.role === "" && e.action !== "mute") roster.delete(e.userId);
  else roster.set(e.userId, { name: name === e.userId ? "" : name, role: e.role || "member", mutedUntil: e.mutedUntil || "" });
  if (e.userId === me && e.role !== "" && e.role !== "banned") role = e.role;
  if (e.userId === me && (e.action === "remove" || e.role === "banned")) {
    hooks.removed(`${byName(e)} ${e.role === "banned" ? "banned" : "removed"} you from this room.`); // the server closes the connection next
    return;
  }
  if (confirming?.userId === e.userId) confirming = null;
  renderRoster();
}

/** " as a moderator" for that role, else nothing: words for an invitation. */
const asModerator = (r) => (r === "moderator" ? " as a moderator" : "");

/** Whether a roster entry is muted now. */
const mutedNow = (m) => Boolean(m?.mutedUntil) && new Date(m.mutedUntil) > new Date();

const byName = (e) => (e.by === hooks.me().userId ? "You" : e.byName || nameOf(e.by));

/** What an access change says, in words, with the names known now. */
export function describeAccess(e) {
  const name = e.name || roster.get(e.userId)?.name || nameOf(e.userId);
  const by = byName(e);
  const whom = e.userId === hooks.me().userId ? "you" : name;
  switch (e.action) {
    case "invite":
      if (e.by === e.userId) return `${name} joined with an invite link.`;
      if (!e.was || e.was === "banned") return `${by} added ${whom}${asModerator(e.role)}.`;
      return `${by} made ${whom} ${e.role === "moderator" ? "a moderator" : "a member"}.`;
    case "remove":
      return `${by} removed ${whom} from this room.`;
    case "ban":
      return e.role === "banned" ? `${by} banned ${whom} from this room.` : `${by} lifted the ban on ${whom}.`;
    case "mute":
      return e.mutedUntil ? `${by} muted ${whom} until ${time(e.mutedUntil)}.` : `${by} let ${whom} speak again.`;
  }
  return "";
}

/** The owner's invite link: the page's address for the room with the token, to copy. */
export function onInviteLink({ room, token, expiresAt }) {
  const url = new URL(location.pathname, location.origin);
  url.searchParams.set("room", room);
  url.searchParams.set("invite", token);
  $("link-url").value = url.href;
  $("link-expires").textContent = `Anyone signed in who opens it before ${time(expiresAt)} joins as a member.`;
  $("invite-link").hidden = false;
  $("link-url").select();
}

// Whether the audit reply expected is an older page, to add below the one shown.
let auditMore = false;

/** The moderation log, a page at a time, newest first; Older entries asks for the next. */
export function onAudit({ entries, next }) {
  const list = $("audit-list");
  list.hidden = false;
  list.querySelector("li.more")?.remove();
  if (!auditMore) setTimeout(() => list.scrollIntoView({ block: "nearest" })); // shown where it opens, at the foot of the side panel
  if (entries.length === 0 && !auditMore) {
    const li = document.createElement("li");
    li.textContent = "Nothing yet.";
    list.replaceChildren(li);
    return;
  }
  const items = entries.map((e) => {
    const li = document.createElement("li");
    const what = {
      invite: e.email ? `invited ${e.email}${asModerator(e.role)}` : e.by === e.userId ? "joined with an invite link" : e.role === "moderator" ? `made ${nameOf(e.userId)} a moderator` : `added ${nameOf(e.userId)}`,
      remove: e.email ? `withdrew the invitation of ${e.email}` : `removed ${nameOf(e.userId)}`,
      ban: e.role === "banned" ? `banned ${nameOf(e.userId)}` : `lifted the ban on ${nameOf(e.userId)}`,
      "invite-link": `made an invite link, open until ${time(e.until)}`,
      mute: e.until ? `muted ${nameOf(e.userId)} until ${time(e.until)}` : `let ${nameOf(e.userId)} speak`,
      delete: `removed a message of ${nameOf(e.userId)}`,
    }[e.action] || e.action;
    li.textContent = `${nameOf(e.by)} ${what} · ${time(e.at)}`;
    return li;
  });
  if (auditMore) list.append(...items);
  else list.replaceChildren(...items);
  if (next) {
    const more = Object.assign(document.createElement("button"), { type: "button", className: "secondary", textContent: "Older entries" });
    more.addEventListener("click", () => {
      more.disabled = true; // one page asked for at a time (again after 10 s if none came)
      setTimeout(() => (more.disabled = false), 10000);
      auditMore = true;
      hooks.client()?.manage({ action: "audit", cursor: next });
    });
    const li = document.createElement("li");
    li.className = "more";
    li.append(more);
    list.append(li);
  }
}

function nameOf(userId) {
  const m = roster.get(userId);
  return m?.name || hooks.name(userId) || userId;
}

const time = (iso) => whenText(new Date(iso));

/** What the user may do to member m (their userId): the actions of their menu. */
function actionsFor(userId, m) {
  const acts = [];
  const me = hooks.me().userId;
  if (userId === me || m.role === "owner") return acts;
  const free = !mutedNow(roster.get(me)); // a muted moderator moderates nobody
  if (m.role === "banned") {
    if (role === "owner" || (role === "moderator" && free)) acts.push(["lift", "Lift the ban"]);
    return acts;
  }
  const muted = mutedNow(m);
  const over = role === "owner" || (role === "moderator" && m.role === "member" && free);
  if (role === "owner" && userId.startsWith("u-")) acts.push(m.role === "moderator" ? ["member", "Make member"] : ["moderator", "Make moderator"]); // accounts only
  if (over) acts.push(muted ? ["unmute", "Let speak"] : ["mute", `Mute for ${MUTE_MINUTES / 60} hour`]);
  if (role === "owner" && privateRoom) acts.push(["remove", "Remove from room"]);
  if (over) acts.push(["ban", "Ban from room"]);
  return acts;
}

/** What the user may do, from a message's menu, to its author: mute (or let speak) and ban, as in the author's person menu. */
export function authorActions(userId) {
  if (!moderates()) return [];
  return actionsFor(userId, roster.get(userId) || { role: "member", mutedUntil: "" }).filter(([a]) => ["mute", "unmute", "ban"].includes(a));
}

/** Mutes, lets speak or bans (confirmed already) userId. */
export function moderate(what, userId) {
  if (what === "ban") hooks.client()?.manage({ action: "ban", userId });
  else act(what, userId);
}

/** In a public room, what its owner or a moderator may do to someone online (their menu in the member list); nothing elsewhere. */
export function staffActions(userId) {
  if (privateRoom || !moderates()) return [];
  return actionsFor(userId, roster.get(userId) || { role: "member", mutedUntil: "" });
}

function act(what, userId) {
  const c = hooks.client();
  if (!c) return;
  switch (what) {
    case "message":
      hooks.openDM(userId, nameOf(userId));
      return;
    case "member":
    case "moderator":
      c.manage({ action: "invite", userId, role: what });
      return;
    case "mute":
    case "unmute":
      c.manage({ action: "mute", userId, minutes: what === "mute" ? MUTE_MINUTES : 0 });
      return;
    case "remove":
    case "ban":
      confirming = { userId, act: what };
      renderRoster();
      $("roster").querySelector(`li[data-user-id="${CSS.escape(userId)}"] [data-act=confirm]`)?.focus();
      return;
    case "confirm":
      c.manage({ action: confirming.act, userId });
      return;
    case "lift":
      c.manage({ action: "ban", userId, lift: true });
      return;
    case "cancel":
      confirming = null;
      renderRoster();
      $("roster").querySelector(`li[data-user-id="${CSS.escape(userId)}"] summary`)?.focus();
  }
}

/**
 * A person's menu: a disclosure with the actions the user may take on
 * them (acts: [act, label]), and Message for another account when signed
 * in. Null when there is nothing to offer.
 */
export function personMenu(userId, name, acts = []) {
  const all = [...acts];
  if (hooks.signedIn() && userId.startsWith("u-") && userId !== hooks.me().userId) all.unshift(["message", "Message"]);
  if (all.length === 0) return null;
  const d = document.createElement("details");
  d.className = "person-menu";
  const s = document.createElement("summary");
  s.textContent = "⋯";
  s.setAttribute("aria-label", `Actions for ${name || userId}`);
  const items = document.createElement("div");
  items.className = "person-actions";
  for (const [act, text] of all) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "secondary";
    b.dataset.act = act;
    b.textContent = text;
    items.append(b);
  }
  d.append(s, items);
  return d;
}

/** Runs render, which redraws list, with the person menu open in it (and its focus) open again after: someone coming or going redraws it. */
export function keepingMenu(list, render) {
  const open = list.querySelector("li:has(> details[open])")?.dataset.userId;
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset.act || (document.activeElement.tagName === "SUMMARY" ? "summary" : "") : "";
  render();
  if (!open) return;
  const li = list.querySelector(`li[data-user-id="${CSS.escape(open)}"]`);
  const d = li?.querySelector("details");
  if (d) d.open = true;
  if (focused) li?.querySelector(focused === "summary" ? "summary" : `[data-act="${CSS.escape(focused)}"]`)?.focus();
}

/** The owner's invitations by e-mail still waiting, each with Withdraw. */
function renderInvited(invitations) {
  $("invited").replaceChildren(...invitations.map((inv) => {
    const li = document.createElement("li");
    li.textContent = `${inv.email}${inv.role === "moderator" ? " (moderator)" : ""} · until ${new Date(inv.expiresAt).toLocaleDateString()} `;
    const b = document.createElement("button");
    b.type = "button";
    b.className = "secondary";
    b.textContent = "Withdraw";
    b.setAttribute("aria-label", `Withdraw the invitation of ${inv.email}`);
    b.addEventListener("click", () => hooks.client()?.manage({ action: "remove", email: inv.email }));
    li.append(b);
    return li;
  }));
  $("invited").hidden = $("invited-title").hidden = invitations.length === 0;
}

/** Shows the roster again (nothing to show outside a private room): a member's name may have become known (they came online). */
export function renderRoster() {
  if ($("roster-panel").hidden) return;
  const owner = role === "owner";
  $("invite-form").hidden = !owner;
  $("show-audit").hidden = !owner;
  $("make-link").hidden = !owner || !privateRoom || isDM(hooks.room());
  const me = hooks.me().userId;
  const order = { owner: 0, moderator: 1, member: 2, banned: 3 };
  const shown = [...roster].filter(([, m]) => privateRoom || m.role !== "member" || m.mutedUntil); // a public room's staff, bans and mutes
  // Someone online whose ban waits for a yes, in a public room: shown here for it.
  if (confirming && !roster.has(confirming.userId)) shown.push([confirming.userId, { name: hooks.name(confirming.userId), role: "member", mutedUntil: "" }]);
  const items = shown
    .map(([userId, m]) => [userId, { ...m, name: m.name || hooks.name(userId) }])
    .sort(([a, x], [b, y]) => order[x.role] - order[y.role] || (x.name || a).localeCompare(y.name || b))
    .map(([userId, m]) => {
      const li = document.createElement("li");
      li.dataset.userId = userId;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = (m.name || userId) + (userId === me ? " (you)" : "");
      li.append(who);
      if (m.role !== "member") {
        const r = document.createElement("span");
        r.className = "role";
        r.textContent = m.role;
        li.append(" ", r);
      }
      if (mutedNow(m)) {
        const muted = document.createElement("span");
        muted.className = "role muted";
        muted.textContent = `muted until ${time(m.mutedUntil)}`;
        li.append(" ", muted);
      }
      if (confirming?.userId === userId) {
        const ban = confirming.act === "ban";
        const p = document.createElement("p");
        p.className = "confirm";
        const who = m.name || userId;
        p.textContent = !ban ? `Remove ${who} from this room? `
          : privateRoom ? `Ban ${who}? They are cut off and cannot come back, not even with a link. Lifting the ban later does not add them back: you would add them again. `
          : `Ban ${who}? They are cut off and kept out until the ban is lifted. `;
        for (const [act, text] of [["confirm", ban ? "Yes, ban" : "Yes, remove"], ["cancel", "Cancel"]]) {
          const b = document.createElement("button");
          b.type = "button";
          b.dataset.act = act;
          b.textContent = text;
          p.append(b, " ");
        }
        li.append(p);
      } else {
        const menu = personMenu(userId, m.name, actionsFor(userId, m));
        if (menu) li.append(" ", menu);
      }
      return li;
    });
  keepingMenu($("roster"), () => $("roster").replaceChildren(...items));
  const members = [...roster.values()].filter((m) => m.role !== "banned").length;
  $("roster-title").textContent = !privateRoom ? "Moderators and bans" : members ? `Members (${members})` : "Members";
}
