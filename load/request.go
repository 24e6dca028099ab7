package load

import (
	"net/http"
	"strconv"
)

// wireOp is an op ready for the plain-HTTP engine: its request head split around the parts
// that hold variables, or, when nothing does, its whole request serialized once.
type wireOp struct {
	static    []byte // the whole request, when o.uses == 0
	host      string // the Host header: the origin's host unless the request sets one
	hasLength bool   // send Content-Length even when the body is empty
	head      bool   // a HEAD request: its response has no body
}

func newWireOp(o *op) wireOp {
	_, host, _ := cutScheme(o.origin)
	w := wireOp{host: host, head: o.method == http.MethodHead}
	switch o.method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		w.hasLength = true
	}
	for _, h := range o.headers {
		if h.name == "Host" && h.value.static() {
			w.host = h.value.src
		}
	}
	if o.uses == 0 {
		w.static = w.appendRequest(nil, o, nil, &sampleValues)
	}
	return w
}

// appendRequest appends o's HTTP/1.1 request, rendered with v, to dst. scratch is reused for
// the URL and the body, which must be rendered before the head (the head carries the body's
// length); it returns the grown scratch too.
func (w *wireOp) appendRequest(dst []byte, o *op, scratch *[2][]byte, v *values) []byte {
	var url, body []byte
	if scratch != nil {
		scratch[0] = o.url.render(scratch[0][:0], v)
		scratch[1] = o.body.render(scratch[1][:0], v)
		url, body = scratch[0], scratch[1]
	} else {
		url, body = o.url.render(nil, v), o.body.render(nil, v)
	}
	target := url[len(o.origin):]
	dst = append(dst, o.method...)
	dst = append(dst, ' ')
	if len(target) == 0 || target[0] != '/' {
		dst = append(dst, '/')
	}
	dst = append(dst, target...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, w.host...)
	dst = append(dst, "\r\nUser-Agent: redline\r\n"...)
	for i := range o.headers {
		h := &o.headers[i]
		if h.name == "Host" {
			continue
		}
		dst = append(dst, h.name...)
		dst = append(dst, ": "...)
		dst = h.value.render(dst, v)
		dst = append(dst, "\r\n"...)
	}
	if len(body) > 0 || w.hasLength {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...)
}

// replayable reports whether a request may be sent again after its connection failed before
// any response byte came: as in net/http, when its method is idempotent or it carries an
// idempotency key.
func (o *op) replayable() bool {
	switch o.method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	for _, h := range o.headers {
		if h.name == "Idempotency-Key" || h.name == "X-Idempotency-Key" {
			return true
		}
	}
	return false
}
