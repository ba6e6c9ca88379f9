package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"syscall"
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
			sender := benchSender(tc.client)
			ids := make([]string, 1000)
			for i := range ids {
				ids[i] = fmt.Sprintf("c%04d", i)
			}
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

// payload is a new-message event as a broadcast posts it.
var payload = []byte(`{"type":"new-message","id":"01JDQ8Z6K3V2M4N5P6Q7R8S9T0","room":"general","name":"Ana","text":"hello"}`)

// benchSender is a fan-out through the Management API client as the
// functions build it (fanout.ClientOptions), sending with client.
func benchSender(client aws.HTTPClient) *fanout.Sender {
	return fanout.New(func(ep string) fanout.Poster {
		return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{BaseEndpoint: aws.String(ep),
			Region: "us-east-1", HTTPClient: client,
			Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}, fanout.ClientOptions)
	}, fanout.Options{Concurrency: 64})
}

// BenchmarkPostCost measures what the function pays per post, alone: one
// broadcast to a room of 50 (one post per posting goroutine) and of 1,000 through
// the Management API client as the fan-out builds it, to a transport that
// answers at once without a network, so that nothing on the server's side
// is counted. It reports allocations, bytes and CPU time (user + system,
// all goroutines) per post.
func BenchmarkPostCost(b *testing.B) {
	for _, n := range []int{50, 1000} {
		b.Run(fmt.Sprintf("room=%d", n), func(b *testing.B) {
			sender := benchSender(answerOK{})
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("R1kmxc2VNjMCF%03d=", i)
			}
			ep := "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
			sender.Send(context.Background(), ep, ids, payload) // warm
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			allocs, bytes, cpu := ms.Mallocs, ms.TotalAlloc, cpuTime()
			posts := 0
			for b.Loop() {
				if res := sender.Send(context.Background(), ep, ids, payload); res.Sent != len(ids) {
					b.Fatalf("sent %d of %d", res.Sent, len(ids))
				}
				posts += len(ids)
			}
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.Mallocs-allocs)/float64(posts), "allocs/post")
			b.ReportMetric(float64(ms.TotalAlloc-bytes)/float64(posts), "B/post")
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/1000/float64(posts), "cpu-µs/post")
		})
	}
}

// answerOK answers every request 200 with an empty body, as API Gateway
// answers a post that was delivered.
type answerOK struct{}

func (answerOK) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: http.NoBody, ContentLength: 0, Request: r}, nil
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
