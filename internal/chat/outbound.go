package chat

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// ProtocolVersion is the version of docs/protocol.md this package speaks;
// sync replies carry it.
const ProtocolVersion = 5

// GatewayThrottled is the message of API Gateway's own error frame for a
// frame its stage throttling refused (it reached no function); its other
// error frames ("Internal server error", "Endpoint request timed out") come
// from frames that reached one.
const GatewayThrottled = "Too Many Requests"

// Event types the server sends, in the "type" field of every server frame.
const (
	TypeNewMessage = "new-message"
	TypeAck        = "ack"
	TypeSync       = "sync"
	TypeTyping     = "typing"
	TypePong       = "pong"
	TypeError      = "error"
	TypeJoin       = "join"
	TypeLeave      = "leave"
	TypePresence   = "presence"
	TypeSkip       = "skip"
	TypeMembers    = "members"
	TypeOnline     = "online"
	TypeRooms      = "rooms"
	TypeEdit       = "edit"
	TypeDelete     = "delete"
	TypeReaction   = "reaction"
	TypeAccess     = "access"
	TypeAudit      = "audit"
	TypeRoster     = "roster"
	TypeInviteLink = "invite-link"
)

// MessageEvent is a stored message as clients see it: the new-message event
// (with Type set) and the items of a sync reply (Type empty, omitted).
type MessageEvent struct {
	Type   string `json:"type,omitempty"`
	ID     string `json:"id"`
	Seq    int64  `json:"seq"`
	Room   string `json:"room"`
	UserID string `json:"userId"`
	Name   string `json:"name"`
	Text   string `json:"text"`
	SentAt string `json:"sentAt"`
	// ClientID is the sender's clientId, in a sync reply to the sender
	// (any connection of the same user) only: a message whose ack was lost
	// is acknowledged by the sync that brings it.
	ClientID string `json:"clientId,omitempty"`
	// ReplyTo quotes the message this one answers, as it is now.
	ReplyTo  *Quote   `json:"replyTo,omitempty"`
	Mentions []string `json:"mentions,omitempty"`
	// The message's state (Message): Version is omitted while it is 1.
	Version   int64      `json:"version,omitempty"`
	Edited    string     `json:"edited,omitempty"`
	Deleted   bool       `json:"deleted,omitempty"`
	Reactions []Reaction `json:"reactions,omitempty"`
	// RemovedBy: a moderator removed it (their user id).
	RemovedBy string `json:"removedBy,omitempty"`
}

// QuoteChars is how much of an answered message's text a reply quotes.
const QuoteChars = 100

// Quote is the message a reply answers: its author and the start of its
// text, or Deleted (or, gone with the retention, only its seq).
type Quote struct {
	Seq     int64  `json:"seq"`
	UserID  string `json:"userId,omitempty"`
	Name    string `json:"name,omitempty"`
	Text    string `json:"text,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`
}

// NewQuote returns the quote of the message m.
func NewQuote(m Message) *Quote {
	return &Quote{Seq: m.Seq, UserID: m.UserID, Name: m.Name, Text: truncate(m.Text, QuoteChars), Deleted: m.Deleted}
}

// ChangeEvent is a change of a message (an edit, a delete or a reaction):
// live, and in a sync reply's changes. State is the changed message's
// state after it (in a sync reply, as it is now; omitted when the reply
// holds the message itself, or it is gone): a client keeps, per message,
// the state of the highest version it has seen.
type ChangeEvent struct {
	Type    string        `json:"type"` // TypeEdit, TypeDelete or TypeReaction
	Room    string        `json:"room"`
	Seq     int64         `json:"seq"`
	Target  int64         `json:"target"`
	UserID  string        `json:"userId"`
	Name    string        `json:"name"`
	SentAt  string        `json:"sentAt"`
	Emoji   string        `json:"emoji,omitempty"`   // a reaction
	Removed bool          `json:"removed,omitempty"` // a reaction taken back
	State   *MessageEvent `json:"state,omitempty"`
	// ClientID, as in MessageEvent: to the user who made the change only.
	ClientID string `json:"clientId,omitempty"`
}

// changeTypes names the event of each kind of change.
var changeTypes = map[string]string{KindEdit: TypeEdit, KindDelete: TypeDelete, KindReact: TypeReaction}

// NewChangeEvent returns the event of the change c; target, when set, is
// the changed message's state to send with it.
func NewChangeEvent(c Message, target *Message) ChangeEvent {
	e := ChangeEvent{Type: changeTypes[c.Kind], Room: c.Room, Seq: c.Seq, Target: c.Target, UserID: c.UserID, Name: c.Name,
		SentAt: FormatTime(c.SentAt), Emoji: c.Emoji, Removed: c.Remove}
	if target != nil {
		t := MessageItem(*target)
		e.State = &t
	}
	return e
}

// Ack confirms to the sender that its message is stored, and where.
type Ack struct {
	Type     string `json:"type"`
	ClientID string `json:"clientId,omitempty"`
	ID       string `json:"id"`
	Seq      int64  `json:"seq"`
	UserID   string `json:"userId"`
	SentAt   string `json:"sentAt"`
	// Unchanged, for a reaction, says that it changed nothing (the user had
	// already reacted so, or had not, to take it back): no seq was taken.
	Unchanged bool `json:"unchanged,omitempty"`
}

// PresenceEvent is a join or leave event. Version orders the events of one
// name: a client keeps the state of the highest version it has seen.
type PresenceEvent struct {
	Type    string `json:"type"`
	Room    string `json:"room"`
	UserID  string `json:"userId"`
	Name    string `json:"name"`
	Version int64  `json:"version"`
	SentAt  string `json:"sentAt"`
	// PSeq numbers the room's joins and leaves 1, 2, 3…, so that a client
	// notices one it missed (0, omitted: the server could not number it).
	PSeq int64 `json:"pseq,omitempty"`
}

// PresenceLog answers a presence frame: the room's presence events after
// the one the client asked from, in order.
type PresenceLog struct {
	Type   string          `json:"type"`
	After  int64           `json:"after"`
	Events []PresenceEvent `json:"events"`
	// More says that more events follow than one reply holds: ask again
	// after the last one.
	More bool `json:"more"`
	// Live marks leaves the server sent together, unasked (not a reply to
	// a presence frame): clients apply them as live events.
	Live bool `json:"live,omitempty"`
}

// MembersPage answers a members frame: up to a page of the users online
// in the room, in the order of their user ids.
type MembersPage struct {
	Type    string   `json:"type"`
	Room    string   `json:"room"`
	Members []Member `json:"members"`
	// Next, when set, is the cursor of the next page: send it back.
	Next string `json:"next,omitempty"`
}

// RoomHeads answers a rooms frame: each room's latest seq, in the order
// asked, so that a client shows how many messages it has not seen there.
type RoomHeads struct {
	Type  string     `json:"type"`
	Rooms []RoomHead `json:"rooms"`
	// Mine, for a signed-in user, lists the private rooms they belong to
	// and their direct messages (at most MyRoomsPage), so that a page
	// lists them on any device.
	Mine []MyRoom `json:"mine,omitempty"`
}

// MyRoom is a private room its user belongs to; for direct messages,
// the other account and, once known, its name.
type MyRoom struct {
	Room     string `json:"room"`
	Peer     string `json:"peer,omitempty"`
	PeerName string `json:"peerName,omitempty"`
}

// MyRoomsPage is the most private rooms a rooms reply lists.
const MyRoomsPage = 50

// Roster answers a roster frame of a private room's member: its members
// with their roles, a page at a time (at most RosterPage).
type Roster struct {
	Type    string         `json:"type"`
	Room    string         `json:"room"`
	Members []RosterMember `json:"members"`
	Next    string         `json:"next,omitempty"`
	// Invitations, in the first page to a private room's owner: the
	// invitations by e-mail not yet used (at most InvitationsPage).
	Invitations []Invitation `json:"invitations,omitempty"`
}

// Invitation is an invitation by e-mail waiting to be claimed.
type Invitation struct {
	Email     string `json:"email"`
	Role      string `json:"role"`
	ExpiresAt string `json:"expiresAt"`
}

// InvitationsPage is the most invitations a roster reply lists.
const InvitationsPage = 50

// RosterMember is a member of a private room: the name they last
// connected with ("" before they first did), their role and, when muted,
// until when.
type RosterMember struct {
	UserID     string `json:"userId"`
	Name       string `json:"name,omitempty"`
	Role       string `json:"role"`
	MutedUntil string `json:"mutedUntil,omitempty"`
}

// RosterPage is the most members a roster reply holds.
const RosterPage = 100

// RoomHead is a room's latest seq (0: no message yet), under the name the
// client asked with.
type RoomHead struct {
	Room string `json:"room"`
	Seq  int64  `json:"seq"`
	// Mentions, when the client said what it has seen, counts the
	// messages above it that mention the user (at most 100).
	Mentions int64 `json:"mentions,omitempty"`
	// Unread, when the client said what it has seen, counts the messages
	// above it (not changes of messages, access changes or skipped seqs,
	// not the user's own, not deleted ones), among the first 100 seqs
	// above it; UnreadMore says more seqs remain uncounted.
	Unread     int64 `json:"unread,omitempty"`
	UnreadMore bool  `json:"unreadMore,omitempty"`
}

// AccessEvent answers an invite, a remove or a mute, and tells the room
// of it: the member's role in the private room now ("" once removed),
// and who changed it.
type AccessEvent struct {
	Type   string `json:"type"`
	Action string `json:"action"` // ActionInvite, ActionRemove, ActionMute or ActionBan
	Room   string `json:"room"`
	// Seq is its place in the room's order (a client counts it as held,
	// as a skipped seq); SentAt when it was stored.
	Seq    int64  `json:"seq"`
	UserID string `json:"userId"`
	Name   string `json:"name,omitempty"` // the member's name, when known
	// Email, in the reply to an invitation by e-mail (UserID ""): the
	// address, whose account becomes a member when it connects.
	Email string `json:"email,omitempty"`
	// Role is the member's role after the change: "" once removed (or a
	// ban lifted), RoleBanned once banned.
	Role string `json:"role"`
	// Was, for invite, remove and ban, is their role before ("" for none).
	Was string `json:"was,omitempty"`
	// MutedUntil, for mute: until when (absent: not muted).
	MutedUntil string `json:"mutedUntil,omitempty"`
	By         string `json:"by"`
	ByName     string `json:"byName,omitempty"`
	SentAt     string `json:"sentAt"`
}

// AuditEntry is one moderation action in a private room: who did what
// (an Action of the protocol: invite, remove, mute, ban, delete,
// invite-link) to whom or to which message, when. Role is the member's
// role after it (a lifted ban: ""); Until, for mute, the end of the mute,
// for invite-link, the link's.
type AuditEntry struct {
	By     string `json:"by"`
	Action string `json:"action"`
	UserID string `json:"userId,omitempty"`
	Email  string `json:"email,omitempty"`  // an invitation by e-mail
	Role   string `json:"role,omitempty"`   // invite, ban
	Target int64  `json:"target,omitempty"` // delete: the message removed
	Until  string `json:"until,omitempty"`  // mute, invite-link
	At     string `json:"at"`
}

// AuditLog answers an audit frame: the room's latest moderation actions,
// newest first (at most AuditPage).
type AuditLog struct {
	Type    string       `json:"type"`
	Room    string       `json:"room"`
	Entries []AuditEntry `json:"entries"`
	// Next, when older entries remain, is the cursor of the next page.
	Next string `json:"next,omitempty"`
}

// InviteLink answers an invite-link frame of a private room's owner: the
// token that lets whoever holds it join the room (the $connect query's
// invite) until ExpiresAt.
type InviteLink struct {
	Type      string `json:"type"`
	Room      string `json:"room"`
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt"`
}

// AuditPage is the most entries an audit reply holds.
const AuditPage = 50

// Typing tells the others in a room that someone is typing.
type Typing struct {
	Type   string `json:"type"`
	Room   string `json:"room"`
	UserID string `json:"userId"`
	Name   string `json:"name"`
}

// Member is a user online in a room; also the receiving connection's own
// identity (you) in a sync reply.
type Member struct {
	UserID string `json:"userId"`
	Name   string `json:"name"`
}

// Sync answers a sync frame.
type Sync struct {
	Type    string `json:"type"`
	Version int    `json:"version"` // ProtocolVersion
	Room    string `json:"room"`
	You     Member `json:"you"`
	// Role is the user's role in the room (absent without one).
	Role string `json:"role,omitempty"`
	// EditWindowMs is how long after sending it its author may edit a
	// message (the deployment's EditWindowHours); absent in a gap fetch's
	// reply.
	EditWindowMs int64 `json:"editWindowMs,omitempty"`
	// Seq is the room's latest seq when the reply was made.
	Seq int64 `json:"seq"`
	// PSeq is the room's latest presence event, read before Members and
	// Presence: they reflect it and every one before it.
	PSeq    int64    `json:"pseq"`
	Members []Member `json:"members"`
	// Online is how many users have a connection in the room. Large says
	// that they are too many to list (more than the server's listed room
	// size): Members and Presence are then empty, no join or leave is
	// sent, and the members frame lists them a page at a time.
	Online int64 `json:"online"`
	Large  bool  `json:"large,omitempty"`
	// Presence has the version of every user in Members. A user not in
	// Members has no connection in the room (as of PSeq): their state is
	// not sent, so that the reply stays small however many have come and
	// gone.
	Presence map[string]int64 `json:"presence"`
	Messages []MessageEvent   `json:"messages"`
	// Changes are the edits, deletes and reactions in the page's range;
	// Access the access changes (moderation actions) there.
	Changes []ChangeEvent `json:"changes,omitempty"`
	Access  []AccessEvent `json:"access,omitempty"`
	// Skipped lists the seqs in the page's range that hold no message: a
	// client counts them as held. Those of Changes are among them, so that
	// a client older than changes holds them too.
	Skipped []int64 `json:"skipped,omitempty"`
	// First, on a page asked for with after, says that every seq from
	// after+1 to First-1 holds nothing and never will (the room's expired
	// history, say): a client counts them as held too.
	First int64 `json:"first,omitempty"`
	More  bool  `json:"more"`
	// Before echoes the request's before, so that a client tells a page of
	// older history from the other pages it asked for.
	Before int64 `json:"before,omitempty"`
}

// Skip tells a room that a seq holds no message and never will (it was
// taken for a message that was not stored), so that nobody waits for it.
type Skip struct {
	Type string `json:"type"`
	Room string `json:"room"`
	Seq  int64  `json:"seq"`
}

// Pong answers a ping with the room's latest seq and presence event.
type Pong struct {
	Type   string `json:"type"`
	Seq    int64  `json:"seq"`
	PSeq   int64  `json:"pseq"`
	Online int64  `json:"online"`          // users with a connection in the room
	Large  bool   `json:"large,omitempty"` // too many to list (Sync.Large)
}

// Online tells a large room how many users are online, when the count has
// moved enough, and any room when it crosses the size above which its
// members are not listed (Large changes).
type Online struct {
	Type   string `json:"type"`
	Room   string `json:"room"`
	Online int64  `json:"online"`
	Large  bool   `json:"large"`
	// At orders the pushes (Unix ms): they come from concurrent
	// invocations, and a later one may arrive first.
	At int64 `json:"at"`
}

// ErrorEvent reports a frame the server could not accept.
type ErrorEvent struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Action is the refused frame's action, when it had a known one.
	Action   string `json:"action,omitempty"`
	ClientID string `json:"clientId,omitempty"`
	Frame    int64  `json:"frame,omitempty"`
	// RetryAfterMs, with rate_limited, is when to send the frame again.
	RetryAfterMs int64 `json:"retryAfterMs,omitempty"`
}

// NewMessageEvent returns the new-message event for m.
func NewMessageEvent(m Message) MessageEvent {
	e := MessageItem(m)
	e.Type = TypeNewMessage
	return e
}

// MessageItem returns m as an item of a sync reply; a reply's quote has
// only the answered seq (Quote fills it in).
func MessageItem(m Message) MessageEvent {
	e := MessageEvent{ID: m.ID, Seq: m.Seq, Room: m.Room, UserID: m.UserID, Name: m.Name, Text: m.Text, SentAt: FormatTime(m.SentAt),
		Mentions: m.Mentions, Deleted: m.Deleted, Reactions: m.Reactions, RemovedBy: m.RemovedBy}
	if m.Version > 1 {
		e.Version = m.Version
	}
	if !m.Edited.IsZero() {
		e.Edited = FormatTime(m.Edited)
	}
	if m.ReplyTo > 0 {
		e.ReplyTo = &Quote{Seq: m.ReplyTo}
	}
	return e
}

// NewAck returns the ack for m.
func NewAck(m Message) Ack {
	return Ack{Type: TypeAck, ClientID: m.ClientID, ID: m.ID, Seq: m.Seq, UserID: m.UserID, SentAt: FormatTime(m.SentAt)}
}

// NewPresenceEvent returns the join (p.Online) or leave event for p.
func NewPresenceEvent(room string, p Presence, at string) PresenceEvent {
	typ := TypeLeave
	if p.Online {
		typ = TypeJoin
	}
	return PresenceEvent{Type: typ, Room: room, UserID: p.UserID, Name: p.Name, Version: p.Version, SentAt: at}
}

// NewSync returns a sync reply for the connection c from the room's
// presence records, with no history yet (Add); members and messages are
// never null.
func NewSync(c Connection, seq int64, presence []Presence, more bool) Sync {
	s := Sync{Type: TypeSync, Version: ProtocolVersion, Room: c.Room, You: Member{UserID: c.UserID, Name: c.Name}, Seq: seq,
		Members: []Member{}, Presence: map[string]int64{}, More: more, Messages: []MessageEvent{}}
	for _, p := range presence {
		if p.Online {
			s.Presence[p.UserID] = p.Version
			s.Members = append(s.Members, Member{UserID: p.UserID, Name: p.Name})
		}
	}
	slices.SortFunc(s.Members, func(a, b Member) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.UserID, b.UserID)) })
	s.Online = int64(len(s.Members))
	return s
}

// SyncItem is one seq of a sync reply's history: a message, a change or
// an access change.
type SyncItem struct {
	Seq     int64
	Message *MessageEvent
	Change  *ChangeEvent
	Access  *AccessEvent
}

// SyncItems returns a page of history (items: messages and changes, in
// seq order) as the items of a sync reply to c: a reply quotes the message
// it answers, and a change carries the state of the message it changed,
// from the page itself or targets (the messages the page names, as they
// are now). The sender's own clientIds are included.
func SyncItems(c Connection, items, targets []Message) []SyncItem {
	now := make(map[int64]Message, len(items)+len(targets))
	inPage := make(map[int64]bool, len(items))
	for _, m := range slices.Concat(targets, items) {
		if m.Kind == "" {
			now[m.Seq] = m
		}
	}
	for _, m := range items {
		inPage[m.Seq] = true
	}
	out := make([]SyncItem, len(items))
	stated := map[int64]bool{} // a message's state goes once, with its newest change
	for i := len(items) - 1; i >= 0; i-- {
		m := items[i]
		out[i].Seq = m.Seq
		own := m.UserID == c.UserID
		if m.Kind == KindAccess {
			out[i].Access = m.Access
			continue
		}
		if m.Kind != "" {
			var target *Message
			if t, ok := now[m.Target]; ok && !inPage[m.Target] && !stated[m.Target] {
				target, stated[m.Target] = &t, true
			}
			e := NewChangeEvent(m, target)
			if own {
				e.ClientID = m.ClientID
			}
			out[i].Change = &e
			continue
		}
		e := MessageItem(m)
		if own {
			e.ClientID = m.ClientID
		}
		if q, ok := now[m.ReplyTo]; ok && m.ReplyTo > 0 {
			e.ReplyTo = NewQuote(q)
		}
		out[i].Message = &e
	}
	return out
}

// Slim returns the item without what a client can do without: who
// reacted (the counts stay) and the text of a reply's quote. A sync reply
// whose room leaves no space for its first item whole sends it so, so
// that every page moves on: a slim item is at most the longest text and a
// few hundred bytes.
func (it SyncItem) Slim() SyncItem {
	slim := func(e *MessageEvent) *MessageEvent {
		if e == nil {
			return nil
		}
		s := *e
		s.Reactions = make([]Reaction, len(e.Reactions))
		for i, r := range e.Reactions {
			s.Reactions[i] = Reaction{Emoji: r.Emoji, Count: r.Count, Users: []Member{}}
		}
		if e.ReplyTo != nil {
			s.ReplyTo = &Quote{Seq: e.ReplyTo.Seq, UserID: e.ReplyTo.UserID, Name: e.ReplyTo.Name, Deleted: e.ReplyTo.Deleted}
		}
		return &s
	}
	it.Message = slim(it.Message)
	if it.Change != nil {
		c := *it.Change
		c.State = slim(c.State)
		it.Change = &c
	}
	return it
}

// Add puts items into the reply: the seq of a change or an access change
// goes into Skipped too (a client older than them counts it as held).
func (s *Sync) Add(items []SyncItem) {
	for _, it := range items {
		switch {
		case it.Message != nil:
			s.Messages = append(s.Messages, *it.Message)
			continue
		case it.Access != nil:
			s.Access = append(s.Access, *it.Access)
		default:
			s.Changes = append(s.Changes, *it.Change)
		}
		s.Skipped = append(s.Skipped, it.Seq)
	}
	slices.Sort(s.Skipped)
}

// NewErrorEvent returns the error frame for err about the frame in.
func NewErrorEvent(err error, in Inbound) ErrorEvent {
	action := in.Action
	if !slices.Contains(Actions, action) {
		action = "" // not echoed: it may be anything
	}
	return ErrorEvent{Type: TypeError, Code: ErrorCode(err), Message: ErrorMessage(err), Action: action, ClientID: in.ClientID, Frame: in.Frame,
		RetryAfterMs: int64((RetryAfter(err) + time.Millisecond - 1) / time.Millisecond)} // rounded up
}

// Encode marshals a server frame.
func Encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}
