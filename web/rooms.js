// The rooms this browser was in lately, and how many messages each holds
// that this browser has not shown: the room's latest seq (the rooms frame,
// docs/protocol.md) less the highest seq shown here. Both are kept in
// localStorage, so every tab of the browser shares them.

import { roomError } from "./rules.js";

const RECENT_ROOMS = 8;
const MAX_BADGE = 99;

/** The name a room is compared by: room names ignore case (docs/protocol.md). */
export const roomKey = (r) => r.toLowerCase();

/** Whether a and b name the same room. */
const sameRoom = (a, b) => roomKey(a) === roomKey(b);

/** The value kept in localStorage under key, or fallback if there is none or it cannot be read. */
export function load(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

/** The rooms this browser was in lately, the latest first, as they were typed. */
export function recentRooms() {
  const rooms = load("chat.rooms", []);
  return Array.isArray(rooms) ? rooms.filter((r) => typeof r === "string" && r !== "" && !roomError(r)) : [];
}

/**
 * Adds r to the recent rooms (once, whatever its case), first; a room
 * already there keeps its place (as typed this time), so that the list
 * does not reorder under the pointer. Returns them.
 */
export function rememberRoom(r) {
  const recent = recentRooms();
  const at = recent.findIndex((x) => sameRoom(x, r));
  const rooms = at >= 0 ? recent.with(at, r) : [r, ...recent].slice(0, RECENT_ROOMS);
  localStorage.setItem("chat.rooms", JSON.stringify(rooms));
  // The seqs seen are kept for these rooms only.
  const seen = load("chat.seen", {});
  const kept = Object.fromEntries(rooms.map(roomKey).filter((k) => seen[k] > 0).map((k) => [k, seen[k]]));
  localStorage.setItem("chat.seen", JSON.stringify(kept));
  return rooms;
}

/** Takes r off the recent rooms (a room that would not have the user). */
export function forgetRoom(r) {
  localStorage.setItem("chat.rooms", JSON.stringify(recentRooms().filter((x) => !sameRoom(x, r))));
}

/** Notes that room r's messages up to seq were shown here. */
export function noteSeen(r, seq) {
  const seen = load("chat.seen", {});
  if (!(seq > (seen[roomKey(r)] || 0))) return;
  seen[roomKey(r)] = seq;
  localStorage.setItem("chat.seen", JSON.stringify(seen));
}

/** The highest seq of room r shown here (0: none). */
export const seenSeq = (r) => load("chat.seen", {})[roomKey(r)] || 0;

/**
 * The messages of room r not shown here, and whether there may be more:
 * the server's count (known.unread) if it counted above the seen mark this
 * page still has; else the seqs above it, at most that many messages.
 */
function unseen(r, known) {
  if (known.seen !== undefined && known.seen === seenSeq(r)) return [known.unread, known.unreadMore];
  return [Math.max(0, known.seq - seenSeq(r)), false];
}

/**
 * Fills each list in lists with links to rooms, current marked as the page
 * it is, the others with a count of the messages not seen there and of
 * those that mention the user (from latest: room key → {seq, mentions,
 * and, counted above seen, unread and unreadMore}, as far as known);
 * labelOf(room) is what each is called.
 */
export function renderRooms(lists, rooms, current, latest, labelOf = (r) => `#${r}`) {
  for (const list of lists) {
    list.replaceChildren(...rooms.map((r) => {
      const a = document.createElement("a");
      a.href = `?room=${encodeURIComponent(r)}`;
      a.dataset.room = r;
      a.textContent = labelOf(r);
      const known = latest.get(roomKey(r)) || { seq: 0, mentions: 0 };
      const [n, more] = sameRoom(r, current) ? [0, false] : unseen(r, known);
      if (sameRoom(r, current)) a.setAttribute("aria-current", "page");
      if (n > 0) {
        // Read as "#design 3 new messages": the count shown, then what it counts.
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = n > MAX_BADGE ? `${MAX_BADGE}+` : `${n}${more ? "+" : ""}`;
        const what = document.createElement("span");
        what.className = "visually-hidden";
        what.textContent = ` new ${n === 1 ? "message" : "messages"}`;
        badge.append(what);
        a.append(" ", badge);
        if (known.mentions > 0) { // counted above what was seen when asked: shown while there is news
          const at = document.createElement("span");
          at.className = "badge mention";
          at.textContent = `@${known.mentions > MAX_BADGE ? `${MAX_BADGE}+` : known.mentions}`;
          const of = document.createElement("span");
          of.className = "visually-hidden";
          of.textContent = `, ${known.mentions === 1 ? "one mentions" : `${known.mentions} mention`} you`;
          at.append(of);
          a.append(" ", at);
        }
      }
      const li = document.createElement("li");
      li.append(a);
      return li;
    }));
  }
}
