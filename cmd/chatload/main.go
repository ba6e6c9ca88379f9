// Command chatload measures a chat deployment, local or in AWS: it connects
// N clients to one room, has S of them send messages at a steady rate (in
// pipelined bursts, if asked), can make clients drop their connection or
// leave mid-run, and reports connect times, loss, repeats, end-to-end
// latency and delivered messages per second; then it checks what the
// protocol promises: every client that stayed holds the room's stored
// history in seq order, each sender's messages are stored in send order,
// and every member list is right.
//
//	chatload -url ws://127.0.0.1:3001/prod -clients 50 -senders 5 -rate 2 -count 20
//
// With -changes F a fraction F of each sender's writes are, instead of a
// new message, a reaction to one of the latest messages it holds (anyone's)
// or, one change in four each, an edit or a delete of one of its own; and
// one message in three replies to a recent message, one in three
// mentions another client. The report counts the changes sent,
// acknowledged and heard by the other clients (live or fetched), and
// checks that every client that stayed holds every change the others made
// and ends with every message in its stored state.
//
// With -sweep it finds the knee of a deployment or of this machine: it
// raises the rate run after run until a message is lost or the latency's
// p99 passes a bound, and reports the highest rate that held. With -probe
// it times connecting into a room that is already full.
//
// Every loop is bounded by count and time. Ctrl-C stops sending and prints
// what was measured so far.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chatload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	progress := stderr
	if cfg.quiet {
		progress = io.Discard
	}
	var out interface{ print(io.Writer) } // a report or a sweepReport
	if cfg.sweep.on {
		out = runSweep(ctx, cfg, progress)
	} else {
		out = load(ctx, cfg, progress)
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	out.print(stdout)
	return nil
}

// config is the command line.
type config struct {
	url                string
	room               string
	name               string // every client's name; "": load-N
	clients, senders   int
	rate               float64 // messages per second per sender
	count              int     // messages per sender
	duration           time.Duration
	drain              time.Duration // how long to wait for deliveries after the last send
	connectConcurrency int
	connectRate        float64       // clients arriving per second (0: as fast as connectConcurrency allows)
	size               int           // message text length
	changes            float64       // the fraction of each sender's writes that are edits, deletes and reactions
	burst              int           // messages sent back to back at each tick
	drop, leave        int           // clients that drop their connection mid-run; that leave for good
	offline            time.Duration // how long a dropped client stays away
	ping               time.Duration
	flood              int           // frames one more client writes back to back, in a room of its own
	probes             int           // clients that connect one by one into the full room, timed
	settle             time.Duration // how long to wait for every client to list every other before sending
	json, quiet        bool
	cpuProfile         string // where to write the load tool's own CPU profile
	serverMetrics      string // the local stack's summed metrics (localgw -pprof's /debug/metrics)
	sweep              sweep
}

// Bounds on every loop, whatever the flags say.
const (
	maxClients  = 20000
	maxCount    = 1_000_000
	maxDuration = 30 * time.Minute
)

func parse(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "ws://127.0.0.1:3001/prod", "the WebSocket API: the local gateway's, or a deployed wss:// URL")
	fs.StringVar(&c.room, "room", "", "room to use (default: a new one per run)")
	fs.IntVar(&c.clients, "clients", 10, "connections, all in the room")
	fs.StringVar(&c.name, "name", "", "every client's name, e.g. 32 characters of & for the longest members' frames (default: load-N; each client is its own user whatever its name)")
	fs.IntVar(&c.senders, "senders", 1, "how many of the clients send")
	fs.Float64Var(&c.rate, "rate", 5, "messages per second per sender")
	fs.IntVar(&c.count, "count", 50, "messages per sender")
	fs.DurationVar(&c.duration, "duration", 2*time.Minute, "stop sending after this long, whatever the count")
	fs.DurationVar(&c.drain, "drain", 10*time.Second, "after the last send, wait this long at most for deliveries")
	fs.IntVar(&c.connectConcurrency, "connect-concurrency", 20, "connections opened at once")
	fs.Float64Var(&c.connectRate, "connect-rate", 0, "clients arriving per second, on a schedule (connect times count from each one's scheduled arrival, so a stack that falls behind shows it); 0: each as soon as one of -connect-concurrency is free")
	fs.IntVar(&c.size, "size", 64, "message length in characters (at least what the timestamp needs)")
	fs.Float64Var(&c.changes, "changes", 0, "the fraction (0 to 1) of each sender's writes that are, instead of a new message, a reaction to a recent message of the room or (a quarter of them each) an edit or a delete of one of its own; a third of the messages then reply to a recent message, a third mention another client")
	fs.IntVar(&c.burst, "burst", 1, "messages each sender sends back to back, without waiting for acks")
	fs.IntVar(&c.drop, "drop", 0, "clients that drop their connection at a third and two thirds of the run and reconnect")
	fs.DurationVar(&c.offline, "offline", time.Second, "how long a client that drops its connection stays offline")
	fs.IntVar(&c.leave, "leave", 0, "clients that leave for good halfway")
	fs.IntVar(&c.flood, "flood", 0, "one more client, in another room, writes this many new-message frames back to back")
	fs.DurationVar(&c.ping, "ping", chat.DefaultLimits().PingInterval, "how often each client pings (and learns the room's latest seq)")
	fs.DurationVar(&c.settle, "settle", time.Minute, "before sending, wait this long at most for every client to list every other (the joins to be delivered)")
	fs.IntVar(&c.probes, "probe", 0, "once the room is full and everyone has heard of everyone, this many more clients connect one at a time (each leaves before the next): the connect time into a full room")
	fs.BoolVar(&c.sweep.on, "sweep", false, "find the knee: run again and again in fresh rooms, raising -rate by -sweep-step up to -sweep-max, until a run loses a message or its p99 exceeds -sweep-p99")
	fs.Float64Var(&c.sweep.step, "sweep-step", 1, "with -sweep: how much each run raises the rate per sender")
	fs.Float64Var(&c.sweep.max, "sweep-max", 20, "with -sweep: the highest rate per sender to try")
	fs.DurationVar(&c.sweep.p99, "sweep-p99", 100*time.Millisecond, "with -sweep: the end-to-end latency p99 a run must stay under")
	fs.DurationVar(&c.sweep.span, "sweep-seconds", 15*time.Second, "with -sweep: how long each run sends (its -count is the rate times this)")
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress line")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the load tool's own CPU profile to this file (go tool pprof reads it)")
	fs.StringVar(&c.serverMetrics, "server-metrics", "", "URL of the local stack's summed metrics (bin/localgw -pprof ADDR serves http://ADDR/debug/metrics): the run reports their change (failed conditional writes, skipped seqs, frames refused by code)")
	if err := fs.Parse(args[1:]); err != nil {
		return c, err
	}
	var errs []error
	if c.clients < 2 || c.clients > maxClients {
		errs = append(errs, fmt.Errorf("-clients must be 2 to %d", maxClients))
	}
	if c.senders < 1 || c.senders > c.clients {
		errs = append(errs, errors.New("-senders must be 1 to -clients"))
	}
	if c.rate <= 0 || c.rate > 1000 {
		errs = append(errs, errors.New("-rate must be above 0 and at most 1000"))
	}
	if c.count < 1 || c.count > maxCount {
		errs = append(errs, fmt.Errorf("-count must be 1 to %d", maxCount))
	}
	if c.duration <= 0 || c.duration > maxDuration {
		errs = append(errs, fmt.Errorf("-duration must be above 0 and at most %s", maxDuration))
	}
	if c.drain <= 0 || c.drain > 5*time.Minute {
		errs = append(errs, errors.New("-drain must be above 0 and at most 5m"))
	}
	if c.connectConcurrency < 1 {
		c.connectConcurrency = 1
	}
	if c.connectRate < 0 || c.connectRate > 10_000 || math.IsNaN(c.connectRate) {
		errs = append(errs, errors.New("-connect-rate must be from 0 to 10000"))
	}
	if c.changes < 0 || c.changes > 1 || math.IsNaN(c.changes) {
		errs = append(errs, errors.New("-changes must be from 0 to 1"))
	}
	if c.burst < 1 || c.burst > 100 {
		errs = append(errs, errors.New("-burst must be 1 to 100"))
	}
	if c.drop < 0 || c.leave < 0 || c.drop+c.leave+c.senders > c.clients {
		errs = append(errs, errors.New("-drop and -leave must be at least 0, and with -senders at most -clients"))
	}
	if c.offline < 0 || c.offline > time.Minute {
		errs = append(errs, errors.New("-offline must be from 0 to 1m"))
	}
	if c.flood < 0 || c.flood > 100_000 {
		errs = append(errs, errors.New("-flood must be from 0 to 100000"))
	}
	if c.ping < 100*time.Millisecond {
		errs = append(errs, errors.New("-ping must be at least 100ms"))
	}
	if c.settle < 0 || c.settle > 5*time.Minute {
		errs = append(errs, errors.New("-settle must be from 0 to 5m"))
	}
	if c.probes < 0 || c.probes > 1000 {
		errs = append(errs, errors.New("-probe must be from 0 to 1000"))
	}
	if c.sweep.on && (c.sweep.step <= 0 || c.sweep.max < c.rate || c.sweep.max > 1000 || c.sweep.p99 <= 0 ||
		c.sweep.span < time.Second || c.sweep.span > 5*time.Minute || (c.sweep.max-c.rate)/c.sweep.step > 100) {
		errs = append(errs, errors.New("-sweep wants -sweep-step above 0, -sweep-max from -rate to 1000 (at most 100 steps), -sweep-p99 above 0 and -sweep-seconds from 1s to 5m"))
	}
	if c.size > 2000 {
		errs = append(errs, errors.New("-size must be at most 2000 (the protocol's limit)"))
	}
	if c.room == "" {
		c.room = fmt.Sprintf("load-%d", time.Now().UnixNano()%1_000_000_000)
	}
	return c, errors.Join(errs...)
}
