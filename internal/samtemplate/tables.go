package samtemplate

import "fmt"

// Table is an AWS::DynamoDB::Table as the template defines it.
type Table struct {
	LogicalID    string
	Attributes   []Attribute // AttributeDefinitions
	Keys         []Key       // KeySchema, HASH first
	TTLAttribute string      // "" when TTL is not enabled
}

// Attribute is one attribute definition.
type Attribute struct{ Name, Type string }

// Key is one key schema element.
type Key struct{ Name, Type string }

// Tables returns the template's DynamoDB tables, sorted by logical id.
func (t *Template) Tables() ([]Table, error) {
	var out []Table
	for _, id := range t.ResourcesOfType("AWS::DynamoDB::Table") {
		tb := Table{LogicalID: id}
		for _, a := range items(t.property(id, "AttributeDefinitions")) {
			tb.Attributes = append(tb.Attributes, Attribute{scalar(get(a, "AttributeName")), scalar(get(a, "AttributeType"))})
		}
		for _, k := range items(t.property(id, "KeySchema")) {
			tb.Keys = append(tb.Keys, Key{scalar(get(k, "AttributeName")), scalar(get(k, "KeyType"))})
		}
		if len(tb.Keys) == 0 || len(tb.Attributes) == 0 {
			return nil, fmt.Errorf("table %s: no KeySchema or AttributeDefinitions", id)
		}
		if ttl := t.property(id, "TimeToLiveSpecification"); scalar(get(ttl, "Enabled")) == "true" {
			tb.TTLAttribute = scalar(get(ttl, "AttributeName"))
		}
		out = append(out, tb)
	}
	return out, nil
}
