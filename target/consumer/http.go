package consumer

import (
	"encoding/json"

	"errors"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const bodyBytesMax = 4 << 10

// State is GET /v1/state (and the supervisor's GET /admin/consumers/{group}): the throttle
// as set, the lag, the rate and what was applied.
type State struct {
	Group     string  `json:"group"`
	Throttled bool    `json:"throttled"`
	Paused    bool    `json:"paused"`
	RatePerS  float64 `json:"rate_per_s"`  // as set (0 with a percent)
	Percent   float64 `json:"percent"`     // as set
	LimitPerS float64 `json:"limit_per_s"` // the effective limit while throttled
	Lag       int64   `json:"lag"`         // events published and not yet applied (acked)
	MaxLag    int64   `json:"max_lag"`
	Rate      int64   `json:"rate"` // events applied in the last second
	Applied   int64   `json:"applied"`
	DrainMS   int64   `json:"drain_ms"` // the last drain after a release, 0 when none
}

type metrics struct {
	reg     *prometheus.Registry
	lag     prometheus.Gauge
	rate    prometheus.Gauge
	applied prometheus.Counter
	writes  *prometheus.CounterVec
}

func newMetrics(group string) *metrics {
	labels := prometheus.Labels{"group": group}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paycell_consumer_lag", ConstLabels: labels,
			Help: "Events published and not yet applied by the group (pending plus unacknowledged)."}),
		rate: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paycell_consumer_rate", ConstLabels: labels,
			Help: "Events applied in the last second."}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "paycell_consumer_applied_total", ConstLabels: labels,
			Help: "Events applied (inbox row and effect committed)."}),
		writes: newWritesCounter(group),
	}
	m.reg.MustRegister(m.lag, m.rate, m.applied, m.writes)
	return m
}

func (c *consumer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/state", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, c.state()) })
	mux.HandleFunc("POST /v1/throttle", c.handleThrottle)
	mux.HandleFunc("DELETE /v1/throttle", func(w http.ResponseWriter, _ *http.Request) {
		if c.thr.release() {
			c.mu.Lock()
			c.released = time.Now()
			c.mu.Unlock()
		}
		writeJSON(w, http.StatusOK, c.state())
	})
	mux.HandleFunc("GET /internal/audit", c.handleAudit)
	return mux
}

func (c *consumer) handleThrottle(w http.ResponseWriter, r *http.Request) {
	var th Throttle
	dec := json.NewDecoder(io.LimitReader(r.Body, bodyBytesMax))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&th); err != nil {
		writeError(w, http.StatusBadRequest, "bad_json", err)
		return
	}
	if _, extra := dec.Token(); extra != io.EOF {
		writeError(w, http.StatusBadRequest, "bad_json", errors.New("data after the JSON object"))
		return
	}
	if err := c.thr.apply(th); err != nil {
		writeError(w, http.StatusBadRequest, "bad_throttle", err)
		return
	}
	c.mu.Lock()
	c.released = time.Time{}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, c.state())
}

func (c *consumer) state() State {
	st := State{Group: c.cfg.Group, Lag: c.lag.Load(), MaxLag: c.maxLag.Load(), Rate: c.rate.Load(),
		Applied: c.applied.Load(), DrainMS: c.drainMS.Load()}
	if th, limit := c.thr.state(); th != nil {
		rate, percent := th.values()
		st.Throttled, st.RatePerS, st.Percent, st.LimitPerS, st.Paused = true, rate, percent, limit, limit == 0
	}
	return st
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code string, err error) {
	var msg string
	if err != nil {
		msg = err.Error()
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
