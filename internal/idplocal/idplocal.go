// Package idplocal gives the local stack and its tests a real OpenID
// Connect identity provider: NAV's mock-oauth2-server
// (no.nav.security:mock-oauth2-server on Maven Central), which signs real
// RS256 tokens, publishes its keys (JWKS) and discovery document, and runs
// the authorization-code flow with PKCE through a login page where any
// user name signs in (no password). It stands where Cognito stands in AWS.
// It has no part in the Lambda functions.
package idplocal

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chatgo/serverless-chat/internal/jvm"
)

// Version is the mock-oauth2-server release fetched from Maven Central;
// pom.xml names the same one.
const Version = "6.0.2"

//go:embed pom.xml
var pom []byte

const (
	// IssuerID is the path of the chat's issuer on the server.
	IssuerID = "chat"
	// ClientID is the OAuth client the page and the tests sign in as (a
	// public client: no secret).
	ClientID = "local-chat"
)

// Server is a running identity provider.
type Server struct {
	Issuer  string // http://127.0.0.1:PORT/chat
	JWKSURL string
	proc    *jvm.Process
}

// Start launches the identity provider on a free port of 127.0.0.1 and
// returns when it serves its discovery document. The caller must Close it.
func Start(ctx context.Context) (*Server, error) {
	lib, err := jvm.Fetch(ctx, "mock-oauth2-server", Version, "mock-oauth2-server-"+Version+".jar", pom)
	if err != nil {
		return nil, fmt.Errorf("local identity provider: %w", err)
	}
	// interactiveLogin: the authorize endpoint shows a login form instead
	// of signing in a random user.
	launch := func(port int) (*jvm.Process, error) {
		env := []string{"SERVER_HOSTNAME=127.0.0.1", "SERVER_PORT=" + strconv.Itoa(port), `JSON_CONFIG={"interactiveLogin":true}`}
		return jvm.Start(os.TempDir(), env, "-Xmx256m", "-cp", lib+"/*", "no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt")
	}
	proc, port, err := jvm.Serve(ctx, 60*time.Second, launch, func(ctx context.Context, port int) error {
		return discoverable(ctx, issuer(port))
	})
	if err != nil {
		return nil, fmt.Errorf("the local identity provider did not start: %w", err)
	}
	return &Server{Issuer: issuer(port), JWKSURL: issuer(port) + "/jwks", proc: proc}, nil
}

func issuer(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) + "/" + IssuerID }

// Exited is closed when the identity provider's process exits.
func (s *Server) Exited() <-chan struct{} { return s.proc.Exited() }

// ExitReason says how it ended; call it after Exited is closed.
func (s *Server) ExitReason() string { return s.proc.ExitReason() }

// Close stops it.
func (s *Server) Close() { s.proc.Stop() }

// discoverable checks that the issuer serves its discovery document.
func discoverable(ctx context.Context, issuer string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/openid-configuration", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("discovery answered %s", resp.Status)
	}
	return nil
}

// Token signs user in without the login page (the password grant, which
// this provider grants for any password) and returns the ID token, whose
// sub is user and aud ClientID. For tests and the load tool.
func (s *Server) Token(ctx context.Context, user string) (string, error) {
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {"-"}, "client_id": {ClientID}, "scope": {"openid"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("token for %s: %w", user, err)
	}
	defer resp.Body.Close()
	var body struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.IDToken == "" {
		return "", fmt.Errorf("token for %s: %s (%v)", user, resp.Status, err)
	}
	return body.IDToken, nil
}
