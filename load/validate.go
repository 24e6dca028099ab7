package load

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Limits on a Config. Each is far above a sane plan and far below what would exhaust the
// machine, so that a mistake is refused with a message naming the limit instead of costing
// memory or time. They are at least the plan compiler's limits, so a plan that compiles runs.
const (
	RateRPSMax         = 1_000_000 // any rate of a profile, in arrivals per second
	StagesMax          = 1000
	ProfileDurationMax = 7 * 24 * time.Hour
	RequestsMax        = 100 // requests in one mix
	WeightMax          = 10_000
	NameBytesMax       = 63 // a request's name: its op in metrics
	URLBytesMax        = 8 << 10
	HeadersMax         = 64
	HeaderBytesMax     = 8 << 10 // one header value
	BodyBytesMax       = 64 << 10
	ExpectStatusMax    = 32
	WorkersMax         = 100_000
	TimeoutMax         = 10 * time.Minute
	GracePeriodMax     = 10 * time.Minute
	SegmentDenMax      = 1 << 20
	RunIDBytesMax      = 64
	VarMax             = 1<<53 - 1 // bound of uids and amounts: exact in a float64, for JSON readers
)

// TimeoutDefault is the per-request timeout when Config.Timeout is 0.
const TimeoutDefault = 10 * time.Second

// Errors of this package. Validate wraps each problem in a FieldError around one of the first.
var (
	ErrInvalidConfig = errors.New("invalid load config")
	ErrBadProfile    = errors.New("bad profile")
	ErrBadRequest    = errors.New("bad request")
	ErrBadTemplate   = errors.New("bad template")
	ErrBadVars       = errors.New("bad vars")
	ErrBadLimit      = errors.New("out of bounds")
	ErrBadSegment    = errors.New("bad segment")
	ErrAlreadyRun    = errors.New("generator already run")
	// ErrBadResponse is a response that does not parse as HTTP/1.1; its request fails with
	// ClassProtocol.
	ErrBadResponse = errors.New("bad http response")

	errUnexpectedEOF = errors.New("connection closed before the response ended")
	errNoAddress     = errors.New("no address")
)

// FieldError is one problem of a Config: the field's path in Go syntax, as in
// "Requests[1].Header[X-Id]", and what is wrong with it.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *FieldError) Unwrap() error { return e.Err }

// problems collects FieldErrors.
type problems []error

func (p *problems) add(field string, sentinel error, format string, args ...any) {
	*p = append(*p, &FieldError{Field: field, Err: fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))})
}

// Validate reports every problem of c, each a *FieldError; nil means the generator accepts c.
// The plan compiler checks the same things with file positions; the generator checks again
// because it must not trust its callers.
func (c Config) Validate() []error {
	var p problems
	for _, err := range validateProfile(c.Profile) {
		p = append(p, err)
	}
	used := c.validateRequests(&p)
	c.validateVars(&p, used)
	if c.Workers < 1 || c.Workers > WorkersMax {
		p.add("Workers", ErrBadLimit, "%d, want 1 to %d", c.Workers, WorkersMax)
	}
	if c.Connections < 0 || c.Connections > max(c.Workers, 1) {
		p.add("Connections", ErrBadLimit, "%d, want 0 (as many as workers) up to Workers (%d)", c.Connections, c.Workers)
	}
	if c.Timeout < 0 || c.Timeout > TimeoutMax {
		p.add("Timeout", ErrBadLimit, "%v, want 0 (the default, %v) up to %v", c.Timeout, TimeoutDefault, TimeoutMax)
	}
	if c.GracePeriod < 0 || c.GracePeriod > GracePeriodMax {
		p.add("GracePeriod", ErrBadLimit, "%v, want 0 (the timeout) up to %v", c.GracePeriod, GracePeriodMax)
	}
	s := c.Segment
	if s != (Segment{}) && (s.Den < 1 || s.Den > SegmentDenMax || s.FromNum < 0 || s.FromNum >= s.ToNum || s.ToNum > s.Den) {
		p.add("Segment", ErrBadSegment, "%d/%d:%d/%d, want 0 ≤ from < to ≤ den ≤ %d", s.FromNum, s.Den, s.ToNum, s.Den, SegmentDenMax)
	}
	return p
}

// validateProfile reports the problems of a profile.
func validateProfile(pr Profile) []error {
	var p problems
	checkRate := func(field string, r float64) {
		if math.IsNaN(r) || r < 0 || r > RateRPSMax {
			p.add(field, ErrBadProfile, "rate %v/s, want 0 to %d", r, RateRPSMax)
		}
	}
	checkRate("Profile.StartRPS", pr.StartRPS)
	if len(pr.Stages) == 0 || len(pr.Stages) > StagesMax {
		p.add("Profile.Stages", ErrBadProfile, "%d stages, want 1 to %d", len(pr.Stages), StagesMax)
	}
	var total time.Duration
	for i, st := range pr.Stages {
		checkRate(fmt.Sprintf("Profile.Stages[%d].TargetRPS", i), st.TargetRPS)
		if st.Duration < 0 || st.Duration > ProfileDurationMax {
			p.add(fmt.Sprintf("Profile.Stages[%d].Duration", i), ErrBadProfile, "%v, want 0 to %v", st.Duration, ProfileDurationMax)
			continue
		}
		total += st.Duration
		if total > ProfileDurationMax {
			p.add("Profile", ErrBadProfile, "longer than %v", ProfileDurationMax)
			break
		}
	}
	if total == 0 && len(pr.Stages) > 0 {
		p.add("Profile", ErrBadProfile, "zero total duration")
	}
	return p
}

// validateRequests reports the problems of the request mix and returns the template variables
// it uses.
func (c Config) validateRequests(p *problems) varSet {
	if len(c.Requests) == 0 || len(c.Requests) > RequestsMax {
		p.add("Requests", ErrBadRequest, "%d requests, want 1 to %d", len(c.Requests), RequestsMax)
	}
	var used varSet
	names := map[string]int{}
	for i, r := range c.Requests {
		f := fmt.Sprintf("Requests[%d]", i)
		if r.Name == "" || len(r.Name) > NameBytesMax || !isToken(r.Name) {
			p.add(f+".Name", ErrBadRequest, "%q, want 1 to %d letters, digits or -._~", r.Name, NameBytesMax)
		} else if j, dup := names[r.Name]; dup {
			p.add(f+".Name", ErrBadRequest, "%q repeats Requests[%d]'s name", r.Name, j)
		} else {
			names[r.Name] = i
		}
		if r.Weight < 1 || r.Weight > WeightMax {
			p.add(f+".Weight", ErrBadRequest, "%d, want 1 to %d", r.Weight, WeightMax)
		}
		if !isMethod(r.Method) {
			p.add(f+".Method", ErrBadRequest, "%q, want an upper-case HTTP method like GET or POST", r.Method)
		}
		if t, ok := checkTemplate(p, f+".URL", r.URL, URLBytesMax); ok {
			used |= t.uses
			checkURL(p, f+".URL", t)
		}
		if len(r.Header) > HeadersMax {
			p.add(f+".Header", ErrBadRequest, "%d headers, want at most %d", len(r.Header), HeadersMax)
		}
		for name, values := range r.Header {
			hf := fmt.Sprintf("%s.Header[%s]", f, name)
			if !isHeaderName(name) {
				p.add(hf, ErrBadRequest, "invalid header name")
			}
			switch http.CanonicalHeaderKey(name) {
			case "Content-Length", "Transfer-Encoding", "Connection":
				p.add(hf, ErrBadRequest, "set by the generator, not by a request")
			}
			if len(values) != 1 {
				p.add(hf, ErrBadRequest, "%d values, want one", len(values))
				continue
			}
			if t, ok := checkTemplate(p, hf, values[0], HeaderBytesMax); ok {
				used |= t.uses
				if strings.ContainsAny(values[0], "\r\n\x00") {
					p.add(hf, ErrBadRequest, "value has a line break or NUL")
				}
			}
		}
		if t, ok := checkTemplate(p, f+".Body", r.Body, BodyBytesMax); ok {
			used |= t.uses
		}
		if len(r.ExpectStatus) > ExpectStatusMax {
			p.add(f+".ExpectStatus", ErrBadRequest, "%d statuses, want at most %d", len(r.ExpectStatus), ExpectStatusMax)
		}
		for j, s := range r.ExpectStatus {
			if s < 100 || s > 599 {
				p.add(fmt.Sprintf("%s.ExpectStatus[%d]", f, j), ErrBadRequest, "%d, want 100 to 599", s)
			}
		}
	}
	return used
}

// checkTemplate parses one template, reporting a problem when it does not parse.
func checkTemplate(p *problems, field, s string, limit int) (*template, bool) {
	if len(s) > limit {
		p.add(field, ErrBadTemplate, "%d bytes, want at most %d", len(s), limit)
		return nil, false
	}
	t, err := parseTemplate(s)
	if err != nil {
		*p = append(*p, &FieldError{Field: field, Err: err})
		return nil, false
	}
	return t, true
}

// checkURL checks that a URL template renders an absolute http(s) URL whose scheme and host
// are literal.
func checkURL(p *problems, field string, t *template) {
	prefix := t.literalPrefix()
	scheme, rest, ok := strings.Cut(prefix, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		p.add(field, ErrBadRequest, "%q, want an absolute http:// or https:// URL", t.src)
		return
	}
	if !strings.ContainsAny(rest, "/?") && len(t.parts) > 1 {
		p.add(field, ErrBadRequest, "%q: the host must be literal, not a template", t.src)
		return
	}
	u, err := url.Parse(string(t.render(nil, &sampleValues)))
	switch {
	case err != nil:
		p.add(field, ErrBadRequest, "%q does not parse: %v", t.src, err)
	case u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "":
		p.add(field, ErrBadRequest, "%q, want scheme://host[:port]/path?query, no user or fragment", t.src)
	case strings.ContainsAny(t.src, " \t\r\n\x00"):
		p.add(field, ErrBadRequest, "%q has whitespace", t.src)
	}
}

// validateVars checks the bounds of the variables the mix uses.
func (c Config) validateVars(p *problems, used varSet) {
	v := c.Vars
	if used&(usesUID|usesUID2) != 0 && (v.UIDMin < 0 || v.UIDMin > v.UIDMax || v.UIDMax > VarMax) {
		p.add("Vars.UIDMin", ErrBadVars, "uids %d..%d, want 0 ≤ min ≤ max ≤ %d", v.UIDMin, v.UIDMax, int64(VarMax))
	} else if used&usesUID2 != 0 && v.UIDMin == v.UIDMax {
		p.add("Vars.UIDMax", ErrBadVars, "{{uid2}} needs two uids at least, got %d..%d", v.UIDMin, v.UIDMax)
	} else if used&usesUID2 != 0 && v.UID2Stride > 1 && (v.UIDMax-v.UIDMin+1)/2 < v.UID2Stride {
		// Every uid has a partner at ±stride only when the range spans two strides.
		p.add("Vars.UID2Stride", ErrBadVars, "a {{uid2}} stride of %d needs at least %d uids, got %d..%d",
			v.UID2Stride, 2*v.UID2Stride, v.UIDMin, v.UIDMax)
	}
	if v.UID2Stride < 0 || v.UID2Stride > VarMax {
		p.add("Vars.UID2Stride", ErrBadVars, "stride %d, want 0 ≤ stride ≤ %d", v.UID2Stride, int64(VarMax))
	}
	if !(v.UID2OffStride >= 0 && v.UID2OffStride <= 1) {
		p.add("Vars.UID2OffStride", ErrBadVars, "share %v, want 0 to 1", v.UID2OffStride)
	} else if v.UID2OffStride > 0 && v.UID2Stride <= 1 {
		p.add("Vars.UID2OffStride", ErrBadVars, "a share off the stride needs a stride over 1, got %d", v.UID2Stride)
	}
	if used&usesAmount != 0 && (v.AmountMinorMin < 0 || v.AmountMinorMin > v.AmountMinorMax || v.AmountMinorMax > VarMax) {
		p.add("Vars.AmountMinorMin", ErrBadVars, "amounts %d..%d, want 0 ≤ min ≤ max ≤ %d", v.AmountMinorMin, v.AmountMinorMax, int64(VarMax))
	}
	if used&usesRun != 0 && (v.RunID == "" || len(v.RunID) > RunIDBytesMax || !isToken(v.RunID)) {
		p.add("Vars.RunID", ErrBadVars, "%q, want 1 to %d letters, digits or -._~ for {{run}}", v.RunID, RunIDBytesMax)
	}
}

// isToken reports whether s is made of URL-safe unreserved characters only, so that it can
// stand in a URL, a header or a metric name as it is.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return s != ""
}

// isMethod accepts upper-case RFC 9110 method tokens up to 16 bytes.
func isMethod(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// isHeaderName checks RFC 9110's token characters.
func isHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
