package verify

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseThreshold(t *testing.T) {
	tests := []struct {
		in   string
		want Threshold
	}{
		{"p(99)<100", Threshold{Source: "p(99)<100", Aggregation: AggPercentile, Percentile: 99, Op: OpLess, Value: 100}},
		{"p(99.9) <= 250.5", Threshold{Source: "p(99.9) <= 250.5", Aggregation: AggPercentile, Percentile: 99.9, Op: OpLessEqual, Value: 250.5}},
		{" p( 0 )>=0 ", Threshold{Source: "p( 0 )>=0", Aggregation: AggPercentile, Op: OpGreaterEqual}},
		{"rate<0.001", Threshold{Source: "rate<0.001", Aggregation: AggRate, Op: OpLess, Value: 0.001}},
		{"count==0", Threshold{Source: "count==0", Aggregation: AggCount, Op: OpEqual}},
		{"count===0", Threshold{Source: "count===0", Aggregation: AggCount, Op: OpStrictEqual}},
		{"count != 3", Threshold{Source: "count != 3", Aggregation: AggCount, Op: OpNotEqual, Value: 3}},
		{"value>-5", Threshold{Source: "value>-5", Aggregation: AggValue, Op: OpGreater, Value: -5}},
		{"avg<1e3", Threshold{Source: "avg<1e3", Aggregation: AggAvg, Op: OpLess, Value: 1000}},
		{"min\t>\t1", Threshold{Source: "min\t>\t1", Aggregation: AggMin, Op: OpGreater, Value: 1}},
		{"max<=2", Threshold{Source: "max<=2", Aggregation: AggMax, Op: OpLessEqual, Value: 2}},
		{"med<3", Threshold{Source: "med<3", Aggregation: AggMed, Op: OpLess, Value: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseThreshold(tt.in)
			if err != nil {
				t.Fatalf("ParseThreshold(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseThreshold(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseThresholdErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"no operator", "p(99)"},
		{"no number", "p(99)<"},
		{"unknown aggregation", "p99<100"},
		{"percentile over 100", "p(101)<1"},
		{"negative percentile", "p(-1)<1"},
		{"unclosed percentile", "p(99<1"},
		{"percentile not a number", "p(x)<1"},
		{"bad operator", "avg=>1"},
		{"trailing junk", "avg<1ms"},
		{"NaN", "avg<NaN"},
		{"Inf", "avg<Inf"},
		{"hex float", "avg<0x1p3"},
		{"operator first", "<100"},
		{"too long", "avg<" + strings.Repeat("1", expressionBytesMax)},
		{"upper case", "AVG<1"},
		{"two numbers", "avg<1 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseThreshold(tt.in)
			if !errors.Is(err, ErrBadThreshold) {
				t.Fatalf("ParseThreshold(%q) = %+v, %v; want ErrBadThreshold", tt.in, got, err)
			}
		})
	}
}

func TestThresholdHolds(t *testing.T) {
	tests := []struct {
		expr     string
		observed float64
		want     bool
	}{
		{"avg<1", 0.5, true}, {"avg<1", 1, false},
		{"avg<=1", 1, true}, {"avg<=1", 1.01, false},
		{"avg>1", 1, false}, {"avg>1", 2, true},
		{"avg>=1", 1, true}, {"avg>=1", 0, false},
		{"count==0", 0, true}, {"count==0", 1, false},
		{"count===0", 0, true},
		{"count!=0", 0, false}, {"count!=0", 2, true},
	}
	for _, tt := range tests {
		th, err := ParseThreshold(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := th.Holds(tt.observed); got != tt.want {
			t.Errorf("%s.Holds(%v) = %v, want %v", tt.expr, tt.observed, got, tt.want)
		}
	}
}

func FuzzParseThreshold(f *testing.F) {
	for _, s := range []string{"p(99)<100", "rate<0.01", "count==0", "value!=1", "p(99.9)>=1e2", "avg <= 3", "p(", "==="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		th, err := ParseThreshold(s)
		if err != nil {
			if !errors.Is(err, ErrBadThreshold) {
				t.Fatalf("ParseThreshold(%q): error %v is not ErrBadThreshold", s, err)
			}
			return
		}
		again, err := ParseThreshold(th.Source)
		if err != nil {
			t.Fatalf("ParseThreshold(%q) ok but its source %q fails: %v", s, th.Source, err)
		}
		if diff := cmp.Diff(th, again); diff != "" {
			t.Fatalf("reparse of %q differs:\n%s", th.Source, diff)
		}
	})
}
