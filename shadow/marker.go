// Package shadow holds Redline's stress traffic vocabulary: the stress marker a request
// carries (the run id in the X-Redline-Run header or in W3C baggage as redline.run) and the
// data planes a marked request is kept to. The built-in target imports it to parse the marker;
// the platform uses it to write one.
//
// The marker is parsed fail-closed: a request whose marker is malformed (empty, bad characters,
// too long, baggage that does not parse) or inconsistent (the header and the baggage disagree,
// or either repeats with different values) is refused, never treated as production traffic.
package shadow

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// The marker on the wire.
const (
	// Header carries the run id of a stress request.
	Header = "X-Redline-Run"
	// BaggageHeader is the W3C baggage header; BaggageKey is the marker's list-member key in it.
	BaggageHeader = "Baggage"
	BaggageKey    = "redline.run"
	// RunBytesMax bounds a run id.
	RunBytesMax = 128
	// BaggageBytesMax and BaggageMembersMax are W3C baggage's own limits (8192 bytes, 180
	// list-members): a header beyond them is malformed.
	BaggageBytesMax   = 8192
	BaggageMembersMax = 180
)

// Plane is where a request's writes go: production data, or the shadow data of stress traffic.
type Plane string

// The planes.
const (
	Production Plane = "production"
	Shadow     Plane = "shadow"
)

// PlaneHeader carries the plane from the target's router to its units (an internal header: a
// unit checks it against the marker of the same request).
const PlaneHeader = "X-Redline-Plane"

// Errors of the marker.
var (
	ErrMalformed    = errors.New("malformed stress marker")
	ErrInconsistent = errors.New("inconsistent stress marker")
)

// ValidRun reports whether id is a well-formed run id: 1..RunBytesMax bytes of letters,
// digits, '.', '_', ':' and '-'.
func ValidRun(id string) error {
	if id == "" || len(id) > RunBytesMax {
		return fmt.Errorf("run id of %d bytes, want 1..%d: %w", len(id), RunBytesMax, ErrMalformed)
	}
	for i := 0; i < len(id); i++ {
		if !runByte(id[i]) {
			return fmt.Errorf("run id %q: byte %q at %d: want letters, digits, '.', '_', ':' or '-': %w", clip(id), id[i], i, ErrMalformed)
		}
	}
	return nil
}

func runByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
}

// Marker returns the run id a request's headers mark it with, "" for production traffic. Every
// X-Redline-Run value and every baggage header are read: a marker that is malformed, or that
// says two different run ids anywhere, is an error wrapping ErrMalformed or ErrInconsistent.
func Marker(h http.Header) (string, error) {
	run := ""
	for _, v := range h.Values(Header) {
		v = strings.TrimSpace(v)
		if err := ValidRun(v); err != nil {
			return "", fmt.Errorf("%s: %w", Header, err)
		}
		if run != "" && run != v {
			return "", fmt.Errorf("%s says %q and %q: %w", Header, clip(run), clip(v), ErrInconsistent)
		}
		run = v
	}
	fromBaggage, err := BaggageRun(h.Values(BaggageHeader))
	if err != nil {
		return "", err
	}
	if fromBaggage != "" && run != "" && fromBaggage != run {
		return "", fmt.Errorf("%s says %q, baggage %s says %q: %w", Header, clip(run), BaggageKey, clip(fromBaggage), ErrInconsistent)
	}
	if run == "" {
		run = fromBaggage
	}
	return run, nil
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
