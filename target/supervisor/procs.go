package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redline-dev/redline/target/consumer"
	"github.com/redline-dev/redline/target/corezone"
	"github.com/redline-dev/redline/target/events"
	"github.com/redline-dev/redline/target/freeport"
	"github.com/redline-dev/redline/target/unit"
)

// Restart timing. A dead unit replica waits longer than the core zone needs to fail it over
// (3 polls of 100 ms), so that it comes back as the standby of its promoted peer rather than
// racing the promotion as a primary.
const (
	restartDelay     = 100 * time.Millisecond
	unitRestartDelay = time.Second
	restartDelayMax  = 5 * time.Second
	shortLife        = time.Second // a process that lived less than this backs off
	logBytesMax      = 64 << 20    // a process log is rotated (to .1) beyond this at a start
	routingWait      = 10 * time.Second
)

// Defects lists the seeded defects the target knows.
func Defects() []string {
	var names []string
	for _, d := range unit.Defects() {
		names = append(names, string(d))
	}
	for _, d := range consumer.Defects() {
		names = append(names, string(d))
	}
	return names
}

// natsURL is the broker the relays and consumers connect to.
func (s *supervisor) natsURL() string {
	if s.cfg.NATS != "" {
		return s.cfg.NATS
	}
	return "nats://" + s.broker.addr
}

// proc is one process of the topology and its supervision state.
type proc struct {
	role, unit, replica string
	addr, raftAddr      string
	dataDir, logPath    string
	schema              string // the PostgreSQL schema of its database, fixed at layout

	mu       sync.Mutex
	pid      int
	up       bool
	paused   bool
	restarts int
	mode     string
	started  time.Time
	// outSince is when a unit replica was first seen out of its unit's configuration, not
	// catching up (zero: in it); addedAt when the supervisor last added it back as standby.
	outSince time.Time
	addedAt  time.Time
	// seed is how a unit replica of a new data dir starts the first time, as the core zone
	// will initialize it: no need to wait for the routing table (owned by the keeper).
	seed *startArgs
}

func (p *proc) key() string { return p.role + "/" + p.unit + "/" + p.replica }

func (p *proc) snapshot() Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Process{
		Role: p.role, Unit: p.unit, Replica: p.replica, Mode: p.mode, Pid: p.pid, Addr: p.addr,
		RaftAddr: p.raftAddr, Up: p.up, Paused: p.paused, Restarts: p.restarts, Log: p.logPath,
		Schema: p.schema,
	}
}

// layout builds the process table, reusing the addresses of a previous run on the same data
// dir: the core zone's Raft configuration and routing table hold them.
func (s *supervisor) layout() error {
	prev := map[string]Process{}
	if t, err := ReadTopology(s.cfg.DataDir); err == nil {
		for _, p := range t.Processes {
			prev[p.Key()] = p
		}
	}
	logs := filepath.Join(s.cfg.DataDir, "logs")
	newProc := func(role, unitName, replica, dataDir string) *proc {
		p := &proc{role: role, unit: unitName, replica: replica, dataDir: dataDir, logPath: filepath.Join(logs, logName(role, unitName, replica))}
		if old, ok := prev[p.key()]; ok {
			p.addr, p.raftAddr = old.Addr, old.RaftAddr
		}
		return p
	}
	for i := 1; i <= coreReplicas; i++ {
		id := strconv.Itoa(i)
		p := newProc(RoleCore, "-", id, filepath.Join(s.cfg.DataDir, "core", id))
		s.cores = append(s.cores, p)
		s.procs = append(s.procs, p)
	}
	for _, u := range UnitNames(s.cfg.Units) {
		for _, r := range []string{"r1", "r2"} {
			s.procs = append(s.procs, newProc(RoleUnit, u, r, filepath.Join(s.cfg.DataDir, "units", u, r)))
		}
	}
	if fresh(s.cfg.DataDir) {
		for _, p := range s.procs {
			if p.role == RoleUnit && p.replica == "r2" {
				p.seed = &startArgs{role: corezone.RoleStandby, epoch: 1}
			}
		}
	}
	if s.cfg.NATS == "" {
		s.broker = newProc(RoleBroker, "-", "-", filepath.Join(s.cfg.DataDir, "broker"))
		s.procs = append(s.procs, s.broker)
	}
	for _, g := range events.Groups() {
		s.procs = append(s.procs, newProc(RoleConsumer, g, "-", filepath.Join(s.cfg.DataDir, "consumers", g)))
	}
	if s.srv.Postgres() {
		for _, p := range s.procs {
			if p.role == RoleUnit || p.role == RoleConsumer {
				p.schema = s.place(p).Schema
			}
		}
	}
	s.router = newProc(RoleRouter, "-", "-", "")
	s.router.addr = s.cfg.Listen
	if s.router.addr == "" {
		s.router.addr = "127.0.0.1:0"
	}
	s.procs = append(s.procs, s.router)
	if err := s.assignPorts(); err != nil {
		return err
	}
	for i, p := range s.procs {
		if p.role == RoleUnit && p.replica == "r1" && i+1 < len(s.procs) && s.procs[i+1].seed != nil {
			p.seed = &startArgs{role: corezone.RolePrimary, epoch: 1, standbyAddr: s.procs[i+1].addr}
		}
	}
	return nil
}

// fresh says whether no core replica has state in dataDir yet: the core zone will initialize
// the routing table from the supervisor's layout.
func fresh(dataDir string) bool {
	dirs, _ := filepath.Glob(filepath.Join(dataDir, "core", "*"))
	for _, dir := range dirs {
		if corezone.HasState(dir) {
			return false
		}
	}
	return true
}

// logName is the log file of a process: core-1.log, unit-a-r1.log, router.log.
func logName(role, unitName, replica string) string {
	name := role
	for _, part := range []string{unitName, replica} {
		if part != "-" {
			name += "-" + part
		}
	}
	return name + ".log"
}

// assignPorts gives every process without an address a free loopback port. The ports are held
// open together while they are chosen, so no two processes get the same one.
func (s *supervisor) assignPorts() error {
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	free := func(addr *string) error {
		if *addr != "" && !strings.HasSuffix(*addr, ":0") {
			return nil
		}
		host := "127.0.0.1"
		if *addr != "" {
			host, _, _ = net.SplitHostPort(*addr)
		}
		ln, err := freeport.Listen(host) // below the ephemeral range: a restart finds its port free
		if err != nil {
			return fmt.Errorf("pick a free port: %w", err)
		}
		held = append(held, ln)
		*addr = ln.Addr().String()
		return nil
	}
	for _, p := range s.procs {
		if err := free(&p.addr); err != nil {
			return err
		}
		if p.role == RoleCore {
			if err := free(&p.raftAddr); err != nil {
				return err
			}
		}
	}
	return nil
}

// keep runs p until ctx is cancelled, restarting it whenever it exits; then it stops it and
// returns once it has exited.
func (s *supervisor) keep(ctx context.Context, p *proc) {
	delay := restartDelay
	if p.role == RoleUnit {
		delay = unitRestartDelay
	}
	backoff := delay
	for ctx.Err() == nil {
		cmd, err := s.start(ctx, p)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("start process", "proc", p.key(), "err", err)
			}
			sleep(ctx, backoff)
			backoff = min(2*backoff, restartDelayMax)
			continue
		}
		exited := make(chan error, 1)
		// Ends when the process exits: keep always waits for it below.
		go func() { exited <- cmd.Wait() }()
		var werr error
		select {
		case werr = <-exited:
		case <-ctx.Done():
			werr = stop(cmd, exited)
		}
		p.mu.Lock()
		lived := time.Since(p.started)
		p.up, p.paused, p.pid = false, false, 0
		if ctx.Err() == nil {
			p.restarts++
		}
		p.mu.Unlock()
		s.writeTopology()
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("process exited", "proc", p.key(), "pid", cmd.Process.Pid, "lived", lived.Round(time.Millisecond), "err", werr)
		if lived < shortLife {
			backoff = min(2*backoff, restartDelayMax)
		} else {
			backoff = delay
		}
		sleep(ctx, backoff)
	}
}

// stop ends a process: SIGCONT (a paused process cannot handle SIGTERM), SIGTERM, and SIGKILL
// when it has not exited after stopGrace. It returns the process's exit error.
func stop(cmd *exec.Cmd, exited <-chan error) error {
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case err := <-exited:
		return err
	case <-t.C:
		_ = cmd.Process.Kill()
		return <-exited
	}
}

// start starts p once, with its arguments decided now (a unit replica's role comes from the
// routing table).
func (s *supervisor) start(ctx context.Context, p *proc) (*exec.Cmd, error) {
	args, err := s.args(ctx, p)
	if err != nil {
		return nil, err
	}
	logf, err := openLog(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(s.exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = s.cfg.DataDir
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // a Ctrl-C in the terminal reaches the supervisor only
		Pdeathsig: syscall.SIGKILL, // and a dead supervisor leaves nothing behind
	}
	fmt.Fprintf(logf, "--- %s start: %s %s\n", time.Now().Format(time.RFC3339Nano), s.exe, strings.Join(redactArgs(args), " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", p.key(), err)
	}
	p.mu.Lock()
	p.pid, p.up, p.paused, p.started = cmd.Process.Pid, true, false, time.Now()
	p.outSince, p.addedAt = time.Time{}, time.Time{}
	p.mu.Unlock()
	s.log.Info("process started", "proc", p.key(), "pid", cmd.Process.Pid, "args", strings.Join(redactArgs(args), " "))
	s.writeTopology()
	return cmd, nil
}

// openLog opens a process's log for appending, rotating it first when it grew too large.
func openLog(path string) (*os.File, error) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > logBytesMax {
		_ = os.Rename(path, path+".1")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open process log: %w", err)
	}
	return f, nil
}

// args are the arguments of `redline target proc ROLE ...` for p.
func (s *supervisor) args(ctx context.Context, p *proc) ([]string, error) {
	coreAddrs := make([]string, 0, len(s.cores))
	for _, c := range s.cores {
		coreAddrs = append(coreAddrs, c.addr)
	}
	switch p.role {
	case RoleCore:
		args := []string{"target", "proc", "core", "--id", p.replica, "--data", p.dataDir, "--http", p.addr, "--raft", p.raftAddr}
		for _, c := range s.cores {
			args = append(args, "--peer", c.replica+"="+c.raftAddr+","+c.addr)
		}
		for _, seed := range s.seeds() {
			parts := make([]string, 0, len(seed.Replicas))
			for _, r := range seed.Replicas {
				parts = append(parts, r.Name+"@"+r.Addr)
			}
			args = append(args, "--unit", seed.Name+"="+strings.Join(parts, ","))
		}
		return args, nil
	case RoleBroker:
		return []string{"target", "proc", "broker", "--data", p.dataDir, "--listen", p.addr}, nil
	case RoleConsumer:
		args := []string{"target", "proc", "consumer", "--group", p.unit, "--data", p.dataDir, "--listen", p.addr, "--nats", s.natsURL()}
		args = append(args, s.storageArgs(p)...)
		for _, d := range s.cfg.Defects {
			if slices.Contains(consumer.Defects(), consumer.Defect(d)) {
				args = append(args, "--defect", d)
			}
		}
		return args, nil
	case RoleRouter:
		return []string{"target", "proc", "router", "--listen", p.addr, "--core", strings.Join(coreAddrs, ",")}, nil
	case RoleUnit:
		var st startArgs
		if p.seed != nil {
			st, p.seed = *p.seed, nil
		} else {
			rctx, cancel := context.WithTimeout(ctx, routingWait)
			defer cancel()
			u, err := s.unitConfig(rctx, p.unit)
			if err != nil {
				return nil, err
			}
			st = unitStart(u, p.replica)
		}
		args := []string{"target", "proc", "unit", "--unit", p.unit, "--replica", p.replica, "--data", p.dataDir,
			"--listen", p.addr, "--role", st.role, "--epoch", strconv.FormatUint(st.epoch, 10),
			"--core", strings.Join(coreAddrs, ",")}
		if st.standbyAddr != "" {
			args = append(args, "--standby-addr", st.standbyAddr)
		}
		if st.primaryAddr != "" {
			args = append(args, "--primary-addr", st.primaryAddr)
		}
		args = append(args, s.storageArgs(p)...)
		for _, d := range s.cfg.Defects {
			if slices.Contains(unit.Defects(), unit.Defect(d)) {
				args = append(args, "--defect", d)
			}
		}
		return append(args, "--nats", s.natsURL()), nil
	default:
		return nil, fmt.Errorf("%w: role %q", ErrUnknownProc, p.role)
	}
}

// seeds is the initial layout of the units: r1 primary, r2 standby.
func (s *supervisor) seeds() []corezone.UnitSeed {
	var seeds []corezone.UnitSeed
	for _, p := range s.procs {
		if p.role != RoleUnit {
			continue
		}
		if len(seeds) == 0 || seeds[len(seeds)-1].Name != p.unit {
			seeds = append(seeds, corezone.UnitSeed{Name: p.unit})
		}
		last := &seeds[len(seeds)-1]
		last.Replicas = append(last.Replicas, corezone.ReplicaSeed{Name: p.replica, Addr: p.addr})
	}
	return seeds
}

// unitConfig reads a unit's configuration from the core zone, retrying until ctx ends.
func (s *supervisor) unitConfig(ctx context.Context, name string) (corezone.Unit, error) {
	for {
		st, err := s.core.Routing(ctx)
		if err == nil {
			u, ok := st.Units[name]
			if !ok {
				return u, fmt.Errorf("%w: the core zone has no unit %s (data dir made with other --units?)", ErrInvalidConfig, name)
			}
			return u, nil
		}
		select {
		case <-ctx.Done():
			return corezone.Unit{}, fmt.Errorf("read configuration of unit %s: %w", name, errors.Join(err, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startArgs is how a unit replica starts.
type startArgs struct {
	role                     string
	epoch                    uint64
	standbyAddr, primaryAddr string
}

// unitStart decides how a replica of u starts: as the primary or the standby it is configured
// as (its database holds everything it acknowledged), or else catching up from the primary.
func unitStart(u corezone.Unit, replica string) startArgs {
	switch {
	case replica == u.Primary:
		sa := ""
		if u.StandbyOK {
			sa = u.StandbyAddr()
		}
		return startArgs{role: corezone.RolePrimary, epoch: u.Epoch, standbyAddr: sa}
	case replica == u.Standby && u.StandbyOK:
		return startArgs{role: corezone.RoleStandby, epoch: u.Epoch}
	default:
		return startArgs{role: corezone.RoleCatchingUp, epoch: u.Epoch, primaryAddr: u.PrimaryAddr()}
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
