package chat

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestParseInbound(t *testing.T) {
	l := DefaultLimits()
	long := strings.Repeat("é", l.MaxTextChars)
	tests := []struct {
		name     string
		frame    string
		want     Inbound
		wantCode string // "" = accepted
	}{
		{"new-message", `{"action":"new-message","text":" hi ","clientId":"c1"}`,
			Inbound{Action: ActionNewMessage, Text: "hi", ClientID: "c1"}, ""},
		{"new-message/no clientId", `{"action":"new-message","text":"hi"}`,
			Inbound{Action: ActionNewMessage, Text: "hi"}, ""},
		{"new-message/at limit", `{"action":"new-message","text":"` + long + `"}`,
			Inbound{Action: ActionNewMessage, Text: long}, ""},
		{"new-message/too_long", `{"action":"new-message","text":"` + long + `x","clientId":"c2"}`,
			Inbound{Action: ActionNewMessage, ClientID: "c2"}, CodeTooLong},
		{"new-message/empty", `{"action":"new-message","text":"  \n\t"}`,
			Inbound{Action: ActionNewMessage}, CodeInvalidMessage},
		{"new-message/no text", `{"action":"new-message"}`,
			Inbound{Action: ActionNewMessage}, CodeInvalidMessage},
		{"new-message/text not a string", `{"action":"new-message","text":5}`, Inbound{Action: ActionNewMessage}, CodeInvalidMessage},
		{"new-message/line breaks and tabs", `{"action":"new-message","text":"a\n\tb"}`, Inbound{Action: ActionNewMessage, Text: "a\n\tb"}, ""},
		{"new-message/control character", `{"action":"new-message","text":"a\u0000b"}`, Inbound{Action: ActionNewMessage}, CodeInvalidMessage},
		{"new-message/carriage return", `{"action":"new-message","text":"a\rb"}`, Inbound{Action: ActionNewMessage}, CodeInvalidMessage},
		{"new-message/invalid utf-8", "{\"action\":\"new-message\",\"text\":\"bad\xff\xfeutf\"}", Inbound{}, CodeInvalidMessage},
		{"new-message/unpaired surrogate", `{"action":"new-message","text":"a\ud800b"}`, Inbound{Action: ActionNewMessage}, CodeInvalidMessage},
		{"new-message/a real replacement character", `{"action":"new-message","text":"a\ufffdb �"}`, Inbound{Action: ActionNewMessage, Text: "a\ufffdb \ufffd"}, ""},
		{"new-message/a surrogate pair", `{"action":"new-message","text":"\ud83d\ude80"}`, Inbound{Action: ActionNewMessage, Text: "🚀"}, ""},
		{"new-message/clientId too long", `{"action":"new-message","text":"a","clientId":"` + strings.Repeat("x", 65) + `"}`,
			Inbound{Action: ActionNewMessage, ClientID: strings.Repeat("x", 64)}, CodeTooLong},
		{"new-message/frame", `{"action":"new-message","text":"hi","frame":7}`,
			Inbound{Action: ActionNewMessage, Text: "hi", Frame: 7}, ""},
		{"new-message/frame with a bad text", `{"action":"new-message","text":"","frame":3,"clientId":"c3"}`,
			Inbound{Action: ActionNewMessage, Frame: 3, ClientID: "c3"}, CodeInvalidMessage},
		{"new-message/clientId of the wrong type keeps the frame's number", `{"text":"x","clientId":7,"frame":4,"action":"new-message"}`,
			Inbound{Action: ActionNewMessage, Frame: 4}, CodeInvalidMessage},
		{"new-message/text of the wrong type keeps the frame's number", `{"action":"new-message","text":["x"],"frame":5,"clientId":"c5"}`,
			Inbound{Action: ActionNewMessage, Frame: 5, ClientID: "c5"}, CodeInvalidMessage},
		{"invalid_frame/zero", `{"action":"new-message","text":"hi","frame":0}`, Inbound{Action: ActionNewMessage}, CodeInvalidFrame},
		{"invalid_frame/negative", `{"action":"new-message","text":"hi","frame":-1}`, Inbound{Action: ActionNewMessage}, CodeInvalidFrame},
		{"invalid_frame/fraction", `{"action":"new-message","text":"hi","frame":1.5}`, Inbound{Action: ActionNewMessage}, CodeInvalidFrame},
		{"invalid_frame/exponent", `{"action":"new-message","text":"hi","frame":1e3}`, Inbound{Action: ActionNewMessage}, CodeInvalidFrame},
		{"invalid_frame/string", `{"action":"new-message","text":"hi","frame":"1"}`, Inbound{Action: ActionNewMessage}, CodeInvalidFrame},
		{"invalid_frame/too big", `{"action":"new-message","text":"hi","frame":9007199254740992}`, Inbound{Action: ActionNewMessage}, CodeInvalidFrame},
		{"sync", `{"action":"sync"}`, Inbound{Action: ActionSync, After: -1, Limit: l.DefaultHistory}, ""},
		{"sync/after and limit", `{"action":"sync","after":42,"limit":7}`,
			Inbound{Action: ActionSync, After: 42, Limit: 7}, ""},
		{"sync/after 0", `{"action":"sync","after":0}`, Inbound{Action: ActionSync, After: 0, Limit: l.DefaultHistory}, ""},
		{"sync/gap", `{"action":"sync","after":41,"gap":true}`, Inbound{Action: ActionSync, After: 41, Limit: l.DefaultHistory, Gap: true}, ""},
		{"sync/gap false", `{"action":"sync","gap":false}`, Inbound{Action: ActionSync, After: -1, Limit: l.DefaultHistory}, ""},
		{"sync/gap without after", `{"action":"sync","gap":true}`, Inbound{Action: ActionSync}, CodeInvalidMessage},
		{"sync/gap not a boolean", `{"action":"sync","after":1,"gap":"yes"}`, Inbound{Action: ActionSync}, CodeInvalidMessage},
		{"sync/before", `{"action":"sync","before":10,"limit":5}`, Inbound{Action: ActionSync, After: -1, Before: 10, Limit: 5}, ""},
		{"sync/between", `{"action":"sync","after":3,"before":10}`, Inbound{Action: ActionSync, After: 3, Before: 10, Limit: l.DefaultHistory}, ""},
		{"sync/nothing between", `{"action":"sync","after":3,"before":4}`, Inbound{Action: ActionSync}, CodeInvalidMessage},
		{"sync/before 0", `{"action":"sync","before":0}`, Inbound{Action: ActionSync}, CodeInvalidMessage},
		{"sync/limit null", `{"action":"sync","limit":null}`, Inbound{Action: ActionSync, After: -1, Limit: l.DefaultHistory}, ""},
		{"sync/limit zero", `{"action":"sync","limit":0}`, Inbound{Action: ActionSync}, CodeInvalidMessage},
		{"sync/limit too big", `{"action":"sync","limit":101}`, Inbound{Action: ActionSync}, CodeInvalidMessage},
		{"sync/limit fraction", `{"action":"sync","limit":1.5}`, Inbound{Action: ActionSync}, CodeInvalidMessage},
		{"sync/after not a seq", `{"action":"sync","after":"01JDQ8Z6K3V2M4N5P6Q7R8S9T0"}`, Inbound{Action: ActionSync}, CodeInvalidMessage},
		{"sync/after negative", `{"action":"sync","after":-2}`, Inbound{Action: ActionSync}, CodeInvalidMessage},
		{"unknown_action/long clientId echoed cut", `{"action":"shout","clientId":"` + strings.Repeat("<", 40000) + `"}`,
			Inbound{Action: "shout", ClientID: strings.Repeat("<", 64)}, CodeUnknownAction},
		{"typing", `{"action":"typing"}`, Inbound{Action: ActionTyping}, ""},
		{"rooms", `{"action":"rooms","rooms":["general","Design"]}`, Inbound{Action: ActionRooms, Rooms: []string{"general", "Design"}}, ""},
		{"rooms/none", `{"action":"rooms","rooms":[]}`, Inbound{Action: ActionRooms}, CodeInvalidMessage},
		{"rooms/missing", `{"action":"rooms"}`, Inbound{Action: ActionRooms}, CodeInvalidMessage},
		{"rooms/too many", `{"action":"rooms","rooms":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s","t","u"]}`, Inbound{Action: ActionRooms}, CodeInvalidMessage},
		{"rooms/bad name", `{"action":"rooms","rooms":["a b"]}`, Inbound{Action: ActionRooms}, CodeInvalidMessage},
		{"rooms/empty name", `{"action":"rooms","rooms":[""]}`, Inbound{Action: ActionRooms}, CodeInvalidMessage},
		{"rooms/twice", `{"action":"rooms","rooms":["a","a"]}`, Inbound{Action: ActionRooms}, CodeInvalidMessage},
		{"rooms/not strings", `{"action":"rooms","rooms":[1]}`, Inbound{Action: ActionRooms}, CodeInvalidMessage},
		{"invite", `{"action":"invite","userId":"u-bo"}`, Inbound{Action: ActionInvite, UserID: "u-bo", Role: RoleMember}, ""},
		{"invite a moderator", `{"action":"invite","userId":"u-bo","role":"moderator"}`, Inbound{Action: ActionInvite, UserID: "u-bo", Role: RoleModerator}, ""},
		{"invite an owner", `{"action":"invite","userId":"u-bo","role":"owner"}`, Inbound{Action: ActionInvite}, CodeInvalidMessage},
		{"remove/not a user id", `{"action":"remove","userId":"bo"}`, Inbound{Action: ActionRemove}, CodeInvalidMessage},
		{"invite/no user", `{"action":"invite"}`, Inbound{Action: ActionInvite}, CodeInvalidMessage},
		{"ping", ` {"action":"ping"} `, Inbound{Action: ActionPing}, ""},
		{"presence", `{"action":"presence","after":16}`, Inbound{Action: ActionPresence, After: 16}, ""},
		{"presence/from the start", `{"action":"presence","after":0}`, Inbound{Action: ActionPresence}, ""},
		{"presence/no after", `{"action":"presence"}`, Inbound{Action: ActionPresence}, CodeInvalidMessage},
		{"presence/negative", `{"action":"presence","after":-1}`, Inbound{Action: ActionPresence}, CodeInvalidMessage},
		{"presence/not a number", `{"action":"presence","after":"16"}`, Inbound{Action: ActionPresence}, CodeInvalidMessage},
		{"unknown_action", `{"action":"shout"}`, Inbound{Action: "shout"}, CodeUnknownAction},
		{"unknown_action/case", `{"action":"New-Message","text":"a"}`, Inbound{Action: "New-Message"}, CodeUnknownAction},
		{"unknown_action/missing", `{"text":"a"}`, Inbound{}, CodeUnknownAction},
		{"bad_json/truncated", `{"action":"new-message","text":`, Inbound{}, CodeBadJSON},
		{"bad_json/array", `["new-message"]`, Inbound{}, CodeBadJSON},
		{"bad_json/string", `"ping"`, Inbound{}, CodeBadJSON},
		{"bad_json/empty", ``, Inbound{}, CodeBadJSON},
		{"bad_json/trailing", `{"action":"ping"} x`, Inbound{}, CodeBadJSON},
		{"invalid_message/action not a string", `{"action":1}`, Inbound{}, CodeInvalidMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseInbound([]byte(tt.frame), l)
			if code := codeOf(err); code != tt.wantCode {
				t.Fatalf("code = %q (err %v), want %q", code, err, tt.wantCode)
			}
			if err != nil {
				// A rejected frame keeps only what the error frame echoes.
				got = Inbound{Action: got.Action, ClientID: got.ClientID, Frame: got.Frame}
				tt.want = Inbound{Action: tt.want.Action, ClientID: tt.want.ClientID, Frame: tt.want.Frame}
				if ErrorMessage(err) == "" {
					t.Error("error has no message for the user")
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("frame = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func codeOf(err error) string {
	if err == nil {
		return ""
	}
	return ErrorCode(err)
}

func TestParseJoin(t *testing.T) {
	l := DefaultLimits()
	tests := []struct {
		name, qName, qRoom string
		wantName, wantRoom string
		wantCode           string
		wantGuest          bool
	}{
		{"both", "Ana", "team-1", "Ana", "team-1", "", false},
		{"trimmed", "  Ana  ", "", "Ana", DefaultRoom, "", false},
		{"unicode name", "Zoë 🚀", "x", "Zoë 🚀", "x", "", false},
		{"name at limit", strings.Repeat("ñ", 32), "r", strings.Repeat("ñ", 32), "r", "", false},
		{"guest", "", "", "", DefaultRoom, "", true},
		{"blank", "   ", "r", "", "", CodeInvalidMessage, false},
		{"normalised (NFC)", "Zoe\u0301", "r", "Zoé", "r", "", false},
		{"inner space", "Ana Bo", "r", "Ana Bo", "r", "", false},
		{"zero-width space", "An\u200Ba", "r", "", "", CodeInvalidMessage, false},
		{"right-to-left override", "\u202Eana", "r", "", "", CodeInvalidMessage, false},
		{"no-break space", "An\u00A0a", "r", "", "", CodeInvalidMessage, false},
		{"hangul filler", "\u3164", "r", "", "", CodeInvalidMessage, false},
		{"combining marks only", "\u0301\u0301", "r", "", "", CodeInvalidMessage, false},
		{"combining marks and a space", "\u0301 \u0308", "r", "", "", CodeInvalidMessage, false},
		{"private use", "A\uE000", "r", "", "", CodeInvalidMessage, false},
		{"tab", "Ana\tBo", "r", "", "", CodeInvalidMessage, false},
		{"html is just text", "<b>Mallory</b>", "r", "<b>Mallory</b>", "r", "", false},
		{"name too long", strings.Repeat("a", 33), "r", "", "", CodeTooLong, false},
		{"control char", "An\x07a", "r", "", "", CodeInvalidMessage, false},
		{"newline", "Ana\nBo", "r", "", "", CodeInvalidMessage, false},
		{"invalid utf-8", "An\xffa", "r", "", "", CodeInvalidMessage, false},
		{"room too long", "Ana", strings.Repeat("r", 65), "", "", CodeTooLong, false},
		{"room at limit", "Ana", strings.Repeat("r", 64), "Ana", strings.Repeat("r", 64), "", false},
		{"room space", "Ana", "my room", "", "", CodeInvalidMessage, false},
		{"room slash", "Ana", "a/b", "", "", CodeInvalidMessage, false},
		{"room unicode", "Ana", "café", "", "", CodeInvalidMessage, false},
		{"private room", "Ana", "~team", "Ana", "~team", "", false},
		{"a tilde alone", "Ana", "~", "", "", CodeInvalidMessage, false},
		{"a tilde inside", "Ana", "te~am", "", "", CodeInvalidMessage, false},
		{"two tildes", "Ana", "~~team", "", "", CodeInvalidMessage, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := ParseJoin(tt.qName, tt.qRoom, "", l)
			name, room := j.Name, j.Room
			if code := codeOf(err); code != tt.wantCode {
				t.Fatalf("code = %q (err %v), want %q", code, err, tt.wantCode)
			}
			if err != nil {
				return
			}
			if tt.wantGuest {
				if !strings.HasPrefix(name, "guest-") || utf8.RuneCountInString(name) != len("guest-XXXX") {
					t.Errorf("name = %q, want guest-XXXX", name)
				}
			} else if name != tt.wantName {
				t.Errorf("name = %q, want %q", name, tt.wantName)
			}
			if room != tt.wantRoom {
				t.Errorf("room = %q, want %q", room, tt.wantRoom)
			}
		})
	}
}

// The user id comes from the guest key: the same key, the same user; no
// key, a new user; a key that is not one is refused.
func TestParseJoinUserID(t *testing.T) {
	l := DefaultLimits()
	key := "k3x9q2w7ab-Ana_key"
	a, err1 := ParseJoin("Ana", "r", key, l)
	b, err2 := ParseJoin("Ana (phone)", "other", key, l)
	c, err3 := ParseJoin("Ana", "r", "", l)
	d, err4 := ParseJoin("Ana", "r", "", l)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatal(err)
	}
	if a.UserID != b.UserID || a.UserID != GuestUserID(key) || !strings.HasPrefix(a.UserID, "g-") || len(a.UserID) != 22 {
		t.Errorf("the same key gave %q and %q", a.UserID, b.UserID)
	}
	if c.UserID == d.UserID || c.UserID == a.UserID {
		t.Errorf("connections without a key share user id %q", c.UserID)
	}
	if strings.Contains(a.UserID, key) {
		t.Errorf("user id %q shows the key", a.UserID)
	}
	for _, bad := range []string{"short", strings.Repeat("k", MaxKeyChars+1), "key with spaces in it", "k3x9q2w7ab#Ana_key"} {
		if _, err := ParseJoin("Ana", "r", bad, l); codeOf(err) != CodeInvalidMessage {
			t.Errorf("key %q: err %v, want invalid_message", bad, err)
		}
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 1000 {
		id := NewID(base.Add(time.Duration(i/10) * time.Millisecond))
		if !ValidID(id) {
			t.Fatalf("NewID = %q, not a valid id", id)
		}
		if id <= prev {
			t.Fatalf("id %d = %q sorts before or equal to %q", i, id, prev)
		}
		prev = id
	}
}

func TestFormatTime(t *testing.T) {
	loc := time.FixedZone("X", 3*3600)
	got := FormatTime(time.Date(2026, 1, 2, 6, 4, 5, 7_000_000, loc))
	if want := "2026-01-02T03:04:05.007Z"; got != want {
		t.Errorf("FormatTime = %q, want %q", got, want)
	}
}

func FuzzParseInbound(f *testing.F) {
	for _, s := range []string{
		`{"action":"new-message","text":"hi","clientId":"c1"}`,
		`{"action":"sync","after":12,"limit":5}`, `{"action":"sync","before":9}`,
		`{"action":"new-message","text":"hi","frame":3}`,
		`{"action":"typing"}`, `{"action":"ping"}`, `{"action":"presence","after":7}`, `{"action":"x"}`, `[]`, `{"text":`,
	} {
		f.Add([]byte(s))
	}
	l := DefaultLimits()
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseInbound(data, l)
		if utf8.RuneCountInString(in.ClientID) > l.MaxClientIDChars {
			t.Fatalf("would echo a clientId of %d characters", utf8.RuneCountInString(in.ClientID))
		}
		// A new-message frame with a valid number keeps it, whatever else
		// is wrong with the frame: the frames after it must not wait for it.
		var fields map[string]json.RawMessage
		var action string
		if utf8.Valid(data) && json.Unmarshal(data, &fields) == nil && json.Unmarshal(fields["action"], &action) == nil && action == ActionNewMessage {
			if n, ok := wholeNumber(fields["frame"]); ok && n >= 1 && in.Frame != n {
				t.Fatalf("frame %d came back as %d (err %v)", n, in.Frame, err)
			}
		}
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("error %v is not a protocol *Error", err)
			}
			return
		}
		switch in.Action {
		case ActionNewMessage:
			n := utf8.RuneCountInString(in.Text)
			if n < 1 || n > l.MaxTextChars || in.Text != strings.TrimSpace(in.Text) || !utf8.ValidString(in.Text) {
				t.Fatalf("accepted text of %d characters: %q", n, in.Text)
			}
			if strings.ContainsFunc(in.Text, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) {
				t.Fatalf("accepted a control character: %q", in.Text)
			}
		case ActionSync:
			if in.Limit < 1 || in.Limit > l.MaxHistory || in.After < -1 || in.Before < 0 || in.Before > 0 && in.After >= in.Before-1 {
				t.Fatalf("accepted sync %+v", in)
			}
		case ActionPresence:
			if in.After < 0 {
				t.Fatalf("accepted presence %+v", in)
			}
		case ActionTyping, ActionPing:
		default:
			t.Fatalf("accepted unknown action %q", in.Action)
		}
	})
}

func FuzzParseJoin(f *testing.F) {
	for _, s := range []string{"Ana", " Zoe\u0301 ", "An\u200Ba", "\u202Eana", "\u3164", "guest", "", "  "} {
		f.Add(s, "general")
	}
	l := DefaultLimits()
	f.Fuzz(func(t *testing.T, name, room string) {
		j, err := ParseJoin(name, room, "", l)
		got := j.Name
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("error %v is not a protocol *Error", err)
			}
			return
		}
		if got == "" || got != strings.TrimSpace(got) || !norm.NFC.IsNormalString(got) || utf8.RuneCountInString(got) > l.MaxNameChars {
			t.Fatalf("accepted name %q", got)
		}
		if i := strings.IndexFunc(got, invisible); i >= 0 {
			t.Fatalf("accepted name %q with an invisible character at %d", got, i)
		}
	})
}

// Bidirectional controls left open are closed at the end of their line,
// and closers without an opener dropped: no message reverses what follows.
func TestBalanceBidi(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a\u202Eb", "a\u202Eb\u202C"},                   // RLO closed
		{"a\u2067b\u2069c", "a\u2067b\u2069c"},           // paired isolate kept
		{"a\u202Cb\u2069", "ab"},                         // unpaired closers dropped
		{"x\u202Ey\nz", "x\u202Ey\u202C\nz"},             // closed before the line break
		{"\u2066a\u202Bb", "\u2066a\u202Bb\u202C\u2069"}, // closed innermost first
		{"\u2066a\u202Cb\u2069", "\u2066ab\u2069"},       // a closer out of order dropped
	} {
		if got := BalanceBidi(tc.in); got != tc.want {
			t.Errorf("BalanceBidi(%+q) = %+q, want %+q", tc.in, got, tc.want)
		}
	}
	in, err := ParseInbound([]byte(`{"action":"new-message","text":"evil \u202Egnp.exe"}`), DefaultLimits())
	if err != nil || in.Text != "evil \u202Egnp.exe\u202C" {
		t.Errorf("a new-message with an open override: %+q, %v; want it closed", in.Text, err)
	}
}
