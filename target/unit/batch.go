package unit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/redline-dev/redline/target/ledger"
)

// POST /v1/payments/batch carries the payments the router gathered for this unit while its
// previous batches were in flight: one request, one decode, one answer for many payments, and
// all of them in the writer's queue at once, so they share a group commit. Each payment is
// answered exactly as POST /v1/payments would have answered it alone (PROTOCOL.md).

// Bounds of a batch.
const (
	// BatchPaymentsMax bounds the payments of one batch request.
	BatchPaymentsMax = 256
	// batchBodyBytesMax bounds a batch's body: BatchPaymentsMax payments of the single bound.
	batchBodyBytesMax = BatchPaymentsMax*smallBodyBytesMax + 1<<10
)

type batchRequest struct {
	Payments []json.RawMessage `json:"payments"`
}

// BatchReply is one payment's answer inside a batch's: the status and body the single endpoint
// would have answered.
type BatchReply struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// BatchResponse is the body of a 200 answer to POST /v1/payments/batch, one reply per payment,
// in order.
type BatchResponse struct {
	Replies []BatchReply `json:"replies"`
}

func (s *server) handlePayBatch(w http.ResponseWriter, r *http.Request) {
	var req batchRequest
	if err := decode(w, r, batchBodyBytesMax, &req); err != nil {
		writeError(w, err, false, replicateResponse{})
		return
	}
	if len(req.Payments) == 0 {
		writeError(w, fmt.Errorf("payments is required: %w", errMissingField), false, replicateResponse{})
		return
	}
	if len(req.Payments) > BatchPaymentsMax {
		writeError(w, fmt.Errorf("%d payments, at most %d a batch: %w", len(req.Payments), BatchPaymentsMax, errBodyTooLarge), false, replicateResponse{})
		return
	}
	epoch, err := epochOf(r)
	if err != nil {
		writeError(w, err, false, replicateResponse{})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	results := make([]result, len(req.Payments))
	ops := make([]*op, len(req.Payments))
	for i, raw := range req.Payments {
		var (
			p   ledger.Payment
			err error
		)
		if len(raw) > smallBodyBytesMax {
			err = fmt.Errorf("payment over %d bytes: %w", smallBodyBytesMax, errBodyTooLarge)
		} else {
			p, err = ledger.ParsePayment(raw)
		}
		if err != nil {
			results[i].err = err
			continue
		}
		ops[i] = &op{kind: opPay, epoch: epoch, pay: p}
	}
	s.submitAll(ctx, ops, results)
	resp := BatchResponse{Replies: make([]BatchReply, len(results))}
	misdirected := 0
	for i, res := range results {
		if res.err == nil {
			res.err = s.awaitAck(ctx, res.seq)
		}
		resp.Replies[i] = batchReply(s.payReply(res))
		if resp.Replies[i].Status == http.StatusMisdirectedRequest {
			misdirected++
		}
	}
	if misdirected == len(results) {
		// Not this replica's to take (stale epoch, not primary): the router refreshes its table
		// and sends the whole batch again, as it does with a single payment.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMisdirectedRequest)
		_, _ = w.Write(append(resp.Replies[0].Body, '\n'))
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// batchReply is one answer of a batch's: status and the JSON of body.
func batchReply(status int, body any) BatchReply {
	raw, err := json.Marshal(body)
	if err != nil {
		return BatchReply{Status: http.StatusServiceUnavailable, Body: json.RawMessage(`{"error":{"code":"unavailable","message":"encode reply"}}`)}
	}
	return BatchReply{Status: status, Body: raw}
}

// submitAll hands every non-nil op to the writer before waiting for any, so that they can share
// a transaction, and stores each one's result in results.
func (s *server) submitAll(ctx context.Context, ops []*op, results []result) {
	queued := make([]bool, len(ops))
	for i, o := range ops {
		if o == nil {
			continue
		}
		o.done = make(chan result, 1)
		select {
		case s.ops <- o:
			queued[i] = true
		case <-ctx.Done():
			results[i] = result{err: fmt.Errorf("queue write: %w", ctx.Err())}
		}
	}
	for i, o := range ops {
		if !queued[i] {
			continue
		}
		select {
		case results[i] = <-o.done:
		case <-ctx.Done():
			results[i] = result{err: fmt.Errorf("await write: %w", ctx.Err())}
		}
	}
}
