package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/redline-dev/redline/target/corezone"
	"github.com/redline-dev/redline/target/sqldb"
)

// Bringing replicas back into their unit's configuration.
const (
	zombieMax  = time.Second     // a replica acting primary out of the configuration this long is restarted
	catchUpMax = 2 * time.Minute // a catch-up that takes longer is restarted
	readdMin   = 5 * time.Second // a replica dropped again this soon after being added is restarted
	replyMax   = 64 << 10
	modeOut    = "out"
	modeLeader = "leader"
	modeFollow = "follower"
)

// probe is what one process answered.
type probe struct {
	err  error
	unit corezone.ReplicaState // a unit replica's /internal/state
	core corezone.Status       // a core replica's /v1/status
}

// observation is the target's state at one moment: the routing table and every process's answer.
type observation struct {
	routing    corezone.State
	routingErr error
	probes     map[*proc]probe
}

// observe reads the routing table and probes every running process, concurrently, each bounded
// by probeTimeout.
func (s *supervisor) observe(ctx context.Context) observation {
	o := observation{probes: make(map[*proc]probe, len(s.procs))}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	wg.Go(func() {
		rctx, cancel := context.WithTimeout(ctx, 2*probeTimeout)
		defer cancel()
		o.routing, o.routingErr = s.core.Routing(rctx)
	})
	for _, p := range s.procs {
		snap := p.snapshot()
		if !snap.Up || snap.Paused {
			continue
		}
		// Each probe ends within probeTimeout.
		wg.Go(func() {
			pr := s.probe(ctx, p)
			mu.Lock()
			o.probes[p] = pr
			mu.Unlock()
		})
	}
	wg.Wait()
	return o
}

func (s *supervisor) probe(ctx context.Context, p *proc) probe {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var pr probe
	switch p.role {
	case RoleCore:
		pr.err = s.getJSON(ctx, "http://"+p.addr+"/v1/status", &pr.core)
	case RoleUnit:
		pr.err = s.getJSON(ctx, "http://"+p.addr+"/internal/state", &pr.unit)
	case RoleBroker:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", p.addr)
		if err == nil {
			conn.Close()
		}
		pr.err = err
	case RoleRouter:
		pr.err = s.probeRouter(ctx, p)
	default:
		pr.err = s.getJSON(ctx, "http://"+p.addr+"/healthz", nil)
	}
	return pr
}

// probeRouter asks the router's /healthz, which must be answered by the router process this
// supervisor started: its listen address is fixed, and another server may hold it.
func (s *supervisor) probeRouter(ctx context.Context, p *proc) error {
	var h struct {
		Pid int `json:"pid"`
	}
	if err := s.getJSON(ctx, "http://"+p.addr+"/healthz", &h); err != nil {
		return err
	}
	if pid := p.snapshot().Pid; h.Pid != pid {
		return fmt.Errorf("%w: %s is answered by pid %d, not by the router (pid %d)", ErrAddrInUse, p.addr, h.Pid, pid)
	}
	return nil
}

// getJSON GETs url and decodes a 200 answer into out (nil: only the status matters).
func (s *supervisor) getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, replyMax))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// readyErr says what is missing for the target to serve, nil when nothing is.
func (o observation) readyErr(units int) error {
	if o.routingErr != nil {
		return fmt.Errorf("routing: %w", o.routingErr)
	}
	if len(o.routing.Units) != units {
		return fmt.Errorf("%w: the core zone has %d units, not %d (data dir made with other --units?)", ErrInvalidConfig, len(o.routing.Units), units)
	}
	var errs []error
	serving := map[string]bool{}
	for p, pr := range o.probes {
		switch {
		case p.role == RoleRouter && pr.err != nil:
			errs = append(errs, fmt.Errorf("router: %w", pr.err))
		case p.role == RoleRouter:
			serving["router"] = true
		case p.role == RoleUnit && pr.err == nil:
			u := o.routing.Units[p.unit]
			if u.Primary == p.replica && pr.unit.Role == corezone.RolePrimary && pr.unit.Epoch == u.Epoch {
				serving[p.unit] = true
			}
		}
	}
	if !serving["router"] {
		errs = append(errs, errors.New("router not serving"))
	}
	for _, name := range UnitNames(units) {
		if !serving[name] {
			errs = append(errs, fmt.Errorf("unit %s: no primary serving", name))
		}
	}
	return errors.Join(errs...)
}

// apply updates every process's mode from o and brings unit replicas that are out of their
// unit's configuration back: one that caught up is added as standby; one that acts as primary
// without being it, or catches up too long, or keeps being dropped, is restarted (as a
// replica catching up).
func (s *supervisor) apply(ctx context.Context, o observation) {
	for _, p := range s.procs {
		pr, probed := o.probes[p]
		switch p.role {
		case RoleCore:
			mode := ""
			if probed && pr.err == nil {
				mode = map[string]string{"Leader": modeLeader, "Follower": modeFollow}[pr.core.State]
			}
			p.setMode(mode)
		case RoleUnit:
			if o.routingErr != nil {
				continue
			}
			u := o.routing.Units[p.unit]
			p.setMode(unitMode(u, p.replica, probed && pr.err == nil, pr.unit.Role))
			if probed && pr.err == nil {
				s.readmit(ctx, p, u, pr.unit)
			}
		}
	}
	s.writeTopology()
}

// unitMode is what topology.json says of a unit replica.
func unitMode(u corezone.Unit, replica string, answered bool, role string) string {
	if answered && role == corezone.RoleCatchingUp {
		return corezone.RoleCatchingUp
	}
	switch {
	case u.Primary == replica:
		return corezone.RolePrimary
	case u.Standby == replica && u.StandbyOK:
		return corezone.RoleStandby
	default:
		return modeOut
	}
}

func (p *proc) setMode(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
}

// readmit brings a running unit replica that is out of its unit's configuration back in.
func (s *supervisor) readmit(ctx context.Context, p *proc, u corezone.Unit, st corezone.ReplicaState) {
	inConfig := u.Primary == p.replica || (u.Standby == p.replica && u.StandbyOK)
	p.mu.Lock()
	if inConfig {
		p.outSince = time.Time{}
		p.mu.Unlock()
		return
	}
	now := time.Now()
	if p.outSince.IsZero() {
		p.outSince = now
	}
	out, added := now.Sub(p.outSince), p.addedAt
	p.mu.Unlock()
	switch st.Role {
	case corezone.RoleStandby:
		if !added.IsZero() && now.Sub(added) < readdMin {
			s.restart(p, "dropped again right after it was added")
			return
		}
		if u.Standby != "" && u.StandbyOK {
			return // the unit has a standby; this one stays out
		}
		actx, cancel := context.WithTimeout(ctx, 2*probeTimeout)
		defer cancel()
		nu, err := s.core.AddStandby(actx, p.unit, u.Epoch, p.replica, p.addr)
		if err != nil {
			s.log.Warn("add standby", "proc", p.key(), "err", err)
			return
		}
		p.mu.Lock()
		p.addedAt, p.outSince = now, time.Time{}
		p.mu.Unlock()
		s.log.Info("standby added back", "proc", p.key(), "epoch", nu.Epoch)
	case corezone.RoleCatchingUp:
		if out > catchUpMax {
			s.restart(p, "catching up for too long")
		}
	default:
		if out > zombieMax {
			s.restart(p, "acting "+st.Role+" out of the configuration")
		}
	}
}

// restart kills p; its keeper starts it again, then as a replica catching up.
func (s *supervisor) restart(p *proc, why string) {
	s.log.Warn("restarting replica", "proc", p.key(), "why", why)
	if err := s.signal(p, syscall.SIGKILL); err != nil {
		s.log.Warn("restart replica", "proc", p.key(), "err", err)
	}
}

// signal sends sig to p's process.
func (s *supervisor) signal(p *proc, sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.up || p.pid <= 0 {
		return fmt.Errorf("%w: %s", ErrProcDown, p.key())
	}
	if err := syscall.Kill(p.pid, sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.key(), err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.paused = true
	case syscall.SIGCONT, syscall.SIGKILL:
		p.paused = false
	}
	return nil
}

// topology is the current topology.
func (s *supervisor) topology() Topology {
	t := Topology{Version: TopologyVersion, Router: s.router.addr, Admin: s.admin}
	if s.srv.Postgres() {
		t.Postgres = &Postgres{DSN: sqldb.Redact(s.srv.DSN), Prefix: s.srv.Prefix}
	}
	for _, c := range s.cores {
		t.Core = append(t.Core, c.addr)
	}
	for _, p := range s.procs {
		t.Processes = append(t.Processes, p.snapshot())
	}
	s.topoMu.Lock()
	t.Generation = s.generation
	s.topoMu.Unlock()
	return t
}

// writeTopology rewrites DATA/topology.json when the topology changed.
func (s *supervisor) writeTopology() {
	t := s.topology()
	t.Generation = 0
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		s.log.Error("encode topology", "err", err)
		return
	}
	s.topoMu.Lock()
	defer s.topoMu.Unlock()
	if string(b) == string(s.lastTopo) {
		return
	}
	s.generation++
	t.Generation = s.generation
	out, _ := json.MarshalIndent(t, "", "  ")
	if err := writeFileAtomic(filepath.Join(s.cfg.DataDir, topologyFile), append(out, '\n'), 0o644); err != nil {
		s.log.Error("write topology", "err", err)
		return
	}
	s.lastTopo = b
}
