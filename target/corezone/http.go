package corezone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/redline-dev/redline/target/profiling"
)

const (
	requestBytesMax = 4 << 10
	forwardTimeout  = 3 * time.Second
	// forwardedHeader marks a request a follower passed to the leader, so it is passed once only.
	forwardedHeader = "X-Redline-Forwarded"
)

// ChangeRequest is the body of POST /v1/units/{unit}/promote|drop-standby|add-standby.
type ChangeRequest struct {
	Epoch   uint64 `json:"epoch"`
	Replica string `json:"replica,omitempty"`
	Addr    string `json:"addr,omitempty"`
}

// Status is GET /v1/status: this replica's view of the group.
type Status struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	LeaderID    string `json:"leader_id"`
	Term        uint64 `json:"term"`
	Applied     uint64 `json:"applied_index"`
	Epoch       uint64 `json:"epoch"`
	Initialized bool   `json:"initialized"`
}

func (n *node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/routing", n.handleRouting)
	mux.HandleFunc("POST /v1/units/{unit}/{op}", n.handleChange)
	mux.HandleFunc("GET /v1/status", n.handleStatus)
	n.transferRoutes(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	profiling.Register(mux)
	return mux
}

// handleRouting answers the leader's applied state; a follower passes the request on.
func (n *node) handleRouting(w http.ResponseWriter, r *http.Request) {
	if n.raft.State() != raft.Leader {
		n.forward(w, r, nil)
		return
	}
	s := n.fsm.current()
	if !s.Initialized() {
		writeError(w, http.StatusServiceUnavailable, "not_initialized", "routing not initialized yet")
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (n *node) handleChange(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, requestBytesMax))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", err.Error())
		return
	}
	var req ChangeRequest
	if err := unmarshalStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_json", err.Error())
		return
	}
	op := Op(r.PathValue("op"))
	switch op {
	case OpPromote, OpDropStandby, OpAddStandby:
	default:
		writeError(w, http.StatusNotFound, "unknown_op", fmt.Sprintf("unknown operation %q", op))
		return
	}
	if n.raft.State() != raft.Leader {
		n.forward(w, r, body)
		return
	}
	u, err := n.apply(Command{Op: op, Unit: r.PathValue("unit"), Epoch: req.Epoch, Replica: req.Replica, Addr: req.Addr})
	if err != nil {
		status, code := errorStatus(err)
		writeError(w, status, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (n *node) handleStatus(w http.ResponseWriter, _ *http.Request) {
	_, leader := n.raft.LeaderWithID()
	s := n.fsm.current()
	writeJSON(w, http.StatusOK, Status{
		ID: n.cfg.ID, State: n.raft.State().String(), LeaderID: string(leader), Term: n.raft.CurrentTerm(),
		Applied: n.raft.AppliedIndex(), Epoch: s.Epoch, Initialized: s.Initialized(),
	})
}

// forward passes a request to the leader's HTTP API and copies its answer back.
func (n *node) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Header.Get(forwardedHeader) != "" {
		writeError(w, http.StatusServiceUnavailable, "not_leader", "forwarded to a replica that does not lead")
		return
	}
	addr := n.leaderHTTP()
	if addr == "" {
		writeError(w, http.StatusServiceUnavailable, "no_leader", "the core zone has no leader right now")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), forwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, "http://"+addr+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "forward", err.Error())
		return
	}
	for _, h := range carriedHeaders { // the plane and the trace of the request
		if v := r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	req.Header.Set(forwardedHeader, n.cfg.ID)
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.http.Do(req)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "leader_unreachable", err.Error())
		return
	}
	defer drain(resp.Body)
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, stateBytesMax))
}

// leaderHTTP is the HTTP address of the current leader, empty when none is known.
func (n *node) leaderHTTP() string {
	_, id := n.raft.LeaderWithID()
	for _, p := range n.cfg.Peers {
		if raft.ServerID(p.ID) == id && p.ID != n.cfg.ID {
			return p.HTTPAddr
		}
	}
	return ""
}

// errorStatus maps an error of the state machine or of Raft to an HTTP status and code.
func errorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, ErrStaleEpoch):
		return http.StatusConflict, "stale_epoch"
	case errors.Is(err, ErrStandbyNotOK):
		return http.StatusConflict, "standby_not_ok"
	case errors.Is(err, ErrStandbyPresent):
		return http.StatusConflict, "standby_present"
	case errors.Is(err, ErrUnknownUnit):
		return http.StatusNotFound, "unknown_unit"
	case errors.Is(err, ErrBadReplica), errors.Is(err, ErrBadCommand):
		return http.StatusBadRequest, "bad_request"
	case errors.Is(err, ErrNotInitialized):
		return http.StatusServiceUnavailable, "not_initialized"
	case errors.Is(err, ErrNotLeader):
		return http.StatusServiceUnavailable, "not_leader"
	default:
		return http.StatusInternalServerError, "internal"
	}
}

// errorBody is the JSON error shape of every target process.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
