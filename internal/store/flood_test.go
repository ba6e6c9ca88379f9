package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/dynamolocal/dynamolocaltest"
	"github.com/chatgo/serverless-chat/internal/store"
)

// BenchmarkFloodBystander measures what a flood that passes the stage's
// burst does to someone else on DynamoDB Local: a connection with an empty
// message bucket sends 230 frames at once (about what API Gateway's burst
// of 200 lets through in docs/benchmarks.md section 6, each one
// TakeToken refused), and 2 ms into that burst a connection in another
// room takes a token of its own. It reports how long the burst took and
// how long the bystander waited (docs/benchmarks.md, section 6).
func BenchmarkFloodBystander(b *testing.B) {
	if endpoint == "" {
		b.Skip("needs DynamoDB Local")
	}
	client, names := dynamolocaltest.NewTables(b, endpoint)
	db := store.New(client, store.Tables{Connections: names["ConnectionsTable"], Messages: names["MessagesTable"]})
	ctx := b.Context()
	now := time.Now()
	for _, c := range []chat.Connection{{ID: "flooder", Room: "flood", UserID: "u-f", Name: "F", ConnectedAt: now},
		{ID: "bystander", Room: "other", UserID: "u-b", Name: "B", ConnectedAt: now}} {
		if _, _, err := db.PutConnection(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	limit := chat.DefaultLimits().Messages
	bystanderRate := chat.Rate{What: chat.RateReads, PerSecond: 1e6, Burst: 1 << 20} // never refused
	const frames = 230
	var burst, waited time.Duration
	for b.Loop() {
		for {
			_, wait, err := db.TakeToken(ctx, "u-f", limit, now, time.Time{}) // empty the bucket
			if err != nil {
				b.Fatal(err)
			}
			if wait > 0 {
				break
			}
		}
		var wg sync.WaitGroup
		start := time.Now()
		for range frames {
			wg.Go(func() {
				if _, wait, err := db.TakeToken(ctx, "u-f", limit, now, time.Time{}); err != nil || wait == 0 {
					b.Errorf("a flood frame got wait %v, err %v; want refused", wait, err)
				}
			})
		}
		time.Sleep(2 * time.Millisecond)
		t0 := time.Now()
		if _, _, err := db.TakeToken(ctx, "u-b", bystanderRate, now, time.Time{}); err != nil {
			b.Fatal(err)
		}
		waited += time.Since(t0)
		wg.Wait()
		burst += time.Since(start)
	}
	b.ReportMetric(float64(burst.Milliseconds())/float64(b.N), "burst-ms")
	b.ReportMetric(float64(waited.Microseconds())/1000/float64(b.N), "bystander-ms")
}
