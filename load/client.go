package load

// Two engines send requests; Generator.Run picks one, and nothing outside it sees either.
//
// Plain HTTP goes through wireLoop (loop_linux.go): one goroutine, an epoll loop over
// non-blocking sockets, its own HTTP/1.1 writer and incremental response parser, the way wrk
// works. Measured side by side on a 2-core machine against a local server, open model at
// 10,000/s: the loop 11–18 µs of CPU per request; wrk paced to the same rate 9–13 µs; fasthttp
// with a goroutine per worker 33–58 µs; net/http tuned as vegeta is (keep-alive,
// MaxConnsPerHost, one pre-built request, io.Copy to io.Discard) 68 µs. Closed loop at full
// speed fasthttp costs 11.9 µs against wrk's 8.4, but an open-model generator pays for the
// idle-to-busy wake-ups of goroutines, channels and timers on every request, and only an event
// loop avoids them. So only the loop meets the goal of at most 1.5x wrk's CPU per request.
//
// TLS, and platforms without epoll, go through the worker engine below: goroutine workers and
// fasthttp's HostClient, which needs no code of ours for TLS, keeps connections alive and
// reads bodies in a stream. The types client and exchange confine fasthttp to this file.

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Error classes of a failed request, in metrics.Sample.Error.
const (
	ClassTimeout  = "timeout"  // no response within Config.Timeout
	ClassConnect  = "connect"  // the connection could not be made
	ClassReset    = "reset"    // the server reset the connection
	ClassClosed   = "closed"   // the server closed the connection before the whole response
	ClassStatus   = "status"   // a response with a status outside the request's ExpectStatus
	ClassAborted  = "aborted"  // still in flight when the grace period ended
	ClassProtocol = "protocol" // a response that is not HTTP/1.1
	ClassOther    = "other"
)

// Bounds of the client.
const (
	// ResponseBodyBytesMax is how much of a response body is kept; the rest is read and
	// discarded, so that the connection can be reused, and counted in BytesReceived.
	ResponseBodyBytesMax = 64 << 10
	// responseHeaderBytesMax bounds a response's status line and headers.
	responseHeaderBytesMax = 16 << 10
	// requestHeaderBytesMax bounds the buffer that writes a request's headers; bodies are
	// written past it.
	requestHeaderBytesMax = 16 << 10
	// idleConnDuration closes connections idle this long, before most servers would.
	idleConnDuration = 30 * time.Second
)

// client sends requests over keep-alive connections pooled per origin. When there are fewer
// connections than workers, a request first waits for one of its pool's connection tokens.
// abort closes every connection, which ends every request in flight at once, and releases the
// requests waiting for a connection.
type client struct {
	pools   []pool
	conns   connSet
	dialCtx context.Context // cancelled by abort, so that no dial outlives the run
	abortFn context.CancelFunc
}

type pool struct {
	origin string
	hc     *fasthttp.HostClient
	tokens chan struct{} // nil when every worker can have a connection
}

// newClient makes one pool per distinct origin and sets ops' pool indexes.
func newClient(ops []op, workers, conns int) *client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{dialCtx: ctx, abortFn: cancel}
	c.conns.m = map[*trackedConn]struct{}{}
	if conns == 0 {
		conns = workers
	}
	index := map[string]int{}
	for i := range ops {
		o := &ops[i]
		if j, ok := index[o.origin]; ok {
			o.pool = j
			continue
		}
		o.pool = len(c.pools)
		index[o.origin] = o.pool
		p := pool{origin: o.origin, hc: c.hostClient(o.origin, conns)}
		if conns < workers {
			p.tokens = make(chan struct{}, conns)
		}
		c.pools = append(c.pools, p)
	}
	return c
}

func (c *client) hostClient(origin string, conns int) *fasthttp.HostClient {
	scheme, host, _ := cutScheme(origin)
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		port := "80"
		if scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(trimBrackets(host), port)
	}
	return &fasthttp.HostClient{
		Addr:                          addr,
		IsTLS:                         scheme == "https",
		Name:                          "redline",
		DialTimeout:                   c.dial,
		MaxConns:                      conns,
		MaxIdleConnDuration:           idleConnDuration,
		ReadBufferSize:                responseHeaderBytesMax,
		WriteBufferSize:               requestHeaderBytesMax,
		StreamResponseBody:            true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		MaxIdemponentCallAttempts:     2,
		RetryIfErr:                    retryStaleConn,
	}
}

// acquire waits until deadline for a connection of pool i; it reports false when the deadline
// passed or the client was aborted first. release must follow a true.
func (c *client) acquire(i int, deadline time.Time) bool {
	tokens := c.pools[i].tokens
	if tokens == nil {
		return true
	}
	select {
	case tokens <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case tokens <- struct{}{}:
		return true
	case <-t.C:
	case <-c.dialCtx.Done():
	}
	return false
}

func (c *client) release(i int) {
	if tokens := c.pools[i].tokens; tokens != nil {
		<-tokens
	}
}

// retryStaleConn sends a request again, once, when the server closed a kept-alive connection
// before answering it (the race every keep-alive client has), if the request is safe to replay:
// the rule of net/http and of the event loop (op.replayable). Nothing else is retried: a load
// generator reports what happened.
func retryStaleConn(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	h := &req.Header
	replayable := h.IsGet() || h.IsHead() || h.IsPut() || h.IsDelete() || h.IsOptions() ||
		len(h.Peek("Idempotency-Key")) > 0 || len(h.Peek("X-Idempotency-Key")) > 0
	stale := errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	return false, attempts < 2 && replayable && stale
}

func cutScheme(origin string) (scheme, host string, ok bool) {
	for i := 0; i+2 < len(origin); i++ {
		if origin[i:i+3] == "://" {
			return origin[:i], origin[i+3:], true
		}
	}
	return "", origin, false
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

func (c *client) dial(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(c.dialCtx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.conns.add(conn)
}

// abort closes every connection: requests in flight fail at once, requests waiting for a
// connection give up, and new ones cannot dial.
func (c *client) abort() {
	c.abortFn()
	c.conns.closeAll()
}

// close releases every connection and the client's context.
func (c *client) close() {
	for i := range c.pools {
		c.pools[i].hc.CloseIdleConnections()
	}
	c.abort()
}

// exchange is one worker's reusable request and response, and the buffer that keeps the start
// of response bodies. A worker renders a request into it, sends it with client.do, and reads
// the outcome; nothing is allocated per request once its buffers have grown.
type exchange struct {
	req  fasthttp.Request
	resp fasthttp.Response
	body []byte // the kept start of the last response body
}

// outcome is what one request came to.
type outcome struct {
	status        int
	class         string // "" or one of the Class constants, except ClassStatus
	bytesReceived int64
}

func (x *exchange) setMethod(m string) { x.req.Header.SetMethod(m) }

// setURL sets the absolute URL; fasthttp parses it lazily.
func (x *exchange) setURL(u []byte) { x.req.SetRequestURIBytes(u) }

func (x *exchange) setHeader(name string, value []byte) { x.req.Header.SetBytesV(name, value) }

// setBody sets the body without copying: b must stay unchanged until the request is done.
func (x *exchange) setBody(b []byte) { x.req.SetBodyRaw(b) }

// headerBytes is the size of the request's header block on the wire. It serializes the
// headers: call it once per prepared request, not per arrival.
func (x *exchange) headerBytes() int { return len(x.req.Header.Header()) }

// do sends x's request over pool i and reads the response, all before deadline.
func (c *client) do(i int, x *exchange, deadline time.Time) outcome {
	err := c.pools[i].hc.DoDeadline(&x.req, &x.resp, deadline)
	if err != nil {
		return outcome{class: classify(err)}
	}
	out := outcome{status: x.resp.StatusCode(), bytesReceived: headerBytes(&x.resp.Header)}
	n, err := readBody(x, &x.resp)
	out.bytesReceived += n
	if err != nil {
		out.class = classify(err)
	}
	return out
}

// readBody keeps up to ResponseBodyBytesMax of the body and discards the rest, then hands the
// connection back to the pool.
func readBody(x *exchange, resp *fasthttp.Response) (int64, error) {
	defer resp.CloseBodyStream() //nolint:errcheck // a failed close only loses the connection
	r := resp.BodyStream()
	if r == nil {
		x.body = append(x.body[:0], resp.Body()...)
		return int64(len(x.body)), nil
	}
	x.body = x.body[:0]
	var n int64
	for len(x.body) < ResponseBodyBytesMax {
		if len(x.body) == cap(x.body) {
			x.body = slices.Grow(x.body, max(4096, cap(x.body)))
		}
		m, err := r.Read(x.body[len(x.body):min(cap(x.body), ResponseBodyBytesMax)])
		x.body = x.body[:len(x.body)+m]
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	rest, err := io.Copy(io.Discard, r)
	return n + rest, err
}

// headerBytes approximates the size of a response's status line and headers on the wire.
func headerBytes(h *fasthttp.ResponseHeader) int64 {
	n := int64(len("HTTP/1.1 200 OK\r\n\r\n"))
	for k, v := range h.All() {
		n += int64(len(k) + len(": ") + len(v) + len("\r\n"))
	}
	return n
}

// classify maps a transport error to its class.
func classify(err error) string {
	var ne net.Error
	var op *net.OpError
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		return ClassTimeout
	case errors.As(err, &op) && op.Op == "dial":
		return ClassConnect
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassConnect
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ClassReset
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return ClassClosed
	case errors.As(err, &ne) && ne.Timeout():
		return ClassTimeout
	}
	return ClassOther
}

// connSet tracks the open connections, so that abort can close them.
type connSet struct {
	mu      sync.Mutex
	m       map[*trackedConn]struct{}
	aborted bool
}

func (s *connSet) add(c net.Conn) (net.Conn, error) {
	tc := &trackedConn{Conn: c, set: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aborted {
		c.Close()
		return nil, net.ErrClosed
	}
	s.m[tc] = struct{}{}
	return tc, nil
}

func (s *connSet) remove(c *trackedConn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	s.aborted = true
	conns := make([]*trackedConn, 0, len(s.m))
	for c := range s.m {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// trackedConn removes itself from its set when closed.
type trackedConn struct {
	net.Conn
	set *connSet
}

func (c *trackedConn) Close() error {
	c.set.remove(c)
	return c.Conn.Close()
}
