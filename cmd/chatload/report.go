package main

import (
	"fmt"
	"io"
	"time"
)

// report is what a run measured; -json prints it as is.
type report struct {
	URL             string         `json:"url"`
	Room            string         `json:"room"`
	Clients         int            `json:"clients"`
	Senders         int            `json:"senders"`
	Rate            float64        `json:"ratePerSender"`
	Connected       int            `json:"connected"`
	ConnectFailed   int            `json:"connectFailed"`
	ConnectErrors   map[string]int `json:"connectErrors,omitempty"`
	Connect         percentiles    `json:"connectTime"`
	Sent            int            `json:"sent"`
	Acked           int            `json:"acked"`
	ErrorFrames     int            `json:"errorFrames"`
	Expected        int            `json:"expectedDeliveries"`
	Delivered       int            `json:"delivered"`
	Lost            int            `json:"lost"`
	Duplicates      int            `json:"duplicates"`
	Latency         percentiles    `json:"latency"`
	AckLatency      percentiles    `json:"ackLatency"`
	DeliveredPerSec float64        `json:"deliveredPerSecond"`
	Seconds         float64        `json:"seconds"`
	Interrupted     bool           `json:"interrupted"`
}

func (st *stats) report(cfg config, elapsed time.Duration, interrupted bool) report {
	st.mu.Lock()
	defer st.mu.Unlock()
	r := report{
		URL: cfg.url, Room: cfg.room, Clients: cfg.clients, Senders: cfg.senders, Rate: cfg.rate,
		Connected: st.connected, ConnectFailed: st.connectFailed, ConnectErrors: st.connectErrors,
		Connect: summarise(st.connectTimes), Sent: st.sent, Acked: st.acked, ErrorFrames: st.errorFrames,
		Expected: st.acked * max(st.connected-1, 0), Delivered: len(st.seen), Duplicates: st.duplicates,
		Latency: summarise(st.latency), AckLatency: summarise(st.ackLatency),
		Seconds: elapsed.Seconds(), Interrupted: interrupted,
	}
	r.Lost = max(r.Expected-r.Delivered, 0)
	if span := st.lastDelivery.Sub(st.firstSend); r.Delivered > 0 && span > 0 {
		r.DeliveredPerSec = float64(r.Delivered) / span.Seconds()
	}
	return r
}

func (r report) print(w io.Writer) {
	if r.Interrupted {
		fmt.Fprintln(w, "interrupted: what was measured so far")
	}
	fmt.Fprintf(w, "%-22s %s (room %s)\n", "target", r.URL, r.Room)
	fmt.Fprintf(w, "%-22s %d of %d (%d failed)\n", "connected", r.Connected, r.Clients, r.ConnectFailed)
	for msg, n := range r.ConnectErrors {
		fmt.Fprintf(w, "%-22s %d× %s\n", "  connect error", n, msg)
	}
	fmt.Fprintf(w, "%-22s %s\n", "connect time", r.Connect)
	fmt.Fprintf(w, "%-22s %d by %d senders at %g/s each; %d acked, %d error frames\n", "messages sent", r.Sent, r.Senders, r.Rate, r.Acked, r.ErrorFrames)
	fmt.Fprintf(w, "%-22s %d of %d expected (lost %d, duplicates %d)\n", "delivered", r.Delivered, r.Expected, r.Lost, r.Duplicates)
	fmt.Fprintf(w, "%-22s %s\n", "end-to-end latency", r.Latency)
	fmt.Fprintf(w, "%-22s %s\n", "ack latency", r.AckLatency)
	fmt.Fprintf(w, "%-22s %.0f\n", "delivered / second", r.DeliveredPerSec)
	fmt.Fprintf(w, "%-22s %.1f s\n", "run time", r.Seconds)
}

func (p percentiles) String() string {
	if p.N == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms  (n=%d)", p.P50, p.P95, p.P99, p.Max, p.N)
}
