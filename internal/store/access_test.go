package store_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// An account makes at most chat.MaxRoomsMade rooms, private or claimed
// public ones; direct messages do not count, nor does another account's.
func TestRoomsMadeAreCounted(t *testing.T) {
	f := newDB(t)
	ctx := t.Context()
	for i := range chat.MaxRoomsMade {
		var err error
		if i%2 == 0 {
			err = f.db.CreateRoom(ctx, fmt.Sprintf("~r%d", i), "u-ana", "Ana")
		} else {
			var claimed bool
			if claimed, err = f.db.ClaimRoom(ctx, fmt.Sprintf("r%d", i), "u-ana", "Ana"); !claimed && err == nil {
				t.Fatalf("room %d not claimed", i)
			}
		}
		if err != nil {
			t.Fatalf("room %d: %v", i, err)
		}
	}
	if err := f.db.CreateRoom(ctx, "~one-more", "u-ana", "Ana"); chat.ErrorCode(err) != chat.CodeNotAllowed {
		t.Errorf("a private room past the quota: %v, want not_allowed", err)
	}
	if claimed, err := f.db.ClaimRoom(ctx, "one-more", "u-ana", "Ana"); claimed || chat.ErrorCode(err) != chat.CodeNotAllowed {
		t.Errorf("a public room past the quota: claimed %t, %v; want not_allowed", claimed, err)
	}
	if m, err := f.db.Membership(ctx, "~one-more", "u-ana"); err != nil || m.Role != "" {
		t.Errorf("the refused room was made after all: %+v, %v", m, err)
	}
	if err := f.db.CreateDM(ctx, chat.DMRoom("u-ana", "u-bo"), "u-ana", "Ana", "u-bo"); err != nil {
		t.Errorf("direct messages past the quota: %v", err)
	}
	if err := f.db.CreateRoom(ctx, "~bos", "u-bo", "Bo"); err != nil {
		t.Errorf("another account's room: %v", err)
	}
	// A claimed room's name taken by another before: not claimed, no error.
	if claimed, err := f.db.ClaimRoom(ctx, "r1", "u-bo", "Bo"); claimed || err != nil {
		t.Errorf("Bo claims Ana's room: %t, %v", claimed, err)
	}
}

// The audit log reads a page at a time, newest first, to the first entry.
func TestAuditLogPages(t *testing.T) {
	f := newDB(t)
	const n = chat.AuditPage + 5
	for i := range n {
		f.now = f.now.Add(time.Millisecond)
		if err := f.db.Audit(t.Context(), "~crew", chat.AuditEntry{By: "u-ana", Action: chat.ActionMute, UserID: fmt.Sprintf("u-%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 2 {
			t.Fatalf("more than 2 pages for %d entries", n)
		}
		entries, next, err := f.db.AuditLog(t.Context(), "~crew", cursor)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > chat.AuditPage {
			t.Errorf("a page of %d entries, over %d", len(entries), chat.AuditPage)
		}
		for _, e := range entries {
			got = append(got, e.UserID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != n || got[0] != fmt.Sprintf("u-%03d", n-1) || got[n-1] != "u-000" || !slices.IsSortedFunc(got, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Errorf("the log read back: %d entries %v…, want %d newest first", len(got), got[:min(3, len(got))], n)
	}
}

// Every moderation action stands exactly when the room's audit log keeps
// it: its entry is written in the action's own transaction, so an action
// refused leaves none and an action made always has one.
func TestModerationStandsWithItsAuditEntry(t *testing.T) {
	f := newDB(t)
	ctx := t.Context()
	const room = "~crew"
	if err := f.db.CreateRoom(ctx, room, "u-ana", "Ana"); err != nil {
		t.Fatal(err)
	}
	var want []chat.AuditEntry // oldest first
	made := func(what string, err error, e chat.AuditEntry) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		want = append(want, e)
	}
	refused := func(what string, err error) {
		t.Helper()
		if chat.ErrorCode(err) != chat.CodeNotAllowed {
			t.Fatalf("%s: %v, want not_allowed", what, err)
		}
	}
	until := f.now.Add(time.Hour)
	made("Ana adds Bo", f.db.Grant(ctx, room, "u-ana", "u-bo", chat.RoleMember), chat.AuditEntry{By: "u-ana", Action: chat.ActionInvite, UserID: "u-bo", Role: chat.RoleMember})
	refused("Bo adds Cy", f.db.Grant(ctx, room, "u-bo", "u-cy", chat.RoleMember))
	refused("Bo mutes Ana", f.db.Mute(ctx, room, "u-bo", "u-ana", until))
	made("Ana mutes Bo", f.db.Mute(ctx, room, "u-ana", "u-bo", until), chat.AuditEntry{By: "u-ana", Action: chat.ActionMute, UserID: "u-bo", Until: chat.FormatTime(until)})
	made("Ana makes Cy a moderator", f.db.Grant(ctx, room, "u-ana", "u-cy", chat.RoleModerator), chat.AuditEntry{By: "u-ana", Action: chat.ActionInvite, UserID: "u-cy", Role: chat.RoleModerator})
	refused("Cy bans Ana", f.db.Ban(ctx, room, "u-cy", "u-ana", false))
	made("Cy bans Bo", f.db.Ban(ctx, room, "u-cy", "u-bo", false), chat.AuditEntry{By: "u-cy", Action: chat.ActionBan, UserID: "u-bo", Role: chat.RoleBanned})
	refused("banned Bo comes by a link", f.db.JoinByLink(ctx, room, "u-bo", "Bo"))
	made("Dee comes by a link", f.db.JoinByLink(ctx, room, "u-dee", "Dee"), chat.AuditEntry{By: "u-dee", Action: chat.ActionInvite, UserID: "u-dee", Role: chat.RoleMember})
	made("Cy lifts Bo's ban", f.db.Ban(ctx, room, "u-cy", "u-bo", true), chat.AuditEntry{By: "u-cy", Action: chat.ActionBan, UserID: "u-bo"})
	refused("Cy invites an address", f.db.InviteEmail(ctx, room, "u-cy", "eve@example.com", chat.RoleMember))
	made("Ana invites an address", f.db.InviteEmail(ctx, room, "u-ana", "eve@example.com", chat.RoleMember), chat.AuditEntry{By: "u-ana", Action: chat.ActionInvite, Email: "eve@example.com", Role: chat.RoleMember})
	made("Ana withdraws it", f.db.WithdrawEmail(ctx, room, "u-ana", "eve@example.com"), chat.AuditEntry{By: "u-ana", Action: chat.ActionRemove, Email: "eve@example.com"})

	// A moderator's delete keeps its entry with the tombstone; a delete by
	// one who is no longer a moderator is refused, and leaves none.
	first, _ := f.put(t, room, "dee", "", "first")
	second, _ := f.put(t, room, "dee", "", "second")
	remove := func(target int64) error {
		e := &chat.AuditEntry{By: "u-cy", Action: chat.ActionDelete, UserID: "u-dee", Target: target}
		_, err := f.db.PutMessage(ctx, chat.Message{ID: chat.NewID(f.now), Room: room, UserID: "u-cy", Name: "Cy", Kind: chat.KindDelete, Target: target,
			RemovedBy: "u-cy", Audit: e}, "", 0)
		return err
	}
	made("Cy removes Dee's message", remove(first.Seq), chat.AuditEntry{By: "u-cy", Action: chat.ActionDelete, UserID: "u-dee", Target: first.Seq})
	made("Ana makes Cy a member", f.db.Grant(ctx, room, "u-ana", "u-cy", chat.RoleMember), chat.AuditEntry{By: "u-ana", Action: chat.ActionInvite, UserID: "u-cy", Role: chat.RoleMember})
	refused("Cy, a member again, removes Dee's other message", remove(second.Seq))
	made("Ana removes Dee", f.db.Revoke(ctx, room, "u-ana", "u-dee"), chat.AuditEntry{By: "u-ana", Action: chat.ActionRemove, UserID: "u-dee"})

	got, next, err := f.db.AuditLog(ctx, room, "")
	if err != nil || next != "" {
		t.Fatalf("audit log: next %q, %v", next, err)
	}
	slices.Reverse(want) // the log is newest first
	for i := range got {
		if got[i].At == "" {
			t.Errorf("entry %d has no time: %+v", i, got[i])
		}
		got[i].At = ""
	}
	if !slices.Equal(got, want) {
		t.Errorf("the audit log holds\n%+v\nwant\n%+v", got, want)
	}
}
