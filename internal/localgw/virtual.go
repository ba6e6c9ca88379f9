package localgw

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Virtual members are connections without a socket, for measuring rooms
// larger than one machine holds sockets for: their $connect runs as any
// connection's does, so the functions store them as members, and a post
// to one waits its latency (a post's round trip in AWS) and is counted.

// AddVirtual opens n virtual connections whose $connect has the query q
// (the room, and a name and guest key each is given its own of, numbered),
// running concurrency $connect integrations at a time, and returns how
// many the function accepted.
func (g *Gateway) AddVirtual(ctx context.Context, q map[string]string, n, concurrency int, latency time.Duration) int {
	var accepted atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(concurrency, 1))
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if g.addVirtual(ctx, q, i, latency) {
				accepted.Add(1)
			}
		})
	}
	wg.Wait()
	return int(accepted.Load())
}

func (g *Gateway) addVirtual(ctx context.Context, q map[string]string, i int, latency time.Duration) bool {
	c := &conn{id: newID(), host: "virtual", connectedAt: time.Now(), virtual: max(latency, time.Nanosecond),
		identity: events.APIGatewayRequestIdentity{SourceIP: "192.0.2.1", UserAgent: "virtual"}, ready: make(chan struct{})}
	close(c.ready)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.touch()
	query := maps.Clone(q)
	if query == nil {
		query = map[string]string{}
	}
	query["name"], query["key"] = q["name"]+strconv.Itoa(i), fmt.Sprintf("%svirtual_%08d", q["key"], i)
	ev := events.APIGatewayWebsocketProxyRequest{Headers: map[string]string{}, QueryStringParameters: query,
		RequestContext: g.requestContext(c, "$connect", "CONNECT")}
	resp, err := g.invoke(ctx, "$connect", ev)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		g.cfg.Log.Warn("virtual connection refused", "connectionId", c.id, "status", resp.StatusCode, "err", err)
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.conns[c.id] = c
	return true
}

// VirtualDeliveries returns how many posts virtual connections have had.
func (g *Gateway) VirtualDeliveries() int64 { return g.virtualPosts.Load() }
