// ChatClient keeps one chat connection alive and speaks the protocol of
// docs/protocol.md: it reconnects with backoff, pings under API Gateway's
// idle timeout, syncs what it missed, and resends unacknowledged messages
// with their original clientId (the server de-duplicates them).
//
// It knows nothing of the page; it reports through DOM events:
//   state    {state: "connecting" | "online" | "reconnecting" | "closed"}
//   sync     {you, members, room}
//   message  {id, room, name, text, sentAt}        (live or from sync)
//   ack      {clientId, id, sentAt}
//   presence {type: "join" | "leave", name, sentAt}
//   typing   {name}
//   problem  {code, message, clientId?}

import { TYPING_INTERVAL_MS } from "./rules.js";

const PING_EVERY_MS = 4 * 60 * 1000; // well under API Gateway's 10-minute idle timeout
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30000;
const SYNC_PAGE = 100;

export class ChatClient extends EventTarget {
  constructor({ url, name, room }) {
    super();
    this.url = url;
    this.name = name;
    this.room = room;
    this.state = "closed";
    this.lastId = ""; // the newest message id held
    this.pending = new Map(); // clientId → text, in send order
    this.attempt = 0;
    this.lastTypingSent = 0;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    if (this.ws) this.ws.close(1000, "left");
    this.setState("closed");
  }

  /** Queues a message and sends it now if online; returns its clientId. */
  send(text) {
    const clientId = newClientId();
    this.pending.set(clientId, text);
    this.transmit({ action: "new-message", text, clientId });
    return clientId;
  }

  /** Tells the room the user is typing, at most once per interval. */
  typing() {
    const now = Date.now();
    if (this.state !== "online" || now - this.lastTypingSent < TYPING_INTERVAL_MS) return;
    this.lastTypingSent = now;
    this.transmit({ action: "typing" });
  }

  connect() {
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    const q = new URLSearchParams({ room: this.room });
    if (this.name) q.set("name", this.name);
    let ws;
    try {
      ws = new WebSocket(`${this.url}?${q}`);
    } catch (err) {
      this.emit("problem", { code: "config", message: `Cannot connect to ${this.url}: ${err.message}` });
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.attempt = 0;
      this.setState("online");
      this.requestSync();
      this.pingTimer = setInterval(() => this.transmit({ action: "ping" }), PING_EVERY_MS);
    });
    ws.addEventListener("message", (e) => this.receive(e.data));
    ws.addEventListener("close", () => {
      clearInterval(this.pingTimer);
      if (this.ws !== ws) return;
      this.ws = null;
      if (!this.stopped) this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    this.attempt++;
    this.setState("reconnecting");
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (this.attempt - 1));
    const delay = cap / 2 + Math.random() * (cap / 2); // "equal jitter"
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  requestSync() {
    const frame = { action: "sync", limit: this.lastId ? SYNC_PAGE : 50 };
    if (this.lastId) frame.after = this.lastId;
    this.transmit(frame);
  }

  transmit(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  receive(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    switch (f.type) {
      case "sync":
        this.onSync(f);
        break;
      case "new-message":
        this.noteId(f.id);
        this.emit("message", f);
        break;
      case "ack":
        this.pending.delete(f.clientId);
        this.noteId(f.id);
        this.emit("ack", f);
        break;
      case "join":
      case "leave":
        this.emit("presence", f);
        break;
      case "typing":
        this.emit("typing", f);
        break;
      case "error":
        // internal errors may be retried (same clientId) after reconnecting;
        // anything else will fail again unchanged.
        if (f.clientId && f.code !== "internal") this.pending.delete(f.clientId);
        this.emit("problem", f);
        break;
      case "pong":
        break;
      default:
        if (f.message) this.emit("problem", { code: "gateway", message: f.message });
    }
  }

  onSync(f) {
    const paging = Boolean(this.lastId);
    this.emit("sync", { you: f.you, members: f.members, room: f.room });
    for (const m of f.messages) {
      this.noteId(m.id);
      this.emit("message", m);
    }
    if (paging && f.more) {
      this.requestSync(); // more missed messages than one page
      return;
    }
    for (const [clientId, text] of this.pending) {
      this.transmit({ action: "new-message", text, clientId });
    }
  }

  noteId(id) {
    if (id > this.lastId) this.lastId = id;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", { state });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
