package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chatgo/serverless-chat/internal/chat"
	"github.com/chatgo/serverless-chat/internal/fanout"
	"github.com/chatgo/serverless-chat/internal/metrics"
)

// broadcast sends an event to every live connection in a room but
// except. A room with at least Limits.ShardSize users online (and so
// several shards), with a Queue, is handed to the fan-out function a
// shard per job, and this invocation goes on at once; any other room is
// sent to here (every shard its connections may be in read at once).
// The connections found gone go to r.gone (not those still within
// ConnectGrace of their $connect).
func (h *Chat) broadcast(ctx context.Context, r *request, room, except string, event any) {
	// Read after the event was stored, strongly consistent: every shard
	// that anyone who connected before it may be in.
	head, err := h.Conns.PresenceHead(ctx, room)
	if err != nil {
		r.log.ErrorContext(ctx, "broadcast failed", "room", room, "event", eventType(event), "err", err)
		return
	}
	h.broadcastAt(ctx, r, room, head, except, event)
}

// broadcastAt is broadcast with the room's head the caller has read
// already: for what is not stored (typing, the count online), which a
// member who arrived since then need not get.
func (h *Chat) broadcastAt(ctx context.Context, r *request, room string, head chat.PresenceHead, except string, event any) {
	if head.Shards > 1 && head.Online >= int64(h.Limits.ShardSize) && h.Queue != nil {
		h.enqueue(ctx, r, room, head.Shards, except, event)
		return
	}
	conns, err := h.Conns.RoomConnections(ctx, room, head.Shards)
	if err != nil {
		r.log.ErrorContext(ctx, "broadcast failed", "room", room, "event", eventType(event), "err", err)
		return
	}
	h.broadcastTo(ctx, r, room, conns, except, event)
}

// broadcastTo is broadcast to connections the caller has read: those of
// the room when the event was stored, or later.
func (h *Chat) broadcastTo(ctx context.Context, r *request, room string, conns []chat.Connection, except string, event any) {
	payload, err := chat.Encode(event)
	if err != nil {
		r.log.ErrorContext(ctx, "encode broadcast failed", "err", err)
		return
	}
	h.send(ctx, r, room, conns, except, eventType(event), payload)
}

// send posts payload to conns but except, logs the one line of a
// broadcast (or of a shard's part of it) and records its metrics. The
// requesting connection gets its answer first if it is among them, or if
// the invocation has run a third of its time: a broadcast retrying its
// posts for its budget could then take it past API Gateway's integration
// timeout, and the response with it.
func (h *Chat) send(ctx context.Context, r *request, room string, conns []chat.Connection, except, event string, payload []byte) {
	ids := make([]string, 0, len(conns))
	answerFirst := time.Since(r.start) > h.Limits.InvocationTimeout/3
	for _, c := range conns {
		if c.ID != except {
			ids = append(ids, c.ID)
			answerFirst = answerFirst || c.ID == r.id
		}
	}
	if answerFirst {
		h.flush(ctx, r)
	}
	res := h.Fanout.Send(ctx, r.endpoint, ids, payload)
	r.log.InfoContext(ctx, "broadcast", "room", room, "event", event, "result", res)
	h.Metrics.Record(ctx, nil, metrics.Count(metrics.Recipients, res.Recipients), metrics.Count(metrics.PostsSent, res.Sent),
		metrics.Count(metrics.PostsGone, len(res.Gone)), metrics.Count(metrics.PostsThrottled, res.Throttled),
		metrics.Count(metrics.PostsFailed, res.Failed),
		metrics.Metric{Name: metrics.BroadcastDuration, Value: float64(res.Duration.Microseconds()) / 1000, Unit: metrics.UnitMilliseconds})
	r.gone = append(r.gone, h.prunable(ctx, r, conns, res.Gone)...)
}

// enqueue hands a broadcast to a room of several shards to the fan-out
// function, one job per shard. The shards the queue refuses are read and
// sent from here instead, all at once, so that a failing queue slows this
// invocation down (by one broadcast's budget) but loses nothing.
func (h *Chat) enqueue(ctx context.Context, r *request, room string, shards int, except string, event any) {
	payload, err := chat.Encode(event)
	if err != nil {
		r.log.ErrorContext(ctx, "encode broadcast failed", "err", err)
		return
	}
	if except != r.id {
		h.flush(ctx, r) // the requesting connection may be in a shard
	}
	jobs := make([]fanout.Job, shards)
	for k := range jobs {
		jobs[k] = fanout.Job{Endpoint: r.endpoint, Room: room, Shard: k, Except: except, Event: eventType(event), Payload: payload}
	}
	failed, err := h.Queue.Enqueue(ctx, jobs)
	r.log.InfoContext(ctx, "broadcast queued", "room", room, "event", eventType(event), "shards", shards, "refused", len(failed), "err", err)
	h.Metrics.Record(ctx, nil, metrics.Count(metrics.ShardsQueued, shards-len(failed)))
	if len(failed) == 0 {
		return
	}
	var conns []chat.Connection
	for _, j := range failed {
		c, err := h.Conns.ShardConnections(ctx, room, j.Shard)
		if err != nil {
			r.log.ErrorContext(ctx, "broadcast failed", "room", room, "shard", j.Shard, "event", eventType(event), "err", err)
			continue
		}
		conns = append(conns, c...)
	}
	h.send(ctx, r, room, conns, except, eventType(event), payload)
}

// Deliver serves the fan-out function: each record of the queue's event
// is one shard of a broadcast (enqueue). A shard that cannot be read is
// reported failed, and SQS hands it over again after its visibility
// timeout (bounded by the queue's redrive policy); posts that still fail
// after the sender's own retries are not, since clients recover a missed
// event by its seq. Connections found gone leave as on any route.
func (h *Chat) Deliver(ctx context.Context, ev events.SQSEvent) (resp events.SQSEventResponse, err error) {
	for _, rec := range ev.Records {
		if err := h.deliverRecord(ctx, rec); err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	return resp, nil
}

func (h *Chat) deliverRecord(ctx context.Context, rec events.SQSMessage) (err error) {
	r := &request{log: h.Log.With("route", "fanout", "messageId", rec.MessageId)}
	var j fanout.Job
	if err := json.Unmarshal([]byte(rec.Body), &j); err != nil {
		// Never deliverable: dropped, not retried.
		r.log.ErrorContext(ctx, "fan-out job unreadable; dropped", "err", err)
		return nil
	}
	r.endpoint = j.Endpoint
	var resp response
	func() {
		defer recoverTo(ctx, r.log, &resp)
		if j.Kind != fanout.KindPresence {
			err = h.deliver(ctx, r, j)
		} else if err = h.flushPresence(ctx, r, j.Room, time.UnixMilli(j.Due)); err != nil {
			r.log.ErrorContext(ctx, "presence flush failed", "room", j.Room, "err", err)
		}
	}()
	if resp.StatusCode == 500 { // recovered from a panic
		return fmt.Errorf("fan-out of message %s panicked", rec.MessageId)
	}
	if err != nil {
		return err
	}
	// The posts went out: removing the connections found gone does not
	// fail the record (SQS would post the whole shard again), and stops
	// short of the function's timeout (what is left, the next broadcast
	// finds).
	settleCtx, cancel := beforeDeadline(ctx, settleMargin)
	defer cancel()
	defer recoverTo(settleCtx, r.log, &resp)
	h.settle(settleCtx, r)
	return nil
}

// settleMargin is the time a fan-out invocation keeps after settling.
const settleMargin = 3 * time.Second

// beforeDeadline returns ctx ending margin before its deadline, if it has
// one.
func beforeDeadline(ctx context.Context, margin time.Duration) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, d.Add(-margin))
	}
	return context.WithCancel(ctx)
}

// deliver sends one shard of a broadcast.
func (h *Chat) deliver(ctx context.Context, r *request, j fanout.Job) error {
	conns, err := h.Conns.ShardConnections(ctx, j.Room, j.Shard)
	if err != nil {
		r.log.ErrorContext(ctx, "fan-out failed", "room", j.Room, "shard", j.Shard, "event", j.Event, "err", err)
		return err
	}
	h.send(ctx, r, j.Room, conns, j.Except, j.Event, j.Payload)
	return nil
}

// prunable returns the ids in gone that are past their connect grace.
func (h *Chat) prunable(ctx context.Context, r *request, conns []chat.Connection, gone []string) []string {
	if len(gone) == 0 {
		return nil
	}
	isGone := make(map[string]bool, len(gone))
	for _, id := range gone {
		isGone[id] = true
	}
	now := h.Now()
	var out []string
	for _, c := range conns {
		switch {
		case !isGone[c.ID]:
		case now.Sub(c.ConnectedAt) < h.ConnectGrace:
			r.log.DebugContext(ctx, "410 from a connection still in its $connect; kept", "kept", c.ID)
		default:
			out = append(out, c.ID)
		}
	}
	return out
}
