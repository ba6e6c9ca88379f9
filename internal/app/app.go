package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/chatgo/serverless-chat/internal/auth"
	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/fanout"
	"github.com/chatgo/serverless-chat/internal/handler"
	"github.com/chatgo/serverless-chat/internal/metrics"
	"github.com/chatgo/serverless-chat/internal/store"
)

var (
	_ handler.Connections = (*store.DB)(nil)
	_ handler.Senders     = (*store.DB)(nil)
	_ handler.Buckets     = (*store.DB)(nil)
	_ handler.Messages    = (*store.DB)(nil)
	_ handler.Bursts      = (*store.DB)(nil)
	_ handler.Broadcaster = (*fanout.Sender)(nil)
	_ handler.Queue       = (*fanout.Queue)(nil)
	_ fanout.SQS          = (*sqs.Client)(nil)
	_ fanout.Poster       = (*apigatewaymanagementapi.Client)(nil)
)

// New builds the chat's handlers from the environment that getenv reads.
func New(ctx context.Context, getenv func(string) string, opts ...Option) (*handler.Chat, error) {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	log, metricsLog := newLoggers(cfg.InLambda, cfg.LogLevel, os.Stdout)
	return newChat(ctx, cfg, log, metricsLog)
}

// An Option changes what New builds in a way the environment cannot say:
// the local gateway's in-process functions use them.
type Option func(*Config)

// WithManagementTransport sends the Management API's requests through rt
// instead of over HTTP: the local gateway's localgw.InProcess, which
// serves them in the same process.
func WithManagementTransport(rt http.RoundTripper) Option {
	return func(c *Config) { c.ManagementTransport = rt }
}

// newLoggers returns the functions' logger, which writes JSON lines at
// level and above, and the metrics' logger, which writes the EMF lines
// at INFO whatever the level: they are the dashboard's and the alarms'
// data. (Lambda's own filter, the template's LoggingConfig, passes INFO
// for that reason.) In Lambda the keys are those of Lambda's JSON log
// format (timestamp, message).
func newLoggers(inLambda bool, level slog.Level, w io.Writer) (log, metricsLog *slog.Logger) {
	w = &lockedWriter{w: w} // one line per Write, whichever logger writes it
	opts := func(l slog.Level) *slog.HandlerOptions {
		o := &slog.HandlerOptions{Level: l}
		if inLambda {
			o.ReplaceAttr = lambdacontext.ReplaceAttr
		}
		return o
	}
	return slog.New(requestIDs{slog.NewJSONHandler(w, opts(level))}), slog.New(requestIDs{slog.NewJSONHandler(w, opts(slog.LevelInfo))})
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// requestIDs adds the invocation's request id to every record, in Lambda
// and in the local gateway's in-process invocations (which carry a Lambda
// context of their own).
type requestIDs struct{ slog.Handler }

func (h requestIDs) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		r.AddAttrs(slog.String("requestId", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDs{h.Handler.WithAttrs(attrs)}
}

func (h requestIDs) WithGroup(name string) slog.Handler { return requestIDs{h.Handler.WithGroup(name)} }

// newChat builds the handlers from a Config, logging to log and writing
// metrics to metricsLog.
func newChat(ctx context.Context, cfg Config, log, metricsLog *slog.Logger) (*handler.Chat, error) {
	awsCfg, err := loadAWS(ctx, cfg)
	if err != nil {
		return nil, err
	}
	db := store.New(dynamodb.NewFromConfig(awsCfg, DynamoDBOptions(cfg.DynamoDBEndpoint)),
		store.Tables{Connections: cfg.ConnectionsTable, Messages: cfg.MessagesTable})
	db.MessageRetention = cfg.MessageRetention

	sender := fanout.New(func(endpoint string) fanout.Poster {
		return apigatewaymanagementapi.NewFromConfig(awsCfg, fanout.ClientOptions, func(o *apigatewaymanagementapi.Options) {
			o.BaseEndpoint = aws.String(endpoint)
			if cfg.ManagementTransport != nil {
				o.HTTPClient = &http.Client{Transport: cfg.ManagementTransport, Timeout: httpTimeout}
			}
			if cfg.ManagementEndpoint != "" && cfg.DynamoDBEndpoint != "" {
				// The local gateway's (a local run has both endpoints),
				// which checks the caller's key id against its policy, and
				// no signature. An endpoint given alone, in AWS, is signed.
				o.Credentials = aws.AnonymousCredentials{}
				o.APIOptions = append(o.APIOptions, localAuthorization(cfg.LocalAccessKey, o.Region, "execute-api"))
			}
		})
	}, fanout.Options{Concurrency: cfg.FanoutConcurrency, Timeout: cfg.PostTimeout,
		Budget: cfg.BroadcastBudget, Log: log})

	limits := chat.DefaultLimits()
	limits.MaxTextChars = cfg.MaxTextChars
	limits.Messages, limits.Reads = cfg.MessageRate, cfg.ReadRate
	limits.ListedRoomSize = cfg.ListedRoomSize
	limits.ShardSize = cfg.ShardSize
	limits.EditWindow = cfg.EditWindow
	db.SkipAfter, db.WriterLife, db.ShardSize, db.EditWindow = limits.SkipAfter, limits.InvocationTimeout, limits.ShardSize, limits.EditWindow
	db.QuietRoomSize = limits.QuietRoomSize()
	var queue handler.Queue
	if cfg.FanoutQueueURL != "" {
		queue = &fanout.Queue{URL: cfg.FanoutQueueURL, Client: sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
			if cfg.SQSEndpoint != "" {
				o.BaseEndpoint = aws.String(cfg.SQSEndpoint)
			}
		})}
	}
	return &handler.Chat{
		Conns:        db,
		Senders:      db,
		Buckets:      db,
		Tokens:       handler.NewTokenMemory(tokenMemorySize),
		Msgs:         db,
		Access:       db,
		Fanout:       sender,
		Queue:        queue,
		Bursts:       db,
		Log:          log,
		Metrics:      metrics.Recorder{Log: metricsLog, Namespace: cfg.MetricsNamespace},
		Limits:       limits,
		Now:          time.Now,
		Region:       awsCfg.Region,
		Endpoint:     cfg.ManagementEndpoint,
		ConnectGrace: cfg.ConnectGrace,
		Origins:      handler.Origins{Allowed: cfg.AllowedOrigins, RefuseMissing: !cfg.AllowMissingOrigin},
		Invites:      cfg.InviteKey,
	}, nil
}

// tokenMemorySize is how many connections' rate-limit buckets one
// instance remembers (a few hundred bytes each).
const tokenMemorySize = 10_000

// DynamoDBOptions configures the DynamoDB client: endpoint, when given, is
// DynamoDB Local, which leaves the CRC32 checksum header out of its error
// responses (aws/aws-sdk-go-v2#3545): the SDK would warn of a mismatch on
// every failed conditional write, so the checksum is not checked there.
// Nor are requests signed there (localAuthorization).
func DynamoDBOptions(endpoint string) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.DisableValidateResponseChecksum = true
			o.Credentials = aws.AnonymousCredentials{} // the SDK signs nothing
			o.APIOptions = append(o.APIOptions, localAuthorization("local", o.Region, "dynamodb"))
		}
	}
}

// localAuthorization puts an Authorization header with the access key id
// key and no signature where the SDK would put a SigV4 signature: for the
// local stack's endpoints, which check none. DynamoDB Local requires the
// header and splits it with a regular expression twice per request (for
// the key id and region, which -sharedDb then ignores); the local gateway
// reads the key id, to check the caller's policy. No signature saves the SDK a SHA-256
// of the body and a key derivation per request (a sixth of the local
// gateway's CPU in a busy room's broadcasts), and a short header saves
// DynamoDB Local about a tenth of its CPU per request (docs/benchmarks.md
// §12), on the two cores a local run shares.
func localAuthorization(key, region, service string) func(*middleware.Stack) error {
	header := "AWS4-HMAC-SHA256 Credential=" + key + "/20000101/" + region + "/" + service + "/aws4_request"
	return func(st *middleware.Stack) error {
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("LocalAuthorization",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					req.Header.Set("Authorization", header)
				}
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	}
}

// NewRetryer is every client's retry policy: at most 3 attempts with
// jittered exponential backoff (the SDK's standard), throttling and 5xx
// as the SDK knows them, and DynamoDB's TransactionConflictException too
// (an update of an item a transaction holds; the SDK does not retry it).
// There is no client-side retry quota: a burst of throttled posts across
// goroutines would otherwise drain it for all.
func NewRetryer() aws.Retryer {
	return retry.AddWithErrorCodes(retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.RateLimiter = ratelimit.None
	}), (&dbtypes.TransactionConflictException{}).ErrorCode())
}

// loadAWS builds the one aws.Config every client shares: an HTTP client
// that keeps as many idle connections per host as the fan-out runs posts
// at once (the SDK keeps 10), an overall timeout on every call, and
// NewRetryer's bounded retries.
func loadAWS(ctx context.Context, cfg Config) (aws.Config, error) {
	idle := cfg.FanoutConcurrency
	if cfg.ManagementEndpoint != "" {
		// The local gateway's: one process runs every invocation at once.
		idle = max(idle, localIdleConns)
	}
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(newHTTPClient(idle)),
		config.WithRetryer(NewRetryer),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.DynamoDBEndpoint != "" {
		// Local: DynamoDB Local and the gateway emulator accept any
		// credentials, and a developer may have none. The key id tells the
		// emulator which function calls (it checks that function's policy).
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.LocalAccessKey, "local", "")))
		if cfg.Region == "" {
			opts = append(opts, config.WithRegion("us-east-1"))
		}
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return awsCfg, nil
}

// NewAuthorizer builds the $connect authorizer from the environment that
// getenv reads. It makes no network call: the issuer's keys are fetched on
// the first token.
func NewAuthorizer(_ context.Context, getenv func(string) string) (*handler.Authorizer, error) {
	cfg, err := LoadAuthConfig(getenv)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	log, _ := newLoggers(cfg.InLambda, cfg.LogLevel, os.Stdout)
	keys := &auth.KeySet{URL: cfg.JWKSURL, Issuer: cfg.Issuer, Log: log}
	v := auth.NewVerifier(cfg.Issuer, cfg.Audiences, keys)
	if len(cfg.NameClaims) > 0 {
		v.NameClaims = cfg.NameClaims
	}
	return &handler.Authorizer{Tokens: v, Log: log}, nil
}

// Entrypoints maps each function's folder under functions/ to the handler
// its main starts, for the local gateway's in-process invocation.
func Entrypoints(h *handler.Chat) map[string]any {
	return map[string]any{"connect": h.Connect, "disconnect": h.Disconnect, "message": h.Message, "fanout": h.Deliver}
}

// newHTTPClient is the one HTTP client of the process: it keeps an idle
// connection per concurrent request (idle per host), so a broadcast reuses
// them instead of dialling (and, in AWS, handshaking TLS) anew beyond the
// SDK's default 10.
func newHTTPClient(idle int) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithTimeout(httpTimeout).
		WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 2 * idle
			t.MaxIdleConnsPerHost = idle
		})
}

// httpTimeout bounds every call of the functions' AWS clients.
const httpTimeout = 10 * time.Second

// localIdleConns is the idle connections per host kept in the local
// gateway, where one process runs every invocation that is running at
// once (up to its -max-in-flight), each of which would be an instance of
// its own in AWS, with its own connections. Kept to one invocation's
// worth, 40 senders in a room of 50 made the functions dial and drop
// ~11,000 connections to the gateway in 15 s, and their broadcasts took
// 20 times as long until the pool had settled (docs/benchmarks.md §8).
const localIdleConns = 1024
