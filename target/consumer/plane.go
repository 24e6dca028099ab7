package consumer

import (
	"context"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/events"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/storage"
)

// A consumer group's process consumes both planes: production events (stream PAYCELL_EVENTS)
// into its store in DataDir, and stress traffic's shadow events (PAYCELL_SHADOW_EVENTS) into a
// separate shadow store in DataDir/shadow, each a durable JetStream consumer named after the
// group on its own stream. One throttle governs both lanes (a ConsumerChaos fault slows the
// group, whichever traffic it carries); the lag, rate and applied count the process reports are
// the sums of both lanes; GET /internal/audit answers the shadow store's figures when asked
// with X-Redline-Plane: shadow.

// lane is one plane's consumption: its stream, its store and its figures.
type lane struct {
	plane   shadow.Plane
	store   *store
	lag     atomic.Int64
	handled atomic.Int64 // batches applied and acked
	applied atomic.Int64
	writes  prometheus.Counter
}

// openLanes opens the production store at place and the shadow store beside it.
func openLanes(ctx context.Context, place sqldb.Place, m *metrics) ([]*lane, error) {
	var lanes []*lane
	for _, p := range []shadow.Plane{shadow.Production, shadow.Shadow} {
		pl := place
		if p == shadow.Shadow {
			pl = storage.ShadowPlace(place)
		}
		st, err := openStore(ctx, pl)
		if err != nil {
			for _, l := range lanes {
				l.store.close()
			}
			return nil, err
		}
		n, err := st.applied(ctx)
		if err != nil {
			st.close()
			for _, l := range lanes {
				l.store.close()
			}
			return nil, err
		}
		l := &lane{plane: p, store: st, writes: m.writes.WithLabelValues(string(p), "inbox")}
		l.applied.Store(n)
		lanes = append(lanes, l)
	}
	return lanes, nil
}

// streamOf is the stream a lane consumes.
func (l *lane) stream() string { return events.StreamOf(l.plane) }

// laneOf picks the lane a request asks for by its X-Redline-Plane header.
func (c *consumer) laneOf(r *http.Request) *lane {
	if shadow.Plane(r.Header.Get(shadow.PlaneHeader)) == shadow.Shadow {
		return c.lanes[1]
	}
	return c.lanes[0]
}

// totalLag is the lag of both lanes.
func (c *consumer) totalLag() int64 {
	var n int64
	for _, l := range c.lanes {
		n += l.lag.Load()
	}
	return n
}

func (c *consumer) handleAudit(w http.ResponseWriter, r *http.Request) {
	l := c.laneOf(r)
	g := ledger.Group{Name: c.cfg.Group, Lag: l.lag.Load(), MaxLag: c.maxLag.Load(), DrainMS: c.drainMS.Load()}
	if err := l.store.figures(r.Context(), &g); err != nil {
		g.Error = err.Error()
	}
	writeJSON(w, http.StatusOK, g)
}

func newWritesCounter(group string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paycell_writes_total",
		ConstLabels: prometheus.Labels{"group": group},
		Help:        "Events applied (inbox row and effect), by plane (production, shadow) and resource."}, []string{"plane", "resource"})
}
