package chat

import (
	"errors"
	"time"

	"github.com/oklog/ulid/v2"
)

// TimeFormat is how the protocol writes times: RFC 3339, UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// FormatTime formats t for a frame's sentAt.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// NewID returns a new message id: a ULID, which sorts by the time t it
// carries (to the millisecond) and, within one process, by creation order.
// Ids name messages; their order in a room is Seq, not the id.
func NewID(t time.Time) string {
	return ulid.MustNew(ulid.Timestamp(t), ulid.DefaultEntropy()).String()
}

// ValidID reports whether s is a message id as NewID makes them.
func ValidID(s string) bool {
	_, err := ulid.ParseStrict(s)
	return err == nil
}

// Message is one stored chat message.
type Message struct {
	ID string
	// Seq is the message's place in its room: 1, 2, 3… in the order the
	// seqs were taken. A seq taken and never used for a message is
	// skipped (Page.Skipped), so that nobody waits for it.
	Seq      int64
	Room     string
	UserID   string // the sender
	Name     string // the sender's display name when it sent
	Text     string
	SentAt   time.Time
	ClientID string // empty when the client gave none
	// Kind is "" for a message, else the change of the message at Target
	// that this seq holds: KindEdit (Text is the new text), KindDelete or
	// KindReact (Emoji added, or with Remove taken back).
	Kind   string
	Target int64
	Emoji  string
	Remove bool
	// ReplyTo is the seq of the message this one answers (0: none);
	// Mentions the user ids it mentions.
	ReplyTo  int64
	Mentions []string
	// A message's state as read. Version counts its changes: 1 as sent, one
	// more for each edit, delete or reaction, so that of two states of a
	// message the one with the higher version is the later. Edited is when
	// its text last changed (zero: never); Deleted says its author took it
	// back (Text is empty); Reactions are its reactions, in the order of
	// Reactions.
	Version   int64
	Edited    time.Time
	Deleted   bool
	Reactions []Reaction
	// RemovedBy, on a deleted message, is the moderator who removed it
	// ("" when its author deleted it). On a delete being stored, it names
	// the moderator deleting someone else's message.
	RemovedBy string
	// Audit, on a moderator's delete being stored, is its entry in the
	// room's audit log, written in the same transaction.
	Audit *AuditEntry
	// Access, for KindAccess, is the change of a member's access that the
	// seq holds (a moderation action, in the room's order).
	Access *AccessEvent
}

// What a seq holds besides a message: a change of an earlier message.
const (
	KindEdit   = "edit"
	KindDelete = "delete"
	KindReact  = "react"
	// KindAccess is a member added, removed, muted or banned: no message
	// changes (Target is 0).
	KindAccess = "access"
)

// KindOf returns the kind of change a write action stores ("" for
// new-message).
func KindOf(action string) string {
	switch action {
	case ActionEdit:
		return KindEdit
	case ActionDelete:
		return KindDelete
	case ActionReact:
		return KindReact
	}
	return ""
}

// Reaction is how many users reacted to a message with one emoji, and up
// to MaxReactors of them.
type Reaction struct {
	Emoji string   `json:"emoji"`
	Count int64    `json:"count"`
	Users []Member `json:"users"`
}

// Stored is what storing a message did.
type Stored struct {
	// Message is the stored message, or the original of a duplicate.
	Message   Message
	Duplicate bool
	// Skipped lists the seqs taken for it and not used that now hold a
	// tombstone it wrote (a seq whose tombstone could not be written is
	// declared by readers later).
	Skipped []int64
	// Failed counts the conditional writes that failed and the
	// transactions that conflicted on the way: contention.
	Failed int
	// For a change: Target is the changed message's state right after it;
	// Unchanged says that the change changed nothing (a reaction the user
	// had already made, or had not made to take back) and took no seq.
	Target    Message
	TargetErr error // why Target could not be read (the change is stored all the same)
	Unchanged bool
	// Answered, for a reply, is the message it answers, as read before it
	// was stored.
	Answered Message
}

// Page is one page of a room's history.
type Page struct {
	// Messages are the messages and changes (Kind) of the page, oldest
	// first: every seq in its range that holds one.
	Messages []Message
	// Targets are the current states of the messages that the page's
	// changes change and its replies answer, when they are not in the
	// page themselves.
	Targets []Message
	// Skipped lists the seqs in the page's range that hold no message and
	// never will, oldest first.
	Skipped []int64
	// More says whether the range asked for holds more than the page.
	More bool
	// Latest is the room's latest seq, read before the page.
	Latest int64
	// First, when set, is where a forward page starts because every seq
	// from the one asked for up to First-1 holds nothing and never will
	// (expired, or taken and never stored): more than a page of them, so
	// they are not listed in Skipped one by one.
	First int64
}

// PresenceHead is what a room's presence log head holds: the number of
// its latest join or leave, how many users are online, and the count last
// pushed to the room (an online event) and when.
type PresenceHead struct {
	PSeq int64
	// Online is the count as stored: a write that failed or was repeated
	// may have left it off, even below 0, until a sync corrects it; shown
	// to clients as at least 0.
	Online       int64
	PushedOnline int64
	PushedAt     time.Time // zero: never
	// Shards is how many shards a reader reads to find the room's
	// connections (at least 1): those they are placed in now and, for a
	// while after the room emptied and the count shrank, the count before.
	Shards int
	// ToldAt is when the room was last told its joins and leaves at once
	// or by a flush (zero: never), FlushDue when the flush of those held
	// back since is due (zero: none pending), and FlushedTo the number up
	// to which it was told every one (docs/storage.md "Presence in bursts").
	ToldAt, FlushDue time.Time
	FlushedTo        int64
	// RecountedAt is when a sync last read the room to correct its count,
	// in a room too large to list (zero: never).
	RecountedAt time.Time
}

// ErrNoConnection is returned for a connection that is not stored, or no
// longer live.
var ErrNoConnection = errors.New("no such connection")

// Connection is one open WebSocket in a room.
type Connection struct {
	ID          string
	Room        string
	Shard       int // which shard of the room's connections it is in
	UserID      string
	Name        string
	ConnectedAt time.Time
	// Frame is the number of the last new-message frame stored from this
	// connection (0 before the first); the next must be Frame+1.
	Frame int64
	// SeenAt is when the connection last showed it was alive (its connect
	// or its latest ping).
	SeenAt time.Time
	// JoinCheck: the connection has yet to find out whether the room has
	// been told of its user, and tell it if not (set when it is stored;
	// its first frame claims the join, and clears it whether or not the
	// join was its to tell: it goes out once, whichever of the user's
	// connections gets there first).
	JoinCheck bool
	// QuietJoin: the connection was stored in a room with more than
	// Limits.QuietRoomSize users online, whose joins are not told. It
	// claims its user's join as JoinCheck would, but only on a sync or
	// ping that finds the room listed (emptied since): in a room that
	// stays large, its first frame writes nothing for it.
	QuietJoin bool
	// MutedUntil: a moderator muted the user in this room; their writes
	// are refused until then. Role is the user's role there as $connect
	// read it ("" for none): a full sync's reply says it.
	MutedUntil time.Time
	Role       string
	// TokenExpires, for a signed-in connection, is when the token that
	// opened it expires: from then on it is treated as gone (zero: never).
	TokenExpires time.Time
	// HeldUntil: a new-message frame of this connection was refused for
	// its user's rate limit, and the frames after it cannot be stored
	// before then (zero: none was).
	HeldUntil time.Time
}

// Presence is what a room knows of one user: whether they have a
// connection there and the version of that fact. Every change of a user's
// presence gets a higher version, so clients can tell which of two events
// is newer.
type Presence struct {
	UserID  string
	Name    string // the name of their latest connection
	Online  bool
	Version int64
	Conns   []string // the ids of their connections in the room
	// Shown says that the room was last told this user joined: a join
	// went out and no leave since.
	Shown bool
}
