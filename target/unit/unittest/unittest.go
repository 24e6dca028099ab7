// Package unittest runs paycell unit replicas in-process for tests: a primary and its standby
// on 127.0.0.1:0 with real SQLite files under t.TempDir() (laid out as DATA/units/<unit>/<r>,
// so the offline audit reads them), a fake core zone, a JSON client and a witness that keeps
// every acknowledged payment so the audit is never the only judge.
package unittest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/audit"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/storage"
	"github.com/redline-dev/redline/target/testlog"
	"github.com/redline-dev/redline/target/unit"
)

// Options shape a pair.
type Options struct {
	Unit    string        // "a" when empty
	Defects []unit.Defect // switched on in both replicas
	Logger  *slog.Logger  // nil: kept, and its tail shown if the test fails
	// BatchMax bounds a group commit (0: the unit's default; 1: no group commit).
	BatchMax int
	// NoLink points the primary straight at the standby (benchmarks: no proxy hop).
	NoLink bool
	// NATS is the broker the primary's relay publishes to ("": no relay).
	NATS string
	// Storage is where the replicas' databases live: the zero Server puts SQLite files in
	// their dirs; sqldbtest.Postgres(t) a schema each on the test's PostgreSQL server.
	Storage sqldb.Server
}

// logTailLines is how much of the replicas' log a failed test shows.
const logTailLines = 400

// Replica is one in-process unit replica that a test can kill and start again.
type Replica struct {
	Name string
	Dir  string
	t    testing.TB
	opts Options
	core *Core

	mu     sync.Mutex
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// Addr is the replica's current host:port ("" when it is not running).
func (r *Replica) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// Start runs the replica (on a fresh port) until Kill or the end of the test.
func (r *Replica) Start(role string, epoch int64, standbyAddr, primaryAddr string) {
	r.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatalf("listen: %v", err)
	}
	r.startOn(ln, role, epoch, standbyAddr, primaryAddr)
}

func (r *Replica) startOn(ln net.Listener, role string, epoch int64, standbyAddr, primaryAddr string) {
	r.t.Helper()
	cfg := unit.Config{
		Unit: r.opts.Unit, Replica: r.Name, DataDir: r.Dir, Listener: ln, Role: role, Epoch: epoch,
		StandbyAddr: standbyAddr, PrimaryAddr: primaryAddr, CoreAddrs: []string{r.core.Addr()},
		Defects: r.opts.Defects, Logger: r.opts.Logger, BatchMax: r.opts.BatchMax, NATS: r.opts.NATS,
	}
	place := r.Place()
	cfg.DSN, cfg.Schema = place.DSN, place.Schema
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- unit.Run(ctx, cfg) }() // ends when Kill cancels ctx
	r.mu.Lock()
	r.addr, r.cancel, r.done = ln.Addr().String(), cancel, done
	r.mu.Unlock()
	r.core.setAddr(r.Name, ln.Addr().String())
	if err := waitHealthy(ln.Addr().String(), done); err != nil {
		r.t.Fatalf("start %s: %v", r.Name, err)
	}
}

// Place is where the replica's (production) database lives.
func (r *Replica) Place() sqldb.Place {
	return r.opts.Storage.Place(r.Dir, storage.FileName, "unit", r.opts.Unit, r.Name)
}

func waitHealthy(addr string, done chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("unit exited: %w", err)
		default:
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return errors.New("not healthy after 10s")
}

// Kill stops the replica at once (its batches not yet replicated stay unacknowledged, like a
// SIGKILL's) and waits for it to close its database.
func (r *Replica) Kill() {
	r.t.Helper()
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done, r.addr = nil, nil, ""
	r.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	if err := <-done; err != nil {
		r.t.Errorf("replica %s: %v", r.Name, err)
	}
}

// Running reports whether the replica runs.
func (r *Replica) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancel != nil
}

// Pair is a unit of two replicas, r1 (primary at start) and r2 (standby), and its fake core.
// At start r1 reaches r2 through Link, which a test can pause.
type Pair struct {
	Link     *Link
	Unit     string
	DataDir  string // DATA: the replicas live in DATA/units/<unit>/<replica>
	Core     *Core
	Replicas map[string]*Replica
	Client   *Client
}

// StartPair starts a primary (r1) and its standby (r2) under epoch 1 and stops them at the end
// of the test.
func StartPair(t testing.TB, opts Options) *Pair {
	t.Helper()
	if opts.Unit == "" {
		opts.Unit = "a"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testlog.OnFailure(t, "replicas' log", logTailLines), nil))
	}
	data := t.TempDir()
	if opts.Storage.Postgres() {
		// The offline audit finds the schemas where a target records them.
		if err := sqldb.WriteServer(data, opts.Storage); err != nil {
			t.Fatal(err)
		}
	}
	p := &Pair{Unit: opts.Unit, DataDir: data, Core: newCore(t, opts.Unit), Replicas: map[string]*Replica{}, Client: NewClient()}
	for _, name := range []string{"r1", "r2"} {
		r := &Replica{Name: name, Dir: filepath.Join(data, "units", opts.Unit, name), t: t, opts: opts, core: p.Core}
		p.Replicas[name] = r
		t.Cleanup(r.Kill)
	}
	p.Link = newLink(t)
	p.Core.set(1, "r1", "r2", true)
	p.Replicas["r2"].Start(ledger.RoleStandby, 1, "", "")
	p.Link.setTarget(p.Replicas["r2"].Addr())
	standbyAddr := p.Link.Addr()
	if opts.NoLink {
		standbyAddr = p.Replicas["r2"].Addr()
	}
	p.Replicas["r1"].Start(ledger.RolePrimary, 1, standbyAddr, "")
	return p
}

// Primary returns the replica the core zone holds as primary.
func (p *Pair) Primary() *Replica { return p.Replicas[p.Core.Config().Primary] }

// Other returns the replica that is not r.
func (p *Pair) Other(r *Replica) *Replica {
	if r.Name == "r1" {
		return p.Replicas["r2"]
	}
	return p.Replicas["r1"]
}

// Epoch is the unit's current epoch at the core zone.
func (p *Pair) Epoch() int64 { return p.Core.Config().Epoch }

// Failover promotes the standby as the core zone leader does when the primary stops answering:
// a new epoch, the standby told it is primary, the old primary told nothing (if it still runs,
// it is a zombie).
func (p *Pair) Failover(t testing.TB) *Replica {
	t.Helper()
	c := p.Core.Config()
	status, raw, err := p.Client.Do(context.Background(), http.MethodPost,
		"http://"+p.Core.Addr()+"/v1/units/"+p.Unit+"/promote", map[string]int64{"epoch": c.Epoch}, nil, 0)
	if err != nil || status != http.StatusOK {
		t.Fatalf("promote: %d %s %v", status, raw, err)
	}
	return p.Primary()
}

// AuditOnline runs the audit over the running replicas.
func (p *Pair) AuditOnline(t testing.TB) audit.Report {
	t.Helper()
	var targets []audit.Target
	for _, name := range []string{"r1", "r2"} {
		if r := p.Replicas[name]; r.Running() {
			targets = append(targets, audit.Target{Unit: p.Unit, Replica: name, Addr: r.Addr()})
		}
	}
	rep, err := audit.Online(context.Background(), p.Client.HTTP, targets)
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	return rep
}

// AuditOffline runs the audit over the database files (the replicas may run: WAL readers).
func (p *Pair) AuditOffline(t testing.TB) audit.Report {
	t.Helper()
	rep, err := audit.Offline(context.Background(), p.DataDir)
	if err != nil {
		t.Fatalf("offline audit: %v", err)
	}
	return rep
}

// Verdicts returns a report's verdict per invariant.
func Verdicts(r audit.Report) map[string]ledger.Verdict {
	out := map[string]ledger.Verdict{}
	for _, c := range r.Checks {
		out[c.Name] = c.Verdict
	}
	return out
}

// Client speaks the unit's JSON API.
type Client struct {
	HTTP *http.Client
}

// NewClient returns a client with a bounded timeout.
func NewClient() *Client {
	return &Client{HTTP: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// Do sends one request (body encoded as JSON unless it is []byte) with the epoch header when
// epoch > 0, decodes a 2xx answer into out, and returns the status and raw body.
func (c *Client) Do(ctx context.Context, method, url string, body, out any, epoch int64) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return 0, nil, fmt.Errorf("encode body: %w", err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	if epoch > 0 {
		req.Header.Set(unit.EpochHeader, strconv.FormatInt(epoch, 10))
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read answer: %w", err)
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, raw, fmt.Errorf("decode answer: %w", err)
		}
	}
	return resp.StatusCode, raw, nil
}

// Pay posts a payment to addr under epoch (0: no header).
func (c *Client) Pay(ctx context.Context, addr string, epoch int64, p ledger.Payment) (int, ledger.Outcome, error) {
	var o ledger.Outcome
	status, _, err := c.Do(ctx, http.MethodPost, "http://"+addr+"/v1/payments", p, &o, epoch)
	return status, o, err
}

// Open opens accounts in bulk on addr.
func (c *Client) Open(ctx context.Context, addr string, epoch int64, accounts []ledger.Account) (int, error) {
	status, raw, err := c.Do(ctx, http.MethodPost, "http://"+addr+"/v1/accounts/bulk", map[string]any{"accounts": accounts}, nil, epoch)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("open accounts: %d %s", status, raw)
	}
	return status, err
}

// Payment reads a payment back.
func (c *Client) Payment(ctx context.Context, addr, key string) (int, ledger.Outcome, error) {
	var o ledger.Outcome
	status, _, err := c.Do(ctx, http.MethodGet, "http://"+addr+"/v1/payments/"+url.PathEscape(key), nil, &o, 0)
	return status, o, err
}

// Account reads an account.
func (c *Client) Account(ctx context.Context, addr string, uid int64) (int, ledger.Account, error) {
	var a ledger.Account
	status, _, err := c.Do(ctx, http.MethodGet, "http://"+addr+"/v1/accounts/"+strconv.FormatInt(uid, 10), nil, &a, 0)
	return status, a, err
}

// Witness keeps every payment a client was told about (acknowledged), to read each back after
// a run: the audit is never the only witness.
type Witness struct {
	mu    sync.Mutex
	acked map[string]ledger.Outcome
}

// NewWitness returns an empty witness.
func NewWitness() *Witness { return &Witness{acked: map[string]ledger.Outcome{}} }

// Ack records an acknowledged outcome.
func (w *Witness) Ack(o ledger.Outcome) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.acked[o.Key] = o
}

// Len is the number of acknowledged payments.
func (w *Witness) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// Check reads every acknowledged payment back from addr and returns the keys that are missing
// or whose outcome differs.
func (w *Witness) Check(ctx context.Context, c *Client, addr string) []string {
	w.mu.Lock()
	acked := make(map[string]ledger.Outcome, len(w.acked))
	for k, v := range w.acked {
		acked[k] = v
	}
	w.mu.Unlock()
	var bad []string
	for key, want := range acked {
		status, got, err := c.Payment(ctx, addr, key)
		if err != nil || status != http.StatusOK || got != want {
			bad = append(bad, fmt.Sprintf("%s: %d %+v (acknowledged %+v) %v", key, status, got, want, err))
		}
	}
	return bad
}

// State is a replica's GET /internal/state.
type State struct {
	Role    string `json:"role"`
	Epoch   int64  `json:"epoch"`
	LastSeq int64  `json:"last_seq"`
	Standby string `json:"standby_addr"`
}

// State reads r's state.
func (p *Pair) State(r *Replica) (State, error) {
	var st State
	status, raw, err := p.Client.Do(context.Background(), http.MethodGet, "http://"+r.Addr()+"/internal/state", nil, &st, 0)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("state of %s: %d %s", r.Name, status, raw)
	}
	return st, err
}

// WaitSynced waits until the core zone holds standby as the unit's standby, the primary ships
// to it, and it holds the primary's whole history.
func (p *Pair) WaitSynced(t testing.TB, standby *Replica) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c := p.Core.Config()
		ps, perr := p.State(p.Primary())
		ss, serr := p.State(standby)
		if c.Standby == standby.Name && c.StandbyOK && perr == nil && serr == nil &&
			ps.Standby != "" && ss.Role == ledger.RoleStandby && ss.LastSeq == ps.LastSeq {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("standby %s not synced after 15s", standby.Name)
}
