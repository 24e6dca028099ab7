// Package audit runs the paycell ledger audit: it gathers every unit replica's figures, either
// from the running replicas (GET /internal/audit) or from the databases in a data directory
// (offline, after a run or a crash), and judges target/ledger's invariants over them.
//
// The control side calls it: the admin API's GET /admin/audit (Online) and
// `redline target audit --data DIR` (Offline). A report with any false invariant is a failed
// audit (exit 3 at the command line).
//
// Offline, a primary's acknowledged seq is the one stored with its last batch, which trails its
// acknowledgements by at most one batch (a running replica reports the exact one): a payment
// lost in that last window shows in the client's read-back, not in an offline audit.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/storage"
)

// ReportVersion is the version of the report's JSON shape.
const ReportVersion = 1

// Limits of an audit.
const (
	// ReplicaTimeout bounds one replica's answer (its figures are full scans of its tables).
	ReplicaTimeout = 30 * time.Second
	// replicasMax bounds the replicas of one audit.
	replicasMax = 1_024
	// parallelMax bounds the replicas asked at once.
	parallelMax = 8
	// answerBytesMax bounds a replica's answer.
	answerBytesMax = 1 << 20
)

// Errors of the audit.
var (
	ErrNoReplicas   = errors.New("no unit replicas to audit")
	ErrTooManyUnits = errors.New("too many replicas to audit")
)

// Report is the audit's answer: one verdict per invariant (true, false or unknown, with a
// detail and figures), the overall verdict, and per-unit figures behind them.
type Report struct {
	Version int            `json:"version"`
	Verdict ledger.Verdict `json:"verdict"`
	Checks  []ledger.Check `json:"checks"`
	Units   []ledger.Unit  `json:"units"`
	// Events are the event pipeline's figures, absent when the audit did not look at them.
	Events *ledger.Events `json:"events,omitempty"`
	// Shadow is the shadow plane's own audit (its invariants also appear in Checks, named
	// shadow.<name>), absent when the audit did not look at it (shadow.go).
	Shadow *Report `json:"shadow,omitempty"`
}

// Failed reports whether any invariant is false.
func (r Report) Failed() bool { return r.Verdict == ledger.False }

// Target is one running replica to audit.
type Target struct {
	Unit    string `json:"unit"`
	Replica string `json:"replica"`
	Addr    string `json:"addr"` // host:port of its HTTP API
}

// Judge evaluates the invariants over gathered units.
func Judge(units []ledger.Unit) Report {
	sort.Slice(units, func(i, j int) bool { return units[i].Name < units[j].Name })
	checks := ledger.Evaluate(units)
	return Report{Version: ReportVersion, Verdict: ledger.Overall(checks), Checks: checks, Units: units}
}

// Online audits running replicas over HTTP. A replica that does not answer makes the invariants
// that need it unknown; it is not an error of the audit.
func Online(ctx context.Context, client *http.Client, targets []Target) (Report, error) {
	if len(targets) == 0 {
		return Report{}, ErrNoReplicas
	}
	if len(targets) > replicasMax {
		return Report{}, fmt.Errorf("audit %d replicas: %w", len(targets), ErrTooManyUnits)
	}
	if client == nil {
		client = http.DefaultClient
	}
	figures := make([]ledger.Replica, len(targets))
	sem := make(chan struct{}, parallelMax)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() { // ends when this replica answered or timed out
			defer wg.Done()
			defer func() { <-sem }()
			figures[i] = fetchFigures(ctx, client, t)
		}()
	}
	wg.Wait()
	units := group(figures)
	for i := range units {
		p, ok := ledger.Authoritative(units[i].Replicas)
		seqs := ledger.ChainSeqs(units[i].Replicas)
		if !ok || len(seqs) == 0 {
			continue
		}
		addr := addrOf(targets, units[i].Replicas[p])
		chains, err := fetchChains(ctx, client, addr, seqs)
		if err != nil {
			continue // the comparisons that need them come out unknown
		}
		units[i].PrimaryChains = chains
	}
	return Judge(units), nil
}

func addrOf(targets []Target, r ledger.Replica) string {
	for _, t := range targets {
		if t.Unit == r.Unit && t.Replica == r.Replica {
			return t.Addr
		}
	}
	return ""
}

type auditAnswer struct {
	Replica ledger.Replica   `json:"replica"`
	Chains  map[int64]string `json:"chains"`
	Outbox  *ledger.Digest   `json:"outbox,omitempty"`
}

func fetchFigures(ctx context.Context, client *http.Client, t Target) ledger.Replica {
	var a auditAnswer
	if err := get(ctx, client, "http://"+t.Addr+"/internal/audit", &a); err != nil {
		return ledger.Replica{Unit: t.Unit, Replica: t.Replica, Error: err.Error()}
	}
	a.Replica.Unit, a.Replica.Replica = t.Unit, t.Replica
	return a.Replica
}

func fetchChains(ctx context.Context, client *http.Client, addr string, seqs []int64) (map[int64]string, error) {
	var a auditAnswer
	if err := get(ctx, client, "http://"+addr+ledger.ChainsPath(seqs), &a); err != nil {
		return nil, err
	}
	return a.Chains, nil
}

func get(ctx context.Context, client *http.Client, u string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, ReplicaTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("build audit request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, answerBytesMax))
	if err != nil {
		return fmt.Errorf("read %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d: %s", u, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode %s: %w", u, err)
	}
	return nil
}

// group sorts replicas into units, ordered by name.
func group(replicas []ledger.Replica) []ledger.Unit {
	byName := map[string]*ledger.Unit{}
	var names []string
	for _, r := range replicas {
		u, ok := byName[r.Unit]
		if !ok {
			u = &ledger.Unit{Name: r.Unit}
			byName[r.Unit] = u
			names = append(names, r.Unit)
		}
		u.Replicas = append(u.Replicas, r)
	}
	sort.Strings(names)
	out := make([]ledger.Unit, 0, len(names))
	for _, n := range names {
		u := byName[n]
		sort.Slice(u.Replicas, func(i, j int) bool { return u.Replicas[i].Replica < u.Replicas[j].Replica })
		out = append(out, *u)
	}
	return out
}

// Offline audits the databases under dataDir (DATA/units/<unit>/<replica>/unit.db), read-only,
// and the event pipeline's files when the target ran one (see offlineEvents).
// Run it on a stopped target: a running one may be between two writes.
func Offline(ctx context.Context, dataDir string) (Report, error) {
	srv, err := sqldb.ReadServer(dataDir)
	if err != nil {
		return Report{}, err
	}
	dirs, err := replicaDirs(dataDir, srv)
	if err != nil {
		return Report{}, fmt.Errorf("find unit databases: %w", err)
	}
	if len(dirs) == 0 {
		return Report{}, fmt.Errorf("find unit databases under %s: %w", dataDir, ErrNoReplicas)
	}
	if len(dirs) > replicasMax {
		return Report{}, fmt.Errorf("audit %d replicas: %w", len(dirs), ErrTooManyUnits)
	}
	dbs := make(map[string]*storage.DB, len(dirs))
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	var figures []ledger.Replica
	for _, dir := range dirs {
		figures = append(figures, offlineFigures(ctx, srv, dir, dbs))
	}
	units := group(figures)
	for i := range units {
		p, ok := ledger.Authoritative(units[i].Replicas)
		seqs := ledger.ChainSeqs(units[i].Replicas)
		if !ok || len(seqs) == 0 {
			continue
		}
		r := units[i].Replicas[p]
		if chains, err := dbs[r.Unit+"/"+r.Replica].ChainsAt(ctx, seqs); err == nil {
			units[i].PrimaryChains = chains
		}
	}
	rep := Judge(units)
	if ev, ok := offlineEvents(ctx, dataDir, srv, rep.Units, dbs); ok {
		rep = rep.withEvents(ev)
	}
	return rep.withShadow(offlineLeaks(ctx, dbs), nil), nil
}

// replicaDirs are the replicas' data dirs, DATA/units/<unit>/<replica>: those holding a SQLite
// database, or every one when the databases live on PostgreSQL (DATA/postgres.json).
func replicaDirs(dataDir string, srv sqldb.Server) ([]string, error) {
	if !srv.Postgres() {
		files, err := filepath.Glob(filepath.Join(dataDir, "units", "*", "*", storage.FileName))
		for i := range files {
			files[i] = filepath.Dir(files[i])
		}
		return files, err
	}
	paths, err := filepath.Glob(filepath.Join(dataDir, "units", "*", "*"))
	var dirs []string
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			dirs = append(dirs, p)
		}
	}
	return dirs, err
}

// offlineFigures reads one replica's figures from its database (in dir, or its schema on srv);
// the unit and replica names come from the path, so a database that cannot be read is still
// reported.
func offlineFigures(ctx context.Context, srv sqldb.Server, dir string, dbs map[string]*storage.DB) ledger.Replica {
	unitName, replica := filepath.Base(filepath.Dir(dir)), filepath.Base(dir)
	db, err := storage.OpenReadOnlyAt(ctx, srv.Place(dir, storage.FileName, "unit", unitName, replica))
	if err != nil {
		return ledger.Replica{Unit: unitName, Replica: replica, Error: err.Error()}
	}
	dbs[unitName+"/"+replica] = db
	r, err := db.Figures(ctx)
	if err != nil {
		return ledger.Replica{Unit: unitName, Replica: replica, Error: err.Error()}
	}
	r.Unit, r.Replica = unitName, replica
	return r
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write audit report: %w", err)
	}
	return nil
}
