package chatclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

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

// A handshake refused with 429 (the stage's throttle, the account's quota
// of new connections) is tried again after a backoff; any other refusal
// is the answer.
func TestThrottledHandshakeIsTriedAgain(t *testing.T) {
	var tries atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n := tries.Add(1); {
		case r.URL.Query().Get("room") == "closed":
			http.Error(w, "this origin may not connect", http.StatusForbidden)
		case n <= 2:
			http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
		default:
			if ws, err := websocket.Accept(w, r, nil); err == nil {
				ws.Close(websocket.StatusNormalClosure, "")
			}
		}
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ws, refused, err := DialSocket(t.Context(), url+"?room=r")
	if err != nil || tries.Load() != 3 || refused != 2 {
		t.Fatalf("after two 429s: %v, %d handshakes, %d counted refused; want connected with the third, 2 refused", err, tries.Load(), refused)
	}
	ws.CloseNow()
	tries.Store(0)
	if _, refused, err := DialSocket(t.Context(), url+"?room=closed"); err == nil || tries.Load() != 1 || refused != 0 {
		t.Errorf("a 403: %v after %d handshakes (%d counted refused); want an error after one, none refused", err, tries.Load(), refused)
	}
}
