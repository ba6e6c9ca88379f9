package metrics

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Names of the metrics the functions emit.
const (
	MessagesStored    = "MessagesStored"    // new messages stored
	ChangesStored     = "ChangesStored"     // edits, deletes and reactions stored
	DuplicateMessages = "DuplicateMessages" // retries answered with the original
	// ConditionalWritesFailed counts, per new-message frame stored or not,
	// the conditional writes that failed and the transactions that
	// conflicted on the way: contention, which should stay near 0.
	ConditionalWritesFailed = "ConditionalWritesFailed"
	SeqsSkipped             = "SeqsSkipped"    // seqs taken and not used (each gets a tombstone and a skip event)
	FramesRejected          = "FramesRejected" // frames answered with an error, by Code (rate_limited among them)
	Connects                = "Connects"       // connections stored by $connect
	Disconnects             = "Disconnects"    // connections removed ($disconnect or a prune)
	Recipients              = "BroadcastRecipients"
	PostsSent               = "PostsSent"
	PostsGone               = "PostsGone"
	PostsThrottled          = "PostsThrottled"
	PostsFailed             = "PostsFailed"
	BroadcastDuration       = "BroadcastDuration" // milliseconds
	ShardsQueued            = "ShardsQueued"      // fan-out jobs handed to the queue (a shard of a large room's broadcast each)
	PresenceFlushLag        = "PresenceFlushLag"  // milliseconds a burst's joins and leaves went out after they were due (its job waited in the queue)
)

// Names lists every metric above; CodeDimension is the dimension of
// FramesRejected.
var Names = []string{MessagesStored, ChangesStored, DuplicateMessages, ConditionalWritesFailed, SeqsSkipped, FramesRejected, Connects, Disconnects, Recipients,
	PostsSent, PostsGone, PostsThrottled, PostsFailed, BroadcastDuration, ShardsQueued, PresenceFlushLag}

// CodeDimension is the dimension FramesRejected is counted by.
const CodeDimension = "Code"

// Units of the specification.
const (
	UnitCount        = "Count"
	UnitMilliseconds = "Milliseconds"
)

// Metric is one value of one metric.
type Metric struct {
	Name  string
	Value float64
	Unit  string
}

// Recorder writes EMF records to a logger. The zero value writes nothing.
type Recorder struct {
	Log       *slog.Logger
	Namespace string
	Now       func() time.Time // default time.Now
	// Totals, when set, also sums every metric recorded (a local run has
	// no CloudWatch to read them from).
	Totals *Totals
}

// Totals sums the metrics recorded, by name and dimension values. It is
// safe for concurrent use.
type Totals struct {
	mu   sync.Mutex
	sums map[string]float64
}

// Sums returns the sums so far, keyed by the metric's name and, after a
// slash each, its dimensions' values in the order of their names (e.g.
// "FramesRejected/rate_limited").
func (t *Totals) Sums() map[string]float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.sums)
}

func (t *Totals) add(keys []string, dims map[string]string, ms []Metric) {
	suffix := ""
	for _, k := range keys {
		suffix += "/" + dims[k]
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sums == nil {
		t.sums = map[string]float64{}
	}
	for _, m := range ms {
		t.sums[m.Name+suffix] += m.Value
	}
}

// Record writes the metrics as one EMF record under the dimensions given
// (name → value), with the context's request id if the logger adds it.
func (r Recorder) Record(ctx context.Context, dims map[string]string, ms ...Metric) {
	keys := slices.Sorted(maps.Keys(dims))
	if r.Totals != nil {
		r.Totals.add(keys, dims, ms)
	}
	if r.Log == nil || r.Namespace == "" || len(ms) == 0 {
		return
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	defs := make([]map[string]string, len(ms))
	attrs := make([]slog.Attr, 0, 1+len(dims)+len(ms))
	for i, m := range ms {
		defs[i] = map[string]string{"Name": m.Name, "Unit": m.Unit}
	}
	attrs = append(attrs, slog.Any("_aws", map[string]any{
		"Timestamp": now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  r.Namespace,
			"Dimensions": [][]string{keys},
			"Metrics":    defs,
		}},
	}))
	for _, k := range keys {
		attrs = append(attrs, slog.String(k, dims[k]))
	}
	for _, m := range ms {
		attrs = append(attrs, slog.Float64(m.Name, m.Value))
	}
	r.Log.LogAttrs(ctx, slog.LevelInfo, "metrics", attrs...)
}

// Count is a metric that counts.
func Count(name string, n int) Metric { return Metric{Name: name, Value: float64(n), Unit: UnitCount} }
