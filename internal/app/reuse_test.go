package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/chatgo/serverless-chat/internal/fanout"
)

// BenchmarkBroadcastConnections posts one broadcast of 1,000 frames at the
// default bound through the real Management API client to a server that
// answers in 2 ms, with the SDK's default HTTP client and with the tuned
// one, and counts the TCP connections each opens per broadcast.
func BenchmarkBroadcastConnections(b *testing.B) {
	for _, tc := range []struct {
		name   string
		client aws.HTTPClient
	}{
		{"sdk-default", awshttp.NewBuildableClient()},
		{"tuned", newHTTPClient(64)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var dials atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				time.Sleep(2 * time.Millisecond)
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					dials.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			sender := fanout.New(func(ep string) fanout.Poster {
				return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{BaseEndpoint: aws.String(ep),
					Region: "us-east-1", HTTPClient: tc.client,
					Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
			}, fanout.Options{Concurrency: 64})
			ids := make([]string, 1000)
			for i := range ids {
				ids[i] = fmt.Sprintf("c%04d", i)
			}
			payload := []byte(`{"type":"new-message","id":"01JDQ8Z6K3V2M4N5P6Q7R8S9T0","room":"general","name":"Ana","text":"hello"}`)
			sender.Send(context.Background(), srv.URL, ids[:64], payload) // warm: the first connections
			dials.Store(0)
			b.ResetTimer()
			for b.Loop() {
				if res := sender.Send(context.Background(), srv.URL, ids, payload); res.Sent != len(ids) {
					b.Fatalf("sent %d of %d", res.Sent, len(ids))
				}
			}
			b.ReportMetric(float64(dials.Load())/float64(b.N), "dials/broadcast")
		})
	}
}
