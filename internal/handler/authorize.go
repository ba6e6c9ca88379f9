package handler

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chatgo/serverless-chat/internal/auth"
)

// Tokens verifies a sign-in token.
type Tokens interface {
	Verify(ctx context.Context, token string) (auth.Identity, error)
}

// Authorizer serves the $connect REQUEST authorizer when sign-in is on:
// it finds the token among the subprotocols the client offered
// (Sec-WebSocket-Protocol: "chat, <token>"; browsers can set no other
// header, and a query string ends up in logs), verifies it and tells API
// Gateway who connects.
type Authorizer struct {
	Tokens Tokens
	Log    *slog.Logger
}

// Context keys the authorizer hands $connect (requestContext.authorizer).
const (
	AuthUserID  = "userId"
	AuthName    = "name"
	AuthExpires = "expires" // the token's exp, Unix seconds
	AuthEmail   = "email"   // the verified email, if any
)

// Authorize allows a connection whose token is valid, with its identity
// in the context, and denies (403) any other: one whose token is refused,
// and one that offers none or something that is not a JWT at all. It
// never fails on what a client sends (a Lambda authorizer makes API
// Gateway answer 401 by failing with "Unauthorized"), and fails (500)
// when it cannot check a token (the issuer's keys cannot be had, a
// panic), so that its errors metric counts exactly its own failures and
// an alarm can watch it;
// API Gateway itself answers 401, without invoking it, a handshake with
// no Sec-WebSocket-Protocol at all (the identity source).
func (a *Authorizer) Authorize(ctx context.Context, ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (resp events.APIGatewayCustomAuthorizerResponse, err error) {
	log := a.Log.With("route", "$connect authorizer")
	defer func() {
		if r := recover(); r != nil { // its own failure: an error, as above
			log.ErrorContext(ctx, "authorizer panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = events.APIGatewayCustomAuthorizerResponse{}, fmt.Errorf("authorizer panicked: %v", r)
		}
	}()
	offered, _ := header(ev.Headers, "Sec-WebSocket-Protocol")
	token := TokenOf(offered)
	if !auth.WellFormed(token) {
		// Missing, oversized or not a JWT: denied without a look at any key.
		log.InfoContext(ctx, "no token, or not one", "bytes", len(token))
		return policy("unknown", "Deny", ev.MethodArn, nil), nil
	}
	id, err := a.Tokens.Verify(ctx, token)
	switch {
	case errors.Is(err, auth.ErrInvalid):
		// The cause, never the token, is logged.
		log.InfoContext(ctx, "token refused", "err", err)
		return policy("unknown", "Deny", ev.MethodArn, nil), nil
	case err != nil:
		// The issuer's keys cannot be had: the authorizer's own failure
		// (API Gateway answers 500), counted in its errors and alarmed on.
		log.ErrorContext(ctx, "token not checked", "err", err)
		return resp, fmt.Errorf("check a token: %w", err)
	}
	log.InfoContext(ctx, "token accepted", "sub", id.Subject)
	return policy(id.Subject, "Allow", ev.MethodArn, map[string]any{AuthUserID: id.Subject, AuthName: id.Name, AuthExpires: id.Expires.Unix(), AuthEmail: id.Email}), nil
}

// TokenOf returns the token among the subprotocols a client offered (a
// Sec-WebSocket-Protocol header): the one that is not the protocol's name.
func TokenOf(offered string) string {
	for p := range subprotocols(offered) {
		if p != Subprotocol {
			return p
		}
	}
	return ""
}

// offers reports whether a Sec-WebSocket-Protocol header offers p.
func offers(offered, p string) bool {
	for q := range subprotocols(offered) {
		if q == p {
			return true
		}
	}
	return false
}

// subprotocols yields the items of a Sec-WebSocket-Protocol header.
func subprotocols(offered string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for p := range strings.SplitSeq(offered, ",") {
			if p = strings.TrimSpace(p); p != "" && !yield(p) {
				return
			}
		}
	}
}

// Subprotocol is the WebSocket subprotocol a signed-in client offers
// besides its token, and that $connect agrees to.
const Subprotocol = "chat"

func policy(principal, effect, resource string, context map[string]any) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{PrincipalID: principal, Context: context,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{resource}}}}}
}
