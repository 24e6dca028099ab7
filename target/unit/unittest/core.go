package unittest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/ledger"
)

// Core is a fake core zone for one unit (httptest, no Raft): it holds the unit's configuration
// under the same rules as the real one (every change takes a new epoch; a change under an old
// epoch is refused with 409; a dropped standby is never promoted, nor one not yet seen in sync)
// and pushes configurations to the replicas after add-standby, as the real leader does.
type Core struct {
	srv  *httptest.Server
	unit string

	mu        sync.Mutex
	epoch     int64
	primary   string
	standby   string
	standbyOK bool
	// The real leader's sync guard (target/corezone, watch): after add-standby the primary may
	// still owe the standby what it acknowledged alone, so the standby is promotable only once
	// seen at or past syncSeq, the primary's last seq when it took the configuration (-1: not
	// known yet).
	synced    bool
	syncSeq   int64
	addrs     map[string]string
	drops     int
	decisions map[string]string // cross-unit transfers: key → confirmed | cancelled
	asked     map[string]int    // resolve requests per key and plane ("key" or "key?plane=shadow")
}

// UnitConfig is the unit's entry in GET /v1/routing.
type UnitConfig struct {
	Epoch     int64  `json:"epoch"`
	Primary   string `json:"primary"`
	Standby   string `json:"standby"`
	StandbyOK bool   `json:"standby_ok"`
	// StandbySynced says the standby was seen holding everything the primary had when it took
	// this configuration; only then is it promoted.
	StandbySynced bool              `json:"standby_synced"`
	Addrs         map[string]string `json:"addrs"`
}

func newCore(t testing.TB, unit string) *Core {
	c := &Core{unit: unit, syncSeq: -1, addrs: map[string]string{}, decisions: map[string]string{}, asked: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/routing", c.handleRouting)
	mux.HandleFunc("POST /v1/units/{unit}/{op}", c.handleChange)
	mux.HandleFunc("POST /v1/transfers/{key}/resolve", c.handleResolve)
	c.srv = httptest.NewServer(mux)
	t.Cleanup(c.srv.Close)
	return c
}

// Addr is the fake core's host:port.
func (c *Core) Addr() string { return strings.TrimPrefix(c.srv.URL, "http://") }

// Config returns the unit's configuration.
func (c *Core) Config() UnitConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.configLocked()
}

func (c *Core) configLocked() UnitConfig {
	addrs := make(map[string]string, len(c.addrs))
	for k, v := range c.addrs {
		addrs[k] = v
	}
	return UnitConfig{Epoch: c.epoch, Primary: c.primary, Standby: c.standby, StandbyOK: c.standbyOK, StandbySynced: c.synced, Addrs: addrs}
}

// Decide sets the decision the fake core answers a participant asking about a transfer (until
// then it answers trying).
func (c *Core) Decide(key, state string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decisions[key] = state
}

// Asked counts the times a participant asked about a transfer: key for the production plane,
// key+"?plane=shadow" for the shadow plane.
func (c *Core) Asked(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.asked[key]
}

func (c *Core) handleResolve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	key := r.PathValue("key")
	if p := r.URL.Query().Get("plane"); p != "" {
		c.asked[key+"?plane="+p]++
	} else {
		c.asked[key]++
	}
	state, ok := c.decisions[key]
	c.mu.Unlock()
	if !ok {
		state = "trying"
	}
	writeJSON(w, http.StatusOK, map[string]string{"state": state})
}

// Drops counts the drop-standby requests the core accepted.
func (c *Core) Drops() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drops
}

func (c *Core) set(epoch int64, primary, standby string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch, c.primary, c.standby, c.standbyOK, c.synced = epoch, primary, standby, ok, ok
}

// Synced reports whether the standby is promotable: in the configuration and seen holding what
// the primary had when it took it. It asks the standby for its state until it is.
func (c *Core) Synced() bool {
	c.mu.Lock()
	epoch, ok, synced, syncSeq, addr := c.epoch, c.standbyOK, c.synced, c.syncSeq, c.addrs[c.standby]
	c.mu.Unlock()
	if !ok || synced || syncSeq < 0 {
		return ok && synced
	}
	st, err := replicaState(addr)
	if err != nil || st.Epoch != epoch || st.Role != ledger.RoleStandby || st.LastSeq < syncSeq {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == epoch && c.standbyOK {
		c.synced = true
	}
	return c.synced
}

// replicaState reads a replica's GET /internal/state.
func replicaState(addr string) (State, error) {
	var st State
	resp, err := stateClient.Get("http://" + addr + "/internal/state")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("state of %s: %s", addr, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// stateClient bounds the fake core's probes of a replica.
var stateClient = &http.Client{Timeout: 2 * time.Second}

func (c *Core) setAddr(replica, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addrs[replica] = addr
}

func (c *Core) handleRouting(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	body := map[string]any{"epoch": c.epoch, "units": map[string]UnitConfig{c.unit: c.configLocked()}}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

type changeRequest struct {
	Epoch   int64  `json:"epoch"`
	Replica string `json:"replica"`
	Addr    string `json:"addr"`
}

func (c *Core) handleChange(w http.ResponseWriter, r *http.Request) {
	var req changeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.PathValue("unit") != c.unit {
		writeJSON(w, http.StatusBadRequest, errBody("bad_request", "malformed change"))
		return
	}
	if r.PathValue("op") == "promote" {
		c.Synced() // observe the standby first, as the real leader's probes do
	}
	c.mu.Lock()
	if req.Epoch != c.epoch {
		c.mu.Unlock()
		writeJSON(w, http.StatusConflict, errBody("stale_epoch", fmt.Sprintf("epoch %d is not %d", req.Epoch, c.epoch)))
		return
	}
	var push []pushConfig
	switch r.PathValue("op") {
	case "drop-standby":
		c.epoch++
		c.standbyOK, c.synced = false, false
		c.drops++
	case "promote":
		if !c.standbyOK {
			c.mu.Unlock()
			writeJSON(w, http.StatusConflict, errBody("standby_not_ok", "a dropped standby is never promoted"))
			return
		}
		if !c.synced {
			c.mu.Unlock()
			writeJSON(w, http.StatusConflict, errBody("standby_not_ok", "a standby not seen in sync is never promoted"))
			return
		}
		c.epoch++
		c.primary, c.standby, c.standbyOK, c.synced = c.standby, "", false, false
		push = append(push, pushConfig{c.addrs[c.primary], c.epoch, "primary", ""})
	case "add-standby":
		c.epoch++
		c.standby, c.standbyOK, c.synced, c.syncSeq = req.Replica, true, false, -1
		c.addrs[req.Replica] = req.Addr
		push = append(push, pushConfig{req.Addr, c.epoch, "standby", ""}, pushConfig{c.addrs[c.primary], c.epoch, "primary", req.Addr})
	default:
		c.mu.Unlock()
		writeJSON(w, http.StatusNotFound, errBody("unknown_op", r.PathValue("op")))
		return
	}
	cfg := c.configLocked()
	c.mu.Unlock()
	for _, p := range push {
		st, err := p.send()
		if err == nil && p.role == ledger.RolePrimary && p.standbyAddr != "" && st.Epoch == cfg.Epoch {
			c.mu.Lock()
			if c.epoch == cfg.Epoch {
				c.syncSeq = st.LastSeq // the primary's head as it took the configuration
			}
			c.mu.Unlock()
		}
	}
	writeJSON(w, http.StatusOK, cfg)
}

type pushConfig struct {
	addr        string
	epoch       int64
	role        string
	standbyAddr string
}

// send pushes the configuration and returns the replica's state after it.
func (p pushConfig) send() (State, error) {
	var st State
	b, _ := json.Marshal(map[string]any{"epoch": p.epoch, "role": p.role, "standby_addr": p.standbyAddr})
	resp, err := http.Post("http://"+p.addr+"/internal/config", "application/json", bytes.NewReader(b))
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("config of %s: %s", p.addr, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func errBody(code, msg string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": msg}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
