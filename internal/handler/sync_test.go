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
	longName := strings.Repeat("&", l.MaxNameChars)
	longID := func(i int) string { return chat.AccountUserID(fmt.Sprintf("%s%06d", strings.Repeat("s", 58), i)) }
	// The largest a message gets: the longest text, every reaction with as
	// many named as are listed, as many mentions as allowed, a reply.
	var reactions []chat.Reaction
	for _, e := range chat.Reactions {
		r := chat.Reaction{Emoji: e, Count: 1 << 40}
		for i := range chat.MaxReactors {
			r.Users = append(r.Users, chat.Member{UserID: longID(i), Name: longName})
		}
		reactions = append(reactions, r)
	}
	var mentions []string
	for i := range l.MaxMentions {
		mentions = append(mentions, longID(i))
	}
	worst := func(seq int64) chat.Message {
		return chat.Message{ID: chat.NewID(time.Now()), Seq: seq, Room: strings.Repeat("r", l.MaxRoomChars), UserID: longID(0), Name: longName,
			Text: longestText, ClientID: strings.Repeat("c", l.MaxClientIDChars), SentAt: time.Now(), Edited: time.Now(), Version: 1 << 40,
			Reactions: reactions, Mentions: mentions, ReplyTo: seq + 1000}
	}
	messages := chat.Page{Latest: 1 << 40, More: true}
	changes := chat.Page{Latest: 1 << 40, More: true}
	for i := range l.MaxHistory {
		seq := int64(i + 1)
		messages.Messages = append(messages.Messages, worst(seq))
		messages.Targets = append(messages.Targets, worst(seq+1000)) // what the replies answer
		changes.Messages = append(changes.Messages, chat.Message{ID: chat.NewID(time.Now()), Seq: seq + 5000, Room: strings.Repeat("r", l.MaxRoomChars),
			UserID: longID(1), Name: longName, SentAt: time.Now(), Kind: chat.KindReact, Target: seq + 1000, Emoji: chat.Reactions[1],
			ClientID: strings.Repeat("c", l.MaxClientIDChars)})
		changes.Targets = append(changes.Targets, worst(seq+1000))
	}
	c := chat.Connection{Room: strings.Repeat("r", l.MaxRoomChars), UserID: longID(1), Name: longName}
	for _, page := range []chat.Page{messages, changes} {
		for _, size := range []int{2, l.ListedRoomSize, chat.MaxListedRoomSize, chat.MaxListedRoomSize + 1, 100_000} {
			for _, name := range []string{"a", longName, strings.Repeat("😀", l.MaxNameChars)} {
				h := &Chat{Limits: l}
				h.Limits.ListedRoomSize = min(size, chat.MaxListedRoomSize)
				var presence []chat.Presence
				if size <= 1000 { // a larger room's count is read, never the room
					for i := range size {
						presence = append(presence, chat.Presence{UserID: longID(i), Name: name, Online: true, Version: 1 << 52})
					}
				}
				// The count may be off (a write that failed): the list decides.
				head := chat.PresenceHead{PSeq: 1 << 52, Online: int64(size) / 2}
				reply := h.syncReply(c, chat.Inbound{After: -1}, page, presence, head)
				items := len(reply.Messages) + len(reply.Changes)
				out, err := chat.Encode(reply)
				if err != nil {
					t.Fatal(err)
				}
				if len(out) > l.MaxFrameBytes || items == 0 {
					t.Errorf("%d users named %q…: the reply is %d bytes with %d items; want at most %d and at least one", size, name[:1], len(out), items, l.MaxFrameBytes)
				}
				if large := size > h.Limits.ListedRoomSize; reply.Large != large || large && len(reply.Members) > 0 {
					t.Errorf("%d users, listed size %d: large %v with %d members listed", size, h.Limits.ListedRoomSize, reply.Large, len(reply.Members))
				}
			}
		}
	}
}
