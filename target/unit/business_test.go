package unit_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
	"github.com/redline-dev/redline/target/unit/unittest"
)

func seed(t *testing.T, p *unittest.Pair, n int, balance int64) {
	t.Helper()
	accounts := make([]ledger.Account, n)
	for i := range accounts {
		accounts[i] = ledger.Account{UID: int64(i), BalanceMinor: balance}
	}
	if _, err := p.Client.Open(context.Background(), p.Primary().Addr(), p.Epoch(), accounts); err != nil {
		t.Fatal(err)
	}
}

func TestPaymentIdempotency(t *testing.T) {
	for _, be := range sqldbtest.Backends() {
		t.Run(be.Name, func(t *testing.T) { paymentIdempotency(t, be.Server(t)) })
	}
}

func paymentIdempotency(t *testing.T, srv sqldb.Server) {
	p := unittest.StartPair(t, unittest.Options{Storage: srv})
	seed(t, p, 2, 1_000)
	ctx, addr := context.Background(), p.Primary().Addr()
	pay := ledger.Payment{Key: "k1", FromUID: 0, ToUID: 1, AmountMinor: 150}
	want := ledger.Outcome{Payment: pay, Status: ledger.StatusCommitted}
	for i := range 3 { // the first time and two retries: one charge
		status, got, err := p.Client.Pay(ctx, addr, p.Epoch(), pay)
		if err != nil || status != http.StatusOK {
			t.Fatalf("pay #%d: %d %v", i, status, err)
		}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Fatalf("pay #%d (-got +want):\n%s", i, diff)
		}
	}
	other := pay
	other.AmountMinor = 151
	if status, _, _ := p.Client.Pay(ctx, addr, p.Epoch(), other); status != http.StatusConflict {
		t.Fatalf("same key, other amount: status %d, want 409", status)
	}
	broke := ledger.Payment{Key: "k2", FromUID: 0, ToUID: 1, AmountMinor: 10_000}
	status, got, _ := p.Client.Pay(ctx, addr, p.Epoch(), broke)
	if status != http.StatusOK || got.Status != ledger.StatusFailed || got.Reason != ledger.ReasonInsufficientFunds {
		t.Fatalf("insufficient funds: %d %+v", status, got)
	}
	for uid, want := range map[int64]int64{0: 850, 1: 1_150} {
		for _, r := range []*unittest.Replica{p.Primary(), p.Other(p.Primary())} {
			if _, a, err := p.Client.Account(ctx, r.Addr(), uid); err != nil || a.BalanceMinor != want {
				t.Errorf("%s: account %d = %+v %v, want balance %d", r.Name, uid, a, err, want)
			}
		}
	}
	if status, o, _ := p.Client.Payment(ctx, addr, "k2"); status != http.StatusOK || o.Status != ledger.StatusFailed {
		t.Errorf("GET failed payment: %d %+v", status, o)
	}
	if status, _, _ := p.Client.Payment(ctx, addr, "nope"); status != http.StatusNotFound {
		t.Errorf("GET unknown payment: %d, want 404", status)
	}
	expectAllTrue(t, p)
}

func TestBadInputChangesNothing(t *testing.T) {
	p := unittest.StartPair(t, unittest.Options{})
	seed(t, p, 2, 100)
	ctx, addr := context.Background(), p.Primary().Addr()
	tests := []struct {
		name   string
		path   string
		body   []byte
		status int
		code   string
	}{
		{"malformed json", "/v1/payments", []byte(`{"key":`), 400, "bad_json"},
		{"unknown field", "/v1/payments", []byte(`{"key":"a","from_uid":0,"to_uid":1,"amount_minor":1,"x":1}`), 400, "bad_json"},
		{"two values", "/v1/payments", []byte(`{"key":"a","from_uid":0,"to_uid":1,"amount_minor":1}{}`), 400, "bad_json"},
		{"missing amount", "/v1/payments", []byte(`{"key":"a","from_uid":0,"to_uid":1}`), 400, "missing_field"},
		{"missing key", "/v1/payments", []byte(`{"from_uid":0,"to_uid":1,"amount_minor":1}`), 400, "missing_field"},
		{"empty key", "/v1/payments", []byte(`{"key":"","from_uid":0,"to_uid":1,"amount_minor":1}`), 400, "invalid_key"},
		{"slash in key", "/v1/payments", []byte(`{"key":"a/b","from_uid":0,"to_uid":1,"amount_minor":1}`), 400, "invalid_key"},
		{"newline in key", "/v1/payments", []byte(`{"key":"a\nb","from_uid":0,"to_uid":1,"amount_minor":1}`), 400, "invalid_key"},
		{"invalid UTF-8 key", "/v1/payments", []byte("{\"key\":\"a\xff\",\"from_uid\":0,\"to_uid\":1,\"amount_minor\":1}"), 400, "invalid_key"},
		{"batch of a bad key", "/v1/payments/batch", []byte(`{"payments":[{"key":"a\u0001","from_uid":0,"to_uid":1,"amount_minor":1}]}`), 200, ""},
		{"negative amount", "/v1/payments", []byte(`{"key":"a","from_uid":0,"to_uid":1,"amount_minor":-5}`), 400, "invalid_amount"},
		{"zero amount", "/v1/payments", []byte(`{"key":"a","from_uid":0,"to_uid":1,"amount_minor":0}`), 400, "invalid_amount"},
		{"same account", "/v1/payments", []byte(`{"key":"a","from_uid":1,"to_uid":1,"amount_minor":1}`), 400, "same_account"},
		{"unknown account", "/v1/payments", []byte(`{"key":"a","from_uid":0,"to_uid":99,"amount_minor":1}`), 404, "unknown_account"},
		{"oversized body", "/v1/payments", []byte(`{"key":"` + strings.Repeat("a", 8<<10) + `"}`), 413, "body_too_large"},
		{"string amount", "/v1/payments", []byte(`{"key":"a","from_uid":0,"to_uid":1,"amount_minor":"1"}`), 400, "bad_json"},
		{"negative opening", "/v1/accounts", []byte(`{"uid":5,"balance_minor":-1}`), 400, "invalid_amount"},
		{"reopen other balance", "/v1/accounts", []byte(`{"uid":0,"balance_minor":7}`), 409, "account_exists"},
		{"bulk duplicate", "/v1/accounts/bulk", []byte(`{"accounts":[{"uid":7,"balance_minor":1},{"uid":7,"balance_minor":1}]}`), 400, "duplicate_account"},
		{"bulk missing", "/v1/accounts/bulk", []byte(`{}`), 400, "missing_field"},
		{"more money than a unit may hold", "/v1/accounts/bulk", beyondMoneyLimit(), 409, "money_limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			status, raw, err := p.Client.Do(ctx, http.MethodPost, "http://"+addr+tt.path, tt.body, nil, p.Epoch())
			if err != nil {
				t.Fatal(err)
			}
			_ = jsonUnmarshal(raw, &body)
			if status != tt.status || body.Error.Code != tt.code {
				t.Errorf("got %d %q (%s), want %d %q", status, body.Error.Code, raw, tt.status, tt.code)
			}
		})
	}
	for uid := range int64(2) {
		if _, a, _ := p.Client.Account(ctx, addr, uid); a.BalanceMinor != 100 {
			t.Errorf("account %d = %d after bad requests, want 100", uid, a.BalanceMinor)
		}
	}
	if status, _, _ := p.Client.Payment(ctx, addr, "a"); status != http.StatusNotFound {
		t.Errorf("a rejected payment was recorded: %d", status)
	}
	if status, _, _ := p.Client.Payment(ctx, addr, "a/b"); status != http.StatusBadRequest {
		t.Errorf("GET of a key no payment can have: %d, want 400", status)
	}
	expectAllTrue(t, p)
}

// expectAllTrue requires every invariant true, online and offline.
func expectAllTrue(t *testing.T, p *unittest.Pair) {
	t.Helper()
	for mode, rep := range map[string]func(testing.TB) auditReport{"online": wrap(p.AuditOnline), "offline": wrap(p.AuditOffline)} {
		r := rep(t)
		for _, c := range r.Checks {
			if c.Verdict != ledger.True {
				t.Errorf("%s audit: %s = %s: %s", mode, c.Name, c.Verdict, c.Detail)
			}
		}
	}
}

// beyondMoneyLimit is a bulk opening of one account more at the largest opening balance than a
// unit may hold (ledger.OpenedMinorPerUnitMax): had it been applied, 1,023 payments into one of
// them would overflow its balance.
func beyondMoneyLimit() []byte {
	var b strings.Builder
	b.WriteString(`{"accounts":[`)
	for i := range ledger.OpenedMinorPerUnitMax/ledger.AmountMinorMax + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"uid":%d,"balance_minor":%d}`, 100+i, ledger.AmountMinorMax)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// TestOpenedMoneyAcrossRequests: the money limit holds over many separate openings, with
// payments between them (the writer carries the opened money from commit to commit instead of
// summing the accounts each time), and again on the standby once it is promoted.
func TestOpenedMoneyAcrossRequests(t *testing.T) {
	p := unittest.StartPair(t, unittest.Options{})
	seed(t, p, 2, 100)
	ctx := context.Background()
	open := func(uid int64) (int, string) {
		body := fmt.Appendf(nil, `{"uid":%d,"balance_minor":%d}`, uid, ledger.AmountMinorMax)
		status, raw, err := p.Client.Do(ctx, http.MethodPost, "http://"+p.Primary().Addr()+"/v1/accounts", body, nil, p.Epoch())
		if err != nil {
			t.Fatal(err)
		}
		return status, string(raw)
	}
	const fit = ledger.OpenedMinorPerUnitMax/ledger.AmountMinorMax - 1 // 200 opened already
	for i := range int64(fit) {
		if status, raw := open(100 + i); status != http.StatusOK {
			t.Fatalf("opening %d of %d: %d %s", i+1, fit, status, raw)
		}
		if _, _, err := p.Client.Pay(ctx, p.Primary().Addr(), p.Epoch(), ledger.Payment{Key: fmt.Sprint("k", i), FromUID: 0, ToUID: 1, AmountMinor: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if status, raw := open(100 + fit); status != http.StatusConflict || !strings.Contains(raw, "money_limit") {
		t.Errorf("one opening beyond the limit: %d %s, want 409 money_limit", status, raw)
	}
	p.Failover(t)
	if status, raw := open(200); status != http.StatusConflict || !strings.Contains(raw, "money_limit") {
		t.Errorf("beyond the limit on the promoted standby: %d %s, want 409 money_limit", status, raw)
	}
	expectAllTrue(t, p)
}
