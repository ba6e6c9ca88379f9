package handler

import (
	"context"
	"encoding/json"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// sync answers a sync frame: the room's latest seq, who is here and the
// page of history asked for.
func (h *Chat) sync(ctx context.Context, r request, c chat.Connection, in chat.Inbound) error {
	conns, presence, err := h.Conns.Room(ctx, c.Room)
	if err != nil {
		return err
	}
	if h.heal(ctx, r, c.Room, conns, presence) {
		if conns, presence, err = h.Conns.Room(ctx, c.Room); err != nil {
			return err
		}
	}
	latest, err := h.Msgs.Latest(ctx, c.Room)
	if err != nil {
		return err
	}
	msgs, more, err := h.Msgs.History(ctx, c.Room, in.After, in.Before, in.Limit)
	if err != nil {
		return err
	}
	// A page read forwards (after) starts right after what the client
	// holds: cut from the newest end. Otherwise it ends at the newest
	// message asked for: cut from the oldest end.
	envelope, _ := json.Marshal(chat.NewSync(c, latest, presence, nil, true))
	msgs, cut := fit(msgs, h.Limits.MaxFrameBytes-len(envelope), in.After < 0)
	reply := chat.NewSync(c, latest, presence, msgs, more || cut)
	reply.Before = in.Before
	h.reply(ctx, r, reply)
	// The room read above was read after this user's presence was stored:
	// whoever it misses connected later, and their own sync lists the user.
	h.announceJoin(ctx, r, c, conns)
	return nil
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
