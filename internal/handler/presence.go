package handler

import (
	"context"
	"errors"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/metrics"
)

// maxDepartRounds bounds the chain of leaves finding more gone
// connections (each leave is a broadcast); what is left is found by the
// next broadcast, sync or TTL.
const maxDepartRounds = 4

// depart is the one place where connections leave: it removes each one
// and tells its room of every name that has no connection there any more.
// Those leaves are broadcasts too, and the connections they find gone are
// removed in turn, round by round.
func (h *Chat) depart(ctx context.Context, r request, ids []string) {
	seen := map[string]bool{}
	for round := 0; len(ids) > 0; round++ {
		if round == maxDepartRounds {
			r.log.WarnContext(ctx, "gone connections left for a later broadcast", "count", len(ids))
			return
		}
		var next []string
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			c, p, left, err := h.Conns.RemoveConnection(ctx, id)
			switch {
			case errors.Is(err, chat.ErrNoConnection):
				r.log.DebugContext(ctx, "connection already removed", "removed", id)
			case err != nil:
				r.log.ErrorContext(ctx, "remove connection failed", "removed", id, "err", err)
			default:
				r.log.InfoContext(ctx, "connection removed", "removed", id, "room", c.Room, "userId", c.UserID, "left", left)
				h.Metrics.Record(ctx, nil, metrics.Count(metrics.Disconnects, 1))
				if left {
					h.countOnline(ctx, r, c.Room, -1)
					next = append(next, h.announce(ctx, r, c.Room, p)...)
				}
			}
		}
		ids = next
	}
}

// announce tells a room that a user left (or joined), and returns the
// connections that broadcast found gone.
func (h *Chat) announce(ctx context.Context, r request, room string, p chat.Presence) []string {
	return h.broadcast(ctx, r, room, "", h.presenceEvent(ctx, r, room, p, h.Now()))
}

// presenceEvent makes the join or leave of p, numbered in the room's
// presence log: the change it reports is stored, and the room it goes to
// is read after this. If it cannot be logged, it goes out all the same:
// clients apply it by version, and one that misses it syncs.
func (h *Chat) presenceEvent(ctx context.Context, r request, room string, p chat.Presence, at time.Time) chat.PresenceEvent {
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
func (h *Chat) heal(ctx context.Context, r request, room string, conns []chat.Connection, presence []chat.Presence) bool {
	live := make(map[string]bool, len(conns))
	for _, c := range conns {
		live[c.ID] = true
	}
	changed := false
	var gone []string
	for _, p := range presence {
		for _, id := range p.Conns {
			if live[id] || h.recorded(ctx, r, id) {
				continue
			}
			changed = true
			np, left, err := h.Conns.Depart(ctx, room, p.UserID, id)
			switch {
			case err != nil:
				r.log.ErrorContext(ctx, "heal presence failed", "userId", p.UserID, "removed", id, "err", err)
			case left:
				h.countOnline(ctx, r, room, -1)
				gone = append(gone, h.announce(ctx, r, room, np)...)
			}
		}
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
		gone = append(gone, res.Gone...)
	}
	if len(gone) > 0 {
		changed = true
		h.depart(ctx, r, gone)
	}
	return changed
}

// countOnline adds delta to the room's count of users online; a failure
// is logged (the count is off by one until the room empties).
func (h *Chat) countOnline(ctx context.Context, r request, room string, delta int64) {
	if err := h.Conns.CountOnline(ctx, room, delta); err != nil {
		r.log.ErrorContext(ctx, "count users online failed", "room", room, "delta", delta, "err", err)
	}
}

func (h *Chat) touch(ctx context.Context, r request, c chat.Connection, at time.Time) {
	if err := h.Senders.Touch(ctx, c, at); err != nil && !errors.Is(err, chat.ErrNoConnection) {
		r.log.WarnContext(ctx, "touch connection failed", "touched", c.ID, "err", err)
	}
}

// recorded confirms, with a read of its own, whether a connection the
// room query did not show has a record after all: the query reads member
// items before presence items, so a connection stored in between shows in
// its name's set without its member item.
func (h *Chat) recorded(ctx context.Context, r request, id string) bool {
	_, err := h.Senders.Connection(ctx, id)
	if err != nil && !errors.Is(err, chat.ErrNoConnection) {
		r.log.WarnContext(ctx, "check connection failed", "checked", id, "err", err)
		return true // unknown: leave it be
	}
	return err == nil
}
