package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// KeySet is an issuer's signing keys, from its JWKS URL. It satisfies
// oidc.KeySet. Safe for concurrent use.
type KeySet struct {
	URL    string
	Client *http.Client  // default: one with a 3 s timeout
	Every  time.Duration // the least time between two fetches (default 1 minute)
	Log    *slog.Logger  // a failed fetch is logged once per Every

	mu      sync.Mutex
	keys    map[string]jose.JSONWebKey // by kid
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
			k.Log.ErrorContext(ctx, "fetching the issuer's keys failed; tokens are denied", "url", k.URL, "err", err)
		}
		return jose.JSONWebKey{}, k.lastErr
	}
	k.keys, k.lastErr = keys, nil
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	return jose.JSONWebKey{}, errUnknownKey
}

func (k *KeySet) fetch(ctx context.Context) (map[string]jose.JSONWebKey, error) {
	client := k.Client
	if client == nil {
		client = &http.Client{Timeout: 3 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", k.URL, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
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
