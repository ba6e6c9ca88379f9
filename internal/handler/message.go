package handler

import (
	"context"
	"encoding/json"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/metrics"
)

// The routes that store (chat.Writes: new-message, edit, delete, react):
// a numbered frame waits for its turn, takes a token, gets the room's next
// seq and is stored; a copy of a stored frame gets the original ack.

// pollEvery spaces the reads of a frame waiting for its turn: often enough
// that a sender's frames follow each other within tens of milliseconds (a
// pipelined sender waits on every predecessor), less and less often the
// longer it waits (an eighth of the wait so far, up to 500 ms), so that a
// loaded server is not read harder by the frames it keeps waiting.
func pollEvery(attempt int, waited time.Duration) time.Duration {
	return chat.Backoff{First: 5 * time.Millisecond, Max: min(max(40*time.Millisecond, waited/8), 500*time.Millisecond)}.Delay(attempt)
}

// awaitTurn returns the sending connection once frame may be stored: the
// connection's previous frame has been (frame 0, unnumbered, never waits).
// It reads the connection's record while the frames before this one are
// being stored, and gives up (out_of_order, the frame keeps its number)
// when none has been for Limits.FrameWait plus the time this frame waited
// to be served: a gateway that delayed it delayed its predecessors too. A
// frame behind one refused for the rate limit is refused at once, with
// the wait its place in the line needs; so is one with more frames before
// it not stored yet than a full bucket pays for (a flood's), after one
// read: it could not be stored before those tokens come back. A number
// already used gives invalid_frame. No token is taken here: only a frame
// whose turn it is spends one.
func (h *Chat) awaitTurn(ctx context.Context, r *request, frame int64) (chat.Connection, error) {
	start := time.Now()
	c, err := h.Senders.Connection(ctx, r.id)
	wait := h.Limits.FrameWait + r.lag
	deadline, progress := time.Now().Add(wait), c.Frame
	for attempt := 0; ; attempt++ {
		now := h.Now()
		h.Tokens.noteFrame(r.id, c.Frame)
		switch {
		case err != nil || frame == 0 || c.Frame == frame-1:
			return c, err
		case c.Frame >= frame:
			return c, chat.FrameError(c.Frame, frame)
		case c.HeldUntil.After(now):
			// The refused frame (c.Frame+1) goes at HeldUntil; each frame
			// after it needs one more token.
			behind := time.Duration(frame-c.Frame-1) * h.Limits.Messages.Interval()
			return c, chat.RateLimited(h.Limits.Messages, c.HeldUntil.Sub(now)+behind)
		case frame-c.Frame > int64(h.Limits.Messages.Burst):
			// This frame and those before it need more tokens than the
			// bucket holds: the first it lacks comes back an interval later.
			short := time.Duration(frame-c.Frame-int64(h.Limits.Messages.Burst)) * h.Limits.Messages.Interval()
			return c, chat.RateLimited(h.Limits.Messages, short)
		case c.Frame > progress: // an earlier frame was stored: wait on
			deadline, progress, attempt = time.Now().Add(wait), c.Frame, 0
		}
		left := time.Until(deadline)
		if left <= 0 {
			return c, chat.FrameError(c.Frame, frame)
		}
		if err := chat.Sleep(ctx, min(pollEvery(attempt, time.Since(start)), left)); err != nil {
			return c, err
		}
		c, err = h.Senders.Connection(ctx, r.id)
	}
}

// skipFrame gives a rejected frame its place in the connection's order
// (a number already used was given by an earlier copy of the same frame).
func (h *Chat) skipFrame(ctx context.Context, r *request, frame int64) error {
	if err := h.refusedFrame(ctx, r, frame); err != nil {
		return err
	}
	c, err := h.awaitTurn(ctx, r, frame)
	if chat.ErrorCode(err) == chat.CodeInvalidFrame {
		return nil
	}
	if err != nil {
		return err
	}
	if err := h.takeTurn(ctx, r, c, frame); err != nil {
		return err
	}
	return h.passFrame(ctx, r, frame)
}

// passFrame gives a numbered frame that stores nothing its place in the
// connection's order (a copy of it may have taken it already).
func (h *Chat) passFrame(ctx context.Context, r *request, frame int64) error {
	if frame == 0 {
		return nil
	}
	err := h.Senders.SkipFrame(ctx, r.id, frame)
	if chat.ErrorCode(err) == chat.CodeInvalidFrame {
		return nil
	}
	return err
}

// write stores a write frame's message or change in its turn and sends
// it to the room; the sender gets the ack. A message goes to everyone but
// its sender's connection (the ack tells it); a change to everyone, with
// the state it made.
func (h *Chat) write(ctx context.Context, r *request, in chat.Inbound) error {
	if err := h.refusedFrame(ctx, r, in.Frame); err != nil {
		return err
	}
	c, err := h.awaitTurn(ctx, r, in.Frame)
	if chat.ErrorCode(err) == chat.CodeInvalidFrame {
		return h.resent(ctx, r, c, in, err)
	}
	if err != nil {
		return err
	}
	if now := h.Now(); c.MutedUntil.After(now) {
		// Refused without a token; a numbered frame still takes its place.
		if err := h.passFrame(ctx, r, in.Frame); err != nil {
			return err
		}
		return chat.Muted(c.MutedUntil, now)
	}
	if err := h.takeTurn(ctx, r, c, in.Frame); err != nil {
		return err
	}
	h.announceJoin(ctx, r, c) // before the user's first message
	m := chat.Message{ID: chat.NewID(h.Now()), Room: c.Room, UserID: c.UserID, Name: c.Name, Text: in.Text, ClientID: in.ClientID,
		Kind: chat.KindOf(in.Action), Target: in.Target, Emoji: in.Emoji, Remove: in.Remove, ReplyTo: in.ReplyTo, Mentions: in.Mentions}
	if m.Kind == chat.KindDelete {
		if m.Audit = h.moderating(ctx, c, in.Target); m.Audit != nil {
			m.RemovedBy = c.UserID
		}
	}
	res, err := h.Msgs.PutMessage(ctx, m, r.id, in.Frame)
	h.Metrics.Record(ctx, nil, metrics.Count(metrics.ConditionalWritesFailed, res.Failed), metrics.Count(metrics.SeqsSkipped, len(res.Skipped)))
	defer func() { // after the answer
		for _, seq := range res.Skipped {
			h.broadcast(ctx, r, c.Room, "", chat.Skip{Type: chat.TypeSkip, Room: c.Room, Seq: seq})
		}
	}()
	if chat.ErrorCode(err) == chat.CodeInvalidFrame {
		return h.resent(ctx, r, c, in, err) // a copy of this frame was stored first
	}
	if err != nil {
		return err
	}
	h.Tokens.noteFrame(r.id, in.Frame)
	if res.Unchanged {
		h.reply(ctx, r, chat.Ack{Type: chat.TypeAck, ClientID: in.ClientID, UserID: c.UserID, SentAt: chat.FormatTime(h.Now()), Unchanged: true})
		return nil
	}
	stored := res.Message
	h.reply(ctx, r, chat.NewAck(stored))
	r.log.InfoContext(ctx, "message stored", "room", stored.Room, "id", stored.ID, "seq", stored.Seq, "kind", stored.Kind, "target", stored.Target,
		"length", len([]rune(stored.Text)), "frame", in.Frame, "duplicate", res.Duplicate, "failedWrites", res.Failed)
	r.log.DebugContext(ctx, "message text", "id", stored.ID, "text", stored.Text)
	if res.Duplicate {
		h.Metrics.Record(ctx, nil, metrics.Count(metrics.DuplicateMessages, 1))
		h.rebroadcast(ctx, r, stored)
		return nil
	}
	if stored.Kind != "" {
		h.Metrics.Record(ctx, nil, metrics.Count(metrics.ChangesStored, 1))
		target := &res.Target
		if res.TargetErr != nil { // sent without the state: clients get it with the message's next fetch
			r.log.ErrorContext(ctx, "read the state a change made failed", "room", c.Room, "seq", stored.Seq, "target", stored.Target, "err", res.TargetErr)
			target = nil
		}
		h.broadcast(ctx, r, c.Room, "", h.fitted(chat.NewChangeEvent(stored, target)))
		return nil
	}
	h.Metrics.Record(ctx, nil, metrics.Count(metrics.MessagesStored, 1))
	e := chat.NewMessageEvent(stored)
	if stored.ReplyTo > 0 {
		e.ReplyTo = chat.NewQuote(res.Answered)
	}
	h.broadcast(ctx, r, c.Room, r.id, e)
	return nil
}

// moderating returns the audit entry of a delete of someone else's
// message by c's user as an owner or moderator of the room (nil for
// anyone else, whose delete the store allows on their own messages only).
// The role is the connection's ($connect records it, and a role change
// reaches the user's connections); the store checks it again in the
// delete's transaction, which keeps the entry. So a delete costs no read
// beyond its connection's, and a moderator's one more: the message, to
// tell theirs from another's.
func (h *Chat) moderating(ctx context.Context, c chat.Connection, target int64) *chat.AuditEntry {
	if !chat.Moderates(c.Role) {
		return nil
	}
	m, err := h.Msgs.Message(ctx, c.Room, target)
	if err != nil || m.UserID == c.UserID {
		return nil // gone (the store says so) or their own: an ordinary delete
	}
	return &chat.AuditEntry{By: c.UserID, Action: chat.ActionDelete, UserID: m.UserID, Target: target}
}

// fitted returns a change event that fits one frame: with a long text
// (CHAT_MAX_TEXT_CHARS above the default) and many reactions, the state
// goes without who reacted, or, if even that is too large, without state
// (clients get it with the message's next fetch).
func (h *Chat) fitted(e chat.ChangeEvent) chat.ChangeEvent {
	if b, _ := json.Marshal(e); len(b) <= h.Limits.MaxFrameBytes {
		return e
	}
	e = *chat.SyncItem{Change: &e}.Slim().Change
	if b, _ := json.Marshal(e); len(b) > h.Limits.MaxFrameBytes {
		e.State = nil
	}
	return e
}

// resent answers a frame whose number this connection already used. A
// copy of a message already stored (a resend that raced its original, or
// one whose ack was lost) gets the original ack; anything else gets
// usedErr (invalid_frame).
func (h *Chat) resent(ctx context.Context, r *request, c chat.Connection, in chat.Inbound, usedErr error) error {
	if in.ClientID == "" {
		return usedErr
	}
	m, ok, err := h.Msgs.Original(ctx, c.Room, c.UserID, in.ClientID)
	if err != nil {
		return err
	}
	if !ok {
		return usedErr
	}
	h.reply(ctx, r, chat.NewAck(m))
	h.Metrics.Record(ctx, nil, metrics.Count(metrics.DuplicateMessages, 1))
	h.rebroadcast(ctx, r, m)
	return nil
}

// rebroadcast sends a message again for a duplicate of it, only when the
// broadcast of the invocation that stored it may not have run: that
// invocation has ended (it was stored more than InvocationTimeout ago)
// and may have failed before its broadcast. Until then it is running, or
// failed, and either way a client that misses the message fetches it by
// seq; knowing more would cost a write per message.
func (h *Chat) rebroadcast(ctx context.Context, r *request, m chat.Message) {
	if h.Now().Sub(m.SentAt) <= h.Limits.InvocationTimeout {
		r.log.InfoContext(ctx, "duplicate acknowledged; its original's invocation may still be broadcasting it", "clientId", m.ClientID, "seq", m.Seq)
		return
	}
	r.log.InfoContext(ctx, "duplicate acknowledged and sent again", "clientId", m.ClientID, "seq", m.Seq)
	// As the original went, with the quote or the state as they are now.
	var named []chat.Message
	if seq := max(m.Target, m.ReplyTo); seq > 0 {
		n, err := h.Msgs.Message(ctx, m.Room, seq)
		switch {
		case err == nil:
			named = append(named, n)
		case chat.ErrorCode(err) != chat.CodeGone:
			r.log.ErrorContext(ctx, "read the message a duplicate names failed", "room", m.Room, "seq", seq, "err", err)
		}
	}
	items := chat.SyncItems(chat.Connection{}, []chat.Message{m}, named)
	if items[0].Change != nil {
		h.broadcast(ctx, r, m.Room, "", *items[0].Change)
		return
	}
	e := *items[0].Message
	e.Type = chat.TypeNewMessage
	h.broadcast(ctx, r, m.Room, r.id, e)
}
