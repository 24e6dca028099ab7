package sqldbtest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// Limits of the proxy.
const (
	// startupBytesMax bounds a client's startup packet; messageBytesMax any other message.
	startupBytesMax = 64 << 10
	messageBytesMax = 64 << 20
)

// Codes of the protocol's first packets (PostgreSQL protocol 3.0).
const (
	codeSSLRequest = 80877103
	codeGSSRequest = 80877104
)

// Proxy is a TCP proxy in front of the test server that can drop a session just after the
// server committed a transaction and before the client hears so: a COMMIT whose outcome the
// client cannot know (a network cut or a server restart at the worst moment), made on demand.
type Proxy struct {
	// DSN is the test server's DSN through the proxy.
	DSN string

	ln      net.Listener
	server  string
	mu      sync.Mutex
	armed   map[string]int // application_name → COMMITs still to drop
	conns   map[net.Conn]struct{}
	closed  bool
	dropped atomic.Int64
	wg      sync.WaitGroup
}

// StartProxy starts a proxy in front of the test server (DSN(t), which must be a URL), stopped
// when the test ends.
func StartProxy(t testing.TB) *Proxy {
	t.Helper()
	u, err := url.Parse(DSN(t))
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Port() == "" {
		t.Fatalf("proxy: $%s is not a postgres:// URL with a port", EnvDSN)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, server: u.Host, armed: map[string]int{}, conns: map[net.Conn]struct{}{}}
	u.Host = ln.Addr().String()
	p.DSN = u.String()
	p.wg.Go(p.accept) // ends when Cleanup closes ln
	t.Cleanup(p.close)
	return p
}

// DropCommits arms the proxy: the next n COMMITs of sessions named app (their
// application_name) reach the server, and then the session is cut before its answer.
func (p *Proxy) DropCommits(app string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed[app] += n
}

// Dropped is how many sessions the proxy cut after a COMMIT.
func (p *Proxy) Dropped() int { return int(p.dropped.Load()) }

func (p *Proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(c) }) // ends when either side closes
	}
}

// track registers a session's connections, closed by close (at once when it already ran).
func (p *Proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		if p.closed {
			c.Close()
		}
		p.conns[c] = struct{}{}
	}
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		c.Close()
	}
}

// serve relays one session: the startup, then every message, watching for an armed COMMIT.
func (p *Proxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.server)
	if err != nil {
		client.Close()
		return
	}
	p.track(client, server)
	defer p.untrack(client, server)
	cr, sr := bufio.NewReader(client), bufio.NewReader(server)
	app, err := startup(cr, sr, client, server)
	if err != nil {
		return
	}
	var cutting atomic.Bool // set once an armed COMMIT went to the server
	done := make(chan struct{})
	go func() { // server → client; ends when either side closes
		defer close(done)
		for {
			typ, msg, err := readMessage(sr)
			if err != nil {
				return
			}
			if cutting.Load() && (typ == 'C' || typ == 'E' || typ == 'Z') {
				p.dropped.Add(1)
				client.Close()
				server.Close()
				return
			}
			if _, err := client.Write(msg); err != nil {
				return
			}
		}
	}()
	for { // client → server
		typ, msg, err := readMessage(cr)
		if err != nil {
			break
		}
		if typ == 'Q' && bytes.EqualFold(bytes.TrimRight(msg[5:], "\x00; "), []byte("commit")) && p.take(app) {
			cutting.Store(true)
		}
		if _, err := server.Write(msg); err != nil {
			break
		}
	}
	server.Close()
	<-done
}

// take consumes one armed COMMIT of app.
func (p *Proxy) take(app string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.armed[app] == 0 {
		return false
	}
	p.armed[app]--
	return true
}

// startup relays the session's first packets (an SSL or GSS request is answered by the
// server, a plain "N" with sslmode=disable) and returns the client's application_name.
func startup(cr, sr *bufio.Reader, client, server net.Conn) (string, error) {
	for range 3 { // SSL request, GSS request, startup message
		pkt, err := readStartup(cr)
		if err != nil {
			return "", err
		}
		if _, err := server.Write(pkt); err != nil {
			return "", err
		}
		code := binary.BigEndian.Uint32(pkt[4:8])
		if code != codeSSLRequest && code != codeGSSRequest {
			return startupParam(pkt[8:], "application_name"), nil
		}
		answer, err := sr.ReadByte()
		if err != nil {
			return "", err
		}
		if _, err := client.Write([]byte{answer}); err != nil {
			return "", err
		}
		if answer != 'N' {
			return "", errors.New("proxy: encrypted sessions are not relayed")
		}
	}
	return "", errors.New("proxy: no startup message")
}

func readStartup(r *bufio.Reader) ([]byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(head[:])
	if n < 8 || n > startupBytesMax {
		return nil, fmt.Errorf("proxy: startup packet of %d bytes", n)
	}
	pkt := make([]byte, n)
	copy(pkt, head[:])
	_, err := io.ReadFull(r, pkt[4:])
	return pkt, err
}

// startupParam finds a parameter among the startup message's NUL-terminated name/value pairs.
func startupParam(b []byte, name string) string {
	parts := bytes.Split(b, []byte{0})
	for i := 0; i+1 < len(parts); i += 2 {
		if string(parts[i]) == name {
			return string(parts[i+1])
		}
	}
	return ""
}

// readMessage reads one message (type byte, length, body) and returns its type and its bytes.
func readMessage(r *bufio.Reader) (byte, []byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n < 4 || n > messageBytesMax {
		return 0, nil, fmt.Errorf("proxy: message of %d bytes", n)
	}
	msg := make([]byte, 1+n)
	copy(msg, head[:])
	_, err := io.ReadFull(r, msg[5:])
	return head[0], msg, err
}
