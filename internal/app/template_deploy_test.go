package app

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

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
// line for four requests: a $connect the function refused, a frame the
// function failed on, one that timed out, and a frame served.
// error.messageString comes with its quotes ("the quoted value of
// $context.error.message", as AWS's variable reference defines it, so a
// request without an error gives "-" quoted); a variable without a value
// is -.
var accessLogSamples = []struct {
	name       string
	vars       map[string]string
	serverFail bool
}{
	{"refused $connect", map[string]string{"eventType": "CONNECT", "routeKey": "$connect", "status": "403", "integrationStatus": "200",
		"error.messageString": `"Forbidden"`}, false},
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

// Every access log line is JSON, and the server-error metric counts the
// 5XX lines only: a refused $connect is the client's error, and must not
// raise the alarm (API Gateway's IntegrationError would).
func TestTemplateAccessLogAndServerErrors(t *testing.T) {
	tmpl := loadTemplate(t)
	stage := tmpl.ResourcesOfType("AWS::ApiGatewayV2::Stage")[0]
	format := tmpl.Property(stage, "AccessLogSettings", "Format").Literal
	logGroup := strings.TrimSuffix(tmpl.Property(stage, "AccessLogSettings", "DestinationArn").Text, ".Arn")

	var filterID string
	for _, f := range tmpl.ResourcesOfType("AWS::Logs::MetricFilter") {
		if tmpl.Property(f, "LogGroupName").Ref == logGroup {
			filterID = f
		}
	}
	filter := tmpl.Property(filterID, "FilterPattern").Literal
	metric := tmpl.Property(filterID, "MetricTransformations", "0", "MetricName").Literal
	namespace := tmpl.Property(filterID, "MetricTransformations", "0", "MetricNamespace")
	m := regexp.MustCompile(`^\{ \$\.(\w+) = "([^"*]*)\*?" \}$`).FindStringSubmatch(filter)
	if m == nil {
		t.Fatalf("the access log's metric filter is %q; this test reads only { $.field = \"prefix*\" }", filter)
	}
	field, prefix := m[1], m[2]
	for _, s := range accessLogSamples {
		line := renderAccessLog(format, s.vars)
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Errorf("%s: the access log line is not JSON (%v):\n%s", s.name, err, line)
			continue
		}
		if fields["connectionId"] != "c6wFhd9hoAMCJ7g=" || fields["routeKey"] != s.vars["routeKey"] {
			t.Errorf("%s: line %v lacks the connection or the route", s.name, fields)
		}
		v, _ := fields[field].(string)
		if matched := strings.HasPrefix(v, prefix); matched != s.serverFail {
			t.Errorf("%s: the server-error filter %s matches: %v, want %v", s.name, filter, matched, s.serverFail)
		}
	}

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
