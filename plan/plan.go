package plan

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redline-dev/redline/chaos"
	"github.com/redline-dev/redline/load"
	"github.com/redline-dev/redline/verify"
)

// Plan is a validated rehearsal: a timeline of phases, each compiled into the engines' config.
// It is immutable: accessors return copies, so a runner can hand parts to engines freely.
type Plan struct {
	name     string
	file     string
	target   Target
	peakRPS  float64
	phases   []Phase // Load.Requests[i].URL holds the path; Phases() joins the target URL
	criteria []verify.Criterion
	// host, when set, is every request's Host header (unless the request sets its own): the
	// target's own host while the requests go through the fault proxy.
	host string
}

// Target is what the plan rehearses against: a URL, or the built-in target.
type Target struct {
	// URL is the base of every request path. It is "" for the built-in target until the runner
	// has started it and called WithTargetURL.
	URL     string
	Builtin *Builtin // nil for a URL target
	// Labels are the labels of the link from Redline to the target's URL, which network faults
	// select (default {role: target}); the built-in target's links are labelled by the runner.
	Labels map[string]string
	// Processes are local processes the plan's PodChaos and StressChaos faults may act on.
	Processes []Process
	// Marker is how every request carries the stress marker (the run id): MarkerHeader (the
	// default), MarkerBaggage or MarkerOff.
	Marker Marker
}

// Process is a local process named in the plan: by pid, or by a pid file read at injection.
type Process struct {
	Name    string
	Pid     int
	PidFile string
	Labels  map[string]string
}

// Builtin sizes the built-in payment target.
type Builtin struct {
	Units    int
	Accounts int64
}

// Phase is one step of the timeline.
type Phase struct {
	Name     string
	Start    time.Duration // offset from the start of the run
	Duration time.Duration // the load profile's length, without the grace period
	Judge    verify.JudgeMode
	// Load is the generator's config for the phase; every phase of this build has one. Its
	// requests' URLs are absolute once the plan's target has a URL.
	Load *load.Config
	// Shape is how the plan wrote the profile: "constant", "ramp" or "spike".
	Shape string
	// Faults are injected while the phase's load runs, each at its offset from the phase's start.
	Faults []chaos.Fault
	// AbortWhen are the guards that stop the run during this phase: the plan's, then its own.
	AbortWhen []verify.Guard
}

// Options change how a plan file is read.
type Options struct {
	// TargetURL, when set, replaces the plan's target (redline run --target-url): every request
	// path is joined to it instead.
	TargetURL string
	// RanAt, for a finished run judged again, is the URL its requests went to. The plan keeps
	// its own target (the built-in target keeps its metrics); a plan that names none, which
	// only ran with --target-url, takes this one.
	RanAt string
}

// Load reads and compiles the plan file at path. A file that cannot be read is an error
// wrapping the os error; a file with problems is an *Error listing all of them.
func Load(path string, opts Options) (*Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	defer f.Close()
	data, err := readMax(f, FileBytesMax)
	if err != nil {
		return nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	return Parse(path, data, opts)
}

// Parse compiles a plan from data; name is used in problems (a file path, normally). Every
// problem is reported at once, as an *Error wrapping ErrInvalid.
func Parse(name string, data []byte, opts Options) (*Plan, error) {
	r := &reporter{file: name}
	if len(data) > FileBytesMax {
		r.at(nil, "", "plan file is larger than %d bytes (1 MiB, the limit)", FileBytesMax)
		return nil, r.err()
	}
	root := readYAML(r, data)
	if root == nil || !measure(r, root) {
		return nil, r.err()
	}
	d := &decoder{r: r}
	f := d.file(root)
	c := &compiler{r: r, opts: opts}
	p := c.plan(f)
	if err := r.err(); err != nil {
		return nil, err
	}
	p.file = name
	return p, nil
}

// Name is metadata.name.
func (p *Plan) Name() string { return p.name }

// File is where the plan was read from.
func (p *Plan) File() string { return p.file }

// Target is what the plan rehearses against.
func (p *Plan) Target() Target {
	t := p.target
	if t.Builtin != nil {
		b := *t.Builtin
		t.Builtin = &b
	}
	t.Labels = maps.Clone(t.Labels)
	t.Processes = slices.Clone(t.Processes)
	for i := range t.Processes {
		t.Processes[i].Labels = maps.Clone(t.Processes[i].Labels)
	}
	return t
}

// PeakRPS is the expected peak rate (peak.rate), in arrivals per second; 0 when not set.
func (p *Plan) PeakRPS() float64 { return p.peakRPS }

// Duration is the length of the whole timeline, grace periods excluded.
func (p *Plan) Duration() time.Duration {
	if len(p.phases) == 0 {
		return 0
	}
	last := p.phases[len(p.phases)-1]
	return last.Start + last.Duration
}

// Phases returns a deep copy of the timeline, request URLs joined to the target URL.
func (p *Plan) Phases() []Phase {
	out := make([]Phase, len(p.phases))
	for i, ph := range p.phases {
		out[i] = ph
		if ph.Load != nil {
			out[i].Load = copyConfig(ph.Load, p.target.URL, p.host)
		}
		out[i].Faults = slices.Clone(ph.Faults)
		for j, f := range out[i].Faults {
			out[i].Faults[j].Selector.Labels = maps.Clone(f.Selector.Labels)
			out[i].Faults[j].Selector.Expressions = slices.Clone(f.Selector.Expressions)
			out[i].Faults[j].Spec = slices.Clone(f.Spec)
		}
		out[i].AbortWhen = slices.Clone(ph.AbortWhen)
	}
	return out
}

// Faults returns every fault of the plan, phase by phase.
func (p *Plan) Faults() []chaos.Fault {
	var out []chaos.Fault
	for _, ph := range p.Phases() {
		out = append(out, ph.Faults...)
	}
	return out
}

// PhaseStarts maps each phase's name to its offset from the run's start.
func (p *Plan) PhaseStarts() map[string]time.Duration {
	out := make(map[string]time.Duration, len(p.phases))
	for _, ph := range p.phases {
		out[ph.Name] = ph.Start
	}
	return out
}

// Criteria returns the SLA's criteria, in file order.
func (p *Plan) Criteria() []verify.Criterion { return slices.Clone(p.criteria) }

// WithTargetURL returns a copy of p whose target has base URL u: the runner calls it once it
// has started the built-in target and knows its address.
func (p *Plan) WithTargetURL(u string) (*Plan, error) {
	if msg := checkTargetURL(u); msg != "" {
		return nil, fmt.Errorf("set target url: %w: %s", ErrInvalid, msg)
	}
	q := *p
	q.target = p.Target()
	q.target.URL = strings.TrimRight(u, "/")
	return &q, nil
}

// ThroughProxy returns a copy of p whose requests go to proxy, a fault proxy in front of the
// target, and still carry the target's own host as their Host header: the proxy is invisible
// to a target that serves by name (an ingress, a gateway, virtual hosts).
func (p *Plan) ThroughProxy(proxy string) (*Plan, error) {
	orig, err := url.Parse(p.target.URL)
	if err != nil || orig.Host == "" {
		return nil, fmt.Errorf("set proxy url: %w: the target has no URL to proxy (%q)", ErrInvalid, p.target.URL)
	}
	q, err := p.WithTargetURL(proxy)
	if err != nil {
		return nil, err
	}
	q.host = orig.Host
	return q, nil
}

// Input returns what verify needs to know of a phase, without its measurements: the runner
// adds All, ByOp (and External) after the phase, or while it runs for verify.CheckAbort, with
// Duration set to the time elapsed.
func (p *Plan) Input(ph Phase) verify.PhaseInput {
	in := verify.PhaseInput{Name: ph.Name, Judge: ph.Judge, PeakRPS: p.peakRPS, Duration: ph.Duration}
	if ph.Load != nil {
		in.TargetRPS = meanRPS(ph.Load.Profile)
	}
	return in
}

// TargetRPS is the mean arrival rate the phase's profile asks for; 0 without load.
func (ph Phase) TargetRPS() float64 {
	if ph.Load == nil {
		return 0
	}
	return meanRPS(ph.Load.Profile)
}

// meanRPS is the profile's expected arrivals divided by its length.
func meanRPS(pr load.Profile) float64 {
	d := pr.Duration()
	if d <= 0 {
		return 0
	}
	return arrivals(pr) / d.Seconds()
}

// arrivals integrates a profile: each stage moves linearly, so its arrivals are its mean rate
// times its length.
func arrivals(pr load.Profile) float64 {
	total, from := 0.0, pr.StartRPS
	for _, s := range pr.Stages {
		total += (from + s.TargetRPS) / 2 * s.Duration.Seconds()
		from = s.TargetRPS
	}
	return total
}

func copyConfig(c *load.Config, base, host string) *load.Config {
	cp := *c
	cp.Profile.Stages = slices.Clone(c.Profile.Stages)
	cp.Requests = make([]load.Request, len(c.Requests))
	for i, r := range c.Requests {
		r.Header = r.Header.Clone()
		if host != "" && r.Header.Get("Host") == "" {
			if r.Header == nil {
				r.Header = http.Header{}
			}
			r.Header.Set("Host", host)
		}
		r.ExpectStatus = slices.Clone(r.ExpectStatus)
		if base != "" {
			r.URL = base + r.URL
		}
		cp.Requests[i] = r
	}
	return &cp
}

// checkTargetURL returns why u cannot be a target's base URL, or "".
func checkTargetURL(u string) string {
	parsed, err := url.Parse(u)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL
		}
		return fmt.Sprintf("not a URL: %v", err)
	case parsed.Scheme != "http" && parsed.Scheme != "https":
		return fmt.Sprintf("want an http:// or https:// URL, got %q", u)
	case len(u) > TargetURLBytesMax:
		return fmt.Sprintf("URL longer than %d bytes (limit)", TargetURLBytesMax)
	case parsed.Host == "" || parsed.Opaque != "":
		return fmt.Sprintf("URL %q has no host", u)
	case parsed.User != nil:
		return fmt.Sprintf("URL %q has user info; send credentials in request headers", u)
	case parsed.RawQuery != "" || parsed.Fragment != "" || strings.HasSuffix(u, "?"):
		return fmt.Sprintf("URL %q has a query or fragment; put those in request paths", u)
	}
	if p := parsed.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("URL %q: port %s is not between 1 and 65535", u, p)
		}
	}
	return ""
}

// readMax reads r whole, but no more than limit+1 bytes: enough for Parse to refuse a file over
// the limit without reading all of it.
func readMax(r io.Reader, limit int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, limit+1))
}
