package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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
	// MessageRetention is how long messages are kept.
	MessageRetention time.Duration
	// Now returns the current time; tests replace it.
	Now func() time.Time
}

// New returns a DB over client with the default lifetimes.
func New(client *dynamodb.Client, t Tables) *DB {
	return &DB{
		client:           client,
		tables:           t,
		ConnectionTTL:    2*time.Hour + 10*time.Minute,
		MessageRetention: 30 * 24 * time.Hour,
		Now:              time.Now,
	}
}

// Key prefixes; docs/storage.md has the layout.
const (
	roomPrefix     = "room#"
	connPrefix     = "conn#"
	namePrefix     = "name#"
	msgPrefix      = "msg#"
	clientIDPrefix = "client#"
	lookupSK       = "conn"
	// msgRangeEnd sorts after every message id (ULIDs use 0-9 and A-Z).
	msgRangeEnd = msgPrefix + "~"
)

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s(pk), "sk": s(sk)}
}

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func num(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		i, _ := strconv.ParseInt(v.Value, 10, 64)
		return i
	}
	return 0
}

func expired(item map[string]types.AttributeValue, now time.Time) bool {
	return num(item, TTLAttribute) <= now.Unix()
}

// notExpired is the filter every read applies, with :now bound to the
// current Unix time.
const notExpired = "#ttl > :now"

func parseTime(v string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, v)
	return t
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// query runs a Query to the end (or until enough items are collected,
// when limit > 0), following LastEvaluatedKey past each 1 MB page.
func (db *DB) query(ctx context.Context, in *dynamodb.QueryInput, limit int) ([]map[string]types.AttributeValue, error) {
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

func conditionFailed(err error) bool {
	_, ok := errors.AsType[*types.ConditionalCheckFailedException](err)
	return ok
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
