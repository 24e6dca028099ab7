package unit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/storage"
)

// The shadow plane. Every unit replica process holds two planes: production (its database in
// DataDir) and shadow (a second database in DataDir/shadow, opened by openPlane), each a full
// server: its own writer with group commit, history, synchronous replication to the standby's
// shadow plane (the same code path, requests marked with X-Redline-Plane: shadow), outbox and
// relay (to the shadow stream). Requests marked as stress traffic go to the shadow plane, all
// others to production; until the shadow plane is open and migrated, marked requests are
// refused with 503 shadow_not_ready, never served by production.
//
// The shadow plane follows the production plane's configuration: every change of production's
// role or epoch is mirrored to it (follow), it never changes the unit's configuration itself
// (it never asks the core zone to drop or add a standby: its replicator waits instead), and a
// catching-up production plane waits (bounded) for its shadow plane to catch up before it
// rejoins as standby.

// Limits of the shadow plane.
const (
	// misrouteEvery is the shadow-misroute defect's period: one marked write in that many goes
	// to production.
	misrouteEvery = 1000
	// mirrorTimeout bounds mirroring one configuration change to the shadow plane.
	mirrorTimeout = 5 * time.Second
	// shadowCatchUpWaitMax bounds how long a catching-up replica waits for its shadow plane
	// before it rejoins anyway: production is never held hostage by the shadow plane (whose
	// marked writes then wait for it to catch up).
	shadowCatchUpWaitMax = 30 * time.Second
	// shadowOpenBackoffMax bounds the wait between two attempts to open the shadow plane.
	shadowOpenBackoffMax = 2 * time.Second
)

// planeState is a server's place among its process's planes.
type planeState struct {
	plane  shadow.Plane  // shadow.Shadow on the shadow plane's server, "" on production's
	side   *shadowSide   // production only: the replica's shadow plane
	counts *planeMetrics // the process's write counters, shared by both planes
	leaks  atomic.Int64  // production only: stress writes in its database (persisted)
}

// follower reports whether s is a shadow plane (which follows its production plane).
func (s *server) follower() bool { return s.plane == shadow.Shadow }

func (s *server) planeOf() shadow.Plane {
	if s.follower() {
		return shadow.Shadow
	}
	return shadow.Production
}

// shadowSide is the production plane's handle on its shadow plane.
type shadowSide struct {
	leader  *server
	cur     atomic.Pointer[server]       // the running shadow plane, nil until it is ready
	mux     atomic.Pointer[http.Handler] // its routes
	openErr atomic.Pointer[string]       // why it is not ready
	mu      sync.Mutex                   // serializes mirroring
	marked  atomic.Int64                 // marked writes seen (the misroute defect)
}

// attachShadow prepares the shadow plane of a production server: its counters, its persisted
// leak count; the plane itself opens in runShadow.
func (s *server) attachShadow(ctx context.Context) error {
	s.counts = newPlaneMetrics(s.metrics.reg)
	n, err := s.db.MetaNum(ctx, storage.MetaShadowLeaks)
	if err != nil {
		return err
	}
	s.leaks.Store(n)
	s.counts.leaks.Add(float64(n))
	s.side = &shadowSide{leader: s}
	return nil
}

// openPlane opens the shadow plane's server: the one place that decides where its data lives.
func (side *shadowSide) openPlane(ctx context.Context) (*server, error) {
	s := side.leader
	v := s.view()
	cfg := s.cfg
	place := storage.ShadowPlace(s.cfg.Place())
	cfg.DataDir, cfg.Schema = place.Dir, place.Schema
	cfg.Role, cfg.Epoch, cfg.StandbyAddr = v.Role, v.Epoch, v.StandbyAddr
	cfg.Listener, cfg.Listen, cfg.plane = nil, "", shadow.Shadow
	if cfg.Logger != nil {
		cfg.Logger = cfg.Logger.With("plane", string(shadow.Shadow))
	}
	sp, err := newServer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open shadow plane: %w", err)
	}
	sp.client = &http.Client{Transport: planeTransport{base: sp.client.Transport}}
	sp.counts = s.counts
	sp.addr = s.addr
	sp.halt = s.halt // one process: a plane that halts stops both
	return sp, nil
}

// runShadow runs the shadow plane sp until ctx ends; when it could not be opened (err), it
// retries until it opens. It is owned by the production server's run.
func (s *server) runShadow(ctx context.Context, sp *server, err error) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if sp == nil {
			sp, err = s.side.openPlane(ctx)
		}
		if err != nil {
			msg := err.Error()
			s.side.openErr.Store(&msg)
			s.log.Error("shadow plane not ready", "err", err)
			sleep(ctx, backoff)
			backoff = min(2*backoff, shadowOpenBackoffMax)
			continue
		}
		wait := sp.start(ctx)
		h := sp.routes()
		s.side.mux.Store(&h)
		s.side.cur.Store(sp)
		s.side.openErr.Store(nil)
		s.counts.ready.Set(1)
		s.side.follow(ctx) // whatever production became while the plane opened
		s.log.Info("shadow plane ready", "dir", filepath.Dir(sp.db.Path()))
		<-ctx.Done()
		sp.replicated.fail(ErrStopped)
		wait()
		return
	}
}

// start runs a shadow plane's writer, replicator, relay and questions about transfer legs;
// the returned function waits for them after ctx ended and closes the plane's database.
func (s *server) start(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() { s.write(ctx) })      // ends with ctx
	wg.Go(func() { s.replicate(ctx) })  // ends with ctx
	wg.Go(func() { s.resolveTCC(ctx) }) // ends with ctx
	if s.cfg.NATS != "" {
		wg.Go(func() { s.relay(ctx) }) // ends with ctx
	}
	s.viewChanged(ctx)
	if s.view().Role == ledger.RoleCatchingUp {
		s.startCatchUp(ctx)
	}
	return func() {
		wg.Wait()
		s.bg.Wait()
		s.db.Close()
	}
}

// viewChanged publishes a change of s's view: to its metrics, and from a production plane to
// its shadow plane.
func (s *server) viewChanged(ctx context.Context) {
	s.metrics.setView(s.view())
	if s.side != nil {
		s.side.follow(ctx)
	}
}

// follow mirrors the production plane's current view to the shadow plane. Calls may race; each
// mirrors the view as it is when it runs, so the last one leaves the planes agreeing.
func (side *shadowSide) follow(ctx context.Context) {
	sp := side.cur.Load()
	if sp == nil {
		return
	}
	side.mu.Lock()
	defer side.mu.Unlock()
	v := side.leader.view()
	if sp.view() == v {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, mirrorTimeout)
	defer cancel()
	res := sp.submit(ctx, &op{kind: opConfig, cfg: &configRequest{Epoch: v.Epoch, Role: v.Role, StandbyAddr: v.StandbyAddr}})
	if res.err != nil && !errors.Is(res.err, ErrStaleEpoch) {
		sp.log.Warn("shadow plane did not follow the production plane's configuration", "role", v.Role, "epoch", v.Epoch, "err", res.err)
	}
}

// awaitShadowCaughtUp waits until the shadow plane left catching_up (bounded by
// shadowCatchUpWaitMax): a replica rejoins as standby with both planes caught up.
func (s *server) awaitShadowCaughtUp(ctx context.Context) {
	if s.side == nil {
		return
	}
	deadline := time.Now().Add(shadowCatchUpWaitMax)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		sp := s.side.cur.Load()
		if sp == nil || sp.view().Role != ledger.RoleCatchingUp {
			return
		}
		sleep(ctx, 20*time.Millisecond)
	}
	s.log.Warn("rejoining before the shadow plane caught up", "waited", shadowCatchUpWaitMax)
}

// planeTransport marks every request of a shadow plane to its peers (replication, snapshot,
// log) for their shadow planes.
type planeTransport struct{ base http.RoundTripper }

func (t planeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(shadow.PlaneHeader, string(shadow.Shadow))
	return t.base.RoundTrip(r)
}

// handler is the replica's HTTP handler: each request to the plane it is marked for.
func (s *server) handler() http.Handler {
	prod := s.routes()
	if s.side == nil {
		return prod
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/internal/shadow" {
			s.handleShadowState(w, r)
			return
		}
		plane, err := requestPlane(r)
		if err != nil {
			s.counts.refused.Inc()
			writeJSON(w, http.StatusBadRequest, errorBody{Error: apiError{Code: "bad_stress_marker", Message: err.Error()}})
			return
		}
		if plane == shadow.Production {
			prod.ServeHTTP(w, r)
			return
		}
		mux := s.side.mux.Load()
		if mux == nil || s.side.cur.Load() == nil {
			msg := "the shadow plane of this replica is not open yet"
			if e := s.side.openErr.Load(); e != nil {
				msg += ": " + *e
			}
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: apiError{Code: "shadow_not_ready", Message: msg}})
			return
		}
		if s.cfg.has(DefectShadowMisroute) && businessWrite(r) && s.side.marked.Add(1)%misrouteEvery == 0 {
			prod.ServeHTTP(w, r) // the defect: this stress write lands in production (and is counted as a leak there)
			return
		}
		(*mux).ServeHTTP(w, r)
	})
}

func businessWrite(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/")
}

// requestPlane reads the plane a request is for from its marker and X-Redline-Plane, and
// leaves the run id in X-Redline-Run for the handlers. A marker says shadow (the router also
// says so; a client calling a replica directly need not); X-Redline-Plane: shadow without a
// marker is a shadow peer's internal call, refused on the business API.
func requestPlane(r *http.Request) (shadow.Plane, error) {
	run, err := shadow.Marker(r.Header)
	if err != nil {
		return "", err
	}
	p := shadow.Plane(r.Header.Get(shadow.PlaneHeader))
	internal := strings.HasPrefix(r.URL.Path, "/internal/")
	switch {
	case p != "" && p != shadow.Production && p != shadow.Shadow:
		return "", fmt.Errorf("%s %q: want %s or %s: %w", shadow.PlaneHeader, p, shadow.Production, shadow.Shadow, shadow.ErrMalformed)
	case run != "" && p == shadow.Production:
		return "", fmt.Errorf("stress run %q sent to the %s plane: %w", run, p, shadow.ErrInconsistent)
	case run != "":
		r.Header.Set(shadow.Header, run)
		return shadow.Shadow, nil
	case p == shadow.Shadow && !internal:
		return "", fmt.Errorf("%s: %s without a run id: %w", shadow.PlaneHeader, p, shadow.ErrMalformed)
	case p == shadow.Shadow:
		return shadow.Shadow, nil
	}
	return shadow.Production, nil
}

// shadowState is the body of GET /internal/shadow.
type shadowState struct {
	Ready  bool                        `json:"ready"`
	Error  string                      `json:"error,omitempty"`
	Leaks  int64                       `json:"leaks"`
	Writes map[string]map[string]int64 `json:"writes"`
}

func (s *server) handleShadowState(w http.ResponseWriter, _ *http.Request) {
	st := shadowState{Ready: s.side.cur.Load() != nil, Leaks: s.leaks.Load(), Writes: s.counts.snapshot()}
	if e := s.side.openErr.Load(); e != nil {
		st.Error = *e
	}
	writeJSON(w, http.StatusOK, st)
}

// tally counts the writes of one committed transaction, by resource.
type tally struct {
	accounts, payments, outbox int64
	leaks                      int64 // stress writes (entries with a run id) on the production plane
}

func (t *tally) add(e *entry, p shadow.Plane) {
	n := int64(0)
	switch {
	case e.Kind == kindOpen:
		n = int64(len(e.Accounts))
		t.accounts += n
	case e.Payment != nil:
		n = 1
		t.payments++
		if e.Payment.Status == ledger.StatusCommitted {
			t.outbox++
		}
	}
	if e.Run != "" && p == shadow.Production {
		t.leaks += n
	}
}

// persistLeaks stores the production plane's leak count with the transaction that leaked.
func (s *server) persistLeaks(ctx context.Context, tx *storage.Tx, t tally) error {
	if t.leaks == 0 || s.follower() {
		return nil
	}
	return tx.SetMeta(ctx, storage.MetaShadowLeaks, s.leaks.Load()+t.leaks, "")
}

// counted publishes a committed transaction's writes; a leak is logged and counted at once.
func (s *server) counted(t tally) {
	if s.counts == nil {
		return
	}
	s.counts.add(s.planeOf(), t)
	if t.leaks > 0 && !s.follower() {
		s.leaks.Add(t.leaks)
		s.counts.leaks.Add(float64(t.leaks))
		s.log.Error("stress writes in the production database", "leaks", t.leaks, "total", s.leaks.Load())
	}
}

// resources are the resources whose writes are counted, in tally order.
var resources = []string{"accounts", "payments", "outbox"}

// planeMetrics are a process's counters of writes by plane and resource, and of leaks.
type planeMetrics struct {
	writes  *prometheus.CounterVec
	leaks   prometheus.Counter
	refused prometheus.Counter
	ready   prometheus.Gauge
	n       [2][3]atomic.Int64 // the writes again, by plane index and resource, for /internal/shadow
}

func newPlaneMetrics(reg prometheus.Registerer) *planeMetrics {
	m := &planeMetrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paycell_writes_total",
			Help: "Rows written, by plane (production, shadow) and resource (accounts, payments, outbox)."}, []string{"plane", "resource"}),
		leaks: prometheus.NewCounter(prometheus.CounterOpts{Name: "paycell_shadow_leaks_total",
			Help: "Stress writes that reached the production database (persisted: survives restarts)."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "paycell_stress_marker_refusals_total",
			Help: "Requests refused for a malformed or inconsistent stress marker."}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paycell_shadow_ready",
			Help: "1 once the replica's shadow plane is open and migrated."}),
	}
	reg.MustRegister(m.writes, m.leaks, m.refused, m.ready)
	for _, p := range []shadow.Plane{shadow.Production, shadow.Shadow} {
		for _, r := range resources {
			m.writes.WithLabelValues(string(p), r) // every series exists from the start, at 0
		}
	}
	return m
}

func planeIndex(p shadow.Plane) int {
	if p == shadow.Shadow {
		return 1
	}
	return 0
}

func (m *planeMetrics) add(p shadow.Plane, t tally) {
	for i, n := range []int64{t.accounts, t.payments, t.outbox} {
		if n > 0 {
			m.writes.WithLabelValues(string(p), resources[i]).Add(float64(n))
			m.n[planeIndex(p)][i].Add(n)
		}
	}
}

// snapshot returns the write counters by plane and resource.
func (m *planeMetrics) snapshot() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, p := range []shadow.Plane{shadow.Production, shadow.Shadow} {
		out[string(p)] = map[string]int64{}
		for i, r := range resources {
			out[string(p)][r] = m.n[planeIndex(p)][i].Load()
		}
	}
	return out
}
