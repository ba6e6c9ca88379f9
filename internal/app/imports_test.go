package app

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImportDirection enforces the dependency rules of the internal
// packages: the protocol knows no AWS, adapters know at most the protocol,
// and only the wiring combines them.
func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/chatgo/serverless-chat/internal/"
	allowed := map[string][]string{ // package → internal packages it may import
		"chat":                        {},
		"samtemplate":                 {},
		"store":                       {"chat"},
		"fanout":                      {"chat"},
		"handler":                     {"chat", "fanout", "metrics", "auth", "invite"},
		"invite":                      {},
		"metrics":                     {},
		"auth":                        {},
		"dynamolocal":                 {"samtemplate", "jvm"},
		"dynamolocal/dynamolocaltest": {"dynamolocal", "samtemplate"},
		"idplocal":                    {"jvm"},
		"jvm":                         {},
		"localgw":                     {},
		"chatclient":                  {"chat"},
	}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		pkg, ok := strings.CutPrefix(fields[0], mod)
		if !ok {
			continue
		}
		rules, ruled := allowed[pkg]
		for _, imp := range fields[1:] {
			if (pkg == "chat" || pkg == "chatclient") && strings.HasPrefix(imp, "github.com/aws/") {
				t.Errorf("%s imports %s: the protocol must not know AWS", pkg, imp)
			}
			dep, internal := strings.CutPrefix(imp, mod)
			if internal && ruled && !slices.Contains(rules, dep) {
				t.Errorf("%s imports %s; it may import only %v", pkg, dep, rules)
			}
		}
	}
}
