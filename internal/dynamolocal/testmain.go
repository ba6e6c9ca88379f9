package dynamolocal

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
)

// Main runs a package's tests with a DynamoDB Local, whose endpoint it
// stores in *endpoint, and returns the exit code for os.Exit. Under -short
// it starts nothing and leaves *endpoint empty: integration tests skip.
func Main(m *testing.M, endpoint *string) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	srv, err := Start(context.Background(), os.Getenv, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dynamolocal:", err)
		return 1
	}
	defer srv.Close()
	*endpoint = srv.Endpoint
	return m.Run()
}
