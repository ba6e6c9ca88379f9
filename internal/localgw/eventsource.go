package localgw

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQS is the part of SQS an EventSource uses. *sqs.Client satisfies it.
type SQS interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// EventSource does locally what Lambda's SQS event source mapping does: it
// long-polls a queue and invokes a function with batches of its messages,
// at most MaxConcurrency invocations at once (the mapping's
// MaximumConcurrency), each on its own batch. A batch the function
// returns normally is deleted, but for the items it reports failed when
// ReportBatchItemFailures is set; a function error, or a response that is
// not one, deletes nothing. What
// is not deleted comes back after the queue's visibility timeout, and
// after its maxReceiveCount goes to its dead-letter queue: the queue
// server does that, as SQS does.
type EventSource struct {
	Client                  SQS
	QueueURL, QueueARN      string
	Function                string
	BatchSize               int
	MaxConcurrency          int
	ReportBatchItemFailures bool
	Invoker                 Invoker
	Log                     *slog.Logger

	receives, empty, invocations, failed, deletes atomic.Int64
}

// EventSourceStats counts an EventSource's calls: to SQS (ReceiveMessage,
// those that returned nothing, DeleteMessageBatch) and to the function
// (invocations, and the records they reported failed or that failed with
// the invocation).
type EventSourceStats struct {
	Receives, EmptyReceives, Deletes int64
	Invocations, FailedRecords       int64
}

// Stats returns the counts so far.
func (e *EventSource) Stats() EventSourceStats {
	return EventSourceStats{Receives: e.receives.Load(), EmptyReceives: e.empty.Load(), Deletes: e.deletes.Load(),
		Invocations: e.invocations.Load(), FailedRecords: e.failed.Load()}
}

// Run polls until ctx is done.
func (e *EventSource) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range max(e.MaxConcurrency, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				if !e.poll(ctx) {
					select { // the queue server is down: not a busy loop
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
				}
			}
		})
	}
	wg.Wait()
}

// poll receives one batch and hands it to the function; false if the
// queue could not be read.
func (e *EventSource) poll(ctx context.Context) bool {
	out, err := e.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &e.QueueURL,
		MaxNumberOfMessages: int32(max(min(e.BatchSize, 10), 1)), WaitTimeSeconds: 5,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
	if err != nil {
		if ctx.Err() == nil {
			e.Log.Error("event source: receive failed", "function", e.Function, "err", err)
		}
		return false
	}
	e.receives.Add(1)
	if len(out.Messages) == 0 {
		e.empty.Add(1)
		return true
	}
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(out.Messages))}
	for i, m := range out.Messages {
		ev.Records[i] = events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Body: aws.ToString(m.Body), Attributes: m.Attributes, EventSource: "aws:sqs", EventSourceARN: e.QueueARN, AWSRegion: "us-east-1"}
	}
	payload, _ := json.Marshal(ev) // plain strings and maps: cannot fail
	e.invocations.Add(1)
	res, err := e.Invoker.Invoke(ctx, e.Function, payload)
	if err != nil {
		e.failed.Add(int64(len(ev.Records)))
		e.Log.Warn("event source: invocation failed; the batch comes back after the visibility timeout",
			"function", e.Function, "messages", len(ev.Records), "err", err)
		return true
	}
	failed := map[string]bool{}
	if e.ReportBatchItemFailures {
		var resp events.SQSEventResponse
		if err := json.Unmarshal(res, &resp); err != nil && string(res) != "null" {
			// Lambda takes a response it cannot read as the whole batch failed.
			e.Log.Warn("event source: unreadable response; the batch comes back after the visibility timeout",
				"function", e.Function, "err", err)
			e.failed.Add(int64(len(ev.Records)))
			return true
		}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
	}
	e.failed.Add(int64(len(failed)))
	var done []types.DeleteMessageBatchRequestEntry
	for i, m := range out.Messages {
		if !failed[aws.ToString(m.MessageId)] {
			done = append(done, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	if len(done) > 0 {
		e.deletes.Add(1)
		if _, err := e.Client.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: &e.QueueURL, Entries: done}); err != nil {
			e.Log.Error("event source: delete failed; those messages come back", "function", e.Function, "err", err)
		}
	}
	return true
}
