package unit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/unit"
	"github.com/redline-dev/redline/target/unit/unittest"
)

// marked sends one request to a replica with the given extra headers and decodes a 2xx answer.
func marked(t *testing.T, method, url string, h http.Header, body, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return resp.StatusCode, string(raw)
}

func runHeader(run string) http.Header { return http.Header{shadow.Header: {run}} }

func balance(t *testing.T, addr string, h http.Header, uid int64) int64 {
	t.Helper()
	var a ledger.Account
	status, raw := marked(t, http.MethodGet, fmt.Sprintf("http://%s/v1/accounts/%d", addr, uid), h, nil, &a)
	if status != http.StatusOK {
		t.Fatalf("account %d (%v): %d %s", uid, h, status, raw)
	}
	return a.BalanceMinor
}

func shadowState(t *testing.T, addr string) (st struct {
	Ready  bool                        `json:"ready"`
	Leaks  int64                       `json:"leaks"`
	Writes map[string]map[string]int64 `json:"writes"`
}) {
	t.Helper()
	if status, raw := marked(t, http.MethodGet, "http://"+addr+"/internal/shadow", nil, nil, &st); status != http.StatusOK {
		t.Fatalf("shadow state: %d %s", status, raw)
	}
	return st
}

// TestShadowPlane: marked writes land in the replica's shadow database and its standby's (and
// survive a failover), production balances move only with unmarked payments, and every write
// is counted by plane.
func TestShadowPlane(t *testing.T) {
	p := unittest.StartPair(t, unittest.Options{})
	r1 := p.Primary()
	waitFor(t, "the shadow plane open", func() bool { return shadowState(t, r1.Addr()).Ready }) // until then marked calls get 503
	run := runHeader("run-1")
	accounts := []ledger.Account{{UID: 1, BalanceMinor: 1000}, {UID: 2, BalanceMinor: 1000}}
	if _, err := p.Client.Open(context.Background(), r1.Addr(), 1, accounts); err != nil {
		t.Fatal(err)
	}
	if status, raw := marked(t, http.MethodPost, "http://"+r1.Addr()+"/v1/accounts/bulk", run,
		map[string]any{"accounts": []ledger.Account{{UID: 1, BalanceMinor: 500}, {UID: 2, BalanceMinor: 500}, {UID: 3, BalanceMinor: 500}}}, nil); status != http.StatusOK {
		t.Fatalf("open shadow accounts: %d %s", status, raw)
	}
	for i := range 10 {
		pay := ledger.Payment{Key: fmt.Sprintf("s-%d", i), FromUID: 1, ToUID: 3, AmountMinor: 7}
		var o ledger.Outcome
		if status, raw := marked(t, http.MethodPost, "http://"+r1.Addr()+"/v1/payments", run, pay, &o); status != http.StatusOK || o.Status != ledger.StatusCommitted {
			t.Fatalf("marked payment: %d %s", status, raw)
		}
	}
	if status, o, err := p.Client.Pay(context.Background(), r1.Addr(), 1, ledger.Payment{Key: "p-1", FromUID: 1, ToUID: 2, AmountMinor: 3}); err != nil || status != http.StatusOK || o.Status != ledger.StatusCommitted {
		t.Fatalf("production payment: %d %+v %v", status, o, err)
	}

	if got := balance(t, r1.Addr(), nil, 1); got != 997 {
		t.Errorf("production balance of 1 = %d, want 997 (only the unmarked payment)", got)
	}
	if got := balance(t, r1.Addr(), run, 1); got != 430 {
		t.Errorf("shadow balance of 1 = %d, want 430", got)
	}
	if status, _ := marked(t, http.MethodGet, "http://"+r1.Addr()+"/v1/accounts/3", nil, nil, nil); status != http.StatusNotFound {
		t.Errorf("production account 3 (opened only in shadow): status %d, want 404", status)
	}
	if status, _ := marked(t, http.MethodGet, "http://"+r1.Addr()+"/v1/payments/s-1", nil, nil, nil); status != http.StatusNotFound {
		t.Errorf("marked payment s-1 read without the marker: status %d, want 404", status)
	}
	st := shadowState(t, r1.Addr())
	if !st.Ready || st.Leaks != 0 || st.Writes["shadow"]["payments"] != 10 || st.Writes["production"]["payments"] != 1 ||
		st.Writes["shadow"]["accounts"] != 3 || st.Writes["production"]["accounts"] != 2 {
		t.Errorf("primary's shadow state: %+v", st)
	}

	// The standby holds the shadow plane too: after a failover the marked reads still see it.
	r2 := p.Other(r1)
	p.WaitSynced(t, r2)
	r1.Kill()
	np := p.Failover(t)
	if np.Name != r2.Name {
		t.Fatalf("promoted %s, want %s", np.Name, r2.Name)
	}
	waitFor(t, "the shadow plane of the new primary", func() bool {
		status, _ := marked(t, http.MethodGet, "http://"+r2.Addr()+"/v1/accounts/3", run, nil, nil)
		return status == http.StatusOK
	})
	if got := balance(t, r2.Addr(), run, 3); got != 570 {
		t.Errorf("shadow balance of 3 after failover = %d, want 570", got)
	}
	if got := balance(t, r2.Addr(), nil, 2); got != 1003 {
		t.Errorf("production balance of 2 after failover = %d, want 1003", got)
	}
	if st := shadowState(t, r2.Addr()); st.Leaks != 0 || st.Writes["shadow"]["payments"] != 10 {
		t.Errorf("standby's shadow state: %+v", st)
	}
}

// TestShadowMarkerRefused: a malformed or inconsistent marker is refused with 400 and changes
// nothing, on either plane.
func TestShadowMarkerRefused(t *testing.T) {
	p := unittest.StartPair(t, unittest.Options{})
	addr := p.Primary().Addr()
	if _, err := p.Client.Open(context.Background(), addr, 1, []ledger.Account{{UID: 1, BalanceMinor: 100}, {UID: 2, BalanceMinor: 100}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		h    http.Header
	}{
		{"empty run", http.Header{shadow.Header: {""}}},
		{"bad characters", http.Header{shadow.Header: {"run 1"}}},
		{"header and baggage disagree", http.Header{shadow.Header: {"run-1"}, "Baggage": {"redline.run=run-2"}}},
		{"malformed baggage", http.Header{"Baggage": {"redline.run"}}},
		{"marked for production", http.Header{shadow.Header: {"run-1"}, shadow.PlaneHeader: {"production"}}},
		{"shadow plane without a run", http.Header{shadow.PlaneHeader: {"shadow"}}},
		{"unknown plane", http.Header{shadow.PlaneHeader: {"staging"}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pay := ledger.Payment{Key: fmt.Sprintf("bad-%d", i), FromUID: 1, ToUID: 2, AmountMinor: 5}
			status, raw := marked(t, http.MethodPost, "http://"+addr+"/v1/payments", tt.h, pay, nil)
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.Unmarshal([]byte(raw), &body)
			if status != http.StatusBadRequest || body.Error.Code != "bad_stress_marker" {
				t.Errorf("status %d %s, want 400 bad_stress_marker", status, raw)
			}
		})
	}
	if got := balance(t, addr, nil, 1); got != 100 {
		t.Errorf("production balance = %d after refused requests, want 100", got)
	}
	if st := shadowState(t, addr); st.Writes["shadow"]["payments"] != 0 || st.Writes["production"]["payments"] != 0 {
		t.Errorf("writes after refused requests: %+v", st.Writes)
	}
}

// TestShadowMisroute: with the defect, one marked write in a thousand reaches the production
// database, and each one is counted as a leak at once, on the primary and on the standby.
func TestShadowMisroute(t *testing.T) {
	p := unittest.StartPair(t, unittest.Options{Defects: []unit.Defect{unit.DefectShadowMisroute}})
	addr := p.Primary().Addr()
	run := runHeader("run-1")
	accounts := []ledger.Account{{UID: 1, BalanceMinor: 1_000_000}, {UID: 2, BalanceMinor: 0}}
	if _, err := p.Client.Open(context.Background(), addr, 1, accounts); err != nil {
		t.Fatal(err)
	}
	if status, raw := marked(t, http.MethodPost, "http://"+addr+"/v1/accounts/bulk", run, map[string]any{"accounts": accounts}, nil); status != http.StatusOK {
		t.Fatalf("open shadow accounts: %d %s", status, raw)
	}
	const n = 2000
	for i := range n {
		pay := ledger.Payment{Key: fmt.Sprintf("m-%d", i), FromUID: 1, ToUID: 2, AmountMinor: 1}
		if status, raw := marked(t, http.MethodPost, "http://"+addr+"/v1/payments", run, pay, nil); status != http.StatusOK {
			t.Fatalf("marked payment %d: %d %s", i, status, raw)
		}
	}
	// The bulk opening was marked write 1; payments 2..2001: the 1000th and 2000th leak.
	if got := balance(t, addr, nil, 2); got != 2 {
		t.Errorf("production balance of 2 = %d, want 2 (two misrouted payments)", got)
	}
	if st := shadowState(t, addr); st.Leaks != 2 {
		t.Errorf("primary leaks = %d, want 2", st.Leaks)
	}
	p.WaitSynced(t, p.Other(p.Primary()))
	if st := shadowState(t, p.Other(p.Primary()).Addr()); st.Leaks != 2 {
		t.Errorf("standby leaks = %d, want 2", st.Leaks)
	}
}
