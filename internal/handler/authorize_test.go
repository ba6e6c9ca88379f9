package handler

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chatgo/serverless-chat/internal/auth"
)

type fakeTokens map[string]auth.Identity

func (f fakeTokens) Verify(_ context.Context, token string) (auth.Identity, error) {
	switch token {
	case "keys.un.reachable":
		return auth.Identity{}, errors.New("get the issuer's keys: connection refused")
	case "pan.ic.ked":
		panic("a bug")
	}
	if id, ok := f[token]; ok {
		return id, nil
	}
	return auth.Identity{}, auth.ErrInvalid
}

func TestAuthorize(t *testing.T) {
	a := &Authorizer{Tokens: fakeTokens{"good.to.ken": {Subject: "sub-1", Name: "Ana"}}, Log: slog.New(slog.DiscardHandler)}
	arn := "arn:aws:execute-api:eu-west-1:123456789012:abc/prod/$connect"
	ask := func(protocols string) (events.APIGatewayCustomAuthorizerResponse, error) {
		ev := events.APIGatewayCustomAuthorizerRequestTypeRequest{MethodArn: arn, Headers: map[string]string{}}
		if protocols != "" {
			ev.Headers["Sec-WebSocket-Protocol"] = protocols
		}
		return a.Authorize(t.Context(), ev)
	}
	// Denied, never failed: the authorizer's errors are its own failures.
	for _, malformed := range []string{"", "chat", "chat, bad", "chat, a.b", "chat, a.b.c.d", "chat, a b.c.d", "chat, ." + strings.Repeat("a", auth.MaxTokenBytes) + ".c"} {
		if resp, err := ask(malformed); err != nil || resp.PolicyDocument.Statement[0].Effect != "Deny" || resp.Context != nil {
			t.Errorf("%.30q: %+v, %v; want Deny (403) for no token or one that is not a JWT", malformed, resp, err)
		}
	}
	resp, err := ask("chat, bad.to.ken")
	if err != nil || resp.PolicyDocument.Statement[0].Effect != "Deny" || resp.Context != nil {
		t.Errorf("a bad token: %+v, %v; want Deny (403) and no identity", resp, err)
	}
	resp, err = ask("chat, good.to.ken")
	st := resp.PolicyDocument.Statement[0]
	if err != nil || st.Effect != "Allow" || st.Resource[0] != arn || resp.PrincipalID != "sub-1" ||
		resp.Context[AuthUserID] != "sub-1" || resp.Context[AuthName] != "Ana" {
		t.Errorf("a good token: %+v, %v", resp, err)
	}
	if TokenOf("good , chat") != "good" || TokenOf(" chat ") != "" {
		t.Error("TokenOf")
	}
	// Its own failures are errors (API Gateway answers 500, and they count
	// in its errors metric), never a Deny that would hide them.
	for _, tok := range []string{"keys.un.reachable", "pan.ic.ked"} {
		if _, err := ask("chat, " + tok); err == nil || err.Error() == "Unauthorized" {
			t.Errorf("%s: %v; want the authorizer's own error", tok, err)
		}
	}
}

// With sign-in, $connect takes the name and user from the authorizer and
// ignores the query's name; it agrees to the chat subprotocol.
func TestConnectSignedIn(t *testing.T) {
	w := newWorld(t)
	ev := loadEvent(t, "connect.json")
	ev.RequestContext.ConnectionID = "s1"
	ev.QueryStringParameters = map[string]string{"name": "Mallory", "room": "r"}
	ev.Headers["Sec-WebSocket-Protocol"] = "chat, eyJ.token.sig"
	ev.RequestContext.Authorizer = map[string]any{AuthUserID: "3f1c9a2e-sub", AuthName: "Ana Lima", "principalId": "3f1c9a2e-sub"}
	resp, err := w.h.Connect(t.Context(), ev)
	if err != nil || resp.StatusCode != 200 || resp.Headers["Sec-WebSocket-Protocol"] != "chat" {
		t.Fatalf("Connect = %+v, %v", resp, err)
	}
	c, err := w.db.Connection(t.Context(), "s1")
	if err != nil || c.Name != "Ana Lima" || c.UserID != "u-3f1c9a2e-sub" {
		t.Errorf("connection = %+v, %v; want the account's name and user", c, err)
	}
	ev.RequestContext.ConnectionID = "s2"
	ev.RequestContext.Authorizer = map[string]any{AuthUserID: "x#y", AuthName: "\u202Eevil"}
	if resp, _ := w.h.Connect(t.Context(), ev); resp.StatusCode != 200 {
		t.Fatalf("an account name the rules refuse: %d", resp.StatusCode)
	}
	if c, _ := w.db.Connection(t.Context(), "s2"); c.Name == "\u202Eevil" || !strings.HasPrefix(c.Name, "guest-") || strings.Contains(c.UserID, "#") {
		t.Errorf("connection = %+v; want a guest name and a user id without #", c)
	}
}
