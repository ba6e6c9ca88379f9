package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/chatgo/serverless-chat/internal/idplocal"
	"github.com/chatgo/serverless-chat/internal/samtemplate"
)

// The page in web/, served next to the gateway with a config.js written for
// it, and its sign-in when the template turns sign-in on.

// signIn starts the local identity provider when the template's Auth is
// jwt and no JwtIssuer is given, and makes it the issuer whose tokens the
// authorizer accepts.
func signIn(ctx context.Context, tmpl *samtemplate.Template) (*idplocal.Server, error) {
	auth, _ := tmpl.Parameter("Auth")
	issuer, _ := tmpl.Parameter("JwtIssuer")
	if auth != "jwt" || issuer != "" {
		return nil, nil
	}
	idp, err := idplocal.Start(ctx)
	if err != nil {
		return nil, err
	}
	if err := tmpl.SetParameters(map[string]string{"JwtIssuer": idp.Issuer, "JwtAudience": idplocal.ClientID}); err != nil {
		idp.Close()
		return nil, err
	}
	return idp, nil
}

// pageSignIn is config.js's auth: where the page signs in (web/signin.js).
type pageSignIn struct {
	AuthorizeURL string `json:"authorizeUrl"`
	TokenURL     string `json:"tokenUrl"`
	ClientID     string `json:"clientId"`
}

// discoverSignIn reads the issuer's OpenID discovery document for the
// page's sign-in; the page's client is the first of JwtAudience.
func discoverSignIn(ctx context.Context, tmpl *samtemplate.Template) (*pageSignIn, error) {
	issuer, _ := tmpl.Parameter("JwtIssuer")
	audience, _ := tmpl.Parameter("JwtAudience")
	client, _, _ := strings.Cut(audience, ",")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, fmt.Errorf("JwtIssuer %q: %w", issuer, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discover the sign-in of %s: %w", issuer, err)
	}
	defer resp.Body.Close()
	var doc struct {
		Authorize string `json:"authorization_endpoint"`
		Token     string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.Authorize == "" || doc.Token == "" {
		return nil, fmt.Errorf("discover the sign-in of %s: %s, no authorization and token endpoints (%v)", issuer, resp.Status, err)
	}
	return &pageSignIn{AuthorizeURL: doc.Authorize, TokenURL: doc.Token, ClientID: strings.TrimSpace(client)}, nil
}

// page serves the web folder with config.js written for this gateway, and
// a Content-Security-Policy that lets the page connect to that gateway (and
// the sign-in's token endpoint) only.
func page(dir, websocketURL string, signIn *pageSignIn) http.Handler {
	origin := func(u string) string {
		if p, err := url.Parse(u); err == nil {
			return p.Scheme + "://" + p.Host
		}
		return u
	}
	connect := origin(websocketURL)
	config := map[string]any{"websocketUrl": websocketURL}
	if signIn != nil {
		connect += " " + origin(signIn.TokenURL)
		config["auth"] = signIn
	}
	configJSON, _ := json.Marshal(config)
	csp := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' " + connect +
		"; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	mux := http.NewServeMux()
	files := http.FileServer(http.Dir(dir))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("/config.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "// Written by the local gateway.\nexport default %s;\n", configJSON)
	})
	return mux
}
