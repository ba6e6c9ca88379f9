package fanout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go/middleware"
)

// Poster is the Management API: post a frame to a connection, ask whether
// it is there, close it. *apigatewaymanagementapi.Client satisfies it.
type Poster interface {
	PostToConnection(ctx context.Context, in *apigatewaymanagementapi.PostToConnectionInput,
		opts ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error)
	GetConnection(ctx context.Context, in *apigatewaymanagementapi.GetConnectionInput,
		opts ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.GetConnectionOutput, error)
	DeleteConnection(ctx context.Context, in *apigatewaymanagementapi.DeleteConnectionInput,
		opts ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.DeleteConnectionOutput, error)
}

// Result counts what happened to one broadcast.
type Result struct {
	Recipients int
	Sent       int
	Gone       []string // connection ids that answered 410: closed or never there
	Throttled  int      // still throttled when the budget ran out: LimitExceededException (rate, or the client's buffer is full)
	Failed     int      // any other error, timeouts and 5xx included, after retries
	Retries    int      // posts tried again after a 429, a 5xx or a timeout
	Duration   time.Duration
}

// LogValue makes a Result one structured group in a log line.
func (r Result) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("recipients", r.Recipients), slog.Int("sent", r.Sent), slog.Int("gone", len(r.Gone)),
		slog.Int("throttled", r.Throttled), slog.Int("failed", r.Failed), slog.Int("retries", r.Retries),
		slog.Float64("durationMs", float64(r.Duration.Microseconds())/1000))
}

// Sender posts to many connections at once. Use New; a Sender is safe for
// concurrent use.
type Sender struct {
	newPoster   func(endpoint string) Poster
	concurrency int
	timeout     time.Duration
	budget      time.Duration
	log         *slog.Logger

	// kept runs the posting goroutines, kept between broadcasts: a new
	// goroutine's stack grows through the SDK's middleware on its first
	// post (docs/benchmarks.md §13), a kept one's has grown.
	kept goroutines

	mu      sync.Mutex
	posters map[string]Poster // one per Management API endpoint
}

// Options configure a Sender.
type Options struct {
	// Concurrency bounds the posts in flight per Send (default 64).
	Concurrency int
	// Timeout bounds each attempt of a post (default 3s).
	Timeout time.Duration
	// Budget bounds one Send, retries included (default 10s, well under
	// API Gateway's 29 s integration timeout). A throttled, failed or timed
	// out post is tried again, after a jittered backoff, while it lasts.
	Budget time.Duration
	// Log receives one line per post that failed for good (default: discard).
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
	if o.Budget <= 0 {
		o.Budget = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Sender{newPoster: newPoster, concurrency: o.Concurrency, timeout: o.Timeout, budget: o.Budget, log: o.Log,
		kept: goroutines{work: make(chan func())}, posters: map[string]Poster{}}
}

// goroutines runs functions on goroutines that wait for the next one for
// keepIdle after each: no bound on how many (each Send bounds its own).
type goroutines struct{ work chan func() }

// keepIdle is how long a kept goroutine waits for work before it ends.
const keepIdle = 10 * time.Second

// Go runs f on a kept goroutine that is waiting, or on a new one.
func (g goroutines) Go(f func()) {
	select {
	case g.work <- f:
	default:
		go g.keep(f)
	}
}

func (g goroutines) keep(f func()) {
	idle := time.NewTimer(keepIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(keepIdle)
		select {
		case f = <-g.work:
		case <-idle.C:
			return
		}
	}
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

// ClientOptions makes a Management API client fit for the fan-out: the
// client tries each call once (the Sender retries, within its budget: one
// retry layer), and the per-call steps a post does not need are left out
// of its middleware stack: an invocation id, the user agent, the tracing
// header from the environment, the retry loop and the response metadata
// kept for it. What is left serialises, resolves the endpoint, signs
// (SigV4) and sends. Each call builds its stack anew, so every step left
// out is saved on every post.
func ClientOptions(o *apigatewaymanagementapi.Options) {
	o.RetryMaxAttempts = 1
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		for _, id := range []string{"ClientRequestID", "UserAgent", "RecursionDetection"} {
			if _, err := s.Build.Remove(id); err != nil {
				return fmt.Errorf("trim the Management API client: %w", err)
			}
		}
		for _, id := range []string{"Retry", "InterceptBeforeRetryLoop", "InterceptAttempt"} {
			if _, err := s.Finalize.Remove(id); err != nil {
				return fmt.Errorf("trim the Management API client: %w", err)
			}
		}
		for _, id := range []string{"AddRawResponseToMetadata", "RecordResponseTiming", "RequestResponseLogger"} {
			if _, err := s.Deserialize.Remove(id); err != nil {
				return fmt.Errorf("trim the Management API client: %w", err)
			}
		}
		return nil
	})
}

// Send posts payload to every connection in ids through the Management API
// at endpoint, with at most Concurrency posts in flight, and returns what
// happened. It never fails as a whole: each connection's outcome is counted.
func (s *Sender) Send(ctx context.Context, endpoint string, ids []string, payload []byte) Result {
	p := s.poster(endpoint)
	// Every post signs the same payload: its SHA-256 once, not per post.
	sum := sha256.Sum256(payload)
	ctx = v4.SetPayloadHash(ctx, hex.EncodeToString(sum[:]))
	return s.each(ctx, ids, func(ctx context.Context, id string) error {
		_, err := p.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: payload})
		return err
	})
}

// Probe asks API Gateway whether each connection in ids is still there
// (GET @connections/{id}): Sent counts those that are, Gone lists those
// that are not.
func (s *Sender) Probe(ctx context.Context, endpoint string, ids []string) Result {
	p := s.poster(endpoint)
	return s.each(ctx, ids, func(ctx context.Context, id string) error {
		_, err := p.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &id})
		return err
	})
}

// Close closes a connection (DELETE @connections/{id}); one already gone is
// not an error.
func (s *Sender) Close(ctx context.Context, endpoint, id string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.poster(endpoint).DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: &id})
	if _, ok := errors.AsType[*types.GoneException](err); ok {
		return nil
	}
	if err != nil {
		return fmt.Errorf("close connection %s: %w", id, err)
	}
	return nil
}

// each runs call for every id, bounded and within the budget, and counts.
func (s *Sender) each(ctx context.Context, ids []string, call func(ctx context.Context, id string) error) Result {
	start := time.Now()
	res := Result{Recipients: len(ids)}
	if len(ids) == 0 {
		return res
	}
	deadline := start.Add(s.budget)
	workers := min(s.concurrency, len(ids))
	next := make(chan string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		s.run(&wg, func() {
			for id := range next {
				o, retries := s.try(ctx, id, deadline, call)
				mu.Lock()
				res.Retries += retries
				switch o {
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

// run runs f on one of s's kept goroutines, counted in wg.
func (s *Sender) run(wg *sync.WaitGroup, f func()) {
	wg.Add(1)
	s.kept.Go(func() {
		defer wg.Done()
		f()
	})
}

type outcome int

const (
	failed outcome = iota
	sent
	gone
	throttled
)

// Backoff between attempts: a random wait up to backoffBase doubling per
// attempt, capped ("full jitter").
const (
	backoffBase = 50 * time.Millisecond
	backoffCap  = 2 * time.Second
)

// try makes one post, trying again after throttling, a 5xx or a timeout
// while the deadline allows.
func (s *Sender) try(ctx context.Context, id string, deadline time.Time, call func(ctx context.Context, id string) error) (o outcome, retries int) {
	for attempt := 0; ; attempt++ {
		o, retry, err := s.attempt(ctx, id, call)
		if !retry {
			return o, retries
		}
		wait := time.Duration(rand.Int64N(int64(min(backoffCap, backoffBase<<min(attempt, 6))))) + time.Millisecond
		if time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			s.log.WarnContext(ctx, "post failed", "connectionId", id, "attempts", attempt+1, "err", err)
			return o, retries
		}
		retries++
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
}

// attempt makes one call and classifies its outcome; retry says whether
// trying again may succeed.
func (s *Sender) attempt(ctx context.Context, id string, call func(ctx context.Context, id string) error) (o outcome, retry bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "post panicked", "connectionId", id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			o, retry = failed, false
		}
	}()
	actx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err = call(actx, id)
	switch {
	case err == nil:
		return sent, false, nil
	case isType[*types.GoneException](err):
		return gone, false, err
	case isType[*types.LimitExceededException](err) || status(err) == http.StatusTooManyRequests:
		return throttled, true, err
	case status(err) >= 500:
		return failed, true, err
	case actx.Err() != nil && ctx.Err() == nil: // this attempt timed out
		return failed, true, err
	}
	return failed, false, err
}

func isType[T error](err error) bool {
	_, ok := errors.AsType[T](err)
	return ok
}

// status returns the HTTP status of an AWS error response, 0 if none.
func status(err error) int {
	if re, ok := errors.AsType[interface {
		error
		HTTPStatusCode() int
	}](err); ok {
		return re.HTTPStatusCode()
	}
	return 0
}
