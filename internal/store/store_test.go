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

	"github.com/aws/aws-sdk-go-v2/aws"
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

// conn reads a stored connection, as a frame's lookup does.
func (f *fixture) conn(t *testing.T, id string) chat.Connection {
	t.Helper()
	c, err := f.db.Connection(t.Context(), id)
	if err != nil {
		t.Fatalf("connection %s: %v", id, err)
	}
	return c
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
	conns, _, err := f.db.Room(t.Context(), room, 1)
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
	_, presence, err := f.db.Room(t.Context(), room, 1)
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
	if _, ok, err := f.db.ClaimJoin(t.Context(), f.conn(t, "a1")); !ok || err != nil {
		t.Fatalf("claim a1's join: %v, %v", ok, err)
	}
	if f.connect(t, "a2", "r", "Ana") {
		t.Error("Ana's second tab, after her join went out: joined = true, want false")
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

// Every connection checks whether its user's join is due with its first
// claim: racing claims, of one connection or of several, get the join
// once; a tab that arrives after it went out gets none; a connection
// that has claimed checks no more.
func TestJoinIsClaimedOnce(t *testing.T) {
	f := newDB(t)
	for round := range 3 {
		first, second, third := fmt.Sprint("a", round), fmt.Sprint("b", round), fmt.Sprint("c", round)
		f.connect(t, first, "r", "Ana")
		f.connect(t, second, "r", "Ana") // a second tab before either sent a frame
		for _, id := range []string{first, second} {
			if c, err := f.db.Connection(t.Context(), id); err != nil || !c.JoinCheck {
				t.Errorf("%s: JoinCheck = %v, %v; want set", id, c.JoinCheck, err)
			}
		}
		var claims atomic.Int32
		var wg sync.WaitGroup
		conns := []chat.Connection{f.conn(t, first), f.conn(t, second)}
		for i := range 8 {
			wg.Go(func() {
				p, ok, err := f.db.ClaimJoin(context.Background(), conns[i%2])
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
		f.connect(t, third, "r", "Ana")
		if _, ok, err := f.db.ClaimJoin(t.Context(), f.conn(t, third)); ok || err != nil {
			t.Errorf("%s, after the join went out: claim = %v, %v; want nothing", third, ok, err)
		}
		for _, id := range []string{first, second, third} {
			if c := f.conn(t, id); c.JoinCheck {
				t.Errorf("%s: JoinCheck still set after its claim", id)
			}
		}
		f.remove(t, first)
		f.remove(t, second)
		f.remove(t, third)
	}
	if _, ok, err := f.db.ClaimJoin(t.Context(), chat.Connection{ID: "nobody", Room: "r", UserID: "u-Nobody", JoinCheck: true}); ok || err != nil {
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
	// Bo's ghost2 ended without a word and its records expired, his set's
	// too: his next connection starts the set again, and his join is due
	// (the room may never have been told he left).
	f.connect(t, "ghost2", "r", "Bo")
	if _, ok, err := f.db.ClaimJoin(t.Context(), f.conn(t, "ghost2")); !ok || err != nil {
		t.Fatalf("claim ghost2's join: %v, %v", ok, err)
	}
	f.now = f.now.Add(f.db.ConnectionTTL + time.Second)
	if !f.connect(t, "fresh", "r", "Bo") {
		t.Error("fresh, after Bo's expired set: joined = false, want true")
	}
	conns, presence, err := f.db.Room(t.Context(), "r", 1)
	if err != nil || len(conns) != 1 || len(presence) != 1 || !slices.Equal(presence[0].Conns, []string{"fresh"}) {
		t.Fatalf("Room = %+v %+v %v; want fresh, and Bo's set holding fresh alone", conns, presence, err)
	}
	if p, left, err := f.db.Depart(t.Context(), "r", "u-Bo", "ghost2"); err != nil || left || p.Online {
		t.Errorf("Depart(ghost2) = %+v, left %v, %v; want nothing changed (it is not in the set)", p, left, err)
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
	if joined != tabs {
		t.Errorf("%d concurrent connects of one name: %d hold the join, want all (none has announced it)", tabs, joined)
	}
	tabConns := make([]chat.Connection, tabs)
	for i := range tabs {
		tabConns[i] = f.conn(t, fmt.Sprint("tab", i))
	}
	claimed := count(func(i int) bool {
		_, ok, err := f.db.ClaimJoin(context.Background(), tabConns[i])
		if err != nil {
			t.Error(err)
		}
		return ok
	})
	if claimed != 1 {
		t.Errorf("%d concurrent claims of the join succeeded %d times, want once", tabs, claimed)
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
		_, presence, _ := f.db.Room(t.Context(), room, 1)
		if left.Load() && presence[0].Version < 3 {
			t.Errorf("round %d: the removal reported left, but no join followed it", i)
		}
		if _, l := f.remove(t, "new"+room); !l {
			t.Errorf("round %d: removing the last tab: left = false", i)
		}
	}
}

// A guest who renames reconnects with the same key under the new name,
// and the new connection may come before the old one's $disconnect: the
// room must still be told the name, by a join held on the new connection.
func TestRenameWhileStillConnectedIsAJoin(t *testing.T) {
	f := newDB(t)
	put := func(id, name string) (chat.Presence, bool) {
		t.Helper()
		p, joined, err := f.db.PutConnection(t.Context(), chat.Connection{ID: id, Room: "r", UserID: "u-ana", Name: name, ConnectedAt: f.now})
		if err != nil {
			t.Fatal(err)
		}
		return p, joined
	}
	put("a1", "Ana")
	if _, ok, err := f.db.ClaimJoin(t.Context(), f.conn(t, "a1")); !ok || err != nil {
		t.Fatalf("claim a1's join: %v, %v", ok, err)
	}
	p, joined := put("a2", "Ana Lima")
	if !joined || p.Name != "Ana Lima" {
		t.Fatalf("a2 under a new name while a1 is connected: joined %v, name %q; want a join as Ana Lima", joined, p.Name)
	}
	claimed, ok, err := f.db.ClaimJoin(t.Context(), f.conn(t, "a2"))
	if !ok || err != nil || claimed.Name != "Ana Lima" {
		t.Fatalf("claim a2's join = %+v, %v, %v; want Ana Lima's", claimed, ok, err)
	}
	if _, joined := put("a3", "Ana Lima"); joined {
		t.Error("a third tab under the same name: joined = true, want false")
	}
	if _, left := f.remove(t, "a1"); left {
		t.Error("the old connection's $disconnect: left = true, want false (a2 and a3 remain)")
	}
	if got, want := f.members(t, "r"), "Ana Lima:true"; got != want {
		t.Errorf("presence = %s, want %s", got, want)
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
	conns, err := f.db.RoomConnections(t.Context(), "big", 1)
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
	res, err := f.db.PutMessage(t.Context(), chat.Message{ID: chat.NewID(f.now), Room: room, UserID: "u-" + name, Name: name, Text: text, ClientID: clientID}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return res.Message, res.Duplicate
}

func (f *fixture) history(t *testing.T, room string, after, before int64, limit int) chat.Page {
	t.Helper()
	page, err := f.db.History(t.Context(), room, after, before, limit)
	if err != nil {
		t.Fatal(err)
	}
	return page
}

func seqs(msgs []chat.Message) []int64 {
	var out []int64
	for _, m := range msgs {
		out = append(out, m.Seq)
	}
	return out
}

// takeSeq takes a room's next seq as a writer that then dies would: the
// head item (pk room#{room}, sk head, docs/storage.md) moves on and no
// message is ever written.
func (f *fixture) takeSeq(t *testing.T, room string) {
	t.Helper()
	_, err := f.client.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{
		TableName:                 &f.tables.Messages,
		Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "room#" + room}, "sk": &types.AttributeValueMemberS{Value: "head"}},
		UpdateExpression:          aws.String("ADD seq :one SET #at = :now"),
		ExpressionAttributeNames:  map[string]string{"#at": "at"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}, ":now": &types.AttributeValueMemberN{Value: fmt.Sprint(f.now.UnixMilli())}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPutMessageDeduplicatesPerSender(t *testing.T) {
	f := newDB(t)
	orig, dup := f.put(t, "r", "Ana", "c-1", "hello")
	if dup || orig.Seq != 1 {
		t.Fatalf("first put = seq %d, dup %v", orig.Seq, dup)
	}
	f.now = f.now.Add(time.Minute)
	res, err := f.db.PutMessage(t.Context(), chat.Message{ID: chat.NewID(f.now), Room: "r", UserID: "u-Ana", Name: "Ana", Text: "hello", ClientID: "c-1"}, "", 0)
	if again := res.Message; err != nil || !res.Duplicate || again.ID != orig.ID || again.Seq != orig.Seq || !again.SentAt.Equal(orig.SentAt) || again.Text != "hello" {
		t.Errorf("retry = %+v, %v; want the original %+v", res, err, orig)
	}
	// The seq the retry took is skipped at once: nobody waits for it.
	if fmt.Sprint(res.Skipped) != "[2]" {
		t.Errorf("the retry skipped seqs %v, want [2]", res.Skipped)
	}
	if _, dup := f.put(t, "r", "Bo", "c-1", "hi"); dup {
		t.Error("another sender's same clientId reported duplicate")
	}
	if _, dup := f.put(t, "other", "Ana", "c-1", "hello"); dup {
		t.Error("same clientId in another room reported duplicate")
	}
	f.put(t, "r", "Ana", "", "no client id")
	f.put(t, "r", "Ana", "", "no client id")
	page := f.history(t, "r", -1, 0, 50)
	if got := fmt.Sprint(seqs(page.Messages), page.Skipped); got != "[1 3 4 5] [2]" {
		t.Errorf("room r holds messages and skipped seqs %s, want [1 3 4 5] [2] (one message per distinct send)", got)
	}
}

// The race for a seq: many writers storing at once in one room each take
// the next seq with one update that cannot fail, so no write fails and
// none is tried again, whatever the number of writers.
func TestConcurrentPutsGetEverySeqOnce(t *testing.T) {
	f := newDB(t)
	const writers, each = 40, 5
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				m := chat.Message{ID: chat.NewID(f.now), Room: "busy", UserID: fmt.Sprint("u-w", w), Name: fmt.Sprint("w", w), Text: fmt.Sprint(i), ClientID: fmt.Sprint("w", w, "-", i)}
				res, err := f.db.PutMessage(context.Background(), m, "", 0)
				if err != nil || len(res.Skipped) > 0 {
					t.Error(res, err)
				}
				failed.Add(int64(res.Failed))
			}
		})
	}
	wg.Wait()
	page := f.history(t, "busy", 0, 0, 100)
	msgs := page.Messages
	for more, after := page.More, int64(100); more; after += 100 {
		next := f.history(t, "busy", after, 0, 100)
		msgs, more = append(msgs, next.Messages...), next.More
	}
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
	if len(msgs) != writers*each {
		t.Errorf("stored %d messages, want %d", len(msgs), writers*each)
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d conditional writes failed for %d messages from %d writers at once, want 0", n, writers*each, writers)
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
	put := func(frame int64, clientID string) (chat.Stored, error) {
		m := chat.Message{ID: chat.NewID(f.now), Room: "r", UserID: "u-Ana", Name: "Ana", Text: fmt.Sprint("frame ", frame), ClientID: clientID}
		return f.db.PutMessage(t.Context(), m, "a1", frame)
	}
	if res, err := put(2, "c2"); chat.ErrorCode(err) != chat.CodeOutOfOrder || len(res.Skipped) != 1 {
		t.Errorf("frame 2 first: %+v, err = %v, want out_of_order and its seq skipped", res, err)
	}
	if res, err := put(1, "c1"); err != nil || res.Message.Seq != 2 {
		t.Errorf("frame 1 = seq %d, %v", res.Message.Seq, err)
	}
	if _, err := put(1, "c1b"); chat.ErrorCode(err) != chat.CodeInvalidFrame {
		t.Errorf("frame 1 again: err = %v, want invalid_frame", err)
	}
	// A duplicate clientId still takes its frame: frame 3 can follow.
	if res, err := put(2, "c1"); err != nil || !res.Duplicate || res.Message.Seq != 2 {
		t.Errorf("frame 2 repeating c1 = %+v, %v; want the original, seq 2", res, err)
	}
	if err := f.db.SkipFrame(t.Context(), "a1", 3); err != nil {
		t.Errorf("skip frame 3: %v", err)
	}
	if res, err := put(4, "c4"); err != nil || res.Message.Seq != 5 {
		t.Errorf("frame 4 = seq %d, %v; want seq 5", res.Message.Seq, err)
	}
	if c, _ := f.db.Connection(t.Context(), "a1"); c.Frame != 4 {
		t.Errorf("last frame = %d, want 4", c.Frame)
	}
	page := f.history(t, "r", 0, 0, 10)
	if got := fmt.Sprint(seqs(page.Messages), page.Skipped); got != "[2 5] [1 3 4]" {
		t.Errorf("history = messages and skipped %s, want [2 5] [1 3 4]", got)
	}
	f.remove(t, "a1")
	if _, err := put(5, "c5"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("frame from a removed connection: err = %v, want chat.ErrNoConnection", err)
	}
}

// A resend racing its original (the same frame and clientId on the same
// connection, stored at once): one is stored, the other gets it as a
// duplicate, and the seq the loser took is skipped.
func TestResendRace(t *testing.T) {
	f := newDB(t)
	for round := range 6 {
		id := fmt.Sprint("a", round)
		f.connect(t, id, "r", "Ana")
		var wg sync.WaitGroup
		results := make([]chat.Stored, 2)
		errs := make([]error, 2)
		for i := range results {
			wg.Go(func() {
				m := chat.Message{ID: chat.NewID(f.now), Room: "r", UserID: "u-Ana", Name: "Ana", Text: "once", ClientID: id + "-c1"}
				results[i], errs[i] = f.db.PutMessage(context.Background(), m, id, 1)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		a, b := results[0], results[1]
		if a.Duplicate == b.Duplicate || a.Message.ID != b.Message.ID || a.Message.Seq != b.Message.Seq {
			t.Errorf("round %d: %+v and %+v; want one stored, the other its duplicate", round, a, b)
		}
		if skipped := len(a.Skipped) + len(b.Skipped); skipped != 1 {
			t.Errorf("round %d: %d seqs skipped, want 1 (the loser's)", round, skipped)
		}
		if c, _ := f.db.Connection(t.Context(), id); c.Frame != 1 {
			t.Errorf("round %d: last frame = %d, want 1", round, c.Frame)
		}
	}
	page := f.history(t, "r", 0, 0, 100)
	if len(page.Messages) != 6 || len(page.Skipped) != 6 {
		t.Errorf("history holds %d messages and %d skipped seqs, want 6 and 6", len(page.Messages), len(page.Skipped))
	}
}

// A writer that took a seq and died leaves a hole: readers leave it out
// while its writer may still come, then declare it skipped.
func TestHoleIsDeclaredSkipped(t *testing.T) {
	f := newDB(t)
	f.put(t, "r", "Ana", "c1", "one")
	f.takeSeq(t, "r") // seq 2: its writer dies
	f.put(t, "r", "Ana", "c3", "three")
	f.takeSeq(t, "r") // seq 4, the latest: its writer dies too
	page := f.history(t, "r", 0, 0, 10)
	if got := fmt.Sprint(seqs(page.Messages), page.Skipped, page.Latest); got != "[1 3] [] 4" {
		t.Errorf("at once: messages, skipped, latest = %s; want [1 3] [] 4 (the writers may still come)", got)
	}
	f.now = f.now.Add(f.db.SkipAfter)
	for _, tt := range []struct {
		after int64
		want  string
	}{{0, "[1 3] [2 4]"}, {-1, "[1 3] [2 4]"}, {1, "[3] [2 4]"}, {3, "[] [4]"}} {
		pg := f.history(t, "r", tt.after, 0, 10)
		if got := fmt.Sprint(seqs(pg.Messages), pg.Skipped); got != tt.want {
			t.Errorf("after %d, %v later: messages and skipped %s; want %s", tt.after, f.db.SkipAfter, got, tt.want)
		}
	}
	// A writer back after its seq was declared takes another.
	f.takeSeq(t, "r")
	f.now = f.now.Add(f.db.SkipAfter)
	f.history(t, "r", 4, 0, 10) // declares seq 5
	res, err := f.db.PutMessage(t.Context(), chat.Message{ID: chat.NewID(f.now), Room: "r", UserID: "u-Ana", Name: "Ana", Text: "six"}, "", 0)
	if err != nil || res.Message.Seq != 6 {
		t.Errorf("next message: seq %d, %v; want 6", res.Message.Seq, err)
	}
}

// A writer whose seq a reader declared skipped before it stored its
// message takes the next seq.
func TestSlowWriterTakesAnotherSeq(t *testing.T) {
	f := newDB(t)
	f.put(t, "r", "Ana", "c1", "one")
	// A reader declared seq 2 (the next the writer takes) before the
	// writer stored it: its tombstone is there (pk room#r, sk msg#… as in
	// docs/storage.md).
	_, err := f.client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: &f.tables.Messages, Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "room#r"}, "sk": &types.AttributeValueMemberS{Value: fmt.Sprintf("msg#%019d", 2)},
		"seq": &types.AttributeValueMemberN{Value: "2"}, "skipped": &types.AttributeValueMemberBOOL{Value: true},
		"sentAt": &types.AttributeValueMemberN{Value: fmt.Sprint(f.now.UnixMilli())}, "expiresAt": &types.AttributeValueMemberN{Value: fmt.Sprint(f.now.Add(time.Hour).Unix())}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.db.PutMessage(t.Context(), chat.Message{ID: chat.NewID(f.now), Room: "r", UserID: "u-Ana", Name: "Ana", Text: "two", ClientID: "c2"}, "", 0)
	if err != nil || res.Message.Seq != 3 || res.Failed != 1 || len(res.Skipped) != 0 {
		t.Errorf("PutMessage = %+v, %v; want seq 3 after one failed write", res, err)
	}
	page := f.history(t, "r", 0, 0, 10)
	if got := fmt.Sprint(seqs(page.Messages), page.Skipped); got != "[1 3] [2]" {
		t.Errorf("messages and skipped %s, want [1 3] [2]", got)
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
		{"after beyond the last", 500, 0, 50, 0, -1, false},
		{"before", -1, 51, 20, 31, 50, true},
		{"before, to the start", -1, 11, 20, 1, 10, false},
		{"before the first", -1, 1, 20, 0, -1, false},
		{"between", 40, 46, 100, 41, 45, false},
		{"between, cut", 40, 46, 3, 41, 43, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := f.history(t, "r", tt.after, tt.before, tt.limit)
			var want []int64
			for s := tt.from; s <= tt.to && tt.to > 0; s++ {
				want = append(want, s)
			}
			if got := seqs(page.Messages); fmt.Sprint(got) != fmt.Sprint(want) || page.More != tt.wantMore || page.Latest != 120 || len(page.Skipped) > 0 {
				t.Errorf("got %v (more %v, latest %d, skipped %v), want %v (more %v, latest 120)", got, page.More, page.Latest, page.Skipped, want, tt.wantMore)
			}
		})
	}
	page := f.history(t, "r", 1, 0, 1)
	if m := page.Messages[0]; m.Text != "message 1" || m.Name != "Ana" || m.UserID != "u-Ana" || m.Room != "r" || m.ClientID != "c1" || m.Seq != 2 {
		t.Errorf("message fields = %+v", m)
	}
}

// An expired message holds nothing any more and never will: it is
// skipped, as a tombstone is.
func TestHistorySkipsExpiredMessages(t *testing.T) {
	f := newDB(t)
	old, _ := f.put(t, "r", "Ana", "", "old")
	f.now = f.now.Add(f.db.MessageRetention / 2)
	recent, _ := f.put(t, "r", "Ana", "", "recent")
	f.now = f.now.Add(f.db.MessageRetention/2 + time.Second) // old has expired, recent has not
	page := f.history(t, "r", -1, 0, 10)
	if len(page.Messages) != 1 || page.Messages[0].ID != recent.ID || page.More || fmt.Sprint(page.Skipped) != fmt.Sprint([]int64{old.Seq}) {
		t.Errorf("History = %+v, want only %s, and %d skipped", page, recent.ID, old.Seq)
	}
}

// A user's bucket passes Burst frames at once, then one per interval, and
// says how long to wait in between; every connection of the user draws
// on the same bucket.
func TestTakeToken(t *testing.T) {
	f := newDB(t)
	r := chat.Rate{What: chat.RateMessages, PerSecond: 5, Burst: 3}
	var seen time.Time
	take := func(at time.Time) (time.Duration, bool) {
		t.Helper()
		tat, wait, err := f.db.TakeToken(t.Context(), "u-Ana", r, at, seen)
		if err != nil || tat.IsZero() {
			t.Fatalf("TakeToken = %v, %v", tat, err)
		}
		seen = tat
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
	seen = time.Time{} // a wrong guess of the bucket's state costs a request, not a token
	if _, wait, err := f.db.TakeToken(t.Context(), "u-Ana", r, now.Add(200*time.Millisecond), time.Time{}); err != nil || wait == 0 {
		t.Errorf("a frame with no hint, at once again: wait %v, %v; want refused", wait, err)
	}
	if _, ok := take(now.Add(10 * time.Second)); !ok {
		t.Error("after a long pause a frame was refused")
	}
	// The other bucket is its own, and so is another user's.
	reads := chat.Rate{What: chat.RateReads, PerSecond: 1, Burst: 1}
	if _, wait, err := f.db.TakeToken(t.Context(), "u-Ana", reads, now, time.Time{}); err != nil || wait != 0 {
		t.Errorf("the reads bucket: wait %v, %v; want its own full bucket", wait, err)
	}
	if _, wait, err := f.db.TakeToken(t.Context(), "u-Bo", r, now, time.Time{}); err != nil || wait != 0 {
		t.Errorf("another user: wait %v, %v; want a full bucket", wait, err)
	}
}

// Invocations racing for the last token: exactly one gets it.
func TestTakeTokenRace(t *testing.T) {
	f := newDB(t)
	r := chat.Rate{What: chat.RateMessages, PerSecond: 1, Burst: 4}
	for round := range 5 {
		user := fmt.Sprint("u-", round)
		for range 3 { // leave one token
			if _, wait, err := f.db.TakeToken(t.Context(), user, r, f.now, time.Time{}); err != nil || wait != 0 {
				t.Fatalf("setup: wait %v, %v", wait, err)
			}
		}
		var passed atomic.Int32
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				_, wait, err := f.db.TakeToken(context.Background(), user, r, f.now, time.Time{})
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

// A connection's frames are held behind one refused for the rate limit;
// the time only moves on.
func TestHoldFrames(t *testing.T) {
	f := newDB(t)
	f.connect(t, "a1", "r", "Ana")
	later, sooner := f.now.Add(2*time.Second), f.now.Add(time.Second)
	for _, until := range []time.Time{later, sooner} {
		if err := f.db.HoldFrames(t.Context(), "a1", until); err != nil {
			t.Fatal(err)
		}
	}
	if c, _ := f.db.Connection(t.Context(), "a1"); !c.HeldUntil.Equal(later) {
		t.Errorf("held until %v, want %v", c.HeldUntil, later)
	}
	if err := f.db.HoldFrames(t.Context(), "nope", later); err != nil {
		t.Errorf("an unknown connection: %v, want nothing done", err)
	}
}

// A bucket whose time is the frame's own millisecond is in use, to the
// store as to DynamoDB: the token is taken, not refused or failed.
func TestTakeTokenWithinOneMillisecond(t *testing.T) {
	f := newDB(t)
	r := chat.Rate{What: chat.RateMessages, PerSecond: 1000, Burst: 5} // an interval of 1 ms
	at := f.now.Add(500 * time.Microsecond)
	tat, wait, err := f.db.TakeToken(t.Context(), "u-Ana", r, at, time.Time{})
	if err != nil || wait != 0 {
		t.Fatalf("first token: %v, %v", wait, err)
	}
	// The bucket's time is now at+1ms, truncated: the same millisecond as
	// a frame 1.2 ms later.
	for i := range 3 {
		if _, wait, err := f.db.TakeToken(t.Context(), "u-Ana", r, tat.Add(200*time.Microsecond), time.Time{}); err != nil || wait != 0 {
			t.Errorf("take %d at the bucket's own millisecond: wait %v, %v; want a token", i, wait, err)
		}
	}
}

// A page of the latest or older history covers from its oldest item up:
// seqs below it are older history, declared (if ever) by the page that
// reads them, not by every first sync of a room whose old messages are
// gone.
func TestLatestPageLeavesOlderHolesAlone(t *testing.T) {
	f := newDB(t)
	for range 3 {
		f.takeSeq(t, "r") // writers that died
	}
	f.put(t, "r", "Ana", "c4", "four")
	f.now = f.now.Add(f.db.SkipAfter)
	if pg := f.history(t, "r", -1, 0, 10); fmt.Sprint(seqs(pg.Messages), pg.Skipped) != "[4] []" {
		t.Errorf("latest page: messages and skipped %v %v, want [4] []", seqs(pg.Messages), pg.Skipped)
	}
	if pg := f.history(t, "r", 0, 0, 10); fmt.Sprint(seqs(pg.Messages), pg.Skipped) != "[4] [1 2 3]" {
		t.Errorf("from the start: messages and skipped %v %v, want [4] [1 2 3]", seqs(pg.Messages), pg.Skipped)
	}
}

// A stretch of more than a page of seqs with nothing stored, below the
// first item a forward page finds (the room's history that DynamoDB's TTL
// deleted), is jumped: the page starts at that item and says so, and no
// tombstone is written for it. A shorter stretch is declared skipped, as
// any hole is, and a stretch whose seq above was taken within a writer's
// life is not jumped (a slow writer may still store into it).
func TestForwardPageJumpsExpiredHistory(t *testing.T) {
	f := newDB(t)
	for _, room := range []string{"r", "w"} {
		for i := range 30 {
			f.put(t, room, "Ana", fmt.Sprint("c", i), fmt.Sprint("message ", i))
		}
		// TTL deleted seqs 1..25.
		for seq := 1; seq <= 25; seq++ {
			_, err := f.client.DeleteItem(t.Context(), &dynamodb.DeleteItemInput{TableName: &f.tables.Messages, Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "room#" + room}, "sk": &types.AttributeValueMemberS{Value: fmt.Sprintf("msg#%019d", seq)}}})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	items := func(room string) int32 {
		out, err := f.client.Query(t.Context(), &dynamodb.QueryInput{TableName: &f.tables.Messages, KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :msg)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "room#" + room}, ":msg": &types.AttributeValueMemberS{Value: "msg#"}}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Count
	}
	f.now = f.now.Add(f.db.SkipAfter)
	if pg := f.history(t, "w", 2, 0, 10); pg.First != 0 {
		t.Errorf("%v after seq 26 was taken: first %d; want no jump while a writer may still store below it", f.db.SkipAfter, pg.First)
	}
	f.now = f.now.Add(f.db.WriterLife)
	before := items("r")
	pg := f.history(t, "r", 2, 0, 10)
	if fmt.Sprint(pg.First, seqs(pg.Messages), pg.Skipped, pg.More) != "26 [26 27 28 29 30] [] false" {
		t.Errorf("after 2: first %d, messages %v, skipped %v, more %v; want first 26 and 26..30", pg.First, seqs(pg.Messages), pg.Skipped, pg.More)
	}
	if after := items("r"); after != before {
		t.Errorf("the jump wrote %d items; want no tombstones", after-before)
	}
	// Fewer than a page: declared one by one.
	if pg := f.history(t, "r", 20, 0, 10); fmt.Sprint(pg.First, pg.Skipped) != "0 [21 22 23 24 25]" {
		t.Errorf("after 20: first %d, skipped %v; want 0 and 21..25", pg.First, pg.Skipped)
	}
}

// The join belongs to the user, not to one connection: Ana opens a1 and
// a2 (a reload, a second tab) before a1 sends a frame; a1 drops. a2's
// first frame still announces her, and once she has left for good, her
// next connection makes a join again.
func TestJoinSurvivesTheConnectionThatMadeIt(t *testing.T) {
	f := newDB(t)
	f.connect(t, "a1", "r", "Ana")
	f.connect(t, "a2", "r", "Ana")
	if _, left := f.remove(t, "a1"); left {
		t.Fatal("a1 removed: left = true, but a2 is there")
	}
	p, ok, err := f.db.ClaimJoin(t.Context(), f.conn(t, "a2"))
	if !ok || err != nil || !p.Online || p.Name != "Ana" {
		t.Fatalf("a2's claim = %+v, %v, %v; want Ana's join", p, ok, err)
	}
	if _, left := f.remove(t, "a2"); !left {
		t.Fatal("a2 removed: left = false, want true")
	}
	if !f.connect(t, "a3", "r", "Ana") {
		t.Error("Ana back after leaving: joined = false, want true")
	}
	// A connection that left before claiming does not announce a user who
	// is gone.
	a3 := f.conn(t, "a3")
	f.remove(t, "a3")
	if _, ok, _ := f.db.ClaimJoin(t.Context(), a3); ok {
		t.Error("a removed connection claimed a join")
	}
	if _, err := f.db.Connection(t.Context(), "a3"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("after the claim of a removed connection: %v; want no record made for it", err)
	}
}

// Room names are compared without regard to case, except a room stored
// under a name with capitals before that rule: it keeps its name, so that
// its history stays readable. RoomHeads resolves names the same way, in
// one read.
func TestRoomNamesIgnoreCase(t *testing.T) {
	f := newDB(t)
	f.put(t, "Legacy", "Ana", "c-1", "stored before names were folded")
	f.put(t, "design", "Ana", "c-2", "one")
	f.put(t, "design", "Ana", "c-3", "two")
	for name, want := range map[string]string{"DESIGN": "design", "design": "design", "Legacy": "Legacy", "legacy": "legacy", "LEGACY": "legacy", "New": "new"} {
		got, err := f.db.ResolveRoom(t.Context(), name)
		if err != nil || got != want {
			t.Errorf("ResolveRoom(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	heads, err := f.db.RoomHeads(t.Context(), []string{"Design", "Legacy", "legacy", "nowhere"}, "u-Ana", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range heads {
		got = append(got, fmt.Sprint(h.Room, " ", h.Seq))
	}
	if want := []string{"Design 2", "Legacy 1", "legacy 0", "nowhere 0"}; !slices.Equal(got, want) {
		t.Errorf("RoomHeads = %q, want %q", got, want)
	}
}

// A message's mentions are counted per room above what a user has seen.
func TestMentionsCountedPerRoom(t *testing.T) {
	f := newDB(t)
	mention := func(room string, ids ...string) {
		t.Helper()
		if _, err := f.db.PutMessage(t.Context(), chat.Message{ID: chat.NewID(f.now), Room: room, UserID: "u-Bo", Name: "Bo", Text: "@you", Mentions: ids}, "", 0); err != nil {
			t.Fatal(err)
		}
	}
	mention("a", "u-Ana")         // 1
	mention("a", "u-Cy")          // 2
	mention("a", "u-Ana", "u-Cy") // 3
	mention("b", "u-Ana")         // 1
	mention("a", "u-Bo")          // 4: one's own mention counts for nobody
	heads, err := f.db.RoomHeads(t.Context(), []string{"a", "b", "c"}, "u-Ana", []int64{1, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(heads); got != "[{a 4 1 3 false} {b 1 1 1 false} {c 0 0 0 false}]" {
		t.Errorf("heads = %s, want [{a 4 1 3 false} {b 1 1 1 false} {c 0 0 0 false}]: Ana is mentioned once in a above 1 (of 3 messages), once in b", got)
	}
}

// A room's unread count is of the messages above what the user has seen:
// not their own, not changes of messages or deleted ones.
func TestUnreadCountsMessagesOnly(t *testing.T) {
	f := newDB(t)
	put := func(m chat.Message) {
		t.Helper()
		m.ID, m.Room = chat.NewID(f.now), "u"
		if m.Name == "" {
			m.UserID, m.Name = "u-Bo", "Bo"
		}
		if _, err := f.db.PutMessage(t.Context(), m, "", 0); err != nil {
			t.Fatal(err)
		}
	}
	put(chat.Message{Text: "seen"})                                               // 1
	put(chat.Message{UserID: "u-Ana", Name: "Ana", Text: "her own"})              // 2
	put(chat.Message{Text: "new"})                                                // 3
	put(chat.Message{Kind: chat.KindOf(chat.ActionReact), Target: 3, Emoji: "👍"}) // 4
	put(chat.Message{Text: "taken back"})                                         // 5
	put(chat.Message{Kind: chat.KindOf(chat.ActionDelete), Target: 5})            // 6
	put(chat.Message{Text: "newer"})                                              // 7
	heads, err := f.db.RoomHeads(t.Context(), []string{"u"}, "u-Ana", []int64{1})
	if err != nil {
		t.Fatal(err)
	}
	if h := heads[0]; h.Seq != 7 || h.Unread != 2 || h.UnreadMore {
		t.Errorf("head %+v: want seq 7 and 2 unread (3 and 7)", h)
	}
}

// A private room has one owner, who alone adds and removes members; the
// owner stays.
func TestPrivateRoomAccess(t *testing.T) {
	f := newDB(t)
	ctx := t.Context()
	if err := f.db.CreateRoom(ctx, "~team", "u-ana", "Ana"); err != nil {
		t.Fatal(err)
	}
	if err := f.db.CreateRoom(ctx, "~team", "u-bo", "Bo"); chat.ErrorCode(err) != chat.CodeNotAllowed {
		t.Errorf("a second create: %v, want not_allowed", err)
	}
	role := func(user string) string {
		t.Helper()
		m, err := f.db.Membership(ctx, "~team", user)
		if err != nil {
			t.Fatal(err)
		}
		return m.Role
	}
	if role("u-ana") != chat.RoleOwner || role("u-bo") != "" {
		t.Fatalf("roles: ana %q, bo %q", role("u-ana"), role("u-bo"))
	}
	if err := f.db.Grant(ctx, "~team", "u-bo", "u-cy", chat.RoleMember); chat.ErrorCode(err) != chat.CodeNotAllowed {
		t.Errorf("a grant by a non-member: %v, want not_allowed", err)
	}
	for range 2 { // the second changes nothing
		if err := f.db.Grant(ctx, "~team", "u-ana", "u-bo", chat.RoleMember); err != nil {
			t.Fatal(err)
		}
	}
	if role("u-bo") != chat.RoleMember {
		t.Errorf("bo's role %q after the grant", role("u-bo"))
	}
	if err := f.db.Grant(ctx, "~team", "u-bo", "u-cy", chat.RoleMember); chat.ErrorCode(err) != chat.CodeNotAllowed {
		t.Errorf("a grant by a member: %v, want not_allowed", err)
	}
	if err := f.db.Revoke(ctx, "~team", "u-ana", "u-ana"); chat.ErrorCode(err) != chat.CodeNotAllowed {
		t.Errorf("the owner removed: %v, want not_allowed", err)
	}
	if err := f.db.Revoke(ctx, "~team", "u-ana", "u-bo"); err != nil || role("u-bo") != "" {
		t.Errorf("bo removed: %v, role %q", err, role("u-bo"))
	}
	if m, _ := f.db.Membership(ctx, "~elsewhere", "u-ana"); m.Role != "" {
		t.Errorf("a role in a room that does not exist: %q", m.Role)
	}
}
