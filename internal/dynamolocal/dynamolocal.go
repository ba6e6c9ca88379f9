package dynamolocal

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/chatgo/serverless-chat/internal/jvm"
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
	Endpoint  string       // http://127.0.0.1:PORT
	proc      *jvm.Process // the process Start launched, if it did
	tmp       string       // its working and temporary folder (jvm.TempDir)
	removeTmp func()       // removes tmp, in Close
	container string
}

// Exited is closed when a DynamoDB Local that Start launched exits; it is
// nil (never ready) for one that was found running or runs in Docker.
func (s *Server) Exited() <-chan struct{} {
	if s.proc == nil {
		return nil
	}
	return s.proc.Exited()
}

// ExitReason says how the launched process ended, with the end of its
// output; call it after Exited is closed.
func (s *Server) ExitReason() string { return s.proc.ExitReason() }

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
	lib, err := jvm.Fetch(ctx, "dynamodb-local", Version, "DynamoDBLocal-"+Version+".jar", pom)
	if err != nil {
		return nil, fmt.Errorf("DynamoDB Local: %w, or set %s", err, EnvEndpoint)
	}
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
	// DynamoDB Local writes dynamodb-local-metadata.json into its working
	// folder, and copies SQLite's native library (0.9 MB) into its
	// temporary folder at each start, never removing it: both go into a
	// folder of its own, removed when it stops.
	tmp, removeTmp, err := jvm.TempDir("dynamodb-local")
	if err != nil {
		return nil, err
	}
	launch := func(port int) (*jvm.Process, error) {
		args := append([]string{"-Xmx1g", "-Djava.io.tmpdir=" + tmp, "-Djava.library.path=" + lib, "-cp", filepath.Join(lib, "*"),
			"software.amazon.dynamodb.services.local.main.ServerRunner", "-sharedDb", "-disableTelemetry",
			"-port", strconv.Itoa(port)}, storage...)
		return jvm.Start(tmp, nil, args...)
	}
	proc, port, err := jvm.Serve(ctx, 60*time.Second, launch, func(ctx context.Context, port int) error {
		return answers(ctx, endpoint(port))
	})
	if err != nil {
		removeTmp()
		return nil, fmt.Errorf("DynamoDB Local did not start: %w", err)
	}
	return &Server{Endpoint: endpoint(port), proc: proc, tmp: tmp, removeTmp: removeTmp}, nil
}

func endpoint(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

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
	case s.proc != nil:
		s.proc.Stop()
		s.removeTmp()
	case s.container != "":
		return exec.Command("docker", "stop", s.container).Run()
	}
	return nil
}

// wait returns once the server answers ListTables.
func (s *Server) wait(ctx context.Context, limit time.Duration) error {
	return jvm.Await(ctx, limit, nil, func(ctx context.Context) error { return answers(ctx, s.Endpoint) })
}

// answers checks that the DynamoDB at endpoint answers ListTables.
func answers(ctx context.Context, endpoint string) error {
	_, err := Client(endpoint).ListTables(ctx, &dynamodb.ListTablesInput{})
	return err
}

// Client returns a DynamoDB client for a local endpoint, with fixed
// credentials and region (DynamoDB Local checks neither with -sharedDb).
func Client(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		// DynamoDB Local sends no CRC32 header with its errors
		// (aws/aws-sdk-go-v2#3545); the SDK would warn of a mismatch.
		DisableValidateResponseChecksum: true,
	})
}

// RepoRoot returns the folder holding go.mod, searching up from the
// working directory.
func RepoRoot() (string, error) { return jvm.RepoRoot() }
