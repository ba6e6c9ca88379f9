package fanout

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// batches records the batches sent to it.
type batches struct{ got []*sqs.SendMessageBatchInput }

func (b *batches) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	b.got = append(b.got, in)
	return &sqs.SendMessageBatchOutput{}, nil
}

// A job's delay reaches SQS in whole seconds, rounded up, between none
// and SQS's 15 minutes.
func TestEnqueueDelays(t *testing.T) {
	sent := &batches{}
	q := &Queue{Client: sent, URL: "http://queue"}
	delays := []time.Duration{0, time.Second, 1500 * time.Millisecond, time.Hour, -time.Second}
	var jobs []Job
	for _, d := range delays {
		jobs = append(jobs, Job{Kind: KindPresence, Room: "r", Delay: d})
	}
	if failed, err := q.Enqueue(t.Context(), jobs); len(failed) != 0 || err != nil {
		t.Fatalf("Enqueue = %v, %v", failed, err)
	}
	if len(sent.got) != 1 {
		t.Fatalf("%d batches sent, want 1", len(sent.got))
	}
	for i, want := range []int32{0, 1, 2, 900, 0} {
		if got := sent.got[0].Entries[i].DelaySeconds; got != want {
			t.Errorf("job delayed %v: DelaySeconds %d, want %d", delays[i], got, want)
		}
	}
}
