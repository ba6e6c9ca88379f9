package localgw

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// fakeQueue hands out its messages once, then nothing, and records what
// is deleted.
type fakeQueue struct {
	mu      sync.Mutex
	pending []types.Message
	deleted []string
}

func (q *fakeQueue) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.mu.Lock()
	n := min(int(in.MaxNumberOfMessages), len(q.pending))
	out := &sqs.ReceiveMessageOutput{Messages: q.pending[:n]}
	q.pending = q.pending[n:]
	q.mu.Unlock()
	if n == 0 { // a long poll that finds nothing
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return out, nil
}

func (q *fakeQueue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range in.Entries {
		q.deleted = append(q.deleted, *e.ReceiptHandle)
	}
	return &sqs.DeleteMessageBatchOutput{}, nil
}

// invokeFunc is an Invoker from a function.
type invokeFunc func(payload []byte) ([]byte, error)

func (f invokeFunc) Invoke(_ context.Context, _ string, payload []byte) ([]byte, error) {
	return f(payload)
}

// A batch is deleted but for the records the function reports failed; a
// failed invocation deletes nothing (SQS hands it back after the
// visibility timeout).
func TestEventSourceDeletesWhatTheFunctionDid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		respond func(ev events.SQSEvent) ([]byte, error)
		deleted []string
	}{
		{"one record failed", func(ev events.SQSEvent) ([]byte, error) {
			return json.Marshal(events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "m2"}}})
		}, []string{"r1", "r3"}},
		{"function error", func(events.SQSEvent) ([]byte, error) { return nil, errors.New("boom") }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &fakeQueue{}
			for _, id := range []string{"1", "2", "3"} {
				q.pending = append(q.pending, types.Message{MessageId: aws.String("m" + id), ReceiptHandle: aws.String("r" + id), Body: aws.String("{}")})
			}
			var mu sync.Mutex
			var got []string
			ctx, cancel := context.WithCancel(t.Context())
			es := &EventSource{Client: q, QueueURL: "q", Function: "F", BatchSize: 10, MaxConcurrency: 2, ReportBatchItemFailures: true,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Invoker: invokeFunc(func(payload []byte) ([]byte, error) {
					var ev events.SQSEvent
					if err := json.Unmarshal(payload, &ev); err != nil {
						t.Error(err)
					}
					mu.Lock()
					for _, r := range ev.Records {
						got = append(got, r.MessageId)
					}
					mu.Unlock()
					defer time.AfterFunc(50*time.Millisecond, cancel)
					return tc.respond(ev)
				})}
			es.Run(ctx)
			slices.Sort(got)
			if !slices.Equal(got, []string{"m1", "m2", "m3"}) {
				t.Errorf("the function got %v, want the three messages", got)
			}
			slices.Sort(q.deleted)
			if !slices.Equal(q.deleted, tc.deleted) {
				t.Errorf("deleted %v, want %v", q.deleted, tc.deleted)
			}
			if s := es.Stats(); s.Invocations != 1 || s.FailedRecords != int64(3-len(tc.deleted)) {
				t.Errorf("stats %+v", s)
			}
		})
	}
}
