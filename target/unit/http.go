package unit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/storage"
)

// Bounds of request bodies, by endpoint.
const (
	smallBodyBytesMax     = 4 << 10  // one payment, one account, a config
	bulkBodyBytesMax      = 2 << 20  // 10,000 accounts
	replicateBodyBytesMax = 64 << 20 // a batch or a gap fill
)

// EpochHeader carries the routing epoch the router forwarded a request under.
const EpochHeader = "X-Redline-Epoch"

// apiError is a refusal as it travels between processes:
// {"error": {"code": ..., "message": ...}} with the refusing replica's head beside it.
type apiError struct {
	status   int
	Code     string `json:"code"`
	Message  string `json:"message"`
	sentinel error
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.Code, e.Message) }
func (e *apiError) Unwrap() error { return e.sentinel }

type errorBody struct {
	Error   apiError `json:"error"`
	LastSeq int64    `json:"last_seq,omitempty"`
	Chain   string   `json:"chain,omitempty"`
}

// codes maps sentinels to their wire code and status; the first match wins.
var codes = []struct {
	err    error
	status int
	code   string
}{
	{errBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large"},
	{errBadJSON, http.StatusBadRequest, "bad_json"},
	{errMissingField, http.StatusBadRequest, "missing_field"},
	{ledger.ErrMalformed, http.StatusBadRequest, "bad_json"},
	{ledger.ErrMissingField, http.StatusBadRequest, "missing_field"},
	{ledger.ErrInvalidKey, http.StatusBadRequest, "invalid_key"},
	{errBadEpoch, http.StatusBadRequest, "bad_epoch"},
	{errBadPath, http.StatusBadRequest, "bad_path"},
	{errBadTCC, http.StatusBadRequest, "bad_transfer"},
	{errTCCNoTry, http.StatusConflict, "transfer_not_tried"},
	{errTCCDecided, http.StatusConflict, "transfer_decided"},
	{ledger.ErrMissingKey, http.StatusBadRequest, "invalid_key"},
	{ledger.ErrKeyTooLong, http.StatusBadRequest, "invalid_key"},
	{ledger.ErrInvalidUID, http.StatusBadRequest, "invalid_uid"},
	{ledger.ErrInvalidAmount, http.StatusBadRequest, "invalid_amount"},
	{ledger.ErrSameAccount, http.StatusBadRequest, "same_account"},
	{ledger.ErrTooManyAccounts, http.StatusBadRequest, "too_many_accounts"},
	{ledger.ErrDuplicateAccount, http.StatusBadRequest, "duplicate_account"},
	{ledger.ErrUnknownAccount, http.StatusNotFound, "unknown_account"},
	{storage.ErrNotFound, http.StatusNotFound, "not_found"},
	{ledger.ErrIdempotencyConflict, http.StatusConflict, "idempotency_conflict"},
	{ledger.ErrAccountExists, http.StatusConflict, "account_exists"},
	{ledger.ErrMoneyLimit, http.StatusConflict, "money_limit"},
	{ErrStaleEpoch, http.StatusMisdirectedRequest, "stale_epoch"},
	{ErrFenced, http.StatusMisdirectedRequest, "not_primary"},
	{ErrNotPrimary, http.StatusMisdirectedRequest, "not_primary"},
	{ErrNotStandby, http.StatusConflict, "not_standby"},
	{ErrSeqGap, http.StatusConflict, "seq_gap"},
	{ErrDiverged, http.StatusConflict, "diverged"},
	{ErrInvalidConfig, http.StatusConflict, "invalid_config"},
	{ErrStopped, http.StatusServiceUnavailable, "unavailable"},
}

// classify returns the status and code of err.
func classify(err error) (int, string) {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.status, c.code
		}
	}
	return http.StatusServiceUnavailable, "unavailable" // timeouts and failures: outcome unknown, retry with the key
}

// errorReply is the status and body that answer err.
func errorReply(err error) (int, errorBody) {
	status, code := classify(err)
	return status, errorBody{Error: apiError{Code: code, Message: err.Error()}}
}

// writeError answers err. Internal endpoints (replication, config) answer refusals of epoch as
// 409, as PROTOCOL.md says; business endpoints answer 421 so the router refreshes and retries.
func writeError(w http.ResponseWriter, err error, internal bool, head replicateResponse) {
	status, code := classify(err)
	if internal && status == http.StatusMisdirectedRequest {
		status = http.StatusConflict
	}
	writeJSON(w, status, errorBody{Error: apiError{Code: code, Message: err.Error()}, LastSeq: head.LastSeq, Chain: head.Chain})
}

func decodeAPIError(status int, raw []byte) error {
	var body errorBody
	if err := json.Unmarshal(raw, &body); err != nil || body.Error.Code == "" {
		return &apiError{status: status, Code: "http_" + strconv.Itoa(status), Message: string(raw)}
	}
	e := body.Error
	e.status = status
	switch e.Code {
	case "stale_epoch":
		e.sentinel = ErrStaleEpoch
	case "not_primary":
		e.sentinel = ErrNotPrimary
	case "not_standby":
		e.sentinel = ErrNotStandby
	case "diverged":
		e.sentinel = ErrDiverged
	case "seq_gap":
		return &gapError{head: replicateResponse{LastSeq: body.LastSeq, Chain: body.Chain}}
	}
	return &e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

// readBody reads a body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("read body over %d bytes: %w", limit, errBodyTooLarge)
	case err != nil:
		return nil, fmt.Errorf("read body: %w: %v", errBadJSON, err)
	}
	return b, nil
}

// decode reads one JSON value of at most limit bytes, strictly (unknown fields are errors).
func decode(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	return decodeFrom(http.MaxBytesReader(w, r.Body, limit), limit, dst)
}

// decodeFrom is decode on any reader; rd reports a *http.MaxBytesError beyond limit.
func decodeFrom(rd io.Reader, limit int64, dst any) error {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("data after the JSON value")
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooLarge):
		return fmt.Errorf("decode body over %d bytes: %w", limit, errBodyTooLarge)
	default:
		return fmt.Errorf("decode body: %w: %v", errBadJSON, err)
	}
}

func epochOf(r *http.Request) (int64, error) {
	h := r.Header.Get(EpochHeader)
	if h == "" {
		return 0, nil
	}
	e, err := strconv.ParseInt(h, 10, 64)
	if err != nil || e <= 0 {
		return 0, fmt.Errorf("parse %s %q: %w", EpochHeader, h, errBadEpoch)
	}
	return e, nil
}
