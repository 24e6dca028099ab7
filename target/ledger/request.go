package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The business requests as they arrive (a payment, an account, a bulk of accounts) are decoded
// and validated here, once, for every process that takes them: the router refuses bad input
// before it forwards anything, and the units and the core zone refuse the same input with the
// same code (Code) and the same message.

// Errors of decoding a request. Each is a client error: the request changes nothing.
var (
	ErrMalformed    = errors.New("malformed request")
	ErrMissingField = errors.New("missing field")
	ErrInvalidKey   = errors.New("invalid idempotency key")
)

// codes maps the client errors of the business rules to their wire code; the first match wins.
var codes = []struct {
	err  error
	code string
}{
	{ErrMalformed, "bad_json"},
	{ErrMissingField, "missing_field"},
	{ErrMissingKey, "invalid_key"},
	{ErrKeyTooLong, "invalid_key"},
	{ErrInvalidKey, "invalid_key"},
	{ErrInvalidUID, "invalid_uid"},
	{ErrInvalidAmount, "invalid_amount"},
	{ErrSameAccount, "same_account"},
	{ErrTooManyAccounts, "too_many_accounts"},
	{ErrDuplicateAccount, "duplicate_account"},
}

// Code is the wire code of a request error of this package (each answered 400), "" for any
// other error.
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// ValidKey reports whether key may be an idempotency key: 1..KeyBytesMax bytes of valid UTF-8,
// no control character (it travels in logs and, as a path segment, in GET /v1/payments/{key}),
// and no '/' (many HTTP stacks refuse or split an escaped '/' in a path). One rule for every
// key, same-unit or cross-unit: a key that is accepted can be read back.
func ValidKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("validate key: %w", ErrMissingKey)
	case len(key) > KeyBytesMax:
		return fmt.Errorf("validate key of %d bytes: %w", len(key), ErrKeyTooLong)
	case !utf8.ValidString(key):
		return fmt.Errorf("validate key: not valid UTF-8: %w", ErrInvalidKey)
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return fmt.Errorf("validate key %q: control character %U: %w", key, r, ErrInvalidKey)
		}
		if r == '/' {
			return fmt.Errorf("validate key %q: holds '/': %w", key, ErrInvalidKey)
		}
	}
	return nil
}

// paymentRequest is the body of POST /v1/payments. The key stays raw until checked: encoding/json
// replaces invalid UTF-8 and lone surrogates with U+FFFD, so two different keys would decode
// to the same string.
type paymentRequest struct {
	Key         json.RawMessage `json:"key"`
	FromUID     *int64          `json:"from_uid"`
	ToUID       *int64          `json:"to_uid"`
	AmountMinor *int64          `json:"amount_minor"`
}

// ParsePayment decodes and validates the body of POST /v1/payments: one JSON object of exactly
// key, from_uid, to_uid and amount_minor, all present, the payment valid (Validate).
func ParsePayment(body []byte) (Payment, error) {
	var req paymentRequest
	if err := decodeStrict(body, &req); err != nil {
		return Payment{}, fmt.Errorf("parse payment: %w", err)
	}
	for _, f := range []struct {
		name    string
		present bool
	}{{"key", req.Key != nil}, {"from_uid", req.FromUID != nil}, {"to_uid", req.ToUID != nil}, {"amount_minor", req.AmountMinor != nil}} {
		if !f.present {
			return Payment{}, fmt.Errorf("parse payment: %s is required: %w", f.name, ErrMissingField)
		}
	}
	key, err := rawKey(req.Key)
	if err != nil {
		return Payment{}, fmt.Errorf("parse payment: %w", err)
	}
	p := Payment{Key: key, FromUID: *req.FromUID, ToUID: *req.ToUID, AmountMinor: *req.AmountMinor}
	return p, p.Validate()
}

// rawKey decodes a key's JSON string, refusing what decoding would replace with U+FFFD.
func rawKey(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", fmt.Errorf("key must be a string: %w", ErrMalformed)
	}
	if !utf8.Valid(raw) || loneSurrogate(raw) {
		return "", fmt.Errorf("key is not valid UTF-8: %w", ErrInvalidKey)
	}
	var key string
	if err := json.Unmarshal(raw, &key); err != nil {
		return "", fmt.Errorf("key must be a string: %w", ErrMalformed)
	}
	return key, nil
}

// loneSurrogate reports whether a JSON string literal escapes half of a UTF-16 surrogate pair
// alone (\ud800 without its low half): not a character.
func loneSurrogate(lit []byte) bool {
	s := string(lit)
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			continue
		}
		if s[i+1] != 'u' {
			i++ // an escaped character: never the start of another escape
			continue
		}
		r, ok := hex4(s, i+2)
		switch {
		case !ok:
			return true // decoding refuses it anyway
		case r >= 0xDC00 && r < 0xE000:
			return true
		case r >= 0xD800 && r < 0xDC00:
			if i+11 >= len(s) || s[i+6] != '\\' || s[i+7] != 'u' {
				return true
			}
			if lo, ok := hex4(s, i+8); !ok || lo < 0xDC00 || lo >= 0xE000 {
				return true
			}
			i += 11
		default:
			i += 5
		}
	}
	return false
}

// hex4 reads the 4 hex digits at s[i:].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s[i:i+4], 16, 32)
	return rune(n), err == nil
}

// accountRequest is one account of POST /v1/accounts or of a bulk.
type accountRequest struct {
	UID          *int64 `json:"uid"`
	BalanceMinor *int64 `json:"balance_minor"`
}

func (a accountRequest) account(what string) (Account, error) {
	if a.UID == nil {
		return Account{}, fmt.Errorf("parse %s: uid is required: %w", what, ErrMissingField)
	}
	if a.BalanceMinor == nil {
		return Account{}, fmt.Errorf("parse %s: balance_minor is required: %w", what, ErrMissingField)
	}
	acc := Account{UID: *a.UID, BalanceMinor: *a.BalanceMinor}
	if err := acc.Validate(); err != nil {
		return Account{}, fmt.Errorf("parse %s: %w", what, err)
	}
	return acc, nil
}

// ParseAccount decodes and validates the body of POST /v1/accounts: exactly uid and
// balance_minor, both present, the opening valid (Account.Validate).
func ParseAccount(body []byte) (Account, error) {
	var req accountRequest
	if err := decodeStrict(body, &req); err != nil {
		return Account{}, fmt.Errorf("parse account: %w", err)
	}
	return req.account("account")
}

// ParseAccounts decodes and validates the body of POST /v1/accounts/bulk: exactly
// {"accounts": [...]}, 1..countMax accounts, each as ParseAccount wants it, no uid twice. It
// refuses the whole body for any one bad account, so that nothing of it is applied anywhere.
func ParseAccounts(body []byte, countMax int) ([]Account, error) {
	var req struct {
		Accounts []json.RawMessage `json:"accounts"`
	}
	if err := decodeStrict(body, &req); err != nil {
		return nil, fmt.Errorf("parse accounts: %w", err)
	}
	switch {
	case len(req.Accounts) == 0:
		return nil, fmt.Errorf("parse accounts: accounts is required (1 or more): %w", ErrMissingField)
	case len(req.Accounts) > countMax:
		return nil, fmt.Errorf("parse accounts: %d accounts, at most %d: %w", len(req.Accounts), countMax, ErrTooManyAccounts)
	}
	out := make([]Account, 0, len(req.Accounts))
	seen := make(map[int64]struct{}, len(req.Accounts))
	for i, raw := range req.Accounts {
		what := fmt.Sprintf("accounts[%d]", i)
		var ar accountRequest
		if err := decodeStrict(raw, &ar); err != nil {
			return nil, fmt.Errorf("parse %s: %w", what, err)
		}
		a, err := ar.account(what)
		if err != nil {
			return nil, err
		}
		if _, ok := seen[a.UID]; ok {
			return nil, fmt.Errorf("parse %s: uid %d: %w", what, a.UID, ErrDuplicateAccount)
		}
		seen[a.UID] = struct{}{}
		out = append(out, a)
	}
	return out, nil
}

// decodeStrict decodes body, one JSON object with no field dst lacks, into dst; its error says
// what is wrong in the API's words (not Go's types) and wraps ErrMalformed.
func decodeStrict(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			return fmt.Errorf("data after the JSON object: %w", ErrMalformed)
		}
		return nil
	}
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	msg := "malformed JSON"
	switch {
	case errors.Is(err, io.EOF):
		msg = "empty body: want a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "the JSON object is cut short"
	case errors.As(err, &syntax):
		msg = fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		msg = "want a JSON object"
	case errors.As(err, &typ):
		msg = typ.Field + " must be " + wantOf(typ.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		msg = "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return fmt.Errorf("%s: %w", msg, ErrMalformed)
}

// wantOf says what a field of a business request holds.
func wantOf(field string) string {
	switch field {
	case "key":
		return "a string"
	case "accounts":
		return "an array of accounts"
	default:
		return "an integer (int64)"
	}
}
