package handler

import (
	"context"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// Rate limits: every frame but typing takes a token from its user's
// bucket (Buckets), unless this instance remembers the bucket empty
// (TokenMemory); a new-message frame takes one only when it is its turn.

// refused returns rate_limited for a frame of rate that this instance
// remembers the connection's bucket to be empty for, or that comes while
// as many of the connection's frames as the bucket holds may still take a
// token here: no request needed. A numbered frame is told the wait its place
// in the line needs, as far as this instance knows the line (a later
// frame waits one more interval per frame before it that is not stored
// yet). until is when the first of them may go: the bucket has no token
// before (zero when the bucket may have some: only this frame is
// refused). A frame let through counts among those that may take a token
// until it has taken one or been refused (r.taking).
func (h *Chat) refused(r *request, rate chat.Rate, frame int64) (until time.Time, err error) {
	now := h.Now()
	mem := h.Tokens.get(r.id)
	_, wait, ok := rate.Take(*mem.bucket(rate), now)
	if ok {
		n, leave := h.Tokens.enter(r.id, rate)
		if n <= rate.Burst {
			r.taking = leave
			return time.Time{}, nil
		}
		leave()
		// The frames counted before take the tokens there are first.
		return time.Time{}, chat.RateLimited(rate, time.Duration(n-rate.Burst)*rate.Interval())
	}
	until = now.Add(wait)
	if frame > mem.frame+1 {
		wait += time.Duration(frame-mem.frame-1) * rate.Interval()
	}
	return until, chat.RateLimited(rate, wait)
}

// take takes a token of rate from the bucket of c's user for the frame; a
// frame over the limit gets rate_limited.
func (h *Chat) take(ctx context.Context, r *request, c chat.Connection, rate chat.Rate) error {
	defer r.doneTaking()
	now := h.Now()
	tat, wait, err := h.Buckets.TakeToken(ctx, c.UserID, rate, now, h.Tokens.tat(r.id, rate))
	if err != nil {
		return err
	}
	h.Tokens.noteTat(r.id, rate, tat)
	if wait > 0 {
		return chat.RateLimited(rate, wait)
	}
	return nil
}

// read serves a frame that reads the room (sync, ping, presence) within
// its rate.
func (h *Chat) read(ctx context.Context, r *request, serve func(c chat.Connection) error) error {
	if _, err := h.refused(r, h.Limits.Reads, 0); err != nil {
		return err
	}
	c, err := h.Senders.Connection(ctx, r.id)
	if err != nil {
		return err
	}
	if err := h.take(ctx, r, c, h.Limits.Reads); err != nil {
		return err
	}
	return serve(c)
}

// takeTurn takes a message token for a frame whose turn it is.
func (h *Chat) takeTurn(ctx context.Context, r *request, c chat.Connection, frame int64) error {
	err := h.take(ctx, r, c, h.Limits.Messages)
	if wait := chat.RetryAfter(err); wait > 0 && frame > 0 {
		h.hold(ctx, r, h.Now().Add(wait))
	}
	return err
}

// hold records that a connection's next frame (refused for the rate
// limit: it keeps its number) cannot be stored before until, nor the
// frames after it, so that those are refused at once rather than left
// waiting, on any instance. It is recorded once per wait: a flood refused
// from memory costs one write, not one per frame.
func (h *Chat) hold(ctx context.Context, r *request, until time.Time) {
	if !until.After(h.Tokens.get(r.id).held) {
		return
	}
	if err := h.Buckets.HoldFrames(ctx, r.id, until); err != nil {
		r.log.WarnContext(ctx, "hold frames failed", "err", err)
		return
	}
	h.Tokens.noteHeld(r.id, until)
}

// refusedFrame is refused for a new-message frame: numbered, and refused
// for a bucket known empty, it also holds the frames after it.
func (h *Chat) refusedFrame(ctx context.Context, r *request, frame int64) error {
	until, err := h.refused(r, h.Limits.Messages, frame)
	if err != nil && frame > 0 && !until.IsZero() {
		h.hold(ctx, r, until)
	}
	return err
}
