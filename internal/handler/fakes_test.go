package handler

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/fanout"
)

// fakeFanout records every payload per recipient. Connections in gone
// answer 410.
type fakeFanout struct {
	mu        sync.Mutex
	got       map[string][]string
	gone      map[string]bool
	endpoints map[string]bool
}

func newFakeFanout() *fakeFanout {
	return &fakeFanout{got: map[string][]string{}, gone: map[string]bool{}, endpoints: map[string]bool{}}
}

func (f *fakeFanout) Send(_ context.Context, endpoint string, ids []string, payload []byte) fanout.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endpoints[endpoint] = true
	res := fanout.Result{Recipients: len(ids)}
	for _, id := range ids {
		if f.gone[id] {
			res.Gone = append(res.Gone, id)
			continue
		}
		f.got[id] = append(f.got[id], string(payload))
		res.Sent++
	}
	return res
}

// memStore is an in-memory Connections and Messages for the unit tests;
// the same tests run against the real store on DynamoDB Local.
type memStore struct {
	mu     sync.Mutex
	conns  map[string]chat.Connection
	typing map[string]time.Time
	msgs   []chat.Message
	fail   error // returned by every call when set
	panic  bool  // every call panics when set
}

func newMemStore() *memStore {
	return &memStore{conns: map[string]chat.Connection{}, typing: map[string]time.Time{}}
}

func (m *memStore) check() error {
	if m.panic {
		panic("store exploded")
	}
	return m.fail
}

func (m *memStore) count(room, name string) int {
	n := 0
	for _, c := range m.conns {
		if c.Room == room && c.Name == name {
			n++
		}
	}
	return n
}

func (m *memStore) PutConnection(_ context.Context, c chat.Connection) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return false, err
	}
	if _, ok := m.conns[c.ID]; ok {
		return false, nil
	}
	m.conns[c.ID] = c
	return m.count(c.Room, c.Name) == 1, nil
}

func (m *memStore) RemoveConnection(_ context.Context, id string) (chat.Connection, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return chat.Connection{}, false, err
	}
	c, ok := m.conns[id]
	if !ok {
		return c, false, chat.ErrNoConnection
	}
	delete(m.conns, id)
	return c, m.count(c.Room, c.Name) == 0, nil
}

func (m *memStore) Connection(_ context.Context, id string) (chat.Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return chat.Connection{}, err
	}
	c, ok := m.conns[id]
	if !ok {
		return c, chat.ErrNoConnection
	}
	return c, nil
}

func (m *memStore) RoomConnections(_ context.Context, room string) ([]chat.Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	var out []chat.Connection
	for _, c := range m.conns {
		if c.Room == room {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b chat.Connection) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (m *memStore) AllowTyping(_ context.Context, id string, now time.Time, interval time.Duration) (chat.Connection, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return chat.Connection{}, false, err
	}
	c, ok := m.conns[id]
	if !ok {
		return c, false, chat.ErrNoConnection
	}
	if last, ok := m.typing[id]; ok && now.Sub(last) < interval {
		return c, false, nil
	}
	m.typing[id] = now
	return c, true, nil
}

func (m *memStore) PutMessage(_ context.Context, msg chat.Message) (chat.Message, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return msg, false, err
	}
	for _, old := range m.msgs {
		if msg.ClientID != "" && old.Room == msg.Room && old.ClientID == msg.ClientID {
			return old, true, nil
		}
	}
	m.msgs = append(m.msgs, msg)
	return msg, false, nil
}

func (m *memStore) History(_ context.Context, room, after string, limit int) ([]chat.Message, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, false, err
	}
	var in []chat.Message
	for _, msg := range m.msgs {
		if msg.Room == room && msg.ID > after {
			in = append(in, msg)
		}
	}
	if len(in) <= limit {
		return in, false, nil
	}
	if after != "" {
		return in[:limit], true, nil
	}
	return in[len(in)-limit:], true, nil
}
