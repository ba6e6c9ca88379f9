package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/chatclient"
	"github.com/chatgo/serverless-chat/internal/metrics"
)

// stats is what the run has measured so far; every field is guarded by mu.
type stats struct {
	mu            sync.Mutex
	connected     int
	connectFailed int
	connectTimes  []time.Duration
	connectErrors map[string]int
	connecting    time.Duration   // from the first client's start to the last one's handshake
	probeTimes    []time.Duration // -probe: connects into the full room
	probeFailed   int
	settle        time.Duration // from every client ready to every client listing every other
	settled       bool
	sent, acked   int
	sentAt        map[string]time.Time // clientId → when it was sent, until acked
	ackLatency    []time.Duration
	latency       []time.Duration // live deliveries to others
	live          int
	firstSend     time.Time
	lastDelivery  time.Time
	floodAnswers  map[string]int // what the flooder heard, by frame type or error
	// -changes: edits, deletes and reactions sent, of them taken back;
	// acked, of them without a seq; and, by clientId, when each was sent
	// until acked. Of the messages, replies and those that mention.
	changesSent, edits, reactions, removals int
	deletes, replies, mentions              int
	changesAcked, unchanged                 int
	changeSentAt                            map[string]time.Time
	changeAckLatency                        []time.Duration
}

// user is one load client: its protocol client and what happens to it.
type user struct {
	index   int
	name    string
	c       *chatclient.Client
	sender  bool
	drops   bool // drops its connection mid-run and comes back
	leaves  bool // leaves for good mid-run
	stopped bool
	seen    *seen // with -changes: the messages it may change, the changes it heard
}

func load(ctx context.Context, cfg config, progress io.Writer) report {
	st := &stats{connectErrors: map[string]int{}, sentAt: map[string]time.Time{}, floodAnswers: map[string]int{}, changeSentAt: map[string]time.Time{}}
	start := time.Now()
	stopProgress := showProgress(st, cfg, progress)

	users := connectAll(ctx, cfg, st)
	defer func() {
		for _, u := range users {
			if u != nil {
				u.c.Close()
			}
		}
	}()
	var live []*user
	for _, u := range users {
		if u != nil {
			live = append(live, u)
		}
	}
	roles(cfg, live)
	waitReady(ctx, live, 15*time.Second)
	settle(ctx, cfg, st, live)
	if cfg.probes > 0 {
		probe(ctx, cfg, st, live)
	}

	if cfg.changes > 0 {
		introduce(live)
	}
	before, metricsErr := serverSums(ctx, cfg.serverMetrics)
	sendAll(ctx, cfg, st, live)
	waitForDeliveries(ctx, cfg, st, live)
	stopProgress()
	r := st.report(cfg, time.Since(start), ctx.Err() != nil)
	tally(live, &r)
	if r.Changes != nil {
		tallyChanges(live, &r)
	}
	if ctx.Err() == nil {
		audit(ctx, cfg, live, &r)
	}
	if cfg.serverMetrics != "" {
		after, err := serverSums(ctx, cfg.serverMetrics)
		if err = errors.Join(metricsErr, err); err != nil {
			r.ServerError = err.Error()
		} else {
			r.Server = serverChange(before, after)
		}
	}
	return r
}

// tally adds up what every client counted: frames sent and answered,
// error frames by code (the gateway's own by their message), reconnects.
func tally(users []*user, r *report) {
	for _, u := range users {
		s := u.c.Stats()
		r.Frames.Sent += s.MessageFrames
		r.Frames.Resent += s.Resent
		r.Frames.Acks += s.Acks
		r.Frames.Errors += s.ErrorFrames
		r.Frames.Waves += s.Waves
		r.Frames.ForcedReconnects += s.ForcedReconnects
		r.GapFetches += s.GapFetches
		r.PresenceFetches += s.PresenceFetches
		r.PresenceSyncs += s.PresenceSyncs
		r.Recovered += s.Recovered
		r.Skipped += s.Skipped
		r.Reconnects += s.Reconnects
		r.HandshakesRefused += s.HandshakesRefused
		r.Duplicates += s.Duplicates
		for code, n := range s.ErrorsByCode {
			if r.ErrorCodes == nil {
				r.ErrorCodes = map[string]int{}
			}
			r.ErrorCodes[code] += n
		}
	}
}

// serverSums reads the local stack's summed metrics; none without a URL.
func serverSums(ctx context.Context, url string) (map[string]float64, error) {
	if url == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("server metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server metrics: %w", err)
	}
	defer resp.Body.Close()
	var sums map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&sums); err != nil {
		return nil, fmt.Errorf("server metrics from %s: %w", url, err)
	}
	return sums, nil
}

// serverChange is what the server counted during the run: each metric's
// change, and failed conditional writes per message stored.
func serverChange(before, after map[string]float64) *serverReport {
	d := map[string]float64{}
	for k, v := range after {
		if x := v - before[k]; x != 0 {
			d[k] = x
		}
	}
	s := &serverReport{Counts: d}
	if stored := d[metrics.MessagesStored]; stored > 0 {
		s.FailedWritesPerMessage = d[metrics.ConditionalWritesFailed] / stored
	}
	return s
}

// connectAll opens the clients, a bounded number at a time, each as soon
// as it may or, with a connect rate, at its scheduled arrival. A failed
// client is nil.
func connectAll(ctx context.Context, cfg config, st *stats) []*user {
	users := make([]*user, cfg.clients)
	sem := make(chan struct{}, cfg.connectConcurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range cfg.clients {
		var t0 time.Time // when its connect time starts
		if cfg.connectRate > 0 {
			t0 = start.Add(time.Duration(float64(i) / cfg.connectRate * float64(time.Second)))
			if chat.Sleep(ctx, time.Until(t0)) != nil {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		if t0.IsZero() {
			t0 = time.Now()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			name := cmp.Or(cfg.name, fmt.Sprintf("load-%d", i))
			var rec *seen // what -changes needs; nil without
			if cfg.changes > 0 {
				rec = newSeen()
			}
			o := chatclient.Options{URL: cfg.url, Room: cfg.room, Name: name, PingInterval: cfg.ping,
				OnMessage: func(m chat.MessageEvent, live bool, at time.Time) {
					st.delivered(m, live, at, i)
					if rec != nil {
						rec.message(m)
					}
				},
				OnAck: func(clientID string, seq int64, at time.Time) { st.ack(clientID, seq, at, rec) }}
			if rec != nil {
				o.OnChange = func(e chat.ChangeEvent, live bool, _ time.Time) { rec.change(e, live) }
			}
			c, err := chatclient.Dial(ctx, o)
			st.mu.Lock()
			defer st.mu.Unlock()
			if err != nil {
				st.connectFailed++
				msg := err.Error() // grouped by the innermost cause: the URL differs per client
				if i := strings.LastIndex(msg, ": "); i >= 0 {
					msg = msg[i+2:]
				}
				if len(st.connectErrors) < 5 || st.connectErrors[msg] > 0 {
					st.connectErrors[msg]++
				}
				return
			}
			st.connected++
			st.connectTimes = append(st.connectTimes, time.Since(t0))
			users[i] = &user{index: i, name: name, c: c, seen: rec}
		})
	}
	wg.Wait()
	st.mu.Lock()
	st.connecting = time.Since(start)
	st.mu.Unlock()
	return users
}

// settle waits (cfg.settle at most) until every client lists every other
// (in a room too large to list, is told it is large), so that no join is
// still going out when the measured part begins, and records how long
// that took after the last client was ready.
func settle(ctx context.Context, cfg config, st *stats, users []*user) {
	start := time.Now()
	wait, cancel := context.WithTimeout(ctx, cfg.settle)
	defer cancel()
	settled := true
	for _, u := range users {
		if u.c.Wait(wait, func(s chatclient.Snapshot) bool { return s.Large || len(s.Online) >= len(users) }) != nil {
			settled = false
		}
	}
	st.mu.Lock()
	st.settle, st.settled = time.Since(start), settled
	st.mu.Unlock()
}

// probe connects cfg.probes more clients into the full room one at a
// time, timing each handshake; each syncs, as clients do, and leaves
// before the next comes.
func probe(ctx context.Context, cfg config, st *stats, users []*user) {
	for i := range cfg.probes {
		if ctx.Err() != nil {
			return
		}
		t0 := time.Now()
		c, err := chatclient.Dial(ctx, chatclient.Options{URL: cfg.url, Room: cfg.room, Name: fmt.Sprintf("probe-%d", i), PingInterval: cfg.ping})
		took := time.Since(t0)
		if err != nil {
			st.mu.Lock()
			st.probeFailed++
			st.mu.Unlock()
			continue
		}
		st.mu.Lock()
		st.probeTimes = append(st.probeTimes, took)
		st.mu.Unlock()
		ready, cancel := context.WithTimeout(ctx, 10*time.Second)
		c.Wait(ready, func(s chatclient.Snapshot) bool { return s.Ready })
		cancel()
		c.Close()
		select { // let the room hear the join and the leave before the next
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// roles picks the senders (the first clients), the clients that drop
// their connection mid-run (the last ones; one of them a sender, when
// there are several of each) and those that leave (just before those that
// drop). parse keeps senders, drop and leave within the clients.
func roles(cfg config, users []*user) {
	for i, u := range users {
		u.sender = i < cfg.senders
	}
	n, drop := len(users), cfg.drop
	if drop > 1 && cfg.senders > 1 {
		users[0].drops = true // a sender drops mid-burst too
		drop--
	}
	for k := range min(drop, n) {
		users[n-1-k].drops = true
	}
	for k := range min(cfg.leave, max(n-drop-cfg.senders, 0)) {
		users[n-1-drop-k].leaves = true
	}
}

// introduce tells each client the other clients' user ids, to mention.
func introduce(users []*user) {
	ids := make([]string, 0, len(users))
	for _, u := range users {
		if id := u.c.Snapshot().UserID; id != "" { // "": not ready, never heard who it is
			ids = append(ids, id)
		}
	}
	for _, u := range users {
		self := u.c.Snapshot().UserID
		u.seen.meet(slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == self }))
	}
}

func waitReady(ctx context.Context, users []*user, limit time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for _, u := range users {
		u.c.Wait(ctx, func(s chatclient.Snapshot) bool { return s.Ready })
	}
}

func (st *stats) delivered(m chat.MessageEvent, live bool, at time.Time, receiver int) {
	sender, _, sentAt, ok := parseText(m.Text)
	if !ok || int(sender) == receiver {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.lastDelivery = at
	if live {
		st.live++
		st.latency = append(st.latency, at.Sub(sentAt))
	}
}

// ack counts an acknowledged message or change; with -changes, rec notes
// the client's own message, which it may edit from now on.
func (st *stats) ack(clientID string, seq int64, at time.Time, rec *seen) {
	st.mu.Lock()
	t, message := st.sentAt[clientID]
	if message {
		delete(st.sentAt, clientID)
		st.acked++
		st.ackLatency = append(st.ackLatency, at.Sub(t))
	} else if sent, ok := st.changeSentAt[clientID]; ok {
		delete(st.changeSentAt, clientID)
		st.changesAcked++
		st.changeAckLatency = append(st.changeAckLatency, at.Sub(sent))
		if seq == 0 {
			st.unchanged++
		}
	}
	st.mu.Unlock()
	if message && rec != nil && seq > 0 {
		if num, ok := messageNum(clientID); ok {
			rec.acked(seq, num, t)
		}
	}
}

// change sends a change the sender picked, as its write number seq.
func (st *stats) change(u *user, seq int, ch plannedChange) {
	clientID := fmt.Sprintf("c%d-%d", u.index, seq)
	st.mu.Lock()
	st.changeSentAt[clientID] = time.Now()
	st.changesSent++
	switch {
	case ch.action == chat.ActionEdit:
		st.edits++
	case ch.action == chat.ActionDelete:
		st.deletes++
	case ch.remove:
		st.reactions++
		st.removals++
	default:
		st.reactions++
	}
	st.mu.Unlock()
	switch ch.action {
	case chat.ActionEdit:
		u.c.Edit(clientID, ch.target, ch.text)
	case chat.ActionDelete:
		u.c.Delete(clientID, ch.target)
	default:
		u.c.React(clientID, ch.target, ch.emoji, ch.remove)
	}
}

// sendAll has each sender send cfg.count messages at cfg.rate, cfg.burst
// at a time back to back (pipelined: without waiting for acks), within
// cfg.duration; with -changes, that fraction of the writes are changes
// instead (a write due to be one while the sender holds no message to
// change is a message, and the next write is due instead). Halfway, the
// clients chosen to leave leave; at a third and at two thirds, those
// chosen to drop their connection drop it.
func sendAll(ctx context.Context, cfg config, st *stats, users []*user) {
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	interval := time.Duration(float64(time.Second) * float64(cfg.burst) / cfg.rate)
	span := interval * time.Duration((cfg.count+cfg.burst-1)/cfg.burst)
	st.mu.Lock()
	st.firstSend = time.Now()
	st.mu.Unlock()
	var wg sync.WaitGroup
	for _, at := range []struct {
		frac float64
		do   func(u *user)
		who  func(u *user) bool
	}{
		{1.0 / 3, func(u *user) { u.c.Drop(cfg.offline) }, func(u *user) bool { return u.drops }},
		{0.5, func(u *user) { u.c.Close(); u.stopped = true }, func(u *user) bool { return u.leaves }},
		{2.0 / 3, func(u *user) { u.c.Drop(cfg.offline) }, func(u *user) bool { return u.drops }},
	} {
		wg.Go(func() {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(at.frac * float64(span))):
				for _, u := range users {
					if at.who(u) {
						at.do(u)
					}
				}
			}
		})
	}
	if cfg.flood > 0 {
		wg.Go(func() { st.flood(ctx, cfg) })
	}
	senders := slices.DeleteFunc(slices.Clone(users), func(u *user) bool { return !u.sender })
	for k, u := range senders {
		wg.Go(func() {
			// Senders start spread over one interval, not in lockstep.
			next := time.Now().Add(interval * time.Duration(k) / time.Duration(len(senders)))
			due := 0.0 // changes due: -changes per write, one taken by each change sent
			for seq := 0; seq < cfg.count; {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(next)):
				}
				next = next.Add(interval)
				for b := 0; b < cfg.burst && seq < cfg.count; b, seq = b+1, seq+1 {
					if due += cfg.changes; due >= 1 {
						if ch, ok := u.seen.next(int32(u.index), cfg.size); ok {
							due--
							st.change(u, seq, ch)
							continue
						}
					}
					var x chatclient.Extras
					if u.seen != nil {
						x = u.seen.extras()
					}
					clientID := fmt.Sprintf("l%d-%d", u.index, seq)
					now := time.Now()
					st.mu.Lock()
					st.sentAt[clientID] = now
					st.sent++
					if x.ReplyTo > 0 {
						st.replies++
					}
					if len(x.Mentions) > 0 {
						st.mentions++
					}
					st.mu.Unlock()
					u.c.SendWith(clientID, makeText(int32(u.index), int32(seq), now, cfg.size), x)
				}
			}
		})
	}
	wg.Wait()
}

// stayed returns the clients connected at the end.
func stayed(users []*user) []*user {
	return slices.DeleteFunc(slices.Clone(users), func(u *user) bool { return u.stopped })
}

// waitForDeliveries waits until every message sent is acknowledged and
// every client that stayed holds the room up to the highest seq
// acknowledged, or cfg.drain passes without that happening.
func waitForDeliveries(ctx context.Context, cfg config, st *stats, users []*user) {
	ctx, cancel := context.WithTimeout(ctx, cfg.drain)
	defer cancel()
	for ctx.Err() == nil {
		st.mu.Lock()
		done := st.acked == st.sent
		st.mu.Unlock()
		var highest int64
		progress := make([]chatclient.Progress, 0, len(users))
		for _, u := range stayed(users) {
			p := u.c.Progress()
			progress = append(progress, p)
			highest = max(highest, p.Highest)
			done = done && p.Pending == 0
		}
		for _, p := range progress {
			done = done && p.Last >= highest
		}
		if done {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// audit compares what every client that stayed holds with the room's
// stored history and the true member list, and counts what the protocol
// promises against: messages stored out of their sender's order, clients
// whose history or member list is wrong.
func audit(ctx context.Context, cfg config, users []*user, r *report) {
	left := stayed(users)
	want := make([]string, 0, len(left))
	for _, u := range left {
		want = append(want, u.name)
	}
	slices.Sort(want)
	// Presence events arrive on their own: give the member lists the drain
	// time to converge, then count the clients whose list is wrong.
	// A room too large to list shows a count, pushed when it moves by a
	// tenth (at least 10): right within that.
	right := func(s chatclient.Snapshot) bool {
		if s.Large {
			n := int64(len(want))
			return max(s.Count-n, n-s.Count) <= max(10, n/10)
		}
		return slices.Equal(s.Members, want)
	}
	for _, u := range left {
		if u.c.Large() {
			u.c.Ping() // a count held back goes out with a ping, and every pong has it
		}
	}
	mctx, cancel := context.WithTimeout(ctx, cfg.drain)
	for _, u := range left {
		u.c.Wait(mctx, right)
	}
	cancel()
	snaps := make([]chatclient.Snapshot, len(left))
	for i, u := range left {
		snaps[i] = u.c.Snapshot()
		if snaps[i].Large {
			r.LargeRoom++
		}
		if !right(snaps[i]) {
			r.MemberMismatches++
			if r.MemberExample == "" {
				r.MemberExample = fmt.Sprintf("%s shows %v (a count of %d, large %v); online: %v", u.name, snaps[i].Members, snaps[i].Count, snaps[i].Large, want)
			}
		}
	}

	stored, changes, err := fetchHistory(ctx, cfg.url, cfg.room)
	if err != nil {
		r.AuditError = err.Error()
		return
	}
	if r.Changes != nil {
		selves := make([]string, len(left))
		for i := range left {
			selves[i] = snaps[i].UserID
		}
		auditChanges(left, selves, changes, r)
		auditStates(left, snaps, stored, r)
	}
	r.Stored = len(stored)
	r.OrderViolations = orderViolations(stored)
	r.Expected, r.Delivered = 0, 0
	for i, u := range left {
		held := map[int64]string{}
		for _, m := range snaps[i].History {
			held[m.Seq] = m.ID
		}
		same := len(snaps[i].History) == len(stored)
		for _, m := range stored {
			if held[m.Seq] != m.ID {
				same = false
			}
			if sender, _, _, ok := parseText(m.Text); ok && int(sender) != u.index {
				r.Expected++
				if held[m.Seq] == m.ID {
					r.Delivered++
				}
			}
		}
		if !same {
			r.HistoryMismatches++
		}
	}
	r.Lost = max(r.Expected-r.Delivered, 0)
}

// orderViolations counts, in history order, messages stored before an
// earlier message of the same sender.
func orderViolations(history []chat.MessageEvent) int {
	last := map[int32]int32{}
	n := 0
	for _, m := range history {
		sender, seq, _, ok := parseText(m.Text)
		if !ok {
			continue
		}
		if prev, seen := last[sender]; seen && seq < prev {
			n++
		}
		last[sender] = max(seq, last[sender])
	}
	return n
}

// fetchHistory reads a room's whole stored history through the protocol,
// its messages and its changes: a connection of its own, sync pages from
// seq 0.
func fetchHistory(ctx context.Context, base, room string) ([]chat.MessageEvent, []chat.ChangeEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	q := url.Values{"room": {room}, "name": {"load-audit"}}
	ws, _, err := chatclient.DialSocket(ctx, base+"?"+q.Encode())
	if err != nil {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	var out []chat.MessageEvent
	var changes []chat.ChangeEvent
	after := int64(0)
	for {
		req, _ := json.Marshal(map[string]any{"action": chat.ActionSync, "after": after, "limit": chat.DefaultLimits().MaxHistory})
		if err := ws.Write(ctx, websocket.MessageText, req); err != nil {
			return nil, nil, fmt.Errorf("audit: %w", err)
		}
		var page chat.Sync
		for page.Type != chat.TypeSync {
			_, data, err := ws.Read(ctx)
			if err != nil {
				return nil, nil, fmt.Errorf("audit: %w", err)
			}
			var refused chat.ErrorEvent
			if json.Unmarshal(data, &refused) == nil && (refused.Code == chat.CodeRateLimited || refused.Message == chat.GatewayThrottled) {
				// A long history takes more pages than the sync rate allows
				// at once, and a stage throttled by the load refuses a frame
				// before any function sees it: wait as told (or 0.5-1.5 s)
				// and ask again, within the audit's 30 s.
				wait := time.Duration(refused.RetryAfterMs) * time.Millisecond
				if refused.Code == "" {
					wait = time.Second/2 + rand.N(time.Second)
				}
				select {
				case <-ctx.Done():
					return nil, nil, fmt.Errorf("audit: %w", ctx.Err())
				case <-time.After(wait):
				}
				if err := ws.Write(ctx, websocket.MessageText, req); err != nil {
					return nil, nil, fmt.Errorf("audit: %w", err)
				}
				continue
			}
			json.Unmarshal(data, &page)
		}
		out = append(out, page.Messages...)
		changes = append(changes, page.Changes...)
		next := after
		for _, m := range page.Messages {
			next = max(next, m.Seq)
		}
		for _, seq := range page.Skipped {
			next = max(next, seq)
		}
		if !page.More || next == after {
			return out, changes, nil
		}
		after = next
	}
}

// makeText encodes who sent a message and when, padded to size.
func makeText(sender, seq int32, at time.Time, size int) string {
	s := fmt.Sprintf("load %d %d %d", sender, seq, at.UnixNano())
	if pad := size - len(s); pad > 1 {
		s += " " + strings.Repeat("x", pad-1)
	}
	return s
}

func parseText(text string) (sender, seq int32, at time.Time, ok bool) {
	f := strings.Fields(text)
	if len(f) < 4 || f[0] != "load" {
		return 0, 0, time.Time{}, false
	}
	s, err1 := strconv.ParseInt(f[1], 10, 32)
	q, err2 := strconv.ParseInt(f[2], 10, 32)
	ns, err3 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, time.Time{}, false
	}
	return int32(s), int32(q), time.Unix(0, ns), true
}

// showProgress prints one updating line a second until the returned
// function is called.
func showProgress(st *stats, cfg config, w io.Writer) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintln(w)
				return
			case <-t.C:
				st.mu.Lock()
				fmt.Fprintf(w, "\rconnected %d/%d  failed %d  sent %d  acked %d  delivered live %d   ",
					st.connected, cfg.clients, st.connectFailed, st.sent, st.acked, st.live)
				if cfg.changes > 0 {
					fmt.Fprintf(w, "changes sent %d  acked %d   ", st.changesSent, st.changesAcked)
				}
				st.mu.Unlock()
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// percentiles summarises durations in milliseconds.
type percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50Ms"`
	P95 float64 `json:"p95Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

func summarise(d []time.Duration) percentiles {
	if len(d) == 0 {
		return percentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.999999) - 1
		return float64(s[max(i, 0)].Microseconds()) / 1000
	}
	return percentiles{N: len(s), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: float64(s[len(s)-1].Microseconds()) / 1000}
}

// flood has one more client, in a room of its own, write cfg.flood
// new-message frames back to back, as fast as the socket takes them, and
// counts the answers it gets: the run's clients measure what that does to
// everyone else.
func (st *stats) flood(ctx context.Context, cfg config) {
	q := url.Values{"room": {cfg.room + "-flood"}, "name": {"flooder"}}
	ws, _, err := websocket.Dial(ctx, cfg.url+"?"+q.Encode(), nil)
	if err != nil {
		st.mu.Lock()
		st.floodAnswers["connect failed"]++
		st.mu.Unlock()
		return
	}
	defer ws.CloseNow()
	go func() {
		for i := range cfg.flood {
			frame := fmt.Sprintf(`{"action":"new-message","text":"flood %d","clientId":"f%d"}`, i, i)
			if ws.Write(ctx, websocket.MessageText, []byte(frame)) != nil {
				return
			}
		}
	}()
	rctx, cancel := context.WithTimeout(ctx, cfg.duration+cfg.drain)
	defer cancel()
	for answered := 0; answered < cfg.flood; {
		_, data, err := ws.Read(rctx)
		if err != nil {
			return
		}
		if len(data) == 0 {
			continue // the empty frame a two-way route may bring answers nothing
		}
		answered++
		var f struct{ Type, Code, Message string }
		json.Unmarshal(data, &f)
		key := f.Type
		switch {
		case f.Type == chat.TypeError:
			key = f.Code
		case f.Type == "":
			key = f.Message // the gateway's own frames: Too Many Requests
		}
		st.mu.Lock()
		st.floodAnswers[key]++
		st.mu.Unlock()
	}
}
