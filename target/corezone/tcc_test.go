package corezone

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/ledger"
)

// fakeLegs is a fake participant's transfer legs: a try of a debit over fundsMinor is refused,
// a step with other fields than its leg's is a 409 idempotency_conflict, the first misdirect
// answers of each step are 421 (a failover the coordinator must outlast), a batch with a cancel
// is answered cancelDelay late.
type fakeLegs struct {
	legs        map[string]string   // key/leg → state
	fields      map[string][3]int64 // key/leg → from, to, amount
	misdirect   int
	fundsMinor  int64
	cancelDelay time.Duration
}

func (f *fakeReplica) tccRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /internal/tcc/batch", func(w http.ResponseWriter, r *http.Request) {
		var req stepBatch
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Steps) == 0 || r.Header.Get("X-Redline-Epoch") == "" {
			writeError(w, http.StatusBadRequest, "bad_transfer", "malformed steps")
			return
		}
		f.mu.Lock()
		delay := f.tcc.cancelDelay
		f.mu.Unlock()
		for _, step := range req.Steps {
			if step.Step == "cancel" {
				time.Sleep(delay)
				break
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		l := &f.tcc
		l.init()
		if l.misdirect > 0 {
			l.misdirect--
			writeError(w, http.StatusMisdirectedRequest, "not_primary", "failing over")
			return
		}
		type reply struct {
			Status int `json:"status"`
			Body   any `json:"body"`
		}
		replies := make([]reply, len(req.Steps))
		for i, step := range req.Steps {
			replies[i].Status, replies[i].Body = l.step(step)
		}
		writeJSON(w, http.StatusOK, map[string]any{"replies": replies})
	})
}

func (l *fakeLegs) init() {
	if l.legs == nil {
		l.legs, l.fields, l.fundsMinor = map[string]string{}, map[string][3]int64{}, 1_000
	}
}

// step applies one step to the fake's legs and returns its answer.
func (l *fakeLegs) step(req stepRequest) (int, any) {
	id, state := req.Key+"/"+req.Leg, ""
	have, fields := l.legs[id], [3]int64{req.FromUID, req.ToUID, req.AmountMinor}
	if have != "" && l.fields[id] != fields {
		return http.StatusConflict, errorOf(ReasonConflict, "another transfer's leg has the key")
	}
	switch step := req.Step; {
	case step == "try" && have != "":
		state = have
	case step == "try" && req.Leg == ledger.LegDebit && req.AmountMinor > l.fundsMinor:
		return http.StatusOK, legAnswer{State: "refused", Reason: "insufficient_funds"}
	case step == "try":
		state = ledger.LegTried
	case step == "confirm" && have != ledger.LegTried && have != ledger.LegConfirmed:
		return http.StatusConflict, map[string]any{"error": map[string]string{"code": "transfer_decided", "message": "confirm of " + have}}
	case step == "confirm":
		state = ledger.LegConfirmed
	case have == ledger.LegConfirmed:
		return http.StatusConflict, map[string]any{"error": map[string]string{"code": "transfer_decided", "message": "cancel of a confirmed leg"}}
	default:
		state = ledger.LegCancelled
	}
	l.legs[id], l.fields[id] = state, fields
	return http.StatusOK, legAnswer{State: state}
}

// hold puts a leg of another transfer (a former leader's try, an old transfer) under key.
func (f *fakeReplica) hold(key, leg, state string, fromUID, toUID, amountMinor int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tcc.init()
	f.tcc.legs[key+"/"+leg], f.tcc.fields[key+"/"+leg] = state, [3]int64{fromUID, toUID, amountMinor}
}

func (f *fakeReplica) leg(key, leg string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tcc.legs[key+"/"+leg]
}

// post sends a JSON body to a core replica and returns the status and the answer.
func post(t *testing.T, addr, path, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startTransfers starts a 3-replica group over two fake units, a and b, and returns them, the
// group and its leader's HTTP address once the routing is initialized.
func startTransfers(t *testing.T) (map[string]fakeUnit, *group, string) {
	t.Helper()
	units, seeds := fakeUnits(t, "a", "b")
	g := startGroup(t, seeds)
	waitFor(t, 10*time.Second, "routing", func() bool { return g.routing(t).Initialized() })
	waitFor(t, 10*time.Second, "a leader", func() bool { return g.leader(t) >= 0 })
	return units, g, g.peers[g.leader(t)].HTTPAddr
}

// TestTransfersThroughTheAPI drives cross-unit payments through a real 3-replica group and
// fake participants: bad input refused, a transfer confirmed on both legs across a primary's
// refusals, one over the funds cancelled on both before its answer (the debit by an empty
// rollback), retries
// answered the first outcome, the figures the audit reads.
func TestTransfersThroughTheAPI(t *testing.T) {
	units, g, leader := startTransfers(t)
	bad := []struct {
		name, body string
		status     int
		code       string // the same as a unit's for the same input (ledger.Code)
	}{
		{"malformed", `{"key":`, http.StatusBadRequest, "bad_json"},
		{"an array", `[{"key":"k"}]`, http.StatusBadRequest, "bad_json"},
		{"unknown field", `{"key":"k","from_uid":0,"to_uid":1,"amount_minor":5,"x":1}`, http.StatusBadRequest, "bad_json"},
		{"missing amount", `{"key":"k","from_uid":0,"to_uid":1}`, http.StatusBadRequest, "missing_field"},
		{"zero amount", `{"key":"k","from_uid":0,"to_uid":1,"amount_minor":0}`, http.StatusBadRequest, "invalid_amount"},
		{"control character in key", `{"key":"k\u0001","from_uid":0,"to_uid":1,"amount_minor":5}`, http.StatusBadRequest, "invalid_key"},
		{"one unit", `{"key":"k","from_uid":0,"to_uid":2,"amount_minor":5}`, http.StatusUnprocessableEntity, "same_unit"},
	}
	for _, b := range bad {
		status, body := post(t, leader, "/v1/transfers", b.body)
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal([]byte(body), &e)
		if status != b.status || e.Error.Code != b.code {
			t.Errorf("%s: %d %s, want %d %s", b.name, status, body, b.status, b.code)
		}
		if strings.Contains(e.Error.Message, "Go value") {
			t.Errorf("%s: the message speaks Go: %s", b.name, e.Error.Message)
		}
	}
	units["a"].r1.mu.Lock()
	units["a"].r1.tcc.misdirect = 3 // the payer's primary refuses the first tries
	units["a"].r1.mu.Unlock()
	ok := `{"key":"t1","from_uid":0,"to_uid":1,"amount_minor":5}`
	for i := range 2 { // the first time and a retry
		status, body := post(t, leader, "/v1/transfers", ok)
		var o ledger.Outcome
		if err := json.Unmarshal([]byte(body), &o); status != http.StatusOK || err != nil || o.Status != ledger.StatusCommitted {
			t.Fatalf("transfer #%d: %d %s", i, status, body)
		}
	}
	// The answer follows the decision; the legs are confirmed after it.
	waitFor(t, 5*time.Second, "both legs of t1 confirmed", func() bool {
		return units["a"].r1.leg("t1", ledger.LegDebit) == ledger.LegConfirmed && units["b"].r1.leg("t1", ledger.LegCredit) == ledger.LegConfirmed
	})
	if status, body := post(t, leader, "/v1/transfers", `{"key":"t1","from_uid":0,"to_uid":1,"amount_minor":6}`); status != http.StatusConflict {
		t.Errorf("the key with another amount: %d %s, want 409", status, body)
	}
	// The stress plane neither reads nor reuses a production transfer's key.
	marked := http.Header{shadow.Header: {"run-1"}}
	if status, body, err := g.client.TransferOutcome(context.Background(), "t1", marked); err != nil || status != http.StatusNotFound {
		t.Errorf("a marked read of a production transfer: %d %s %v, want 404", status, body, err)
	}
	if status, body, err := g.client.Transfer(context.Background(), []byte(ok), marked); err != nil || status != http.StatusConflict {
		t.Errorf("a marked transfer under a production transfer's key: %d %s %v, want 409", status, body, err)
	}
	units["a"].r1.mu.Lock()
	units["a"].r1.tcc.cancelDelay = 200 * time.Millisecond // the payer's unit is slow to release
	units["a"].r1.mu.Unlock()
	status, body := post(t, leader, "/v1/transfers", `{"key":"t2","from_uid":0,"to_uid":1,"amount_minor":5000}`)
	var o ledger.Outcome
	if err := json.Unmarshal([]byte(body), &o); status != http.StatusOK || err != nil || o.Status != ledger.StatusFailed || o.Reason != ledger.ReasonInsufficientFunds {
		t.Errorf("over the funds: %d %s, want failed insufficient_funds", status, body)
	}
	// A refused payment's legs are cancelled before its answer: nothing stays reserved.
	if a, b := units["a"].r1.leg("t2", ledger.LegDebit), units["b"].r1.leg("t2", ledger.LegCredit); a != ledger.LegCancelled || b != ledger.LegCancelled {
		t.Errorf("t2 answered with its legs %q and %q, want both cancelled", a, b)
	}
	waitFor(t, 5*time.Second, "both transfers done", func() bool {
		var f ledger.CoreTransfers
		err := g.client.call(context.Background(), http.MethodGet, "/v1/transfers", nil, &f)
		return err == nil && f.Begun == 2 && f.Confirmed.Count == 1 && f.Cancelled.Count == 1 && f.Unfinished == 0 && f.Undecided == 0
	})
	for key, want := range map[string]int{"t1": http.StatusOK, "t2": http.StatusOK, "nope": http.StatusNotFound} {
		if status, body, err := g.client.TransferOutcome(context.Background(), key, nil); err != nil || status != want {
			t.Errorf("GET %s: %d %s %v, want %d", key, status, body, err, want)
		}
	}
	// A participant asking about a transfer never begun gets a presumed abort.
	if status, body := post(t, leader, "/v1/transfers/ghost/resolve", `{"from_uid":0,"to_uid":1,"amount_minor":3}`); status != http.StatusOK || !bytes.Contains([]byte(body), []byte(`"cancelled"`)) {
		t.Errorf("resolve of an unknown transfer: %d %s, want cancelled", status, body)
	}
	waitFor(t, 5*time.Second, "the presumed abort cancelled on both legs", func() bool {
		return units["a"].r1.leg("ghost", ledger.LegDebit) == ledger.LegCancelled && units["b"].r1.leg("ghost", ledger.LegCredit) == ledger.LegCancelled
	})
	// A shadow plane's participant says its plane: the presumed abort counts in that plane's
	// figures, not production's.
	if status, body := post(t, leader, "/v1/transfers/ghost2/resolve?plane=shadow", `{"from_uid":0,"to_uid":1,"amount_minor":3}`); status != http.StatusOK || !bytes.Contains([]byte(body), []byte(`"cancelled"`)) {
		t.Errorf("resolve of an unknown shadow transfer: %d %s, want cancelled", status, body)
	}
	if status, body := post(t, leader, "/v1/transfers/ghost3/resolve?plane=mars", `{"from_uid":0,"to_uid":1,"amount_minor":3}`); status != http.StatusBadRequest {
		t.Errorf("resolve for an unknown plane: %d %s, want 400", status, body)
	}
	var prod, shad ledger.CoreTransfers
	if err := g.client.call(context.Background(), http.MethodGet, "/v1/transfers", nil, &prod); err != nil {
		t.Fatal(err)
	}
	if err := g.client.call(context.Background(), http.MethodGet, "/v1/transfers?plane=shadow", nil, &shad); err != nil {
		t.Fatal(err)
	}
	if prod.Cancelled.Count != 2 || shad.Cancelled.Count != 1 {
		t.Errorf("cancelled: production %d (want t2 and ghost), shadow %d (want ghost2)", prod.Cancelled.Count, shad.Cancelled.Count)
	}
}

// TestKeyOfAnotherTransfer: a client reuses a key with other fields while a participant holds a
// leg of the key's first transfer (tried under a former leader, or finished long ago and
// forgotten by the registry). Held by the payer's unit: the request is a 409, decided nowhere,
// and the first transfer is left to its participant's question, which cancels it under its own
// fields. Held by the payee's unit: the request is refused and cancelled, the payer's
// reservation released, and the payee's leg, another transfer's, left alone. Either way nothing
// stays unfinished.
func TestKeyOfAnotherTransfer(t *testing.T) {
	units, g, leader := startTransfers(t)
	payer, payee := units["a"].r1, units["b"].r1

	payer.hold("held", ledger.LegDebit, ledger.LegTried, 0, 1, 7)
	if status, body := post(t, leader, "/v1/transfers", `{"key":"held","from_uid":0,"to_uid":1,"amount_minor":5}`); status != http.StatusConflict || !bytes.Contains([]byte(body), []byte(ReasonConflict)) {
		t.Errorf("a key whose debit the payer holds for another transfer: %d %s, want 409 %s", status, body, ReasonConflict)
	}
	if status, body, err := g.client.TransferOutcome(context.Background(), "held", nil); err != nil || status != http.StatusNotFound {
		t.Errorf("the refused request was recorded: %d %s %v, want 404", status, body, err)
	}
	if got := payer.leg("held", ledger.LegDebit); got != ledger.LegTried {
		t.Errorf("the other transfer's debit is %q, want it left tried", got)
	}
	// Its participant asks: presumed abort, under its own fields.
	if status, body := post(t, leader, "/v1/transfers/held/resolve", `{"from_uid":0,"to_uid":1,"amount_minor":7}`); status != http.StatusOK || !bytes.Contains([]byte(body), []byte(`"cancelled"`)) {
		t.Errorf("resolve of the other transfer: %d %s, want cancelled", status, body)
	}
	waitFor(t, 5*time.Second, "the other transfer's debit cancelled", func() bool { return payer.leg("held", ledger.LegDebit) == ledger.LegCancelled })

	payee.hold("held2", ledger.LegCredit, ledger.LegConfirmed, 0, 1, 9)
	if status, body := post(t, leader, "/v1/transfers", `{"key":"held2","from_uid":0,"to_uid":1,"amount_minor":5}`); status != http.StatusConflict || !bytes.Contains([]byte(body), []byte(ReasonConflict)) {
		t.Errorf("a key whose credit the payee holds for another transfer: %d %s, want 409 %s", status, body, ReasonConflict)
	}
	if a, b := payer.leg("held2", ledger.LegDebit), payee.leg("held2", ledger.LegCredit); a != ledger.LegCancelled || b != ledger.LegConfirmed {
		t.Errorf("held2 answered with its debit %q and the other transfer's credit %q, want cancelled and confirmed", a, b)
	}
	waitFor(t, 5*time.Second, "every transfer done", func() bool {
		var f ledger.CoreTransfers
		err := g.client.call(context.Background(), http.MethodGet, "/v1/transfers", nil, &f)
		return err == nil && f.Cancelled.Count == 2 && f.Unfinished == 0 && f.Undecided == 0
	})
}
