package chatclient

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
)

func newBare() *Client {
	return &Client{o: Options{Room: "r", GapWait: time.Hour}, gapWait: time.Hour, last: -1, held: map[int64]chat.MessageEvent{}, skipped: map[int64]bool{},
		early: map[int64]chat.MessageEvent{}, presence: map[string]state{}, pSeen: map[int64]bool{}, pStuck: -1, stats: Stats{ErrorsByCode: map[string]int{}}, done: make(chan struct{})}
}

// Presence converges whatever order events and sync replies arrive in: a
// join numbered after a sync's read survives the sync; a user the sync no
// longer lists (it lists only users online) has left; a leave overtaken
// by a rejoin does not undo it.
func TestPresenceByVersion(t *testing.T) {
	for _, tt := range []struct {
		name   string
		frames []string
		want   []string
	}{
		{"join before an older sync", []string{
			`{"type":"join","userId":"b","name":"Bo","version":1,"pseq":2}`,
			`{"type":"sync","seq":0,"pseq":1,"members":[{"userId":"a","name":"Ana"}],"presence":{"a":1},"messages":[]}`,
		}, []string{"Ana", "Bo"}},
		{"leave overtaken by the rejoin", []string{
			`{"type":"sync","seq":0,"pseq":1,"members":[{"userId":"a","name":"Ana"},{"userId":"b","name":"Bo"}],"presence":{"a":1,"b":5},"messages":[]}`,
			`{"type":"join","userId":"b","name":"Bo","version":7,"pseq":3}`,
			`{"type":"leave","userId":"b","name":"Bo","version":6,"pseq":2}`,
		}, []string{"Ana", "Bo"}},
		{"a sync newer than a join", []string{
			`{"type":"join","userId":"b","name":"Bo","version":3,"pseq":1}`,
			`{"type":"sync","seq":0,"pseq":2,"members":[{"userId":"a","name":"Ana"}],"presence":{"a":1},"messages":[]}`,
		}, []string{"Ana"}},
		{"a sync older than a leave", []string{
			`{"type":"leave","userId":"b","name":"Bo","version":4,"pseq":3}`,
			`{"type":"sync","seq":0,"pseq":2,"members":[{"userId":"a","name":"Ana"},{"userId":"b","name":"Bo"}],"presence":{"a":1,"b":3},"messages":[]}`,
		}, []string{"Ana"}},
		{"a sync that no longer lists a user held from an older sync", []string{
			`{"type":"sync","seq":0,"pseq":1,"members":[{"userId":"a","name":"Ana"},{"userId":"b","name":"Bo"}],"presence":{"a":1,"b":1},"messages":[]}`,
			`{"type":"sync","seq":0,"pseq":4,"members":[{"userId":"a","name":"Ana"}],"presence":{"a":1},"messages":[]}`,
		}, []string{"Ana"}},
		{"two users with one name", []string{
			`{"type":"sync","seq":0,"pseq":1,"members":[{"userId":"a","name":"Ana"},{"userId":"a2","name":"Ana"}],"presence":{"a":1,"a2":1},"messages":[]}`,
			`{"type":"leave","userId":"a2","name":"Ana","version":2,"pseq":2}`,
		}, []string{"Ana"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newBare()
			for _, f := range tt.frames {
				c.receive([]byte(f), time.Now())
			}
			if got := c.Snapshot().Members; !slices.Equal(got, tt.want) {
				t.Errorf("members = %v, want %v", got, tt.want)
			}
		})
	}
}

// Messages are held once per seq; the contiguous mark stops at a gap and
// moves on when it is filled.
func TestHoldBySeq(t *testing.T) {
	c := newBare()
	c.receive([]byte(`{"type":"sync","seq":2,"members":[],"presence":{},"messages":[{"id":"a","seq":1},{"id":"b","seq":2}]}`), time.Now())
	c.receive([]byte(`{"type":"new-message","id":"d","seq":4}`), time.Now())
	if s := c.Snapshot(); s.Last != 2 || s.Highest != 4 {
		t.Fatalf("last %d, highest %d; want 2 and 4", s.Last, s.Highest)
	}
	c.receive([]byte(`{"type":"new-message","id":"d","seq":4}`), time.Now())
	c.receive([]byte(`{"type":"sync","seq":4,"members":[],"presence":{},"messages":[{"id":"c","seq":3},{"id":"d","seq":4}]}`), time.Now())
	s := c.Snapshot()
	if s.Last != 4 || len(s.History) != 4 || s.Stats.Duplicates != 1 || s.Stats.Recovered != 1 {
		t.Errorf("last %d, %d held, %d duplicates, %d recovered; want 4, 4, 1, 1", s.Last, len(s.History), s.Stats.Duplicates, s.Stats.Recovered)
	}
}

// Seqs that hold no message (a sync's skipped, a skip event) count as
// held: the contiguous mark moves over them and no gap stays open. The
// first sync's page is the room's latest: what it covers is held, but a
// seq still being stored (the latest, with no item yet).
func TestSkippedSeqsCountAsHeld(t *testing.T) {
	c := newBare()
	c.receive([]byte(`{"type":"sync","seq":6,"members":[],"presence":{},"messages":[{"id":"c","seq":3},{"id":"e","seq":5}],"skipped":[4]}`), time.Now())
	if s := c.Snapshot(); s.Last != 5 || s.Highest != 6 || len(s.History) != 2 {
		t.Fatalf("after the first sync: last %d, highest %d, %d held; want 5, 6, 2", s.Last, s.Highest, len(s.History))
	}
	c.receive([]byte(`{"type":"skip","room":"r","seq":6}`), time.Now())
	c.receive([]byte(`{"type":"new-message","id":"h","seq":8}`), time.Now())
	if s := c.Snapshot(); s.Last != 6 || s.Highest != 8 {
		t.Fatalf("after a skip and a message: last %d, highest %d; want 6 and 8", s.Last, s.Highest)
	}
	c.receive([]byte(`{"type":"sync","seq":8,"members":[],"presence":{},"messages":[{"id":"h","seq":8}],"skipped":[7]}`), time.Now())
	if s := c.Snapshot(); s.Last != 8 || len(s.History) != 3 || s.Stats.Skipped != 3 {
		t.Errorf("after the gap's sync: last %d, %d held, %d skipped; want 8, 3, 3", s.Last, len(s.History), s.Stats.Skipped)
	}
}

// A sync reply that starts at first (the room's history before it has
// expired) moves the mark over everything before it: the gap is closed by
// one reply, not fetched a page at a time.
func TestFirstJumpsExpiredHistory(t *testing.T) {
	c := newBare()
	c.receive([]byte(`{"type":"sync","seq":2,"members":[],"presence":{},"messages":[{"id":"a","seq":1},{"id":"b","seq":2}]}`), time.Now())
	c.receive([]byte(`{"type":"new-message","id":"z","seq":900}`), time.Now())
	c.receive([]byte(`{"type":"sync","seq":900,"members":[],"presence":{},"first":899,"messages":[{"id":"y","seq":899},{"id":"z","seq":900}]}`), time.Now())
	fetches := c.Snapshot().Stats.GapFetches
	c.mu.Lock()
	c.syncAt = time.Time{}
	c.fillGap() // what the gap's timer does when it fires
	c.mu.Unlock()
	if s := c.Snapshot(); s.Last != 900 || len(s.History) != 4 || s.Stats.GapFetches != fetches {
		t.Errorf("last %d, %d held, %d gap fetches (was %d); want 900, 4 and no more fetches", s.Last, len(s.History), s.Stats.GapFetches, fetches)
	}
}

// A gap that a sync reply leaves open (seqs still being stored) is asked
// for again later, not at once: no loop of syncs.
func TestOpenGapIsNotAskedAtOnce(t *testing.T) {
	c := newBare()
	c.receive([]byte(`{"type":"sync","seq":2,"members":[],"presence":{},"messages":[{"id":"a","seq":1},{"id":"b","seq":2}]}`), time.Now())
	c.receive([]byte(`{"type":"pong","seq":4,"pseq":0}`), time.Now())
	fetches := c.Snapshot().Stats.GapFetches
	c.receive([]byte(`{"type":"sync","seq":4,"members":[],"presence":{},"messages":[]}`), time.Now())
	c.mu.Lock()
	scheduled := c.gapTimer != nil
	c.mu.Unlock()
	if s := c.Snapshot(); s.Stats.GapFetches != fetches || !scheduled {
		t.Errorf("a reply that left the gap open: %d fetches (was %d), next scheduled %v; want none now, one scheduled", s.Stats.GapFetches, fetches, scheduled)
	}
	// A full page whose first seq is still being stored does not move the
	// mark: the rest is not asked for at once either.
	syncs := func() int { return c.Snapshot().Stats.GapFetches }
	c.mu.Lock()
	c.syncAt = time.Time{}
	c.mu.Unlock()
	before := syncs()
	c.receive([]byte(`{"type":"sync","seq":9,"members":[],"presence":{},"messages":[{"id":"e","seq":5}],"more":true}`), time.Now())
	c.mu.Lock()
	asked := !c.syncAt.IsZero()
	c.mu.Unlock()
	if s := c.Snapshot(); s.Last != 2 || asked || syncs() != before {
		t.Errorf("a full page that left seq 3 open: last %d, asked again at once %v; want 2, false", s.Last, asked)
	}
}

// A presence event the client missed is noticed, by the next event's
// number or by a pong's, and is no longer missed once it, a presence
// reply or a sync that covers it arrives; events may overtake each other.
// Two replies that lack a missing number (the log no longer has it) make
// the client sync.
func TestPresenceGapIsNoticedAndFilled(t *testing.T) {
	c := newBare()
	steps := []struct {
		frame   string
		missing bool
	}{
		{`{"type":"sync","seq":0,"pseq":2,"members":[{"userId":"a","name":"Ana"}],"presence":{"a":1},"messages":[]}`, false},
		{`{"type":"join","userId":"b","name":"Bo","version":1,"pseq":3}`, false},
		{`{"type":"pong","seq":0,"pseq":5}`, true}, // 4 and 5 went out, neither came
		{`{"type":"leave","userId":"b","name":"Bo","version":2,"pseq":5}`, true},
		{`{"type":"join","userId":"c","name":"Cy","version":1,"pseq":4}`, false}, // overtaken, then here
		{`{"type":"leave","userId":"c","name":"Cy","version":2,"pseq":8}`, true}, // 6 and 7 are missing
		{`{"type":"presence","after":5,"events":[{"type":"join","userId":"d","name":"Di","version":1,"pseq":6},{"type":"join","userId":"e","name":"Ed","version":1,"pseq":7}],"more":false}`, false},
		{`{"type":"pong","seq":0,"pseq":10}`, true},
		{`{"type":"presence","after":8,"events":[{"type":"leave","userId":"d","name":"Di","version":2,"pseq":10}],"more":false}`, true}, // 9 may be being kept
		{`{"type":"presence","after":8,"events":[{"type":"leave","userId":"d","name":"Di","version":2,"pseq":10}],"more":false}`, true}, // 9 is gone
		{`{"type":"sync","seq":0,"pseq":10,"members":[{"userId":"a","name":"Ana"},{"userId":"e","name":"Ed"}],"presence":{"a":1,"b":2,"c":2,"d":2,"e":1},"messages":[]}`, false},
	}
	for i, st := range steps {
		c.receive([]byte(st.frame), time.Now())
		if got := c.pHighest > c.pLast; got != st.missing {
			t.Fatalf("after frame %d (%s): missing = %v (pLast %d, pHighest %d), want %v", i, st.frame, got, c.pLast, c.pHighest, st.missing)
		}
	}
	if got := c.Snapshot().Members; !slices.Equal(got, []string{"Ana", "Ed"}) {
		t.Errorf("members = %v, want Ana and Ed", got)
	}
	if s := c.Snapshot().Stats; s.PresenceSyncs != 1 {
		t.Errorf("%d syncs for a presence event the log lacked, want 1 (after the second reply without it)", s.PresenceSyncs)
	}
}

// Only a presence event missing for the whole wait is fetched: one that
// arrives late, overtaken by the next, is not, and numbers learnt during
// a wait get a wait of their own.
func TestPresenceFetchWaitsForTheSameGap(t *testing.T) {
	c := newBare()
	for _, f := range []string{
		`{"type":"sync","seq":0,"pseq":1,"members":[],"presence":{},"messages":[]}`,
		`{"type":"join","userId":"c","name":"Cy","version":1,"pseq":3}`, // 2 is missing: a wait starts for up to 3
		`{"type":"join","userId":"b","name":"Bo","version":1,"pseq":2}`, // late, not lost
		`{"type":"join","userId":"e","name":"Ed","version":1,"pseq":5}`, // 4 is missing
	} {
		c.receive([]byte(f), time.Now())
	}
	c.presenceDue(3)
	if n := c.stats.PresenceFetches; n != 0 {
		t.Fatalf("%d fetches when the wait for 2 and 3 ended with both there; want none", n)
	}
	c.presenceDue(5)
	if n := c.stats.PresenceFetches; n != 1 || c.presenceAt.IsZero() {
		t.Errorf("%d fetches when 4 was still missing after its wait; want 1", n)
	}
}

// A join that came before the connection's first sync reply, with a gap
// below it, is waited for from that reply on.
func TestPresenceGapBeforeTheFirstSync(t *testing.T) {
	c := newBare()
	c.receive([]byte(`{"type":"join","userId":"e","name":"Ed","version":1,"pseq":5}`), time.Now())
	if c.pGapTimer != nil {
		t.Fatal("a wait started before the first sync said where the room is")
	}
	c.receive([]byte(`{"type":"sync","seq":0,"pseq":3,"members":[],"presence":{},"messages":[]}`), time.Now())
	if c.pGapTimer == nil || c.pLast != 3 || c.pHighest != 5 {
		t.Errorf("after the first sync: pLast %d, pHighest %d, waiting %v; want 3, 5 and a wait for 4", c.pLast, c.pHighest, c.pGapTimer != nil)
	}
}

// A large room's count comes with sync, pong and online events; an online
// event older than one applied is dropped; a room back at its listed size
// is synced for its member list.
func TestLargeRoomCount(t *testing.T) {
	c := newBare()
	c.receive([]byte(`{"type":"sync","seq":0,"pseq":3,"members":[],"presence":{},"online":400,"large":true,"messages":[]}`), time.Now())
	if s := c.Snapshot(); !s.Large || s.Count != 400 || len(s.Members) != 0 {
		t.Fatalf("after a large sync: large %v, count %d, members %v", s.Large, s.Count, s.Members)
	}
	c.receive([]byte(`{"type":"online","room":"r","online":450,"large":true,"at":2000}`), time.Now())
	c.receive([]byte(`{"type":"online","room":"r","online":420,"large":true,"at":1000}`), time.Now())
	if s := c.Snapshot(); s.Count != 450 {
		t.Errorf("count %d after pushes at 2000 (450) and, late, 1000 (420); want 450", s.Count)
	}
	c.mu.Lock()
	c.syncAt = time.Time{}
	c.mu.Unlock()
	c.receive([]byte(`{"type":"online","room":"r","online":140,"large":false,"at":3000}`), time.Now())
	c.mu.Lock()
	asked := !c.syncAt.IsZero()
	c.mu.Unlock()
	if s := c.Snapshot(); s.Large || s.Count != 140 || !asked {
		t.Errorf("back at the size: large %v, count %d, a sync asked %v; want listed, 140, asked", s.Large, s.Count, asked)
	}
}

// Leaves the server sends together (a live presence frame) are live
// events: applied, a gap before them noticed, and never taken for a reply
// that lacks a number (which would make it sync), even while a fetch of
// the client's own is on its way.
func TestLeavesSentTogetherAreLiveEvents(t *testing.T) {
	c := newBare()
	c.receive([]byte(`{"type":"sync","seq":0,"pseq":2,"members":[{"userId":"a","name":"Ana"},{"userId":"b","name":"Bo"},{"userId":"c","name":"Cy"}],"presence":{"a":1,"b":1,"c":1},"messages":[]}`), time.Now())
	c.presenceAt = time.Now() // a fetch on its way
	for range 2 {
		c.receive([]byte(`{"type":"presence","after":3,"events":[{"type":"leave","userId":"b","name":"Bo","version":2,"pseq":4},{"type":"leave","userId":"c","name":"Cy","version":2,"pseq":5}],"more":false,"live":true}`), time.Now())
	}
	if c.presenceAt.IsZero() {
		t.Error("a live presence frame was taken for the reply to the fetch on its way")
	}
	if got := c.Snapshot().Members; !slices.Equal(got, []string{"Ana"}) {
		t.Errorf("members = %v, want Ana (Bo and Cy left)", got)
	}
	if c.pLast != 2 || c.pHighest != 5 {
		t.Errorf("pLast %d, pHighest %d; want 2 and 5 (3 is missing)", c.pLast, c.pHighest)
	}
	if s := c.Snapshot().Stats; s.PresenceSyncs != 0 {
		t.Errorf("%d syncs after leaves sent together, want 0", s.PresenceSyncs)
	}
}

// A gap fetch's reply (members null) brings messages and leaves the
// members, the count and the presence numbers as they were.
func TestGapReplyKeepsTheMembers(t *testing.T) {
	c := newBare()
	c.receive([]byte(`{"type":"sync","seq":1,"pseq":3,"online":2,"members":[{"userId":"a","name":"Ana"},{"userId":"b","name":"Bo"}],"presence":{"a":1,"b":1},"messages":[{"id":"a","seq":1}]}`), time.Now())
	c.receive([]byte(`{"type":"new-message","id":"c","seq":3}`), time.Now())
	c.receive([]byte(`{"type":"sync","seq":3,"pseq":0,"online":0,"members":null,"presence":null,"messages":[{"id":"b","seq":2},{"id":"c","seq":3}]}`), time.Now())
	s := c.Snapshot()
	if !slices.Equal(s.Members, []string{"Ana", "Bo"}) || s.Last != 3 || c.pLast != 3 || c.online != 2 {
		t.Errorf("members %v, last %d, pLast %d, online %d; want Ana and Bo, 3, 3, 2", s.Members, s.Last, c.pLast, c.online)
	}
}

// A change (edit, delete, reaction) holds its seq, live or fetched by a
// sync (where its seq is also listed as skipped), and is told once.
func TestChangesHoldTheirSeqs(t *testing.T) {
	c := newBare()
	var told []string
	c.o.OnChange = func(e chat.ChangeEvent, live bool, _ time.Time) {
		told = append(told, fmt.Sprintf("%s %d→%d live=%v state=%v", e.Type, e.Seq, e.Target, live, e.State != nil && e.State.Text == "hello"))
	}
	c.receive([]byte(`{"type":"sync","seq":2,"members":[],"presence":{},"messages":[{"id":"a","seq":1,"text":"hello","version":2}],`+
		`"changes":[{"type":"edit","seq":2,"target":1}],"skipped":[2]}`), time.Now())
	c.receive([]byte(`{"type":"reaction","seq":3,"target":1,"emoji":"👍","state":{"id":"a","seq":1,"text":"hello","version":3}}`), time.Now())
	c.receive([]byte(`{"type":"reaction","seq":3,"target":1,"emoji":"👍"}`), time.Now())
	s := c.Snapshot()
	if s.Last != 3 || s.Stats.Duplicates != 1 || s.Stats.Skipped != 0 {
		t.Errorf("last %d, %d duplicates, %d skipped; want 3, 1, 0", s.Last, s.Stats.Duplicates, s.Stats.Skipped)
	}
	if want := []string{"edit 2→1 live=false state=false", "reaction 3→1 live=true state=true"}; !slices.Equal(told, want) {
		t.Errorf("told %q, want %q", told, want)
	}
}

// A change's state (live, or in a sync's changes) replaces the held
// message's text, version, edited, deleted and reactions when its version
// is newer: a change that comes late or twice changes nothing, a sync's
// message as it is now updates one held older, and a change that
// overtakes its message waits for it. A state of a message older than the
// history held is dropped.
func TestChangesApplyByVersion(t *testing.T) {
	c := newBare()
	for _, f := range []string{
		`{"type":"sync","seq":12,"members":[],"presence":{},"messages":[{"id":"a","seq":11,"userId":"g-ana","text":"hello"},{"id":"b","seq":12,"text":"bye"}]}`,
		`{"type":"edit","seq":13,"target":11,"state":{"id":"a","seq":11,"text":"hello!","version":2,"edited":"2026-11-25T12:31:10.002Z"}}`,
		`{"type":"reaction","seq":14,"target":11,"emoji":"👍","state":{"id":"a","seq":11,"text":"hello!","version":3,"edited":"2026-11-25T12:31:10.002Z","reactions":[{"emoji":"👍","count":1,"users":[]}]}}`,
		// Again, and late (a sync's change of an older version, a state
		// that says otherwise): nothing changes.
		`{"type":"reaction","seq":14,"target":11,"emoji":"👍","state":{"id":"a","seq":11,"text":"hello!","version":3,"edited":"2026-11-25T12:31:10.002Z","reactions":[{"emoji":"👍","count":1,"users":[]}]}}`,
		`{"type":"sync","seq":14,"members":null,"presence":null,"messages":[],"changes":[{"type":"edit","seq":13,"target":11,"state":{"id":"a","seq":11,"text":"stale","version":2}}],"skipped":[13]}`,
		// A reaction that overtook its message, seq 16, and a delete of 12
		// that a gap fetch brings.
		`{"type":"reaction","seq":17,"target":16,"emoji":"🎉","state":{"id":"f","seq":16,"text":"party","version":2,"reactions":[{"emoji":"🎉","count":1,"users":[]}]}}`,
		`{"type":"sync","seq":17,"members":null,"presence":null,"messages":[],"changes":[{"type":"delete","seq":15,"target":12,"state":{"id":"b","seq":12,"text":"","version":2,"deleted":true}}],"skipped":[15]}`,
		`{"type":"new-message","id":"f","seq":16,"text":"party"}`,
		// A state of a message before the history held.
		`{"type":"edit","seq":18,"target":5,"state":{"id":"z","seq":5,"text":"old","version":5}}`,
	} {
		c.receive([]byte(f), time.Now())
	}
	s := c.Snapshot()
	got := map[int64]string{}
	for _, m := range s.History {
		got[m.Seq] = fmt.Sprintf("%q v%d edited=%v deleted=%v %v", m.Text, m.Version, m.Edited != "", m.Deleted, m.Reactions)
	}
	want := map[int64]string{
		11: `"hello!" v3 edited=true deleted=false [{👍 1 []}]`,
		12: `"" v2 edited=false deleted=true []`,
		16: `"party" v2 edited=false deleted=false [{🎉 1 []}]`,
	}
	if !maps.Equal(got, want) || s.Last != 18 {
		t.Errorf("held %v, last %d; want %v, 18", got, s.Last, want)
	}
	if len(c.early) != 0 {
		t.Errorf("early states left: %v", c.early)
	}
	// A sync brings messages as they are now: one held at an older version
	// takes the newer state, one at a newer version keeps its own.
	c.receive([]byte(`{"type":"sync","seq":18,"members":null,"presence":null,"messages":[`+
		`{"id":"a","seq":11,"text":"hello!","version":4,"edited":"2026-11-25T12:31:10.002Z"},{"id":"f","seq":16,"text":"party"}]}`), time.Now())
	s = c.Snapshot()
	if m := s.History[0]; m.Version != 4 || len(m.Reactions) != 0 {
		t.Errorf("after a sync at version 4 (the reaction taken back): %+v", m)
	}
	if m := s.History[2]; m.Version != 2 || len(m.Reactions) != 1 {
		t.Errorf("a sync's older state replaced a newer one: %+v", m)
	}
}
