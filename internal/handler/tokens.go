package handler

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// TokenMemory is what a warm instance remembers of the rate-limit buckets
// it has taken tokens from: per connection and bucket, the latest time it
// saw on the bucket of the connection's user (and until when it recorded
// the connection's frames held behind a refused one). A bucket's time only grows
// (chat.Rate.Take), so what is remembered is never ahead of the truth: a
// frame it shows over the limit is over the limit, and is refused without
// a request to DynamoDB (a flood stays off the table); anything else is
// asked of DynamoDB, with the remembered time as a hint of which update
// fits. Other instances keep memories of their own; none is needed for
// correctness. The zero value and nil remember nothing.
type TokenMemory struct {
	seen *lru.Cache[tokenKey, time.Time]
}

type tokenKey struct{ conn, bucket string }

// heldKey is where a connection's HoldFrames time is remembered.
const heldKey = "held"

// NewTokenMemory returns a memory of at most size connections' buckets;
// the least recently used are forgotten first.
func NewTokenMemory(size int) *TokenMemory {
	c, _ := lru.New[tokenKey, time.Time](max(size, 1)) // only a size below 1 fails
	return &TokenMemory{seen: c}
}

// get returns the latest time seen on a connection's bucket (zero: none).
func (m *TokenMemory) get(conn, bucket string) time.Time {
	if m == nil || m.seen == nil {
		return time.Time{}
	}
	t, _ := m.seen.Get(tokenKey{conn, bucket})
	return t
}

// note records a time seen on a connection's bucket, unless a later one
// is remembered.
func (m *TokenMemory) note(conn, bucket string, tat time.Time) {
	if m == nil || m.seen == nil || tat.IsZero() {
		return
	}
	k := tokenKey{conn, bucket}
	if t, ok := m.seen.Peek(k); !ok || tat.After(t) {
		m.seen.Add(k, tat)
	}
}

// held returns until when this instance last recorded a connection's
// frames held (Buckets.HoldFrames); zero: never.
func (m *TokenMemory) held(conn string) time.Time { return m.get(conn, heldKey) }

// noteHeld remembers that a connection's frames were recorded held until t.
func (m *TokenMemory) noteHeld(conn string, t time.Time) { m.note(conn, heldKey, t) }
