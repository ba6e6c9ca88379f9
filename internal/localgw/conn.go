package localgw

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
)

// conn is one client socket.
type conn struct {
	id          string
	wire        *wire // what the wire saw of it; nil without Listen
	ws          *websocket.Conn
	host        string // the Host the client connected to: domainName
	connectedAt time.Time
	identity    events.APIGatewayRequestIdentity
	lastActive  atomic.Int64  // Unix milliseconds
	ready       chan struct{} // closed once the handshake has completed or failed
	ctx         context.Context
	cancel      context.CancelFunc

	// virtual, for a connection without a socket (AddVirtual), is how
	// long a post to it takes.
	virtual time.Duration

	mu          sync.Mutex
	closeCode   websocket.StatusCode // why the gateway closed it, when it did
	closeReason string
}

func (c *conn) touch() { c.lastActive.Store(time.Now().UnixMilli()) }

// close ends the socket from the gateway's side; the first reason given
// is the one $disconnect reports.
func (c *conn) close(code websocket.StatusCode, reason string) {
	<-c.ready
	if c.ws == nil {
		return // the handshake failed; nothing to close
	}
	c.mu.Lock()
	if c.closeCode == 0 {
		c.closeCode, c.closeReason = code, reason
	}
	c.mu.Unlock()
	// Close sends the close frame and waits (up to 5 s) for the peer's; the
	// read loop then ends. Never block the caller on it.
	go c.ws.Close(code, reason)
}

func (g *Gateway) requestContext(c *conn, route, eventType string) events.APIGatewayWebsocketProxyRequestContext {
	now := time.Now()
	rid := newID()
	return events.APIGatewayWebsocketProxyRequestContext{
		RouteKey:          route,
		EventType:         eventType,
		ConnectionID:      c.id,
		ConnectedAt:       c.connectedAt.UnixMilli(),
		DomainName:        c.host,
		Stage:             g.cfg.Stage,
		APIID:             g.cfg.APIID,
		RequestID:         rid,
		ExtendedRequestID: rid,
		MessageDirection:  "IN",
		RequestTime:       now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
		RequestTimeEpoch:  now.UnixMilli(),
		Identity:          c.identity,
	}
}

// connect runs $connect and, if it answers 2xx, completes the handshake.
func (g *Gateway) connect(w http.ResponseWriter, r *http.Request) {
	// Close waits for connections still in their $connect too.
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		http.Error(w, "gateway is shutting down", http.StatusServiceUnavailable)
		return
	}
	g.wg.Add(1)
	g.mu.Unlock()
	serving := false
	defer func() {
		if !serving {
			g.wg.Done()
		}
	}()
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	c := &conn{id: newID(), host: r.Host, connectedAt: time.Now(),
		identity: events.APIGatewayRequestIdentity{SourceIP: ip, UserAgent: r.UserAgent()}}
	c.touch()

	ev := events.APIGatewayWebsocketProxyRequest{
		Headers: map[string]string{}, MultiValueHeaders: map[string][]string{},
		RequestContext: g.requestContext(c, "$connect", "CONNECT"),
	}
	c.wire = g.wireOf(r.RemoteAddr)
	for k, v := range r.Header {
		name := c.wire.rawName(k) // as the client wrote it, as API Gateway passes it on
		ev.Headers[name] = v[0]
		ev.MultiValueHeaders[name] = v
	}
	// The headers API Gateway adds on its way to the integration.
	_, port, _ := net.SplitHostPort(r.Host)
	if port == "" {
		port = "80"
	}
	for k, v := range map[string]string{"X-Forwarded-For": ip, "X-Forwarded-Proto": "http", "X-Forwarded-Port": port,
		"X-Amzn-Trace-Id": "Root=1-" + strconv.FormatInt(time.Now().Unix(), 16) + "-" + strings.ToLower(rand.Text()[:24])} {
		ev.Headers[k], ev.MultiValueHeaders[k] = v, []string{v}
	}
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters, ev.MultiValueQueryStringParameters = map[string]string{}, map[string][]string{}
		for k, v := range q {
			ev.QueryStringParameters[k] = v[len(v)-1]
			ev.MultiValueQueryStringParameters[k] = v
		}
	}
	if g.throttled() || (g.newConns != nil && !g.newConns.Allow()) {
		g.cfg.Log.Info("handshake throttled", "connectionId", c.id)
		http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
		return
	}
	if g.cfg.Authorizer != nil {
		status, authCtx := g.runAuthorizer(context.WithoutCancel(r.Context()), r, ev)
		if status != 0 {
			http.Error(w, http.StatusText(status), status)
			return
		}
		ev.RequestContext.Authorizer = authCtx
	}
	var subprotocols []string
	if _, ok := g.cfg.Routes["$connect"]; ok {
		// Not the request's context: a client that gives up does not cancel
		// the integration, as in AWS.
		resp, err := g.invoke(context.WithoutCancel(r.Context()), "$connect", ev)
		if errors.Is(err, ErrIntegrationTimeout) {
			http.Error(w, "Endpoint request timed out", http.StatusGatewayTimeout)
			return
		}
		if err != nil {
			http.Error(w, "Internal server error", http.StatusInternalServerError)
			return
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			g.cfg.Log.Info("handshake rejected", "connectionId", c.id, "status", resp.StatusCode)
			http.Error(w, resp.Body, resp.StatusCode)
			return
		}
		// A subprotocol is accepted only if $connect echoes it.
		if p := headerValue(resp.Headers, "Sec-WebSocket-Protocol"); p != "" {
			subprotocols = []string{p}
		}
	}
	// Registered before the handshake completes, so that a post racing the
	// client's first look at its open socket finds the connection (it waits
	// on ready); posts during $connect itself still get 410, as in AWS.
	c.ready = make(chan struct{})
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		http.Error(w, "gateway is shutting down", http.StatusServiceUnavailable)
		g.disconnect(c, websocket.StatusGoingAway, "Going away")
		return
	}
	g.conns[c.id] = c
	g.mu.Unlock()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // API Gateway does not check Origin
		Subprotocols:       subprotocols,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		g.mu.Lock()
		delete(g.conns, c.id)
		g.mu.Unlock()
		close(c.ready) // with no ws: lookups treat it as gone
		g.cfg.Log.Warn("handshake failed after $connect succeeded", "connectionId", c.id, "err", err)
		g.disconnect(c, websocket.StatusAbnormalClosure, "Handshake failed")
		return
	}
	ws.SetReadLimit(g.cfg.Limits.MaxMessageBytes)
	c.ws = ws
	c.ctx, c.cancel = context.WithCancel(context.Background())
	close(c.ready)
	serving = true
	g.cfg.Log.Info("connected", "connectionId", c.id, "sourceIp", ip)
	go g.serve(c)
}

func headerValue(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// serve reads frames until the socket ends, then runs $disconnect once.
func (g *Gateway) serve(c *conn) {
	defer g.wg.Done()
	// The idle timer re-arms itself until a whole IdleTimeout passes with
	// no frame in either direction.
	var idle *time.Timer
	idle = time.AfterFunc(g.cfg.Limits.IdleTimeout, func() {
		quiet := time.Since(time.UnixMilli(c.lastActive.Load()))
		if quiet >= g.cfg.Limits.IdleTimeout {
			c.close(websocket.StatusGoingAway, "Going away")
			return
		}
		idle.Reset(g.cfg.Limits.IdleTimeout - quiet)
	})
	maxAge := time.AfterFunc(g.cfg.Limits.MaxConnection, func() { c.close(websocket.StatusGoingAway, "Going away") })
	defer idle.Stop()
	defer maxAge.Stop()

	var inflight sync.WaitGroup
	var readErr error
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			readErr = err
			break
		}
		c.touch()
		if c.wire != nil && c.wire.tooBig.Load() {
			// A frame over 32 KB: API Gateway closes the connection with 1009.
			c.close(websocket.StatusMessageTooBig, "Message too big")
			continue
		}
		if typ == websocket.MessageBinary {
			// No binary media types are configured: API Gateway closes the
			// connection with 1003 (unsupported data).
			c.close(websocket.StatusUnsupportedData, "Binary frames are not supported")
			continue
		}
		if g.throttled() {
			// Answered here, never invoked: a flood costs no goroutine.
			g.errorFrame(c, "Too Many Requests", newID())
			continue
		}
		// API Gateway invokes the integration for each message on its own,
		// concurrently: no ordering between a client's messages. At most
		// MaxInFlight run at once; the next frame is read when one ends.
		g.inFlight <- struct{}{}
		inflight.Go(func() {
			defer func() { <-g.inFlight }()
			g.message(c, typ, data)
		})
	}

	g.mu.Lock()
	delete(g.conns, c.id) // from now on, posts get 410
	g.mu.Unlock()
	c.cancel()

	code, reason := websocket.CloseStatus(readErr), ""
	c.mu.Lock()
	switch {
	case c.closeCode != 0:
		code, reason = c.closeCode, c.closeReason
	case readLimited(readErr):
		code, reason = websocket.StatusMessageTooBig, "Message too big"
	case code == -1:
		code, reason = websocket.StatusAbnormalClosure, "Connection dropped"
	default:
		reason = "Client closed connection"
	}
	c.mu.Unlock()
	inflight.Wait()
	g.cfg.Log.Info("socket ended", "connectionId", c.id, "status", int(code), "reason", reason)
	g.disconnect(c, code, reason)
}

// readLimited recognises coder/websocket's read-limit error: it closes the
// socket with 1009 but returns an error with no status and no type.
func readLimited(err error) bool {
	return err != nil && websocket.CloseStatus(err) == -1 && strings.Contains(err.Error(), "read limited at")
}

// disconnect invokes $disconnect, after DisconnectDelay.
func (g *Gateway) disconnect(c *conn, code websocket.StatusCode, reason string) {
	if _, ok := g.cfg.Routes["$disconnect"]; !ok {
		return
	}
	if g.faults.dropDisconnect() {
		g.cfg.Log.Info("$disconnect dropped (fault injection)", "connectionId", c.id)
		return
	}
	if d := g.cfg.Limits.DisconnectDelay; d > 0 {
		time.Sleep(d)
	}
	ev := events.APIGatewayWebsocketProxyRequest{
		// The headers API Gateway sends with $disconnect.
		Headers: map[string]string{"Host": c.host, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""},
		MultiValueHeaders: map[string][]string{"Host": {c.host}, "x-api-key": {""}, "X-Forwarded-For": {""},
			"x-restapi": {""}},
		RequestContext: g.requestContext(c, "$disconnect", "DISCONNECT"),
	}
	ev.RequestContext.DisconnectStatusCode = int64(code)
	ev.RequestContext.DisconnectReason = &reason
	g.invoke(context.Background(), "$disconnect", ev) // errors are logged by invoke; nothing more to do
}

// message routes one inbound frame and invokes its integration.
func (g *Gateway) message(c *conn, typ websocket.MessageType, data []byte) {
	defer func() {
		if r := recover(); r != nil {
			g.cfg.Log.Error("message handling panicked", "connectionId", c.id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	ev := events.APIGatewayWebsocketProxyRequest{RequestContext: g.requestContext(c, "", "MESSAGE")}
	ev.RequestContext.MessageID = newID()
	if typ == websocket.MessageBinary || !utf8.Valid(data) {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(data), true
	} else {
		ev.Body = string(data)
	}
	route := g.selectRoute(data)
	if route == "" {
		g.errorFrame(c, "Forbidden", ev.RequestContext.RequestID)
		return
	}
	ev.RequestContext.RouteKey = route
	if d := g.faults.invokeDelay(); d > 0 {
		time.Sleep(d)
	}
	// Not c.ctx: in AWS an integration runs to its end even if the client leaves.
	resp, err := g.invoke(context.Background(), route, ev)
	switch {
	case errors.Is(err, ErrIntegrationTimeout):
		g.errorFrame(c, "Endpoint request timed out", ev.RequestContext.RequestID)
	case err != nil:
		g.errorFrame(c, "Internal server error", ev.RequestContext.RequestID)
	case !g.cfg.TwoWay[route]:
		// One-way: the body is dropped, as in AWS.
	case int64(len(resp.Body)) > g.cfg.Limits.MaxMessageBytes:
		g.cfg.Log.Error("route response over the frame limit", "connectionId", c.id, "route", route, "bytes", len(resp.Body))
		g.errorFrame(c, "Internal server error", ev.RequestContext.RequestID)
	default:
		// Sent even when empty: clients must ignore an empty frame, which
		// is what API Gateway is reported to send for an empty body.
		if err := g.send(c, []byte(resp.Body)); err != nil {
			g.cfg.Log.Info("route response not sent: the connection has gone", "connectionId", c.id, "route", route)
		}
	}
}

// selectRoute evaluates the route selection expression on a body: the
// route named by the selected value, else $default, else none.
func (g *Gateway) selectRoute(body []byte) string {
	var v any
	if json.Unmarshal(body, &v) == nil {
		for _, k := range g.selectKey {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[k]
		}
		if key, ok := v.(string); ok && !strings.HasPrefix(key, "$") {
			if _, ok := g.cfg.Routes[key]; ok {
				return key
			}
		}
	}
	if _, ok := g.cfg.Routes["$default"]; ok {
		return "$default"
	}
	return ""
}

// errorFrame sends the frame API Gateway sends when it cannot route a
// message or its integration fails.
func (g *Gateway) errorFrame(c *conn, msg, requestID string) {
	b, _ := json.Marshal(map[string]string{"message": msg, "connectionId": c.id, "requestId": requestID})
	g.send(c, b)
}

// send writes one frame to a connection; text when it is UTF-8.
func (g *Gateway) send(c *conn, data []byte) error {
	if c.virtual > 0 {
		time.Sleep(c.virtual)
		g.virtualPosts.Add(1)
		c.touch()
		return nil
	}
	typ := websocket.MessageText
	if !utf8.Valid(data) {
		typ = websocket.MessageBinary
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, typ, data); err != nil {
		return err
	}
	c.touch()
	return nil
}
