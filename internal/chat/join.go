package chat

import (
	"crypto/rand"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// DefaultRoom is the room a client joins when it names none.
const DefaultRoom = "general"

// ParseJoin validates the name and room a client gives in the $connect query
// string. An absent or empty name becomes a generated guest name; an empty
// room the default room. The name is trimmed and normalised (NFC). The
// error is an *Error with CodeInvalidMessage or CodeTooLong.
func ParseJoin(name, room string, l Limits) (string, string, error) {
	if name == "" {
		name = GuestName()
	}
	name, err := cleanName(name, l)
	if err != nil {
		return "", "", err
	}
	if room == "" {
		room = DefaultRoom
	}
	if err := validRoom(room, l); err != nil {
		return "", "", err
	}
	return name, room, nil
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

func validRoom(room string, l Limits) error {
	if len(room) > l.MaxRoomChars {
		return Errorf(CodeTooLong, fmt.Sprintf("the room name is %d characters; the limit is %d", len(room), l.MaxRoomChars))
	}
	for _, r := range room {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return Errorf(CodeInvalidMessage, "a room name may hold only letters A-Z, digits, _ and -")
		}
	}
	return nil
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
