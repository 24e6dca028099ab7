package unit_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/target/unit"
	"github.com/redline-dev/redline/target/unit/unittest"
)

// TestPaymentBatch sends one batch holding every kind of payment and checks that each is
// answered as the single endpoint answers it, and that the standby holds the batch's effects.
func TestPaymentBatch(t *testing.T) {
	p := unittest.StartPair(t, unittest.Options{})
	seed(t, p, 3, 1_000)
	ctx, addr := context.Background(), p.Primary().Addr()
	batch := []string{
		`{"key":"b1","from_uid":0,"to_uid":1,"amount_minor":100}`,
		`{"key":"b1","from_uid":0,"to_uid":1,"amount_minor":100}`,  // a retry inside the batch
		`{"key":"b1","from_uid":0,"to_uid":1,"amount_minor":999}`,  // same key, other fields
		`{"key":"b2","from_uid":1,"to_uid":2,"amount_minor":5000}`, // insufficient funds
		`{"key":"b3","from_uid":1,"to_uid":77,"amount_minor":1}`,   // unknown account
		`{"key":"b4","from_uid":1}`,                                // missing fields
		`{"key":"b5","from_uid":2,"to_uid":0,"amount_minor":10,"extra":1}`,
		`{"key":"b6","from_uid":2,"to_uid":0,"amount_minor":10}`,
	}
	body := []byte(`{"payments":[` + strings.Join(batch, ",") + `]}`)
	var got unit.BatchResponse
	status, raw, err := p.Client.Do(ctx, http.MethodPost, "http://"+addr+"/v1/payments/batch", body, &got, p.Epoch())
	if err != nil || status != http.StatusOK {
		t.Fatalf("batch: %d %s %v", status, raw, err)
	}
	type item struct {
		Status        int
		Code, Outcome string
	}
	summary := make([]item, len(got.Replies))
	for i, r := range got.Replies {
		var b struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
			Error  struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatalf("reply %d: %s: %v", i, r.Body, err)
		}
		summary[i] = item{r.Status, b.Error.Code, b.Status + "/" + b.Reason}
	}
	want := []item{
		{200, "", "committed/"},
		{200, "", "committed/"},
		{409, "idempotency_conflict", "/"},
		{200, "", "failed/insufficient_funds"},
		{404, "unknown_account", "/"},
		{400, "missing_field", "/"},
		{400, "bad_json", "/"},
		{200, "", "committed/"},
	}
	if diff := cmp.Diff(summary, want); diff != "" {
		t.Errorf("replies (-got +want):\n%s", diff)
	}
	// Acknowledged means on the standby: its balances already show b1 and b6.
	for uid, wantMinor := range map[int64]int64{0: 910, 1: 1100, 2: 990} {
		_, a, err := p.Client.Account(ctx, p.Other(p.Primary()).Addr(), uid)
		if err != nil || a.BalanceMinor != wantMinor {
			t.Errorf("standby account %d: %+v %v, want balance %d", uid, a, err, wantMinor)
		}
	}
}

func TestPaymentBatchRefusals(t *testing.T) {
	p := unittest.StartPair(t, unittest.Options{})
	seed(t, p, 2, 1_000)
	ctx := context.Background()
	tests := []struct {
		name       string
		addr       string
		body       string
		epoch      int64
		wantStatus int
		wantCode   string
	}{
		{"empty", p.Primary().Addr(), `{"payments":[]}`, 1, 400, "missing_field"},
		{"malformed", p.Primary().Addr(), `{"payments":[`, 1, 400, "bad_json"},
		{"too many", p.Primary().Addr(), `{"payments":[` + strings.Repeat(`{},`, unit.BatchPaymentsMax) + `{}]}`, 1, 413, "body_too_large"},
		{"to the standby", p.Other(p.Primary()).Addr(), `{"payments":[{"key":"s","from_uid":0,"to_uid":1,"amount_minor":1}]}`, 1, 421, "not_primary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, raw, err := p.Client.Do(ctx, http.MethodPost, "http://"+tt.addr+"/v1/payments/batch", []byte(tt.body), nil, tt.epoch)
			var e struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			_ = json.Unmarshal(raw, &e)
			if err != nil || status != tt.wantStatus || e.Error.Code != tt.wantCode {
				t.Errorf("got %d %s %v, want %d %s", status, raw, err, tt.wantStatus, tt.wantCode)
			}
		})
	}
}
