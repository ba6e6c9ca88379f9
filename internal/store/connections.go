package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// lookupItem maps a connection id to its room: pk conn#{id}, sk "conn".
type lookupItem struct {
	keys
	Room        string `dynamodbav:"room"`
	UserID      string `dynamodbav:"userId"`
	Name        string `dynamodbav:"name"`
	ConnectedAt int64  `dynamodbav:"connectedAt"` // Unix ms
	Frame       int64  `dynamodbav:"frame"`       // last new-message frame stored
	TypingAt    int64  `dynamodbav:"typingAt,omitempty"`
	ExpiresAt   int64  `dynamodbav:"expiresAt"`
	HeldUntil   int64  `dynamodbav:"heldUntil,omitempty"`  // Unix ms: frames wait behind one over the rate limit (HoldFrames)
	JoinCheck   bool   `dynamodbav:"joinCheck,omitempty"`  // its first claim has yet to find out whether its user's join is due (ClaimJoin)
	QuietJoin   bool   `dynamodbav:"quietJoin,omitempty"`  // stored in a room too large to tell joins: claims only where it finds the room listed
	Shard       int    `dynamodbav:"shard,omitempty"`      // the shard of the room its member item is in (shards.go)
	TokenExp    int64  `dynamodbav:"tokenExp,omitempty"`   // Unix ms: the signed-in token's expiry, past which the connection counts as gone
	MutedUntil  int64  `dynamodbav:"mutedUntil,omitempty"` // Unix ms: a moderator muted the user in this room (access.go)
	Role        string `dynamodbav:"role,omitempty"`       // the user's role in the room, as $connect read it or a change since wrote it (access.go)
}

// memberItem is a connection in its room: pk memberPK(room, shard), sk
// conn#{id}.
type memberItem struct {
	keys
	UserID      string `dynamodbav:"userId"`
	Name        string `dynamodbav:"name"`
	ConnectedAt int64  `dynamodbav:"connectedAt"` // Unix ms
	SeenAt      int64  `dynamodbav:"seenAt"`      // Unix ms
	ExpiresAt   int64  `dynamodbav:"expiresAt"`
}

// presenceItem is a user in a room: pk room#{room}, sk user#{userId}.
// Conns is the set of their connections there (absent when empty); Ver
// grows with every change; Name is their latest connection's. Shown is
// set when the user's join goes out (ClaimJoin) and cleared by the update
// that empties the set, so that a join is due exactly while the user has
// connections and Shown is not set, whichever connection announces it.
type presenceItem struct {
	keys
	Name      string   `dynamodbav:"name"`
	Conns     []string `dynamodbav:"conns,stringset,omitempty"`
	Ver       int64    `dynamodbav:"ver"`
	Shown     bool     `dynamodbav:"shown,omitempty"`
	ExpiresAt int64    `dynamodbav:"expiresAt"`
}

func (it lookupItem) connection() chat.Connection {
	return chat.Connection{ID: strings.TrimPrefix(it.PK, connPrefix), Room: it.Room, Shard: it.Shard, UserID: it.UserID, Name: it.Name,
		ConnectedAt: fromMS(it.ConnectedAt), Frame: it.Frame, JoinCheck: it.JoinCheck, QuietJoin: it.QuietJoin, HeldUntil: optionalMS(it.HeldUntil),
		TokenExpires: optionalMS(it.TokenExp), MutedUntil: optionalMS(it.MutedUntil), Role: it.Role}
}

// live reports whether a stored connection may still send: one opened
// with a token that has expired may not (its client reconnects with a
// fresh one).
func (it lookupItem) live(now time.Time) bool {
	return it.TokenExp == 0 || now.UnixMilli() < it.TokenExp
}

func (it memberItem) connection(room string, shard int) chat.Connection {
	return chat.Connection{ID: strings.TrimPrefix(it.SK, connPrefix), Room: room, Shard: shard, UserID: it.UserID, Name: it.Name,
		ConnectedAt: fromMS(it.ConnectedAt), SeenAt: fromMS(it.SeenAt)}
}

func (it presenceItem) presence() chat.Presence {
	return chat.Presence{UserID: strings.TrimPrefix(it.SK, userPrefix), Name: it.Name, Online: len(it.Conns) > 0, Version: it.Ver, Conns: it.Conns, Shown: it.Shown}
}

// PutConnection stores a new connection and adds it to its user's
// presence in the room. joined reports whether the room has not been told
// that the user is here (their join has not gone out since they were last
// away). The connection is stored with JoinCheck set: the first frame
// claims the join (ClaimJoin), so that it goes out after $connect and
// whichever of the user's connections sends a frame first announces it.
// In a room with more than QuietRoomSize users online, as the shard count
// is read, it is stored with QuietJoin instead (chat.Connection).
// Storing a connection again (a repeated $connect) changes nothing and
// reports joined = false.
func (db *DB) PutConnection(ctx context.Context, c chat.Connection) (p chat.Presence, joined bool, err error) {
	shards, online, err := db.connectShards(ctx, c.Room)
	if err != nil {
		return p, false, err
	}
	c.Shard = shardOf(c.ID, shards)
	quiet := db.QuietRoomSize > 0 && online > int64(db.QuietRoomSize)
	exp := c.ConnectedAt.Add(db.ConnectionTTL).Unix()
	lookup, err := marshal(lookupItem{keys: keys{connPrefix + c.ID, lookupSK}, Room: c.Room, UserID: c.UserID, Name: c.Name,
		ConnectedAt: ms(c.ConnectedAt), ExpiresAt: exp, Shard: c.Shard, TokenExp: optionalTime(c.TokenExpires), MutedUntil: optionalTime(c.MutedUntil), Role: c.Role,
		JoinCheck: !quiet, QuietJoin: quiet})
	if err != nil {
		return p, false, err
	}
	// A signed-in connection's member item expires with its token: the
	// room's reads (broadcasts, members) leave out expired items, so it
	// hears nothing more, and its next frame finds it gone (live).
	memberExp := exp
	if !c.TokenExpires.IsZero() {
		memberExp = min(exp, c.TokenExpires.Unix())
	}
	member, err := marshal(memberItem{keys: keys{memberPK(c.Room, c.Shard), connPrefix + c.ID}, UserID: c.UserID, Name: c.Name,
		ConnectedAt: ms(c.ConnectedAt), SeenAt: ms(c.ConnectedAt), ExpiresAt: memberExp})
	if err != nil {
		return p, false, err
	}
	// The lookup first, then the member item: two writes, not a
	// transaction (which DynamoDB charges twice). The lookup's condition
	// lets the same write land again (the SDK's retry of a put whose answer
	// was lost goes on, and the set's ADD changes nothing); a repeated
	// $connect, made at another moment, stops there.
	_, err = db.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &db.tables.Connections, Item: lookup,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR (connectedAt = :at AND userId = :user)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": num(ms(c.ConnectedAt)), ":user": str(c.UserID)}})
	if conditionFailed(err) {
		return p, false, nil // stored by an earlier $connect of the same id: nothing more
	}
	if err != nil {
		return p, false, fmt.Errorf("put connection %s: %w", c.ID, err)
	}
	if _, err = db.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &db.tables.Connections, Item: member}); err != nil {
		return p, false, errors.Join(fmt.Errorf("put connection %s in room %q: %w", c.ID, c.Room, err), db.takeBack(ctx, c))
	}
	p, err = db.changePresence(ctx, c.Room, c.UserID, c.Name, c.ID, true)
	if err != nil {
		return p, false, err
	}
	return p, !p.Shown, nil
}

// takeBack deletes what a $connect that fails wrote of connection c (its
// handshake is refused): the member item too, which a put whose answer
// was lost may have written. It runs on after the caller's context ends
// (the function's deadline may be why it failed).
func (db *DB) takeBack(ctx context.Context, c chat.Connection) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), takeBackTimeout)
	defer cancel()
	if err := db.deleteConnection(ctx, c); err != nil {
		return fmt.Errorf("take back: %w", err)
	}
	return nil
}

// deleteConnection deletes connection c's two items: the member item
// first, then the lookup, so that no member item (what broadcasts read)
// is left without the lookup (what a prune removes it by). Two deletes,
// not a transaction (charged twice).
func (db *DB) deleteConnection(ctx context.Context, c chat.Connection) error {
	for _, k := range []map[string]types.AttributeValue{key(memberPK(c.Room, c.Shard), connPrefix+c.ID), key(connPrefix+c.ID, lookupSK)} {
		if _, err := db.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &db.tables.Connections, Key: k}); err != nil {
			return fmt.Errorf("delete connection %s of room %q: %w", c.ID, c.Room, err)
		}
	}
	return nil
}

// takeBackTimeout bounds takeBack's deletes.
const takeBackTimeout = 2 * time.Second

// ClaimJoin takes the join of c's user, if c has not tried yet
// (c.JoinCheck or c.QuietJoin, as read with it), the room has still not
// been told of the user and c is still one of theirs: of concurrent
// callers, and of the user's connections, only one gets it, so a join
// goes out once, with the presence's version then. The presence is
// marked first and the connection's check cleared after: a failure in
// between leaves a check whose next claim fails, never a join that
// nobody may announce.
func (db *DB) ClaimJoin(ctx context.Context, c chat.Connection) (p chat.Presence, ok bool, err error) {
	if !c.JoinCheck && !c.QuietJoin {
		return p, false, nil
	}
	item, ok, err := db.updateReturning(ctx, &dynamodb.UpdateItemInput{
		TableName: &db.tables.Connections, Key: key(roomPrefix+c.Room, userPrefix+c.UserID),
		UpdateExpression:          aws.String("SET shown = :true"),
		ConditionExpression:       aws.String("contains(conns, :id) AND (attribute_not_exists(shown) OR shown = :false)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": str(c.ID), ":true": boolean(true), ":false": boolean(false)},
	})
	if err != nil {
		return p, false, fmt.Errorf("mark the join of %s in room %q shown: %w", c.UserID, c.Room, err)
	}
	if ok { // else another connection announced it, or this one has left
		var it presenceItem
		if err := unmarshal(item, &it); err != nil {
			return p, false, err
		}
		p = it.presence()
	}
	_, err = db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &db.tables.Connections, Key: key(connPrefix+c.ID, lookupSK),
		UpdateExpression:    aws.String("REMOVE joinCheck, quietJoin"),
		ConditionExpression: aws.String("attribute_exists(pk)"), // not a new item for a connection removed meanwhile
	})
	if err != nil && !conditionFailed(err) {
		return p, ok, fmt.Errorf("clear the join check of connection %s: %w", c.ID, err)
	}
	return p, ok, nil
}

// changePresence adds a connection to a user's set in a room (with the
// name it connected with), or removes it, and returns the user's presence
// after the change. A removal of a connection not in the set changes
// nothing and gives errNotInSet.
func (db *DB) changePresence(ctx context.Context, room, userID, name, id string, add bool) (chat.Presence, error) {
	op, change := "remove", db.removePresence
	if add {
		op, change = "add", db.addPresence
	}
	item, err := change(ctx, room, userID, name, id)
	if errors.Is(err, errNotInSet) {
		return chat.Presence{}, err
	}
	if err != nil {
		return chat.Presence{}, fmt.Errorf("%s connection %s to presence of %s in room %q: %w", op, id, userID, room, err)
	}
	var it presenceItem
	if err := unmarshal(item, &it); err != nil {
		return chat.Presence{}, err
	}
	return it.presence(), nil
}

// presenceTries bounds the updates of one change of a user's set whose
// condition keeps failing because the set keeps changing.
const presenceTries = 4

// presenceUpdate is an update of a user's presence item that also sets
// its TTL (:exp) and, when name is given, its name (#name = :name).
// values are the others the expressions use: DynamoDB refuses any more.
func (db *DB) presenceUpdate(room, userID, name, update, condition string, values map[string]types.AttributeValue) *dynamodb.UpdateItemInput {
	names := map[string]string{"#ttl": TTLAttribute}
	values[":exp"] = num(db.Now().Add(db.ConnectionTTL).Unix())
	if name != "" {
		names["#name"], values[":name"] = "name", str(name)
	}
	return &dynamodb.UpdateItemInput{TableName: &db.tables.Connections, Key: key(roomPrefix+room, userPrefix+userID),
		UpdateExpression: aws.String(update), ConditionExpression: aws.String(condition),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values}
}

// addPresence adds id to a live item and returns the item after it. An
// item past its TTL (DynamoDB deletes it within days) lists connections
// that ended without a word: it starts again, as a new one would, with
// the room not told of the user. A connection under a new name (a guest
// who renamed, whose old connection may still be in the set) clears
// Shown too, so that the room is told the name by a join. Which update
// applies comes from the item a failed condition returns.
func (db *DB) addPresence(ctx context.Context, room, userID, name, id string) (map[string]types.AttributeValue, error) {
	values := func(clearShown bool) map[string]types.AttributeValue {
		v := map[string]types.AttributeValue{":ids": &types.AttributeValueMemberSS{Value: []string{id}}, ":one": num(1), ":now": num(db.Now().Unix())}
		if clearShown {
			v[":false"] = boolean(false)
		}
		return v
	}
	const alive = "(attribute_not_exists(#ttl) OR #ttl > :now)"
	same := db.presenceUpdate(room, userID, name, "ADD conns :ids, ver :one SET #ttl = :exp, #name = :name",
		alive+" AND (attribute_not_exists(#name) OR #name = :name)", values(false))
	renamed := db.presenceUpdate(room, userID, name, "ADD conns :ids, ver :one SET #ttl = :exp, #name = :name, shown = :false",
		alive+" AND #name <> :name", values(true))
	expired := db.presenceUpdate(room, userID, name, "SET conns = :ids, #ttl = :exp, #name = :name, shown = :false ADD ver :one",
		"#ttl <= :now", values(true))
	try := same
	for range presenceTries {
		item, ok, err := db.updateReturning(ctx, try)
		if ok || err != nil {
			return item, err
		}
		var it presenceItem
		if err := unmarshal(item, &it); err != nil {
			return nil, err
		}
		switch {
		case it.ExpiresAt != 0 && it.ExpiresAt <= db.Now().Unix():
			try = expired
		case it.Name != name:
			try = renamed
		default:
			try = same
		}
	}
	return nil, errors.New("the item kept changing")
}

// removePresence takes id out of a set and returns the item after it. The
// last connection out clears Shown in the same update, so that a
// connection arriving after it makes a join; one that is not the last is
// taken out without touching it. Which one it is comes from the item a
// failed condition returns.
func (db *DB) removePresence(ctx context.Context, room, userID, _, id string) (map[string]types.AttributeValue, error) {
	values := func() map[string]types.AttributeValue {
		return map[string]types.AttributeValue{":ids": &types.AttributeValueMemberSS{Value: []string{id}}, ":id": str(id), ":one": num(1)}
	}
	last := db.presenceUpdate(room, userID, "", "DELETE conns :ids ADD ver :one SET #ttl = :exp, shown = :false",
		"contains(conns, :id) AND size(conns) = :one", values())
	last.ExpressionAttributeValues[":false"] = boolean(false)
	notLast := db.presenceUpdate(room, userID, "", "DELETE conns :ids ADD ver :one SET #ttl = :exp",
		"contains(conns, :id) AND size(conns) > :one", values())
	try := last
	for range presenceTries {
		item, ok, err := db.updateReturning(ctx, try)
		if ok || err != nil {
			return item, err
		}
		var it presenceItem
		if err := unmarshal(item, &it); err != nil {
			return nil, err
		}
		if !slices.Contains(it.Conns, id) {
			return nil, errNotInSet
		}
		try = notLast
		if len(it.Conns) == 1 {
			try = last
		}
	}
	return nil, errors.New("the set kept changing")
}

var errNotInSet = errors.New("connection not in its user's presence")

// RemoveConnection deletes a connection and takes it out of its user's
// presence. left reports whether it was the user's last connection in the
// room (the others should get a leave with p). A connection that is not
// stored, or that a concurrent call took out of its user's set first (or
// a sync's heal), gives chat.ErrNoConnection: removal happens once however
// many times it is asked for.
func (db *DB) RemoveConnection(ctx context.Context, id string) (c chat.Connection, p chat.Presence, left bool, err error) {
	// Read without the expiry check: an expired record is still removed.
	out, err := db.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &db.tables.Connections, Key: key(connPrefix+id, lookupSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return c, p, false, fmt.Errorf("get connection %s: %w", id, err)
	}
	if out.Item == nil {
		return c, p, false, chat.ErrNoConnection
	}
	var it lookupItem
	if err := unmarshal(out.Item, &it); err != nil {
		return c, p, false, err
	}
	c = it.connection()
	if err := db.deleteConnection(ctx, c); err != nil {
		return c, p, false, err
	}
	// Of concurrent removals (a $disconnect and a 410 prune), the one that
	// takes the id out of the set goes on; the others hear
	// chat.ErrNoConnection. (Which one deleted the items does not matter:
	// a delete whose answer was lost is tried again, and finds it done.)
	p, left, err = db.depart(ctx, c.Room, c.UserID, id)
	if errors.Is(err, errNotInSet) {
		return c, p, false, chat.ErrNoConnection
	}
	return c, p, left, err
}

// Depart takes a connection out of its user's presence in a room, whether
// or not its records still exist (a connection whose records expired, or
// were never completed, is healed this way). left reports whether the user
// has no connection there any more; whoever takes the last connection out
// is the only caller told so. Taking out a connection not in the set
// changes nothing.
func (db *DB) Depart(ctx context.Context, room, userID, id string) (p chat.Presence, left bool, err error) {
	p, left, err = db.depart(ctx, room, userID, id)
	if errors.Is(err, errNotInSet) {
		return chat.Presence{UserID: userID}, false, nil
	}
	return p, left, err
}

// depart is Depart, and RemoveConnection's last step: a connection not in
// the set gives errNotInSet, which each caller answers its own way.
func (db *DB) depart(ctx context.Context, room, userID, id string) (p chat.Presence, left bool, err error) {
	p, err = db.changePresence(ctx, room, userID, "", id, false)
	if err != nil {
		return p, false, err
	}
	return p, !p.Online, nil
}

// Connection returns a live connection by id, or chat.ErrNoConnection.
func (db *DB) Connection(ctx context.Context, id string) (chat.Connection, error) {
	var it lookupItem
	found, err := db.getItem(ctx, db.tables.Connections, key(connPrefix+id, lookupSK), &it)
	if err != nil {
		return chat.Connection{}, fmt.Errorf("get connection %s: %w", id, err)
	}
	if !found || !it.live(db.Now()) {
		return chat.Connection{}, chat.ErrNoConnection
	}
	return it.connection(), nil
}

// members decodes the member items of a room's shard.
func members(room string, shard int, items []map[string]types.AttributeValue) ([]chat.Connection, error) {
	var its []memberItem
	if err := attributevalue.UnmarshalListOfMaps(items, &its); err != nil {
		return nil, fmt.Errorf("decode members of room %q: %w", room, err)
	}
	conns := make([]chat.Connection, len(its))
	for i, m := range its {
		conns[i] = m.connection(room, shard)
	}
	return conns, nil
}

// Room returns a room's live connections and the presence records of
// every name it has seen lately (online or not), in one strongly
// consistent Query of the room's partition, and one of each other shard
// when it has several (shards, as read before).
func (db *DB) Room(ctx context.Context, room string, shards int) ([]chat.Connection, []chat.Presence, error) {
	items, err := db.query(ctx, &dynamodb.QueryInput{
		TableName:                 &db.tables.Connections,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(roomPrefix + room)},
	}, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("query room %q: %w", room, err)
	}
	var conns []chat.Connection
	var presence []chat.Presence
	for _, item := range items {
		var m memberItem
		var p presenceItem
		sk, _ := item["sk"].(*types.AttributeValueMemberS)
		switch {
		case sk == nil:
		case strings.HasPrefix(sk.Value, connPrefix):
			err = unmarshal(item, &m)
			conns = append(conns, m.connection(room, 0))
		case strings.HasPrefix(sk.Value, userPrefix):
			err = unmarshal(item, &p)
			presence = append(presence, p.presence())
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if shards > 1 {
		more, err := db.shardsConnections(ctx, room, 1, shards)
		if err != nil {
			return nil, nil, err
		}
		conns = append(conns, more...)
	}
	return conns, presence, nil
}

// Touch records that a connection is alive (it pinged, or API Gateway
// said so). A connection no longer stored gives chat.ErrNoConnection.
func (db *DB) Touch(ctx context.Context, c chat.Connection, at time.Time) error {
	_, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &db.tables.Connections,
		Key:                       key(memberPK(c.Room, c.Shard), connPrefix+c.ID),
		UpdateExpression:          aws.String("SET seenAt = :at"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": num(ms(at))},
	})
	if conditionFailed(err) {
		return chat.ErrNoConnection
	}
	return wrap(fmt.Sprintf("touch connection %s", c.ID), err)
}

// AllowTyping records a typing event for a connection unless it sent one
// less than interval ago. It returns the connection and whether the event
// may go out; a connection that is not stored gives chat.ErrNoConnection.
func (db *DB) AllowTyping(ctx context.Context, id string, now time.Time, interval time.Duration) (chat.Connection, bool, error) {
	item, allowed, err := db.updateReturning(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &db.tables.Connections,
		Key:                       key(connPrefix+id, lookupSK),
		UpdateExpression:          aws.String("SET typingAt = :now"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND (attribute_not_exists(typingAt) OR typingAt <= :cutoff)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(ms(now)), ":cutoff": num(ms(now.Add(-interval)))},
	})
	if err != nil {
		return chat.Connection{}, false, fmt.Errorf("record typing of %s: %w", id, err)
	}
	if item == nil {
		return chat.Connection{}, false, chat.ErrNoConnection
	}
	var it lookupItem
	if err := unmarshal(item, &it); err != nil {
		return chat.Connection{}, false, err
	}
	if !it.live(now) {
		return chat.Connection{}, false, chat.ErrNoConnection
	}
	return it.connection(), allowed, nil
}

// SkipFrame gives a connection's frame number to a frame that stored
// nothing (it was rejected), so that the next one can go. It fails with
// chat.ErrNoConnection, or with an invalid_frame error when frame is not
// the connection's next.
func (db *DB) SkipFrame(ctx context.Context, id string, frame int64) error {
	u := db.frameMove(id, frame)
	_, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
		ConditionExpression: u.ConditionExpression, ExpressionAttributeValues: u.ExpressionAttributeValues,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if ccf, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
		return frameError(ccf.Item, frame)
	}
	return wrap(fmt.Sprintf("skip frame %d of %s", frame, id), err)
}

// frameMove gives frame its place in a connection's order: the lookup
// item's frame moves from frame-1 to frame, or the condition fails (and
// returns the item as it was).
func (db *DB) frameMove(connID string, frame int64) *types.Update {
	return &types.Update{
		TableName:                           &db.tables.Connections,
		Key:                                 key(connPrefix+connID, lookupSK),
		UpdateExpression:                    aws.String("SET frame = :n"),
		ConditionExpression:                 aws.String("frame = :prev"),
		ExpressionAttributeValues:           map[string]types.AttributeValue{":n": num(frame), ":prev": num(frame - 1)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// frameError explains why frame could not take its place, given the
// connection's lookup item as it was (nil: gone).
func frameError(item map[string]types.AttributeValue, frame int64) error {
	if item == nil {
		return chat.ErrNoConnection
	}
	var it lookupItem
	if err := unmarshal(item, &it); err != nil {
		return err
	}
	return chat.FrameError(it.Frame, frame)
}

// cancelledByCondition reports whether a transaction was cancelled because
// a condition failed (and not for a conflict or throttling).
func cancelledByCondition(err error) bool {
	for _, r := range cancelReasons(err) {
		if reasonIs(r, reasonCondition) {
			return true
		}
	}
	return false
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
