// Package invite signs and checks the tokens of invite links. A token lets
// whoever holds it join one private room until it expires; it names no
// person, so that an owner can share a room with people they cannot name.
//
// A token is "{expires, Unix seconds}.{HMAC-SHA256 of the room and the
// expiry, base64url}", signed with the deployment's invite key
// (CHAT_INVITE_KEY; in AWS a generated Secrets Manager secret). It cannot be
// taken back one by one: it expires, and changing the key ends every link.
// Whom it lets in is the store's business: nobody removed from or banned in
// the room (their access item is kept for that).
package invite

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// MinKeyBytes is the shortest key accepted: shorter ones are guessable.
const MinKeyBytes = 32

// Errors of Check.
var (
	ErrInvalid = errors.New("this invite link is not valid for this room")
	ErrExpired = errors.New("this invite link has expired: ask for a new one")
	ErrNoKey   = errors.New("invite links are not configured on this deployment")
)

// Key signs and checks tokens; an empty key does neither (ErrNoKey).
type Key []byte

// Sign returns the token of room that lets people in until expires.
func (k Key) Sign(room string, expires time.Time) (string, error) {
	if len(k) == 0 {
		return "", ErrNoKey
	}
	exp := strconv.FormatInt(expires.Unix(), 10)
	return exp + "." + base64.RawURLEncoding.EncodeToString(k.mac(room, exp)), nil
}

// Check says whether token lets its holder into room at now: nil, or
// ErrInvalid, ErrExpired or ErrNoKey.
func (k Key) Check(token, room string, now time.Time) error {
	if len(k) == 0 {
		return ErrNoKey
	}
	exp, sig, ok := strings.Cut(token, ".")
	unix, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || exp != strconv.FormatInt(unix, 10) {
		return ErrInvalid
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, k.mac(room, exp)) {
		return ErrInvalid
	}
	if !now.Before(time.Unix(unix, 0)) {
		return ErrExpired
	}
	return nil
}

func (k Key) mac(room, exp string) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("invite\n" + room + "\n" + exp))
	return m.Sum(nil)
}
