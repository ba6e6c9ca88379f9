package chatclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// sent is a new-message frame as a test server receives it.
type sent struct {
	ClientID string          `json:"clientId"`
	Frame    int64           `json:"frame"`
	ReplyTo  json.RawMessage `json:"replyTo"` // nil when absent
	Mentions []string        `json:"mentions"`
}

// serve runs a WebSocket server that passes every frame a client sends to
// answer, under one lock, in the order received, and writes back what
// answer returns. It counts the new-message frames.
func serve(t *testing.T, answer func(action string, f sent) []any) (url string, frames func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
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
			var f struct {
				Action string
				sent
			}
			json.Unmarshal(data, &f)
			mu.Lock()
			if f.Action == chat.ActionNewMessage {
				n++
			}
			out := answer(f.Action, f.sent)
			mu.Unlock()
			for _, o := range out {
				b, _ := json.Marshal(o)
				if ws.Write(r.Context(), websocket.MessageText, b) != nil {
					return
				}
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// emptyRoom is the sync reply of a room with nobody and nothing in it.
func emptyRoom() chat.Sync {
	return chat.Sync{Type: chat.TypeSync, Version: chat.ProtocolVersion, Room: "r", You: chat.Member{UserID: "u", Name: "Ana"},
		Members: []chat.Member{}, Presence: map[string]int64{}, Messages: []chat.MessageEvent{}}
}

// messages answers syncs with an empty room and new-message frames with
// answer.
func messages(answer func(f sent) []any) func(action string, f sent) []any {
	return func(action string, f sent) []any {
		switch action {
		case chat.ActionSync:
			return []any{emptyRoom()}
		case chat.ActionNewMessage:
			return answer(f)
		}
		return nil
	}
}

// store keeps what a test server stored: each clientId once, in order.
type store struct {
	seqs  map[string]int64
	order []string
	frame int64 // the connection's last stored frame
}

func (s *store) ack(f sent) chat.Ack {
	seq, ok := s.seqs[f.ClientID]
	if !ok {
		seq = int64(len(s.order) + 1)
		s.seqs[f.ClientID] = seq
		s.order = append(s.order, f.ClientID)
		s.frame = f.Frame
	}
	return chat.Ack{Type: chat.TypeAck, ClientID: f.ClientID, Seq: seq, SentAt: chat.FormatTime(time.Now())}
}

func sendAll(t *testing.T, url string, p int) *Client {
	t.Helper()
	c, err := Dial(t.Context(), Options{URL: url, Room: "r", Name: "Ana"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ready, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Wait(ready, func(s Snapshot) bool { return s.Ready }); err != nil {
		t.Fatal(err)
	}
	for i := range p {
		c.Send(fmt.Sprint("c", i), fmt.Sprint("message ", i))
	}
	done, cancel2 := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel2()
	if err := c.Wait(done, func(s Snapshot) bool { return s.Pending == 0 }); err != nil {
		t.Fatalf("not every message acknowledged: %+v", c.Snapshot().Stats)
	}
	return c
}

// API Gateway's error frames do not say which frame they answer. A client
// with P messages out that hears K of them resends about P frames, in one
// wave after a backoff, not K × P.
func TestGatewayErrorsAreCoalesced(t *testing.T) {
	const p, refused, extra = 20, maxWindow, 24 // K = refused + extra error frames
	s := &store{seqs: map[string]int64{}}
	throttled := 0
	url, frames := serve(t, messages(func(f sent) []any {
		if throttled < refused {
			throttled++
			out := []any{map[string]string{"message": "Too Many Requests", "connectionId": "x", "requestId": "y"}}
			if throttled == 1 {
				for range extra { // the refusals of other frames (pings, typing) look the same
					out = append(out, out[0])
				}
			}
			return out
		}
		return []any{s.ack(f)}
	}))
	c := sendAll(t, url, p)
	st := c.Snapshot().Stats
	if n := frames(); n > 2*p {
		t.Errorf("%d messages and %d gateway errors: %d new-message frames sent, want at most %d", p, refused+extra, n, 2*p)
	}
	if st.Waves > 2 || st.ErrorFrames != refused+extra || st.ForcedReconnects != 0 {
		t.Errorf("stats %+v: want one or two resend waves for %d error frames, no reconnect", st, refused+extra)
	}
	if got := strings.Join(s.order, " "); got != expectOrder(p) {
		t.Errorf("stored %s", got)
	}
}

// Frames refused for the rate limit go again when told, one at a time in
// order, paced by the wait told: at most one refusal per frame over the
// limit, even when the server tells every refused frame the same wait.
func TestRateLimitedFramesGoAgainInOrder(t *testing.T) {
	const p, burst = 30, 5
	const interval = 40 * time.Millisecond
	s := &store{seqs: map[string]int64{}}
	var tat time.Time // the bucket, as the server's GCRA keeps it
	refusals := 0
	url, frames := serve(t, messages(func(f sent) []any {
		now := time.Now()
		if f.Frame <= s.frame {
			return []any{s.ack(f)} // a resend of a stored frame
		}
		r := chat.Rate{What: chat.RateMessages, PerSecond: float64(time.Second / interval), Burst: burst}
		next, wait, ok := r.Take(tat, now)
		if ok && f.Frame == s.frame+1 {
			tat = next
			return []any{s.ack(f)}
		}
		refusals++
		return []any{chat.NewErrorEvent(chat.RateLimited(r, max(wait, interval)), chat.Inbound{Action: chat.ActionNewMessage, ClientID: f.ClientID, Frame: f.Frame})}
	}))
	c := sendAll(t, url, p)
	if refusals > p-burst || frames() > p+refusals {
		t.Errorf("%d messages against a burst of %d: %d refusals, %d frames; want at most %d refusals", p, burst, refusals, frames(), p-burst)
	}
	if st := c.Snapshot().Stats; st.ForcedReconnects != 0 || st.Waves != 0 {
		t.Errorf("stats %+v: want no reconnect and no wave", st)
	}
	if got := strings.Join(s.order, " "); got != expectOrder(p) {
		t.Errorf("stored %s", got)
	}
}

func expectOrder(p int) string {
	var want []string
	for i := range p {
		want = append(want, fmt.Sprint("c", i))
	}
	return strings.Join(want, " ")
}

// out_of_order says the frame before was not stored in time: it is on its
// way to a slow server. The refused frame goes again once the one before
// it is answered, and that one is not sent again (a copy would race it).
func TestOutOfOrderResendsOnlyTheRefusedFrame(t *testing.T) {
	s := &store{seqs: map[string]int64{}}
	sends := map[string]int{}
	url, _ := serve(t, messages(func(f sent) []any {
		sends[f.ClientID]++
		switch {
		case f.ClientID == "c0" && sends["c0"] == 1:
			return nil // on its way: answered with the next frame's refusal
		case f.ClientID == "c1" && sends["c1"] == 1:
			return []any{outOfOrder(f), s.ack(sent{ClientID: "c0", Frame: 1})}
		case f.Frame > s.frame+1:
			return []any{outOfOrder(f)} // its predecessor is not stored
		}
		return []any{s.ack(f)}
	}))
	c := sendAll(t, url, 3)
	if sends["c0"] != 1 || sends["c1"] != 2 {
		t.Errorf("frames sent per message %v; want c0 once, c1 twice (it was refused)", sends)
	}
	if st := c.Snapshot().Stats; st.Waves != 0 {
		t.Errorf("%d resend waves after out_of_order, want none", st.Waves)
	}
	if got := strings.Join(s.order, " "); got != "c0 c1 c2" {
		t.Errorf("stored %s", got)
	}
}

func outOfOrder(f sent) chat.ErrorEvent {
	return chat.NewErrorEvent(chat.FrameError(f.Frame-2, f.Frame), chat.Inbound{Action: chat.ActionNewMessage, ClientID: f.ClientID, Frame: f.Frame})
}

// A message may reply to another and mention users: its frame names them,
// a plain message's frame has neither field, and the message held from
// its ack carries them (the answered message by its seq).
func TestRepliesAndMentionsAreSent(t *testing.T) {
	s := &store{seqs: map[string]int64{}}
	var mu sync.Mutex
	var got []sent
	url, _ := serve(t, messages(func(f sent) []any {
		mu.Lock()
		got = append(got, f)
		mu.Unlock()
		return []any{s.ack(f)}
	}))
	c, err := Dial(t.Context(), Options{URL: url, Room: "r", Name: "Ana"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Send("c0", "hello")
	c.SendWith("c1", "@Bo yes", Extras{ReplyTo: 1, Mentions: []string{"g-bo", "g-cy"}})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Wait(ctx, func(s Snapshot) bool { return s.Ready && s.Pending == 0 }); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].ReplyTo != nil || got[0].Mentions != nil ||
		string(got[1].ReplyTo) != "1" || !slices.Equal(got[1].Mentions, []string{"g-bo", "g-cy"}) {
		t.Errorf("frames %+v; want a plain one, then one with replyTo 1 and mentions g-bo, g-cy", got)
	}
	h := c.Snapshot().History
	if len(h) != 2 || h[0].ReplyTo != nil || h[1].ReplyTo == nil || h[1].ReplyTo.Seq != 1 || !slices.Equal(h[1].Mentions, []string{"g-bo", "g-cy"}) {
		t.Errorf("held %+v; want the reply to 1 with its mentions", h)
	}
}
