package samtemplate

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SetParameters overrides parameters' defaults, as sam deploy's
// --parameter-overrides does. A name the template does not declare, or a
// value outside its AllowedValues, is an error.
func (t *Template) SetParameters(values map[string]string) error {
	for name, v := range values {
		p := get(t.params, name)
		if p == nil {
			return fmt.Errorf("parameter %s: the template has none", name)
		}
		if allowed := items(get(p, "AllowedValues")); allowed != nil {
			var vals []string
			for _, a := range allowed {
				vals = append(vals, scalar(a))
			}
			if !slices.Contains(vals, v) {
				return fmt.Errorf("parameter %s=%q: want one of %s", name, v, strings.Join(vals, ", "))
			}
		}
		if t.overrides == nil {
			t.overrides = map[string]string{}
		}
		t.overrides[name] = v
	}
	return nil
}

// Parameter returns a parameter's value: the one SetParameters gave, else
// its Default; and whether it has either.
func (t *Template) Parameter(name string) (string, bool) {
	if v, ok := t.overrides[name]; ok {
		return v, true
	}
	return t.ParameterDefault(name)
}

// Condition evaluates one of the template's Conditions with the
// parameters' values. It knows Equals (of literals and parameter Refs),
// Not, And, Or and Condition.
func (t *Template) Condition(name string) (bool, error) {
	n := get(t.conditions, name)
	if n == nil {
		return false, fmt.Errorf("condition %s: the template has none", name)
	}
	return t.evalCondition(n)
}

// Active reports whether a resource exists with the parameters' values:
// it has no Condition, or its Condition holds.
func (t *Template) Active(logicalID string) (bool, error) {
	c := scalar(get(t.resources[logicalID], "Condition"))
	if c == "" {
		return t.resources[logicalID] != nil, nil
	}
	return t.Condition(c)
}

// intrinsic returns the function name and argument of an intrinsic in
// either form (!Equals [..] or Fn::Equals: [..]); "" if n is none.
func intrinsic(n *yaml.Node) (string, *yaml.Node) {
	if n == nil {
		return "", nil
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		if name, ok := strings.CutPrefix(n.Content[0].Value, "Fn::"); ok {
			return name, n.Content[1]
		}
		if n.Content[0].Value == "Condition" {
			return "Condition", n.Content[1]
		}
	}
	if name, ok := strings.CutPrefix(n.Tag, "!"); ok && !strings.HasPrefix(n.Tag, "!!") {
		arg := *n
		arg.Tag = ""
		return name, &arg
	}
	return "", nil
}

func (t *Template) evalCondition(n *yaml.Node) (bool, error) {
	fn, arg := intrinsic(n)
	args := items(arg)
	switch fn {
	case "Equals":
		if len(args) != 2 {
			return false, errors.New("the Equals condition takes two values")
		}
		a, err1 := t.scalarValue(args[0])
		b, err2 := t.scalarValue(args[1])
		if err1 != nil || err2 != nil {
			return false, fmt.Errorf("an Equals condition: %w", errors.Join(err1, err2))
		}
		return a == b, nil
	case "Not":
		if len(args) != 1 {
			return false, errors.New("the Not condition takes one condition")
		}
		v, err := t.evalCondition(args[0])
		return !v, err
	case "And", "Or":
		for _, a := range args {
			v, err := t.evalCondition(a)
			if err != nil || v == (fn == "Or") {
				return v, err
			}
		}
		return fn == "And", nil
	case "Condition":
		return t.Condition(scalar(arg))
	}
	return false, fmt.Errorf("condition %q: only Equals, Not, And, Or and Condition are known", n.Tag+n.Value)
}

// scalarValue is a literal or a parameter's value.
func (t *Template) scalarValue(n *yaml.Node) (string, error) {
	v := valueOf(n)
	switch {
	case v.Ref != "":
		p, ok := t.Parameter(v.Ref)
		if !ok && get(t.params, v.Ref) == nil {
			return "", fmt.Errorf("!Ref %s is not a parameter", v.Ref)
		}
		return p, nil
	case v.Tag == "":
		return v.Literal, nil
	}
	return "", fmt.Errorf("%s is not a literal or a parameter", v.Tag)
}

// choose follows !If [Condition, a, b] (nested, too) to the branch the
// parameters select; any other value is returned as is, and
// !Ref AWS::NoValue as nil.
func (t *Template) choose(n *yaml.Node) (*yaml.Node, error) {
	for {
		fn, arg := intrinsic(n)
		if fn != "If" {
			if v := valueOf(n); v.Ref == "AWS::NoValue" {
				return nil, nil
			}
			return n, nil
		}
		args := items(arg)
		if len(args) != 3 {
			return nil, errors.New("!If takes a condition and two values")
		}
		ok, err := t.Condition(scalar(args[0]))
		if err != nil {
			return nil, err
		}
		n = args[2]
		if ok {
			n = args[1]
		}
	}
}
