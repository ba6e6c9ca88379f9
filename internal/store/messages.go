package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// PutMessage stores a message. When it has a ClientID already stored in its
// room, nothing is written and the original message (its id and time) is
// returned with duplicate = true.
func (db *DB) PutMessage(ctx context.Context, m chat.Message) (stored chat.Message, duplicate bool, err error) {
	exp := n(m.SentAt.Add(db.MessageRetention).Unix())
	item := key(roomPrefix+m.Room, msgPrefix+m.ID)
	item["name"], item["text"], item["sentAt"], item[TTLAttribute] = s(m.Name), s(m.Text), s(formatTime(m.SentAt)), exp
	if m.ClientID == "" {
		_, err := db.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &db.tables.Messages, Item: item})
		return m, false, wrap(fmt.Sprintf("put message in room %q", m.Room), err)
	}
	item["clientId"] = s(m.ClientID)
	dedupe := key(roomPrefix+m.Room, clientIDPrefix+m.ClientID)
	dedupe["id"], dedupe["sentAt"], dedupe[TTLAttribute] = s(m.ID), item["sentAt"], exp
	_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{
			TableName:                 &db.tables.Messages,
			Item:                      dedupe,
			ConditionExpression:       aws.String("attribute_not_exists(pk) OR #ttl <= :now"),
			ExpressionAttributeNames:  map[string]string{"#ttl": TTLAttribute},
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": n(db.Now().Unix())},
		}},
		{Put: &types.Put{TableName: &db.tables.Messages, Item: item}},
	}})
	if !cancelledByCondition(err) {
		return m, false, wrap(fmt.Sprintf("put message in room %q", m.Room), err)
	}
	out, err := db.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &db.tables.Messages, Key: key(roomPrefix+m.Room, clientIDPrefix+m.ClientID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return m, false, fmt.Errorf("get message of client id %q in room %q: %w", m.ClientID, m.Room, err)
	}
	if out.Item == nil {
		return m, false, fmt.Errorf("client id %q in room %q: stored and then gone", m.ClientID, m.Room)
	}
	m.ID, m.SentAt = str(out.Item, "id"), parseTime(str(out.Item, "sentAt"))
	return m, true, nil
}

// History returns a page of a room's messages, oldest first. Without after,
// the latest limit messages, and more reports whether older ones exist. With
// after (a message id), the first limit messages newer than it, and more
// reports whether newer ones exist beyond the page.
func (db *DB) History(ctx context.Context, room, after string, limit int) (msgs []chat.Message, more bool, err error) {
	lower, forward, want := msgPrefix, false, limit+1
	if after != "" {
		// BETWEEN is inclusive: the after item itself may come first.
		lower, forward, want = msgPrefix+after, true, limit+2
	}
	items, err := db.query(ctx, &dynamodb.QueryInput{
		TableName:                &db.tables.Messages,
		KeyConditionExpression:   aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		FilterExpression:         aws.String(notExpired),
		ExpressionAttributeNames: map[string]string{"#ttl": TTLAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(roomPrefix + room), ":lo": s(lower), ":hi": s(msgRangeEnd), ":now": n(db.Now().Unix())},
		ScanIndexForward: aws.Bool(forward),
		ConsistentRead:   aws.Bool(true),
		Limit:            aws.Int32(int32(want)),
	}, want)
	if err != nil {
		return nil, false, fmt.Errorf("query history of room %q: %w", room, err)
	}
	msgs = make([]chat.Message, 0, len(items))
	for _, it := range items {
		id := str(it, "sk")[len(msgPrefix):]
		if id == after {
			continue
		}
		msgs = append(msgs, chat.Message{ID: id, Room: room, Name: str(it, "name"), Text: str(it, "text"),
			SentAt: parseTime(str(it, "sentAt")), ClientID: str(it, "clientId")})
	}
	if more = len(msgs) > limit; more {
		msgs = msgs[:limit]
	}
	if !forward {
		slices.Reverse(msgs)
	}
	return msgs, more, nil
}
