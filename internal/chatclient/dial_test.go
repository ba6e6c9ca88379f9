package chatclient

import (
	"context"
	"encoding/json"
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
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for {
			_, data, err := ws.Read(r.Context())
			if err != nil {
				return
			}
			var f struct{ Action string }
			json.Unmarshal(data, &f)
			if f.Action != chat.ActionSync || syncs.Add(1) == 1 {
				continue // the first sync's reply is lost
			}
			reply, _ := json.Marshal(chat.Sync{Type: chat.TypeSync, Version: chat.ProtocolVersion, Room: "r",
				You: chat.Member{UserID: "u", Name: "Ana"}, Members: []chat.Member{{UserID: "u", Name: "Ana"}},
				Presence: map[string]int64{"u": 1}, Messages: []chat.MessageEvent{}})
			ws.Write(r.Context(), websocket.MessageText, reply)
		}
	}))
	defer srv.Close()
	c, err := Dial(t.Context(), Options{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Room: "r", Name: "Ana"})
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
