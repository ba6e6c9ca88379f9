package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Actions a client may send, selected by API Gateway from the frame's
// "action" field ($request.body.action). template.yaml has one route each.
const (
	ActionNewMessage = "new-message"
	ActionSync       = "sync"
	ActionTyping     = "typing"
	ActionPing       = "ping"
)

// Actions lists every action the server handles, in protocol order.
var Actions = []string{ActionNewMessage, ActionSync, ActionTyping, ActionPing}

// Inbound is a validated client frame. Text is trimmed; Limit is within
// bounds (the default when the client gave none).
type Inbound struct {
	Action   string
	Text     string // new-message
	ClientID string // new-message, optional
	After    string // sync, optional message id
	Limit    int    // sync
}

type rawInbound struct {
	Action   string          `json:"action"`
	Text     *string         `json:"text"`
	ClientID string          `json:"clientId"`
	After    string          `json:"after"`
	Limit    json.RawMessage `json:"limit"`
}

// ParseInbound decodes and validates one client frame. The error is always
// an *Error whose code tells the client what was wrong; when the frame
// carried a clientId it is returned with the error so the client can match it.
func ParseInbound(data []byte, l Limits) (Inbound, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return Inbound{}, errorf(CodeBadJSON, "a frame must be a JSON object")
	}
	var raw rawInbound
	if err := json.Unmarshal(data, &raw); err != nil {
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return Inbound{}, errorf(CodeInvalidMessage, "a field has the wrong type: "+fieldOf(err))
		}
		return Inbound{}, errorf(CodeBadJSON, "the frame is not valid JSON")
	}
	in := Inbound{Action: raw.Action, ClientID: raw.ClientID}
	switch raw.Action {
	case ActionNewMessage:
		return in, in.parseNewMessage(raw, l)
	case ActionSync:
		return in, in.parseSync(raw, l)
	case ActionTyping, ActionPing:
		return in, nil
	case "":
		return in, errorf(CodeUnknownAction, `the frame has no "action"`)
	default:
		return in, errorf(CodeUnknownAction, fmt.Sprintf("unknown action %q", truncate(raw.Action, 64)))
	}
}

func (in *Inbound) parseNewMessage(raw rawInbound, l Limits) error {
	if n := utf8.RuneCountInString(in.ClientID); n > l.MaxClientIDChars {
		in.ClientID = ""
		return errorf(CodeTooLong, fmt.Sprintf("clientId is %d characters; the limit is %d", n, l.MaxClientIDChars))
	}
	if raw.Text == nil {
		return errorf(CodeInvalidMessage, `new-message needs "text"`)
	}
	in.Text = strings.TrimSpace(*raw.Text)
	switch n := utf8.RuneCountInString(in.Text); {
	case n == 0:
		return errorf(CodeInvalidMessage, "the message is empty")
	case n > l.MaxTextChars:
		return errorf(CodeTooLong, fmt.Sprintf("the message is %d characters; the limit is %d", n, l.MaxTextChars))
	}
	return nil
}

func (in *Inbound) parseSync(raw rawInbound, l Limits) error {
	in.After = raw.After
	if in.After != "" && !ValidID(in.After) {
		return errorf(CodeInvalidMessage, `"after" is not a message id`)
	}
	in.Limit = l.DefaultHistory
	if len(raw.Limit) == 0 || string(raw.Limit) == "null" {
		return nil
	}
	var n int
	if err := json.Unmarshal(raw.Limit, &n); err != nil || n < 1 || n > l.MaxHistory {
		return errorf(CodeInvalidMessage, fmt.Sprintf(`"limit" must be a whole number from 1 to %d`, l.MaxHistory))
	}
	in.Limit = n
	return nil
}

func fieldOf(err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
		return te.Field
	}
	return "unknown"
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
