package metrics

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// A record is what the EMF specification asks for: a JSON object whose
// _aws member has a millisecond Timestamp and one CloudWatchMetrics
// directive (Namespace, Dimensions as a list of lists of member names,
// Metrics with Name and Unit), and whose members hold each dimension's
// value and each metric's number.
func TestRecordFollowsTheSpecification(t *testing.T) {
	var out bytes.Buffer
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	r := Recorder{Log: slog.New(slog.NewJSONHandler(&out, nil)), Namespace: "ServerlessChat/test", Now: func() time.Time { return at }}
	r.Record(t.Context(), map[string]string{CodeDimension: "rate_limited"}, Count(FramesRejected, 3),
		Metric{Name: BroadcastDuration, Value: 12.5, Unit: UnitMilliseconds})
	var rec struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Code              string
		FramesRejected    float64
		BroadcastDuration float64
	}
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	d := rec.AWS.CloudWatchMetrics
	if rec.AWS.Timestamp != at.UnixMilli() || len(d) != 1 || d[0].Namespace != "ServerlessChat/test" ||
		len(d[0].Dimensions) != 1 || len(d[0].Dimensions[0]) != 1 || d[0].Dimensions[0][0] != "Code" ||
		len(d[0].Metrics) != 2 || d[0].Metrics[0] != (struct{ Name, Unit string }{"FramesRejected", "Count"}) ||
		d[0].Metrics[1].Unit != "Milliseconds" {
		t.Errorf("directive = %+v", rec.AWS)
	}
	if rec.Code != "rate_limited" || rec.FramesRejected != 3 || rec.BroadcastDuration != 12.5 {
		t.Errorf("members = %+v", rec)
	}
	out.Reset()
	Recorder{}.Record(t.Context(), nil, Count(Connects, 1))
	Recorder{Log: r.Log}.Record(t.Context(), nil, Count(Connects, 1))
	if out.Len() != 0 {
		t.Errorf("a recorder without a namespace wrote %s", out.String())
	}
}

// Totals sum what is recorded, per metric and dimension value, whether or
// not the records are logged.
func TestTotals(t *testing.T) {
	totals := &Totals{}
	r := Recorder{Totals: totals}
	r.Record(t.Context(), nil, Count(MessagesStored, 1), Count(ConditionalWritesFailed, 2))
	r.Record(t.Context(), nil, Count(MessagesStored, 1), Count(ConditionalWritesFailed, 0))
	r.Record(t.Context(), map[string]string{CodeDimension: "rate_limited"}, Count(FramesRejected, 1))
	got := totals.Sums()
	want := map[string]float64{MessagesStored: 2, ConditionalWritesFailed: 2, FramesRejected + "/rate_limited": 1}
	if len(got) != len(want) {
		t.Errorf("sums = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
