package unit

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/redline-dev/redline/target/ledger"
)

// FuzzPaymentRequest feeds arbitrary bodies to the payment decoder: it must never panic, every
// refusal must be a client error, and what it accepts must be a valid payment that survives a
// round trip.
func FuzzPaymentRequest(f *testing.F) {
	for _, s := range []string{
		`{"key":"k","from_uid":1,"to_uid":2,"amount_minor":5}`,
		`{"key":"k","from_uid":1,"to_uid":2}`,
		`{"key":"k","from_uid":1,"to_uid":2,"amount_minor":-5}`,
		`{"key":"k","from_uid":1e3,"to_uid":2,"amount_minor":5}`,
		`{"key":"k","from_uid":1,"to_uid":2,"amount_minor":5}{}`,
		`[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/v1/payments", bytes.NewReader(body))
		raw, err := readBody(w, r, smallBodyBytesMax)
		var p ledger.Payment
		if err == nil {
			p, err = ledger.ParsePayment(raw)
		}
		if err != nil {
			if status, code := classify(err); status/100 != 4 {
				t.Fatalf("refusal %v classified %d %s, want a 4xx", err, status, code)
			}
			return
		}
		if p.Validate() != nil {
			t.Fatalf("accepted an invalid payment %+v", p)
		}
		again, _ := json.Marshal(p)
		var back ledger.Payment
		if err := json.Unmarshal(again, &back); err != nil || back != p {
			t.Fatalf("round trip of %+v: %+v %v", p, back, err)
		}
	})
}

func TestClassifyEveryClientError(t *testing.T) {
	for _, err := range []error{errBadJSON, errMissingField, errBodyTooLarge, errBadEpoch, errBadPath,
		ledger.ErrMalformed, ledger.ErrMissingField, ledger.ErrInvalidKey, ledger.ErrMissingKey, ledger.ErrKeyTooLong, ledger.ErrInvalidUID, ledger.ErrInvalidAmount,
		ledger.ErrSameAccount, ledger.ErrUnknownAccount, ledger.ErrIdempotencyConflict, ledger.ErrAccountExists,
		ledger.ErrTooManyAccounts, ledger.ErrDuplicateAccount} {
		if status, _ := classify(errors.Join(err)); status/100 != 4 {
			t.Errorf("%v: status %d, want 4xx", err, status)
		}
	}
}
