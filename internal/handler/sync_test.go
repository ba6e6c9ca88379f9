package handler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// A sync reply fits one frame by construction, whatever the room's size
// and its users' names: up to the largest listed size with the longest
// user ids and names (the ones JSON escapes to six bytes a character),
// with a page of the longest messages cut to what fits, and at least one
// of them; above the listed size, a count and no list.
func TestSyncReplyFitsOneFrame(t *testing.T) {
	l := chat.DefaultLimits()
	longestText := strings.Repeat("&", l.MaxTextChars)
	page := chat.Page{Latest: 100, More: true}
	for i := range l.MaxHistory {
		page.Messages = append(page.Messages, chat.Message{ID: chat.NewID(time.Now()), Seq: int64(i + 1), Room: strings.Repeat("r", l.MaxRoomChars),
			UserID: chat.AccountUserID(strings.Repeat("s", 64)), Name: strings.Repeat("&", l.MaxNameChars), Text: longestText,
			ClientID: strings.Repeat("c", l.MaxClientIDChars), SentAt: time.Now()})
	}
	c := chat.Connection{Room: strings.Repeat("r", l.MaxRoomChars), UserID: chat.AccountUserID(strings.Repeat("s", 64)), Name: strings.Repeat("&", l.MaxNameChars)}
	for _, size := range []int{2, l.ListedRoomSize, chat.MaxListedRoomSize, chat.MaxListedRoomSize + 1, 100_000} {
		for _, name := range []string{"a", strings.Repeat("&", l.MaxNameChars), strings.Repeat("😀", l.MaxNameChars)} {
			h := &Chat{Limits: l}
			h.Limits.ListedRoomSize = min(size, chat.MaxListedRoomSize)
			var presence []chat.Presence
			if size <= 1000 { // a larger room's count is read, never the room
				for i := range size {
					id := fmt.Sprintf("%s%06d", strings.Repeat("s", 58), i)
					presence = append(presence, chat.Presence{UserID: chat.AccountUserID(id), Name: name, Online: true, Version: 1 << 52})
				}
			}
			// The count may be off (a write that failed): the list decides.
			head := chat.PresenceHead{PSeq: 1 << 52, Online: int64(size) / 2}
			reply := h.syncReply(c, chat.Inbound{After: -1}, page, presence, head)
			msgs := reply.Messages
			out, err := chat.Encode(reply)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) > l.MaxFrameBytes || len(msgs) == 0 {
				t.Errorf("%d users named %q…: the reply is %d bytes with %d messages; want at most %d and at least one", size, name[:1], len(out), len(msgs), l.MaxFrameBytes)
			}
			if large := size > h.Limits.ListedRoomSize; reply.Large != large || large && len(reply.Members) > 0 {
				t.Errorf("%d users, listed size %d: large %v with %d members listed", size, h.Limits.ListedRoomSize, reply.Large, len(reply.Members))
			}
		}
	}
}
