package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST"

// idp is an issuer for the tests: a key pair and a JWKS endpoint that
// counts its fetches.
type idp struct {
	key     *rsa.PrivateKey
	kid     string
	srv     *httptest.Server
	fetches atomic.Int32
	down    atomic.Bool
}

func newIDP(t *testing.T) *idp {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{key: key, kid: "key-1"}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: p.kid, Algorithm: "RS256", Use: "sig"}}})
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func sign(t *testing.T, key any, kid string, alg jose.SignatureAlgorithm, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func claims(now time.Time, change map[string]any) map[string]any {
	c := map[string]any{"iss": issuer, "sub": "user-123", "client_id": "app-client", "token_use": "access",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "cognito:username": "ana", "email": "ana.lima@example.com"}
	for k, v := range change {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func TestVerify(t *testing.T) {
	p := newIDP(t)
	v := NewVerifier(issuer, []string{"app-client"}, &KeySet{URL: p.srv.URL, Every: time.Hour})
	now := time.Now()
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"key-1"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(must(json.Marshal(claims(now, nil)))) + "."
	exp := time.Unix(now.Add(time.Hour).Unix(), 0).UTC() // the claims' exp
	tests := []struct {
		name, token string
		want        Identity // zero: refused
	}{
		{"valid access token", sign(t, p.key, p.kid, jose.RS256, claims(now, nil)), Identity{"user-123", "ana", exp, ""}},
		{"valid id token, name claim", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"token_use": "id", "client_id": nil,
			"aud": "app-client", "name": "Ana Lima"})), Identity{"user-123", "Ana Lima", exp, ""}},
		{"a verified email", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"email": "Ana.Lima@Example.com", "email_verified": true})), Identity{"user-123", "ana", exp, "ana.lima@example.com"}},
		{"an email verified as a string", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"email_verified": "true"})), Identity{"user-123", "ana", exp, "ana.lima@example.com"}},
		{"an email not verified", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"email_verified": false})), Identity{"user-123", "ana", exp, ""}},
		{"email local part", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"cognito:username": nil})), Identity{"user-123", "ana.lima", exp, ""}},
		{"Cognito access token's username", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"cognito:username": nil, "username": "ana_l"})), Identity{"user-123", "ana_l", exp, ""}},
		{"no name: the subject", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"cognito:username": nil, "email": nil})), Identity{"user-123", "user-123", exp, ""}},
		{"expired", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"exp": now.Add(-time.Minute).Unix()})), Identity{}},
		{"expired within the leeway", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"exp": now.Add(-10 * time.Second).Unix()})), Identity{"user-123", "ana", time.Unix(now.Add(-10*time.Second).Unix(), 0).UTC(), ""}},
		{"not yet valid", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"nbf": now.Add(5 * time.Minute).Unix()})), Identity{}},
		{"no exp", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"exp": nil})), Identity{}},
		{"wrong issuer", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"iss": "https://evil.example"})), Identity{}},
		{"wrong audience", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"client_id": "other-client"})), Identity{}},
		{"wrong token_use", sign(t, p.key, p.kid, jose.RS256, claims(now, map[string]any{"token_use": "refresh"})), Identity{}},
		{"unknown kid", sign(t, p.key, "key-2", jose.RS256, claims(now, nil)), Identity{}},
		{"another key's signature", sign(t, other, p.kid, jose.RS256, claims(now, nil)), Identity{}},
		{"an EC key not the issuer's", sign(t, ec, p.kid, jose.ES256, claims(now, nil)), Identity{}},
		{"alg none", none, Identity{}},
		{"HS256 with the public key as secret", sign(t, must(json.Marshal(p.key.PublicKey)), p.kid, jose.HS256, claims(now, nil)), Identity{}},
		{"garbage", "not.a.token", Identity{}},
		{"empty", "", Identity{}},
		{"oversized", strings.Repeat("a", MaxTokenBytes+1), Identity{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tt.token)
			if tt.want == (Identity{}) {
				if err == nil || !errors.Is(err, ErrInvalid) {
					t.Errorf("accepted (%+v) or refused without ErrInvalid (%v)", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Verify = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	// Unknown kids do not make it fetch the keys more than once an Every.
	if n := p.fetches.Load(); n > 2 {
		t.Errorf("the JWKS endpoint was fetched %d times", n)
	}
}

// An issuer whose keys cannot be had denies, fast, and is asked again only
// once an interval.
func TestKeysUnavailable(t *testing.T) {
	p := newIDP(t)
	p.down.Store(true)
	v := NewVerifier(issuer, nil, &KeySet{URL: p.srv.URL, Every: time.Hour})
	tok := sign(t, p.key, p.kid, jose.RS256, claims(time.Now(), nil))
	for range 5 {
		if _, err := v.Verify(t.Context(), tok); err == nil || errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v; want a keys-unavailable error, not an invalid token", err)
		}
	}
	if n := p.fetches.Load(); n != 1 {
		t.Errorf("%d fetches of a JWKS endpoint that is down, want 1", n)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(3500 * time.Millisecond) }))
	defer slow.Close()
	v = NewVerifier(issuer, nil, &KeySet{URL: slow.URL})
	start := time.Now()
	if _, err := v.Verify(t.Context(), tok); err == nil || time.Since(start) > 4*time.Second {
		t.Errorf("a hanging JWKS endpoint: %v after %v; want a denial within about 3 s", err, time.Since(start))
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
