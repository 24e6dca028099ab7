package corezone

import (
	"net/http"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/ledger"
)

// Stress traffic's cross-unit payments: a transfer that carries the stress marker (the router
// passes X-Redline-Run of a marked payment; its steps carry it to the participants' shadow
// planes) belongs to the shadow plane. The core zone keeps one registry, keyed by payment key,
// and counts each plane's transfers apart, so that each plane's audit compares its own
// participants' legs with its own decisions: GET /v1/transfers?plane=shadow.

// plane is the plane of a transfer.
func (t *Transfer) plane() shadow.Plane {
	if t.Headers[shadow.Header] != "" {
		return shadow.Shadow
	}
	return shadow.Production
}

// planeOf is the plane of a request to the core zone: the router passes a marked request's run
// id in X-Redline-Run, as it does for a transfer (Transfer.plane).
func planeOf(r *http.Request) shadow.Plane {
	if r.Header.Get(shadow.Header) != "" {
		return shadow.Shadow
	}
	return shadow.Production
}

// statsOf is the figures of t's plane.
func (r *transfers) statsOf(t *Transfer) *ledger.CoreTransfers {
	if t.plane() == shadow.Shadow {
		return &r.shadowStats
	}
	return &r.stats
}

// figuresOf returns plane p's figures, open transfers included.
func (r *transfers) figuresOf(p shadow.Plane) ledger.CoreTransfers {
	f := r.stats
	if p == shadow.Shadow {
		f = r.shadowStats
	}
	for k := range r.open {
		t := r.byKey[k]
		switch {
		case t.plane() != p:
		case t.Decided():
			f.Unfinished++
		default:
			f.Undecided++
		}
	}
	return f
}
