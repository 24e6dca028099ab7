package router

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// passedHeaders are the client's headers a unit sees (stress tagging and tracing).
var passedHeaders = []string{"X-Redline-Run", "Baggage", "Traceparent", "Tracestate"}

// passed returns the headers of r that a unit sees.
func passed(r *http.Request) http.Header {
	h := make(http.Header, len(passedHeaders)+1)
	for _, k := range passedHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	markPassed(r, h)
	return h
}

// forward sends a request to the primary of unit and returns its answer. It retries once: after
// a 421 (the router's epoch is stale, or the replica is no longer primary) with a fresh table,
// and after a transport error once the core zone has replaced the primary (waiting at most
// failoverWaitMax). Retrying a payment is safe: the unit applies a key at most once.
func (rt *router) forward(ctx context.Context, unit, method, path string, body []byte, in http.Header) reply {
	for attempt := 0; ; attempt++ {
		st := rt.table.current()
		if st == nil {
			return errorReply(http.StatusServiceUnavailable, "routing_unavailable", "no routing table yet")
		}
		u, ok := st.Units[unit]
		if !ok {
			return errorReply(http.StatusServiceUnavailable, "routing_unavailable", "unit "+unit+" is not in the routing table")
		}
		sent := time.Now()
		rep, err := rt.send(ctx, u.PrimaryAddr(), u.Epoch, method, path, body, in)
		if err == nil && rep.status != http.StatusMisdirectedRequest {
			return rep
		}
		if attempt > 0 || ctx.Err() != nil {
			if err != nil {
				return errorReply(http.StatusServiceUnavailable, "unit_unavailable", "unit "+unit+": "+err.Error())
			}
			return errorReply(http.StatusServiceUnavailable, "unit_unavailable", "unit "+unit+" refused the routing epoch twice: "+string(rep.body))
		}
		if err == nil { // 421
			rt.metrics.retries.WithLabelValues("misdirected").Inc()
			rt.table.refresh(ctx, sent)
			if now := rt.table.current(); now.Units[unit].Epoch == u.Epoch {
				// The core zone has not told the replica its new role yet: give it a moment.
				sleep(ctx, failoverWaitStep)
			}
			continue
		}
		rt.metrics.retries.WithLabelValues("unreachable").Inc()
		if !rt.awaitChange(ctx, unit, u.Epoch, sent) {
			return errorReply(http.StatusServiceUnavailable, "unit_unavailable", "unit "+unit+": "+err.Error())
		}
	}
}

// awaitChange re-reads the table until unit's epoch differs from epoch (a failover) and says
// whether it did within failoverWaitMax.
func (rt *router) awaitChange(ctx context.Context, unit string, epoch uint64, since time.Time) bool {
	deadline := time.Now().Add(failoverWaitMax)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		rt.table.refresh(ctx, since)
		if rt.table.current().Units[unit].Epoch != epoch {
			return true
		}
		since = time.Now()
		sleep(ctx, failoverWaitStep)
	}
	return false
}

// send is one call to a unit replica.
func (rt *router) send(ctx context.Context, addr string, epoch uint64, method, path string, body []byte, in http.Header) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for h, v := range in {
		req.Header[h] = v
	}
	req.Header.Set(EpochHeader, strconv.FormatUint(epoch, 10))
	resp, err := rt.http.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, replyBytesMax))
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, body: b}, nil
}

func (rt *router) metricsHandler() http.Handler {
	return promhttp.HandlerFor(rt.metrics.reg, promhttp.HandlerOpts{})
}

// errorBody is the JSON error shape of every target process.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func errorReply(status int, code, msg string) reply {
	var e errorBody
	e.Error.Code, e.Error.Message = code, msg
	b, _ := json.Marshal(e)
	return reply{status: status, body: append(b, '\n')}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	rep := errorReply(status, code, msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(rep.body)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// readBody reads a request body of at most limit bytes.
func readBody(r *http.Request, limit int64) ([]byte, *reply) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		rep := errorReply(http.StatusBadRequest, "bad_body", "read body: "+err.Error())
		return nil, &rep
	}
	if int64(len(b)) > limit {
		rep := errorReply(http.StatusRequestEntityTooLarge, "body_too_large", "body larger than "+strconv.FormatInt(limit, 10)+" bytes")
		return nil, &rep
	}
	return b, nil
}
