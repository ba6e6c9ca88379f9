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
)

// -changes: a fraction of each sender's writes are, instead of a new
// message, a reaction to a recent message of the room or an edit of one
// of the sender's own.

// recentSeqs is how many of the latest messages a client may change: the
// messages it held last, anyone's, and its own acknowledged last.
const recentSeqs = 8

// editEvery makes every editEvery-th change of a sender an edit (when it
// has a message of its own acknowledged); the others are reactions.
const editEvery = 3

// seen is what one client saw that its changes need, and the changes it
// heard; it is guarded by its own mu, taken inside the client's callbacks
// (which hold the client's lock), so its methods never call the client.
type seen struct {
	mu      sync.Mutex
	recent  []int64      // seqs of the latest messages held, anyone's, newest last
	own     []ownMessage // the client's own latest acknowledged messages, newest last
	reacted map[reaction]bool
	changes map[int64]heard // change events held, by seq
	made    int             // changes sent so far
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

// message notes a message the client holds (a new-message event, a sync's,
// or its own acknowledged).
func (s *seen) message(seq int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recent = latest(s.recent, seq)
}

// acked notes the client's own message, acknowledged at seq.
func (s *seen) acked(seq int64, num int32, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recent = latest(s.recent, seq)
	s.own = latest(s.own, ownMessage{seq: seq, num: num, at: at})
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
	edit   bool
	target int64
	text   string // an edit's
	emoji  string // a reaction's
	remove bool
}

// next picks the client's next change: every editEvery-th an edit of one
// of its own recent messages, the others a reaction to a recent message
// (one it made already is taken back, so that every reaction changes
// something and takes a seq). It reports false when the client holds no
// message to change yet: the write is then a new message.
func (s *seen) next(sender int32, size int) (plannedChange, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wantEdit := s.made%editEvery == editEvery-1
	switch {
	case wantEdit && len(s.own) > 0:
		m := &s.own[rand.N(len(s.own))]
		m.edits++
		s.made++
		return plannedChange{edit: true, target: m.seq, text: editText(sender, m.num, m.at, m.edits, size)}, true
	case len(s.recent) > 0:
		r := reaction{target: s.recent[rand.N(len(s.recent))], emoji: chat.Reactions[rand.N(len(chat.Reactions))]}
		remove := s.reacted[r]
		s.reacted[r] = !remove
		s.made++
		return plannedChange{target: r.target, emoji: r.emoji, remove: remove}, true
	}
	return plannedChange{}, false
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
// room's stored history.
type changesReport struct {
	Fraction        float64     `json:"fraction"`
	Sent            int         `json:"sent"` // edits and reactions
	Edits           int         `json:"edits"`
	Reactions       int         `json:"reactions"`
	Removals        int         `json:"removals"` // of the reactions, taken back
	Acked           int         `json:"acked"`
	Unchanged       int         `json:"unchanged"` // acknowledged without a seq: a reaction that changed nothing
	AckLatency      percentiles `json:"ackLatency"`
	ReceivedLive    int         `json:"receivedLive"`
	ReceivedFetched int         `json:"receivedFetched"`
	Stored          int         `json:"stored"` // change events in the room's stored history
	Expected        int         `json:"expected"`
	Received        int         `json:"received"`
	Lost            int         `json:"lost"`
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

func (c *changesReport) print(w io.Writer, messages int) {
	fmt.Fprintf(w, "%-22s %d (%d edits, %d reactions, %d of them taken back; %.0f%% of writes, -changes %g); %d acked (%d unchanged)\n",
		"changes sent", c.Sent, c.Edits, c.Reactions, c.Removals, 100*float64(c.Sent)/float64(max(c.Sent+messages, 1)), c.Fraction, c.Acked, c.Unchanged)
	fmt.Fprintf(w, "%-22s %s\n", "  ack latency", c.AckLatency)
	fmt.Fprintf(w, "%-22s %d events by others, %d live, %d fetched by sync\n", "  heard", c.ReceivedLive+c.ReceivedFetched, c.ReceivedLive, c.ReceivedFetched)
}
