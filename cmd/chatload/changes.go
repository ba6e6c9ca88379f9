package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/chatclient"
)

// -changes: a fraction of each sender's writes are, instead of a new
// message, a reaction to a recent message of the room, an edit of one of
// the sender's own or a delete of one; and of the new messages, some
// reply to a recent message and some mention another client.

// recentSeqs is how many of the latest messages a client may change: the
// messages it held last, anyone's, and its own acknowledged last.
const recentSeqs = 8

// Of each changeCycle changes of a sender, the editAt-th is an edit (when
// it has a message of its own acknowledged) and the deleteAt-th a delete
// (when it has one to delete); the others are reactions.
const changeCycle, editAt, deleteAt = 4, 2, 3

// Of each messageCycle messages of a sender (with -changes), the
// replyAt-th replies to a recent message and the mentionAt-th mentions
// another client; the others are plain.
const messageCycle, replyAt, mentionAt = 3, 1, 2

// deleteEvery: a message whose number (in its text) is a multiple of it
// is doomed: its sender deletes it, and nobody reacts to it, replies to
// it or edits it, so that no change races its delete (and is refused as
// gone).
const deleteEvery = 3

func doomed(num int32) bool { return num%deleteEvery == 0 }

// seen is what one client saw that its changes need, and the changes it
// heard; it is guarded by its own mu, taken inside the client's callbacks
// (which hold the client's lock), so its methods never call the client.
type seen struct {
	mu      sync.Mutex
	recent  []int64      // seqs of the latest messages held, anyone's, not doomed, newest last
	own     []ownMessage // the client's own latest acknowledged messages, not doomed, newest last
	doomed  []int64      // the client's own acknowledged doomed messages, not deleted yet, oldest first
	others  []string     // the other clients' user ids, to mention
	reacted map[reaction]bool
	changes map[int64]heard // change events held, by seq
	made    int             // changes sent so far
	sent    int             // messages sent so far
}

// ownMessage is one of the client's own messages, acknowledged at seq:
// num and at are what its text says, kept by an edit.
type ownMessage struct {
	seq int64
	num int32
	at  time.Time
	// edits counts the edits sent for it, to number the next.
	edits int
}

type reaction struct {
	target int64
	emoji  string
}

// heard is a change event a client held: who made it, and whether it came
// live or with a sync.
type heard struct {
	author string
	live   bool
}

func newSeen() *seen {
	return &seen{reacted: map[reaction]bool{}, changes: map[int64]heard{}}
}

// message notes a message the client holds (a new-message event, a
// sync's): one that is not doomed (nor deleted already) may be changed.
func (s *seen) message(m chat.MessageEvent) {
	if _, num, _, ok := parseText(m.Text); !ok || doomed(num) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recent = latest(s.recent, m.Seq)
}

// acked notes the client's own message number num, acknowledged at seq.
func (s *seen) acked(seq int64, num int32, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if doomed(num) {
		s.doomed = latest(s.doomed, seq)
		return
	}
	s.recent = latest(s.recent, seq)
	s.own = latest(s.own, ownMessage{seq: seq, num: num, at: at})
}

// meet notes the other clients' user ids, to mention.
func (s *seen) meet(others []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.others = others
}

// change notes a change event the client held.
func (s *seen) change(e chat.ChangeEvent, live bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes[e.Seq] = heard{author: e.UserID, live: live}
}

// latest appends v to the newest-last list l, keeping recentSeqs at most.
func latest[T any](l []T, v T) []T {
	l = append(l, v)
	if len(l) > recentSeqs {
		l = append(l[:0], l[len(l)-recentSeqs:]...)
	}
	return l
}

// plannedChange is a change a sender is about to send.
type plannedChange struct {
	action string // chat.ActionEdit, chat.ActionDelete or chat.ActionReact
	target int64
	text   string // an edit's
	emoji  string // a reaction's
	remove bool
}

// next picks the client's next change (changeCycle): an edit of one of
// its own recent messages, a delete of its oldest doomed one, or a
// reaction to a recent message (one it made already is taken back, so
// that every reaction changes something and takes a seq). It reports
// false when the client holds no message to change yet: the write is then
// a new message.
func (s *seen) next(sender int32, size int) (plannedChange, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	turn := s.made % changeCycle
	switch {
	case turn == editAt && len(s.own) > 0:
		m := &s.own[rand.N(len(s.own))]
		m.edits++
		s.made++
		return plannedChange{action: chat.ActionEdit, target: m.seq, text: editText(sender, m.num, m.at, m.edits, size)}, true
	case turn == deleteAt && len(s.doomed) > 0:
		target := s.doomed[0]
		s.doomed = s.doomed[1:]
		s.made++
		return plannedChange{action: chat.ActionDelete, target: target}, true
	case len(s.recent) > 0:
		r := reaction{target: s.recent[rand.N(len(s.recent))], emoji: chat.Reactions[rand.N(len(chat.Reactions))]}
		remove := s.reacted[r]
		s.reacted[r] = !remove
		s.made++
		return plannedChange{action: chat.ActionReact, target: r.target, emoji: r.emoji, remove: remove}, true
	}
	return plannedChange{}, false
}

// extras picks what the client's next message carries (messageCycle): a
// reply to a recent message, a mention of another client, or nothing.
func (s *seen) extras() chatclient.Extras {
	s.mu.Lock()
	defer s.mu.Unlock()
	turn := s.sent % messageCycle
	s.sent++
	switch {
	case turn == replyAt && len(s.recent) > 0:
		return chatclient.Extras{ReplyTo: s.recent[rand.N(len(s.recent))]}
	case turn == mentionAt && len(s.others) > 0:
		return chatclient.Extras{Mentions: []string{s.others[rand.N(len(s.others))]}}
	}
	return chatclient.Extras{}
}

// editText is the text of a message's n-th edit: what makeText made for
// it (so that the stored history still tells its sender and number) and
// the edit's number, padded to size.
func editText(sender, num int32, at time.Time, n, size int) string {
	s := fmt.Sprintf("load %d %d %d edit %d", sender, num, at.UnixNano(), n)
	if pad := size - len(s); pad > 1 {
		s += " " + strings.Repeat("x", pad-1)
	}
	return s
}

// messageNum is the number of a message in its clientId (l<sender>-<num>).
func messageNum(clientID string) (int32, bool) {
	i := strings.LastIndexByte(clientID, '-')
	n, err := strconv.ParseInt(clientID[i+1:], 10, 32)
	return int32(n), i >= 0 && err == nil
}

// changesReport is what -changes measured: the changes the senders sent
// and what the clients heard of them. ReceivedLive and ReceivedFetched
// count the change events every client held that another client made
// (the author's own are not counted: its ack tells it); Expected and
// Received, the same for the clients that stayed, checked against the
// room's stored history. StateMismatches counts the clients that stayed
// and hold a message in another state than the stored one.
type changesReport struct {
	Fraction        float64     `json:"fraction"`
	Sent            int         `json:"sent"` // edits, deletes and reactions
	Edits           int         `json:"edits"`
	Deletes         int         `json:"deletes"`
	Reactions       int         `json:"reactions"`
	Removals        int         `json:"removals"` // of the reactions, taken back
	Replies         int         `json:"replies"`  // messages sent that reply to a recent one
	Mentions        int         `json:"mentions"` // messages sent that mention another client
	Acked           int         `json:"acked"`
	Unchanged       int         `json:"unchanged"` // acknowledged without a seq: a reaction that changed nothing
	AckLatency      percentiles `json:"ackLatency"`
	ReceivedLive    int         `json:"receivedLive"`
	ReceivedFetched int         `json:"receivedFetched"`
	Stored          int         `json:"stored"` // change events in the room's stored history
	Expected        int         `json:"expected"`
	Received        int         `json:"received"`
	Lost            int         `json:"lost"`
	// What the stored history holds: messages deleted, replies, messages
	// that mention someone.
	StoredDeleted   int    `json:"storedDeleted"`
	StoredReplies   int    `json:"storedReplies"`
	StoredMentions  int    `json:"storedMentions"`
	StateMismatches int    `json:"stateMismatches"`
	StateExample    string `json:"stateExample,omitempty"`
}

// tallyChanges counts the change events each client held that another
// client made, live or fetched.
func tallyChanges(users []*user, r *report) {
	for _, u := range users {
		self := u.c.Snapshot().UserID
		u.seen.mu.Lock()
		for _, h := range u.seen.changes {
			switch {
			case h.author == self:
			case h.live:
				r.Changes.ReceivedLive++
			default:
				r.Changes.ReceivedFetched++
			}
		}
		u.seen.mu.Unlock()
	}
}

// auditChanges counts, for each client that stayed, the change events of
// the stored history another user made, and how many of them it held.
func auditChanges(left []*user, selves []string, stored []chat.ChangeEvent, r *report) {
	c := r.Changes
	c.Stored, c.Expected, c.Received = len(stored), 0, 0
	for i, u := range left {
		u.seen.mu.Lock()
		for _, e := range stored {
			if e.UserID == selves[i] {
				continue
			}
			c.Expected++
			if _, ok := u.seen.changes[e.Seq]; ok {
				c.Received++
			}
		}
		u.seen.mu.Unlock()
	}
	c.Lost = max(c.Expected-c.Received, 0)
}

// auditStates counts what the stored history holds of deletes, replies
// and mentions, and the clients that stayed (snaps: what each holds) whose
// messages are not all in their stored state: text, version, deleted,
// reaction counts, the seq answered and the users mentioned.
func auditStates(left []*user, snaps []chatclient.Snapshot, stored []chat.MessageEvent, r *report) {
	c := r.Changes
	c.StoredDeleted, c.StoredReplies, c.StoredMentions, c.StateMismatches = 0, 0, 0, 0
	want := map[int64]string{}
	for _, m := range stored {
		want[m.Seq] = messageState(m)
		if m.Deleted {
			c.StoredDeleted++
		}
		if m.ReplyTo != nil {
			c.StoredReplies++
		}
		if len(m.Mentions) > 0 {
			c.StoredMentions++
		}
	}
	for i, u := range left {
		for _, m := range snaps[i].History {
			got, ok := want[m.Seq]
			if !ok || got == messageState(m) {
				continue // a message not stored is a history mismatch, counted apart
			}
			c.StateMismatches++
			if c.StateExample == "" {
				c.StateExample = fmt.Sprintf("%s holds seq %d as %s; stored: %s", u.name, m.Seq, messageState(m), got)
			}
			break
		}
	}
}

// messageState is what every client must hold of a message in the end.
func messageState(m chat.MessageEvent) string {
	var reactions []string
	for _, r := range m.Reactions {
		if r.Count > 0 {
			reactions = append(reactions, fmt.Sprint(r.Emoji, r.Count))
		}
	}
	var replyTo int64
	if m.ReplyTo != nil {
		replyTo = m.ReplyTo.Seq
	}
	return fmt.Sprintf("%q version %d deleted %v reactions %v replyTo %d mentions %v",
		m.Text, max(m.Version, 1), m.Deleted, reactions, replyTo, m.Mentions)
}

func (c *changesReport) print(w io.Writer, messages int) {
	fmt.Fprintf(w, "%-22s %d (%d edits, %d deletes, %d reactions, %d of them taken back; %.0f%% of writes, -changes %g); %d acked (%d unchanged)\n",
		"changes sent", c.Sent, c.Edits, c.Deletes, c.Reactions, c.Removals, 100*float64(c.Sent)/float64(max(c.Sent+messages, 1)), c.Fraction, c.Acked, c.Unchanged)
	fmt.Fprintf(w, "%-22s %d replies, %d mentioning another client\n", "  of the messages", c.Replies, c.Mentions)
	fmt.Fprintf(w, "%-22s %s\n", "  ack latency", c.AckLatency)
	fmt.Fprintf(w, "%-22s %d events by others, %d live, %d fetched by sync\n", "  heard", c.ReceivedLive+c.ReceivedFetched, c.ReceivedLive, c.ReceivedFetched)
}
