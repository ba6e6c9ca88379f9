// The protocol's limits and rules (docs/protocol.md). A Go test checks
// these numbers against internal/chat, so the page and the server agree.
export const MAX_TEXT_CHARS = 2000;
export const MAX_NAME_CHARS = 32;
export const MAX_ROOM_CHARS = 64;
export const MAX_MENTIONS = 10;
export const DEFAULT_ROOM = "general";
export const PROTOCOL_VERSION = 5;
export const TYPING_INTERVAL_MS = 2000;
export const PING_INTERVAL_MS = 240000;
export const PING_JITTER = 0.1;
// While the page is visible and has heard nothing for about this long, it
// pings (docs/security.md, "Why a ping every 4 minutes").
export const PING_WHEN_WATCHED_MS = 30000;

/** The wait of a visible page that hears nothing before it pings: PING_WHEN_WATCHED_MS times 0.5 to 1.5, at random (internal/chat.WatchedPingDelay). */
export const watchedPingDelay = () => PING_WHEN_WATCHED_MS * (0.5 + Math.random());
// How long after sending it its author may edit a message: the server's
// default (EditWindowHours), until a sync tells the deployment's.
export const EDIT_WINDOW_MS = 86400000;
export const REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"];

/** The wait before a ping: PING_INTERVAL_MS, up to PING_JITTER more or less, at random. */
export const pingDelay = () => PING_INTERVAL_MS * (1 + PING_JITTER * (2 * Math.random() - 1));

// What a name may not hold (internal/chat/join.go): control and format
// characters (bidirectional overrides, zero-width ones), private-use and
// unassigned code points, separators other than a plain space, blank letters.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Cn}\p{Zl}\p{Zp}\u115F\u1160\u3164\uFFA0\u2800\u180E\u17B4\u17B5]|(?! )\p{Zs}/u;
const ROOM = /^~?[A-Za-z0-9_-]+$/; // a leading ~: a private room
const MARKS_ONLY = /^[\p{M} ]+$/u; // accents and other combining marks, with nothing to sit on

/** Number of characters as the server counts them (code points). */
export const length = (s) => [...s].length;

/** Returns an error text for a display name, or "" if it is valid. An empty name is valid: the server assigns a guest name. */
export function nameError(name) {
  const n = name.trim().normalize("NFC");
  if (length(n) > MAX_NAME_CHARS) return `A name can have at most ${MAX_NAME_CHARS} characters (this one has ${length(n)}).`;
  if (INVISIBLE.test(n)) return "A name cannot contain invisible or control characters (line breaks, tabs, zero-width or direction marks).";
  if (MARKS_ONLY.test(n)) return "A name needs a letter, digit or symbol: it cannot be made only of accents or other combining marks.";
  return "";
}

/** Returns an error text for a room name, or "" if it is valid. */
export function roomError(room) {
  if (room.length > MAX_ROOM_CHARS) return `A room name can have at most ${MAX_ROOM_CHARS} characters.`;
  if (room !== "" && !ROOM.test(room)) return "A room name can use only letters A–Z, digits, _ and - (after a ~ for a private room).";
  return "";
}
