package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// delivery identifies one message arriving at one client.
type delivery struct{ receiver, sender, seq int32 }

// stats is what the run has measured so far; every field is guarded by mu.
type stats struct {
	mu            sync.Mutex
	connected     int
	connectFailed int
	connectTimes  []time.Duration
	connectErrors map[string]int
	sent, acked   int
	errorFrames   int
	sentAt        map[string]time.Time // clientId → when it was sent, until acked
	ackLatency    []time.Duration
	latency       []time.Duration
	seen          map[delivery]bool
	duplicates    int
	firstSend     time.Time
	lastDelivery  time.Time
}

// frame is the part of a server frame the load tool reads.
type frame struct {
	Type     string `json:"type"`
	ClientID string `json:"clientId"`
	Text     string `json:"text"`
}

func load(ctx context.Context, cfg config, progress io.Writer) report {
	st := &stats{connectErrors: map[string]int{}, sentAt: map[string]time.Time{}, seen: map[delivery]bool{}}
	start := time.Now()
	stopProgress := showProgress(st, cfg, progress)

	conns := connectAll(ctx, cfg, st)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close(websocket.StatusNormalClosure, "load test done")
			}
		}
	}()

	var senders []*websocket.Conn
	var senderIdx []int
	for i, c := range conns {
		if c != nil && len(senders) < cfg.senders {
			senders, senderIdx = append(senders, c), append(senderIdx, i)
		}
	}
	sendAll(ctx, cfg, st, senders, senderIdx)
	waitForDeliveries(ctx, cfg, st)
	stopProgress()
	return st.report(cfg, time.Since(start), ctx.Err() != nil)
}

// connectAll opens the clients, a bounded number at a time, and starts a
// reader for each. A failed client is nil.
func connectAll(ctx context.Context, cfg config, st *stats) []*websocket.Conn {
	conns := make([]*websocket.Conn, cfg.clients)
	sem := make(chan struct{}, cfg.connectConcurrency)
	var wg sync.WaitGroup
	for i := range cfg.clients {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			q := url.Values{"name": {fmt.Sprintf("load-%d", i)}, "room": {cfg.room}}
			dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			t0 := time.Now()
			c, _, err := websocket.Dial(dctx, cfg.url+"?"+q.Encode(), nil)
			st.mu.Lock()
			defer st.mu.Unlock()
			if err != nil {
				st.connectFailed++
				msg := err.Error() // grouped by the innermost cause: the URL differs per client
				if i := strings.LastIndex(msg, ": "); i >= 0 {
					msg = msg[i+2:]
				}
				if len(st.connectErrors) < 5 || st.connectErrors[msg] > 0 {
					st.connectErrors[msg]++
				}
				return
			}
			st.connected++
			st.connectTimes = append(st.connectTimes, time.Since(t0))
			c.SetReadLimit(1 << 20)
			conns[i] = c
			go read(c, int32(i), st)
		})
	}
	wg.Wait()
	return conns
}

// read records every frame a client receives until its socket ends.
func read(c *websocket.Conn, receiver int32, st *stats) {
	for {
		_, data, err := c.Read(context.Background())
		if err != nil {
			return
		}
		now := time.Now()
		var f frame
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		switch f.Type {
		case "ack":
			st.mu.Lock()
			if t, ok := st.sentAt[f.ClientID]; ok {
				delete(st.sentAt, f.ClientID)
				st.acked++
				st.ackLatency = append(st.ackLatency, now.Sub(t))
			}
			st.mu.Unlock()
		case "error":
			st.mu.Lock()
			st.errorFrames++
			st.mu.Unlock()
		case "new-message":
			sender, seq, sentAt, ok := parseText(f.Text)
			if !ok {
				continue
			}
			st.mu.Lock()
			d := delivery{receiver, sender, seq}
			if st.seen[d] {
				st.duplicates++
			} else {
				st.seen[d] = true
				st.latency = append(st.latency, now.Sub(sentAt))
				st.lastDelivery = now
			}
			st.mu.Unlock()
		}
	}
}

// sendAll has each sender send cfg.count messages at cfg.rate, within
// cfg.duration.
func sendAll(ctx context.Context, cfg config, st *stats, senders []*websocket.Conn, idx []int) {
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	interval := time.Duration(float64(time.Second) / cfg.rate)
	st.mu.Lock()
	st.firstSend = time.Now()
	st.mu.Unlock()
	var wg sync.WaitGroup
	for k, c := range senders {
		wg.Go(func() {
			// Senders start spread over one interval, not in lockstep.
			next := time.Now().Add(interval * time.Duration(k) / time.Duration(len(senders)))
			for seq := range cfg.count {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(next)):
				}
				next = next.Add(interval)
				clientID := fmt.Sprintf("l%d-%d", idx[k], seq)
				now := time.Now()
				msg, _ := json.Marshal(map[string]string{"action": "new-message", "clientId": clientID,
					"text": makeText(int32(idx[k]), int32(seq), now, cfg.size)})
				st.mu.Lock()
				st.sentAt[clientID] = now
				st.mu.Unlock()
				wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
				err := c.Write(wctx, websocket.MessageText, msg)
				wcancel()
				st.mu.Lock()
				if err != nil {
					delete(st.sentAt, clientID)
				} else {
					st.sent++
				}
				st.mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}

// waitForDeliveries waits until every acknowledged message has reached
// every other client, or cfg.drain passes without that happening.
func waitForDeliveries(ctx context.Context, cfg config, st *stats) {
	deadline := time.Now().Add(cfg.drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		st.mu.Lock()
		done := st.acked == st.sent && len(st.seen) >= st.acked*(st.connected-1)
		st.mu.Unlock()
		if done {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// makeText encodes who sent a message and when, padded to size.
func makeText(sender, seq int32, at time.Time, size int) string {
	s := fmt.Sprintf("load %d %d %d", sender, seq, at.UnixNano())
	if pad := size - len(s); pad > 1 {
		s += " " + strings.Repeat("x", pad-1)
	}
	return s
}

func parseText(text string) (sender, seq int32, at time.Time, ok bool) {
	f := strings.Fields(text)
	if len(f) < 4 || f[0] != "load" {
		return 0, 0, time.Time{}, false
	}
	s, err1 := strconv.ParseInt(f[1], 10, 32)
	q, err2 := strconv.ParseInt(f[2], 10, 32)
	ns, err3 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, time.Time{}, false
	}
	return int32(s), int32(q), time.Unix(0, ns), true
}

// showProgress prints one updating line a second until the returned
// function is called.
func showProgress(st *stats, cfg config, w io.Writer) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintln(w)
				return
			case <-t.C:
				st.mu.Lock()
				fmt.Fprintf(w, "\rconnected %d/%d  failed %d  sent %d  acked %d  delivered %d/%d   ",
					st.connected, cfg.clients, st.connectFailed, st.sent, st.acked, len(st.seen), st.acked*max(st.connected-1, 0))
				st.mu.Unlock()
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// percentiles summarises durations in milliseconds.
type percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50Ms"`
	P95 float64 `json:"p95Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

func summarise(d []time.Duration) percentiles {
	if len(d) == 0 {
		return percentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.999999) - 1
		return float64(s[max(i, 0)].Microseconds()) / 1000
	}
	return percentiles{N: len(s), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: float64(s[len(s)-1].Microseconds()) / 1000}
}
