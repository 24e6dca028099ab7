package supervisor

import (
	"context"
	"net/http"
	"time"
)

// shadowTimeout bounds GET /admin/shadow: one small read of every unit replica.
const shadowTimeout = 5 * time.Second

// ShadowReplica is one unit replica's shadow plane as GET /admin/shadow reports it.
type ShadowReplica struct {
	Unit    string `json:"unit"`
	Replica string `json:"replica"`
	// Ready is whether the replica's shadow plane is open (marked requests are refused until).
	Ready bool `json:"ready"`
	// Leaks are the stress writes its production database took (persisted, exact).
	Leaks int64 `json:"leaks"`
	// Writes are its rows written since the process started, by plane and resource.
	Writes map[string]map[string]int64 `json:"writes,omitempty"`
	Error  string                      `json:"error,omitempty"`
}

// Shadow is GET /admin/shadow: the stress traffic isolation of the whole target, live.
type Shadow struct {
	// Leaks is the stress writes in production databases: the highest count of each unit's
	// replicas (a standby counts the leaks it applied from its primary), summed over units.
	Leaks int64 `json:"leaks"`
	// Ready is the count of replicas whose shadow plane is open, of Replicas.
	Ready    int             `json:"ready"`
	Replicas int             `json:"replicas"`
	Units    []ShadowReplica `json:"units"`
}

func (s *supervisor) handleShadow(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), shadowTimeout)
	defer cancel()
	out := Shadow{}
	perUnit := map[string]int64{}
	for _, p := range s.procs {
		if p.role != RoleUnit {
			continue
		}
		sr := ShadowReplica{Unit: p.unit, Replica: p.replica}
		if err := s.getJSON(ctx, "http://"+p.addr+"/internal/shadow", &sr); err != nil {
			sr.Error = err.Error()
		}
		sr.Unit, sr.Replica = p.unit, p.replica
		out.Replicas++
		if sr.Ready {
			out.Ready++
		}
		perUnit[p.unit] = max(perUnit[p.unit], sr.Leaks)
		out.Units = append(out.Units, sr)
	}
	for _, n := range perUnit {
		out.Leaks += n
	}
	writeJSON(w, http.StatusOK, out)
}
