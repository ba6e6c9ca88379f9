package samtemplate

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Template is a parsed template.yaml.
type Template struct {
	resources  map[string]*yaml.Node // logical id → the resource's mapping
	globals    *yaml.Node            // Globals.Function, or nil
	params     *yaml.Node            // Parameters, or nil
	conditions *yaml.Node            // Conditions, or nil
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
		params: get(root, "Parameters"), conditions: get(root, "Conditions")}
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

// property returns a resource's property node by path.
func (t *Template) property(logicalID string, path ...string) *yaml.Node {
	n := get(t.resources[logicalID], "Properties")
	for _, p := range path {
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
