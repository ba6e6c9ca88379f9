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
