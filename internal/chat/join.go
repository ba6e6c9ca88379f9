package chat

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// DefaultRoom is the room a client joins when it names none.
const DefaultRoom = "general"

// Join is who connects, and where.
type Join struct {
	UserID string
	Name   string
	Room   string
}

// Roles of the members of a private room.
const (
	RoleOwner     = "owner"
	RoleModerator = "moderator" // deletes anyone's message
	RoleMember    = "member"
	// RoleBanned is a former member kept out until a moderator lifts it:
	// in the roster, never a Membership's role.
	RoleBanned = "banned"
)

// Membership is a user's place in a private room: their role ("" for
// none) and, when a moderator has muted them, until when. Banned says that
// they are not a member because a moderator banned them (Role "").
type Membership struct {
	Role       string
	MutedUntil time.Time
	Name       string // the name they last connected with
	Banned     bool
}

// Moderates reports whether role may remove others' messages.
func Moderates(role string) bool { return role == RoleOwner || role == RoleModerator }

// ParseJoin validates the $connect query string: the display name, the
// room and the guest key. An absent or empty name becomes a generated
// guest name; an empty room the default room. The name is trimmed and
// normalised (NFC). The user id is derived from the key (GuestUserID); a
// client that sends none gets a new one. The error is an *Error with
// CodeInvalidMessage or CodeTooLong.
func ParseJoin(name, room, key string, l Limits) (Join, error) {
	if name == "" {
		name = GuestName()
	}
	name, err := cleanName(name, l)
	if err != nil {
		return Join{}, err
	}
	if room == "" {
		room = DefaultRoom
	}
	if err := validRoom(room, l); err != nil {
		return Join{}, err
	}
	if key == "" {
		key = rand.Text()
	}
	if err := validKey(key); err != nil {
		return Join{}, err
	}
	return Join{UserID: GuestUserID(key), Name: name, Room: room}, nil
}

// Guest keys: what a client keeps to be the same user from one connection
// to the next (the page keeps one in localStorage).
const (
	MinKeyChars = 16
	MaxKeyChars = 64
)

func validKey(key string) error {
	if len(key) < MinKeyChars || len(key) > MaxKeyChars || strings.IndexFunc(key, notURLSafe) >= 0 {
		return Errorf(CodeInvalidMessage, fmt.Sprintf("the key must be %d to %d of A-Z a-z 0-9 _ -", MinKeyChars, MaxKeyChars))
	}
	return nil
}

func notURLSafe(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
}

// GuestUserID is the user id of a guest's key: "g-" and 20 characters of a
// SHA-256 of it. Others see the user id, never the key, so they cannot
// take it; it does not authenticate anyone (sign-in will).
func GuestUserID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "g-" + strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:20]
}

// cleanName trims and normalises a display name and refuses what would
// make it empty, invisible or misleading on screen.
func cleanName(name string, l Limits) (string, error) {
	if !utf8.ValidString(name) {
		return "", Errorf(CodeInvalidMessage, "the name is not valid UTF-8")
	}
	name = norm.NFC.String(strings.TrimSpace(name))
	if name == "" {
		return "", Errorf(CodeInvalidMessage, "the name is empty")
	}
	if n := utf8.RuneCountInString(name); n > l.MaxNameChars {
		return "", Errorf(CodeTooLong, fmt.Sprintf("the name is %d characters; the limit is %d", n, l.MaxNameChars))
	}
	if i := strings.IndexFunc(name, invisible); i >= 0 {
		r, _ := utf8.DecodeRuneInString(name[i:])
		return "", Errorf(CodeInvalidMessage, fmt.Sprintf("the name contains an invisible or control character (U+%04X)", r))
	}
	if strings.IndexFunc(name, func(r rune) bool { return r != ' ' && !unicode.Is(unicode.M, r) }) < 0 {
		// Combining marks alone render as next to nothing.
		return "", Errorf(CodeInvalidMessage, "the name needs a letter, digit or symbol: it cannot be made only of accents and other combining marks")
	}
	return name, nil
}

// invisible reports whether r has no place in a name: control and format
// characters (bidirectional overrides, zero-width spaces and joiners),
// private-use and unassigned code points, line and paragraph separators,
// white space other than a plain space, and the blank letters that render
// as nothing.
func invisible(r rune) bool {
	switch {
	case r == ' ':
		return false
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp, unicode.Zs),
		!unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S):
		return true
	}
	switch r {
	case 0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800, 0x180E, 0x17B4, 0x17B5: // Hangul fillers, braille blank, …
		return true
	}
	return false
}

// RoomKey is the name a room's items are stored under: room names are
// compared without regard to case ("General" is "general"). Rooms stored
// before that rule under a name with capitals keep it (the store's
// ResolveRoom finds them), so that their history stays readable.
func RoomKey(room string) string { return strings.ToLower(room) }

func validRoom(room string, l Limits) error {
	if len(room) > l.MaxRoomChars {
		return Errorf(CodeTooLong, fmt.Sprintf("the room name is %d characters; the limit is %d", len(room), l.MaxRoomChars))
	}
	if name, _ := strings.CutPrefix(room, PrivatePrefix); strings.IndexFunc(name, notURLSafe) >= 0 || room == PrivatePrefix {
		return Errorf(CodeInvalidMessage, "a room name may hold only letters A-Z, digits, _ and - (after a ~ for a private room)")
	}
	return nil
}

// PrivatePrefix starts the name of a private room ("~team"): only its
// members connect to it, and only signed-in users are members. Names
// without it are public rooms, as before.
const PrivatePrefix = "~"

// Private reports whether room is a private room.
func Private(room string) bool { return strings.HasPrefix(room, PrivatePrefix) }

// DMPrefix starts the names of direct-message rooms (DMRoom): no other
// room may be created under it.
const DMPrefix = PrivatePrefix + "dm-"

// AccountID reports whether id is a signed-in account's user id ("u-…").
func AccountID(id string) bool { return ValidUserID(id) && strings.HasPrefix(id, "u-") }

// DMRoom is the private room of the direct messages between the accounts
// a and b: the same whichever of them asks, and telling nothing of them
// ("~dm-" and 20 characters of a SHA-256 of the two user ids).
func DMRoom(a, b string) string {
	if b < a {
		a, b = b, a
	}
	sum := sha256.Sum256([]byte(a + "\n" + b))
	return DMPrefix + strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:20]
}

// GuestName returns "guest-" and four random characters.
func GuestName() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "guest-" + string(b[:])
}

// ValidUserID reports whether id has the form of a user id: "g-" (a
// guest) or "u-" (an account) and up to 64 of A-Z a-z 0-9 _ -.
func ValidUserID(id string) bool {
	rest, ok := strings.CutPrefix(id, "g-")
	if !ok {
		rest, ok = strings.CutPrefix(id, "u-")
	}
	return ok && rest != "" && len(rest) <= 64 && strings.IndexFunc(rest, notURLSafe) < 0
}

// AccountUserID is the user id of a signed-in account: "u-" and the
// token's subject when it is short and plain (a Cognito sub is a UUID),
// else 20 characters of a SHA-256 of it.
func AccountUserID(sub string) string {
	if len(sub) <= 64 && sub != "" && strings.IndexFunc(sub, notURLSafe) < 0 {
		return "u-" + sub
	}
	sum := sha256.Sum256([]byte(sub))
	return "u-" + strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:20]
}
