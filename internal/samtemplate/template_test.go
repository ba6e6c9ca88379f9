package samtemplate

import (
	"slices"
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
	if api.ThrottlingRateLimit != 100 || api.ThrottlingBurstLimit != 200 {
		t.Errorf("stage throttling = %v/s, burst %d; want the parameters' defaults, 100/s and 200", api.ThrottlingRateLimit, api.ThrottlingBurstLimit)
	}
	want := map[string]string{"$connect": "ConnectFunction", "$disconnect": "DisconnectFunction",
		"$default": "MessageFunction", "new-message": "MessageFunction", "sync": "MessageFunction",
		"typing": "MessageFunction", "ping": "MessageFunction"}
	if len(api.Routes) != len(want) {
		t.Errorf("routes = %v, want %v", api.Routes, want)
	}
	for k, fn := range want {
		if api.Routes[k] != fn {
			t.Errorf("route %s → %q, want %s", k, api.Routes[k], fn)
		}
	}
}
