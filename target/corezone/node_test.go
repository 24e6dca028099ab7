package corezone

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/freeport"
)

// fakeReplica answers the unit control endpoints the core zone uses, like a unit replica.
type fakeReplica struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	st   ReplicaState
	cfgs []ReplicaConfig
	tcc  fakeLegs // transfer legs (tcc_test.go)
	srv  *http.Server
	done chan struct{}
}

func newFakeReplica(t *testing.T, unit, replica string) *fakeReplica {
	t.Helper()
	return newFakeReplicaAt(t, unit, replica, "127.0.0.1:0")
}

func newFakeReplicaAt(t *testing.T, unit, replica, addr string) *fakeReplica {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeReplica{t: t, addr: ln.Addr().String(), st: ReplicaState{Unit: unit, Replica: replica, Role: RoleStandby}, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /internal/state", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, f.st)
	})
	mux.HandleFunc("POST /internal/config", func(w http.ResponseWriter, r *http.Request) {
		var c ReplicaConfig
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			writeError(w, http.StatusBadRequest, "malformed_json", err.Error())
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if c.Epoch < f.st.Epoch {
			writeError(w, http.StatusConflict, "stale_epoch", "stale")
			return
		}
		f.st.Epoch, f.st.Role = c.Epoch, c.Role
		f.cfgs = append(f.cfgs, c)
		writeJSON(w, http.StatusOK, f.st)
	})
	f.tccRoutes(mux)
	f.srv = &http.Server{Handler: mux}
	// The server goroutine ends when kill or the test's cleanup closes the server.
	go func() {
		defer close(f.done)
		_ = f.srv.Serve(ln)
	}()
	t.Cleanup(f.kill)
	return f
}

// kill stops answering, as a SIGKILLed process does (connections refused).
func (f *fakeReplica) kill() {
	_ = f.srv.Close()
	<-f.done
}

func (f *fakeReplica) state() ReplicaState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeReplica) setSeq(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.LastSeq = n
}

// group is a running 3-replica core zone.
type group struct {
	peers  []Peer
	stops  []func()
	client *Client
}

// handedOut holds the addresses freeAddr returned. A port whose listener was closed may be the
// kernel's next pick: two replicas of one group were once handed the same port, and one failed
// to start ("address already in use").
var handedOut sync.Map

// freeAddr returns a loopback address nothing listens on, never the same one twice, below the
// ephemeral range (freeport): the kernel also takes ports from that range for outgoing
// connections, which could take the port before the replica it is meant for listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		ln, err := freeport.Listen("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, dup := handedOut.LoadOrStore(addr, true); !dup {
			return addr
		}
	}
	t.Fatal("no free loopback port in 100 tries")
	return ""
}

func startGroup(t *testing.T, seeds []UnitSeed) *group {
	t.Helper()
	g := &group{}
	for _, id := range []string{"1", "2", "3"} {
		g.peers = append(g.peers, Peer{ID: id, RaftAddr: freeAddr(t), HTTPAddr: freeAddr(t)})
	}
	addrs := make([]string, 0, len(g.peers))
	for _, p := range g.peers {
		addrs = append(addrs, p.HTTPAddr)
		ctx, cancel := context.WithCancel(context.Background())
		cfg := Config{ID: p.ID, DataDir: t.TempDir(), HTTPAddr: p.HTTPAddr, RaftAddr: p.RaftAddr, Peers: g.peers, Seeds: seeds, Log: testLog{t}}
		done := make(chan error, 1)
		// The replica runs until stop cancels it; stop waits for it to end.
		go func() { done <- Run(ctx, cfg) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("core %s: %v", p.ID, err)
				}
			})
		}
		g.stops = append(g.stops, stop)
		t.Cleanup(stop)
	}
	g.client = NewClient(addrs, nil)
	return g
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *group) routing(t *testing.T) State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := g.client.Routing(ctx)
	if err != nil {
		return State{}
	}
	return s
}

func (g *group) leader(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for i, p := range g.peers {
		if st, err := g.client.Status(ctx, p.HTTPAddr); err == nil && st.State == "Leader" {
			return i
		}
	}
	return -1
}

type fakeUnit struct{ r1, r2 *fakeReplica }

func fakeUnits(t *testing.T, names ...string) (map[string]fakeUnit, []UnitSeed) {
	units := map[string]fakeUnit{}
	var seeds []UnitSeed
	for _, name := range names {
		u := fakeUnit{newFakeReplica(t, name, "r1"), newFakeReplica(t, name, "r2")}
		units[name] = u
		seeds = append(seeds, UnitSeed{Name: name, Replicas: []ReplicaSeed{{Name: "r1", Addr: u.r1.addr}, {Name: "r2", Addr: u.r2.addr}}})
	}
	return units, seeds
}

func TestGroupConfiguresUnitsAndFailsOver(t *testing.T) {
	units, seeds := fakeUnits(t, "a", "b")
	g := startGroup(t, seeds)
	waitFor(t, 10*time.Second, "routing", func() bool { return g.routing(t).Initialized() })
	waitFor(t, 5*time.Second, "replicas configured", func() bool {
		return units["a"].r1.state().Role == RolePrimary && units["a"].r2.state().Epoch == 1 &&
			units["b"].r1.state().Role == RolePrimary && units["b"].r2.state().Epoch == 1
	})
	// Every replica answers the routing table (followers pass it to the leader).
	for _, p := range g.peers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var s State
		err := g.client.do(ctx, p.HTTPAddr, http.MethodGet, "/v1/routing", nil, &s)
		cancel()
		if err != nil || !s.Initialized() {
			t.Errorf("routing from core %s: initialized %v, err %v", p.ID, s.Initialized(), err)
		}
	}

	killed := time.Now()
	units["a"].r1.kill()
	waitFor(t, 3*time.Second, "promotion of a/r2", func() bool {
		return units["a"].r2.state().Role == RolePrimary
	})
	took := time.Since(killed)
	s := g.routing(t)
	a := s.Units["a"]
	if a.Primary != "r2" || a.Standby != "" || a.StandbyOK || a.Epoch != 2 || a.Failovers != 1 {
		t.Errorf("unit a after failover: %+v", a)
	}
	if got := units["a"].r2.state().Epoch; got != a.Epoch {
		t.Errorf("new primary at epoch %d, want %d", got, a.Epoch)
	}
	if b := s.Units["b"]; b.Epoch != 1 || b.Primary != "r1" {
		t.Errorf("unit b changed: %+v", b)
	}
	waitFor(t, 2*time.Second, "failover time recorded", func() bool { return g.routing(t).Units["a"].LastFailoverMS > 0 })
	t.Logf("kill → new primary configured in %v; recorded %d ms", took, g.routing(t).Units["a"].LastFailoverMS)
	if took > time.Second {
		t.Errorf("failover took %v, want under 1s", took)
	}

	// The leader dies; the others elect a new one, which keeps watching.
	l := g.leader(t)
	if l < 0 {
		t.Fatal("no leader")
	}
	g.stops[l]()
	units["b"].r1.kill()
	waitFor(t, 5*time.Second, "promotion of b/r2 under a new leader", func() bool {
		return units["b"].r2.state().Role == RolePrimary
	})
	if b := g.routing(t).Units["b"]; b.Primary != "r2" || b.Epoch != 3 {
		t.Errorf("unit b after failover: %+v", b)
	}
}

func TestGroupNeverPromotesAnAddedStandbyBehind(t *testing.T) {
	units, seeds := fakeUnits(t, "a")
	g := startGroup(t, seeds)
	a := units["a"]
	waitFor(t, 10*time.Second, "replicas configured", func() bool {
		return a.r1.state().Role == RolePrimary && a.r2.state().Epoch == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := g.client.DropStandby(ctx, "a", 1); err != nil {
		t.Fatal(err)
	}
	// r1 acknowledges alone up to seq 10; r2 comes back with 5 and is added.
	a.r1.setSeq(10)
	a.r2.setSeq(5)
	if _, err := g.client.AddStandby(ctx, "a", 2, "r2", a.r2.addr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "both replicas at epoch 3", func() bool {
		return a.r1.state().Epoch == 3 && a.r2.state().Epoch == 3
	})
	time.Sleep(5 * probeInterval)
	if g.routing(t).Units["a"].StandbySynced {
		t.Fatal("a standby behind the primary was marked synced")
	}
	a.r2.setSeq(10)
	waitFor(t, 3*time.Second, "standby synced", func() bool { return g.routing(t).Units["a"].StandbySynced })

	// And the other way round: once synced, a primary that dies is replaced.
	a.r1.kill()
	waitFor(t, 3*time.Second, "promotion of r2", func() bool { return a.r2.state().Role == RolePrimary })
}

func TestGroupKeepsAPrimaryWithAStandbyBehind(t *testing.T) {
	units, seeds := fakeUnits(t, "a")
	g := startGroup(t, seeds)
	a := units["a"]
	waitFor(t, 10*time.Second, "replicas configured", func() bool {
		return a.r1.state().Role == RolePrimary && a.r2.state().Epoch == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := g.client.DropStandby(ctx, "a", 1); err != nil {
		t.Fatal(err)
	}
	a.r1.setSeq(10)
	a.r2.setSeq(5)
	if _, err := g.client.AddStandby(ctx, "a", 2, "r2", a.r2.addr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "both replicas at epoch 3", func() bool {
		return a.r1.state().Epoch == 3 && a.r2.state().Epoch == 3
	})
	a.r1.kill()
	time.Sleep(10 * probeInterval)
	if u := g.routing(t).Units["a"]; u.Primary != "r1" || u.Epoch != 3 {
		t.Errorf("a standby behind the primary was promoted: %+v", u)
	}
}

func TestGroupWaitsForAPrimaryStillStarting(t *testing.T) {
	r1Addr := freeAddr(t)
	r2 := newFakeReplica(t, "a", "r2")
	g := startGroup(t, []UnitSeed{{Name: "a", Replicas: []ReplicaSeed{{Name: "r1", Addr: r1Addr}, {Name: "r2", Addr: r2.addr}}}})
	waitFor(t, 10*time.Second, "routing", func() bool { return g.routing(t).Initialized() })
	time.Sleep(time.Second) // the primary's process is still starting: 10 failed polls
	r1 := newFakeReplicaAt(t, "a", "r1", r1Addr)
	waitFor(t, 3*time.Second, "r1 configured as primary", func() bool { return r1.state().Role == RolePrimary })
	time.Sleep(time.Second)
	if u := g.routing(t).Units["a"]; u.Primary != "r1" || u.Failovers != 0 {
		t.Errorf("a primary that was starting up was failed over: %+v", u)
	}
}

func TestChangesThroughTheAPI(t *testing.T) {
	units, seeds := fakeUnits(t, "a")
	g := startGroup(t, seeds)
	waitFor(t, 10*time.Second, "routing", func() bool { return g.routing(t).Initialized() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := g.client.Promote(ctx, "a", 0); !errors.Is(err, ErrStaleEpoch) {
		t.Errorf("stale promote: %v, want ErrStaleEpoch", err)
	}
	if _, err := g.client.Promote(ctx, "zz", 1); !errors.Is(err, ErrUnknownUnit) {
		t.Errorf("promote of an unknown unit: %v, want ErrUnknownUnit", err)
	}
	u, err := g.client.DropStandby(ctx, "a", 1)
	if err != nil || u.Epoch != 2 || u.Standby != "" {
		t.Fatalf("drop-standby: %+v, %v", u, err)
	}
	if _, err := g.client.Promote(ctx, "a", 2); !errors.Is(err, ErrStandbyNotOK) {
		t.Errorf("promote of a dropped standby: %v, want ErrStandbyNotOK", err)
	}
	waitFor(t, 3*time.Second, "primary told to run alone", func() bool {
		c := units["a"].r1.state()
		return c.Epoch == 2 && c.Role == RolePrimary
	})
	u, err = g.client.AddStandby(ctx, "a", 2, "r2", units["a"].r2.addr)
	if err != nil || u.Epoch != 3 || u.Standby != "r2" || !u.StandbyOK {
		t.Fatalf("add-standby: %+v, %v", u, err)
	}
	waitFor(t, 3*time.Second, "both replicas at epoch 3", func() bool {
		return units["a"].r1.state().Epoch == 3 && units["a"].r2.state().Epoch == 3
	})
	waitFor(t, 3*time.Second, "standby seen in sync", func() bool { return g.routing(t).Units["a"].StandbySynced })
	u, err = g.client.Promote(ctx, "a", 3)
	if err != nil || u.Primary != "r2" || u.Epoch != 4 {
		t.Fatalf("promote: %+v, %v", u, err)
	}
	waitFor(t, 3*time.Second, "r2 primary at epoch 4", func() bool {
		c := units["a"].r2.state()
		return c.Epoch == 4 && c.Role == RolePrimary
	})
	units["a"].r1.mu.Lock()
	var last ReplicaConfig
	for _, c := range units["a"].r1.cfgs {
		if c.Epoch == 3 {
			last = c
		}
	}
	units["a"].r1.mu.Unlock()
	if last.StandbyAddr != units["a"].r2.addr || last.Role != RolePrimary {
		t.Errorf("r1 at epoch 3: %+v, want primary replicating to %q", last, units["a"].r2.addr)
	}
}

// testLog sends a replica's log to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(string(p))
	return len(p), nil
}
