package handler

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/chatgo/serverless-chat/internal/dynamolocal"
	"github.com/chatgo/serverless-chat/internal/samtemplate"
)

// iamCheck records every DynamoDB call the handlers make, as the IAM
// action and table it needs, under the function that serves the route
// (template.yaml), and checks at the end of each test that the
// function's policy allows it: a call the policy lacks works on DynamoDB
// Local, which has no IAM, and fails in AWS with AccessDenied.
type iamCheck struct {
	routes map[string]string // route key → function
	mu     sync.Mutex
	tables map[string]string // table name → the template's logical id
	calls  map[string]map[string]bool
}

type functionKey struct{}

// ctx returns a context that the calls made with it are recorded under:
// the function that serves route. Concurrent requests each carry their
// own.
func (c *iamCheck) ctx(parent context.Context, route string) context.Context {
	fn := c.routes[route]
	if fn == "" {
		fn = c.routes["$default"]
	}
	return context.WithValue(parent, functionKey{}, fn)
}

// option is the client option that records the calls.
func (c *iamCheck) option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("iamCheck", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			fn, _ := ctx.Value(functionKey{}).(string)
			c.record(fn, awsmiddleware.GetOperationName(ctx), in.Parameters)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	})
}

func (c *iamCheck) record(fn, op string, params any) {
	var needs [][2]string // action, table name
	need := func(action string, table *string) {
		if table != nil {
			needs = append(needs, [2]string{"dynamodb:" + action, *table})
		}
	}
	switch in := params.(type) {
	case *dynamodb.BatchGetItemInput:
		for table := range in.RequestItems {
			need(op, &table)
		}
	case *dynamodb.TransactWriteItemsInput:
		// A transaction needs each of its writes' own actions.
		for _, it := range in.TransactItems {
			switch {
			case it.Put != nil:
				need("PutItem", it.Put.TableName)
			case it.Update != nil:
				need("UpdateItem", it.Update.TableName)
			case it.Delete != nil:
				need("DeleteItem", it.Delete.TableName)
			case it.ConditionCheck != nil:
				need("ConditionCheckItem", it.ConditionCheck.TableName)
			}
		}
	case *dynamodb.GetItemInput:
		need(op, in.TableName)
	case *dynamodb.PutItemInput:
		need(op, in.TableName)
	case *dynamodb.UpdateItemInput:
		need(op, in.TableName)
	case *dynamodb.DeleteItemInput:
		need(op, in.TableName)
	case *dynamodb.QueryInput:
		need(op, in.TableName)
	default:
		needs = append(needs, [2]string{"dynamodb:" + op, "?"})
	}
	if fn == "" {
		return // a test's own call
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range needs {
		if c.calls[fn] == nil {
			c.calls[fn] = map[string]bool{}
		}
		c.calls[fn][n[0]+" on "+c.tables[n[1]]] = true
	}
}

// newIAMCheck returns a check of the calls of a client over the tables
// (logical id → name), run when t ends.
func newIAMCheck(t *testing.T, tables map[string]string) *iamCheck {
	tmpl := loadTemplate(t)
	apis, err := tmpl.WebSocketAPIs()
	if err != nil || len(apis) != 1 {
		t.Fatalf("the template's WebSocket APIs: %v, %v", apis, err)
	}
	c := &iamCheck{routes: apis[0].Routes, tables: map[string]string{}, calls: map[string]map[string]bool{}}
	for id, name := range tables {
		c.tables[name] = id
	}
	t.Cleanup(func() { c.check(t, tmpl) })
	return c
}

// check fails t for every recorded call its function's policy does not
// allow.
func (c *iamCheck) check(t *testing.T, tmpl *samtemplate.Template) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for fn, calls := range c.calls {
		stmts, err := tmpl.PolicyStatements(fn)
		if err != nil {
			t.Fatal(err)
		}
		for call := range calls {
			action, table, _ := strings.Cut(call, " on ")
			allowed := slices.ContainsFunc(stmts, func(st samtemplate.Statement) bool {
				return st.Effect == "Allow" && slices.Contains(st.Actions, action) &&
					slices.ContainsFunc(st.Resources, func(r samtemplate.Value) bool { return r.Text == table+".Arn" })
			})
			if !allowed {
				t.Errorf("%s calls %s, which its policy in template.yaml does not allow (AccessDenied in AWS)", fn, call)
			}
		}
	}
}

var (
	templateOnce sync.Once
	template     *samtemplate.Template
	templateErr  error
)

func loadTemplate(t *testing.T) *samtemplate.Template {
	templateOnce.Do(func() {
		root, err := dynamolocal.RepoRoot()
		if err != nil {
			templateErr = err
			return
		}
		template, templateErr = samtemplate.Load(root + "/template.yaml")
	})
	if templateErr != nil {
		t.Fatal(templateErr)
	}
	return template
}
