package fanout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// fakePoster records concurrency and answers with PostFn.
type fakePoster struct {
	PostFn   func(ctx context.Context, id string) error
	inFlight atomic.Int64
	maxSeen  atomic.Int64
	posted   atomic.Int64
}

func (f *fakePoster) PostToConnection(ctx context.Context, in *apigatewaymanagementapi.PostToConnectionInput,
	_ ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	var err error
	if f.PostFn != nil {
		err = f.PostFn(ctx, *in.ConnectionId)
	}
	if err == nil {
		f.posted.Add(1)
	}
	return &apigatewaymanagementapi.PostToConnectionOutput{}, err
}

func (f *fakePoster) GetConnection(ctx context.Context, in *apigatewaymanagementapi.GetConnectionInput,
	_ ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.GetConnectionOutput, error) {
	var err error
	if f.PostFn != nil {
		err = f.PostFn(ctx, *in.ConnectionId)
	}
	return &apigatewaymanagementapi.GetConnectionOutput{}, err
}

func (f *fakePoster) DeleteConnection(ctx context.Context, in *apigatewaymanagementapi.DeleteConnectionInput,
	_ ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.DeleteConnectionOutput, error) {
	var err error
	if f.PostFn != nil {
		err = f.PostFn(ctx, *in.ConnectionId)
	}
	return &apigatewaymanagementapi.DeleteConnectionOutput{}, err
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c%05d", i)
	}
	return out
}

func newSender(p Poster, o Options) *Sender {
	return New(func(string) Poster { return p }, o)
}

func TestSendHonoursBound(t *testing.T) {
	for _, bound := range []int{1, 4, 64} {
		t.Run(fmt.Sprint("bound ", bound), func(t *testing.T) {
			p := &fakePoster{PostFn: func(context.Context, string) error {
				time.Sleep(time.Millisecond) // long enough for workers to overlap
				return nil
			}}
			res := newSender(p, Options{Concurrency: bound}).Send(t.Context(), "ep", ids(300), []byte("x"))
			if res.Sent != 300 || res.Recipients != 300 {
				t.Errorf("result %+v, want 300 sent", res)
			}
			if got := p.maxSeen.Load(); got > int64(bound) {
				t.Errorf("max in flight = %d, bound %d", got, bound)
			}
			if got := p.maxSeen.Load(); bound > 1 && got < 2 {
				t.Errorf("max in flight = %d: posts ran one at a time", got)
			}
		})
	}
}

func TestSendCountsOutcomes(t *testing.T) {
	goneIDs := []string{"c00003", "c00010", "c00042"}
	p := &fakePoster{PostFn: func(_ context.Context, id string) error {
		switch {
		case slices.Contains(goneIDs, id):
			return &types.GoneException{Message: new("gone")}
		case id == "c00005" || id == "c00006":
			return &types.LimitExceededException{}
		case id == "c00007":
			return errors.New("connection reset by peer")
		case id == "c00008":
			panic("poster bug")
		}
		return nil
	}}
	res := newSender(p, Options{Concurrency: 8, Budget: 100 * time.Millisecond}).Send(t.Context(), "ep", ids(50), []byte("x"))
	slices.Sort(res.Gone)
	if !slices.Equal(res.Gone, goneIDs) {
		t.Errorf("Gone = %v, want %v", res.Gone, goneIDs)
	}
	if res.Sent != 50-3-2-2 || res.Throttled != 2 || res.Failed != 2 || res.Recipients != 50 {
		t.Errorf("result = %+v, want sent 43, throttled 2, failed 2", res)
	}
}

// A connection that never answers is cut off by the per-post timeout and
// does not hold up the rest.
func TestSlowConnectionDoesNotBlockOthers(t *testing.T) {
	const n = 40
	var othersDoneBeforeSlow int64
	p := &fakePoster{}
	p.PostFn = func(ctx context.Context, id string) error {
		if id == "c00000" {
			<-ctx.Done()
			othersDoneBeforeSlow = p.posted.Load()
			return ctx.Err()
		}
		return nil
	}
	res := newSender(p, Options{Concurrency: 4, Timeout: 200 * time.Millisecond, Budget: 300 * time.Millisecond}).Send(t.Context(), "ep", ids(n), []byte("x"))
	if res.Sent != n-1 || res.Failed != 1 {
		t.Errorf("result = %+v, want %d sent and 1 failed", res, n-1)
	}
	if othersDoneBeforeSlow != n-1 {
		t.Errorf("%d of %d other posts finished while the slow one hung, want all", othersDoneBeforeSlow, n-1)
	}
}

// Posts that are throttled, fail with a 5xx or time out are tried again
// until they succeed, within the budget; 410s and other errors are not.
func TestSendRetriesWithinBudget(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	p := &fakePoster{PostFn: func(ctx context.Context, id string) error {
		mu.Lock()
		calls[id]++
		n := calls[id]
		mu.Unlock()
		switch {
		case id == "c00000" && n <= 3: // throttled three times
			return &types.LimitExceededException{}
		case id == "c00001" && n <= 2: // a 500, then a 503
			return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 500 + 3*(n-1)}}, Err: errors.New("internal")}
		case id == "c00002" && n == 1: // times out once
			<-ctx.Done()
			return ctx.Err()
		case id == "c00003": // always a 500: fails when the budget ends
			return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 500}}, Err: errors.New("internal")}
		case id == "c00004":
			return &types.GoneException{}
		case id == "c00005":
			return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 400}}, Err: errors.New("bad request")}
		}
		return nil
	}}
	start := time.Now()
	res := newSender(p, Options{Timeout: 100 * time.Millisecond, Budget: 1500 * time.Millisecond}).Send(t.Context(), "ep", ids(8), []byte("x"))
	if res.Sent != 5 || len(res.Gone) != 1 || res.Failed != 2 || res.Throttled != 0 {
		t.Errorf("result = %+v; want 5 sent (3 after retries), 1 gone, 2 failed", res)
	}
	if calls["c00000"] != 4 || calls["c00001"] != 3 || calls["c00002"] != 2 || calls["c00004"] != 1 || calls["c00005"] != 1 {
		t.Errorf("calls = %v", calls)
	}
	if calls["c00003"] < 3 || time.Since(start) > 3*time.Second {
		t.Errorf("an always-failing post was tried %d times in %v; want several, within about the budget", calls["c00003"], time.Since(start))
	}
	if res.Retries != 3+2+1+calls["c00003"]-1 {
		t.Errorf("retries = %d", res.Retries)
	}
}

func TestProbeAndClose(t *testing.T) {
	p := &fakePoster{PostFn: func(_ context.Context, id string) error {
		if id == "c00001" {
			return &types.GoneException{}
		}
		return nil
	}}
	s := newSender(p, Options{})
	if res := s.Probe(t.Context(), "ep", ids(3)); res.Sent != 2 || len(res.Gone) != 1 || res.Gone[0] != "c00001" {
		t.Errorf("probe = %+v", res)
	}
	if err := s.Close(t.Context(), "ep", "c00001"); err != nil {
		t.Errorf("closing a gone connection: %v", err)
	}
}

func TestOnePosterPerEndpoint(t *testing.T) {
	var mu sync.Mutex
	made := map[string]int{}
	s := New(func(ep string) Poster {
		mu.Lock()
		defer mu.Unlock()
		made[ep]++
		return &fakePoster{}
	}, Options{})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { s.Send(t.Context(), fmt.Sprint("ep", i%2), ids(3), nil) })
	}
	wg.Wait()
	if len(made) != 2 || made["ep0"] != 1 || made["ep1"] != 1 {
		t.Errorf("posters made per endpoint = %v, want one each", made)
	}
}

func TestSendToNobody(t *testing.T) {
	p := &fakePoster{}
	if res := newSender(p, Options{}).Send(t.Context(), "ep", nil, []byte("x")); res.Recipients != 0 || p.posted.Load() != 0 {
		t.Errorf("result = %+v", res)
	}
}

// BenchmarkSend measures one broadcast with a simulated Management API
// latency against the ideal N·latency/bound. docs/benchmarks.md records it.
func BenchmarkSend(b *testing.B) {
	const latency = 20 * time.Millisecond
	for _, n := range []int{1000, 10000} {
		for _, bound := range []int{64, 256} {
			b.Run(fmt.Sprintf("n=%d/bound=%d", n, bound), func(b *testing.B) {
				p := &fakePoster{PostFn: func(context.Context, string) error { time.Sleep(latency); return nil }}
				s := newSender(p, Options{Concurrency: bound, Timeout: time.Second})
				list := ids(n)
				payload := make([]byte, 200)
				peak := peakHeap(b)
				b.ResetTimer()
				for b.Loop() {
					if res := s.Send(context.Background(), "ep", list, payload); res.Sent != n {
						b.Fatalf("sent %d of %d", res.Sent, n)
					}
				}
				b.StopTimer()
				ideal := time.Duration(n) * latency / time.Duration(bound)
				wall := b.Elapsed() / time.Duration(b.N)
				b.ReportMetric(float64(wall.Milliseconds()), "wall-ms")
				b.ReportMetric(float64(ideal.Milliseconds()), "ideal-ms")
				b.ReportMetric(float64(wall)/float64(ideal), "x-ideal")
				b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MiB")
			})
		}
	}
}

// peakHeap samples the heap in use until the returned function is called
// and returns the peak above the starting level.
func peakHeap(b *testing.B) func() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-t.C:
				runtime.ReadMemStats(&m)
				if m.HeapInuse > base && m.HeapInuse-base > peak.Load() {
					peak.Store(m.HeapInuse - base)
				}
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}
