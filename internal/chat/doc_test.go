package chat

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestProtocolDocExamples keeps docs/protocol.md honest: every client frame
// in it parses (or fails with the code the block names), and every server
// frame decodes into its type with no unknown or missing field and encodes
// back to the same JSON.
func TestProtocolDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := fencedBlocks(string(doc))
	counts := map[string]int{}
	for i, b := range blocks {
		kind, arg, _ := strings.Cut(b.info, " ")
		counts[kind]++
		switch {
		case kind == "json" && strings.HasPrefix(arg, "client-error"):
			want := strings.TrimSpace(strings.TrimPrefix(arg, "client-error"))
			_, err := ParseInbound([]byte(b.body), DefaultLimits())
			if got := codeOf(err); got != want {
				t.Errorf("block %d %s: code %q, want %q", i, b.body, got, want)
			}
		case kind == "json" && arg == "client":
			if _, err := ParseInbound([]byte(b.body), DefaultLimits()); err != nil {
				t.Errorf("block %d %s: %v", i, b.body, err)
			}
		case kind == "json" && arg == "server":
			checkServerFrame(t, b.body)
		case kind == "json":
			t.Errorf("block %d: json block without client/server label: %s", i, b.body)
		}
	}
	if counts["json"] < 10 {
		t.Fatalf("found %d json examples; the document should have at least 10", counts["json"])
	}
}

func checkServerFrame(t *testing.T, body string) {
	t.Helper()
	var head struct{ Type string }
	if err := json.Unmarshal([]byte(body), &head); err != nil {
		t.Errorf("%s: %v", body, err)
		return
	}
	frames := map[string]any{
		TypeNewMessage: &MessageEvent{}, TypeAck: &Ack{}, TypeSync: &Sync{}, TypeTyping: &Typing{},
		TypePong: &Pong{}, TypeError: &ErrorEvent{}, TypeJoin: &PresenceEvent{}, TypeLeave: &PresenceEvent{},
		TypePresence: &PresenceLog{}, TypeSkip: &Skip{}, TypeMembers: &MembersPage{}, TypeOnline: &Online{}, TypeRooms: &RoomHeads{},
		TypeEdit: &ChangeEvent{}, TypeDelete: &ChangeEvent{}, TypeReaction: &ChangeEvent{}, TypeAccess: &AccessEvent{}, TypeAudit: &AuditLog{}, TypeRoster: &Roster{}, TypeInviteLink: &InviteLink{},
	}
	v, ok := frames[head.Type]
	if !ok {
		t.Errorf("%s: unknown type %q", body, head.Type)
		return
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Errorf("%s: %v", body, err)
		return
	}
	out, err := Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(body)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, compact.Bytes()) {
		t.Errorf("server frame does not round-trip:\n doc  %s\n code %s", compact.Bytes(), out)
	}
}

type block struct{ info, body string }

func fencedBlocks(doc string) []block {
	var out []block
	var cur *block
	for line := range strings.Lines(doc) {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &block{info: strings.TrimPrefix(trimmed, "```")}
		case cur != nil && trimmed == "```":
			cur.body = strings.TrimSpace(cur.body)
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.body += line
		}
	}
	return out
}

// TestPageRulesMatch keeps the page's copy of the limits (web/rules.js)
// equal to the server's.
func TestPageRulesMatch(t *testing.T) {
	js, err := os.ReadFile("../../web/rules.js")
	if err != nil {
		t.Fatal(err)
	}
	l := DefaultLimits()
	want := map[string]string{
		"MAX_TEXT_CHARS":       strconv.Itoa(l.MaxTextChars),
		"MAX_NAME_CHARS":       strconv.Itoa(l.MaxNameChars),
		"MAX_ROOM_CHARS":       strconv.Itoa(l.MaxRoomChars),
		"MAX_MENTIONS":         strconv.Itoa(l.MaxMentions),
		"DEFAULT_ROOM":         strconv.Quote(DefaultRoom),
		"PROTOCOL_VERSION":     strconv.Itoa(ProtocolVersion),
		"TYPING_INTERVAL_MS":   strconv.Itoa(int(l.TypingInterval.Milliseconds())),
		"PING_INTERVAL_MS":     strconv.Itoa(int(l.PingInterval.Milliseconds())),
		"PING_JITTER":          strconv.FormatFloat(l.PingJitter, 'g', -1, 64),
		"PING_WHEN_WATCHED_MS": strconv.Itoa(int(l.PingWhenWatched.Milliseconds())),
		"EDIT_WINDOW_MS":       strconv.Itoa(int(l.EditWindow.Milliseconds())),
		"REACTIONS":            `["` + strings.Join(Reactions, `", "`) + `"]`,
	}
	for name, v := range want {
		if decl := "export const " + name + " = " + v + ";"; !strings.Contains(string(js), decl) {
			t.Errorf("web/rules.js lacks %q", decl)
		}
	}
}
