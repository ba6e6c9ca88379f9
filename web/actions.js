// What a person does to messages: the actions menu of a message (react,
// reply, edit, delete), the reaction buttons under it, the reply and edit
// modes of the composer, and @mentions with suggestions. It sends through
// the page's ChatClient and knows the page only through the hooks given to
// setupActions; every user string reaches the DOM as text.

import { plainText } from "./render.js";
import { EDIT_WINDOW_MS, MAX_MENTIONS, REACTIONS } from "./rules.js";

// How long after sending it one may edit a message: the server
// says (a sync's editWindowMs, the deployment's EditWindowHours).
let editWindowMs = EDIT_WINDOW_MS;

/** Takes the edit window a sync told (ms); an older server tells none. */
export function setEditWindow(ms) {
  if (ms > 0) editWindowMs = ms;
}

const $ = (id) => document.getElementById(id);
const MAX_SUGGESTIONS = 6;

let hooks = null; // {client(), me(), people(): [{userId, name, label}], jumpTo(seq), moderates(), authorActions(userId), moderate(what, userId)}
let menuFor = null; // the message item whose menu is open
let mode = null; // {edit: seq} or {replyTo: {seq, name, text}} while the composer is in that mode
const mentioned = new Map(); // userId → name, chosen from the suggestions for the message being written
const myReactions = new Set(); // "seq emoji": the reactions this user made, as far as this page knows

/** Whether the user reacted to message seq with emoji (the state's names, or what this page saw them do). */
export function reactedByMe(li, emoji, users = []) {
  return users.some((u) => u.userId === hooks.me().userId) || myReactions.has(`${li.dataset.seq} ${emoji}`);
}

/** Forgets what belongs to the room left: the composer's mode and the reactions noted (seqs are per room). */
export function resetActions() {
  endCompose();
  myReactions.clear();
  closeMenu();
}

/** Notes a reaction change the user made (from any of their pages). */
export function noteMyReaction(c) {
  const key = `${c.target} ${c.emoji}`;
  if (c.removed) myReactions.delete(key);
  else myReactions.add(key);
}

/** The composer's mode, for its submit: {edit: seq}, {replyTo: quote} or {}. */
export const composing = () => mode || {};

/** The user ids the text mentions: chosen from the suggestions, or typed. */
export function mentionsIn(text) {
  const me = hooks.me().userId;
  const chosen = [...mentioned].filter(([, name]) => namedAt(text.toLowerCase(), name.toLowerCase()).length > 0).map(([id]) => id);
  return [...new Set([...chosen, ...typedMentions(text)])].filter((id) => id !== me).slice(0, MAX_MENTIONS);
}

/**
 * The user ids text names with @ as typed: a name known here (hooks.people)
 * that only one person has, as a whole word, longest names first ("@Ana
 * Lima" is not "@Ana"). The sender's page sends them; a page reading a
 * message from a client that said none finds them the same way.
 */
export function typedMentions(text) {
  const byName = new Map(); // lower-case name → its one userId, or null when several share it
  for (const p of hooks.people()) {
    const k = p.name.toLowerCase();
    if (k) byName.set(k, byName.has(k) && byName.get(k) !== p.userId ? null : p.userId);
  }
  const ids = [];
  let rest = text.toLowerCase();
  for (const name of [...byName.keys()].sort((a, b) => b.length - a.length)) {
    const found = namedAt(rest, name);
    for (const i of found) rest = rest.slice(0, i) + " ".repeat(name.length + 1) + rest.slice(i + name.length + 1); // taken by this name
    if (found.length > 0 && byName.get(name)) ids.push(byName.get(name));
  }
  return ids;
}

const WORD = /[\p{L}\p{M}\p{N}_]/u;

/** Where (indexes) @ and name stand in text as a whole word ("bo@ana.example" does not name ana); both lower case. */
function namedAt(text, name) {
  const found = [];
  for (let i = text.indexOf(`@${name}`); i >= 0; i = text.indexOf(`@${name}`, i + 1)) {
    const end = i + name.length + 1;
    if (!(i > 0 && WORD.test(text[i - 1])) && !(end < text.length && WORD.test(text[end]))) found.push(i);
  }
  return found;
}

/** Leaves reply or edit mode; forgets the mentions chosen. */
export function endCompose() {
  mode = null;
  mentioned.clear();
  $("compose-context").hidden = true;
  $("compose-what").textContent = "";
  closeSuggestions();
}

/** An actions button for a message item. */
export function actionsButton(li) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "actions";
  b.textContent = "⋯";
  b.setAttribute("aria-controls", "message-menu");
  b.setAttribute("aria-expanded", "false");
  const at = li.querySelector("time")?.textContent;
  b.setAttribute("aria-label", `Actions for the message of ${li.dataset.name}${at ? ` at ${at}` : ""}`);
  return b;
}

/** Whether li is the user's own message, not deleted, that may still be edited. */
function editable(li) {
  const at = li.querySelector("time")?.dateTime;
  return li.classList.contains("mine") && !li.classList.contains("deleted") && at && Date.now() - new Date(at) < editWindowMs;
}

function openMenu(li) {
  closeMenu();
  menuFor = li;
  const menu = $("message-menu");
  menu.querySelector("[data-act=edit]").hidden = !editable(li);
  // A moderator removes anyone's message (a tombstone that says so).
  const others = !li.classList.contains("mine");
  menu.querySelector("[data-act=delete]").hidden = (others && !hooks.moderates()) || li.classList.contains("deleted");
  menu.querySelector("[data-act=delete]").textContent = others ? "Remove (moderator)" : "Delete";
  menu.querySelector(".confirm").hidden = true;
  menu.querySelector(".confirm-ban").hidden = true;
  // A moderator acts on the author from here too (the same as their person menu).
  menu.querySelector(".author-acts").replaceChildren(...(others && !li.classList.contains("deleted") ? hooks.authorActions(li.dataset.userId) : []).map(([act, text]) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.act = `author-${act}`;
    b.textContent = `${text}: ${li.dataset.name}`;
    return b;
  }));
  menu.setAttribute("aria-label", li.querySelector("button.actions").getAttribute("aria-label"));
  for (const b of menu.querySelectorAll(".emoji-row button")) {
    const mine = li.querySelector(`.reaction[data-emoji="${b.dataset.emoji}"][aria-pressed=true]`) !== null;
    b.setAttribute("aria-pressed", String(mine)); // pressing it again takes it back
  }
  menu.hidden = false;
  place(menu, li);
  li.querySelector("button.actions").setAttribute("aria-expanded", "true");
  menu.querySelector(".emoji-row button").focus();
}

/**
 * Puts the menu beside the message, inside the conversation: below the
 * message's top when there is room, else above; never past either side.
 * It lives outside the message list: what the list gains is announced,
 * and a menu is not news.
 */
function place(menu, li) {
  const box = menu.parentElement.getBoundingClientRect();
  const at = li.getBoundingClientRect();
  const below = at.top - box.top + 28;
  const top = below + menu.offsetHeight <= box.height ? below : Math.max(at.top - box.top - menu.offsetHeight + 24, 0);
  const right = Math.min(Math.max(box.right - at.right, 0), Math.max(box.width - menu.offsetWidth, 0));
  menu.style.top = `${top}px`;
  menu.style.right = `${right}px`;
}

function closeMenu(refocus = false) {
  const menu = $("message-menu");
  if (!menuFor) return;
  const button = menuFor.querySelector("button.actions");
  button?.setAttribute("aria-expanded", "false");
  refocus ||= menu.contains(document.activeElement); // focus is not left in a closed menu
  menu.hidden = true;
  menuFor = null;
  if (refocus) (button?.isConnected ? button : $("text")).focus();
}

/** Puts the composer in reply mode for li. */
function startReply(li) {
  resumeReply({ seq: Number(li.dataset.seq), name: li.dataset.name, text: li.dataset.text || "" });
}

/** Puts the composer in reply mode for quote ({seq, name, text}). */
export function resumeReply(quote) {
  mode = { replyTo: quote };
  const text = [...plainText(quote.text)];
  showContext(`Replying to ${quote.name}: “${text.slice(0, 80).join("")}${text.length > 80 ? "…" : ""}”`);
}

/** What the composer holds that is the person's own writing: its text (not an edit's: the draft it set aside) and the reply it is. */
export function composerDraft() {
  return mode?.edit ? { text: mode.draft, replyTo: null } : { text: $("text").value, replyTo: mode?.replyTo ?? null };
}

/** Puts li's text into the composer to edit it, setting aside what was being written. */
function startEdit(li) {
  mode = { edit: Number(li.dataset.seq), draft: composerDraft().text };
  $("text").value = li.dataset.text || "";
  $("text").dispatchEvent(new Event("input"));
  showContext("Editing your message (Escape cancels)");
}

/** Edits the user's latest message that may still be edited (Up arrow in an empty composer). */
function editLast() {
  const mine = [...$("messages").querySelectorAll("li.message.mine[data-seq]")].filter(editable).at(-1);
  if (!mine) return false;
  startEdit(mine);
  return true;
}

function showContext(text) {
  $("compose-what").textContent = text;
  $("compose-context").hidden = false;
  $("text").focus();
}

function react(li, emoji) {
  const key = `${li.dataset.seq} ${emoji}`;
  const remove = !!li.querySelector(`.reaction[data-emoji="${emoji}"][aria-pressed=true]`) || myReactions.has(key);
  hooks.client()?.react(Number(li.dataset.seq), emoji, remove);
}

// --- Suggestions for @mentions ---

let active = -1; // the suggestion chosen with the arrow keys

/** The "@name" being typed before the caret: {start, query}, or null. */
function mentionAt() {
  const t = $("text");
  const before = t.value.slice(0, t.selectionStart);
  const m = /(?:^|\s)@([^\s@]{0,32})$/u.exec(before);
  return m ? { start: before.length - m[1].length - 1, query: m[1].toLowerCase() } : null;
}

function suggest() {
  const at = mentionAt();
  const me = hooks.me().userId;
  const people = at ? hooks.people().filter((p) => p.userId !== me && p.name.toLowerCase().startsWith(at.query)).slice(0, MAX_SUGGESTIONS) : [];
  const list = $("mention-list");
  if (people.length === 0) return closeSuggestions();
  active = Math.min(Math.max(active, 0), people.length - 1);
  list.replaceChildren(...people.map((p, i) => {
    const li = document.createElement("li");
    li.id = `mention-${i}`;
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", String(i === active));
    li.dataset.userId = p.userId;
    li.dataset.name = p.name;
    li.textContent = p.label; // same-named people told apart, as in the member list
    return li;
  }));
  list.hidden = false;
  $("text").setAttribute("aria-activedescendant", `mention-${active}`);
}

function closeSuggestions() {
  active = -1;
  $("mention-list").hidden = true;
  $("mention-list").replaceChildren();
  $("text").removeAttribute("aria-activedescendant");
}

function choose(option) {
  const at = mentionAt();
  if (!at) return closeSuggestions();
  const t = $("text");
  const name = option.dataset.name;
  t.value = `${t.value.slice(0, at.start)}@${name} ${t.value.slice(t.selectionStart)}`;
  t.selectionStart = t.selectionEnd = at.start + name.length + 2;
  mentioned.set(option.dataset.userId, name);
  closeSuggestions();
  t.dispatchEvent(new Event("input"));
}

/** Wires the menu, the reaction buttons, quotes, the composer's modes and mentions. */
export function setupActions(h) {
  hooks = h;
  document.querySelector(".conversation").append($("message-menu"));
  const row = $("message-menu").querySelector(".emoji-row");
  row.replaceChildren(...REACTIONS.map((e) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.emoji = e;
    b.textContent = e;
    b.setAttribute("aria-label", `React with ${e}`);
    return b;
  }));

  $("messages").addEventListener("click", (e) => {
    const li = e.target.closest("li.message");
    if (!li) return;
    if (e.target.closest("button.actions")) return menuFor === li ? closeMenu(true) : openMenu(li);
    const reaction = e.target.closest("button.reaction");
    if (reaction) return react(li, reaction.dataset.emoji);
    const quote = e.target.closest("button.quote");
    if (quote) return hooks.jumpTo(Number(quote.dataset.seq));
  });

  $("message-menu").addEventListener("click", (e) => {
    const b = e.target.closest("button");
    const li = menuFor;
    if (!b || !li) return;
    if (b.dataset.emoji) {
      react(li, b.dataset.emoji);
      return closeMenu(true);
    }
    switch (b.dataset.act) {
      case "reply":
        closeMenu();
        return startReply(li);
      case "edit":
        closeMenu();
        return startEdit(li);
      case "delete": // asks first, in place
        $("message-menu").querySelector(".confirm").hidden = false;
        return $("message-menu").querySelector("[data-act=confirm-delete]").focus();
      case "confirm-delete":
        hooks.client()?.delete(Number(li.dataset.seq));
        closeMenu();
        return $("text").focus(); // the message's button goes with its text
      case "cancel":
        return closeMenu(true);
      case "author-ban": // asks first, in place
        $("message-menu").querySelector(".confirm-ban").hidden = false;
        return $("message-menu").querySelector("[data-act=confirm-ban]").focus();
      case "confirm-ban":
        hooks.moderate("ban", li.dataset.userId);
        return closeMenu(true);
      case "author-mute":
      case "author-unmute":
        hooks.moderate(b.dataset.act.slice("author-".length), li.dataset.userId);
        return closeMenu(true);
    }
  });
  $("message-menu").addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    e.stopPropagation();
    closeMenu(true);
  });
  // Tabbing out of the menu closes it: it does not stay open behind.
  $("message-menu").addEventListener("focusout", (e) => {
    if (menuFor && !$("message-menu").contains(e.relatedTarget) && e.relatedTarget !== menuFor.querySelector("button.actions")) closeMenu();
  });
  document.addEventListener("pointerdown", (e) => {
    if (menuFor && !menuFor.contains(e.target) && !$("message-menu").contains(e.target)) closeMenu();
  });
  $("log").addEventListener("scroll", () => closeMenu()); // it would be left beside another message

  $("compose-cancel").addEventListener("click", () => {
    const editing = mode?.edit;
    const draft = mode?.draft ?? "";
    endCompose();
    if (editing) $("text").value = draft;
    $("text").dispatchEvent(new Event("input"));
    $("text").focus();
  });

  $("text").addEventListener("input", suggest);
  $("text").addEventListener("keydown", (e) => {
    const list = $("mention-list");
    if (!list.hidden) {
      const options = [...list.children];
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        active = (active + (e.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
        return suggest();
      }
      if (e.key === "Enter" || e.key === "Tab") {
        e.preventDefault();
        e.stopImmediatePropagation(); // a chosen name, not a message sent
        return choose(options[active]);
      }
      if (e.key === "Escape") {
        e.preventDefault();
        return closeSuggestions();
      }
    }
    if (e.key === "Escape" && mode) {
      e.preventDefault();
      $("compose-cancel").click();
    } else if (e.key === "ArrowUp" && $("text").value === "" && !mode && editLast()) {
      e.preventDefault();
    }
  });
  $("mention-list").addEventListener("pointerdown", (e) => {
    const option = e.target.closest("li[role=option]");
    if (!option) return;
    e.preventDefault(); // the composer keeps the focus
    choose(option);
  });
}
