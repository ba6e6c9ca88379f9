package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// sync answers a sync frame: the room's latest seq, who is here and the
// page of history asked for; a gap fetch (in.Gap) only the page, without
// reading the room.
func (h *Chat) sync(ctx context.Context, r *request, c chat.Connection, in chat.Inbound) error {
	// The log's head is read first: whether the room is listed, and the
	// number of its latest presence event, which the room read after it
	// shows, with every one before it.
	head, err := h.Conns.PresenceHead(ctx, c.Room)
	if err != nil {
		return err
	}
	// This user's join, if due, is numbered next, so that the reply's pseq
	// covers it (the user never receives it), and the room it goes to
	// after the reply is read after it: whoever that read misses connected
	// later, and their own sync lists the user. The room's count goes
	// after the reply too, when it is due.
	var conns []chat.Connection
	join, joined := chat.PresenceEvent{}, false
	if h.joinDue(c, head) {
		join, joined = h.claimJoin(ctx, r, c, head)
	}
	defer func() { // after the reply, or the error
		switch {
		case !joined || !h.atOnce(ctx, r, c.Room, head, []chat.PresenceEvent{join}):
		case conns == nil: // the room was not read
			h.broadcast(ctx, r, c.Room, r.id, join)
		default:
			h.broadcastTo(ctx, r, c.Room, conns, r.id, join)
		}
		h.pushOnline(ctx, r, c.Room, head)
	}()
	// A room well above the listed size is not read at all: the reply has
	// its count. One up to Limits.QuietRoomSize is, by one sync every
	// recountEvery, so that a count left off near the size, where it
	// decides between a list and a count, is put right.
	var presence []chat.Presence
	if !in.Gap && (h.listed(head) || head.Online <= int64(h.Limits.QuietRoomSize()) && h.recount(ctx, r, c.Room, head)) {
		conns, presence, err = h.Conns.Room(ctx, c.Room, head.Shards)
		if err != nil {
			return err
		}
		if h.heal(ctx, r, c.Room, conns, presence) {
			if conns, presence, err = h.Conns.Room(ctx, c.Room, head.Shards); err != nil {
				return err
			}
		}
		// The count is kept by separate writes; the room just read says
		// what it is.
		if n := int64(countOnline(presence)); n != head.Online {
			if err := h.Conns.CorrectOnline(ctx, c.Room, head.Online, n); err != nil {
				r.log.ErrorContext(ctx, "correct the count online failed", "room", c.Room, "err", err)
			}
			head.Online = n
		}
	}
	page, err := h.Msgs.History(ctx, c.Room, in.After, in.Before, in.Limit)
	if err != nil {
		return err
	}
	head.PSeq = max(head.PSeq, join.PSeq)
	reply := h.syncReply(c, in, page, presence, head)
	if !in.Gap { // the user's role, as the connection holds it (changes come as access events too)
		reply.Role = c.Role
	}
	h.reply(ctx, r, reply)
	return nil
}

// syncReply is the reply to sync frame in: page and the members of a
// listed room (presence), or the count of a large one, as of head, in one
// frame. A page read forwards (after) starts right after what the client
// holds: it is cut from the newest end. Otherwise it ends at the newest
// message asked for: it is cut from the oldest end. The skipped seqs are
// facts whatever is cut, and few (at most a page's limit).
func (h *Chat) syncReply(c chat.Connection, in chat.Inbound, page chat.Page, presence []chat.Presence, head chat.PresenceHead) chat.Sync {
	if online := int64(countOnline(presence)); online > head.Online {
		head.Online = online // a count that missed an arrival: the list says more
	}
	if !h.listed(head) {
		presence = nil
	}
	reply := func(items []chat.SyncItem, more bool) chat.Sync {
		s := chat.NewSync(c, page.Latest, presence, more)
		s.Skipped, s.First, s.Before, s.PSeq = slices.Clone(page.Skipped), page.First, in.Before, head.PSeq
		s.Add(items)
		if !h.listed(head) {
			s.Online, s.Large = max(head.Online, 0), true
		}
		if in.Gap { // messages only: the client keeps the members it has
			s.Members, s.Presence, s.PSeq, s.Online, s.Large = nil, nil, 0, 0, false
		} else {
			s.EditWindowMs = h.Limits.EditWindow.Milliseconds()
		}
		return s
	}
	// What the reply takes without history: with more false (one byte
	// longer than true), the lists that changes open, and the longest
	// role sync adds in a private room.
	b, _ := json.Marshal(reply(nil, false))
	budget := h.Limits.MaxFrameBytes - len(b) - len(`,"changes":[]`) - len(`,"access":[]`) - len(`,"role":"moderator"`)
	if len(page.Skipped) == 0 {
		budget -= len(`,"skipped":[]`)
	}
	items, cut := fit(chat.SyncItems(c, page.Messages, page.Targets), budget, in.After < 0)
	return reply(items, page.More || cut)
}

func countOnline(presence []chat.Presence) int {
	n := 0
	for _, p := range presence {
		if p.Online {
			n++
		}
	}
	return n
}

// fit keeps as many items as fit in budget bytes of JSON, dropping from
// the oldest end if fromOldest is set, else from the newest; it reports
// whether it dropped any.
func fit(items []chat.SyncItem, budget int, fromOldest bool) ([]chat.SyncItem, bool) {
	size := func(it chat.SyncItem) int {
		if it.Message != nil {
			b, _ := json.Marshal(it.Message)
			return len(b) + 1 // the comma
		}
		var b []byte
		if it.Access != nil {
			b, _ = json.Marshal(it.Access)
		} else {
			b, _ = json.Marshal(it.Change)
		}
		return len(b) + 1 + len(fmt.Sprintf(",%d", it.Seq)) // and its seq in skipped
	}
	used := 0
	for i := range items {
		j := i // the i-th item counted from the end that is kept
		if fromOldest {
			j = len(items) - 1 - i
		}
		used += size(items[j])
		if used <= budget {
			continue
		}
		if i == 0 { // not even the first whole: it goes slim, so that the page moves on
			if slim := items[j].Slim(); size(slim) <= budget {
				return []chat.SyncItem{slim}, len(items) > 1
			}
			return nil, true
		}
		if fromOldest {
			return items[j+1:], true
		}
		return items[:j], true
	}
	return items, false
}

// recountEvery is how often a sync reads a room of up to twice the listed
// size to correct its count: filling up, every arrival between the size
// and twice it would otherwise read the whole room (up to 600 items).
const recountEvery = 5 * time.Second

// recount reports whether this sync reads the room to correct its count:
// it was not for recountEvery, and this sync claimed it.
func (h *Chat) recount(ctx context.Context, r *request, room string, head chat.PresenceHead) bool {
	now := h.Now()
	if now.Sub(head.RecountedAt) < recountEvery {
		return false
	}
	ok, err := h.Conns.ClaimRecount(ctx, room, head.RecountedAt, now)
	if err != nil {
		r.log.ErrorContext(ctx, "claim a recount failed", "room", room, "err", err)
	}
	return ok
}
