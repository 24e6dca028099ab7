package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"
)

// Limits of the fault proxy.
const (
	LinksMax = 64 // links one proxy holds
	// probeTimeout bounds one evidence probe through a link.
	probeTimeout = 2 * time.Second
	// probeRequest is what a probe sends: any HTTP server answers it, even with an error.
	probeRequest = "HEAD / HTTP/1.1\r\nHost: redline-probe\r\nConnection: close\r\n\r\n"
)

// Proxy is Redline's embedded fault proxy (toxiproxy, in process): each link listens on a
// loopback port and forwards to an upstream, and network and HTTP faults are toxics on it. The
// plan's target URL is rewritten to the link, so every request of the load passes through.
type Proxy struct {
	server *toxiproxy.ApiServer

	mu    sync.Mutex
	links map[string]*link
}

type link struct {
	p        *toxiproxy.Proxy
	upstream string
	baseline time.Duration // a probe's round trip before any fault
}

var quietOnce sync.Once

// NewProxy returns a proxy without links. Close stops every link.
func NewProxy() *Proxy {
	// toxiproxy's toxics log through zerolog's global logger; a rehearsal's output is Redline's.
	quietOnce.Do(func() { zerolog.SetGlobalLevel(zerolog.ErrorLevel) })
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	return &Proxy{server: srv, links: map[string]*link{}}
}

// AddLink starts a link named name on listen (host:port, port 0 for any) to upstream and
// returns the address it listens on.
func (p *Proxy) AddLink(name, listen, upstream string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.links[name]; dup {
		return "", fmt.Errorf("add proxy link %s: already exists", name)
	}
	if len(p.links) >= LinksMax {
		return "", fmt.Errorf("add proxy link %s: over the limit of %d links", name, LinksMax)
	}
	tp := toxiproxy.NewProxy(p.server, name, listen, upstream)
	if err := tp.Start(); err != nil {
		return "", fmt.Errorf("add proxy link %s: %w", name, err)
	}
	l := &link{p: tp, upstream: upstream}
	l.baseline, _ = probe(tp.Listen, probeTimeout)
	p.links[name] = l
	return tp.Listen, nil
}

// Close stops every link: the effects of every toxic end with them.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, l := range p.links {
		l.p.Stop()
		delete(p.links, name)
	}
}

// Toxics returns the names of the toxics on a link, and whether the link is accepting: the
// state a recovery test checks.
func (p *Proxy) Toxics(name string) (names []string, enabled bool) {
	l := p.link(name)
	if l == nil {
		return nil, false
	}
	for _, t := range l.p.Toxics.GetToxicArray() {
		if w, ok := t.(*toxics.ToxicWrapper); ok {
			names = append(names, w.Name)
		}
	}
	l.p.Lock()
	defer l.p.Unlock()
	return names, l.p.Enabled
}

func (p *Proxy) link(name string) *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.links[name]
}

var (
	_ Executor = (*Proxy)(nil)
	_ Prover   = (*Proxy)(nil)
)

// Plan names the toxic (or the link stop) the fault becomes.
func (p *Proxy) Plan(f Fault, t Target) (Undo, error) {
	if (f.Kind != KindNetwork && f.Kind != KindHTTP) || p.link(t.Link) == nil {
		return Undo{}, fmt.Errorf("plan %s on %s: %w", f, t.Name, ErrNoExecutor)
	}
	if f.Kind == KindNetwork && f.Action == ActionPartition && f.Params.PartitionReject {
		return Undo{Op: OpStartLink, Link: t.Link, InProcess: true}, nil
	}
	return Undo{Op: OpRemoveToxic, Link: t.Link, Toxic: f.Name, InProcess: true}, nil
}

// toxic is the toxiproxy toxic of a fault.
type toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float64        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// toxicOf maps a fault to a toxic. TCP-level toxics emulate packet faults per connection: loss
// blackholes that share of connections; a partition that drops blackholes all of them; an HTTP
// abort resets the connection.
func toxicOf(f Fault) toxic {
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	t := toxic{Name: f.Name, Stream: "downstream", Toxicity: 1}
	switch {
	case f.Action == ActionDelay:
		t.Type, t.Attributes = "latency", map[string]any{"latency": ms(f.Params.Latency), "jitter": ms(f.Params.Jitter)}
	case f.Action == ActionLoss:
		t.Type, t.Toxicity, t.Attributes = "timeout", f.Params.LossPercent/100, map[string]any{"timeout": 0}
	case f.Action == ActionPartition:
		t.Type, t.Stream, t.Attributes = "timeout", "upstream", map[string]any{"timeout": 0}
	case f.Action == ActionBandwidth:
		t.Type, t.Attributes = "bandwidth", map[string]any{"rate": max(f.Params.BandwidthBPS/1024, 1)}
	case f.Action == ActionAbort:
		t.Type, t.Attributes = "reset_peer", map[string]any{"timeout": 0}
	}
	return t
}

// Inject adds the toxic, or stops the link for a rejecting partition. A toxic already there
// (a repeated injection) is left as it is.
func (p *Proxy) Inject(_ context.Context, f Fault, t Target, u Undo) error {
	l := p.link(u.Link)
	if l == nil {
		return fmt.Errorf("inject %s on %s: link %s: %w", f, t.Name, u.Link, ErrGone)
	}
	if u.Op == OpStartLink {
		l.p.Stop()
		return nil
	}
	if l.p.Toxics.GetToxic(u.Toxic) != nil {
		return nil
	}
	b, err := json.Marshal(toxicOf(f))
	if err != nil {
		return fmt.Errorf("inject %s: %w", f, err)
	}
	if _, err := l.p.Toxics.AddToxicJson(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("inject %s on %s: %w", f, t.Name, err)
	}
	return nil
}

// Recover removes the toxic or starts the link again.
func (p *Proxy) Recover(ctx context.Context, u Undo) error {
	l := p.link(u.Link)
	if l == nil {
		return nil // the link is gone, and its toxics with it
	}
	if u.Op == OpStartLink {
		err := l.p.Start()
		if err != nil && !errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
			return fmt.Errorf("start proxy link %s: %w", u.Link, err)
		}
		return nil
	}
	if l.p.Toxics.GetToxic(u.Toxic) == nil {
		return nil
	}
	if err := l.p.Toxics.RemoveToxic(ctx, u.Toxic); err != nil && l.p.Toxics.GetToxic(u.Toxic) != nil {
		return fmt.Errorf("remove toxic %s: %w", u.Toxic, err)
	}
	return nil
}

// Evidence probes the link: a delay must show in the round trip, a partition must stop data
// (drop) or connections (reject), an abort must reset; loss and bandwidth are proven by the toxic
// in place, since one probe cannot measure them.
func (p *Proxy) Evidence(ctx context.Context, f Fault, _ Target, u Undo) Evidence {
	l := p.link(u.Link)
	began := time.Now()
	if l == nil {
		return Evidence{Status: EvidenceMissing, Detail: "the proxy link is gone"}
	}
	wait := probeTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	switch {
	case u.Op == OpStartLink:
		_, err := probe(l.p.Listen, wait)
		if isRefused(err) {
			return Evidence{Status: EvidenceObserved, Latency: time.Since(began), Detail: "connections to the link are refused"}
		}
		return Evidence{Status: EvidenceMissing, Latency: time.Since(began), Detail: fmt.Sprintf("the link still accepts: %v", err)}
	case f.Action == ActionDelay:
		rtt, err := probe(l.p.Listen, min(wait, f.Params.Latency+f.Params.Jitter+time.Second))
		// No answer through the link can come sooner than the added latency (less its jitter):
		// a round trip that long is the proof; the baseline is only for the reader.
		if err == nil && rtt >= f.Params.Latency-f.Params.Jitter {
			return Evidence{Status: EvidenceObserved, Latency: time.Since(began),
				Detail: fmt.Sprintf("a probe took %s through the link, %s before the fault", rtt.Round(time.Millisecond), l.baseline.Round(time.Millisecond))}
		}
		return Evidence{Status: EvidenceMissing, Latency: time.Since(began), Detail: fmt.Sprintf("a probe took %s (%v)", rtt, err)}
	case f.Action == ActionPartition || f.Action == ActionAbort:
		_, err := probe(l.p.Listen, min(wait, 300*time.Millisecond))
		if err != nil {
			return Evidence{Status: EvidenceObserved, Latency: time.Since(began), Detail: "a probe through the link failed: " + err.Error()}
		}
		return Evidence{Status: EvidenceMissing, Latency: time.Since(began), Detail: "a probe through the link got an answer"}
	}
	if l.p.Toxics.GetToxic(u.Toxic) != nil {
		return Evidence{Status: EvidenceObserved, Latency: time.Since(began), Detail: fmt.Sprintf("toxic %s is in place on link %s", u.Toxic, u.Link)}
	}
	return Evidence{Status: EvidenceMissing, Latency: time.Since(began), Detail: "the toxic is not on the link"}
}

// probe sends one HTTP request through addr and waits for the first byte of an answer.
func probe(addr string, timeout time.Duration) (time.Duration, error) {
	began := time.Now()
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(began.Add(timeout))
	if _, err := c.Write([]byte(probeRequest)); err != nil {
		return 0, err
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		return time.Since(began), err
	}
	return time.Since(began), nil
}

func isRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
