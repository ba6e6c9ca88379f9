// Building the message list: message items with their links, day
// separators and grouping. Every user string reaches the DOM as text nodes
// or attributes set through the DOM, never as HTML.

const GROUP_WITHIN_MS = 5 * 60 * 1000; // consecutive messages of one person within this are grouped
const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = ".,;:!?)]}'\"»"; // punctuation after a link is not part of it
const count = (s, c) => s.split(c).length - 1;

/** href without the punctuation that ends the sentence around it; a ")" closing a "(" in the link stays (Chat_(disambiguation)). */
function trimLink(href) {
  while (href && TRAILING.includes(href.at(-1))) {
    if (href.at(-1) === ")" && count(href, "(") >= count(href, ")")) break;
    href = href.slice(0, -1);
  }
  return href;
}

/** Returns text as nodes: http(s) URLs as links that open in a new tab, the rest as text. */
export function linkify(text) {
  const nodes = [];
  let last = 0;
  for (const m of text.matchAll(URL_IN_TEXT)) {
    const href = trimLink(m[0]);
    let url;
    try {
      url = new URL(href);
    } catch {
      continue;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") continue;
    nodes.push(document.createTextNode(text.slice(last, m.index)));
    const a = document.createElement("a");
    a.href = url.href;
    a.textContent = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    nodes.push(a);
    last = m.index + href.length;
  }
  nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

// Inline formatting: `code`, **strong**, *emphasis* (not inside a word, so
// that 2*3*4 and file_*name* stay as written).
const INLINE = /`([^`\n]+)`|\*\*(?=\S)([^*\n]+?)\*\*(?![\w*])|(?<![\w*])\*(?=\S)([^*\n]+?)\*(?![\w*])/g;

function element(tag, children) {
  const el = document.createElement(tag);
  el.append(...children);
  return el;
}

function formatInline(text) {
  const nodes = [];
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    nodes.push(...linkify(text.slice(last, m.index)));
    if (m[1] !== undefined) nodes.push(element("code", [m[1]]));
    else if (m[2] !== undefined) nodes.push(element("strong", linkify(m[2])));
    else nodes.push(element("em", linkify(m[3])));
    last = m.index + m[0].length;
  }
  nodes.push(...linkify(text.slice(last)));
  return nodes;
}

/**
 * Returns a message's text as nodes, with a little formatting: ```blocks```,
 * `code`, **strong**, *emphasis* and links. Every piece is a DOM node made
 * here from text, never HTML; what is not formatting stays as typed.
 */
export function formatText(text) {
  const nodes = [];
  fenced(text).forEach((part, i) => {
    if (i % 2 === 1) nodes.push(element("pre", [element("code", [part])]));
    else nodes.push(...formatInline(part));
  });
  return nodes;
}

/** text without its formatting marks, as it reads: for quotes and notifications, which show no formatting. */
export function plainText(text) {
  return fenced(text)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(INLINE, (_, code, strong, em) => code ?? strong ?? em)))
    .filter((part) => part !== "")
    .join(" ");
}

/**
 * text split at its ``` fences: text, then a block's content (without
 * the line breaks next to its fences), and so on. After a fence never
 * closed, the rest is text, fence included.
 */
function fenced(text) {
  const parts = text.split("```");
  if (parts.length % 2 === 0) {
    const tail = parts.pop();
    parts[parts.length - 1] += "```" + tail;
  }
  return parts.map((part, i) => (i % 2 === 1 ? part.replace(/^\n/, "").replace(/\n$/, "") : part));
}

/** A hue (0–359) from a userId: a person's colour, the same everywhere. */
export function hueOf(userId) {
  let h = 0;
  for (const c of userId) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return h % 360;
}

/** Up to two initials of a name, for its avatar. */
export function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const first = (w) => [...w][0] || "";
  return (words.length > 1 ? first(words[0]) + first(words[1]) : [...(words[0] || "?")].slice(0, 2).join("")).toUpperCase();
}

// A message longer than this many characters or lines is shown folded,
// with "Show more".
const FOLD_CHARS = 600;
const FOLD_LINES = 12;

/** A message item: who (an avatar in their colour, their name), when, and the text (formatted, line breaks kept, direction from the text). */
export function messageItem(name, text, sentAt, userId = "", plainName = name) {
  const li = document.createElement("li");
  li.className = "message";
  li.style.setProperty("--hue", String(hueOf(userId || name)));
  const avatar = document.createElement("span");
  avatar.className = "avatar";
  avatar.setAttribute("aria-hidden", "true");
  avatar.textContent = initials(plainName); // the name, not its label with a mark
  const head = document.createElement("div");
  head.className = "head";
  const who = document.createElement("span");
  who.className = "name";
  who.dir = "auto"; // isolated: a right-to-left name does not reorder the time after it
  who.textContent = name;
  const time = document.createElement("time");
  setTime(time, sentAt);
  head.append(who, time);
  const body = document.createElement("div");
  body.className = "text";
  body.dir = "auto";
  li.append(avatar, head, body);
  setText(li, text);
  return li;
}

/**
 * Puts text into a message item, folded behind "Show more" when long; a
 * deleted message shows that it was deleted instead (by a moderator, when
 * removed).
 */
export function setText(li, text, deleted = false, removed = false) {
  const body = li.querySelector(".text");
  li.querySelector("button.more")?.remove();
  body.classList.remove("folded");
  li.classList.toggle("deleted", deleted);
  if (deleted) {
    body.replaceChildren(removed ? "Removed by a moderator" : "Message deleted");
    return;
  }
  body.replaceChildren(...formatText(text));
  if (text.length > FOLD_CHARS || text.split("\n").length > FOLD_LINES) {
    body.classList.add("folded");
    const more = document.createElement("button");
    more.type = "button";
    more.className = "link more";
    more.textContent = "Show more";
    more.setAttribute("aria-expanded", "false");
    const toggle = (open) => {
      body.classList.toggle("folded", !open);
      more.textContent = open ? "Show less" : "Show more";
      more.setAttribute("aria-expanded", String(open));
    };
    more.addEventListener("click", () => toggle(body.classList.contains("folded")));
    body.addEventListener("focusin", () => toggle(true)); // a link tabbed to inside is not left clipped
    body.after(more);
  }
}

/** Marks a message item edited at (an RFC 3339 time), or not. */
export function setEdited(li, at) {
  let mark = li.querySelector(".edited");
  if (!at) return mark?.remove();
  if (!mark) {
    mark = document.createElement("span");
    mark.className = "edited";
    li.querySelector(".head").append(mark);
  }
  mark.textContent = "(edited)";
  mark.title = `Edited ${new Date(at).toLocaleString()}`;
}

/** The quote above a reply: who wrote what it answers and how it starts, as a button that goes to it. */
export function quoteButton(q) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "quote";
  b.dataset.seq = q.seq;
  setQuote(b, q);
  return b;
}

/** Shows q (a quote, or a message's state) in a quote button. */
export function setQuote(b, q) {
  const who = document.createElement("span");
  who.className = "quote-name";
  who.dir = "auto";
  who.textContent = q.name || "A message";
  const text = document.createElement("span");
  text.className = "quote-text";
  text.dir = "auto";
  const gone = q.deleted || (!q.name && !q.text);
  // The server sends the start of the text, which may end inside a pair of marks.
  const words = [...plainText(q.text || "")];
  text.textContent = q.deleted ? "message deleted" : !q.name ? "no longer kept" : words.length > 100 ? `${words.slice(0, 100).join("")}…` : words.join("");
  b.classList.toggle("gone", gone);
  b.replaceChildren(who, " ", text);
  b.setAttribute("aria-label", `In reply to ${who.textContent}: ${text.textContent}. Go to the message.`);
}

/**
 * The reactions under a message: one toggle button per emoji, with its
 * count; pressed when mine(emoji); who reacted in its title.
 */
export function setReactions(li, reactions, mine) {
  let bar = li.querySelector(".reactions");
  if (!reactions?.length) return bar?.remove();
  if (!bar) {
    bar = document.createElement("div");
    bar.className = "reactions";
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", "Reactions");
    (li.querySelector("button.more") || li.querySelector(".text")).after(bar);
  }
  bar.replaceChildren(...reactions.map((r) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "reaction";
    b.dataset.emoji = r.emoji;
    b.setAttribute("aria-pressed", String(mine(r.emoji)));
    const names = r.users.map((u) => u.name);
    const others = r.count - names.length;
    b.title = names.join(", ") + (others > 0 ? ` and ${others} more` : "");
    b.setAttribute("aria-label", `${r.emoji} ${r.count}: ${b.title}${mine(r.emoji) ? " (you reacted; press to take it back)" : ""}`);
    b.textContent = `${r.emoji} ${r.count}`;
    return b;
  }));
}

/** A time of day as the page shows it: hours and minutes, in the reader's locale. */
export const clockTime = (d) => d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

/** A moment as the page says it: its time of day when today, else its date and time too (the reader's locale). */
export const whenText = (d, now = new Date()) =>
  d.toDateString() === now.toDateString() ? clockTime(d) : `${d.toLocaleDateString([], { day: "numeric", month: "short", year: "numeric" })}, ${clockTime(d)}`;

export function setTime(el, sentAt) {
  if (!sentAt) return; // not sent yet: the message's status line says how it goes
  const d = new Date(sentAt);
  el.dateTime = sentAt;
  el.textContent = clockTime(d);
  el.title = d.toLocaleString();
}

/** "Today", "Yesterday" or the date, for a day separator. */
export function dayLabel(d, now = new Date()) {
  const day = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const diff = Math.round((day(now) - day(d)) / 86400000);
  if (diff === 0) return "Today";
  if (diff === 1) return "Yesterday";
  return d.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

/**
 * Lays the list out again after messages came in: a separator before the
 * first message of each day, and messages of one person within a few
 * minutes of each other grouped under one name.
 */
export function relayout(list, now = new Date()) {
  const kept = new Set(); // separators in place stay: a screen reader would announce a new one
  let prevDay = "";
  let prev = null;
  for (const li of [...list.children]) {
    if (li.classList.contains("day")) continue;
    if (!li.classList.contains("message")) {
      if (!li.classList.contains("unread")) prev = null; // a notice breaks a group; the unread divider does not
      continue;
    }
    const at = li.querySelector("time")?.dateTime;
    const d = at ? new Date(at) : now;
    const key = d.toDateString();
    if (key !== prevDay) {
      const above = li.previousElementSibling?.classList.contains("unread") ? li.previousElementSibling : li;
      let sep = above.previousElementSibling;
      if (!sep?.classList.contains("day") || sep.dataset.day !== key || kept.has(sep)) {
        sep = document.createElement("li");
        sep.className = "day";
        sep.dataset.day = key;
        list.insertBefore(sep, above); // the day first, then the unread divider
      }
      const label = dayLabel(d, now);
      if (sep.textContent !== label) sep.textContent = label;
      kept.add(sep);
      prevDay = key;
      prev = null;
    }
    const grouped = prev !== null && prev.dataset.userId === li.dataset.userId &&
      d - new Date(prev.querySelector("time")?.dateTime || now) < GROUP_WITHIN_MS;
    li.classList.toggle("grouped", grouped);
    prev = li;
  }
  for (const sep of list.querySelectorAll("li.day")) if (!kept.has(sep)) sep.remove();
}
