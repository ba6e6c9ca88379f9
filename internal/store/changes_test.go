package store_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// change stores a change of the message at target in room r, by the user
// called name.
func (f *fixture) change(t *testing.T, name, kind string, target int64, text, emoji string, remove bool) (chat.Stored, error) {
	t.Helper()
	return f.db.PutMessage(t.Context(), chat.Message{ID: chat.NewID(f.now), Room: "r", UserID: "u-" + name, Name: name,
		Kind: kind, Target: target, Text: text, Emoji: emoji, Remove: remove}, "", 0)
}

func (f *fixture) state(t *testing.T, seq int64) chat.Message {
	t.Helper()
	m, err := f.db.Message(t.Context(), "r", seq)
	if err != nil {
		t.Fatalf("message %d: %v", seq, err)
	}
	return m
}

func code(err error) string {
	if err == nil {
		return "ok"
	}
	return chat.ErrorCode(err)
}

// An edit and a delete are events at seqs of their own, in the room's
// order, and change the message they name: its text, edited time and
// version; a delete leaves a tombstone without text. Only the author
// changes a message, an edit only within the edit window, and nothing
// changes a deleted one.
func TestEditAndDelete(t *testing.T) {
	f := newDB(t)
	m, _ := f.put(t, "r", "Ana", "c-1", "helo")
	res, err := f.change(t, "Ana", chat.KindEdit, m.Seq, "hello", "", false)
	if err != nil || res.Message.Seq != 2 || res.Target.Text != "hello" || res.Target.Version != 2 || !res.Target.Edited.Equal(f.now) {
		t.Fatalf("edit = %+v, %v; want seq 2, text hello, version 2, edited now", res, err)
	}
	if _, err := f.change(t, "Bo", chat.KindEdit, m.Seq, "mine now", "", false); code(err) != chat.CodeNotAllowed {
		t.Errorf("Bo's edit of Ana's message: %v, want %s", err, chat.CodeNotAllowed)
	}
	if _, err := f.change(t, "Bo", chat.KindDelete, m.Seq, "", "", false); code(err) != chat.CodeNotAllowed {
		t.Errorf("Bo's delete of Ana's message: %v, want %s", err, chat.CodeNotAllowed)
	}
	f.now = f.now.Add(f.db.EditWindow + time.Minute)
	if _, err := f.change(t, "Ana", chat.KindEdit, m.Seq, "too late", "", false); code(err) != chat.CodeTooLate {
		t.Errorf("an edit after the window: %v, want %s", err, chat.CodeTooLate)
	}
	res, err = f.change(t, "Ana", chat.KindDelete, m.Seq, "", "", false)
	if err != nil || !res.Target.Deleted || res.Target.Text != "" || res.Target.Version != 3 {
		t.Fatalf("delete = %+v, %v; want deleted, no text, version 3", res.Target, err)
	}
	for _, kind := range []string{chat.KindEdit, chat.KindDelete, chat.KindReact} {
		if _, err := f.change(t, "Ana", kind, m.Seq, "again", "👍", false); code(err) != chat.CodeGone {
			t.Errorf("%s of a deleted message: %v, want %s", kind, err, chat.CodeGone)
		}
	}
	if _, err := f.change(t, "Ana", chat.KindEdit, 99, "x", "", false); code(err) != chat.CodeGone {
		t.Errorf("an edit of a seq that holds nothing: %v, want %s", err, chat.CodeGone)
	}
	// History: the message as it is now, the changes in order, the refused
	// changes' seqs skipped; nowhere the text taken back.
	page := f.history(t, "r", 0, 0, 100)
	var got []string
	for _, x := range page.Messages {
		got = append(got, fmt.Sprintf("%d:%s%q", x.Seq, x.Kind, x.Text))
	}
	if want := []string{`1:""`, `2:edit""`, `6:delete""`}; !slices.Equal(got, want) {
		t.Errorf("history = %v, want %v", got, want)
	}
	if want := []int64{3, 4, 5, 7, 8, 9, 10}; !slices.Equal(page.Skipped, want) {
		t.Errorf("skipped = %v, want %v (the refused changes)", page.Skipped, want)
	}
	if first := page.Messages[0]; !first.Deleted || first.Version != 3 {
		t.Errorf("the message in history: %+v, want deleted, version 3", first)
	}
}

// An edit of a message past its retention (expired, not yet deleted by
// DynamoDB) is refused, as is a reply to it.
func TestChangesOfAnExpiredMessage(t *testing.T) {
	f := newDB(t)
	f.db.EditWindow = 400 * 24 * time.Hour
	m, _ := f.put(t, "r", "Ana", "", "old")
	f.now = f.now.Add(f.db.MessageRetention + time.Hour)
	if _, err := f.change(t, "Ana", chat.KindEdit, m.Seq, "new", "", false); code(err) != chat.CodeGone {
		t.Errorf("an edit of an expired message: %v, want %s", err, chat.CodeGone)
	}
	_, err := f.db.PutMessage(t.Context(), chat.Message{ID: chat.NewID(f.now), Room: "r", UserID: "u-Bo", Name: "Bo", Text: "re", ReplyTo: m.Seq}, "", 0)
	if code(err) != chat.CodeGone {
		t.Errorf("a reply to an expired message: %v, want %s", err, chat.CodeGone)
	}
}

// An edit and a delete racing: whichever order they take, the message
// ends deleted without text, and an edit that comes after the delete is
// refused.
func TestEditRacingDelete(t *testing.T) {
	f := newDB(t)
	for round := range 5 {
		m, _ := f.put(t, "r", "Ana", "", fmt.Sprintf("round %d", round))
		var wg sync.WaitGroup
		var editErr, deleteErr error
		wg.Go(func() { _, editErr = f.change(t, "Ana", chat.KindEdit, m.Seq, "edited", "", false) })
		wg.Go(func() { _, deleteErr = f.change(t, "Ana", chat.KindDelete, m.Seq, "", "", false) })
		wg.Wait()
		if deleteErr != nil || (editErr != nil && code(editErr) != chat.CodeGone) {
			t.Fatalf("round %d: edit %v, delete %v", round, editErr, deleteErr)
		}
		if s := f.state(t, m.Seq); !s.Deleted || s.Text != "" || (editErr == nil) != (s.Version == 3) {
			t.Errorf("round %d: %+v after edit %v; want deleted without text, version 3 if the edit went first", round, s, editErr)
		}
	}
}

// Many users reacting to one message at once: every reaction counts
// (atomic writes, no retries), each user once per emoji, the first
// MaxReactors listed by name; taking a reaction back counts down.
func TestConcurrentReactions(t *testing.T) {
	f := newDB(t)
	m, _ := f.put(t, "r", "Ana", "", "react to me")
	const users = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*users)
	for i := range users {
		for range 2 { // each twice: the second changes nothing
			wg.Go(func() {
				if _, err := f.change(t, fmt.Sprintf("user%02d", i), chat.KindReact, m.Seq, "", "👍", false); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Go(func() {
		if _, err := f.change(t, "Bo", chat.KindReact, m.Seq, "", "🎉", false); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := f.state(t, m.Seq)
	if len(s.Reactions) != 2 || s.Reactions[0].Emoji != "👍" || s.Reactions[0].Count != users || len(s.Reactions[0].Users) != chat.MaxReactors ||
		s.Reactions[1].Emoji != "🎉" || s.Reactions[1].Count != 1 || s.Reactions[1].Users[0].Name != "Bo" {
		t.Fatalf("reactions = %+v; want 👍 %d (%d named), 🎉 1 (Bo)", s.Reactions, users, chat.MaxReactors)
	}
	if s.Version != users+2 {
		t.Errorf("version %d, want %d: one per reaction that changed something", s.Version, users+2)
	}
	res, err := f.change(t, "Bo", chat.KindReact, m.Seq, "", "🎉", true)
	if err != nil || len(res.Target.Reactions) != 1 {
		t.Errorf("Bo takes 🎉 back: %+v, %v; want only 👍 left", res.Target.Reactions, err)
	}
	if res, err := f.change(t, "Bo", chat.KindReact, m.Seq, "", "🎉", true); err != nil || !res.Unchanged || res.Message.Seq != 0 {
		t.Errorf("taking back a reaction not made: %+v, %v; want unchanged, no seq", res, err)
	}
	// Taking back one of the named ones leaves the others named.
	named := res.Target.Reactions[0].Users[0]
	res, err = f.change(t, named.Name, chat.KindReact, m.Seq, "", "👍", true)
	if r := res.Target.Reactions[0]; err != nil || r.Count != users-1 || slices.Contains(r.Users, named) || len(r.Users) != chat.MaxReactors-1 {
		t.Errorf("%s takes 👍 back: %+v, %v", named.Name, r, err)
	}
}

// A reply names the message it answers, read before it is stored; a
// page of history brings the messages its changes and replies name when
// it does not hold them.
func TestRepliesAndTargetsInHistory(t *testing.T) {
	f := newDB(t)
	orig, _ := f.put(t, "r", "Ana", "", "question")
	for range 3 {
		f.put(t, "r", "Bo", "", "filler")
	}
	res, err := f.db.PutMessage(t.Context(), chat.Message{ID: chat.NewID(f.now), Room: "r", UserID: "u-Bo", Name: "Bo", Text: "answer",
		ReplyTo: orig.Seq, Mentions: []string{"u-Ana"}}, "", 0)
	if err != nil || res.Answered.Text != "question" {
		t.Fatalf("reply = %+v, %v", res, err)
	}
	if _, err := f.change(t, "Cy", chat.KindReact, orig.Seq, "", "👀", false); err != nil {
		t.Fatal(err)
	}
	page := f.history(t, "r", 4, 0, 100) // the reply and the reaction, not the message they name
	if len(page.Messages) != 2 || page.Messages[0].ReplyTo != orig.Seq || !slices.Equal(page.Messages[0].Mentions, []string{"u-Ana"}) ||
		page.Messages[1].Kind != chat.KindReact || len(page.Targets) != 1 || page.Targets[0].Seq != orig.Seq ||
		page.Targets[0].Reactions[0].Emoji != "👀" {
		t.Errorf("page = %+v", page)
	}
	if _, err := f.db.PutMessage(t.Context(), chat.Message{ID: chat.NewID(f.now), Room: "r", UserID: "u-Bo", Name: "Bo", Text: "x", ReplyTo: 99}, "", 0); code(err) != chat.CodeGone {
		t.Errorf("a reply to nothing: %v, want %s", err, chat.CodeGone)
	}
}

// A retry of a change or a reply whose ack was lost gets the original,
// even when what it would find now (the reaction made, the answered
// message deleted since) would refuse it or change nothing.
func TestRetriesOfChangesGetTheOriginal(t *testing.T) {
	f := newDB(t)
	m, _ := f.put(t, "r", "Ana", "", "question")
	react := chat.Message{ID: chat.NewID(f.now), Room: "r", UserID: "u-Bo", Name: "Bo", Kind: chat.KindReact, Target: m.Seq, Emoji: "👍", ClientID: "r1"}
	first, err := f.db.PutMessage(t.Context(), react, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.db.PutMessage(t.Context(), react, "", 0)
	if err != nil || !again.Duplicate || again.Unchanged || again.Message.Seq != first.Message.Seq {
		t.Errorf("the reaction again: %+v, %v; want the original, seq %d", again, err, first.Message.Seq)
	}
	reply := chat.Message{ID: chat.NewID(f.now), Room: "r", UserID: "u-Bo", Name: "Bo", Text: "answer", ReplyTo: m.Seq, ClientID: "m1"}
	if first, err = f.db.PutMessage(t.Context(), reply, "", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.change(t, "Ana", chat.KindDelete, m.Seq, "", "", false); err != nil {
		t.Fatal(err)
	}
	again, err = f.db.PutMessage(t.Context(), reply, "", 0)
	if err != nil || !again.Duplicate || again.Message.Seq != first.Message.Seq {
		t.Errorf("the reply again, its message deleted since: %+v, %v; want the original, seq %d", again, err, first.Message.Seq)
	}
}
