package app

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/invite"
)

// Environment variables the functions read. template.yaml sets them; a test
// checks that the two lists agree.
const (
	EnvConnectionsTable     = "CHAT_CONNECTIONS_TABLE"      // required
	EnvMessagesTable        = "CHAT_MESSAGES_TABLE"         // required
	EnvMessageRetentionDays = "CHAT_MESSAGE_RETENTION_DAYS" // default 30
	EnvEditWindowHours      = "CHAT_EDIT_WINDOW_HOURS"      // how long after sending its author may edit a message, default 24
	EnvFanoutConcurrency    = "CHAT_FANOUT_CONCURRENCY"     // default 64
	EnvPostTimeout          = "CHAT_POST_TIMEOUT"           // Go duration, default 3s
	EnvBroadcastBudget      = "CHAT_BROADCAST_BUDGET"       // Go duration, default 10s: how long one broadcast (or shard) keeps retrying its posts
	EnvConnectGrace         = "CHAT_CONNECT_GRACE"          // Go duration, default 30s
	EnvMaxTextChars         = "CHAT_MAX_TEXT_CHARS"         // default 2000
	EnvListedRoomSize       = "CHAT_LISTED_ROOM_SIZE"       // default 150: above it a room shows a count, not its members
	EnvMessageRate          = "CHAT_MESSAGE_RATE"           // new-message frames per second per user, default 5
	EnvMessageBurst         = "CHAT_MESSAGE_BURST"          // default 20
	EnvReadRate             = "CHAT_READ_RATE"              // sync, presence, members, rooms and ping frames per second per user, default 2
	EnvReadBurst            = "CHAT_READ_BURST"             // default 5
	EnvAllowedOrigins       = "CHAT_ALLOWED_ORIGINS"        // comma-separated browser origins $connect accepts; empty: any
	EnvAllowMissingOrigin   = "CHAT_ALLOW_MISSING_ORIGIN"   // true (default): clients without Origin may connect
	EnvMetricsNamespace     = "CHAT_METRICS_NAMESPACE"      // CloudWatch namespace of the EMF metrics; default ServerlessChat/local
	EnvLogLevel             = "CHAT_LOG_LEVEL"              // the functions' own log lines; default INFO (metrics are written at any level)
	EnvDynamoDBEndpoint     = "CHAT_DYNAMODB_ENDPOINT"      // DynamoDB Local
	EnvManagementEndpoint   = "CHAT_MANAGEMENT_ENDPOINT"    // the local gateway's @connections API
	EnvLocalAccessKey       = "CHAT_LOCAL_ACCESS_KEY"       // locally: the access key id the function calls the local gateway with (default "local")
	EnvJWTIssuer            = "CHAT_JWT_ISSUER"             // the authorizer: the tokens' issuer (required there)
	EnvJWTAudience          = "CHAT_JWT_AUDIENCE"           // the authorizer: comma-separated audiences or client ids (required there)
	EnvJWKSURL              = "CHAT_JWKS_URL"               // the authorizer: the issuer's keys; default: the jwks_uri of its discovery document
	EnvJWTNameClaims        = "CHAT_JWT_NAME_CLAIMS"        // the authorizer: the claims tried in order for the display name; empty: auth's default
	EnvShardSize            = "CHAT_SHARD_SIZE"             // users online per shard of a room's connections, default 1000
	EnvFanoutQueueURL       = "CHAT_FANOUT_QUEUE_URL"       // the SQS queue that rooms of several shards fan out through; empty: all in process
	EnvSQSEndpoint          = "CHAT_SQS_ENDPOINT"           // a local SQS-compatible server
	EnvInviteKey            = "CHAT_INVITE_KEY"             // the key invite links are signed with (at least invite.MinKeyBytes); empty: no invite links
)

// EnvNames lists every variable above.
var EnvNames = []string{EnvConnectionsTable, EnvMessagesTable, EnvMessageRetentionDays, EnvEditWindowHours, EnvFanoutConcurrency,
	EnvPostTimeout, EnvConnectGrace, EnvMaxTextChars, EnvListedRoomSize, EnvMessageRate, EnvMessageBurst, EnvReadRate, EnvReadBurst,
	EnvAllowedOrigins, EnvAllowMissingOrigin, EnvMetricsNamespace, EnvLogLevel, EnvDynamoDBEndpoint, EnvManagementEndpoint, EnvLocalAccessKey, EnvJWTIssuer, EnvJWTAudience, EnvJWKSURL, EnvJWTNameClaims,
	EnvShardSize, EnvFanoutQueueURL, EnvSQSEndpoint, EnvBroadcastBudget, EnvInviteKey}

// Range is the values a numeric variable accepts.
type Range struct{ Min, Max float64 }

// Ranges returns the values each numeric variable accepts. The
// template's parameters that set them have the same MinValue and MaxValue
// (a test checks), so that CloudFormation refuses what the functions
// would.
func Ranges() map[string]Range {
	return map[string]Range{
		EnvMessageRetentionDays: {1, 36500},
		EnvEditWindowHours:      {1, 8760},
		EnvFanoutConcurrency:    {1, 1024},
		EnvMaxTextChars:         {1, 20000},
		EnvListedRoomSize:       {2, chat.MaxListedRoomSize},
		EnvMessageRate:          {0.01, 1000},
		EnvMessageBurst:         {1, 1000},
		EnvReadRate:             {0.01, 1000},
		EnvReadBurst:            {1, 1000},
		EnvShardSize:            {2, 100_000},
	}
}

// Config is everything the functions can be configured with.
type Config struct {
	ConnectionsTable   string
	MessagesTable      string
	MessageRetention   time.Duration
	EditWindow         time.Duration
	FanoutConcurrency  int
	PostTimeout        time.Duration
	BroadcastBudget    time.Duration
	ConnectGrace       time.Duration
	MaxTextChars       int
	ListedRoomSize     int
	ShardSize          int
	FanoutQueueURL     string // "" = no queue
	SQSEndpoint        string // "" = the region's SQS
	MessageRate        chat.Rate
	ReadRate           chat.Rate
	AllowedOrigins     []string // empty: any origin
	AllowMissingOrigin bool
	MetricsNamespace   string
	LogLevel           slog.Level
	DynamoDBEndpoint   string // "" = the region's DynamoDB
	ManagementEndpoint string // "" = built from each request
	LocalAccessKey     string // with DynamoDBEndpoint: the static credentials' key id
	InviteKey          []byte // nil: no invite links
	Region             string // AWS_REGION, set by Lambda
	InLambda           bool   // AWS_LAMBDA_FUNCTION_NAME is set

	// ManagementTransport, when set (WithManagementTransport, not the
	// environment), carries the Management API's requests.
	ManagementTransport http.RoundTripper
}

// LoadConfig reads the configuration through getenv and reports every
// problem at once.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		ConnectionsTable:   getenv(EnvConnectionsTable),
		MessagesTable:      getenv(EnvMessagesTable),
		DynamoDBEndpoint:   getenv(EnvDynamoDBEndpoint),
		ManagementEndpoint: getenv(EnvManagementEndpoint),
		FanoutQueueURL:     getenv(EnvFanoutQueueURL),
		SQSEndpoint:        getenv(EnvSQSEndpoint),
		MetricsNamespace:   cmp.Or(getenv(EnvMetricsNamespace), "ServerlessChat/local"),
		LocalAccessKey:     cmp.Or(getenv(EnvLocalAccessKey), "local"),
		Region:             getenv("AWS_REGION"),
		InLambda:           getenv("AWS_LAMBDA_FUNCTION_NAME") != "",
	}
	var errs []error
	for _, name := range []string{EnvConnectionsTable, EnvMessagesTable} {
		if getenv(name) == "" {
			errs = append(errs, fmt.Errorf("%s is not set", name))
		}
	}
	days := intVar(getenv, EnvMessageRetentionDays, 30, &errs)
	c.MessageRetention = time.Duration(days) * 24 * time.Hour
	hours := intVar(getenv, EnvEditWindowHours, int(chat.DefaultLimits().EditWindow/time.Hour), &errs)
	c.EditWindow = time.Duration(hours) * time.Hour
	c.FanoutConcurrency = intVar(getenv, EnvFanoutConcurrency, 64, &errs)
	c.MaxTextChars = intVar(getenv, EnvMaxTextChars, 2000, &errs)
	c.ListedRoomSize = intVar(getenv, EnvListedRoomSize, chat.DefaultLimits().ListedRoomSize, &errs)
	c.ShardSize = intVar(getenv, EnvShardSize, chat.DefaultLimits().ShardSize, &errs)
	limits := chat.DefaultLimits()
	c.MessageRate, c.ReadRate = limits.Messages, limits.Reads
	c.MessageRate.PerSecond = floatVar(getenv, EnvMessageRate, c.MessageRate.PerSecond, &errs)
	c.MessageRate.Burst = intVar(getenv, EnvMessageBurst, c.MessageRate.Burst, &errs)
	c.ReadRate.PerSecond = floatVar(getenv, EnvReadRate, c.ReadRate.PerSecond, &errs)
	c.ReadRate.Burst = intVar(getenv, EnvReadBurst, c.ReadRate.Burst, &errs)
	c.PostTimeout = durationVar(getenv, EnvPostTimeout, 3*time.Second, &errs)
	c.BroadcastBudget = durationVar(getenv, EnvBroadcastBudget, 10*time.Second, &errs)
	c.ConnectGrace = durationVar(getenv, EnvConnectGrace, 30*time.Second, &errs)
	c.AllowedOrigins = list(getenv(EnvAllowedOrigins))
	switch v := getenv(EnvAllowMissingOrigin); v {
	case "", "true":
		c.AllowMissingOrigin = true
	case "false":
	default:
		errs = append(errs, fmt.Errorf("%s=%q: want true or false", EnvAllowMissingOrigin, v))
	}
	c.LogLevel = logLevelVar(getenv, &errs)
	if key := getenv(EnvInviteKey); key != "" {
		c.InviteKey = []byte(key)
		if len(key) < invite.MinKeyBytes {
			errs = append(errs, fmt.Errorf("%s is %d bytes: want at least %d", EnvInviteKey, len(key), invite.MinKeyBytes))
		}
	}
	return c, errors.Join(errs...)
}

// intVar reads a number within Ranges()[name] and keeps its whole part:
// CloudFormation's Number parameters take fractions (2.5 is a valid
// MessageBurstLimit to it), and refusing one here would stop every
// function from starting.
func intVar(getenv func(string) string, name string, def int, errs *[]error) int {
	return int(floatVar(getenv, name, float64(def), errs))
}

// floatVar reads a number within Ranges()[name].
func floatVar(getenv func(string) string, name string, def float64, errs *[]error) float64 {
	v := getenv(name)
	if v == "" {
		return def
	}
	r := Ranges()[name]
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= r.Min && f <= r.Max) {
		*errs = append(*errs, fmt.Errorf("%s=%q: want a number from %g to %g", name, v, r.Min, r.Max))
		return def
	}
	return f
}

func durationVar(getenv func(string) string, name string, def time.Duration, errs *[]error) time.Duration {
	v := getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		*errs = append(*errs, fmt.Errorf("%s=%q: want a positive duration such as 3s", name, v))
		return def
	}
	return d
}

// AuthConfig is what the $connect authorizer is configured with.
type AuthConfig struct {
	Issuer     string
	Audiences  []string
	NameClaims []string // empty: the verifier's default
	JWKSURL    string
	LogLevel   slog.Level
	InLambda   bool
}

// LoadAuthConfig reads the authorizer's configuration through getenv.
func LoadAuthConfig(getenv func(string) string) (AuthConfig, error) {
	c := AuthConfig{Issuer: strings.TrimSuffix(getenv(EnvJWTIssuer), "/"), JWKSURL: getenv(EnvJWKSURL),
		InLambda: getenv("AWS_LAMBDA_FUNCTION_NAME") != ""}
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, fmt.Errorf("%s is not set", EnvJWTIssuer))
	}
	c.Audiences = list(getenv(EnvJWTAudience))
	if len(c.Audiences) == 0 {
		// Any token of the issuer would do, made for whatever application.
		errs = append(errs, fmt.Errorf("%s is not set: name the client ids or audiences of this chat's tokens", EnvJWTAudience))
	}
	c.NameClaims = list(getenv(EnvJWTNameClaims))
	c.LogLevel = logLevelVar(getenv, &errs)
	return c, errors.Join(errs...)
}

// logLevelVar reads EnvLogLevel (default INFO).
func logLevelVar(getenv func(string) string, errs *[]error) slog.Level {
	var l slog.Level
	if v := getenv(EnvLogLevel); v != "" {
		if err := l.UnmarshalText([]byte(v)); err != nil {
			*errs = append(*errs, fmt.Errorf("%s=%q: want DEBUG, INFO, WARN or ERROR", EnvLogLevel, v))
		}
	}
	return l
}

// list splits a comma-separated value, dropping empty items.
func list(v string) []string {
	var out []string
	for a := range strings.SplitSeq(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
