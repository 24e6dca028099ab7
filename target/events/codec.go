package events

import (
	"strconv"
)

// The event body is JSON, as encoding/json writes an Event. Every event is encoded once by a relay
// and decoded once by each consumer group (and by every audit's scan), and encoding/json's
// reflection was a tenth of a consumer's CPU; so the layout encoding/json writes is encoded and
// parsed by hand here for the strings events carry (ids, unit names, idempotency keys in
// printable ASCII), and anything else goes through encoding/json. The fast paths write and accept
// only what encoding/json writes and reads the same way (FuzzDecode, FuzzEncode).

// appendJSON appends e as json.Marshal encodes it; false when a string of e holds a character
// encoding/json escapes (the caller then uses encoding/json).
func appendJSON(b []byte, e Event) ([]byte, bool) {
	if !plain(e.ID) || !plain(e.Unit) || !plain(e.Key) {
		return b, false
	}
	b = append(b, `{"id":"`...)
	b = append(b, e.ID...)
	b = append(b, `","unit":"`...)
	b = append(b, e.Unit...)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"key":"`...)
	b = append(b, e.Key...)
	b = append(b, `","from_uid":`...)
	b = strconv.AppendInt(b, e.FromUID, 10)
	b = append(b, `,"to_uid":`...)
	b = strconv.AppendInt(b, e.ToUID, 10)
	b = append(b, `,"amount_minor":`...)
	b = strconv.AppendInt(b, e.AmountMinor, 10)
	return append(b, '}'), true
}

// plain reports whether encoding/json writes s as it is: printable ASCII without '"', '\\' and
// the characters it escapes for HTML.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// decodeFast parses the layout appendJSON writes; false for anything else (other field order,
// white space, escapes, non-ASCII, numbers out of range), which encoding/json then decodes.
func decodeFast(b []byte) (Event, bool) {
	var e Event
	p := parser{b: b}
	ok := p.lit(`{"id":`) && p.str(&e.ID) &&
		p.lit(`,"unit":`) && p.str(&e.Unit) &&
		p.lit(`,"seq":`) && p.int(&e.Seq) &&
		p.lit(`,"key":`) && p.str(&e.Key) &&
		p.lit(`,"from_uid":`) && p.int(&e.FromUID) &&
		p.lit(`,"to_uid":`) && p.int(&e.ToUID) &&
		p.lit(`,"amount_minor":`) && p.int(&e.AmountMinor) &&
		p.lit(`}`) && len(p.b) == 0
	return e, ok
}

// parser consumes b from the front.
type parser struct{ b []byte }

func (p *parser) lit(s string) bool {
	if len(p.b) < len(s) || string(p.b[:len(s)]) != s {
		return false
	}
	p.b = p.b[len(s):]
	return true
}

// str reads a JSON string of printable ASCII without escapes.
func (p *parser) str(dst *string) bool {
	if len(p.b) == 0 || p.b[0] != '"' {
		return false
	}
	for i := 1; i < len(p.b); i++ {
		switch c := p.b[i]; {
		case c == '"':
			*dst = string(p.b[1:i])
			p.b = p.b[i+1:]
			return true
		case c < 0x20 || c > 0x7e, c == '\\':
			return false
		}
	}
	return false
}

// int reads a JSON integer (no fraction, no exponent, no leading zero) that fits an int64.
func (p *parser) int(dst *int64) bool {
	i := 0
	if i < len(p.b) && p.b[i] == '-' {
		i++
	}
	start := i
	for i < len(p.b) && p.b[i] >= '0' && p.b[i] <= '9' {
		i++
	}
	digits := i - start
	if digits == 0 || (digits > 1 && p.b[start] == '0') {
		return false
	}
	if i < len(p.b) && (p.b[i] == '.' || p.b[i] == 'e' || p.b[i] == 'E') {
		return false
	}
	n, err := strconv.ParseInt(string(p.b[:i]), 10, 64)
	if err != nil {
		return false
	}
	*dst = n
	p.b = p.b[i:]
	return true
}
