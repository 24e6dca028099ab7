package ledger

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePayment(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Payment
		err  error
		code string
	}{
		{"valid", `{"key":"k","from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{Key: "k", FromUID: 1, ToUID: 2, AmountMinor: 5}, nil, ""},
		{"escaped key", `{"key":"caf\u00e9 \ud83d\ude00","from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{Key: "café 😀", FromUID: 1, ToUID: 2, AmountMinor: 5}, nil, ""},
		{"replacement char is a char", `{"key":"k\ufffd","from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{Key: "k\ufffd", FromUID: 1, ToUID: 2, AmountMinor: 5}, nil, ""},
		{"newline in key", `{"key":"nl\nkey","from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{}, ErrInvalidKey, "invalid_key"},
		{"SOH in key", `{"key":"a\u0001","from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{}, ErrInvalidKey, "invalid_key"},
		{"DEL in key", `{"key":"a\u007f","from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{}, ErrInvalidKey, "invalid_key"},
		{"C1 control in key", `{"key":"a\u0085","from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{}, ErrInvalidKey, "invalid_key"},
		{"tab in key", "{\"key\":\"a\\tb\",\"from_uid\":1,\"to_uid\":2,\"amount_minor\":5}", Payment{}, ErrInvalidKey, "invalid_key"},
		{"slash in key", `{"key":"a/b","from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{}, ErrInvalidKey, "invalid_key"},
		{"invalid UTF-8 ff", "{\"key\":\"k\xff\",\"from_uid\":1,\"to_uid\":2,\"amount_minor\":5}", Payment{}, ErrInvalidKey, "invalid_key"},
		{"invalid UTF-8 fe", "{\"key\":\"k\xfe\",\"from_uid\":1,\"to_uid\":2,\"amount_minor\":5}", Payment{}, ErrInvalidKey, "invalid_key"},
		{"lone high surrogate", `{"key":"k\ud800","from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{}, ErrInvalidKey, "invalid_key"},
		{"lone low surrogate", `{"key":"k\udc00x","from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{}, ErrInvalidKey, "invalid_key"},
		{"escaped backslash then u", `{"key":"k\\ud800","from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{Key: `k\ud800`, FromUID: 1, ToUID: 2, AmountMinor: 5}, nil, ""},
		{"empty key", `{"key":"","from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{}, ErrMissingKey, "invalid_key"},
		{"key too long", `{"key":"` + strings.Repeat("k", KeyBytesMax+1) + `","from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{}, ErrKeyTooLong, "invalid_key"},
		{"key a number", `{"key":5,"from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{}, ErrMalformed, "bad_json"},
		{"missing amount", `{"key":"k","from_uid":1,"to_uid":2}`, Payment{}, ErrMissingField, "missing_field"},
		{"missing key", `{"from_uid":1,"to_uid":2,"amount_minor":5}`, Payment{}, ErrMissingField, "missing_field"},
		{"unknown field", `{"key":"k","from_uid":1,"to_uid":2,"amount_minor":5,"x":1}`, Payment{}, ErrMalformed, "bad_json"},
		{"array", `[]`, Payment{}, ErrMalformed, "bad_json"},
		{"cut short", `{"key":"k",`, Payment{}, ErrMalformed, "bad_json"},
		{"empty", ``, Payment{}, ErrMalformed, "bad_json"},
		{"two values", `{"key":"k","from_uid":1,"to_uid":2,"amount_minor":5}{}`, Payment{}, ErrMalformed, "bad_json"},
		{"fractional uid", `{"key":"k","from_uid":1.5,"to_uid":2,"amount_minor":5}`, Payment{}, ErrMalformed, "bad_json"},
		{"string amount", `{"key":"k","from_uid":1,"to_uid":2,"amount_minor":"5"}`, Payment{}, ErrMalformed, "bad_json"},
		{"negative amount", `{"key":"k","from_uid":1,"to_uid":2,"amount_minor":-5}`, Payment{}, ErrInvalidAmount, "invalid_amount"},
		{"negative uid", `{"key":"k","from_uid":-1,"to_uid":2,"amount_minor":5}`, Payment{}, ErrInvalidUID, "invalid_uid"},
		{"same account", `{"key":"k","from_uid":2,"to_uid":2,"amount_minor":5}`, Payment{}, ErrSameAccount, "same_account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePayment([]byte(tt.body))
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("ParsePayment() error = %v, want %v", err, tt.err)
			}
			if code := Code(err); code != tt.code {
				t.Errorf("Code() = %q, want %q", code, tt.code)
			}
			if err != nil && strings.Contains(err.Error(), "Go value") {
				t.Errorf("message speaks Go: %v", err)
			}
			if err == nil {
				if diff := cmp.Diff(got, tt.want); diff != "" {
					t.Errorf("ParsePayment() (-got +want):\n%s", diff)
				}
			}
		})
	}
}

func TestParseAccounts(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Account
		err  error
	}{
		{"valid", `{"accounts":[{"uid":10,"balance_minor":100},{"uid":11,"balance_minor":0}]}`, []Account{{10, 100}, {11, 0}}, nil},
		{"negative balance in second", `{"accounts":[{"uid":10,"balance_minor":100},{"uid":11,"balance_minor":-1}]}`, nil, ErrInvalidAmount},
		{"missing balance", `{"accounts":[{"uid":10,"balance_minor":100},{"uid":11}]}`, nil, ErrMissingField},
		{"unknown field in account", `{"accounts":[{"uid":10,"balance_minor":100},{"uid":11,"balance_minor":1,"x":1}]}`, nil, ErrMalformed},
		{"unknown top field", `{"accounts":[{"uid":10,"balance_minor":100}],"x":1}`, nil, ErrMalformed},
		{"duplicate uid", `{"accounts":[{"uid":10,"balance_minor":100},{"uid":10,"balance_minor":100}]}`, nil, ErrDuplicateAccount},
		{"empty", `{"accounts":[]}`, nil, ErrMissingField},
		{"none", `{}`, nil, ErrMissingField},
		{"too many", `{"accounts":[{"uid":1,"balance_minor":1},{"uid":2,"balance_minor":1},{"uid":3,"balance_minor":1}]}`, nil, ErrTooManyAccounts},
		{"negative uid", `{"accounts":[{"uid":-1,"balance_minor":1}]}`, nil, ErrInvalidUID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAccounts([]byte(tt.body), 2)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("ParseAccounts() error = %v, want %v", err, tt.err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("ParseAccounts() (-got +want):\n%s", diff)
			}
		})
	}
}

func FuzzParsePayment(f *testing.F) {
	f.Add([]byte(`{"key":"k","from_uid":1,"to_uid":2,"amount_minor":5}`))
	f.Add([]byte(`{"key":"k\ud800\udc00","from_uid":1,"to_uid":2,"amount_minor":5}`))
	f.Add([]byte("{\"key\":\"k\xff\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePayment(body)
		if err != nil {
			if Code(err) == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed an invalid payment: %v", err)
		}
	})
}
