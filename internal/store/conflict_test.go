package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/chatgo/serverless-chat/internal/app"
	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/dynamolocal/dynamolocaltest"
	"github.com/chatgo/serverless-chat/internal/store"
)

// conflicts answers the first requests of some DynamoDB operations with a
// transaction conflict, as DynamoDB does when another transaction holds
// one of their items, and passes everything else to DynamoDB Local.
type conflicts struct {
	mu   sync.Mutex
	left map[string]int    // operation → conflicts still to answer
	body map[string]string // operation → the error's JSON body
	sent map[string]int
	// lostAnswers: operations applied by DynamoDB Local whose answers are
	// lost (a 500 instead), on every attempt.
	lostAnswers map[string]bool
	// refused: requests of an operation whose body holds this text are
	// refused (a 400 the SDK does not retry) without reaching DynamoDB Local.
	refused map[string]string
	// lostOnce: the first request of an operation whose body holds this
	// text is applied by DynamoDB Local and its answer lost (a 500: the
	// SDK tries again).
	lostOnce map[string]string
}

func (c *conflicts) Do(r *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	c.mu.Lock()
	inject := c.left[op] > 0
	if inject {
		c.left[op]--
		c.sent[op]++
	}
	lost := c.lostAnswers[op]
	refuse, loseOnce := c.refused[op], c.lostOnce[op]
	c.mu.Unlock()
	if refuse != "" || loseOnce != "" {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		switch {
		case refuse != "" && bytes.Contains(body, []byte(refuse)):
			return &http.Response{StatusCode: 400, Request: r, Body: io.NopCloser(bytes.NewBufferString(`{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException","message":"refused"}`)),
				Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}}}, nil
		case loseOnce != "" && bytes.Contains(body, []byte(loseOnce)):
			c.mu.Lock()
			delete(c.lostOnce, op)
			c.mu.Unlock()
			lost = true
		}
	}
	switch {
	case lost:
		if resp, err := http.DefaultClient.Do(r); err == nil {
			resp.Body.Close()
		}
		return &http.Response{StatusCode: 500, Request: r, Body: io.NopCloser(bytes.NewBufferString(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"lost"}`)),
			Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}}}, nil
	case !inject:
		return http.DefaultClient.Do(r)
	}
	return &http.Response{StatusCode: 400, Request: r, Body: io.NopCloser(bytes.NewBufferString(c.body[op])),
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}}}, nil
}

// Conflicting transactions are tried again, bounded and jittered: an
// UpdateItem of an item a transaction holds (TransactionConflictException,
// which the SDK does not retry by itself) and a transaction cancelled by
// another one in flight (TransactionCanceledException, reason
// TransactionConflict). The message is stored once, under one seq.
func TestTransactionConflictsAreRetried(t *testing.T) {
	if endpoint == "" {
		t.Skip("integration test: needs DynamoDB Local (skipped with -short)")
	}
	_, names := dynamolocaltest.NewTables(t, endpoint)
	inject := &conflicts{sent: map[string]int{},
		left: map[string]int{"UpdateItem": 1, "TransactWriteItems": 2},
		body: map[string]string{
			"UpdateItem": `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}`,
			// The transaction of a message with a clientId and no frame
			// has two items: the message and the clientId.
			"TransactWriteItems": `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]",` +
				`"CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]}`,
		}}
	client := dynamodb.New(dynamodb.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient: inject, Retryer: app.NewRetryer()}, app.DynamoDBOptions(endpoint))
	db := store.New(client, store.Tables{Connections: names["ConnectionsTable"], Messages: names["MessagesTable"]})

	res, err := db.PutMessage(t.Context(), chat.Message{ID: chat.NewID(db.Now()), Room: "r", UserID: "u-Ana", Name: "Ana", Text: "hi", ClientID: "c1"}, "", 0)
	if err != nil || res.Message.Seq != 1 || res.Duplicate || len(res.Skipped) != 0 {
		t.Fatalf("PutMessage = %+v, %v; want seq 1 stored", res, err)
	}
	if res.Failed != 2 {
		t.Errorf("Failed = %d, want the 2 conflicting transactions counted", res.Failed)
	}
	if got := fmt.Sprint(inject.sent); got != "map[TransactWriteItems:2 UpdateItem:1]" {
		t.Errorf("conflicts answered: %s", got)
	}
	page, err := db.History(t.Context(), "r", 0, 0, 10)
	if err != nil || len(page.Messages) != 1 || page.Latest != 1 {
		t.Errorf("history = %+v, %v; want the one message", page, err)
	}
}

// A transaction whose answer is lost may have committed: PutMessage fails
// (the client sends the message again, and gets its original ack), but
// never announces the message's seq as skipped.
func TestStoredMessageWhoseAnswerIsLostIsNotSkipped(t *testing.T) {
	if endpoint == "" {
		t.Skip("integration test: needs DynamoDB Local (skipped with -short)")
	}
	_, names := dynamolocaltest.NewTables(t, endpoint)
	inject := &conflicts{sent: map[string]int{}, lostAnswers: map[string]bool{"TransactWriteItems": true}}
	client := dynamodb.New(dynamodb.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient: inject, Retryer: app.NewRetryer()}, app.DynamoDBOptions(endpoint))
	tables := store.Tables{Connections: names["ConnectionsTable"], Messages: names["MessagesTable"]}
	db := store.New(client, tables)
	res, err := db.PutMessage(t.Context(), chat.Message{ID: chat.NewID(db.Now()), Room: "r", UserID: "u-Ana", Name: "Ana", Text: "hi", ClientID: "c1"}, "", 0)
	if err == nil || len(res.Skipped) != 0 {
		t.Fatalf("PutMessage = %+v, %v; want an error and no seq skipped", res, err)
	}
	inject.mu.Lock()
	inject.lostAnswers = nil
	inject.mu.Unlock()
	orig, ok, err := db.Original(t.Context(), "r", "u-Ana", "c1")
	if err != nil || !ok || orig.Seq != 1 || orig.Text != "hi" {
		t.Errorf("Original = %+v, %v, %v; want the message stored at seq 1", orig, ok, err)
	}
}

// A connection's two items are two writes: when the member item's fails,
// $connect fails and its lookup is taken back, so that nothing is left
// of it; a removal takes the member item first, so a broadcast never
// reaches a connection whose lookup a prune cannot find (the lookup left
// by a removal that failed halfway is for a sync's heal: the handler's
// TestHalfRemovedConnectionLeaves).
func TestConnectionIsStoredWholeOrNotAtAll(t *testing.T) {
	if endpoint == "" {
		t.Skip("integration test: needs DynamoDB Local (skipped with -short)")
	}
	_, names := dynamolocaltest.NewTables(t, endpoint)
	inject := &conflicts{refused: map[string]string{"PutItem": `"sk":{"S":"conn#c1"}`}}
	client := dynamodb.New(dynamodb.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient: inject, Retryer: app.NewRetryer()}, app.DynamoDBOptions(endpoint))
	db := store.New(client, store.Tables{Connections: names["ConnectionsTable"], Messages: names["MessagesTable"]})
	c := chat.Connection{ID: "c1", Room: "r", UserID: "u-Ana", Name: "Ana", ConnectedAt: db.Now()}
	if _, _, err := db.PutConnection(t.Context(), c); err == nil {
		t.Fatal("PutConnection with its member item refused: no error")
	}
	if _, err := db.Connection(t.Context(), "c1"); !errors.Is(err, chat.ErrNoConnection) {
		t.Errorf("the lookup of a connection whose member item failed: %v, want chat.ErrNoConnection", err)
	}
	conns, presence, err := db.Room(t.Context(), "r", 1)
	if err != nil || len(conns) != 0 || len(presence) != 0 {
		t.Errorf("room = %v, %v, %v; want nothing of c1", conns, presence, err)
	}

	inject.mu.Lock()
	inject.refused = map[string]string{"DeleteItem": `"sk":{"S":"conn"}`} // the lookup's delete
	inject.mu.Unlock()
	if _, joined, err := db.PutConnection(t.Context(), c); err != nil || !joined {
		t.Fatalf("PutConnection again = joined %v, %v; want stored, with the join due", joined, err)
	}
	if _, _, _, err := db.RemoveConnection(t.Context(), "c1"); err == nil {
		t.Fatal("RemoveConnection with the lookup's delete refused: no error")
	}
	if conns, _, err := db.Room(t.Context(), "r", 1); err != nil || len(conns) != 0 {
		t.Errorf("room after a half-done removal = %v, %v; want no member item left for broadcasts", conns, err)
	}
	if _, err := db.Connection(t.Context(), "c1"); err != nil {
		t.Errorf("the lookup of a half-removed connection: %v, want it still there", err)
	}
}

// A conditional write whose answer is lost is tried again by the SDK and
// finds its own write: storing a connection goes on as if it had been
// answered, and so does removing it (its leave is not lost).
func TestConnectionWritesWhoseAnswerIsLost(t *testing.T) {
	if endpoint == "" {
		t.Skip("integration test: needs DynamoDB Local (skipped with -short)")
	}
	_, names := dynamolocaltest.NewTables(t, endpoint)
	inject := &conflicts{lostOnce: map[string]string{"PutItem": `"sk":{"S":"conn"}`, "DeleteItem": `"sk":{"S":"conn"}`}}
	client := dynamodb.New(dynamodb.Options{Region: "us-east-1", HTTPClient: inject, Retryer: app.NewRetryer()}, app.DynamoDBOptions(endpoint))
	db := store.New(client, store.Tables{Connections: names["ConnectionsTable"], Messages: names["MessagesTable"]})
	c := chat.Connection{ID: "c1", Room: "r", UserID: "u-Ana", Name: "Ana", ConnectedAt: db.Now()}
	p, joined, err := db.PutConnection(t.Context(), c)
	if err != nil || !joined || !p.Online {
		t.Fatalf("PutConnection, its lookup's answer lost = %+v, joined %v, %v; want stored, Ana online with her join due", p, joined, err)
	}
	if conns, _, err := db.Room(t.Context(), "r", 1); err != nil || len(conns) != 1 {
		t.Errorf("room = %v, %v; want c1's member item", conns, err)
	}
	again := c
	again.ConnectedAt = c.ConnectedAt.Add(time.Second)
	if p, joined, err := db.PutConnection(t.Context(), again); err != nil || joined || p.Online {
		t.Errorf("a repeated $connect of c1 a second later = %+v, joined %v, %v; want nothing done", p, joined, err)
	}
	_, p, left, err := db.RemoveConnection(t.Context(), "c1")
	if err != nil || !left || p.Online {
		t.Errorf("RemoveConnection, its lookup's answer lost = %+v, left %v, %v; want Ana gone, her leave due", p, left, err)
	}
	if len(inject.lostOnce) != 0 {
		t.Errorf("answers not lost: %v", inject.lostOnce)
	}
}
