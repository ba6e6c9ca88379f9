package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// report is what a run measured; -json prints it as is.
type report struct {
	URL           string         `json:"url"`
	Room          string         `json:"room"`
	Clients       int            `json:"clients"`
	Senders       int            `json:"senders"`
	Rate          float64        `json:"ratePerSender"`
	Burst         int            `json:"burst"`
	Connected     int            `json:"connected"`
	ConnectFailed int            `json:"connectFailed"`
	ConnectErrors map[string]int `json:"connectErrors,omitempty"`
	Connect       percentiles    `json:"connectTime"`
	// ConnectRate is -connect-rate (0: as fast as they could); from the
	// first to the last handshake took ConnectSeconds.
	ConnectRate    float64 `json:"connectRate,omitempty"`
	ConnectSeconds float64 `json:"connectSeconds"`
	// HandshakesRefused counts the handshakes of the clients that
	// connected answered 429 and tried again (those that never connected
	// are in ConnectErrors).
	HandshakesRefused int          `json:"handshakesRefused"`
	ProbeConnect      *percentiles `json:"probeConnectTime,omitempty"` // -probe
	ProbeFailed       int          `json:"probeFailed,omitempty"`
	// From every client ready (its first sync answered) to every client
	// listing every other (all joins delivered); Settled is false if that
	// did not happen within -settle.
	SettleSeconds   float64        `json:"settleSeconds"`
	Settled         bool           `json:"settled"`
	Sent            int            `json:"sent"`
	Acked           int            `json:"acked"`
	ErrorCodes      map[string]int `json:"errorFrames,omitempty"`
	Expected        int            `json:"expectedDeliveries"`
	Delivered       int            `json:"delivered"`
	Lost            int            `json:"lost"`
	Duplicates      int            `json:"duplicates"`
	LiveDelivered   int            `json:"deliveredLive"`
	Latency         percentiles    `json:"latency"`
	AckLatency      percentiles    `json:"ackLatency"`
	DeliveredPerSec float64        `json:"deliveredPerSecond"`
	// Changes is what -changes sent and the clients heard (absent without).
	Changes *changesReport `json:"changes,omitempty"`
	// What the protocol promises, checked at the end against the room's
	// stored history (read through sync) and the true member list.
	Stored            int    `json:"stored"`
	OrderViolations   int    `json:"orderViolations"`
	HistoryMismatches int    `json:"historyMismatches"`
	MemberMismatches  int    `json:"memberMismatches"`
	MemberExample     string `json:"memberExample,omitempty"`
	// LargeRoom counts the clients that show a count, not a member list
	// (the room is above the server's listed size).
	LargeRoom  int `json:"largeRoom,omitempty"`
	GapFetches int `json:"gapFetches"`
	// PresenceFetches counts presence frames sent for a missed join or
	// leave; PresenceSyncs the syncs for one no longer kept.
	PresenceFetches int    `json:"presenceFetches"`
	PresenceSyncs   int    `json:"presenceSyncs"`
	Recovered       int    `json:"recovered"`
	Skipped         int    `json:"skipped"` // seqs clients learnt hold no message
	Reconnects      int    `json:"reconnects"`
	AuditError      string `json:"auditError,omitempty"`
	// Frames is what the clients sent and heard: how the run shed load.
	Frames frames `json:"frames"`
	// Server is what the local stack counted during the run (-server-metrics).
	Server      *serverReport `json:"server,omitempty"`
	ServerError string        `json:"serverError,omitempty"`
	// What a flooding client in another room heard (-flood).
	FloodAnswers map[string]int `json:"floodAnswers,omitempty"`
	Seconds      float64        `json:"seconds"`
	Interrupted  bool           `json:"interrupted"`
}

// frames counts the new-message frames (with -changes, the edit, delete
// and react frames too) the clients sent and the answers they heard.
type frames struct {
	Sent   int `json:"sent"`   // write frames, first tries and resends
	Resent int `json:"resent"` // of them, numbered frames sent again
	Acks   int `json:"acks"`   // acks heard (a retry's included)
	Errors int `json:"errors"` // error frames heard, the gateway's own included (by code: errorFrames)
	Waves  int `json:"waves"`  // resend waves after API Gateway's error frames or an unanswered frame
	// ForcedReconnects counts connections that ended without the run
	// asking (-drop, -leave): closed by the server, or by the client
	// after an error that needs a new connection.
	ForcedReconnects int `json:"forcedReconnects"`
}

// serverReport is the change of the local stack's metrics over the run.
type serverReport struct {
	Counts                 map[string]float64 `json:"counts"`
	FailedWritesPerMessage float64            `json:"failedConditionalWritesPerMessage"`
}

func (st *stats) report(cfg config, elapsed time.Duration, interrupted bool) report {
	st.mu.Lock()
	defer st.mu.Unlock()
	r := report{
		URL: cfg.url, Room: cfg.room, Clients: cfg.clients, Senders: cfg.senders, Rate: cfg.rate, Burst: cfg.burst,
		Connected: st.connected, ConnectFailed: st.connectFailed, ConnectErrors: st.connectErrors,
		Connect: summarise(st.connectTimes), ConnectRate: cfg.connectRate, ConnectSeconds: st.connecting.Seconds(), Sent: st.sent, Acked: st.acked, LiveDelivered: st.live,
		Latency: summarise(st.latency), AckLatency: summarise(st.ackLatency),
		Seconds: elapsed.Seconds(), Interrupted: interrupted, SettleSeconds: st.settle.Seconds(), Settled: st.settled,
	}
	if cfg.changes > 0 {
		r.Changes = &changesReport{Fraction: cfg.changes, Sent: st.changesSent, Edits: st.edits, Deletes: st.deletes, Reactions: st.reactions,
			Removals: st.removals, Replies: st.replies, Mentions: st.mentions, Acked: st.changesAcked, Unchanged: st.unchanged,
			AckLatency: summarise(st.changeAckLatency)}
	}
	if len(st.floodAnswers) > 0 {
		r.FloodAnswers = st.floodAnswers
	}
	if cfg.probes > 0 {
		p := summarise(st.probeTimes)
		r.ProbeConnect, r.ProbeFailed = &p, st.probeFailed
	}
	if span := st.lastDelivery.Sub(st.firstSend); st.live > 0 && span > 0 {
		r.DeliveredPerSec = float64(st.live) / span.Seconds()
	}
	return r
}

func (r report) print(w io.Writer) {
	if r.Interrupted {
		fmt.Fprintln(w, "interrupted: what was measured so far")
	}
	fmt.Fprintf(w, "%-22s %s (room %s)\n", "target", r.URL, r.Room)
	fmt.Fprintf(w, "%-22s %d of %d (%d failed)\n", "connected", r.Connected, r.Clients, r.ConnectFailed)
	for _, msg := range slices.Sorted(maps.Keys(r.ConnectErrors)) {
		fmt.Fprintf(w, "%-22s %d× %s\n", "  connect error", r.ConnectErrors[msg], msg)
	}
	fmt.Fprintf(w, "%-22s %s\n", "connect time", r.Connect)
	arriving := "as fast as they could"
	if r.ConnectRate > 0 {
		arriving = fmt.Sprintf("arriving at %g a second", r.ConnectRate)
	}
	fmt.Fprintf(w, "%-22s %.1f s, %s (%.0f a second connected); %d handshakes refused with 429 and tried again\n", "connecting took", r.ConnectSeconds, arriving,
		float64(r.Connected)/max(r.ConnectSeconds, 0.001), r.HandshakesRefused)
	settled := "every client lists every other"
	if !r.Settled {
		settled = "some clients still miss members: gave up waiting"
	}
	fmt.Fprintf(w, "%-22s %.1f s later, %s\n", "room settled", r.SettleSeconds, settled)
	if r.ProbeConnect != nil {
		fmt.Fprintf(w, "%-22s %s (%d failed)\n", "  into the full room", r.ProbeConnect, r.ProbeFailed)
	}
	fmt.Fprintf(w, "%-22s %d by %d senders at %g/s each, %d at a time; %d acked\n", "messages sent", r.Sent, r.Senders, r.Rate, r.Burst, r.Acked)
	for _, code := range slices.Sorted(maps.Keys(r.ErrorCodes)) {
		fmt.Fprintf(w, "%-22s %d× %s\n", "  error frames", r.ErrorCodes[code], code)
	}
	if r.Changes != nil {
		r.Changes.print(w, r.Sent)
	}
	f := r.Frames
	kind := "new-message frames"
	if r.Changes != nil {
		kind = "write frames (messages and changes)"
	}
	fmt.Fprintf(w, "%-22s %d %s (%d resent, %d waves); heard %d acks and %d error frames (%.0f%% answered); %d forced reconnects\n",
		"frames", f.Sent, kind, f.Resent, f.Waves, f.Acks, f.Errors, 100*float64(f.Acks+f.Errors)/float64(max(f.Sent, 1)), f.ForcedReconnects)
	if r.Server != nil {
		fmt.Fprintf(w, "%-22s %.2f failed conditional writes per message stored\n", "server", r.Server.FailedWritesPerMessage)
		for _, k := range slices.Sorted(maps.Keys(r.Server.Counts)) {
			fmt.Fprintf(w, "%-22s %g %s\n", "", r.Server.Counts[k], k)
		}
	}
	if r.ServerError != "" {
		fmt.Fprintf(w, "%-22s %s\n", "server metrics", r.ServerError)
	}
	if r.Interrupted {
		// The audit, which reads the stored history, did not run.
		fmt.Fprintf(w, "%-22s %d live; not checked against the stored history (interrupted)\n", "delivered", r.LiveDelivered)
	} else {
		fmt.Fprintf(w, "%-22s %d of %d expected (lost %d, %d live; %d repeats of a seq held, dropped)\n", "delivered", r.Delivered, r.Expected, r.Lost, r.LiveDelivered, r.Duplicates)
	}
	fmt.Fprintf(w, "%-22s %s\n", "end-to-end latency", r.Latency)
	fmt.Fprintf(w, "%-22s %s\n", "ack latency", r.AckLatency)
	fmt.Fprintf(w, "%-22s %.0f\n", "delivered / second", r.DeliveredPerSec)
	switch {
	case r.Interrupted:
		fmt.Fprintf(w, "%-22s not checked (interrupted)\n", "promises")
	case r.AuditError != "":
		fmt.Fprintf(w, "%-22s %s\n", "audit failed", r.AuditError)
	default:
		fmt.Fprintf(w, "%-22s %d stored; %d out of send order; %d clients with a wrong history, %d with wrong members\n",
			"promises", r.Stored, r.OrderViolations, r.HistoryMismatches, r.MemberMismatches)
		if c := r.Changes; c != nil {
			fmt.Fprintf(w, "%-22s %d stored; %d of %d expected held by the others (lost %d)\n", "  changes", c.Stored, c.Received, c.Expected, c.Lost)
			fmt.Fprintf(w, "%-22s %d clients hold a message in another state than stored (%d deleted, %d replies, %d mentioning)\n",
				"  final states", c.StateMismatches, c.StoredDeleted, c.StoredReplies, c.StoredMentions)
			if c.StateExample != "" {
				fmt.Fprintf(w, "%-22s %s\n", "  for example", c.StateExample)
			}
		}
	}
	if r.LargeRoom > 0 {
		fmt.Fprintf(w, "%-22s %d clients show a count, not a member list\n", "  large room", r.LargeRoom)
	}
	if r.MemberExample != "" {
		fmt.Fprintf(w, "%-22s %s\n", "  for example", r.MemberExample)
	}
	fmt.Fprintf(w, "%-22s %d gaps fetched, %d messages recovered, %d seqs skipped, %d reconnects; %d presence fetches, %d presence syncs\n",
		"recovery", r.GapFetches, r.Recovered, r.Skipped, r.Reconnects, r.PresenceFetches, r.PresenceSyncs)
	for _, k := range slices.Sorted(maps.Keys(r.FloodAnswers)) {
		fmt.Fprintf(w, "%-22s %d× %s\n", "flooder heard", r.FloodAnswers[k], k)
	}
	fmt.Fprintf(w, "%-22s %.1f s\n", "run time", r.Seconds)
}

func (p percentiles) String() string {
	if p.N == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms  (n=%d)", p.P50, p.P95, p.P99, p.Max, p.N)
}
