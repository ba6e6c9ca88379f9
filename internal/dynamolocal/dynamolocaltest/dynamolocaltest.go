// Package dynamolocaltest runs tests against DynamoDB Local: a TestMain
// that starts it, and fresh tables from template.yaml per test. It is kept
// apart from dynamolocal so that the local gateway, which starts DynamoDB
// Local too, does not link the testing package.
package dynamolocaltest

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/chatgo/serverless-chat/internal/dynamolocal"
	"github.com/chatgo/serverless-chat/internal/samtemplate"
)

// Main runs a package's tests with a DynamoDB Local, whose endpoint it
// stores in *endpoint, and returns the exit code for os.Exit. Under -short
// it starts nothing and leaves *endpoint empty: integration tests skip.
func Main(m *testing.M, endpoint *string) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	srv, err := dynamolocal.Start(context.Background(), os.Getenv, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dynamolocal:", err)
		return 1
	}
	defer srv.Close()
	*endpoint = srv.Endpoint
	return m.Run()
}

// NewTables creates the template's tables under fresh names for one test
// and returns a client and the names by logical id. The tables are deleted
// when the test ends.
func NewTables(tb testing.TB, endpoint string) (*dynamodb.Client, map[string]string) {
	tb.Helper()
	root, err := dynamolocal.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	tmpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	client := dynamolocal.Client(endpoint)
	suffix := rand.Text()[:10]
	names := map[string]string{}
	err = dynamolocal.CreateTables(tb.Context(), client, tmpl, func(id string) string {
		names[id] = id + "-" + suffix
		return names[id]
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for _, n := range names {
			client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(n)})
		}
	})
	return client, names
}

// Buffer is a bytes.Buffer that a stack or a child process may write to
// while a test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
