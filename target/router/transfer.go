package router

import (
	"context"
	"net/http"
	"time"
)

// Cross-unit payments: the router passes a payment whose accounts live in two units to the core
// zone, which coordinates it (try / confirm / cancel, PROTOCOL.md) and answers like a unit would.
const (
	// transferTimeout bounds the core zone's answer (it answers within 4 s).
	transferTimeout = 6 * time.Second
	// coreConnsMax bounds the connections to one core replica for transfers.
	coreConnsMax = 256
)

// transfer forwards a cross-unit payment to the core zone's leader and returns its answer.
func (rt *router) transfer(ctx context.Context, body []byte, h http.Header) reply {
	ctx, cancel := context.WithTimeout(ctx, transferTimeout)
	defer cancel()
	status, b, err := rt.core.Transfer(ctx, body, h)
	if err != nil {
		rt.metrics.retries.WithLabelValues("core_unavailable").Inc()
		return errorReply(http.StatusServiceUnavailable, "core_unavailable", "the core zone cannot coordinate the payment now: "+err.Error())
	}
	return reply{status: status, body: b}
}

// transferOutcome asks the core zone for a cross-unit payment's outcome.
func (rt *router) transferOutcome(ctx context.Context, key string, h http.Header) reply {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	status, b, err := rt.core.TransferOutcome(ctx, key, h)
	if err != nil {
		return errorReply(http.StatusServiceUnavailable, "core_unavailable", "the core zone cannot say now: "+err.Error())
	}
	return reply{status: status, body: b}
}
