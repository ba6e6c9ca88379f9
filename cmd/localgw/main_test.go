package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	mgmttypes "github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/coder/websocket"

	"github.com/chatgo/serverless-chat/internal/app"
	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/dynamolocal"
	"github.com/chatgo/serverless-chat/internal/dynamolocal/dynamolocaltest"
	"github.com/chatgo/serverless-chat/internal/idplocal"
	"github.com/chatgo/serverless-chat/internal/sqslocal"
)

var ddbEndpoint string

// sharedSQS is one local SQS server for every stack the tests start (each
// has queues of its own, named by its table prefix).
var sharedSQS = sync.OnceValues(func() (*sqslocal.Server, error) {
	return sqslocal.Start(context.Background(), func(string) string { return "" })
})

func TestMain(m *testing.M) {
	os.Exit(dynamolocaltest.Main(m, &ddbEndpoint))
}

// startStack runs the whole local stack on free ports against the test's
// DynamoDB Local, with tables of its own.
func startStack(t *testing.T, mutate func(*options)) *stack {
	t.Helper()
	if ddbEndpoint == "" {
		t.Skip("end-to-end test: needs DynamoDB Local (skipped with -short)")
	}
	o, err := parse([]string{"localgw", "-addr", "127.0.0.1:0", "-web", "", "-template", "../../template.yaml",
		"-data", "", "-table-prefix", "e2e-" + rand.Text()[:8] + "-", "-log-level", "DEBUG"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&o)
	}
	logs := &dynamolocaltest.Buffer{}
	sqs, err := sharedSQS()
	if err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		switch k {
		case dynamolocal.EnvEndpoint:
			return ddbEndpoint
		case sqslocal.EnvEndpoint:
			return sqs.Endpoint
		}
		return ""
	}
	s, err := start(t.Context(), o, getenv, logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		s.Close(ctx)
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs)
		}
	})
	return s
}

// client is one chat user's socket, with every frame it receives queued
// but the presence events older than what it knows (clients apply joins
// and leaves by version).
type client struct {
	t      *testing.T
	name   string
	ws     *websocket.Conn
	raw    net.Conn // the TCP connection, to drop it without a close frame
	frames chan map[string]any
}

func dial(t *testing.T, s *stack, name, room string) *client {
	t.Helper()
	return dialWith(t, s, name, "?name="+name+"&room="+room, nil)
}

// arrive connects as a client does: it dials and syncs (the room hears of
// the user with that first frame).
func arrive(t *testing.T, s *stack, name, room string) *client {
	t.Helper()
	c := dial(t, s, name, room)
	c.send(`{"action":"sync"}`)
	c.next("sync")
	return c
}

// dialWith connects with a query and subprotocols of its own.
func dialWith(t *testing.T, s *stack, name, query string, subprotocols []string) *client {
	t.Helper()
	c := &client{t: t, name: name, frames: make(chan map[string]any, 1000)}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		c.raw = conn
		return conn, err
	}}}
	ws, _, err := websocket.Dial(t.Context(), s.websocketURL+query, &websocket.DialOptions{HTTPClient: hc, Subprotocols: subprotocols})
	if err != nil {
		t.Fatalf("dial %s: %v", name, err)
	}
	c.ws = ws
	go func() {
		defer close(c.frames)
		versions := map[string]float64{} // presence by version, as clients keep it
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var f map[string]any
			if json.Unmarshal(data, &f) != nil {
				f = map[string]any{"type": "not-json", "raw": string(data)}
			}
			switch f["type"] {
			case "sync":
				for id, v := range f["presence"].(map[string]any) {
					versions[id] = max(versions[id], v.(float64))
				}
			case "join", "leave":
				id, v := f["userId"].(string), f["version"].(float64)
				if v <= versions[id] {
					continue // older than what this client knows: a client drops it
				}
				versions[id] = v
			}
			c.frames <- f
		}
	}()
	t.Cleanup(func() { ws.CloseNow() })
	return c
}

func (c *client) send(frame string) {
	c.t.Helper()
	if err := c.ws.Write(c.t.Context(), websocket.MessageText, []byte(frame)); err != nil {
		c.t.Fatalf("%s send: %v", c.name, err)
	}
}

// next returns the next frame of the given type, failing on any other
// type first or after 10 s.
func (c *client) next(typ string) map[string]any {
	c.t.Helper()
	select {
	case f := <-c.frames:
		if f["type"] != typ {
			c.t.Fatalf("%s: got %v, want a %s frame", c.name, f, typ)
		}
		return f
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s: no %s frame within 10 s", c.name, typ)
	}
	return nil
}

// drain returns the frames that arrive until none has for quiet.
func (c *client) drain(quiet time.Duration) []map[string]any {
	var out []map[string]any
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return out
			}
			out = append(out, f)
		case <-time.After(quiet):
			return out
		}
	}
}

// collect returns the next n frames (failing after 30 s without them),
// then whatever else arrives until none has for quiet: a surplus shows as
// more than n frames.
func (c *client) collect(n int, quiet time.Duration) []map[string]any {
	var out []map[string]any
	deadline := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Errorf("%s: socket closed after %d of %d frames", c.name, len(out), n)
				return out
			}
			out = append(out, f)
		case <-deadline:
			c.t.Errorf("%s: %d of %d frames within 30 s", c.name, len(out), n)
			return out
		}
	}
	return append(out, c.drain(quiet)...)
}

// collectAll collects from every client at once, want[i] frames from
// clients[i].
func collectAll(clients []*client, want func(i int) int, quiet time.Duration) [][]map[string]any {
	out := make([][]map[string]any, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() { out[i] = c.collect(want(i), quiet) })
	}
	wg.Wait()
	return out
}

func summary(frames []map[string]any) []string {
	var out []string
	for _, f := range frames {
		s := fmt.Sprint(f["type"])
		for _, k := range []string{"name", "text", "code"} {
			if v, ok := f[k]; ok {
				s += " " + k + "=" + fmt.Sprint(v)
			}
		}
		out = append(out, s)
	}
	return out
}

func TestChatEndToEnd(t *testing.T) {
	s := startStack(t, func(o *options) {
		o.limits.DisconnectDelay = 3 * time.Second
		o.env[app.EnvConnectGrace] = "1s" // so that a10 is past its $connect when it vanishes
	})
	rooms := map[string][]*client{}
	var all []*client
	for i := range 20 {
		room, name := "alpha", fmt.Sprintf("a%d", i)
		if i >= 12 {
			room, name = "beta", fmt.Sprintf("b%d", i-12)
		}
		c := arrive(t, s, name, room)
		for _, m := range rooms[room] { // those already there hear of it, once
			if f := m.next("join"); f["name"] != name {
				t.Errorf("%s: got %v, want %s's join", m.name, f, name)
			}
		}
		rooms[room] = append(rooms[room], c)
		all = append(all, c)
	}
	const quiet = 300 * time.Millisecond
	for _, c := range all {
		if extra := c.drain(quiet); len(extra) > 0 {
			t.Errorf("%s got %v after the joins, want nothing", c.name, summary(extra))
		}
	}

	// Every client sends two messages; each reaches the others in its room once.
	for _, c := range all {
		for j := range 2 {
			c.send(fmt.Sprintf(`{"action":"new-message","text":"%s says %d","clientId":"%s-%d"}`, c.name, j, c.name, j))
		}
	}
	drained := collectAll(all, func(i int) int {
		room := rooms["alpha"]
		if i >= 12 {
			room = rooms["beta"]
		}
		return 2 + 2*(len(room)-1) // two acks, two messages from each other member
	}, quiet)
	for i, c := range all {
		got := drained[i]
		acks, counts := 0, map[string]int{}
		for _, f := range got {
			switch f["type"] {
			case "ack":
				acks++
			case "new-message":
				counts[f["text"].(string)]++
			default:
				t.Errorf("%s got unexpected %v", c.name, f)
			}
		}
		if acks != 2 {
			t.Errorf("%s got %d acks, want 2", c.name, acks)
		}
		room := "alpha"
		if strings.HasPrefix(c.name, "b") {
			room = "beta"
		}
		want := 0
		for _, other := range rooms[room] {
			if other == c {
				continue
			}
			for j := range 2 {
				want++
				if n := counts[fmt.Sprintf("%s says %d", other.name, j)]; n != 1 {
					t.Errorf("%s received %q %d times, want once", c.name, fmt.Sprintf("%s says %d", other.name, j), n)
				}
			}
		}
		if total := len(got) - acks; total != want {
			t.Errorf("%s received %d messages, want %d (its room's others', none of its own or the other room's)", c.name, total, want)
		}
	}

	// A malformed frame gets an error and nobody else hears of it.
	alpha, beta := rooms["alpha"], rooms["beta"]
	alpha[0].send(`{"action":"new-message","text":`)
	if f := alpha[0].next("error"); f["code"] != "bad_json" {
		t.Errorf("malformed frame: %v", f)
	}

	// A clean leave.
	alpha[11].ws.Close(websocket.StatusNormalClosure, "bye")
	for _, c := range alpha[:11] {
		if f := c.next("leave"); f["name"] != "a11" {
			t.Errorf("%s: leave %v", c.name, f)
		}
	}

	// sync after a reconnect returns exactly what was missed.
	b7 := beta[7]
	b7.send(`{"action":"sync","limit":100}`)
	before := b7.next("sync")
	msgs := before["messages"].([]any)
	lastSeen := fmt.Sprint(msgs[len(msgs)-1].(map[string]any)["seq"])
	b7.ws.Close(websocket.StatusNormalClosure, "")
	for _, c := range beta[:7] {
		c.next("leave")
	}
	var missed []string
	for i := range 3 {
		beta[0].send(fmt.Sprintf(`{"action":"new-message","text":"missed %d"}`, i))
		missed = append(missed, beta[0].next("ack")["id"].(string))
	}
	collectAll(beta[1:7], func(int) int { return 3 }, quiet)
	back := dial(t, s, "b7", "beta")
	back.send(`{"action":"sync","after":` + lastSeen + `}`)
	sync := back.next("sync")
	var got []string
	for _, m := range sync["messages"].([]any) {
		got = append(got, m.(map[string]any)["id"].(string))
	}
	if strings.Join(got, ",") != strings.Join(missed, ",") || sync["more"] != false {
		t.Errorf("sync after reconnect = %v (more %v), want exactly %v", got, sync["more"], missed)
	}

	// A client that vanishes without a close handshake is pruned by the
	// next broadcast (410), before its late $disconnect.
	open := s.gw.Connections()
	alpha[10].raw.Close()
	for deadline := time.Now().Add(5 * time.Second); s.gw.Connections() != open-1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not notice the dropped socket")
		}
	}
	alpha[0].send(`{"action":"new-message","text":"anyone there?"}`)
	alpha[0].next("ack")
	for _, c := range alpha[1:10] {
		if f := c.next("new-message"); f["text"] != "anyone there?" {
			t.Errorf("%s: %v", c.name, f)
		}
		if f := c.next("leave"); f["name"] != "a10" {
			t.Errorf("%s: after the prune got %v, want leave a10", c.name, f)
		}
	}
	if f := alpha[0].next("leave"); f["name"] != "a10" {
		t.Errorf("a0: %v", f)
	}
	// Only a11's and b7's $disconnect have started: a10's leave came from the prune.
	if n := s.gw.Invocations("$disconnect"); n != 2 {
		t.Errorf("%d $disconnect invocations had started when the leave arrived, want 2", n)
	}

	// Shutting down disconnects everyone; every socket's $disconnect ran once.
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if err := s.gw.Close(ctx); err != nil {
		t.Fatal(err)
	}
	connects, disconnects := s.gw.Invocations("$connect"), s.gw.Invocations("$disconnect")
	if connects != 21 || disconnects != connects {
		t.Errorf("$connect ran %d times, $disconnect %d times; want 21 each", connects, disconnects)
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = run(t.Context(), []string{"localgw", "-addr", ln.Addr().String(), "-template", "../../template.yaml"},
		func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "-addr") {
		t.Errorf("err = %v, want one line saying the port is in use and which flag moves it", err)
	}
}

// One client flooding its connection hurts no one else: it gets an answer
// to every frame (acks up to its burst, then rate_limited), and a client
// in another room gets every ack and every message.
func TestFloodIsContained(t *testing.T) {
	s := startStack(t, func(o *options) {
		o.limits.ThrottlingRateLimit = 0 // only the chat's own per-connection limit
		o.logLevel = slog.LevelWarn
	})
	flooder := dial(t, s, "flood", "noisy")
	ana, bo := arrive(t, s, "ana", "quiet"), arrive(t, s, "bo", "quiet")
	ana.next("join")
	const n = 300
	start := time.Now()
	go func() {
		for i := range n {
			flooder.ws.Write(context.Background(), websocket.MessageText,
				[]byte(fmt.Sprintf(`{"action":"new-message","text":"flood %d","clientId":"f%d"}`, i, i)))
		}
	}()
	for i := range 5 {
		bo.send(fmt.Sprintf(`{"action":"new-message","text":"quiet %d","clientId":"q%d"}`, i, i))
		time.Sleep(50 * time.Millisecond)
	}
	for range 5 {
		bo.next("ack")
		if f := ana.next("new-message"); !strings.HasPrefix(f["text"].(string), "quiet ") {
			t.Errorf("ana: %v", f)
		}
	}
	counts := map[string]int{}
	for _, f := range flooder.collect(n, 300*time.Millisecond) {
		key := fmt.Sprint(f["type"])
		if f["type"] == "error" {
			key += " " + fmt.Sprint(f["code"])
			if f["retryAfterMs"] == nil {
				t.Errorf("rate_limited without retryAfterMs: %v", f)
			}
		}
		counts[key]++
	}
	// The burst passes at once, then one a 200 ms, while the flood lasts.
	rate := chat.DefaultLimits().Messages
	most := rate.Burst + int(time.Since(start)/rate.Interval()) + 1
	if counts["ack"] < rate.Burst || counts["ack"] > most || counts["ack"]+counts["error rate_limited"] != n {
		t.Errorf("the flooder got %v; want %d to %d acks and rate_limited for the rest of %d", counts, rate.Burst, most, n)
	}
}

// The local stack lets only its own page open the socket, as the deployed
// stack lets only its CloudFront site; tools that send no Origin get in.
func TestOnlyThePageOriginConnects(t *testing.T) {
	s := startStack(t, func(o *options) { o.webDir, o.webAddr = "../../web", "127.0.0.1:0" })
	page := strings.TrimSuffix(s.webURL, "/")
	for origin, want := range map[string]int{page: http.StatusSwitchingProtocols, "https://evil.example": http.StatusForbidden, "": http.StatusSwitchingProtocols} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.Dial(t.Context(), s.websocketURL+"?name=Ana", &websocket.DialOptions{HTTPHeader: h})
		if resp == nil || resp.StatusCode != want {
			t.Errorf("Origin %q: %v, %v; want status %d", origin, resp, err, want)
		}
		if c != nil {
			c.CloseNow()
		}
	}
}

// If its DynamoDB Local dies, the stack says why and stops, and leaves no
// zombie behind.
func TestStopsWhenDynamoDBLocalDies(t *testing.T) {
	if ddbEndpoint == "" {
		t.Skip("end-to-end test: needs Java for DynamoDB Local (skipped with -short)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("finds the stack's DynamoDB Local through /proc")
	}
	javas := func() []string {
		children, _ := exec.Command("pgrep", "-P", strconv.Itoa(os.Getpid()), "java").Output()
		return strings.Fields(string(children))
	}
	before := javas() // the tests' own DynamoDB Local
	var out dynamolocaltest.Buffer
	errc := make(chan error, 1)
	go func() {
		errc <- run(t.Context(), []string{"localgw", "-addr", "127.0.0.1:0", "-web", "", "-data", "", "-template", "../../template.yaml"},
			func(string) string { return "" }, &out) // its own DynamoDB Local
	}()
	var pid int
	for deadline := time.Now().Add(90 * time.Second); pid == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the stack did not start:\n%s", out.String())
		}
		if !strings.Contains(out.String(), "Chat running") {
			continue
		}
		// The DynamoDB Local the stack started: the new child running
		// java with its main class (the stack starts ElasticMQ too).
		for _, f := range javas() {
			cmdline, _ := os.ReadFile("/proc/" + f + "/cmdline")
			if !slices.Contains(before, f) && strings.Contains(string(cmdline), "dynamodb") {
				pid, _ = strconv.Atoi(f)
			}
		}
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "DynamoDB Local exited") {
			t.Errorf("run returned %v; want it to say DynamoDB Local exited", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the stack kept running without DynamoDB Local:\n%s", out.String())
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("DynamoDB Local (pid %d) was left as a zombie", pid)
	}
}

// The local Management API allows each function what its policy in
// template.yaml allows: the connect function may not post, the disconnect
// function may post but not close.
func TestManagementAPIFollowsTheTemplatesPolicies(t *testing.T) {
	s := startStack(t, nil)
	c := dial(t, s, "Ana", "iam")
	c.send(`{"action":"ping"}`)
	c.next("pong")
	as := func(fn string) *apigatewaymanagementapi.Client {
		return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{BaseEndpoint: aws.String(s.managementURL),
			Region: localRegion, Credentials: credentials.NewStaticCredentialsProvider("local"+fn, "local", "")})
	}
	id := "R1kmxc2VNjMCFIA=" // well formed, not connected: allowed calls get 410
	var ae smithy.APIError
	_, err := as("ConnectFunction").DeleteConnection(t.Context(), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: &id})
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Errorf("the connect function closing a connection: %v; want AccessDeniedException", err)
	}
	_, err = as("MessageFunction").DeleteConnection(t.Context(), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: &id})
	if !errors.As(err, new(*mgmttypes.GoneException)) {
		t.Errorf("the message function closing a connection: %v; want it allowed (410 for one that is gone)", err)
	}
	_, err = as("ConnectFunction").PostToConnection(t.Context(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("x")})
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Errorf("the connect function posting: %v; want AccessDeniedException", err)
	}
	_, err = as("DisconnectFunction").PostToConnection(t.Context(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("x")})
	if !errors.As(err, new(*mgmttypes.GoneException)) {
		t.Errorf("the disconnect function posting: %v; want it allowed (410 for one that is gone)", err)
	}
}

// With sign-in on (Auth=jwt), make run's identity provider issues the
// tokens: a signed-in user joins under the account's name whatever the
// query says, and a missing or forged token is refused before $connect
// writes anything. The authorizer is given no JWKS URL: it finds the
// provider's keys, which are not where Cognito keeps them, through the
// provider's discovery document.
func TestSignIn(t *testing.T) {
	s := startStack(t, func(o *options) { o.params["Auth"] = "jwt" })
	if s.idp == nil {
		t.Fatal("Auth=jwt without an issuer started no identity provider")
	}
	token := func(user string) string {
		tok, err := s.idp.Token(t.Context(), user)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	anaToken := token("ana")
	// Another issuer's token for the same user: the signature is not ours.
	other, err := idplocal.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.Token(t.Context(), "ana")
	other.Close()
	if err != nil {
		t.Fatal(err)
	}
	refused := map[string]struct {
		subprotocols []string
		status       int
	}{
		"no token":             {nil, http.StatusUnauthorized}, // API Gateway's own: no identity source
		"only the protocol":    {[]string{"chat"}, http.StatusForbidden},
		"another issuer's":     {[]string{"chat", forged}, http.StatusForbidden},
		"a tampered signature": {[]string{"chat", anaToken[:len(anaToken)-4] + "AAAA"}, http.StatusForbidden},
		"not a JWT":            {[]string{"chat", "not-a-token"}, http.StatusForbidden},
		"a JWT of garbage":     {[]string{"chat", "bm90.YSB0b2tlbg.c2ln"}, http.StatusForbidden},
	}
	for what, tt := range refused {
		c, resp, err := websocket.Dial(t.Context(), s.websocketURL+"?name=Mallory&room=signed", &websocket.DialOptions{Subprotocols: tt.subprotocols})
		if c != nil {
			c.CloseNow()
		}
		if resp == nil || resp.StatusCode != tt.status {
			t.Errorf("%s: %v, %v; want status %d", what, resp, err, tt.status)
		}
	}

	ana := dialWith(t, s, "ana", "?name=Mallory&room=signed", []string{"chat", anaToken})
	if p := ana.ws.Subprotocol(); p != "chat" {
		t.Errorf("agreed subprotocol %q, want chat", p)
	}
	ana.send(`{"action":"sync"}`)
	ana.next("sync")
	bo := dialWith(t, s, "bo", "?name=Ana&room=signed", []string{"chat", token("bo")})
	bo.send(`{"action":"sync"}`)
	f := bo.next("sync")
	if f := ana.next("join"); f["name"] != "bo" || f["userId"] != chat.AccountUserID("bo") {
		t.Errorf("Ana heard %v, want bo joining as %s", f, chat.AccountUserID("bo"))
	}
	var members []string
	for _, m := range f["members"].([]any) {
		m := m.(map[string]any)
		members = append(members, m["name"].(string)+"="+m["userId"].(string))
	}
	slices.Sort(members)
	if want := []string{"ana=" + chat.AccountUserID("ana"), "bo=" + chat.AccountUserID("bo")}; !slices.Equal(members, want) {
		t.Errorf("members %v, want %v: the refused handshakes left no one behind, and names come from the accounts", members, want)
	}
	ana.send(`{"action":"new-message","text":"signed","clientId":"s1"}`)
	if f := bo.next("new-message"); f["name"] != "ana" || f["userId"] != chat.AccountUserID("ana") {
		t.Errorf("Bo got %v", f)
	}

	// A private room over real WebSockets: Ana makes it; Bo, an outsider,
	// is refused as for a room that does not exist, until Ana adds him;
	// removed, he is cut off and refused again.
	refusedFrom := func(who, room string) int {
		c, resp, _ := websocket.Dial(t.Context(), s.websocketURL+"?room="+room, &websocket.DialOptions{Subprotocols: []string{"chat", token(who)}})
		if c != nil {
			c.CloseNow()
			return http.StatusSwitchingProtocols
		}
		return resp.StatusCode
	}
	anaCrew := dialWith(t, s, "ana", "?room=~crew&create=1", []string{"chat", token("ana")})
	anaCrew.send(`{"action":"sync"}`)
	anaCrew.next("sync")
	for _, room := range []string{"~crew", "~nothing"} {
		if code := refusedFrom("bo", room); code != http.StatusForbidden {
			t.Errorf("Bo, an outsider, to %s: status %d, want 403", room, code)
		}
	}
	anaCrew.send(`{"action":"invite","userId":"` + chat.AccountUserID("bo") + `"}`)
	anaCrew.next("access")
	boCrew := dialWith(t, s, "bo", "?room=~crew", []string{"chat", token("bo")})
	boCrew.send(`{"action":"sync"}`)
	boCrew.next("sync")
	anaCrew.next("join")
	anaCrew.send(`{"action":"new-message","text":"crew only","clientId":"p1"}`)
	if f := boCrew.next("new-message"); f["text"] != "crew only" {
		t.Errorf("Bo in ~crew got %v", f)
	}
	anaCrew.next("ack")
	anaCrew.send(`{"action":"remove","userId":"` + chat.AccountUserID("bo") + `"}`)
	anaCrew.next("access")
	if f := boCrew.next("access"); f["userId"] != chat.AccountUserID("bo") || f["role"] != "" {
		t.Errorf("Bo was told %v, want his removal", f)
	}
	if rest := boCrew.drain(3 * time.Second); len(rest) > 0 {
		t.Errorf("Bo, removed, still got %v", rest)
	}
	select {
	case _, open := <-boCrew.frames:
		if open {
			t.Error("Bo got a frame after his removal")
		}
	case <-time.After(5 * time.Second):
		t.Error("Bo's connection to ~crew is still open 5 s after his removal")
	}
	if code := refusedFrom("bo", "~crew"); code != http.StatusForbidden {
		t.Errorf("Bo, removed, connects again: status %d, want 403", code)
	}
}

// A room of several shards is fanned out through the local SQS server:
// the message function queues a job per shard and the fan-out function,
// which the stack invokes as Lambda's event source mapping would, posts
// to each. Every member gets each message once, as in a small room.
func TestLargeRoomFansOutThroughTheQueue(t *testing.T) {
	var prefix string
	s := startStack(t, func(o *options) {
		o.env[app.EnvShardSize] = "2" // 8 users: 4 shards
		o.env[app.EnvListedRoomSize] = "4"
		prefix = o.tablePrefix
	})
	var members []*client
	for i := range 8 {
		// As arrive, but a count pushed through the queue may come first.
		c := dial(t, s, fmt.Sprintf("m%d", i), "big")
		c.send(`{"action":"sync"}`)
		if !slices.ContainsFunc(c.drain(500*time.Millisecond), func(f map[string]any) bool { return f["type"] == "sync" }) {
			t.Fatalf("%s: no sync reply", c.name)
		}
		members = append(members, c)
	}
	out, err := dynamolocal.Client(ddbEndpoint).GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName: aws.String(prefix + "ConnectionsTable"),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "plog#big"},
			"sk": &types.AttributeValueMemberS{Value: "head"}}})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := out.Item["shards"].(*types.AttributeValueMemberN); n == nil || n.Value == "1" {
		t.Fatalf("the room's head says shards %v; want several", out.Item["shards"])
	}
	for _, m := range members {
		m.drain(300 * time.Millisecond) // the counts pushed as it filled
	}
	for i, from := range members[:3] {
		from.send(fmt.Sprintf(`{"action":"new-message","text":"hello %d","clientId":"h%d"}`, i, i))
	}
	got := collectAll(members, func(int) int { return 3 }, time.Second) // the senders: an ack and two messages
	for i, frames := range got {
		var texts []string
		acks := 0
		for _, f := range frames {
			switch f["type"] {
			case "new-message":
				texts = append(texts, f["text"].(string))
			case "ack":
				acks++
			}
		}
		if want := 1 - min(i/3, 1); acks != want {
			t.Errorf("%s got %d acks, want %d", members[i].name, acks, want)
		}
		slices.Sort(texts)
		var want []string
		for k := range 3 {
			if k != i {
				want = append(want, fmt.Sprint("hello ", k))
			}
		}
		if !slices.Equal(texts, want) {
			t.Errorf("%s got %v; want %v, each once", members[i].name, texts, want)
		}
	}
}
