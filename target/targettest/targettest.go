// Package targettest runs the real built-in target for tests: the redline binary is built once
// per test binary, and every Start runs the whole topology (core zone, units, router, as
// separate processes) in a fresh t.TempDir() on free loopback ports, stopped by t.Cleanup.
//
// A package that uses it calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { targettest.Main(m) }
package targettest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/audit"
	"github.com/redline-dev/redline/target/corezone"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/supervisor"
	"github.com/redline-dev/redline/target/testlog"
)

// BinEnv names a prebuilt redline binary to use instead of building one.
const BinEnv = "REDLINE_BIN"

// Limits of a test target.
const (
	startTimeout  = 60 * time.Second
	buildTimeout  = 5 * time.Minute
	adminTimeout  = 30 * time.Second
	logTailLines  = 40
	replyBytesMax = 16 << 20
)

var (
	mainCalled bool
	buildOnce  sync.Once
	buildDir   string
	binPath    string
	buildErr   error
)

// Main runs the tests of a package that uses Start, then removes the binary it built.
func Main(m *testing.M) {
	mainCalled = true
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// Binary returns the redline binary the targets run, building it on first use.
func Binary(t testing.TB) string {
	t.Helper()
	if !mainCalled {
		t.Fatal("targettest: the package's TestMain must call targettest.Main(m)")
	}
	buildOnce.Do(func() {
		if p := os.Getenv(BinEnv); p != "" {
			binPath = p
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "redline-targettest-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "redline")
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool(), "build", "-o", binPath, "github.com/redline-dev/redline/cmd/redline")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build redline: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// goTool is the go command that builds the binary: $GOROOT/bin/go of the go env, or go on PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Options shape a test target.
type Options struct {
	// Units is the number of units (default 4).
	Units int
	// Defects are seeded defects to switch on.
	Defects []string
	// NATS is an external broker's URL (redline target up --nats); empty starts the embedded one.
	NATS string
	// Storage is where the databases live: the zero Server puts SQLite files in the data dir;
	// sqldbtest.Postgres(t) a schema each on the test's PostgreSQL server, under its prefix
	// (dropped when the test ends).
	Storage sqldb.Server
}

// Target is a running built-in target.
type Target struct {
	// RouterURL is the business API (http://127.0.0.1:port); AdminURL the admin API.
	RouterURL, AdminURL string
	// Token is the admin API's bearer token.
	Token string
	// DataDir is the target's data directory (topology.json, logs/, databases).
	DataDir string
	// Ready is the topology when the target became ready; StartedIn how long that took.
	Ready     supervisor.Topology
	StartedIn time.Duration
	// HTTP is a client for both APIs.
	HTTP *http.Client

	stop func()
}

// Start runs a target for the test and stops it in t.Cleanup. It fails the test when the target
// does not become ready.
func Start(t testing.TB, opts Options) *Target {
	t.Helper()
	bin := Binary(t)
	if opts.Units == 0 {
		opts.Units = 4
	}
	dir := t.TempDir()
	ready := make(chan supervisor.Topology, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	logBuf := testlog.OnFailure(t, "supervisor log", logTailLines) // shown after the stop below
	cfg := supervisor.Config{
		Units: opts.Units, DataDir: dir, Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", Defects: opts.Defects,
		NATS: opts.NATS, Exe: bin, Log: logBuf, Ready: func(top supervisor.Topology) { ready <- top },
	}
	if opts.Storage.Postgres() {
		// Recorded as a previous start would have: the supervisor keeps the test's prefix.
		if err := sqldb.WriteServer(dir, opts.Storage); err != nil {
			t.Fatal(err)
		}
		cfg.DSN = opts.Storage.DSN
	}
	began := time.Now()
	// The supervisor runs until stop cancels it; stop waits for it.
	go func() { done <- supervisor.Run(ctx, cfg) }()
	tg := &Target{DataDir: dir, HTTP: &http.Client{Timeout: adminTimeout}}
	var once sync.Once
	tg.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("targettest: stop target: %v", err)
			}
			tg.HTTP.CloseIdleConnections()
		})
	}
	t.Cleanup(func() {
		tg.stop()
		if t.Failed() {
			dumpLogs(t, dir)
		}
	})
	select {
	case top := <-ready:
		tg.Ready, tg.StartedIn = top, time.Since(began)
	case err := <-done:
		done <- err // for stop
		t.Fatalf("targettest: start target: %v", err)
	case <-time.After(startTimeout):
		t.Fatalf("targettest: target not ready after %v", startTimeout)
	}
	tg.RouterURL, tg.AdminURL = "http://"+tg.Ready.Router, "http://"+tg.Ready.Admin
	token, err := supervisor.ReadToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	tg.Token = token
	return tg
}

// Stop stops the target now (Cleanup does it otherwise); it is idempotent.
func (tg *Target) Stop() { tg.stop() }

// Admin calls the admin API and decodes a 200 answer into out (nil: discarded).
func (tg *Target) Admin(ctx context.Context, method, path string, out any) error {
	return tg.AdminSend(ctx, method, path, nil, out)
}

// AdminSend is Admin with a JSON request body in (nil: none).
func (tg *Target) AdminSend(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, tg.AdminURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tg.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := tg.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, replyBytesMax))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &StatusError{Method: method, Path: path, Status: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}

// Health returns GET /admin/health.
func (tg *Target) Health(t testing.TB) supervisor.Health {
	t.Helper()
	var h supervisor.Health
	if err := tg.Admin(context.Background(), http.MethodGet, "/admin/health", &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// Topology returns GET /admin/topology.
func (tg *Target) Topology(t testing.TB) supervisor.Topology {
	t.Helper()
	var top supervisor.Topology
	if err := tg.Admin(context.Background(), http.MethodGet, "/admin/topology", &top); err != nil {
		t.Fatal(err)
	}
	return top
}

// StatusError is an admin API answer other than 200.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// routingWait bounds how long Routing waits out a core zone election.
const routingWait = 15 * time.Second

// Routing returns the core zone's routing table (GET /admin/routing). A core zone between
// leaders answers 503 for a moment, under load or after a kill: that is waited out, within
// routingWait.
func (tg *Target) Routing(t testing.TB) corezone.State {
	t.Helper()
	deadline := time.Now().Add(routingWait)
	for {
		var st corezone.State
		err := tg.Admin(context.Background(), http.MethodGet, "/admin/routing", &st)
		if err == nil {
			return st
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Signal kills, pauses or resumes a process (action kill|pause|resume); for a core replica unit
// is "-" and replica its id, for the router both are "-".
func (tg *Target) Signal(t testing.TB, action, role, unit, replica string) supervisor.Action {
	t.Helper()
	var a supervisor.Action
	path := fmt.Sprintf("/admin/processes/%s/%s/%s/%s", role, unit, replica, action)
	if err := tg.Admin(context.Background(), http.MethodPost, path, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// WaitHealthy waits until every process is up and every unit serves with a synced standby, and
// fails the test when that takes longer than timeout.
func (tg *Target) WaitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	if err := tg.AwaitHealthy(timeout); err != nil {
		t.Fatal(err)
	}
}

// AwaitHealthy is WaitHealthy returning an error instead (for targets with seeded defects,
// which may never be whole again).
func (tg *Target) AwaitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var h supervisor.Health
	for {
		err := tg.Admin(context.Background(), http.MethodGet, "/admin/health", &h)
		if err == nil && h.OK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("targettest: not healthy after %v: %v %v", timeout, err, h.Problems)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Audit runs the ledger audit (GET /admin/audit).
func (tg *Target) Audit(t testing.TB) audit.Report {
	t.Helper()
	var rep audit.Report
	if err := tg.Admin(context.Background(), http.MethodGet, "/admin/audit", &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// dumpLogs logs the tail of every process log of a failed test.
func dumpLogs(t testing.TB, dir string) {
	paths, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		t.Logf("%s:\n%s", filepath.Base(p), testlog.Tail(string(b), logTailLines))
	}
}
