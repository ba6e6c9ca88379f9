package samtemplate

import (
	"fmt"
	"strconv"
	"strings"
)

// Queue is an AWS::SQS::Queue, as a local SQS server is to create it.
type Queue struct {
	LogicalID         string
	VisibilityTimeout int    // seconds; SQS's default 30
	RetentionPeriod   int    // seconds; SQS's default 4 days
	DeadLetter        string // the logical id of its redrive target; "" for none
	MaxReceiveCount   int
}

// Queues returns the template's queues, dead-letter queues first.
func (t *Template) Queues() ([]Queue, error) {
	var out, targets []Queue
	for _, id := range t.ResourcesOfType("AWS::SQS::Queue") {
		q := Queue{LogicalID: id, VisibilityTimeout: 30, RetentionPeriod: 4 * 24 * 3600}
		var err error
		if n := t.property(id, "VisibilityTimeout"); n != nil {
			if q.VisibilityTimeout, err = t.intValue(valueOf(n)); err != nil {
				return nil, fmt.Errorf("%s VisibilityTimeout: %w", id, err)
			}
		}
		if n := t.property(id, "MessageRetentionPeriod"); n != nil {
			if q.RetentionPeriod, err = t.intValue(valueOf(n)); err != nil {
				return nil, fmt.Errorf("%s MessageRetentionPeriod: %w", id, err)
			}
		}
		if n := t.property(id, "RedrivePolicy"); n != nil {
			if q.DeadLetter, err = arnOf(valueOf(get(n, "deadLetterTargetArn"))); err != nil {
				return nil, fmt.Errorf("%s RedrivePolicy: %w", id, err)
			}
			if q.MaxReceiveCount, err = t.intValue(valueOf(get(n, "maxReceiveCount"))); err != nil {
				return nil, fmt.Errorf("%s RedrivePolicy maxReceiveCount: %w", id, err)
			}
			out = append(out, q)
			continue
		}
		targets = append(targets, q)
	}
	return append(targets, out...), nil
}

// SQSEventSource is an SQS event of a function: the event source mapping
// Lambda polls the queue with.
type SQSEventSource struct {
	Function                string
	Queue                   string // logical id
	BatchSize               int    // default 10
	MaximumConcurrency      int    // 0: not set (Lambda then scales to 1,250)
	ReportBatchItemFailures bool
}

// SQSEventSources returns the SQS events of the template's functions.
func (t *Template) SQSEventSources() ([]SQSEventSource, error) {
	var out []SQSEventSource
	for _, fn := range t.Functions() {
		for _, ev := range pairs(t.property(fn, "Events")) {
			if scalar(get(ev.value, "Type")) != "SQS" {
				continue
			}
			props := get(ev.value, "Properties")
			s := SQSEventSource{Function: fn, BatchSize: 10}
			var err error
			if s.Queue, err = arnOf(valueOf(get(props, "Queue"))); err != nil {
				return nil, fmt.Errorf("%s event %s Queue: %w", fn, ev.key, err)
			}
			if n := get(props, "BatchSize"); n != nil {
				if s.BatchSize, err = t.intValue(valueOf(n)); err != nil {
					return nil, fmt.Errorf("%s event %s BatchSize: %w", fn, ev.key, err)
				}
			}
			if n := get(get(props, "ScalingConfig"), "MaximumConcurrency"); n != nil {
				if s.MaximumConcurrency, err = t.intValue(valueOf(n)); err != nil {
					return nil, fmt.Errorf("%s event %s MaximumConcurrency: %w", fn, ev.key, err)
				}
			}
			for _, n := range items(get(props, "FunctionResponseTypes")) {
				s.ReportBatchItemFailures = s.ReportBatchItemFailures || scalar(n) == "ReportBatchItemFailures"
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// arnOf returns X of !GetAtt X.Arn.
func arnOf(v Value) (string, error) {
	id, ok := strings.CutSuffix(v.Text, ".Arn")
	if v.Tag != "!GetAtt" || !ok {
		return "", fmt.Errorf("want !GetAtt QUEUE.Arn")
	}
	return id, nil
}

// intValue is a literal or a parameter's value, as an integer.
func (t *Template) intValue(v Value) (int, error) {
	s := v.Literal
	if v.Ref != "" {
		p, ok := t.Parameter(v.Ref)
		if !ok {
			return 0, fmt.Errorf("!Ref %s is not a parameter with a value", v.Ref)
		}
		s = p
	} else if v.Tag != "" {
		return 0, fmt.Errorf("%s is not a literal or a parameter", v.Tag)
	}
	return strconv.Atoi(s)
}
