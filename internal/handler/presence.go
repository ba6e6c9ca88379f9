package handler

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/fanout"
	"github.com/chatgo/serverless-chat/internal/metrics"
)

// maxSettleRounds bounds the chain of leaves finding more gone
// connections (each leave is a broadcast); what is left is found by the
// next broadcast, sync or TTL.
const maxSettleRounds = 4

// settle is the one place where connections leave: it removes each one
// the request found gone (r.gone) and tells each room of the users who
// have no connection there any more, in one broadcast per room and round.
// Those leaves find more gone connections in turn, removed round by
// round. Each route calls it once, after its answer and its broadcasts.
func (h *Chat) settle(ctx context.Context, r *request) {
	seen := map[string]bool{}
	for round := 0; len(r.gone) > 0; round++ {
		if round == maxSettleRounds {
			r.log.WarnContext(ctx, "gone connections left for a later broadcast", "count", len(r.gone))
			r.gone = nil
			return
		}
		ids := r.gone
		r.gone = nil
		left := map[string][]chat.Presence{} // by room
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			c, p, last, err := h.Conns.RemoveConnection(ctx, id)
			switch {
			case errors.Is(err, chat.ErrNoConnection):
				r.log.DebugContext(ctx, "connection already removed", "removed", id)
			case err != nil:
				r.log.ErrorContext(ctx, "remove connection failed", "removed", id, "err", err)
			default:
				r.log.InfoContext(ctx, "connection removed", "removed", id, "room", c.Room, "userId", c.UserID, "left", last)
				h.Metrics.Record(ctx, nil, metrics.Count(metrics.Disconnects, 1))
				if last {
					left[c.Room] = append(left[c.Room], p)
				}
			}
		}
		for room, ps := range left {
			h.leave(ctx, r, room, ps)
		}
	}
}

// leave counts users out of a room and tells the room: their leaves if
// the room lists its members (one event, or several in one presence
// frame, as a presence reply has them), else its count online when that
// is due.
func (h *Chat) leave(ctx context.Context, r *request, room string, ps []chat.Presence) {
	head, err := h.Conns.CountOnline(ctx, room, -int64(len(ps)))
	if err != nil {
		// The count stays off until a sync corrects it; the leaves go out.
		r.log.ErrorContext(ctx, "count users online failed", "room", room, "delta", -len(ps), "err", err)
	} else if !h.listed(head) {
		h.pushOnline(ctx, r, room, head)
		return
	}
	now := h.Now()
	events := make([]chat.PresenceEvent, len(ps))
	for i, p := range ps {
		events[i] = h.presenceEvent(ctx, r, room, p, now)
	}
	if h.atOnce(ctx, r, room, head, events) {
		if len(events) == 1 {
			h.broadcast(ctx, r, room, "", events[0])
		} else {
			for batch := range slices.Chunk(events, h.Limits.PresencePage) {
				h.broadcast(ctx, r, room, "", chat.PresenceLog{Type: chat.TypePresence, After: max(batch[0].PSeq-1, 0), Events: batch, Live: true})
			}
		}
	}
	if err == nil {
		h.pushOnline(ctx, r, room, head)
	}
}

// Joins and leaves in bursts. While a room is quiet, or small, its joins
// and leaves go out at once; in a burst (a room filling up, or emptying)
// of one with at least burstRoomSize users online, the first goes out at
// once and the others are held back for presenceWindow, then go out
// together in one live presence frame: a flush, which the fan-out
// function runs from a job the queue delays. So a room's members are told
// of its changes about twice a window at most, however many there are:
// without it a room of k filling up costs k posts per arrival.
const (
	burstRoomSize  = 20
	presenceWindow = time.Second // SQS delays by whole seconds
	// flushMargin: a flush due at least this much later is sure to read
	// the presence log after what its caller kept there (clocks of
	// function instances differ by a few milliseconds).
	flushMargin = 200 * time.Millisecond
	// flushTries bounds a caller's attempts to see a flush scheduled
	// while others schedule and finish them.
	flushTries = 3
)

// atOnce reports whether a room's joins and leaves events, numbered and
// kept in its presence log, go out at once; if not, a flush will tell
// them (above). head is the room's, as read before they were kept.
// Whatever cannot be held, for a failed write or a queue that refuses,
// goes out at once.
func (h *Chat) atOnce(ctx context.Context, r *request, room string, head chat.PresenceHead, events []chat.PresenceEvent) bool {
	if h.Queue == nil || head.Online < burstRoomSize {
		return true
	}
	now := h.Now()
	if now.Sub(head.ToldAt) >= presenceWindow && head.FlushDue.IsZero() {
		var to int64
		for _, e := range events {
			to = max(to, e.PSeq)
		}
		ok, err := h.Bursts.ClaimTell(ctx, room, head.ToldAt, now, to)
		if err != nil {
			r.log.ErrorContext(ctx, "claim telling presence failed; told at once", "room", room, "err", err)
		}
		if ok || err != nil {
			return true
		}
	}
	return !h.held(ctx, r, room, head.FlushDue, now)
}

// held reports whether a flush will read the room's presence log after
// what the caller kept there: one pending (due at pending, as read) that
// is due late enough, or one it schedules and queues, delayed until it is
// due. If the queue refuses the job, the caller answers its frame, waits
// until then and runs the flush itself: whoever counted on it is told.
func (h *Chat) held(ctx context.Context, r *request, room string, pending, now time.Time) bool {
	for range flushTries {
		if pending.Sub(now) >= flushMargin {
			return true
		}
		due := now.Add(presenceWindow).Truncate(time.Millisecond)
		ok, p, err := h.Bursts.ScheduleFlush(ctx, room, pending, due)
		ok = ok || p.Equal(due) // a retried write whose first try landed
		job := fanout.Job{Kind: fanout.KindPresence, Endpoint: r.endpoint, Room: room, Event: chat.TypePresence, Due: due.UnixMilli(), Delay: presenceWindow}
		if err != nil {
			// The write may have landed: its job goes all the same (a job
			// whose due time is not pending does nothing).
			h.Queue.Enqueue(ctx, []fanout.Job{job})
			r.log.ErrorContext(ctx, "schedule a presence flush failed; told at once", "room", room, "err", err)
			return false
		}
		if !ok {
			pending = p // scheduled or finished by another meanwhile: look again
			continue
		}
		if failed, err := h.Queue.Enqueue(ctx, []fanout.Job{job}); len(failed) > 0 {
			r.log.ErrorContext(ctx, "queue a presence flush failed; flushed here when due", "room", room, "err", err)
			h.flush(ctx, r) // the answer does not wait
			if err := chat.Sleep(ctx, due.Sub(h.Now())+flushMargin); err != nil {
				return false
			}
			if err := h.flushPresence(ctx, r, room, due); err != nil {
				r.log.ErrorContext(ctx, "presence flush failed", "room", room, "err", err)
			}
		}
		return true
	}
	return false
}

// flushPresence runs the flush of a room due at due, if it is still the
// one pending: it tells the room, in one live presence frame, its joins
// and leaves since it was last told every one (at most a page: a client
// that finds the frame starting above what it holds asks for the rest).
// Some may have gone out already, at once: clients apply each by version,
// so one told twice changes nothing. A flush that fails stays pending,
// for SQS's next delivery or the next caller, who finds it overdue.
func (h *Chat) flushPresence(ctx context.Context, r *request, room string, due time.Time) error {
	head, err := h.Conns.PresenceHead(ctx, room)
	if err != nil || !head.FlushDue.Equal(due) {
		return err // none, or another is pending in its place
	}
	from := max(head.FlushedTo, head.PSeq-int64(h.Limits.PresencePage))
	to := head.PSeq
	if h.listed(head) && head.PSeq > from {
		events, _, err := h.Conns.PresenceSince(ctx, room, from, h.Limits.PresencePage)
		if err != nil {
			return err
		}
		// Told every one up to the first number missing: one taken and
		// not kept yet is read by the next flush.
		to = from
		for _, e := range events {
			if e.PSeq != to+1 {
				break
			}
			to = e.PSeq
		}
		if len(events) > 0 {
			h.broadcastAt(ctx, r, room, head, "", chat.PresenceLog{Type: chat.TypePresence, After: from, Events: events, Live: true})
		}
	}
	now := h.Now()
	if ok, err := h.Bursts.FinishFlush(ctx, room, due, now, to); !ok || err != nil {
		return err
	}
	// How late it ran: its job shares the fan-out queue with big rooms'
	// shards, behind the event source's maximum concurrency.
	h.Metrics.Record(ctx, nil, metrics.Metric{Name: metrics.PresenceFlushLag, Value: float64(now.Sub(due).Milliseconds()), Unit: metrics.UnitMilliseconds})
	return nil
}

// listed reports whether a room with head has few enough users online for
// its members to be listed and its joins and leaves told.
func (h *Chat) listed(head chat.PresenceHead) bool {
	return head.Online <= int64(h.Limits.ListedRoomSize)
}

// Pushes of a room's count online: whenever it crosses ListedRoomSize (a
// room going back and forth across it costs no more than the joins and
// leaves it would send if listed), and above it when it moved by a tenth,
// at least pushMinMove, and pushEvery passed. A room filling up is told
// its count O(log N) times, N posts each, not N²/2 joins. Pings check it
// too, so that a count held back by pushEvery goes out after it even when
// nobody comes or goes any more.
const (
	pushEvery   = 5 * time.Second
	pushMinMove = 10
)

// pushOnline sends a room its count online if a push is due (above). Of
// the invocations that find it due, one sends it.
func (h *Chat) pushOnline(ctx context.Context, r *request, room string, head chat.PresenceHead) {
	now := h.Now()
	since := now.Sub(head.PushedAt)
	wasListed := head.PushedAt.IsZero() || head.PushedOnline <= int64(h.Limits.ListedRoomSize)
	isListed := h.listed(head)
	switch {
	case wasListed != isListed:
	case isListed:
		return // its joins and leaves say it all
	default:
		moved := head.Online - head.PushedOnline
		if max(moved, -moved) < max(pushMinMove, head.PushedOnline/10) || since < pushEvery {
			return
		}
	}
	ok, err := h.Conns.ClaimOnlinePush(ctx, room, head.Online, head.PushedAt, now)
	if err != nil {
		r.log.ErrorContext(ctx, "push of the count online failed", "room", room, "err", err)
	}
	if !ok {
		return
	}
	h.broadcastAt(ctx, r, room, head, "", chat.Online{Type: chat.TypeOnline, Room: room, Online: max(head.Online, 0), Large: !isListed, At: now.UnixMilli()})
}

// presenceEvent makes the join or leave of p, numbered in the room's
// presence log: the change it reports is stored, and the room it goes to
// is read after this. If it cannot be logged, it goes out all the same:
// clients apply it by version, and one that misses it syncs.
func (h *Chat) presenceEvent(ctx context.Context, r *request, room string, p chat.Presence, at time.Time) chat.PresenceEvent {
	e, err := h.Conns.LogPresence(ctx, chat.NewPresenceEvent(room, p, chat.FormatTime(at)))
	if err != nil {
		r.log.WarnContext(ctx, "presence event not logged", "room", room, "userId", p.UserID, "pseq", e.PSeq, "err", err)
	}
	return e
}

// heal makes a room's records true before they are shown: it takes out of
// each user's presence the connections that have no live record (their
// records expired, or were removed while the presence was being changed),
// and asks API Gateway about connections silent for Limits.StaleAfter
// (their $disconnect may never have come): those that are gone leave, the
// others are marked alive. It reports whether anything changed.
func (h *Chat) heal(ctx context.Context, r *request, room string, conns []chat.Connection, presence []chat.Presence) bool {
	live := make(map[string]bool, len(conns))
	for _, c := range conns {
		live[c.ID] = true
	}
	changed := false
	var left []chat.Presence
	for _, p := range presence {
		for _, id := range p.Conns {
			if live[id] || h.recorded(ctx, r, id) {
				continue
			}
			changed = true
			np, last, err := h.Conns.Depart(ctx, room, p.UserID, id)
			switch {
			case err != nil:
				r.log.ErrorContext(ctx, "heal presence failed", "userId", p.UserID, "removed", id, "err", err)
			case last:
				left = append(left, np)
			}
		}
	}
	if len(left) > 0 {
		h.leave(ctx, r, room, left)
	}
	now := h.Now()
	var silent []string
	byID := map[string]chat.Connection{}
	for _, c := range conns {
		if c.ID != r.id && now.Sub(c.SeenAt) >= h.Limits.StaleAfter && now.Sub(c.ConnectedAt) >= h.ConnectGrace {
			silent = append(silent, c.ID)
			byID[c.ID] = c
		}
	}
	if len(silent) > 0 {
		res := h.Fanout.Probe(ctx, r.endpoint, silent)
		r.log.InfoContext(ctx, "probed silent connections", "room", room, "result", res)
		isGone := map[string]bool{}
		for _, id := range res.Gone {
			isGone[id] = true
		}
		for _, id := range silent {
			if !isGone[id] {
				h.touch(ctx, r, byID[id], now)
			}
		}
		r.gone = append(r.gone, res.Gone...)
	}
	if len(r.gone) > 0 {
		changed = true
		h.settle(ctx, r) // before the room is read again
	}
	return changed
}

func (h *Chat) touch(ctx context.Context, r *request, c chat.Connection, at time.Time) {
	if err := h.Senders.Touch(ctx, c, at); err != nil && !errors.Is(err, chat.ErrNoConnection) {
		r.log.WarnContext(ctx, "touch connection failed", "touched", c.ID, "err", err)
	}
}

// recorded confirms, with a read of its own, whether a connection the
// room's read did not show has a record after all: the member items of
// shard 0 are read before the presence items and those of other shards
// after them, so a connection stored meanwhile may show in its user's set
// without its member item. Only one stored meanwhile: a lookup older
// than the connect grace without its member item is what a removal that
// failed halfway left (it deletes the member item first).
func (h *Chat) recorded(ctx context.Context, r *request, id string) bool {
	c, err := h.Senders.Connection(ctx, id)
	if err != nil && !errors.Is(err, chat.ErrNoConnection) {
		r.log.WarnContext(ctx, "check connection failed", "checked", id, "err", err)
		return true // unknown: leave it be
	}
	return err == nil && h.Now().Sub(c.ConnectedAt) < h.ConnectGrace
}
