package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// MaxTokenBytes bounds what is parsed at all.
const MaxTokenBytes = 8 << 10

// Verifier checks tokens of one issuer.
type Verifier struct {
	Issuer string
	// Audiences the token must name one of, in aud (ID tokens) or
	// client_id (Cognito access tokens). Empty refuses every token: an
	// issuer signs tokens for other applications too.
	Audiences []string
	// NameClaims are tried in order for the display name; "email" gives
	// its local part. Default: name, preferred_username, cognito:username
	// (Cognito's ID tokens), username (its access tokens), email. Without
	// any of them the name is the subject.
	NameClaims []string
	Leeway     time.Duration // on exp and nbf (default 30 s)
	Now        func() time.Time

	keys   *KeySet
	config *oidc.Config
}

// Identity is who a valid token is for.
type Identity struct {
	Subject string
	Name    string
	Expires time.Time // the token's exp: a connection it opened ends then
	// Email is the token's email when its issuer says it verified it
	// (email_verified), in lower case; else "". Private rooms' e-mail
	// invitations are claimed with it.
	Email string
}

// NewVerifier returns a Verifier of issuer's tokens signed by keys.
func NewVerifier(issuer string, audiences []string, keys *KeySet) *Verifier {
	v := &Verifier{Issuer: issuer, Audiences: audiences, Leeway: 30 * time.Second, Now: time.Now, keys: keys,
		NameClaims: []string{"name", "preferred_username", "cognito:username", "username", "email"}}
	algs := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		algs[i] = string(a)
	}
	// The time window and the audience are checked here, with leeway and
	// client_id; go-oidc checks the signature and the issuer.
	v.config = &oidc.Config{SkipClientIDCheck: true, SkipExpiryCheck: true, SupportedSigningAlgs: algs}
	return v
}

// WellFormed reports whether token can be a signed JWT at all: non-empty,
// at most MaxTokenBytes, and three dot-separated parts of base64url
// characters (the signature's may be empty only in alg "none", which is
// refused later anyway).
func WellFormed(token string) bool {
	if token == "" || len(token) > MaxTokenBytes {
		return false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		for _, r := range p {
			if !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// ErrInvalid wraps every reason a token is refused.
var ErrInvalid = errors.New("invalid token")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Verify checks a token and returns its identity. Every refusal wraps
// ErrInvalid, except when the issuer's keys cannot be had.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	if token == "" || len(token) > MaxTokenBytes {
		return Identity{}, invalid("the token is empty or over %d bytes", MaxTokenBytes)
	}
	// go-oidc checks the signature (first) through the key set, and reports
	// its error as text: the key set's own error tells "the keys cannot be
	// had" (an outage, logged) from a bad token.
	keys := &recordingKeys{KeySet: v.keys}
	t, err := oidc.NewVerifier(v.Issuer, keys, v.config).Verify(ctx, token)
	if errors.Is(keys.err, errKeysUnavailable) {
		return Identity{}, keys.err
	}
	if err != nil {
		return Identity{}, invalid("%v", err)
	}
	var c struct {
		Exp      *float64 `json:"exp"`
		Nbf      *float64 `json:"nbf"`
		TokenUse string   `json:"token_use"`
		ClientID string   `json:"client_id"`
	}
	if err := t.Claims(&c); err != nil {
		return Identity{}, invalid("claims: %v", err)
	}
	var all map[string]any
	if err := t.Claims(&all); err != nil {
		return Identity{}, invalid("claims: %v", err)
	}
	now := v.Now()
	switch {
	case c.Exp == nil:
		return Identity{}, invalid("the token has no exp")
	case now.Add(-v.Leeway).After(time.Unix(int64(*c.Exp), 0)):
		return Identity{}, invalid("the token expired at %v", time.Unix(int64(*c.Exp), 0).UTC())
	case c.Nbf != nil && now.Add(v.Leeway).Before(time.Unix(int64(*c.Nbf), 0)):
		return Identity{}, invalid("the token is not valid before %v", time.Unix(int64(*c.Nbf), 0).UTC())
	}
	if !slices.ContainsFunc(v.Audiences, func(a string) bool { return slices.Contains(t.Audience, a) || a == c.ClientID }) {
		return Identity{}, invalid("the token is for %v (client_id %q), not %v", t.Audience, c.ClientID, v.Audiences)
	}
	// Cognito signs ID and access tokens with the same keys: either may
	// sign in, but nothing else (a refresh token is not a JWT).
	if strings.HasPrefix(v.Issuer, "https://cognito-idp.") && c.TokenUse != "id" && c.TokenUse != "access" {
		return Identity{}, invalid("token_use %q is neither id nor access", c.TokenUse)
	}
	if t.Subject == "" {
		return Identity{}, invalid("the token has no sub")
	}
	name := v.name(all)
	if name == "" {
		name = t.Subject
	}
	return Identity{Subject: t.Subject, Name: name, Expires: time.Unix(int64(*c.Exp), 0).UTC(), Email: verifiedEmail(all)}, nil
}

// verifiedEmail is the email claim, in lower case, when email_verified
// says it was verified (true, or "true" as some issuers write it).
func verifiedEmail(claims map[string]any) string {
	email, _ := claims["email"].(string)
	if v := claims["email_verified"]; v != true && v != "true" {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(email))
}

// recordingKeys is a KeySet that keeps the error of the one verification
// it serves.
type recordingKeys struct {
	*KeySet
	err error
}

func (k *recordingKeys) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	payload, err := k.KeySet.VerifySignature(ctx, token)
	k.err = err
	return payload, err
}

// name is the first non-empty name claim; an email gives its local part.
func (v *Verifier) name(claims map[string]any) string {
	for _, c := range v.NameClaims {
		s, _ := claims[c].(string)
		if c == "email" {
			s, _, _ = strings.Cut(s, "@")
		}
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}
