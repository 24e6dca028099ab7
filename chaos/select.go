package chaos

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// Mode is how many of the matching targets a fault acts on: Chaos Mesh's selector modes.
type Mode string

// Modes.
const (
	ModeOne              Mode = "one"                // one at random
	ModeAll              Mode = "all"                // every match
	ModeFixed            Mode = "fixed"              // Value of them at random (all when fewer match)
	ModeFixedPercent     Mode = "fixed-percent"      // floor(matches × Value / 100) at random
	ModeRandomMaxPercent Mode = "random-max-percent" // floor(matches × p / 100), p uniform in [0, Value]
)

// Modes lists every mode.
func Modes() []Mode {
	return []Mode{ModeOne, ModeAll, ModeFixed, ModeFixedPercent, ModeRandomMaxPercent}
}

// Operators of an expression selector, as Kubernetes spells them.
const (
	OpIn           = "In"
	OpNotIn        = "NotIn"
	OpExists       = "Exists"
	OpDoesNotExist = "DoesNotExist"
)

// Requirement is one expression selector: Key Operator Values.
type Requirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// Selector picks targets by their labels (unit, role, replica, group, ...), then Mode picks how
// many of the matches a fault acts on.
type Selector struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Expressions []Requirement     `json:"expressions,omitempty"`
	Mode        Mode              `json:"mode"`
	Value       int               `json:"value,omitempty"` // fixed: a count; the percent modes: a percentage
}

// SelectorsMax bounds the labels and expressions of one selector.
const SelectorsMax = 32

// Validate checks the mode and its value as Chaos Mesh's webhook does, and the operators.
func (s Selector) Validate() error {
	switch s.Mode {
	case ModeOne, ModeAll:
	case ModeFixed:
		if s.Value <= 0 {
			return fmt.Errorf("%w: mode fixed needs a value above 0, got %d", ErrInvalid, s.Value)
		}
	case ModeFixedPercent, ModeRandomMaxPercent:
		if s.Value <= 0 || s.Value > 100 {
			return fmt.Errorf("%w: mode %s needs a value in (0,100], got %d", ErrInvalid, s.Mode, s.Value)
		}
	default:
		return fmt.Errorf("%w: unknown mode %q", ErrInvalid, s.Mode)
	}
	if len(s.Labels)+len(s.Expressions) > SelectorsMax {
		return fmt.Errorf("%w: more than %d selectors", ErrInvalid, SelectorsMax)
	}
	for _, r := range s.Expressions {
		switch r.Operator {
		case OpIn, OpNotIn:
			if len(r.Values) == 0 {
				return fmt.Errorf("%w: %s %s needs values", ErrInvalid, r.Key, r.Operator)
			}
		case OpExists, OpDoesNotExist:
			if len(r.Values) != 0 {
				return fmt.Errorf("%w: %s %s takes no values", ErrInvalid, r.Key, r.Operator)
			}
		default:
			return fmt.Errorf("%w: unknown operator %q", ErrInvalid, r.Operator)
		}
	}
	return nil
}

// Matches reports whether labels satisfy every label and expression of s.
func (s Selector) Matches(labels map[string]string) bool {
	for k, v := range s.Labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range s.Expressions {
		v, ok := labels[r.Key]
		switch r.Operator {
		case OpIn:
			if !ok || !slices.Contains(r.Values, v) {
				return false
			}
		case OpNotIn:
			if ok && slices.Contains(r.Values, v) {
				return false
			}
		case OpExists:
			if !ok {
				return false
			}
		case OpDoesNotExist:
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// String writes the selector as a label query with its mode: "unit=b,role=primary (one)".
func (s Selector) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		parts = append(parts, k+"="+s.Labels[k])
	}
	for _, r := range s.Expressions {
		switch r.Operator {
		case OpExists:
			parts = append(parts, r.Key)
		case OpDoesNotExist:
			parts = append(parts, "!"+r.Key)
		default:
			parts = append(parts, fmt.Sprintf("%s %s (%s)", r.Key, strings.ToLower(r.Operator), strings.Join(r.Values, ",")))
		}
	}
	q := strings.Join(parts, ",")
	if q == "" {
		q = "everything"
	}
	mode := string(s.Mode)
	if s.Mode == ModeFixed || s.Mode == ModeFixedPercent || s.Mode == ModeRandomMaxPercent {
		mode = fmt.Sprintf("%s %d", s.Mode, s.Value)
	}
	return q + " (" + mode + ")"
}

// Count is how many of n matches a mode selects, with Chaos Mesh's rounding (its
// FilterObjectsByMode: percentages round down). pick draws an integer in [0, k) for the
// random-max-percent mode.
func (s Selector) Count(n int, pick func(k int) int) int {
	if n <= 0 {
		return 0
	}
	switch s.Mode {
	case ModeOne:
		return 1
	case ModeAll:
		return n
	case ModeFixed:
		return min(s.Value, n)
	case ModeFixedPercent:
		return int(math.Floor(float64(n) * float64(s.Value) / 100))
	case ModeRandomMaxPercent:
		p := pick(s.Value + 1) // [0, Value], as Chaos Mesh draws it
		return int(math.Floor(float64(n) * float64(p) / 100))
	}
	return 0
}

// Select returns the targets a fault acts on: those matching s, then Count of them drawn with
// rng, in inventory order. No match is ErrNoTarget; a mode that rounds to zero selects nothing.
func Select(targets []Target, s Selector, rng *rand.Rand) ([]Target, error) {
	var matched []Target
	for _, t := range targets {
		if s.Matches(t.Labels) {
			matched = append(matched, t)
		}
	}
	if len(matched) == 0 {
		return nil, fmt.Errorf("select %s: %w", s, ErrNoTarget)
	}
	k := s.Count(len(matched), rng.IntN)
	if k >= len(matched) {
		return matched, nil
	}
	idx := rng.Perm(len(matched))[:k]
	slices.Sort(idx)
	out := make([]Target, 0, k)
	for _, i := range idx {
		out = append(out, matched[i])
	}
	return out, nil
}
