package app

import (
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"go.yaml.in/yaml/v3"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/handler"
	"github.com/chatgo/serverless-chat/internal/metrics"
	"github.com/chatgo/serverless-chat/internal/samtemplate"
)

// TestTemplateDeploysWhatTheCodeServes checks offline what a deploy would
// otherwise find out: the routes reach functions that handle them, each
// with a permission scoped to this API, and IAM grants only what the code
// uses.
func TestTemplateDeploysWhatTheCodeServes(t *testing.T) {
	tmpl, err := samtemplate.Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	apis, err := tmpl.WebSocketAPIs()
	if err != nil || len(apis) != 1 {
		t.Fatalf("WebSocket APIs: %v, %v", apis, err)
	}
	api := apis[0]

	wantRoutes := append([]string{"$connect", "$default", "$disconnect"}, chat.Actions...)
	slices.Sort(wantRoutes)
	if got := api.RouteKeys(); !slices.Equal(got, wantRoutes) {
		t.Errorf("routes = %v, want %v (the actions internal/chat handles)", got, wantRoutes)
	}
	wantEntry := map[string]string{"$connect": "connect", "$disconnect": "disconnect"}
	entries := Entrypoints(&handler.Chat{})
	for key, fn := range api.Routes {
		pkg := samtemplate.FunctionPackage(fn)
		want := wantEntry[key]
		if want == "" {
			want = "message"
		}
		if pkg != want {
			t.Errorf("route %s reaches %s (functions/%s), want functions/%s", key, fn, pkg, want)
		}
		if _, ok := entries[pkg]; !ok {
			t.Errorf("route %s: no entry point for functions/%s", key, pkg)
		}
		if _, err := os.Stat("../../functions/" + pkg + "/main.go"); err != nil {
			t.Errorf("route %s: %v", key, err)
		}
	}

	permitted := map[string]bool{}
	for _, p := range tmpl.Permissions() {
		arn := p.SourceArn.Text
		// Routes invoke from this API's stage, the authorizer from this
		// API's authorizer.
		prefix := "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${" + api.LogicalID + "}/"
		scoped := strings.HasPrefix(arn, prefix+"${StageName}/") || strings.HasPrefix(arn, prefix+"authorizers/${")
		if p.Principal != "apigateway.amazonaws.com" || p.SourceArn.Tag != "!Sub" || !scoped {
			t.Errorf("permission %s: principal %q, SourceArn %+v: want API Gateway, scoped to this API's stage or authorizer", p.LogicalID, p.Principal, p.SourceArn)
		}
		permitted[p.Function] = true
	}
	for _, fn := range slices.Sorted(maps.Values(api.Routes)) {
		if !permitted[fn] {
			t.Errorf("%s is a route's integration but has no AWS::Lambda::Permission", fn)
		}
	}

	if v := tmpl.Property(tmpl.ResourcesOfType("AWS::ApiGatewayV2::Stage")[0], "AutoDeploy"); v.Literal != "true" {
		t.Error("the stage does not AutoDeploy: a static deployment would keep serving old routes")
	}
}

// Each function may use only the DynamoDB actions the store calls on its
// path, on the tables (not "*"), and may only POST to this API's
// connections.
func TestTemplateLeastPrivilege(t *testing.T) {
	tmpl, err := samtemplate.Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dynamo := map[string]bool{"dynamodb:GetItem": true, "dynamodb:BatchGetItem": true, "dynamodb:PutItem": true, "dynamodb:UpdateItem": true,
		"dynamodb:DeleteItem": true, "dynamodb:ConditionCheckItem": true, "dynamodb:Query": true}
	manage := func(method string) string {
		return "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${ChatApi}/${StageName}/" + method + "/@connections/*"
	}
	// The Management API methods each function calls: POST to answer and
	// broadcast; the message function also GETs (sync checks silent
	// connections) and DELETEs (it closes unknown connections). $connect
	// sends nothing, and the authorizer only checks tokens. Whoever
	// broadcasts (POST) may hand a large room's broadcast to the fan-out
	// queue.
	methods := map[string][]string{"ConnectFunction": nil, "DisconnectFunction": {"POST"},
		"MessageFunction": {"POST", "GET", "DELETE"}, "FanoutFunction": {"POST"}, "AuthorizeFunction": nil}
	for _, fn := range tmpl.Functions() {
		stmts, err := tmpl.PolicyStatements(fn)
		if err != nil {
			t.Fatal(err)
		}
		canManage := false
		for _, st := range stmts {
			if st.Effect != "Allow" {
				continue
			}
			for _, r := range st.Resources {
				if r.Literal == "*" || r.Text == "*" || strings.HasSuffix(r.Text, ":*") {
					t.Errorf("%s: a statement on resource %+v", fn, r)
				}
			}
			for _, a := range st.Actions {
				switch {
				case strings.Contains(a, "*"):
					t.Errorf("%s: wildcard action %s", fn, a)
				case dynamo[a]:
					for _, r := range st.Resources {
						table, ok := strings.CutSuffix(r.Text, ".Arn")
						if r.Tag != "!GetAtt" || !ok || tmpl.ResourceType(table) != "AWS::DynamoDB::Table" {
							t.Errorf("%s: %s on %+v, want a table's ARN", fn, a, r)
						}
					}
				case a == "execute-api:ManageConnections":
					canManage = true
					var want, got []string
					for _, m := range methods[fn] {
						want = append(want, manage(m))
					}
					for _, r := range st.Resources {
						got = append(got, r.Text)
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s: ManageConnections on %v, want exactly %v", fn, got, want)
					}
				case a == "sqs:SendMessage" && slices.Contains(methods[fn], "POST"):
					for _, r := range st.Resources {
						queue, ok := strings.CutSuffix(r.Text, ".Arn")
						if r.Tag != "!GetAtt" || !ok || tmpl.ResourceType(queue) != "AWS::SQS::Queue" {
							t.Errorf("%s: %s on %+v, want a queue's ARN", fn, a, r)
						}
					}
				default:
					t.Errorf("%s: action %s is not one the code uses", fn, a)
				}
			}
		}
		if want := len(methods[fn]) > 0; canManage != want {
			t.Errorf("%s: may manage connections %v, want %v", fn, canManage, want)
		}
	}
	// Only the connect function creates connections; only the message
	// function touches messages.
	for fn, forbidden := range map[string]string{"DisconnectFunction": "dynamodb:PutItem"} {
		stmts, _ := tmpl.PolicyStatements(fn)
		for _, st := range stmts {
			if slices.Contains(st.Actions, forbidden) {
				t.Errorf("%s may %s, which it never does", fn, forbidden)
			}
		}
	}
	// The connect function reads items of the messages table (a room
	// stored under capitals, a membership), puts a private room it
	// creates and records a member's name; nothing more.
	for _, fn := range []string{"ConnectFunction", "DisconnectFunction"} {
		stmts, _ := tmpl.PolicyStatements(fn)
		for _, st := range stmts {
			for _, r := range st.Resources {
				if r.Text == "MessagesTable.Arn" && (fn != "ConnectFunction" || !slices.Equal(st.Actions, []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"})) {
					t.Errorf("%s may %v on the messages table, more than it does", fn, st.Actions)
				}
			}
		}
	}
}

// events/ holds one sample event per route for `sam local invoke -e`, and
// env.json the environment for each function; both must match the template.
func TestSampleEvents(t *testing.T) {
	tmpl, err := samtemplate.Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	apis, _ := tmpl.WebSocketAPIs()
	for _, key := range apis[0].RouteKeys() {
		file := "../../events/" + strings.TrimPrefix(key, "$") + ".json"
		data, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("route %s has no sample event: %v", key, err)
			continue
		}
		var ev events.APIGatewayWebsocketProxyRequest
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if ev.RequestContext.RouteKey != key || ev.RequestContext.ConnectionID == "" {
			t.Errorf("%s: routeKey %q, connectionId %q", file, ev.RequestContext.RouteKey, ev.RequestContext.ConnectionID)
		}
		if ev.RequestContext.EventType == "MESSAGE" {
			_, err := chat.ParseInbound([]byte(ev.Body), chat.DefaultLimits())
			if (key == "$default") != (err != nil) {
				t.Errorf("%s: body %s parses with error %v", file, ev.Body, err)
			}
		}
	}
	var env map[string]map[string]string
	data, err := os.ReadFile("../../events/env.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(env)), tmpl.Functions(); !slices.Equal(got, want) {
		t.Errorf("env.json has functions %v, want %v", got, want)
	}
	for fn, vars := range env {
		declared := tmpl.Environment(fn)
		for name := range vars {
			if !slices.Contains(EnvNames, name) {
				t.Errorf("env.json: %s sets %s, which the code does not read", fn, name)
			}
			// SAM CLI overrides only the variables a function declares.
			if _, ok := declared[name]; !ok {
				t.Errorf("env.json: %s sets %s, which template.yaml does not declare for it: sam local invoke would ignore it", fn, name)
			}
		}
	}
}

// The chat's history survives deleting the stack and replacing the table,
// and has point-in-time recovery unless turned off; connections, which
// live two hours, go with the stack.
func TestTemplateKeepsData(t *testing.T) {
	tmpl, err := samtemplate.Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"MessagesTable": "Retain", "ConnectionsTable": "Delete"} {
		if got := tmpl.Attribute(id, "DeletionPolicy"); got != want {
			t.Errorf("%s DeletionPolicy = %q, want %s", id, got, want)
		}
		if got := tmpl.Attribute(id, "UpdateReplacePolicy"); got != want {
			t.Errorf("%s UpdateReplacePolicy = %q, want %s", id, got, want)
		}
	}
	if d, _ := tmpl.ParameterDefault("EnablePointInTimeRecovery"); d != "true" {
		t.Errorf("point-in-time recovery is off by default (%q)", d)
	}
	if v := tmpl.Property("MessagesTable", "DeletionProtectionEnabled"); v.Literal != "true" {
		t.Errorf("the messages table can be deleted through the API or the console (DeletionProtectionEnabled %+v)", v)
	}
	// Encrypted with DynamoDB's own key: SSEEnabled true would switch to a
	// KMS key, with a charge per request.
	for _, id := range tmpl.ResourcesOfType("AWS::DynamoDB::Table") {
		if v := tmpl.Property(id, "SSESpecification", "SSEEnabled"); v.Literal == "true" {
			t.Errorf("%s is encrypted with a KMS key, billed per request", id)
		}
	}
}

// An operator gets alarms, a dashboard, API Gateway's access and error
// logs, and log groups that do not grow forever; the dashboard and alarms
// name only metrics the code emits.
func TestTemplateOperations(t *testing.T) {
	tmpl, err := samtemplate.Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tmpl.ResourcesOfType("AWS::CloudWatch::Alarm")); n < 4 {
		t.Errorf("%d alarms, want function errors, fan-out failures, DynamoDB throttling and integration errors", n)
	}
	if len(tmpl.ResourcesOfType("AWS::CloudWatch::Dashboard")) != 1 || len(tmpl.ResourcesOfType("AWS::SNS::Topic")) != 1 {
		t.Error("no dashboard, or no topic for the alarms")
	}
	groups := tmpl.ResourcesOfType("AWS::Logs::LogGroup")
	for _, g := range groups {
		if v := tmpl.Property(g, "RetentionInDays"); v.Ref != "LogRetentionDays" {
			t.Errorf("log group %s has retention %+v, want !Ref LogRetentionDays", g, v)
		}
	}
	for _, fn := range tmpl.Functions() {
		if !slices.Contains(groups, fn+"LogGroup") {
			t.Errorf("function %s has no log group of the stack's (it would keep its logs forever)", fn)
		}
	}
	stage := tmpl.ResourcesOfType("AWS::ApiGatewayV2::Stage")[0]
	if tmpl.Property(stage, "AccessLogSettings", "DestinationArn").Tag != "!GetAtt" ||
		tmpl.Property(stage, "DefaultRouteSettings", "LoggingLevel").Literal != "ERROR" {
		t.Error("the stage has no access log, or no execution logging at ERROR")
	}
	if format := tmpl.Property(stage, "AccessLogSettings", "Format").Literal; strings.Contains(format, "querystring") ||
		strings.Contains(format, "$context.authorizer") || !strings.Contains(format, "$context.connectionId") {
		t.Errorf("access log format %q: want the connection, no query string", format)
	}
	raw, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`"\$\{NS\}", "(\w+)"|Namespace: !Sub "ServerlessChat/\$\{AWS::StackName\}", MetricName: (\w+)`).FindAllStringSubmatch(string(raw), -1)
	if len(used) < 10 {
		t.Fatalf("found %d uses of the chat's metrics in the template", len(used))
	}
	fromLogs := map[string]bool{} // metrics the template's metric filters count
	for _, f := range tmpl.ResourcesOfType("AWS::Logs::MetricFilter") {
		fromLogs[tmpl.Property(f, "MetricTransformations", "0", "MetricName").Literal] = true
	}
	for _, m := range used {
		if name := m[1] + m[2]; !slices.Contains(metrics.Names, name) && !fromLogs[name] {
			t.Errorf("template.yaml uses metric %s, which neither the code nor a metric filter emits", name)
		}
	}

	// Every function the stack has, with sign-in off or on (the authorizer
	// exists only then), is in an alarm on its errors and in each of the
	// dashboard's Lambda metrics; and with either, every alarm names only
	// metrics it defines, and the dashboard's body is JSON.
	for _, auth := range []string{"none", "jwt"} {
		tmpl := loadTemplate(t)
		if err := tmpl.SetParameters(map[string]string{"Auth": auth}); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, fn := range tmpl.Functions() {
			if active, err := tmpl.Active(fn); err != nil || active {
				want = append(want, fn)
			}
		}
		if got := alarmedErrors(t, tmpl); !slices.Equal(got, want) {
			t.Errorf("Auth=%s: alarms watch the errors of %v, want every function: %v", auth, got, want)
		}
		graphed := dashboardFunctions(t, tmpl)
		for _, metric := range []string{"Errors", "Throttles", "Duration"} {
			if got := graphed[metric]; !slices.Equal(got, want) {
				t.Errorf("Auth=%s: the dashboard graphs the %s of %v, want every function: %v", auth, metric, got, want)
			}
		}
	}
}

// metricID is an id in a metric math expression (its functions, FILL and
// IF, are in capitals).
var metricID = regexp.MustCompile(`\b[a-z]\w*`)

// alarmedErrors returns the functions whose AWS/Lambda Errors an alarm
// watches with tmpl's parameters, sorted. An alarm of metric math must
// define each metric its expressions name (CloudWatch refuses it
// otherwise), and use each function's errors it defines (else they count
// for nothing).
func alarmedErrors(t *testing.T, tmpl *samtemplate.Template) []string {
	t.Helper()
	var fns []string
	for _, alarm := range tmpl.ResourcesOfType("AWS::CloudWatch::Alarm") {
		if tmpl.Property(alarm, "Namespace").Literal == "AWS/Lambda" && tmpl.Property(alarm, "MetricName").Literal == "Errors" {
			fns = append(fns, tmpl.Property(alarm, "Dimensions", "0", "Value").Ref)
		}
		metrics := chosen(t, tmpl, tmpl.Node(alarm, "Metrics"))
		if metrics == nil {
			continue
		}
		defined := map[string]bool{}
		errorsOf := map[string]string{} // metric id → function
		var expressions []string
		for _, m := range metrics.Content {
			if m = chosen(t, tmpl, m); m == nil {
				continue
			}
			id := text(samtemplate.Child(m, "Id"))
			defined[id] = true
			if e := chosen(t, tmpl, samtemplate.Child(m, "Expression")); e != nil {
				expressions = append(expressions, e.Value)
			}
			metric := samtemplate.Child(samtemplate.Child(m, "MetricStat"), "Metric")
			if text(samtemplate.Child(metric, "Namespace")) != "AWS/Lambda" || text(samtemplate.Child(metric, "MetricName")) != "Errors" {
				continue
			}
			for _, d := range samtemplate.Child(metric, "Dimensions").Content {
				if v := samtemplate.Child(d, "Value"); text(samtemplate.Child(d, "Name")) == "FunctionName" && v != nil && v.Tag == "!Ref" {
					errorsOf[id] = v.Value
				}
			}
		}
		named := map[string]bool{}
		for _, id := range metricID.FindAllString(strings.Join(expressions, " "), -1) {
			named[id] = true
			if !defined[id] {
				t.Errorf("alarm %s: its expressions name %s, which it does not define", alarm, id)
			}
		}
		for id, fn := range errorsOf {
			if !named[id] {
				t.Errorf("alarm %s defines %s (%s's errors) and no expression uses it", alarm, id, fn)
			}
			fns = append(fns, fn)
		}
	}
	slices.Sort(fns)
	return slices.Compact(fns)
}

// dashboardFunctions renders the dashboard's body with tmpl's parameters
// (a resource's ${Id} becomes Id) and returns, for each AWS/Lambda metric
// it graphs, the functions it graphs it for, sorted.
func dashboardFunctions(t *testing.T, tmpl *samtemplate.Template) map[string][]string {
	t.Helper()
	// Resources that exist stand for themselves; one that does not stays
	// ${Id}, which CloudFormation would refuse.
	vars := map[string]string{}
	var absent []string
	resources := samtemplate.Child(rawTemplate(t), "Resources").Content
	for i := 0; i < len(resources); i += 2 {
		id := resources[i].Value
		active, err := tmpl.Active(id)
		if err != nil {
			t.Fatal(err)
		}
		if active {
			vars[id] = id
		} else {
			absent = append(absent, id)
		}
	}
	dashboards := tmpl.ResourcesOfType("AWS::CloudWatch::Dashboard")
	if len(dashboards) != 1 {
		t.Fatalf("dashboards: %v, want one", dashboards)
	}
	body := tmpl.Node(dashboards[0], "DashboardBody")
	if body.Tag != "!Sub" || body.Kind != yaml.SequenceNode || len(body.Content) != 2 {
		t.Fatalf("the dashboard's body is not a !Sub [text, {variables}]")
	}
	subVars := maps.Clone(vars)
	pairs := body.Content[1].Content
	for i := 0; i+1 < len(pairs); i += 2 {
		v := chosen(t, tmpl, pairs[i+1])
		subVars[pairs[i].Value] = tmpl.Sub(samtemplate.Value{Text: v.Value}, vars)
	}
	text := tmpl.Sub(samtemplate.Value{Text: body.Content[0].Value}, subVars)
	for _, id := range absent {
		if strings.Contains(text, "${"+id+"}") {
			t.Errorf("the dashboard names %s, which does not exist with these parameters", id)
		}
	}
	var dashboard struct {
		Widgets []struct {
			Properties struct {
				Metrics [][]any
			}
		}
	}
	if err := json.Unmarshal([]byte(text), &dashboard); err != nil {
		t.Fatalf("the dashboard's body is not JSON: %v\n%s", err, text)
	}
	graphed := map[string][]string{}
	for _, w := range dashboard.Widgets {
		for _, row := range w.Properties.Metrics {
			if len(row) < 4 || row[0] != "AWS/Lambda" {
				continue
			}
			name, _ := row[1].(string)
			if i := slices.Index(row, any("FunctionName")); i > 0 && i+1 < len(row) {
				fn, _ := row[i+1].(string)
				graphed[name] = append(graphed[name], fn)
			}
		}
	}
	for name, fns := range graphed {
		slices.Sort(fns)
		graphed[name] = slices.Compact(fns)
	}
	return graphed
}

// With Auth=jwt and no issuer the stack makes its own Cognito user pool,
// with a public client for the page (authorization code only) whose
// callback is the stack's site, and the authorizer trusts that pool; with
// an issuer given, it makes none and trusts that issuer.
func TestTemplateSignInOptions(t *testing.T) {
	cognito := []string{"UserPool", "UserPoolClient", "UserPoolDomain"}
	for _, issuer := range []string{"", "https://login.example.com"} {
		tmpl, err := samtemplate.Load("../../template.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := tmpl.SetParameters(map[string]string{"Auth": "jwt", "JwtIssuer": issuer, "JwtAudience": "page"}); err != nil {
			t.Fatal(err)
		}
		for _, id := range cognito {
			if active, err := tmpl.Active(id); err != nil || active != (issuer == "") {
				t.Errorf("JwtIssuer %q: %s exists: %v (%v)", issuer, id, active, err)
			}
		}
		// API Gateway may invoke the authorizer, from this API's authorizers only.
		apis, err := tmpl.WebSocketAPIs()
		if err != nil || apis[0].Authorizer == nil {
			t.Fatalf("Auth=jwt: no authorizer on $connect (%v)", err)
		}
		permitted := false
		for _, p := range tmpl.Permissions() {
			permitted = permitted || p.Function == apis[0].Authorizer.Function && strings.Contains(p.SourceArn.Text, "/authorizers/${"+apis[0].Authorizer.LogicalID+"}")
		}
		if !permitted {
			t.Errorf("no Lambda permission lets API Gateway invoke %s as authorizer %s", apis[0].Authorizer.Function, apis[0].Authorizer.LogicalID)
		}
		env := tmpl.Environment("AuthorizeFunction")
		iss, aud := env[EnvJWTIssuer], env[EnvJWTAudience]
		if issuer == "" {
			if iss.Tag != "!Sub" || !strings.Contains(iss.Text, "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}") || aud.Ref != "UserPoolClient" {
				t.Errorf("the authorizer trusts %+v for %+v, want the stack's pool and client", iss, aud)
			}
			if v := tmpl.Property("UserPoolClient", "GenerateSecret"); v.Literal != "false" {
				t.Errorf("the page's client has a secret (%+v): a page cannot keep one", v)
			}
			if v := tmpl.PropertyList("UserPoolClient", "AllowedOAuthFlows"); !slices.Equal(v, []string{"code"}) {
				t.Errorf("AllowedOAuthFlows = %v, want only the authorization code", v)
			}
			if v := tmpl.PropertyList("UserPoolClient", "CallbackURLs"); !slices.Equal(v, []string{"https://${WebDistribution.DomainName}/"}) {
				t.Errorf("CallbackURLs = %v, want only the stack's site", v)
			}
			continue
		}
		if iss.Ref != "JwtIssuer" || aud.Ref != "JwtAudience" {
			t.Errorf("the authorizer trusts %+v for %+v, want the parameters", iss, aud)
		}
	}
}
