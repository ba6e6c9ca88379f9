package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatgo/serverless-chat/internal/dynamolocal"
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

	gwPort := freePort(t)
	prefix := "rie-" + rand.Text()[:8] + "-"
	tables := map[string]string{}
	tbls, _ := tmpl.Tables()
	for _, tb := range tbls {
		tables[tb.LogicalID] = prefix + tb.LogicalID
	}
	env := functionEnv(tmpl, tables, ddbEndpoint, fmt.Sprintf("http://127.0.0.1:%d/prod", gwPort), nil)

	lambdas := map[string]string{}
	for _, fn := range tmpl.Functions() {
		bootstrap := buildBootstrap(t, root, samtemplate.FunctionPackage(fn))
		lambdas[fn] = startRIE(t, rie, bootstrap, fn, env[fn])
	}
	s, _ := startStack(t, func(o *options) {
		o.addr = fmt.Sprintf("127.0.0.1:%d", gwPort)
		o.tablePrefix = prefix
		o.lambdas = lambdas
	})

	ana := dial(t, s, "Ana", "rie")
	bo := dial(t, s, "Bo", "rie")
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
func goInstall(t *testing.T, root, module, name string) string {
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

// startRIE runs one emulator hosting bootstrap and returns its invocation URL.
func startRIE(t *testing.T, rie, bootstrap, fn string, env map[string]string) string {
	t.Helper()
	port, apiPort := freePort(t), freePort(t)
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", port),
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", apiPort), bootstrap)
	cmd.Env = append(os.Environ(), "AWS_REGION=us-east-1", "AWS_LAMBDA_FUNCTION_NAME="+fn)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s under RIE:\n%s", fn, logs.String())
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RIE for %s did not listen on %s", fn, addr)
		}
	}
	return "http://" + addr + "/2015-03-31/functions/function/invocations"
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
