package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loopAvailable reports whether this platform has the plain-HTTP event loop.
const loopAvailable = true

// Bounds of the event loop.
const (
	loopEventsMax  = 256      // events taken from one epoll_wait
	loopReadBytes  = 64 << 10 // the shared read buffer, which holds a kept line and a read
	resolveTimeout = 5 * time.Second
)

// wireLoop is the plain-HTTP engine: one goroutine that paces the arrivals, writes requests on
// non-blocking keep-alive sockets and reads the responses epoll reports, the way wrk works. It
// needs no goroutine, channel or timer per request, and sleeps in epoll_pwait2 with a
// nanosecond timeout, so that its CPU per request is close to wrk's.
type wireLoop struct {
	g        *Generator
	epfd     int
	evfd     int // an eventfd that ctx's cancellation writes, to wake the loop
	pools    []*wirePool
	ops      []wireOp
	conns    []*wireConn // by file descriptor
	timeouts []timeoutEntry
	tHead    int // index of the oldest entry of timeouts
	inflight int // arrivals holding a worker: connecting, sending, awaiting, or waiting for a connection
	events   []unix.EpollEvent
	rbuf     []byte
	scratch  [2][]byte
	vals     values
	stopped  bool // ctx was cancelled
	aborting bool
}

type wirePool struct {
	addr    unix.Sockaddr
	family  int
	idle    []*wireConn
	open    int
	max     int
	waiting []waitingArrival // FIFO; deadlines never decrease
	wHead   int
}

type waitingArrival struct {
	a        arrival
	deadline time.Time
}

type connState uint8

const (
	connConnecting connState = iota
	connBusy
	connIdle
	connClosed
)

type wireConn struct {
	fd       int
	pool     *wirePool
	state    connState
	reused   bool // a response was read on it before: it may have gone stale
	watchOut bool // EPOLLOUT is registered
	// The request in flight.
	a        arrival
	sent     time.Time
	deadline time.Time
	gen      uint32 // counts requests, so that a timeout entry of an earlier one is ignored
	retried  bool
	wbuf     []byte // the request; may be an op's static bytes
	own      []byte // the conn's buffer for rendered requests
	woff     int
	tail     []byte // an incomplete line of the response, kept between reads
	parser   responseParser
}

type timeoutEntry struct {
	c        *wireConn
	gen      uint32
	deadline time.Time
}

// newWireLoop resolves the origins and opens the epoll instance; it fails only on a host
// that does not resolve or on exhausted file descriptors.
func newWireLoop(ctx context.Context, g *Generator) (*wireLoop, error) {
	l := &wireLoop{g: g, epfd: -1, evfd: -1, events: make([]unix.EpollEvent, loopEventsMax), rbuf: make([]byte, loopReadBytes)}
	index := map[string]*wirePool{}
	conns := g.cfg.Connections
	if conns == 0 {
		conns = g.cfg.Workers
	}
	for i := range g.mix.ops {
		o := &g.mix.ops[i]
		l.ops = append(l.ops, newWireOp(o))
		if p, ok := index[o.origin]; ok {
			o.pool = indexOf(l.pools, p)
			continue
		}
		p, err := newWirePool(ctx, o.origin, conns)
		if err != nil {
			return nil, err
		}
		o.pool = len(l.pools)
		index[o.origin] = p
		l.pools = append(l.pools, p)
	}
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("create epoll: %w", err)
	}
	if l.evfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.close()
		return nil, fmt.Errorf("create eventfd: %w", err)
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.evfd)}); err != nil {
		l.close()
		return nil, fmt.Errorf("watch eventfd: %w", err)
	}
	return l, nil
}

func indexOf(pools []*wirePool, p *wirePool) int {
	for i, q := range pools {
		if q == p {
			return i
		}
	}
	panic("load: pool not found") // programmer error: index and pools are built together
}

func newWirePool(ctx context.Context, origin string, conns int) (*wirePool, error) {
	_, host, _ := cutScheme(origin)
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = trimBrackets(host), "80"
	}
	pn, err := net.LookupPort("tcp", port)
	if err != nil {
		return nil, fmt.Errorf("resolve port of %s: %w", origin, err)
	}
	ip, err := netip.ParseAddr(name)
	if err != nil {
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		defer cancel()
		ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", name)
		if err == nil && len(ips) == 0 {
			err = errNoAddress
		}
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", name, err)
		}
		ip = ips[0]
		for _, a := range ips {
			if a.Is4() || a.Is4In6() {
				ip = a
				break
			}
		}
	}
	p := &wirePool{max: conns}
	if ip = ip.Unmap(); ip.Is4() {
		p.family, p.addr = unix.AF_INET, &unix.SockaddrInet4{Port: pn, Addr: ip.As4()}
	} else {
		p.family, p.addr = unix.AF_INET6, &unix.SockaddrInet6{Port: pn, Addr: ip.As16()}
	}
	return p, nil
}

// close releases every descriptor.
func (l *wireLoop) close() {
	for _, c := range l.conns {
		if c != nil && c.state != connClosed {
			unix.Close(c.fd)
			c.state = connClosed
		}
	}
	for _, fd := range []int{l.evfd, l.epfd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// run paces the arrivals from start and serves them until the profile has ended and nothing
// is in flight, or the grace period after the end (or after ctx's cancellation) has passed.
func (l *wireLoop) run(ctx context.Context, start time.Time) error {
	defer l.close()
	stop := context.AfterFunc(ctx, func() {
		one := [8]byte{1}
		unix.Write(l.evfd, one[:]) //nolint:errcheck // a full counter already wakes the loop
	})
	defer stop()
	g := l.g
	end := start.Add(g.duration)
	n := int64(0)
	off, more := l.next(&n)
	pacing := ctx.Err() == nil
	l.stopped = !pacing
	var graceEnd time.Time
	if !pacing {
		graceEnd = time.Now().Add(g.grace)
	}
	for {
		now := time.Now()
		if pacing && l.stopped {
			pacing, graceEnd = false, now.Add(g.grace)
		}
		if pacing {
			for more && !start.Add(off).After(now) {
				l.dispatch(n, start.Add(off), now)
				n++
				off, more = l.next(&n)
			}
			if !more && !now.Before(end) {
				pacing, graceEnd = false, now.Add(g.grace)
			}
		}
		l.expire(now)
		if !pacing {
			if l.inflight == 0 {
				break
			}
			if !now.Before(graceEnd) {
				l.abortAll()
				break
			}
		}
		wake := graceEnd
		if pacing {
			wake = end
			if more {
				wake = start.Add(off)
				if q := now.Add(wakeQuantum); wake.Before(q) {
					wake = q
				}
			}
		}
		if d, ok := l.nextDeadline(); ok && d.Before(wake) {
			wake = d
		}
		if err := l.poll(time.Until(wake)); err != nil {
			l.abortAll()
			return err
		}
	}
	if l.stopped {
		return context.Cause(ctx)
	}
	return nil
}

// next advances n to the next arrival of this segment and returns its offset; false when the
// schedule has no more arrivals within the profile.
func (l *wireLoop) next(n *int64) (time.Duration, bool) {
	return nextOwned(l.g.pacer, l.g.cfg.Segment, l.g.duration, n)
}

// dispatch gives arrival n a worker and a connection, or drops it when every worker is taken.
func (l *wireLoop) dispatch(n int64, intended, now time.Time) {
	g := l.g
	g.due.Add(1)
	r := newArrivalRand(g.seed, n)
	a := arrival{seq: n, op: g.mix.pick(&r), intended: intended, rand: r}
	if l.inflight >= g.cfg.Workers {
		g.dropped.Add(1)
		g.rec.Drop(g.cfg.Phase, g.mix.ops[a.op].name)
		return
	}
	g.sent.Add(1)
	l.inflight++
	l.assign(a, now.Add(g.timeout))
}

// assign sends a on an idle connection of its pool, a new one, or queues it for the next free
// one when the pool is at its bound.
func (l *wireLoop) assign(a arrival, deadline time.Time) {
	p := l.pools[l.g.mix.ops[a.op].pool]
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if c.state == connIdle {
			l.start(c, a, time.Now(), deadline, false)
			return
		}
	}
	if p.open < p.max {
		sent := time.Now()
		c, err := l.connect(p)
		if err != nil {
			l.finish(a, sent, outcome{class: ClassConnect}, 0)
			return
		}
		l.start(c, a, sent, deadline, false)
		return
	}
	p.waiting = append(p.waiting, waitingArrival{a: a, deadline: deadline})
}

// start puts a's request on c.
func (l *wireLoop) start(c *wireConn, a arrival, sent, deadline time.Time, retried bool) {
	o := &l.g.mix.ops[a.op]
	w := &l.ops[a.op]
	if o.uses == 0 {
		c.wbuf = w.static
	} else {
		l.vals.draw(&a.rand, &l.g.cfg.Vars, o.uses, a.seq)
		c.own = w.appendRequest(c.own[:0], o, &l.scratch, &l.vals)
		c.wbuf = c.own
	}
	c.a, c.sent, c.deadline, c.retried, c.woff = a, sent, deadline, retried, 0
	c.gen++
	c.tail = c.tail[:0]
	c.parser.reset(w.head)
	l.timeouts = append(l.timeouts, timeoutEntry{c: c, gen: c.gen, deadline: deadline})
	if c.state == connConnecting {
		return // the request goes out when the connection is up
	}
	c.state = connBusy
	l.flush(c)
}

// connect opens a non-blocking connection; it completes when epoll reports it writable.
func (l *wireLoop) connect(p *wirePool) (*wireConn, error) {
	fd, err := unix.Socket(p.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open socket: %w", err)
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) //nolint:errcheck // a latency nicety
	c := &wireConn{fd: fd, pool: p, state: connBusy}
	events := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	switch err := unix.Connect(fd, p.addr); {
	case errors.Is(err, unix.EINPROGRESS):
		c.state, c.watchOut = connConnecting, true
		events |= unix.EPOLLOUT
	case err != nil:
		unix.Close(fd)
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch socket: %w", err)
	}
	for fd >= len(l.conns) {
		l.conns = append(l.conns, nil)
	}
	l.conns[fd] = c
	p.open++
	return c, nil
}

// flush writes what is left of c's request; when the socket is full it waits for EPOLLOUT.
func (l *wireLoop) flush(c *wireConn) {
	for c.woff < len(c.wbuf) {
		m, err := rawWrite(c.fd, c.wbuf[c.woff:])
		if err == unix.EAGAIN {
			l.watchOut(c, true)
			return
		}
		if err != nil {
			if c.parser.received == 0 && l.retry(c) {
				return
			}
			l.fail(c, classify(err))
			return
		}
		c.woff += m
	}
	l.watchOut(c, false)
}

func (l *wireLoop) watchOut(c *wireConn, on bool) {
	if c.watchOut == on {
		return
	}
	events := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if on {
		events |= unix.EPOLLOUT
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.fd)}); err != nil {
		l.fail(c, ClassOther)
		return
	}
	c.watchOut = on
}

// poll waits up to d for events and handles them.
func (l *wireLoop) poll(d time.Duration) error {
	ts := unix.NsecToTimespec(max(int64(d), 0))
	r, _, e := unix.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])),
		uintptr(len(l.events)), uintptr(unsafe.Pointer(&ts)), 0, 0)
	if e == unix.EINTR {
		return nil
	}
	if e != 0 {
		return fmt.Errorf("wait for events: %w", e)
	}
	for _, ev := range l.events[:int(r)] {
		fd := int(ev.Fd)
		if fd == l.evfd {
			var b [8]byte
			unix.Read(l.evfd, b[:]) //nolint:errcheck // only the wake-up matters
			l.stopped = true
			continue
		}
		if fd >= len(l.conns) || l.conns[fd] == nil {
			continue
		}
		c := l.conns[fd]
		if c.state == connConnecting {
			if !l.connected(c) {
				continue
			}
		} else if ev.Events&unix.EPOLLOUT != 0 && c.state == connBusy {
			l.flush(c)
		}
		if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && c.state != connClosed {
			l.readable(c)
		}
	}
	return nil
}

// connected finishes a connect that epoll reported; false when it failed.
func (l *wireLoop) connected(c *wireConn) bool {
	errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && errno != 0 {
		err = syscall.Errno(errno)
	}
	if err != nil {
		if errors.Is(err, unix.EINPROGRESS) || errors.Is(err, unix.EALREADY) {
			return false
		}
		l.fail(c, ClassConnect)
		return false
	}
	c.state = connBusy
	l.flush(c)
	return c.state == connBusy
}

// readable reads what the socket has and advances the response.
func (l *wireLoop) readable(c *wireConn) {
	buf := l.rbuf
	k := copy(buf, c.tail)
	m, err := rawRead(c.fd, buf[k:])
	if err == unix.EAGAIN {
		return
	}
	if c.state == connIdle {
		// A kept-alive connection the server closed, or sent bytes on unasked: drop it.
		l.closeConn(c)
		return
	}
	if err != nil {
		if c.parser.received == 0 && k == 0 && l.retry(c) {
			return
		}
		l.fail(c, classify(err))
		return
	}
	if m == 0 {
		if c.parser.received == 0 && k == 0 && l.retry(c) {
			return
		}
		if err := c.parser.eof(); err != nil {
			l.fail(c, ClassClosed)
			return
		}
		l.complete(c)
		return
	}
	used, perr := c.parser.feed(buf[:k+m])
	switch {
	case perr != nil:
		l.fail(c, ClassProtocol)
	case c.parser.done():
		if used < k+m {
			c.parser.close = true // bytes after the response: never reuse this connection
		}
		l.complete(c)
	default:
		c.tail = append(c.tail[:0], buf[used:k+m]...)
	}
}

// retry sends c's request again on a new connection, once, when c was a reused connection
// that the server closed before answering and the request is safe to replay.
func (l *wireLoop) retry(c *wireConn) bool {
	if !c.reused || c.retried || l.aborting || !l.g.mix.ops[c.a.op].replayable() {
		return false
	}
	a, sent, deadline, p := c.a, c.sent, c.deadline, c.pool
	l.closeConn(c)
	nc, err := l.connect(p)
	if err != nil {
		l.finish(a, sent, outcome{class: ClassConnect}, 0)
		l.serveWaiting(p)
		return true
	}
	l.start(nc, a, sent, deadline, true)
	return true
}

// complete records c's response and frees c for the next request.
func (l *wireLoop) complete(c *wireConn) {
	l.finish(c.a, c.sent, outcome{status: c.parser.status, bytesReceived: c.parser.received}, int64(len(c.wbuf)))
	c.reused = true
	c.gen++
	if c.parser.close {
		l.closeConn(c)
	} else {
		c.state = connIdle
		c.pool.idle = append(c.pool.idle, c)
	}
	l.serveWaiting(c.pool)
}

// fail records c's request as failed with class and closes c.
func (l *wireLoop) fail(c *wireConn, class string) {
	if c.state == connIdle || c.state == connClosed {
		l.closeConn(c)
		return
	}
	l.finish(c.a, c.sent, outcome{class: class}, int64(c.woff))
	l.closeConn(c)
	l.serveWaiting(c.pool)
}

func (l *wireLoop) closeConn(c *wireConn) {
	if c.state == connClosed {
		return
	}
	c.state = connClosed
	c.gen++
	l.conns[c.fd] = nil
	unix.Close(c.fd) // also removes it from the epoll set
	c.pool.open--
}

// serveWaiting gives freed capacity of p to the arrivals waiting for a connection.
func (l *wireLoop) serveWaiting(p *wirePool) {
	for p.wHead < len(p.waiting) && (len(p.idle) > 0 || p.open < p.max) && !l.aborting {
		w := p.waiting[p.wHead]
		p.waiting[p.wHead] = waitingArrival{}
		p.wHead++
		l.assignWaiting(p, w)
	}
	p.compact()
}

// compact drops the served head of the waiting queue once it is most of the slice.
func (p *wirePool) compact() {
	if p.wHead == len(p.waiting) {
		p.waiting, p.wHead = p.waiting[:0], 0
	} else if p.wHead > 1024 && p.wHead*2 > len(p.waiting) {
		p.waiting = p.waiting[:copy(p.waiting, p.waiting[p.wHead:])]
		p.wHead = 0
	}
}

func (l *wireLoop) assignWaiting(p *wirePool, w waitingArrival) {
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if c.state == connIdle {
			l.start(c, w.a, time.Now(), w.deadline, false)
			return
		}
	}
	sent := time.Now()
	c, err := l.connect(p)
	if err != nil {
		l.finish(w.a, sent, outcome{class: ClassConnect}, 0)
		return
	}
	l.start(c, w.a, sent, w.deadline, false)
}

// expire fails the requests and waiting arrivals whose deadline has passed.
func (l *wireLoop) expire(now time.Time) {
	for l.tHead < len(l.timeouts) {
		e := l.timeouts[l.tHead]
		live := e.c.gen == e.gen && (e.c.state == connBusy || e.c.state == connConnecting)
		if live && e.deadline.After(now) {
			break
		}
		l.timeouts[l.tHead] = timeoutEntry{}
		l.tHead++
		if live {
			l.fail(e.c, ClassTimeout)
		}
	}
	if l.tHead > 1024 && l.tHead*2 > len(l.timeouts) {
		l.timeouts = l.timeouts[:copy(l.timeouts, l.timeouts[l.tHead:])]
		l.tHead = 0
	}
	for _, p := range l.pools {
		for p.wHead < len(p.waiting) && !p.waiting[p.wHead].deadline.After(now) {
			w := p.waiting[p.wHead]
			p.waiting[p.wHead] = waitingArrival{}
			p.wHead++
			l.finish(w.a, now, outcome{class: ClassTimeout}, 0)
		}
		p.compact()
	}
}

// nextDeadline is the earliest deadline of a request in flight or waiting.
func (l *wireLoop) nextDeadline() (time.Time, bool) {
	var d time.Time
	ok := false
	for l.tHead < len(l.timeouts) {
		e := l.timeouts[l.tHead]
		if e.c.gen == e.gen && (e.c.state == connBusy || e.c.state == connConnecting) {
			d, ok = e.deadline, true
			break
		}
		l.timeouts[l.tHead] = timeoutEntry{}
		l.tHead++
	}
	for _, p := range l.pools {
		if p.wHead < len(p.waiting) && (!ok || p.waiting[p.wHead].deadline.Before(d)) {
			d, ok = p.waiting[p.wHead].deadline, true
		}
	}
	return d, ok
}

// abortAll ends every request in flight or waiting: the grace period is over.
func (l *wireLoop) abortAll() {
	l.aborting = true
	l.g.aborted.Store(true)
	for _, c := range l.conns {
		if c != nil && (c.state == connBusy || c.state == connConnecting) {
			l.fail(c, ClassAborted)
		}
	}
	now := time.Now()
	for _, p := range l.pools {
		for ; p.wHead < len(p.waiting); p.wHead++ {
			l.finish(p.waiting[p.wHead].a, now, outcome{class: ClassAborted}, 0)
		}
	}
}

// finish records one arrival's outcome and frees its worker.
func (l *wireLoop) finish(a arrival, sent time.Time, out outcome, reqBytes int64) {
	l.inflight--
	l.g.record(a, sent, time.Now(), out, reqBytes)
}

func rawWrite(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func rawRead(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
