package app

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/localgw"
	"github.com/chatgo/serverless-chat/internal/samtemplate"
)

// What `sam deploy` would not show: each test is a failure a deployed
// stack would have had while looking healthy.

func loadTemplate(t *testing.T) *samtemplate.Template {
	t.Helper()
	tmpl, err := samtemplate.Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// rawTemplate parses template.yaml as YAML nodes, for what samtemplate
// does not read (an alarm's list of metrics, a dashboard's body).
func rawTemplate(t *testing.T) *yaml.Node {
	t.Helper()
	data, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return doc.Content[0]
}

// text is a scalar's text, "" for no node.
func text(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	return n.Value
}

// chosen follows !If to the branch tmpl's parameters select, as
// CloudFormation does; !Ref AWS::NoValue is nil. The template writes
// intrinsics in their short form, which is all this reads.
func chosen(t *testing.T, tmpl *samtemplate.Template, n *yaml.Node) *yaml.Node {
	t.Helper()
	for n != nil && n.Tag == "!If" {
		if len(n.Content) != 3 {
			t.Fatalf("template.yaml line %d: !If takes a condition and two values", n.Line)
		}
		ok, err := tmpl.Condition(n.Content[0].Value)
		if err != nil {
			t.Fatalf("template.yaml line %d: %v", n.Line, err)
		}
		branch := 2
		if ok {
			branch = 1
		}
		n = n.Content[branch]
	}
	if samtemplate.Child(n, "Fn::If") != nil {
		t.Fatalf("template.yaml line %d: write !If, the form this test reads", n.Line)
	}
	if n != nil && n.Tag == "!Ref" && n.Value == "AWS::NoValue" {
		return nil
	}
	return n
}

// CloudWatch cannot use the AWS managed key of SNS: an alarm published to
// a topic encrypted with it fails (KMS AccessDeniedException) and reaches
// nobody. The topic has no key, or a key of the stack's own.
func TestTemplateAlarmTopicKey(t *testing.T) {
	tmpl := loadTemplate(t)
	for _, topic := range tmpl.ResourcesOfType("AWS::SNS::Topic") {
		key := tmpl.Property(topic, "KmsMasterKeyId")
		if key != (samtemplate.Value{}) && tmpl.ResourceType(key.Ref) != "AWS::KMS::Key" {
			t.Errorf("topic %s is encrypted with %+v: CloudWatch can publish only to a topic without a key or under a customer managed key that lets it", topic, key)
		}
	}
	for _, alarm := range tmpl.ResourcesOfType("AWS::CloudWatch::Alarm") {
		if got := tmpl.PropertyList(alarm, "AlarmActions"); len(got) == 0 {
			t.Errorf("alarm %s notifies nobody", alarm)
		}
	}
}

// The account's API Gateway CloudWatch role is one per Region and shared
// by every API: the stack leaves it alone unless asked, and what it
// creates outlives it.
func TestTemplateLeavesTheAccountsLogRole(t *testing.T) {
	tmpl := loadTemplate(t)
	if d, _ := tmpl.ParameterDefault("CreateApiGatewayLogRole"); d != "false" {
		t.Errorf("CreateApiGatewayLogRole defaults to %q, want false", d)
	}
	accounts := tmpl.ResourcesOfType("AWS::ApiGateway::Account")
	for _, id := range accounts {
		role := strings.TrimSuffix(tmpl.Property(id, "CloudWatchRoleArn").Text, ".Arn")
		for _, r := range []string{id, role} {
			if tmpl.Attribute(r, "DeletionPolicy") != "Retain" || tmpl.Attribute(r, "UpdateReplacePolicy") != "Retain" {
				t.Errorf("%s is deleted with the stack while the account's settings may still name it", r)
			}
		}
		if active, err := tmpl.Active(id); err != nil || active {
			t.Errorf("%s is created by default (%v)", id, err)
		}
	}
	if len(accounts) != 1 {
		t.Errorf("%d AWS::ApiGateway::Account resources, want the one CreateApiGatewayLogRole=true makes", len(accounts))
	}
}

// accessLogSamples are the values API Gateway puts into an access log
// line for five requests: a $connect the function refused, one without a
// token (API Gateway's own 401 when the header is missing), a frame the
// function failed on, one that timed out, and a frame served. error.messageString comes with its quotes
// ("the quoted value of $context.error.message", as AWS's variable
// reference defines it, so a request without an error gives "-" quoted,
// which no AWS document confirms: README, "After the first deploy,
// check"); a variable without a value is -.
var accessLogSamples = []struct {
	name       string
	vars       map[string]string
	serverFail bool
}{
	{"refused $connect", map[string]string{"eventType": "CONNECT", "routeKey": "$connect", "status": "403", "integrationStatus": "200",
		"error.messageString": `"Forbidden"`}, false},
	{"a $connect without a token", map[string]string{"eventType": "CONNECT", "routeKey": "$connect", "status": "401",
		"error.messageString": `"Unauthorized"`}, false},
	{"a function that failed", map[string]string{"eventType": "MESSAGE", "routeKey": "new-message", "status": "500", "integrationStatus": "200",
		"error.messageString": `"Internal server error"`}, true},
	{"a timeout", map[string]string{"eventType": "MESSAGE", "routeKey": "sync", "status": "504", "error.messageString": `"Endpoint request timed out"`}, true},
	{"a frame served", map[string]string{"eventType": "MESSAGE", "routeKey": "ping", "status": "200", "integrationStatus": "200",
		"error.messageString": `"-"`}, false},
}

var contextVar = regexp.MustCompile(`\$context\.([A-Za-z.]+)`)

// renderAccessLog fills a format as API Gateway does.
func renderAccessLog(format string, vars map[string]string) string {
	common := map[string]string{"requestId": "c6wFkG1LIAMFZ0w=", "identity.sourceIp": "203.0.113.7",
		"requestTime": "04/Dec/2026:22:16:50 +0000", "connectionId": "c6wFhd9hoAMCJ7g=", "integrationLatency": "41"}
	return contextVar.ReplaceAllStringFunc(format, func(m string) string {
		name := strings.TrimPrefix(m, "$context.")
		if v, ok := vars[name]; ok {
			return v
		}
		if v, ok := common[name]; ok {
			return v
		}
		if name == "error.messageString" {
			return `"-"`
		}
		return "-"
	})
}

// Every access log line is JSON. The access log's metric filter counts
// the 5XX lines only, with an alarm of its own: a refused $connect is the
// client's error, and must not raise it (API Gateway's IntegrationError
// would).
func TestTemplateAccessLogAndServerErrors(t *testing.T) {
	tmpl := loadTemplate(t)
	stage := tmpl.ResourcesOfType("AWS::ApiGatewayV2::Stage")[0]
	format := tmpl.Property(stage, "AccessLogSettings", "Format").Literal
	logGroup := strings.TrimSuffix(tmpl.Property(stage, "AccessLogSettings", "DestinationArn").Text, ".Arn")

	type counter struct {
		id, field, prefix string
		counts            []bool // by sample
	}
	var counters []*counter
	for _, f := range tmpl.ResourcesOfType("AWS::Logs::MetricFilter") {
		if tmpl.Property(f, "LogGroupName").Ref != logGroup {
			continue
		}
		filter := tmpl.Property(f, "FilterPattern").Literal
		m := regexp.MustCompile(`^\{ \$\.(\w+) = "([^"*]*)\*?" \}$`).FindStringSubmatch(filter)
		if m == nil {
			t.Fatalf("%s's pattern is %q; this test reads only { $.field = \"prefix*\" }", f, filter)
		}
		counters = append(counters, &counter{id: f, field: m[1], prefix: m[2]})
	}
	var serverFail []bool
	for _, s := range accessLogSamples {
		serverFail = append(serverFail, s.serverFail)
		line := renderAccessLog(format, s.vars)
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Errorf("%s: the access log line is not JSON (%v):\n%s", s.name, err, line)
		} else if fields["connectionId"] != "c6wFhd9hoAMCJ7g=" || fields["routeKey"] != s.vars["routeKey"] {
			t.Errorf("%s: line %v lacks the connection or the route", s.name, fields)
		}
		for _, c := range counters {
			v, _ := fields[c.field].(string)
			c.counts = append(c.counts, strings.HasPrefix(v, c.prefix))
		}
	}

	metricOf := func(f string) (string, samtemplate.Value) {
		return tmpl.Property(f, "MetricTransformations", "0", "MetricName").Literal, tmpl.Property(f, "MetricTransformations", "0", "MetricNamespace")
	}
	var serverErrors []string
	for _, c := range counters {
		if !slices.Equal(c.counts, serverFail) {
			t.Errorf("%s counts the samples %v: want the server errors %v", c.id, c.counts, serverFail)
			continue
		}
		serverErrors = append(serverErrors, c.id)
	}
	if len(serverErrors) != 1 {
		t.Fatalf("filters of server errors on the access log: %v, want one", serverErrors)
	}

	metric, namespace := metricOf(serverErrors[0])
	var alarmed []string
	for _, a := range tmpl.ResourcesOfType("AWS::CloudWatch::Alarm") {
		name := tmpl.Property(a, "MetricName").Literal
		if name == "IntegrationError" {
			t.Errorf("alarm %s counts IntegrationError, which counts the functions' 4XX answers", a)
		}
		if name == metric && tmpl.Property(a, "Namespace") == namespace {
			alarmed = append(alarmed, a)
		}
	}
	if len(alarmed) != 1 {
		t.Errorf("alarms on the server-error metric %q: %v, want one", metric, alarmed)
	}
}

// Whatever LogLevel, Lambda's own filter passes INFO (the EMF metric lines,
// which it counts as INFO) and its REPORT lines; the level reaches the
// code, which filters its own lines.
func TestTemplateLogLevelKeepsMetrics(t *testing.T) {
	for _, level := range []string{"DEBUG", "INFO", "WARN", "ERROR"} {
		tmpl := loadTemplate(t)
		if err := tmpl.SetParameters(map[string]string{"LogLevel": level}); err != nil {
			t.Fatal(err)
		}
		for _, fn := range tmpl.Functions() {
			app, err1 := tmpl.FunctionSetting(fn, "LoggingConfig", "ApplicationLogLevel")
			sys, err2 := tmpl.FunctionSetting(fn, "LoggingConfig", "SystemLogLevel")
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if !slices.Contains([]string{"TRACE", "DEBUG", "INFO"}, app.Literal) || !slices.Contains([]string{"TRACE", "DEBUG", "INFO"}, sys.Literal) {
				t.Errorf("LogLevel %s: %s filters application logs at %+v and system logs at %+v: metrics or REPORT lines are lost", level, fn, app, sys)
			}
			if level == "DEBUG" && app.Literal == "INFO" {
				t.Errorf("LogLevel DEBUG: %s's debug lines are dropped by Lambda", fn)
			}
			if v := tmpl.Environment(fn)[EnvLogLevel]; v.Ref != "LogLevel" {
				t.Errorf("%s: %s = %+v, want !Ref LogLevel", fn, EnvLogLevel, v)
			}
		}
	}
}

// Every Number parameter has a range; one the functions read through a
// variable has the range the code accepts, so that CloudFormation refuses
// a value before a deploy whose functions would all fail to start, and
// every value CloudFormation accepts (its bounds, a fraction between) the
// functions start with.
func TestTemplateParameterRanges(t *testing.T) {
	tmpl := loadTemplate(t)
	ranges := Ranges()
	byParam := map[string]string{}
	for name, v := range tmpl.Environment("MessageFunction") {
		if v.Ref != "" {
			byParam[v.Ref] = name
		}
	}
	checked := 0
	for _, p := range tmpl.Parameters() {
		r, isNumber := tmpl.ParameterRange(p)
		if !isNumber {
			continue
		}
		if !r.HasMin || !r.HasMax {
			t.Errorf("parameter %s has the range %s: give it MinValue and MaxValue", p, r)
		}
		variable, ok := byParam[p]
		if !ok {
			continue
		}
		code, ok := ranges[variable]
		if !ok {
			t.Errorf("parameter %s sets %s, which has no entry in app.Ranges", p, variable)
			continue
		}
		if r.Min != code.Min || r.Max != code.Max {
			t.Errorf("parameter %s has the range %s; %s accepts [%g, %g]", p, r, variable, code.Min, code.Max)
		}
		for _, v := range []float64{r.Min, r.Max, r.Min + 0.5} {
			deployed := loadTemplate(t)
			if err := deployed.SetParameters(map[string]string{p: strconv.FormatFloat(v, 'g', -1, 64)}); err != nil {
				t.Fatal(err)
			}
			local := deployed.LocalEnvironment("MessageFunction", func(string) string { return "t" }, nil)
			if _, err := LoadConfig(env(local)); err != nil {
				t.Errorf("%s=%g deploys, and the functions do not start: %v", p, v, err)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Error("no parameter sets a variable of app.Ranges")
	}
	if err := tmpl.SetParameters(map[string]string{"MessageRateLimit": "0"}); err == nil {
		t.Error("MessageRateLimit=0 was accepted")
	}
}

// With Auth=jwt and an issuer of one's own, an empty audience would let
// any token of that issuer in: the template refuses it, as the code does.
func TestTemplateAudienceRule(t *testing.T) {
	for _, c := range []struct {
		params map[string]string
		ok     bool
	}{
		{map[string]string{"Auth": "jwt", "JwtIssuer": "https://login.example.com"}, false},
		{map[string]string{"Auth": "jwt", "JwtIssuer": "https://login.example.com", "JwtAudience": "chat-page"}, true},
		{map[string]string{"Auth": "jwt"}, true}, // the stack's own pool names its client
		{map[string]string{"Auth": "none"}, true},
	} {
		tmpl := loadTemplate(t)
		if err := tmpl.SetParameters(c.params); err != nil {
			t.Fatal(err)
		}
		err := tmpl.CheckRules()
		if (err == nil) != c.ok {
			t.Errorf("%v: rules say %v", c.params, err)
		}
		if c.ok || err == nil {
			continue
		}
		local := tmpl.LocalEnvironment("AuthorizeFunction", func(string) string { return "" }, nil)
		if _, err := LoadAuthConfig(env(local)); err == nil {
			t.Errorf("%v: the authorizer starts without an audience", c.params)
		}
	}

	// The template accepts an audience exactly when the authorizer starts
	// with it: a value of commas and spaces names none.
	const issuer = "https://login.example.com"
	for _, audience := range []string{"", ",", " , ", ",,", "\t,", "chat-page", " chat-page ,", "a,,b", ",a"} {
		tmpl := loadTemplate(t)
		err := tmpl.SetParameters(map[string]string{"Auth": "jwt", "JwtIssuer": issuer, "JwtAudience": audience})
		if err == nil {
			err = tmpl.CheckRules()
		}
		_, codeErr := LoadAuthConfig(env(map[string]string{EnvJWTIssuer: issuer, EnvJWTAudience: audience}))
		if (err == nil) != (codeErr == nil) {
			t.Errorf("JwtAudience=%q: the template says %v, the authorizer %v", audience, err, codeErr)
		}
	}
}

// The stage's throttle holds at least 10,000 connected clients
// (docs/security.md, "Sizing the stage"), read as one bucket for all
// routes, the stricter reading. Even if every page looks at a quiet room,
// and so pings at the shortest watched interval rather than every few
// minutes, what the clients send to stay connected (those pings, and a
// $connect and a sync each time API Gateway ends a connection) takes at
// most half the default rate, leaving the rest to messages, typing and
// syncs. The burst holds a second of that rate, and neither is above the
// account's throttle, which every stage of the Region shares.
func TestTemplateStageThrottleSizing(t *testing.T) {
	const (
		clients        = 10_000 // issue 20
		keepAliveShare = 2      // keep-alives take at most 1/keepAliveShare of the rate
	)
	tmpl := loadTemplate(t)
	stage := tmpl.ResourcesOfType("AWS::ApiGatewayV2::Stage")[0]
	rate := numberValue(t, tmpl, tmpl.Property(stage, "DefaultRouteSettings", "ThrottlingRateLimit"))
	burst := numberValue(t, tmpl, tmpl.Property(stage, "DefaultRouteSettings", "ThrottlingBurstLimit"))

	limits, quotas := chat.DefaultLimits(), localgw.DefaultLimits()
	// Every client looking at a quiet room: a ping every PingWhenWatched on
	// average, and even a room's pages quiet since the same message ping
	// no faster, spread over as wide a window (WatchedPingDelay). The
	// regular pings, jittered by PingJitter, are slower.
	soonest := min(limits.PingDelay(0), limits.PingWhenWatched)
	if wave := limits.WatchedPingDelay(1) - limits.WatchedPingDelay(0); wave < limits.PingWhenWatched {
		t.Errorf("a room's pages quiet since the same message ping within %v of each other: faster than one every %v each", wave, limits.PingWhenWatched)
	}
	pings := clients / soonest.Seconds()
	reconnects := 2 * clients / quotas.MaxConnection.Seconds()
	if keepAlive := pings + reconnects; keepAlive*keepAliveShare > rate {
		t.Errorf("%d clients send %.0f requests a second to stay connected (a ping every %v at the soonest, reconnections every %v): "+
			"more than 1/%d of the stage's %g a second", clients, keepAlive, soonest, quotas.MaxConnection, keepAliveShare, rate)
	}
	if burst < rate {
		t.Errorf("the stage's burst %g holds less than a second of its rate %g", burst, rate)
	}
	// The account's throttle for the Region is the one the local gateway
	// applies to @connections calls.
	if rate > quotas.CallbackRateLimit || burst > float64(quotas.CallbackBurstLimit) {
		t.Errorf("the stage's throttle %g a second, %g at once, is above the account's default (%g, %d)", rate, burst, quotas.CallbackRateLimit, quotas.CallbackBurstLimit)
	}
}

// numberValue is a number written in the template, or the value of the
// parameter it refers to.
func numberValue(t *testing.T, tmpl *samtemplate.Template, v samtemplate.Value) float64 {
	t.Helper()
	text := v.Literal
	if v.Ref != "" {
		text, _ = tmpl.Parameter(v.Ref)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		t.Fatalf("%+v is not a number: %v", v, err)
	}
	return f
}

// With SesIdentityArn the stack's user pool sends its e-mails through that
// SES identity (DEVELOPER), from SesFromAddress, which the rules then
// require; without it, through Cognito's own sender (COGNITO_DEFAULT).
// Without the stack's own pool the parameters change nothing.
func TestTemplateSesEmail(t *testing.T) {
	const (
		identity = "arn:aws:ses:eu-west-1:123456789012:identity/example.com"
		from     = "Chat <no-reply@example.com>"
	)
	for _, c := range []struct {
		params  map[string]string
		rulesOK bool
		sender  string // the pool's EmailSendingAccount; "" for no pool
	}{
		{map[string]string{"Auth": "jwt"}, true, "COGNITO_DEFAULT"},
		{map[string]string{"Auth": "jwt", "SesIdentityArn": identity, "SesFromAddress": from}, true, "DEVELOPER"},
		{map[string]string{"Auth": "jwt", "SesIdentityArn": identity}, false, "DEVELOPER"},
		{map[string]string{"Auth": "none", "SesIdentityArn": identity}, false, ""},
		{map[string]string{"Auth": "none", "SesIdentityArn": identity, "SesFromAddress": from}, true, ""},
		{map[string]string{"Auth": "jwt", "JwtIssuer": "https://login.example.com", "JwtAudience": "chat-page",
			"SesIdentityArn": identity, "SesFromAddress": from}, true, ""},
	} {
		tmpl := loadTemplate(t)
		if err := tmpl.SetParameters(c.params); err != nil {
			t.Fatal(err)
		}
		if err := tmpl.CheckRules(); (err == nil) != c.rulesOK {
			t.Errorf("%v: rules say %v", c.params, err)
		}
		pools := tmpl.ResourcesOfType("AWS::Cognito::UserPool")
		if len(pools) != 1 {
			t.Fatalf("user pools: %v, want one", pools)
		}
		active, err := tmpl.Active(pools[0])
		if err != nil || active != (c.sender != "") {
			t.Errorf("%v: %s exists: %v (%v)", c.params, pools[0], active, err)
		}
		if !active {
			continue
		}
		email := chosen(t, tmpl, tmpl.Node(pools[0], "EmailConfiguration"))
		if got := text(samtemplate.Child(email, "EmailSendingAccount")); got != c.sender {
			t.Errorf("%v: the pool sends with %q, want %s", c.params, got, c.sender)
		}
		source, sender := samtemplate.Child(email, "SourceArn"), samtemplate.Child(email, "From")
		if c.sender == "DEVELOPER" && (source == nil || source.Tag != "!Ref" || source.Value != "SesIdentityArn" ||
			sender == nil || sender.Tag != "!Ref" || sender.Value != "SesFromAddress") {
			t.Errorf("%v: SES sends as %q from %q, want !Ref SesIdentityArn and !Ref SesFromAddress", c.params, text(source), text(sender))
		}
		if c.sender != "DEVELOPER" && (source != nil || sender != nil) {
			t.Errorf("%v: Cognito's own sender with an identity or a From address (%q, %q)", c.params, text(source), text(sender))
		}
	}
	for _, bad := range []string{"example.com", "arn:aws:iam::123456789012:role/x", "arn:aws:ses:eu-west-1:123:identity/example.com"} {
		if err := loadTemplate(t).SetParameters(map[string]string{"SesIdentityArn": bad}); err == nil {
			t.Errorf("SesIdentityArn=%q was accepted", bad)
		}
	}
}

// JwksUrl reaches the authorizer, which then fetches the issuer's keys
// there instead of where the discovery document says; the stack's own pool
// is found by discovery, whatever JwksUrl says.
func TestTemplateJwksURL(t *testing.T) {
	const keys = "https://login.example.com/chat/jwks"
	for _, c := range []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"Auth": "jwt", "JwtIssuer": "https://login.example.com", "JwtAudience": "chat-page", "JwksUrl": keys}, keys},
		{map[string]string{"Auth": "jwt", "JwtIssuer": "https://login.example.com", "JwtAudience": "chat-page"}, ""},
		{map[string]string{"Auth": "jwt", "JwksUrl": keys}, ""},
	} {
		tmpl := loadTemplate(t)
		if err := tmpl.SetParameters(c.params); err != nil {
			t.Fatal(err)
		}
		apis, err := tmpl.WebSocketAPIs()
		if err != nil || apis[0].Authorizer == nil {
			t.Fatalf("%v: no authorizer (%v)", c.params, err)
		}
		local := tmpl.LocalEnvironment(apis[0].Authorizer.Function, func(id string) string { return id }, nil)
		if got := local[EnvJWKSURL]; got != c.want {
			t.Errorf("%v: %s = %q, want %q", c.params, EnvJWKSURL, got, c.want)
		}
		if c.params["JwtIssuer"] == "" {
			continue // the pool's issuer is a !Sub, which a local environment leaves out
		}
		cfg, err := LoadAuthConfig(env(local))
		if err != nil {
			t.Fatalf("%v: the authorizer does not start: %v", c.params, err)
		}
		if cfg.JWKSURL != c.want {
			t.Errorf("%v: the authorizer looks for keys at %q, want %q", c.params, cfg.JWKSURL, c.want)
		}
	}
	if err := loadTemplate(t).SetParameters(map[string]string{"JwksUrl": "http://login.example.com/keys"}); err == nil {
		t.Error("JwksUrl over plain http was accepted")
	}
}

// Names built from the stack name stay within their resource's limit for
// any stack name (128 characters).
func TestTemplateNameLengths(t *testing.T) {
	tmpl := loadTemplate(t)
	limits := []struct {
		typ  string
		path []string
		max  int // from each API reference
	}{
		{"AWS::CloudFront::OriginAccessControl", []string{"OriginAccessControlConfig", "Name"}, 64},
		{"AWS::CloudFront::ResponseHeadersPolicy", []string{"ResponseHeadersPolicyConfig", "Name"}, 128},
		{"AWS::Cognito::UserPool", []string{"UserPoolName"}, 128},
		{"AWS::Cognito::UserPoolClient", []string{"ClientName"}, 128},
		{"AWS::Cognito::UserPoolDomain", []string{"Domain"}, 63},
		{"AWS::ApiGatewayV2::Authorizer", []string{"Name"}, 128},
		{"AWS::CloudWatch::Dashboard", []string{"DashboardName"}, 255},
	}
	for _, l := range limits {
		ids := tmpl.ResourcesOfType(l.typ)
		if len(ids) == 0 {
			t.Errorf("no %s in the template", l.typ)
		}
		for _, id := range ids {
			n, err := tmpl.MaxLength(id, l.path...)
			if err != nil {
				t.Errorf("%s: %v", id, err)
			} else if n > l.max {
				t.Errorf("%s's %s can be %d characters long, more than %s allows (%d)", id, l.path[len(l.path)-1], n, l.typ, l.max)
			}
		}
	}
}
