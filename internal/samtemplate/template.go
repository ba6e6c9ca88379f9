package samtemplate

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Template is a parsed template.yaml.
type Template struct {
	resources  map[string]*yaml.Node // logical id → the resource's mapping
	globals    *yaml.Node            // Globals.Function, or nil
	params     *yaml.Node            // Parameters, or nil
	conditions *yaml.Node            // Conditions, or nil
	rules      *yaml.Node            // Rules, or nil
	overrides  map[string]string     // parameter values SetParameters gave
}

// Load reads and parses the template at path.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return t, nil
}

// Parse parses a template.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("template is not a YAML mapping")
	}
	root := doc.Content[0]
	res := get(root, "Resources")
	if res == nil || res.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("template has no Resources")
	}
	t := &Template{resources: map[string]*yaml.Node{}, globals: get(get(root, "Globals"), "Function"),
		params: get(root, "Parameters"), conditions: get(root, "Conditions"), rules: get(root, "Rules")}
	for i := 0; i+1 < len(res.Content); i += 2 {
		t.resources[res.Content[i].Value] = res.Content[i+1]
	}
	return t, nil
}

// ResourceType returns the Type of a resource, "" if there is none.
func (t *Template) ResourceType(logicalID string) string {
	return scalar(get(t.resources[logicalID], "Type"))
}

// Attribute returns a resource attribute given as a plain value, such as
// DeletionPolicy ("" when absent).
func (t *Template) Attribute(logicalID, name string) string {
	return scalar(get(t.resources[logicalID], name))
}

// ResourcesOfType returns the logical ids of all resources of a type, sorted.
func (t *Template) ResourcesOfType(typ string) []string {
	var ids []string
	for id := range t.resources {
		if t.ResourceType(id) == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Node returns a resource's property as written (nil if it has none), by
// path as Property, for what Value does not model: intrinsic functions
// such as !If, metric math.
func (t *Template) Node(logicalID string, path ...string) *yaml.Node {
	return t.property(logicalID, path...)
}

// Child returns the value of a mapping node's key, nil if there is none.
func Child(n *yaml.Node, key string) *yaml.Node { return get(n, key) }

// property returns a resource's property node by path: keys of mappings
// and, in lists, indexes ("0").
func (t *Template) property(logicalID string, path ...string) *yaml.Node {
	n := get(t.resources[logicalID], "Properties")
	for _, p := range path {
		if i, err := strconv.Atoi(p); err == nil && n != nil && n.Kind == yaml.SequenceNode {
			seq := n.Content
			n = nil
			if i >= 0 && i < len(seq) {
				n = seq[i]
			}
			continue
		}
		n = get(n, p)
	}
	return n
}

// Value is a template value: a literal, or a reference to a parameter or
// resource (!Ref), or anything else kept as its tag and text.
type Value struct {
	Literal string // set for plain scalars
	Ref     string // set for !Ref X and {Ref: X}
	Tag     string // the intrinsic's tag for other intrinsics, e.g. "!Sub"
	Text    string // the intrinsic's argument as written, for !Sub and !GetAtt
}

func valueOf(n *yaml.Node) Value {
	if n == nil {
		return Value{}
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		key := n.Content[0].Value
		switch {
		case key == "Ref":
			return Value{Ref: n.Content[1].Value}
		case strings.HasPrefix(key, "Fn::"):
			return Value{Tag: "!" + strings.TrimPrefix(key, "Fn::"), Text: n.Content[1].Value}
		}
	}
	switch {
	case n.Tag == "!Ref":
		return Value{Ref: n.Value}
	case strings.HasPrefix(n.Tag, "!!") || n.Tag == "":
		return Value{Literal: n.Value}
	default:
		return Value{Tag: n.Tag, Text: n.Value}
	}
}

// ParameterDefault returns a parameter's Default, and whether it has one.
func (t *Template) ParameterDefault(name string) (string, bool) {
	d := get(get(t.params, name), "Default")
	return scalar(d), d != nil
}

type kv struct {
	key   string
	value *yaml.Node
}

func pairs(n *yaml.Node) []kv {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	out := make([]kv, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, kv{n.Content[i].Value, n.Content[i+1]})
	}
	return out
}

func get(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func items(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

// Property returns a resource's property at path as a Value.
func (t *Template) Property(logicalID string, path ...string) Value {
	return valueOf(t.property(logicalID, path...))
}

// PropertyList returns the items of a resource's list property as written
// (an intrinsic's argument for tagged items, e.g. a !Sub's string).
func (t *Template) PropertyList(logicalID string, path ...string) []string {
	var out []string
	for _, n := range items(t.property(logicalID, path...)) {
		out = append(out, scalar(n))
	}
	return out
}

// Lengths CloudFormation's pseudo parameters can take.
const (
	MaxStackNameChars = 128 // AWS::StackName
	maxRegionChars    = 20  // AWS::Region (the longest today, us-isob-east-1, has 14)
	stackUUIDChars    = 36  // the UUID at the end of AWS::StackId
)

// MaxLength returns the longest a resource's property can be once
// CloudFormation has resolved it, for any stack name: literals as written,
// AWS::StackName as MaxStackNameChars, AWS::Region as 20, a parameter as its longest
// AllowedValues, the stack id's UUID (!Select [2, !Split ["/", !Ref
// AWS::StackId]]) as 36, and !Sub and !Join of those. Anything else is an
// error.
func (t *Template) MaxLength(logicalID string, path ...string) (int, error) {
	return t.maxLength(t.property(logicalID, path...))
}

func (t *Template) maxLength(n *yaml.Node) (int, error) {
	if n == nil {
		return 0, fmt.Errorf("no value")
	}
	if v := valueOf(n); v.Ref != "" {
		return t.refLength(v.Ref)
	}
	fn, arg := intrinsic(n)
	switch fn {
	case "":
		if n.Kind == yaml.ScalarNode {
			return len(n.Value), nil
		}
	case "Sub":
		if arg.Kind != yaml.ScalarNode {
			break
		}
		total, err := len(subVar.ReplaceAllString(arg.Value, "")), error(nil)
		for _, m := range subVar.FindAllStringSubmatch(arg.Value, -1) {
			l, e := t.refLength(m[1])
			total, err = total+l, errors.Join(err, e)
		}
		return total, err
	case "Join":
		args := items(arg)
		if len(args) != 2 {
			break
		}
		parts := items(args[1])
		total := len(scalar(args[0])) * max(len(parts)-1, 0)
		for _, p := range parts {
			l, err := t.maxLength(p)
			if err != nil {
				return 0, err
			}
			total += l
		}
		return total, nil
	case "Select":
		args := items(arg)
		if len(args) == 2 && scalar(args[0]) == "2" {
			if f, split := intrinsic(args[1]); f == "Split" {
				if s := items(split); len(s) == 2 && scalar(s[0]) == "/" && valueOf(s[1]).Ref == "AWS::StackId" {
					return stackUUIDChars, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("cannot tell how long %s %q can be", n.Tag, n.Value)
}

func (t *Template) refLength(name string) (int, error) {
	switch name {
	case "AWS::StackName":
		return MaxStackNameChars, nil
	case "AWS::Region":
		return maxRegionChars, nil
	}
	allowed := items(get(get(t.params, name), "AllowedValues"))
	if allowed == nil {
		return 0, fmt.Errorf("cannot tell how long %s can be", name)
	}
	longest := 0
	for _, a := range allowed {
		longest = max(longest, len(scalar(a)))
	}
	return longest, nil
}
