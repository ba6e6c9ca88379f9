package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// messageItem is a stored message: pk room#{room}, sk msg#{seq, 19 digits}.
type messageItem struct {
	keys
	ID        string `dynamodbav:"id"`
	Seq       int64  `dynamodbav:"seq"`
	UserID    string `dynamodbav:"userId"`
	Name      string `dynamodbav:"name"`
	Text      string `dynamodbav:"text"`
	SentAt    int64  `dynamodbav:"sentAt"` // Unix ms
	ClientID  string `dynamodbav:"clientId,omitempty"`
	ExpiresAt int64  `dynamodbav:"expiresAt"`
}

// headItem holds a room's latest seq: pk room#{room}, sk "head" (and, in
// the connections table, pk plog#{room}: its latest presence event). It
// never expires, so a room's numbers never go back.
type headItem struct {
	keys
	Seq int64 `dynamodbav:"seq"`
}

// clientIDItem reserves a sender's clientId in a room: pk room#{room},
// sk client#{userId}#{clientId}; Seq names the message.
type clientIDItem struct {
	keys
	Seq       int64 `dynamodbav:"seq"`
	ExpiresAt int64 `dynamodbav:"expiresAt"`
}

func msgKey(seq int64) string { return fmt.Sprintf("%s%019d", msgPrefix, seq) }

// clientIDKey is unambiguous: a user id holds no "#".
func clientIDKey(userID, clientID string) string {
	return clientIDPrefix + userID + "#" + clientID
}

func (it messageItem) message(room string) chat.Message {
	return chat.Message{ID: it.ID, Seq: it.Seq, Room: room, UserID: it.UserID, Name: it.Name, Text: it.Text,
		SentAt: fromMS(it.SentAt), ClientID: it.ClientID}
}

// maxPutAttempts bounds the transactions one PutMessage tries when other
// messages take the seq it aimed for.
const maxPutAttempts = 50

// PutMessage stores a message as the room's next seq, in one transaction
// with everything that must hold with it:
//
//   - the room's head moves from seq-1 to seq (m.Seq is only a first
//     guess; a message stored meanwhile moves it on, and the transaction is
//     tried again with the next seq);
//   - when frame > 0, the sending connection's last frame moves from
//     frame-1 to frame, so a connection's messages are stored in the order
//     it numbered them;
//   - when m.ClientID is set, it is reserved for the sender (m.UserID, in
//     the room). A clientId the sender already used stores nothing: the
//     original message is returned with duplicate = true (and frame is
//     still given its place).
//
// The stored message carries its seq. A connection no longer stored gives
// chat.ErrNoConnection; a frame that is not the connection's next gives
// chat.FrameError's error.
func (db *DB) PutMessage(ctx context.Context, m chat.Message, connID string, frame int64) (stored chat.Message, duplicate bool, err error) {
	exp := m.SentAt.Add(db.MessageRetention).Unix()
	m.Seq = max(m.Seq, 1)
	token := rand.Text() // the SDK's own retries of one attempt must not apply it twice
	for attempt := range maxPutAttempts {
		items, idx, err := db.messageTransaction(m, connID, frame, exp)
		if err != nil {
			return m, false, err
		}
		_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
			TransactItems: items, ClientRequestToken: aws.String(fmt.Sprintf("%.28s%04d", token, attempt))})
		reasons := cancelReasons(err)
		if err == nil {
			return m, false, nil
		}
		if len(reasons) != len(items) {
			return m, false, fmt.Errorf("put message in room %q: %w", m.Room, err)
		}
		switch {
		case idx.clientID >= 0 && reasonIs(reasons[idx.clientID], reasonCondition):
			return db.duplicate(ctx, m, reasons[idx.clientID].Item, connID, frame)
		case idx.frame >= 0 && reasonIs(reasons[idx.frame], reasonCondition):
			return m, false, frameError(reasons[idx.frame].Item, frame)
		case reasonIs(reasons[idx.head], reasonCondition):
			var head headItem
			if item := reasons[idx.head].Item; item != nil {
				if err := unmarshal(item, &head); err != nil {
					return m, false, err
				}
			}
			m.Seq = head.Seq + 1
		case slices.ContainsFunc(reasons, func(r types.CancellationReason) bool { return reasonIs(r, reasonConflict) }):
			// Another transaction on the head is in flight: wait a little.
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return m, false, err
			}
		default:
			return m, false, fmt.Errorf("put message in room %q: %w", m.Room, err)
		}
	}
	return m, false, fmt.Errorf("put message in room %q: still contended after %d attempts", m.Room, maxPutAttempts)
}

// txIndex says where each conditional item is in a message transaction;
// -1 for an item it does not have.
type txIndex struct{ frame, head, clientID int }

func (db *DB) messageTransaction(m chat.Message, connID string, frame, exp int64) ([]types.TransactWriteItem, txIndex, error) {
	idx := txIndex{frame: -1, clientID: -1}
	var items []types.TransactWriteItem
	if frame > 0 {
		idx.frame = len(items)
		items = append(items, types.TransactWriteItem{Update: db.frameMove(connID, frame)})
	}
	head := &types.Update{
		TableName:                           &db.tables.Messages,
		Key:                                 key(roomPrefix+m.Room, headSK),
		UpdateExpression:                    aws.String("SET seq = :seq"),
		ConditionExpression:                 aws.String("seq = :prev"),
		ExpressionAttributeValues:           map[string]types.AttributeValue{":seq": num(m.Seq), ":prev": num(m.Seq - 1)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if m.Seq == 1 {
		head.ConditionExpression = aws.String("attribute_not_exists(pk)")
		delete(head.ExpressionAttributeValues, ":prev")
	}
	idx.head = len(items)
	items = append(items, types.TransactWriteItem{Update: head})
	msg, err := marshal(messageItem{keys: keys{roomPrefix + m.Room, msgKey(m.Seq)}, ID: m.ID, Seq: m.Seq, UserID: m.UserID, Name: m.Name,
		Text: m.Text, SentAt: ms(m.SentAt), ClientID: m.ClientID, ExpiresAt: exp})
	if err != nil {
		return nil, idx, err
	}
	items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &db.tables.Messages, Item: msg}})
	if m.ClientID != "" {
		reserve, err := marshal(clientIDItem{keys: keys{roomPrefix + m.Room, clientIDKey(m.UserID, m.ClientID)}, Seq: m.Seq, ExpiresAt: exp})
		if err != nil {
			return nil, idx, err
		}
		idx.clientID = len(items)
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName:                           &db.tables.Messages,
			Item:                                reserve,
			ConditionExpression:                 aws.String("attribute_not_exists(pk) OR #ttl <= :now"),
			ExpressionAttributeNames:            map[string]string{"#ttl": TTLAttribute},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":now": num(db.Now().Unix())},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}})
	}
	return items, idx, nil
}

// duplicate answers a message whose clientId the sender already used:
// the frame still takes its place, and the original message is returned.
func (db *DB) duplicate(ctx context.Context, m chat.Message, reserved map[string]types.AttributeValue, connID string, frame int64) (chat.Message, bool, error) {
	var r clientIDItem
	if err := unmarshal(reserved, &r); err != nil {
		return m, false, err
	}
	if frame > 0 {
		if err := db.SkipFrame(ctx, connID, frame); err != nil {
			return m, false, err
		}
	}
	orig, err := db.message(ctx, m.Room, r.Seq)
	return orig, err == nil, err
}

// Original returns the message a sender stored with a clientId, if any.
func (db *DB) Original(ctx context.Context, room, userID, clientID string) (chat.Message, bool, error) {
	var r clientIDItem
	found, err := db.getItem(ctx, db.tables.Messages, key(roomPrefix+room, clientIDKey(userID, clientID)), &r)
	if err != nil || !found {
		return chat.Message{}, false, wrap(fmt.Sprintf("get client id %q of %s in room %q", clientID, userID, room), err)
	}
	m, err := db.message(ctx, room, r.Seq)
	return m, err == nil, err
}

func (db *DB) message(ctx context.Context, room string, seq int64) (chat.Message, error) {
	var it messageItem
	found, err := db.getItem(ctx, db.tables.Messages, key(roomPrefix+room, msgKey(seq)), &it)
	if err != nil {
		return chat.Message{}, fmt.Errorf("get message %d of room %q: %w", seq, room, err)
	}
	if !found {
		return chat.Message{}, fmt.Errorf("message %d of room %q is gone", seq, room)
	}
	return it.message(room), nil
}

// Latest returns a room's latest seq (0 before its first message).
func (db *DB) Latest(ctx context.Context, room string) (int64, error) {
	var h headItem
	if _, err := db.getItem(ctx, db.tables.Messages, key(roomPrefix+room, headSK), &h); err != nil {
		return 0, fmt.Errorf("get latest seq of room %q: %w", room, err)
	}
	return h.Seq, nil
}

// History returns a page of a room's messages, oldest first, with more
// reporting whether the range holds more than the page. With after ≥ 0,
// the first limit messages whose seq is above after; with after < 0, the
// latest limit. before > 0 keeps only messages whose seq is below it.
func (db *DB) History(ctx context.Context, room string, after, before int64, limit int) (msgs []chat.Message, more bool, err error) {
	forward := after >= 0
	hi := int64(math.MaxInt64)
	if before > 0 {
		hi = before - 1
	}
	items, err := db.query(ctx, &dynamodb.QueryInput{
		TableName:              &db.tables.Messages,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(roomPrefix + room), ":lo": str(msgKey(max(after+1, 1))), ":hi": str(msgKey(hi))},
		ScanIndexForward: aws.Bool(forward),
		Limit:            aws.Int32(int32(limit + 1)),
	}, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("query history of room %q: %w", room, err)
	}
	var its []messageItem
	if err := attributevalue.UnmarshalListOfMaps(items, &its); err != nil {
		return nil, false, fmt.Errorf("decode history of room %q: %w", room, err)
	}
	if more = len(its) > limit; more {
		its = its[:limit]
	}
	msgs = make([]chat.Message, len(its))
	for i, it := range its {
		msgs[i] = it.message(room)
	}
	if !forward {
		slices.Reverse(msgs)
	}
	return msgs, more, nil
}

// backoff returns a jittered wait before retry attempt+1: up to 5 ms
// doubling to at most 200 ms.
func backoff(attempt int) time.Duration {
	ceiling := min(5*time.Millisecond<<min(attempt, 6), 200*time.Millisecond)
	return time.Duration(mrand.Int64N(int64(ceiling))) + time.Millisecond
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
