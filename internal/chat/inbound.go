package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Actions a client may send, selected by API Gateway from the frame's
// "action" field ($request.body.action). template.yaml has one route each.
const (
	ActionNewMessage = "new-message"
	ActionSync       = "sync"
	ActionTyping     = "typing"
	ActionPing       = "ping"
	ActionPresence   = "presence"
	ActionMembers    = "members"
	ActionRooms      = "rooms"
	ActionEdit       = "edit"
	ActionDelete     = "delete"
	ActionReact      = "react"
	ActionInvite     = "invite"
	ActionRemove     = "remove"
	ActionMute       = "mute"
	ActionAudit      = "audit"
	ActionRoster     = "roster"
	ActionBan        = "ban"
	ActionInviteLink = "invite-link"
)

// Actions lists every action the server handles, in protocol order.
var Actions = []string{ActionNewMessage, ActionSync, ActionTyping, ActionPing, ActionPresence, ActionMembers, ActionRooms, ActionEdit, ActionDelete, ActionReact,
	ActionInvite, ActionRemove, ActionMute, ActionAudit, ActionRoster, ActionBan, ActionInviteLink}

// Writes reports whether action stores an event in the room's order: a
// message, or a change of one (edit, delete, react). Such a frame may be
// numbered (frame), is limited by the messages rate and is acknowledged.
func Writes(action string) bool {
	switch action {
	case ActionNewMessage, ActionEdit, ActionDelete, ActionReact:
		return true
	}
	return false
}

// Inbound is a validated client frame. Text is trimmed; Limit is within
// bounds (the default when the client gave none).
type Inbound struct {
	Action   string
	Text     string // new-message, edit
	ClientID string // a write (Writes), optional
	// Frame numbers a connection's new-message frames 1, 2, 3…: the server
	// stores them in that order. 0 when the client gave none.
	Frame int64
	// After, for sync: only messages with a higher seq; -1 = none (the
	// latest page). For presence: only events with a higher pseq.
	After  int64
	Before int64 // sync: only messages with a lower seq; 0 = none
	Limit  int   // sync
	// Gap, for sync with After: messages only (a gap fetch), without the
	// room's members, which cost a read of the room.
	Gap bool
	// Cursor, for members and roster: the next page starts after this
	// user id ("" for the first page).
	Cursor string
	// Rooms, for rooms: the names of the rooms whose latest seq the
	// client asks for, as it knows them, each once; Seen, when given, the
	// highest seq the client has shown in each (the reply counts the
	// mentions of the user above it).
	Rooms []string
	Seen  []int64
	// Target, for edit, delete and react: the seq of the message changed.
	Target int64
	// Emoji, for react: one of Reactions; Remove takes the reaction back.
	Emoji  string
	Remove bool
	// ReplyTo, for new-message: the seq of the message it answers (0:
	// none). Mentions: the user ids it mentions, each once.
	ReplyTo  int64
	Mentions []string
	// UserID, for invite, remove, mute and ban: the member added to,
	// removed from, muted or banned in a private room; Role, for invite,
	// what they are (RoleMember, the default, or RoleModerator).
	UserID string
	Role   string
	// Email, for invite instead of UserID: the account that signs in with
	// this verified address becomes a member (in lower case); for remove,
	// that invitation is withdrawn.
	Email string
	// Minutes, for mute: how long the user is muted (0 lifts it); for
	// invite-link: how long the link lets people in.
	Minutes int64
	// Lift, for ban: the ban is lifted (the user may be invited again).
	Lift bool
}

// ParseInbound decodes and validates one client frame. The error is always
// an *Error whose code tells the client what was wrong; the frame's action,
// clientId and number are returned with it whatever else is wrong, so that
// the client can match the answer and a numbered frame keeps its place.
func ParseInbound(data []byte, l Limits) (Inbound, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return Inbound{}, Errorf(CodeBadJSON, "a frame must be a JSON object")
	}
	if !utf8.Valid(data) {
		return Inbound{}, Errorf(CodeInvalidMessage, "the frame is not valid UTF-8")
	}
	// Field by field (names are case-sensitive, as API Gateway's route
	// selection is), so that one of the wrong type hides none of the others.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return Inbound{}, Errorf(CodeBadJSON, "the frame is not valid JSON")
	}
	var in Inbound
	wrong := ""
	for _, f := range []struct {
		name string
		to   *string
	}{{"action", &in.Action}, {"clientId", &in.ClientID}, {"cursor", &in.Cursor}} {
		if raw := fields[f.name]; present(raw) && json.Unmarshal(raw, f.to) != nil && wrong == "" {
			wrong = f.name
		}
	}
	// Echoed at most MaxClientIDChars long: an error frame must stay small
	// enough to deliver.
	clientID := in.ClientID
	in.ClientID = truncateRunes(clientID, l.MaxClientIDChars)
	if Writes(in.Action) {
		// The frame number first: a frame rejected for anything else still
		// takes its place in the connection's order.
		if raw := fields["frame"]; present(raw) {
			n, ok := wholeNumber(raw)
			if !ok || n < 1 {
				return in, Errorf(CodeInvalidFrame, `"frame" must be a whole number from 1 up`)
			}
			in.Frame = n
		}
	}
	if wrong != "" {
		return in, Errorf(CodeInvalidMessage, "a field has the wrong type: "+wrong)
	}
	switch in.Action {
	case ActionNewMessage, ActionEdit, ActionDelete, ActionReact:
		err := in.parseWrite(fields, clientID, l)
		return in, err
	case ActionSync:
		err := in.parseSync(fields, l)
		return in, err
	case ActionTyping, ActionPing:
		return in, nil
	case ActionMembers, ActionRoster, ActionAudit:
		if len(in.Cursor) > maxCursorBytes {
			return in, Errorf(CodeInvalidMessage, fmt.Sprintf(`"cursor" is over %d bytes: send back the "next" of the reply before`, maxCursorBytes))
		}
		return in, nil
	case ActionRooms:
		err := in.parseRooms(fields["rooms"], fields["seen"], l)
		return in, err
	case ActionMute:
		if json.Unmarshal(fields["userId"], &in.UserID) != nil || !ValidUserID(in.UserID) {
			in.UserID = ""
			return in, Errorf(CodeInvalidMessage, `mute needs "userId": a user id`)
		}
		n, ok := wholeNumber(fields["minutes"])
		if !ok || n < 0 || n > MaxMuteMinutes {
			return in, Errorf(CodeInvalidMessage, fmt.Sprintf(`mute needs "minutes": 0 (to lift it) to %d`, MaxMuteMinutes))
		}
		in.Minutes = n
		return in, nil
	case ActionInviteLink:
		n, ok := wholeNumber(fields["minutes"])
		if !ok || n < 1 || n > MaxInviteLinkMinutes {
			return in, Errorf(CodeInvalidMessage, fmt.Sprintf(`invite-link needs "minutes": how long it lets people in, 1 to %d`, MaxInviteLinkMinutes))
		}
		in.Minutes = n
		return in, nil
	case ActionInvite, ActionRemove, ActionBan:
		if raw := fields["email"]; (in.Action == ActionInvite || in.Action == ActionRemove) && present(raw) {
			if json.Unmarshal(raw, &in.Email) != nil || !ValidEmail(in.Email) {
				in.Email = ""
				return in, Errorf(CodeInvalidMessage, `"email" must be an e-mail address (up to 254 characters)`)
			}
			in.Email = strings.ToLower(in.Email)
		} else if json.Unmarshal(fields["userId"], &in.UserID) != nil || !AccountID(in.UserID) && !(in.Action == ActionBan && ValidUserID(in.UserID)) {
			in.UserID = ""
			need := in.Action + ` needs "userId": the user id of an account (u-…)`
			if in.Action != ActionBan {
				need += `, or "email"`
			}
			return in, Errorf(CodeInvalidMessage, need)
		}
		if raw := fields["lift"]; in.Action == ActionBan && present(raw) && json.Unmarshal(raw, &in.Lift) != nil {
			return in, Errorf(CodeInvalidMessage, `"lift" must be true or false`)
		}
		in.Role = RoleMember
		if raw := fields["role"]; in.Action == ActionInvite && present(raw) {
			if json.Unmarshal(raw, &in.Role) != nil || in.Role != RoleMember && in.Role != RoleModerator {
				in.Role = ""
				return in, Errorf(CodeInvalidMessage, `"role" must be "member" or "moderator"`)
			}
		}
		return in, nil
	case ActionPresence:
		n, ok := wholeNumber(fields["after"])
		if !ok || n < 0 {
			return in, Errorf(CodeInvalidMessage, `presence needs "after": the pseq of the last presence event held (a whole number)`)
		}
		in.After = n
		return in, nil
	case "":
		return in, Errorf(CodeUnknownAction, `the frame has no "action"`)
	default:
		return in, Errorf(CodeUnknownAction, fmt.Sprintf("unknown action %q", truncate(in.Action, 64)))
	}
}

// parseWrite parses a frame that stores an event: new-message, edit,
// delete or react.
func (in *Inbound) parseWrite(fields map[string]json.RawMessage, clientID string, l Limits) error {
	if n := utf8.RuneCountInString(clientID); n > l.MaxClientIDChars {
		return Errorf(CodeTooLong, fmt.Sprintf("clientId is %d characters; the limit is %d", n, l.MaxClientIDChars))
	}
	if in.Action != ActionNewMessage {
		n, ok := wholeNumber(fields["target"])
		if !ok || n < 1 {
			return Errorf(CodeInvalidMessage, fmt.Sprintf(`%s needs "target": the seq of the message it changes (a whole number)`, in.Action))
		}
		in.Target = n
	}
	switch in.Action {
	case ActionNewMessage:
		if err := in.parseText(fields["text"], l); err != nil {
			return err
		}
		return in.parseMessageExtras(fields, l)
	case ActionEdit:
		return in.parseText(fields["text"], l)
	case ActionReact:
		if json.Unmarshal(fields["emoji"], &in.Emoji) != nil || !slices.Contains(Reactions, in.Emoji) {
			in.Emoji = ""
			return Errorf(CodeInvalidMessage, fmt.Sprintf(`react needs "emoji", one of %s`, strings.Join(Reactions, " ")))
		}
		if raw := fields["remove"]; present(raw) && json.Unmarshal(raw, &in.Remove) != nil {
			return Errorf(CodeInvalidMessage, `"remove" must be true or false`)
		}
	}
	return nil
}

// parseText parses the text of a new-message or an edit.
func (in *Inbound) parseText(text json.RawMessage, l Limits) error {
	if !present(text) {
		return Errorf(CodeInvalidMessage, in.Action+` needs "text"`)
	}
	if err := json.Unmarshal(text, &in.Text); err != nil {
		return Errorf(CodeInvalidMessage, "a field has the wrong type: text")
	}
	in.Text = strings.TrimSpace(in.Text)
	switch n := utf8.RuneCountInString(in.Text); {
	case n == 0:
		return Errorf(CodeInvalidMessage, "the message is empty")
	case n > l.MaxTextChars:
		return Errorf(CodeTooLong, fmt.Sprintf("the message is %d characters; the limit is %d", n, l.MaxTextChars))
	}
	if i := strings.IndexFunc(in.Text, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(in.Text[i:])
		return Errorf(CodeInvalidMessage, fmt.Sprintf("the message contains a control character (U+%04X); only line breaks and tabs are allowed", r))
	}
	if strings.ContainsRune(in.Text, utf8.RuneError) && !hasReplacementChar(text) {
		return Errorf(CodeInvalidMessage, "the message is not valid UTF-8 (an unpaired surrogate escape)")
	}
	in.Text = BalanceBidi(in.Text)
	return nil
}

// parseMessageExtras parses a new-message's optional replyTo and mentions.
func (in *Inbound) parseMessageExtras(fields map[string]json.RawMessage, l Limits) error {
	if raw := fields["replyTo"]; present(raw) {
		n, ok := wholeNumber(raw)
		if !ok || n < 1 {
			return Errorf(CodeInvalidMessage, `"replyTo" must be the seq of the message answered (a whole number)`)
		}
		in.ReplyTo = n
	}
	raw := fields["mentions"]
	if !present(raw) {
		return nil
	}
	wrong := Errorf(CodeInvalidMessage, fmt.Sprintf(`"mentions" must be a list of up to %d user ids, each once`, l.MaxMentions))
	if json.Unmarshal(raw, &in.Mentions) != nil || len(in.Mentions) > l.MaxMentions {
		in.Mentions = nil
		return wrong
	}
	for i, id := range in.Mentions {
		if !ValidUserID(id) || slices.Contains(in.Mentions[:i], id) {
			in.Mentions = nil
			return wrong
		}
	}
	if len(in.Mentions) == 0 {
		in.Mentions = nil
	}
	return nil
}

// BalanceBidi pairs the bidirectional formatting characters of each line
// of s: an embedding, override or isolate left open is closed at the end
// of its line, and a closing one without its opening one is dropped, so
// that no message can reverse how the text after it (the rest of the
// line, the next message, its author's name) reads. Paired ones, which
// right-to-left writers use, are kept.
func BalanceBidi(s string) string {
	if !strings.ContainsFunc(s, isBidiControl) {
		return s
	}
	var b strings.Builder
	var open []rune // the closers owed, innermost last
	closeAll := func() {
		for i := len(open) - 1; i >= 0; i-- {
			b.WriteRune(open[i])
		}
		open = open[:0]
	}
	for _, r := range s {
		switch r {
		case '\u202A', '\u202B', '\u202D', '\u202E': // LRE, RLE, LRO, RLO
			open = append(open, '\u202C') // PDF
		case '\u2066', '\u2067', '\u2068': // LRI, RLI, FSI
			open = append(open, '\u2069') // PDI
		case '\u202C', '\u2069':
			if len(open) == 0 || open[len(open)-1] != r {
				continue // unpaired (or out of order): dropped
			}
			open = open[:len(open)-1]
		case '\n':
			closeAll()
		}
		b.WriteRune(r)
	}
	closeAll()
	return b.String()
}

func isBidiControl(r rune) bool {
	return r >= '\u202A' && r <= '\u202E' || r >= '\u2066' && r <= '\u2069'
}

// hasReplacementChar reports whether the client really sent U+FFFD, and
// not an unpaired surrogate escape that the JSON decoder replaced with it:
// the raw JSON string holds one as itself or as the escape \ufffd.
func hasReplacementChar(raw json.RawMessage) bool {
	return bytes.Contains(raw, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`))
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

func (in *Inbound) parseSync(fields map[string]json.RawMessage, l Limits) error {
	in.After = -1
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		to   *int64
	}{{"after", fields["after"], &in.After}, {"before", fields["before"], &in.Before}} {
		if !present(f.raw) {
			continue
		}
		n, ok := wholeNumber(f.raw)
		if !ok || n < 0 || f.name == "before" && n < 1 {
			return Errorf(CodeInvalidMessage, fmt.Sprintf(`%q must be a message's seq (a whole number)`, f.name))
		}
		*f.to = n
	}
	if in.Before > 0 && in.After >= 0 && in.After >= in.Before-1 {
		return Errorf(CodeInvalidMessage, `no message lies between "after" and "before"`)
	}
	if raw := fields["gap"]; present(raw) {
		if err := json.Unmarshal(raw, &in.Gap); err != nil {
			return Errorf(CodeInvalidMessage, `"gap" must be true or false`)
		}
		if in.Gap && in.After < 0 {
			return Errorf(CodeInvalidMessage, `"gap" needs "after": the seq the gap follows`)
		}
	}
	in.Limit = l.DefaultHistory
	if !present(fields["limit"]) {
		return nil
	}
	n, ok := wholeNumber(fields["limit"])
	if !ok || n < 1 || n > int64(l.MaxHistory) {
		return Errorf(CodeInvalidMessage, fmt.Sprintf(`"limit" must be a whole number from 1 to %d`, l.MaxHistory))
	}
	in.Limit = int(n)
	return nil
}

func (in *Inbound) parseRooms(raw, seen json.RawMessage, l Limits) error {
	wrong := Errorf(CodeInvalidMessage, fmt.Sprintf(`rooms needs "rooms": a list of 1 to %d room names`, l.RoomsPage))
	if !present(raw) || json.Unmarshal(raw, &in.Rooms) != nil || len(in.Rooms) == 0 || len(in.Rooms) > l.RoomsPage {
		in.Rooms = nil
		return wrong
	}
	names := make(map[string]bool, len(in.Rooms))
	for _, r := range in.Rooms {
		if err := validRoom(r, l); err != nil || r == "" {
			in.Rooms = nil
			return Errorf(CodeInvalidMessage, fmt.Sprintf("not a room name: %q", truncate(r, l.MaxRoomChars)))
		}
		if names[r] {
			in.Rooms = nil
			return Errorf(CodeInvalidMessage, fmt.Sprintf("room %q is listed twice", r))
		}
		names[r] = true
	}
	if !present(seen) {
		return nil
	}
	if json.Unmarshal(seen, &in.Seen) != nil || len(in.Seen) != len(in.Rooms) || slices.ContainsFunc(in.Seen, func(n int64) bool { return n < 0 }) {
		in.Rooms, in.Seen = nil, nil
		return Errorf(CodeInvalidMessage, `"seen" must list a seq (a whole number) for each of "rooms"`)
	}
	return nil
}

// maxCursorBytes bounds a members cursor: a user id (an account's is u-
// and the issuer's subject).
const maxCursorBytes = 256

func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// maxWhole is the largest whole number every JSON parser holds exactly
// (2^53 - 1, JavaScript's Number.MAX_SAFE_INTEGER).
const maxWhole = 1<<53 - 1

// wholeNumber decodes a JSON number with no fraction and no exponent.
func wholeNumber(raw json.RawMessage) (int64, bool) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n > maxWhole {
		return 0, false
	}
	return n, true
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// ValidEmail reports whether s looks like an e-mail address: one @ with
// something either side, no spaces or controls, at most 254 bytes. The
// issuer verifies the address; this only keeps junk out of the table.
func ValidEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") && len(s) <= 254 &&
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) < 0
}
