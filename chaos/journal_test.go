package chaos

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/target/freeport"
)

func TestReadJournal(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		pending []string
		wantErr error
	}{
		{"recovered", `{"op":"open","pid":1}
{"op":"inject","id":"a","undo":{"op":"none"}}
{"op":"recover","id":"a"}
`, nil, nil},
		{"pending in order", `{"op":"open","pid":1}
{"op":"inject","id":"a","undo":{"op":"none"}}
{"op":"inject","id":"b","undo":{"op":"sigcont","pid":5}}
{"op":"recover","id":"a"}
{"op":"inject","id":"c","undo":{"op":"none"}}
`, []string{"b", "c"}, nil},
		{"torn last line is ignored", `{"op":"inject","id":"a","undo":{"op":"none"}}
{"op":"inject","id":"b","un`, []string{"a"}, nil},
		{"bad line in the middle", `{"op":"inject","id":"a","undo":{"op":"none"}}
{"op":"inject","id":"b","un
{"op":"recover","id":"a"}
`, nil, ErrBadJournal},
		{"unknown op", `{"op":"explode"}`, nil, ErrBadJournal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ReadJournal(strings.NewReader(tt.text))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var ids []string
			for _, e := range p.Injected {
				ids = append(ids, e.ID)
			}
			if diff := cmp.Diff(tt.pending, ids); diff != "" {
				t.Errorf("pending (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecoverJournalContinuesStoppedProcess(t *testing.T) {
	cmds := startSleeps(t, 1)
	pid := cmds[0].Process.Pid
	start, err := ProcessStart(pid)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), JournalFile)
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	u := Undo{Op: OpContinue, Pid: pid, PidStart: start}
	if err := j.Inject("stop@p#1", "stop", "p", "p", u); err != nil {
		t.Fatal(err)
	}
	if err := j.Inject("toxic@l#2", "slow", "p", "l", Undo{Op: OpRemoveToxic, Link: "l", Toxic: "slow", InProcess: true}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Second); !ProcessStopped(pid) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	// The journal's owner is this process: a crashed run's would be gone; recover proceeds.
	res, err := RecoverJournal(context.Background(), path, AdminExecutor{}, ConsumerExecutor{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || !res[0].Done || !res[1].Done {
		t.Fatalf("results %+v", res)
	}
	if ProcessStopped(pid) {
		t.Error("the process is still stopped")
	}
	f, _ := os.Open(path)
	defer f.Close()
	if p, err := ReadJournal(f); err != nil || len(p.Injected) != 0 {
		t.Errorf("after recover the journal lists %v (%v)", p.Injected, err)
	}
}

func TestRecoverJournalRefusesWhileOwnerRuns(t *testing.T) {
	cmds := startSleeps(t, 1)
	owner := cmds[0].Process.Pid
	start, _ := ProcessStart(owner)
	path := filepath.Join(t.TempDir(), JournalFile)
	text := `{"op":"open","pid":` + itoa(owner) + `,"pid_start":` + itoa(int(start)) + `}
{"op":"inject","id":"a","undo":{"op":"none"}}
`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := RecoverJournal(context.Background(), path, AdminExecutor{}, ConsumerExecutor{}); !errors.Is(err, ErrOwnerAlive) {
		t.Fatalf("err = %v, want ErrOwnerAlive", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestStressor(t *testing.T) {
	s := NewStressor()
	o := New(Options{Executors: map[Via]Executor{ViaHost: s}, Inventory: staticInventory([]Target{{Name: "p", Via: ViaProcess, Labels: map[string]string{"a": "b"}}})})
	recs := o.RunPhase(context.Background(), time.Now(), []Fault{{Name: "cpu", Phase: "p", Kind: KindStress, Action: ActionStress,
		Duration: 400 * time.Millisecond, Selector: Selector{Mode: ModeAll}, Params: Params{CPUWorkers: 1, CPULoadPercent: 80, MemoryBytes: 1 << 20}}})
	if len(recs) != 1 || recs[0].Phase != PhaseRecovered || !recs[0].Evidence.Observed() {
		t.Fatalf("records %+v", recs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.running) != 0 {
		t.Errorf("stressors still running: %v", s.running)
	}
}

// TestJournalAppendsAfterTornLine checks that a journal whose last line a crash tore is mended
// before anything appends to it: the next entry starts on a line of its own, so the journal
// reads again, and again after every later recover.
func TestJournalAppendsAfterTornLine(t *testing.T) {
	const injected = `{"op":"open","pid":1}
{"op":"inject","id":"a","undo":{"op":"none"}}
`
	tests := []struct {
		name    string
		text    string
		pending []string // after OpenJournal appended its open entry
	}{
		{"torn without newline", injected + `{"op":"inj`, []string{"a"}},
		{"torn with newline", injected + `{"op":"inj` + "\n", []string{"a"}},
		{"whole entry without newline", injected + `{"op":"inject","id":"b","undo":{"op":"none"}}`, []string{"a", "b"}},
		{"only a torn line", `{"op":"op`, nil},
		{"clean", injected, []string{"a"}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), JournalFile)
			if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			j, err := OpenJournal(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			if got := pendingIDs(t, path); !cmp.Equal(tt.pending, got) {
				t.Fatalf("after open, pending = %v, want %v", got, tt.pending)
			}
			for i := range 2 {
				if _, err := RecoverJournal(context.Background(), path, AdminExecutor{}, ConsumerExecutor{}); err != nil {
					t.Fatalf("recover %d: %v", i+1, err)
				}
				if got := pendingIDs(t, path); len(got) != 0 {
					t.Fatalf("after recover %d, pending = %v", i+1, got)
				}
			}
		})
	}
}

// TestRecoverJournalMendsTornLine is the crash the other way round: recover itself appends to
// a journal whose last line is torn, and a second recover reads it.
func TestRecoverJournalMendsTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), JournalFile)
	text := `{"op":"inject","id":"a","undo":{"op":"none"}}
{"op":"inject","id":"b","un`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		res, err := RecoverJournal(context.Background(), path, AdminExecutor{}, ConsumerExecutor{})
		if err != nil {
			t.Fatalf("recover %d: %v", i+1, err)
		}
		if want := max(1-i, 0); len(res) != want {
			t.Errorf("recover %d undid %d injections, want %d", i+1, len(res), want)
		}
	}
}

func pendingIDs(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := ReadJournal(f)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range p.Injected {
		ids = append(ids, e.ID)
	}
	return ids
}

// TestRecoverJournalTargetGone covers the built-in target after a kill -9 of its run: its
// admin API refuses connections and its processes are gone, so an admin undo has nothing left
// to undo; it is recorded, and a second recover finds nothing. A target that answers but fails
// the undo is still an error.
func TestRecoverJournalTargetGone(t *testing.T) {
	refused, release, err := freeport.Refusing()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	defer failing.Close()
	gone := startSleeps(t, 1)[0]
	gonePid := gone.Process.Pid
	goneStart, err := ProcessStart(gonePid)
	if err != nil {
		t.Fatal(err)
	}
	_ = gone.Process.Kill()
	_ = gone.Wait()
	stopped := startSleeps(t, 1)[0]
	stoppedPid := stopped.Process.Pid
	stoppedStart, err := ProcessStart(stoppedPid)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		undo    Undo
		stop    bool // SIGSTOP stoppedPid first
		wantErr bool
		note    string
	}{
		{"unthrottle, admin API refuses", Undo{Op: OpUnthrottle, Admin: &AdminRef{URL: "http://" + refused, Path: "settlement"}, Group: "settlement"},
			false, false, "the target is gone"},
		{"resume, admin API refuses, no start time", Undo{Op: OpAdminResume, Admin: &AdminRef{URL: "http://" + refused, Path: "unit/b/r1"}, Pid: gonePid},
			false, false, "the target is gone"},
		{"resume, process gone", Undo{Op: OpAdminResume, Admin: &AdminRef{URL: failing.URL, Path: "unit/b/r1"}, Pid: gonePid, PidStart: goneStart},
			false, false, "the target is gone"},
		{"resume, admin API refuses, process outlived it", Undo{Op: OpAdminResume, Admin: &AdminRef{URL: "http://" + refused, Path: "unit/a/r2"}, Pid: stoppedPid, PidStart: stoppedStart},
			true, false, "sent SIGCONT"},
		{"unthrottle, target answers with an error", Undo{Op: OpUnthrottle, Admin: &AdminRef{URL: failing.URL, Path: "settlement"}, Group: "settlement"},
			false, true, "status 500"},
		{"resume, target answers with an error", Undo{Op: OpAdminResume, Admin: &AdminRef{URL: failing.URL, Path: "unit/a/r2"}, Pid: stoppedPid, PidStart: stoppedStart},
			false, true, "status 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.stop {
				if err := syscall.Kill(stoppedPid, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				for deadline := time.Now().Add(5 * time.Second); !ProcessStopped(stoppedPid) && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
			path := filepath.Join(t.TempDir(), JournalFile)
			j, err := OpenJournal(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Inject("f@t#1", "f", "p", "t", tt.undo); err != nil {
				t.Fatal(err)
			}
			j.Close()
			res, err := RecoverJournal(context.Background(), path, AdminExecutor{}, ConsumerExecutor{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tt.wantErr)
			}
			if len(res) != 1 || res[0].Done == tt.wantErr || !strings.Contains(res[0].Note, tt.note) {
				t.Fatalf("results %+v, want a note with %q", res, tt.note)
			}
			if tt.stop && ProcessStopped(stoppedPid) {
				t.Error("the process is still stopped")
			}
			want := 0
			if tt.wantErr {
				want = 1
			}
			if got := pendingIDs(t, path); len(got) != want {
				t.Errorf("after recover the journal lists %v, want %d", got, want)
			}
		})
	}
}
