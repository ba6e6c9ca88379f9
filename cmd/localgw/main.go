// Command localgw runs the chat on one machine: DynamoDB Local with the
// tables of template.yaml, an emulated API Gateway WebSocket API serving
// the template's routes, and the page in web/. `make run` starts it.
//
// By default the functions run in this process (the same handlers the
// Lambda mains start). With -lambda-endpoint (sam local start-lambda) or
// -lambda NAME=URL (one Lambda Runtime Interface Emulator per function)
// they are invoked through the Lambda Invoke API instead.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chatgo/serverless-chat/internal/app"
	"github.com/chatgo/serverless-chat/internal/dynamolocal"
	"github.com/chatgo/serverless-chat/internal/idplocal"
	"github.com/chatgo/serverless-chat/internal/localgw"
	"github.com/chatgo/serverless-chat/internal/metrics"
	"github.com/chatgo/serverless-chat/internal/samtemplate"
	"github.com/chatgo/serverless-chat/internal/sqslocal"
)

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "localgw:", err)
		os.Exit(1)
	}
}

// tuneGC makes the collector run a quarter as often as Go's default,
// within a soft limit of 2 GiB, unless GOGC or GOMEMLIMIT say otherwise.
// This one process holds the gateway and every instance of every function,
// which have a heap each in AWS: here a collection slows them all at once
// (docs/benchmarks.md §8: a busy room's p99 and a flood's bystanders').
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" && getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(400)
		debug.SetMemoryLimit(2 << 30)
	}
}

// options are the command line's.
type options struct {
	addr, webAddr, webDir, template string
	pprofAddr                       string
	dataDir, tablePrefix            string
	lambdaEndpoint                  string
	lambdas                         map[string]string // function → invocation URL
	env                             map[string]string // extra environment for the functions
	params                          map[string]string // the template's parameters, overridden
	limits                          localgw.Limits
	faults                          localgw.Faults
	logLevel                        slog.Level
	emf                             bool // the functions' EMF lines in the log, as in Lambda
	// Virtual members (docs/local-gateway.md): how many, in which room,
	// and how long a post to one takes.
	virtual        int
	virtualRoom    string
	virtualLatency time.Duration
}

func parse(args []string, stderr io.Writer) (options, error) {
	o := options{lambdas: map[string]string{}, env: map[string]string{}, params: map[string]string{}, limits: localgw.DefaultLimits()}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:3001", "address of the WebSocket API and its @connections API")
	fs.StringVar(&o.webAddr, "web-addr", "127.0.0.1:8080", "address of the page")
	fs.StringVar(&o.webDir, "web", "web", "folder of the page; empty to serve no page")
	fs.StringVar(&o.pprofAddr, "pprof", "", "serve Go's /debug/pprof and the functions' metrics summed (/debug/metrics, JSON) on this address, for profiling and load tests")
	fs.StringVar(&o.template, "template", "template.yaml", "the SAM template to emulate")
	fs.StringVar(&o.dataDir, "data", ".cache/local-data", "where DynamoDB Local keeps its data; empty for memory only")
	fs.StringVar(&o.tablePrefix, "table-prefix", "local-", "prefix of the local table names")
	fs.StringVar(&o.lambdaEndpoint, "lambda-endpoint", "", "invoke every function through this Lambda Invoke API (sam local start-lambda)")
	fs.Func("lambda", "NAME=URL: invoke function NAME at this invocation URL (repeatable; a Runtime Interface Emulator)", into(o.lambdas, "NAME=URL"))
	fs.Func("env", "KEY=VALUE: extra environment for the in-process functions (repeatable), e.g. CHAT_LOG_LEVEL=DEBUG", into(o.env, "KEY=VALUE"))
	fs.Func("param", "NAME=VALUE: a template parameter's value (repeatable), as sam deploy --parameter-overrides, e.g. Auth=jwt", into(o.params, "NAME=VALUE"))
	fs.DurationVar(&o.limits.IdleTimeout, "idle-timeout", o.limits.IdleTimeout, "close connections idle this long")
	fs.DurationVar(&o.limits.MaxConnection, "max-connection", o.limits.MaxConnection, "close connections this old")
	fs.DurationVar(&o.limits.DisconnectDelay, "disconnect-delay", 0, "delay $disconnect after a socket ends, as AWS sometimes does")
	fs.Int64Var(&o.limits.MaxMessageBytes, "max-message-bytes", o.limits.MaxMessageBytes, "largest message, either way")
	fs.Float64Var(&o.limits.ThrottlingRateLimit, "throttle-rate", -1, "stage throttling, requests per second (default: the template's ThrottlingRateLimit; 0: off)")
	fs.IntVar(&o.limits.ThrottlingBurstLimit, "throttle-burst", 0, "stage throttling burst, with -throttle-rate")
	fs.IntVar(&o.limits.MaxInFlight, "max-in-flight", o.limits.MaxInFlight, "integrations running at once (a Lambda concurrency limit)")
	fs.Float64Var(&o.limits.CallbackRateLimit, "callback-rate", o.limits.CallbackRateLimit, "the account's throttle on @connections calls, per second (0: off)")
	fs.IntVar(&o.limits.CallbackBurstLimit, "callback-burst", o.limits.CallbackBurstLimit, "the account's throttle on @connections calls, at once")
	fs.Float64Var(&o.limits.NewConnectionRateLimit, "new-connection-rate", o.limits.NewConnectionRateLimit, "the account's quota of new connections per second: a handshake over it gets 429, a second's worth may come at once (0: off)")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "gateway log level")
	fs.BoolVar(&o.emf, "emf", false, "write the functions' metrics as EMF lines in the log, as Lambda does (-pprof's /debug/metrics sums them either way)")
	fs.IntVar(&o.virtual, "virtual", 0, "this many virtual members, connections without a socket, join -virtual-room at start (for measuring large rooms)")
	fs.StringVar(&o.virtualRoom, "virtual-room", "general", "the room of the virtual members")
	fs.DurationVar(&o.virtualLatency, "virtual-latency", 20*time.Millisecond, "how long a post to a virtual member takes")
	// Faults AWS has, on demand (docs/local-gateway.md).
	fs.Uint64Var(&o.faults.Seed, "fault-seed", 1, "seed of the injected faults: the same seed, the same decisions")
	fs.Float64Var(&o.faults.PostThrottle, "fault-post-throttle", 0, "fraction of PostToConnection answered 429 LimitExceededException")
	fs.Float64Var(&o.faults.PostError, "fault-post-error", 0, "fraction of PostToConnection answered 500")
	fs.Float64Var(&o.faults.PostSlow, "fault-post-slow", 0, "fraction of PostToConnection delayed by -fault-post-delay")
	fs.DurationVar(&o.faults.PostDelay, "fault-post-delay", 2*time.Second, "delay of a slow PostToConnection")
	fs.Float64Var(&o.faults.DropDisconnect, "fault-drop-disconnect", 0, "fraction of $disconnect never invoked")
	fs.DurationVar(&o.faults.InvokeJitter, "fault-invoke-jitter", 0, "delay each message invocation by a random time up to this, so that frames overtake each other")
	if err := fs.Parse(args[1:]); err != nil {
		return o, err
	}
	f := o.faults
	for _, x := range []float64{f.PostThrottle, f.PostError, f.PostSlow, f.DropDisconnect} {
		if x < 0 || x > 1 {
			return o, errors.New("-fault-* fractions must be from 0 to 1")
		}
	}
	if f.PostThrottle+f.PostError+f.PostSlow > 1 {
		return o, errors.New("-fault-post-throttle, -fault-post-error and -fault-post-slow must add up to at most 1")
	}
	return o, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parse(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	s, err := start(ctx, o, getenv, stdout)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, "\nChat running.")
	switch {
	case s.webURL != "" && s.idp != nil: // sign-in keeps its tokens per tab
		fmt.Fprintf(stdout, " Open the page in two tabs and sign in as two people:\n\n  %s\n", s.webURL)
	case s.webURL != "":
		fmt.Fprintf(stdout, " Open the page as two people, in a window and a private window\n(a browser's tabs are one guest, as one person's tabs would be):\n\n  %s\n", s.webURL)
	}
	fmt.Fprintf(stdout, "\nWebSocket API:  %s\nManagement API: %s/@connections/{id}\nDynamoDB Local: %s\nSQS (ElasticMQ): %s\n",
		s.websocketURL, s.managementURL, s.ddb.Endpoint, s.sqs.Endpoint)
	var idpExited <-chan struct{}
	if s.idp != nil {
		idpExited = s.idp.Exited()
		fmt.Fprintf(stdout, "Sign-in:        %s (a local OpenID provider: sign in with any user name, e.g. ana or bo; no password)\n", s.idp.Issuer)
	}
	fmt.Fprint(stdout, "\nCtrl-C stops everything.\n\n")
	// The stack is useless without its DynamoDB Local: if it dies, say why
	// and stop, rather than answer every handshake with a 500.
	var failed error
	select {
	case <-ctx.Done():
	case <-s.ddb.Exited():
		failed = fmt.Errorf("DynamoDB Local exited (%s); the stack stopped", s.ddb.ExitReason())
	case <-s.sqs.Exited():
		failed = errors.New("the local SQS server exited; the stack stopped")
	case <-idpExited:
		failed = fmt.Errorf("the local identity provider exited (%s); the stack stopped", s.idp.ExitReason())
	}
	if failed != nil {
		fmt.Fprintln(stdout, "\nlocalgw:", failed)
	}
	fmt.Fprintln(stdout, "\nstopping…")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(failed, s.Close(shutdown))
}

// into parses a repeatable KEY=VALUE flag into m; form is how the usage
// names it.
func into(m map[string]string, form string) func(string) error {
	return func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok {
			return errors.New("want " + form)
		}
		m[k] = val
		return nil
	}
}

// stack is everything start started.
type stack struct {
	gw                                  *localgw.Gateway
	servers                             []*http.Server
	ddb                                 *dynamolocal.Server
	sqs                                 *sqslocal.Server
	stopSources                         context.CancelFunc // the event sources' polling
	eventSources                        []*localgw.EventSource
	sources                             sync.WaitGroup
	idp                                 *idplocal.Server // with sign-in and no issuer given
	websocketURL, managementURL, webURL string
}

func start(ctx context.Context, o options, getenv func(string) string, stdout io.Writer) (_ *stack, err error) {
	log := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: o.logLevel}))
	s := &stack{}
	tmpl, err := samtemplate.Load(o.template)
	if err != nil {
		return nil, err
	}
	if err := tmpl.SetParameters(o.params); err != nil {
		return nil, fmt.Errorf("-param: %w", err)
	}
	if err := tmpl.CheckRules(); err != nil { // as CloudFormation would, before anything starts
		return nil, fmt.Errorf("-param: %w", err)
	}
	apis, err := tmpl.WebSocketAPIs()
	if err != nil {
		return nil, err
	}
	if len(apis) != 1 {
		return nil, fmt.Errorf("%s: want one WebSocket API, found %d", o.template, len(apis))
	}
	api := apis[0]

	// Take the ports first: a port in use is the likeliest failure.
	gwLn, err := listen(o.addr, "-addr")
	if err != nil {
		return nil, err
	}
	var webLn net.Listener
	defer func() {
		if err != nil {
			gwLn.Close()
			if webLn != nil {
				webLn.Close()
			}
			s.Close(context.Background())
		}
	}()
	if o.webDir != "" {
		if webLn, err = listen(o.webAddr, "-web-addr"); err != nil {
			return nil, err
		}
	}
	gwAddr := gwLn.Addr().String()
	s.websocketURL = "ws://" + gwAddr + "/" + api.Stage
	s.managementURL = "http://" + gwAddr + "/" + api.Stage

	// The local SQS server starts while DynamoDB Local does: two JVMs
	// warming up at once, not one after the other.
	sqsStarted := make(chan error, 1)
	go func() {
		var err error
		s.sqs, err = sqslocal.Start(ctx, getenv)
		sqsStarted <- err
	}()
	s.ddb, err = dynamolocal.Start(ctx, getenv, o.dataDir)
	if err := errors.Join(err, <-sqsStarted); err != nil {
		return nil, err
	}
	if s.idp, err = signIn(ctx, tmpl); err != nil {
		return nil, err
	}
	tables := map[string]string{}
	err = dynamolocal.CreateTables(ctx, dynamolocal.Client(s.ddb.Endpoint), tmpl, func(id string) string {
		tables[id] = o.tablePrefix + id
		return tables[id]
	})
	if err != nil {
		return nil, fmt.Errorf("create tables in DynamoDB Local: %w", err)
	}
	queues, err := sqslocal.CreateQueues(ctx, sqslocal.Client(s.sqs.Endpoint), tmpl, func(id string) string { return o.tablePrefix + id })
	if err != nil {
		return nil, fmt.Errorf("create queues in the local SQS server: %w", err)
	}
	resources := maps.Clone(tables) // what a !Ref to a resource is here
	maps.Copy(resources, queues)

	local := map[string]string{app.EnvDynamoDBEndpoint: s.ddb.Endpoint, app.EnvManagementEndpoint: s.managementURL,
		app.EnvSQSEndpoint: s.sqs.Endpoint}
	if webLn != nil {
		// As in AWS, where only the stack's own site may open the socket.
		local[app.EnvAllowedOrigins] = "http://" + webLn.Addr().String()
	}
	maps.Copy(local, o.env)
	env := functionEnv(tmpl, resources, local)
	// The invite links' key, which AWS keeps in Secrets Manager: new for
	// each run (links end with it), given to the functions that have it
	// there.
	inviteKey := cmp.Or(o.env[app.EnvInviteKey], rand.Text()+rand.Text())
	for fn, vars := range env {
		if _, ok := tmpl.Environment(fn)[app.EnvInviteKey]; ok {
			vars[app.EnvInviteKey] = inviteKey
		}
	}
	var callers localgw.Callers
	if o.lambdaEndpoint == "" && len(o.lambdas) == 0 { // through the Invoke API the functions have credentials of their own
		callers = managementCallers(tmpl, api, env)
	}
	sources, err := tmpl.SQSEventSources()
	if err != nil {
		return nil, err
	}
	totals := &metrics.Totals{}
	management := &localgw.InProcess{} // served by the gateway, made below
	invoker, err := invoker(ctx, o, api, sources, env, totals, management)
	if err != nil {
		return nil, err
	}
	if o.limits.ThrottlingRateLimit < 0 { // not given: the template's stage throttling
		o.limits.ThrottlingRateLimit, o.limits.ThrottlingBurstLimit = api.ThrottlingRateLimit, api.ThrottlingBurstLimit
	}
	s.gw, err = localgw.New(localgw.Config{Stage: api.Stage, RouteSelectionExpression: api.RouteSelectionExpression,
		Routes: api.Routes, TwoWay: api.TwoWay, Authorizer: authorizer(api), Invoker: invoker, Limits: o.limits, Faults: o.faults, Log: log,
		APIID: localAPIID, Region: localRegion, Callers: callers})
	if err != nil {
		return nil, err
	}
	management.Handler = s.gw
	s.serve(s.gw.Listen(gwLn), s.gw)
	s.startEventSources(sources, queues, invoker, log)
	if o.pprofAddr != "" {
		ln, err := listen(o.pprofAddr, "-pprof")
		if err != nil {
			return nil, err
		}
		mux := http.NewServeMux()
		mux.Handle("/debug/pprof/", http.DefaultServeMux) // where net/http/pprof registers
		mux.HandleFunc("/debug/metrics", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(totals.Sums())
		})
		mux.HandleFunc("/debug/virtual", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]int64{"delivered": s.gw.VirtualDeliveries()})
		})
		mux.HandleFunc("/debug/eventsources", func(w http.ResponseWriter, r *http.Request) {
			stats := map[string]localgw.EventSourceStats{}
			for _, es := range s.eventSources {
				stats[es.Function] = es.Stats()
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(stats)
		})
		s.serve(ln, mux)
	}
	if o.virtual > 0 {
		start := time.Now()
		n := s.gw.AddVirtual(ctx, map[string]string{"room": o.virtualRoom, "name": "virtual"}, o.virtual, 64, o.virtualLatency)
		fmt.Fprintf(stdout, "%d of %d virtual members joined room %s in %.1f s\n", n, o.virtual, o.virtualRoom, time.Since(start).Seconds())
	}
	if webLn != nil {
		s.webURL = "http://" + webLn.Addr().String() + "/"
		var signIn *pageSignIn
		if api.Authorizer != nil {
			if signIn, err = discoverSignIn(ctx, tmpl); err != nil {
				return nil, err
			}
		}
		s.serve(webLn, page(o.webDir, s.websocketURL, signIn))
	}
	return s, nil
}

// The emulated API's id and region, in the ARNs the Management API checks.
const (
	localAPIID  = "local0api1"
	localRegion = "us-east-1"
)

// startEventSources polls each queue a function's SQS event names and
// invokes the function, as Lambda's event source mappings do.
func (s *stack) startEventSources(sources []samtemplate.SQSEventSource, queues map[string]string, invoker localgw.Invoker, log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopSources = cancel
	client := sqslocal.Client(s.sqs.Endpoint)
	for _, src := range sources {
		es := &localgw.EventSource{Client: client, QueueURL: queues[src.Queue], QueueARN: "arn:aws:sqs:" + localRegion + ":" + localgw.AccountID + ":" + src.Queue,
			Function: src.Function, BatchSize: src.BatchSize, MaxConcurrency: cmp.Or(src.MaximumConcurrency, 5), // Lambda starts with 5 pollers
			ReportBatchItemFailures: src.ReportBatchItemFailures, Invoker: invoker, Log: log}
		s.eventSources = append(s.eventSources, es)
		s.sources.Go(func() { es.Run(ctx) })
	}
}

// managementCallers gives each function an access key of its own (in its
// environment) and allows it, on the Management API, what its policy in
// template.yaml allows: a wrong ARN or a missing method fails locally as
// it would deployed.
func managementCallers(tmpl *samtemplate.Template, api samtemplate.WebSocketAPI, env map[string]map[string]string) localgw.Callers {
	vars := map[string]string{"AWS::Partition": "aws", "AWS::Region": localRegion, "AWS::AccountId": localgw.AccountID,
		api.LogicalID: localAPIID}
	callers := localgw.Callers{}
	for _, fn := range tmpl.Functions() {
		key := "local" + fn // DynamoDB Local takes letters and digits only
		env[fn][app.EnvLocalAccessKey] = key
		stmts, _ := tmpl.PolicyStatements(fn) // checked by the template's tests
		for _, st := range stmts {
			if st.Effect == "Allow" && slices.Contains(st.Actions, "execute-api:ManageConnections") {
				for _, r := range st.Resources {
					callers[key] = append(callers[key], tmpl.Sub(r, vars))
				}
			}
		}
	}
	return callers
}

// functionEnv returns, per function, the environment template.yaml gives
// it, resolved for this machine (resources: the local name of each table
// and queue), with local's variables set over it.
func functionEnv(tmpl *samtemplate.Template, resources map[string]string, local map[string]string) map[string]map[string]string {
	env := map[string]map[string]string{}
	for _, fn := range tmpl.Functions() {
		env[fn] = tmpl.LocalEnvironment(fn, func(id string) string { return resources[id] }, local)
	}
	return env
}

// invoker returns how the gateway runs the functions: in this process
// (each function built as its Lambda main builds it, its metrics summed
// in totals too, its Management API calls sent through management), or
// through a Lambda Invoke API.
func invoker(ctx context.Context, o options, api samtemplate.WebSocketAPI, sources []samtemplate.SQSEventSource, env map[string]map[string]string, totals *metrics.Totals, management http.RoundTripper) (localgw.Invoker, error) {
	if o.lambdaEndpoint != "" || len(o.lambdas) > 0 {
		return &localgw.LambdaAPI{
			URL: func(fn string) string {
				if u, ok := o.lambdas[fn]; ok {
					return u
				}
				return localgw.InvokeURL(o.lambdaEndpoint, fn)
			},
			Serial: len(o.lambdas) > 0,
		}, nil
	}
	handlers := localgw.Handlers{}
	fns := routeFunctions(api)
	for _, src := range sources {
		fns = append(fns, src.Function)
	}
	for _, fn := range fns {
		vars := env[fn]
		h, err := app.New(ctx, func(k string) string { return vars[k] }, app.WithManagementTransport(management))
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", fn, err)
		}
		h.Metrics.Totals = totals
		if !o.emf {
			h.Metrics.Log = nil // a line per frame would bury the gateway's own lines
		}
		entry, ok := app.Entrypoints(h)[samtemplate.FunctionPackage(fn)]
		if !ok {
			return nil, fmt.Errorf("function %s: no handler for functions/%s", fn, samtemplate.FunctionPackage(fn))
		}
		handlers[fn] = entry
	}
	if a := api.Authorizer; a != nil {
		vars := env[a.Function]
		h, err := app.NewAuthorizer(ctx, func(k string) string { return vars[k] })
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", a.Function, err)
		}
		handlers[a.Function] = h.Authorize
	}
	return handlers, nil
}

// routeFunctions returns the functions the API's routes invoke.
func routeFunctions(api samtemplate.WebSocketAPI) []string {
	fns := slices.Sorted(maps.Values(api.Routes))
	return slices.Compact(fns)
}

// authorizer is the gateway's view of the API's $connect authorizer.
func authorizer(api samtemplate.WebSocketAPI) *localgw.Authorizer {
	if api.Authorizer == nil {
		return nil
	}
	return &localgw.Authorizer{Function: api.Authorizer.Function, IdentitySource: api.Authorizer.IdentitySource}
}

func listen(addr, flagName string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s is already in use: stop what uses it, or choose another port with %s", addr, flagName)
		}
		return nil, err
	}
	return ln, nil
}

func (s *stack) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go srv.Serve(ln)
}

// Close stops the servers, disconnects every client (running their
// $disconnect) and stops DynamoDB Local if this stack started it.
func (s *stack) Close(ctx context.Context) error {
	var errs []error
	if s.stopSources != nil {
		s.stopSources()
		s.sources.Wait()
	}
	if s.gw != nil {
		errs = append(errs, s.gw.Close(ctx))
	}
	for _, srv := range s.servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	if s.ddb != nil {
		errs = append(errs, s.ddb.Close())
	}
	if s.sqs != nil {
		errs = append(errs, s.sqs.Close())
	}
	if s.idp != nil {
		s.idp.Close()
	}
	return errors.Join(errs...)
}
