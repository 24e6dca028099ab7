package supervisor

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/redline-dev/redline/target/corezone"
)

// Admin API limits.
const (
	auditTimeout  = 30 * time.Second
	healthTimeout = 2 * time.Second
)

// Health is GET /admin/health.
type Health struct {
	// OK: every process is up and answers, and every unit serves with a synced standby.
	OK bool `json:"ok"`
	// Serving: every unit has a primary serving (the business API works, maybe without standby).
	Serving   bool                  `json:"serving"`
	Epoch     uint64                `json:"epoch"`
	Units     map[string]UnitHealth `json:"units"`
	Processes []ProcessHealth       `json:"processes"`
	Problems  []string              `json:"problems,omitempty"`
}

// UnitHealth is a unit's configuration and whether its primary serves.
type UnitHealth struct {
	corezone.Unit
	Serving bool `json:"serving"`
}

// ProcessHealth is a process and what it answered.
type ProcessHealth struct {
	Process
	Answered bool `json:"answered"`
	// ReportedRole and ReportedEpoch are what a unit replica says of itself.
	ReportedRole  string `json:"reported_role,omitempty"`
	ReportedEpoch uint64 `json:"reported_epoch,omitempty"`
	LastSeq       int64  `json:"last_seq,omitempty"`
	Error         string `json:"error,omitempty"`
}

// Action is the answer of POST /admin/processes/{role}/{unit}/{replica}/{action}.
type Action struct {
	Process string    `json:"process"`
	Action  string    `json:"action"`
	Signal  string    `json:"signal"`
	Pid     int       `json:"pid"`
	At      time.Time `json:"at"`
}

func (s *supervisor) adminRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/topology", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.topology())
	})
	mux.HandleFunc("GET /admin/health", s.handleHealth)
	mux.HandleFunc("GET /admin/routing", s.handleRouting)
	mux.HandleFunc("POST /admin/processes/{role}/{unit}/{replica}/{action}", s.handleProcess)
	mux.HandleFunc("GET /admin/audit", s.handleAudit)
	mux.HandleFunc("GET /admin/shadow", s.handleShadow)
	mux.HandleFunc("GET /admin/consumers/{group}", s.handleConsumer)
	mux.HandleFunc("POST /admin/consumers/{group}/throttle", s.handleConsumer)
	mux.HandleFunc("DELETE /admin/consumers/{group}/throttle", s.handleConsumer)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return s.authorize(mux)
}

// authorize lets through requests from a loopback address with the bearer token only.
func (s *supervisor) authorize(next http.Handler) http.Handler {
	want := []byte("Bearer " + s.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			writeError(w, http.StatusForbidden, "not_loopback", "the admin API answers loopback clients only")
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="redline-admin"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a bearer token (DATA/admin.token) is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *supervisor) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	writeJSON(w, http.StatusOK, s.health(s.observe(ctx)))
}

// health judges an observation.
func (s *supervisor) health(o observation) Health {
	h := Health{Units: map[string]UnitHealth{}}
	if o.routingErr != nil {
		h.Problems = append(h.Problems, "routing: "+o.routingErr.Error())
	} else {
		h.Epoch = o.routing.Epoch
		for name, u := range o.routing.Units {
			h.Units[name] = UnitHealth{Unit: u}
		}
	}
	for _, p := range s.procs {
		ph := ProcessHealth{Process: p.snapshot()}
		pr, probed := o.probes[p]
		ph.Answered = probed && pr.err == nil
		if probed && pr.err != nil {
			ph.Error = pr.err.Error()
		}
		if ph.Answered && p.role == RoleUnit {
			ph.ReportedRole, ph.ReportedEpoch, ph.LastSeq = pr.unit.Role, pr.unit.Epoch, pr.unit.LastSeq
			if uh, ok := h.Units[p.unit]; ok && uh.Primary == p.replica && pr.unit.Role == corezone.RolePrimary && pr.unit.Epoch == uh.Epoch {
				uh.Serving = true
				h.Units[p.unit] = uh
			}
		}
		if !ph.Answered {
			h.Problems = append(h.Problems, fmt.Sprintf("%s: up %v, paused %v, not answering", p.key(), ph.Up, ph.Paused))
		}
		h.Processes = append(h.Processes, ph)
	}
	h.Serving = o.routingErr == nil && len(h.Units) == s.cfg.Units
	h.OK = h.Serving && len(h.Problems) == 0
	names := make([]string, 0, len(h.Units))
	for name := range h.Units {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		u := h.Units[name]
		if !u.Serving {
			h.Serving, h.OK = false, false
			h.Problems = append(h.Problems, "unit "+name+": primary not serving")
		}
		if u.Standby == "" || !u.StandbyOK || !u.StandbySynced {
			h.OK = false
			h.Problems = append(h.Problems, "unit "+name+": no synced standby")
		}
	}
	return h
}

func (s *supervisor) handleRouting(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	st, err := s.core.Routing(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "routing_unavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// handleProcess kills, pauses or resumes one process.
func (s *supervisor) handleProcess(w http.ResponseWriter, r *http.Request) {
	role, unit, replica, action := r.PathValue("role"), r.PathValue("unit"), r.PathValue("replica"), r.PathValue("action")
	sig, ok := actionSignals[action]
	if !ok {
		writeError(w, http.StatusNotFound, "unknown_action", fmt.Sprintf("action %q: want kill, pause or resume", action))
		return
	}
	p := s.find(role, unit, replica)
	if p == nil {
		writeError(w, http.StatusNotFound, "unknown_process", fmt.Sprintf("no process %s/%s/%s", role, unit, replica))
		return
	}
	pid := p.snapshot().Pid
	if err := s.signal(p, sig); err != nil {
		status, code := http.StatusInternalServerError, "signal_failed"
		if errors.Is(err, ErrProcDown) {
			status, code = http.StatusConflict, "process_down"
		}
		writeError(w, status, code, err.Error())
		return
	}
	s.log.Info("admin action", "proc", p.key(), "action", action, "pid", pid)
	s.writeTopology()
	writeJSON(w, http.StatusOK, Action{Process: p.key(), Action: action, Signal: signalNames[sig], Pid: pid, At: time.Now()})
}

// The admin actions and their signals.
var (
	actionSignals = map[string]syscall.Signal{"kill": syscall.SIGKILL, "pause": syscall.SIGSTOP, "resume": syscall.SIGCONT}
	signalNames   = map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGSTOP: "SIGSTOP", syscall.SIGCONT: "SIGCONT"}
)

// find returns the process role/unit/replica, nil when there is none.
func (s *supervisor) find(role, unit, replica string) *proc {
	for _, p := range s.procs {
		if p.role == role && p.unit == unit && p.replica == replica {
			return p
		}
	}
	return nil
}

func (s *supervisor) handleAudit(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), auditTimeout)
	defer cancel()
	rep, err := s.audit(ctx)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "audit_failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// errorBody is the JSON error shape of every target process.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, strings.TrimSpace(msg)
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// handleConsumer forwards a consumer group's state and throttle calls to its process
// (GET /v1/state, POST and DELETE /v1/throttle).
func (s *supervisor) handleConsumer(w http.ResponseWriter, r *http.Request) {
	p := s.find(RoleConsumer, r.PathValue("group"), "-")
	if p == nil {
		http.Error(w, `{"error": {"code": "unknown_group", "message": "no such consumer group"}}`, http.StatusNotFound)
		return
	}
	path := "/v1/state"
	if r.Method != http.MethodGet {
		path = "/v1/throttle"
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+p.snapshot().Addr+path, io.LimitReader(r.Body, replyMax))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		http.Error(w, `{"error": {"code": "consumer_down", "message": "the consumer process does not answer"}}`, http.StatusServiceUnavailable)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, replyMax))
}
