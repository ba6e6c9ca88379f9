package chat

import "time"

// Limits bound what a client may send and what the server returns. The zero
// value is not useful; start from DefaultLimits.
type Limits struct {
	MaxTextChars     int           // message text, after trimming
	MaxNameChars     int           // display name, after trimming
	MaxRoomChars     int           // room name
	MaxClientIDChars int           // client-chosen message id
	DefaultHistory   int           // sync page size when the client gives none
	MaxHistory       int           // largest sync page a client may ask for
	TypingInterval   time.Duration // at most one typing event per connection per interval
	MaxFrameBytes    int           // largest frame the server sends (API Gateway's 128 KB)
	// FrameWait is how long a numbered new-message frame waits for the
	// frame before it to be stored, after the last earlier frame was and
	// on top of the time the frame itself waited to be served (a loaded
	// gateway delays its predecessor as much); past it the frame is
	// out_of_order.
	FrameWait time.Duration
	// SkipAfter is how long a seq may hold no message once the seq above
	// it was taken: past it a reader declares it skipped (its writer
	// failed or is too slow, and takes another if it comes back).
	SkipAfter time.Duration
	// InvocationTimeout bounds how long an invocation runs (API Gateway
	// waits 29 s for an integration; the template's FunctionTimeout is at
	// most 29 s): a message stored longer ago than this is no longer being
	// broadcast by the invocation that stored it.
	InvocationTimeout time.Duration
	// PingInterval is how often a client pings, each time after a random
	// PingJitter more or less (so that clients that connected together do
	// not ping together). API Gateway closes a connection idle for 10
	// minutes, and a pong tells a client in a quiet room of a message it
	// missed: the interval is the longest a lost last message goes
	// unnoticed there (docs/protocol.md).
	PingInterval time.Duration
	PingJitter   float64
	// PingWhenWatched is how long, on average, a page someone is looking
	// at (visible) waits, having heard nothing, before it pings (from half
	// of it to one and a half times it, at random: WatchedPingDelay). With
	// the pong's deadline it bounds how long a silent socket (a laptop
	// asleep, a Wi-Fi hand-over) goes unnoticed by a person who only
	// reads. In a room where anything is said, no such ping goes.
	PingWhenWatched time.Duration
	// StaleAfter is longer than a ping's longest wait: a connection silent
	// for it is checked with API Gateway before it is listed as a member.
	StaleAfter time.Duration
	// PresencePage is the most presence events one presence reply holds,
	// MembersPage the most users one members reply lists.
	PresencePage int
	MembersPage  int
	// RoomsPage is the most rooms one rooms frame asks about.
	RoomsPage int
	// MaxMentions is the most users one message mentions.
	MaxMentions int
	// EditWindow is how long after it was sent its author may edit a
	// message (deleting it has no such limit).
	EditWindow time.Duration
	// ListedRoomSize is the most users online a room has for its members
	// to be listed and its joins and leaves told: above it a room shows a
	// count (online) and lists members on request (members).
	ListedRoomSize int
	// ShardSize is how many users online a room holds per shard of its
	// connections before their count doubles; a room of several shards
	// with at least this many online is fanned out a shard at a time
	// through the fan-out queue.
	ShardSize int
	// Messages limits each user's new-message frames (all their
	// connections together); Reads their sync, presence, members and ping frames.
	// An excess frame is refused with rate_limited.
	Messages Rate
	Reads    Rate
}

// QuietRoomSize is the most users online a room has for a sync to read
// it now and then to correct its count (twice ListedRoomSize): above it
// the count alone is kept, and a connection stored there claims no join
// on its first frame (Connection.QuietJoin).
func (l Limits) QuietRoomSize() int { return 2 * l.ListedRoomSize }

// DefaultLimits returns the limits docs/protocol.md documents.
func DefaultLimits() Limits {
	return Limits{
		MaxTextChars:      2000,
		MaxNameChars:      32,
		MaxRoomChars:      64,
		MaxClientIDChars:  64,
		DefaultHistory:    50,
		MaxHistory:        100,
		PresencePage:      100,
		MembersPage:       100,
		RoomsPage:         20,
		MaxMentions:       10,
		EditWindow:        24 * time.Hour,
		ListedRoomSize:    150,
		ShardSize:         1000,
		TypingInterval:    2 * time.Second,
		MaxFrameBytes:     128 * 1024,
		FrameWait:         2 * time.Second,
		SkipAfter:         5 * time.Second,
		InvocationTimeout: 30 * time.Second,
		PingInterval:      4 * time.Minute,
		PingJitter:        0.1,
		PingWhenWatched:   30 * time.Second,
		StaleAfter:        5 * time.Minute,
		Messages:          Rate{What: RateMessages, PerSecond: 5, Burst: 20},
		Reads:             Rate{What: RateReads, PerSecond: 2, Burst: 5},
	}
}

// Reactions are the emoji a message may be reacted to with: a fixed set,
// so that a message's reactions stay a bounded size.
var Reactions = []string{"👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"}

// MaxMuteMinutes bounds a mute: 30 days (a longer one is a removal).
const MaxMuteMinutes = 30 * 24 * 60

// MaxRoomsMade is how many rooms one account may make (private rooms, and
// public ones it claims; direct messages do not count), so that nobody
// fills the table with rooms. Rooms are never deleted: it is a lifetime
// count.
const MaxRoomsMade = 100

// MaxInviteLinkMinutes bounds how long an invite link lets people in: 30
// days.
const MaxInviteLinkMinutes = 30 * 24 * 60

// MaxReactors is how many of the users who reacted with one emoji a
// message lists by name (it counts them all).
const MaxReactors = 10

// MaxListedRoomSize bounds Limits.ListedRoomSize: a sync reply lists that
// many members with the longest user ids and names, and still has room
// for one item of history of the longest text, slim (SyncItem.Slim) if
// need be (a test checks), within MaxFrameBytes.
const MaxListedRoomSize = 300

// Rate is a rate limit on one kind of frame, per user: PerSecond on
// average, in bursts of up to Burst.
type Rate struct {
	What      string // the frames it limits: RateMessages or RateReads
	PerSecond float64
	Burst     int
}

// The kinds of frames with a rate limit of their own.
const (
	RateMessages = "messages"                                // new-message
	RateReads    = "sync, presence, members, rooms and ping" // the frames that read the room
)

// Interval is the time one token takes to come back.
func (r Rate) Interval() time.Duration { return time.Duration(float64(time.Second) / r.PerSecond) }

// Tolerance is how far ahead of now a bucket's theoretical arrival time
// may be for one more frame to pass: Burst-1 intervals.
func (r Rate) Tolerance() time.Duration { return time.Duration(r.Burst-1) * r.Interval() }

// Take applies the generic cell rate algorithm (a token bucket kept as one
// time) to a frame arriving at now, with tat the bucket's theoretical
// arrival time (zero for a full bucket). It returns the new tat if the
// frame may pass, else how long until it would.
func (r Rate) Take(tat, now time.Time) (next time.Time, wait time.Duration, ok bool) {
	if tat.Before(now) {
		tat = now
	}
	if over := tat.Sub(now) - r.Tolerance(); over > 0 {
		return tat, over, false
	}
	return tat.Add(r.Interval()), 0, true
}

// WatchedPingDelay is how long a visible page that has heard nothing waits
// before it pings: PingWhenWatched times 0.5 + r, r a random number in
// [0, 1). The spread is as wide as the average, so that a room's pages,
// all quiet since the same message, ping at an even rate: as many a
// second as if each pinged every PingWhenWatched, never in a wave.
func (l Limits) WatchedPingDelay(r float64) time.Duration {
	return time.Duration(float64(l.PingWhenWatched) * (0.5 + r))
}

// PingDelay is the wait before a ping: PingInterval, made up to PingJitter
// longer or shorter by r, a random number in [0, 1).
func (l Limits) PingDelay(r float64) time.Duration {
	return time.Duration(float64(l.PingInterval) * (1 + l.PingJitter*(2*r-1)))
}
