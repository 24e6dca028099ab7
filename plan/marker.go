package plan

import (
	"net/http"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/redline-dev/redline/load"
	"github.com/redline-dev/redline/shadow"
)

// Marker is how a plan's requests carry the stress marker: the run id, so that the target
// keeps their writes in its shadow data.
type Marker string

// The markers.
const (
	// MarkerHeader sends X-Redline-Run: <run id> on every request (the default).
	MarkerHeader Marker = "header"
	// MarkerBaggage sends the run id as W3C baggage, redline.run=<run id>, added to the
	// request's own baggage if it has one.
	MarkerBaggage Marker = "baggage"
	// MarkerOff sends no marker: the traffic is production traffic to the target.
	MarkerOff Marker = "off"
)

// marker compiles target.marker.
func (c *compiler) marker(n *yaml.Node) Marker {
	if n == nil {
		return MarkerHeader
	}
	s, ok := c.str(n, "target.marker", "header, baggage or off")
	if !ok {
		return MarkerHeader
	}
	switch m := Marker(s); m {
	case MarkerHeader, MarkerBaggage, MarkerOff:
		return m
	}
	c.r.at(n, "target.marker", "marker %q: want header, baggage or off", s)
	return MarkerHeader
}

// Mark returns reqs with the stress marker of run id added as m says, as a literal header
// value (a template would make every static request be rendered per arrival). reqs is not
// changed.
func (m Marker) Mark(reqs []load.Request, run string) []load.Request {
	if m == MarkerOff || run == "" {
		return reqs
	}
	out := make([]load.Request, len(reqs))
	for i, r := range reqs {
		h := r.Header.Clone()
		if h == nil {
			h = http.Header{}
		}
		if m == MarkerBaggage {
			member := shadow.BaggageKey + "=" + run
			if old := h.Get(shadow.BaggageHeader); old != "" {
				member = old + "," + member
			}
			h.Set(shadow.BaggageHeader, member)
		} else {
			h.Set(shadow.Header, run)
		}
		r.Header = h
		out[i] = r
	}
	return out
}

// markerConflict says why a request's own headers clash with the plan's marker ("" when they
// do not): a plan that marks its requests leaves the marker to Redline.
func markerConflict(m Marker, h http.Header) string {
	if m == MarkerOff {
		return ""
	}
	if len(h.Values(shadow.Header)) > 0 {
		return "sets " + shadow.Header + ", which target.marker sets: use target.marker: off to set it yourself"
	}
	for _, v := range h.Values(shadow.BaggageHeader) {
		if strings.Contains(v, shadow.BaggageKey) {
			return "sets baggage " + shadow.BaggageKey + ", which target.marker sets: use target.marker: off to set it yourself"
		}
	}
	return ""
}
