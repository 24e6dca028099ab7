package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// JournalFile is the journal's name in a run directory.
const JournalFile = "chaos.jsonl"

// Limits of a journal.
const (
	journalLineMax    = 64 << 10
	journalEntriesMax = 1 << 20
)

// Journal entry operations.
const (
	JournalOpen    = "open"    // a run began using the journal: who owns the in-process effects
	JournalInject  = "inject"  // written and fsynced before the injection starts
	JournalRecover = "recover" // written after the recovery succeeded
)

// JournalEntry is one line of the journal.
type JournalEntry struct {
	Op     string    `json:"op"`
	Time   time.Time `json:"time"`
	ID     string    `json:"id,omitempty"` // one injection of one fault on one target
	Fault  string    `json:"fault,omitempty"`
	Phase  string    `json:"phase,omitempty"`
	Target string    `json:"target,omitempty"`
	Undo   *Undo     `json:"undo,omitempty"`
	// Pid and PidStart identify the Redline process that owns in-process effects (open).
	Pid      int    `json:"pid,omitempty"`
	PidStart uint64 `json:"pid_start,omitempty"`
	Note     string `json:"note,omitempty"`
}

// Journal records injections before they happen and recoveries after, each line fsynced, so
// that a crash never hides an injected fault. It is safe for concurrent use.
type Journal struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// OpenJournal opens (creating or appending) the journal at path and records the current
// process as the owner of in-process effects.
func OpenJournal(path string) (*Journal, error) {
	j, err := appendJournal(path, os.O_CREATE)
	if err != nil {
		return nil, err
	}
	start, _ := ProcessStart(os.Getpid())
	if err := j.write(JournalEntry{Op: JournalOpen, Pid: os.Getpid(), PidStart: start}); err != nil {
		j.f.Close()
		return nil, err
	}
	return j, nil
}

// appendJournal opens the journal at path for appending, its tail mended first.
func appendJournal(path string, flag int) (*Journal, error) {
	f, err := os.OpenFile(path, flag|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open chaos journal: %w", err)
	}
	if err := mendTail(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("open chaos journal %s: %w", path, err)
	}
	return &Journal{f: f, path: path}, nil
}

// mendTail makes f end where a new line can start, keeping ReadJournal's view of it: a last
// line that does not parse (torn by a crash in the middle of a write) is what the reader
// ignores, so it is cut off; a last line that parses but lacks its newline gets one. Without
// this the next entry would be glued onto the fragment, and the fragment, no longer last,
// would make every later read fail.
func mendTail(f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("mend tail: %w", err)
	}
	size := info.Size()
	from := max(size-(journalLineMax+1), 0)
	tail := make([]byte, size-from)
	if _, err := f.ReadAt(tail, from); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("mend tail: %w", err)
	}
	body, ended := bytes.CutSuffix(tail, []byte("\n"))
	i := bytes.LastIndexByte(body, '\n')
	if i < 0 && from > 0 {
		return fmt.Errorf("mend tail: %w: last line over %d bytes", ErrBadJournal, journalLineMax)
	}
	last := bytes.TrimSpace(body[i+1:])
	var e JournalEntry
	switch {
	case len(last) == 0:
		return nil
	case json.Unmarshal(last, &e) != nil:
		if err := f.Truncate(from + int64(i+1)); err != nil {
			return fmt.Errorf("mend tail: cut a torn line: %w", err)
		}
	case !ended:
		if _, err := f.Write([]byte("\n")); err != nil {
			return fmt.Errorf("mend tail: end the last line: %w", err)
		}
	default:
		return nil
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("mend tail: %w", err)
	}
	return nil
}

// Path is the journal's file.
func (j *Journal) Path() string { return j.path }

// Close closes the file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("close chaos journal: %w", err)
	}
	return nil
}

func (j *Journal) write(e JournalEntry) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("write chaos journal: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		_ = mendTail(j.f) // a short write must not glue the next entry onto its fragment
		return fmt.Errorf("write chaos journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync chaos journal: %w", err)
	}
	return nil
}

// Inject records an injection about to happen.
func (j *Journal) Inject(id, fault, phase, target string, u Undo) error {
	return j.write(JournalEntry{Op: JournalInject, ID: id, Fault: fault, Phase: phase, Target: target, Undo: &u})
}

// Recovered records a recovery that succeeded.
func (j *Journal) Recovered(id, note string) error {
	return j.write(JournalEntry{Op: JournalRecover, ID: id, Note: note})
}

// Pending is what a journal says is still injected, and who owned the run.
type Pending struct {
	Injected []JournalEntry // inject entries without a recover entry, in journal order
	OwnerPid int
	// OwnerStart is the owner's start time; with OwnerPid it says whether it still runs.
	OwnerStart uint64
}

// ReadJournal reads a journal. A torn last line (a crash in the middle of a write) is ignored:
// its injection never started, since injections wait for the fsynced line.
func ReadJournal(r io.Reader) (Pending, error) {
	var p Pending
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), journalLineMax)
	open := map[string]int{} // id → index in injected
	var torn error
	for n := 1; sc.Scan(); n++ {
		if torn != nil {
			return p, torn // a bad line that was not the last
		}
		if n > journalEntriesMax {
			return p, fmt.Errorf("read chaos journal: %w: over %d entries", ErrBadJournal, journalEntriesMax)
		}
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e JournalEntry
		if err := json.Unmarshal(line, &e); err != nil {
			torn = fmt.Errorf("read chaos journal line %d: %w: %w", n, ErrBadJournal, err)
			continue
		}
		switch e.Op {
		case JournalOpen:
			p.OwnerPid, p.OwnerStart = e.Pid, e.PidStart
		case JournalInject:
			if e.Undo == nil || e.ID == "" {
				return p, fmt.Errorf("read chaos journal line %d: %w: inject without id or undo", n, ErrBadJournal)
			}
			open[e.ID] = len(p.Injected)
			p.Injected = append(p.Injected, e)
		case JournalRecover:
			if i, ok := open[e.ID]; ok {
				p.Injected[i].ID = "" // recovered
				delete(open, e.ID)
			}
		default:
			return p, fmt.Errorf("read chaos journal line %d: %w: op %q", n, ErrBadJournal, e.Op)
		}
	}
	if err := sc.Err(); err != nil {
		return p, fmt.Errorf("read chaos journal: %w: %w", ErrBadJournal, err)
	}
	out := p.Injected[:0]
	for _, e := range p.Injected {
		if e.ID != "" {
			out = append(out, e)
		}
	}
	p.Injected = out
	return p, nil
}

// ErrOwnerAlive is returned by RecoverJournal when the run that wrote the journal still runs:
// its own recovery is in charge.
var ErrOwnerAlive = errors.New("the run that owns the journal is still running")

// RecoverResult is what RecoverJournal did for one pending injection.
type RecoverResult struct {
	Entry JournalEntry `json:"entry"`
	Done  bool         `json:"done"`
	Note  string       `json:"note"`
}

// RecoverJournal undoes every injection the journal at path still lists, appending a recover
// entry for each one it undid. Effects that lived in the crashed process (proxy toxics,
// stressors) ended with it, and so did the built-in target it started: an undo whose process or
// admin API is gone has nothing left to undo, and is recorded as recovered. It refuses while
// the owning process still runs.
func RecoverJournal(ctx context.Context, path string, admin AdminExecutor, consumer ConsumerExecutor) ([]RecoverResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("recover chaos journal: %w", err)
	}
	p, err := ReadJournal(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	if p.OwnerPid != os.Getpid() && p.OwnerPid > 0 && ProcessAlive(p.OwnerPid, p.OwnerStart) && len(p.Injected) > 0 {
		return nil, fmt.Errorf("recover chaos journal %s: pid %d: %w", path, p.OwnerPid, ErrOwnerAlive)
	}
	j, err := appendJournal(path, 0)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	var results []RecoverResult
	var errs []error
	for _, e := range p.Injected {
		note, err := undoAfterCrash(ctx, *e.Undo, admin, consumer)
		r := RecoverResult{Entry: e, Done: err == nil, Note: note}
		if err != nil {
			r.Note = err.Error()
			errs = append(errs, fmt.Errorf("recover %s on %s: %w", e.Fault, e.Target, err))
		} else if err := j.Recovered(e.ID, "redline chaos recover: "+note); err != nil {
			errs = append(errs, err)
		}
		results = append(results, r)
	}
	return results, errors.Join(errs...)
}

// undoAfterCrash recovers one journalled injection without the run that made it.
func undoAfterCrash(ctx context.Context, u Undo, admin AdminExecutor, consumer ConsumerExecutor) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, RecoverTimeout)
	defer cancel()
	switch {
	case u.InProcess:
		return "ended with the process that held it", nil
	case u.Op == OpNone:
		return "one-shot: nothing to undo", nil
	case u.Op == OpContinue:
		if !ProcessAlive(u.Pid, u.PidStart) {
			return fmt.Sprintf("pid %d is gone", u.Pid), nil
		}
		return fmt.Sprintf("sent SIGCONT to pid %d", u.Pid), ProcessExecutor{}.Recover(ctx, u)
	case u.Op == OpAdminResume:
		return resumeAfterCrash(ctx, u, admin)
	case u.Op == OpUnthrottle:
		err := consumer.Recover(ctx, u)
		if targetGone(err) {
			return fmt.Sprintf("the target is gone: its admin API at %s refuses connections, and the group's throttle ended with its process", u.Admin.URL), nil
		}
		return "unthrottled " + u.Group + " through the admin API", err
	}
	return "", fmt.Errorf("unknown undo %q", u.Op)
}

// resumeAfterCrash resumes a paused process of the built-in target. The journal names the
// process by pid and start time: when it is gone there is nothing left paused. The built-in
// target's supervisor (and its admin API) lives in the run that wrote the journal and its
// processes die with it; should one outlive an admin API that refuses connections, it is
// continued by its pid.
func resumeAfterCrash(ctx context.Context, u Undo, admin AdminExecutor) (string, error) {
	known := u.PidStart != 0
	if known && !ProcessAlive(u.Pid, u.PidStart) {
		return fmt.Sprintf("the target is gone: pid %d (%s) no longer runs, nothing is left paused", u.Pid, u.Admin.Path), nil
	}
	err := admin.Recover(ctx, u)
	switch {
	case err == nil:
		return "resumed " + u.Admin.Path + " through the admin API", nil
	case !targetGone(err):
		return "", err
	case !known:
		return fmt.Sprintf("the target is gone: its admin API at %s refuses connections", u.Admin.URL), nil
	}
	if err := signalSame(u.Pid, u.PidStart, syscall.SIGCONT); err != nil && !errors.Is(err, ErrGone) {
		return "", fmt.Errorf("resume %s: the admin API refuses connections: %w", u.Admin.Path, err)
	}
	return fmt.Sprintf("the admin API at %s refuses connections: sent SIGCONT to pid %d (%s)", u.Admin.URL, u.Pid, u.Admin.Path), nil
}

// targetGone reports whether an admin call failed because nothing listens at the admin API's
// address any more: the built-in target went with the run that started it.
func targetGone(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
