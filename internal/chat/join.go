package chat

import (
	"crypto/rand"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultRoom is the room a client joins when it names none.
const DefaultRoom = "general"

// ParseJoin validates the name and room a client gives in the $connect query
// string. An empty name becomes a generated guest name; an empty room the
// default room. The error is an *Error with CodeInvalidMessage or CodeTooLong.
func ParseJoin(name, room string, l Limits) (string, string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = GuestName()
	}
	if err := validName(name, l); err != nil {
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

func validName(name string, l Limits) error {
	if !utf8.ValidString(name) {
		return Errorf(CodeInvalidMessage, "the name is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(name); n > l.MaxNameChars {
		return Errorf(CodeTooLong, fmt.Sprintf("the name is %d characters; the limit is %d", n, l.MaxNameChars))
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return Errorf(CodeInvalidMessage, "the name contains a control character")
	}
	return nil
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
