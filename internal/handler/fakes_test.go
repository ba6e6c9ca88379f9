package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/fanout"
)

// fakeFanout records every payload per recipient. Connections in gone
// answer 410 (to posts and probes).
type fakeFanout struct {
	mu        sync.Mutex
	got       map[string][]string // posted, and answered in a response (world.answer)
	posts     map[string]int
	gone      map[string]bool
	closed    []string
	probed    []string
	endpoints map[string]bool
	panicOn   string // a connection whose post panics
}

func newFakeFanout() *fakeFanout {
	return &fakeFanout{got: map[string][]string{}, posts: map[string]int{}, gone: map[string]bool{}, endpoints: map[string]bool{}}
}

func (f *fakeFanout) Send(_ context.Context, endpoint string, ids []string, payload []byte) fanout.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endpoints[endpoint] = true
	if f.panicOn != "" && slices.Contains(ids, f.panicOn) {
		panic("post to " + f.panicOn)
	}
	res := fanout.Result{Recipients: len(ids)}
	for _, id := range ids {
		if f.gone[id] {
			res.Gone = append(res.Gone, id)
			continue
		}
		f.got[id] = append(f.got[id], string(payload))
		f.posts[id]++
		res.Sent++
	}
	return res
}

func (f *fakeFanout) Probe(_ context.Context, _ string, ids []string) fanout.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probed = append(f.probed, ids...)
	res := fanout.Result{Recipients: len(ids)}
	for _, id := range ids {
		if f.gone[id] {
			res.Gone = append(res.Gone, id)
		} else {
			res.Sent++
		}
	}
	return res
}

func (f *fakeFanout) Close(_ context.Context, _ string, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = append(f.closed, id)
	f.gone[id] = true
	return nil
}

// failing wraps the real store and makes every call fail with err (or
// panic, when err is nil) once broken is set.
type failing struct {
	Connections
	Senders
	Messages
	err    error
	broken bool
}

func (f *failing) check() error {
	if !f.broken {
		return nil
	}
	if f.err == nil {
		panic("store exploded")
	}
	return f.err
}

func (f *failing) PutConnection(ctx context.Context, c chat.Connection) (chat.Presence, bool, error) {
	if err := f.check(); err != nil {
		return chat.Presence{}, false, err
	}
	return f.Connections.PutConnection(ctx, c)
}

func (f *failing) RemoveConnection(ctx context.Context, id string) (chat.Connection, chat.Presence, bool, error) {
	if err := f.check(); err != nil {
		return chat.Connection{}, chat.Presence{}, false, err
	}
	return f.Connections.RemoveConnection(ctx, id)
}

func (f *failing) ShardConnections(ctx context.Context, room string, shard int) ([]chat.Connection, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.Connections.ShardConnections(ctx, room, shard)
}

func (f *failing) Connection(ctx context.Context, id string) (chat.Connection, error) {
	if err := f.check(); err != nil {
		return chat.Connection{}, err
	}
	return f.Senders.Connection(ctx, id)
}

// counting counts the requests to the store that serving frames makes
// through Senders and Buckets.
type counting struct {
	Senders
	Buckets
	calls atomic.Int64
}

func (c *counting) Connection(ctx context.Context, id string) (chat.Connection, error) {
	c.calls.Add(1)
	return c.Senders.Connection(ctx, id)
}

func (c *counting) TakeToken(ctx context.Context, userID string, r chat.Rate, now, seen time.Time) (time.Time, time.Duration, error) {
	c.calls.Add(1)
	return c.Buckets.TakeToken(ctx, userID, r, now, seen)
}

func (c *counting) HoldFrames(ctx context.Context, id string, until time.Time) error {
	c.calls.Add(1)
	return c.Buckets.HoldFrames(ctx, id, until)
}

// fakeQueue keeps the fan-out jobs handed to it, and refuses them all
// while refuse is set.
type fakeQueue struct {
	mu     sync.Mutex
	jobs   []fanout.Job
	refuse bool
}

func (q *fakeQueue) Enqueue(_ context.Context, jobs []fanout.Job) ([]fanout.Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.refuse {
		return jobs, errors.New("queue unavailable")
	}
	q.jobs = append(q.jobs, jobs...)
	return nil, nil
}

// take returns and forgets the jobs, as SQS records.
func (q *fakeQueue) take(t *testing.T) events.SQSEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ev events.SQSEvent
	for i, j := range q.jobs {
		body, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint("m", i), Body: string(body)})
	}
	q.jobs = nil
	return ev
}

// gated holds every message-token take until gate is closed, counting
// those waiting and those made.
type gated struct {
	Buckets
	gate           chan struct{}
	waiting, takes atomic.Int64
}

func (g *gated) TakeToken(ctx context.Context, userID string, r chat.Rate, now, seen time.Time) (time.Time, time.Duration, error) {
	if r.What == chat.RateMessages {
		g.waiting.Add(1)
		<-g.gate
		g.takes.Add(1)
	}
	return g.Buckets.TakeToken(ctx, userID, r, now, seen)
}
