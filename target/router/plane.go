package router

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/shadow"
)

// The stress marker at the front door: the router parses every business request's marker
// (X-Redline-Run, or redline.run in W3C baggage), refuses a malformed or inconsistent one with
// 400 bad_stress_marker before anything is forwarded, and tells the unit the request's plane
// (X-Redline-Plane: shadow, with the run id normalized into X-Redline-Run) for a marked one.

type runKey struct{}

// mark parses r's marker: it returns r carrying its run id, or the refusal.
func (rt *router) mark(r *http.Request, route string) (*http.Request, *reply) {
	run, err := shadow.Marker(r.Header)
	if err != nil {
		rep := errorReply(http.StatusBadRequest, "bad_stress_marker", err.Error())
		return nil, &rep
	}
	plane := shadow.Production
	if run != "" {
		plane = shadow.Shadow
		r = r.WithContext(context.WithValue(r.Context(), runKey{}, run))
	}
	rt.metrics.planes.WithLabelValues(string(plane), route).Inc()
	return r, nil
}

// runOf is the run id of a marked request, "" for production traffic.
func runOf(r *http.Request) string {
	run, _ := r.Context().Value(runKey{}).(string)
	return run
}

// markPassed adds the plane headers of a marked request to the headers a unit sees.
func markPassed(r *http.Request, h http.Header) {
	if run := runOf(r); run != "" {
		h.Set(shadow.Header, run)
		h.Set(shadow.PlaneHeader, string(shadow.Shadow))
	}
}

func newPlaneCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redline_router_requests_by_plane_total",
		Help: "Business requests forwarded, by plane (production, shadow) and route.",
	}, []string{"plane", "route"})
}
