package samtemplate

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestTablesFromTemplate(t *testing.T) {
	tmpl, err := Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := tmpl.Tables()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tb := range tables {
		ids = append(ids, tb.LogicalID)
		if len(tb.Keys) != 2 || tb.Keys[0].Type != "HASH" || tb.Keys[1].Type != "RANGE" {
			t.Errorf("%s keys = %+v", tb.LogicalID, tb.Keys)
		}
		if tb.TTLAttribute == "" {
			t.Errorf("%s has no TTL", tb.LogicalID)
		}
	}
	if !slices.Equal(ids, []string{"ConnectionsTable", "MessagesTable"}) {
		t.Errorf("tables = %v", ids)
	}
}

func TestIntrinsics(t *testing.T) {
	tmpl, err := Parse([]byte(`
Parameters:
  Days: {Type: Number, Default: 7}
Globals:
  Function:
    Environment:
      Variables: {A: !Ref T, B: plain, D: !Ref Days}
Resources:
  T: {Type: AWS::DynamoDB::Table}
  F:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          B: {Ref: T}
          C: !Sub "${T}-x"
          E: {"Fn::GetAtt": [T, Arn]}
`))
	if err != nil {
		t.Fatal(err)
	}
	env := tmpl.Environment("F")
	if env["A"].Ref != "T" || env["B"].Ref != "T" || env["C"].Tag != "!Sub" || env["D"].Ref != "Days" || env["E"].Tag != "!GetAtt" {
		t.Errorf("environment = %+v", env)
	}
	local := tmpl.LocalEnvironment("F", func(id string) string { return id + "-local" }, map[string]string{"X": "1"})
	want := map[string]string{"A": "T-local", "B": "T-local", "D": "7", "X": "1"}
	if len(local) != len(want) {
		t.Errorf("local environment = %v, want %v", local, want)
	}
	for k, v := range want {
		if local[k] != v {
			t.Errorf("local %s = %q, want %q", k, local[k], v)
		}
	}
}

func TestWebSocketAPI(t *testing.T) {
	tmpl, err := Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	apis, err := tmpl.WebSocketAPIs()
	if err != nil {
		t.Fatal(err)
	}
	if len(apis) != 1 {
		t.Fatalf("APIs = %+v", apis)
	}
	api := apis[0]
	if api.RouteSelectionExpression != "$request.body.action" || api.Stage != "prod" {
		t.Errorf("api = %+v", api)
	}
	rate, _ := tmpl.ParameterDefault("ThrottlingRateLimit")
	burst, _ := tmpl.ParameterDefault("ThrottlingBurstLimit")
	if fmt.Sprint(api.ThrottlingRateLimit) != rate || fmt.Sprint(api.ThrottlingBurstLimit) != burst {
		t.Errorf("stage throttling = %v/s, burst %d; want the parameters' defaults, %s/s and %s", api.ThrottlingRateLimit, api.ThrottlingBurstLimit, rate, burst)
	}
	want := map[string]string{"$connect": "ConnectFunction", "$disconnect": "DisconnectFunction",
		"$default": "MessageFunction", "new-message": "MessageFunction", "sync": "MessageFunction",
		"typing": "MessageFunction", "ping": "MessageFunction", "presence": "MessageFunction", "members": "MessageFunction", "rooms": "MessageFunction",
		"edit": "MessageFunction", "delete": "MessageFunction", "react": "MessageFunction",
		"invite": "MessageFunction", "remove": "MessageFunction", "mute": "MessageFunction", "audit": "MessageFunction", "roster": "MessageFunction", "ban": "MessageFunction", "invite-link": "MessageFunction"}
	if len(api.Routes) != len(want) {
		t.Errorf("routes = %v, want %v", api.Routes, want)
	}
	for k, fn := range want {
		if api.Routes[k] != fn {
			t.Errorf("route %s → %q, want %s", k, api.Routes[k], fn)
		}
		// The message function answers in its response on every route but
		// typing (the handler's oneWayRoute).
		if two := fn == "MessageFunction" && k != "typing"; api.TwoWay[k] != two {
			t.Errorf("route %s two-way: %v, want %v", k, api.TwoWay[k], two)
		}
	}
}

func TestRouteResponseNeedsItsExpression(t *testing.T) {
	const api = `
Resources:
  Fn: {Type: AWS::Serverless::Function}
  Api: {Type: AWS::ApiGatewayV2::Api, Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}}
  Integration: {Type: AWS::ApiGatewayV2::Integration, Properties: {IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations"}}
  Stage: {Type: AWS::ApiGatewayV2::Stage, Properties: {ApiId: !Ref Api, StageName: prod}}
  Route: {Type: AWS::ApiGatewayV2::Route, Properties: {ApiId: !Ref Api, RouteKey: go, Target: !Sub "integrations/${Integration}"%s}}
  Response: {Type: AWS::ApiGatewayV2::RouteResponse, Properties: {ApiId: !Ref Api, RouteId: !Ref Route, RouteResponseKey: $default}}
`
	for expr, want := range map[string]string{", RouteResponseSelectionExpression: $default": "", "": "RouteResponseSelectionExpression"} {
		tmpl, err := Parse([]byte(fmt.Sprintf(api, expr)))
		if err != nil {
			t.Fatal(err)
		}
		apis, err := tmpl.WebSocketAPIs()
		switch {
		case want == "" && (err != nil || !apis[0].TwoWay["go"]):
			t.Errorf("with %q: %v, %v; want a two-way route", expr, apis, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("with %q: error %v, want one naming %s", expr, err, want)
		}
	}
}

func TestConditionsAndParameters(t *testing.T) {
	tmpl, err := Parse([]byte(`
Parameters:
  Mode: {Type: String, Default: a, AllowedValues: [a, b]}
  Name: {Type: String, Default: ""}
Conditions:
  IsB: !Equals [!Ref Mode, b]
  Named: {"Fn::Not": [{"Fn::Equals": [{Ref: Name}, ""]}]}
  Both: !And [!Condition IsB, {Condition: Named}]
  Either: !Or [{Condition: IsB}, {Condition: Named}]
Resources:
  R: {Type: AWS::SNS::Topic, Condition: IsB}
  S: {Type: AWS::SNS::Topic}
`))
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, want map[string]bool) {
		t.Helper()
		for c, w := range want {
			if got, err := tmpl.Condition(c); err != nil || got != w {
				t.Errorf("%s: %s = %v (%v), want %v", when, c, got, err, w)
			}
		}
	}
	check("defaults", map[string]bool{"IsB": false, "Named": false, "Both": false, "Either": false})
	if active, _ := tmpl.Active("R"); active {
		t.Error("R exists with Mode=a")
	}
	if err := tmpl.SetParameters(map[string]string{"Mode": "c"}); err == nil {
		t.Error("Mode=c, outside AllowedValues, was accepted")
	}
	if err := tmpl.SetParameters(map[string]string{"Nope": "x"}); err == nil {
		t.Error("an undeclared parameter was accepted")
	}
	if err := tmpl.SetParameters(map[string]string{"Mode": "b", "Name": "n"}); err != nil {
		t.Fatal(err)
	}
	check("overridden", map[string]bool{"IsB": true, "Named": true, "Both": true, "Either": true})
	for _, id := range []string{"R", "S"} {
		if active, err := tmpl.Active(id); !active || err != nil {
			t.Errorf("%s: active %v, %v", id, active, err)
		}
	}
	if v, _ := tmpl.Parameter("Mode"); v != "b" {
		t.Errorf("Mode = %q", v)
	}
	if d, _ := tmpl.ParameterDefault("Mode"); d != "a" {
		t.Errorf("Mode's default = %q", d)
	}
}

// The chat's $connect has its authorizer only when Auth is jwt.
func TestConnectAuthorizer(t *testing.T) {
	for auth, want := range map[string]bool{"none": false, "jwt": true} {
		tmpl, err := Load("../../template.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := tmpl.SetParameters(map[string]string{"Auth": auth}); err != nil {
			t.Fatal(err)
		}
		apis, err := tmpl.WebSocketAPIs()
		if err != nil {
			t.Fatal(err)
		}
		a := apis[0].Authorizer
		if (a != nil) != want {
			t.Fatalf("Auth=%s: authorizer %+v", auth, a)
		}
		if a != nil && (a.Function != "AuthorizeFunction" || !slices.Equal(a.IdentitySource, []string{"route.request.header.Sec-WebSocket-Protocol"})) {
			t.Errorf("Auth=%s: authorizer %+v", auth, a)
		}
	}
}

func TestAuthorizerCacheRefused(t *testing.T) {
	tmpl, err := Parse([]byte(`
Resources:
  Api: {Type: AWS::ApiGatewayV2::Api, Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}}
  Stage: {Type: AWS::ApiGatewayV2::Stage, Properties: {ApiId: !Ref Api, StageName: s}}
  F: {Type: AWS::Serverless::Function}
  Integ: {Type: AWS::ApiGatewayV2::Integration, Properties: {IntegrationUri: !Sub "arn:x/${F.Arn}/invocations"}}
  Auth:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties: {AuthorizerType: REQUEST, AuthorizerUri: !Sub "arn:x/${F.Arn}/invocations", AuthorizerResultTtlInSeconds: 300}
  Connect:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: $connect, Target: !Sub "integrations/${Integ}", AuthorizationType: CUSTOM, AuthorizerId: !Ref Auth}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpl.WebSocketAPIs(); err == nil || !strings.Contains(err.Error(), "AuthorizerResultTtlInSeconds") {
		t.Errorf("err = %v, want AWS's refusal of a cache TTL on a WebSocket API", err)
	}
}

// Parameters are refused as CloudFormation would refuse them: outside a
// Number's range, not matching AllowedPattern, or breaking a rule.
func TestParameterChecks(t *testing.T) {
	tmpl, err := Parse([]byte(`
Parameters:
  Rate: {Type: Number, Default: 5, MinValue: 0.5, MaxValue: 10}
  Url: {Type: String, Default: "", AllowedPattern: "^(https://.+)?$"}
  Mode: {Type: String, Default: open}
  Key: {Type: String, Default: ""}
Rules:
  KeyWhenClosed:
    RuleCondition: !Equals [!Ref Mode, closed]
    Assertions:
      - Assert: !Not [!Equals [!Ref Key, ""]]
        AssertDescription: A closed mode needs a Key.
Resources:
  X: {Type: AWS::SNS::Topic}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]string{{"Rate": "0.4"}, {"Rate": "11"}, {"Rate": "fast"}, {"Url": "http://x"}} {
		if err := tmpl.SetParameters(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if err := tmpl.SetParameters(map[string]string{"Rate": "0.5", "Url": "https://x"}); err != nil {
		t.Error(err)
	}
	if err := tmpl.CheckRules(); err != nil {
		t.Errorf("open mode: %v", err)
	}
	tmpl.SetParameters(map[string]string{"Mode": "closed"})
	if err := tmpl.CheckRules(); err == nil || !strings.Contains(err.Error(), "A closed mode needs a Key.") {
		t.Errorf("closed mode without a key: %v", err)
	}
	tmpl.SetParameters(map[string]string{"Key": "k"})
	if err := tmpl.CheckRules(); err != nil {
		t.Errorf("closed mode with a key: %v", err)
	}
}

// MaxLength is the longest a name can resolve to, for any stack name.
func TestMaxLength(t *testing.T) {
	tmpl, err := Parse([]byte(`
Parameters:
  Env: {Type: String, AllowedValues: [dev, production]}
Resources:
  A:
    Type: T
    Properties:
      Plain: fixed-name
      Sub: !Sub ${AWS::StackName}-web
      Join: !Join ["-", [web, !Select [2, !Split ["/", !Ref AWS::StackId]]]]
      Param: !Sub ${Env}-x
      Ref: !Ref AWS::StackName
      Other: !GetAtt B.Arn
`))
	if err != nil {
		t.Fatal(err)
	}
	for prop, want := range map[string]int{"Plain": 10, "Sub": 132, "Join": 40, "Param": 12, "Ref": 128} {
		if got, err := tmpl.MaxLength("A", prop); err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", prop, got, err, want)
		}
	}
	if _, err := tmpl.MaxLength("A", "Other"); err == nil {
		t.Error("a GetAtt has a length")
	}
}
