package chat

import (
	"encoding/json"
	"fmt"
)

// Event types the server sends, in the "type" field of every server frame.
const (
	TypeNewMessage = "new-message"
	TypeAck        = "ack"
	TypeSync       = "sync"
	TypeTyping     = "typing"
	TypePong       = "pong"
	TypeError      = "error"
	TypeJoin       = "join"
	TypeLeave      = "leave"
)

// MessageEvent is a stored message as clients see it: the new-message event
// (with Type set) and the items of a sync reply (Type empty, omitted).
type MessageEvent struct {
	Type   string `json:"type,omitempty"`
	ID     string `json:"id"`
	Room   string `json:"room"`
	Name   string `json:"name"`
	Text   string `json:"text"`
	SentAt string `json:"sentAt"`
}

// Ack confirms to the sender that its message is stored.
type Ack struct {
	Type     string `json:"type"`
	ClientID string `json:"clientId,omitempty"`
	ID       string `json:"id"`
	SentAt   string `json:"sentAt"`
}

// Presence is a join or leave event.
type Presence struct {
	Type   string `json:"type"`
	Room   string `json:"room"`
	Name   string `json:"name"`
	SentAt string `json:"sentAt"`
}

// Typing tells the others in a room that someone is typing.
type Typing struct {
	Type string `json:"type"`
	Room string `json:"room"`
	Name string `json:"name"`
}

// You describes the receiving connection in a sync reply.
type You struct {
	Name string `json:"name"`
}

// Sync answers a sync frame.
type Sync struct {
	Type     string         `json:"type"`
	Room     string         `json:"room"`
	You      You            `json:"you"`
	Members  []string       `json:"members"`
	Messages []MessageEvent `json:"messages"`
	More     bool           `json:"more"`
}

// Pong answers a ping.
type Pong struct {
	Type string `json:"type"`
}

// ErrorEvent reports a frame the server could not accept.
type ErrorEvent struct {
	Type     string `json:"type"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	ClientID string `json:"clientId,omitempty"`
}

// NewMessageEvent returns the new-message event for m.
func NewMessageEvent(m Message) MessageEvent {
	e := MessageItem(m)
	e.Type = TypeNewMessage
	return e
}

// MessageItem returns m as an item of a sync reply.
func MessageItem(m Message) MessageEvent {
	return MessageEvent{ID: m.ID, Room: m.Room, Name: m.Name, Text: m.Text, SentAt: FormatTime(m.SentAt)}
}

// NewAck returns the ack for m.
func NewAck(m Message) Ack {
	return Ack{Type: TypeAck, ClientID: m.ClientID, ID: m.ID, SentAt: FormatTime(m.SentAt)}
}

// NewSync returns a sync reply; members and messages are never null.
func NewSync(c Connection, members []string, msgs []Message, more bool) Sync {
	s := Sync{Type: TypeSync, Room: c.Room, You: You{Name: c.Name}, Members: members, More: more,
		Messages: make([]MessageEvent, len(msgs))}
	if s.Members == nil {
		s.Members = []string{}
	}
	for i, m := range msgs {
		s.Messages[i] = MessageItem(m)
	}
	return s
}

// NewErrorEvent returns the error frame for err.
func NewErrorEvent(err error, clientID string) ErrorEvent {
	return ErrorEvent{Type: TypeError, Code: ErrorCode(err), Message: ErrorMessage(err), ClientID: clientID}
}

// Encode marshals a server frame.
func Encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}
