package samtemplate

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
)

// WebSocketAPI is an AWS::ApiGatewayV2::Api of protocol WEBSOCKET with its
// routes and stage, as the local gateway needs them.
type WebSocketAPI struct {
	LogicalID                string
	RouteSelectionExpression string
	Stage                    string            // the stage's name (a parameter's default if it is a !Ref)
	Routes                   map[string]string // route key → logical id of the function it invokes
	// TwoWay holds the route keys with a route response ($default): API
	// Gateway sends the client the body its function returns.
	TwoWay map[string]bool
	// ThrottlingRateLimit and ThrottlingBurstLimit are the stage's
	// DefaultRouteSettings (0: not set).
	ThrottlingRateLimit  float64
	ThrottlingBurstLimit int
	// Authorizer is the $connect route's Lambda REQUEST authorizer, with
	// the parameters' values; nil if $connect has none.
	Authorizer *Authorizer
}

// Authorizer is a Lambda REQUEST authorizer of a WebSocket API.
type Authorizer struct {
	LogicalID string
	Function  string // logical id of the function it invokes
	// IdentitySource lists where the identity is, e.g.
	// route.request.header.Auth or route.request.querystring.token.
	IdentitySource []string
}

var (
	integrationRef = regexp.MustCompile(`^integrations/\$\{([A-Za-z0-9]+)\}$`)
	functionArnRef = regexp.MustCompile(`\$\{([A-Za-z0-9]+)\.Arn\}`)
)

// WebSocketAPIs returns the template's WebSocket APIs, sorted by logical id.
func (t *Template) WebSocketAPIs() ([]WebSocketAPI, error) {
	var out []WebSocketAPI
	for _, id := range t.ResourcesOfType("AWS::ApiGatewayV2::Api") {
		if scalar(t.property(id, "ProtocolType")) != "WEBSOCKET" {
			continue
		}
		api := WebSocketAPI{LogicalID: id, RouteSelectionExpression: scalar(t.property(id, "RouteSelectionExpression")),
			Routes: map[string]string{}, TwoWay: map[string]bool{}}
		for _, sid := range t.ResourcesOfType("AWS::ApiGatewayV2::Stage") {
			if valueOf(t.property(sid, "ApiId")).Ref == id {
				api.Stage = t.resolve(valueOf(t.property(sid, "StageName")))
				rate := t.resolve(valueOf(t.property(sid, "DefaultRouteSettings", "ThrottlingRateLimit")))
				burst := t.resolve(valueOf(t.property(sid, "DefaultRouteSettings", "ThrottlingBurstLimit")))
				var err1, err2 error
				if rate != "" {
					api.ThrottlingRateLimit, err1 = strconv.ParseFloat(rate, 64)
				}
				if burst != "" {
					api.ThrottlingBurstLimit, err2 = strconv.Atoi(burst)
				}
				if err := errors.Join(err1, err2); err != nil {
					return nil, fmt.Errorf("stage %s throttling: %w", sid, err)
				}
			}
		}
		for _, rid := range t.ResourcesOfType("AWS::ApiGatewayV2::Route") {
			if valueOf(t.property(rid, "ApiId")).Ref != id {
				continue
			}
			fn, err := t.routeFunction(rid)
			if err != nil {
				return nil, err
			}
			key := scalar(t.property(rid, "RouteKey"))
			api.Routes[key] = fn
			if api.TwoWay[key], err = t.twoWay(rid); err != nil {
				return nil, err
			}
			a, err := t.routeAuthorizer(rid)
			if err != nil {
				return nil, err
			}
			if a != nil {
				if key != "$connect" {
					return nil, fmt.Errorf("route %s: only $connect can have an authorizer", key)
				}
				api.Authorizer = a
			}
		}
		if api.Stage == "" || len(api.Routes) == 0 {
			return nil, fmt.Errorf("WebSocket API %s: no stage or no routes", id)
		}
		out = append(out, api)
	}
	return out, nil
}

// routeFunction follows a route's Target to its integration and the
// integration's IntegrationUri to the function it invokes.
func (t *Template) routeFunction(routeID string) (string, error) {
	target := valueOf(t.property(routeID, "Target"))
	m := integrationRef.FindStringSubmatch(target.Text)
	if target.Tag != "!Sub" || m == nil {
		return "", fmt.Errorf("route %s: Target %q is not !Sub integrations/${Integration}", routeID, target.Text)
	}
	uri := valueOf(t.property(m[1], "IntegrationUri"))
	f := functionArnRef.FindStringSubmatch(uri.Text)
	if f == nil || t.ResourceType(f[1]) != "AWS::Serverless::Function" {
		return "", fmt.Errorf("route %s: integration %s invokes no function of this template", routeID, m[1])
	}
	return f[1], nil
}

// twoWay reports whether a route has a route response. As in API Gateway,
// the only key is $default, and it needs the route's
// RouteResponseSelectionExpression to be $default too.
func (t *Template) twoWay(routeID string) (bool, error) {
	var responses []string
	for _, id := range t.ResourcesOfType("AWS::ApiGatewayV2::RouteResponse") {
		if valueOf(t.property(id, "RouteId")).Ref == routeID {
			responses = append(responses, id)
		}
	}
	expr := scalar(t.property(routeID, "RouteResponseSelectionExpression"))
	switch {
	case len(responses) == 0 && expr == "":
		return false, nil
	case len(responses) != 1:
		return false, fmt.Errorf("route %s: RouteResponseSelectionExpression %q with %d route responses, want one", routeID, expr, len(responses))
	case expr != "$default":
		return false, fmt.Errorf("route %s has a route response: its RouteResponseSelectionExpression is %q, want $default", routeID, expr)
	case scalar(t.property(responses[0], "RouteResponseKey")) != "$default":
		return false, fmt.Errorf("route response %s: only the key $default is emulated (the only one WebSocket APIs have)", responses[0])
	}
	return true, nil
}

// routeAuthorizer returns the Lambda authorizer a route uses with the
// parameters' values (AuthorizationType CUSTOM), or nil.
func (t *Template) routeAuthorizer(routeID string) (*Authorizer, error) {
	typ, err := t.choose(t.property(routeID, "AuthorizationType"))
	if err != nil {
		return nil, fmt.Errorf("route %s AuthorizationType: %w", routeID, err)
	}
	switch v := t.resolve(valueOf(typ)); v {
	case "", "NONE":
		return nil, nil
	case "CUSTOM":
	default:
		return nil, fmt.Errorf("route %s: AuthorizationType %s is not emulated (only NONE and CUSTOM)", routeID, v)
	}
	ref, err := t.choose(t.property(routeID, "AuthorizerId"))
	if err != nil {
		return nil, fmt.Errorf("route %s AuthorizerId: %w", routeID, err)
	}
	id := valueOf(ref).Ref
	if t.ResourceType(id) != "AWS::ApiGatewayV2::Authorizer" {
		return nil, fmt.Errorf("route %s: AuthorizerId is not a !Ref to an AWS::ApiGatewayV2::Authorizer", routeID)
	}
	if active, err := t.Active(id); err != nil || !active {
		return nil, fmt.Errorf("route %s: authorizer %s does not exist with these parameters (%v)", routeID, id, err)
	}
	if typ := scalar(t.property(id, "AuthorizerType")); typ != "REQUEST" {
		return nil, fmt.Errorf("authorizer %s: AuthorizerType %q, want REQUEST (the only one WebSocket APIs have)", id, typ)
	}
	// AWS refuses the property on WebSocket APIs ("AuthorizerResultTtlInSeconds
	// cannot be set for WEBSOCKET protocol Apis"): results are not cached.
	if t.property(id, "AuthorizerResultTtlInSeconds") != nil {
		return nil, fmt.Errorf("authorizer %s: AuthorizerResultTtlInSeconds cannot be set for WebSocket APIs", id)
	}
	f := functionArnRef.FindStringSubmatch(valueOf(t.property(id, "AuthorizerUri")).Text)
	if f == nil || t.ResourceType(f[1]) != "AWS::Serverless::Function" {
		return nil, fmt.Errorf("authorizer %s: AuthorizerUri invokes no function of this template", id)
	}
	return &Authorizer{LogicalID: id, Function: f[1], IdentitySource: t.PropertyList(id, "IdentitySource")}, nil
}

func (t *Template) resolve(v Value) string {
	if v.Ref != "" {
		d, _ := t.Parameter(v.Ref)
		return d
	}
	return v.Literal
}

// RouteKeys returns an API's route keys, sorted.
func (a WebSocketAPI) RouteKeys() []string {
	keys := make([]string, 0, len(a.Routes))
	for k := range a.Routes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
