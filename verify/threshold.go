package verify

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Aggregation reduces a metric's values over a phase to one number.
type Aggregation string

// Aggregations of k6's threshold grammar.
const (
	AggCount      Aggregation = "count"
	AggRate       Aggregation = "rate"
	AggValue      Aggregation = "value"
	AggAvg        Aggregation = "avg"
	AggMin        Aggregation = "min"
	AggMax        Aggregation = "max"
	AggMed        Aggregation = "med"
	AggPercentile Aggregation = "p" // p(N); the percentile is Threshold.Percentile
)

// Operator compares the aggregated value with the threshold's number.
type Operator string

// Operators of k6's threshold grammar. "===" means the same as "==".
const (
	OpGreater      Operator = ">"
	OpGreaterEqual Operator = ">="
	OpLessEqual    Operator = "<="
	OpLess         Operator = "<"
	OpEqual        Operator = "=="
	OpStrictEqual  Operator = "==="
	OpNotEqual     Operator = "!="
)

// expressionBytesMax bounds a threshold expression; a real one is a dozen bytes.
const expressionBytesMax = 128

// Threshold is one parsed expression, like p(99)<100.
type Threshold struct {
	Source      string // the expression as written, trimmed: k6 keys results by it
	Aggregation Aggregation
	Percentile  float64 // for AggPercentile: N of p(N), in [0, 100]
	Op          Operator
	Value       float64
}

// String returns the expression as written.
func (t Threshold) String() string { return t.Source }

// Label is the aggregation as written in canonical form: "p(99)", "rate".
func (t Threshold) Label() string {
	if t.Aggregation == AggPercentile {
		return "p(" + formatNumber(t.Percentile) + ")"
	}
	return string(t.Aggregation)
}

// Holds reports whether observed satisfies the threshold.
func (t Threshold) Holds(observed float64) bool {
	switch t.Op {
	case OpGreater:
		return observed > t.Value
	case OpGreaterEqual:
		return observed >= t.Value
	case OpLessEqual:
		return observed <= t.Value
	case OpLess:
		return observed < t.Value
	case OpEqual, OpStrictEqual:
		return observed == t.Value
	case OpNotEqual:
		return observed != t.Value
	}
	return false
}

// ParseThreshold parses one expression of k6's threshold grammar:
//
//	threshold   = ws* aggregation ws* operator ws* number ws*
//	aggregation = "count" | "rate" | "value" | "avg" | "min" | "max" | "med"
//	            | "p(" ws* number ws* ")"            ; a percentile in [0, 100]
//	operator    = ">" | ">=" | "<=" | "<" | "==" | "===" | "!="
//	number      = a finite decimal float: 100, 0.01, 1e3, -5
//	ws          = " " | "\t"
//
// Times are in milliseconds, rates of counters per second, rates of rate metrics fractions
// in [0, 1]. Whether an aggregation suits a metric is checked by NewCriterion, not here.
func ParseThreshold(s string) (Threshold, error) {
	if len(s) > expressionBytesMax {
		return Threshold{}, fmt.Errorf("%w: longer than %d bytes", ErrBadThreshold, expressionBytesMax)
	}
	src := strings.Trim(s, " \t")
	t := Threshold{Source: src}
	rest, err := t.parseAggregation(src)
	if err != nil {
		return Threshold{}, err
	}
	rest = strings.TrimLeft(rest, " \t")
	op, rest := parseOperator(rest)
	if op == "" {
		return Threshold{}, fmt.Errorf("%w: %q: want an operator (> >= <= < == === !=) after %q", ErrBadThreshold, src, t.Label())
	}
	t.Op = op
	v, err := parseNumber(strings.Trim(rest, " \t"))
	if err != nil {
		return Threshold{}, fmt.Errorf("%w: %q: %w", ErrBadThreshold, src, err)
	}
	t.Value = v
	return t, nil
}

// parseAggregation sets t's aggregation from the start of s and returns the rest.
func (t *Threshold) parseAggregation(s string) (string, error) {
	end := strings.IndexAny(s, "<>=! \t(")
	if end < 0 {
		end = len(s)
	}
	word := s[:end]
	switch a := Aggregation(word); a {
	case AggCount, AggRate, AggValue, AggAvg, AggMin, AggMax, AggMed:
		t.Aggregation = a
		return s[end:], nil
	case AggPercentile:
		closing := strings.IndexByte(s, ')')
		if end == len(s) || s[end] != '(' || closing < 0 {
			return "", fmt.Errorf("%w: %q: want p(N), like p(99)", ErrBadThreshold, s)
		}
		n, err := parseNumber(strings.Trim(s[end+1:closing], " \t"))
		if err != nil || n < 0 || n > 100 {
			return "", fmt.Errorf("%w: %q: percentile must be a number in [0, 100]", ErrBadThreshold, s)
		}
		t.Aggregation, t.Percentile = AggPercentile, n
		return s[closing+1:], nil
	}
	if word == "" {
		return "", fmt.Errorf("%w: %q: want an aggregation (count, rate, value, avg, min, max, med, p(N)) first", ErrBadThreshold, s)
	}
	return "", fmt.Errorf("%w: %q: unknown aggregation %q (want count, rate, value, avg, min, max, med or p(N))", ErrBadThreshold, s, word)
}

// parseOperator takes the longest operator at the start of s.
func parseOperator(s string) (Operator, string) {
	for _, op := range []Operator{OpStrictEqual, OpGreaterEqual, OpLessEqual, OpEqual, OpNotEqual, OpGreater, OpLess} {
		if rest, ok := strings.CutPrefix(s, string(op)); ok {
			return op, rest
		}
	}
	return "", s
}

// parseNumber parses a finite float; strconv alone would accept "NaN" and "Inf".
func parseNumber(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || strings.ContainsAny(s, "xXpP_") {
		return 0, fmt.Errorf("want a number, got %q", s)
	}
	return v, nil
}

// formatNumber writes v briefly: integers exactly, others with up to three decimals, small
// fractions with three significant digits.
func formatNumber(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 1:
		s := strconv.FormatFloat(v, 'f', 3, 64)
		return strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
