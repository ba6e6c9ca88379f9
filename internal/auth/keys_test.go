package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// provider is an OpenID provider whose keys are not where Cognito keeps
// them: its discovery document points at ISSUER/jwks, and
// ISSUER/.well-known/jwks.json answers 405.
type provider struct {
	issuer     string
	key        *rsa.PrivateKey
	discovered atomic.Int32
	keysServed atomic.Int32
	docIssuer  string // the issuer the document names (default: the right one)
}

func newProvider(t *testing.T) *provider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /chat/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discovered.Add(1)
		iss := p.issuer
		if p.docIssuer != "" {
			iss = p.docIssuer
		}
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": p.issuer + "/jwks"})
	})
	mux.HandleFunc("GET /chat/jwks", func(w http.ResponseWriter, r *http.Request) {
		p.keysServed.Add(1)
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("/chat/.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusMethodNotAllowed)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.issuer = srv.URL + "/chat"
	return p
}

func (p *provider) token(t *testing.T) string {
	return sign(t, p.key, "k1", jose.RS256, map[string]any{"iss": p.issuer, "sub": "u1", "aud": "chat-page",
		"exp": time.Now().Add(time.Hour).Unix(), "name": "Ana"})
}

// With no JWKS URL the keys are found through the issuer's discovery
// document, read once, wherever they are.
func TestKeysThroughDiscovery(t *testing.T) {
	p := newProvider(t)
	v := NewVerifier(p.issuer, []string{"chat-page"}, &KeySet{Issuer: p.issuer, Every: time.Hour})
	for range 5 {
		if id, err := v.Verify(t.Context(), p.token(t)); err != nil || id.Name != "Ana" {
			t.Fatalf("Verify = %+v, %v", id, err)
		}
	}
	if d, k := p.discovered.Load(), p.keysServed.Load(); d != 1 || k != 1 {
		t.Errorf("discovery read %d times, keys %d times; want once each", d, k)
	}
	// An explicit URL is used as is.
	v = NewVerifier(p.issuer, []string{"chat-page"}, &KeySet{Issuer: p.issuer, URL: p.issuer + "/jwks"})
	if _, err := v.Verify(t.Context(), p.token(t)); err != nil || p.discovered.Load() != 1 {
		t.Errorf("with a JWKS URL: %v, discovery read %d times", err, p.discovered.Load())
	}
}

// A discovery document for another issuer is not trusted: the keys cannot
// be had (an outage to log, not a bad token), and discovery is tried again
// only after Every.
func TestDiscoveryOfAnotherIssuer(t *testing.T) {
	p := newProvider(t)
	p.docIssuer = "https://evil.example"
	v := NewVerifier(p.issuer, []string{"chat-page"}, &KeySet{Issuer: p.issuer, Every: time.Hour})
	for range 3 {
		if _, err := v.Verify(t.Context(), p.token(t)); err == nil || errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v; want the keys unavailable", err)
		}
	}
	if d, k := p.discovered.Load(), p.keysServed.Load(); d != 1 || k != 0 {
		t.Errorf("discovery read %d times, keys %d times; want 1 and 0", d, k)
	}
}

// A verifier with no audience accepts no token: the issuer signs tokens
// for other applications too.
func TestNoAudienceRefusesAll(t *testing.T) {
	p := newProvider(t)
	v := NewVerifier(p.issuer, nil, &KeySet{Issuer: p.issuer})
	if id, err := v.Verify(t.Context(), p.token(t)); err == nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("accepted as %+v (%v)", id, err)
	}
}
