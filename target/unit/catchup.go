package unit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/storage"
)

// Limits of a catch-up.
const (
	// snapshotBytesMax bounds a downloaded snapshot.
	snapshotBytesMax = 8 << 30
	// snapshotTimeout bounds one snapshot download.
	snapshotTimeout = 5 * time.Minute
	// catchUpBackoffMax bounds the wait between two catch-up attempts.
	catchUpBackoffMax = 2 * time.Second
)

// snapshot is a downloaded snapshot on its way to the writer.
type snapshot struct {
	path string
}

// logResponse is the body of GET /internal/log: stored entries from from_seq on.
type logResponse struct {
	Epoch     int64             `json:"epoch"`
	FromSeq   int64             `json:"from_seq"`
	PrevChain string            `json:"prev_chain"`
	LastSeq   int64             `json:"last_seq"`
	Entries   []json.RawMessage `json:"entries"`
}

func (s *server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	v := s.view()
	if e, err := strconv.ParseInt(r.URL.Query().Get("epoch"), 10, 64); err == nil && e > v.Epoch {
		writeError(w, fmt.Errorf("snapshot for epoch %d at epoch %d: %w", e, v.Epoch, ErrNotPrimary), false, replicateResponse{})
		return
	}
	if v.Role != ledger.RolePrimary {
		writeError(w, fmt.Errorf("snapshot from a %s: %w", v.Role, ErrNotPrimary), false, replicateResponse{})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	if _, err := s.db.ExportSnapshot(r.Context(), w, s.cfg.Unit, v.Epoch); err != nil {
		s.log.Warn("export snapshot", "err", err) // the trailer is missing: the reader refuses it
	}
}

func (s *server) handleLog(w http.ResponseWriter, r *http.Request) {
	from, err := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
	if err != nil || from < 1 {
		writeError(w, fmt.Errorf("parse from: %w", errBadPath), true, replicateResponse{})
		return
	}
	v := s.view()
	if v.Role != ledger.RolePrimary {
		writeError(w, fmt.Errorf("log from a %s: %w", v.Role, ErrNotPrimary), true, replicateResponse{})
		return
	}
	prev, err := s.db.ChainAt(r.Context(), from-1)
	var entries []storage.Entry
	if err == nil {
		entries, err = s.db.Entries(r.Context(), from, entriesPerRequestMax)
	}
	if err != nil {
		writeError(w, fmt.Errorf("read log from %d: %w", from, err), true, replicateResponse{})
		return
	}
	resp := logResponse{Epoch: v.Epoch, FromSeq: from, PrevChain: prev, LastSeq: s.committed.Load()}
	for _, e := range entries {
		resp.Entries = append(resp.Entries, e.Body)
	}
	writeJSON(w, http.StatusOK, resp)
}

// startCatchUp starts the catch-up goroutine unless one runs. The goroutine is owned by run
// (s.bg) and ends when the replica is caught up, is configured otherwise, or ctx ends. Every
// caller sets the role to catching up before it calls startCatchUp, and the goroutine decides to
// end under the same lock as startCatchUp decides not to start one: a replica configured to
// catch up again while its goroutine was finishing (a shadow plane that caught up in a few
// milliseconds, then got its production plane's catching-up configuration) catches up again,
// rather than staying a catching-up replica that nothing drives.
func (s *server) startCatchUp(ctx context.Context) {
	s.mu.Lock()
	if s.catching {
		s.mu.Unlock()
		return
	}
	s.catching = true
	s.mu.Unlock()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		for s.catchUpWhileNeeded(ctx) {
		}
	}()
}

// catchUpWhileNeeded catches up while the replica is configured to; it reports whether it must
// go on (configured to catch up again as it finished), else it has cleared s.catching.
func (s *server) catchUpWhileNeeded(ctx context.Context) bool {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil && s.view().Role == ledger.RoleCatchingUp {
		err := s.catchUp(ctx)
		if err == nil {
			break
		}
		s.log.Warn("catch up", "err", err)
		sleep(ctx, backoff)
		backoff = min(2*backoff, catchUpBackoffMax)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.catching = ctx.Err() == nil && s.v.Role == ledger.RoleCatchingUp
	return s.catching
}

// The bases a catch-up starts from, before it pulls the primary's log (the label of
// paycell_catchups_total).
const (
	// baseOwnHistory: the replica's own history is a prefix of the primary's; only the entries
	// after it are pulled.
	baseOwnHistory = "own_history"
	// baseRewound: the replica's history parts from the primary's within its last entries; the
	// entries after the parting are undone, and only the primary's after it are pulled.
	baseRewound = "rewound"
	// baseSnapshot: the replica's books are replaced by the primary's snapshot.
	baseSnapshot = "snapshot"
)

// catchUp brings this replica to the primary's state: from its own history when that is a
// prefix of the primary's (resume), else from the point where the two part when that is recent
// (rewind), else from a snapshot; then the log up to (nearly) the head; then it becomes a
// standby and asks the core zone to add it.
func (s *server) catchUp(ctx context.Context) error {
	primary, err := s.findPrimary(ctx)
	if err != nil {
		return err
	}
	start, held := time.Now(), s.committed.Load()
	base, from, err := s.findBase(ctx, primary)
	if err != nil {
		return err
	}
	s.awaitShadowCaughtUp(ctx) // before the log: what the primary acknowledges alone meanwhile is pulled
	epoch, err := s.pullLog(ctx, primary)
	if err != nil {
		return err
	}
	res := s.submit(ctx, &op{kind: opConfig, cfg: &configRequest{Epoch: max(epoch, s.view().Epoch), Role: ledger.RoleStandby}})
	if res.err != nil {
		return res.err
	}
	last := s.committed.Load()
	pulled := last - from
	s.metrics.caughtUp(base, pulled)
	s.log.Info("caught up", "primary", primary, "base", base, "held", held, "pulled", pulled,
		"last_seq", last, "took", time.Since(start).Round(time.Millisecond))
	return s.addStandby(ctx)
}

// findBase brings the books to a prefix of the primary's history: it returns how (the base)
// and the seq the primary's log is pulled after.
func (s *server) findBase(ctx context.Context, primary string) (string, int64, error) {
	held := s.committed.Load()
	err := s.resume(ctx, primary)
	if err == nil {
		return baseOwnHistory, held, nil
	}
	s.log.Info("cannot catch up from own history as it is; rewinding", "primary", primary, "last_seq", held, "err", err)
	shared, err := s.rewind(ctx, primary)
	if err == nil {
		return baseRewound, shared, nil
	}
	s.log.Info("cannot rewind; installing a snapshot", "primary", primary, "err", err)
	last, err := s.installFrom(ctx, primary)
	return baseSnapshot, last, err
}

// resume starts a catch-up from this replica's own history: it pulls the primary's first page
// of entries after its head and applies it. The writer applies the page only if the primary's
// chain just before it equals this replica's chain at its head: the chain hashes every entry
// body (seq, epoch and change) onto the one before, so equal chains mean the same history up
// to the head. Any failure leaves the books as they were and the caller falls back to a
// snapshot: a head the primary does not hold or holds with another chain (a tail of a killed
// or fenced primary that was never replicated: it must go), entries the primary no longer keeps
// (trimmed bodies, or a history that itself starts from a snapshot), a primary under an epoch
// older than this replica's, or no clear answer.
func (s *server) resume(ctx context.Context, primary string) error {
	resp, err := s.fetchLog(ctx, primary, s.committed.Load()+1)
	if err != nil {
		return err
	}
	if err := s.applyPage(ctx, primary, resp); err != nil {
		return fmt.Errorf("resume from seq %d: %w", resp.FromSeq, err)
	}
	return nil
}

// rewind takes the books back to the last entry this replica shares with the primary, when
// that is among its last chainSeqsMax entries, and applies the primary's first page of entries
// after it: a tail the primary never held (a killed or fenced primary's, never acknowledged)
// goes as a snapshot would take it, at the cost of the tail alone. The primary's chains at
// those seqs (GET /internal/audit?chains_only=1) say where the histories part; its page after
// that point is fetched, its epoch checked, before anything is undone. It returns the shared
// seq. On an error the caller installs a snapshot: from the books as they were, or as rewound
// (a prefix of the primary's either way); storage.ErrNoRewind (an acknowledged entry after the
// shared seq) changed nothing.
func (s *server) rewind(ctx context.Context, primary string) (int64, error) {
	held := s.committed.Load()
	seqs := make([]int64, 0, chainSeqsMax)
	for q := held; q >= 1 && len(seqs) < chainSeqsMax; q-- {
		seqs = append(seqs, q)
	}
	ours, err := s.db.ChainsAt(ctx, seqs)
	if err != nil {
		return 0, err
	}
	theirs, err := s.chainsOf(ctx, primary, seqs)
	if err != nil {
		return 0, err
	}
	shared := int64(0)
	for _, q := range seqs { // newest first
		if c, ok := theirs[q]; ok && c == ours[q] {
			shared = q
			break
		}
	}
	switch {
	case shared == 0:
		return 0, fmt.Errorf("no entry among this replica's last %d held alike by the primary: %w", len(seqs), ErrDiverged)
	case shared == held:
		return 0, fmt.Errorf("the primary holds this replica's head, seq %d: nothing to undo", held)
	}
	page, err := s.fetchLog(ctx, primary, shared+1)
	if err != nil {
		return 0, err
	}
	if page.PrevChain != ours[shared] {
		return 0, fmt.Errorf("the primary's chain at seq %d changed meanwhile: %w", shared, ErrDiverged)
	}
	if res := s.submit(ctx, &op{kind: opRewind, base: shared}); res.err != nil {
		return 0, res.err
	}
	s.metrics.catchUpRewound.Add(float64(held - shared))
	s.log.Info("rewound", "primary", primary, "from", held, "to", shared)
	if len(page.Entries) > 0 {
		if err := s.applyPage(ctx, primary, page); err != nil {
			return 0, fmt.Errorf("apply log after the rewind: %w", err)
		}
	}
	return shared, nil
}

// chainsOf asks the primary for its chains at seqs; a seq it does not hold is absent.
func (s *server) chainsOf(ctx context.Context, primary string, seqs []int64) (map[int64]string, error) {
	ctx, cancel := context.WithTimeout(ctx, replicateTimeout)
	defer cancel()
	var resp auditResponse
	if err := s.call(ctx, http.MethodGet, "http://"+primary+ledger.ChainsPath(seqs), nil, &resp); err != nil {
		return nil, fmt.Errorf("read the primary's chains: %w", err)
	}
	return resp.Chains, nil
}

// rewindBooks takes the books back to seq base (storage.Tx.Rewind), in the writer.
func (s *server) rewindBooks(ctx context.Context, base int64) result {
	if s.view().Role != ledger.RoleCatchingUp {
		return result{err: fmt.Errorf("rewind as %s: %w", s.view().Role, ErrInvalidConfig)}
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return result{err: err}
	}
	defer tx.Rollback()
	chain, err := tx.Rewind(ctx, base)
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return result{err: err}
	}
	s.setHead(base, chain)
	return result{seq: base}
}

// installFrom downloads the primary's snapshot and installs it in place of the books. It
// returns the snapshot's last seq.
func (s *server) installFrom(ctx context.Context, primary string) (int64, error) {
	snap, err := s.download(ctx, primary)
	if err != nil {
		return 0, err
	}
	defer os.Remove(snap.path)
	res := s.submit(ctx, &op{kind: opInstall, install: snap})
	return res.seq, res.err
}

// findPrimary returns the primary to catch up from: the configured one, the last that
// replicated here, or the core zone's.
func (s *server) findPrimary(ctx context.Context) (string, error) {
	s.mu.Lock()
	hint := s.primaryHint
	s.mu.Unlock()
	if len(s.cfg.CoreAddrs) > 0 {
		if u, err := s.routing(ctx); err == nil && u.Addrs[u.Primary] != "" && u.Primary != s.cfg.Replica {
			return u.Addrs[u.Primary], nil
		}
	}
	for _, a := range []string{hint, s.cfg.PrimaryAddr} {
		if a != "" && a != s.addr {
			return a, nil
		}
	}
	return "", errors.New("find primary to catch up from: none known")
}

func (s *server) download(ctx context.Context, primary string) (*snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	url := fmt.Sprintf("http://%s/internal/snapshot?epoch=%d", primary, s.view().Epoch)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("build snapshot request: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get snapshot: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, responseBytesMax))
		return nil, fmt.Errorf("get snapshot: %w", decodeAPIError(resp.StatusCode, raw))
	}
	f, err := os.CreateTemp(s.cfg.DataDir, "snapshot-*.ndjson")
	if err != nil {
		return nil, fmt.Errorf("create snapshot file: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(io.MultiWriter(f, byteCounter{s.metrics.snapshotDownloaded}), io.LimitReader(resp.Body, snapshotBytesMax+1))
	if err == nil && n > snapshotBytesMax {
		err = fmt.Errorf("snapshot over %d bytes", int64(snapshotBytesMax))
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("download snapshot: %w", err)
	}
	return &snapshot{path: filepath.Clean(f.Name())}, nil
}

// installSnapshot replaces the books with a downloaded snapshot, in the writer.
func (s *server) installSnapshot(ctx context.Context, snap *snapshot) result {
	if s.view().Role != ledger.RoleCatchingUp {
		return result{err: fmt.Errorf("install snapshot as %s: %w", s.view().Role, ErrInvalidConfig)}
	}
	f, err := os.Open(snap.path)
	if err != nil {
		return result{err: fmt.Errorf("open snapshot: %w", err)}
	}
	defer f.Close()
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return result{err: err}
	}
	defer tx.Rollback()
	h, lost, err := tx.ImportSnapshot(ctx, io.TeeReader(f, byteCounter{s.metrics.snapshotInstalled}))
	if err != nil {
		return result{err: err}
	}
	if h.Unit != s.cfg.Unit {
		return result{err: fmt.Errorf("install snapshot of unit %q: %w", h.Unit, ErrInvalidConfig)}
	}
	if err := s.persistView(ctx, tx); err != nil {
		return result{err: err}
	}
	if err := tx.Commit(); err != nil {
		return result{err: err}
	}
	s.setHead(h.LastSeq, h.Chain)
	if lost > 0 {
		s.log.Error("catch-up discarded acknowledged payments", "lost", lost)
	}
	s.log.Info("snapshot installed", "last_seq", h.LastSeq, "epoch", h.Epoch)
	return result{seq: h.LastSeq}
}

// pullLog applies the primary's stored entries after the replica's head until a pull comes
// back short (the replica is then close to the head; the primary's replication fills the
// rest). It returns the primary's epoch.
func (s *server) pullLog(ctx context.Context, primary string) (int64, error) {
	for {
		resp, err := s.fetchLog(ctx, primary, s.committed.Load()+1)
		if err != nil {
			return 0, err
		}
		if len(resp.Entries) > 0 {
			if err := s.applyPage(ctx, primary, resp); err != nil {
				return 0, fmt.Errorf("apply pulled log: %w", err)
			}
		}
		if len(resp.Entries) < entriesPerRequestMax {
			return resp.Epoch, nil
		}
	}
}

// fetchLog gets one page of the primary's log from seq from on. A primary under an epoch older
// than this replica's is refused, as GET /internal/snapshot refuses such a replica.
func (s *server) fetchLog(ctx context.Context, primary string, from int64) (*logResponse, error) {
	var resp logResponse
	url := fmt.Sprintf("http://%s/internal/log?from=%d", primary, from)
	ctx, cancel := context.WithTimeout(ctx, replicateTimeout)
	defer cancel()
	if err := s.call(ctx, http.MethodGet, url, nil, &resp); err != nil {
		return nil, fmt.Errorf("pull log from %d: %w", from, err)
	}
	if e := s.view().Epoch; resp.Epoch < e {
		return nil, fmt.Errorf("pull log from a primary under epoch %d at epoch %d: %w", resp.Epoch, e, ErrStaleEpoch)
	}
	if resp.FromSeq != from {
		return nil, fmt.Errorf("pull log from %d: answered from %d: %w", from, resp.FromSeq, ErrDiverged)
	}
	return &resp, nil
}

// applyPage has the writer apply a page of the primary's log: only if it continues this
// replica's history (applyLog).
func (s *server) applyPage(ctx context.Context, primary string, resp *logResponse) error {
	req := &replicateRequest{Epoch: resp.Epoch, FromSeq: resp.FromSeq, PrevChain: resp.PrevChain, Primary: primary, Entries: resp.Entries}
	return s.submit(ctx, &op{kind: opCatchUpLog, repl: req}).err
}

// applyLog applies pulled entries while catching up (no fencing: the replica is in no
// configuration yet, and it pulled them from the primary it chose).
func (s *server) applyLog(ctx context.Context, req *replicateRequest) result {
	if s.view().Role != ledger.RoleCatchingUp {
		return result{err: fmt.Errorf("apply pulled log as %s: %w", s.view().Role, ErrInvalidConfig)}
	}
	bodies, err := s.skipApplied(ctx, req)
	if err == nil {
		err = s.applyBodies(ctx, bodies, false)
	}
	return result{err: err}
}

// addStandbyAttempts bounds the tries to join the configuration after a catch-up.
const addStandbyAttempts = 5

// addStandby asks the core zone to take this caught-up replica back as the unit's standby.
func (s *server) addStandby(ctx context.Context) error {
	if len(s.cfg.CoreAddrs) == 0 || s.follower() {
		return nil // no core zone (tests), or a shadow plane (its production plane rejoins)
	}
	var err error
	for range addStandbyAttempts {
		var u unitConfig
		if u, err = s.routing(ctx); err != nil {
			continue
		}
		if u.Standby == s.cfg.Replica && u.StandbyOK {
			return nil
		}
		body := map[string]any{"epoch": u.Epoch, "replica": s.cfg.Replica, "addr": s.addr}
		if err = s.core(ctx, http.MethodPost, "/v1/units/"+s.cfg.Unit+"/add-standby", body, nil); err == nil {
			return nil
		}
		sleep(ctx, 50*time.Millisecond)
	}
	return fmt.Errorf("add standby: %w", err)
}
