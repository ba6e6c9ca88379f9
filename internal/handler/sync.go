package handler

import (
	"context"
	"encoding/json"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// sync answers a sync frame: the room's latest seq, who is here and the
// page of history asked for.
func (h *Chat) sync(ctx context.Context, r request, c chat.Connection, in chat.Inbound) error {
	// This user's pending join is numbered first, so that the reply's pseq
	// covers it (the user never receives it), and the room it goes to
	// after the reply is read after it: whoever that read misses connected
	// later, and their own sync lists the user.
	var conns []chat.Connection
	join, joined := h.claimJoin(ctx, r, c)
	if joined {
		defer func() { // after the reply, or the error
			if conns == nil { // the room was not read
				h.depart(ctx, r, h.broadcast(ctx, r, c.Room, r.id, join))
			} else {
				h.depart(ctx, r, h.broadcastTo(ctx, r, c.Room, conns, r.id, join))
			}
		}()
	}
	// The log's head is read before the room: the room shows its latest
	// presence event (the join just numbered, or a later one) and every
	// one before it.
	head, err := h.Conns.PresenceHead(ctx, c.Room)
	if err != nil {
		return err
	}
	// A room too large to list is not read at all: the reply has its count.
	var presence []chat.Presence
	if h.listed(head) {
		conns, presence, err = h.Conns.Room(ctx, c.Room)
		if err != nil {
			return err
		}
		if h.heal(ctx, r, c.Room, conns, presence) {
			if conns, presence, err = h.Conns.Room(ctx, c.Room); err != nil {
				return err
			}
		}
	}
	page, err := h.Msgs.History(ctx, c.Room, in.After, in.Before, in.Limit)
	if err != nil {
		return err
	}
	pseq := max(head.PSeq, join.PSeq)
	// A page read forwards (after) starts right after what the client
	// holds: cut from the newest end. Otherwise it ends at the newest
	// message asked for: cut from the oldest end. The skipped seqs are
	// facts whatever is cut, and few (at most a page's limit).
	reply := h.syncReply(c, page, presence, head, nil, true)
	reply.Before, reply.PSeq = in.Before, pseq
	b, _ := json.Marshal(reply)
	msgs, cut := fit(page.Messages, h.Limits.MaxFrameBytes-len(b), in.After < 0)
	reply = h.syncReply(c, page, presence, head, msgs, page.More || cut)
	reply.Before, reply.PSeq = in.Before, pseq
	h.reply(ctx, r, reply)
	return nil
}

// syncReply is a sync reply with msgs of page: the members and presence
// of a listed room, or the count of a large one.
func (h *Chat) syncReply(c chat.Connection, page chat.Page, presence []chat.Presence, head chat.PresenceHead, msgs []chat.Message, more bool) chat.Sync {
	if online := int64(countOnline(presence)); online > head.Online {
		head.Online = online // a count that missed an arrival: the list says more
	}
	if !h.listed(head) {
		presence = nil
	}
	s := chat.NewSync(c, page.Latest, presence, msgs, more)
	s.Skipped, s.First = page.Skipped, page.First
	if !h.listed(head) {
		s.Online, s.Large = head.Online, true
	}
	return s
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

// fit keeps as many messages as fit in budget bytes of JSON, dropping from
// the oldest end if fromOldest is set, else from the newest; it reports
// whether it dropped any.
func fit(msgs []chat.Message, budget int, fromOldest bool) ([]chat.Message, bool) {
	used := 0
	for i := range msgs {
		j := i // the i-th message counted from the end that is kept
		if fromOldest {
			j = len(msgs) - 1 - i
		}
		b, _ := json.Marshal(chat.MessageItem(msgs[j]))
		used += len(b) + 1 // the comma
		if used > budget {
			if fromOldest {
				return msgs[j+1:], true
			}
			return msgs[:j], true
		}
	}
	return msgs, false
}
