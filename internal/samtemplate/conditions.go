package samtemplate

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SetParameters overrides parameters' defaults, as sam deploy's
// --parameter-overrides does. A name the template does not declare, or a
// value CloudFormation would refuse (outside its AllowedValues, its
// AllowedPattern or a Number's MinValue and MaxValue), is an error.
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
		if pattern := scalar(get(p, "AllowedPattern")); pattern != "" {
			re, err := regexp.Compile(pattern)
			if err != nil {
				return fmt.Errorf("parameter %s: AllowedPattern: %w", name, err)
			}
			if !re.MatchString(v) {
				return fmt.Errorf("parameter %s=%q: does not match %s", name, v, pattern)
			}
		}
		if scalar(get(p, "Type")) == "Number" {
			r, _ := t.ParameterRange(name)
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || r.HasMin && f < r.Min || r.HasMax && f > r.Max {
				return fmt.Errorf("parameter %s=%q: want a number in %s", name, v, r)
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

// Range is a Number parameter's MinValue and MaxValue.
type Range struct {
	Min, Max       float64
	HasMin, HasMax bool
}

func (r Range) String() string {
	lo, hi := "-∞", "∞"
	if r.HasMin {
		lo = strconv.FormatFloat(r.Min, 'g', -1, 64)
	}
	if r.HasMax {
		hi = strconv.FormatFloat(r.Max, 'g', -1, 64)
	}
	return "[" + lo + ", " + hi + "]"
}

// ParameterRange returns a parameter's MinValue and MaxValue, and whether
// it is a Number parameter.
func (t *Template) ParameterRange(name string) (Range, bool) {
	p := get(t.params, name)
	if scalar(get(p, "Type")) != "Number" {
		return Range{}, false
	}
	var r Range
	var err error
	if n := get(p, "MinValue"); n != nil {
		r.Min, err = strconv.ParseFloat(scalar(n), 64)
		r.HasMin = err == nil
	}
	if n := get(p, "MaxValue"); n != nil {
		r.Max, err = strconv.ParseFloat(scalar(n), 64)
		r.HasMax = err == nil
	}
	return r, true
}

// Parameters returns the names of the template's parameters, in order.
func (t *Template) Parameters() []string {
	var names []string
	for _, p := range pairs(t.params) {
		names = append(names, p.key)
	}
	return names
}

// CheckRules evaluates the template's Rules with the parameters' values,
// as CloudFormation does before it creates anything: each failed
// assertion of a rule whose RuleCondition holds is an error, with its
// AssertDescription.
func (t *Template) CheckRules() error {
	var errs []error
	for _, rule := range pairs(t.rules) {
		if c := get(rule.value, "RuleCondition"); c != nil {
			ok, err := t.evalCondition(c)
			if err != nil {
				return fmt.Errorf("rule %s: %w", rule.key, err)
			}
			if !ok {
				continue
			}
		}
		for _, a := range items(get(rule.value, "Assertions")) {
			ok, err := t.evalCondition(get(a, "Assert"))
			if err != nil {
				return fmt.Errorf("rule %s: %w", rule.key, err)
			}
			if !ok {
				errs = append(errs, fmt.Errorf("rule %s: %s", rule.key, strings.TrimSpace(scalar(get(a, "AssertDescription")))))
			}
		}
	}
	return errors.Join(errs...)
}
