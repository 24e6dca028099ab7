package router

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/redline-dev/redline/target/lanes"
)

// Payments bound for the same unit travel together (package lanes): each unit has a lane drained
// by laneSenders goroutines; a sender takes every payment queued at that moment (up to
// batchPaymentsMax) into one POST /v1/payments/batch. While a unit is busy with earlier
// batches, payments gather, so the batches grow with the load and cost no wait when it is light.
// One request and one answer per batch instead of per payment: the router's client side and the
// unit's HTTP side were half of their CPU per payment (profiled under `make bench-target`).
// Payments that carry stress or tracing headers travel alone (the headers are per request).

// Bounds of batching.
const (
	batchPaymentsMax = 256 // payments per batch request (PROTOCOL.md)
	laneSenders      = 4   // batch requests in flight to one unit
	// batchWaitMax bounds a payment's wait for its batch's answer: a forward and its retry after
	// a failover.
	batchWaitMax = 2*forwardTimeout + failoverWaitMax
)

// queued is a payment waiting in a lane.
type queued struct {
	body []byte
	done chan reply // buffered: the sender never waits for the handler
}

// newBatches returns the router's lanes: one per unit, laneSenders batches in flight to each.
func (rt *router) newBatches() *lanes.Lanes[*queued] {
	return lanes.New(lanes.Config{Senders: laneSenders, BatchMax: batchPaymentsMax, Depth: inflightMax}, func(ctx context.Context, unit string, batch []*queued) {
		rt.metrics.batchQueued.Sub(float64(len(batch)))
		rt.sendBatch(ctx, unit, batch)
	})
}

// payBatched queues a payment in its unit's lane and waits for its answer.
func (rt *router) payBatched(ctx context.Context, unit string, body []byte) reply {
	p := &queued{body: body, done: make(chan reply, 1)}
	if !rt.batches.Add(unit, p) {
		select {
		case <-rt.batches.Stopped():
			return errorReply(http.StatusServiceUnavailable, "unavailable", "router stopping")
		default:
			return errorReply(http.StatusServiceUnavailable, "overloaded", "unit "+unit+": batch queue full")
		}
	}
	rt.metrics.batchQueued.Inc()
	t := time.NewTimer(batchWaitMax)
	defer t.Stop()
	select {
	case rep := <-p.done:
		return rep
	case <-ctx.Done():
		return errorReply(http.StatusServiceUnavailable, "unit_unavailable", "unit "+unit+": "+ctx.Err().Error())
	case <-rt.batches.Stopped():
		return errorReply(http.StatusServiceUnavailable, "unavailable", "router stopping")
	case <-t.C:
		return errorReply(http.StatusServiceUnavailable, "unit_unavailable", "unit "+unit+": no answer in "+batchWaitMax.String())
	}
}

// batchAnswer is the body of a unit's 200 answer to a batch.
type batchAnswer struct {
	Replies []struct {
		Status int             `json:"status"`
		Body   json.RawMessage `json:"body"`
	} `json:"replies"`
}

// sendBatch forwards one batch (with forward's retries) and hands each payment its answer.
func (rt *router) sendBatch(ctx context.Context, unit string, batch []*queued) {
	var body bytes.Buffer
	body.WriteString(`{"payments":[`)
	for i, p := range batch {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(p.body)
	}
	body.WriteString("]}")
	rt.metrics.batchPayments.Observe(float64(len(batch)))
	h := http.Header{}
	markIdempotent(h) // a batch is: every payment in it carries its key
	rep := rt.forward(ctx, unit, http.MethodPost, "/v1/payments/batch", body.Bytes(), h)
	var ans batchAnswer
	if rep.status == http.StatusOK {
		if err := json.Unmarshal(rep.body, &ans); err != nil || len(ans.Replies) != len(batch) {
			rep = errorReply(http.StatusServiceUnavailable, "unit_unavailable", "unit "+unit+": malformed batch answer")
		}
	}
	for i, p := range batch {
		switch {
		case rep.status != http.StatusOK:
			p.done <- rep
		case ans.Replies[i].Status == http.StatusMisdirectedRequest:
			// The unit's epoch moved under part of the batch: the outcome is unknown to the
			// client, who retries with the key, as after a failover.
			p.done <- errorReply(http.StatusServiceUnavailable, "unit_unavailable", "unit "+unit+" refused the routing epoch: "+string(ans.Replies[i].Body))
		default:
			p.done <- reply{status: ans.Replies[i].Status, body: append(ans.Replies[i].Body, '\n')}
		}
	}
}

// markIdempotent marks a request safe to replay: Go's transport retries one on a broken
// kept-alive connection when it carries an Idempotency-Key header. The header is present with
// no value, which the transport does not send: no client's input travels in a header, where a
// byte it refuses would fail the request (and every payment of a batch with it).
func markIdempotent(h http.Header) {
	h["Idempotency-Key"] = nil
}
