package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/dynamolocal/dynamolocaltest"
	"github.com/chatgo/serverless-chat/internal/store"
)

// capacity asks every request for its consumed capacity and adds it up.
type capacity struct {
	mu          sync.Mutex
	read, write float64
}

func (c *capacity) reset() (float64, float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, w := c.read, c.write
	c.read, c.write = 0, 0
	return r, w
}

// add counts consumed capacity as reads or writes by the operation that
// consumed it (DynamoDB Local reports only CapacityUnits).
func (c *capacity) add(write bool, cc ...types.ConsumedCapacity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range cc {
		if write {
			c.write += aws.ToFloat64(x.CapacityUnits)
		} else {
			c.read += aws.ToFloat64(x.CapacityUnits)
		}
	}
}

func (c *capacity) middleware(st *middleware.Stack) error {
	return st.Initialize.Add(middleware.InitializeMiddlewareFunc("consumedCapacity",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			total := types.ReturnConsumedCapacityTotal
			switch p := in.Parameters.(type) {
			case *dynamodb.GetItemInput:
				p.ReturnConsumedCapacity = total
			case *dynamodb.QueryInput:
				p.ReturnConsumedCapacity = total
			case *dynamodb.ScanInput:
				p.ReturnConsumedCapacity = total
			case *dynamodb.PutItemInput:
				p.ReturnConsumedCapacity = total
			case *dynamodb.UpdateItemInput:
				p.ReturnConsumedCapacity = total
			case *dynamodb.DeleteItemInput:
				p.ReturnConsumedCapacity = total
			case *dynamodb.TransactWriteItemsInput:
				p.ReturnConsumedCapacity = total
			}
			out, md, err := next.HandleInitialize(ctx, in)
			switch r := out.Result.(type) {
			case *dynamodb.GetItemOutput:
				c.addPtr(false, r.ConsumedCapacity)
			case *dynamodb.QueryOutput:
				c.addPtr(false, r.ConsumedCapacity)
			case *dynamodb.ScanOutput:
				c.addPtr(false, r.ConsumedCapacity)
			case *dynamodb.PutItemOutput:
				c.addPtr(true, r.ConsumedCapacity)
			case *dynamodb.UpdateItemOutput:
				c.addPtr(true, r.ConsumedCapacity)
			case *dynamodb.DeleteItemOutput:
				c.addPtr(true, r.ConsumedCapacity)
			case *dynamodb.TransactWriteItemsOutput:
				c.add(true, r.ConsumedCapacity...)
			}
			return out, md, err
		}), middleware.Before)
}

func (c *capacity) addPtr(write bool, cc *types.ConsumedCapacity) {
	if cc != nil {
		c.add(write, *cc)
	}
}

// BenchmarkBroadcastCost measures the DynamoDB request units one chat
// message costs (look up the sender, take a token from the user's bucket,
// take the room's next seq, store the message with its frame and
// clientId, query the room's members) for rooms of 10, 100 and 1,000 members with 10
// such rooms in the table, and what a Scan of the connections table, as
// the common AWS sample does, would read instead. docs/benchmarks.md
// records the numbers.
func BenchmarkBroadcastCost(b *testing.B) {
	if endpoint == "" {
		b.Skip("needs DynamoDB Local")
	}
	for _, members := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			_, names := dynamolocaltest.NewTables(b, endpoint)
			cap := &capacity{}
			client := dynamodb.New(dynamodb.Options{BaseEndpoint: aws.String(endpoint), Region: "us-east-1",
				Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
				APIOptions:  []func(*middleware.Stack) error{cap.middleware}})
			tables := store.Tables{Connections: names["ConnectionsTable"], Messages: names["MessagesTable"]}
			db := store.New(client, tables)
			now := time.Now()
			fill(b, db, members, now)
			connectR, connectW := cap.reset()

			ctx := b.Context()
			var msgR, msgW, scanR float64
			n := 0
			for b.Loop() {
				c, err := db.Connection(ctx, "r0-c0")
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := db.TakeToken(ctx, c.UserID, chat.Rate{What: chat.RateMessages, PerSecond: 1000, Burst: 1}, time.Now(), time.Time{}); err != nil {
					b.Fatal(err)
				}
				m := chat.Message{ID: chat.NewID(time.Now()), Room: c.Room, UserID: c.UserID, Name: c.Name,
					Text: "a typical chat message of sixty characters or so, in a room", ClientID: fmt.Sprintf("bench-%d", n)}
				if _, err := db.PutMessage(ctx, m, c.ID, c.Frame+1); err != nil {
					b.Fatal(err)
				}
				conns, err := db.RoomConnections(ctx, c.Room, 1)
				if err != nil || len(conns) != members {
					b.Fatalf("room has %d members (%v), want %d", len(conns), err, members)
				}
				r, w := cap.reset()
				msgR, msgW = msgR+r, msgW+w
				// The Scan design: every connection of every room is read.
				p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: &tables.Connections,
					FilterExpression:          aws.String("begins_with(pk, :room)"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":room": &types.AttributeValueMemberS{Value: "room#r0"}}})
				for p.HasMorePages() {
					if _, err := p.NextPage(ctx); err != nil {
						b.Fatal(err)
					}
				}
				r, _ = cap.reset()
				scanR += r
				n++
			}
			b.ReportMetric(msgR/float64(n), "RRU/msg")
			b.ReportMetric(msgW/float64(n), "WRU/msg")
			b.ReportMetric(scanR/float64(n), "scan-RRU/msg")
			b.ReportMetric(connectR/float64(10*members), "RRU/connect")
			b.ReportMetric(connectW/float64(10*members), "WRU/connect")
		})
	}
}

// fill connects members people to each of 10 rooms through the store.
func fill(b *testing.B, db *store.DB, members int, now time.Time) {
	b.Helper()
	var wg sync.WaitGroup
	work := make(chan chat.Connection)
	for range 16 {
		wg.Go(func() {
			for c := range work {
				if _, _, err := db.PutConnection(context.Background(), c); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for r := range 10 {
		for i := range members {
			work <- chat.Connection{ID: fmt.Sprintf("r%d-c%d", r, i), Room: fmt.Sprintf("r%d", r),
				UserID: fmt.Sprintf("u-%d", i), Name: fmt.Sprintf("member-%d", i), ConnectedAt: now}
		}
	}
	close(work)
	wg.Wait()
}
