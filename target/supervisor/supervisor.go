// Package supervisor runs the built-in target as separate OS processes: three core zone
// replicas, a primary and a standby per unit, and the router, each the redline binary itself
// running the hidden `redline target proc ROLE` subcommand, so that a SIGKILL of any of them is
// a real fault. It restarts what dies (a unit replica comes back as the new standby and counts
// again only after it caught up), keeps DATA/topology.json current, serves the admin API, and
// on cancellation stops every process it started: SIGTERM, then SIGKILL after a bounded wait.
package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redline-dev/redline/target/corezone"
	"github.com/redline-dev/redline/target/sqldb"
)

// Limits and timings of the supervisor.
const (
	unitsMax        = 26
	coreReplicas    = 3
	defectsMax      = 8
	readyTimeout    = 30 * time.Second // from start to every unit serving
	stopGrace       = 5 * time.Second  // SIGTERM → SIGKILL
	observeInterval = 200 * time.Millisecond
	probeTimeout    = 300 * time.Millisecond
)

// Errors of the supervisor.
var (
	ErrInvalidConfig = errors.New("invalid supervisor config")
	ErrAddrInUse     = errors.New("port in use")
	ErrDataDirInUse  = errors.New("data dir in use")
	ErrNotReady      = errors.New("target not ready")
	ErrUnknownProc   = errors.New("unknown process")
	ErrProcDown      = errors.New("process not running")
)

// Config configures a target.
type Config struct {
	// Units is the number of units (default 4), named a, b, c, ...
	Units int
	// DataDir holds every database, log, topology.json and admin.token.
	DataDir string
	// Listen is the router's address; a port of 0 (or "") picks a free port on 127.0.0.1.
	Listen string
	// Admin is the admin API's address, loopback only; a port of 0 (or "") picks a free one.
	Admin string
	// Defects are the seeded defects, passed to the processes they concern.
	Defects []string
	// Exe is the redline binary the processes run; empty means os.Executable().
	Exe string
	// Log also receives the supervisor's own log lines, which always go to
	// DATA/logs/supervisor.log. Each process logs to DATA/logs/<role>-<unit>-<replica>.log.
	Log io.Writer
	// NATS is an external broker's URL; empty starts the embedded broker as its own process.
	NATS string
	// DSN puts every unit replica's and consumer group's database on this PostgreSQL server,
	// a schema each (synchronous_commit=on); empty: SQLite files in DataDir, or the server a
	// data dir recorded in DATA/postgres.json when it first ran with a DSN.
	DSN string
	// Ready, when set, is called once with the topology when every process serves.
	Ready func(Topology)
}

// Validate reports every problem of cfg at once.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Units < 1 || cfg.Units > unitsMax {
		errs = append(errs, fmt.Errorf("%d units, want 1..%d", cfg.Units, unitsMax))
	}
	if cfg.DataDir == "" {
		errs = append(errs, errors.New("a data dir is required"))
	}
	if err := checkLoopback(cfg.Admin); err != nil {
		errs = append(errs, fmt.Errorf("admin address: %w", err))
	} else if err := checkPort(cfg.Admin); err != nil {
		errs = append(errs, fmt.Errorf("admin address: %w", err))
	}
	if cfg.Listen != "" {
		if err := checkPort(cfg.Listen); err != nil {
			errs = append(errs, fmt.Errorf("router address: %w", err))
		}
	}
	if len(cfg.Defects) > defectsMax {
		errs = append(errs, fmt.Errorf("%d defects, at most %d", len(cfg.Defects), defectsMax))
	}
	for _, d := range cfg.Defects {
		if !slices.Contains(Defects(), d) {
			errs = append(errs, fmt.Errorf("unknown defect %q (known: %v)", d, Defects()))
		}
	}
	if cfg.DSN != "" {
		if _, err := sqldb.ParseDSN(cfg.DSN); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// checkLoopback accepts "" and host:port addresses whose host is a loopback address.
func checkLoopback(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", addr)
	}
	return nil
}

// checkPort accepts "" and host:port addresses whose port is 0..65535 (0: a free one).
func checkPort(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s: port %s is not 0..65535", addr, port)
	}
	return nil
}

// supervisor is one running target.
type supervisor struct {
	cfg    Config
	exe    string
	token  string
	procs  []*proc // cores, then units (a/r1, a/r2, b/r1, ...), then the router
	cores  []*proc
	router *proc
	broker *proc // nil with an external broker
	srv    sqldb.Server
	admin  string
	core   *corezone.Client
	http   *http.Client
	log    *slog.Logger

	topoMu     sync.Mutex
	generation int64
	lastTopo   []byte
}

// Run starts the target, calls cfg.Ready when it serves, and supervises it until ctx is
// cancelled; then it stops every process and returns. It returns an error when the target
// cannot start (every process it started is stopped first).
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	// The processes run in the data dir: a relative one would be resolved twice.
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("%w: data dir: %w", ErrInvalidConfig, err)
	}
	cfg.DataDir = abs
	dbs, err := resolveServer(ctx, cfg) // reads only: a bad DSN creates nothing
	if err != nil {
		return err
	}
	unlock, err := lockDataDir(abs) // before anything in it is written
	if err != nil {
		return err
	}
	defer unlock()
	if err := checkFree(cfg.Listen); err != nil {
		return fmt.Errorf("router address: %w", err)
	}
	s, adminLn, logf, err := prepare(cfg, dbs)
	if err != nil {
		return err
	}
	defer logf.Close()
	defer s.http.CloseIdleConnections()
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var wg sync.WaitGroup
	for _, p := range s.procs {
		// Each keeper ends after its process, once runCtx is cancelled.
		wg.Go(func() { s.keep(runCtx, p) })
	}
	srv := &http.Server{Handler: s.adminRoutes(), ReadHeaderTimeout: 2 * time.Second}
	// The admin server ends when Shutdown below closes its listener.
	wg.Go(func() {
		if err := srv.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve admin", "err", err)
		}
	})
	err = s.awaitReady(runCtx)
	if err == nil {
		s.log.Info("target ready", "router", s.router.addr, "admin", s.admin)
		if cfg.Ready != nil {
			cfg.Ready(s.topology())
		}
		s.watch(runCtx) // blocks until ctx is cancelled
	}
	stopAll()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
	defer cancel()
	_ = srv.Shutdown(sctx)
	wg.Wait()
	s.writeTopology()
	s.log.Info("target stopped")
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("start target: %w", ctx.Err())
	}
	return err
}

// prepare creates the data dir, the supervisor's log, the admin token and listener, the
// process table, and records a PostgreSQL server in DATA/postgres.json.
func prepare(cfg Config, srv sqldb.Server) (*supervisor, net.Listener, *os.File, error) {
	exe := cfg.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, nil, nil, fmt.Errorf("find redline binary: %w", err)
		}
	}
	adminAddr := cfg.Admin
	if adminAddr == "" {
		adminAddr = "127.0.0.1:0"
	}
	adminLn, err := listen(adminAddr) // first: a target that cannot serve writes nothing
	if err != nil {
		return nil, nil, nil, fmt.Errorf("admin address: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "logs"), 0o755); err != nil {
		adminLn.Close()
		return nil, nil, nil, fmt.Errorf("create data dir: %w", err)
	}
	logf, err := openLog(filepath.Join(cfg.DataDir, "logs", "supervisor.log"))
	if err != nil {
		adminLn.Close()
		return nil, nil, nil, err
	}
	var out io.Writer = logf
	if cfg.Log != nil {
		out = io.MultiWriter(logf, cfg.Log)
	}
	if srv.Postgres() {
		if err := sqldb.WriteServer(cfg.DataDir, srv); err != nil {
			adminLn.Close()
			logf.Close()
			return nil, nil, nil, err
		}
	}
	token, err := newToken(cfg.DataDir) // only once the target can serve its admin API
	if err != nil {
		adminLn.Close()
		logf.Close()
		return nil, nil, nil, err
	}
	s := &supervisor{
		cfg: cfg, exe: exe, token: token, admin: adminLn.Addr().String(), srv: srv,
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}},
		log:  slog.New(slog.NewTextHandler(out, nil)).With("role", "supervisor"),
	}
	if err := s.layout(); err != nil {
		adminLn.Close()
		logf.Close()
		return nil, nil, nil, err
	}
	addrs := make([]string, 0, len(s.cores))
	for _, c := range s.cores {
		addrs = append(addrs, c.addr)
	}
	s.core = corezone.NewClient(addrs, s.http)
	return s, adminLn, logf, nil
}

// newToken writes a fresh bearer token to DATA/admin.token, mode 0600.
func newToken(dataDir string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make admin token: %w", err)
	}
	token := hex.EncodeToString(b)
	if err := writeFileAtomic(filepath.Join(dataDir, tokenFile), []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return token, nil
}

// awaitReady waits until the core zone has a routing table for the configured units, every
// unit's primary serves as primary, and the router has a table.
func (s *supervisor) awaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		o := s.observe(ctx)
		s.apply(ctx, o)
		if last = o.readyErr(s.cfg.Units); last == nil {
			return nil
		}
		if errors.Is(last, ErrInvalidConfig) || errors.Is(last, ErrAddrInUse) {
			return last // a data dir made with other --units, another server on the router's address: waiting cannot help
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w after %v: %w", ErrNotReady, readyTimeout, last)
			}
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// watch observes the target every observeInterval until ctx ends, keeping topology.json
// current and bringing replicas that are out of their unit's configuration back.
func (s *supervisor) watch(ctx context.Context) {
	t := time.NewTicker(observeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.apply(ctx, s.observe(ctx))
	}
}

// UnitNames returns the names of n units: a, b, c, ...
func UnitNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = string(rune('a' + i))
	}
	return names
}
