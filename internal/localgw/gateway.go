package localgw

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// Invoker runs a function with an event and returns its response.
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte) ([]byte, error)
}

// Limits are API Gateway's quotas for WebSocket APIs; DefaultLimits has
// AWS's values.
type Limits struct {
	MaxMessageBytes    int64         // 128 KB: larger messages close the socket with 1009
	IdleTimeout        time.Duration // 10 minutes without a frame either way
	MaxConnection      time.Duration // 2 hours
	IntegrationTimeout time.Duration // 29 seconds
	// DisconnectDelay is how long after a socket ends its $disconnect is
	// invoked. AWS delivers $disconnect on a best-effort basis, sometimes
	// late; a delay lets tests exercise the 410 path that covers for it.
	DisconnectDelay time.Duration
	// ThrottlingRateLimit and ThrottlingBurstLimit are the stage's route
	// throttling (a token bucket shared by every connection, as in AWS):
	// requests over it are refused with "Too Many Requests" and never reach
	// an integration. 0 turns throttling off.
	ThrottlingRateLimit  float64
	ThrottlingBurstLimit int
	// MaxInFlight bounds the integrations running at once (AWS's is the
	// account's Lambda concurrency, 1,000 by default); a frame beyond it
	// waits to be read, so that memory stays flat under a flood.
	MaxInFlight int
	// CallbackRateLimit and CallbackBurstLimit are the account's request
	// throttle for the Region as it applies to @connections calls (10,000
	// a second, 5,000 at once by default, shared in AWS with every API of
	// the account): a call over it is answered 429 LimitExceededException.
	// 0 turns it off.
	CallbackRateLimit  float64
	CallbackBurstLimit int
	// NewConnectionRateLimit is the account's quota of new connections a
	// second in the Region, across its WebSocket APIs (500 by default): a
	// handshake over it is refused with 429, as the stage's throttle
	// refuses one, before $connect runs. 0 turns it off.
	NewConnectionRateLimit float64
}

// DefaultLimits returns the quotas of AWS.
func DefaultLimits() Limits {
	return Limits{MaxMessageBytes: 128 << 10, IdleTimeout: 10 * time.Minute, MaxConnection: 2 * time.Hour,
		IntegrationTimeout: 29 * time.Second, MaxInFlight: 1000, CallbackRateLimit: 10_000, CallbackBurstLimit: 5_000,
		NewConnectionRateLimit: 500}
}

// Config describes the API to emulate.
type Config struct {
	APIID  string // default "local0api1"
	Stage  string
	Region string // for the function ARNs in logs; default us-east-1
	// RouteSelectionExpression is $request.body.NAME (a dotted path).
	RouteSelectionExpression string
	Routes                   map[string]string // route key → function
	// TwoWay holds the routes with a route response: the body their
	// function returns is sent to the client, as a frame, when it returns.
	TwoWay     map[string]bool
	Authorizer *Authorizer // $connect's, or nil
	Invoker    Invoker
	Limits     Limits
	Faults     Faults // none by default
	// Callers, when set, is checked on every Management API request, as
	// IAM checks the calling function's policy in AWS.
	Callers Callers
	Log     *slog.Logger
}

// Gateway is an emulated WebSocket API. It is an http.Handler serving both
// the WebSocket endpoint (/{stage}) and the Management API
// (/{stage}/@connections/{id}, with or without the stage).
type Gateway struct {
	cfg       Config
	selectKey []string // the route selection expression's path in the body
	faults    *faults
	throttle  *rate.Limiter               // nil: none
	callbacks *rate.Limiter               // the account's, on @connections; nil: none
	newConns  *rate.Limiter               // the account's, on handshakes; nil: none
	inFlight  chan struct{}               // one token per running message integration
	wires     sync.Map                    // remote address → *wire, when served on Listen's listener
	callers   map[string][]*regexp.Regexp // Config.Callers, compiled

	mu      sync.Mutex
	conns   map[string]*conn // open sockets whose $connect succeeded
	invoked map[string]int   // integrations started, by route
	closed  bool

	virtualPosts atomic.Int64   // posts to virtual connections
	wg           sync.WaitGroup // one per connection, until its $disconnect returned
}

// New returns a Gateway for cfg.
func New(cfg Config) (*Gateway, error) {
	path, ok := strings.CutPrefix(cfg.RouteSelectionExpression, "$request.body.")
	if !ok || path == "" {
		return nil, fmt.Errorf("route selection expression %q: only $request.body.NAME is supported", cfg.RouteSelectionExpression)
	}
	if cfg.Invoker == nil || cfg.Stage == "" {
		return nil, errors.New("gateway needs an Invoker and a Stage")
	}
	if a := cfg.Authorizer; a != nil {
		for _, src := range a.IdentitySource {
			if _, _, ok := identitySource(src); !ok {
				return nil, fmt.Errorf("authorizer %s: identity source %q: only route.request.header.NAME and route.request.querystring.NAME are emulated", a.Function, src)
			}
		}
	}
	if cfg.APIID == "" {
		cfg.APIID = "local0api1"
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	g := &Gateway{cfg: cfg, selectKey: strings.Split(path, "."), faults: newFaults(cfg.Faults), conns: map[string]*conn{}, invoked: map[string]int{},
		inFlight: make(chan struct{}, max(cfg.Limits.MaxInFlight, 1)), callers: cfg.Callers.compile()}
	if l := cfg.Limits; l.ThrottlingRateLimit > 0 {
		g.throttle = rate.NewLimiter(rate.Limit(l.ThrottlingRateLimit), max(l.ThrottlingBurstLimit, 1))
	}
	if l := cfg.Limits; l.CallbackRateLimit > 0 {
		g.callbacks = rate.NewLimiter(rate.Limit(l.CallbackRateLimit), max(l.CallbackBurstLimit, 1))
	}
	if l := cfg.Limits; l.NewConnectionRateLimit > 0 { // a second's worth at once
		g.newConns = rate.NewLimiter(rate.Limit(l.NewConnectionRateLimit), max(int(l.NewConnectionRateLimit), 1))
	}
	return g, nil
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if rest, ok := strings.CutPrefix(path, "/"+g.cfg.Stage); ok && (rest == "" || rest[0] == '/') {
		path = rest
	}
	if id, ok := strings.CutPrefix(path, "/@connections/"); ok {
		g.manage(w, r, id)
		return
	}
	if path != "" && path != "/" {
		http.NotFound(w, r)
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "this is a WebSocket endpoint: connect with ws://", http.StatusUpgradeRequired)
		return
	}
	g.connect(w, r)
}

// Close ends every connection as API Gateway does on a deployment going
// away (1001) and returns when their $disconnect invocations have finished
// or ctx ends. New connections are refused from the first call.
func (g *Gateway) Close(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	open := make([]*conn, 0, len(g.conns))
	for _, c := range g.conns {
		open = append(open, c)
	}
	g.mu.Unlock()
	for _, c := range open {
		c.close(websocket.StatusGoingAway, "Going away")
	}
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Connections returns the number of open connections.
func (g *Gateway) Connections() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// Invocations returns how many integrations of route have started.
func (g *Gateway) Invocations(route string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.invoked[route]
}

// lookup returns an open connection, waiting for a handshake that is
// completing; nil if there is none (or ctx ends first).
func (g *Gateway) lookup(ctx context.Context, id string) *conn {
	g.mu.Lock()
	c := g.conns[id]
	g.mu.Unlock()
	if c == nil {
		return nil
	}
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil
	}
	if c.ws == nil && c.virtual == 0 {
		return nil
	}
	return c
}

// newID returns an id shaped like API Gateway's connection and request ids:
// 16 characters of base64, e.g. "R1kmxc2VNjMCFIA=".
func newID() string {
	var b [11]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func validConnectionID(id string) bool {
	b, err := base64.StdEncoding.DecodeString(id)
	return err == nil && len(b) == 11
}

// invoke runs the function behind a route with ev and decodes its answer.
func (g *Gateway) invoke(ctx context.Context, route string, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	var resp events.APIGatewayProxyResponse
	fn := g.cfg.Routes[route]
	payload, err := json.Marshal(ev)
	if err != nil {
		return resp, err
	}
	log := g.cfg.Log.With("route", route, "function", fn, "connectionId", ev.RequestContext.ConnectionID)
	g.mu.Lock()
	g.invoked[route]++
	g.mu.Unlock()
	out, err := g.call(ctx, log, fn, payload)
	if err != nil {
		return resp, fmt.Errorf("invoke %s for %s: %w", fn, route, err)
	}
	if len(out) > 0 && string(out) != "null" {
		if err := json.Unmarshal(out, &resp); err != nil {
			log.Error("integration answered something that is not a proxy response", "body", string(out))
			return resp, fmt.Errorf("decode %s response: %w", fn, err)
		}
	}
	if resp.StatusCode == 0 {
		resp.StatusCode = http.StatusOK // as API Gateway treats an empty answer
	}
	log.Debug("integration", "status", resp.StatusCode)
	return resp, nil
}

// call invokes fn with payload and waits for its answer at most the
// integration timeout.
func (g *Gateway) call(ctx context.Context, log *slog.Logger, fn string, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Limits.IntegrationTimeout)
	defer cancel()
	log.Debug("invoking")
	start := time.Now()
	// API Gateway stops waiting after the integration timeout whether or not
	// the function honours its deadline; the invocation itself runs on, as
	// in Lambda, until the function returns.
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := g.cfg.Invoker.Invoke(ctx, fn, payload)
		done <- result{out, err}
	}()
	var out []byte
	var err error
	select {
	case r := <-done:
		out, err = r.out, r.err
	case <-ctx.Done():
		err = ErrIntegrationTimeout
	}
	if err != nil {
		log.Error("integration failed", "durationMs", time.Since(start).Milliseconds(), "err", err)
	}
	return out, err
}

// ErrIntegrationTimeout is what an invocation that outlived the
// integration timeout gives: the client hears "Endpoint request timed out".
var ErrIntegrationTimeout = errors.New("integration timed out")

// throttled reports whether the stage's token bucket refuses one more
// request now.
func (g *Gateway) throttled() bool { return g.throttle != nil && !g.throttle.Allow() }
