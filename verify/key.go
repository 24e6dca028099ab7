package verify

import (
	"fmt"
	"strings"
)

// Tags that select a sub-metric. The set is closed.
const (
	TagPhase = "phase" // the phase's name
	TagOp    = "op"    // the operation's name in the phase's request mix
)

// keyBytesMax bounds a threshold key; names are short.
const keyBytesMax = 256

// Key selects the values a criterion judges: a metric, optionally narrowed to one phase and one
// operation, as k6 selects a sub-metric by tags.
type Key struct {
	Metric Metric
	Phase  string // "" is every judged phase, each judged on its own
	Op     string // "" is every operation of the phase, merged
}

// String returns the key in canonical form: metric{phase:x,op:y}.
func (k Key) String() string {
	var tags []string
	if k.Phase != "" {
		tags = append(tags, TagPhase+":"+k.Phase)
	}
	if k.Op != "" {
		tags = append(tags, TagOp+":"+k.Op)
	}
	if len(tags) == 0 {
		return string(k.Metric)
	}
	return string(k.Metric) + "{" + strings.Join(tags, ",") + "}"
}

// ParseKey parses a threshold key:
//
//	key   = metric [ "{" tag *( "," tag ) "}" ]
//	tag   = ws* name ws* ":" ws* value ws*
//	name  = "phase" | "op"                ; each at most once
//	value = 1*( any byte but "{" "}" "," ":" and whitespace )
//
// The metric must be in the catalogue (see Lookup); an op tag applies only to the load
// generator's metrics.
func ParseKey(s string) (Key, error) {
	if len(s) > keyBytesMax {
		return Key{}, fmt.Errorf("%w: longer than %d bytes", ErrBadKey, keyBytesMax)
	}
	name, tags, hasTags := strings.Cut(s, "{")
	name = strings.Trim(name, " \t")
	k := Key{Metric: Metric(name)}
	if _, ok := Lookup(k.Metric); !ok {
		if near := Suggest(name); near != "" {
			return Key{}, fmt.Errorf("%w %q (did you mean %s?)", ErrUnknownMetric, name, near)
		}
		return Key{}, fmt.Errorf("%w %q", ErrUnknownMetric, name)
	}
	if !hasTags {
		return k, nil
	}
	body, ok := strings.CutSuffix(strings.TrimRight(tags, " \t"), "}")
	if !ok || strings.ContainsAny(body, "{}") {
		return Key{}, fmt.Errorf("%w: %q: want metric{tag:value,...}", ErrBadKey, s)
	}
	for _, tag := range strings.Split(body, ",") {
		if err := k.setTag(tag); err != nil {
			return Key{}, fmt.Errorf("%w: %q: %w", ErrBadKey, s, err)
		}
	}
	if m, _ := Lookup(k.Metric); k.Op != "" && m.Source != SourceLoad {
		return Key{}, fmt.Errorf("%w: %q: tag %s does not apply to %s, which the target reports per phase only",
			ErrBadKey, s, TagOp, m.Name)
	}
	return k, nil
}

// setTag parses one "name:value" and sets it on k.
func (k *Key) setTag(tag string) error {
	name, value, ok := strings.Cut(tag, ":")
	name, value = strings.Trim(name, " \t"), strings.Trim(value, " \t")
	if !ok || name == "" {
		return fmt.Errorf("want tag:value, got %q", strings.Trim(tag, " \t"))
	}
	if value == "" || strings.ContainsAny(value, ": \t") {
		return fmt.Errorf("tag %s: want one word as its value, got %q", name, value)
	}
	var dst *string
	switch name {
	case TagPhase:
		dst = &k.Phase
	case TagOp:
		dst = &k.Op
	default:
		return fmt.Errorf("unknown tag %q (want %s or %s)", name, TagPhase, TagOp)
	}
	if *dst != "" {
		return fmt.Errorf("tag %s given twice", name)
	}
	*dst = value
	return nil
}
