package handler

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// TokenMemory is what a warm instance remembers of the connections whose
// frames it served: the latest time it saw on each rate-limit bucket of
// the connection's user, the connection's last stored frame, and until
// when it recorded the connection's frames held behind a refused one.
//
// A bucket's time only grows (chat.Rate.Take), and so does a frame
// number, so what is remembered is never ahead of the truth: a frame it
// shows over the limit is over the limit, and is refused without a
// request to DynamoDB (a flood stays off the table); anything else is
// asked of DynamoDB, with the remembered time as a hint of which update
// fits. Other instances keep memories of their own; none is needed for
// correctness. A nil memory remembers nothing.
//
// It also counts the frames of each connection this instance is serving
// that may still take a token (from the memory check to their token
// taken or refused): more of them at once than a bucket holds cannot all
// get one, so the ones past it are refused without a request, before the
// first of them has learnt from DynamoDB that the bucket is empty (a
// flood let through by the stage arrives all at once). A client keeping
// fewer frames unanswered than the burst meets it only with copies of
// frames it sent again while the first ones still wait for their turn.
type TokenMemory struct {
	mu     sync.Mutex
	conns  *simplelru.LRU[string, connMemory]
	taking map[takingKey]int // frames that may still take a token
}

type takingKey struct{ conn, what string }

type connMemory struct {
	messages, reads time.Time // the buckets' times (chat.Rate.What)
	held            time.Time
	frame           int64
}

// bucket returns where c keeps the time of r's bucket.
func (c *connMemory) bucket(r chat.Rate) *time.Time {
	if r.What == chat.RateReads {
		return &c.reads
	}
	return &c.messages
}

// NewTokenMemory returns a memory of at most size connections; the least
// recently used are forgotten first.
func NewTokenMemory(size int) *TokenMemory {
	c, _ := simplelru.NewLRU[string, connMemory](max(size, 1), nil) // only a size below 1 fails
	return &TokenMemory{conns: c, taking: map[takingKey]int{}}
}

// enter counts one more frame of a connection that may take a token of r,
// and returns how many there are, this one included, and the function
// that counts it out.
func (m *TokenMemory) enter(conn string, r chat.Rate) (n int, leave func()) {
	if m == nil {
		return 1, func() {}
	}
	k := takingKey{conn, r.What}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.taking[k]++
	return m.taking[k], func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.taking[k]--; m.taking[k] <= 0 {
			delete(m.taking, k)
		}
	}
}

// get returns what is remembered of a connection (the zero value: nothing).
func (m *TokenMemory) get(conn string) connMemory {
	if m == nil {
		return connMemory{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, _ := m.conns.Get(conn)
	return c
}

// update changes what is remembered of a connection.
func (m *TokenMemory) update(conn string, change func(c *connMemory)) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, _ := m.conns.Get(conn)
	change(&c)
	m.conns.Add(conn, c)
}

// tat returns the latest time seen on a connection's bucket for r (zero:
// none).
func (m *TokenMemory) tat(conn string, r chat.Rate) time.Time {
	c := m.get(conn)
	return *c.bucket(r)
}

// noteTat remembers a time seen on a connection's bucket for r, unless a
// later one is remembered.
func (m *TokenMemory) noteTat(conn string, r chat.Rate, tat time.Time) {
	m.update(conn, func(c *connMemory) {
		if b := c.bucket(r); tat.After(*b) {
			*b = tat
		}
	})
}

// noteFrame remembers a connection's last stored frame.
func (m *TokenMemory) noteFrame(conn string, frame int64) {
	m.update(conn, func(c *connMemory) { c.frame = max(c.frame, frame) })
}

// noteHeld remembers that a connection's frames were recorded held until t.
func (m *TokenMemory) noteHeld(conn string, t time.Time) {
	m.update(conn, func(c *connMemory) { c.held = t })
}
