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
	// frame before it to be stored; past it the frame is out_of_order.
	FrameWait time.Duration
	// PingInterval is how often clients ping; a connection silent for
	// StaleAfter is checked with API Gateway before it is listed as a member.
	PingInterval time.Duration
	StaleAfter   time.Duration
}

// DefaultLimits returns the limits docs/protocol.md documents.
func DefaultLimits() Limits {
	return Limits{
		MaxTextChars:     2000,
		MaxNameChars:     32,
		MaxRoomChars:     64,
		MaxClientIDChars: 64,
		DefaultHistory:   50,
		MaxHistory:       100,
		TypingInterval:   2 * time.Second,
		MaxFrameBytes:    128 * 1024,
		FrameWait:        5 * time.Second,
		PingInterval:     25 * time.Second,
		StaleAfter:       60 * time.Second,
	}
}
