package app

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/metrics"
	"github.com/chatgo/serverless-chat/internal/samtemplate"
	"github.com/chatgo/serverless-chat/internal/store"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfig(t *testing.T) {
	base := map[string]string{EnvConnectionsTable: "c", EnvMessagesTable: "m"}
	c, err := LoadConfig(env(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.FanoutConcurrency != 64 || c.MessageRetention != 30*24*time.Hour || c.PostTimeout != 3*time.Second || c.MaxTextChars != 2000 {
		t.Errorf("defaults = %+v", c)
	}
	_, err = LoadConfig(env(map[string]string{EnvFanoutConcurrency: "0", EnvPostTimeout: "soon", EnvLogLevel: "LOUD",
		EnvMessageRate: "fast", EnvReadBurst: "0"}))
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{EnvConnectionsTable, EnvMessagesTable, EnvFanoutConcurrency, EnvPostTimeout, EnvLogLevel, EnvMessageRate, EnvReadBurst} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestNewBuildsHandlers(t *testing.T) {
	h, err := New(t.Context(), env(map[string]string{EnvConnectionsTable: "c", EnvMessagesTable: "m",
		EnvDynamoDBEndpoint: "http://127.0.0.1:1", EnvManagementEndpoint: "http://127.0.0.1:2/local", EnvMaxTextChars: "500"}))
	if err != nil {
		t.Fatal(err)
	}
	if h.Endpoint != "http://127.0.0.1:2/local" || h.Limits.MaxTextChars != 500 || h.Region == "" {
		t.Errorf("handler = %+v", h)
	}
}

// The variables template.yaml gives the functions are the ones the code
// reads, and the TTL attribute is the one the store writes.
func TestTemplateAgreesWithCode(t *testing.T) {
	tmpl, err := samtemplate.Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fns := tmpl.Functions()
	if len(fns) != 5 {
		t.Fatalf("functions = %v", fns)
	}
	for _, fn := range fns {
		vars := tmpl.Environment(fn)
		for name := range vars {
			if strings.HasPrefix(name, "CHAT_") && !slices.Contains(EnvNames, name) {
				t.Errorf("%s sets %s, which the code does not read", fn, name)
			}
		}
		for _, name := range []string{EnvConnectionsTable, EnvMessagesTable} {
			if v, ok := vars[name]; !ok || tmpl.ResourceType(v.Ref) != "AWS::DynamoDB::Table" {
				t.Errorf("%s: %s = %+v, want a !Ref to a table", fn, name, v)
			}
		}
	}
	// The template's rate limits are the ones docs/protocol.md documents.
	l := chat.DefaultLimits()
	local := tmpl.LocalEnvironment(fns[0], func(string) string { return "t" }, nil)
	cfg, err := LoadConfig(env(local))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MessageRate != l.Messages || cfg.ReadRate != l.Reads {
		t.Errorf("template rate limits %+v and %+v, documented %+v and %+v", cfg.MessageRate, cfg.ReadRate, l.Messages, l.Reads)
	}
	tables, err := tmpl.Tables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.TTLAttribute != store.TTLAttribute {
			t.Errorf("table %s TTL attribute %q, the store writes %q", tb.LogicalID, tb.TTLAttribute, store.TTLAttribute)
		}
	}
}

// Log lines carry the request id of the invocation's Lambda context; in
// Lambda, with LogLevel ERROR, the functions' INFO lines are dropped but
// the metrics are still written (at INFO, which Lambda's filter passes),
// in Lambda's JSON keys.
func TestLogLevelKeepsMetrics(t *testing.T) {
	var out bytes.Buffer
	log, metricsLog := newLoggers(true, slog.LevelError, &out)
	ctx := lambdacontext.NewContext(t.Context(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	log.With("route", "sync").InfoContext(ctx, "dropped")
	log.With("route", "sync").ErrorContext(ctx, "kept")
	metrics.Recorder{Log: metricsLog, Namespace: "ServerlessChat/test"}.Record(ctx, nil, metrics.Metric{Name: metrics.PostsSent, Value: 3, Unit: metrics.UnitCount})
	var lines []map[string]any
	for l := range strings.Lines(out.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("log:\n%s", out.String())
	}
	if l := lines[0]; l["message"] != "kept" || l["level"] != "ERROR" || l["requestId"] != "req-1" || l["route"] != "sync" {
		t.Errorf("log line %v", l)
	}
	if l := lines[1]; l["_aws"] == nil || l[metrics.PostsSent] != 3.0 || l["level"] != "INFO" || l["requestId"] != "req-1" {
		t.Errorf("metrics line %v", l)
	}
}

func TestLoadAuthConfig(t *testing.T) {
	cfg, err := LoadAuthConfig(env(map[string]string{EnvJWTIssuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X/",
		EnvJWTAudience: "a, b,", EnvJWTNameClaims: "nickname,email"}))
	if err != nil {
		t.Fatal(err)
	}
	// No JWKS URL: the verifier finds it through discovery.
	if cfg.Issuer != "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X" || cfg.JWKSURL != "" ||
		!slices.Equal(cfg.Audiences, []string{"a", "b"}) || !slices.Equal(cfg.NameClaims, []string{"nickname", "email"}) {
		t.Errorf("config = %+v", cfg)
	}
	_, err = LoadAuthConfig(env(nil))
	if err == nil || !strings.Contains(err.Error(), EnvJWTIssuer) {
		t.Errorf("no issuer: %v", err)
	}
	// Without an audience any token of the issuer would do.
	if err == nil || !strings.Contains(err.Error(), EnvJWTAudience) {
		t.Errorf("no audience: %v", err)
	}
}
