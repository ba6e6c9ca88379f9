package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/app"
	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/dynamolocal/dynamolocaltest"
	"github.com/chatgo/serverless-chat/internal/store"
)

// BenchmarkArrival times, one after another, the store calls of one
// person arriving in a room (docs/benchmarks.md §12): $connect's
// (membership, connection, presence, count) and its first sync's
// (connection, read token, presence head, join, history). "signed" is a
// client that signs as in AWS; "local" is the functions' local client
// (app.DynamoDBOptions: unsigned). On the two cores of a local run, the
// time per arrival is mostly CPU, DynamoDB Local's and this process's.
func BenchmarkArrival(b *testing.B) {
	if endpoint == "" {
		b.Skip("needs DynamoDB Local")
	}
	signed, names := dynamolocaltest.NewTables(b, endpoint) // signs, as dynamolocal.Client does
	local := dynamodb.New(dynamodb.Options{Region: "us-east-1"}, app.DynamoDBOptions(endpoint))
	tables := store.Tables{Connections: names["ConnectionsTable"], Messages: names["MessagesTable"]}
	reads := chat.DefaultLimits().Reads
	i := 0 // ids never used before, however often a sub-benchmark runs
	for _, client := range []struct {
		name string
		c    *dynamodb.Client
	}{{"signed", signed}, {"local", local}} {
		b.Run(client.name, func(b *testing.B) {
			db := store.New(client.c, tables)
			room := "arrivals-" + client.name
			for b.Loop() {
				i++
				ctx, now := b.Context(), time.Now()
				c := chat.Connection{ID: fmt.Sprintf("%s-%d", client.name, i), Room: room, UserID: fmt.Sprintf("u-%d", i), Name: "Ana", ConnectedAt: now}
				if _, err := db.Membership(ctx, room, c.UserID); err != nil {
					b.Fatal(err)
				}
				p, _, err := db.PutConnection(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Conns) == 1 {
					if _, err := db.CountOnline(ctx, room, 1); err != nil {
						b.Fatal(err)
					}
				}
				if c, err = db.Connection(ctx, c.ID); err != nil {
					b.Fatal(err)
				}
				if _, _, err := db.TakeToken(ctx, c.UserID, reads, now, time.Time{}); err != nil {
					b.Fatal(err)
				}
				if _, err := db.PresenceHead(ctx, room); err != nil {
					b.Fatal(err)
				}
				if _, _, err := db.ClaimJoin(ctx, c); err != nil {
					b.Fatal(err)
				}
				if _, err := db.History(ctx, room, -1, 0, 50); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConnectionWrites compares the two ways to store a connection's
// two items: in a transaction (until 2026-12-05) and as two puts (now).
// DynamoDB charges a transaction's items twice; DynamoDB Local spends on
// the transaction several times the CPU of the two puts.
func BenchmarkConnectionWrites(b *testing.B) {
	if endpoint == "" {
		b.Skip("needs DynamoDB Local")
	}
	_, names := dynamolocaltest.NewTables(b, endpoint)
	client := dynamodb.New(dynamodb.Options{Region: "us-east-1"}, app.DynamoDBOptions(endpoint))
	table := aws.String(names["ConnectionsTable"])
	item := func(pk, sk string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk},
			"room": &types.AttributeValueMemberS{Value: "general"}, "name": &types.AttributeValueMemberS{Value: "Ana"}}
	}
	notThere := aws.String("attribute_not_exists(pk)")
	i := 0 // ids never used before, however often the function runs
	b.Run("transaction", func(b *testing.B) {
		for b.Loop() {
			i++
			id := fmt.Sprint("t", i)
			_, err := client.TransactWriteItems(b.Context(), &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Put: &types.Put{TableName: table, Item: item("conn#"+id, "conn"), ConditionExpression: notThere}},
				{Put: &types.Put{TableName: table, Item: item("room#general", "conn#"+id)}}}})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("two puts", func(b *testing.B) {
		for b.Loop() {
			i++
			id := fmt.Sprint("p", i)
			if _, err := client.PutItem(b.Context(), &dynamodb.PutItemInput{TableName: table, Item: item("conn#"+id, "conn"), ConditionExpression: notThere}); err != nil {
				b.Fatal(err)
			}
			if _, err := client.PutItem(b.Context(), &dynamodb.PutItemInput{TableName: table, Item: item("room#general", "conn#"+id)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
