package handler

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chatgo/serverless-chat/internal/auth"
	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/fanout"
	"github.com/chatgo/serverless-chat/internal/invite"
	"github.com/chatgo/serverless-chat/internal/metrics"
)

// Connections keeps who is connected where, and each name's presence.
type Connections interface {
	PutConnection(ctx context.Context, c chat.Connection) (p chat.Presence, joined bool, err error)
	RemoveConnection(ctx context.Context, id string) (c chat.Connection, p chat.Presence, left bool, err error)
	Depart(ctx context.Context, room, userID, id string) (p chat.Presence, left bool, err error)
	ShardConnections(ctx context.Context, room string, shard int) ([]chat.Connection, error)
	RoomConnections(ctx context.Context, room string, shards int) ([]chat.Connection, error)
	Room(ctx context.Context, room string, shards int) ([]chat.Connection, []chat.Presence, error)
	LogPresence(ctx context.Context, e chat.PresenceEvent) (chat.PresenceEvent, error)
	PresenceHead(ctx context.Context, room string) (chat.PresenceHead, error)
	CountOnline(ctx context.Context, room string, delta int64) (chat.PresenceHead, error)
	CorrectOnline(ctx context.Context, room string, was, n int64) error
	ClaimRecount(ctx context.Context, room string, prev, now time.Time) (bool, error)
	ClaimOnlinePush(ctx context.Context, room string, online int64, prev, now time.Time) (bool, error)
	PresenceSince(ctx context.Context, room string, after int64, limit int) ([]chat.PresenceEvent, bool, error)
	Members(ctx context.Context, room, cursor string, limit int) ([]chat.Member, string, error)
}

// Bursts hold back a busy room's joins and leaves to go out together
// (atOnce).
type Bursts interface {
	ClaimTell(ctx context.Context, room string, prev, now time.Time, to int64) (bool, error)
	ScheduleFlush(ctx context.Context, room string, prev, due time.Time) (ok bool, pending time.Time, err error)
	FinishFlush(ctx context.Context, room string, due, now time.Time, to int64) (bool, error)
}

// Senders reads and updates the record of the connection a frame came from.
type Senders interface {
	Connection(ctx context.Context, id string) (chat.Connection, error)
	SkipFrame(ctx context.Context, id string, frame int64) error
	AllowTyping(ctx context.Context, id string, now time.Time, interval time.Duration) (chat.Connection, bool, error)
	Touch(ctx context.Context, c chat.Connection, at time.Time) error
	ClaimJoin(ctx context.Context, c chat.Connection) (chat.Presence, bool, error)
}

// Buckets are the users' rate limits.
type Buckets interface {
	TakeToken(ctx context.Context, userID string, r chat.Rate, now, seen time.Time) (tat time.Time, wait time.Duration, err error)
	HoldFrames(ctx context.Context, connID string, until time.Time) error
}

// Messages stores the messages of each room.
type Messages interface {
	PutMessage(ctx context.Context, m chat.Message, connID string, frame int64) (chat.Stored, error)
	History(ctx context.Context, room string, after, before int64, limit int) (chat.Page, error)
	Latest(ctx context.Context, room string) (int64, error)
	Original(ctx context.Context, room, userID, clientID string) (chat.Message, bool, error)
	Message(ctx context.Context, room string, seq int64) (chat.Message, error)
	ResolveRoom(ctx context.Context, name string) (string, error)
	RoomHeads(ctx context.Context, names []string, userID string, seen []int64) ([]chat.RoomHead, error)
}

// Access keeps who may connect to private rooms (chat.Private).
type Access interface {
	Membership(ctx context.Context, room, userID string) (chat.Membership, error)
	Mute(ctx context.Context, room, by, userID string, until time.Time) error
	MarkConnection(ctx context.Context, id string, was, now chat.Membership) error
	CreateRoom(ctx context.Context, room, owner, name string) error
	ClaimRoom(ctx context.Context, room, owner, name string) (bool, error)
	CreateDM(ctx context.Context, room, a, aName, b string) error
	NameMember(ctx context.Context, room, userID, name string) error
	Roster(ctx context.Context, room, cursor string, limit int) ([]chat.RosterMember, string, error)
	MyRooms(ctx context.Context, userID string) ([]chat.MyRoom, error)
	Grant(ctx context.Context, room, by, userID, role string) error
	Revoke(ctx context.Context, room, by, userID string) error
	Ban(ctx context.Context, room, by, userID string, lift bool) error
	JoinByLink(ctx context.Context, room, userID, name string) error
	InviteEmail(ctx context.Context, room, by, email, role string) error
	WithdrawEmail(ctx context.Context, room, by, email string) error
	Invitations(ctx context.Context, room string) ([]chat.Invitation, error)
	ClaimEmail(ctx context.Context, room, userID, name, email string) (by, role string, found bool, err error)
	PutAccess(ctx context.Context, e chat.AccessEvent) (chat.AccessEvent, error)
	UserConnections(ctx context.Context, room, userID string) ([]string, error)
	Audit(ctx context.Context, room string, e chat.AuditEntry) error
	AuditLog(ctx context.Context, room, cursor string) ([]chat.AuditEntry, string, error)
}

// Broadcaster is the Management API, many connections at a time.
type Broadcaster interface {
	Send(ctx context.Context, endpoint string, ids []string, payload []byte) fanout.Result
	Probe(ctx context.Context, endpoint string, ids []string) fanout.Result
	Close(ctx context.Context, endpoint, id string) error
}

// Queue hands the shards of a broadcast to the fan-out function.
// *fanout.Queue satisfies it.
type Queue interface {
	Enqueue(ctx context.Context, jobs []fanout.Job) (failed []fanout.Job, err error)
}

// Chat serves the chat's routes. All fields must be set except Endpoint,
// ConnectGrace, Tokens, Queue and Invites; Bursts with Queue.
type Chat struct {
	Conns   Connections
	Senders Senders
	Buckets Buckets
	Msgs    Messages
	Access  Access
	Fanout  Broadcaster
	// Queue, when set, takes the broadcasts to rooms of several shards,
	// one job per shard, and with Bursts holds back the joins and leaves
	// of a burst to go out together; without it every broadcast is sent
	// in process, at once.
	Queue   Queue
	Bursts  Bursts
	Log     *slog.Logger
	Metrics metrics.Recorder // the zero value records nothing
	Limits  chat.Limits
	Now     func() time.Time
	// Tokens is this instance's memory of the rate-limit buckets (nil:
	// none): a frame it shows over the limit costs no request.
	Tokens *TokenMemory
	// Region is the AWS region the Management API endpoint is built for.
	Region string
	// ConnectGrace is how long after its $connect a connection may answer
	// 410 without being gone: API Gateway answers 410 for a connection whose
	// $connect integration (up to 29 s) has not returned yet, and pruning it
	// would lose a member who is just arriving.
	ConnectGrace time.Duration
	// Origins says which browser pages may open a connection.
	Origins Origins
	// Invites signs and checks invite links (empty: there are none).
	Invites invite.Key
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
	// lag is how long the frame waited between API Gateway and this
	// invocation: the load the frames before it met on their way too.
	lag time.Duration
	// gone collects the connections found gone while serving the request
	// (410 to a post): settle removes them, once, at its end.
	gone []string
	// taking counts the frame out of the TokenMemory's frames that may
	// take a token (nil: not counted): done once it has taken one or been
	// refused, or at the latest when the invocation ends.
	taking func()
	// twoWay is set when API Gateway sends the sender what the function
	// returns (a route with a route response): answer is then the latest
	// answer, kept for the response (reply).
	twoWay bool
	answer []byte
	start  time.Time // when the invocation began
}

// doneTaking counts the request's frame out of those that may take a
// token, if it was counted.
func (r *request) doneTaking() {
	if r.taking != nil {
		r.taking()
		r.taking = nil
	}
}

func (h *Chat) request(ev events.APIGatewayWebsocketProxyRequest) *request {
	rc := ev.RequestContext
	ep := h.Endpoint
	if ep == "" {
		// Not domainName/stage: that breaks behind custom domains.
		ep = fmt.Sprintf("https://%s.execute-api.%s.amazonaws.com/%s", rc.APIID, h.Region, rc.Stage)
	}
	var lag time.Duration
	if rc.RequestTimeEpoch > 0 {
		lag = min(max(h.Now().Sub(time.UnixMilli(rc.RequestTimeEpoch)), 0), maxLag)
	}
	return &request{id: rc.ConnectionID, endpoint: ep, lag: lag, start: time.Now(),
		log: h.Log.With("route", rc.RouteKey, "connectionId", rc.ConnectionID)}
}

// maxLag bounds the lag a frame waits on top of Limits.FrameWait: a
// clock far off is not a reason to wait for the integration timeout.
const maxLag = 10 * time.Second

type response = events.APIGatewayProxyResponse

func status(code int, body string) response { return response{StatusCode: code, Body: body} }

// recoverTo turns a panic into a logged 500; defer it with the handler's
// named response. On a two-way route its body is what the client hears:
// the message of API Gateway's frame for a failed integration (without its
// ids), which clients answer by sending their unacknowledged frames again.
func recoverTo(ctx context.Context, log *slog.Logger, resp *response) {
	if r := recover(); r != nil {
		log.ErrorContext(ctx, "handler panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*resp = status(500, `{"message":"Internal server error"}`)
	}
}

// Connect serves $connect: it validates the name and room and records the
// connection. It sends nothing: the connecting client cannot be sent
// anything yet (API Gateway would answer 410), and the room is told of a
// user who arrives by the connection's first frame (announceJoin), so that
// the handshake does not wait for a fan-out to the whole room.
func (h *Chat) Connect(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (resp response, err error) {
	r := h.request(ev)
	defer recoverTo(ctx, r.log, &resp)
	if origin, ok := header(ev.Headers, "Origin"); !h.Origins.allow(origin, ok) {
		r.log.InfoContext(ctx, "connect refused: origin not allowed", "origin", origin)
		return status(403, "this origin may not connect"), nil
	}
	q := ev.QueryStringParameters
	account, signedIn := signedIn(ev)
	name := q["name"]
	if signedIn {
		name = account.Name // the query's name is not the user's to choose
	}
	j, err := chat.ParseJoin(name, q["room"], q["key"], h.Limits)
	if err != nil && signedIn {
		// An account name the rules refuse: a guest name instead (a bad room
		// is refused again).
		j, err = chat.ParseJoin("", q["room"], q["key"], h.Limits)
	}
	if err != nil {
		r.log.InfoContext(ctx, "connect rejected", "err", err)
		return status(400, chat.ErrorMessage(err)), nil
	}
	if signedIn {
		j.UserID = chat.AccountUserID(account.Subject)
	}
	dm := q["dm"]
	if dm != "" {
		// Direct messages: the room of this account and that one.
		if !signedIn || !chat.AccountID(dm) || dm == j.UserID {
			return status(400, "dm needs sign-in and another account's user id"), nil
		}
		j.Room = chat.DMRoom(j.UserID, dm)
	}
	room, err := h.Msgs.ResolveRoom(ctx, j.Room)
	if err != nil {
		r.log.ErrorContext(ctx, "connect failed", "room", j.Room, "err", err)
		return status(500, "Internal server error"), nil
	}
	j.Room = room
	// The user's place in the room: who may come, muted until when, and
	// the role a first sync says. A private room's is read before the
	// connection is stored, and again after (stillMember); a public room's
	// once, after (enterStored).
	var m chat.Membership
	if chat.Private(j.Room) {
		var refused *response
		if m, refused = h.admit(ctx, r, j, account, signedIn, q["create"] == "1", dm, q["invite"]); refused != nil {
			return *refused, nil
		}
	}
	now := h.Now()
	p, joined, err := h.Conns.PutConnection(ctx, chat.Connection{ID: r.id, Room: j.Room, UserID: j.UserID, Name: j.Name, ConnectedAt: now,
		TokenExpires: account.Expires, MutedUntil: m.MutedUntil, Role: m.Role})
	if err != nil {
		r.log.ErrorContext(ctx, "connect failed", "room", j.Room, "userId", j.UserID, "err", err)
		return status(500, "Internal server error"), nil
	}
	if len(p.Conns) == 1 { // the add that made the user's set: they are online
		if _, err := h.Conns.CountOnline(ctx, j.Room, 1); err != nil {
			r.log.ErrorContext(ctx, "count users online failed", "room", j.Room, "delta", 1, "err", err)
		}
	}
	if chat.Private(j.Room) && !h.stillMember(ctx, r, j, m) {
		return status(403, notMember), nil
	}
	if !chat.Private(j.Room) {
		if refused := h.enterStored(ctx, r, j, signedIn && q["create"] == "1"); refused != nil {
			return *refused, nil
		}
	}
	r.log.InfoContext(ctx, "connected", "room", j.Room, "userId", j.UserID, "joined", joined)
	h.Metrics.Record(ctx, nil, metrics.Count(metrics.Connects, 1))
	resp = status(200, "")
	if offered, _ := header(ev.Headers, "Sec-WebSocket-Protocol"); signedIn && offers(offered, Subprotocol) {
		// The browser drops a socket whose offered subprotocol is not agreed.
		resp.Headers = map[string]string{"Sec-WebSocket-Protocol": Subprotocol}
	}
	return resp, nil
}

// stillMember reads the membership of a connection just stored in a
// private room again: a removal that came after admit read it, and before
// the connection was stored (where the removal would have found it),
// undoes the connection; a mute or role change that came then (the
// connection was stored with what admit read) is copied onto it, unless a
// moderator's newer change reached the connection first.
func (h *Chat) stillMember(ctx context.Context, r *request, j chat.Join, stored chat.Membership) bool {
	m, err := h.Access.Membership(ctx, j.Room, j.UserID)
	if err == nil && m.Role != "" {
		err = h.Access.MarkConnection(ctx, r.id, stored, m)
	}
	if err == nil && m.Role != "" {
		return true
	}
	if err != nil {
		r.log.ErrorContext(ctx, "connect failed", "room", j.Room, "userId", j.UserID, "err", err)
	}
	h.abortConnect(ctx, r, j.Room)
	return false
}

// abortTimeout bounds abortConnect's undoing, which outlives the request.
const abortTimeout = 5 * time.Second

// abortConnect undoes the connection $connect stored and refuses after
// all. Its join was never told, so no leave is either; the room's count
// goes down if the user was online only through it.
func (h *Chat) abortConnect(ctx context.Context, r *request, room string) {
	// On past the handshake's own deadline: it may be why the connect
	// failed, and a connection left stored would be a ghost.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	_, _, last, err := h.Conns.RemoveConnection(ctx, r.id)
	if err == nil && last {
		_, err = h.Conns.CountOnline(ctx, room, -1)
	}
	if err != nil && !errors.Is(err, chat.ErrNoConnection) {
		r.log.ErrorContext(ctx, "undo a refused connection failed", "room", room, "err", err)
	}
}

// notMember is the answer to a connection to a private room by someone
// who is not its member: the same whether the room exists or not.
const notMember = "this is a private room, and you are not one of its members (or there is no such room)"

// admit decides whether the user of j may connect to the private room
// j.Room: a signed-in member may, and one who becomes a member on the way
// (arrive). Nobody banned gets in. It returns their place in the room,
// or the refusal.
func (h *Chat) admit(ctx context.Context, r *request, j chat.Join, account auth.Identity, signedIn, create bool, dm, link string) (chat.Membership, *response) {
	if !signedIn {
		r.log.InfoContext(ctx, "connect refused: a private room needs sign-in", "room", j.Room)
		return chat.Membership{}, refusal(403, "private rooms are for signed-in users: sign in to use one")
	}
	m, err := h.Access.Membership(ctx, j.Room, j.UserID)
	if err == nil && m.Banned {
		return m, h.banned(ctx, r, j)
	}
	if err == nil && m.Role == "" {
		m.Role, err = h.arrive(ctx, r, j, account.Email, create, dm, link)
	}
	switch {
	case chat.ErrorCode(err) == chat.CodeNotAllowed: // in words: a name taken, a link refused
		return m, refusal(403, chat.ErrorMessage(err))
	case err != nil:
		r.log.ErrorContext(ctx, "connect failed", "room", j.Room, "userId", j.UserID, "err", err)
		return m, refusal(500, "Internal server error")
	case m.Role == "":
		r.log.InfoContext(ctx, "connect refused: not a member", "room", j.Room, "userId", j.UserID)
		return m, refusal(403, notMember)
	}
	h.keepName(ctx, r, j, m)
	return m, nil
}

// enterStored reads the place of the user of j in the public room j.Room once
// their connection is stored (enter) and undoes the connection if they
// may not come; a role or a mute is recorded on the connection. A ban or
// mute writes the user's access item and then reads their connections:
// one of the two reads sees the other's write (both strongly consistent),
// so no connection escapes a ban or mute written while it connects.
func (h *Chat) enterStored(ctx context.Context, r *request, j chat.Join, claim bool) *response {
	m, refused := h.enter(ctx, r, j, claim)
	if refused == nil {
		if err := h.Access.MarkConnection(ctx, r.id, chat.Membership{}, m); err != nil { // stored with neither
			r.log.ErrorContext(ctx, "connect failed", "room", j.Room, "userId", j.UserID, "err", err)
			refused = refusal(500, "Internal server error")
		}
	}
	if refused != nil {
		h.abortConnect(ctx, r, j.Room)
	}
	return refused
}

// enter decides whether the user of j may connect to the public room
// j.Room: anyone not banned there (one read, which also says whether they
// are muted, and their role). With claim, a signed-in user takes a room
// nobody owns and nothing was said in yet, and owns it.
func (h *Chat) enter(ctx context.Context, r *request, j chat.Join, claim bool) (chat.Membership, *response) {
	m, err := h.Access.Membership(ctx, j.Room, j.UserID)
	switch {
	case err != nil:
		r.log.ErrorContext(ctx, "connect failed", "room", j.Room, "userId", j.UserID, "err", err)
		return m, refusal(500, "Internal server error")
	case m.Banned:
		return m, h.banned(ctx, r, j)
	}
	// The default room is everyone's. A claim that fails (too many rooms
	// made, a race with another's) lets them in, not as its owner.
	if claim && m.Role == "" && j.Room != chat.DefaultRoom {
		switch claimed, err := h.Access.ClaimRoom(ctx, j.Room, j.UserID, j.Name); {
		case claimed:
			r.log.InfoContext(ctx, "public room claimed", "room", j.Room, "owner", j.UserID)
			m.Role = chat.RoleOwner
		case err != nil:
			r.log.WarnContext(ctx, "public room not claimed", "room", j.Room, "userId", j.UserID, "err", err)
		}
	}
	h.keepName(ctx, r, j, m) // on its staff
	return m, nil
}

func refusal(code int, body string) *response {
	resp := status(code, body)
	return &resp
}

// banned is the refusal of a banned user's $connect.
func (h *Chat) banned(ctx context.Context, r *request, j chat.Join) *response {
	r.log.InfoContext(ctx, "connect refused: banned", "room", j.Room, "userId", j.UserID)
	return refusal(403, "you are banned from this room")
}

// keepName records the name a user with a role in the room (m) connects
// with, when it changed, for the roster; a failure leaves the old one.
func (h *Chat) keepName(ctx context.Context, r *request, j chat.Join, m chat.Membership) {
	if m.Role == "" || m.Name == j.Name {
		return
	}
	if err := h.Access.NameMember(ctx, j.Room, j.UserID, j.Name); err != nil {
		r.log.WarnContext(ctx, "record a member's name failed", "room", j.Room, "userId", j.UserID, "err", err)
	}
}

// arrive makes the signed-in user of j, not a member of the private room
// j.Room, one if they may: with an invite link's token (link), an
// invitation to the verified address email, as one of the two accounts of
// direct messages (dm, made on first use), or as the maker of a room of
// that name when there is none (create), in that order. It returns the
// role they came in with ("", with no error, when none applies).
func (h *Chat) arrive(ctx context.Context, r *request, j chat.Join, email string, create bool, dm, link string) (role string, err error) {
	// What $connect stores in the room's order is not told now ($connect
	// sends nothing): the members see it with the room's next event, and
	// the newcomer's join when their first frame comes.
	welcome := func(by string, role string) {
		h.record(ctx, r, chat.Connection{Room: j.Room, UserID: by}, chat.AccessEvent{Action: chat.ActionInvite, UserID: j.UserID, Name: j.Name, Role: role})
	}
	switch {
	case link != "":
		if err := h.Invites.Check(link, j.Room, h.Now()); err != nil {
			return "", chat.Errorf(chat.CodeNotAllowed, err.Error())
		}
		if err := h.Access.JoinByLink(ctx, j.Room, j.UserID, j.Name); err != nil {
			return h.memberMeanwhile(ctx, j, err)
		}
		r.log.InfoContext(ctx, "member joined by an invite link", "room", j.Room, "userId", j.UserID)
		welcome(j.UserID, chat.RoleMember)
		return chat.RoleMember, nil
	case dm != "":
		if err := h.Access.CreateDM(ctx, j.Room, j.UserID, j.Name, dm); err != nil {
			return "", err
		}
		return chat.RoleMember, nil
	}
	if email != "" {
		switch by, role, found, err := h.Access.ClaimEmail(ctx, j.Room, j.UserID, j.Name, email); {
		case err != nil:
			return "", err
		case found:
			r.log.InfoContext(ctx, "member joined by an e-mail invitation", "room", j.Room, "userId", j.UserID, "by", by)
			welcome(by, role)
			return role, nil
		}
		// None, or another tab of theirs claimed it just now.
		if role, _ := h.memberMeanwhile(ctx, j, nil); role != "" {
			return role, nil
		}
	}
	if !create {
		return "", nil
	}
	if err := h.Access.CreateRoom(ctx, j.Room, j.UserID, j.Name); err != nil {
		return "", err
	}
	r.log.InfoContext(ctx, "private room created", "room", j.Room, "owner", j.UserID)
	return chat.RoleOwner, nil
}

// memberMeanwhile answers a way in that failed with cause: in after all,
// with their role, if the user is a member now (another tab of theirs
// came in the same way at the same moment), else cause.
func (h *Chat) memberMeanwhile(ctx context.Context, j chat.Join, cause error) (string, error) {
	m, err := h.Access.Membership(ctx, j.Room, j.UserID)
	if err == nil && m.Role != "" {
		return m.Role, nil
	}
	return "", cause
}

// Disconnect serves $disconnect: it removes the connection and tells the
// room when the name's last connection leaves. A connection already removed
// (by an earlier $disconnect or a 410 prune) is not an error.
func (h *Chat) Disconnect(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (resp response, err error) {
	r := h.request(ev)
	defer recoverTo(ctx, r.log, &resp)
	r.log.InfoContext(ctx, "disconnecting", "status", ev.RequestContext.DisconnectStatusCode,
		"reason", deref(ev.RequestContext.DisconnectReason))
	r.gone = append(r.gone, r.id)
	h.settle(ctx, r)
	return status(200, ""), nil
}

// Message serves every route but $connect and $disconnect. Whatever the
// frame, the sender gets an answer or the documented silence (typing).
// The answer is the response's body on every route but typing
// (oneWayRoute), each of which has a route response in template.yaml; a
// panic after an answer was kept still sends it.
func (h *Chat) Message(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (response, error) {
	r := h.request(ev)
	r.twoWay = ev.RequestContext.RouteKey != oneWayRoute
	if resp := h.serve(ctx, r, ev); resp.StatusCode != 200 && r.answer == nil {
		return resp, nil
	}
	return status(200, string(r.answer)), nil
}

// oneWayRoute is the one route of the message function without a route
// response: a typing frame is answered by silence, and an empty body on a
// two-way route may still reach the client, as an empty frame.
const oneWayRoute = chat.ActionTyping

// serve handles a frame for Message; what it answers is in r.answer (or
// posted), once settle has run: a leave settle sends to the sender posts
// the answer first (send).
func (h *Chat) serve(ctx context.Context, r *request, ev events.APIGatewayWebsocketProxyRequest) (resp response) {
	defer recoverTo(ctx, r.log, &resp)
	defer h.settle(ctx, r) // after the answer and the broadcasts
	defer r.doneTaking()   // a frame that never came to take its token
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			body = nil // answered as bad_json below
		}
	}
	in, err := chat.ParseInbound(body, h.Limits)
	if err != nil {
		r.log.InfoContext(ctx, "frame rejected", "code", chat.ErrorCode(err), "err", err)
		if in.Frame > 0 {
			// A numbered frame keeps its place even when rejected, so that
			// the ones after it are not held up (it costs a token, as any
			// message does); if it cannot, that is what the client must
			// hear first.
			if skipErr := h.skipFrame(ctx, r, in.Frame); skipErr != nil {
				err = skipErr
			}
		}
		h.fail(ctx, r, in, err)
		return status(200, "")
	}
	switch {
	case chat.Writes(in.Action):
		err = h.write(ctx, r, in)
	case in.Action == chat.ActionSync:
		err = h.read(ctx, r, func(c chat.Connection) error { return h.sync(ctx, r, c, in) })
	case in.Action == chat.ActionTyping:
		err = h.typing(ctx, r)
	case in.Action == chat.ActionPing:
		err = h.read(ctx, r, func(c chat.Connection) error { return h.ping(ctx, r, c) })
	case in.Action == chat.ActionPresence:
		err = h.read(ctx, r, func(c chat.Connection) error { return h.presenceLog(ctx, r, c, in.After) })
	case in.Action == chat.ActionMembers:
		err = h.read(ctx, r, func(c chat.Connection) error { return h.members(ctx, r, c, in.Cursor) })
	case in.Action == chat.ActionRoster:
		err = h.read(ctx, r, func(c chat.Connection) error { return h.roster(ctx, r, c, in.Cursor) })
	case in.Action == chat.ActionAudit:
		err = h.read(ctx, r, func(c chat.Connection) error { return h.auditLog(ctx, r, c, in.Cursor) })
	case in.Action == chat.ActionMute:
		err = h.read(ctx, r, func(c chat.Connection) error { return h.mute(ctx, r, c, in) })
	case in.Action == chat.ActionInvite || in.Action == chat.ActionRemove || in.Action == chat.ActionBan:
		err = h.read(ctx, r, func(c chat.Connection) error { return h.access(ctx, r, c, in) })
	case in.Action == chat.ActionInviteLink:
		err = h.read(ctx, r, func(c chat.Connection) error { return h.inviteLink(ctx, r, c, in.Minutes) })
	case in.Action == chat.ActionRooms:
		err = h.read(ctx, r, func(c chat.Connection) error { return h.rooms(ctx, r, c, in.Rooms, in.Seen) })
	}
	if err != nil {
		h.fail(ctx, r, in, err)
	}
	return status(200, "")
}

// fail answers a frame that could not be served. A connection the server
// has no record of is closed after its error frame: the client reconnects
// and resends.
func (h *Chat) fail(ctx context.Context, r *request, in chat.Inbound, err error) {
	code := chat.ErrorCode(err)
	if code == chat.CodeInternal {
		r.log.ErrorContext(ctx, "frame failed", "action", in.Action, "frame", in.Frame, "err", err)
	} else {
		r.log.InfoContext(ctx, "frame refused", "action", in.Action, "frame", in.Frame, "code", code, "err", err)
	}
	h.reply(ctx, r, chat.NewErrorEvent(err, in))
	h.Metrics.Record(ctx, map[string]string{metrics.CodeDimension: code}, metrics.Count(metrics.FramesRejected, 1))
	if code == chat.CodeNotConnected {
		h.flush(ctx, r) // the answer goes before the connection does
		if err := h.Fanout.Close(ctx, r.endpoint, r.id); err != nil {
			r.log.WarnContext(ctx, "close connection failed", "err", err)
		}
	}
}

// claimJoin claims the join of c's user, if c has yet to check it, the
// room has not been told of the user and no other frame claimed it
// first, and returns it numbered among the room's presence events, for
// the caller to send: a join goes out once. In a room too large to list
// (at head) it returns none: the room is told its count instead
// (pushOnline). Nor does a quiet connection's claim in a room that pushed
// its count after c's $connect was surely over (an invocation's longest
// run), for the name c came with: every member re-synced after that push,
// and lists the user so. Clients order joins and leaves by version, so a
// join that goes out late, even after its leave, is right.
func (h *Chat) claimJoin(ctx context.Context, r *request, c chat.Connection, head chat.PresenceHead) (chat.PresenceEvent, bool) {
	p, ok, err := h.Senders.ClaimJoin(ctx, c)
	if err != nil {
		r.log.ErrorContext(ctx, "announce join failed", "room", c.Room, "userId", c.UserID, "err", err)
	}
	known := c.QuietJoin && p.Name == c.Name && head.PushedAt.After(c.ConnectedAt.Add(h.Limits.InvocationTimeout))
	if !ok || !h.listed(head) || known {
		return chat.PresenceEvent{}, false
	}
	return h.presenceEvent(ctx, r, c.Room, p, c.ConnectedAt), true
}

// announceJoin sends the join of c's user to the room, if c has yet to
// check it (JoinCheck) and it is due: the routes that serve a frame call
// it with the frame's connection (sync and ping claim the join
// themselves, with the head they read). The room's count, when due, goes
// out after a sync's or a ping's answer, not here: new-message calls
// this before storing.
func (h *Chat) announceJoin(ctx context.Context, r *request, c chat.Connection) {
	if !c.JoinCheck {
		return
	}
	head, err := h.Conns.PresenceHead(ctx, c.Room)
	if err != nil {
		r.log.ErrorContext(ctx, "read the room's presence head failed", "room", c.Room, "err", err)
		return // the join stays pending for the next frame
	}
	h.tellJoin(ctx, r, c, head)
}

// tellJoin claims the join of c's user in a room with head and sends it
// to the room, at once or with the room's next flush (atOnce).
func (h *Chat) tellJoin(ctx context.Context, r *request, c chat.Connection, head chat.PresenceHead) {
	if e, ok := h.claimJoin(ctx, r, c, head); ok && h.atOnce(ctx, r, c.Room, head, []chat.PresenceEvent{e}) {
		h.broadcast(ctx, r, c.Room, r.id, e)
	}
}

// joinDue reports whether a frame of c, in a room with head, claims its
// user's join: its first frame does; one stored quiet (QuietJoin) claims
// on a sync or ping that finds the room listed, as one that emptied
// since $connect read its count is.
func (h *Chat) joinDue(c chat.Connection, head chat.PresenceHead) bool {
	return c.JoinCheck || c.QuietJoin && h.listed(head)
}

func (h *Chat) typing(ctx context.Context, r *request) error {
	c, allowed, err := h.Senders.AllowTyping(ctx, r.id, h.Now(), h.Limits.TypingInterval)
	if err == nil {
		h.announceJoin(ctx, r, c)
	}
	if err != nil || !allowed || c.MutedUntil.After(h.Now()) { // a muted user's typing is not told either
		return err
	}
	// In a room too large to list, who is typing is not told: one typing
	// frame would be as many posts as there are members, every 2 s.
	head, err := h.Conns.PresenceHead(ctx, c.Room)
	if err != nil || !h.listed(head) {
		return err
	}
	h.broadcastAt(ctx, r, c.Room, head, r.id, chat.Typing{Type: chat.TypeTyping, Room: c.Room, UserID: c.UserID, Name: c.Name})
	return nil
}

// ping answers with the room's latest seq, so that a client learns of a
// message it missed, and records that the connection is alive. A join it
// claims (joinDue) goes to the room after the answer; the user's own
// client, which the broadcast skips, fetches its number like any missed
// event's.
func (h *Chat) ping(ctx context.Context, r *request, c chat.Connection) error {
	if err := h.Senders.Touch(ctx, c, h.Now()); err != nil {
		return err
	}
	latest, err := h.Msgs.Latest(ctx, c.Room)
	if err != nil {
		return err
	}
	head, err := h.Conns.PresenceHead(ctx, c.Room)
	if err != nil {
		return err
	}
	h.reply(ctx, r, chat.Pong{Type: chat.TypePong, Seq: latest, PSeq: head.PSeq, Online: max(head.Online, 0), Large: !h.listed(head)})
	h.pushOnline(ctx, r, c.Room, head)
	if h.joinDue(c, head) {
		h.tellJoin(ctx, r, c, head)
	}
	return nil
}

// presenceLog answers a presence frame: the room's joins and leaves after
// the one the client holds, as many as fit in one reply. A client whose
// next event is missing from it (kept no longer, or never kept) syncs.
func (h *Chat) presenceLog(ctx context.Context, r *request, c chat.Connection, after int64) error {
	events, more, err := h.Conns.PresenceSince(ctx, c.Room, after, h.Limits.PresencePage)
	if err != nil {
		return err
	}
	h.reply(ctx, r, chat.PresenceLog{Type: chat.TypePresence, After: after, Events: events, More: more})
	h.announceJoin(ctx, r, c)
	return nil
}

// members answers a members frame: a page of the users online, which
// fits one reply whatever the room's size.
func (h *Chat) members(ctx context.Context, r *request, c chat.Connection, cursor string) error {
	members, next, err := h.Conns.Members(ctx, c.Room, cursor, h.Limits.MembersPage)
	if err != nil {
		return err
	}
	if members == nil {
		members = []chat.Member{}
	}
	h.reply(ctx, r, chat.MembersPage{Type: chat.TypeMembers, Room: c.Room, Members: members, Next: next})
	h.announceJoin(ctx, r, c)
	return nil
}

// rooms answers a rooms frame: the latest seq of each room asked about
// (rooms are public by name: their heads tell nothing their history does
// not) and, above what the client has seen there, how many messages
// mention the user; for a signed-in user, also the private rooms they
// belong to.
func (h *Chat) rooms(ctx context.Context, r *request, c chat.Connection, names []string, seen []int64) error {
	var mine []chat.MyRoom
	if chat.AccountID(c.UserID) {
		var err error
		if mine, err = h.Access.MyRooms(ctx, c.UserID); err != nil {
			return err
		}
	}
	// A private room's head is its members' business: to anyone else it
	// looks like a room with no message, and nothing about it is read.
	var asked []string
	var askedSeen []int64
	for i, n := range names {
		if chat.Private(n) && !slices.ContainsFunc(mine, func(m chat.MyRoom) bool { return m.Room == chat.RoomKey(n) }) {
			continue
		}
		asked = append(asked, n)
		if i < len(seen) {
			askedSeen = append(askedSeen, seen[i])
		}
	}
	if len(seen) == 0 {
		askedSeen = nil
	}
	known, err := h.Msgs.RoomHeads(ctx, asked, c.UserID, askedSeen)
	if err != nil {
		return err
	}
	// known is in the order of asked, a subsequence of names (each once).
	heads := make([]chat.RoomHead, len(names))
	for i, n := range names {
		heads[i] = chat.RoomHead{Room: n}
		if len(known) > 0 && known[0].Room == n {
			heads[i], known = known[0], known[1:]
		}
	}
	h.reply(ctx, r, chat.RoomHeads{Type: chat.TypeRooms, Rooms: heads, Mine: mine})
	h.announceJoin(ctx, r, c)
	return nil
}

// reply sends one frame to the requesting connection. On a two-way route
// it is kept for the function's response, which API Gateway sends as the
// invocation ends, with no Management API call: a refusal, a pong or an
// ack costs no post. So that the connection still hears its answer before
// anything else the invocation sends it, and before the invocation may
// run out of time, a kept answer is posted (flush) when a later answer
// comes, when a broadcast is about to reach the connection (send,
// enqueue), and before a broadcast that starts late (send); broadcasts
// that leave it out go first.
func (h *Chat) reply(ctx context.Context, r *request, frame any) {
	payload, err := chat.Encode(frame)
	if err != nil {
		r.log.ErrorContext(ctx, "encode reply failed", "err", err)
		return
	}
	if !r.twoWay {
		h.post(ctx, r, payload)
		return
	}
	h.flush(ctx, r)
	r.answer = payload
}

// flush posts the answer kept for the response, if any. One the post
// could not deliver to a connection still there stays kept: the response
// brings it, later.
func (h *Chat) flush(ctx context.Context, r *request) {
	if r.answer != nil && h.post(ctx, r, r.answer) {
		r.answer = nil
	}
}

// post sends payload to the requesting connection through the Management
// API, and reports whether that is done with: sent, or the connection
// has gone.
func (h *Chat) post(ctx context.Context, r *request, payload []byte) bool {
	res := h.Fanout.Send(ctx, r.endpoint, []string{r.id}, payload)
	r.gone = append(r.gone, res.Gone...) // the sender itself has gone
	if res.Sent != 1 {
		r.log.WarnContext(ctx, "reply not delivered", "result", res)
	}
	return res.Sent == 1 || len(res.Gone) > 0
}

func eventType(event any) string {
	switch e := event.(type) {
	case chat.PresenceEvent:
		return e.Type
	case chat.MessageEvent:
		return e.Type
	case chat.Typing:
		return e.Type
	case chat.Skip:
		return e.Type
	case chat.Online:
		return e.Type
	case chat.PresenceLog:
		return e.Type
	case chat.ChangeEvent:
		return e.Type
	case chat.AccessEvent:
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

// Origins is the allowlist of browser origins for $connect. A browser
// always sends the page's Origin with a WebSocket handshake; other clients
// (command-line tools, bots) usually send none.
// The zero value accepts every handshake.
type Origins struct {
	Allowed       []string // scheme://host[:port]; "*" for any; empty: any
	RefuseMissing bool     // refuse a handshake without Origin
}

func (o Origins) allow(origin string, present bool) bool {
	if !present || origin == "" {
		return !o.RefuseMissing
	}
	return len(o.Allowed) == 0 || slices.Contains(o.Allowed, "*") || slices.ContainsFunc(o.Allowed, func(a string) bool {
		return strings.EqualFold(a, origin)
	})
}

// header returns a request header whatever the case of its name.
func header(h map[string]string, name string) (string, bool) {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// signedIn returns the account the $connect authorizer let in, if any.
func signedIn(ev events.APIGatewayWebsocketProxyRequest) (auth.Identity, bool) {
	a, _ := ev.RequestContext.Authorizer.(map[string]any)
	sub, _ := a[AuthUserID].(string)
	name, _ := a[AuthName].(string)
	email, _ := a[AuthEmail].(string)
	id := auth.Identity{Subject: sub, Name: name, Email: email}
	// API Gateway may hand a context number on as a number or as a string.
	switch exp := a[AuthExpires].(type) {
	case float64:
		id.Expires = time.Unix(int64(exp), 0).UTC()
	case string:
		if n, err := strconv.ParseInt(exp, 10, 64); err == nil {
			id.Expires = time.Unix(n, 0).UTC()
		}
	}
	return id, sub != ""
}

// access answers an invite, remove or ban frame of a private room's owner
// (or, for a ban, moderator): the member is added, removed, banned or
// their ban lifted. A removed or banned member's connections in the room
// are closed (each frame of theirs still on its way finds no connection,
// and their next $connect is refused). The reply, and the room's event,
// says the member's role after it ("" once removed or a ban lifted).
func (h *Chat) access(ctx context.Context, r *request, c chat.Connection, in chat.Inbound) error {
	// A public room's owner names moderators (and makes them members
	// again), and its moderators ban: anyone may come, so nobody is
	// removed, or invited by address.
	public := !chat.Private(c.Room)
	switch {
	case public && in.Action == chat.ActionRemove:
		return chat.Errorf(chat.CodeNotAllowed, "anyone may come to a public room: ban them to keep them out")
	case public && in.Email != "":
		return chat.Errorf(chat.CodeNotAllowed, "anyone may come to a public room: its owner names moderators by user id")
	}
	if in.Email != "" {
		// Kept until that address signs in and connects (or withdrawn):
		// told to its maker only, stored in the room's order when claimed.
		role, err := in.Role, error(nil)
		if in.Action == chat.ActionRemove {
			role = ""
			err = h.Access.WithdrawEmail(ctx, c.Room, c.UserID, in.Email)
		} else {
			err = h.Access.InviteEmail(ctx, c.Room, c.UserID, in.Email, in.Role)
		}
		if err != nil {
			return err
		}
		h.reply(ctx, r, chat.AccessEvent{Type: chat.TypeAccess, Action: in.Action, Room: c.Room, Email: in.Email, Role: role,
			By: c.UserID, ByName: c.Name, SentAt: chat.FormatTime(h.Now())})
		return nil
	}
	if in.UserID == c.UserID {
		return chat.Errorf(chat.CodeNotAllowed, "nobody adds, removes or bans themselves: the owner stays the owner")
	}
	was, err := h.Access.Membership(ctx, c.Room, in.UserID) // their name, for the room
	if err != nil {
		return err
	}
	role := in.Role
	switch {
	case in.Action == chat.ActionInvite:
		err = h.Access.Grant(ctx, c.Room, c.UserID, in.UserID, in.Role)
	case in.Action == chat.ActionRemove:
		err, role = h.Access.Revoke(ctx, c.Room, c.UserID, in.UserID), ""
	case in.Lift:
		err, role = h.Access.Ban(ctx, c.Room, c.UserID, in.UserID, true), ""
	default:
		err, role = h.Access.Ban(ctx, c.Room, c.UserID, in.UserID, false), chat.RoleBanned
	}
	if err != nil {
		return err
	}
	// The connections to close, read before anything is told: if the read
	// fails, the caller is answered internal and their page sends the frame
	// again (the change is made again, idempotently, and its audit entry
	// with it: the log keeps every write that was made), with nothing told
	// twice. (A new role reaches the connections in Grant, as a mute does
	// in Mute.)
	var ids []string
	if in.Action != chat.ActionInvite && !in.Lift {
		if ids, err = h.Access.UserConnections(ctx, c.Room, in.UserID); err != nil {
			return err
		}
	}
	r.log.InfoContext(ctx, "member access changed", "action", in.Action, "room", c.Room, "userId", in.UserID, "role", role, "by", c.UserID)
	// The removed member's connections hear it too, before they are closed.
	before := was.Role
	if was.Banned {
		before = chat.RoleBanned
	}
	h.tell(ctx, r, c, chat.AccessEvent{Action: in.Action, UserID: in.UserID, Name: was.Name, Role: role, Was: before})
	for _, id := range ids {
		if err := h.Fanout.Close(ctx, r.endpoint, id); err != nil {
			r.log.WarnContext(ctx, "close the connection of a removed member failed", "removed", id, "err", err)
		}
		r.gone = append(r.gone, id) // settle removes it and tells the room
	}
	return nil
}

// tell records an access change made by c's user, answers it to them and
// tells the room.
func (h *Chat) tell(ctx context.Context, r *request, c chat.Connection, e chat.AccessEvent) {
	e = h.record(ctx, r, c, e)
	h.reply(ctx, r, e)
	h.broadcast(ctx, r, e.Room, r.id, e)
}

// record stores an access change made by c's user in the room's order and
// returns its event. A failure to store it is logged: the change stands,
// and is told without a seq.
func (h *Chat) record(ctx context.Context, r *request, c chat.Connection, e chat.AccessEvent) chat.AccessEvent {
	e.Type, e.Room, e.By, e.ByName, e.SentAt = chat.TypeAccess, c.Room, c.UserID, c.Name, chat.FormatTime(h.Now())
	stored, err := h.Access.PutAccess(ctx, e)
	if err != nil {
		r.log.ErrorContext(ctx, "store an access change failed", "room", c.Room, "action", e.Action, "userId", e.UserID, "err", err)
		return e
	}
	return stored
}

// inviteLink answers an invite-link frame of a private room's owner: a
// token that lets people in for minutes.
func (h *Chat) inviteLink(ctx context.Context, r *request, c chat.Connection, minutes int64) error {
	m, err := h.Access.Membership(ctx, c.Room, c.UserID)
	if err != nil {
		return err
	}
	if !chat.Private(c.Room) || strings.HasPrefix(c.Room, chat.DMPrefix) || m.Role != chat.RoleOwner {
		return chat.Errorf(chat.CodeNotAllowed, "only a private room's owner makes invite links")
	}
	expires := h.Now().Add(time.Duration(minutes) * time.Minute)
	token, err := h.Invites.Sign(c.Room, expires)
	if errors.Is(err, invite.ErrNoKey) {
		return chat.Errorf(chat.CodeNotAllowed, err.Error())
	}
	if err != nil {
		return fmt.Errorf("sign an invite link to room %q: %w", c.Room, err)
	}
	// Recorded before it is given: a link that cannot be recorded is not given.
	if err := h.Access.Audit(ctx, c.Room, chat.AuditEntry{By: c.UserID, Action: chat.ActionInviteLink, Until: chat.FormatTime(expires)}); err != nil {
		return err
	}
	h.reply(ctx, r, chat.InviteLink{Type: chat.TypeInviteLink, Room: c.Room, Token: token, ExpiresAt: chat.FormatTime(expires)})
	return nil
}

// roster answers a roster frame of a private room's member, or of a
// public room's owner or moderator: a page of its members (a public
// room's: its staff and whom they banned) with their roles.
func (h *Chat) roster(ctx context.Context, r *request, c chat.Connection, cursor string) error {
	m, err := h.Access.Membership(ctx, c.Room, c.UserID)
	if err != nil {
		return err
	}
	switch {
	case !chat.Private(c.Room) && !chat.Moderates(m.Role):
		return chat.Errorf(chat.CodeNotAllowed, "a public room's members are whoever is online: see members")
	case m.Role == "":
		return chat.Errorf(chat.CodeNotConnected, "you are no longer a member of this room")
	}
	members, next, err := h.Access.Roster(ctx, c.Room, cursor, chat.RosterPage)
	if err != nil {
		return err
	}
	reply := chat.Roster{Type: chat.TypeRoster, Room: c.Room, Members: members, Next: next}
	if cursor == "" && m.Role == chat.RoleOwner && chat.Private(c.Room) {
		if reply.Invitations, err = h.Access.Invitations(ctx, c.Room); err != nil {
			return err
		}
	}
	h.reply(ctx, r, reply)
	return nil
}

// auditLog answers an audit frame of a room's owner: a page of its
// moderation actions, newest first, from cursor.
func (h *Chat) auditLog(ctx context.Context, r *request, c chat.Connection, cursor string) error {
	m, err := h.Access.Membership(ctx, c.Room, c.UserID)
	if err != nil {
		return err
	}
	if m.Role != chat.RoleOwner {
		return chat.Errorf(chat.CodeNotAllowed, "only a room's owner reads its audit log")
	}
	entries, next, err := h.Access.AuditLog(ctx, c.Room, cursor)
	if err != nil {
		return err
	}
	h.reply(ctx, r, chat.AuditLog{Type: chat.TypeAudit, Room: c.Room, Entries: entries, Next: next})
	return nil
}

// mute answers a mute frame of a private room's owner or moderator: the
// member's writes are refused (muted) until in.Minutes from now, or again
// allowed (0). The reply says until when (its role unchanged).
func (h *Chat) mute(ctx context.Context, r *request, c chat.Connection, in chat.Inbound) error {
	var until time.Time
	if in.Minutes > 0 {
		until = h.Now().Add(time.Duration(in.Minutes) * time.Minute)
	}
	if err := h.Access.Mute(ctx, c.Room, c.UserID, in.UserID, until); err != nil {
		return err
	}
	r.log.InfoContext(ctx, "member muted", "room", c.Room, "userId", in.UserID, "by", c.UserID, "until", until)
	m, err := h.Access.Membership(ctx, c.Room, in.UserID)
	if err != nil {
		return err
	}
	e := chat.AccessEvent{Action: chat.ActionMute, UserID: in.UserID, Name: m.Name, Role: m.Role}
	if !until.IsZero() {
		e.MutedUntil = chat.FormatTime(until)
	}
	h.tell(ctx, r, c, e)
	return nil
}
