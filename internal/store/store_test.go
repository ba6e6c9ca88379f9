package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/dynamolocal/dynamolocaltest"
	"github.com/chatgo/serverless-chat/internal/store"
)

var endpoint string // of the DynamoDB Local TestMain started

func TestMain(m *testing.M) {
	os.Exit(dynamolocaltest.Main(m, &endpoint))
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
	client, names := dynamolocaltest.NewTables(t, endpoint)
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
	_, joined, err := f.db.PutConnection(t.Context(), chat.Connection{ID: id, Room: room, UserID: "u-" + name, Name: name, ConnectedAt: f.now})
	if err != nil {
		t.Fatal(err)
	}
	return joined
}

func (f *fixture) remove(t *testing.T, id string) (chat.Connection, bool) {
	t.Helper()
	c, _, left, err := f.db.RemoveConnection(t.Context(), id)
	if err != nil {
		t.Fatalf("remove %s: %v", id, err)
	}
	return c, left
}

func (f *fixture) ids(t *testing.T, room string) string {
	t.Helper()
	conns, _, err := f.db.Room(t.Context(), room)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range conns {
		ids = append(ids, c.ID+"="+c.Name)
	}
	return strings.Join(ids, ",")
}

// members returns the room's presence as "name:online" words, sorted.
func (f *fixture) members(t *testing.T, room string) string {
	t.Helper()
	_, presence, err := f.db.Room(t.Context(), room)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range presence {
		out = append(out, fmt.Sprintf("%s:%v", p.Name, p.Online))
	}
	return strings.Join(out, " ")
}

func TestConnectionsPresencePerName(t *testing.T) {
	f := newDB(t)
	if !f.connect(t, "a1", "r", "Ana") {
		t.Error("Ana's first connection: joined = false, want true")
	}
	if f.connect(t, "a2", "r", "Ana") {
		t.Error("Ana's second tab: joined = true, want false")
	}
	if !f.connect(t, "b1", "r", "Bo") {
		t.Error("Bo: joined = false, want true")
	}
	if !f.connect(t, "a3", "other", "Ana") {
		t.Error("Ana in another room: joined = false, want true")
	}
	if f.connect(t, "a1", "r", "Ana") {
		t.Error("repeated $connect of a1: joined = true, want false")
	}
	if got, want := f.ids(t, "r"), "a1=Ana,a2=Ana,b1=Bo"; got != want {
		t.Errorf("room r = %s, want %s", got, want)
	}
	if got, want := f.ids(t, "other"), "a3=Ana"; got != want {
		t.Errorf("room other = %s, want %s", got, want)
	}

	c, left := f.remove(t, "a1")
	if left || c.Room != "r" || c.Name != "Ana" {
		t.Errorf("remove a1 = %+v, left %v; want room r, Ana, left false", c, left)
	}
	if _, left := f.remove(t, "a2"); !left {
		t.Error("remove a2 (Ana's last tab): left = false, want true")
	}
	if _, _, _, err := f.db.RemoveConnection(t.Context(), "a2"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("second remove of a2: err = %v, want chat.ErrNoConnection", err)
	}
	if got, want := f.ids(t, "r"), "b1=Bo"; got != want {
		t.Errorf("room r = %s, want %s", got, want)
	}
	if got, want := f.members(t, "r"), "Ana:false Bo:true"; got != want {
		t.Errorf("presence = %s, want %s", got, want)
	}
	if !f.connect(t, "a4", "r", "Ana") {
		t.Error("Ana back after leaving: joined = false, want true")
	}
}

// Every change of a name's presence gets a higher version, so that a
// client can order a join and a leave that reach it in either order.
func TestPresenceVersionsGrow(t *testing.T) {
	f := newDB(t)
	var versions []int64
	put := func(id string) {
		p, _, err := f.db.PutConnection(t.Context(), chat.Connection{ID: id, Room: "r", UserID: "u-Ana", Name: "Ana", ConnectedAt: f.now})
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, p.Version)
	}
	put("a1")
	_, p, _, err := f.db.RemoveConnection(t.Context(), "a1")
	if err != nil {
		t.Fatal(err)
	}
	versions = append(versions, p.Version)
	put("a2")
	if !slices.IsSorted(versions) || versions[0] == versions[1] || versions[1] == versions[2] {
		t.Errorf("versions of join, leave, join = %v; want strictly increasing", versions)
	}
}

// The connection that makes its user join holds the join until one
// claim takes it; racing claims get it once.
func TestJoinIsHeldUntilClaimed(t *testing.T) {
	f := newDB(t)
	for round := range 3 {
		first, second := fmt.Sprint("a", round), fmt.Sprint("b", round)
		f.connect(t, first, "r", "Ana")
		f.connect(t, second, "r", "Ana") // a second tab makes no join
		for id, want := range map[string]bool{first: true, second: false} {
			if c, err := f.db.Connection(t.Context(), id); err != nil || (c.PendingJoin > 0) != want {
				t.Errorf("%s: PendingJoin = %d, %v; want one: %v", id, c.PendingJoin, err, want)
			}
		}
		var claims atomic.Int32
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				p, ok, err := f.db.ClaimJoin(context.Background(), first)
				if err != nil {
					t.Error(err)
				}
				if ok {
					claims.Add(1)
					if p.UserID != "u-Ana" || p.Name != "Ana" || !p.Online || p.Version < 1 {
						t.Errorf("claimed %+v; want Ana online with a version", p)
					}
				}
			})
		}
		wg.Wait()
		if claims.Load() != 1 {
			t.Errorf("round %d: %d claims got the join, want 1", round, claims.Load())
		}
		f.remove(t, first)
		f.remove(t, second)
	}
	if _, ok, err := f.db.ClaimJoin(t.Context(), "nobody"); ok || err != nil {
		t.Errorf("claim of an unknown connection = %v, %v; want nothing", ok, err)
	}
}

func TestConnectionLookup(t *testing.T) {
	f := newDB(t)
	f.connect(t, "c1", "r", "Ana")
	c, err := f.db.Connection(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Room != "r" || c.Name != "Ana" || !c.ConnectedAt.Equal(f.now) || c.Frame != 0 {
		t.Errorf("Connection = %+v", c)
	}
	if _, err := f.db.Connection(t.Context(), "nope"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("unknown id: err = %v, want chat.ErrNoConnection", err)
	}
}

// Records whose $disconnect never came stay until DynamoDB's lazy TTL
// deletes them; reads must already ignore them, and Depart heals the
// presence they leave behind.
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
	if _, _, _, err := f.db.RemoveConnection(t.Context(), "ghost"); err != nil {
		t.Errorf("an expired connection could not be removed: %v", err)
	}
	f.connect(t, "ghost2", "r", "Bo")
	f.now = f.now.Add(f.db.ConnectionTTL + time.Second)
	f.connect(t, "fresh", "r", "Bo") // the set still holds ghost2
	conns, presence, err := f.db.Room(t.Context(), "r")
	if err != nil || len(conns) != 1 || len(presence) != 1 || len(presence[0].Conns) != 2 {
		t.Fatalf("Room = %+v %+v %v; want fresh, and Bo's set holding fresh and ghost2", conns, presence, err)
	}
	if p, left, err := f.db.Depart(t.Context(), "r", "u-Bo", "ghost2"); err != nil || left || !p.Online {
		t.Errorf("Depart(ghost2) = %+v, left %v, %v; want Bo still online", p, left, err)
	}
	if _, left, _ := f.db.Depart(t.Context(), "r", "u-Bo", "ghost2"); left {
		t.Error("a second Depart of the same connection reported left")
	}
}

// Many tabs of one name opening or closing at once: exactly one joins and
// exactly one leaves, and a connection removed twice at once (a
// $disconnect racing a prune) counts once.
func TestConcurrentTabsJoinAndLeaveOnce(t *testing.T) {
	f := newDB(t)
	const tabs = 8
	count := func(fn func(i int) bool) int {
		var n atomic.Int32
		var wg sync.WaitGroup
		for i := range tabs {
			wg.Go(func() {
				if fn(i) {
					n.Add(1)
				}
			})
		}
		wg.Wait()
		return int(n.Load())
	}
	joined := count(func(i int) bool {
		_, joined, err := f.db.PutConnection(context.Background(), chat.Connection{ID: fmt.Sprint("tab", i), Room: "r", UserID: "u-Ana", Name: "Ana", ConnectedAt: f.now})
		if err != nil {
			t.Error(err)
		}
		return joined
	})
	if joined != 1 {
		t.Errorf("%d concurrent connects of one name reported joined %d times, want once", tabs, joined)
	}
	left := count(func(i int) bool {
		_, _, left, err := f.db.RemoveConnection(context.Background(), fmt.Sprint("tab", i/2*2)) // each removed twice
		if err != nil && !errors.Is(err, chat.ErrNoConnection) {
			t.Error(err)
		}
		if i%2 == 0 {
			_, l, err := f.db.Depart(context.Background(), "r", "u-Ana", fmt.Sprint("tab", i+1))
			if err != nil {
				t.Error(err)
			}
			left = left || l
		}
		return left
	})
	if left != 1 {
		t.Errorf("%d concurrent removals reported left %d times, want once", tabs, left)
	}
	if got := f.members(t, "r"); got != "Ana:false" {
		t.Errorf("presence = %s, want Ana:false", got)
	}
}

// A name's connection coming back while its last one leaves (the
// interleavings that made the old counter lose an ADD, or report a leave
// for a name that was back) ends with the name online, and only the
// removal that really empties the set reports left.
func TestRejoinDuringLeaveKeepsTheName(t *testing.T) {
	f := newDB(t)
	for i := range 20 {
		room := fmt.Sprint("r", i)
		f.connect(t, "old"+room, room, "Ana")
		var left atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() {
			_, _, l, err := f.db.RemoveConnection(context.Background(), "old"+room)
			if err != nil {
				t.Error(err)
			}
			left.Store(l)
		})
		wg.Go(func() {
			if _, _, err := f.db.PutConnection(context.Background(), chat.Connection{ID: "new" + room, Room: room, UserID: "u-Ana", Name: "Ana", ConnectedAt: f.now}); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		if got := f.members(t, room); got != "Ana:true" {
			t.Fatalf("round %d: presence = %s, want Ana:true", i, got)
		}
		_, presence, _ := f.db.Room(t.Context(), room)
		if left.Load() && presence[0].Version < 3 {
			t.Errorf("round %d: the removal reported left, but no join followed it", i)
		}
		if _, l := f.remove(t, "new"+room); !l {
			t.Errorf("round %d: removing the last tab: left = false", i)
		}
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
			"connectedAt": &types.AttributeValueMemberN{Value: fmt.Sprint(f.now.UnixMilli())},
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

func (f *fixture) put(t *testing.T, room, name, clientID, text string) (chat.Message, bool) {
	t.Helper()
	latest, err := f.db.Latest(t.Context(), room)
	if err != nil {
		t.Fatal(err)
	}
	m := chat.Message{ID: chat.NewID(f.now), Seq: latest + 1, Room: room, UserID: "u-" + name, Name: name, Text: text, SentAt: f.now, ClientID: clientID}
	got, dup, err := f.db.PutMessage(t.Context(), m, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return got, dup
}

func (f *fixture) history(t *testing.T, room string, after, before int64, limit int) ([]chat.Message, bool) {
	t.Helper()
	msgs, more, err := f.db.History(t.Context(), room, after, before, limit)
	if err != nil {
		t.Fatal(err)
	}
	return msgs, more
}

func TestPutMessageDeduplicatesPerSender(t *testing.T) {
	f := newDB(t)
	orig, dup := f.put(t, "r", "Ana", "c-1", "hello")
	if dup || orig.Seq != 1 {
		t.Fatalf("first put = seq %d, dup %v", orig.Seq, dup)
	}
	f.now = f.now.Add(time.Minute)
	again, dup := f.put(t, "r", "Ana", "c-1", "hello")
	if !dup || again.ID != orig.ID || again.Seq != orig.Seq || !again.SentAt.Equal(orig.SentAt) || again.Text != "hello" {
		t.Errorf("retry = %+v dup %v; want the original %+v", again, dup, orig)
	}
	if _, dup := f.put(t, "r", "Bo", "c-1", "hi"); dup {
		t.Error("another sender's same clientId reported duplicate")
	}
	if _, dup := f.put(t, "other", "Ana", "c-1", "hello"); dup {
		t.Error("same clientId in another room reported duplicate")
	}
	f.put(t, "r", "Ana", "", "no client id")
	f.put(t, "r", "Ana", "", "no client id")
	msgs, _ := f.history(t, "r", -1, 0, 50)
	var seqs []int64
	for _, m := range msgs {
		seqs = append(seqs, m.Seq)
	}
	if fmt.Sprint(seqs) != "[1 2 3 4]" {
		t.Errorf("room r holds seqs %v, want [1 2 3 4] (one per distinct send)", seqs)
	}
}

// Writers that all guess the same seq still store every message once,
// with seqs 1..N and no gap.
func TestConcurrentPutsGetEverySeqOnce(t *testing.T) {
	f := newDB(t)
	const writers, each = 6, 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				m := chat.Message{ID: chat.NewID(f.now), Seq: 1, Room: "busy", UserID: fmt.Sprint("u-w", w), Name: fmt.Sprint("w", w), Text: fmt.Sprint(i), SentAt: f.now}
				if _, _, err := f.db.PutMessage(context.Background(), m, "", 0); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	msgs, more := f.history(t, "busy", 0, 0, 100)
	last := map[string]int{}
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has seq %d", i, m.Seq)
		}
		n, _ := strconv.Atoi(m.Text)
		if n < last[m.Name] {
			t.Errorf("%s's message %d stored after %d", m.Name, n, last[m.Name])
		}
		last[m.Name] = n
	}
	if len(msgs) != writers*each || more {
		t.Errorf("stored %d messages (more %v), want %d", len(msgs), more, writers*each)
	}
	if latest, _ := f.db.Latest(t.Context(), "busy"); latest != writers*each {
		t.Errorf("Latest = %d, want %d", latest, writers*each)
	}
}

// A connection's numbered frames are stored only in their order: frame 2
// before frame 1 is refused, and a frame number is used once.
func TestPutMessageKeepsFrameOrder(t *testing.T) {
	f := newDB(t)
	f.connect(t, "a1", "r", "Ana")
	put := func(frame int64, clientID string) (chat.Message, bool, error) {
		m := chat.Message{ID: chat.NewID(f.now), Seq: 1, Room: "r", UserID: "u-Ana", Name: "Ana", Text: fmt.Sprint("frame ", frame), SentAt: f.now, ClientID: clientID}
		return f.db.PutMessage(t.Context(), m, "a1", frame)
	}
	if _, _, err := put(2, "c2"); chat.ErrorCode(err) != chat.CodeOutOfOrder {
		t.Errorf("frame 2 first: err = %v, want out_of_order", err)
	}
	if m, _, err := put(1, "c1"); err != nil || m.Seq != 1 {
		t.Errorf("frame 1 = seq %d, %v", m.Seq, err)
	}
	if _, _, err := put(1, "c1b"); chat.ErrorCode(err) != chat.CodeInvalidFrame {
		t.Errorf("frame 1 again: err = %v, want invalid_frame", err)
	}
	// A duplicate clientId still takes its frame: frame 3 can follow.
	if m, dup, err := put(2, "c1"); err != nil || !dup || m.Seq != 1 {
		t.Errorf("frame 2 repeating c1 = seq %d dup %v, %v; want the original, seq 1", m.Seq, dup, err)
	}
	if err := f.db.SkipFrame(t.Context(), "a1", 3); err != nil {
		t.Errorf("skip frame 3: %v", err)
	}
	if m, _, err := put(4, "c4"); err != nil || m.Seq != 2 {
		t.Errorf("frame 4 = seq %d, %v; want seq 2", m.Seq, err)
	}
	if c, _ := f.db.Connection(t.Context(), "a1"); c.Frame != 4 {
		t.Errorf("last frame = %d, want 4", c.Frame)
	}
	f.remove(t, "a1")
	if _, _, err := put(5, "c5"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("frame from a removed connection: err = %v, want chat.ErrNoConnection", err)
	}
}

func TestHistory(t *testing.T) {
	f := newDB(t)
	for i := range 120 {
		f.now = f.now.Add(time.Second)
		f.put(t, "r", "Ana", fmt.Sprint("c", i), fmt.Sprint("message ", i))
	}
	f.put(t, "elsewhere", "Ana", "", "not in r")
	tests := []struct {
		name          string
		after, before int64
		limit         int
		from, to      int64 // expected seqs from..to
		wantMore      bool
	}{
		{"latest page", -1, 0, 50, 71, 120, true},
		{"everything", -1, 0, 200, 1, 120, false},
		{"exactly all", -1, 0, 120, 1, 120, false},
		{"from the start", 0, 0, 10, 1, 10, true},
		{"after", 60, 0, 50, 61, 110, true},
		{"after, to the end", 100, 0, 50, 101, 120, false},
		{"after the last", 120, 0, 50, 0, -1, false},
		{"before", -1, 51, 20, 31, 50, true},
		{"before, to the start", -1, 11, 20, 1, 10, false},
		{"between", 40, 46, 100, 41, 45, false},
		{"between, cut", 40, 46, 3, 41, 43, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, more := f.history(t, "r", tt.after, tt.before, tt.limit)
			var got, want []int64
			for _, m := range msgs {
				got = append(got, m.Seq)
			}
			for s := tt.from; s <= tt.to && tt.to > 0; s++ {
				want = append(want, s)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || more != tt.wantMore {
				t.Errorf("got %v (more %v), want %v (more %v)", got, more, want, tt.wantMore)
			}
		})
	}
	msgs, _ := f.history(t, "r", 1, 0, 1)
	if m := msgs[0]; m.Text != "message 1" || m.Name != "Ana" || m.UserID != "u-Ana" || m.Room != "r" || m.ClientID != "c1" || m.Seq != 2 {
		t.Errorf("message fields = %+v", m)
	}
}

func TestHistoryIgnoresExpiredMessages(t *testing.T) {
	f := newDB(t)
	old, _ := f.put(t, "r", "Ana", "", "old")
	f.now = f.now.Add(f.db.MessageRetention / 2)
	recent, _ := f.put(t, "r", "Ana", "", "recent")
	f.now = f.now.Add(f.db.MessageRetention/2 + time.Second) // old has expired, recent has not
	msgs, more := f.history(t, "r", -1, 0, 10)
	if len(msgs) != 1 || msgs[0].ID != recent.ID || more {
		t.Errorf("History = %+v (more %v), want only %s; %s expired", msgs, more, recent.ID, old.ID)
	}
}

// A connection's bucket passes Burst frames at once, then one per
// interval, and says how long to wait in between.
func TestTakeToken(t *testing.T) {
	f := newDB(t)
	f.connect(t, "a1", "r", "Ana")
	r := chat.Rate{What: chat.RateMessages, PerSecond: 5, Burst: 3}
	take := func(at time.Time) (time.Duration, bool) {
		t.Helper()
		c, wait, err := f.db.TakeToken(t.Context(), "a1", r, at)
		if err != nil || c.Name != "Ana" || c.Room != "r" {
			t.Fatalf("TakeToken = %+v, %v", c, err)
		}
		return wait, wait == 0
	}
	now := f.now
	for i := range 3 {
		if _, ok := take(now); !ok {
			t.Fatalf("frame %d of a burst of 3 refused", i+1)
		}
	}
	wait, ok := take(now)
	if ok || wait != 200*time.Millisecond {
		t.Errorf("the 4th frame at once: passed %v, wait %v; want refused, 200ms", ok, wait)
	}
	if _, ok := take(now.Add(150 * time.Millisecond)); ok {
		t.Error("a frame 150 ms later passed; a token comes back every 200 ms")
	}
	if _, ok := take(now.Add(200 * time.Millisecond)); !ok {
		t.Error("a frame 200 ms later was refused")
	}
	if _, ok := take(now.Add(10 * time.Second)); !ok {
		t.Error("after a long pause a frame was refused")
	}
	// The other bucket is its own.
	reads := chat.Rate{What: chat.RateReads, PerSecond: 1, Burst: 1}
	if _, wait, err := f.db.TakeToken(t.Context(), "a1", reads, now); err != nil || wait != 0 {
		t.Errorf("the reads bucket: wait %v, %v; want its own full bucket", wait, err)
	}
	if _, _, err := f.db.TakeToken(t.Context(), "nope", reads, now); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("unknown connection: err = %v, want chat.ErrNoConnection", err)
	}
}

// Invocations racing for the last token: exactly one gets it.
func TestTakeTokenRace(t *testing.T) {
	f := newDB(t)
	r := chat.Rate{What: chat.RateMessages, PerSecond: 1, Burst: 4}
	for round := range 5 {
		id := fmt.Sprint("c", round)
		f.connect(t, id, "r", "Ana")
		for range 3 { // leave one token
			if _, wait, err := f.db.TakeToken(t.Context(), id, r, f.now); err != nil || wait != 0 {
				t.Fatalf("setup: wait %v, %v", wait, err)
			}
		}
		var passed atomic.Int32
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				_, wait, err := f.db.TakeToken(context.Background(), id, r, f.now)
				if err != nil {
					t.Error(err)
				}
				if wait == 0 {
					passed.Add(1)
				}
			})
		}
		wg.Wait()
		if n := passed.Load(); n != 1 {
			t.Errorf("round %d: %d of 6 racing frames passed with one token left, want 1", round, n)
		}
	}
}
