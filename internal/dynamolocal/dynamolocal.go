package dynamolocal

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// EnvEndpoint names the variable that points at a DynamoDB Local already
// running, which Start then reuses.
const EnvEndpoint = "DYNAMODB_ENDPOINT"

// Version is the DynamoDB Local release fetched from Maven Central; pom.xml
// names the same one.
const Version = "3.3.1"

//go:embed pom.xml
var pom []byte

// Server is a DynamoDB Local that Start started or found.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	cmd       *exec.Cmd
	container string
	output    *output
	exited    chan struct{} // closed when the process Start launched has exited (and been reaped)
	exitErr   error
}

// output keeps the end of a process's output, safe for the writes of the
// process and the reads of whoever reports on it.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.b.Len() > 64<<10 { // keep the last part only
		o.b.Next(o.b.Len() - 32<<10)
	}
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Exited is closed when a DynamoDB Local that Start launched exits; it is
// nil (never ready) for one that was found running or runs in Docker.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// ExitReason says how the launched process ended, with the end of its
// output; call it after Exited is closed.
func (s *Server) ExitReason() string {
	out := strings.TrimSpace(s.output.String())
	if i := strings.LastIndexByte(out[:max(len(out)-2000, 0)], '\n'); i >= 0 {
		out = out[i+1:]
	}
	return fmt.Sprintf("%v; last output:\n%s", s.exitErr, out)
}

// Start returns a DynamoDB Local ready to serve. getenv is os.Getenv in
// programs and tests alike. With dataDir set, a DynamoDB Local that Start
// launches keeps its data there across restarts; otherwise in memory. The
// caller must Close it.
func Start(ctx context.Context, getenv func(string) string, dataDir string) (*Server, error) {
	if ep := getenv(EnvEndpoint); ep != "" {
		s := &Server{Endpoint: ep}
		if err := s.wait(ctx, 10*time.Second); err != nil {
			return nil, fmt.Errorf("%s=%s does not answer: %w", EnvEndpoint, ep, err)
		}
		return s, nil
	}
	if _, err := exec.LookPath("java"); err == nil {
		return startJava(ctx, dataDir)
	}
	if dockerRunning(ctx) {
		return startDocker(ctx) // in memory: a container's data would not outlive it
	}
	return nil, errors.New("DynamoDB Local needs Java 17 (apt-get install openjdk-17-jre-headless) " +
		"or a running Docker engine, or set " + EnvEndpoint + " to one already running")
}

func startJava(ctx context.Context, dataDir string) (*Server, error) {
	lib, err := fetch(ctx)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), output: &output{}, exited: make(chan struct{})}
	storage := []string{"-inMemory"}
	if dataDir != "" {
		if dataDir, err = filepath.Abs(dataDir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, err
		}
		storage = []string{"-dbPath", dataDir}
	}
	args := append([]string{"-Xmx1g", "-Djava.library.path=" + lib, "-cp", filepath.Join(lib, "*"),
		"software.amazon.dynamodb.services.local.main.ServerRunner", "-sharedDb", "-disableTelemetry",
		"-port", strconv.Itoa(port)}, storage...)
	s.cmd = exec.Command("java", args...)
	// DynamoDB Local writes dynamodb-local-metadata.json into its working
	// directory: keep it out of the repository.
	s.cmd.Dir = os.TempDir()
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // die with the test binary
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start DynamoDB Local: %w", err)
	}
	go func() {
		s.exitErr = s.cmd.Wait() // reaps it: no zombie, whoever stops it
		close(s.exited)
	}()
	if err := s.wait(ctx, 60*time.Second); err != nil {
		s.Close()
		return nil, fmt.Errorf("DynamoDB Local did not start: %w\n%s", err, s.output)
	}
	return s, nil
}

// fetch makes sure the DynamoDB Local jars are in the cache and returns
// their folder. Concurrent test binaries serialise on a lock file.
func fetch(ctx context.Context) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".cache", "dynamodb-local", Version)
	lib := filepath.Join(dir, "lib")
	if _, err := os.Stat(filepath.Join(lib, "DynamoDBLocal-"+Version+".jar")); err == nil {
		return lib, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(lib, "DynamoDBLocal-"+Version+".jar")); err == nil {
		return lib, nil // another process fetched it while we waited
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		return "", errors.New("fetching DynamoDB Local needs Maven (apt-get install maven), or set " + EnvEndpoint)
	}
	if err := os.WriteFile(filepath.Join(dir, "pom.xml"), pom, 0o644); err != nil {
		return "", err
	}
	tmp := lib + ".tmp"
	os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "-f", filepath.Join(dir, "pom.xml"),
		"dependency:copy-dependencies", "-DoutputDirectory="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("fetch DynamoDB Local with mvn: %w\n%s", err, out)
	}
	if err := os.Rename(tmp, lib); err != nil {
		return "", err
	}
	return lib, nil
}

func dockerRunning(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "info").Run() == nil
}

func startDocker(ctx context.Context) (*Server, error) {
	out, err := exec.CommandContext(ctx, "docker", "run", "-d", "--rm", "-p", "127.0.0.1::8000",
		"amazon/dynamodb-local", "-jar", "DynamoDBLocal.jar", "-inMemory", "-sharedDb").Output()
	if err != nil {
		return nil, fmt.Errorf("docker run amazon/dynamodb-local: %w", err)
	}
	s := &Server{container: strings.TrimSpace(string(out))}
	port, err := exec.CommandContext(ctx, "docker", "port", s.container, "8000/tcp").Output()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("docker port: %w", err)
	}
	_, p, _ := strings.Cut(strings.TrimSpace(strings.Split(string(port), "\n")[0]), ":")
	s.Endpoint = "http://127.0.0.1:" + p
	if err := s.wait(ctx, 60*time.Second); err != nil {
		s.Close()
		return nil, fmt.Errorf("DynamoDB Local in Docker did not start: %w", err)
	}
	return s, nil
}

// Close stops what Start started; a reused endpoint is left running.
func (s *Server) Close() error {
	switch {
	case s.cmd != nil:
		s.cmd.Process.Kill()
		<-s.exited
	case s.container != "":
		return exec.Command("docker", "stop", s.container).Run()
	}
	return nil
}

func (s *Server) wait(ctx context.Context, limit time.Duration) error {
	client := Client(s.Endpoint)
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-s.exited:
			return errors.New("the process exited")
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := client.ListTables(cctx, &dynamodb.ListTablesInput{})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Client returns a DynamoDB client for a local endpoint, with fixed
// credentials and region (DynamoDB Local checks neither with -sharedDb).
func Client(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

// RepoRoot returns the folder holding go.mod, searching up from the
// working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
