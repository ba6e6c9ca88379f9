package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
)

// Poster posts one frame to one connection. *apigatewaymanagementapi.Client
// satisfies it.
type Poster interface {
	PostToConnection(ctx context.Context, in *apigatewaymanagementapi.PostToConnectionInput,
		opts ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error)
}

// Result counts what happened to one broadcast.
type Result struct {
	Recipients int
	Sent       int
	Gone       []string // connection ids that answered 410: closed or never there
	Throttled  int      // LimitExceededException: rate limit, or the client's buffer is full
	Failed     int      // any other error, timeouts included
	Duration   time.Duration
}

// LogValue makes a Result one structured group in a log line.
func (r Result) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("recipients", r.Recipients), slog.Int("sent", r.Sent), slog.Int("gone", len(r.Gone)),
		slog.Int("throttled", r.Throttled), slog.Int("failed", r.Failed),
		slog.Float64("durationMs", float64(r.Duration.Microseconds())/1000))
}

// Sender posts to many connections at once. Use New; a Sender is safe for
// concurrent use.
type Sender struct {
	newPoster   func(endpoint string) Poster
	concurrency int
	timeout     time.Duration
	log         *slog.Logger

	mu      sync.Mutex
	posters map[string]Poster // one per Management API endpoint
}

// Options configure a Sender.
type Options struct {
	// Concurrency bounds the posts in flight per Send (default 64).
	Concurrency int
	// Timeout bounds each post, retries included (default 3s).
	Timeout time.Duration
	// Log receives one line per failed post (default: discard).
	Log *slog.Logger
}

// New returns a Sender that gets a Poster for each Management API endpoint
// from newPoster, once, and reuses it.
func New(newPoster func(endpoint string) Poster, o Options) *Sender {
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Sender{newPoster: newPoster, concurrency: o.Concurrency, timeout: o.Timeout, log: o.Log,
		posters: map[string]Poster{}}
}

func (s *Sender) poster(endpoint string) Poster {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.posters[endpoint]
	if !ok {
		p = s.newPoster(endpoint)
		s.posters[endpoint] = p
	}
	return p
}

// Send posts payload to every connection in ids through the Management API
// at endpoint, with at most Concurrency posts in flight, and returns what
// happened. It never fails as a whole: each connection's outcome is counted.
func (s *Sender) Send(ctx context.Context, endpoint string, ids []string, payload []byte) Result {
	start := time.Now()
	res := Result{Recipients: len(ids)}
	if len(ids) == 0 {
		return res
	}
	p := s.poster(endpoint)
	workers := min(s.concurrency, len(ids))
	next := make(chan string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range next {
				outcome := s.post(ctx, p, id, payload)
				mu.Lock()
				switch outcome {
				case sent:
					res.Sent++
				case gone:
					res.Gone = append(res.Gone, id)
				case throttled:
					res.Throttled++
				default:
					res.Failed++
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	res.Duration = time.Since(start)
	return res
}

type outcome int

const (
	failed outcome = iota
	sent
	gone
	throttled
)

func (s *Sender) post(ctx context.Context, p Poster, id string, payload []byte) (o outcome) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("post panicked", "connectionId", id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			o = failed
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := p.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: payload})
	if err == nil {
		return sent
	}
	if _, ok := errors.AsType[*types.GoneException](err); ok {
		return gone
	}
	if _, ok := errors.AsType[*types.LimitExceededException](err); ok {
		s.log.Warn("post throttled", "connectionId", id, "err", err)
		return throttled
	}
	s.log.Warn("post failed", "connectionId", id, "err", err)
	return failed
}
