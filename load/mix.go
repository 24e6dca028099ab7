package load

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// op is one request of the mix, compiled: templates parsed once, header names sorted.
type op struct {
	name    string
	method  string
	origin  string // scheme://host[:port], literal in the URL template
	pool    int    // index of the origin's connection pool in the client
	url     *template
	headers []headerTemplate
	body    *template
	expect  []int // statuses that count as success; empty means 200–399
	uses    varSet
}

type headerTemplate struct {
	name  string
	value *template
}

// succeeded reports whether status counts as a success of o.
func (o *op) succeeded(status int) bool {
	if len(o.expect) == 0 {
		return status >= 200 && status <= 399
	}
	return slices.Contains(o.expect, status)
}

// mix is the weighted request mix. The choice for an arrival is the first draw of its random
// stream, so it depends on the seed and the arrival's number only.
type mix struct {
	ops   []op
	cum   []uint64 // cumulative weights
	total uint64
}

// newMix compiles a validated mix.
func newMix(reqs []Request) (*mix, error) {
	m := &mix{ops: make([]op, 0, len(reqs)), cum: make([]uint64, 0, len(reqs))}
	for i, r := range reqs {
		o, err := compileOp(r)
		if err != nil {
			return nil, fmt.Errorf("compile request %d: %w", i, err)
		}
		m.ops = append(m.ops, o)
		m.total += uint64(r.Weight)
		m.cum = append(m.cum, m.total)
	}
	return m, nil
}

func compileOp(r Request) (op, error) {
	o := op{name: r.Name, method: r.Method, expect: slices.Clone(r.ExpectStatus)}
	var err error
	if o.url, err = parseTemplate(r.URL); err != nil {
		return op{}, fmt.Errorf("parse url: %w", err)
	}
	scheme, rest, _ := strings.Cut(o.url.literalPrefix(), "://")
	host := rest
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		host = rest[:i]
	}
	o.origin = scheme + "://" + host
	if o.body, err = parseTemplate(r.Body); err != nil {
		return op{}, fmt.Errorf("parse body: %w", err)
	}
	o.uses = o.url.uses | o.body.uses
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t, err := parseTemplate(r.Header[name][0])
		if err != nil {
			return op{}, fmt.Errorf("parse header %s: %w", name, err)
		}
		o.headers = append(o.headers, headerTemplate{name: http.CanonicalHeaderKey(name), value: t})
		o.uses |= t.uses
	}
	return o, nil
}

// pick returns the index of the op of the arrival whose stream is r.
func (m *mix) pick(r *arrivalRand) int {
	if len(m.ops) == 1 {
		r.next() // keep the streams of one-op and many-op mixes alike
		return 0
	}
	x := r.below(m.total)
	i, _ := slices.BinarySearch(m.cum, x+1)
	return i
}
