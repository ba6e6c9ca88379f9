package samtemplate

import (
	"fmt"
	"maps"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Environment returns the environment variables of an
// AWS::Serverless::Function: Globals first, then the function's own. An
// !If is followed to the branch the parameters select.
func (t *Template) Environment(functionID string) map[string]Value {
	env := map[string]Value{}
	add := func(vars []kv) {
		for _, v := range vars {
			n, err := t.choose(v.value)
			switch {
			case err != nil:
				env[v.key] = valueOf(v.value) // kept as written
			case n != nil:
				env[v.key] = valueOf(n)
			}
		}
	}
	add(pairs(get(get(t.globals, "Environment"), "Variables")))
	add(pairs(t.property(functionID, "Environment", "Variables")))
	return env
}

// Functions returns the logical ids of the template's functions, sorted.
func (t *Template) Functions() []string {
	return t.ResourcesOfType("AWS::Serverless::Function")
}

// LocalEnvironment resolves a function's environment for a local run: a
// !Ref to a resource becomes resolve(logicalID) (a local table name, say),
// a !Ref to a parameter its value (Parameter), and literals stay. Values that cannot
// be resolved are left out. extra is applied last.
func (t *Template) LocalEnvironment(functionID string, resolve func(logicalID string) string, extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range t.Environment(functionID) {
		switch {
		case v.Ref != "" && t.resources[v.Ref] != nil:
			if r := resolve(v.Ref); r != "" {
				out[k] = r
			}
		case v.Ref != "":
			if d, ok := t.Parameter(v.Ref); ok {
				out[k] = d
			}
		case v.Tag == "":
			out[k] = v.Literal
		}
	}
	maps.Copy(out, extra)
	return out
}

// FunctionPackage returns the folder under functions/ that holds a
// function's main package: its logical id without "Function", in lower
// case (ConnectFunction → connect). The Makefile's build-<LogicalId>
// targets, which sam build runs, follow the same rule.
func FunctionPackage(functionID string) string {
	return strings.ToLower(strings.TrimSuffix(functionID, "Function"))
}

// Statement is one statement of a function's inline IAM policy.
type Statement struct {
	Effect    string
	Actions   []string
	Resources []Value
}

// PolicyStatements returns the statements of a function's Policies. A
// policy that is not an inline {Statement: [...]} (a SAM policy template,
// a managed policy ARN) is an error: least privilege is checked on
// statements only.
func (t *Template) PolicyStatements(functionID string) ([]Statement, error) {
	var out []Statement
	for _, p := range items(t.property(functionID, "Policies")) {
		stmts := get(p, "Statement")
		if stmts == nil {
			return nil, fmt.Errorf("%s: a policy that is not an inline Statement list", functionID)
		}
		for _, st := range items(stmts) {
			s := Statement{Effect: scalar(get(st, "Effect"))}
			for _, a := range listOrOne(get(st, "Action")) {
				s.Actions = append(s.Actions, scalar(a))
			}
			for _, r := range listOrOne(get(st, "Resource")) {
				s.Resources = append(s.Resources, valueOf(r))
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// Permission is an AWS::Lambda::Permission.
type Permission struct {
	LogicalID string
	Function  string // the function's logical id (FunctionName: !Ref F)
	Principal string
	SourceArn Value
}

// Permissions returns the template's Lambda permissions, sorted.
func (t *Template) Permissions() []Permission {
	var out []Permission
	for _, id := range t.ResourcesOfType("AWS::Lambda::Permission") {
		out = append(out, Permission{LogicalID: id, Function: valueOf(t.property(id, "FunctionName")).Ref,
			Principal: scalar(t.property(id, "Principal")), SourceArn: valueOf(t.property(id, "SourceArn"))})
	}
	return out
}

func listOrOne(n *yaml.Node) []*yaml.Node {
	if n != nil && n.Kind == yaml.SequenceNode {
		return n.Content
	}
	if n == nil {
		return nil
	}
	return []*yaml.Node{n}
}

var subVar = regexp.MustCompile(`\$\{([A-Za-z0-9:]+)\}`)

// Sub resolves a !Sub string: ${X} becomes vars[X], else X's parameter
// value; what is neither stays as it is.
func (t *Template) Sub(v Value, vars map[string]string) string {
	return subVar.ReplaceAllStringFunc(v.Text, func(m string) string {
		name := m[2 : len(m)-1]
		if r, ok := vars[name]; ok {
			return r
		}
		if d, ok := t.Parameter(name); ok {
			return d
		}
		return m
	})
}

// FunctionSetting returns a function's property at path, else the one in
// Globals.Function, with !If followed to the branch the parameters select.
func (t *Template) FunctionSetting(functionID string, path ...string) (Value, error) {
	n := t.property(functionID, path...)
	if n == nil {
		n = t.globals
		for _, p := range path {
			n = get(n, p)
		}
	}
	n, err := t.choose(n)
	return valueOf(n), err
}
