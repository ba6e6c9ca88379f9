package store_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// A room that fills its shards doubles their count; every connection is
// found in exactly one shard below it, and is touched and removed there.
func TestShardsGrowAndHoldEveryConnection(t *testing.T) {
	f := newDB(t)
	f.db.ShardSize = 3
	const room, users = "crowd", 20
	for i := range users {
		id := fmt.Sprintf("c%02d", i)
		if !f.connect(t, id, room, fmt.Sprintf("user%02d", i)) {
			t.Fatalf("connect %s: not a join", id)
		}
		if _, err := f.db.CountOnline(t.Context(), room, 1); err != nil {
			t.Fatal(err)
		}
	}
	head, err := f.db.PresenceHead(t.Context(), room)
	if err != nil {
		t.Fatal(err)
	}
	shards := head.Shards
	// Doubling from 1 while users online >= 3 per shard: 20 users need 8.
	if shards != 8 {
		t.Fatalf("Shards = %d after %d users at 3 per shard, want 8", shards, users)
	}
	var all []string
	used := 0
	for k := range shards {
		conns, err := f.db.ShardConnections(t.Context(), room, k)
		if err != nil {
			t.Fatal(err)
		}
		if len(conns) > 0 {
			used++
		}
		for _, c := range conns {
			if got := f.conn(t, c.ID).Shard; got != k {
				t.Errorf("connection %s listed in shard %d, its record says %d", c.ID, k, got)
			}
			all = append(all, c.ID)
		}
	}
	slices.Sort(all)
	if len(all) != users || len(slices.Compact(all)) != users {
		t.Fatalf("shards hold %d connections %v, want each of %d once", len(all), all, users)
	}
	if used < 2 {
		t.Errorf("only %d shard(s) used", used)
	}
	whole, err := f.db.RoomConnections(t.Context(), room, shards)
	if err != nil || len(whole) != users {
		t.Fatalf("RoomConnections = %d connections (%v), want %d", len(whole), err, users)
	}
	conns, _, err := f.db.Room(t.Context(), room, shards)
	if err != nil || len(conns) != users {
		t.Fatalf("Room = %d connections (%v), want %d", len(conns), err, users)
	}

	// A connection in a shard above 0 is touched and removed there.
	i := slices.IndexFunc(whole, func(c chat.Connection) bool { return c.Shard > 0 })
	if i < 0 {
		t.Fatal("no connection in a shard above 0")
	}
	c := f.conn(t, whole[i].ID)
	if err := f.db.Touch(t.Context(), c, f.now.Add(time.Minute)); err != nil {
		t.Fatalf("Touch of a connection in shard %d: %v", c.Shard, err)
	}
	if _, left := f.remove(t, c.ID); !left {
		t.Error("removing the user's only connection: not a leave")
	}
	rest, err := f.db.RoomConnections(t.Context(), room, shards)
	if err != nil || len(rest) != users-1 || slices.ContainsFunc(rest, func(r chat.Connection) bool { return r.ID == c.ID }) {
		t.Fatalf("after removing %s: %d connections (%v)", c.ID, len(rest), err)
	}
}

// A room that empties gives its shards back for new connections, and
// readers still read the shards of the connections placed before, until
// those have ended.
func TestShardsShrinkWhenTheRoomEmpties(t *testing.T) {
	f := newDB(t)
	f.db.ShardSize = 3
	const room, users = "ebb", 20
	for i := range users {
		f.connect(t, fmt.Sprintf("c%02d", i), room, fmt.Sprintf("user%02d", i))
		if _, err := f.db.CountOnline(t.Context(), room, 1); err != nil {
			t.Fatal(err)
		}
	}
	head, err := f.db.PresenceHead(t.Context(), room)
	if err != nil || head.Shards != 8 {
		t.Fatalf("Shards = %d (%v) after %d users at 3 per shard, want 8", head.Shards, err, users)
	}
	// All leave but the two in the highest shards.
	whole, err := f.db.RoomConnections(t.Context(), room, head.Shards)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(whole, func(a, b chat.Connection) int { return b.Shard - a.Shard })
	stay := whole[:2]
	for _, c := range whole[2:] {
		f.remove(t, c.ID)
		if _, err := f.db.CountOnline(t.Context(), room, -1); err != nil {
			t.Fatal(err)
		}
	}
	// The next connect finds 2 online: under a quarter of 3 per shard down
	// to 2 shards, so it is placed among 2.
	f.connect(t, "late", room, "late")
	if got := f.conn(t, "late").Shard; got >= 2 {
		t.Errorf("a connection after the room emptied went to shard %d, want one of 2", got)
	}
	head, err = f.db.PresenceHead(t.Context(), room)
	if err != nil || head.Shards != 8 {
		t.Fatalf("readers read %d shards (%v) right after the shrink, want the 8 the others are in", head.Shards, err)
	}
	conns, err := f.db.RoomConnections(t.Context(), room, head.Shards)
	if err != nil || len(conns) != 3 {
		t.Fatalf("RoomConnections = %d (%v), want the 2 who stayed (shards %d and %d) and the late one", len(conns), err, stay[0].Shard, stay[1].Shard)
	}
	f.now = f.now.Add(f.db.ConnectionTTL + 2*time.Minute) // every connection placed before has ended
	if head, err = f.db.PresenceHead(t.Context(), room); err != nil || head.Shards != 2 {
		t.Errorf("readers read %d shards (%v) once the connections before had ended, want 2", head.Shards, err)
	}
}
