package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// Concurrent joins and leaves of a room get the numbers 1, 2, 3… once
// each, whichever function instance logs them, and a client that missed
// some fetches exactly those, in order and page by page; another room
// counts on its own.
func TestPresenceLogNumbersEveryEventOnce(t *testing.T) {
	f := newDB(t)
	ctx := t.Context()
	const n = 12
	var wg sync.WaitGroup
	got := make([]chat.PresenceEvent, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			e := chat.PresenceEvent{Type: chat.TypeJoin, Room: "r", UserID: fmt.Sprintf("u%02d", i), Name: "Ana", Version: 1,
				SentAt: chat.FormatTime(f.now)}
			got[i], errs[i] = f.db.LogPresence(ctx, e)
		})
	}
	wg.Wait()
	seen := map[int64]string{}
	for i, e := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if other, dup := seen[e.PSeq]; dup || e.PSeq < 1 || e.PSeq > n {
			t.Fatalf("%s got pseq %d (also given to %q); want each of 1..%d once", e.UserID, e.PSeq, other, n)
		}
		seen[e.PSeq] = e.UserID
	}
	if head, err := f.db.PresenceHead(ctx, "r"); err != nil || head.PSeq != n {
		t.Fatalf("PresenceHead = %+v, %v; want pseq %d", head, err, n)
	}

	events, more, err := f.db.PresenceSince(ctx, "r", 4, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 5 || !more {
		t.Fatalf("PresenceSince(4, limit 5) = %d events, more %v; want 5, more", len(events), more)
	}
	for i, e := range events {
		if want := int64(5 + i); e.PSeq != want || e.UserID != seen[want] || e.Room != "r" || e.Type != chat.TypeJoin || e.Version != 1 {
			t.Errorf("event %d = %+v, want pseq %d of %s", i, e, want, seen[want])
		}
	}
	if events, more, _ := f.db.PresenceSince(ctx, "r", 9, 5); len(events) != 3 || more || events[0].PSeq != 10 {
		t.Errorf("PresenceSince(9, limit 5) = %+v, more %v; want 10..12 and no more", events, more)
	}

	e, err := f.db.LogPresence(ctx, chat.PresenceEvent{Type: chat.TypeLeave, Room: "other", UserID: "u", Name: "Bo", Version: 2})
	if err != nil || e.PSeq != 1 {
		t.Errorf("first event of another room: pseq %d, %v; want 1", e.PSeq, err)
	}
}

// Logged events are kept for PresenceLogTTL; past it a client finds the
// hole and syncs instead. The numbers go on.
func TestPresenceLogForgetsOldEvents(t *testing.T) {
	f := newDB(t)
	ctx := t.Context()
	leave := chat.PresenceEvent{Type: chat.TypeLeave, Room: "r", UserID: "u", Name: "Ana", Version: 2}
	if _, err := f.db.LogPresence(ctx, leave); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(f.db.PresenceLogTTL + time.Second)
	if _, err := f.db.LogPresence(ctx, leave); err != nil {
		t.Fatal(err)
	}
	events, more, err := f.db.PresenceSince(ctx, "r", 0, 10)
	if err != nil || len(events) != 1 || events[0].PSeq != 2 || more {
		t.Errorf("PresenceSince(0) = %+v, more %v, %v; want only event 2 (1 expired)", events, more, err)
	}
}

// Members pages through the users online, past runs of users who left,
// each online user once, never more than a page at a time.
func TestMembersPages(t *testing.T) {
	f := newDB(t)
	online := map[string]bool{}
	for i := range 230 {
		id, name := fmt.Sprintf("c%03d", i), fmt.Sprintf("u%03d", i)
		f.connect(t, id, "r", name)
		if i%3 == 1 || i >= 200 { // a third left, and a run of 30 at the end
			f.remove(t, id)
			continue
		}
		online["u-"+name] = true
	}
	f.connect(t, "x1", "elsewhere", "Zed")
	got := map[string]bool{}
	cursor, pages := "", 0
	for {
		members, next, err := f.db.Members(t.Context(), "r", cursor, 50)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(members) > 50 || pages > 20 {
			t.Fatalf("page %d: %d members (cursor %q)", pages, len(members), cursor)
		}
		for _, m := range members {
			if got[m.UserID] || !online[m.UserID] {
				t.Errorf("page %d lists %s (%s): twice, or not online", pages, m.UserID, m.Name)
			}
			got[m.UserID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != len(online) {
		t.Errorf("listed %d users, want the %d online", len(got), len(online))
	}
}

// The count online moves by ±1, is corrected from what a reader counted
// only if nobody changed it meanwhile, and of racing pushes of it one is
// claimed.
func TestCountOnlineAndItsPushes(t *testing.T) {
	f := newDB(t)
	ctx := t.Context()
	for range 3 {
		if _, err := f.db.CountOnline(ctx, "r", 1); err != nil {
			t.Fatal(err)
		}
	}
	head, err := f.db.CountOnline(ctx, "r", -1)
	if err != nil || head.Online != 2 {
		t.Fatalf("after +3 -1: %+v, %v; want 2", head, err)
	}
	if err := f.db.CorrectOnline(ctx, "r", 5, 9); err != nil { // read 5: stale
		t.Fatal(err)
	}
	if err := f.db.CorrectOnline(ctx, "r", 2, 4); err != nil {
		t.Fatal(err)
	}
	if head, _ := f.db.PresenceHead(ctx, "r"); head.Online != 4 {
		t.Errorf("after a stale and a current correction: %d online, want 4", head.Online)
	}
	if err := f.db.CorrectOnline(ctx, "empty", 0, 1); err != nil {
		t.Fatal(err)
	}
	if head, _ := f.db.PresenceHead(ctx, "empty"); head.Online != 1 {
		t.Errorf("a room never counted, corrected from 0: %d online, want 1", head.Online)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ok, err := f.db.ClaimOnlinePush(context.Background(), "r", 4, time.Time{}, f.now)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	head, _ = f.db.PresenceHead(ctx, "r")
	if wins.Load() != 1 || head.PushedOnline != 4 || !head.PushedAt.Equal(f.now) {
		t.Errorf("%d of 8 racing pushes claimed, head %+v; want one, pushed 4 at %v", wins.Load(), head, f.now)
	}
	if ok, _ := f.db.ClaimOnlinePush(ctx, "r", 5, time.Time{}, f.now); ok {
		t.Error("a push claimed against a head it did not read")
	}
	if ok, _ := f.db.ClaimOnlinePush(ctx, "r", 5, head.PushedAt, f.now.Add(time.Second)); !ok {
		t.Error("the next push, against the head read, was not claimed")
	}
}

// Of concurrent callers one claims telling a room its presence, and one
// schedules its flush; the others learn the flush that is pending, and no
// one tells at once while it is. Finishing the flush that is still the
// one pending leaves none, and records how far the room was told; a
// flush another took the place of finishes nothing.
func TestPresenceFlushIsScheduledOnce(t *testing.T) {
	f := newDB(t)
	ctx := t.Context()
	now := f.now.Truncate(time.Millisecond)
	const n = 8
	var told, scheduled atomic.Int64
	pending := make([]time.Time, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ok, err := f.db.ClaimTell(ctx, "r", time.Time{}, now, 3)
			if err != nil {
				t.Error(err)
			}
			if ok {
				told.Add(1)
			}
			if ok, pending[i], err = f.db.ScheduleFlush(ctx, "r", time.Time{}, now.Add(time.Duration(i+1)*time.Second)); err != nil {
				t.Error(err)
			} else if ok {
				scheduled.Add(1)
			}
		})
	}
	wg.Wait()
	if told.Load() != 1 || scheduled.Load() != 1 {
		t.Fatalf("%d claimed telling and %d scheduled a flush; want 1 and 1", told.Load(), scheduled.Load())
	}
	head, err := f.db.PresenceHead(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pending {
		if !p.Equal(head.FlushDue) {
			t.Errorf("caller %d sees the flush due at %v, the head has %v", i, p, head.FlushDue)
		}
	}
	if !head.ToldAt.Equal(now) || head.FlushedTo != 3 {
		t.Errorf("ToldAt, FlushedTo = %v, %d; want %v, 3", head.ToldAt, head.FlushedTo, now)
	}
	if ok, err := f.db.ClaimTell(ctx, "r", head.ToldAt, now.Add(time.Minute), 4); ok || err != nil {
		t.Errorf("ClaimTell while a flush is pending = %v, %v; want false", ok, err)
	}

	due, later := head.FlushDue, now.Add(5*time.Second)
	if ok, err := f.db.FinishFlush(ctx, "r", due.Add(time.Second), later, 9); ok || err != nil {
		t.Errorf("FinishFlush of a flush not pending = %v, %v; want false", ok, err)
	}
	if ok, err := f.db.FinishFlush(ctx, "r", due, later, 9); !ok || err != nil {
		t.Fatalf("FinishFlush = %v, %v", ok, err)
	}
	head, err = f.db.PresenceHead(ctx, "r")
	if err != nil || !head.FlushDue.IsZero() || !head.ToldAt.Equal(later) || head.FlushedTo != 9 {
		t.Errorf("head after the flush = %+v, %v; want none pending, told at %v up to 9", head, err, later)
	}
	// A claim on a stale read, or one that would lower how far the room
	// was told, fails.
	if ok, err := f.db.ClaimTell(ctx, "r", now, later.Add(time.Second), 10); ok || err != nil {
		t.Errorf("ClaimTell after a stale read = %v, %v; want false", ok, err)
	}
	if ok, err := f.db.ClaimTell(ctx, "r", later, later.Add(time.Second), 8); ok || err != nil {
		t.Errorf("ClaimTell up to 8 after 9 = %v, %v; want false", ok, err)
	}
	if ok, _, err := f.db.ScheduleFlush(ctx, "r", due, later.Add(time.Second)); ok || err != nil {
		t.Errorf("ScheduleFlush after a stale read = %v, %v; want false", ok, err)
	}
}
