package chaos

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestProcessExecutorRefusesRedline checks that a process fault can never stop or kill Redline
// (by its pid, one of its thread ids or a pid file), an ancestor of it, or init: a stopped
// Redline never wakes to recover the fault.
func TestProcessExecutorRefusesRedline(t *testing.T) {
	self := os.Getpid()
	pidFile := filepath.Join(t.TempDir(), "self.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(self)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	child := startSleeps(t, 1)[0].Process.Pid
	tests := []struct {
		name    string
		target  Target
		wantErr error
	}{
		{"redline's pid", Target{Name: "self", Pid: self}, ErrProtected},
		{"redline's pid in a pid file", Target{Name: "self", PidFile: pidFile}, ErrProtected},
		{"a thread of redline", Target{Name: "thread", Pid: otherThread(t)}, ErrProtected},
		{"redline's parent", Target{Name: "parent", Pid: os.Getppid()}, ErrProtected},
		{"init", Target{Name: "init", Pid: 1}, ErrProtected},
		{"a child of redline", Target{Name: "child", Pid: child}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, a := range []Action{ActionPodFailure, ActionPodKill} {
				_, err := ProcessExecutor{}.Plan(Fault{Name: "f", Kind: KindPod, Action: a}, tt.target)
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("%s: err = %v, want %v", a, err, tt.wantErr)
				}
			}
		})
	}
}

// otherThread returns a thread id of this process other than its pid.
func otherThread(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil && tid != os.Getpid() {
			return tid
		}
	}
	t.Skip("this process has one thread")
	return 0
}
