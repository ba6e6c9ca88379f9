package chatclient

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// Options configure a Client. URL, Room and Name are required.
type Options struct {
	URL, Room, Name string
	// Key is the guest key the user id is derived from (default: a new one,
	// kept for every connection of the client).
	Key string
	// PingInterval is how often the client pings, give or take the
	// protocol's jitter (default: the protocol's interval).
	PingInterval time.Duration
	// GapWait is how long a gap may stay open before the client fetches it
	// (default 1.5 s: messages often overtake each other).
	GapWait time.Duration
	// OnMessage, when set, is called once per seq held, with live telling a
	// new-message event from a message fetched by sync. It must not block.
	OnMessage func(m chat.MessageEvent, live bool, at time.Time)
	// OnAck, when set, is called for each acknowledged clientId.
	OnAck func(clientID string, seq int64, at time.Time)
	// OnChange, when set, is called once per change (edit, delete,
	// reaction) held, live or fetched, after the state it brings is
	// applied to the message it changed. It must not block.
	OnChange func(e chat.ChangeEvent, live bool, at time.Time)
}

// Stats count what a client saw.
type Stats struct {
	Duplicates int // events for a seq already held (a retry sent again)
	GapFetches int // syncs asked for a gap (not the first sync of a connection)
	// PresenceFetches counts presence frames sent for a missed join or
	// leave; PresenceSyncs the syncs asked for one the log no longer had.
	PresenceFetches int
	PresenceSyncs   int
	Recovered       int // messages a gap fetch brought that no live event had
	Skipped         int // seqs learnt to hold no message (skip events, a sync's skipped)
	Reconnects      int // connections opened after the first
	// HandshakesRefused counts handshakes answered 429 (the stage's
	// throttle, the account's quota of new connections) and tried again.
	HandshakesRefused int
	// ForcedReconnects counts connections that ended without Drop or
	// Close: closed by the server, or by the client after an error that
	// needs a new connection.
	ForcedReconnects int
	MessageFrames    int // write frames (new-message, edit, delete, react) written, first tries and resends
	Resent           int // of them, numbered frames written again
	Waves            int // resend waves after API Gateway's error frames or an unanswered frame
	Acks             int // acks received (a retry's included)
	ErrorFrames      int // error frames received, the gateway's own included
	ErrorsByCode     map[string]int
}

// Client is one chat user. Use Dial; methods are safe for concurrent use.
type Client struct {
	o Options

	mu      sync.Mutex
	ws      *websocket.Conn
	closed  bool
	ready   bool  // the connection's first sync has arrived: frames may go
	frame   int64 // the connection's last new-message frame number
	name    string
	userID  string
	last    int64 // every seq up to this is held (-1 before the first sync)
	highest int64 // the highest seq the room is known to have
	held    map[int64]chat.MessageEvent
	skipped map[int64]bool // seqs that hold no message
	pending []outgoing     // not acknowledged, in send order
	// early holds the states changes brought of messages not held yet
	// (a change overtook its message): applied when the message comes.
	early map[int64]chat.MessageEvent
	// window is how many numbered frames may be unanswered at once: it
	// shrinks to 1 when the server or the gateway refuses, and doubles
	// with each ack up to maxWindow.
	window int
	// After a refusal, frames go one per max(pace, paceFloor), not before
	// nextSend (a rate: the window alone cannot bring a client below one
	// frame per round trip). Each resend wave doubles pace; each ack eases
	// it (eased). paceFloor is the shortest wait a rate_limited told
	// (the user's bucket refills one token per that; a longer wait is a
	// frame's place in the line, not the rate). Both end when nothing is
	// pending.
	pace, paceFloor time.Duration
	nextSend        time.Time
	waves           int // resend waves since the last ack
	waveTimer       *time.Timer
	pumpTimer       *time.Timer
	answerTimer     *time.Timer
	gapTries        int // gap fetches since the last that brought something
	// gapWait is how long a gap may stay open before it is fetched:
	// Options.GapWait, doubled (up to maxGapWait) by each gap fetch that
	// brought nothing the live events did not bring too (they were late,
	// not lost: a loaded server), halved back by one that did.
	gapWait   time.Duration
	syncTries int // first syncs asked for on this connection
	dropped   bool
	presence  map[string]state
	syncAt    time.Time // when the sync on its way was asked for
	syncGap   bool      // it is a gap fetch: it brings messages, not members
	gapTimer  *time.Timer
	stats     Stats

	// Presence events are numbered per room: every one up to pLast has been
	// applied (or shown by a sync), pSeen holds those above it, and the
	// room is known to have reached pHighest.
	pLast, pHighest int64
	pSeen           map[int64]bool
	presenceAt      time.Time // when the presence fetch on its way was asked for
	pGapTimer       *time.Timer
	pStuck          int64 // pLast when a presence reply last left an event missing

	// online is the room's count of users online (pong, sync, online
	// events; onlineAt orders the events); large says the room is too
	// large to list them: presence is then not kept (docs/protocol.md,
	// members).
	online   int64
	onlineAt int64
	large    bool

	// offlineUntil holds reconnection off (a simulated network drop).
	offlineUntil time.Time
	done         chan struct{} // closed by Close
}

// outgoing is a write not acknowledged yet: a message (action
// new-message), or a change of the message at target; frame is its number
// on the current connection (0: not sent on it yet). sent says that it
// went out and is not answered; due, that it may not go (again) before
// then.
type outgoing struct {
	action, clientID, text string
	target                 int64
	emoji                  string
	remove                 bool
	extras                 Extras // a message's
	frame                  int64
	sent                   bool
	sentAt, due            time.Time
}

// The client's sending rules (docs/protocol.md, "What a client does"),
// which web/client.js follows too.
const (
	// maxWindow bounds the numbered frames unanswered at once: fewer than
	// a burst of the server's message limit, so that a client alone never
	// runs into it.
	maxWindow = 16
	// askAgainAfter is how long a sync or presence fetch may go unanswered
	// before it is asked again: its reply may be lost like any post.
	askAgainAfter = 5 * time.Second
	// minPace and maxPace bound the pace a resend wave sets.
	minPace, maxPace = 100 * time.Millisecond, 2 * time.Second
	// paceEase and rateStep: each ack takes 1/paceEase off the pace, or
	// adds rateStep frames a second to the rate it makes, whichever eases
	// more (the latter above about 270 ms). A sixteenth alone halves the
	// pace in about 11 acks, and a quarter (2.4 acks) found the refusing
	// rate again every third frame, about one refusal per message; but a
	// sixteenth alone is slow to leave a long pace, where acks are rare
	// (docs/benchmarks.md §16).
	paceEase = 16
	rateStep = 0.25
	// answerTimeout is how long a new-message frame may go unanswered
	// before it counts as lost (its answer can be lost like any post) and
	// a resend wave comes: longer than API Gateway waits for a function.
	answerTimeout = 30 * time.Second
)

// eased is the pace after an ack (paceEase, rateStep).
func eased(pace time.Duration) time.Duration {
	byRate := time.Duration(float64(pace) / (1 + rateStep*pace.Seconds()))
	return min(pace-pace/paceEase, byRate)
}

// Backoffs of the client: resend waves after frames the gateway refused,
// out_of_order or internal; first syncs unanswered; reconnections;
// handshakes refused with 429.
var (
	waveBackoff      = chat.Backoff{First: 250 * time.Millisecond, Max: 8 * time.Second}
	firstSyncBackoff = chat.Backoff{First: askAgainAfter, Max: 30 * time.Second}
	reconnectBackoff = chat.Backoff{First: 200 * time.Millisecond, Max: 5 * time.Second}
	throttledBackoff = chat.Backoff{First: 250 * time.Millisecond, Max: 4 * time.Second} // a handshake answered 429
)

type state struct {
	online  bool
	version int64
	name    string
	pseq    int64 // the number of the event or the sync that set it (an event without one: after any sync)
}

// Dial opens the first connection and returns once it is open; the client
// keeps reconnecting until Close.
func Dial(ctx context.Context, o Options) (*Client, error) {
	if o.PingInterval <= 0 {
		o.PingInterval = chat.DefaultLimits().PingInterval
	}
	if o.GapWait <= 0 {
		o.GapWait = 1500 * time.Millisecond
	}
	if o.Key == "" {
		o.Key = crand.Text()
	}
	c := &Client{o: o, name: o.Name, last: -1, gapWait: o.GapWait, held: map[int64]chat.MessageEvent{}, skipped: map[int64]bool{}, early: map[int64]chat.MessageEvent{}, presence: map[string]state{},
		pSeen: map[int64]bool{}, pStuck: -1, stats: Stats{ErrorsByCode: map[string]int{}}, done: make(chan struct{})}
	ws, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.open(ws)
	c.mu.Unlock()
	return c, nil
}

func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	q := url.Values{"room": {c.o.Room}, "name": {c.o.Name}, "key": {c.o.Key}}
	ws, refused, err := DialSocket(ctx, c.o.URL+"?"+q.Encode())
	c.mu.Lock()
	c.stats.HandshakesRefused += refused
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	return ws, nil
}

// DialSocket opens a WebSocket to u, each try within 15 s, trying again
// after a handshake refused with 429 (the stage's throttle or the
// account's quota of new connections), with jittered backoff: 8 tries at
// most, about 16 s of waiting. refused counts the 429s.
func DialSocket(ctx context.Context, u string) (ws *websocket.Conn, refused int, err error) {
	const tries = 8
	for {
		tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		ws, resp, err := websocket.Dial(tctx, u, nil)
		cancel()
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			return ws, refused, err
		}
		if refused++; refused == tries {
			return nil, refused, fmt.Errorf("%d handshakes refused with 429, the last: %w", tries, err)
		}
		if err := chat.Sleep(ctx, throttledBackoff.Delay(refused-1)); err != nil {
			return nil, refused, err
		}
	}
}

// open starts using a new connection: asks for what it missed, then reads
// and pings until it ends. Called with mu held.
func (c *Client) open(ws *websocket.Conn) {
	c.ws, c.ready, c.frame, c.dropped = ws, false, 0, false
	c.window, c.waves, c.syncTries, c.pace, c.paceFloor = maxWindow, 0, 0, 0, 0
	c.syncAt, c.presenceAt = time.Time{}, time.Time{}
	for _, t := range []**time.Timer{&c.waveTimer, &c.pumpTimer} { // the old connection's
		if *t != nil {
			(*t).Stop()
			*t = nil
		}
	}
	for i := range c.pending {
		c.pending[i].frame, c.pending[i].sent, c.pending[i].due = 0, false, time.Time{}
	}
	c.requestSync(false)
	c.awaitFirstSync(ws)
	go c.read(ws)
	go c.ping(ws)
}

// awaitFirstSync asks again for ws's first sync while it is unanswered,
// backing off: nothing is sent on the connection before. Called with mu
// held.
func (c *Client) awaitFirstSync(ws *websocket.Conn) {
	time.AfterFunc(firstSyncBackoff.Delay(c.syncTries), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.ws != ws || c.ready || c.closed {
			return
		}
		c.syncTries++
		c.requestSync(false)
		c.awaitFirstSync(ws)
	})
}

// Send queues a message and sends it as soon as the connection is ready
// and the window allows.
func (c *Client) Send(clientID, text string) {
	c.SendWith(clientID, text, Extras{})
}

// Extras are what a message may carry besides its text.
type Extras struct {
	// ReplyTo is the seq of the message it answers (0: none): one of the
	// room that is not deleted, else the server refuses it with gone.
	ReplyTo int64
	// Mentions are the user ids it mentions, each once, at most
	// chat.DefaultLimits().MaxMentions.
	Mentions []string
}

// SendWith is Send for a message that replies to another or mentions
// users.
func (c *Client) SendWith(clientID, text string, x Extras) {
	c.write(outgoing{action: chat.ActionNewMessage, clientID: clientID, text: text, extras: x})
}

// Edit changes the text of the user's message at seq target, in order
// with the client's other writes.
func (c *Client) Edit(clientID string, target int64, text string) {
	c.write(outgoing{action: chat.ActionEdit, clientID: clientID, target: target, text: text})
}

// Delete deletes the user's message at seq target.
func (c *Client) Delete(clientID string, target int64) {
	c.write(outgoing{action: chat.ActionDelete, clientID: clientID, target: target})
}

// React reacts to the message at seq target with emoji (one of
// chat.Reactions), or takes the reaction back.
func (c *Client) React(clientID string, target int64, emoji string, remove bool) {
	c.write(outgoing{action: chat.ActionReact, clientID: clientID, target: target, emoji: emoji, remove: remove})
}

func (c *Client) write(o outgoing) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, o)
	c.pump()
}

// Ping pings now, besides the pings every PingInterval: the pong brings
// the room's latest seq and count online.
func (c *Client) Ping() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.transmit(map[string]any{"action": chat.ActionPing})
}

// Drop ends the connection without a close handshake, as a network drop
// would, and keeps the client offline for at least d; then it reconnects.
func (c *Client) Drop(d time.Duration) {
	c.mu.Lock()
	ws := c.ws
	c.offlineUntil = time.Now().Add(d)
	c.dropped = true
	c.mu.Unlock()
	if ws != nil {
		ws.CloseNow()
	}
}

// Close leaves for good.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.done)
	ws := c.ws
	for _, t := range []*time.Timer{c.gapTimer, c.pGapTimer, c.waveTimer, c.pumpTimer, c.answerTimer} {
		if t != nil {
			t.Stop()
		}
	}
	c.mu.Unlock()
	if ws != nil {
		ws.Close(websocket.StatusNormalClosure, "bye")
	}
}

// Progress is what a client holds, in short: every seq up to Last, the
// highest seq the room is known to have, and how many of its own messages
// are not acknowledged.
type Progress struct {
	Last, Highest int64
	Pending       int
}

// Snapshot is what a client holds at one moment.
type Snapshot struct {
	Progress
	Name    string
	UserID  string
	History []chat.MessageEvent // held messages, by seq, each in the newest state seen
	Members []string            // online names, sorted
	Online  []string            // online user ids, sorted
	// Count is how many users are online as the server last said, and
	// Large whether the room is too large to list them (Members and
	// Online are then empty).
	Count    int64
	Large    bool
	Ready    bool
	Stats    Stats
	Versions map[string]int64
}

// Snapshot returns what the client holds now.
func (c *Client) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{Progress: c.progress(), Name: c.name, UserID: c.userID, Ready: c.ready,
		Stats: c.statsCopy(), Versions: map[string]int64{}, Count: c.online, Large: c.large}
	for _, m := range c.held {
		s.History = append(s.History, m)
	}
	slices.SortFunc(s.History, func(a, b chat.MessageEvent) int { return int(a.Seq - b.Seq) })
	for id, st := range c.presence {
		s.Versions[id] = st.version
		if st.online {
			s.Members = append(s.Members, st.name)
			s.Online = append(s.Online, id)
		}
	}
	slices.Sort(s.Members)
	slices.Sort(s.Online)
	return s
}

// Stats returns what the client counted so far; unlike Snapshot it copies
// no history.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statsCopy()
}

func (c *Client) statsCopy() Stats {
	s := c.stats
	s.ErrorsByCode = maps.Clone(c.stats.ErrorsByCode)
	return s
}

// Progress returns the client's progress now; unlike Snapshot it copies
// nothing, so a load tool may poll it for every client while others send.
func (c *Client) Progress() Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.progress()
}

// Large reports whether the client was last told its room is too large
// to list its members (Snapshot has it too, with everything it holds).
func (c *Client) Large() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.large
}

func (c *Client) progress() Progress {
	return Progress{Last: c.last, Highest: c.highest, Pending: len(c.pending)}
}

// read handles a connection's frames until it ends, then reconnects.
func (c *Client) read(ws *websocket.Conn) {
	for {
		_, data, err := ws.Read(context.Background())
		if err != nil {
			break
		}
		c.mu.Lock()
		if c.ws == ws {
			c.receive(data, time.Now())
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ws != ws || c.closed {
		return
	}
	if !c.dropped {
		c.stats.ForcedReconnects++
	}
	c.ws, c.ready = nil, false
	go c.reconnect()
}

// reconnect dials until it succeeds or the client is closed, backing off.
func (c *Client) reconnect() {
	c.mu.Lock()
	offline := time.Until(c.offlineUntil)
	c.mu.Unlock()
	for attempt := 0; ; attempt++ {
		select {
		case <-c.done:
			return
		case <-time.After(max(offline, 0) + reconnectBackoff.Delay(attempt)):
		}
		offline = 0
		ws, err := c.dial(context.Background())
		if err != nil {
			continue
		}
		c.mu.Lock()
		if c.closed || c.ws != nil {
			c.mu.Unlock()
			ws.CloseNow()
			return
		}
		c.stats.Reconnects++
		c.open(ws)
		c.mu.Unlock()
		return
	}
}

func (c *Client) ping(ws *websocket.Conn) {
	limits := chat.DefaultLimits()
	limits.PingInterval = c.o.PingInterval
	t := time.NewTimer(limits.PingDelay(rand.Float64()))
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			t.Reset(limits.PingDelay(rand.Float64()))
		}
		c.mu.Lock()
		current := c.ws == ws
		if current {
			c.transmit(map[string]any{"action": chat.ActionPing})
		}
		c.mu.Unlock()
		if !current {
			return
		}
	}
}

// wave is the client's answer to frames it cannot tell were lost: API
// Gateway's own error frames (throttled, or failed: which frame they
// answer is not said). However many come, one resend wave is scheduled,
// after a backoff that grows with each wave until an ack comes: it makes
// every unanswered numbered frame on this connection unsent again, and
// the window 1, so they go again one at a time, in order, as acks come
// back (a frame answered meanwhile is not sent again). The server stores
// what it never got and answers the rest with their original acks.
// Called with mu held.
func (c *Client) wave(gatewayMessage string) {
	if c.waveTimer != nil || c.ws == nil {
		return
	}
	ws := c.ws
	wait := waveBackoff.Delay(c.waves)
	if gatewayMessage != "" && gatewayMessage != chat.GatewayThrottled {
		// The frame reached a function that failed or is still running
		// (API Gateway stopped waiting after 29 s): it may well be stored.
		// Later, most answers are in, and fewer copies race.
		wait = max(wait, askAgainAfter)
	}
	c.waveTimer = time.AfterFunc(wait, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.waveTimer = nil
		if c.ws != ws || c.closed {
			return // a new connection resends everything itself
		}
		c.waves++
		c.stats.Waves++
		c.window = 1
		c.pace = min(max(2*c.pace, minPace), maxPace)
		for i := range c.pending {
			c.pending[i].sent = false
		}
		c.pump()
	})
}

// pump sends what the window allows: the unacknowledged messages in
// order, each again with its number if it has one, new ones numbered
// next, none before its due time (a rate-limited frame waits as told, and
// the ones after it wait for it). Called with mu held.
func (c *Client) pump() {
	if !c.ready || c.ws == nil {
		return
	}
	now := time.Now()
	unanswered := 0
	for _, o := range c.pending {
		if o.sent {
			unanswered++
		}
	}
	for i := range c.pending {
		o := &c.pending[i]
		switch {
		case o.sent:
			continue
		case o.due.After(now):
			c.pumpAt(o.due)
			return
		case max(c.pace, c.paceFloor) > 0 && c.nextSend.After(now):
			c.pumpAt(c.nextSend)
			return
		case unanswered >= c.window:
			return
		}
		c.nextSend = now.Add(max(c.pace, c.paceFloor))
		if o.frame == 0 {
			c.frame++
			o.frame = c.frame
		} else {
			c.stats.Resent++
		}
		o.sent, o.sentAt = true, now
		unanswered++
		c.sendFrame(*o)
		c.watchAnswers()
	}
}

// watchAnswers checks, answerTimeout after a frame went, that it was
// answered; a frame that was not starts a resend wave (its answer was
// lost, or the frame was). Called with mu held.
func (c *Client) watchAnswers() {
	if c.answerTimer != nil {
		return
	}
	c.answerTimer = time.AfterFunc(answerTimeout, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.answerTimer = nil
		if c.closed {
			return
		}
		waiting := false
		for _, o := range c.pending {
			if o.sent && time.Since(o.sentAt) >= answerTimeout {
				c.wave("")
			}
			waiting = waiting || o.sent
		}
		if waiting {
			c.watchAnswers()
		}
	})
}

// pumpAt runs pump again at t (the earliest of the times asked for).
func (c *Client) pumpAt(t time.Time) {
	if c.pumpTimer != nil {
		c.pumpTimer.Stop()
	}
	c.pumpTimer = time.AfterFunc(time.Until(t), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.pumpTimer = nil
		if !c.closed {
			c.pump()
		}
	})
}

// restart drops the current connection and lets read reconnect; nothing
// more is sent on it. Called with mu held.
func (c *Client) restart() {
	c.ready = false
	if c.ws != nil {
		go c.ws.CloseNow()
	}
}

// inbound is every field of every server frame the client reads.
type inbound struct {
	chat.MessageEvent
	ClientID string              `json:"clientId"`
	Code     string              `json:"code"`
	Message  string              `json:"message"`
	Version  json.RawMessage     `json:"version"`
	Members  []chat.Member       `json:"members"`
	Presence map[string]int64    `json:"presence"`
	Messages []chat.MessageEvent `json:"messages"`
	Skipped  []int64             `json:"skipped"`
	First    int64               `json:"first"`
	Online   int64               `json:"online"`
	Large    bool                `json:"large"`
	At       int64               `json:"at"`
	Frame    int64               `json:"frame"`
	Action   string              `json:"action"`
	PSeq     int64               `json:"pseq"`
	Events   []inbound           `json:"events"`
	Changes  []chat.ChangeEvent  `json:"changes"`
	Target   int64               `json:"target"`
	Emoji    string              `json:"emoji"`
	Removed  bool                `json:"removed"`
	State    *chat.MessageEvent  `json:"state"`
	// RetryAfterMs comes with rate_limited.
	RetryAfterMs int64       `json:"retryAfterMs"`
	More         bool        `json:"more"`
	Live         bool        `json:"live"`
	You          chat.Member `json:"you"`
}

// receive handles one frame; called with mu held.
func (c *Client) receive(data []byte, at time.Time) {
	var f inbound
	if err := json.Unmarshal(data, &f); err != nil {
		return
	}
	switch f.Type {
	case chat.TypeSync:
		c.onSync(f, at)
	case chat.TypeNewMessage:
		f.MessageEvent.Type = ""
		c.hold(f.MessageEvent, true, at)
		c.noteHighest(f.Seq)
	case chat.TypeAck:
		c.stats.Acks++
		i := slices.IndexFunc(c.pending, func(o outgoing) bool { return o.clientID == f.ClientID })
		if i < 0 {
			return // a retry of a message already acknowledged
		}
		o := c.pending[i]
		c.pending = slices.Delete(c.pending, i, i+1)
		c.window, c.waves = min(2*c.window, maxWindow), 0
		c.pace = eased(c.pace)
		if len(c.pending) == 0 {
			c.pace, c.paceFloor = 0, 0
		}
		defer c.pump()
		if c.o.OnAck != nil {
			c.o.OnAck(f.ClientID, f.Seq, at)
		}
		// A message is held from its ack; a change is held by its event (to
		// its author too), which brings the state it made: a lost one is a
		// gap, fetched. A reaction that changed nothing took no seq.
		if o.action == chat.ActionNewMessage {
			m := chat.MessageEvent{ID: f.ID, Seq: f.Seq, Room: c.o.Room, UserID: c.userID, Name: c.name, Text: o.text, SentAt: f.SentAt,
				Mentions: o.extras.Mentions}
			if o.extras.ReplyTo > 0 {
				m.ReplyTo = &chat.Quote{Seq: o.extras.ReplyTo} // the seq alone, as a change's state quotes it
			}
			c.holdQuietly(m)
		}
		c.noteHighest(f.Seq)
	case chat.TypeJoin, chat.TypeLeave:
		c.applyEvent(f)
		c.notePresence()
	case chat.TypePresence:
		c.onPresenceLog(f)
	case chat.TypeSkip, chat.TypeAccess: // an access change holds its seq as a skipped one does
		if f.Seq > 0 {
			c.skip(f.Seq)
			c.noteHighest(f.Seq)
		}
	case chat.TypeEdit, chat.TypeDelete, chat.TypeReaction:
		c.holdChange(chat.ChangeEvent{Type: f.Type, Room: f.Room, Seq: f.Seq, Target: f.Target, UserID: f.UserID, Name: f.Name,
			SentAt: f.SentAt, Emoji: f.Emoji, Removed: f.Removed, State: f.State}, true, at)
		c.noteHighest(f.Seq)
	case chat.TypePong:
		c.noteOnline(f)
		if !c.large {
			c.pHighest = max(c.pHighest, f.PSeq)
			c.notePresence()
		}
		c.noteHighest(f.Seq)
		c.fillGap()
	case chat.TypeOnline:
		if f.At < c.onlineAt {
			return // an older push that came late
		}
		c.onlineAt = f.At
		c.noteOnline(f)
	case "": // the gateway's own frames: Too Many Requests, Internal server error
		if f.Message != "" {
			c.stats.ErrorFrames++
			c.stats.ErrorsByCode[f.Message]++
			c.wave(f.Message)
		}
	case chat.TypeError:
		c.stats.ErrorFrames++
		c.stats.ErrorsByCode[f.Code]++
		c.onError(f)
	}
}

// onError acts on an error frame; called with mu held.
func (c *Client) onError(f inbound) {
	wait := time.Duration(f.RetryAfterMs) * time.Millisecond
	switch {
	case f.Code == chat.CodeRateLimited && chat.Writes(f.Action):
		// The frame kept its number: it goes again when told, and the ones
		// after it wait for it, then go one at a time, paced.
		if c.sendAgain(f, time.Now().Add(wait)) {
			if wait > 0 && (c.paceFloor == 0 || wait < c.paceFloor) {
				c.paceFloor = wait
			}
			c.pump()
		}
	case f.Code == chat.CodeRateLimited || f.Code == chat.CodeInternal && !chat.Writes(f.Action):
		// A sync or a presence fetch is asked again; a ping simply goes
		// unanswered.
		if f.Action == chat.ActionSync || f.Action == chat.ActionPresence {
			if f.Code == chat.CodeInternal {
				wait = waveBackoff.Delay(c.waves)
			}
			c.retryLater(f, wait)
		}
	case f.Code == chat.CodeOutOfOrder || f.Code == chat.CodeInternal:
		// Nothing was stored and the frame kept its number: it goes again
		// (after a backoff, for internal) once the frames before it are
		// answered. Those are not sent again: they are on their way (a
		// slow server, not a lost frame: a lost one brings an error frame
		// of its own), and a copy would only race them.
		due := time.Now()
		if f.Code == chat.CodeInternal {
			due = due.Add(waveBackoff.Delay(c.waves))
			c.waves++
		}
		if c.sendAgain(f, due) {
			c.pump()
		}
	case f.Code == chat.CodeNotConnected || f.Code == chat.CodeInvalidFrame:
		c.restart() // the connection cannot go on: resend, in order, on a new one
	default:
		// Refused for what it is (too long, invalid): sending it again
		// would not help.
		c.pending = slices.DeleteFunc(c.pending, func(o outgoing) bool { return o.clientID == f.ClientID && f.ClientID != "" })
		c.pump()
	}
}

// noteOnline takes the room's count from a pong or an online event. A room
// back at the size where members are listed is synced, for the list.
// Called with mu held.
func (c *Client) noteOnline(f inbound) {
	c.online = f.Online
	if f.Large == c.large {
		return
	}
	c.large = f.Large
	if c.large {
		clear(c.presence)
	} else if c.ready && !c.membersOnTheirWay() {
		c.requestSync(false)
	}
}

// sendAgain makes the message frame an error answered go again, with its
// number, not before due and one at a time (the window becomes 1); the
// caller pumps. It reports false when the frame is no longer pending under
// that number (acknowledged meanwhile, or renumbered on a new connection).
// Called with mu held.
func (c *Client) sendAgain(f inbound, due time.Time) bool {
	i := slices.IndexFunc(c.pending, func(o outgoing) bool { return o.clientID == f.ClientID })
	if i < 0 || c.pending[i].frame != f.Frame {
		return false
	}
	c.pending[i].sent, c.pending[i].due = false, due
	c.window = 1
	return true
}

func (c *Client) onSync(f inbound, at time.Time) {
	c.syncAt = time.Time{}
	first := c.last < 0
	before, held := c.last, len(c.held)+len(c.skipped)
	if f.You.UserID != "" {
		c.name, c.userID = f.You.Name, f.You.UserID
	}
	if f.Members != nil { // a gap fetch's reply has none: the members stay as they are
		c.online, c.large = f.Online, f.Large
		if f.Large {
			clear(c.presence) // a large room's members are not kept: they are not told
		}
		c.reconcile(f.Members, f.Presence, f.PSeq)
		c.pLast = max(c.pLast, f.PSeq) // the sync shows every presence event up to it
		c.pHighest = max(c.pHighest, f.PSeq)
	}
	for _, m := range f.Messages {
		c.hold(m, false, at)
	}
	for _, e := range f.Changes {
		c.holdChange(e, false, at)
	}
	for _, seq := range f.Skipped {
		c.skip(seq)
	}
	if !first && f.First-1 > c.last {
		// Everything before First holds nothing and never will (the
		// room's expired history): nothing to fetch there.
		c.last = f.First - 1
		c.advance()
	}
	if first {
		// The page is the room's latest: what comes before it is history,
		// and it holds all it covers but the seqs still being stored.
		low := f.Seq
		for _, m := range f.Messages {
			low = min(low, m.Seq-1)
		}
		for _, seq := range f.Skipped {
			low = min(low, seq-1)
		}
		c.last = low
		c.advance()
	}
	c.notePresence() // events that came before the reply may have left a gap
	if c.last > before {
		c.gapTries = 0
	}
	if !first {
		if len(c.held)+len(c.skipped) > held {
			c.gapWait = max(c.gapWait/2, c.o.GapWait)
		} else {
			c.gapWait = min(2*c.gapWait, maxGapWait)
		}
	}
	if !c.ready && f.Members != nil { // a connection is ready with a full sync's reply, not a gap fetch's
		c.ready = true
		c.pump()
	}
	switch {
	case !first && f.More && c.last > before:
		c.requestSync(true) // more missed than one page
	default:
		// A gap the reply did not close (or a full page that did not move
		// the mark) is seqs still being stored: asked for again later and
		// later, not at once.
		c.highest = max(c.highest, f.Seq)
		if c.highest > c.last {
			if c.gapTimer != nil { // the wait for this reply
				c.gapTimer.Stop()
				c.gapTimer = nil
			}
			c.scheduleGap(chat.Backoff{First: c.gapWait, Max: maxGapWait}.Delay(c.gapTries))
			c.gapTries++
		}
	}
}

// maxGapWait bounds how long a gap waits to be fetched.
const maxGapWait = 10 * time.Second

// skip notes a seq that holds no message.
func (c *Client) skip(seq int64) {
	if _, ok := c.held[seq]; ok || c.skipped[seq] {
		return
	}
	c.skipped[seq] = true
	c.stats.Skipped++
	c.advance()
}

// hold keeps a message once per seq; a message held already takes the
// state m brings if it is newer (a sync brings messages as they are now).
func (c *Client) hold(m chat.MessageEvent, live bool, at time.Time) {
	if _, ok := c.held[m.Seq]; ok {
		if live {
			c.stats.Duplicates++
		}
		c.applyState(m)
		return
	}
	if !live && c.last >= 0 {
		c.stats.Recovered++
	}
	c.keep(m)
	if c.o.OnMessage != nil {
		c.o.OnMessage(m, live, at)
	}
	c.advance()
}

// keep holds a message not held yet, with the state of a change that
// came before it, if that is newer.
func (c *Client) keep(m chat.MessageEvent) {
	c.held[m.Seq] = m
	if s, ok := c.early[m.Seq]; ok {
		delete(c.early, m.Seq)
		c.applyState(s)
	}
}

// applyState makes s the state of the message it is (text, version,
// edited, deleted, reactions) if its version is newer than the one held:
// a change that comes late or twice changes nothing. The state of a
// message not held yet that is still to come (above the contiguous mark)
// waits for it in early (at most maxEarlyStates of them); that of one
// older than the history held is dropped.
func (c *Client) applyState(s chat.MessageEvent) {
	m, ok := c.held[s.Seq]
	switch {
	case ok && version(s) > version(m):
		m.Text, m.Version, m.Edited, m.Deleted, m.Reactions, m.RemovedBy = s.Text, s.Version, s.Edited, s.Deleted, s.Reactions, s.RemovedBy
		c.held[s.Seq] = m
	case !ok && s.Seq > c.last:
		if e, ok := c.early[s.Seq]; ok && version(s) > version(e) || !ok && len(c.early) < maxEarlyStates {
			c.early[s.Seq] = s
		}
	}
}

// maxEarlyStates bounds early: past it (a client that holds nothing yet in
// a room of many changes), a message's state comes with its next fetch.
const maxEarlyStates = 1000

// version is a message's version: 1 as sent (omitted), one more per change.
func version(m chat.MessageEvent) int64 { return max(m.Version, 1) }

// holdChange holds a change's seq once (it holds no message), telling
// OnChange, and applies the state it brings to the message it changed.
func (c *Client) holdChange(e chat.ChangeEvent, live bool, at time.Time) {
	if e.State != nil {
		c.applyState(*e.State)
	}
	if _, ok := c.held[e.Seq]; ok || c.skipped[e.Seq] {
		if live {
			c.stats.Duplicates++
		}
		return
	}
	c.skipped[e.Seq] = true
	if c.o.OnChange != nil {
		c.o.OnChange(e, live, at)
	}
	c.advance()
}

// holdQuietly keeps the client's own acknowledged message.
func (c *Client) holdQuietly(m chat.MessageEvent) {
	if _, ok := c.held[m.Seq]; !ok {
		c.keep(m)
	}
	c.advance()
}

// advance moves the contiguous mark over the seqs held, and forgets the
// early states of messages it passed without holding them (older than
// the history held: they will not come).
func (c *Client) advance() {
	if c.last < 0 {
		return
	}
	for {
		if _, ok := c.held[c.last+1]; !ok && !c.skipped[c.last+1] {
			break
		}
		c.last++
	}
	maps.DeleteFunc(c.early, func(seq int64, _ chat.MessageEvent) bool { return seq <= c.last })
}

func (c *Client) noteHighest(seq int64) {
	c.highest = max(c.highest, seq)
	if c.last < 0 || c.highest <= c.last {
		return
	}
	c.scheduleGap(c.gapWait)
}

// scheduleGap fetches the gap after d, unless a fetch is already
// scheduled.
func (c *Client) scheduleGap(d time.Duration) {
	if c.gapTimer != nil {
		return
	}
	c.gapTimer = time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.gapTimer = nil
		c.fillGap()
	})
}

// fillGap asks for what follows the last contiguous seq, unless a sync is
// already on its way (for up to 5 s).
func (c *Client) fillGap() {
	// Nothing but the first sync goes out before its reply; it brings the gap too.
	if !c.ready || c.last < 0 || c.highest <= c.last {
		return
	}
	if !recent(c.syncAt) {
		c.stats.GapFetches++
		c.requestSync(true)
	}
	// Its reply may be lost (a throttled frame, a failed post): without
	// one, ask again when the request is no longer recent.
	c.scheduleGap(time.Until(c.syncAt.Add(askAgainAfter)))
}

// recent reports whether a request asked for at t may still be answered.
func recent(t time.Time) bool { return !t.IsZero() && time.Since(t) < askAgainAfter }

// requestSync asks for what follows the last contiguous seq held (or the
// latest page), with the room's members; gap: the messages only (a gap
// fetch, which the server answers without reading the room).
func (c *Client) requestSync(gap bool) {
	f := map[string]any{"action": chat.ActionSync, "limit": chat.DefaultLimits().MaxHistory}
	if c.last >= 0 {
		f["after"] = c.last
	}
	c.syncGap = gap && c.last >= 0
	if c.syncGap {
		f["gap"] = true
	}
	c.syncAt = time.Now()
	c.transmit(f)
}

// membersOnTheirWay reports whether a sync that lists the members is on
// its way.
func (c *Client) membersOnTheirWay() bool { return recent(c.syncAt) && !c.syncGap }

// applyEvent applies a join or leave, live or fetched, and notes its
// number.
func (c *Client) applyEvent(f inbound) {
	var v int64
	json.Unmarshal(f.Version, &v)
	c.apply(f.UserID, f.Name, f.Type == chat.TypeJoin, v, f.PSeq)
	if f.PSeq > c.pLast {
		c.pSeen[f.PSeq] = true
		c.pHighest = max(c.pHighest, f.PSeq)
	}
}

// notePresence moves pLast over the presence events now contiguous, and
// fetches the ones still missing after a jittered wait (events overtake
// each other while a room fills, and a whole room that lost one event
// should not ask at once): only a number known for the whole wait is
// fetched.
func (c *Client) notePresence() {
	for c.pSeen[c.pLast+1] {
		delete(c.pSeen, c.pLast+1)
		c.pLast++
	}
	for k := range c.pSeen {
		if k <= c.pLast {
			delete(c.pSeen, k)
		}
	}
	if c.last < 0 || c.pHighest <= c.pLast || c.pGapTimer != nil {
		return
	}
	want := c.pHighest
	c.pGapTimer = time.AfterFunc(c.o.GapWait+rand.N(c.o.GapWait), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.presenceDue(want)
	})
}

// presenceDue runs when the wait for the presence events up to want is
// over: if one of them is still missing it is fetched; if they all came,
// the numbers learnt since get a wait of their own. Called with mu held.
func (c *Client) presenceDue(want int64) {
	c.pGapTimer = nil
	if c.pLast < want {
		c.fetchPresence()
		return
	}
	c.notePresence()
}

// fetchPresence asks for the presence events after pLast, unless none is
// missing or a fetch or a sync is already on its way.
func (c *Client) fetchPresence() {
	if c.pHighest <= c.pLast || recent(c.presenceAt) || c.membersOnTheirWay() {
		return
	}
	c.stats.PresenceFetches++
	c.requestPresence()
}

func (c *Client) requestPresence() {
	c.presenceAt = time.Now()
	c.transmit(map[string]any{"action": chat.ActionPresence, "after": c.pLast})
}

// onPresenceLog applies the events a presence fetch brought, or the
// leaves the server sent together (live). An event
// still missing may be one being kept as the log was read (a number is
// taken a moment before its event is written): it is asked for once more
// after the usual wait. Missing from two replies, the log no longer has it
// (or never had it): a sync corrects every member at once.
func (c *Client) onPresenceLog(f inbound) {
	if !f.Live {
		c.presenceAt = time.Time{}
	}
	for _, e := range f.Events {
		c.applyEvent(e)
	}
	c.notePresence()
	switch {
	case f.Live: // events the server sent together: live events, not the reply
	case f.More:
		c.requestPresence()
	case c.pHighest > c.pLast && c.pStuck == c.pLast:
		c.stats.PresenceSyncs++
		c.requestSync(false)
	case c.pHighest > c.pLast:
		c.pStuck = c.pLast
	}
}

func (c *Client) apply(userID, name string, online bool, version, pseq int64) {
	if st, ok := c.presence[userID]; ok && st.version >= version {
		return
	}
	if pseq == 0 { // an event the server could not number: newer than any sync read
		pseq = math.MaxInt64
	}
	c.presence[userID] = state{online, version, name, pseq}
}

// reconcile applies a sync's members (its users online, with their
// versions) read after presence event pseq: a user it lists is online at
// that version or later; a user held online it does not list has left,
// unless an event numbered after pseq brought them (the read missed it).
func (c *Client) reconcile(members []chat.Member, versions map[string]int64, pseq int64) {
	online := map[string]string{}
	for _, m := range members {
		online[m.UserID] = m.Name
	}
	for id, v := range versions {
		if st, ok := c.presence[id]; !ok || st.version <= v {
			name, on := online[id]
			if !on {
				name = st.name
			}
			c.presence[id] = state{on, v, name, pseq}
		}
	}
	for id, st := range c.presence {
		if _, listed := online[id]; st.online && !listed && st.pseq <= pseq {
			st.online = false
			c.presence[id] = st
		}
	}
}

func (c *Client) sendFrame(o outgoing) {
	c.stats.MessageFrames++
	f := map[string]any{"action": o.action, "clientId": o.clientID, "frame": o.frame}
	if o.action == chat.ActionNewMessage || o.action == chat.ActionEdit {
		f["text"] = o.text
	}
	if o.extras.ReplyTo > 0 {
		f["replyTo"] = o.extras.ReplyTo
	}
	if len(o.extras.Mentions) > 0 {
		f["mentions"] = o.extras.Mentions
	}
	if o.action != chat.ActionNewMessage {
		f["target"] = o.target
	}
	if o.action == chat.ActionReact {
		f["emoji"], f["remove"] = o.emoji, o.remove
	}
	c.transmit(f)
}

// retryLater asks again for a sync or a presence fetch refused for the
// rate limit (or failed) after wait. Nothing is sent if the connection
// changed meanwhile: its first sync asks anew.
func (c *Client) retryLater(f inbound, wait time.Duration) {
	ws := c.ws
	time.AfterFunc(wait, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.ws != ws || c.closed {
			return
		}
		switch f.Action {
		case chat.ActionSync:
			c.syncAt = time.Time{}
			c.requestSync(c.ready && c.syncGap) // as it was asked; a connection not ready owes a full one
		case chat.ActionPresence:
			c.requestPresence()
		}
	})
}

// transmit writes a frame to the current connection; called with mu held,
// so that frames go out in the order they are made. A failed write ends
// the connection, and the client reconnects.
func (c *Client) transmit(frame map[string]any) {
	if c.ws == nil {
		return
	}
	data, _ := json.Marshal(frame)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, data); err != nil {
		c.restart()
	}
}

// ErrNotReady is returned by Wait when the condition did not hold in time.
var ErrNotReady = errors.New("chatclient: condition not met in time")

// Wait polls the client's snapshot until cond holds or ctx ends.
func (c *Client) Wait(ctx context.Context, cond func(Snapshot) bool) error {
	for {
		if cond(c.Snapshot()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNotReady, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
