package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatgo/serverless-chat/internal/app"
	"github.com/chatgo/serverless-chat/internal/dynamolocal"
	"github.com/chatgo/serverless-chat/internal/dynamolocal/dynamolocaltest"
	"github.com/chatgo/serverless-chat/internal/idplocal"
	"github.com/chatgo/serverless-chat/internal/samtemplate"
)

// rieModule is the Lambda Runtime Interface Emulator, from the Go module
// proxy; the version is pinned (the project tags no releases of the module).
const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// TestChatThroughRIE drives the chat through the very bootstraps sam build
// ships, each run by the Lambda Runtime Interface Emulator: no Docker, and
// nothing of the functions compiled into the test.
func TestChatThroughRIE(t *testing.T) {
	if ddbEndpoint == "" {
		t.Skip("end-to-end test: needs DynamoDB Local (skipped with -short)")
	}
	root, err := dynamolocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rie := goInstall(t, root, rieModule, "aws-lambda-rie")
	tmpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// With sign-in, so that the authorizer runs through RIE too.
	idp, err := idplocal.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	params := map[string]string{"Auth": "jwt", "JwtIssuer": idp.Issuer, "JwtAudience": idplocal.ClientID}
	if err := tmpl.SetParameters(params); err != nil {
		t.Fatal(err)
	}
	apis, err := tmpl.WebSocketAPIs()
	if err != nil {
		t.Fatal(err)
	}

	gwPort := freePort(t)
	prefix := "rie-" + rand.Text()[:8] + "-"
	tables := map[string]string{}
	tbls, _ := tmpl.Tables()
	for _, tb := range tbls {
		tables[tb.LogicalID] = prefix + tb.LogicalID
	}
	env := functionEnv(tmpl, tables, map[string]string{app.EnvDynamoDBEndpoint: ddbEndpoint,
		app.EnvManagementEndpoint: fmt.Sprintf("http://127.0.0.1:%d/prod", gwPort), app.EnvJWKSURL: idp.JWKSURL})

	lambdas := map[string]string{}
	for _, fn := range append(routeFunctions(apis[0]), apis[0].Authorizer.Function) {
		bootstrap := buildBootstrap(t, root, samtemplate.FunctionPackage(fn))
		lambdas[fn] = startRIE(t, rie, bootstrap, fn, env[fn])
	}
	s := startStack(t, func(o *options) {
		o.addr = fmt.Sprintf("127.0.0.1:%d", gwPort)
		o.tablePrefix = prefix
		o.lambdas = lambdas
		maps.Copy(o.params, params)
	})
	signed := func(user string) *client {
		tok, err := idp.Token(t.Context(), user)
		if err != nil {
			t.Fatal(err)
		}
		return dialWith(t, s, user, "?room=rie", []string{"chat", tok})
	}
	// The authorizer refuses with Deny, through RIE too: what is no JWT,
	// and a JWT it cannot verify.
	for tok, want := range map[string]int{"not-a-jwt": http.StatusForbidden, "Zm9y.Z2Vk.dG9rZW4": http.StatusForbidden} {
		if _, resp, _ := websocket.Dial(t.Context(), s.websocketURL+"?name=Eve&room=rie", &websocket.DialOptions{Subprotocols: []string{"chat", tok}}); resp == nil || resp.StatusCode != want {
			t.Errorf("token %q through RIE: %v, want %d", tok, resp, want)
		}
	}

	ana := signed("Ana")
	ana.send(`{"action":"sync"}`)
	ana.next("sync")
	bo := signed("Bo")
	bo.send(`{"action":"sync"}`)
	bo.next("sync")
	if f := ana.next("join"); f["name"] != "Bo" {
		t.Errorf("Ana got %v", f)
	}
	ana.send(`{"action":"new-message","text":"through RIE","clientId":"r1"}`)
	if f := ana.next("ack"); f["clientId"] != "r1" {
		t.Errorf("ack = %v", f)
	}
	if f := bo.next("new-message"); f["text"] != "through RIE" || f["name"] != "Ana" {
		t.Errorf("Bo got %v", f)
	}
	bo.send(`{"action":"sync"}`)
	if f := bo.next("sync"); len(f["messages"].([]any)) != 1 {
		t.Errorf("sync = %v", f)
	}
	bo.ws.Close(websocket.StatusNormalClosure, "")
	if f := ana.next("leave"); f["name"] != "Bo" {
		t.Errorf("Ana got %v", f)
	}
}

// goInstall installs a pinned tool into .cache/bin once.
func goInstall(t testing.TB, root, module, name string) string {
	t.Helper()
	bin := filepath.Join(root, ".cache", "bin")
	path := filepath.Join(bin, name)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	cmd := exec.Command("go", "install", module)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s: %v\n%s", module, err, out)
	}
	return path
}

// buildBootstrap builds a function as sam build does, for this machine's
// architecture.
func buildBootstrap(t *testing.T, root, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-o", out, "./functions/"+dir)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", dir, err, b)
	}
	return out
}

// rieProcess is one Runtime Interface Emulator hosting one bootstrap.
type rieProcess struct {
	url  string // the invocation URL
	addr string
	logs *dynamolocaltest.Buffer
	cmd  *exec.Cmd
}

// launchRIE starts an emulator for bootstrap with the function's
// environment; it may not be listening yet.
func launchRIE(tb testing.TB, rie, bootstrap, fn string, env map[string]string) *rieProcess {
	tb.Helper()
	port, apiPort := freePort(tb), freePort(tb)
	p := &rieProcess{addr: "127.0.0.1:" + strconv.Itoa(port), logs: &dynamolocaltest.Buffer{}}
	p.url = "http://" + p.addr + "/2015-03-31/functions/function/invocations"
	p.cmd = exec.Command(rie, "--runtime-interface-emulator-address", p.addr,
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", apiPort), bootstrap)
	p.cmd.Env = append(os.Environ(), "AWS_REGION=us-east-1", "AWS_LAMBDA_FUNCTION_NAME="+fn)
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	return p
}

func (p *rieProcess) stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// startRIE runs one emulator hosting bootstrap until the test ends and
// returns its invocation URL once it listens.
func startRIE(t *testing.T, rie, bootstrap, fn string, env map[string]string) string {
	t.Helper()
	p := launchRIE(t, rie, bootstrap, fn, env)
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s under RIE:\n%s", fn, p.logs.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", p.addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RIE for %s did not listen on %s", fn, p.addr)
		}
	}
	return p.url
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var (
	initReport   = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)
	invokeReport = regexp.MustCompile(`REPORT RequestId: \S+\s+(?:Init Duration: [0-9.]+ ms\s+)?Duration: ([0-9.]+) ms`)
)

// BenchmarkColdStart measures each function's cold start under the Lambda
// Runtime Interface Emulator: a fresh process per iteration, then one real
// invocation: $connect of a new member (a DynamoDB transaction, a counter
// update, a room query), $disconnect of an unknown connection (one read),
// and a ping (one post to a stub Management API). It reports RIE's INIT and REPORT durations;
// docs/benchmarks.md records the medians.
func BenchmarkColdStart(b *testing.B) {
	if ddbEndpoint == "" {
		b.Skip("needs DynamoDB Local")
	}
	root, _ := dynamolocal.RepoRoot()
	rie := goInstall(b, root, rieModule, "aws-lambda-rie")
	tmpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	prefix := "cold-" + rand.Text()[:8] + "-"
	tables := map[string]string{}
	if err := dynamolocal.CreateTables(b.Context(), dynamolocal.Client(ddbEndpoint), tmpl, func(id string) string {
		tables[id] = prefix + id
		return tables[id]
	}); err != nil {
		b.Fatal(err)
	}
	// A Management API that accepts every post, so replies cost one round trip.
	mgmt := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer mgmt.Close()
	// The authorizer checks a token of the local identity provider, whose
	// keys it fetches on its first invocation.
	idp, err := idplocal.Start(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer idp.Close()
	token, err := idp.Token(b.Context(), "ana")
	if err != nil {
		b.Fatal(err)
	}
	if err := tmpl.SetParameters(map[string]string{"JwtIssuer": idp.Issuer, "JwtAudience": idplocal.ClientID}); err != nil {
		b.Fatal(err)
	}
	env := functionEnv(tmpl, tables, map[string]string{app.EnvDynamoDBEndpoint: ddbEndpoint, app.EnvManagementEndpoint: mgmt.URL + "/prod",
		app.EnvJWKSURL: idp.JWKSURL})
	for _, fn := range tmpl.Functions() {
		b.Run(fn, func(b *testing.B) {
			bootstrap := filepath.Join(root, "bin", runtime.GOARCH, samtemplate.FunctionPackage(fn), "bootstrap")
			if _, err := os.Stat(bootstrap); err != nil {
				b.Skipf("%s: run make build GOARCH=%s first", bootstrap, runtime.GOARCH)
			}
			st, _ := os.Stat(bootstrap)
			var inits, invokes []float64
			for i := 0; b.Loop(); i++ {
				event := fmt.Sprintf(`{"requestContext":{"routeKey":"$connect","eventType":"CONNECT","connectionId":"cold%d%s","stage":"prod","apiId":"x"},"queryStringParameters":{"name":"n%d"}}`, i, prefix, i)
				switch fn {
				case "DisconnectFunction":
					event = `{"requestContext":{"routeKey":"$disconnect","eventType":"DISCONNECT","connectionId":"unknown0000000A="}}`
				case "AuthorizeFunction":
					event = `{"type":"REQUEST","methodArn":"arn:aws:execute-api:us-east-1:000000000000:x/prod/$connect","headers":{"Sec-WebSocket-Protocol":"chat, ` + token + `"},"requestContext":{"routeKey":"$connect","eventType":"CONNECT"}}`
				case "MessageFunction":
					event = `{"requestContext":{"routeKey":"ping","eventType":"MESSAGE","connectionId":"c0000000000000A=","stage":"prod"},"body":"{\"action\":\"ping\"}"}`
				}
				initMs, invokeMs := coldStart(b, rie, bootstrap, fn, env[fn], event)
				inits, invokes = append(inits, initMs), append(invokes, invokeMs)
			}
			b.ReportMetric(median(inits), "init-ms")
			b.ReportMetric(median(invokes), "first-invoke-ms")
			b.ReportMetric(float64(st.Size())/(1<<20), "bootstrap-MiB")
		})
	}
}

func coldStart(b *testing.B, rie, bootstrap, fn string, env map[string]string, event string) (float64, float64) {
	p := launchRIE(b, rie, bootstrap, fn, env)
	defer p.stop()
	logs := p.logs
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		resp, err := http.Post(p.url, "application/json", strings.NewReader(event))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" {
				b.Fatalf("%s: %d %s\n%s", fn, resp.StatusCode, body, logs.String())
			}
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("RIE did not answer:\n%s", logs.String())
		}
	}
	var initMs, invokeMs float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		out := logs.String()
		m1, m2 := initReport.FindStringSubmatch(out), invokeReport.FindStringSubmatch(out)
		if m1 != nil && m2 != nil {
			initMs, _ = strconv.ParseFloat(m1[1], 64)
			invokeMs, _ = strconv.ParseFloat(m2[1], 64)
			return initMs, invokeMs
		}
	}
	b.Fatalf("no INIT/REPORT lines:\n%s", logs.String())
	return 0, 0
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
