package handler

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/dynamolocal"
	"github.com/chatgo/serverless-chat/internal/store"
)

var endpoint string // DynamoDB Local, for the suite on the real store

func TestMain(m *testing.M) {
	os.Exit(dynamolocal.Main(m, &endpoint))
}

// stores are the two backends every scenario runs on.
var stores = map[string]func(t *testing.T) (Connections, Messages){
	"mem": func(*testing.T) (Connections, Messages) {
		m := newMemStore()
		return m, m
	},
	"dynamodb": func(t *testing.T) (Connections, Messages) {
		if endpoint == "" {
			t.Skip("integration test: needs DynamoDB Local (skipped with -short)")
		}
		client, names := dynamolocal.NewTables(t, endpoint)
		db := store.New(client, store.Tables{Connections: names["ConnectionsTable"], Messages: names["MessagesTable"]})
		return db, db
	},
}

// world is one chat under test: the handlers, a fake Management API and a
// clock that moves only when told.
type world struct {
	t   *testing.T
	h   *Chat
	fan *fakeFanout
	now time.Time
	log *bytes.Buffer
}

func newWorld(t *testing.T, conns Connections, msgs Messages) *world {
	// The clock starts at the real time: DynamoDB Local deletes items whose
	// TTL has passed by its own clock, so a fixed date would expire them.
	w := &world{t: t, fan: newFakeFanout(), now: time.Now().UTC().Truncate(time.Millisecond), log: &bytes.Buffer{}}
	w.h = &Chat{Conns: conns, Msgs: msgs, Fanout: w.fan, Limits: chat.DefaultLimits(), Region: "eu-west-1",
		Log: slog.New(slog.NewJSONHandler(w.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: func() time.Time { return w.now }, ConnectGrace: 30 * time.Second}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("handler log:\n%s", w.log)
		}
	})
	return w
}

func forEachStore(t *testing.T, fn func(t *testing.T, w *world)) {
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			c, m := newStore(t)
			fn(t, newWorld(t, c, m))
		})
	}
}

func loadEvent(t *testing.T, file string) events.APIGatewayWebsocketProxyRequest {
	t.Helper()
	data, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayWebsocketProxyRequest
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func (w *world) connect(id, name, room string) int {
	w.t.Helper()
	ev := loadEvent(w.t, "connect.json")
	ev.RequestContext.ConnectionID = id
	ev.QueryStringParameters = map[string]string{}
	if name != "" {
		ev.QueryStringParameters["name"] = name
	}
	if room != "" {
		ev.QueryStringParameters["room"] = room
	}
	resp, err := w.h.Connect(w.t.Context(), ev)
	if err != nil {
		w.t.Fatalf("Connect returned error %v", err)
	}
	return resp.StatusCode
}

func (w *world) send(id, body string) int {
	w.t.Helper()
	ev := loadEvent(w.t, "message.json")
	ev.RequestContext.ConnectionID = id
	ev.Body = body
	var frame struct{ Action string }
	json.Unmarshal([]byte(body), &frame)
	ev.RequestContext.RouteKey = frame.Action
	if !strings.Contains(strings.Join(chat.Actions, " "), frame.Action) || frame.Action == "" {
		ev.RequestContext.RouteKey = "$default"
	}
	resp, err := w.h.Message(w.t.Context(), ev)
	if err != nil {
		w.t.Fatalf("Message returned error %v", err)
	}
	return resp.StatusCode
}

func (w *world) disconnect(id string) int {
	w.t.Helper()
	ev := loadEvent(w.t, "disconnect.json")
	ev.RequestContext.ConnectionID = id
	resp, err := w.h.Disconnect(w.t.Context(), ev)
	if err != nil {
		w.t.Fatalf("Disconnect returned error %v", err)
	}
	return resp.StatusCode
}

// frames returns and forgets what a connection received, one "type:detail"
// summary per frame, and the frames decoded.
func (w *world) frames(id string) ([]string, []map[string]any) {
	w.fan.mu.Lock()
	raw := w.fan.got[id]
	delete(w.fan.got, id)
	w.fan.mu.Unlock()
	var sums []string
	var decoded []map[string]any
	for _, r := range raw {
		var f map[string]any
		if err := json.Unmarshal([]byte(r), &f); err != nil {
			w.t.Fatalf("frame to %s is not JSON: %s", id, r)
		}
		decoded = append(decoded, f)
		sum := f["type"].(string)
		for _, k := range []string{"name", "text", "code", "clientId"} {
			if v, ok := f[k].(string); ok {
				sum += " " + k + "=" + v
			}
		}
		sums = append(sums, sum)
	}
	return sums, decoded
}

func (w *world) expect(id string, want ...string) []map[string]any {
	w.t.Helper()
	got, decoded := w.frames(id)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		w.t.Errorf("%s received:\n  %s\nwant:\n  %s", id, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return decoded
}

func TestConnectValidatesQuery(t *testing.T) {
	forEachStore(t, func(t *testing.T, w *world) {
		for _, q := range [][2]string{{strings.Repeat("n", 33), ""}, {"Ana", "bad room"}, {"A\x01", ""}} {
			if got := w.connect("x", q[0], q[1]); got != 400 {
				t.Errorf("connect name=%q room=%q: status %d, want 400", q[0], q[1], got)
			}
		}
		if _, err := w.h.Conns.Connection(t.Context(), "x"); !errors.Is(err, chat.ErrNoConnection) {
			t.Errorf("a rejected connection was stored (err %v)", err)
		}
		if got := w.connect("g", "", ""); got != 200 {
			t.Fatalf("connect with no query: %d", got)
		}
		c, err := w.h.Conns.Connection(t.Context(), "g")
		if err != nil || !strings.HasPrefix(c.Name, "guest-") || c.Room != chat.DefaultRoom {
			t.Errorf("default connection = %+v, %v; want a guest in %s", c, err, chat.DefaultRoom)
		}
	})
}

func TestChatScenario(t *testing.T) {
	forEachStore(t, func(t *testing.T, w *world) {
		w.connect("a1", "Ana", "r")
		w.connect("x1", "Xi", "elsewhere")
		w.connect("b1", "Bo", "r")
		w.expect("a1", "join name=Bo")
		w.expect("b1") // nothing can reach a connection during its own $connect
		w.connect("a2", "Ana", "r")
		w.expect("b1") // Ana's second tab: no second join
		w.expect("a1")

		w.now = w.now.Add(time.Second)
		sentAt := chat.FormatTime(w.now)
		w.send("a1", `{"action":"new-message","text":"  hi all ","clientId":"c1"}`)
		ack := w.expect("a1", "ack clientId=c1")
		w.expect("a2", "new-message name=Ana text=hi all")
		msg := w.expect("b1", "new-message name=Ana text=hi all")
		w.expect("x1")
		if len(ack) == 1 && len(msg) == 1 {
			if ack[0]["id"] != msg[0]["id"] || ack[0]["sentAt"] != sentAt || msg[0]["room"] != "r" {
				t.Errorf("ack %v and message %v disagree", ack[0], msg[0])
			}
		}

		w.now = w.now.Add(time.Second)
		w.send("a1", `{"action":"new-message","text":"hi all","clientId":"c1"}`) // a retry
		retry := w.expect("a1", "ack clientId=c1")
		w.expect("b1")
		if len(retry) == 1 && len(ack) == 1 && (retry[0]["id"] != ack[0]["id"] || retry[0]["sentAt"] != ack[0]["sentAt"]) {
			t.Errorf("retry ack %v, want the original %v", retry[0], ack[0])
		}

		w.send("b1", `{"action":"typing"}`)
		w.send("b1", `{"action":"typing"}`) // within 2 s: dropped
		w.expect("a1", "typing name=Bo")
		w.expect("a2", "typing name=Bo")
		w.expect("b1")
		w.now = w.now.Add(2 * time.Second)
		w.send("b1", `{"action":"typing"}`)
		w.expect("a1", "typing name=Bo")
		w.expect("a2", "typing name=Bo")

		w.send("b1", `{"action":"ping"}`)
		w.expect("b1", "pong")
		w.expect("a1")

		w.send("b1", `{"action":"sync"}`)
		sync := w.expect("b1", "sync")
		if len(sync) == 1 {
			s := sync[0]
			got, _ := json.Marshal([]any{s["room"], s["you"], s["members"], len(s["messages"].([]any)), s["more"]})
			if want := `["r",{"name":"Bo"},["Ana","Bo"],1,false]`; string(got) != want {
				t.Errorf("sync = %s, want %s", got, want)
			}
		}

		w.disconnect("a1")
		w.expect("b1") // Ana still has a2
		w.disconnect("a2")
		w.expect("b1", "leave name=Ana")
		w.disconnect("a2") // repeated: nothing
		w.expect("b1")
	})
}

func TestErrorsReachOnlyTheSender(t *testing.T) {
	forEachStore(t, func(t *testing.T, w *world) {
		w.connect("a1", "Ana", "r")
		w.connect("b1", "Bo", "r")
		w.frames("a1")
		cases := []struct{ body, want string }{
			{`{"action":"new-message","text":`, "error code=bad_json"},
			{`not json`, "error code=bad_json"},
			{`{"action":"dance"}`, "error code=unknown_action"},
			{`{"text":"no action"}`, "error code=unknown_action"},
			{`{"action":"new-message","text":"   ","clientId":"c9"}`, "error code=invalid_message clientId=c9"},
			{`{"action":"new-message","text":"` + strings.Repeat("x", 2001) + `","clientId":"c8"}`, "error code=too_long clientId=c8"},
			{`{"action":"sync","after":"nope"}`, "error code=invalid_message"},
		}
		for _, c := range cases {
			if got := w.send("a1", c.body); got != 200 {
				t.Errorf("%.40s: status %d", c.body, got)
			}
			w.expect("a1", c.want)
		}
		w.expect("b1")
		msgs, _, err := w.h.Msgs.History(t.Context(), "r", "", 10)
		if err != nil || len(msgs) != 0 {
			t.Errorf("rejected frames stored %d messages (%v)", len(msgs), err)
		}
	})
}

// A connection that answers 410 is removed, the others still get the
// message, and when it was its name's last the room hears the leave.
func TestGoneConnectionsArePruned(t *testing.T) {
	forEachStore(t, func(t *testing.T, w *world) {
		for _, c := range [][2]string{{"a1", "Ana"}, {"a2", "Ana"}, {"b1", "Bo"}, {"c1", "Cy"}} {
			w.connect(c[0], c[1], "r")
		}
		for _, id := range []string{"a1", "a2", "b1", "c1"} {
			w.frames(id)
		}
		w.now = w.now.Add(time.Minute) // past the grace of a connection still in $connect
		w.fan.gone["a2"] = true
		w.send("b1", `{"action":"new-message","text":"one"}`)
		w.expect("a1", "new-message name=Bo text=one")
		w.expect("c1", "new-message name=Bo text=one")
		w.expect("b1", "ack")
		if _, err := w.h.Conns.Connection(t.Context(), "a2"); !errors.Is(err, chat.ErrNoConnection) {
			t.Errorf("gone a2 still stored (err %v)", err)
		}
		if _, err := w.h.Conns.Connection(t.Context(), "b1"); err != nil {
			t.Errorf("the sender b1 was removed: %v", err)
		}

		w.fan.gone["a1"] = true
		w.send("b1", `{"action":"new-message","text":"two"}`)
		w.expect("b1", "ack", "leave name=Ana")
		w.expect("c1", "new-message name=Bo text=two", "leave name=Ana")

		w.send("b1", `{"action":"sync"}`)
		sync := w.expect("b1", "sync")
		if len(sync) == 1 {
			if got, _ := json.Marshal(sync[0]["members"]); string(got) != `["Bo","Cy"]` {
				t.Errorf("members after pruning = %s", got)
			}
		}
	})
}

func TestSyncAfterReconnect(t *testing.T) {
	forEachStore(t, func(t *testing.T, w *world) {
		w.connect("a1", "Ana", "r")
		w.connect("b1", "Bo", "r")
		w.frames("a1")
		var ids []string
		for i := range 5 {
			w.now = w.now.Add(time.Second)
			w.send("a1", `{"action":"new-message","text":"m`+string(rune('0'+i))+`"}`)
			acks := w.expect("a1", "ack")
			if len(acks) == 1 {
				ids = append(ids, acks[0]["id"].(string))
			}
		}
		if len(ids) != 5 {
			t.Fatal("missing acks")
		}
		w.frames("b1") // b1 was online for these; the syncs below are as if it had not been
		w.send("b1", `{"action":"sync","after":"`+ids[1]+`","limit":2}`)
		page := w.expect("b1", "sync")[0]
		if got := texts(page); got != "m2 m3" || page["more"] != true {
			t.Errorf("sync after m1, limit 2 = %q more %v; want \"m2 m3\" more true", got, page["more"])
		}
		w.send("b1", `{"action":"sync","after":"`+ids[3]+`"}`)
		if page := w.expect("b1", "sync")[0]; texts(page) != "m4" || page["more"] != false {
			t.Errorf("sync after m3 = %q more %v", texts(page), page["more"])
		}
		w.send("b1", `{"action":"sync","limit":3}`)
		if page := w.expect("b1", "sync")[0]; texts(page) != "m2 m3 m4" || page["more"] != true {
			t.Errorf("latest 3 = %q more %v", texts(page), page["more"])
		}
	})
}

func texts(sync map[string]any) string {
	var out []string
	for _, m := range sync["messages"].([]any) {
		out = append(out, m.(map[string]any)["text"].(string))
	}
	return strings.Join(out, " ")
}

// A sync page larger than API Gateway's 128 KB frame limit is cut short.
func TestSyncFitsOneFrame(t *testing.T) {
	forEachStore(t, func(t *testing.T, w *world) {
		w.connect("a1", "Ana", "r")
		big := strings.Repeat("€", 2000) // 6 KB of UTF-8 per message
		for range 30 {
			w.now = w.now.Add(time.Millisecond)
			w.send("a1", `{"action":"new-message","text":"`+big+`"}`)
		}
		w.frames("a1")
		w.send("a1", `{"action":"sync","limit":100}`)
		w.fan.mu.Lock()
		raw := w.fan.got["a1"]
		w.fan.mu.Unlock()
		if len(raw) != 1 {
			t.Fatalf("got %d frames", len(raw))
		}
		var s chat.Sync
		json.Unmarshal([]byte(raw[0]), &s)
		if len(raw[0]) > w.h.Limits.MaxFrameBytes || !s.More || len(s.Messages) < 15 || len(s.Messages) == 30 {
			t.Errorf("sync frame %d bytes with %d messages, more %v; want ≤ %d bytes, cut short, more true",
				len(raw[0]), len(s.Messages), s.More, w.h.Limits.MaxFrameBytes)
		}
	})
}

func TestStoreFailureIsAnInternalError(t *testing.T) {
	m := newMemStore()
	w := newWorld(t, m, m)
	w.connect("a1", "Ana", "r")
	m.fail = errors.New("dynamodb: connection refused to 10.0.0.1")
	w.send("a1", `{"action":"new-message","text":"hi","clientId":"c1"}`)
	got := w.expect("a1", "error code=internal clientId=c1")
	if len(got) == 1 && strings.Contains(got[0]["message"].(string), "10.0.0.1") {
		t.Errorf("the cause leaked to the client: %v", got[0])
	}
	if !strings.Contains(w.log.String(), "10.0.0.1") {
		t.Error("the cause was not logged")
	}
	if got := w.connect("b1", "Bo", "r"); got != 500 {
		t.Errorf("connect with the store down: %d, want 500", got)
	}
}

func TestPanicsBecome500(t *testing.T) {
	m := newMemStore()
	w := newWorld(t, m, m)
	m.panic = true
	if got := w.connect("a1", "Ana", "r"); got != 500 {
		t.Errorf("Connect: %d", got)
	}
	if got := w.send("a1", `{"action":"sync"}`); got != 500 {
		t.Errorf("Message: %d", got)
	}
	if got := w.disconnect("a1"); got != 500 {
		t.Errorf("Disconnect: %d", got)
	}
	if !strings.Contains(w.log.String(), "store exploded") || !strings.Contains(w.log.String(), "goroutine") {
		t.Error("panic and stack not logged")
	}
}

func TestManagementEndpoint(t *testing.T) {
	m := newMemStore()
	w := newWorld(t, m, m)
	w.connect("a1", "Ana", "r")
	w.send("a1", `{"action":"ping"}`)
	w.h.Endpoint = "http://127.0.0.1:9999/local"
	w.send("a1", `{"action":"ping"}`)
	want := map[string]bool{"https://k3x9q2w7ab.execute-api.eu-west-1.amazonaws.com/prod": true, "http://127.0.0.1:9999/local": true}
	if got, _ := json.Marshal(w.fan.endpoints); string(got) != mustJSON(want) {
		t.Errorf("endpoints = %s, want %s", got, mustJSON(want))
	}
}

func TestBroadcastLogLine(t *testing.T) {
	m := newMemStore()
	w := newWorld(t, m, m)
	w.connect("a1", "Ana", "r")
	w.connect("b1", "Bo", "r")
	w.connect("c1", "Cy", "r")
	w.now = w.now.Add(time.Minute)
	w.fan.gone["c1"] = true
	w.log.Reset()
	w.send("a1", `{"action":"new-message","text":"hi"}`)
	var line struct {
		Msg, Room, Event string
		Result           struct{ Recipients, Sent, Gone, Failed int }
	}
	for l := range strings.Lines(w.log.String()) {
		if strings.Contains(l, `"msg":"broadcast"`) && strings.Contains(l, `"event":"new-message"`) {
			json.Unmarshal([]byte(l), &line)
		}
	}
	if line.Room != "r" || line.Result.Recipients != 2 || line.Result.Sent != 1 || line.Result.Gone != 1 {
		t.Errorf("broadcast log line = %+v", line)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// API Gateway answers 410 for a connection whose $connect has not returned:
// two people connecting at once must not prune each other.
func TestConnectingConnectionIsNotPruned(t *testing.T) {
	forEachStore(t, func(t *testing.T, w *world) {
		w.connect("a1", "Ana", "r")
		w.fan.gone["a1"] = true // Ana's $connect is still running when Bo's join goes out
		w.connect("b1", "Bo", "r")
		delete(w.fan.gone, "a1")
		if _, err := w.h.Conns.Connection(t.Context(), "a1"); err != nil {
			t.Fatalf("a1 was pruned during its $connect: %v", err)
		}
		w.now = w.now.Add(w.h.ConnectGrace + time.Second)
		w.fan.gone["a1"] = true // now it really is gone
		w.send("b1", `{"action":"ping"}`)
		w.send("b1", `{"action":"new-message","text":"x"}`)
		if _, err := w.h.Conns.Connection(t.Context(), "a1"); !errors.Is(err, chat.ErrNoConnection) {
			t.Errorf("a1 answered 410 after the grace and was kept (err %v)", err)
		}
	})
}
