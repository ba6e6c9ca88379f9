package chatclient

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// A connection's first sync whose reply is lost is asked for again, and
// the client becomes ready with the second: nothing it queued waits for
// ever. The server here answers every sync but the first.
func TestLostFirstSyncIsAskedAgain(t *testing.T) {
	var syncs atomic.Int32
	url, _ := serve(t, func(action string, _ sent) []any {
		if action != chat.ActionSync || syncs.Add(1) == 1 {
			return nil // the first sync's reply is lost
		}
		return []any{emptyRoom()}
	})
	c, err := Dial(t.Context(), Options{URL: url, Room: "r", Name: "Ana"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 3*askAgainAfter)
	defer cancel()
	if err := c.Wait(ctx, func(s Snapshot) bool { return s.Ready }); err != nil {
		t.Fatalf("never ready after a lost first sync (%d syncs sent): %v", syncs.Load(), err)
	}
	if n := syncs.Load(); n != 2 {
		t.Errorf("%d syncs sent, want 2 (the first, then one more after %v)", n, askAgainAfter)
	}
}
