package handler

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// sync answers a sync frame: who is here and the page of history asked for.
func (h *Chat) sync(ctx context.Context, r request, in chat.Inbound) error {
	c, err := h.Conns.Connection(ctx, r.id)
	if err != nil {
		return err
	}
	conns, err := h.Conns.RoomConnections(ctx, c.Room)
	if err != nil {
		return err
	}
	msgs, more, err := h.Msgs.History(ctx, c.Room, in.After, in.Limit)
	if err != nil {
		return err
	}
	// Without after, the page ends at the newest message: cut from the
	// oldest end. With after, it starts right after the client's last
	// message: cut from the newest end.
	names := members(conns)
	envelope, _ := json.Marshal(chat.NewSync(c, names, nil, true))
	msgs, cut := fit(msgs, h.Limits.MaxFrameBytes-len(envelope), in.After == "")
	h.reply(ctx, r, chat.NewSync(c, names, msgs, more || cut))
	return nil
}

// members returns each name online once, sorted.
func members(conns []chat.Connection) []string {
	names := make([]string, 0, len(conns))
	for _, c := range conns {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
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
