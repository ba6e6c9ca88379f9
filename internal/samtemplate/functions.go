package samtemplate

import "maps"

// Environment returns the environment variables of an
// AWS::Serverless::Function: Globals first, then the function's own.
func (t *Template) Environment(functionID string) map[string]Value {
	env := map[string]Value{}
	add := func(vars []kv) {
		for _, v := range vars {
			env[v.key] = valueOf(v.value)
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

// CodeURI returns a function's CodeUri.
func (t *Template) CodeURI(functionID string) string {
	return scalar(t.property(functionID, "CodeUri"))
}

// LocalEnvironment resolves a function's environment for a local run: a
// !Ref to a resource becomes resolve(logicalID) (a local table name, say),
// a !Ref to a parameter its default, and literals stay. Values that cannot
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
			if d, ok := t.ParameterDefault(v.Ref); ok {
				out[k] = d
			}
		case v.Tag == "":
			out[k] = v.Literal
		}
	}
	maps.Copy(out, extra)
	return out
}
