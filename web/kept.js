// What was typed in a room and not sent (messages not yet acknowledged, and
// the one being written) is kept in localStorage when the page leaves the
// room (another room, Leave, a rename, a reload, the tab closed), and comes
// back with the room: the messages go again with their clientIds, so the
// server stores each once, whether or not it had them. Entries are per room
// (as the server names it) and per person, merged across tabs, and older
// than a day are dropped rather than sent late.

import { load } from "./rooms.js";

const PREFIX = "chat.kept.";
const MAX_AGE_MS = 24 * 60 * 60 * 1000;

function read(key) {
  const e = load(key, null);
  return e && typeof e.owner === "string" && Array.isArray(e.messages) && Date.now() - e.savedAt < MAX_AGE_MS ? e : null;
}

/** Keeps writes ([{clientId, body}]) and a draft (and the reply it is) for owner in room, with what other tabs kept there. */
export function keep(room, owner, messages, draft, replyTo = null) {
  const key = PREFIX + room;
  const old = read(key);
  const mine = old?.owner === owner ? old : { messages: [], draft: "" };
  const held = new Set(mine.messages.map((m) => m.clientId));
  const entry = {
    owner, savedAt: Date.now(),
    messages: [...mine.messages, ...messages.filter((m) => !held.has(m.clientId))],
    draft: draft.trim() ? draft : mine.draft,
    replyTo: draft.trim() ? replyTo : mine.replyTo ?? null,
  };
  if (entry.messages.length === 0 && !entry.draft) localStorage.removeItem(key);
  else localStorage.setItem(key, JSON.stringify(entry));
}

/** Takes what owner kept in the room under any of names: {messages, draft, replyTo}. */
export function takeKept(names, owner) {
  const out = { messages: [], draft: "", replyTo: null };
  for (const name of new Set(names)) {
    const e = read(PREFIX + name);
    localStorage.removeItem(PREFIX + name);
    if (e?.owner !== owner) continue;
    out.messages.push(...e.messages.filter((m) => typeof m.clientId === "string" && typeof m.body?.action === "string"));
    if (!out.draft && typeof e.draft === "string" && e.draft) {
      out.draft = e.draft;
      out.replyTo = e.replyTo?.seq > 0 ? { seq: e.replyTo.seq, name: String(e.replyTo.name), text: String(e.replyTo.text) } : null;
    }
  }
  return out;
}

/** Forgets what was kept in rooms whose key (lower case) is not in rooms, or everything. */
export function forgetKept(rooms = []) {
  for (const key of Object.keys(localStorage)) {
    if (key.startsWith(PREFIX) && !rooms.includes(key.slice(PREFIX.length).toLowerCase())) localStorage.removeItem(key);
  }
}
