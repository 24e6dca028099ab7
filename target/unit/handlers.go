package unit

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/profiling"
)

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/accounts", s.handleOpen)
	mux.HandleFunc("POST /v1/accounts/bulk", s.handleOpenBulk)
	mux.HandleFunc("GET /v1/accounts/{uid}", s.handleAccount)
	mux.HandleFunc("POST /v1/payments", s.handlePay)
	mux.HandleFunc("POST /v1/payments/batch", s.handlePayBatch)
	mux.HandleFunc("GET /v1/payments/{key}", s.handlePayment)
	mux.HandleFunc("POST /internal/replicate", s.handleReplicate)
	mux.HandleFunc("GET /internal/snapshot", s.handleSnapshot)
	mux.HandleFunc("GET /internal/log", s.handleLog)
	mux.HandleFunc("GET /internal/state", s.handleState)
	mux.HandleFunc("POST /internal/config", s.handleConfig)
	mux.HandleFunc("GET /internal/audit", s.handleAudit)
	mux.HandleFunc("POST /internal/tcc/batch", s.handleTCCBatch)
	mux.HandleFunc("POST /internal/tcc/{step}", s.handleTCC)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	profiling.Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

func (s *server) handleOpen(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, smallBodyBytesMax)
	if err == nil {
		var a ledger.Account
		if a, err = ledger.ParseAccount(body); err == nil {
			if s.openAccounts(w, r, []ledger.Account{a}) {
				writeJSON(w, http.StatusOK, a)
			}
			return
		}
	}
	writeError(w, err, false, replicateResponse{})
}

func (s *server) handleOpenBulk(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, bulkBodyBytesMax)
	if err == nil {
		var accounts []ledger.Account
		if accounts, err = ledger.ParseAccounts(body, ledger.AccountsPerBulkMax); err == nil {
			if s.openAccounts(w, r, accounts) {
				writeJSON(w, http.StatusOK, map[string]int{"accounts": len(accounts)})
			}
			return
		}
	}
	writeError(w, err, false, replicateResponse{})
}

// openAccounts runs an opening through the writer and waits for its replication; it answers
// the error itself and reports whether the caller should answer success.
func (s *server) openAccounts(w http.ResponseWriter, r *http.Request, accounts []ledger.Account) bool {
	epoch, err := epochOf(r)
	if err != nil {
		writeError(w, err, false, replicateResponse{})
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	res := s.submit(ctx, &op{kind: opOpen, epoch: epoch, accounts: accounts, run: r.Header.Get(shadow.Header)})
	if res.err == nil {
		res.err = s.awaitAck(ctx, res.seq)
	}
	if res.err != nil {
		writeError(w, res.err, false, replicateResponse{})
		return false
	}
	return true
}

// awaitAck waits until seq is replicated: a client is told only what the standby holds.
func (s *server) awaitAck(ctx context.Context, seq int64) error {
	if seq == 0 || s.cfg.has(DefectAsyncReplication) {
		return nil
	}
	return s.replicated.wait(ctx, seq)
}

func (s *server) handleAccount(w http.ResponseWriter, r *http.Request) {
	uid, err := strconv.ParseInt(r.PathValue("uid"), 10, 64)
	if err != nil || uid < 0 {
		writeError(w, fmt.Errorf("parse uid %q: %w", r.PathValue("uid"), errBadPath), false, replicateResponse{})
		return
	}
	if s.view().Role == ledger.RolePrimary {
		// Show no balance a failover could undo: wait until what is committed here is replicated.
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		err := s.awaitAck(ctx, s.committed.Load())
		cancel()
		if err != nil {
			writeError(w, err, false, replicateResponse{})
			return
		}
	}
	a, err := s.db.Account(r.Context(), uid)
	if err != nil {
		writeError(w, err, false, replicateResponse{})
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *server) handlePay(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, smallBodyBytesMax)
	if err != nil {
		writeError(w, err, false, replicateResponse{})
		return
	}
	p, err := ledger.ParsePayment(body)
	if err != nil {
		writeError(w, err, false, replicateResponse{})
		return
	}
	epoch, err := epochOf(r)
	if err != nil {
		writeError(w, err, false, replicateResponse{})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	res := s.submit(ctx, &op{kind: opPay, epoch: epoch, pay: p, run: r.Header.Get(shadow.Header)})
	if res.err == nil {
		res.err = s.awaitAck(ctx, res.seq)
	}
	status, reply := s.payReply(res)
	writeJSON(w, status, reply)
}

// payReply is what POST /v1/payments answers for a payment's result.
func (s *server) payReply(res result) (status int, body any) {
	if res.err != nil {
		return errorReply(res.err)
	}
	s.metrics.payments.WithLabelValues(string(res.outcome.Status)).Inc()
	return http.StatusOK, res.outcome
}

func (s *server) handlePayment(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if err := ledger.ValidKey(key); err != nil { // what no payment can have been written under
		writeError(w, err, false, replicateResponse{})
		return
	}
	rec, err := s.db.Payment(r.Context(), key)
	if err == nil && s.view().Role == ledger.RolePrimary {
		// Committed here but maybe not yet on the standby: answer only what survives a failover.
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		err = s.awaitAck(ctx, rec.Seq)
		cancel()
	}
	if err != nil {
		writeError(w, err, false, replicateResponse{})
		return
	}
	writeJSON(w, http.StatusOK, rec.Outcome)
}

// stateResponse is the body of GET /internal/state and of a successful config.
type stateResponse struct {
	Unit    string `json:"unit"`
	Replica string `json:"replica"`
	Role    string `json:"role"`
	Epoch   int64  `json:"epoch"`
	LastSeq int64  `json:"last_seq"`
	Standby string `json:"standby_addr,omitempty"`
}

func (s *server) state() stateResponse {
	v := s.view()
	return stateResponse{Unit: s.cfg.Unit, Replica: s.cfg.Replica, Role: v.Role, Epoch: v.Epoch,
		LastSeq: s.committed.Load(), Standby: v.StandbyAddr}
}

func (s *server) handleState(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.state())
}

func (s *server) handleConfig(w http.ResponseWriter, r *http.Request) {
	var req configRequest
	if err := decode(w, r, smallBodyBytesMax, &req); err != nil {
		writeError(w, err, true, replicateResponse{})
		return
	}
	res := s.submit(r.Context(), &op{kind: opConfig, cfg: &req})
	if res.err != nil {
		writeError(w, res.err, true, replicateResponse{})
		return
	}
	writeJSON(w, http.StatusOK, s.state())
}

func (s *server) handleReplicate(w http.ResponseWriter, r *http.Request) {
	var req replicateRequest
	if err := decode(w, r, replicateBodyBytesMax, &req); err != nil {
		writeError(w, err, true, replicateResponse{})
		return
	}
	res := s.submit(r.Context(), &op{kind: opReplicate, repl: &req})
	if res.err != nil {
		writeError(w, res.err, true, res.last)
		return
	}
	writeJSON(w, http.StatusOK, res.last)
}

// auditResponse is the body of GET /internal/audit: this replica's figures, and its chain at
// each seq asked for with ?chain_at=1,2,3.
type auditResponse struct {
	Replica ledger.Replica   `json:"replica"`
	Chains  map[int64]string `json:"chains"`
	// Outbox is the digest of this replica's outbox, answered alone with ?outbox_only=1.
	Outbox *ledger.Digest `json:"outbox,omitempty"`
}

// chainSeqsMax bounds the seqs one audit request may ask chains for.
const chainSeqsMax = 64

func (s *server) handleAudit(w http.ResponseWriter, r *http.Request) {
	var seqs []int64
	if q := r.URL.Query().Get("chain_at"); q != "" {
		for _, f := range strings.SplitN(q, ",", chainSeqsMax+1)[:min(chainSeqsMax, strings.Count(q, ",")+1)] {
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil || n < 0 {
				writeError(w, fmt.Errorf("parse chain_at %q: %w", f, errBadPath), true, replicateResponse{})
				return
			}
			seqs = append(seqs, n)
		}
	}
	if r.URL.Query().Get("outbox_only") == "1" {
		d, err := s.db.OutboxDigest(r.Context(), s.cfg.Unit)
		if err != nil {
			writeError(w, fmt.Errorf("read outbox: %w", err), true, replicateResponse{})
			return
		}
		writeJSON(w, http.StatusOK, auditResponse{Outbox: &d})
		return
	}
	if r.URL.Query().Get("chains_only") == "1" {
		chains, err := s.db.ChainsAt(r.Context(), seqs)
		if err != nil {
			writeError(w, fmt.Errorf("read chains: %w", err), true, replicateResponse{})
			return
		}
		writeJSON(w, http.StatusOK, auditResponse{Chains: chains})
		return
	}
	resp, err := s.auditFigures(r.Context(), seqs)
	if err != nil {
		writeError(w, fmt.Errorf("gather audit figures: %w", err), true, replicateResponse{})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// auditFigures gathers this replica's figures, with its live view and acknowledged head.
func (s *server) auditFigures(ctx context.Context, seqs []int64) (auditResponse, error) {
	fig, err := s.db.Figures(ctx)
	if err != nil {
		return auditResponse{}, err
	}
	chains, err := s.db.ChainsAt(ctx, seqs)
	if err != nil {
		return auditResponse{}, err
	}
	v := s.view()
	fig.Unit, fig.Replica, fig.Role, fig.Epoch = s.cfg.Unit, s.cfg.Replica, v.Role, v.Epoch
	fig.StaleWritesRefused = max(fig.StaleWritesRefused, s.staleRefused.Load())
	if head := s.replicated.head(); v.Role == ledger.RolePrimary && head > fig.AckedSeq {
		// The persisted acknowledged seq trails by a batch; the live one is exact.
		fig.AckedSeq = head
		if fig.AckedChain, err = s.db.ChainAt(ctx, head); err != nil {
			return auditResponse{}, err
		}
	}
	return auditResponse{Replica: fig, Chains: chains}, nil
}
