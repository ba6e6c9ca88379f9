package handler

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/fanout"
)

// Connections stores who is connected where.
type Connections interface {
	PutConnection(ctx context.Context, c chat.Connection) (first bool, err error)
	RemoveConnection(ctx context.Context, id string) (c chat.Connection, last bool, err error)
	Connection(ctx context.Context, id string) (chat.Connection, error)
	RoomConnections(ctx context.Context, room string) ([]chat.Connection, error)
	AllowTyping(ctx context.Context, id string, now time.Time, interval time.Duration) (chat.Connection, bool, error)
}

// Messages stores the messages of each room.
type Messages interface {
	PutMessage(ctx context.Context, m chat.Message) (stored chat.Message, duplicate bool, err error)
	History(ctx context.Context, room, after string, limit int) ([]chat.Message, bool, error)
}

// Broadcaster delivers one payload to many connections.
type Broadcaster interface {
	Send(ctx context.Context, endpoint string, ids []string, payload []byte) fanout.Result
}

// Chat serves the chat's routes. All fields must be set except Endpoint
// and ConnectGrace.
type Chat struct {
	Conns  Connections
	Msgs   Messages
	Fanout Broadcaster
	Log    *slog.Logger
	Limits chat.Limits
	Now    func() time.Time
	// Region is the AWS region the Management API endpoint is built for.
	Region string
	// ConnectGrace is how long after its $connect a connection may answer
	// 410 without being gone: API Gateway answers 410 for a connection whose
	// $connect integration (up to 29 s) has not returned yet, and pruning it
	// would lose a member who is just arriving.
	ConnectGrace time.Duration
	// Endpoint, when set, is the Management API endpoint to use instead of
	// https://{apiId}.execute-api.{region}.amazonaws.com/{stage} (locally,
	// the gateway emulator's).
	Endpoint string
}

// request is what every route needs from its event.
type request struct {
	id       string // the connection's id
	endpoint string // the Management API to answer through
	log      *slog.Logger
}

func (h *Chat) request(ev events.APIGatewayWebsocketProxyRequest) request {
	rc := ev.RequestContext
	ep := h.Endpoint
	if ep == "" {
		// Not domainName/stage: that breaks behind custom domains.
		ep = fmt.Sprintf("https://%s.execute-api.%s.amazonaws.com/%s", rc.APIID, h.Region, rc.Stage)
	}
	return request{id: rc.ConnectionID, endpoint: ep,
		log: h.Log.With("route", rc.RouteKey, "connectionId", rc.ConnectionID)}
}

type response = events.APIGatewayProxyResponse

func status(code int, body string) response { return response{StatusCode: code, Body: body} }

// recoverTo turns a panic into a logged 500; defer it with the handler's
// named response.
func recoverTo(log *slog.Logger, resp *response) {
	if r := recover(); r != nil {
		log.Error("handler panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*resp = status(500, "Internal server error")
	}
}

// Connect serves $connect: it validates the name and room, records the
// connection and tells the room when the name arrives. It cannot send
// anything to the connecting client (API Gateway would answer 410).
func (h *Chat) Connect(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (resp response, err error) {
	r := h.request(ev)
	defer recoverTo(r.log, &resp)
	q := ev.QueryStringParameters
	name, room, err := chat.ParseJoin(q["name"], q["room"], h.Limits)
	if err != nil {
		r.log.Info("connect rejected", "err", err)
		return status(400, chat.ErrorMessage(err)), nil
	}
	now := h.Now()
	first, err := h.Conns.PutConnection(ctx, chat.Connection{ID: r.id, Room: room, Name: name, ConnectedAt: now})
	if err != nil {
		r.log.Error("connect failed", "room", room, "name", name, "err", err)
		return status(500, "Internal server error"), nil
	}
	r.log.Info("connected", "room", room, "name", name, "first", first)
	if first {
		h.broadcast(ctx, r, room, r.id, chat.Presence{Type: chat.TypeJoin, Room: room, Name: name, SentAt: chat.FormatTime(now)}, true)
	}
	return status(200, ""), nil
}

// Disconnect serves $disconnect: it removes the connection and tells the
// room when the name's last connection leaves. A connection already removed
// (by an earlier $disconnect or a 410 prune) is not an error.
func (h *Chat) Disconnect(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (resp response, err error) {
	r := h.request(ev)
	defer recoverTo(r.log, &resp)
	r.log.Info("disconnecting", "status", ev.RequestContext.DisconnectStatusCode,
		"reason", deref(ev.RequestContext.DisconnectReason))
	h.remove(ctx, r, r.id, true)
	return status(200, ""), nil
}

// remove deletes a connection and, when it was its name's last in the
// room and announce is set, sends leave to the rest of the room. That
// leave removes the connections it finds gone without announcing them, so
// pruning stops after one round.
func (h *Chat) remove(ctx context.Context, r request, id string, announce bool) {
	c, last, err := h.Conns.RemoveConnection(ctx, id)
	switch {
	case errors.Is(err, chat.ErrNoConnection):
		r.log.Debug("connection already removed", "removed", id)
	case err != nil:
		r.log.Error("remove connection failed", "removed", id, "err", err)
	case last && announce:
		leave := chat.Presence{Type: chat.TypeLeave, Room: c.Room, Name: c.Name, SentAt: chat.FormatTime(h.Now())}
		h.broadcast(ctx, r, c.Room, "", leave, false)
	}
}

// Message serves every route but $connect and $disconnect. Whatever the
// frame, the sender gets an answer or the documented silence (typing).
func (h *Chat) Message(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (resp response, err error) {
	r := h.request(ev)
	defer recoverTo(r.log, &resp)
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			body = nil // answered as bad_json below
		}
	}
	in, err := chat.ParseInbound(body, h.Limits)
	if err != nil {
		r.log.Info("frame rejected", "code", chat.ErrorCode(err), "err", err)
		h.reply(ctx, r, chat.NewErrorEvent(err, in.ClientID))
		return status(200, ""), nil
	}
	switch in.Action {
	case chat.ActionNewMessage:
		err = h.newMessage(ctx, r, in)
	case chat.ActionSync:
		err = h.sync(ctx, r, in)
	case chat.ActionTyping:
		err = h.typing(ctx, r)
	case chat.ActionPing:
		h.reply(ctx, r, chat.Pong{Type: chat.TypePong})
	}
	if err != nil {
		r.log.Error("frame failed", "action", in.Action, "err", err)
		h.reply(ctx, r, chat.NewErrorEvent(err, in.ClientID))
	}
	return status(200, ""), nil
}

func (h *Chat) newMessage(ctx context.Context, r request, in chat.Inbound) error {
	c, err := h.Conns.Connection(ctx, r.id)
	if err != nil {
		return err
	}
	now := h.Now()
	m := chat.Message{ID: chat.NewID(now), Room: c.Room, Name: c.Name, Text: in.Text, SentAt: now, ClientID: in.ClientID}
	stored, duplicate, err := h.Msgs.PutMessage(ctx, m)
	if err != nil {
		return err
	}
	h.reply(ctx, r, chat.NewAck(stored))
	if duplicate {
		r.log.Info("duplicate message acknowledged", "clientId", in.ClientID, "id", stored.ID)
		return nil
	}
	h.broadcast(ctx, r, c.Room, r.id, chat.NewMessageEvent(stored), true)
	return nil
}

func (h *Chat) typing(ctx context.Context, r request) error {
	c, allowed, err := h.Conns.AllowTyping(ctx, r.id, h.Now(), h.Limits.TypingInterval)
	if err != nil || !allowed {
		return err
	}
	h.broadcast(ctx, r, c.Room, r.id, chat.Typing{Type: chat.TypeTyping, Room: c.Room, Name: c.Name}, true)
	return nil
}

// reply sends one frame to the requesting connection.
func (h *Chat) reply(ctx context.Context, r request, frame any) {
	payload, err := chat.Encode(frame)
	if err != nil {
		r.log.Error("encode reply failed", "err", err)
		return
	}
	res := h.Fanout.Send(ctx, r.endpoint, []string{r.id}, payload)
	if len(res.Gone) > 0 {
		h.remove(ctx, r, r.id, true) // the sender itself has gone
	}
	if res.Sent != 1 {
		r.log.Warn("reply not delivered", "result", res)
	}
}

// broadcast sends an event to every live connection in a room but
// except, logs one line, and removes the connections that are gone,
// announcing their leave if announceGone is set.
func (h *Chat) broadcast(ctx context.Context, r request, room, except string, event any, announceGone bool) {
	payload, err := chat.Encode(event)
	if err != nil {
		r.log.Error("encode broadcast failed", "err", err)
		return
	}
	conns, err := h.Conns.RoomConnections(ctx, room)
	if err != nil {
		r.log.Error("broadcast failed", "room", room, "err", err)
		return
	}
	ids := make([]string, 0, len(conns))
	for _, c := range conns {
		if c.ID != except {
			ids = append(ids, c.ID)
		}
	}
	res := h.Fanout.Send(ctx, r.endpoint, ids, payload)
	r.log.Info("broadcast", "room", room, "event", eventType(event), "result", res)
	if len(res.Gone) == 0 {
		return
	}
	gone := make(map[string]bool, len(res.Gone))
	for _, id := range res.Gone {
		gone[id] = true
	}
	now := h.Now()
	for _, c := range conns {
		switch {
		case !gone[c.ID]:
		case now.Sub(c.ConnectedAt) < h.ConnectGrace:
			r.log.Debug("410 from a connection still in its $connect; kept", "kept", c.ID)
		default:
			h.remove(ctx, r, c.ID, announceGone)
		}
	}
}

func eventType(event any) string {
	switch e := event.(type) {
	case chat.Presence:
		return e.Type
	case chat.MessageEvent:
		return e.Type
	case chat.Typing:
		return e.Type
	}
	return fmt.Sprintf("%T", event)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
