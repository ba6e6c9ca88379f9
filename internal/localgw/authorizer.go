package localgw

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Authorizer is a Lambda REQUEST authorizer on $connect, the only route of
// a WebSocket API that can have one.
type Authorizer struct {
	Function string
	// IdentitySource lists route.request.header.NAME and
	// route.request.querystring.NAME expressions: a handshake lacking one
	// of them gets 401 without the function being invoked.
	IdentitySource []string
}

// identitySource splits route.request.header.NAME into "header", NAME.
func identitySource(expr string) (kind, name string, ok bool) {
	rest, ok := strings.CutPrefix(expr, "route.request.")
	if !ok {
		return "", "", false
	}
	kind, name, ok = strings.Cut(rest, ".")
	return kind, name, ok && name != "" && (kind == "header" || kind == "querystring")
}

// authorizerRequest is the event a WebSocket API hands a REQUEST
// authorizer: the $connect request's headers and query with the
// WebSocket request context, and the ARN of the route.
type authorizerRequest struct {
	Type                            string                                        `json:"type"`
	MethodArn                       string                                        `json:"methodArn"`
	Headers                         map[string]string                             `json:"headers"`
	MultiValueHeaders               map[string][]string                           `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string                             `json:"queryStringParameters,omitempty"`
	MultiValueQueryStringParameters map[string][]string                           `json:"multiValueQueryStringParameters,omitempty"`
	StageVariables                  map[string]string                             `json:"stageVariables"`
	RequestContext                  events.APIGatewayWebsocketProxyRequestContext `json:"requestContext"`
}

// runAuthorizer decides a handshake as API Gateway does: 401 when an
// identity source is missing or empty (without invoking the function) or
// when the function fails with "Unauthorized"; 403 when its policy does not
// allow execute-api:Invoke on the route's ARN; 500 when it fails otherwise
// or answers something else. On Allow it returns 0 and what $connect gets
// as requestContext.authorizer: principalId and the context's values.
// WebSocket APIs do not cache authorizer results: it runs on every
// handshake.
func (g *Gateway) runAuthorizer(ctx context.Context, r *http.Request, ev events.APIGatewayWebsocketProxyRequest) (int, map[string]any) {
	a := g.cfg.Authorizer
	log := g.cfg.Log.With("route", "$connect", "authorizer", a.Function, "connectionId", ev.RequestContext.ConnectionID)
	for _, src := range a.IdentitySource {
		kind, name, _ := identitySource(src)
		v := r.Header.Get(name)
		if kind == "querystring" {
			v = r.URL.Query().Get(name)
		}
		if strings.TrimSpace(v) == "" {
			log.Info("handshake unauthorized: identity source missing", "source", src)
			return http.StatusUnauthorized, nil
		}
	}
	methodArn := g.arn("$connect")
	payload, err := json.Marshal(authorizerRequest{Type: "REQUEST", MethodArn: methodArn, Headers: ev.Headers,
		MultiValueHeaders: ev.MultiValueHeaders, QueryStringParameters: ev.QueryStringParameters,
		MultiValueQueryStringParameters: ev.MultiValueQueryStringParameters, StageVariables: map[string]string{},
		RequestContext: ev.RequestContext})
	if err != nil {
		return http.StatusInternalServerError, nil
	}
	out, err := g.call(ctx, log, a.Function, payload)
	var fe *FunctionError
	switch {
	case errors.As(err, &fe) && fe.Message == "Unauthorized":
		log.Info("handshake unauthorized by the authorizer")
		return http.StatusUnauthorized, nil
	case err != nil:
		return http.StatusInternalServerError, nil
	}
	var resp events.APIGatewayCustomAuthorizerResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.PrincipalID == "" {
		log.Error("the authorizer answered something that is not a policy with a principalId", "body", string(out))
		return http.StatusInternalServerError, nil
	}
	if !allows(resp.PolicyDocument, methodArn) {
		log.Info("handshake forbidden by the authorizer's policy", "principalId", resp.PrincipalID)
		return http.StatusForbidden, nil
	}
	authCtx := map[string]any{"principalId": resp.PrincipalID}
	for k, v := range resp.Context {
		switch v.(type) {
		case string, float64, bool:
			authCtx[k] = v
		default: // AWS takes only strings, numbers and booleans
			log.Error("the authorizer's context holds a value that is not a string, number or boolean", "key", k)
			return http.StatusInternalServerError, nil
		}
	}
	return 0, authCtx
}

// allows reports whether a policy allows execute-api:Invoke on arn: some
// Allow statement matches and no Deny does.
func allows(doc events.APIGatewayCustomAuthorizerPolicy, arn string) bool {
	allowed := false
	for _, st := range doc.Statement {
		if !matchesAny(st.Action, "execute-api:Invoke") || !matchesAny(st.Resource, arn) {
			continue
		}
		switch st.Effect {
		case "Deny":
			return false
		case "Allow":
			allowed = true
		}
	}
	return allowed
}

func matchesAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if wildcard(p, s) {
			return true
		}
	}
	return false
}
