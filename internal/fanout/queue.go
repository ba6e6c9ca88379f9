package fanout

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"
)

// Job is one shard of a broadcast, as the fan-out function gets it, or
// (Kind KindPresence) a room's joins and leaves held back to go out
// together.
type Job struct {
	Kind     string `json:"kind,omitempty"`
	Endpoint string `json:"endpoint"` // the Management API to post through
	Room     string `json:"room"`
	Shard    int    `json:"shard"`
	Except   string `json:"except,omitempty"` // the connection not to post to (the sender)
	Event    string `json:"event"`            // its type, for the log
	Payload  []byte `json:"payload"`          // the frame, as posted
	Due      int64  `json:"due,omitempty"`    // a presence flush's due time (Unix ms), as the room's head has it
	// Delay keeps the job from the fan-out function this long (SQS's
	// DelaySeconds: whole seconds, rounded up, at most 15 minutes).
	Delay time.Duration `json:"-"`
}

// KindPresence is the kind of a job that tells a room the joins and
// leaves held back since it was last told.
const KindPresence = "presence"

// SQS is the part of SQS a Queue uses. *sqs.Client satisfies it.
type SQS interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Queue sends jobs to an SQS queue. Its client's retryer retries a
// throttled or failed call, bounded and jittered.
type Queue struct {
	Client SQS
	URL    string
}

// SQS's bounds on one SendMessageBatch: 10 entries, and their bodies
// together at most 256 KiB (the limit before SQS raised it to 1 MiB in
// 2025, which some regions and local servers still have).
const (
	batchEntries = 10
	batchBytes   = 256 << 10
	maxDelay     = 15 * time.Minute
)

// Enqueue sends jobs, a few batches at once, and returns those SQS did
// not take (err says why, for the first batch that failed as a whole).
func (q *Queue) Enqueue(ctx context.Context, jobs []Job) (failed []Job, err error) {
	var batches [][]Job
	size := 0
	for _, j := range jobs {
		n := len(j.Payload)*4/3 + 512 // base64, and the rest of the body
		last := len(batches) - 1
		if last < 0 || len(batches[last]) == batchEntries || size+n > batchBytes {
			batches = append(batches, nil)
			last, size = last+1, 0
		}
		batches[last] = append(batches[last], j)
		size += n
	}
	refused := make([][]Job, len(batches))
	errs := make([]error, len(batches))
	var g errgroup.Group
	g.SetLimit(8)
	for i, b := range batches {
		g.Go(func() error {
			refused[i], errs[i] = q.send(ctx, b)
			return nil
		})
	}
	g.Wait()
	for i := range batches {
		failed = append(failed, refused[i]...)
		if err == nil {
			err = errs[i]
		}
	}
	return failed, err
}

// send sends one batch and returns the jobs it did not take.
func (q *Queue) send(ctx context.Context, jobs []Job) ([]Job, error) {
	entries := make([]types.SendMessageBatchRequestEntry, len(jobs))
	for i, j := range jobs {
		body, err := json.Marshal(j)
		if err != nil {
			return jobs, fmt.Errorf("encode fan-out job: %w", err)
		}
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body)),
			DelaySeconds: int32((min(max(j.Delay, 0), maxDelay) + time.Second - 1) / time.Second)}
	}
	out, err := q.Client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &q.URL, Entries: entries})
	if err != nil {
		return jobs, fmt.Errorf("send %d fan-out jobs of room %q: %w", len(jobs), jobs[0].Room, err)
	}
	var refused []Job
	for _, f := range out.Failed {
		i, _ := strconv.Atoi(*f.Id)
		refused = append(refused, jobs[i])
	}
	return refused, nil
}
