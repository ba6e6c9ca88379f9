package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// TTLAttribute is the attribute both tables' TTL is set on (template.yaml).
const TTLAttribute = "expiresAt"

// Tables names the two tables.
type Tables struct {
	Connections string
	Messages    string
}

// DB is the chat's storage.
type DB struct {
	client *dynamodb.Client
	tables Tables
	// ConnectionTTL is how long a connection record lives: a little more than
	// API Gateway's 2-hour maximum, so records whose $disconnect never came
	// vanish.
	ConnectionTTL time.Duration
	// PresenceLogTTL is how long a room's joins and leaves are kept for the
	// clients that missed them; one that missed an older one syncs.
	PresenceLogTTL time.Duration
	// MessageRetention is how long messages are kept.
	MessageRetention time.Duration
	// SkipAfter is how long after the seq above it was taken a seq that
	// holds no message is declared skipped (chat.Limits.SkipAfter).
	SkipAfter time.Duration
	// WriterLife bounds how long a writer may still store into a seq it
	// took (chat.Limits.InvocationTimeout): a stretch older than that is
	// jumped without tombstones, since no writer can come back to it.
	WriterLife time.Duration
	// ShardSize is how many users online a room holds per shard of its
	// connections before their count doubles (shards.go).
	ShardSize int
	// QuietRoomSize is how many users online a room has, at most, for a
	// connection stored there to claim its user's join on its first frame
	// (chat.Limits.QuietRoomSize; 0: always).
	QuietRoomSize int
	// EditWindow is how long after it was sent its author may edit a
	// message (chat.Limits.EditWindow).
	EditWindow time.Duration
	// Now returns the current time; tests replace it.
	Now func() time.Time
}

// New returns a DB over client with the default lifetimes.
func New(client *dynamodb.Client, t Tables) *DB {
	return &DB{
		client:           client,
		tables:           t,
		ConnectionTTL:    2*time.Hour + 10*time.Minute,
		PresenceLogTTL:   time.Hour,
		MessageRetention: 30 * 24 * time.Hour,
		SkipAfter:        chat.DefaultLimits().SkipAfter,
		WriterLife:       chat.DefaultLimits().InvocationTimeout,
		ShardSize:        chat.DefaultLimits().ShardSize,
		QuietRoomSize:    chat.DefaultLimits().QuietRoomSize(),
		EditWindow:       chat.DefaultLimits().EditWindow,
		Now:              time.Now,
	}
}

// Key prefixes; docs/storage.md has the layout.
const (
	roomPrefix     = "room#"
	connPrefix     = "conn#"
	userPrefix     = "user#"
	msgPrefix      = "msg#"
	clientIDPrefix = "client#"
	lookupSK       = "conn"
	headSK         = "head"
)

// keys is the primary key every item has; the item structs embed it.
type keys struct {
	PK string `dynamodbav:"pk"`
	SK string `dynamodbav:"sk"`
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(pk), "sk": str(sk)}
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func boolean(v bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: v} }

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func marshal(v any) (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return item, nil
}

func unmarshal(item map[string]types.AttributeValue, v any) error {
	if err := attributevalue.UnmarshalMap(item, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// optionalTime is ms for a time that may be zero (0: none).
func optionalTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// optionalMS is fromMS with 0 as the zero time.
func optionalMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromMS(v)
}

// query runs a strongly consistent Query that leaves out expired items,
// to the end (or until enough items are collected, when limit > 0),
// following LastEvaluatedKey past each 1 MB page.
func (db *DB) query(ctx context.Context, in *dynamodb.QueryInput, limit int) ([]map[string]types.AttributeValue, error) {
	return db.queryItems(ctx, in, limit, true)
}

// queryItems is query, leaving out expired items only if filterExpired.
func (db *DB) queryItems(ctx context.Context, in *dynamodb.QueryInput, limit int, filterExpired bool) ([]map[string]types.AttributeValue, error) {
	in.ConsistentRead = aws.Bool(true)
	if filterExpired {
		in.FilterExpression = aws.String("#ttl > :now")
		if in.ExpressionAttributeNames == nil {
			in.ExpressionAttributeNames = map[string]string{}
		}
		in.ExpressionAttributeNames["#ttl"] = TTLAttribute
		in.ExpressionAttributeValues[":now"] = num(db.Now().Unix())
	}
	var items []map[string]types.AttributeValue
	p := dynamodb.NewQueryPaginator(db.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		items = append(items, page.Items...)
		if limit > 0 && len(items) >= limit {
			return items[:limit], nil
		}
	}
	return items, nil
}

// nextCursor is the cursor of a Query's next page: the sort key, less
// prefix, of the last item it read (its LastEvaluatedKey: a filter may
// have dropped that item), "" when the Query read to the end.
func nextCursor(last map[string]types.AttributeValue, prefix string) (string, error) {
	if last == nil {
		return "", nil
	}
	var k keys
	if err := unmarshal(last, &k); err != nil {
		return "", err
	}
	return strings.TrimPrefix(k.SK, prefix), nil
}

// getItem reads one item with a strongly consistent read into v; found is
// false when there is none or it has expired (DynamoDB deletes expired
// items lazily, often days later).
func (db *DB) getItem(ctx context.Context, table string, k map[string]types.AttributeValue, v any) (found bool, err error) {
	item, err := db.getRaw(ctx, table, k)
	if err != nil || item == nil {
		return false, err
	}
	return true, unmarshal(item, v)
}

// getRaw reads one item with a strongly consistent read, undecoded; nil
// when there is none or it has expired.
func (db *DB) getRaw(ctx context.Context, table string, k map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	out, err := db.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: k, ConsistentRead: aws.Bool(true)})
	if err != nil || out.Item == nil || expired(out.Item, db.Now()) {
		return nil, err
	}
	return out.Item, nil
}

// expired reports whether an item's TTL has passed; items without one
// never expire.
func expired(item map[string]types.AttributeValue, now time.Time) bool {
	n, ok := item[TTLAttribute].(*types.AttributeValueMemberN)
	if !ok {
		return false
	}
	exp, err := strconv.ParseInt(n.Value, 10, 64)
	return err == nil && exp <= now.Unix()
}

func conditionFailed(err error) bool {
	_, ok := errors.AsType[*types.ConditionalCheckFailedException](err)
	return ok
}

// cancelReasons returns why a transaction was cancelled, one reason per
// item in request order, or nil if err is not a cancellation.
func cancelReasons(err error) []types.CancellationReason {
	if tce, ok := errors.AsType[*types.TransactionCanceledException](err); ok {
		return tce.CancellationReasons
	}
	return nil
}

func reasonIs(r types.CancellationReason, code string) bool { return aws.ToString(r.Code) == code }

// Cancellation reason codes (the API reference of TransactWriteItems).
const (
	reasonCondition = "ConditionalCheckFailed"
	reasonConflict  = "TransactionConflict"
)
