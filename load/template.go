package load

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// varKind names one template variable; 0 is literal text.
type varKind uint8

const (
	varNone varKind = iota
	varUID
	varUID2
	varUUID
	varSeq
	varAmount
	varRun
)

// varSet is a set of variables, one bit per varKind.
type varSet uint8

const (
	usesUID    varSet = 1 << varUID
	usesUID2   varSet = 1 << varUID2
	usesUUID   varSet = 1 << varUUID
	usesSeq    varSet = 1 << varSeq
	usesAmount varSet = 1 << varAmount
	usesRun    varSet = 1 << varRun
)

// varNames is the closed vocabulary of template variables, switched on in parseTemplate.
var varNames = [...]string{varUID: "uid", varUID2: "uid2", varUUID: "uuid", varSeq: "seq", varAmount: "amount", varRun: "run"}

// templatePartsMax bounds the parts of one template: a template of BodyBytesMax bytes made of
// nothing but {{seq}} has fewer.
const templatePartsMax = BodyBytesMax/len("{{seq}}")*2 + 1

// template is text with {{name}} variables, parsed once and rendered per arrival by appending
// to a reused buffer: no allocation per arrival once the buffer has grown.
type template struct {
	src   string
	parts []templatePart
	uses  varSet
}

type templatePart struct {
	lit string  // literal text, when v is varNone
	v   varKind // the variable, otherwise
}

// parseTemplate parses s. The grammar is plain: "{{" NAME "}}" is a variable, where NAME is one
// of uid, uid2, uuid, seq, amount and run, without spaces; any other "{{" is an error, so a typo
// never reaches a server as literal text. There is no escape for a literal "{{".
func parseTemplate(s string) (*template, error) {
	t := &template{src: s}
	for rest, off := s, 0; rest != ""; {
		open := strings.Index(rest, "{{")
		if open < 0 {
			t.parts = append(t.parts, templatePart{lit: rest})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, templatePart{lit: rest[:open]})
		}
		end := strings.Index(rest[open+2:], "}}")
		if end < 0 {
			return nil, fmt.Errorf("%w: unclosed {{ at byte %d", ErrBadTemplate, off+open)
		}
		name := rest[open+2 : open+2+end]
		v := lookupVar(name)
		if v == varNone {
			return nil, fmt.Errorf("%w: unknown variable {{%s}} at byte %d (want one of {{%s}})",
				ErrBadTemplate, truncate(name, 32), off+open, strings.Join(varNames[1:], "}}, {{"))
		}
		t.parts = append(t.parts, templatePart{v: v})
		t.uses |= 1 << v
		if len(t.parts) > templatePartsMax {
			return nil, fmt.Errorf("%w: more than %d parts", ErrBadTemplate, templatePartsMax)
		}
		n := open + 2 + end + 2
		rest, off = rest[n:], off+n
	}
	return t, nil
}

func lookupVar(name string) varKind {
	for v, n := range varNames {
		if v != int(varNone) && n == name {
			return varKind(v)
		}
	}
	return varNone
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// static reports whether t renders the same text for every arrival.
func (t *template) static() bool { return t.uses == 0 }

// literalPrefix is the literal text before the first variable.
func (t *template) literalPrefix() string {
	if len(t.parts) == 0 || t.parts[0].v != varNone {
		return ""
	}
	return t.parts[0].lit
}

// render appends t, with the variables of one arrival, to dst.
func (t *template) render(dst []byte, v *values) []byte {
	for i := range t.parts {
		p := &t.parts[i]
		switch p.v {
		case varNone:
			dst = append(dst, p.lit...)
		case varUID:
			dst = strconv.AppendInt(dst, v.uid, 10)
		case varUID2:
			dst = strconv.AppendInt(dst, v.uid2, 10)
		case varUUID:
			dst = appendUUID(dst, &v.uuid)
		case varSeq:
			dst = strconv.AppendInt(dst, v.seq, 10)
		case varAmount:
			dst = strconv.AppendInt(dst, v.amount, 10)
		case varRun:
			dst = append(dst, v.run...)
		}
	}
	return dst
}

// values are one arrival's template variables.
type values struct {
	seq    int64
	uid    int64
	uid2   int64
	amount int64
	uuid   [16]byte
	run    string
}

// sampleValues render templates when only their shape matters (validation).
var sampleValues = values{seq: 1, uid: 1, uid2: 2, amount: 1, run: "run"}

// arrivalRand is the random stream of one arrival: splitmix64 started from a hash of the seed
// and the arrival's number, so that any worker renders any arrival alike and streams of
// neighbouring arrivals do not overlap.
type arrivalRand struct{ state uint64 }

const golden = 0x9e3779b97f4a7c15

func newArrivalRand(seed, seq int64) arrivalRand {
	return arrivalRand{state: mix64(uint64(seed) ^ mix64(uint64(seq)+golden))}
}

func (r *arrivalRand) next() uint64 {
	r.state += golden
	return mix64(r.state)
}

// below returns a uniform value in [0, n) (Lemire's multiply-shift; the bias, n/2^64, is far
// below anything a load test can observe).
func (r *arrivalRand) below(n uint64) uint64 {
	hi, _ := bits.Mul64(r.next(), n)
	return hi
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// draw fills the variables that uses names for arrival seq; the first draw of the stream is
// reserved for the choice of the request in the mix (see mix.pick).
func (v *values) draw(r *arrivalRand, vars *Vars, uses varSet, seq int64) {
	v.seq = seq
	v.run = vars.RunID
	if uses&(usesUID|usesUID2) != 0 {
		span := uint64(vars.UIDMax - vars.UIDMin + 1)
		u := r.below(span)
		v.uid = vars.UIDMin + int64(u)
		if uses&usesUID2 != 0 {
			v.uid2 = drawUID2(r, vars, v.uid, span)
		}
	}
	if uses&usesAmount != 0 {
		v.amount = vars.AmountMinorMin + int64(r.below(uint64(vars.AmountMinorMax-vars.AmountMinorMin+1)))
	}
	if uses&usesUUID != 0 {
		a, b := r.next(), r.next()
		for i := range 8 {
			v.uuid[i] = byte(a >> (56 - 8*i))
			v.uuid[8+i] = byte(b >> (56 - 8*i))
		}
		v.uuid[6] = v.uuid[6]&0x0f | 0x40 // version 4
		v.uuid[8] = v.uuid[8]&0x3f | 0x80 // RFC 9562 variant
	}
}

// drawUID2 draws another uid than uid, never the same; with a stride over 1, among the uids
// uid + k·stride (k ≠ 0) inside the bounds, which Validate guarantees exist.
func drawUID2(r *arrivalRand, vars *Vars, uid int64, span uint64) int64 {
	if vars.UID2Stride > 1 && vars.UID2OffStride > 0 && float64(r.next()>>11)/(1<<53) < vars.UID2OffStride {
		if u2, ok := offStride(r, vars, uid, 1); ok {
			return u2
		}
		if u2, ok := offStride(r, vars, uid, -1); ok {
			return u2
		}
	}
	if vars.UID2Stride <= 1 {
		u2 := r.below(span - 1)
		if u2 >= uint64(uid-vars.UIDMin) {
			u2++
		}
		return vars.UIDMin + int64(u2)
	}
	s := vars.UID2Stride
	kmin, kmax := -(uid-vars.UIDMin)/s, (vars.UIDMax-uid)/s
	k := kmin + int64(r.below(uint64(kmax-kmin))) // kmax-kmin choices: every k but 0
	if k >= 0 {
		k++
	}
	return uid + k*s
}

// offStride draws uid + shift + k·stride (any k) inside the bounds; ok is false when there is
// none.
func offStride(r *arrivalRand, vars *Vars, uid, shift int64) (int64, bool) {
	s := vars.UID2Stride
	kmin, kmax := ceilDiv(vars.UIDMin-uid-shift, s), floorDiv(vars.UIDMax-uid-shift, s)
	if kmin > kmax {
		return 0, false
	}
	return uid + shift + (kmin+int64(r.below(uint64(kmax-kmin+1))))*s, true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

const hexDigits = "0123456789abcdef"

// appendUUID appends u in the canonical 8-4-4-4-12 form.
func appendUUID(dst []byte, u *[16]byte) []byte {
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0x0f])
	}
	return dst
}
