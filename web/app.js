// The page: the join form, then the chat. All user text reaches the DOM
// through textContent, never as HTML.

import config from "./config.js";
import { ChatClient, newKey } from "./client.js";
import { DEFAULT_ROOM, MAX_TEXT_CHARS, length, nameError, roomError } from "./rules.js";

const $ = (id) => document.getElementById(id);
const TYPING_SHOWN_MS = 4000;
const COUNTER_FROM = Math.floor(MAX_TEXT_CHARS * 0.9);
const STATE_TEXT = { connecting: "Connecting…", online: "Online", reconnecting: "Reconnecting…", closed: "Offline" };
const PROBLEM_TEXT = {
  bad_json: "The page sent something the server could not read.",
  unknown_action: "The page asked the server for something it does not do.",
  invalid_message: "The server did not accept that:",
  too_long: "That is too long:",
  internal: "The server had a problem; your messages will be sent again on a new connection.",
  reconnecting: "The connection was reset; your messages will be sent again, in order.",
  rate_limited: "You are sending faster than the room allows; your messages will go out in a moment, in order.",
};

let client = null;
let me = { userId: "", name: "" };
const members = new Map(); // userId → name, online users
const typers = new Map(); // userId → {name, timer}

// --- Join form ---

$("name").value = localStorage.getItem("chat.name") || "";
$("room").value = new URLSearchParams(location.search).get("room") || localStorage.getItem("chat.room") || DEFAULT_ROOM;

$("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("name").value.trim();
  const room = $("room").value.trim() || DEFAULT_ROOM;
  const problem = nameError(name) || roomError(room);
  $("join-error").textContent = problem;
  if (problem) return;
  localStorage.setItem("chat.name", name);
  localStorage.setItem("chat.room", room);
  join(name, room);
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

function join(name, room) {
  $("join").hidden = true;
  $("chat").hidden = false;
  $("room-title").textContent = `#${room}`;
  document.title = `#${room} – Chat`;
  $("messages").replaceChildren();
  me = { userId: "", name };
  members.clear();
  renderMembers();
  client = new ChatClient({ url: config.websocketUrl, name, room, key: guestKey() });
  client.addEventListener("state", (e) => showState(e.detail.state));
  client.addEventListener("sync", (e) => onSync(e.detail));
  client.addEventListener("members", (e) => onMembers(e.detail.members));
  client.addEventListener("message", (e) => addMessage(e.detail));
  client.addEventListener("ack", (e) => onAck(e.detail));
  client.addEventListener("presence", (e) => onPresence(e.detail));
  client.addEventListener("typing", (e) => onTyping(e.detail));
  client.addEventListener("problem", (e) => showProblem(e.detail));
  client.start();
  $("text").focus();
}

$("leave").addEventListener("click", () => {
  client.stop();
  client = null;
  $("chat").hidden = true;
  $("join").hidden = false;
  $("name").focus();
});

// --- Connection state and problems ---

function showState(state) {
  $("state").textContent = STATE_TEXT[state] || state;
  $("state").dataset.state = state;
}

function showProblem({ code, message }) {
  const lead = PROBLEM_TEXT[code];
  $("problem").textContent = lead ? (lead.endsWith(":") ? `${lead} ${message}` : lead) : message;
  clearTimeout(showProblem.timer);
  showProblem.timer = setTimeout(() => ($("problem").textContent = ""), 8000);
}

// --- Messages ---

function onSync({ you }) {
  me = you;
  renderMembers();
  renderNames();
}

function onMembers(list) {
  members.clear();
  for (const m of list) members.set(m.userId, m.name);
  renderMembers();
  renderNames();
}

/**
 * How a user is shown: their name, and when someone else online has the
 * same name, a short mark from their userId to tell them apart.
 */
function label(userId, name) {
  const twins = [...members].filter(([id, n]) => n === name && id !== userId);
  return twins.length === 0 || !userId ? name : `${name} (${userId.slice(2, 6)})`;
}

/** Relabels shown messages, as names come to collide or stop colliding. */
function renderNames() {
  for (const li of $("messages").querySelectorAll("li.message[data-user-id]")) {
    li.querySelector(".name").textContent = label(li.dataset.userId, li.dataset.name);
    li.classList.toggle("mine", li.dataset.userId === me.userId);
  }
  renderTyping();
}

/** Inserts a stored message in seq order, once. */
function addMessage(m) {
  const list = $("messages");
  if (list.querySelector(`li[data-seq="${m.seq}"]`)) return;
  const li = messageItem(label(m.userId, m.name), m.text, m.sentAt);
  li.dataset.id = m.id;
  li.dataset.seq = m.seq;
  li.dataset.userId = m.userId;
  li.dataset.name = m.name;
  if (m.userId === me.userId) li.classList.add("mine");
  let before = null;
  for (const other of list.querySelectorAll("li[data-seq]")) {
    if (Number(other.dataset.seq) > m.seq) {
      before = other;
      break;
    }
  }
  before = before || list.querySelector("li.pending");
  appendKeepingScroll(() => list.insertBefore(li, before));
}

function messageItem(name, text, sentAt) {
  const li = document.createElement("li");
  li.className = "message";
  const who = document.createElement("span");
  who.className = "name";
  who.textContent = name;
  const time = document.createElement("time");
  setTime(time, sentAt);
  const body = document.createElement("p");
  body.className = "text";
  body.textContent = text;
  li.append(who, time, body);
  return li;
}

function setTime(el, sentAt) {
  if (!sentAt) {
    el.textContent = "sending…";
    return;
  }
  const d = new Date(sentAt);
  el.dateTime = sentAt;
  el.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  el.title = d.toLocaleString();
}

function onAck({ clientId, id, seq, userId, sentAt }) {
  const li = $("messages").querySelector(`li[data-client-id="${CSS.escape(clientId)}"]`);
  if (!li) return;
  li.remove();
  // Re-inserted in seq order; if a sync already brought it, that copy stays.
  addMessage({ id, seq, userId, name: me.name, text: li.querySelector(".text").textContent, sentAt });
}

function onPresence({ type, userId, name, sentAt }) {
  const li = document.createElement("li");
  li.className = "notice";
  li.textContent = `${label(userId, name)} ${type === "join" ? "joined" : "left"} · `;
  const time = document.createElement("time");
  setTime(time, sentAt);
  li.append(time);
  appendKeepingScroll(() => $("messages").insertBefore(li, $("messages").querySelector("li.pending")));
}

function renderMembers() {
  const items = [...members].map(([userId, name]) => {
    const li = document.createElement("li");
    li.dataset.userId = userId;
    li.textContent = label(userId, name) + (userId === me.userId ? " (you)" : "");
    return li;
  });
  $("members").replaceChildren(...items);
}

function onTyping({ userId, name }) {
  clearTimeout(typers.get(userId)?.timer);
  const timer = setTimeout(() => {
    typers.delete(userId);
    renderTyping();
  }, TYPING_SHOWN_MS);
  typers.set(userId, { name, timer });
  renderTyping();
}

function renderTyping() {
  const names = [...typers].map(([userId, t]) => label(userId, t.name));
  $("typing").textContent =
    names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}

// --- Scrolling: follow new messages unless the user scrolled up ---

function atBottom() {
  const l = $("messages");
  return l.scrollHeight - l.scrollTop - l.clientHeight < 40;
}

function appendKeepingScroll(insert) {
  const follow = atBottom();
  insert();
  if (follow) scrollToEnd();
  else $("new-messages").hidden = false;
}

function scrollToEnd() {
  const l = $("messages");
  l.scrollTop = l.scrollHeight;
  $("new-messages").hidden = true;
}

$("messages").addEventListener("scroll", () => {
  if (atBottom()) $("new-messages").hidden = true;
});
$("new-messages").addEventListener("click", scrollToEnd);

// --- Sending ---

function textState() {
  const text = $("text").value.trim();
  const n = length(text);
  $("send").disabled = n === 0 || n > MAX_TEXT_CHARS;
  $("counter").textContent = n >= COUNTER_FROM ? `${n} / ${MAX_TEXT_CHARS}` : "";
  $("counter").classList.toggle("over", n > MAX_TEXT_CHARS);
  return { text, ok: !$("send").disabled };
}

$("text").addEventListener("input", () => {
  textState();
  if ($("text").value.trim() && client) client.typing();
});

$("send-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const { text, ok } = textState();
  if (!ok || !client) return;
  const clientId = client.send(text);
  const li = messageItem(me.name, text, "");
  li.classList.add("mine", "pending");
  li.dataset.clientId = clientId;
  appendKeepingScroll(() => $("messages").append(li));
  scrollToEnd();
  $("text").value = "";
  textState();
});
