package localgw

import (
	"net/http"
	"regexp"
	"strings"
)

// Callers says who may call the Management API: for each access key id a
// caller signs with, the resources (execute-api ARNs, "*" matching any
// characters) its policy allows execute-api:ManageConnections on. A nil
// Callers lets any signed request through.
type Callers map[string][]string

// credential reads the access key id of a SigV4 Authorization header.
var credential = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/`)

// authorize answers a Management API request as API Gateway does: 403
// "Missing Authentication Token" without a SigV4 signature, 403
// AccessDeniedException when the caller's policy does not allow the
// method on that connection's ARN. It reports whether to go on.
func (g *Gateway) authorize(w http.ResponseWriter, r *http.Request, id string) bool {
	m := credential.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		apiError(w, http.StatusForbidden, "ForbiddenException", "Missing Authentication Token")
		return false
	}
	if g.cfg.Callers == nil {
		return true
	}
	arn := g.arn(r.Method + "/@connections/" + id)
	for _, pattern := range g.callers[m[1]] {
		if pattern.MatchString(arn) {
			return true
		}
	}
	apiError(w, http.StatusForbidden, "AccessDeniedException",
		"User: "+m[1]+" is not authorized to perform: execute-api:ManageConnections on resource: "+arn)
	return false
}

// arn is the execute-api ARN of a path under this API's stage.
func (g *Gateway) arn(path string) string {
	return "arn:aws:execute-api:" + g.cfg.Region + ":" + AccountID + ":" + g.cfg.APIID + "/" + g.cfg.Stage + "/" + path
}

// AccountID is the account the emulated API belongs to, in its ARNs.
const AccountID = "000000000000"

// compile turns each caller's resource patterns into regular expressions,
// once: the Management API checks them on every post.
func (cs Callers) compile() map[string][]*regexp.Regexp {
	out := make(map[string][]*regexp.Regexp, len(cs))
	for key, patterns := range cs {
		for _, p := range patterns {
			out[key] = append(out[key], resourcePattern(p))
		}
	}
	return out
}

// resourcePattern compiles an IAM resource pattern, where * matches any run
// of characters and ? any one.
func resourcePattern(pattern string) *regexp.Regexp {
	// Quoted, so it always compiles.
	return regexp.MustCompile("^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$")
}

// wildcard matches s against an IAM resource pattern.
func wildcard(pattern, s string) bool { return resourcePattern(pattern).MatchString(s) }
