package localgw

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go"
	"github.com/coder/websocket"
)

// testAPI is a gateway with small test functions: $connect (rejects
// ?deny=STATUS), $disconnect, "echo" (posts the body back through the real
// Management API client), "boom" (fails) and $default.
type testAPI struct {
	t      testing.TB
	gw     *Gateway
	srv    *httptest.Server
	mgmt   *apigatewaymanagementapi.Client
	mu     sync.Mutex
	events map[string][]events.APIGatewayWebsocketProxyRequest // by route
	// postDuringConnect is the error a $connect got posting to itself.
	postDuringConnect error
}

type resp = events.APIGatewayProxyResponse
type req = events.APIGatewayWebsocketProxyRequest

func newTestAPI(t testing.TB, limits Limits, withDefault bool, faults ...Faults) *testAPI {
	a := &testAPI{t: t, events: map[string][]req{}}
	record := func(e req) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.events[e.RequestContext.RouteKey] = append(a.events[e.RequestContext.RouteKey], e)
	}
	fns := Handlers{
		"Connect": func(ctx context.Context, e req) (resp, error) {
			record(e)
			_, a.postDuringConnect = a.mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
				ConnectionId: aws.String(e.RequestContext.ConnectionID), Data: []byte("too early")})
			if e.QueryStringParameters["sleep"] != "" {
				time.Sleep(400 * time.Millisecond) // ignores its context
			}
			if d := e.QueryStringParameters["deny"]; d != "" {
				return resp{StatusCode: 401, Body: "denied"}, nil
			}
			return resp{StatusCode: 200, Headers: map[string]string{"Sec-WebSocket-Protocol": e.Headers["Sec-Websocket-Protocol"]}}, nil
		},
		"Disconnect": func(e req) (resp, error) { record(e); return resp{StatusCode: 200}, nil },
		"Echo": func(ctx context.Context, e req) (resp, error) {
			record(e)
			_, err := a.mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
				ConnectionId: aws.String(e.RequestContext.ConnectionID), Data: []byte("echo:" + e.Body)})
			return resp{StatusCode: 200, Body: "not sent: a one-way route"}, err
		},
		"Answer": func(e req) (resp, error) {
			record(e)
			if strings.Contains(e.Body, "quiet") {
				return resp{StatusCode: 200}, nil
			}
			return resp{StatusCode: 200, Body: "answer:" + e.Body}, nil
		},
		"Boom": func(e req) (resp, error) { return resp{}, errors.New("boom") },
		"Sleep": func(e req) (resp, error) {
			time.Sleep(400 * time.Millisecond) // ignores its context
			record(e)
			return resp{StatusCode: 200}, nil
		},
		"Default": func(e req) (resp, error) { record(e); return resp{StatusCode: 200}, nil },
	}
	routes := map[string]string{"$connect": "Connect", "$disconnect": "Disconnect", "echo": "Echo", "answer": "Answer", "boom": "Boom", "sleep": "Sleep"}
	if withDefault {
		routes["$default"] = "Default"
	}
	gw, err := New(Config{Stage: "test", RouteSelectionExpression: "$request.body.action", Routes: routes,
		TwoWay: map[string]bool{"answer": true, "boom": true}, Invoker: fns, Limits: limits})
	if len(faults) == 1 {
		gw.faults = newFaults(faults[0])
	}
	if err != nil {
		t.Fatal(err)
	}
	a.gw, a.srv = gw, httptest.NewUnstartedServer(gw)
	a.srv.Listener = gw.Listen(a.srv.Listener)
	a.srv.Start()
	a.mgmt = a.client(a.srv.URL+"/test", false)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Close(ctx)
		a.srv.Close()
	})
	return a
}

// client returns a Management API client of the gateway at base, over
// HTTP or, with inProcess, through the gateway's InProcess transport.
func (a *testAPI) client(base string, inProcess bool) *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{BaseEndpoint: aws.String(base), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}, func(o *apigatewaymanagementapi.Options) {
		if inProcess {
			o.HTTPClient = &http.Client{Transport: &InProcess{Handler: a.gw}}
		}
	})
}

// transports are the two ways functions reach the Management API: over
// HTTP, and in process (InProcess); every test of it runs both.
var transports = []struct {
	name      string
	inProcess bool
}{{"http", false}, {"in process", true}}

func (a *testAPI) routeEvents(route string) []req {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]req(nil), a.events[route]...)
}

func (a *testAPI) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(a.srv.URL, "http") + "/test" + query
}

func (a *testAPI) dial(query string) (*websocket.Conn, string) {
	a.t.Helper()
	n := len(a.routeEvents("$connect"))
	c, _, err := websocket.Dial(a.t.Context(), a.wsURL(query), nil)
	if err != nil {
		a.t.Fatalf("dial: %v", err)
	}
	a.t.Cleanup(func() { c.CloseNow() })
	return c, a.routeEvents("$connect")[n].RequestContext.ConnectionID
}

func read(t testing.TB, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func write(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.Write(t.Context(), websocket.MessageText, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestConnectEventAndRejection(t *testing.T) {
	a := newTestAPI(t, DefaultLimits(), true)
	_, hr, err := websocket.Dial(t.Context(), a.wsURL("?deny=1"), nil)
	if err == nil || hr == nil || hr.StatusCode != 401 {
		t.Fatalf("denied handshake: err %v, response %+v; want status 401", err, hr)
	}
	if got := a.routeEvents("$disconnect"); len(got) != 0 {
		t.Errorf("a rejected connection got $disconnect: %+v", got)
	}

	_, id := a.dial("?name=Ana&room=r1&room=r2")
	e := a.routeEvents("$connect")[1]
	rc := e.RequestContext
	host := strings.TrimPrefix(a.srv.URL, "http://")
	checks := map[string][2]any{
		"routeKey": {rc.RouteKey, "$connect"}, "eventType": {rc.EventType, "CONNECT"}, "stage": {rc.Stage, "test"},
		"domainName": {rc.DomainName, host}, "apiId": {rc.APIID, "local0api1"}, "sourceIp": {rc.Identity.SourceIP, "127.0.0.1"},
		"name": {e.QueryStringParameters["name"], "Ana"}, "room": {e.QueryStringParameters["room"], "r2"},
		"multi room":      {strings.Join(e.MultiValueQueryStringParameters["room"], ","), "r1,r2"},
		"X-Forwarded-For": {e.Headers["X-Forwarded-For"], "127.0.0.1"},
	}
	for k, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %v, want %v", k, v[0], v[1])
		}
	}
	if !validConnectionID(id) || len(id) != 16 || rc.RequestID == "" || rc.ConnectedAt == 0 || rc.RequestTimeEpoch < rc.ConnectedAt || rc.Identity.UserAgent == "" {
		t.Errorf("request context = %+v", rc)
	}
	if e.Headers["Sec-Websocket-Version"] != "13" || e.Headers["Sec-Websocket-Key"] == "" {
		t.Errorf("headers = %v", e.Headers)
	}
	if _, ok := errors.AsType[*types.GoneException](a.postDuringConnect); !ok {
		t.Errorf("post during $connect: err = %v, want GoneException", a.postDuringConnect)
	}
}

func TestRouteSelection(t *testing.T) {
	a := newTestAPI(t, DefaultLimits(), true)
	c, id := a.dial("")
	write(t, c, `{"action":"echo","x":1}`)
	if got := read(t, c); got != `echo:{"action":"echo","x":1}` {
		t.Errorf("echo route answered %q", got)
	}
	for _, body := range []string{`{"action":"nope"}`, `{"action":"Echo"}`, `not json`, `{"action":"$connect"}`, `[1]`} {
		write(t, c, body)
	}
	eventually(t, "5 $default events", func() bool { return len(a.routeEvents("$default")) == 5 })
	for _, e := range a.routeEvents("$default") {
		if e.RequestContext.EventType != "MESSAGE" || e.RequestContext.ConnectionID != id || e.RequestContext.MessageID == nil {
			t.Errorf("$default event = %+v", e.RequestContext)
		}
	}
	write(t, c, `{"action":"boom"}`)
	var frame map[string]string
	json.Unmarshal([]byte(read(t, c)), &frame)
	if frame["message"] != "Internal server error" || frame["connectionId"] != id || frame["requestId"] == "" {
		t.Errorf("integration failure frame = %v", frame)
	}
}

// A route with a route response sends the client the body its function
// returns, even an empty one; a route without sends nothing.
func TestRouteResponses(t *testing.T) {
	a := newTestAPI(t, DefaultLimits(), true)
	c, _ := a.dial("")
	for _, f := range [][2]string{
		{`{"action":"echo"}`, `echo:{"action":"echo"}`}, // posted; its body is not sent
		{`{"action":"answer","n":1}`, `answer:{"action":"answer","n":1}`},
		{`{"action":"answer","quiet":true}`, ``},
		{`{"action":"answer","n":2}`, `answer:{"action":"answer","n":2}`},
	} {
		write(t, c, f[0])
		if got := read(t, c); got != f[1] {
			t.Errorf("%s was answered %q, want %q", f[0], got, f[1])
		}
	}
}

func TestNoDefaultRouteIsForbidden(t *testing.T) {
	a := newTestAPI(t, DefaultLimits(), false)
	c, id := a.dial("")
	write(t, c, `{"action":"shout"}`)
	var frame map[string]string
	json.Unmarshal([]byte(read(t, c)), &frame)
	if frame["message"] != "Forbidden" || frame["connectionId"] != id {
		t.Errorf("frame = %v, want API Gateway's Forbidden", frame)
	}
}

func TestManagementAPIWithTheSDK(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { testManagementAPI(t, tr.inProcess) })
	}
}

func testManagementAPI(t *testing.T, inProcess bool) {
	a := newTestAPI(t, DefaultLimits(), true)
	a.mgmt = a.client(a.srv.URL+"/test", inProcess)
	c, id := a.dial("")
	ctx := t.Context()
	if _, err := a.mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != "hi" {
		t.Errorf("posted frame = %q", got)
	}
	info, err := a.mgmt.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &id})
	if err != nil {
		t.Fatal(err)
	}
	if info.ConnectedAt == nil || info.LastActiveAt == nil || info.Identity == nil || aws.ToString(info.Identity.SourceIp) != "127.0.0.1" {
		t.Errorf("GetConnection = %+v", info)
	}
	big := make([]byte, 128<<10+1)
	if _, err := a.mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: big}); !isType[*types.PayloadTooLargeException](err) {
		t.Errorf("129 KB post: err = %v, want PayloadTooLargeException", err)
	}
	unknown := newID()
	if _, err := a.mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &unknown, Data: []byte("x")}); !isType[*types.GoneException](err) {
		t.Errorf("unknown id: err = %v, want GoneException", err)
	}
	if _, err := a.mgmt.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &unknown}); !isType[*types.GoneException](err) {
		t.Errorf("GET unknown id: err = %v, want GoneException", err)
	}
	_, err = a.mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("not-an-id"), Data: []byte("x")})
	if apiErr, ok := errors.AsType[smithy.APIError](err); !ok || apiErr.ErrorCode() != "BadRequestException" {
		t.Errorf("malformed id: err = %v, want BadRequestException", err)
	}
	// Without the stage prefix, as a custom domain serves it.
	noStage := a.client(a.srv.URL, inProcess)
	if _, err := noStage.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("again")}); err != nil {
		t.Fatal(err)
	}
	read(t, c)

	if _, err := a.mgmt.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: &id}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after DELETE the client read %v, want close 1000", err)
	}
	eventually(t, "$disconnect", func() bool { return len(a.routeEvents("$disconnect")) == 1 })
	if _, err := a.mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("x")}); !isType[*types.GoneException](err) {
		t.Errorf("post after DELETE: err = %v, want GoneException", err)
	}
}

// BenchmarkManagementPost posts to one connection through the SDK's
// client, over HTTP and in process, and reads each frame: what one post
// of a broadcast costs the local gateway, which serves both ends
// (docs/benchmarks.md §13).
func BenchmarkManagementPost(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			a := newTestAPI(b, DefaultLimits(), true)
			a.mgmt = a.client(a.srv.URL+"/test", tr.inProcess)
			c, id := a.dial("")
			in := &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte(`{"type":"message","seq":1}`)}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.mgmt.PostToConnection(b.Context(), in); err != nil {
					b.Fatal(err)
				}
				read(b, c)
			}
		})
	}
}

func isType[E error](err error) bool {
	_, ok := errors.AsType[E](err)
	return ok
}

// $disconnect runs exactly once whichever way a socket ends.
func TestDisconnectRunsOnce(t *testing.T) {
	ends := map[string]func(a *testAPI, c *websocket.Conn, id string){
		"client close": func(_ *testAPI, c *websocket.Conn, _ string) { c.Close(websocket.StatusNormalClosure, "bye") },
		"DELETE": func(a *testAPI, _ *websocket.Conn, id string) {
			a.mgmt.DeleteConnection(t.Context(), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: &id})
		},
		"idle timeout": func(*testAPI, *websocket.Conn, string) {},
		"too big": func(_ *testAPI, c *websocket.Conn, _ string) {
			c.Write(t.Context(), websocket.MessageText, make([]byte, 2048))
		},
	}
	want := map[string]int64{"client close": 1000, "DELETE": 1000, "idle timeout": 1001, "too big": 1009}
	for name, end := range ends {
		t.Run(name, func(t *testing.T) {
			limits := DefaultLimits()
			limits.MaxMessageBytes = 1024
			if name == "idle timeout" {
				limits.IdleTimeout = 300 * time.Millisecond // only here: elsewhere a slow machine would idle out first
			}
			a := newTestAPI(t, limits, true)
			c, id := a.dial("")
			go c.Read(context.Background()) // lets the client answer close frames
			end(a, c, id)
			var got []req
			eventually(t, "$disconnect of "+id, func() bool {
				got = a.routeEvents("$disconnect")
				return len(got) > 0
			})
			time.Sleep(50 * time.Millisecond) // room for a wrong second one
			got = a.routeEvents("$disconnect")
			if len(got) != 1 || got[0].RequestContext.ConnectionID != id || got[0].RequestContext.DisconnectStatusCode != want[name] || got[0].RequestContext.EventType != "DISCONNECT" {
				t.Errorf("$disconnect events = %d, first %+v; want 1 for %s with status %d", len(got), got[0].RequestContext, id, want[name])
			}
			if reason := *got[0].RequestContext.DisconnectReason; name == "DELETE" && reason != "Connection Closed Normally" {
				t.Errorf("reason after DELETE = %q, want AWS's Connection Closed Normally", reason)
			}
		})
	}

	t.Run("dropped TCP", func(t *testing.T) {
		a := newTestAPI(t, DefaultLimits(), true)
		var raw net.Conn
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			raw = c
			return c, err
		}}}
		n := len(a.routeEvents("$connect"))
		_, _, err := websocket.Dial(t.Context(), a.wsURL(""), &websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		id := a.routeEvents("$connect")[n].RequestContext.ConnectionID
		raw.Close() // no close frame
		eventually(t, "$disconnect after a dropped socket", func() bool {
			for _, e := range a.routeEvents("$disconnect") {
				if e.RequestContext.ConnectionID == id && e.RequestContext.DisconnectStatusCode == 1006 {
					return true
				}
			}
			return false
		})
	})
}

func TestCloseDisconnectsEveryone(t *testing.T) {
	a := newTestAPI(t, DefaultLimits(), true)
	for range 5 {
		c, _ := a.dial("")
		go c.Read(context.Background())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := a.gw.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(a.routeEvents("$disconnect")); got != 5 {
		t.Errorf("$disconnect ran %d times for 5 connections", got)
	}
	if a.gw.Connections() != 0 {
		t.Errorf("%d connections left", a.gw.Connections())
	}
}

// A subprotocol the client offers is agreed only when $connect echoes it.
func TestSubprotocolEchoedByConnect(t *testing.T) {
	a := newTestAPI(t, DefaultLimits(), true)
	c, _, err := websocket.Dial(t.Context(), a.wsURL(""), &websocket.DialOptions{Subprotocols: []string{"chat.v1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "chat.v1" {
		t.Errorf("subprotocol = %q, want chat.v1", c.Subprotocol())
	}
}

// Injected faults reach the real SDK client as AWS's errors would.
func TestFaultsReachTheSDKAsAWSErrors(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { testFaults(t, tr.inProcess) })
	}
}

func testFaults(t *testing.T, inProcess bool) {
	api := func(faults Faults) *testAPI {
		a := newTestAPI(t, DefaultLimits(), true, faults)
		a.mgmt = a.client(a.srv.URL+"/test", inProcess)
		return a
	}
	postCtx := func(ctx context.Context, a *testAPI, id string) error {
		_, err := a.mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String(id), Data: []byte("x")})
		return err
	}
	post := func(a *testAPI, id string) error { return postCtx(t.Context(), a, id) }
	a := api(Faults{PostThrottle: 1})
	_, id := a.dial("")
	if err := post(a, id); !errors.As(err, new(*types.LimitExceededException)) {
		t.Errorf("throttled post: err = %v, want *types.LimitExceededException", err)
	}
	a = api(Faults{PostError: 1})
	_, id = a.dial("")
	var re interface{ HTTPStatusCode() int }
	if err := post(a, id); !errors.As(err, &re) || re.HTTPStatusCode() != 500 {
		t.Errorf("failed post: err = %v, want a 500", err)
	}
	a = api(Faults{PostSlow: 1, PostDelay: 300 * time.Millisecond})
	c, id := a.dial("")
	start := time.Now()
	if err := post(a, id); err != nil || time.Since(start) < 300*time.Millisecond || read(t, c) != "x" {
		t.Errorf("slow post: err %v after %v; want delivered after the delay", err, time.Since(start))
	}
	// A caller that gives up first hears its own deadline, not the post's end.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := postCtx(ctx, a, id); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow post past the caller's deadline: err = %v, want context.DeadlineExceeded", err)
	}

	a = api(Faults{DropDisconnect: 1})
	c, _ = a.dial("")
	c.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the socket to end", func() bool { return a.gw.Connections() == 0 })
	time.Sleep(100 * time.Millisecond)
	if n := len(a.routeEvents("$disconnect")); n != 0 {
		t.Errorf("%d $disconnect invocations, want the dropped none", n)
	}
}

func TestFaultsAreReproducible(t *testing.T) {
	draw := func(seed uint64) []postFault {
		f := newFaults(Faults{Seed: seed, PostThrottle: 0.3, PostError: 0.2, PostSlow: 0.1})
		var out []postFault
		for range 50 {
			out = append(out, f.post())
		}
		return out
	}
	a, b, c := draw(7), draw(7), draw(8)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Errorf("seed 7 twice gave different decisions, or seeds 7 and 8 the same:\n%v\n%v\n%v", a, b, c)
	}
	counts := map[postFault]int{}
	for _, d := range draw(1) {
		counts[d]++
	}
	if counts[postThrottled] == 0 || counts[postFailed] == 0 || counts[postSlow] == 0 || counts[postOK] == 0 {
		t.Errorf("decisions = %v, want every kind", counts)
	}
}

// The stage's token bucket refuses what is over it, as API Gateway does:
// a frame gets {"message":"Too Many Requests",…} and reaches no
// integration; a handshake gets 429.
func TestStageThrottling(t *testing.T) {
	limits := DefaultLimits()
	limits.ThrottlingRateLimit, limits.ThrottlingBurstLimit = 0.001, 4 // the burst, then (almost) nothing
	a := newTestAPI(t, limits, true)
	c, _ := a.dial("") // the first token
	for i := range 5 {
		write(t, c, `{"action":"echo","n":`+string(rune('0'+i))+`}`)
	}
	var echoes, throttled int
	for range 5 {
		got := read(t, c)
		switch {
		case strings.HasPrefix(got, "echo:"):
			echoes++
		case strings.Contains(got, `"message":"Too Many Requests"`) && strings.Contains(got, `"connectionId"`):
			throttled++
		default:
			t.Errorf("unexpected frame %s", got)
		}
	}
	if echoes != 3 || throttled != 2 || len(a.routeEvents("echo")) != 3 {
		t.Errorf("%d echoed, %d throttled, %d invocations; want 3, 2, 3", echoes, throttled, len(a.routeEvents("echo")))
	}
	_, resp, err := websocket.Dial(t.Context(), a.wsURL(""), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a handshake over the limit: %v, %+v; want 429", err, resp)
	}
}

// API Gateway answers the client when the integration timeout passes even
// if the function ignores its deadline; the invocation runs on.
func TestIntegrationTimeoutIsAnswered(t *testing.T) {
	limits := DefaultLimits()
	limits.IntegrationTimeout = 100 * time.Millisecond
	a := newTestAPI(t, limits, true)
	c, _ := a.dial("")
	start := time.Now()
	write(t, c, `{"action":"sleep"}`)
	if got := read(t, c); !strings.Contains(got, `"message":"Endpoint request timed out"`) || time.Since(start) > 350*time.Millisecond {
		t.Errorf("after %v: %s; want Endpoint request timed out at the integration timeout", time.Since(start), got)
	}
	eventually(t, "the invocation to run to its end", func() bool { return len(a.routeEvents("sleep")) == 1 })
	_, resp, err := websocket.Dial(t.Context(), a.wsURL("?sleep=1"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("a slow $connect: %v, %+v; want 504", err, resp)
	}
}

// Without binary media types API Gateway closes a connection that sends a
// binary frame with 1003, and invokes nothing.
func TestBinaryFramesClose(t *testing.T) {
	a := newTestAPI(t, DefaultLimits(), true)
	c, _ := a.dial("")
	if err := c.Write(t.Context(), websocket.MessageBinary, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Errorf("read after a binary frame: %v; want close 1003", err)
	}
	if n := len(a.routeEvents("$default")); n != 0 {
		t.Errorf("%d invocations for a binary frame", n)
	}
	eventually(t, "$disconnect with 1003", func() bool {
		ev := a.routeEvents("$disconnect")
		return len(ev) == 1 && ev[0].RequestContext.DisconnectStatusCode == 1003
	})
}

// $connect gets the forwarding and trace headers API Gateway adds.
func TestConnectForwardingHeaders(t *testing.T) {
	a := newTestAPI(t, DefaultLimits(), true)
	a.dial("")
	h := a.routeEvents("$connect")[0].Headers
	if h["X-Forwarded-Proto"] != "http" || h["X-Forwarded-Port"] == "" || !strings.HasPrefix(h["X-Amzn-Trace-Id"], "Root=1-") || h["X-Forwarded-For"] != "127.0.0.1" {
		t.Errorf("headers = %v", h)
	}
}

// The Management API wants a SigV4 signature and, with Callers, allows
// each caller only what its policy allows, answering 403 as AWS does.
func TestManagementAPIAuthorization(t *testing.T) {
	a := newTestAPI(t, DefaultLimits(), true)
	_, id := a.dial("")
	resp, err := http.Post(a.srv.URL+"/test/@connections/"+url.PathEscape(id), "application/json", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-ErrorType") != "ForbiddenException" {
		t.Errorf("an unsigned post: %d %s; want 403 ForbiddenException", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}

	a.gw.cfg.Callers = Callers{"poster": {"arn:aws:execute-api:us-east-1:" + AccountID + ":local0api1/test/POST/@connections/*"}}
	a.gw.callers = a.gw.cfg.Callers.compile() // as New does
	as := func(key string) *apigatewaymanagementapi.Client {
		return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{BaseEndpoint: aws.String(a.srv.URL + "/test"),
			Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(key, "secret", "")})
	}
	if _, err := as("poster").PostToConnection(t.Context(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("ok")}); err != nil {
		t.Errorf("an allowed post: %v", err)
	}
	var ae smithy.APIError
	_, err = as("poster").DeleteConnection(t.Context(), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: &id})
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" || !strings.Contains(ae.ErrorMessage(), "/DELETE/@connections/") {
		t.Errorf("a DELETE the policy does not allow: %v; want AccessDeniedException", err)
	}
	_, err = as("stranger").PostToConnection(t.Context(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("no")})
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Errorf("a caller without a policy: %v; want AccessDeniedException", err)
	}
	re := Callers{"k": {"arn:aws:execute-api:r:1:api/prod/*/@connections/*", "arn:aws:execute-api:r:1:api/prod/POST/@connections/?"}}.compile()["k"]
	if !re[0].MatchString("arn:aws:execute-api:r:1:api/prod/GET/@connections/abc=") ||
		re[0].MatchString("arn:aws:execute-api:r:1:api/dev/POST/@connections/abc") ||
		!re[1].MatchString("arn:aws:execute-api:r:1:api/prod/POST/@connections/a") || re[1].MatchString("arn:aws:execute-api:r:1:api/prod/POST/@connections/ab") {
		t.Error("wildcard matching is wrong")
	}
}

// A frame over 32 KB closes the connection with 1009, as API Gateway does;
// a larger message in smaller frames goes through.
func TestFrameSizeLimit(t *testing.T) {
	a := newTestAPI(t, DefaultLimits(), true)
	c, _ := a.dial("")
	c.SetReadLimit(1 << 20) // the echo is as long
	// 40 KB in frames of at most 4 KB (the library's writer buffers that much).
	w, err := c.Writer(t.Context(), websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"action":"echo","pad":"` + strings.Repeat("x", 40<<10) + `"}`
	for i := 0; i < len(body); i += 4 << 10 {
		w.Write([]byte(body[i:min(i+4<<10, len(body))]))
	}
	w.Close()
	if got := read(t, c); !strings.HasPrefix(got, "echo:") {
		t.Errorf("a 40 KB message in small frames: %.40s", got)
	}
	// The same in one frame.
	if err := c.Write(t.Context(), websocket.MessageText, []byte(body)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Errorf("after a 40 KB frame: %v; want close 1009", err)
	}
	if n := len(a.routeEvents("echo")); n != 1 {
		t.Errorf("%d echo invocations, want 1 (not the oversized frame)", n)
	}
}

// $connect gets the header names as the client wrote them, not as Go
// canonicalises them.
func TestConnectHeaderCasing(t *testing.T) {
	a := newTestAPI(t, DefaultLimits(), true)
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /test HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nx-MiXeD-Case: yes\r\n\r\n", strings.TrimPrefix(a.srv.URL, "http://"))
	status, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.Contains(status, "101") {
		t.Fatalf("handshake: %q", status)
	}
	h := a.routeEvents("$connect")[0].Headers
	if h["Sec-WebSocket-Key"] == "" || h["x-MiXeD-Case"] != "yes" {
		t.Errorf("headers = %v; want the client's casing", h)
	}
}

// A $connect authorizer runs before $connect, as in AWS: 401 without the
// identity source (never invoked) or on "Unauthorized", 403 on Deny, 500
// on a context AWS would refuse, and $connect sees the context on Allow.
func TestConnectAuthorizer(t *testing.T) {
	var invoked atomic.Int32
	var mu sync.Mutex
	var connects []req
	fns := Handlers{
		"Auth": func(e events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
			invoked.Add(1)
			effect, ctx := "Allow", map[string]any{"userId": "u-1", "admin": false, "n": 3}
			switch e.Headers["Auth"] {
			case "unknown":
				return events.APIGatewayCustomAuthorizerResponse{}, errors.New("Unauthorized")
			case "deny":
				effect = "Deny"
			case "other-route":
				e.MethodArn = strings.Replace(e.MethodArn, "$connect", "$default", 1)
			case "nested":
				ctx["roles"] = []string{"a"}
			}
			return events.APIGatewayCustomAuthorizerResponse{PrincipalID: "p-1", Context: ctx,
				PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17",
					Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{e.MethodArn}}}}}, nil
		},
		"Connect": func(e req) (resp, error) {
			mu.Lock()
			defer mu.Unlock()
			connects = append(connects, e)
			return resp{StatusCode: 200}, nil
		},
	}
	gw, err := New(Config{Stage: "test", RouteSelectionExpression: "$request.body.action", Routes: map[string]string{"$connect": "Connect"},
		Authorizer: &Authorizer{Function: "Auth", IdentitySource: []string{"route.request.header.Auth"}}, Invoker: fns})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { gw.Close(context.Background()); srv.Close() })
	dial := func(auth string) int {
		t.Helper()
		h := http.Header{}
		if auth != "" {
			h.Set("Auth", auth)
		}
		c, hr, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/test", &websocket.DialOptions{HTTPHeader: h})
		if err == nil {
			c.CloseNow()
			return hr.StatusCode
		}
		if hr == nil {
			t.Fatalf("dial: %v", err)
		}
		return hr.StatusCode
	}
	if got := dial(""); got != 401 || invoked.Load() != 0 {
		t.Errorf("no identity source: status %d after %d invocations, want 401 without invoking", got, invoked.Load())
	}
	for auth, want := range map[string]int{"unknown": 401, "deny": 403, "other-route": 403, "nested": 500, "ok": 101} {
		if got := dial(auth); got != want {
			t.Errorf("Auth: %s: status %d, want %d", auth, got, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(connects) != 1 {
		t.Fatalf("$connect ran %d times, want once (for the allowed handshake)", len(connects))
	}
	got, _ := json.Marshal(connects[0].RequestContext.Authorizer)
	if string(got) != `{"admin":false,"n":3,"principalId":"p-1","userId":"u-1"}` {
		t.Errorf("$connect's requestContext.authorizer = %s", got)
	}
}

// The account's throttle on @connections calls answers what is over it
// 429 LimitExceededException, as AWS does, whoever the connection.
func TestCallbackThrottling(t *testing.T) {
	limits := DefaultLimits()
	limits.CallbackRateLimit, limits.CallbackBurstLimit = 0.001, 3 // the burst, then (almost) nothing
	a := newTestAPI(t, limits, true)
	_, id := a.dial("")
	var ok, throttled int
	for range 6 {
		_, err := a.mgmt.PostToConnection(t.Context(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("x")},
			func(o *apigatewaymanagementapi.Options) { o.Retryer = aws.NopRetryer{} })
		var ae smithy.APIError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ae) && ae.ErrorCode() == "LimitExceededException":
			throttled++
		default:
			t.Errorf("post: %v", err)
		}
	}
	if ok > 3 || ok+throttled != 6 || throttled < 3 {
		t.Errorf("%d posts sent, %d throttled; want at most the burst (3) sent, the rest throttled", ok, throttled)
	}
}

// The account's quota of new connections a second refuses a handshake
// over it with 429 before $connect runs, as the stage's throttle does.
func TestNewConnectionQuota(t *testing.T) {
	limits := DefaultLimits()
	limits.NewConnectionRateLimit = 0.001 // one, then (almost) none
	a := newTestAPI(t, limits, true)
	a.dial("")
	_, resp, err := websocket.Dial(t.Context(), a.wsURL(""), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a handshake over the quota: %v, %+v; want 429", err, resp)
	}
	if n := len(a.routeEvents("$connect")); n != 1 {
		t.Errorf("$connect ran %d times, want once (for the allowed handshake)", n)
	}
}

// Virtual members run $connect like any connection and take posts, each
// after its latency, counted; they have no socket.
func TestVirtualMembers(t *testing.T) {
	a := newTestAPI(t, DefaultLimits(), true)
	// One at a time: this fixture's $connect records a field without a lock.
	if n := a.gw.AddVirtual(t.Context(), map[string]string{"room": "big"}, 3, 1, time.Millisecond); n != 3 {
		t.Fatalf("%d virtual members accepted, want 3", n)
	}
	if n := len(a.routeEvents("$connect")); n != 3 || a.gw.Connections() != 3 {
		t.Fatalf("%d $connect invocations, %d connections; want 3 and 3", n, a.gw.Connections())
	}
	for _, ev := range a.routeEvents("$connect") {
		id := ev.RequestContext.ConnectionID
		if _, err := a.mgmt.PostToConnection(t.Context(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("x")}); err != nil {
			t.Errorf("post to virtual %s: %v", id, err)
		}
	}
	if n := a.gw.VirtualDeliveries(); n != 3 {
		t.Errorf("%d deliveries counted, want 3", n)
	}
}
