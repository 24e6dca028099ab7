package load

import (
	"time"

	"github.com/redline-dev/redline/metrics"
)

// workerState is what one worker reuses from request to request: an exchange per op of the
// mix, prepared on the op's first arrival, and the values of the current arrival.
type workerState struct {
	ops  []*preparedOp
	vals values
}

func newWorkerState(ops int) *workerState {
	return &workerState{ops: make([]*preparedOp, ops)}
}

// preparedOp is an op's request, with its literal parts set once; only the parts that hold
// variables are rendered again for each arrival, into buffers the op keeps.
type preparedOp struct {
	x         exchange
	url, body []byte
	headers   [][]byte // rendered values of the headers with variables, by index in op.headers
	// headerBase is the size of the header block without the rendered parts, so that the size
	// of each request is known without serializing its headers again.
	headerBase int
	bodyStatic []byte
}

// send renders one arrival's request, sends it and records the outcome.
func (g *Generator) send(w *workerState, a arrival) {
	o := &g.mix.ops[a.op]
	if o.uses != 0 {
		w.vals.draw(&a.rand, &g.cfg.Vars, o.uses, a.seq)
	}
	p := w.ops[a.op]
	if p == nil {
		p = prepare(o, &w.vals)
		w.ops[a.op] = p
	} else if o.uses != 0 {
		p.render(o, &w.vals)
	}
	reqBytes := int64(p.headerBase + len(p.x.req.Body()))
	if o.url.uses != 0 {
		reqBytes += int64(len(p.url))
	}
	for _, h := range p.headers {
		reqBytes += int64(len(h))
	}

	// The deadline counts from the hand-off, so that waiting for a connection is part of it.
	deadline := time.Now().Add(g.timeout)
	var out outcome
	var sent time.Time
	if g.client.acquire(o.pool, deadline) {
		sent = time.Now()
		out = g.client.do(o.pool, &p.x, deadline)
		g.client.release(o.pool)
	} else {
		sent, out = time.Now(), outcome{class: ClassTimeout}
	}
	g.record(a, sent, time.Now(), out, reqBytes)
}

// record folds one arrival's outcome into the recorder and the counters.
func (g *Generator) record(a arrival, sent, done time.Time, out outcome, reqBytes int64) {
	o := &g.mix.ops[a.op]
	s := metrics.Sample{
		Phase:         g.cfg.Phase,
		Op:            o.name,
		Intended:      a.intended,
		Sent:          sent,
		Done:          done,
		Status:        out.status,
		BytesSent:     reqBytes,
		BytesReceived: out.bytesReceived,
	}
	switch {
	case out.class != "" && g.aborted.Load():
		s.Failed, s.Error = true, ClassAborted
		g.abortedN.Add(1)
	case out.class != "":
		s.Failed, s.Error = true, out.class
	case !o.succeeded(out.status):
		s.Failed, s.Error = true, ClassStatus
	}
	g.rec.Record(s)
	// completed before failed: Progress reads them in the other order, so Failed ≤ Completed.
	g.completed.Add(1)
	if s.Failed {
		g.failed.Add(1)
	}
}

// prepare sets every part of o's request, rendered with v, and measures its header block.
func prepare(o *op, v *values) *preparedOp {
	p := &preparedOp{}
	p.x.setMethod(o.method)
	if o.url.static() {
		p.x.setURL([]byte(o.url.src))
	}
	for i := range o.headers {
		h := &o.headers[i]
		if h.value.static() {
			p.x.setHeader(h.name, []byte(h.value.src))
		}
	}
	if o.body.static() {
		p.bodyStatic = []byte(o.body.src)
		p.x.setBody(p.bodyStatic)
	}
	p.headers = make([][]byte, 0, len(o.headers))
	for i := range o.headers {
		if !o.headers[i].value.static() {
			p.headers = append(p.headers, nil)
		}
	}
	p.render(o, v)
	p.headerBase = p.x.headerBytes()
	if o.url.uses != 0 {
		p.headerBase -= len(p.url)
	}
	for _, h := range p.headers {
		p.headerBase -= len(h)
	}
	return p
}

// render renders the parts of o that hold variables.
func (p *preparedOp) render(o *op, v *values) {
	if o.url.uses != 0 {
		p.url = o.url.render(p.url[:0], v)
		p.x.setURL(p.url)
	}
	j := 0
	for i := range o.headers {
		h := &o.headers[i]
		if h.value.static() {
			continue
		}
		p.headers[j] = h.value.render(p.headers[j][:0], v)
		p.x.setHeader(h.name, p.headers[j])
		j++
	}
	if o.body.uses != 0 {
		p.body = o.body.render(p.body[:0], v)
		p.x.setBody(p.body)
	}
}
