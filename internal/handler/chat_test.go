package handler

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/dynamolocal/dynamolocaltest"
	"github.com/chatgo/serverless-chat/internal/fanout"
	"github.com/chatgo/serverless-chat/internal/invite"
	"github.com/chatgo/serverless-chat/internal/metrics"
	"github.com/chatgo/serverless-chat/internal/store"
)

var endpoint string // DynamoDB Local

func TestMain(m *testing.M) {
	os.Exit(dynamolocaltest.Main(m, &endpoint))
}

// world is one chat under test: the handlers on the real store (DynamoDB
// Local), a fake Management API and a clock that moves only when told.
type world struct {
	t      *testing.T
	iam    *iamCheck // the handlers' DynamoDB calls, checked against their functions' policies
	h      *Chat
	db     *store.DB
	client *dynamodb.Client // to make states the handlers never make
	tables store.Tables
	fan    *fakeFanout
	now    time.Time
	log    *bytes.Buffer // slog's handler serialises its writes; read it only when no handler runs
}

func newWorld(t *testing.T) *world {
	if endpoint == "" {
		t.Skip("integration test: needs DynamoDB Local (skipped with -short)")
	}
	client, names := dynamolocaltest.NewTables(t, endpoint)
	iam := newIAMCheck(t, names)
	client = dynamodb.New(client.Options(), iam.option)
	tables := store.Tables{Connections: names["ConnectionsTable"], Messages: names["MessagesTable"]}
	db := store.New(client, tables)
	// The clock starts at the real time: DynamoDB Local deletes items whose
	// TTL has passed by its own clock, so a fixed date would expire them.
	w := &world{t: t, db: db, client: client, tables: tables, iam: iam, fan: newFakeFanout(), now: time.Now().UTC().Truncate(time.Millisecond), log: &bytes.Buffer{}}
	db.Now = func() time.Time { return w.now }
	w.h = &Chat{Conns: db, Senders: db, Buckets: db, Msgs: db, Access: db, Bursts: db, Fanout: w.fan, Tokens: NewTokenMemory(100), Limits: chat.DefaultLimits(), Region: "eu-west-1",
		Log: slog.New(slog.NewJSONHandler(w.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: func() time.Time { return w.now }, ConnectGrace: 30 * time.Second, Invites: invite.Key(rand.Text() + rand.Text())}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("handler log:\n%s", w.log)
		}
	})
	return w
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
	if name != "" {
		ev.QueryStringParameters["key"] = testKey(name) // one user per name, unless a test says otherwise
	}
	resp, err := w.h.Connect(w.iam.ctx(w.t.Context(), "$connect"), ev)
	if err != nil {
		w.t.Errorf("Connect returned error %v", err)
	}
	return resp.StatusCode
}

// arrive connects as a client does: $connect, then a sync, whose reply it
// forgets. The room hears of the user with that first frame.
func (w *world) arrive(id, name, room string) {
	w.t.Helper()
	if code := w.connect(id, name, room); code != 200 {
		w.t.Fatalf("connect %s: status %d", id, code)
	}
	w.send(id, `{"action":"sync"}`)
	w.frames(id)
}

// testKey is the guest key of the test user called name.
func testKey(name string) string { return "testkey_" + name + "________" }

// memberNames returns a sync frame's members as "name" words.
func memberNames(sync map[string]any) string {
	var names []string
	for _, m := range sync["members"].([]any) {
		names = append(names, m.(map[string]any)["name"].(string))
	}
	return strings.Join(names, ",")
}

func (w *world) send(id, body string) int {
	w.t.Helper()
	ev := loadEvent(w.t, "message.json")
	ev.RequestContext.ConnectionID = id
	ev.RequestContext.RequestTimeEpoch = w.now.UnixMilli()
	ev.Body = body
	var frame struct{ Action string }
	json.Unmarshal([]byte(body), &frame)
	ev.RequestContext.RouteKey = frame.Action
	if !slices.Contains(chat.Actions, frame.Action) {
		ev.RequestContext.RouteKey = "$default"
	}
	resp, err := w.h.Message(w.iam.ctx(w.t.Context(), ev.RequestContext.RouteKey), ev)
	if err != nil {
		w.t.Errorf("Message returned error %v", err)
	}
	w.answer(id, ev.RequestContext.RouteKey, resp.Body)
	return resp.StatusCode
}

// answer does what API Gateway does with a message function's response:
// on a route with a route response in template.yaml, its body goes to
// the connection (once the invocation ends, after what it posted).
func (w *world) answer(id, route, body string) {
	w.t.Helper()
	twoWay := twoWayRoutes(w.t)[route]
	w.fan.mu.Lock()
	defer w.fan.mu.Unlock()
	switch {
	case !twoWay && body != "":
		w.t.Errorf("route %s has no route response, and its answer %s is lost", route, body)
	case !twoWay, body == "", w.fan.gone[id], slices.Contains(w.fan.closed, id):
		// An empty body (the answer was posted before a broadcast) may
		// reach the client as an empty frame, which clients ignore.
	default:
		w.fan.got[id] = append(w.fan.got[id], body)
	}
}

// twoWayRoutes returns the routes of template.yaml with a route response.
func twoWayRoutes(t *testing.T) map[string]bool {
	apis, err := loadTemplate(t).WebSocketAPIs()
	if err != nil || len(apis) != 1 {
		t.Fatalf("template.yaml's WebSocket APIs: %v, %v", apis, err)
	}
	return apis[0].TwoWay
}

func (w *world) disconnect(id string) int {
	w.t.Helper()
	ev := loadEvent(w.t, "disconnect.json")
	ev.RequestContext.ConnectionID = id
	resp, err := w.h.Disconnect(w.iam.ctx(w.t.Context(), "$disconnect"), ev)
	if err != nil {
		w.t.Errorf("Disconnect returned error %v", err)
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

// A removal that failed halfway (the member item deleted, the lookup's
// delete failed, and nobody tries again) leaves the lookup: the next sync
// that reads the room takes the user out, once the connect grace is over
// (before it, a lookup without its member item may be a connect under
// way).
func TestHalfRemovedConnectionLeaves(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.frames("a1")
	_, err := w.client.DeleteItem(t.Context(), &dynamodb.DeleteItemInput{TableName: &w.tables.Connections, Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "room#r"}, "sk": &types.AttributeValueMemberS{Value: "conn#a1"}}})
	if err != nil {
		t.Fatal(err)
	}
	w.arrive("c1", "Cy", "r")
	w.expect("b1", "join name=Cy") // within the grace: Ana stays
	w.now = w.now.Add(w.h.ConnectGrace)
	w.arrive("d1", "Di", "r")
	w.expect("b1", "leave name=Ana", "join name=Di")
}

func TestConnectValidatesQuery(t *testing.T) {
	w := newWorld(t)
	for _, q := range [][2]string{{strings.Repeat("n", 33), ""}, {"Ana", "bad room"}, {"A\x01", ""}} {
		if got := w.connect("x", q[0], q[1]); got != 400 {
			t.Errorf("connect name=%q room=%q: status %d, want 400", q[0], q[1], got)
		}
	}
	if _, err := w.db.Connection(t.Context(), "x"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("a rejected connection was stored (err %v)", err)
	}
	for _, name := range []string{"An\u200Ba", "\u202Eevil", "   "} {
		if got := w.connect("x", name, ""); got != 400 {
			t.Errorf("connect name=%q: status %d, want 400", name, got)
		}
	}
	if got := w.connect("g", "", ""); got != 200 {
		t.Fatalf("connect with no query: %d", got)
	}
	c, err := w.db.Connection(t.Context(), "g")
	if err != nil || !strings.HasPrefix(c.Name, "guest-") || c.Room != chat.DefaultRoom {
		t.Errorf("default connection = %+v, %v; want a guest in %s", c, err, chat.DefaultRoom)
	}
}

func TestChatScenario(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("x1", "Xi", "elsewhere")
	w.connect("b1", "Bo", "r")
	w.expect("a1") // $connect tells no one: the handshake does not wait for the room
	w.send("b1", `{"action":"sync"}`)
	w.expect("b1", "sync")
	join := w.expect("a1", "join name=Bo") // Bo's first frame announces him
	w.send("b1", `{"action":"ping"}`)
	w.expect("b1", "pong")
	w.expect("a1") // once
	w.arrive("a2", "Ana", "r")
	w.expect("b1") // Ana's second tab: no second join
	w.expect("a1")

	w.now = w.now.Add(time.Second)
	sentAt := chat.FormatTime(w.now)
	w.send("a1", `{"action":"new-message","text":"  hi all ","clientId":"c1","frame":1}`)
	ack := w.expect("a1", "ack clientId=c1")
	w.expect("a2", "new-message name=Ana text=hi all")
	msg := w.expect("b1", "new-message name=Ana text=hi all")
	w.expect("x1")
	if len(ack) == 1 && len(msg) == 1 {
		if ack[0]["id"] != msg[0]["id"] || ack[0]["seq"] != 1.0 || msg[0]["seq"] != 1.0 || ack[0]["sentAt"] != sentAt || msg[0]["room"] != "r" {
			t.Errorf("ack %v and message %v disagree", ack[0], msg[0])
		}
	}

	// A retry (from a new connection, as after a reconnect) gets the
	// original ack. The seq it took goes unused: the room hears it
	// skipped. The message is not sent again: the invocation that stored
	// it a moment ago may still be sending it.
	w.now = w.now.Add(time.Second)
	w.send("a2", `{"action":"new-message","text":"hi all","clientId":"c1","frame":1}`)
	retry := w.expect("a2", "ack clientId=c1", "skip")
	if skip := w.expect("b1", "skip"); len(skip) == 1 && skip[0]["seq"] != 2.0 {
		t.Errorf("skip = %v, want seq 2", skip[0])
	}
	if len(retry) == 2 && len(ack) == 1 && (retry[0]["id"] != ack[0]["id"] || retry[0]["seq"] != ack[0]["seq"] || retry[0]["sentAt"] != ack[0]["sentAt"]) {
		t.Errorf("retry ack %v, want the original %v", retry[0], ack[0])
	}
	// Once that invocation has surely ended, a retry sends the message
	// again: it may have failed before its broadcast. Receivers know it by
	// its seq.
	w.now = w.now.Add(w.h.Limits.InvocationTimeout)
	w.send("a2", `{"action":"new-message","text":"hi all","clientId":"c1","frame":2}`)
	w.expect("a2", "ack clientId=c1", "skip")
	again := w.expect("b1", "new-message name=Ana text=hi all", "skip")
	if len(again) == 2 && len(msg) == 1 && again[0]["seq"] != msg[0]["seq"] {
		t.Errorf("the message sent again has seq %v, want %v", again[0]["seq"], msg[0]["seq"])
	}
	w.frames("a1")

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
	if pong := w.expect("b1", "pong"); len(pong) == 1 && pong[0]["seq"] != 3.0 {
		t.Errorf("pong = %v, want the room's latest seq 3", pong[0])
	}
	w.expect("a1")

	w.send("b1", `{"action":"sync"}`)
	sync := w.expect("b1", "sync")
	if len(sync) == 1 {
		s := sync[0]
		bo := chat.GuestUserID(testKey("Bo"))
		got, _ := json.Marshal([]any{s["version"], s["room"], s["you"], s["seq"], memberNames(s), len(s["messages"].([]any)), s["skipped"], s["more"]})
		if want := fmt.Sprintf(`[%d,"r",{"name":"Bo","userId":"%s"},3,"Ana,Bo",1,[2,3],false]`, chat.ProtocolVersion, bo); string(got) != want {
			t.Errorf("sync = %s, want %s", got, want)
		}
		if v := s["presence"].(map[string]any)[bo]; len(join) != 1 || v != join[0]["version"] || join[0]["userId"] != bo {
			t.Errorf("sync's version of Bo = %v, want the join's %v", v, join)
		}
	}

	w.disconnect("a1")
	w.expect("b1") // Ana still has a2
	w.disconnect("a2")
	leave := w.expect("b1", "leave name=Ana")
	w.disconnect("a2") // repeated: nothing
	w.expect("b1")
	w.arrive("a3", "Ana", "r")
	rejoin := w.expect("b1", "join name=Ana")
	if len(leave) == 1 && len(rejoin) == 1 && rejoin[0]["version"].(float64) <= leave[0]["version"].(float64) {
		t.Errorf("join after leave has version %v, leave %v: want higher", rejoin[0]["version"], leave[0]["version"])
	}

	// Someone who leaves before their first frame was never announced; the
	// leave still goes out (a sync may have listed them), the join never.
	w.connect("c1", "Cy", "r")
	w.disconnect("c1")
	w.expect("b1", "leave name=Cy")
}

// Joins and leaves are numbered per room, one after another; sync and
// pong say the latest number, and a client that missed some gets exactly
// those, in order, from presence. A user's own join is covered by the
// number its first sync returns.
func TestPresenceEventsAreNumberedAndFetched(t *testing.T) {
	w := newWorld(t)
	w.connect("a1", "Ana", "r")
	w.send("a1", `{"action":"sync"}`)
	if sync := w.expect("a1", "sync"); len(sync) != 1 || sync[0]["pseq"] != 1.0 {
		t.Fatalf("Ana's first sync = %v, want pseq 1 (her own join)", sync)
	}
	w.arrive("x1", "Xi", "elsewhere")
	w.arrive("b1", "Bo", "r")
	join := w.expect("a1", "join name=Bo")
	w.disconnect("b1")
	leave := w.expect("a1", "leave name=Bo")
	if len(join) != 1 || len(leave) != 1 || join[0]["pseq"] != 2.0 || leave[0]["pseq"] != 3.0 {
		t.Fatalf("join %v, leave %v; want pseq 2 and 3", join, leave)
	}
	w.send("a1", `{"action":"ping"}`)
	if pong := w.expect("a1", "pong"); len(pong) != 1 || pong[0]["pseq"] != 3.0 {
		t.Errorf("pong = %v, want pseq 3", pong)
	}
	w.send("x1", `{"action":"sync"}`)
	if sync := w.expect("x1", "sync"); len(sync) != 1 || sync[0]["pseq"] != 1.0 {
		t.Errorf("another room's sync = %v, want its own pseq 1", sync)
	}

	// Ana lost Bo's join and leave: she asks for what follows 1.
	w.send("a1", `{"action":"presence","after":1}`)
	got := w.expect("a1", "presence")
	if len(got) != 1 {
		t.Fatal("no presence reply")
	}
	events, _ := got[0]["events"].([]any)
	var sums []string
	for _, e := range events {
		e := e.(map[string]any)
		sums = append(sums, fmt.Sprintf("%v %v v%v #%v", e["type"], e["name"], e["version"], e["pseq"]))
	}
	if want := "join Bo v1 #2,leave Bo v2 #3"; strings.Join(sums, ",") != want || got[0]["after"] != 1.0 || got[0]["more"] != false {
		t.Errorf("presence after 1 = %v (after %v, more %v); want %s", sums, got[0]["after"], got[0]["more"], want)
	}
	w.send("a1", `{"action":"presence"}`)
	w.expect("a1", "error code=invalid_message")
}

// Whatever a connection's first frame, its join goes out before anything
// that frame makes the room hear, and once, even when two frames race.
func TestJoinGoesOutWithTheFirstFrame(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	for i, first := range []string{`{"action":"new-message","text":"hi","frame":1}`, `{"action":"typing"}`} {
		id := fmt.Sprintf("b%d", i)
		w.connect(id, "Bo", "r")
		w.send(id, first)
		got, _ := w.frames("a1")
		if len(got) != 2 || got[0] != "join name=Bo" {
			t.Errorf("after %s, a1 received %v; want Bo's join first", first, got)
		}
		w.disconnect(id)
		w.frames("a1")
	}
	for round := range 5 {
		id := fmt.Sprintf("c%d", round)
		w.now = w.now.Add(5 * time.Second) // Cy's read limit refills (it follows the user, not the connection)
		w.connect(id, "Cy", "r")
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { w.send(id, `{"action":"ping"}`) })
		}
		wg.Wait()
		if got, _ := w.frames("a1"); !slices.Equal(got, []string{"join name=Cy"}) {
			t.Errorf("round %d: three racing frames gave a1 %v; want one join", round, got)
		}
		w.disconnect(id)
		w.frames("a1")
	}
}

func TestErrorsReachOnlyTheSender(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.frames("a1")
	cases := []struct{ body, want string }{
		{`{"action":"new-message","text":`, "error code=bad_json"},
		{`not json`, "error code=bad_json"},
		{`{"action":"dance"}`, "error code=unknown_action"},
		{`{"text":"no action"}`, "error code=unknown_action"},
		{`{"action":"new-message","text":"   ","clientId":"c9"}`, "error code=invalid_message clientId=c9"},
		{`{"action":"new-message","text":"` + strings.Repeat("x", 2001) + `","clientId":"c8"}`, "error code=too_long clientId=c8"},
		{`{"action":"new-message","text":"a","clientId":"` + strings.Repeat("<", 40000) + `"}`, "error code=too_long clientId=" + strings.Repeat("<", 64)},
		{"{\"action\":\"new-message\",\"text\":\"bad\xff\"}", "error code=invalid_message"},
		{`{"action":"new-message","text":"nul\u0000","clientId":"c7"}`, "error code=invalid_message clientId=c7"},
		{`{"action":"new-message","text":"a","frame":0}`, "error code=invalid_frame"},
		{`{"action":"new-message","text":"a","frame":1.5}`, "error code=invalid_frame"},
		{`{"action":"new-message","text":"a","frame":"1"}`, "error code=invalid_frame"},
		{`{"action":"sync","after":"nope"}`, "error code=invalid_message"},
		{`{"action":"sync","after":5,"before":6}`, "error code=invalid_message"},
	}
	for _, c := range cases {
		if got := w.send("a1", c.body); got != 200 {
			t.Errorf("%.40s: status %d", c.body, got)
		}
		w.expect("a1", c.want)
	}
	w.expect("b1")
	page, err := w.db.History(t.Context(), "r", -1, 0, 10)
	if err != nil || len(page.Messages) != 0 {
		t.Errorf("rejected frames stored %d messages (%v)", len(page.Messages), err)
	}
}

// Frames one connection numbers are stored in that order whatever order
// their invocations run in, and get increasing seqs.
func TestFramesAreStoredInSendOrder(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.frames("a1")
	const n = 8
	var wg sync.WaitGroup
	for _, i := range []int{8, 3, 5, 1, 7, 2, 6, 4} { // started in this order, concurrently
		wg.Go(func() {
			w.send("a1", fmt.Sprintf(`{"action":"new-message","text":"m%d","clientId":"c%d","frame":%d}`, i, i, i))
		})
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	page, err := w.db.History(t.Context(), "r", 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, m := range page.Messages {
		got = append(got, m.Text)
		if m.Seq != int64(i+1) {
			t.Errorf("%s has seq %d, want %d", m.Text, m.Seq, i+1)
		}
	}
	if want := "m1 m2 m3 m4 m5 m6 m7 m8"; strings.Join(got, " ") != want {
		t.Errorf("stored %q, want %q", strings.Join(got, " "), want)
	}
	if acks, _ := w.frames("a1"); len(acks) != n {
		t.Errorf("a1 got %d frames, want %d acks", len(acks), n)
	}
}

// A rejected numbered frame still takes its place; a repeated number is
// refused unless it repeats its message; a frame whose predecessor never
// comes is out_of_order, keeps its number and goes through once the
// predecessor does: the connection stays open.
func TestFrameErrors(t *testing.T) {
	w := newWorld(t)
	w.h.Limits.FrameWait = 200 * time.Millisecond
	w.arrive("a1", "Ana", "r")
	w.send("a1", `{"action":"new-message","text":"`+strings.Repeat("x", 2001)+`","clientId":"c1","frame":1}`)
	w.expect("a1", "error code=too_long clientId=c1")
	w.send("a1", `{"action":"new-message","text":"`+strings.Repeat("x", 2001)+`","clientId":"c1","frame":1}`) // sent again: refused again
	w.expect("a1", "error code=too_long clientId=c1")
	w.send("a1", `{"action":"new-message","text":"two","clientId":"c2","frame":2}`)
	w.expect("a1", "ack clientId=c2")
	w.send("a1", `{"action":"new-message","text":"two","clientId":"c2","frame":2}`) // a retry of frame 2
	if again := w.expect("a1", "ack clientId=c2"); len(again) != 1 || again[0]["seq"] != 1.0 {
		t.Errorf("frame 2 sent again = %v, want the original ack", again)
	}
	w.send("a1", `{"action":"new-message","text":"two again","clientId":"c2b","frame":2}`)
	if e := w.expect("a1", "error code=invalid_frame clientId=c2b"); len(e) == 1 && e[0]["frame"] != 2.0 {
		t.Errorf("error frame = %v, want frame 2 echoed", e[0])
	}
	start := time.Now()
	w.send("a1", `{"action":"new-message","text":"four","clientId":"c4","frame":4}`)
	w.expect("a1", "error code=out_of_order clientId=c4")
	if waited := time.Since(start); waited < w.h.Limits.FrameWait {
		t.Errorf("frame 4 was refused after %v, before waiting %v for frame 3", waited, w.h.Limits.FrameWait)
	}
	w.send("a1", `{"action":"new-message","text":"three","clientId":"c3","frame":3}`)
	w.send("a1", `{"action":"new-message","text":"four","clientId":"c4","frame":4}`)
	w.expect("a1", "ack clientId=c3", "ack clientId=c4")
	if len(w.fan.closed) != 0 {
		t.Errorf("closed %v after frame errors", w.fan.closed)
	}
	page, _ := w.db.History(t.Context(), "r", -1, 0, 10)
	if got := texts(page.Messages); got != "two three four" || len(page.Skipped) != 0 {
		t.Errorf("stored %q and skipped %v, want \"two three four\" and none", got, page.Skipped)
	}
}

// Copies of one numbered frame (a resend racing its original), served at
// once: each gets the original's ack, the message is stored once, and the
// room gets it once (and a skip for the seq the loser took).
func TestResendRacingItsOriginal(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.frames("a1")
	for i := 1; i <= 5; i++ {
		frame := fmt.Sprintf(`{"action":"new-message","text":"m%d","clientId":"c%d","frame":%d}`, i, i, i)
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { w.send("a1", frame) })
		}
		wg.Wait()
		acks := fmt.Sprintf("ack clientId=c%d", i)
		got, decoded := w.frames("a1")
		for k, f := range got {
			if f != acks && f != "skip" {
				t.Errorf("frame %d: a1 received %q, want only acks (and skips)", i, f)
			}
			if f == acks && decoded[k]["seq"] != decoded[0]["seq"] && got[0] == acks {
				t.Errorf("frame %d: acks for seqs %v and %v", i, decoded[0]["seq"], decoded[k]["seq"])
			}
		}
		if n := strings.Count(strings.Join(got, "\n"), acks); n != 3 {
			t.Errorf("frame %d: %d acks for 3 copies, want 3", i, n)
		}
		b, _ := w.frames("b1")
		if n := strings.Count(strings.Join(b, "\n"), "new-message"); n != 1 {
			t.Errorf("frame %d: b1 received %v, want the message once", i, b)
		}
	}
	page, _ := w.db.History(t.Context(), "r", 0, 0, 100)
	if got := texts(page.Messages); got != "m1 m2 m3 m4 m5" {
		t.Errorf("stored %q, want m1 m2 m3 m4 m5", got)
	}
	if len(w.fan.closed) != 0 {
		t.Errorf("closed %v", w.fan.closed)
	}
}

// clientId de-duplication is per sender: another person's message with
// the same clientId is stored.
func TestClientIDIsPerSender(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.frames("a1")
	w.send("a1", `{"action":"new-message","text":"from Ana","clientId":"same"}`)
	w.send("b1", `{"action":"new-message","text":"from Bo","clientId":"same"}`)
	w.expect("a1", "ack clientId=same", "new-message name=Bo text=from Bo")
	w.expect("b1", "new-message name=Ana text=from Ana", "ack clientId=same")
}

// A frame from a connection the server has no record of is told so and
// closed, so that the client reconnects.
func TestUnknownConnectionIsToldAndClosed(t *testing.T) {
	w := newWorld(t)
	for _, body := range []string{`{"action":"new-message","text":"hi","clientId":"c1","frame":1}`, `{"action":"sync"}`, `{"action":"ping"}`} {
		w.fan.gone = map[string]bool{}
		w.fan.closed = nil
		w.send("ghost", body)
		w.expect("ghost", "error code=not_connected"+map[bool]string{true: " clientId=c1", false: ""}[strings.Contains(body, "c1")])
		if !slices.Equal(w.fan.closed, []string{"ghost"}) {
			t.Errorf("%s: closed %v, want ghost", body, w.fan.closed)
		}
	}
}

// A connection that answers 410 is removed, the others still get the
// message, and when it was its name's last the room hears the leave.
func TestGoneConnectionsArePruned(t *testing.T) {
	w := newWorld(t)
	for _, c := range [][2]string{{"a1", "Ana"}, {"a2", "Ana"}, {"b1", "Bo"}, {"c1", "Cy"}} {
		w.arrive(c[0], c[1], "r")
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
	if _, err := w.db.Connection(t.Context(), "a2"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("gone a2 still stored (err %v)", err)
	}
	if _, err := w.db.Connection(t.Context(), "b1"); err != nil {
		t.Errorf("the sender b1 was removed: %v", err)
	}

	w.fan.gone["a1"] = true
	w.send("b1", `{"action":"new-message","text":"two"}`)
	w.expect("b1", "ack", "leave name=Ana")
	w.expect("c1", "new-message name=Bo text=two", "leave name=Ana")

	w.send("b1", `{"action":"sync"}`)
	if sync := w.expect("b1", "sync"); len(sync) == 1 {
		if got := memberNames(sync[0]); got != "Bo,Cy" {
			t.Errorf("members after pruning = %s", got)
		}
	}
}

// When one broadcast finds several names gone, each of them gets its
// leave, however the prunes interleave.
// Users found gone by one invocation leave in one frame (a presence frame
// holding their numbered leaves), not one broadcast each.
func TestGoneUsersLeaveInOneFrame(t *testing.T) {
	w := newWorld(t)
	for _, c := range [][2]string{{"a1", "Ana"}, {"b1", "Bo"}, {"c1", "Cy"}, {"d1", "Di"}} {
		w.arrive(c[0], c[1], "r")
	}
	w.frames("a1")
	w.frames("b1")
	w.now = w.now.Add(time.Minute)
	w.fan.gone["c1"], w.fan.gone["d1"] = true, true
	w.send("a1", `{"action":"new-message","text":"hi"}`)
	w.expect("a1", "ack", "presence")
	frames := w.expect("b1", "new-message name=Ana text=hi", "presence")
	if len(frames) != 2 {
		return
	}
	if frames[1]["live"] != true {
		t.Errorf("the leaves' frame is not marked live: %v", frames[1])
	}
	var names []string
	var pseqs []float64
	for _, e := range frames[1]["events"].([]any) {
		e := e.(map[string]any)
		if e["type"] != "leave" {
			t.Errorf("event %v in the batch, want leaves", e)
		}
		names = append(names, e["name"].(string))
		pseqs = append(pseqs, e["pseq"].(float64))
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "Cy,Di" || len(pseqs) != 2 || pseqs[1] != pseqs[0]+1 || frames[1]["after"] != pseqs[0]-1 {
		t.Errorf("the leaves' frame: %v; want Cy's and Di's leaves, numbered one after the other, after the one before", frames[1])
	}
}

func TestSyncPages(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.frames("a1")
	for i := range 5 {
		w.now = w.now.Add(time.Second)
		w.send("a1", fmt.Sprintf(`{"action":"new-message","text":"m%d","frame":%d}`, i+1, i+1))
	}
	w.frames("a1")
	w.frames("b1")
	for _, tt := range []struct{ frame, texts string }{
		{`{"action":"sync","after":1,"limit":2}`, "m2 m3 more"},
		{`{"action":"sync","after":3}`, "m4 m5"},
		{`{"action":"sync","after":0,"limit":1}`, "m1 more"},
		{`{"action":"sync","limit":3}`, "m3 m4 m5 more"},
		{`{"action":"sync","before":4,"limit":2}`, "m2 m3 more"},
		{`{"action":"sync","before":3}`, "m1 m2"},
		{`{"action":"sync","after":1,"before":4}`, "m2 m3"},
	} {
		w.now = w.now.Add(w.h.Limits.Reads.Interval()) // within the rate limit
		w.send("b1", tt.frame)
		page := w.expect("b1", "sync")
		if len(page) != 1 {
			continue
		}
		got := syncTexts(page[0])
		if page[0]["more"] == true {
			got += " more"
		}
		if got != tt.texts || page[0]["seq"] != 5.0 {
			t.Errorf("%s = %q (seq %v), want %q (seq 5)", tt.frame, got, page[0]["seq"], tt.texts)
		}
	}
}

func syncTexts(sync map[string]any) string {
	var out []string
	for _, m := range sync["messages"].([]any) {
		out = append(out, m.(map[string]any)["text"].(string))
	}
	return strings.Join(out, " ")
}

func texts(msgs []chat.Message) string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Text)
	}
	return strings.Join(out, " ")
}

// A sync page larger than API Gateway's 128 KB frame limit is cut short.
func TestSyncFitsOneFrame(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	big := strings.Repeat("€", 2000) // 6 KB of UTF-8 per message
	for range 30 {
		w.now = w.now.Add(w.h.Limits.Messages.Interval()) // within the rate limit
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
	if len(raw[0]) > w.h.Limits.MaxFrameBytes || !s.More || len(s.Messages) < 15 || len(s.Messages) == 30 || s.Messages[len(s.Messages)-1].Seq != 30 {
		t.Errorf("sync frame %d bytes with %d messages, more %v; want ≤ %d bytes, the newest ones, cut short, more true",
			len(raw[0]), len(s.Messages), s.More, w.h.Limits.MaxFrameBytes)
	}
}

// Connections that have been silent for a while are checked with API
// Gateway before sync lists them: the gone ones leave, the live ones stay.
func TestSyncChecksSilentConnections(t *testing.T) {
	w := newWorld(t)
	for _, c := range [][2]string{{"a1", "Ana"}, {"b1", "Bo"}, {"g1", "Ghost"}, {"g2", "Ghost"}, {"h1", "Hal"}} {
		w.arrive(c[0], c[1], "r")
	}
	w.now = w.now.Add(w.h.Limits.StaleAfter / 2)
	w.send("b1", `{"action":"ping"}`) // Bo shows he is alive
	w.now = w.now.Add(w.h.Limits.StaleAfter * 3 / 4)
	w.fan.gone["g1"], w.fan.gone["g2"], w.fan.gone["h1"] = true, true, true
	for _, id := range []string{"a1", "b1"} {
		w.frames(id)
	}
	w.send("a1", `{"action":"sync"}`)
	got, frames := w.frames("a1")
	if strings.Join(got, ",") != "presence,sync" || len(frames[0]["events"].([]any)) != 2 {
		t.Errorf("a1 received %v, want the leaves of Ghost and Hal in one frame, then sync", frames)
	}
	if len(frames) == 2 {
		if m := memberNames(frames[1]); m != "Ana,Bo" {
			t.Errorf("members = %s, want Ana and Bo", m)
		}
	}
	slices.Sort(w.fan.probed)
	if want := []string{"g1", "g2", "h1"}; !slices.Equal(w.fan.probed, want) {
		t.Errorf("probed %v, want %v (not the pinging b1, not the syncing a1)", w.fan.probed, want)
	}
	w.fan.probed = nil
	w.send("a1", `{"action":"sync"}`)
	if len(w.fan.probed) != 0 {
		t.Errorf("a second sync probed %v again", w.fan.probed)
	}
}

// A presence set that holds a connection with no record (its records
// expired) is healed by sync, and the name leaves.
func TestSyncHealsPresenceWithoutRecords(t *testing.T) {
	w := newWorld(t)
	w.arrive("g1", "Ghost", "r")
	w.now = w.now.Add(time.Hour)
	w.arrive("g2", "Ghost", "r") // keeps Ghost's presence record alive beyond g1's
	w.disconnect("g2")
	w.now = w.now.Add(w.db.ConnectionTTL - 30*time.Minute) // g1's records have expired
	w.connect("a1", "Ana", "r")
	w.send("a1", `{"action":"sync"}`)
	_, frames := w.frames("a1")
	if len(frames) != 2 || frames[0]["type"] != "leave" || frames[0]["name"] != "Ghost" {
		t.Fatalf("a1 received %v, want Ghost's leave and the sync", frames)
	}
	if m := memberNames(frames[1]); m != "Ana" {
		t.Errorf("members = %s", m)
	}
}

func TestStoreFailureIsAnInternalError(t *testing.T) {
	w := newWorld(t)
	f := &failing{Connections: w.db, Senders: w.db, Messages: w.db, err: errors.New("dynamodb: connection refused to 10.0.0.1")}
	w.h.Conns, w.h.Senders, w.h.Msgs = f, f, f
	w.arrive("a1", "Ana", "r")
	f.broken = true
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
	if len(w.fan.closed) != 0 {
		t.Errorf("a store failure closed %v", w.fan.closed)
	}
}

func TestPanicsBecome500(t *testing.T) {
	w := newWorld(t)
	f := &failing{Connections: w.db, Senders: w.db, Messages: w.db, broken: true}
	w.h.Conns, w.h.Senders, w.h.Msgs = f, f, f
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

// A two-way route's answer is the function's response, not a post, so
// that a refusal costs no Management API call; but it is posted before a
// broadcast that reaches its sender, so that the sender hears it first.
func TestAnswersAreResponses(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.frames("a1")
	posts := func() int {
		w.fan.mu.Lock()
		defer w.fan.mu.Unlock()
		n := w.fan.posts["a1"]
		w.fan.posts["a1"] = 0
		return n
	}
	posts()
	for _, f := range [][2]string{
		{`{"action":"ping"}`, "pong"},
		{`{"action":"new-message","text":"one","clientId":"c1","frame":1}`, "ack clientId=c1"},
		{`{"action":"new-message","text":"one","clientId":"c1","frame":1}`, "ack clientId=c1"}, // a copy
		{`not json`, "error code=bad_json"},
	} {
		w.send("a1", f[0])
		w.expect("a1", f[1])
		if n := posts(); n != 0 {
			t.Errorf("%s: %d posts to the sender, want its answer in the response", f[0], n)
		}
	}
	w.send("a1", `{"action":"edit","target":1,"text":"one!","clientId":"e1","frame":2}`)
	w.expect("a1", "ack clientId=e1", "edit name=Ana")
	if n := posts(); n != 2 {
		t.Errorf("an edit: %d posts to the sender, want 2 (its ack, then the edit every member gets)", n)
	}
	w.send("a1", `{"action":"typing"}`)
	if n := posts(); n != 0 {
		t.Errorf("typing: %d posts to the sender", n)
	}
	w.expect("a1")

	// A broadcast that panics after the ack was kept: the ack still goes.
	w.fan.mu.Lock()
	w.fan.panicOn = "b1"
	w.fan.mu.Unlock()
	w.send("a1", `{"action":"new-message","text":"three","clientId":"c3","frame":3}`)
	w.expect("a1", "ack clientId=c3")
	w.fan.mu.Lock()
	w.fan.panicOn = ""
	w.fan.mu.Unlock()

	// An invocation that has run a third of its time posts the answer
	// before it broadcasts: a slow broadcast could outlast the invocation.
	w.h.Limits.InvocationTimeout = 0
	w.send("a1", `{"action":"new-message","text":"four","clientId":"c4","frame":4}`)
	w.expect("a1", "ack clientId=c4")
	if n := posts(); n != 1 {
		t.Errorf("a late broadcast: %d posts to the sender, want its ack posted first", n)
	}
}

func TestManagementEndpoint(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.send("a1", `{"action":"new-message","text":"one"}`)
	w.h.Endpoint = "http://127.0.0.1:9999/local"
	w.send("a1", `{"action":"new-message","text":"two"}`)
	want := map[string]bool{"https://k3x9q2w7ab.execute-api.eu-west-1.amazonaws.com/prod": true, "http://127.0.0.1:9999/local": true}
	if got, _ := json.Marshal(w.fan.endpoints); string(got) != mustJSON(want) {
		t.Errorf("endpoints = %s, want %s", got, mustJSON(want))
	}
}

func TestBroadcastLogLine(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.arrive("c1", "Cy", "r")
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
	w := newWorld(t)
	w.connect("a1", "Ana", "r")
	w.fan.gone["a1"] = true // Ana's $connect is still running when Bo's join goes out
	w.arrive("b1", "Bo", "r")
	delete(w.fan.gone, "a1")
	if _, err := w.db.Connection(t.Context(), "a1"); err != nil {
		t.Fatalf("a1 was pruned during its $connect: %v", err)
	}
	w.now = w.now.Add(w.h.ConnectGrace + time.Second)
	w.fan.gone["a1"] = true // now it really is gone
	w.send("b1", `{"action":"ping"}`)
	w.send("b1", `{"action":"new-message","text":"x"}`)
	if _, err := w.db.Connection(t.Context(), "a1"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("a1 answered 410 after the grace and was kept (err %v)", err)
	}
}

// A connection that sends faster than its rate gets rate_limited, with
// when to try again, and nothing is stored; a numbered frame keeps its
// number, so that sent again it takes its place in order.
func TestRateLimits(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.frames("a1")
	burst := w.h.Limits.Messages.Burst
	for i := 1; i <= burst+2; i++ {
		w.send("a1", fmt.Sprintf(`{"action":"new-message","text":"m%d","clientId":"c%d","frame":%d}`, i, i, i))
	}
	got, frames := w.frames("a1")
	if len(got) != burst+2 || got[burst] != fmt.Sprintf("error code=rate_limited clientId=c%d", burst+1) {
		t.Fatalf("a1 received %v; want %d acks, then rate_limited for the rest", got, burst)
	}
	if ms := frames[burst]["retryAfterMs"]; ms != float64(w.h.Limits.Messages.Interval().Milliseconds()) || frames[burst]["frame"] != float64(burst+1) {
		t.Errorf("rate_limited frame = %v; want retryAfterMs %d and its frame echoed", frames[burst], w.h.Limits.Messages.Interval().Milliseconds())
	}
	if b, _ := w.frames("b1"); len(b) != burst {
		t.Errorf("b1 received %d messages, want %d", len(b), burst)
	}
	// Sent again with their numbers after the wait, they are stored in order.
	for i := burst + 1; i <= burst+2; i++ {
		w.now = w.now.Add(w.h.Limits.Messages.Interval())
		w.send("a1", fmt.Sprintf(`{"action":"new-message","text":"m%d","clientId":"c%d","frame":%d}`, i, i, i))
	}
	w.expect("a1", fmt.Sprintf("ack clientId=c%d", burst+1), fmt.Sprintf("ack clientId=c%d", burst+2))
	page, _ := w.db.History(t.Context(), "r", 0, 0, 100)
	if msgs := page.Messages; len(msgs) != burst+2 || msgs[burst+1].Text != fmt.Sprintf("m%d", burst+2) {
		t.Errorf("stored %d messages, the last %q", len(msgs), msgs[len(msgs)-1].Text)
	}
	w.frames("b1")

	// Reads (sync, presence and ping) share their own, smaller budget.
	reads := w.h.Limits.Reads.Burst
	for range reads {
		w.send("b1", `{"action":"ping"}`)
	}
	w.send("b1", `{"action":"sync"}`)
	got, _ = w.frames("b1")
	if len(got) != reads+1 || got[reads] != "error code=rate_limited" {
		t.Errorf("b1 received %v; want %d pongs, then rate_limited", got, reads)
	}
	// Rejected numbered frames cost a token too.
	w.now = w.now.Add(time.Minute)
	for i := range burst + 1 {
		w.send("b1", fmt.Sprintf(`{"action":"new-message","text":"","frame":%d}`, i+1))
	}
	if got, _ := w.frames("b1"); got[burst] != "error code=rate_limited" {
		t.Errorf("the %dth empty message got %q, want rate_limited", burst+1, got[burst])
	}
}

// The limits follow the user: a new connection brings no fresh burst.
func TestRateLimitsFollowTheUser(t *testing.T) {
	w := newWorld(t)
	w.arrive("b1", "Bo", "r")
	burst := w.h.Limits.Messages.Burst
	for i := range burst {
		id := fmt.Sprintf("a%d", i)
		w.connect(id, "Ana", "r") // the same guest key each time: one user
		w.send(id, fmt.Sprintf(`{"action":"new-message","text":"m%d","clientId":"c%d","frame":1}`, i, i))
		w.expect(id, fmt.Sprintf("ack clientId=c%d", i))
		w.disconnect(id)
	}
	w.connect("a-next", "Ana", "r")
	w.send("a-next", `{"action":"new-message","text":"one more","clientId":"cx","frame":1}`)
	w.expect("a-next", "error code=rate_limited clientId=cx")
	w.connect("x1", "Xi", "r") // someone else is not affected
	w.send("x1", `{"action":"new-message","text":"hi","clientId":"cy","frame":1}`)
	w.expect("x1", "ack clientId=cy")
}

// A frame waiting for its turn spends no token: only a frame whose turn
// it is does.
func TestWaitingFramesSpendNoToken(t *testing.T) {
	w := newWorld(t)
	w.h.Limits.FrameWait = 50 * time.Millisecond
	w.arrive("a1", "Ana", "r")
	for range 3 {
		w.send("a1", `{"action":"new-message","text":"two","clientId":"c2","frame":2}`)
		w.expect("a1", "error code=out_of_order clientId=c2")
	}
	burst := w.h.Limits.Messages.Burst
	for i := 1; i <= burst; i++ {
		w.send("a1", fmt.Sprintf(`{"action":"new-message","text":"m%d","clientId":"c%d","frame":%d}`, i, i, i))
	}
	got, _ := w.frames("a1")
	if len(got) != burst || slices.ContainsFunc(got, func(f string) bool { return !strings.HasPrefix(f, "ack") }) {
		t.Errorf("a full burst after three frames that waited: %v; want %d acks", got, burst)
	}
}

// countedWorld is a world whose handlers count their requests for the
// sender's record and its buckets, with Ana (a1) in room r.
func countedWorld(t *testing.T) (*world, *counting) {
	w := newWorld(t)
	count := &counting{Senders: w.db, Buckets: w.db}
	w.h.Senders, w.h.Buckets = count, count
	w.arrive("a1", "Ana", "r")
	return w, count
}

// Past the limit, frames are refused from this instance's memory of the
// bucket, without a request to the store (but one: the first numbered
// frame refused records that the frames behind it are held); the frames
// behind a refused one are refused at once on any instance, each told the
// wait its place in the line needs.
func TestRefusedFromMemory(t *testing.T) {
	w, count := countedWorld(t)
	burst := w.h.Limits.Messages.Burst
	for i := 1; i <= burst+1; i++ {
		w.send("a1", fmt.Sprintf(`{"action":"new-message","text":"m%d","clientId":"c%d","frame":%d}`, i, i, i))
	}
	got, _ := w.frames("a1")
	if len(got) != burst+1 || got[burst] != fmt.Sprintf("error code=rate_limited clientId=c%d", burst+1) {
		t.Fatalf("a1 received %v", got)
	}
	before := count.calls.Load()
	const flood = 50
	for i := range flood {
		w.send("a1", fmt.Sprintf(`{"action":"new-message","text":"flood","clientId":"f%d"}`, i))
	}
	if got, _ := w.frames("a1"); len(got) != flood || slices.ContainsFunc(got, func(f string) bool { return !strings.HasPrefix(f, "error code=rate_limited") }) {
		t.Errorf("the flood got %v; want rate_limited for each", got)
	}
	if n := count.calls.Load() - before; n != 0 {
		t.Errorf("%d frames over the limit made %d store requests, want 0", flood, n)
	}

	// The frames behind the refused one are refused at once, told the wait
	// their place in the line needs: from memory here, and from the
	// record of the hold on another instance (no memory).
	interval := w.h.Limits.Messages.Interval()
	for _, memory := range []*TokenMemory{w.h.Tokens, nil} {
		w.h.Tokens = memory
		before := count.calls.Load()
		for k := range 3 {
			frame := burst + 2 + k
			w.send("a1", fmt.Sprintf(`{"action":"new-message","text":"late","clientId":"c%d","frame":%d}`, frame, frame))
			_, refused := w.frames("a1")
			if len(refused) != 1 || refused[0]["code"] != chat.CodeRateLimited || refused[0]["retryAfterMs"] != float64(((time.Duration(k)+2)*interval).Milliseconds()) {
				t.Errorf("frame %d behind the refused frame %d (memory %v): %v; want rate_limited in %v", frame, burst+1, memory != nil, refused, (time.Duration(k)+2)*interval)
			}
		}
		if n := count.calls.Load() - before; memory != nil && n != 0 {
			t.Errorf("refused from memory with %d store requests, want 0", n)
		}
	}
}

// A frame with more frames before it not stored than a full bucket pays
// for (a flood that the stage let through) is refused at once after one
// read, told when the first token it lacks comes back, instead of waiting
// for its turn and reading the store while it waits; a window within
// the burst still waits and is stored.
func TestFloodPastTheBurstIsRefusedAtOnce(t *testing.T) {
	w, count := countedWorld(t)
	burst := w.h.Limits.Messages.Burst
	frame := burst + 10 // 9 more frames before it than the bucket holds
	before := count.calls.Load()
	w.send("a1", fmt.Sprintf(`{"action":"new-message","text":"far","clientId":"f","frame":%d}`, frame))
	_, refused := w.frames("a1")
	want := time.Duration(frame-burst) * w.h.Limits.Messages.Interval()
	if len(refused) != 1 || refused[0]["code"] != chat.CodeRateLimited || refused[0]["retryAfterMs"] != float64(want.Milliseconds()) {
		t.Errorf("frame %d of a fresh connection: %v; want rate_limited in %v", frame, refused, want)
	}
	if n := count.calls.Load() - before; n != 1 {
		t.Errorf("refused after %d store requests, want 1 (the connection's record)", n)
	}
	// The last frame a full bucket pays for is stored once its turn comes.
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.send("a1", fmt.Sprintf(`{"action":"new-message","text":"last","clientId":"c%d","frame":%d}`, burst, burst))
	}()
	for i := 1; i < burst; i++ {
		w.send("a1", fmt.Sprintf(`{"action":"new-message","text":"m%d","clientId":"c%d","frame":%d}`, i, i, i))
	}
	<-done
	if got, _ := w.frames("a1"); len(got) != burst || slices.ContainsFunc(got, func(f string) bool { return !strings.HasPrefix(f, "ack") }) {
		t.Errorf("a burst whose last frame came first: %v; want %d acks", got, burst)
	}
}

// Frames of one connection arriving all at once, more than its bucket
// holds (a flood the stage let through), are refused from memory past the
// burst while the first ones are still taking their tokens, before any of
// them has learnt from the store that the bucket is empty.
func TestFloodAtOnceIsRefusedPastTheBurst(t *testing.T) {
	w := newWorld(t)
	g := &gated{Buckets: w.db, gate: make(chan struct{})}
	w.h.Buckets = g
	w.arrive("a1", "Ana", "r")
	burst := w.h.Limits.Messages.Burst
	const extra = 5
	var wg sync.WaitGroup
	var returned atomic.Int64
	for i := range burst + extra {
		wg.Go(func() {
			w.send("a1", fmt.Sprintf(`{"action":"new-message","text":"flood","clientId":"f%d"}`, i))
			returned.Add(1)
		})
	}
	for deadline := time.Now().Add(10 * time.Second); g.waiting.Load() < int64(burst) || returned.Load() < extra; {
		if time.Now().After(deadline) {
			t.Fatalf("%d frames taking a token, %d answered; want %d and %d", g.waiting.Load(), returned.Load(), burst, extra)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(g.gate)
	wg.Wait()
	got, _ := w.frames("a1")
	acks, limited := 0, 0
	for _, f := range got {
		switch {
		case strings.HasPrefix(f, "ack"):
			acks++
		case strings.HasPrefix(f, "error code=rate_limited"):
			limited++
		}
	}
	if acks != burst || limited != extra || g.takes.Load() != int64(burst) {
		t.Errorf("%d frames at once: %d acks, %d rate_limited, %d tokens asked of the store; want %d, %d, %d", burst+extra, acks, limited, g.takes.Load(), burst, extra, burst)
	}
	if n, leave := w.h.Tokens.enter("a1", w.h.Limits.Messages); n != 1 {
		t.Errorf("%d frames still counted as taking a token after all were answered, want none", n-1)
	} else {
		leave()
	}
}

// A numbered frame refused because the connection's frames that may take
// a token fill its bucket holds nothing after it (the bucket may have tokens for
// them): once those are done, the frame after it waits for it as usual.
func TestRefusedWhileServingHoldsNothing(t *testing.T) {
	w, _ := countedWorld(t)
	rate := w.h.Limits.Messages
	var serving []func()
	for range rate.Burst {
		_, leave := w.h.Tokens.enter("a1", rate)
		serving = append(serving, leave)
	}
	w.send("a1", `{"action":"new-message","text":"one","clientId":"c1","frame":1}`)
	if got, _ := w.frames("a1"); len(got) != 1 || got[0] != "error code=rate_limited clientId=c1" {
		t.Fatalf("frame 1 while %d frames are served: %v; want rate_limited", rate.Burst, got)
	}
	for _, leave := range serving {
		leave()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.send("a1", `{"action":"new-message","text":"two","clientId":"c2","frame":2}`)
	}()
	w.send("a1", `{"action":"new-message","text":"one","clientId":"c1","frame":1}`)
	<-done
	if got, _ := w.frames("a1"); len(got) != 2 || !slices.Contains(got, "ack clientId=c1") || !slices.Contains(got, "ack clientId=c2") {
		t.Errorf("frames 1 and 2 after: %v; want both acked", got)
	}
}

// $connect refuses a browser page from an origin not on the list (403);
// clients that send no Origin are let in unless told otherwise.
func TestOriginAllowlist(t *testing.T) {
	w := newWorld(t)
	w.h.Origins = Origins{Allowed: []string{"https://chat.example.com"}}
	connect := func(id string, headers map[string]string) int {
		ev := loadEvent(t, "connect.json")
		ev.RequestContext.ConnectionID = id
		maps.Copy(ev.Headers, headers)
		resp, _ := w.h.Connect(t.Context(), ev)
		return resp.StatusCode
	}
	for _, c := range []struct {
		headers map[string]string
		want    int
	}{
		{map[string]string{"Origin": "https://chat.example.com"}, 200},
		{map[string]string{"origin": "https://CHAT.example.com"}, 200},
		{map[string]string{"Origin": "https://evil.example"}, 403},
		{map[string]string{"Origin": "null"}, 403},
		{nil, 200},
	} {
		if got := connect(fmt.Sprint("c", c.headers), c.headers); got != c.want {
			t.Errorf("headers %v: status %d, want %d", c.headers, got, c.want)
		}
	}
	w.h.Origins.RefuseMissing = true
	if got := connect("bot", nil); got != 403 {
		t.Errorf("no Origin, refused: status %d, want 403", got)
	}
	if _, err := w.db.Connection(t.Context(), "bot"); !errors.Is(err, chat.ErrNoConnection) {
		t.Error("a refused connection was stored")
	}
}

// Two people with the same name are two users: each has their own join,
// their own presence and their own clientIds; one user's two tabs are one.
func TestSameNameTwoUsers(t *testing.T) {
	w := newWorld(t)
	connect := func(id, key string) {
		ev := loadEvent(t, "connect.json")
		ev.RequestContext.ConnectionID = id
		ev.QueryStringParameters = map[string]string{"name": "Ana", "room": "r", "key": key}
		if resp, _ := w.h.Connect(t.Context(), ev); resp.StatusCode != 200 {
			t.Fatalf("connect %s: %d", id, resp.StatusCode)
		}
		w.send(id, `{"action":"sync"}`)
		w.frames(id)
	}
	w.arrive("b1", "Bo", "r")
	connect("a1", "first-ana-key-0001")
	connect("a2", "second-ana-key-002")
	connect("a3", "first-ana-key-0001") // the first Ana's other tab
	_, joins := w.frames("b1")
	if len(joins) != 2 || joins[0]["userId"] == joins[1]["userId"] || joins[0]["name"] != "Ana" || joins[1]["name"] != "Ana" {
		t.Errorf("b1 got %v; want two joins of two users named Ana", joins)
	}
	w.send("a1", `{"action":"new-message","text":"from the first Ana","clientId":"same"}`)
	w.send("a2", `{"action":"new-message","text":"from the second Ana","clientId":"same"}`)
	_, got := w.frames("b1")
	if len(got) != 2 || got[0]["userId"] == got[1]["userId"] || got[0]["userId"] != joins[0]["userId"] {
		t.Errorf("b1 got %v; want both messages, each with its sender's userId", got)
	}
	w.send("b1", `{"action":"sync"}`)
	if s := w.expect("b1", "sync"); len(s) == 1 && memberNames(s[0]) != "Ana,Ana,Bo" {
		t.Errorf("members = %s, want two Anas and Bo", memberNames(s[0]))
	}
	w.disconnect("a1") // the first Ana still has a3
	w.disconnect("a2")
	if _, leaves := w.frames("b1"); len(leaves) != 1 || leaves[0]["userId"] != joins[1]["userId"] {
		t.Errorf("b1 got %v; want the second Ana's leave only", leaves)
	}
}

// Every line a function logs carries its invocation's request id, through
// the log handler Lambda functions use (lambdacontext.NewLogHandler).
func TestEveryLogLineCarriesTheRequestID(t *testing.T) {
	w := newWorld(t)
	read, write, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = write // lambdacontext.NewLogHandler writes to os.Stdout as it is when called
	w.h.Log = slog.New(lambdacontext.NewLogHandler())
	os.Stdout = stdout
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, read); close(done) }()

	n := 0
	ctx := func() context.Context {
		n++
		return lambdacontext.NewContext(t.Context(), &lambdacontext.LambdaContext{AwsRequestID: fmt.Sprintf("req-%d", n)})
	}
	for _, id := range []string{"a1", "b1", "c1"} {
		ev := loadEvent(t, "connect.json")
		ev.RequestContext.ConnectionID = id
		ev.QueryStringParameters = map[string]string{"name": id, "key": testKey(id)}
		w.h.Connect(ctx(), ev)
	}
	w.now = w.now.Add(time.Minute)
	w.fan.gone["c1"] = true
	for _, body := range []string{`{"action":"new-message","text":"hi","frame":1}`, `{"action":"sync"}`, `{"action":"typing"}`,
		`{"action":"ping"}`, `{"action":"nope"}`, `not json`} {
		ev := loadEvent(t, "message.json")
		ev.RequestContext.ConnectionID, ev.Body = "a1", body
		w.h.Message(ctx(), ev)
	}
	ev := loadEvent(t, "disconnect.json")
	ev.RequestContext.ConnectionID = "b1"
	w.h.Disconnect(ctx(), ev)
	write.Close()
	<-done

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 15 {
		t.Fatalf("only %d log lines:\n%s", len(lines), out.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, "requestId") || !strings.Contains(l, "req-") {
			t.Errorf("a log line without the request id: %s", l)
		}
	}
	for _, want := range []string{"connected", "message stored", "connection removed", "broadcast"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("nothing logged as %q", want)
		}
	}
}

// The handlers count what happens as EMF metrics: connects, messages,
// duplicates, rejected frames by code, disconnects, and each broadcast.
func TestMetrics(t *testing.T) {
	w := newWorld(t)
	var out bytes.Buffer
	w.h.Metrics = metrics.Recorder{Log: slog.New(slog.NewJSONHandler(&out, nil)), Namespace: "test"}
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.send("a1", `{"action":"new-message","text":"hi","clientId":"c1"}`)
	w.send("a1", `{"action":"new-message","text":"hi","clientId":"c1"}`)
	w.send("a1", `{"action":"new-message","text":""}`)
	w.send("a1", `{"action":"dance"}`)
	w.disconnect("b1")
	sums := map[string]float64{}
	for l := range strings.Lines(out.String()) {
		var rec map[string]any
		json.Unmarshal([]byte(l), &rec)
		if rec["_aws"] == nil {
			t.Errorf("a metrics line without _aws: %s", l)
		}
		for _, name := range metrics.Names {
			if v, ok := rec[name].(float64); ok {
				key := name
				if code, ok := rec[metrics.CodeDimension].(string); ok {
					key += "/" + code
				}
				sums[key] += v
			}
		}
	}
	// The duplicate took a seq it did not use: the room hears it skipped;
	// the duplicate itself is not sent again (its original just was).
	want := map[string]float64{"Connects": 2, "MessagesStored": 1, "DuplicateMessages": 1, "Disconnects": 1,
		"ConditionalWritesFailed": 1, "SeqsSkipped": 1,
		"FramesRejected/invalid_message": 1, "FramesRejected/unknown_action": 1, "PostsSent": 5, "BroadcastRecipients": 5}
	for k, v := range want {
		if sums[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, sums[k], v, sums)
		}
	}
}

// Ana opens two tabs before the first sends a frame, and the first
// drops: the second still announces her to the room, once.
func TestJoinOfATabThatDroppedIsNotLost(t *testing.T) {
	w := newWorld(t)
	w.arrive("b1", "Bo", "r")
	w.connect("a1", "Ana", "r")
	w.connect("a2", "Ana", "r")
	w.disconnect("a1")
	w.expect("b1")
	w.send("a2", `{"action":"sync"}`)
	w.frames("a2")
	w.expect("b1", "join name=Ana")
	w.send("a2", `{"action":"ping"}`)
	w.expect("b1")
}

// pong says how many users are online: a second tab is the same user, a
// user whose last connection goes stops counting.
func TestPongCountsUsersOnline(t *testing.T) {
	w := newWorld(t)
	online := func() float64 {
		t.Helper()
		w.send("a1", `{"action":"ping"}`)
		_, frames := w.frames("a1")
		for _, f := range frames {
			if f["type"] == "pong" {
				return f["online"].(float64)
			}
		}
		t.Fatalf("no pong in %v", frames)
		return 0
	}
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.arrive("b2", "Bo", "r")
	w.arrive("c1", "Cy", "elsewhere")
	if n := online(); n != 2 {
		t.Errorf("Ana and Bo (two tabs): online %v, want 2", n)
	}
	w.disconnect("b1")
	if n := online(); n != 2 {
		t.Errorf("Bo closed one tab: online %v, want 2", n)
	}
	w.disconnect("b2")
	if n := online(); n != 1 {
		t.Errorf("Bo gone: online %v, want 1", n)
	}
	// A count left off (a write whose answer was lost, retried) is put
	// right by the next sync, which counts the room.
	if _, err := w.db.CountOnline(t.Context(), "r", 5); err != nil {
		t.Fatal(err)
	}
	w.now = w.now.Add(5 * time.Second) // the read budget refills
	w.send("a1", `{"action":"sync"}`)
	w.frames("a1")
	if n := online(); n != 1 {
		t.Errorf("after a sync of a room whose count was 5 too many: online %v, want 1", n)
	}
}

// In a room above the listed size and up to twice it, a sync reads the
// room to correct its count once every recountEvery, not for every
// arrival: a count 2 too many stays until then, and is right after.
func TestCountNearTheSizeIsCorrectedNowAndThen(t *testing.T) {
	w := newWorld(t)
	w.h.Limits.ListedRoomSize = 3
	for _, name := range []string{"Ana", "Bo", "Cy", "Dan"} {
		w.arrive("c-"+name, name, "r")
	}
	synced := func() float64 {
		t.Helper()
		w.now = w.now.Add(time.Second) // the read budget refills
		w.send("c-Ana", `{"action":"sync"}`)
		_, frames := w.frames("c-Ana")
		for _, f := range frames {
			if f["type"] == "sync" {
				return f["online"].(float64)
			}
		}
		t.Fatalf("no sync reply in %v", frames)
		return 0
	}
	w.now = w.now.Add(recountEvery)
	if _, err := w.db.CountOnline(t.Context(), "r", 2); err != nil {
		t.Fatal(err)
	}
	if n := synced(); n != 4 {
		t.Errorf("the first sync after the count went 2 too many: online %v, want 4 (read)", n)
	}
	if _, err := w.db.CountOnline(t.Context(), "r", 2); err != nil {
		t.Fatal(err)
	}
	if n := synced(); n != 6 {
		t.Errorf("a sync within %v of the last read: online %v, want the count as kept, 6", recountEvery, n)
	}
	w.now = w.now.Add(recountEvery)
	if n := synced(); n != 4 {
		t.Errorf("a sync %v later: online %v, want 4 (read)", recountEvery, n)
	}
}

// members lists the users online a page at a time, and counts as a read.
func TestMembersFrame(t *testing.T) {
	w := newWorld(t)
	w.h.Limits.MembersPage = 2
	for _, name := range []string{"Ana", "Bo", "Cy"} {
		w.arrive("c-"+name, name, "r")
	}
	w.frames("c-Ana")
	var names []string
	cursor := ""
	for range 3 {
		w.send("c-Ana", `{"action":"members","cursor":"`+cursor+`"}`)
		frames := w.expect("c-Ana", "members")
		if len(frames) != 1 {
			break
		}
		for _, m := range frames[0]["members"].([]any) {
			names = append(names, m.(map[string]any)["name"].(string))
		}
		next, _ := frames[0]["next"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	slices.Sort(names)
	if got := strings.Join(names, ","); got != "Ana,Bo,Cy" {
		t.Errorf("members listed: %s, want Ana,Bo,Cy", got)
	}
	w.send("c-Ana", `{"action":"members","cursor":7}`)
	w.expect("c-Ana", "error code=invalid_message")
}

// Above ListedRoomSize users online a room is told its count, not each
// join and leave; a sync lists nobody and says large; back at the size,
// the room hears joins and leaves again, and that it is listed.
func TestLargeRoomIsToldItsCount(t *testing.T) {
	w := newWorld(t)
	w.h.Limits.ListedRoomSize = 2
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.expect("a1", "join name=Bo")
	w.now = w.now.Add(time.Minute)
	w.connect("c1", "Cy", "r")
	w.send("c1", `{"action":"sync"}`)
	sums, cy := w.frames("c1")
	if len(cy) != 2 || sums[0] != "sync" || sums[1] != "online" || cy[0]["large"] != true || cy[0]["online"] != 3.0 || len(cy[0]["members"].([]any)) != 0 || len(cy[0]["presence"].(map[string]any)) != 0 {
		t.Errorf("Cy's frames in a room of 3: %v; want the sync (large, online 3, no members), then the room's count", cy)
	}
	online := w.expect("a1", "online")
	if len(online) == 1 && (online[0]["online"] != 3.0 || online[0]["large"] != true) {
		t.Errorf("the room crossed the size: %v; want online 3, large", online[0])
	}
	w.expect("b1", "online")
	w.arrive("d1", "Dan", "r") // one more: no join, and too small a move to push
	w.expect("a1")
	w.send("d1", `{"action":"typing"}`) // nor who is typing
	w.expect("a1")
	w.send("a1", `{"action":"ping"}`)
	if pong := w.expect("a1", "pong"); len(pong) == 1 && (pong[0]["online"] != 4.0 || pong[0]["large"] != true) {
		t.Errorf("pong: %v; want online 4, large", pong[0])
	}
	w.disconnect("d1")
	w.expect("a1") // 3 online: still large
	w.now = w.now.Add(time.Minute)
	w.disconnect("c1")
	w.expect("a1", "leave name=Cy", "online")
	w.send("b1", `{"action":"sync"}`)
	if _, bo := w.frames("b1"); len(bo) < 1 || bo[len(bo)-1]["large"] != nil || memberNames(bo[len(bo)-1]) != "Ana,Bo" {
		t.Errorf("Bo's sync back at the size: %v; want Ana and Bo listed", bo)
	}
}

// A connection stored in a room above Limits.QuietRoomSize writes no
// join claim on its first frame (its user's join is not told there
// anyway). If the room has emptied to the listed size when it syncs or
// pings, it claims the join then: the room hears it if the room's
// crossing push may have come before the connection was stored (its
// members' re-syncs may have missed it), and not if it came surely after.
func TestArrivalInALargeRoomClaimsNoJoin(t *testing.T) {
	w := newWorld(t)
	w.h.Limits.ListedRoomSize = 3
	w.db.QuietRoomSize = w.h.Limits.QuietRoomSize()
	names := []string{"Ana", "Bo", "Cy", "Dan", "Eve", "Fred", "Gil"} // one more than QuietRoomSize
	for _, name := range names {
		w.arrive("c-"+name, name, "r")
	}
	w.arrive("c-Hal", "Hal", "r") // quiet, and the room will cross well after
	w.now = w.now.Add(time.Minute)
	w.arrive("c-Ivy", "Ivy", "r") // quiet, and the room crosses just after
	state := func(id string) (chat.Connection, chat.Presence) {
		t.Helper()
		c, err := w.db.Connection(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		_, presence, err := w.db.Room(t.Context(), "r", 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range presence {
			if p.UserID == c.UserID {
				return c, p
			}
		}
		t.Fatalf("%s not in the room's presence: %v", id, presence)
		return c, chat.Presence{}
	}
	for _, id := range []string{"c-Hal", "c-Ivy"} {
		if c, p := state(id); !c.QuietJoin || c.JoinCheck || p.Shown {
			t.Errorf("%s after its first sync in a room of %d or more: QuietJoin %v, JoinCheck %v, shown %v; want a quiet connection, no join claimed",
				id, len(names)+1, c.QuietJoin, c.JoinCheck, p.Shown)
		}
	}
	if c, _ := state("c-Gil"); c.QuietJoin || c.JoinCheck {
		t.Errorf("Gil, who came into a room of %d, claimed as before: QuietJoin %v, JoinCheck %v", len(names)-1, c.QuietJoin, c.JoinCheck)
	}
	for _, name := range names[1:] { // Ana, Hal and Ivy stay: listed again
		w.disconnect("c-" + name)
	}
	w.frames("c-Ana")
	w.frames("c-Hal")
	w.now = w.now.Add(time.Minute) // the read budget refills
	w.send("c-Ivy", `{"action":"ping"}`)
	w.frames("c-Ivy")
	w.expect("c-Ana", "join name=Ivy")
	w.expect("c-Hal", "join name=Ivy")
	w.send("c-Hal", `{"action":"sync"}`)
	w.frames("c-Hal")
	w.expect("c-Ana") // the room crossed a minute after Hal came: every member's re-sync listed him
	for _, id := range []string{"c-Hal", "c-Ivy"} {
		if c, p := state(id); c.QuietJoin || !p.Shown {
			t.Errorf("%s after a frame in the listed room: QuietJoin %v, shown %v; want the join claimed", id, c.QuietJoin, p.Shown)
		}
	}
	w.send("c-Ivy", `{"action":"ping"}`)
	w.frames("c-Ivy")
	w.expect("c-Ana")
}

// A user who came back under a new name while the room was large is told
// under it, even by a quiet connection of the old name whose claim comes
// long after the room's crossing push: the members' re-syncs may have
// listed the old name.
func TestQuietJoinUnderANewNameIsTold(t *testing.T) {
	w := newWorld(t)
	w.h.Limits.ListedRoomSize = 2
	w.db.QuietRoomSize = w.h.Limits.QuietRoomSize()
	names := []string{"Ana", "Bo", "Cy", "Dan", "Eve"}
	for _, name := range names {
		w.arrive("c-"+name, name, "r")
	}
	w.arrive("c-Fay", "Fay", "r") // quiet
	if code, _ := w.connectWith("c-Faye", "", "", "", map[string]string{"name": "Faye", "room": "r", "key": testKey("Fay")}); code != 200 {
		t.Fatalf("Fay's second tab, as Faye: status %d", code)
	}
	w.now = w.now.Add(time.Minute)
	for _, name := range names[1:] { // Ana and Fay stay: listed again
		w.disconnect("c-" + name)
	}
	w.frames("c-Ana")
	w.send("c-Fay", `{"action":"sync"}`)
	w.frames("c-Fay")
	w.expect("c-Ana", "join name=Faye")
}

// A room of several shards is fanned out through the queue, a job per
// shard; the fan-out function delivers each shard, prunes the gone there,
// and reports an unreadable shard for SQS to hand over again. A queue
// that refuses the jobs costs time, not messages.
func TestShardedRoomFansOutThroughTheQueue(t *testing.T) {
	w := newWorld(t)
	q := &fakeQueue{}
	w.h.Queue = q
	w.h.Limits.ListedRoomSize = 2
	w.db.ShardSize, w.h.Limits.ShardSize = 2, 2
	const n = 9
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("c", i)
		w.arrive(ids[i], fmt.Sprint("user", i), "r")
	}
	head, err := w.db.PresenceHead(t.Context(), "r")
	shards := head.Shards
	if err != nil || shards < 4 {
		t.Fatalf("Shards = %d (%v) for %d users at 2 per shard, want at least 4", shards, err, n)
	}
	q.take(t) // the count pushes as the room filled
	for _, id := range ids {
		w.frames(id)
	}

	w.send("c0", `{"action":"new-message","text":"to everyone","clientId":"x1"}`)
	w.expect("c0", "ack clientId=x1")
	w.expect("c1") // nothing yet: the queue has it
	ev := q.take(t)
	if len(ev.Records) != shards {
		t.Fatalf("%d jobs for a room of %d shards", len(ev.Records), shards)
	}
	w.fan.gone["c8"] = true
	w.now = w.now.Add(time.Minute) // past the connect grace
	resp, err := w.h.Deliver(t.Context(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Deliver = %+v, %v", resp, err)
	}
	for _, id := range ids[1:8] {
		w.expect(id, "new-message name=user0 text=to everyone")
	}
	w.expect("c0") // the sender is left out
	if _, err := w.db.Connection(t.Context(), "c8"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("c8 answered 410 to the fan-out; its record: %v", err)
	}

	// A job for a shard that cannot be read is reported failed.
	bad := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "bad", Body: `{"room":"r","shard":1,"payload":"e30="}`}}}
	w.h.Conns = &failing{Connections: w.db, Senders: w.db, Messages: w.db, err: errors.New("throttled"), broken: true}
	if resp, _ := w.h.Deliver(t.Context(), bad); len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "bad" {
		t.Errorf("Deliver of an unreadable shard = %+v, want it reported failed", resp)
	}
	w.h.Conns = w.db

	q.refuse = true
	w.send("c1", `{"action":"new-message","text":"queue down","clientId":"x2"}`)
	w.expect("c1", "ack clientId=x2")
	for _, id := range append([]string{"c0"}, ids[2:8]...) {
		w.expect(id, "new-message name=user1 text=queue down")
	}

	// A room below the shard size again (and no $connect since to give
	// shards back) is sent to in process, every shard read.
	q.refuse = false
	w.h.Limits.ShardSize = 100
	w.send("c2", `{"action":"new-message","text":"small again","clientId":"x3"}`)
	if ev := q.take(t); len(ev.Records) != 0 {
		t.Errorf("%d jobs queued for a room below the shard size", len(ev.Records))
	}
	for _, id := range append([]string{"c0", "c1"}, ids[3:8]...) {
		w.expect(id, "new-message name=user2 text=small again")
	}
}

// A gap fetch brings messages only: no members (the client keeps its
// own), and no read or check of the room, however stale its connections.
func TestGapFetchDoesNotReadTheRoom(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.send("b1", `{"action":"new-message","text":"one","clientId":"x1"}`)
	w.send("b1", `{"action":"new-message","text":"two","clientId":"x2"}`)
	w.frames("a1")
	w.now = w.now.Add(2 * w.h.Limits.StaleAfter) // everyone silent long enough to be checked by a sync
	w.send("a1", `{"action":"sync","after":0,"gap":true}`)
	_, frames := w.frames("a1")
	if len(frames) != 1 {
		t.Fatalf("a1 got %v, want one sync reply", frames)
	}
	s := frames[0]
	if s["members"] != nil || s["presence"] != nil || s["pseq"] != 0.0 || len(s["messages"].([]any)) != 2 {
		t.Errorf("gap reply %v; want the two messages, members and presence null, no pseq", s)
	}
	if len(w.fan.probed) != 0 {
		t.Errorf("a gap fetch checked connections %v", w.fan.probed)
	}
	w.send("a1", `{"action":"sync","after":0}`) // a full sync does read and check the room
	if _, frames := w.frames("a1"); len(frames) != 1 || memberNames(frames[0]) != "Ana,Bo" || len(w.fan.probed) != 1 {
		t.Errorf("full sync: %v, probed %v; want Ana and Bo listed, Bo checked", frames, w.fan.probed)
	}
}

// A sync gives a sender the clientId of its own messages (so that one
// whose ack was lost is acknowledged by it), and nobody else's.
func TestSyncNamesOwnClientIDs(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.send("a1", `{"action":"new-message","text":"mine","clientId":"ana-1"}`)
	w.send("b1", `{"action":"new-message","text":"his","clientId":"bo-1"}`)
	w.frames("a1")
	w.send("a1", `{"action":"sync","after":0}`)
	_, frames := w.frames("a1")
	if len(frames) != 1 {
		t.Fatalf("a1 got %v, want one sync", frames)
	}
	got := map[string]any{}
	for _, m := range frames[0]["messages"].([]any) {
		m := m.(map[string]any)
		got[m["text"].(string)] = m["clientId"]
	}
	if got["mine"] != "ana-1" || got["his"] != nil {
		t.Errorf("clientIds in Ana's sync: %v; want hers only", got)
	}
}

// "Design" and "DESIGN" are one room; a rooms frame answers each room's
// latest seq under the name it was asked with.
func TestRoomNamesIgnoreCaseAndRoomsFrame(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "Design")
	w.arrive("b1", "Bo", "DESIGN")
	w.expect("a1", "join name=Bo")
	w.send("b1", `{"action":"new-message","text":"same room","clientId":"c1"}`)
	w.expect("a1", "new-message name=Bo text=same room")
	w.send("a1", `{"action":"rooms","rooms":["design","Other"]}`)
	got := w.expect("a1", "rooms")
	if b, _ := json.Marshal(got[0]["rooms"]); len(got) == 1 && string(b) != `[{"room":"design","seq":1},{"room":"Other","seq":0}]` {
		t.Errorf("rooms reply %s", b)
	}
	w.send("a1", `{"action":"rooms","rooms":[]}`)
	w.expect("a1", "error code=invalid_message")
}

// Edits, deletes and reactions are events in the room's order that every
// member gets with the state they made; a reply quotes what it answers;
// a sync brings the changes with the messages as they are now.
func TestChangesOfMessages(t *testing.T) {
	w := newWorld(t)
	w.arrive("a1", "Ana", "r")
	w.arrive("b1", "Bo", "r")
	w.frames("a1")
	w.send("a1", `{"action":"new-message","text":"helo","clientId":"m1","frame":1}`)
	w.expect("b1", "new-message name=Ana text=helo")
	w.send("b1", `{"action":"new-message","text":"hi!","clientId":"m2","replyTo":1,"mentions":["`+chat.GuestUserID(testKey("Ana"))+`"]}`)
	got := w.expect("a1", "ack clientId=m1", "new-message name=Bo text=hi!")
	if q, _ := json.Marshal(got[1]["replyTo"]); !strings.Contains(string(q), `"seq":1`) || !strings.Contains(string(q), `"text":"helo"`) || got[1]["mentions"] == nil {
		t.Errorf("the reply's quote %s, mentions %v", q, got[1]["mentions"])
	}
	w.send("a1", `{"action":"edit","target":1,"text":"hello","clientId":"e1","frame":2}`)
	got = w.expect("b1", "ack clientId=m2", "edit name=Ana")
	if st := got[1]["state"].(map[string]any); st["text"] != "hello" || st["version"] != 2.0 || st["edited"] == nil {
		t.Errorf("the edit's state %v", st)
	}
	w.expect("a1", "ack clientId=e1", "edit name=Ana") // the author's page gets the state too
	w.send("b1", `{"action":"react","target":1,"emoji":"👍","clientId":"r1"}`)
	got = w.expect("a1", "reaction name=Bo")
	if b, _ := json.Marshal(got[0]["state"].(map[string]any)["reactions"]); string(b) != `[{"count":1,"emoji":"👍","users":[{"name":"Bo","userId":"`+chat.GuestUserID(testKey("Bo"))+`"}]}]` {
		t.Errorf("reactions %s", b)
	}
	w.expect("b1", "ack clientId=r1", "reaction name=Bo")
	w.send("b1", `{"action":"react","target":1,"emoji":"👍","clientId":"r2"}`) // again: nothing changes
	if got := w.expect("b1", "ack clientId=r2"); len(got) == 1 && got[0]["unchanged"] != true {
		t.Errorf("a reaction made twice: %v", got[0])
	}
	w.send("b1", `{"action":"edit","target":1,"text":"mine","clientId":"e2"}`)
	w.expect("b1", "skip", "error code=not_allowed clientId=e2") // its seq, 5, holds nothing
	w.send("a1", `{"action":"delete","target":1,"clientId":"d1","frame":3}`)
	got = w.expect("b1", "delete name=Ana")
	if st := got[0]["state"].(map[string]any); st["deleted"] != true || st["text"] != "" {
		t.Errorf("the delete's state %v", st)
	}
	w.frames("a1")
	// A client that missed it all: the message deleted in place, the reply
	// quoting it as deleted, the changes in order (and held as skipped).
	w.send("b1", `{"action":"sync","after":0}`)
	s := w.expect("b1", "sync")[0]
	msgs, changes := s["messages"].([]any), s["changes"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["deleted"] != true || msgs[1].(map[string]any)["replyTo"].(map[string]any)["deleted"] != true {
		t.Errorf("sync messages %v", msgs)
	}
	var kinds []string
	for _, c := range changes {
		kinds = append(kinds, fmt.Sprint(c.(map[string]any)["type"], c.(map[string]any)["seq"]))
	}
	if fmt.Sprint(kinds) != "[edit3 reaction4 delete6]" || fmt.Sprint(s["skipped"]) != "[3 4 5 6]" {
		t.Errorf("sync changes %v, skipped %v; want edit 3, reaction 4, delete 6; skipped 3-6", kinds, s["skipped"])
	}
}

// connectAs connects a signed-in account (the authorizer's context) to
// room, creating it with create; it returns the status and body.
func (w *world) connectAs(id, sub, name, room string, create bool) (int, string) {
	w.t.Helper()
	q := map[string]string{"room": room}
	if create {
		q["create"] = "1"
	}
	return w.connectWith(id, sub, name, "", q)
}

// arriveAs connects as the account sub, as a page does (arrive), and
// fails the test if it is refused.
func (w *world) arriveAs(id, sub, name, room string, create bool) {
	w.t.Helper()
	if code, body := w.connectAs(id, sub, name, room, create); code != 200 {
		w.t.Fatalf("%s connects to %s as %s: status %d %s", name, room, id, code, body)
	}
	w.send(id, `{"action":"sync"}`)
	w.frames(id)
}

// connectWith connects as the account sub (none: a guest), with the
// verified address email if any, and the query q.
func (w *world) connectWith(id, sub, name, email string, q map[string]string) (int, string) {
	w.t.Helper()
	ev := loadEvent(w.t, "connect.json")
	ev.RequestContext.ConnectionID = id
	if sub != "" {
		ev.RequestContext.Authorizer = map[string]any{AuthUserID: sub, AuthName: name, AuthEmail: email}
	}
	ev.QueryStringParameters = q
	resp, err := w.h.Connect(w.iam.ctx(w.t.Context(), "$connect"), ev)
	if err != nil {
		w.t.Errorf("Connect returned error %v", err)
	}
	return resp.StatusCode, resp.Body
}

// A private room: made by the first account that asks to create it, who
// owns it; only its members connect (an outsider hears the same whether
// it exists or not, a guest is sent to sign in); the owner adds and
// removes members, and a removed member is cut off at once; its head is
// nobody else's business.
func TestPrivateRooms(t *testing.T) {
	w := newWorld(t)
	if code, body := w.connectAs("x0", "", "", "~team", true); code != 403 || !strings.Contains(body, "sign in") {
		t.Errorf("a guest: %d %q, want 403 and sign in", code, body)
	}
	_, none := w.connectAs("x1", "bo", "Bo", "~nothing", false)
	w.arriveAs("a1", "ana", "Ana", "~team", true)
	if code, body := w.connectAs("b1", "bo", "Bo", "~team", false); code != 403 || body != none {
		t.Errorf("Bo, not a member: %d %q; want 403 and what a room that does not exist gets, %q", code, body, none)
	}
	if code, body := w.connectAs("c1", "cy", "Cy", "~team", true); code != 403 || !strings.Contains(body, "exists") {
		t.Errorf("Cy creates ~team again: %d %q, want 403, taken", code, body)
	}
	w.send("a1", `{"action":"invite","userId":"u-bo"}`)
	if got := w.expect("a1", "access"); len(got) == 1 && got[0]["role"] != chat.RoleMember {
		t.Errorf("invite reply %v", got[0])
	}
	w.arriveAs("b1", "bo", "Bo", "~team", false)
	w.send("b1", `{"action":"invite","userId":"u-cy"}`)
	w.expect("b1", "error code=not_allowed")
	w.send("a1", `{"action":"new-message","text":"members only","clientId":"m1"}`)
	w.expect("b1", "new-message name=Ana text=members only")
	// Bo, outside, cannot learn how the room goes through rooms; Ana can.
	w.arriveAs("b2", "bo", "Bo", "lobby", false)
	w.send("a1", `{"action":"remove","userId":"u-bo"}`)
	if got := w.expect("a1", "join name=Bo", "ack clientId=m1", "access name=Bo", "leave name=Bo"); len(got) == 4 && got[2]["role"] != "" {
		t.Errorf("remove reply %v", got[2])
	}
	if !slices.Contains(w.fan.closed, "b1") {
		t.Errorf("Bo's connection was not closed: closed %v", w.fan.closed)
	}
	if got := w.expect("b1", "access name=Bo"); len(got) == 1 && (got[0]["userId"] != "u-bo" || got[0]["role"] != "") {
		t.Errorf("Bo was told %v before his connection closed, want his removal", got[0])
	}
	// A frame of Bo's still on its way: refused (to a closed connection),
	// nothing stored, nothing sent.
	w.send("b1", `{"action":"new-message","text":"still here?","clientId":"m2"}`)
	w.expect("b1")
	w.expect("a1")
	if code, body := w.connectAs("b3", "bo", "Bo", "~team", false); code != 403 || body != none {
		t.Errorf("Bo, removed, again: %d %q", code, body)
	}
	w.send("b2", `{"action":"rooms","rooms":["~team"]}`)
	if got := w.expect("b2", "rooms"); len(got) == 1 && fmt.Sprint(got[0]["rooms"]) != "[map[room:~team seq:0]]" {
		t.Errorf("Bo's rooms: %v, want seq 0", got[0]["rooms"])
	}
	w.send("a1", `{"action":"remove","userId":"u-ana"}`)
	w.expect("a1", "error code=not_allowed") // the owner stays
}

// A signed-in connection ends when its token expires: it hears nothing
// more, and its next frame is told it is not connected and closed (its
// client reconnects with a fresh token).
func TestConnectionEndsWithItsToken(t *testing.T) {
	w := newWorld(t)
	ev := loadEvent(t, "connect.json")
	ev.RequestContext.ConnectionID = "a1"
	ev.RequestContext.Authorizer = map[string]any{AuthUserID: "ana", AuthName: "Ana", AuthExpires: strconv.FormatInt(w.now.Add(time.Minute).Unix(), 10)}
	ev.QueryStringParameters = map[string]string{"room": "r"}
	if resp, err := w.h.Connect(w.iam.ctx(t.Context(), "$connect"), ev); err != nil || resp.StatusCode != 200 {
		t.Fatalf("connect: %v %v", resp, err)
	}
	w.send("a1", `{"action":"sync"}`)
	w.arrive("b1", "Bo", "r")
	w.frames("a1")
	w.send("b1", `{"action":"new-message","text":"before","clientId":"m1"}`)
	w.expect("a1", "new-message name=Bo text=before")
	w.now = w.now.Add(2 * time.Minute)
	w.send("b1", `{"action":"new-message","text":"after","clientId":"m2"}`)
	w.expect("a1") // not sent to a connection whose token has expired
	w.send("a1", `{"action":"new-message","text":"still me?","clientId":"m3"}`)
	w.expect("a1", "error code=not_connected clientId=m3")
	if !slices.Contains(w.fan.closed, "a1") {
		t.Errorf("the connection was not closed: %v", w.fan.closed)
	}
}

// Direct messages: the private room of two accounts, the same whoever
// opens it first, found by both from the other's user id; nobody else
// gets in, and it has no owner to add anyone.
func TestDirectMessages(t *testing.T) {
	w := newWorld(t)
	dm := func(id, sub, other string) int {
		t.Helper()
		ev := loadEvent(t, "connect.json")
		ev.RequestContext.ConnectionID = id
		if sub != "" {
			ev.RequestContext.Authorizer = map[string]any{AuthUserID: sub, AuthName: sub}
		}
		ev.QueryStringParameters = map[string]string{"dm": other}
		resp, err := w.h.Connect(w.iam.ctx(t.Context(), "$connect"), ev)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	if code := dm("a1", "ana", "u-bo"); code != 200 {
		t.Fatalf("Ana opens her messages with Bo: %d", code)
	}
	w.send("a1", `{"action":"sync"}`)
	w.frames("a1")
	w.send("a1", `{"action":"new-message","text":"just us","clientId":"d1"}`)
	if code := dm("b1", "bo", "u-ana"); code != 200 {
		t.Fatalf("Bo opens his messages with Ana: %d", code)
	}
	w.send("b1", `{"action":"sync"}`)
	s := w.expect("b1", "sync")
	if len(s) == 1 && (s[0]["room"] != chat.DMRoom("u-ana", "u-bo") || len(s[0]["messages"].([]any)) != 1) {
		t.Errorf("Bo's sync: room %v, messages %v; want %s with Ana's message", s[0]["room"], s[0]["messages"], chat.DMRoom("u-ana", "u-bo"))
	}
	if code, _ := w.connectAs("c1", "cy", "Cy", chat.DMRoom("u-ana", "u-bo"), false); code != 403 {
		t.Errorf("Cy into Ana and Bo's messages: %d, want 403", code)
	}
	for what, code := range map[string]int{"a guest": dm("g1", "", "u-bo"), "oneself": dm("a2", "ana", "u-ana"), "not a user id": dm("a3", "ana", "bo")} {
		if code != 400 {
			t.Errorf("direct messages with %s: %d, want 400", what, code)
		}
	}
	w.send("a1", `{"action":"invite","userId":"u-cy"}`)
	w.expect("a1", "ack clientId=d1", "join name=bo", "error code=not_allowed")

	// Each finds the other's messages among their rooms, under the
	// other's name, from any room; Cy, asking with its name, gets nothing.
	room := chat.DMRoom("u-ana", "u-bo")
	mine := func(id, sub string) []any {
		t.Helper()
		if code, _ := w.connectAs(id, sub, sub, "lobby", false); code != 200 {
			t.Fatalf("%s connects to lobby", sub)
		}
		w.send(id, `{"action":"rooms","rooms":["`+room+`"]}`)
		got := w.expect(id, "rooms")
		if len(got) != 1 {
			return nil
		}
		heads, _ := got[0]["rooms"].([]any)
		seq := heads[0].(map[string]any)["seq"]
		if want := map[bool]float64{true: 1, false: 0}[sub != "cy"]; seq != want {
			t.Errorf("%s: the seq of the messages = %v, want %v", sub, seq, want)
		}
		m, _ := got[0]["mine"].([]any)
		return m
	}
	for _, c := range []struct{ id, sub, peer string }{{"a9", "ana", "bo"}, {"b9", "bo", "ana"}} {
		got := mine(c.id, c.sub)
		if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(map[string]any{"room": room, "peer": "u-" + c.peer, "peerName": c.peer}) {
			t.Errorf("%s's rooms: %v, want the messages with %s", c.sub, got, c.peer)
		}
	}
	if got := mine("c9", "cy"); len(got) != 0 {
		t.Errorf("Cy's rooms: %v, want none", got)
	}
}

// A member reads the roster: everyone's role and name (once they came),
// and their own role in the sync reply; the room hears every change.
func TestRosterAndRoles(t *testing.T) {
	w := newWorld(t)
	if code, _ := w.connectAs("a1", "ana", "Ana", "~team", true); code != 200 {
		t.Fatal("Ana creates ~team")
	}
	w.send("a1", `{"action":"sync"}`)
	if got := w.expect("a1", "sync"); len(got) == 1 && got[0]["role"] != chat.RoleOwner {
		t.Errorf("Ana's role in her sync reply: %v", got[0]["role"])
	}
	w.send("a1", `{"action":"invite","userId":"u-bo","role":"moderator"}`)
	w.send("a1", `{"action":"invite","userId":"u-cy"}`)
	w.expect("a1", "access", "access")
	if code, _ := w.connectAs("b1", "bo", "Bo", "~team", false); code != 200 {
		t.Fatal("Bo connects")
	}
	w.send("b1", `{"action":"sync"}`)
	if got := w.expect("b1", "sync"); len(got) == 1 && got[0]["role"] != chat.RoleModerator {
		t.Errorf("Bo's role in his sync reply: %v", got[0]["role"])
	}
	w.frames("a1") // Bo's join
	w.send("b1", `{"action":"roster"}`)
	got := w.expect("b1", "roster")
	if len(got) == 1 {
		want := `[map[name:Ana role:owner userId:u-ana] map[name:Bo role:moderator userId:u-bo] map[role:member userId:u-cy]]`
		if fmt.Sprint(got[0]["members"]) != want || got[0]["next"] != nil {
			t.Errorf("roster = %v, next %v; want %s", got[0]["members"], got[0]["next"], want)
		}
	}
	w.send("a1", `{"action":"remove","userId":"u-cy"}`)
	if got := w.expect("b1", "access"); len(got) == 1 && (got[0]["action"] != "remove" || got[0]["userId"] != "u-cy" || got[0]["role"] != "") {
		t.Errorf("Bo heard %v, want Cy removed", got[0])
	}
	w.expect("a1", "access")
	w.send("b1", `{"action":"roster"}`)
	if got := w.expect("b1", "roster"); len(got) == 1 && len(got[0]["members"].([]any)) != 2 {
		t.Errorf("roster after Cy's removal: %v", got[0]["members"])
	}
	if code, _ := w.connectAs("g1", "", "Gus", "lobby", false); code != 200 {
		t.Fatal("Gus connects")
	}
	w.send("g1", `{"action":"roster"}`)
	w.expect("g1", "error code=not_allowed") // a public room has no roster
}

// The owner names moderators; a moderator removes anyone's message (a
// tombstone that says who), a member only their own.
func TestModeratorsRemoveMessages(t *testing.T) {
	w := newWorld(t)
	if code, _ := w.connectAs("a1", "ana", "Ana", "~mod", true); code != 200 {
		t.Fatal("Ana creates ~mod")
	}
	w.send("a1", `{"action":"invite","userId":"u-bo","role":"moderator"}`)
	w.send("a1", `{"action":"invite","userId":"u-cy"}`)
	if got := w.expect("a1", "access", "access"); len(got) == 2 && (got[0]["role"] != chat.RoleModerator || got[1]["role"] != chat.RoleMember) {
		t.Errorf("roles %v %v", got[0]["role"], got[1]["role"])
	}
	w.send("a1", `{"action":"invite","userId":"u-ana","role":"member"}`)
	w.expect("a1", "error code=not_allowed") // the owner stays the owner
	for _, u := range []string{"bo", "cy"} {
		if code, _ := w.connectAs(u[:1]+"1", u, u, "~mod", false); code != 200 {
			t.Fatalf("%s connects", u)
		}
		w.send(u[:1]+"1", `{"action":"sync"}`)
	}
	w.send("c1", `{"action":"new-message","text":"spam","clientId":"s1"}`)
	w.send("b1", `{"action":"new-message","text":"rules","clientId":"r1"}`)
	for _, id := range []string{"a1", "b1", "c1"} {
		w.frames(id)
	}
	// The invites took seqs 1 and 2: the messages are 3 and 4.
	w.send("c1", `{"action":"delete","target":4,"clientId":"x1"}`) // Bo's: not Cy's to delete
	w.expect("c1", "skip", "error code=not_allowed clientId=x1")
	w.frames("a1")
	w.frames("b1")
	w.send("b1", `{"action":"delete","target":3,"clientId":"x2"}`) // Cy's, by a moderator
	for _, id := range []string{"a1", "c1"} {
		got := w.expect(id, "delete name=bo")
		if len(got) != 1 {
			continue
		}
		if st := got[0]["state"].(map[string]any); st["deleted"] != true || st["text"] != "" || st["removedBy"] != "u-bo" {
			t.Errorf("%s sees %v", id, st)
		}
	}
	// The owner reads who did what; a moderator does not.
	w.send("b1", `{"action":"audit"}`)
	w.expect("b1", "ack clientId=x2", "delete name=bo", "error code=not_allowed")
	w.send("a1", `{"action":"audit"}`)
	got := w.expect("a1", "audit")
	var log []string
	for _, e := range got[0]["entries"].([]any) {
		e := e.(map[string]any)
		log = append(log, fmt.Sprintf("%v %v %v %v %v", e["by"], e["action"], e["userId"], e["role"], e["target"]))
	}
	if want := []string{"u-bo delete u-cy <nil> 3", "u-ana invite u-cy member <nil>", "u-ana invite u-bo moderator <nil>"}; !slices.Equal(log, want) {
		t.Errorf("audit log %q, want %q", log, want)
	}

	// After a reconnect, the removal is in its place in the room's order:
	// the invites (1, 2), Cy's message as a tombstone that says who removed
	// it (3), Bo's (4), and the delete itself (6; Cy's refused delete left 5
	// skipped).
	w.arriveAs("c2", "cy", "Cy", "~mod", false)
	w.now = w.now.Add(time.Second)
	w.send("c2", `{"action":"sync","after":0}`)
	got = w.expect("c2", "sync")
	if len(got) != 1 {
		return
	}
	var order []string
	for _, m := range got[0]["messages"].([]any) {
		m := m.(map[string]any)
		order = append(order, fmt.Sprintf("%v message %q removedBy=%v", m["seq"], m["text"], m["removedBy"]))
	}
	for _, c := range got[0]["changes"].([]any) {
		c := c.(map[string]any)
		order = append(order, fmt.Sprintf("%v %v target=%v", c["seq"], c["type"], c["target"]))
	}
	for _, a := range got[0]["access"].([]any) {
		a := a.(map[string]any)
		order = append(order, fmt.Sprintf("%v access %v", a["seq"], a["action"]))
	}
	slices.Sort(order) // by seq (one digit each)
	want := []string{"1 access invite", "2 access invite", `3 message "" removedBy=u-bo`, `4 message "rules" removedBy=<nil>`, "6 delete target=3"}
	if !slices.Equal(order, want) {
		t.Errorf("after a reconnect Cy's sync holds %q, want %q", order, want)
	}
}

// A moderator mutes a member for a time: their writes are refused (muted,
// with when to come back), also on a connection opened after, and nothing
// they write is stored or sent; lifting it lets them write again.
func TestMutedMembers(t *testing.T) {
	w := newWorld(t)
	if code, _ := w.connectAs("a1", "ana", "Ana", "~quiet", true); code != 200 {
		t.Fatal("Ana creates ~quiet")
	}
	w.send("a1", `{"action":"invite","userId":"u-cy"}`)
	w.frames("a1")
	w.arriveAs("c1", "cy", "Cy", "~quiet", false)
	w.frames("a1")
	w.send("c1", `{"action":"mute","userId":"u-ana","minutes":5}`)
	w.expect("c1", "error code=not_allowed") // a member does not mute, and the owner is not muted
	w.send("a1", `{"action":"mute","userId":"u-cy","minutes":10}`)
	if got := w.expect("a1", "access name=Cy"); len(got) == 1 && got[0]["mutedUntil"] != chat.FormatTime(w.now.Add(10*time.Minute)) {
		t.Errorf("mute reply %v", got[0])
	}
	w.send("c1", `{"action":"new-message","text":"loud","clientId":"m1","frame":1}`)
	// The room heard the mute (Cy among it), then Cy's message is refused.
	if got := w.expect("c1", "access name=Cy", "error code=muted clientId=m1"); len(got) == 2 &&
		(got[0]["userId"] != "u-cy" || got[0]["by"] != "u-ana" || got[0]["action"] != "mute" || got[1]["retryAfterMs"] != float64(10*time.Minute/time.Millisecond)) {
		t.Errorf("muted: %v", got)
	}
	w.expect("a1")
	if code, _ := w.connectAs("c2", "cy", "Cy", "~quiet", false); code != 200 { // a new connection is muted too
		t.Fatal("Cy connects again")
	}
	w.send("c2", `{"action":"sync"}`)
	w.frames("c2")
	w.send("c2", `{"action":"react","target":1,"emoji":"👍","clientId":"r1"}`)
	w.expect("c2", "error code=muted clientId=r1")
	w.send("a1", `{"action":"mute","userId":"u-cy","minutes":0}`)
	w.frames("a1")
	w.send("c1", `{"action":"new-message","text":"sorry","clientId":"m2","frame":2}`) // frame 1 took its place
	w.expect("a1", "new-message name=Cy text=sorry")
}

// revokingAccess removes (or mutes) a member the moment $connect reads
// their membership the second time: a removal or a mute that overtakes
// the connection being stored.
type revokingAccess struct {
	Access
	owner, user string
	mute        bool
	reads       int
}

func (a *revokingAccess) Membership(ctx context.Context, room, userID string) (chat.Membership, error) {
	if userID == a.user {
		if a.reads++; a.reads == 2 {
			// The owner's action, from another function: not the connect
			// function's calls.
			other := context.Background()
			var err error
			if a.mute {
				err = a.Access.Mute(other, room, a.owner, a.user, time.Now().Add(time.Hour))
			} else {
				err = a.Access.Revoke(other, room, a.owner, a.user)
			}
			if err != nil {
				return chat.Membership{}, err
			}
		}
	}
	return a.Access.Membership(ctx, room, userID)
}

// The holes a review found, closed: nobody takes over two accounts' direct
// messages by creating its room; a removal or a mute that overtakes a
// $connect is not missed (and the refusal undoes the connection with
// what the connect function may do); nobody adds, removes or mutes
// themselves; a re-invite keeps a mute; a moderator mutes members only,
// and not while muted.
func TestPrivateRoomsHoldUnderRaces(t *testing.T) {
	w := newWorld(t)
	dmRoom := chat.DMRoom("u-ana", "u-bo")
	if code, body := w.connectAs("m1", "mal", "Mal", dmRoom, true); code != 403 || !strings.Contains(body, "direct messages") {
		t.Errorf("Mal creates Ana and Bo's direct messages: %d %q", code, body)
	}
	if code, _ := w.connectAs("a1", "ana", "Ana", "~crew", true); code != 200 {
		t.Fatal("Ana creates ~crew")
	}
	send := func(id, frame string) { // paced: within the reads' rate limit
		t.Helper()
		w.now = w.now.Add(time.Second)
		w.send(id, frame)
	}
	send("a1", `{"action":"sync"}`)
	for _, f := range []string{`{"action":"invite","userId":"u-bo","role":"moderator"}`, `{"action":"invite","userId":"u-cy"}`, `{"action":"invite","userId":"u-dee"}`} {
		send("a1", f)
	}
	w.frames("a1")
	for _, f := range []string{`{"action":"remove","userId":"u-ana"}`, `{"action":"invite","userId":"u-ana"}`, `{"action":"mute","userId":"u-ana","minutes":1}`} {
		send("a1", f)
		w.expect("a1", "error code=not_allowed")
	}
	send("a1", `{"action":"invite","userId":"g-guest1234567890"}`)
	w.expect("a1", "error code=invalid_message")

	// Removed while connecting: refused, and nothing of the connection left.
	db := w.h.Access
	w.h.Access = &revokingAccess{Access: db, owner: "u-ana", user: "u-cy"}
	if code, _ := w.connectAs("c1", "cy", "Cy", "~crew", false); code != 403 {
		t.Errorf("Cy, removed while connecting: %d, want 403", code)
	}
	if _, err := w.db.Connection(t.Context(), "c1"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("Cy's refused connection is still stored: %v", err)
	}
	// Muted while connecting: muted all the same.
	w.h.Access = &revokingAccess{Access: db, owner: "u-ana", user: "u-dee", mute: true}
	if code, _ := w.connectAs("d1", "dee", "Dee", "~crew", false); code != 200 {
		t.Fatal("Dee connects")
	}
	w.h.Access = db
	send("d1", `{"action":"sync"}`)
	w.frames("d1")
	send("d1", `{"action":"new-message","text":"hi","clientId":"m1"}`)
	w.expect("d1", "error code=muted clientId=m1")
	// A re-invite keeps the mute.
	send("a1", `{"action":"invite","userId":"u-dee"}`)
	w.frames("a1")
	if code, _ := w.connectAs("d2", "dee", "Dee", "~crew", false); code != 200 {
		t.Fatal("Dee connects again")
	}
	send("d2", `{"action":"sync"}`)
	w.frames("d2")
	send("d2", `{"action":"new-message","text":"hi","clientId":"m2"}`)
	w.expect("d2", "error code=muted clientId=m2")
	// Bo, a moderator, mutes a member, not the owner's other moderator or the owner.
	if code, _ := w.connectAs("b1", "bo", "Bo", "~crew", false); code != 200 {
		t.Fatal("Bo connects")
	}
	send("b1", `{"action":"sync"}`)
	w.frames("b1")
	send("a1", `{"action":"invite","userId":"u-eve","role":"moderator"}`)
	w.frames("a1")
	send("b1", `{"action":"mute","userId":"u-eve","minutes":5}`)
	w.expect("b1", "access", "error code=not_allowed") // the room heard Eve made a moderator
	send("b1", `{"action":"mute","userId":"u-dee","minutes":0}`)
	w.expect("b1", "access name=Dee")
	send("a1", `{"action":"mute","userId":"u-bo","minutes":5}`) // the owner mutes a moderator…
	if got := w.expect("a1", "access name=Dee", "access name=Bo"); len(got) == 2 && (got[0]["by"] != "u-bo" || got[1]["role"] != "moderator") {
		t.Errorf("Ana heard Bo's mute of Dee, then her own of Bo (a moderator still): %v", got)
	}
	send("b1", `{"action":"mute","userId":"u-dee","minutes":5}`) // …who no longer mutes
	w.expect("b1", "access name=Bo", "error code=not_allowed")
}

// newOwnedRoom starts a world in which Ana (connection a1, synced) has
// made room, with a read burst for an owner's many frames.
func newOwnedRoom(t *testing.T, room string) *world {
	t.Helper()
	w := newWorld(t)
	w.h.Limits.Reads.Burst = 100
	if code, body := w.connectAs("a1", "ana", "Ana", room, true); code != 200 {
		t.Fatalf("Ana creates %s: %d %q", room, code, body)
	}
	w.send("a1", `{"action":"sync"}`)
	w.frames("a1")
	return w
}

// A ban keeps someone out until it is lifted, across reconnects and
// invite links; an invite link lets in whoever holds it, once, but
// nobody removed or banned, and only until it expires; every change is an
// event in the room's order, there after a reconnect too.
func TestBansAndInviteLinks(t *testing.T) {
	w := newOwnedRoom(t, "~club")
	link := func(room string) string {
		w.send("a1", `{"action":"invite-link","minutes":60}`)
		got := w.expect("a1", "invite-link")
		if len(got) != 1 || got[0]["room"] != room || got[0]["expiresAt"] != chat.FormatTime(w.now.Add(time.Hour)) {
			t.Fatalf("invite-link reply %v", got)
		}
		return got[0]["token"].(string)
	}
	token := link("~club")
	connect := func(id, sub, name, token string) (int, string) {
		q := map[string]string{"room": "~club"}
		if token != "" {
			q["invite"] = token
		}
		return w.connectWith(id, sub, name, "", q)
	}

	// Cy comes by the link, and later without it; a forged or altered
	// link, or one for another room, lets nobody in.
	if code, body := connect("c1", "cy", "Cy", token); code != 200 {
		t.Fatalf("Cy with the link: %d %q", code, body)
	}
	if code, body := connect("c2", "cy", "Cy", ""); code != 200 {
		t.Fatalf("Cy again, without the link: %d %q", code, body)
	}
	exp, sig, _ := strings.Cut(token, ".")
	for _, bad := range []string{exp + "0." + sig, exp + ".AAAA", "x", chat.DMPrefix} {
		if code, body := connect("d1", "dee", "Dee", bad); code != 403 || !strings.Contains(body, "not valid") {
			t.Errorf("Dee with %q: %d %q, want 403 not valid", bad, code, body)
		}
	}
	// Only the owner makes links; not in a public room.
	w.send("c1", `{"action":"invite-link","minutes":60}`)
	w.expect("c1", "error code=not_allowed")

	// Bo, added and connected, is banned: cut off, and kept out, also by
	// the link; the room hears it.
	w.send("a1", `{"action":"invite","userId":"u-bo"}`)
	w.frames("a1")
	if code, _ := connect("b1", "bo", "Bo", ""); code != 200 {
		t.Fatal("Bo connects")
	}
	w.send("b1", `{"action":"sync"}`)
	w.frames("b1")
	w.frames("a1")
	w.frames("c1")
	w.send("c1", `{"action":"ban","userId":"u-bo"}`)
	w.expect("c1", "error code=not_allowed") // a member does not ban
	w.send("a1", `{"action":"ban","userId":"u-ana"}`)
	w.expect("a1", "error code=not_allowed") // nor the owner themselves
	w.send("a1", `{"action":"ban","userId":"u-bo"}`)
	got := w.expect("a1", "access name=Bo", "leave name=Bo")
	if len(got) == 2 && (got[0]["role"] != chat.RoleBanned || got[0]["action"] != "ban" || got[0]["byName"] != "Ana" || got[0]["seq"].(float64) == 0) {
		t.Errorf("ban reply %v", got[0])
	}
	if !slices.Contains(w.fan.closed, "b1") {
		t.Errorf("Bo's connection was not closed: closed %v", w.fan.closed)
	}
	for _, tok := range []string{"", token} {
		if code, body := connect("b2", "bo", "Bo", tok); code != 403 || !strings.Contains(body, "banned") {
			t.Errorf("banned Bo (link %q): %d %q, want 403 banned", tok, code, body)
		}
	}
	w.send("a1", `{"action":"roster"}`)
	if got := w.expect("a1", "roster"); len(got) == 1 {
		roles := map[string]any{}
		for _, m := range got[0]["members"].([]any) {
			roles[m.(map[string]any)["userId"].(string)] = m.(map[string]any)["role"]
		}
		if want := map[string]any{"u-ana": "owner", "u-cy": "member", "u-bo": "banned"}; !maps.Equal(roles, want) {
			t.Errorf("roster %v, want %v", roles, want)
		}
	}

	// Lifted, Bo is only removed: the link does not bring him back, the
	// owner's invite does.
	w.send("a1", `{"action":"ban","userId":"u-bo","lift":true}`)
	if got := w.expect("a1", "access name=Bo"); len(got) == 1 && got[0]["role"] != "" {
		t.Errorf("lift reply %v", got[0])
	}
	if code, body := connect("b3", "bo", "Bo", token); code != 403 || !strings.Contains(body, "removed") {
		t.Errorf("Bo, ban lifted, with the link: %d %q, want 403 removed", code, body)
	}
	w.send("a1", `{"action":"remove","userId":"u-cy"}`)
	w.frames("a1")
	if code, body := connect("c3", "cy", "Cy", token); code != 403 || !strings.Contains(body, "removed") {
		t.Errorf("removed Cy with the link: %d %q, want 403 removed", code, body)
	}
	w.send("a1", `{"action":"invite","userId":"u-bo"}`)
	w.frames("a1")
	if code, body := connect("b4", "bo", "Bo", ""); code != 200 {
		t.Errorf("Bo added again: %d %q", code, body)
	}

	// An expired link lets nobody in.
	w.now = w.now.Add(time.Hour)
	if code, body := connect("e1", "eve", "Eve", token); code != 403 || !strings.Contains(body, "expired") {
		t.Errorf("Eve with an expired link: %d %q, want 403 expired", code, body)
	}

	// In the room's order: Bo's sync lists every change with its seq, as
	// held (skipped), and the audit log has them all.
	w.send("b4", `{"action":"sync"}`)
	sync := w.expect("b4", "sync")
	if len(sync) != 1 {
		t.Fatal("no sync reply")
	}
	var order []string
	skipped := map[float64]bool{}
	for _, s := range sync[0]["skipped"].([]any) {
		skipped[s.(float64)] = true
	}
	for _, a := range sync[0]["access"].([]any) {
		a := a.(map[string]any)
		order = append(order, fmt.Sprintf("%v %v %v %v", a["by"], a["action"], a["userId"], a["role"]))
		if !skipped[a["seq"].(float64)] {
			t.Errorf("access seq %v not among skipped %v", a["seq"], sync[0]["skipped"])
		}
	}
	want := []string{"u-cy invite u-cy member", "u-ana invite u-bo member", "u-ana ban u-bo banned", "u-ana ban u-bo ", "u-ana remove u-cy ", "u-ana invite u-bo member"}
	if !slices.Equal(order, want) {
		t.Errorf("access events in order %q, want %q", order, want)
	}
	w.frames("a1")
	w.send("a1", `{"action":"audit"}`)
	if got := w.expect("a1", "audit"); len(got) == 1 && len(got[0]["entries"].([]any)) != len(want)+1 { // and the link
		t.Errorf("audit log %v", got[0]["entries"])
	}
}

// An invitation by e-mail waits for the account that signs in with that
// verified address: it becomes a member (with the role invited) when it
// first connects, once; anyone else, or a banned account, does not.
func TestEmailInvitations(t *testing.T) {
	w := newOwnedRoom(t, "~crew")
	w.send("a1", `{"action":"invite","email":"Bo@Example.com","role":"moderator"}`)
	if got := w.expect("a1", "access"); len(got) == 1 && (got[0]["email"] != "bo@example.com" || got[0]["role"] != "moderator") {
		t.Errorf("invite reply %v", got[0])
	}
	w.send("a1", `{"action":"invite","email":"not an address"}`)
	w.expect("a1", "error code=invalid_message")
	// The owner sees what waits, and withdraws what should not.
	w.send("a1", `{"action":"invite","email":"zed@example.com"}`)
	w.send("a1", `{"action":"roster"}`)
	if got := w.expect("a1", "access", "roster"); len(got) == 2 && fmt.Sprint(got[1]["invitations"]) !=
		fmt.Sprintf("[map[email:bo@example.com expiresAt:%[1]s role:moderator] map[email:zed@example.com expiresAt:%[1]s role:member]]",
			chat.FormatTime(time.Unix(w.now.Add(store.EmailInviteDays*24*time.Hour).Unix(), 0))) {
		t.Errorf("invitations %v", got[1]["invitations"])
	}
	w.send("a1", `{"action":"remove","email":"zed@example.com"}`)
	w.expect("a1", "access")
	if code, _ := w.connectWith("z1", "zed", "Zed", "zed@example.com", map[string]string{"room": "~crew"}); code != 403 {
		t.Errorf("Zed, his invitation withdrawn: %d, want 403", code)
	}
	room := map[string]string{"room": "~crew"}
	if code, _ := w.connectWith("x1", "eve", "Eve", "eve@example.com", room); code != 403 {
		t.Errorf("Eve, another address: %d, want 403", code)
	}
	if code, _ := w.connectWith("x2", "mallory", "Mallory", "", room); code != 403 {
		t.Errorf("no verified address: %d, want 403", code)
	}
	if code, body := w.connectWith("b1", "bo", "Bo", "bo@example.com", room); code != 200 {
		t.Fatalf("Bo, invited by his address: %d %q", code, body)
	}
	w.send("b1", `{"action":"sync"}`)
	sync := w.expect("b1", "sync")
	if len(sync) == 1 && sync[0]["role"] != chat.RoleModerator {
		t.Errorf("Bo's role %v, want moderator", sync[0]["role"])
	}
	if len(sync) == 1 {
		got := sync[0]["access"].([]any)[0].(map[string]any)
		if got["by"] != "u-ana" || got["userId"] != "u-bo" || got["action"] != "invite" {
			t.Errorf("Bo's arrival in the room's order: %v", got)
		}
	}
	w.frames("a1") // Bo's join
	w.send("a1", `{"action":"roster"}`)
	if got := w.expect("a1", "roster"); len(got) == 1 && got[0]["invitations"] != nil {
		t.Errorf("invitations used or withdrawn still listed: %v", got[0]["invitations"])
	}
	// Only the owner invites, a moderator not.
	w.send("b1", `{"action":"invite","email":"cy@example.com"}`)
	w.expect("b1", "error code=not_allowed")
	// Used up: Dee, signing in with the same address later, is not let in;
	// and a banned account is not, even invited again by address.
	if code, _ := w.connectWith("d1", "dee", "Dee", "bo@example.com", room); code != 403 {
		t.Errorf("the invitation used twice: %d, want 403", code)
	}
	// An invitation older than a removal does not undo it; a newer one does.
	w.send("a1", `{"action":"invite","email":"cy@example.com"}`)
	w.send("a1", `{"action":"invite","userId":"u-cy"}`)
	w.send("a1", `{"action":"remove","userId":"u-cy"}`)
	w.frames("a1")
	w.now = w.now.Add(time.Millisecond) // the clock moves between two of the owner's frames
	if code, _ := w.connectWith("c1", "cy", "Cy", "cy@example.com", room); code != 403 {
		t.Errorf("removed Cy with an invitation from before: %d, want 403", code)
	}
	w.send("a1", `{"action":"invite","email":"cy@example.com"}`)
	w.frames("a1")
	if code, body := w.connectWith("c2", "cy", "Cy", "cy@example.com", room); code != 200 {
		t.Errorf("Cy invited again after her removal: %d %q, want 200", code, body)
	}
	w.frames("a1")
	w.send("a1", `{"action":"ban","userId":"u-bo"}`)
	w.frames("a1")
	w.send("a1", `{"action":"invite","email":"bo@example.com"}`)
	w.frames("a1")
	if code, body := w.connectWith("b2", "bo", "Bo", "bo@example.com", room); code != 403 || !strings.Contains(body, "banned") {
		t.Errorf("banned Bo with an invitation: %d %q, want 403 banned", code, body)
	}
}

// A public room nobody has used yet is claimed by the first signed-in
// account that asks to create it; its owner names moderators, who delete
// anyone's message, mute and ban (guests too); anyone else may come, a
// banned user not, across reconnects, until the ban is lifted.
func TestOwnedPublicRooms(t *testing.T) {
	w := newWorld(t)
	w.h.Limits.Reads.Burst = 100
	// A room already used is nobody's to take.
	w.arrive("g0", "Gus", "plaza")
	w.send("g0", `{"action":"new-message","text":"first!","clientId":"f1"}`)
	w.frames("g0")
	if code, _ := w.connectAs("a0", "ana", "Ana", "plaza", true); code != 200 {
		t.Fatal("Ana in plaza")
	}
	w.send("a0", `{"action":"sync"}`)
	if got := w.expect("a0", "sync"); len(got) == 1 && got[0]["role"] != nil {
		t.Errorf("Ana took a room in use: role %v", got[0]["role"])
	}
	// A new one is Ana's.
	if code, _ := w.connectAs("a1", "ana", "Ana", "square", true); code != 200 {
		t.Fatal("Ana creates square")
	}
	w.send("a1", `{"action":"sync"}`)
	if got := w.expect("a1", "sync"); len(got) == 1 && got[0]["role"] != chat.RoleOwner {
		t.Errorf("Ana's role in the room she made: %v", got[0]["role"])
	}
	w.send("a1", `{"action":"invite","email":"bo@example.com"}`)
	w.expect("a1", "error code=not_allowed") // nobody to invite to a public room
	w.send("a1", `{"action":"remove","userId":"u-bo"}`)
	w.expect("a1", "error code=not_allowed")
	w.send("a1", `{"action":"invite","userId":"u-bo","role":"moderator"}`)
	w.expect("a1", "access")
	w.arriveAs("b1", "bo", "Bo", "square", false)
	w.arrive("g1", "Gus", "square")
	gus := chat.GuestUserID(testKey("Gus"))
	for _, id := range []string{"a1", "b1", "g1"} {
		w.frames(id)
	}

	// Bo removes Gus's message; a guest reads no roster and bans nobody.
	w.send("g1", `{"action":"new-message","text":"spam","clientId":"s1"}`)
	w.expect("g1", "ack clientId=s1")
	w.frames("a1")
	w.frames("b1")
	w.send("g1", `{"action":"roster"}`)
	w.expect("g1", "error code=not_allowed")
	w.send("g1", `{"action":"ban","userId":"u-bo"}`)
	w.expect("g1", "error code=not_allowed")
	w.send("b1", `{"action":"delete","target":2,"clientId":"d1"}`) // the invite took seq 1
	if got := w.expect("g1", "delete name=Bo"); len(got) == 1 && got[0]["state"].(map[string]any)["removedBy"] != "u-bo" {
		t.Errorf("Gus sees %v", got[0])
	}
	w.frames("a1")
	w.frames("b1")

	// Bo mutes Gus: refused, also after a reconnect.
	w.send("b1", fmt.Sprintf(`{"action":"mute","userId":%q,"minutes":10}`, gus))
	w.expect("b1", "access")
	w.frames("a1")
	w.expect("g1", "access")
	w.send("g1", `{"action":"new-message","text":"loud","clientId":"s2"}`)
	w.expect("g1", "error code=muted clientId=s2")
	if code := w.connect("g2", "Gus", "square"); code != 200 {
		t.Fatal("Gus reconnects")
	}
	w.send("g2", `{"action":"sync"}`)
	w.frames("g2")
	w.send("g2", `{"action":"new-message","text":"louder","clientId":"s3"}`)
	w.expect("g2", "error code=muted clientId=s3")
	for _, id := range []string{"a1", "b1", "g1"} {
		w.frames(id)
	}

	// Ana bans Gus: his connections close, and he stays out; lifted, he comes back.
	w.send("a1", fmt.Sprintf(`{"action":"ban","userId":%q}`, gus))
	if got := w.expect("a1", "access", "leave name=Gus"); len(got) == 2 && got[0]["role"] != chat.RoleBanned {
		t.Errorf("ban reply %v", got[0])
	}
	if !slices.Contains(w.fan.closed, "g1") || !slices.Contains(w.fan.closed, "g2") {
		t.Errorf("Gus's connections were not closed: %v", w.fan.closed)
	}
	for _, id := range []string{"g3", "g4"} {
		if code := w.connect(id, "Gus", "square"); code != 403 {
			t.Errorf("banned Gus connects: %d, want 403", code)
		}
	}
	w.send("a1", `{"action":"roster"}`)
	if got := w.expect("a1", "roster"); len(got) == 1 {
		roles := map[string]any{}
		for _, m := range got[0]["members"].([]any) {
			roles[m.(map[string]any)["userId"].(string)] = m.(map[string]any)["role"]
		}
		if want := map[string]any{"u-ana": "owner", "u-bo": "moderator", gus: "banned"}; !maps.Equal(roles, want) {
			t.Errorf("roster %v, want %v", roles, want)
		}
	}
	// The owner's ban is the owner's to lift: Bo, a moderator, cannot.
	w.frames("b1")
	w.send("b1", fmt.Sprintf(`{"action":"ban","userId":%q,"lift":true}`, gus))
	w.expect("b1", "error code=not_allowed")
	w.send("a1", fmt.Sprintf(`{"action":"ban","userId":%q,"lift":true}`, gus))
	w.expect("a1", "access")
	w.frames("b1")
	if code := w.connect("g5", "Gus", "square"); code != 200 {
		t.Errorf("Gus, ban lifted: %d, want 200", code)
	}
	w.send("g5", `{"action":"sync"}`)
	w.frames("g5")
	w.frames("b1")
	// Nobody in particular again: Bo may mute him, and ban and lift his own ban.
	w.send("b1", fmt.Sprintf(`{"action":"mute","userId":%q,"minutes":5}`, gus))
	w.expect("b1", "access")
	w.send("b1", fmt.Sprintf(`{"action":"ban","userId":%q}`, gus))
	w.frames("b1")
	w.send("b1", fmt.Sprintf(`{"action":"ban","userId":%q,"lift":true}`, gus))
	w.expect("b1", "access")
	w.frames("a1")
	w.send("a1", `{"action":"audit"}`)
	if got := w.expect("a1", "audit"); len(got) == 1 && len(got[0]["entries"].([]any)) != 8 { // moderator, delete, mute, ban, lift, mute, ban, lift
		t.Errorf("audit %v", got[0]["entries"])
	}
}

// Nothing of a private room reaches someone outside it, whatever they
// send from a room of their own: every frame acts on the sender's own
// connection's room, and names of the private room or its seqs in a frame
// change nothing.
func TestPrivateRoomUnreadableFromOutside(t *testing.T) {
	w := newOwnedRoom(t, "~vault")
	w.send("a1", `{"action":"new-message","text":"the secret","clientId":"s1"}`)
	w.frames("a1")
	if code, _ := w.connectAs("e1", "eve", "Eve", "lobby", false); code != 200 {
		t.Fatal("Eve in lobby")
	}
	for _, f := range []string{
		`{"action":"sync","room":"~vault"}`,
		`{"action":"sync","after":0,"room":"~vault"}`,
		`{"action":"presence","after":0,"room":"~vault"}`,
		`{"action":"members","room":"~vault"}`,
		`{"action":"roster","room":"~vault"}`,
		`{"action":"audit","room":"~vault"}`,
		`{"action":"rooms","rooms":["~vault"]}`,
		`{"action":"new-message","text":"quote it","replyTo":1,"clientId":"e1","room":"~vault"}`,
		`{"action":"edit","target":1,"text":"mine now","clientId":"e2","room":"~vault"}`,
		`{"action":"react","target":1,"emoji":"👍","clientId":"e3","room":"~vault"}`,
		`{"action":"delete","target":1,"clientId":"e4","room":"~vault"}`,
		`{"action":"ban","userId":"u-ana","room":"~vault"}`,
		`{"action":"invite","userId":"u-eve","room":"~vault"}`,
		`{"action":"invite-link","minutes":60,"room":"~vault"}`,
	} {
		w.send("e1", f)
		_, got := w.frames("e1")
		if len(got) == 0 {
			t.Errorf("%s: no answer", f)
		}
		for _, g := range got {
			b, _ := json.Marshal(g)
			if s := string(b); strings.Contains(s, "secret") || strings.Contains(s, "u-ana") {
				t.Errorf("%s: Eve got %s", f, s)
			}
			if g["type"] == chat.TypeRooms && g["rooms"].([]any)[0].(map[string]any)["seq"] != float64(0) {
				t.Errorf("%s: Eve learns how busy the room is: %v", f, g)
			}
		}
		if got, _ := w.frames("a1"); len(got) > 0 {
			t.Errorf("%s: the private room heard %v", f, got)
		}
	}
	w.send("a1", `{"action":"sync","after":0}`)
	if got := w.expect("a1", "sync"); len(got) == 1 {
		if msgs := got[0]["messages"].([]any); len(msgs) != 1 || msgs[0].(map[string]any)["text"] != "the secret" {
			t.Errorf("the private room's history changed: %v", msgs)
		}
	}
}

// With a queue, a room's joins and leaves in a burst go out together: the
// first at once, the rest held back a window and told in one live presence
// frame by the fan-out function, from the last one told. A quiet room
// hears at once again; a number taken and not yet kept is told by the
// next flush; a queue that refuses the flush leaves it to its caller.
func TestPresenceInABurstGoesOutTogether(t *testing.T) {
	w := newWorld(t)
	q := &fakeQueue{}
	w.h.Queue = q
	// A small room hears every join at once, however fast they come.
	var joins []string
	for i := range burstRoomSize - 1 {
		w.arrive(fmt.Sprint("s", i), fmt.Sprint("small", i), "r")
		if i > 0 {
			joins = append(joins, fmt.Sprint("join name=small", i))
		}
	}
	w.expect("s0", joins...)
	if jobs := q.take(t); len(jobs.Records) != 0 {
		t.Fatalf("%d jobs queued in a small room", len(jobs.Records))
	}
	for i := range burstRoomSize - 1 {
		w.frames(fmt.Sprint("s", i))
	}

	w.arrive("c0", "user0", "r") // the room's size
	w.expect("s0", "join name=user0")
	w.now = w.now.Add(presenceWindow)
	w.arrive("c1", "user1", "r") // at once: the room was not told for a window
	w.expect("c0", "join name=user1")
	if jobs := q.take(t); len(jobs.Records) != 0 {
		t.Fatalf("%d jobs queued for a join told at once", len(jobs.Records))
	}

	// flush delivers the jobs queued, a window later, and returns the
	// events c0 was told.
	flush := func() string {
		t.Helper()
		w.now = w.now.Add(presenceWindow)
		if resp, err := w.h.Deliver(t.Context(), q.take(t)); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("Deliver = %+v, %v", resp, err)
		}
		var told []string
		sums, frames := w.frames("c0")
		for i, f := range frames {
			if sums[i] != "presence" || f["live"] != true {
				t.Errorf("the flush sent %v, want live presence frames only", f)
			}
			for _, e := range f["events"].([]any) {
				e := e.(map[string]any)
				told = append(told, fmt.Sprint(e["type"], " ", e["name"]))
			}
		}
		return strings.Join(told, ",")
	}
	w.now = w.now.Add(100 * time.Millisecond)
	w.arrive("c2", "user2", "r")
	w.arrive("c3", "user3", "r")
	w.disconnect("c1")
	w.expect("c0") // held back
	w.expect("c2")
	q.mu.Lock()
	jobs := q.jobs
	q.mu.Unlock()
	if len(jobs) != 1 || jobs[0].Kind != fanout.KindPresence || jobs[0].Room != "r" || jobs[0].Delay != presenceWindow {
		t.Fatalf("jobs queued for the held events: %+v, want one presence flush of room r a window later", jobs)
	}
	// Its job waits in the queue 300 ms past the window: the flush says so.
	totals := &metrics.Totals{}
	w.h.Metrics.Totals = totals
	w.now = w.now.Add(300 * time.Millisecond)
	if told, want := flush(), "join user2,join user3,leave user1"; told != want {
		t.Errorf("the flush told %q, want %q", told, want)
	}
	if lag := totals.Sums()[metrics.PresenceFlushLag]; lag != 300 {
		t.Errorf("PresenceFlushLag = %v ms, want 300", lag)
	}
	w.h.Metrics.Totals = nil
	w.expect("c2", "presence")
	w.expect("c3", "presence")

	// A number taken and not yet kept when the flush reads the log: the
	// next flush tells it.
	hide := &hiding{Connections: w.db}
	w.h.Conns = hide
	w.arrive("c4", "user4", "r")
	hide.pseq = burstRoomSize + 5 // c4's join
	if told := flush(); told != "" {
		t.Errorf("the flush told %q past a number not kept, want nothing", told)
	}
	hide.pseq = 0
	w.now = w.now.Add(100 * time.Millisecond)
	w.arrive("c5", "user5", "r")
	if told, want := flush(), "join user4,join user5"; told != want {
		t.Errorf("the next flush told %q, want %q", told, want)
	}
	for _, id := range []string{"c2", "c3"} {
		w.frames(id)
	}
	// A job whose flush another took the place of does nothing.
	stale := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "old", Body: `{"kind":"presence","room":"r","due":1}`}}}
	if resp, err := w.h.Deliver(t.Context(), stale); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Deliver of a stale flush = %+v, %v", resp, err)
	}
	w.expect("c0")

	// Quiet for a window: told at once again.
	w.now = w.now.Add(2 * presenceWindow)
	w.arrive("c6", "user6", "r")
	for _, id := range []string{"c0", "c2", "c3"} {
		w.expect(id, "join name=user6")
	}
	// A queue that refuses the flush: the caller runs it when due.
	q.refuse = true
	w.arrive("c7", "user7", "r")
	if told, want := flush(), "join user7"; told != want {
		t.Errorf("the flush run by its caller told %q, want %q", told, want)
	}
}

// hiding is the presence log without event pseq (0: none): numbered and
// not kept yet.
type hiding struct {
	Connections
	pseq int64
}

func (h *hiding) PresenceSince(ctx context.Context, room string, after int64, limit int) ([]chat.PresenceEvent, bool, error) {
	events, more, err := h.Connections.PresenceSince(ctx, room, after, limit)
	return slices.DeleteFunc(events, func(e chat.PresenceEvent) bool { return e.PSeq == h.pseq }), more, err
}

// A sync tells the deployment's edit window, so that a page offers Edit
// only while the server accepts one; a gap fetch's reply does not repeat it.
func TestSyncTellsTheEditWindow(t *testing.T) {
	w := newWorld(t)
	w.h.Limits.EditWindow = 2 * time.Hour
	w.arrive("a1", "Ana", "r")
	w.frames("a1")
	for _, tt := range []struct {
		frame string
		want  any
	}{
		{`{"action":"sync"}`, float64(2 * time.Hour / time.Millisecond)},
		{`{"action":"sync","after":0,"gap":true}`, nil},
	} {
		w.now = w.now.Add(w.h.Limits.Reads.Interval())
		w.send("a1", tt.frame)
		page := w.expect("a1", "sync")
		if len(page) != 1 || page[0]["editWindowMs"] != tt.want {
			t.Errorf("%s: editWindowMs = %v, want %v", tt.frame, page, tt.want)
		}
	}
}

// moderatingAccess has a public room's owner ban or mute a user the
// moment after $connect has read that user's place in the room: the ban
// or mute lands while the user is connecting, too late for that read.
type moderatingAccess struct {
	Access
	w           *world
	owner, user string // the owner's connection, the user's id
	frame       string
	done        bool
}

func (a *moderatingAccess) Membership(ctx context.Context, room, userID string) (chat.Membership, error) {
	m, err := a.Access.Membership(ctx, room, userID)
	if userID == a.user && !a.done {
		a.done = true
		a.w.now = a.w.now.Add(time.Second)
		a.w.send(a.owner, a.frame) // another function's invocation
	}
	return m, err
}

// A ban or a mute in a public room that lands while its user connects is
// not missed: the connection is stored before the user's place is read,
// and the ban or mute reads the user's connections after writing.
func TestPublicRoomModerationRacingAConnect(t *testing.T) {
	w := newWorld(t)
	if code, _ := w.connectAs("a1", "ana", "Ana", "square", true); code != 200 {
		t.Fatal("Ana creates square")
	}
	w.send("a1", `{"action":"sync"}`)
	w.frames("a1")
	db := w.h.Access

	w.h.Access = &moderatingAccess{Access: db, w: w, owner: "a1", user: "u-bo", frame: `{"action":"ban","userId":"u-bo"}`}
	if code, _ := w.connectAs("b1", "bo", "Bo", "square", false); code != 200 {
		t.Fatalf("Bo's connect, whose read came before the ban: %d", code)
	}
	w.h.Access = db
	if !slices.Contains(w.fan.closed, "b1") {
		t.Errorf("Bo, banned while connecting, kept his connection (closed: %v)", w.fan.closed)
	}
	if code, _ := w.connectAs("b2", "bo", "Bo", "square", false); code != 403 {
		t.Errorf("Bo after the ban: %d, want 403", code)
	}

	w.h.Access = &moderatingAccess{Access: db, w: w, owner: "a1", user: "u-cy", frame: `{"action":"mute","userId":"u-cy","minutes":5}`}
	if code, _ := w.connectAs("c1", "cy", "Cy", "square", false); code != 200 {
		t.Fatal("Cy connects")
	}
	w.h.Access = db
	w.now = w.now.Add(time.Second)
	w.send("c1", `{"action":"sync"}`)
	w.frames("c1")
	w.send("c1", `{"action":"new-message","text":"hi","clientId":"m1"}`)
	w.expect("c1", "error code=muted clientId=m1")

	// A mute made longer while Cy connects again: the connection keeps the
	// longer one, not the one $connect read.
	w.h.Access = &moderatingAccess{Access: db, w: w, owner: "a1", user: "u-cy", frame: `{"action":"mute","userId":"u-cy","minutes":60}`}
	if code, _ := w.connectAs("c2", "cy", "Cy", "square", false); code != 200 {
		t.Fatal("Cy connects again")
	}
	w.h.Access = db
	w.frames("a1")
	w.now = w.now.Add(10 * time.Minute) // past the first mute, within the second
	w.send("c2", `{"action":"sync"}`)
	w.frames("c2")
	w.send("c2", `{"action":"new-message","text":"hi again","clientId":"m2"}`)
	w.expect("c2", "error code=muted clientId=m2")

	// Named moderator while connecting, muted all along: the connection
	// has both, the role the owner's change wrote and the mute $connect read.
	w.h.Access = &moderatingAccess{Access: db, w: w, owner: "a1", user: "u-cy", frame: `{"action":"invite","userId":"u-cy","role":"moderator"}`}
	if code, _ := w.connectAs("c3", "cy", "Cy", "square", false); code != 200 {
		t.Fatal("Cy connects a third time")
	}
	w.h.Access = db
	w.frames("a1")
	w.frames("c2")
	if c, err := w.db.Connection(t.Context(), "c3"); err != nil || c.Role != chat.RoleModerator || !c.MutedUntil.After(w.now) {
		t.Errorf("Cy's connection made while named moderator: role %q, muted until %v (%v); want moderator, still muted", c.Role, c.MutedUntil, err)
	}

	// Named moderator while connected: the role reaches the open connection,
	// whose delete of another's message is a moderator's.
	if code, _ := w.connectAs("d1", "dee", "Dee", "square", false); code != 200 {
		t.Fatal("Dee connects")
	}
	w.arrive("g1", "Gus", "square")
	for _, id := range []string{"a1", "c1", "d1", "g1"} {
		w.now = w.now.Add(time.Second)
		w.send(id, `{"action":"sync"}`)
		w.frames(id)
	}
	w.send("g1", `{"action":"new-message","text":"spam","clientId":"s1"}`)
	ack := w.expect("g1", "ack clientId=s1")
	w.now = w.now.Add(time.Second)
	w.send("a1", `{"action":"invite","userId":"u-dee","role":"moderator"}`)
	for _, id := range []string{"a1", "d1", "g1"} {
		w.frames(id)
	}
	if len(ack) == 1 {
		w.send("d1", fmt.Sprintf(`{"action":"delete","target":%v,"clientId":"x1"}`, ack[0]["seq"]))
		if got := w.expect("g1", "delete name=Dee"); len(got) == 1 && got[0]["state"].(map[string]any)["removedBy"] != "u-dee" {
			t.Errorf("Gus sees %v", got[0]["state"])
		}
	}
}

// failingAudit is an Access whose audit log cannot be written.
type failingAudit struct{ Access }

func (failingAudit) Audit(context.Context, string, chat.AuditEntry) error {
	return errors.New("the audit log is unavailable")
}

// An invite link that cannot be recorded in the audit log is not given:
// the owner is answered internal (their page asks again), not a link
// nobody can trace.
func TestInviteLinkNotGivenUnrecorded(t *testing.T) {
	w := newOwnedRoom(t, "~club")
	db := w.h.Access
	w.h.Access = failingAudit{db}
	w.send("a1", `{"action":"invite-link","minutes":60}`)
	w.expect("a1", "error code=internal")
	w.h.Access = db
	w.send("a1", `{"action":"invite-link","minutes":60}`)
	w.expect("a1", "invite-link")
}
