package verify

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseKey(t *testing.T) {
	tests := []struct {
		in        string
		want      Key
		canonical string
	}{
		{"http_req_duration", Key{Metric: HTTPReqDuration}, "http_req_duration"},
		{"http_req_duration{phase:headroom}", Key{Metric: HTTPReqDuration, Phase: "headroom"}, "http_req_duration{phase:headroom}"},
		{"http_reqs{op:pay}", Key{Metric: HTTPReqs, Op: "pay"}, "http_reqs{op:pay}"},
		{"http_reqs{ op : pay , phase : peak }", Key{Metric: HTTPReqs, Phase: "peak", Op: "pay"}, "http_reqs{phase:peak,op:pay}"},
		{"payments_lost", Key{Metric: PaymentsLost}, "payments_lost"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseKey(tt.in)
			if err != nil {
				t.Fatalf("ParseKey(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseKey(%q) (-want +got):\n%s", tt.in, diff)
			}
			if got.String() != tt.canonical {
				t.Errorf("String() = %q, want %q", got.String(), tt.canonical)
			}
		})
	}
}

func TestParseKeyErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
	}{
		{"unknown metric", "http_req_duraton", ErrUnknownMetric},
		{"empty", "", ErrUnknownMetric},
		{"k6 metric not in the catalogue", "vus", ErrUnknownMetric},
		{"unknown tag", "http_reqs{status:200}", ErrBadKey},
		{"tag twice", "http_reqs{op:a,op:b}", ErrBadKey},
		{"empty value", "http_reqs{op:}", ErrBadKey},
		{"no colon", "http_reqs{op}", ErrBadKey},
		{"unclosed", "http_reqs{op:a", ErrBadKey},
		{"nested", "http_reqs{op:{a}}", ErrBadKey},
		{"text after brace", "http_reqs{op:a}x", ErrBadKey},
		{"empty tags", "http_reqs{}", ErrBadKey},
		{"op on a target metric", "payments_lost{op:pay}", ErrBadKey},
		{"too long", "http_reqs{op:" + strings.Repeat("a", keyBytesMax) + "}", ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseKey(%q) = %+v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	for in, want := range map[string]Metric{
		"http_req_duraton": HTTPReqDuration,
		"http_req":         HTTPReqs,
		"payment_lost":     PaymentsLost,
		"completely_else":  "",
	} {
		if got := Suggest(in); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"http_req_duration{phase:headroom}", "http_reqs{op:pay,phase:x}", "http_reqs{", "{}", "a{b:c}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			if !errors.Is(err, ErrBadKey) && !errors.Is(err, ErrUnknownMetric) {
				t.Fatalf("ParseKey(%q): error %v is neither ErrBadKey nor ErrUnknownMetric", s, err)
			}
			return
		}
		again, err := ParseKey(k.String())
		if err != nil {
			t.Fatalf("ParseKey(%q) ok but its canonical form %q fails: %v", s, k.String(), err)
		}
		if again != k {
			t.Fatalf("canonical form %q parses to %+v, want %+v", k.String(), again, k)
		}
	})
}
