package shadow

import (
	"fmt"
	"net/url"
	"strings"
)

// BaggageRun returns the value of the redline.run list-member in the W3C baggage headers
// values ("" when none has it). The headers are one list, as if joined by commas:
//
//	baggage-string = list-member 0*179( OWS "," OWS list-member )
//	list-member    = key OWS "=" OWS value *( OWS ";" OWS property )
//	property       = key OWS "=" OWS value / key OWS
//	key            = token                       ; RFC 7230 3.2.6
//	value          = *baggage-octet              ; percent-encoded UTF-8
//	baggage-octet  = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
//	OWS            = *( SP / HTAB )
//
// Any list-member that does not parse makes the whole header malformed: a marker may hide in
// it. The member's properties are parsed and ignored. A redline.run member repeated with a
// different value is inconsistent.
func BaggageRun(values []string) (string, error) {
	size, members := 0, 0
	run := ""
	for _, v := range values {
		size += len(v)
		if size > BaggageBytesMax {
			return "", fmt.Errorf("baggage over %d bytes: %w", BaggageBytesMax, ErrMalformed)
		}
		for _, m := range strings.Split(v, ",") {
			members++
			if members > BaggageMembersMax {
				return "", fmt.Errorf("baggage over %d list-members: %w", BaggageMembersMax, ErrMalformed)
			}
			key, value, err := parseMember(m)
			if err != nil {
				return "", err
			}
			if key != BaggageKey {
				continue
			}
			if err := ValidRun(value); err != nil {
				return "", fmt.Errorf("baggage %s: %w", BaggageKey, err)
			}
			if run != "" && run != value {
				return "", fmt.Errorf("baggage %s says %q and %q: %w", BaggageKey, clip(run), clip(value), ErrInconsistent)
			}
			run = value
		}
	}
	return run, nil
}

// parseMember parses one list-member and returns its key and percent-decoded value.
func parseMember(m string) (string, string, error) {
	parts := strings.Split(m, ";")
	key, raw, ok := strings.Cut(parts[0], "=")
	key, raw = trimOWS(key), trimOWS(raw)
	if !ok || !isToken(key) {
		return "", "", fmt.Errorf("baggage list-member %q: want key=value: %w", clip(trimOWS(m)), ErrMalformed)
	}
	value, err := decodeValue(raw)
	if err != nil {
		return "", "", fmt.Errorf("baggage list-member %q: %w", key, err)
	}
	for _, p := range parts[1:] {
		pk, pv, hasValue := strings.Cut(p, "=")
		if pk = trimOWS(pk); !isToken(pk) {
			return "", "", fmt.Errorf("baggage list-member %q: property %q: %w", key, clip(trimOWS(p)), ErrMalformed)
		}
		if hasValue {
			if _, err := decodeValue(trimOWS(pv)); err != nil {
				return "", "", fmt.Errorf("baggage list-member %q: property %q: %w", key, pk, err)
			}
		}
	}
	return key, value, nil
}

// decodeValue checks that raw is made of baggage-octets and percent-decodes it.
func decodeValue(raw string) (string, error) {
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c < 0x21 || c > 0x7e || c == '"' || c == ',' || c == ';' || c == '\\' {
			return "", fmt.Errorf("value: byte %q at %d is not a baggage-octet: %w", c, i, ErrMalformed)
		}
	}
	v, err := url.PathUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("value: percent-encoding: %w: %v", ErrMalformed, err)
	}
	return v, nil
}

func trimOWS(s string) string { return strings.Trim(s, " \t") }

// isToken reports whether s is an RFC 7230 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
