package router

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Payments bound for the same unit travel together: each unit has a lane, a queue drained by
// laneSenders goroutines; a sender takes every payment queued at that moment (up to
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
	key  string
	body []byte
	done chan reply // buffered: the sender never waits for the handler
}

// lane is one unit's queue.
type lane struct {
	q chan *queued
}

// batcher owns the lanes and their senders.
type batcher struct {
	mu      sync.Mutex
	lanes   map[string]*lane
	cancels []context.CancelFunc // one per lane: cancels its forwards at close
	closed  bool
	stopped chan struct{} // closed by close: waiting handlers give up
	wg      sync.WaitGroup
}

func newBatcher() *batcher {
	return &batcher{lanes: map[string]*lane{}, stopped: make(chan struct{})}
}

// lane returns unit's lane, starting its senders on first use; nil once closed.
func (b *batcher) lane(rt *router, unit string) *lane {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	if l, ok := b.lanes[unit]; ok {
		return l
	}
	l := &lane{q: make(chan *queued, inflightMax)}
	b.lanes[unit] = l
	ctx, cancel := context.WithCancel(context.Background())
	b.cancels = append(b.cancels, cancel)
	for range laneSenders {
		// Each sender ends when close cancels ctx, after its batch in flight.
		b.wg.Go(func() { rt.sendBatches(ctx, unit, l) })
	}
	return l
}

// close stops every sender and waits for them; handlers still waiting answer 503.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.stopped)
		for _, cancel := range b.cancels {
			cancel()
		}
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// payBatched queues a payment in its unit's lane and waits for its answer.
func (rt *router) payBatched(ctx context.Context, unit, key string, body []byte) reply {
	l := rt.batches.lane(rt, unit)
	if l == nil {
		return errorReply(http.StatusServiceUnavailable, "unavailable", "router stopping")
	}
	p := &queued{key: key, body: body, done: make(chan reply, 1)}
	select {
	case l.q <- p:
		rt.metrics.batchQueued.Inc()
	default:
		return errorReply(http.StatusServiceUnavailable, "overloaded", "unit "+unit+": batch queue full")
	}
	t := time.NewTimer(batchWaitMax)
	defer t.Stop()
	select {
	case rep := <-p.done:
		return rep
	case <-ctx.Done():
		return errorReply(http.StatusServiceUnavailable, "unit_unavailable", "unit "+unit+": "+ctx.Err().Error())
	case <-rt.batches.stopped:
		return errorReply(http.StatusServiceUnavailable, "unavailable", "router stopping")
	case <-t.C:
		return errorReply(http.StatusServiceUnavailable, "unit_unavailable", "unit "+unit+": no answer in "+batchWaitMax.String())
	}
}

// sendBatches sends l's payments in batches until ctx ends.
func (rt *router) sendBatches(ctx context.Context, unit string, l *lane) {
	for {
		var first *queued
		select {
		case <-ctx.Done():
			return
		case first = <-l.q:
		}
		batch := []*queued{first}
	drain:
		for len(batch) < batchPaymentsMax {
			select {
			case p := <-l.q:
				batch = append(batch, p)
			default:
				break drain
			}
		}
		rt.metrics.batchQueued.Sub(float64(len(batch)))
		rt.sendBatch(ctx, unit, batch)
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
	// Go's transport retries a request on a broken kept-alive connection when it is marked
	// idempotent: a batch is, every payment in it carrying its key.
	h := http.Header{"Idempotency-Key": {batch[0].key}}
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
