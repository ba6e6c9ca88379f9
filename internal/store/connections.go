package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// PutConnection stores a new connection and counts it towards its name's
// presence in the room. first reports whether it is the name's only live
// connection there, that is, whether the others should get a join. Storing
// the same connection id twice changes nothing and reports first = false.
func (db *DB) PutConnection(ctx context.Context, c chat.Connection) (first bool, err error) {
	exp := n(c.ConnectedAt.Add(db.ConnectionTTL).Unix())
	at := s(formatTime(c.ConnectedAt))
	member := key(roomPrefix+c.Room, connPrefix+c.ID)
	member["name"], member["connectedAt"], member[TTLAttribute] = s(c.Name), at, exp
	lookup := key(connPrefix+c.ID, lookupSK)
	lookup["room"], lookup["name"], lookup["connectedAt"], lookup[TTLAttribute] = s(c.Room), s(c.Name), at, exp

	_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &db.tables.Connections, Item: lookup, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Put: &types.Put{TableName: &db.tables.Connections, Item: member}},
	}})
	if cancelledByCondition(err) {
		return false, nil // already stored: a repeated $connect
	}
	if err != nil {
		return false, fmt.Errorf("put connection %s: %w", c.ID, err)
	}

	count, err := db.addPresence(ctx, c.Room, c.Name, 1, exp)
	if err != nil {
		return false, err
	}
	if count == 1 {
		return true, nil
	}
	// The count can be stale: connections that expired without a $disconnect
	// never decremented it. Trust it only if another live connection exists.
	conns, err := db.RoomConnections(ctx, c.Room)
	if err != nil {
		return false, err
	}
	live := 0
	for _, o := range conns {
		if o.Name == c.Name {
			live++
		}
	}
	if live > 1 {
		return false, nil
	}
	_, err = db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &db.tables.Connections,
		Key:                       key(roomPrefix+c.Room, namePrefix+c.Name),
		UpdateExpression:          aws.String("SET conns = :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": n(1)},
	})
	return true, wrap(fmt.Sprintf("reset presence of %q in room %q", c.Name, c.Room), err)
}

// addPresence adds delta to the number of live connections a name has in a
// room and returns the new number.
func (db *DB) addPresence(ctx context.Context, room, name string, delta int64, exp types.AttributeValue) (int64, error) {
	update := "ADD conns :d"
	values := map[string]types.AttributeValue{":d": n(delta)}
	if exp != nil {
		update += " SET #ttl = :exp"
		values[":exp"] = exp
	}
	out, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &db.tables.Connections,
		Key:                       key(roomPrefix+room, namePrefix+name),
		UpdateExpression:          aws.String(update),
		ExpressionAttributeValues: values,
		ExpressionAttributeNames:  ttlName(exp != nil),
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("count presence of %q in room %q: %w", name, room, err)
	}
	return num(out.Attributes, "conns"), nil
}

func ttlName(used bool) map[string]string {
	if !used {
		return nil
	}
	return map[string]string{"#ttl": TTLAttribute}
}

// RemoveConnection deletes a connection and uncounts it from its name's
// presence. last reports whether it was the name's last connection in the
// room (the others should get a leave). A connection that is not stored,
// or that a concurrent call removed first, gives chat.ErrNoConnection: removal
// happens once however many times it is asked for.
func (db *DB) RemoveConnection(ctx context.Context, id string) (c chat.Connection, last bool, err error) {
	out, err := db.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &db.tables.Connections, Key: key(connPrefix+id, lookupSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return c, false, fmt.Errorf("get connection %s: %w", id, err)
	}
	if out.Item == nil {
		return c, false, chat.ErrNoConnection
	}
	c = lookupConnection(id, out.Item)
	_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: &db.tables.Connections, Key: key(connPrefix+id, lookupSK), ConditionExpression: aws.String("attribute_exists(pk)")}},
		{Delete: &types.Delete{TableName: &db.tables.Connections, Key: key(roomPrefix+c.Room, connPrefix+id)}},
	}})
	if cancelledByCondition(err) {
		return c, false, chat.ErrNoConnection
	}
	if err != nil {
		return c, false, fmt.Errorf("delete connection %s: %w", id, err)
	}
	count, err := db.addPresence(ctx, c.Room, c.Name, -1, nil)
	if err != nil || count > 0 {
		return c, false, err
	}
	_, err = db.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &db.tables.Connections,
		Key:                       key(roomPrefix+c.Room, namePrefix+c.Name),
		ConditionExpression:       aws.String("conns <= :zero"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": n(0)},
	})
	if err != nil && !conditionFailed(err) { // failed condition: the name came back meanwhile
		return c, true, fmt.Errorf("delete presence of %q in room %q: %w", c.Name, c.Room, err)
	}
	return c, true, nil
}

// Connection returns a live connection by id, or chat.ErrNoConnection.
func (db *DB) Connection(ctx context.Context, id string) (chat.Connection, error) {
	out, err := db.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &db.tables.Connections, Key: key(connPrefix+id, lookupSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return chat.Connection{}, fmt.Errorf("get connection %s: %w", id, err)
	}
	if out.Item == nil || expired(out.Item, db.Now()) {
		return chat.Connection{}, chat.ErrNoConnection
	}
	return lookupConnection(id, out.Item), nil
}

func lookupConnection(id string, item map[string]types.AttributeValue) chat.Connection {
	return chat.Connection{ID: id, Room: str(item, "room"), Name: str(item, "name"), ConnectedAt: parseTime(str(item, "connectedAt"))}
}

// RoomConnections returns every live connection in a room: a strongly
// consistent Query, so a connection stored before the call is included.
func (db *DB) RoomConnections(ctx context.Context, room string) ([]chat.Connection, error) {
	items, err := db.query(ctx, &dynamodb.QueryInput{
		TableName:                &db.tables.Connections,
		KeyConditionExpression:   aws.String("pk = :pk AND begins_with(sk, :prefix)"),
		FilterExpression:         aws.String(notExpired),
		ProjectionExpression:     aws.String("sk, #name, connectedAt"),
		ExpressionAttributeNames: map[string]string{"#ttl": TTLAttribute, "#name": "name"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(roomPrefix + room), ":prefix": s(connPrefix), ":now": n(db.Now().Unix())},
		ConsistentRead: aws.Bool(true),
	}, 0)
	if err != nil {
		return nil, fmt.Errorf("query room %q: %w", room, err)
	}
	conns := make([]chat.Connection, len(items))
	for i, it := range items {
		conns[i] = chat.Connection{ID: str(it, "sk")[len(connPrefix):], Room: room, Name: str(it, "name"),
			ConnectedAt: parseTime(str(it, "connectedAt"))}
	}
	return conns, nil
}

// AllowTyping records a typing event for a connection unless it sent one
// less than interval ago. It returns the connection and whether the event
// may go out; a connection that is not stored gives chat.ErrNoConnection.
func (db *DB) AllowTyping(ctx context.Context, id string, now time.Time, interval time.Duration) (chat.Connection, bool, error) {
	out, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &db.tables.Connections,
		Key:                                 key(connPrefix+id, lookupSK),
		UpdateExpression:                    aws.String("SET typingAt = :now"),
		ConditionExpression:                 aws.String("attribute_exists(pk) AND (attribute_not_exists(typingAt) OR typingAt <= :cutoff)"),
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": n(now.UnixMilli()), ":cutoff": n(now.Add(-interval).UnixMilli())},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if ccf, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
		if ccf.Item == nil {
			return chat.Connection{}, false, chat.ErrNoConnection
		}
		return lookupConnection(id, ccf.Item), false, nil
	}
	if err != nil {
		return chat.Connection{}, false, fmt.Errorf("record typing of %s: %w", id, err)
	}
	return lookupConnection(id, out.Attributes), true, nil
}

// cancelledByCondition reports whether a transaction was cancelled because
// a condition failed (and not for a conflict or throttling).
func cancelledByCondition(err error) bool {
	tce, ok := errors.AsType[*types.TransactionCanceledException](err)
	if !ok {
		return false
	}
	for _, r := range tce.CancellationReasons {
		if aws.ToString(r.Code) == "ConditionalCheckFailed" {
			return true
		}
	}
	return false
}
