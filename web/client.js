// ChatClient keeps one chat connection alive and speaks the protocol of
// docs/protocol.md (version 5): it reconnects with backoff, pings about
// every 4 minutes (and, while visible, after 30 s of silence), holds the room's messages by seq (and the seqs declared skipped)
// and fetches any gap, numbers its new-message frames so that the server
// stores them in the order typed, resends unacknowledged messages with
// their original clientId (the server de-duplicates them), and applies
// join and leave by version, fetching any it missed by their numbers
// (pseq). Under overload it sheds and never amplifies, by the rules of
// "What a client does" in docs/protocol.md, as internal/chatclient does: a
// window of unanswered frames, one resend wave per backoff however many
// error frames come, rate-limited frames again when told and paced.
//
// It knows nothing of the page; it reports through DOM events:
//   state    {state: "connecting" | "online" | "reconnecting" | "closed"}
//   sync     {you: {userId, name}, room, first, more}           (first: the connection's first; more: older exist)
//   ready    {role}                                          (the connection's first full sync is in: frames may go;
//            role: the user's in a private room, else "")
//   older    {messages, more}                                  (a page of older history, asked for with loadOlder)
//   members  {members: [{userId, name}]}                     (online users, by name)
//   message  {id, seq, room, userId, name, text, sentAt}     (live or fetched; once per seq)
//   ack      {clientId, id, seq, userId, sentAt}
//   presence {type: "join" | "leave" | "rename", userId, name, was?, version, pseq, sentAt}  (only events that change something, live or fetched; rename: a join under a new name while online, was the name before)
//   typing   {userId, name}
//   change   {type: "edit" | "delete" | "reaction", seq, target, userId, name, emoji?, removed?, state?}
//            (state: the changed message as it is after it, with its version; live or fetched)
//   rooms    {rooms: [{room, seq, mentions?}], mine}     (other rooms' latest seqs, asked for with fetchRooms;
//            mine: the signed-in user's private rooms)
//   access   {action, seq, userId, name, role, by, byName, mutedUntil?, sentAt, replay?}
//            (a room's member added, removed, muted, banned; live, or with replay from a sync: history)
//   roster, audit, invite-link                                (a private room's frames of those types, as sent)
//   problem  {code, message, clientId?}                      (code "signed_out": the sign-in ended; the client stopped)

import { PING_WHEN_WATCHED_MS, pingDelay, PROTOCOL_VERSION, TYPING_INTERVAL_MS, watchedPingDelay } from "./rules.js";

const SYNC_PAGE = 100;
const GAP_WAIT_MS = 1500; // a gap often fills by itself: messages overtake each other
const SYNC_RETRY_MS = 5000; // a sync or presence fetch unanswered this long may be asked again
const MAX_WINDOW = 16; // new-message frames unanswered at once, at most
const GATEWAY_THROTTLED = "Too Many Requests"; // API Gateway's refusal of a frame that reached no function
const ANSWER_TIMEOUT_MS = 30000; // a frame unanswered this long counts as lost
const PACE_MIN_MS = 100; // the pace a resend wave sets: doubled from here, at most PACE_MAX_MS
const PACE_MAX_MS = 2000;
// Each ack takes 1/PACE_EASE off the pace, or adds RATE_STEP frames a
// second to the rate it makes, whichever eases more (internal/chatclient).
const PACE_EASE = 16;
const RATE_STEP = 0.25;
/** The pace (ms) after an ack (PACE_EASE, RATE_STEP), as internal/chatclient's eased. */
const eased = (pace) => Math.min(pace - pace / PACE_EASE, pace / (1 + (RATE_STEP * pace) / 1000));
// A socket can stay open and carry nothing (a laptop asleep, a Wi-Fi
// hand-over, a proxy that stalls): a frame that wants an answer and hears
// nothing for ANSWER_WAIT_MS is followed by a ping, and a socket silent for
// PONG_DEADLINE_MS more is closed and replaced. Any frame heard proves it alive.
const ANSWER_WAIT_MS = 4000;
const PONG_DEADLINE_MS = 6000;

// Backoffs (internal/chat.Backoff): the wait before retry n doubles from
// first up to max, drawn from its upper half ("equal jitter").
const RECONNECT = { first: 500, max: 30000 };
const MANAGE_TRIES = 6; // a roster, mute, ban… frame refused for load goes again at most this often (within ~15 s)
const WAVE = { first: 250, max: 8000 }; // resend waves
const GAP_MAX_MS = 10000; // the longest a gap waits to be fetched
const FIRST_SYNC = { first: SYNC_RETRY_MS, max: 30000 };

const TOKEN_RENEW_MS = 30000; // how long before its token expires a connection is replaced

/** The expiry (ms) of a JWT, from its payload; 0 if it cannot be read. */
export function tokenExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return (JSON.parse(atob(payload)).exp || 0) * 1000;
  } catch {
    return 0;
  }
}

/** The wait (ms) before retry n of backoff b. */
export function backoff(b, n) {
  const d = Math.min(b.max, b.first * 2 ** Math.max(n, 0));
  return d / 2 + Math.random() * (d / 2);
}

/** Whether a request asked for at t (ms) may still be answered. */
const recent = (t) => Date.now() - t < SYNC_RETRY_MS;

// Errors after which the connection cannot go on: what was not
// acknowledged is sent again, in order, on a new one.
const RECONNECT_CODES = new Set(["not_connected", "invalid_frame"]);

// The frames that store (numbered, limited as messages, acknowledged).
const WRITES = new Set(["new-message", "edit", "delete", "react"]);

export class ChatClient extends EventTarget {
  constructor({ url, name, room, key, token, create = false, dm = "", invite = "" }) {
    super();
    this.url = url;
    this.name = name;
    this.create = create; // a private room: made if there is none
    this.dm = dm; // direct messages: the other account's user id (made on first use)
    this.invite = invite; // an invite link's token: a private room's membership, until the first connection is ready
    this.managed = new Map(); // action → {frame, tries}: the latest managing frame of each action (manage)
    this.room = room;
    this.key = key; // the guest key the server derives the userId from
    this.token = token; // signed in: async () => a token, or null once signed out
    this.connects = 0;
    this.state = "closed";
    this.last = null; // every message up to this seq is held (null until the first sync)
    this.highest = 0; // the highest seq the room is known to have
    this.held = new Set(); // seqs held: messages and skipped seqs
    // clientId → {body, frame, sent, sentAt, due}, in send order: the
    // writes (messages, edits, deletes, reactions) not yet acknowledged.
    // body is the frame but its clientId and number; frame is its number
    // on this connection (0: not sent on it yet); sent, that it went and is
    // not answered; due, that it may not go (again) before.
    this.pending = new Map();
    this.gapTries = 0; // gap fetches since one brought something
    // How long a gap may stay open before it is fetched: GAP_WAIT_MS, doubled
    // (to GAP_MAX_MS) by each gap fetch that brought nothing the live events did
    // not bring too (they were late, not lost: a loaded server), halved back
    // by one that did.
    this.gapWait = GAP_WAIT_MS;
    this.presence = new Map(); // userId → {online, version, name}
    this.early = []; // presence events heard before the first sync (tellEarly)
    // Presence events are numbered per room: every one up to pLast is applied
    // (or shown by a sync), pSeen holds those above it, pHighest is the room's.
    this.pLast = 0;
    this.pHighest = 0;
    this.pSeen = new Set();
    this.presenceAskedAt = 0;
    this.pStuck = -1; // pLast when a presence reply last left an event missing
    // The room's count of users online, and whether it is too large to list
    // them (then presence is not kept: no join or leave comes).
    this.online = 0;
    this.onlineAt = 0; // the time of the latest online event applied (they may come out of order)
    this.large = false;
    this.attempt = 0;
    this.lastTypingSent = 0;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    // The browser's word on the network: offline ends the socket at once
    // (it would go silent), online reconnects without waiting for a backoff.
    this.onNetwork ??= (e) => (e.type === "offline" ? this.goOffline() : this.retryNow());
    globalThis.addEventListener?.("offline", this.onNetwork);
    globalThis.addEventListener?.("online", this.onNetwork);
    // A page someone looks at again checks its socket if it has been quiet.
    this.onVisible ??= () => this.watchQuiet(this.ws);
    globalThis.document?.addEventListener("visibilitychange", this.onVisible);
    this.connect();
  }

  stop() {
    this.stopped = true;
    globalThis.removeEventListener?.("offline", this.onNetwork);
    globalThis.removeEventListener?.("online", this.onNetwork);
    globalThis.document?.removeEventListener("visibilitychange", this.onVisible);
    for (const t of [this.retryTimer, this.gapTimer, this.pGapTimer, this.waveTimer, this.pumpTimer, this.answerTimer, this.stallTimer, this.tokenTimer]) clearTimeout(t);
    this.waveTimer = this.pumpTimer = this.answerTimer = this.stallTimer = null;
    clearTimeout(this.pingTimer);
    clearTimeout(this.quietTimer);
    if (this.ws) this.ws.close(1000, "left");
    this.setState("closed");
  }

  /**
   * Queues a message and sends it as soon as the connection and the window
   * allow; returns its clientId. A message sent before, from a connection
   * that ended, goes again with its clientId: the server stores it once.
   * extras: replyTo (the seq it answers), mentions (user ids).
   */
  send(text, clientId = newClientId(), { replyTo, mentions } = {}) {
    return this.write({ action: "new-message", text, ...(replyTo ? { replyTo } : {}), ...(mentions?.length ? { mentions } : {}) }, clientId);
  }

  /** Edits the text of the user's message at seq target; returns the clientId. */
  edit(target, text) {
    return this.write({ action: "edit", target, text });
  }

  /** Deletes the user's message at seq target; returns the clientId. */
  delete(target) {
    return this.write({ action: "delete", target });
  }

  /** Reacts to the message at seq target with emoji, or takes the reaction back; returns the clientId. */
  react(target, emoji, remove = false) {
    return this.write({ action: "react", target, emoji, ...(remove ? { remove } : {}) });
  }

  /** Queues a write (a frame body without clientId and number), in order with the others. */
  write(body, clientId = newClientId()) {
    this.pending.set(clientId, { body, frame: 0, sent: false, sentAt: 0, due: 0 });
    this.pump();
    return clientId;
  }

  /**
   * Sends a message again that failed or is taking long: at once if it is
   * still queued, else queued anew under the same clientId (nothing was
   * stored under it); and reconnects now if there is no connection.
   */
  retry(clientId, text, extras = {}) {
    const p = this.pending.get(clientId);
    if (p) Object.assign(p, { due: 0, sent: false }); // its number kept: a copy the server has is answered as such
    else this.send(text, clientId, extras);
    this.retryNow();
    this.pump();
  }

  /** The writes not yet acknowledged (messages, edits, deletes, reactions), in send order: [{clientId, body}]. */
  unsent() {
    return [...this.pending].map(([clientId, p]) => ({ clientId, body: p.body }));
  }

  /** Gives up a message not yet acknowledged (one already on its way may still be stored, and then shows). */
  cancel(clientId) {
    const p = this.pending.get(clientId);
    if (!p) return;
    this.pending.delete(clientId);
    // Its number on this connection would hold up the frames after it:
    // on a new connection they are numbered anew.
    if (p.frame && this.ws) this.reconnectNow();
    else this.pump();
  }

  /** Asks for the page of history before seq; false if one is already on its way. */
  loadOlder(before) {
    if (this.olderBefore || !this.ready || before <= 1) return false;
    this.olderBefore = before;
    this.transmit({ action: "sync", before, limit: SYNC_PAGE });
    return true;
  }

  /** Reconnects at once (the "Reconnect now" button). */
  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  /** Tells the room the user is typing, at most once per interval. */
  typing() {
    const now = Date.now();
    if (this.state !== "online" || now - this.lastTypingSent < TYPING_INTERVAL_MS) return;
    this.lastTypingSent = now;
    this.transmit({ action: "typing" });
  }

  async connect() {
    const attempt = ++this.connects; // a later connect() makes this one give up
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    const q = new URLSearchParams({ room: this.room });
    if (this.name) q.set("name", this.name);
    if (this.key) q.set("key", this.key);
    if (this.create) q.set("create", "1");
    if (this.dm) q.set("dm", this.dm);
    if (this.invite) q.set("invite", this.invite);
    // Signed in: the token travels as a subprotocol (browsers can set no
    // other header), fetched fresh for every connection.
    let protocols;
    if (this.token) {
      const token = await this.token().catch(() => null);
      if (attempt !== this.connects || this.stopped) return;
      if (!token) {
        this.stop();
        this.emit("problem", { code: "signed_out", message: "" });
        return;
      }
      protocols = ["chat", token];
      // The server ends a connection when its token expires: a new one, with
      // a fresh token, is opened a little before (what is unsent goes again).
      clearTimeout(this.tokenTimer);
      const exp = tokenExpiry(token);
      if (exp) this.tokenTimer = setTimeout(() => this.stopped || this.reconnectNow(), Math.max(exp - Date.now() - TOKEN_RENEW_MS, 1000));
    }
    let ws;
    try {
      ws = new WebSocket(`${this.url}?${q}`, protocols);
    } catch (err) {
      this.emit("problem", { code: "config", message: `Cannot connect to ${this.url}: ${err.message}` });
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.ready = false; // until the first sync on this connection
    clearTimeout(this.stallTimer); // the old socket's watch
    this.stallTimer = null;
    this.frame = 0; // new-message frames are numbered per connection
    clearTimeout(this.waveTimer); // the old connection's
    clearTimeout(this.pumpTimer);
    this.waveTimer = this.pumpTimer = null;
    this.window = MAX_WINDOW; // numbered frames unanswered at once
    // After a refusal, one frame per max(pace, paceFloor) ms, not before
    // nextSend (the window alone cannot bring a client below one frame per
    // round trip). Each wave doubles pace; each ack eases it (PACE_EASE,
    // RATE_STEP). paceFloor is the shortest wait a rate_limited
    // told (a longer one is a frame's place in the line, not the rate).
    // Both end when nothing is pending.
    this.pace = 0;
    this.paceFloor = 0;
    this.nextSend = 0;
    this.waves = 0; // resend waves since the last ack
    for (const p of this.pending.values()) Object.assign(p, { frame: 0, sent: false, due: 0 });
    this.syncAskedAt = 0;
    this.presenceAskedAt = 0;
    this.olderBefore = 0;
    ws.addEventListener("open", () => {
      this.attempt = 0;
      this.setState("online");
      this.requestSync();
      // The first sync's reply may be lost like any post, and nothing is
      // sent before it comes: ask again while it is unanswered, backing off.
      const askAgain = (n) =>
        setTimeout(() => {
          if (this.ws !== ws || this.ready) return;
          this.requestSync();
          askAgain(n + 1);
        }, backoff(FIRST_SYNC, n));
      askAgain(0);
      const pingLater = () => {
        this.pingTimer = setTimeout(() => {
          if (this.ws !== ws) return;
          this.transmit({ action: "ping" });
          pingLater();
        }, pingDelay());
      };
      pingLater();
      this.watchQuiet(ws);
    });
    ws.addEventListener("message", (e) => this.receive(e.data));
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return; // an old socket's close: the timers are the new one's
      clearTimeout(this.pingTimer);
      clearTimeout(this.quietTimer);
      this.ws = null;
      this.ready = false;
      if (!this.stopped) this.scheduleReconnect();
    });
  }

  /** Closes the connection and opens a new one at once (after a server error that needs it). */
  reconnectNow() {
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    clearTimeout(this.pingTimer);
    clearTimeout(this.quietTimer);
    clearTimeout(this.stallTimer);
    this.stallTimer = null;
    if (ws) ws.close(1000, "reconnecting");
    if (!this.stopped) this.connect();
  }

  scheduleReconnect() {
    this.attempt++;
    this.setState("reconnecting");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), backoff(RECONNECT, this.attempt - 1));
  }

  /**
   * Asks for what follows the last contiguous seq held (or the latest page),
   * with the room's members; gap: the messages only (a gap fetch, which the
   * server answers without reading the room).
   */
  requestSync(gap = false) {
    const frame = { action: "sync", limit: this.last === null ? 50 : SYNC_PAGE };
    if (this.last !== null) frame.after = this.last;
    if (gap && this.last !== null) frame.gap = true;
    this.syncAskedAt = Date.now();
    this.syncGap = !!frame.gap;
    this.transmit(frame);
  }

  /** Fetches a gap unless a sync is already on its way. */
  fillGap() {
    // Nothing but the first sync goes out before its reply; it brings the gap too.
    if (!this.ready || this.last === null || this.highest <= this.last) return;
    if (!recent(this.syncAskedAt)) this.requestSync(true);
    // Its reply may be lost (a throttled frame, a failed post): without one,
    // ask again when the request is no longer recent.
    this.scheduleGap(this.syncAskedAt + SYNC_RETRY_MS - Date.now());
  }

  /**
   * Sends what the window allows: the unacknowledged messages in order,
   * each again with its number if it has one, new ones numbered next, none
   * before its due time (a rate-limited frame waits as told, and the ones
   * after it wait for it), one per pace after a rate_limited.
   */
  pump() {
    if (!this.ready || !this.ws) return;
    const now = Date.now();
    let unanswered = 0;
    for (const p of this.pending.values()) if (p.sent) unanswered++;
    for (const [clientId, p] of this.pending) {
      if (p.sent) continue;
      if (p.due > now) return this.pumpAt(p.due);
      const pace = Math.max(this.pace, this.paceFloor);
      if (pace && this.nextSend > now) return this.pumpAt(this.nextSend);
      if (unanswered >= this.window) return;
      this.nextSend = now + pace;
      if (!p.frame) p.frame = ++this.frame;
      p.sent = true;
      p.sentAt = now;
      unanswered++;
      this.transmit({ ...p.body, clientId, frame: p.frame });
      this.watchAnswers();
    }
  }

  pumpAt(t) {
    clearTimeout(this.pumpTimer);
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = null;
      if (!this.stopped) this.pump();
    }, Math.max(t - Date.now(), 0));
  }

  /**
   * The answer to frames the client cannot tell were lost: API Gateway's
   * own error frames (which frame they answer is not said). However many
   * come, one resend wave, after a backoff that
   * grows with each wave until an ack comes: every unanswered numbered
   * frame is unsent again and the window is 1, so they go again one at a
   * time, in order, as acks come back (one answered meanwhile is not sent
   * again). The server stores what it never got, and answers the rest
   * with their original acks.
   */
  wave(gatewayMessage = "") {
    if (this.waveTimer || !this.ws) return;
    const ws = this.ws;
    let wait = backoff(WAVE, this.waves);
    // A frame that reached a function that failed or is still running (API
    // Gateway stopped waiting after 29 s) may well be stored: later, most
    // answers are in, and fewer copies race.
    if (gatewayMessage && gatewayMessage !== GATEWAY_THROTTLED) wait = Math.max(wait, SYNC_RETRY_MS);
    this.waveTimer = setTimeout(() => {
      this.waveTimer = null;
      if (this.ws !== ws || this.stopped) return; // a new connection resends everything itself
      this.waves++;
      this.window = 1;
      this.pace = Math.min(Math.max(2 * this.pace, PACE_MIN_MS), PACE_MAX_MS);
      for (const p of this.pending.values()) p.sent = false;
      this.pump();
    }, wait);
  }

  /** A frame unanswered for ANSWER_TIMEOUT_MS (its answer was lost, or it was) starts a wave. */
  watchAnswers() {
    if (this.answerTimer) return;
    this.answerTimer = setTimeout(() => {
      this.answerTimer = null;
      if (this.stopped) return;
      let waiting = false;
      for (const p of this.pending.values()) {
        if (p.sent && Date.now() - p.sentAt >= ANSWER_TIMEOUT_MS) this.wave();
        waiting ||= p.sent;
      }
      if (waiting) this.watchAnswers();
    }, ANSWER_TIMEOUT_MS);
  }

  /** Asks again for a sync or presence fetch refused for the rate limit (or failed), after wait ms. */
  retryLater({ action }, wait) {
    const ws = this.ws;
    setTimeout(() => {
      if (this.ws !== ws || this.stopped) return; // a new connection asks anew
      if (action === "presence") this.requestPresence();
      else if (action === "sync" && this.olderBefore) this.transmit({ action: "sync", before: this.olderBefore, limit: SYNC_PAGE });
      else if (action === "sync") {
        this.syncAskedAt = 0;
        this.requestSync(this.ready && this.syncGap); // as it was asked; a connection not ready owes a full one
      }
    }, wait);
  }

  /** Takes the room's count from a pong or an online event; a room back at the size where members are listed is synced, for the list. */
  noteOnline(f) {
    const large = !!f.large;
    if (f.online === this.online && large === this.large) return;
    this.online = f.online;
    if (large !== this.large) {
      this.large = large;
      if (large) {
        this.presence.clear();
        this.emitMembers();
      } else if (this.ready && !recent(this.syncAskedAt)) {
        this.requestSync();
      }
    }
    this.emit("online", { online: this.online, large: this.large });
  }

  /** Asks for a page of the users online (a large room's list), after cursor. */
  fetchMembers(cursor = "") {
    this.transmit(cursor ? { action: "members", cursor } : { action: "members" });
  }

  /**
   * Asks for the latest seq of each room named (at most 20), for unread
   * counts, and with seen (the highest seq shown in each) how many of the
   * messages above it mention the user; the answer is a "rooms" event.
   */
  fetchRooms(names, seen) {
    // Asked again if refused for load, as a managing frame is: a page that
    // just connected asks for several things at once, and its room list
    // should not wait for the next minute's round.
    this.manage({ action: "rooms", rooms: names, ...(seen ? { seen } : {}) });
  }

  /**
   * Sends a frame that asks or changes something once, when the
   * connection is ready (else nothing: the page asks again): rooms, or a
   * private room's roster, invite, remove, mute or audit
   * (docs/protocol.md); its answer comes as an event of the reply's type,
   * a refusal as a problem. A refusal for load sends it again
   * (manageAgain).
   */
  manage(frame) {
    if (!this.ready) return;
    this.managed.set(frame.action, { frame, tries: 0 });
    this.transmit(frame);
  }

  /**
   * A managing frame the server was too busy for (rate_limited, internal)
   * goes again after the wait it said or a jittered backoff, whichever is
   * longer, at most MANAGE_TRIES times; a newer frame of the same action
   * replaces it.
   */
  manageAgain(action, wait) {
    const m = this.managed.get(action);
    if (!m || m.tries >= MANAGE_TRIES) return;
    // Not before the wait told, and later each time: the reads it competes
    // with (the page's own) take their share of the user's limit too.
    const delay = Math.max(wait, backoff(WAVE, m.tries++));
    setTimeout(() => {
      if (this.ready && this.managed.get(action) === m) this.transmit(m.frame);
    }, delay);
  }

  /** Asks for the presence events after the last contiguous one. */
  requestPresence() {
    this.presenceAskedAt = Date.now();
    this.transmit({ action: "presence", after: this.pLast });
  }

  /** Applies a join or leave, live or fetched, and notes its number. */
  applyEvent(f) {
    const was = this.presence.get(f.userId)?.name;
    const change = this.applyPresence(f.userId, f.name, f.type === "join", f.version, f.pseq);
    const e = change === "moved" ? f : change === "renamed" && f.type === "join" ? { ...f, type: "rename", was } : null;
    // Heard before the client's first sync: held, and told after it only
    // if the sync's read came before it (the user's own last connection
    // leaving, as they rename or reload, came before, and is no news).
    if (e && this.last === null) this.early.push(e);
    else if (e) this.emit("presence", e);
    if (change) this.emitMembers();
    if (f.pseq > this.pLast) {
      this.pSeen.add(f.pseq);
      if (f.pseq > this.pHighest) this.pHighest = f.pseq;
    }
  }

  /** Tells the presence events held until the first sync that it did not reflect: numbered after its read (pseq), and still so. */
  tellEarly(pseq) {
    for (const e of this.early) {
      const p = this.presence.get(e.userId);
      if ((e.pseq || Infinity) > pseq && p && p.online === (e.type !== "leave")) this.emit("presence", e);
    }
    this.early = [];
  }

  /**
   * Moves pLast over the presence events now contiguous, and fetches the
   * ones still missing after a jittered wait: events overtake each other
   * while a room fills, and a whole room that lost one should not ask at once.
   * Only a number known for the whole wait is fetched.
   */
  notePresence() {
    while (this.pSeen.has(this.pLast + 1)) this.pSeen.delete(++this.pLast);
    for (const k of this.pSeen) if (k <= this.pLast) this.pSeen.delete(k);
    if (this.last === null || this.pHighest <= this.pLast || this.pGapTimer) return;
    const want = this.pHighest;
    this.pGapTimer = setTimeout(() => {
      this.pGapTimer = null;
      if (this.pLast >= want) return this.notePresence(); // they all came: numbers learnt since get a wait of their own
      if (!recent(this.presenceAskedAt) && !(recent(this.syncAskedAt) && !this.syncGap)) this.requestPresence();
    }, GAP_WAIT_MS + Math.random() * GAP_WAIT_MS);
  }

  /**
   * A presence reply, or leaves the server sent together (live: applied as
   * live events). A number still missing may be an event being kept as
   * the log was read: it is asked for once more after the usual wait.
   * Missing from two replies, the log no longer has it, and a sync corrects
   * every member.
   */
  onPresenceLog(f) {
    if (f.live) {
      // Events the server sent together (leaves found at once, a busy room's
      // burst): live events, not the reply.
      for (const e of f.events) this.applyEvent(e);
      return this.notePresence();
    }
    this.presenceAskedAt = 0;
    for (const e of f.events) this.applyEvent(e);
    this.notePresence();
    if (f.more) this.requestPresence();
    else if (this.pHighest > this.pLast && this.pStuck === this.pLast) this.requestSync();
    else if (this.pHighest > this.pLast) this.pStuck = this.pLast;
  }

  transmit(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(JSON.stringify(frame));
    if (frame.action !== "typing") this.expectAnswer();
  }

  /**
   * Watches the socket after a frame that wants an answer: when nothing at
   * all has been heard for ANSWER_WAIT_MS since the latest such frame, it
   * pings; still nothing PONG_DEADLINE_MS later, the socket is stalled and
   * replaced (what was not acknowledged goes again on the new one, and its
   * sync brings what was missed).
   */
  expectAnswer() {
    this.sentAt = Date.now();
    if (!this.stallTimer) this.watch(this.ws, ANSWER_WAIT_MS);
  }

  watch(ws, wait) {
    this.stallTimer = setTimeout(() => {
      this.stallTimer = null;
      if (this.ws !== ws || this.heardAt >= this.sentAt) return; // heard since: alive
      const waited = Date.now() - this.sentAt;
      if (waited < ANSWER_WAIT_MS) return this.watch(ws, ANSWER_WAIT_MS - waited);
      ws.send(JSON.stringify({ action: "ping" }));
      const asked = Date.now();
      this.stallTimer = setTimeout(() => {
        this.stallTimer = null;
        if (this.ws !== ws) return;
        if (this.heardAt < asked) this.replace();
        else this.pongWait = PONG_DEADLINE_MS; // answered in time
      }, this.pongWait || PONG_DEADLINE_MS);
    }, wait);
  }

  /**
   * While the page is visible, pings when nothing has been heard for
   * about PING_WHEN_WATCHED_MS (watchedPingDelay: spread wide, so that a
   * room's pages, quiet since the same message, do not ping together):
   * the ping wants an answer, so a silent socket is noticed and replaced
   * (watch). Hidden, only the regular pings go.
   */
  watchQuiet(ws) {
    clearTimeout(this.quietTimer);
    if (!ws || this.ws !== ws || globalThis.document?.hidden) return;
    const since = Math.max(this.heardAt || 0, this.sentAt || 0);
    if (since !== this.quietSince) { // a new quiet stretch: its wait, drawn once
      this.quietSince = since;
      this.quietWait = watchedPingDelay();
    }
    const left = this.quietWait - (Date.now() - since);
    if (left <= 0) {
      const before = this.sentAt;
      this.transmit({ action: "ping" });
      if (this.sentAt !== before) return this.watchQuiet(ws); // a new quiet stretch, from the ping
    }
    this.quietTimer = setTimeout(() => this.watchQuiet(ws), left > 0 ? left : PING_WHEN_WATCHED_MS);
  }

  /**
   * Gives up a socket that is stalled: "Reconnecting…", and a new one. The
   * wait for a pong doubles with each one given up (up to a minute), so that
   * a server slow to answer is not met with everyone reconnecting.
   */
  replace() {
    if (this.stopped || !this.ws) return;
    this.emit("problem", { code: "stalled", message: "" });
    this.pongWait = Math.min(2 * (this.pongWait || PONG_DEADLINE_MS), 60000);
    this.attempt++; // shown as "Reconnecting…"
    this.reconnectNow();
  }

  /** The device went offline: the socket is closed, and a new one waits for the browser's online event (or Reconnect now). */
  goOffline() {
    if (this.stopped) return;
    this.emit("problem", { code: "offline", message: "" });
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    clearTimeout(this.pingTimer);
    clearTimeout(this.quietTimer);
    clearTimeout(this.stallTimer);
    clearTimeout(this.retryTimer);
    this.stallTimer = null;
    this.attempt++;
    this.setState("reconnecting");
    if (ws) ws.close(1000, "offline");
  }

  receive(data) {
    this.heardAt = Date.now();
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
        this.hold(f);
        this.noteHighest(f.seq);
        break;
      case "ack":
        this.acknowledge(f);
        break;
      case "skip":
        this.holdEmpty(f.seq);
        break;
      case "edit":
      case "delete":
      case "reaction":
        // A change holds its seq as a skipped one does; the page applies
        // the state it carries (by version).
        this.emit("change", { ...f, live: true });
        this.holdEmpty(f.seq);
        break;
      case "join":
      case "leave":
        this.applyEvent(f);
        this.notePresence();
        break;
      case "presence":
        this.onPresenceLog(f);
        break;
      case "typing":
        this.emit("typing", f);
        break;
      case "pong":
        this.noteOnline(f);
        if (!this.large) {
          if (f.pseq > this.pHighest) this.pHighest = f.pseq;
          this.notePresence();
        }
        this.noteHighest(f.seq);
        this.fillGap();
        break;
      case "online":
        if (f.at < this.onlineAt) break; // an older push that came late
        this.onlineAt = f.at;
        this.noteOnline(f);
        break;
      case "members":
        this.emit("membersPage", { members: f.members, next: f.next || "" });
        break;
      case "rooms":
        this.emit("rooms", { rooms: f.rooms, mine: f.mine || [] });
        break;
      case "access": // a room's member added, removed, muted, banned (docs/protocol.md): in the room's order
        this.emit("access", f);
        if (f.seq > 0) this.holdEmpty(f.seq); // seq 0: not stored, live only
        break;
      case "invite-link":
      case "roster":
      case "audit":
        this.emit(f.type, f);
        break;
      case "error":
        this.onError(f);
        break;
      default:
        // API Gateway's own frames (Too Many Requests, Internal server
        // error) do not say which frame they answer: one resend wave.
        if (f.message) {
          this.emit("problem", { code: "gateway", message: f.message });
          this.wave(f.message);
        }
    }
  }

  /**
   * Makes the message frame an error answered go again, with its number, not
   * before due and one at a time (the window becomes 1); the caller pumps.
   * False when the frame is no longer pending under that number.
   */
  sendAgain({ clientId, frame }, due) {
    const p = this.pending.get(clientId);
    if (!p || p.frame !== frame) return false;
    Object.assign(p, { sent: false, due });
    this.window = 1;
    return true;
  }

  onError(f) {
    if (f.code === "rate_limited" && WRITES.has(f.action)) {
      // The frame kept its number: it goes again when told, the ones after
      // it wait for it, then go one at a time, paced.
      const wait = f.retryAfterMs || 1000;
      if (this.sendAgain(f, Date.now() + wait)) {
        if (!this.paceFloor || wait < this.paceFloor) this.paceFloor = wait;
        this.pump();
      }
      this.emit("problem", f);
      return;
    }
    if (f.code === "rate_limited" || (f.code === "internal" && !WRITES.has(f.action))) {
      // A sync or presence fetch is asked again; a ping simply goes unanswered.
      const wait = f.code === "internal" ? backoff(WAVE, this.waves) : f.retryAfterMs || 1000;
      if (f.action === "sync" || f.action === "presence") this.retryLater(f, wait);
      this.manageAgain(f.action, wait);
      // A rooms fetch is asked again too (manageAgain): no problem to show.
      if (f.code === "rate_limited" && f.action !== "rooms") this.emit("problem", f);
      return;
    }
    if (f.code === "out_of_order" || f.code === "internal") {
      // Nothing was stored and the frame kept its number: it goes again
      // (after a backoff, for internal) once the frames before it are
      // answered. Those are not sent again: they are on their way (a slow
      // server, not a lost frame: a lost one brings an error frame of its
      // own), and a copy would only race them.
      const due = f.code === "internal" ? Date.now() + backoff(WAVE, this.waves++) : 0;
      if (this.sendAgain(f, due)) this.pump();
      if (f.code === "internal") this.emit("problem", f);
      return;
    }
    if (RECONNECT_CODES.has(f.code)) {
      // The connection cannot go on: start again on a new one and resend in order.
      this.emit("problem", { code: "reconnecting", message: f.message });
      this.reconnectNow();
      return;
    }
    // Anything else will fail again unchanged: stop sending it, and say so.
    if (f.clientId && this.pending.delete(f.clientId)) this.emit("failed", f);
    else this.emit("problem", f);
    this.pump();
  }

  onSync(f) {
    if (f.before && f.before === this.olderBefore) {
      this.olderBefore = 0;
      const messages = f.messages.filter((m) => !this.held.has(m.seq));
      for (const m of messages) this.held.add(m.seq);
      for (const seq of f.skipped || []) this.held.add(seq);
      this.emit("older", { messages, more: f.more });
      for (const c of f.changes || []) this.emit("change", c);
      for (const a of f.access || []) this.emit("access", { ...a, replay: true });
      return;
    }
    this.syncAskedAt = 0;
    if (f.version > PROTOCOL_VERSION) this.emit("problem", { code: "outdated", message: "" });
    const first = this.last === null;
    const before = this.last;
    const held = this.held.size;
    this.emit("sync", { you: f.you, room: f.room, first, more: f.more, editWindowMs: f.editWindowMs });
    if (f.members) { // a gap fetch's reply has none: the members stay as they are
      this.large = !!f.large;
      if (this.large) this.presence.clear(); // a large room's members are not kept: they are not told
      this.online = f.online ?? f.members.length;
      this.emit("online", { online: this.online, large: this.large });
      this.reconcilePresence(f.members, f.presence || {}, f.pseq || 0);
      const pseq = f.pseq || 0; // the sync shows every presence event up to it
      if (pseq > this.pLast) this.pLast = pseq;
      if (pseq > this.pHighest) this.pHighest = pseq;
      if (first) this.tellEarly(pseq);
    }
    for (const m of f.messages) this.hold(m);
    for (const c of f.changes || []) {
      if (c.clientId && this.pending.has(c.clientId)) this.acknowledgeBySync(c);
      if (!this.held.has(c.seq)) this.emit("change", c);
    }
    // What happened to the room's members, in place; the state it left is
    // the roster's, read once the connection is ready.
    // A first sync's are history; a later one's were missed live, and count.
    for (const a of f.access || []) if (!this.held.has(a.seq)) this.emit("access", { ...a, replay: first });
    for (const seq of f.skipped || []) this.hold({ seq, skipped: true });
    if (!first && f.first - 1 > this.last) {
      // Everything before first holds nothing and never will (the room's
      // expired history): nothing to fetch there.
      this.last = f.first - 1;
      this.advance();
    }
    if (first) {
      // The page is the room's latest: what comes before it is history, and
      // it holds all it covers but the seqs still being stored.
      const seqs = [...f.messages.map((m) => m.seq), ...(f.skipped || [])];
      this.last = seqs.length ? Math.min(...seqs) - 1 : f.seq;
      this.advance();
    }
    this.notePresence(); // events that came before the reply may have left a gap
    if (this.last > (before ?? -1)) this.gapTries = 0;
    if (!first) {
      const brought = this.held.size > held;
      this.gapWait = brought ? Math.max(this.gapWait / 2, GAP_WAIT_MS) : Math.min(2 * this.gapWait, GAP_MAX_MS);
    }
    if (!this.ready && f.members) { // a connection is ready with a full sync's reply, not a gap fetch's
      this.ready = true;
      this.invite = ""; // a member now: later connections need no link
      this.create = false; // the room is there now (and whose it is was settled)
      this.pump();
      this.emit("ready", { role: f.role || "" });
    }
    if (typeof f.seq === "number" && f.seq > this.highest) this.highest = f.seq;
    if (!first && f.more && this.last > before) this.requestSync(true); // more missed messages than one page
    else if (this.highest > this.last) {
      // What the reply left open (or a full page that did not move the mark)
      // is seqs still being stored: asked for again later and later, not at once.
      clearTimeout(this.gapTimer); // the wait for this reply
      this.gapTimer = null;
      this.scheduleGap(backoff({ first: this.gapWait, max: GAP_MAX_MS }, this.gapTries++));
    }
  }

  /**
   * A sync brought a message of ours still pending (its ack was lost): the
   * page shows it sent. One numbered on this connection stays queued until
   * its frame is answered, so that the frames after it are not held up by a
   * number the server never saw (it answers the copy with the original's ack).
   */
  acknowledgeBySync(m) {
    const p = this.pending.get(m.clientId);
    if (!p.frame) return this.acknowledge(m);
    if (!p.shown) this.emit("ack", m);
    p.shown = true;
  }

  /** A message of ours is stored: its ack came (or a sync brought it). */
  acknowledge(f) {
    const p = this.pending.get(f.clientId);
    if (!this.pending.delete(f.clientId)) return; // an ack for a retry already acknowledged
    this.window = Math.min(2 * this.window, MAX_WINDOW);
    this.waves = 0;
    this.pace = eased(this.pace);
    if (!this.pending.size) this.pace = this.paceFloor = 0;
    this.emit("ack", f);
    // A message is held from its ack; a change by its event (to its author
    // too), which brings the state it made: a lost one is a gap, fetched.
    if (p.body.action === "new-message") {
      this.held.add(f.seq);
      this.advance();
    }
    this.noteHighest(f.seq); // a reaction that changed nothing took no seq (0)
    this.pump();
  }

  /** Holds a live seq that holds no message (skipped, a change, an access change) and notes it as the room's latest. */
  holdEmpty(seq) {
    this.hold({ seq, skipped: true });
    this.noteHighest(seq);
  }

  /** Holds a message (or a skipped seq) once per seq and moves the contiguous mark on. */
  hold(m) {
    if (m.clientId && this.pending.has(m.clientId)) this.acknowledgeBySync(m);
    if (this.held.has(m.seq)) return;
    this.held.add(m.seq);
    if (!m.skipped) this.emit("message", m);
    this.advance();
  }

  advance() {
    if (this.last === null) return;
    while (this.held.has(this.last + 1)) this.last++;
  }

  /** Notes that the room has reached seq; a gap is fetched after a short wait. */
  noteHighest(seq) {
    if (typeof seq === "number" && seq > this.highest) this.highest = seq;
    if (this.last === null || this.highest <= this.last) return;
    this.scheduleGap(this.gapWait);
  }

  /** Fetches the gap after ms, unless a fetch is already scheduled. */
  scheduleGap(ms) {
    if (this.gapTimer) return;
    this.gapTimer = setTimeout(() => {
      this.gapTimer = null;
      this.fillGap();
    }, ms);
  }

  /** Applies a user's state if version is newer than what is held; says what it changed: "moved" (came or went), "renamed" or "". */
  applyPresence(userId, name, online, version, pseq) {
    const known = this.presence.get(userId);
    if (known && known.version >= version) return "";
    // pseq: the event's number; one the server could not number is newer than any sync's read.
    this.presence.set(userId, { online, version, name, pseq: pseq || Infinity });
    if (!known || known.online !== online) return "moved";
    return known.name !== name ? "renamed" : ""; // a join under a new name, while online
  }

  /**
   * Applies a sync's members (its users online, with their versions) read
   * after presence event pseq: a user it lists is online at that version or
   * later; a user held online it does not list has left, unless an event
   * numbered after pseq brought them (the read missed it).
   */
  reconcilePresence(members, versions, pseq) {
    const online = new Map(members.map((m) => [m.userId, m.name]));
    for (const [userId, version] of Object.entries(versions)) {
      const known = this.presence.get(userId);
      if (!known || known.version <= version) {
        this.presence.set(userId, { online: online.has(userId), version, name: online.get(userId) ?? known?.name ?? "", pseq });
      }
    }
    for (const [userId, p] of this.presence) {
      if (p.online && !online.has(userId) && !(p.pseq > pseq)) this.presence.set(userId, { ...p, online: false });
    }
    this.emitMembers();
  }

  emitMembers() {
    const members = [...this.presence].filter(([, p]) => p.online).map(([userId, p]) => ({ userId, name: p.name }));
    members.sort((a, b) => a.name.localeCompare(b.name) || a.userId.localeCompare(b.userId));
    this.emit("members", { members });
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

/** A new guest key: 32 random characters the server accepts (A–Z a–z 0–9 _ -). */
export function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...b)).replaceAll("+", "-").replaceAll("/", "_");
}

function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
