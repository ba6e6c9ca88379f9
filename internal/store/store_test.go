package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/dynamolocal"
	"github.com/chatgo/serverless-chat/internal/store"
)

var endpoint string // of the DynamoDB Local TestMain started

func TestMain(m *testing.M) {
	os.Exit(dynamolocal.Main(m, &endpoint))
}

type fixture struct {
	db     *store.DB
	client *dynamodb.Client
	tables store.Tables
	now    time.Time
}

func newDB(t *testing.T) *fixture {
	t.Helper()
	if endpoint == "" {
		t.Skip("integration test: needs DynamoDB Local (skipped with -short)")
	}
	client, names := dynamolocal.NewTables(t, endpoint)
	// The clock starts at the real time: DynamoDB Local deletes items whose
	// TTL has passed by its own clock, so a fixed date would expire them.
	f := &fixture{client: client, now: time.Now().UTC().Truncate(time.Second),
		tables: store.Tables{Connections: names["ConnectionsTable"], Messages: names["MessagesTable"]}}
	f.db = store.New(client, f.tables)
	f.db.Now = func() time.Time { return f.now }
	return f
}

func (f *fixture) connect(t *testing.T, id, room, name string) bool {
	t.Helper()
	first, err := f.db.PutConnection(t.Context(), chat.Connection{ID: id, Room: room, Name: name, ConnectedAt: f.now})
	if err != nil {
		t.Fatal(err)
	}
	return first
}

func (f *fixture) remove(t *testing.T, id string) (chat.Connection, bool) {
	t.Helper()
	c, last, err := f.db.RemoveConnection(t.Context(), id)
	if err != nil {
		t.Fatalf("remove %s: %v", id, err)
	}
	return c, last
}

func (f *fixture) ids(t *testing.T, room string) string {
	t.Helper()
	conns, err := f.db.RoomConnections(t.Context(), room)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range conns {
		ids = append(ids, c.ID+"="+c.Name)
	}
	return strings.Join(ids, ",")
}

func TestConnectionsPresencePerName(t *testing.T) {
	f := newDB(t)
	if !f.connect(t, "a1", "r", "Ana") {
		t.Error("Ana's first connection: first = false, want true")
	}
	if f.connect(t, "a2", "r", "Ana") {
		t.Error("Ana's second tab: first = true, want false")
	}
	if !f.connect(t, "b1", "r", "Bo") {
		t.Error("Bo: first = false, want true")
	}
	if !f.connect(t, "a3", "other", "Ana") {
		t.Error("Ana in another room: first = false, want true")
	}
	if f.connect(t, "a1", "r", "Ana") {
		t.Error("repeated $connect of a1: first = true, want false")
	}
	if got, want := f.ids(t, "r"), "a1=Ana,a2=Ana,b1=Bo"; got != want {
		t.Errorf("room r = %s, want %s", got, want)
	}
	if got, want := f.ids(t, "other"), "a3=Ana"; got != want {
		t.Errorf("room other = %s, want %s", got, want)
	}

	c, last := f.remove(t, "a1")
	if last || c.Room != "r" || c.Name != "Ana" {
		t.Errorf("remove a1 = %+v, last %v; want room r, Ana, last false", c, last)
	}
	if _, last := f.remove(t, "a2"); !last {
		t.Error("remove a2 (Ana's last tab): last = false, want true")
	}
	if _, _, err := f.db.RemoveConnection(t.Context(), "a2"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("second remove of a2: err = %v, want chat.ErrNoConnection", err)
	}
	if got, want := f.ids(t, "r"), "b1=Bo"; got != want {
		t.Errorf("room r = %s, want %s", got, want)
	}
	if !f.connect(t, "a4", "r", "Ana") {
		t.Error("Ana back after leaving: first = false, want true")
	}
}

func TestConnectionLookup(t *testing.T) {
	f := newDB(t)
	f.connect(t, "c1", "r", "Ana")
	c, err := f.db.Connection(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Room != "r" || c.Name != "Ana" || !c.ConnectedAt.Equal(f.now) {
		t.Errorf("Connection = %+v", c)
	}
	if _, err := f.db.Connection(t.Context(), "nope"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("unknown id: err = %v, want chat.ErrNoConnection", err)
	}
}

// Records whose $disconnect never came stay until DynamoDB's lazy TTL
// deletes them; reads must already ignore them, and presence must recover.
func TestExpiredConnectionsAreIgnored(t *testing.T) {
	f := newDB(t)
	f.connect(t, "ghost", "r", "Ana")
	f.now = f.now.Add(f.db.ConnectionTTL + time.Second)
	if got := f.ids(t, "r"); got != "" {
		t.Errorf("room after TTL = %q, want empty", got)
	}
	if _, err := f.db.Connection(t.Context(), "ghost"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("expired connection: err = %v, want chat.ErrNoConnection", err)
	}
	if !f.connect(t, "fresh", "r", "Ana") {
		t.Error("Ana after her ghost expired: first = false, want true (stale presence count)")
	}
	if got, want := f.ids(t, "r"), "fresh=Ana"; got != want {
		t.Errorf("room = %q, want %q", got, want)
	}
}

func TestConcurrentTabsJoinAndLeaveOnce(t *testing.T) {
	f := newDB(t)
	const tabs = 8
	var firsts, lasts int
	var mu sync.Mutex
	run := func(fn func(i int) bool) {
		var wg sync.WaitGroup
		for i := range tabs {
			wg.Go(func() {
				if fn(i) {
					mu.Lock()
					defer mu.Unlock()
					firsts++
				}
			})
		}
		wg.Wait()
	}
	run(func(i int) bool { return f.connect(t, fmt.Sprint("tab", i), "r", "Ana") })
	if firsts != 1 {
		t.Errorf("%d concurrent connects of one name reported first %d times, want once", tabs, firsts)
	}
	firsts = 0
	run(func(i int) bool {
		_, last, err := f.db.RemoveConnection(context.Background(), fmt.Sprint("tab", i))
		if err != nil {
			t.Error(err)
		}
		return last
	})
	lasts = firsts
	if lasts != 1 {
		t.Errorf("%d concurrent disconnects reported last %d times, want once", tabs, lasts)
	}
}

// A room whose connection records exceed one 1 MB Query page must still
// yield every member.
func TestRoomConnectionsPaginates(t *testing.T) {
	f := newDB(t)
	const members = 400
	pad := strings.Repeat("x", 4000) // ~4 KB per item: 400 items ≈ 1.6 MB
	var reqs []types.WriteRequest
	flush := func() {
		if len(reqs) == 0 {
			return
		}
		pending := map[string][]types.WriteRequest{f.tables.Connections: reqs}
		for len(pending) > 0 { // a batch may come back partly unprocessed under load
			out, err := f.client.BatchWriteItem(t.Context(), &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				t.Fatal(err)
			}
			pending = out.UnprocessedItems
		}
		reqs = nil
	}
	for i := range members {
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"pk":          &types.AttributeValueMemberS{Value: "room#big"},
			"sk":          &types.AttributeValueMemberS{Value: fmt.Sprintf("conn#c%04d", i)},
			"name":        &types.AttributeValueMemberS{Value: fmt.Sprint("user", i)},
			"connectedAt": &types.AttributeValueMemberS{Value: f.now.Format(time.RFC3339Nano)},
			"expiresAt":   &types.AttributeValueMemberN{Value: fmt.Sprint(f.now.Add(time.Hour).Unix())},
			"pad":         &types.AttributeValueMemberS{Value: pad},
		}}})
		if len(reqs) == 25 {
			flush()
		}
	}
	flush()
	conns, err := f.db.RoomConnections(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != members {
		t.Fatalf("RoomConnections = %d connections, want %d", len(conns), members)
	}
	if conns[members-1].ID != fmt.Sprintf("c%04d", members-1) {
		t.Errorf("last connection = %+v", conns[members-1])
	}
}

func TestAllowTyping(t *testing.T) {
	f := newDB(t)
	f.connect(t, "c1", "r", "Ana")
	interval := 2 * time.Second
	steps := []struct {
		after time.Duration
		want  bool
	}{{0, true}, {500 * time.Millisecond, false}, {time.Second, false}, {600 * time.Millisecond, true}, {0, false}}
	now := f.now
	for i, st := range steps {
		now = now.Add(st.after)
		c, ok, err := f.db.AllowTyping(t.Context(), "c1", now, interval)
		if err != nil {
			t.Fatal(err)
		}
		if ok != st.want || c.Name != "Ana" || c.Room != "r" {
			t.Errorf("step %d: allowed %v (%+v), want %v", i, ok, c, st.want)
		}
	}
	if _, _, err := f.db.AllowTyping(t.Context(), "nope", now, interval); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("unknown connection: err = %v, want chat.ErrNoConnection", err)
	}
}

func (f *fixture) put(t *testing.T, room, clientID, text string) (chat.Message, bool) {
	t.Helper()
	m := chat.Message{ID: chat.NewID(f.now), Room: room, Name: "Ana", Text: text, SentAt: f.now, ClientID: clientID}
	got, dup, err := f.db.PutMessage(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	return got, dup
}

func TestPutMessageDeduplicatesClientID(t *testing.T) {
	f := newDB(t)
	orig, dup := f.put(t, "r", "c-1", "hello")
	if dup {
		t.Fatal("first put reported duplicate")
	}
	f.now = f.now.Add(time.Minute)
	again, dup := f.put(t, "r", "c-1", "hello")
	if !dup || again.ID != orig.ID || !again.SentAt.Equal(orig.SentAt) {
		t.Errorf("retry = %+v dup %v; want the original id %s and time %v", again, dup, orig.ID, orig.SentAt)
	}
	if _, dup := f.put(t, "other", "c-1", "hello"); dup {
		t.Error("same clientId in another room reported duplicate")
	}
	f.put(t, "r", "", "no client id")
	f.put(t, "r", "", "no client id")
	msgs, _, err := f.db.History(t.Context(), "r", "", 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Errorf("room r holds %d messages, want 3 (one per distinct send)", len(msgs))
	}
}

func TestHistory(t *testing.T) {
	f := newDB(t)
	var ids []string
	for i := range 120 {
		f.now = f.now.Add(time.Second)
		m, _ := f.put(t, "r", fmt.Sprint("c", i), fmt.Sprint("message ", i))
		ids = append(ids, m.ID)
	}
	f.put(t, "elsewhere", "", "not in r")
	tests := []struct {
		name     string
		after    string
		limit    int
		from, to int // expected ids[from:to]
		wantMore bool
	}{
		{"latest page", "", 50, 70, 120, true},
		{"everything", "", 200, 0, 120, false},
		{"exactly all", "", 120, 0, 120, false},
		{"after", ids[59], 50, 60, 110, true},
		{"after, to the end", ids[99], 50, 100, 120, false},
		{"after the last", ids[119], 50, 120, 120, false},
		{"after an id never stored", chat.NewID(f.now.Add(-time.Hour)), 10, 0, 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, more, err := f.db.History(t.Context(), "r", tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, m.ID)
			}
			if want := ids[tt.from:tt.to]; strings.Join(got, ",") != strings.Join(want, ",") || more != tt.wantMore {
				t.Errorf("got %d messages (more %v), want ids[%d:%d] (more %v)", len(got), more, tt.from, tt.to, tt.wantMore)
			}
		})
	}
	msgs, _, _ := f.db.History(t.Context(), "r", ids[0], 1)
	if m := msgs[0]; m.Text != "message 1" || m.Name != "Ana" || m.Room != "r" || m.ClientID != "c1" {
		t.Errorf("message fields = %+v", m)
	}
}

func TestHistoryIgnoresExpiredMessages(t *testing.T) {
	f := newDB(t)
	old, _ := f.put(t, "r", "", "old")
	f.now = f.now.Add(f.db.MessageRetention / 2)
	recent, _ := f.put(t, "r", "", "recent")
	f.now = f.now.Add(f.db.MessageRetention/2 + time.Second) // old has expired, recent has not
	msgs, more, err := f.db.History(t.Context(), "r", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].ID != recent.ID || more {
		t.Errorf("History = %+v (more %v), want only %s; %s expired", msgs, more, recent.ID, old.ID)
	}
}
