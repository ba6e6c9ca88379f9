package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"
)

// sweep is -sweep: raise the rate run after run until one fails.
type sweep struct {
	on        bool
	step, max float64       // rate per sender: added per run; the highest tried
	p99       time.Duration // a run holds if its latency p99 stays under this
	span      time.Duration // how long each run sends
}

// step is one run of a sweep.
type step struct {
	Rate    float64 `json:"ratePerSender"`
	Offered float64 `json:"offeredDeliveriesPerSecond"` // messages per second times receivers
	Held    bool    `json:"held"`                       // nothing lost (audited), everything acked, p99 under the bound
	Report  report  `json:"report"`
}

// sweepReport is what -sweep prints: every run, and the knee (the fastest
// run that held; nil if none did).
type sweepReport struct {
	P99Bound string  `json:"p99Bound"`
	Steps    []step  `json:"steps"`
	Knee     *step   `json:"knee"`
	Stopped  string  `json:"stopped"` // why the sweep ended
	Warmup   *report `json:"warmup"`
}

// runSweep warms the target up with a short run (a JVM, a cold Lambda),
// then runs cfg at -rate, -rate + -sweep-step, ... up to -sweep-max, each
// in a fresh room for -sweep-seconds, and stops at the first run that
// loses a message or passes the p99 bound: past the knee the backlog of
// one run would slow the next.
func runSweep(ctx context.Context, cfg config, progress io.Writer) sweepReport {
	out := sweepReport{P99Bound: cfg.sweep.p99.String(), Stopped: "reached -sweep-max"}
	warm := cfg
	warm.clients, warm.senders, warm.rate, warm.count, warm.probes = min(cfg.clients, 20), min(cfg.senders, 2), 10, 20, 0
	warm.room = cfg.room + "-warmup"
	fmt.Fprintln(progress, "warming up: 20 clients, 2 senders, 10 messages/s each, 20 each")
	w := load(ctx, warm, io.Discard)
	out.Warmup = &w
	for i := 0; ; i++ {
		rate := cfg.rate + float64(i)*cfg.sweep.step
		if rate > cfg.sweep.max+1e-9 {
			break
		}
		if ctx.Err() != nil {
			out.Stopped = "interrupted"
			break
		}
		run := cfg
		run.rate = rate
		run.count = max(1, int(math.Ceil(rate*cfg.sweep.span.Seconds())))
		run.duration = max(cfg.duration, 2*cfg.sweep.span)
		run.room = fmt.Sprintf("%s-%d", cfg.room, i)
		fmt.Fprintf(progress, "rate %g per sender (%d messages each)\n", rate, run.count)
		r := load(ctx, run, progress)
		s := step{Rate: rate, Offered: rate * float64(cfg.senders) * float64(cfg.clients-1), Report: r,
			Held: !r.Interrupted && r.AuditError == "" && r.Sent > 0 && r.Lost == 0 && r.Acked == r.Sent &&
				r.Latency.P99 < float64(cfg.sweep.p99.Microseconds())/1000}
		out.Steps = append(out.Steps, s)
		if !s.Held {
			out.Stopped = fmt.Sprintf("rate %g did not hold", rate)
			break
		}
		out.Knee = &out.Steps[len(out.Steps)-1]
		select { // let the last run's clients go
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
		}
	}
	return out
}

func (s sweepReport) print(w io.Writer) {
	fmt.Fprintf(w, "%-10s %-12s %-16s %-6s %-9s %-9s %-9s %-12s %s\n",
		"rate/s", "offered/s", "delivered", "lost", "p50 ms", "p95 ms", "p99 ms", "delivered/s", "held")
	for _, st := range s.Steps {
		r := st.Report
		delivered := fmt.Sprintf("%d/%d", r.Delivered, r.Expected)
		if r.AuditError != "" { // the stored history could not be read: loss unknown
			delivered = "unknown"
		}
		fmt.Fprintf(w, "%-10g %-12.0f %-16s %-6d %-9.1f %-9.1f %-9.1f %-12.0f %v\n", st.Rate, st.Offered,
			delivered, r.Lost, r.Latency.P50, r.Latency.P95, r.Latency.P99, r.DeliveredPerSec, st.Held)
	}
	fmt.Fprintf(w, "stopped: %s\n", s.Stopped)
	if s.Knee == nil {
		fmt.Fprintf(w, "knee: none (the first rate did not hold: lower -rate)\n")
		return
	}
	fmt.Fprintf(w, "knee: %g messages/s per sender, %.0f deliveries/s offered, %.0f delivered/s, p99 %.1f ms (bound %s)\n",
		s.Knee.Rate, s.Knee.Offered, s.Knee.Report.DeliveredPerSec, s.Knee.Report.Latency.P99, s.P99Bound)
}
