package chat

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the retry schedule of the store, the handlers and the Go
// client: the wait before retry n (0 for the first) doubles from First up
// to Max, and is drawn at random from its upper half ("equal jitter"), so
// that many callers that failed together do not retry together, and none
// retries at once. web/client.js follows the same rule; internal/fanout
// keeps its own, with full jitter, for posts.
type Backoff struct {
	First, Max time.Duration
}

// Delay returns the wait before retry n.
func (b Backoff) Delay(n int) time.Duration {
	d := b.First << min(max(n, 0), 30)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep waits for d, or until ctx ends (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
