package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// KeySet is an issuer's signing keys. It satisfies oidc.KeySet. Safe for
// concurrent use.
type KeySet struct {
	// URL is where the keys are (a JWKS). Empty: the jwks_uri of Issuer's
	// OpenID discovery document, read with the first fetch of the keys and
	// again after one fails.
	URL    string
	Issuer string
	Client *http.Client  // default: one with a 3 s timeout
	Every  time.Duration // the least time between two fetches (default 1 minute)
	Log    *slog.Logger  // a failed fetch is logged once per Every

	mu      sync.Mutex
	keys    map[string]jose.JSONWebKey // by kid
	jwksURL string                     // URL, or the one discovery gave
	fetched time.Time
	lastErr error
}

// Algorithms the keys may sign with (never "none", never HMAC).
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512, jose.PS256}

var (
	errUnknownKey      = errors.New("auth: the token's key is not one of the issuer's")
	errKeysUnavailable = errors.New("auth: the issuer's keys cannot be had")
)

// VerifySignature checks a compact JWS against the issuer's keys and
// returns its payload.
func (k *KeySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, Algorithms)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("auth: a token must have one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	key, err := k.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	return jws.Verify(key.Key)
}

// key returns the key of kid, fetching the set again if it is not known
// and the last fetch is older than Every.
func (k *KeySet) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	every := k.Every
	if every <= 0 {
		every = time.Minute
	}
	if !k.fetched.IsZero() && time.Since(k.fetched) < every {
		if k.lastErr != nil {
			return jose.JSONWebKey{}, k.lastErr
		}
		return jose.JSONWebKey{}, errUnknownKey
	}
	k.fetched = time.Now()
	keys, err := k.fetch(ctx)
	if err != nil {
		k.lastErr = fmt.Errorf("%w: %w", errKeysUnavailable, err)
		if k.Log != nil {
			k.Log.ErrorContext(ctx, "fetching the issuer's keys failed; tokens are denied", "issuer", k.Issuer, "url", k.URL, "err", err)
		}
		return jose.JSONWebKey{}, k.lastErr
	}
	k.keys, k.lastErr = keys, nil
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	return jose.JSONWebKey{}, errUnknownKey
}

// fetch gets the keys, finding where they are first if it must.
func (k *KeySet) fetch(ctx context.Context) (map[string]jose.JSONWebKey, error) {
	if k.jwksURL == "" {
		k.jwksURL = k.URL
	}
	if k.jwksURL == "" {
		u, err := k.discover(ctx)
		if err != nil {
			return nil, err
		}
		k.jwksURL = u
	}
	var set jose.JSONWebKeySet
	if err := k.get(ctx, k.jwksURL, &set); err != nil {
		k.jwksURL = "" // discovered: read the document again next time
		return nil, err
	}
	keys := map[string]jose.JSONWebKey{}
	for _, key := range set.Keys {
		if key.Use == "" || key.Use == "sig" {
			keys[key.KeyID] = key
		}
	}
	return keys, nil
}

// discover reads the jwks_uri of Issuer's OpenID discovery document
// (OpenID Connect Discovery 1.0, section 4), which must name Issuer as
// its issuer and keys of the same scheme.
func (k *KeySet) discover(ctx context.Context) (string, error) {
	issuer := strings.TrimSuffix(k.Issuer, "/")
	if issuer == "" {
		return "", errors.New("auth: no JWKS URL and no issuer to discover it from")
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := k.get(ctx, issuer+"/.well-known/openid-configuration", &doc); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if strings.TrimSuffix(doc.Issuer, "/") != issuer {
		return "", fmt.Errorf("discovery: the document is for issuer %q, not %q", doc.Issuer, issuer)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || !u.IsAbs() || u.Host == "" || !strings.HasPrefix(issuer, u.Scheme+"://") {
		return "", fmt.Errorf("discovery: jwks_uri %q is not a URL of the issuer's scheme", doc.JWKSURI)
	}
	return doc.JWKSURI, nil
}

// get reads a JSON document of at most 1 MiB.
func (k *KeySet) get(ctx context.Context, addr string, v any) error {
	client := k.Client
	if client == nil {
		client = &http.Client{Timeout: 3 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", addr, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	return nil
}
