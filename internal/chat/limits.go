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
	}
}
