package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// auditItem is one moderation action of a private room: pk room#{room},
// sk audit#{ULID} (sorted by time, and by order within one instance), so
// that the latest are one backwards Query; kept as long as messages.
type auditItem struct {
	keys
	chat.AuditEntry
	ExpiresAt int64 `dynamodbav:"expiresAt"`
}

const auditPrefix = "audit#"

// Audit records a moderation action that writes nothing else (an invite
// link made). An action that changes an item keeps its entry in its own
// transaction (auditPut), so that it stands exactly when it is recorded.
func (db *DB) Audit(ctx context.Context, room string, e chat.AuditEntry) error {
	put, err := db.auditPut(room, e)
	if err != nil {
		return err
	}
	if _, err := db.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: put.Put.TableName, Item: put.Put.Item}); err != nil {
		return fmt.Errorf("record %s by %s in room %q: %w", e.Action, e.By, room, err)
	}
	return nil
}

// auditPut is the write, in a transaction, of a moderation action's entry
// in the room's audit log (e.At is set here).
func (db *DB) auditPut(room string, e chat.AuditEntry) (types.TransactWriteItem, error) {
	now := db.Now()
	e.At = chat.FormatTime(now)
	item, err := marshal(auditItem{keys: keys{roomPrefix + room, auditPrefix + chat.NewID(now)},
		AuditEntry: e, ExpiresAt: now.Add(db.MessageRetention).Unix()})
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return types.TransactWriteItem{Put: &types.Put{TableName: &db.tables.Messages, Item: item}}, nil
}

// AuditLog returns a page of a room's moderation actions, newest first,
// at most chat.AuditPage, from the one before cursor ("": the latest),
// and the cursor of the next page ("": none).
func (db *DB) AuditLog(ctx context.Context, room, cursor string) ([]chat.AuditEntry, string, error) {
	// One page: strongly consistent (the owner sees the action just made),
	// expired entries left out (DynamoDB deletes them days late).
	in := &dynamodb.QueryInput{
		TableName:                 &db.tables.Messages,
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :audit)"),
		FilterExpression:          aws.String("#ttl > :now"),
		ExpressionAttributeNames:  map[string]string{"#ttl": TTLAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(roomPrefix + room), ":audit": str(auditPrefix), ":now": num(db.Now().Unix())},
		ScanIndexForward:          aws.Bool(false),
		ConsistentRead:            aws.Bool(true),
		Limit:                     aws.Int32(chat.AuditPage),
	}
	if cursor != "" {
		in.ExclusiveStartKey = key(roomPrefix+room, auditPrefix+cursor)
	}
	out, err := db.client.Query(ctx, in)
	var its []auditItem
	if err == nil {
		err = attributevalue.UnmarshalListOfMaps(out.Items, &its)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read the audit log of room %q: %w", room, err)
	}
	entries := make([]chat.AuditEntry, len(its))
	for i, it := range its {
		entries[i] = it.AuditEntry
	}
	if out.Count < out.ScannedCount {
		return entries, "", nil // expired ones read: every older one has expired too
	}
	next, err := nextCursor(out.LastEvaluatedKey, auditPrefix)
	return entries, next, err
}
