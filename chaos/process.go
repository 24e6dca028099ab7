package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Limits of process faults.
const (
	pidFileBytesMax = 64
	// procStatusBytesMax bounds a read of /proc/PID/status; ancestorsMax the walk up from Redline
	// to init.
	procStatusBytesMax = 16 << 10
	ancestorsMax       = 4096
	// evidencePoll is how often /proc is read while waiting for a fault's effect.
	evidencePoll = 2 * time.Millisecond
)

// ProcessExecutor acts on local processes by signals: pod-kill and container-kill send SIGKILL,
// pod-failure SIGSTOP until recovery, then SIGCONT. A process is identified by its pid and its
// start time, so that no signal ever reaches a process that merely reused the pid.
type ProcessExecutor struct{}

var (
	_ Executor = ProcessExecutor{}
	_ Prover   = ProcessExecutor{}
)

// Plan resolves the target's pid and returns the Undo of the fault.
func (ProcessExecutor) Plan(f Fault, t Target) (Undo, error) {
	if f.Kind != KindPod {
		return Undo{}, fmt.Errorf("plan %s on %s: %w", f, t.Name, ErrNoExecutor)
	}
	pid, err := targetPid(t)
	if err != nil {
		return Undo{}, fmt.Errorf("plan %s on %s: %w", f, t.Name, err)
	}
	if err := checkNotRedline(pid); err != nil {
		return Undo{}, fmt.Errorf("plan %s on %s: %w", f, t.Name, err)
	}
	st, err := readProcStat(pid)
	if err != nil || st.dead() {
		return Undo{}, fmt.Errorf("plan %s on %s: pid %d: %w", f, t.Name, pid, ErrGone)
	}
	if f.OneShot() {
		return Undo{Op: OpNone, Pid: pid, PidStart: st.start}, nil
	}
	return Undo{Op: OpContinue, Pid: pid, PidStart: st.start}, nil
}

// Inject signals the process.
func (ProcessExecutor) Inject(_ context.Context, f Fault, t Target, u Undo) error {
	sig := syscall.SIGKILL
	if f.Action == ActionPodFailure {
		sig = syscall.SIGSTOP
	}
	if err := signalSame(u.Pid, u.PidStart, sig); err != nil {
		return fmt.Errorf("inject %s on %s: %w", f, t.Name, err)
	}
	return nil
}

// Recover continues a stopped process; a process that is gone needs nothing.
func (ProcessExecutor) Recover(_ context.Context, u Undo) error {
	if u.Op != OpContinue {
		return nil
	}
	if err := signalSame(u.Pid, u.PidStart, syscall.SIGCONT); err != nil && !errors.Is(err, ErrGone) {
		return fmt.Errorf("continue pid %d: %w", u.Pid, err)
	}
	return nil
}

// Evidence waits until /proc shows the process dead (killed) or stopped (failure).
func (ProcessExecutor) Evidence(ctx context.Context, f Fault, _ Target, u Undo) Evidence {
	return processEvidence(ctx, f, u.Pid, u.PidStart)
}

// processEvidence polls /proc/PID/stat until the fault shows or ctx ends.
func processEvidence(ctx context.Context, f Fault, pid int, start uint64) Evidence {
	began := time.Now()
	tick := time.NewTicker(evidencePoll)
	defer tick.Stop()
	for {
		st, err := readProcStat(pid)
		gone := err != nil || st.start != start || st.dead()
		switch {
		case f.OneShot() && gone:
			return Evidence{Status: EvidenceObserved, Latency: time.Since(began),
				Detail: fmt.Sprintf("pid %d is gone from the process table", pid)}
		case !f.OneShot() && gone:
			return Evidence{Status: EvidenceMissing, Latency: time.Since(began),
				Detail: fmt.Sprintf("pid %d died instead of stopping", pid)}
		case !f.OneShot() && st.state == 'T':
			return Evidence{Status: EvidenceObserved, Latency: time.Since(began),
				Detail: fmt.Sprintf("pid %d is stopped (state T in /proc)", pid)}
		}
		select {
		case <-ctx.Done():
			state := "running"
			if err == nil {
				state = "state " + string(st.state)
			}
			return Evidence{Status: EvidenceMissing, Latency: time.Since(began),
				Detail: fmt.Sprintf("pid %d still %s", pid, state)}
		case <-tick.C:
		}
	}
}

// targetPid is the target's pid: from its pid file when it names one.
func targetPid(t Target) (int, error) {
	if t.PidFile == "" {
		if t.Pid <= 0 {
			return 0, fmt.Errorf("target %s has no pid", t.Name)
		}
		return t.Pid, nil
	}
	return ReadPidFile(t.PidFile)
}

// checkNotRedline refuses a pid no fault may act on: init (pid 1), Redline itself, and any of
// Redline's ancestors. A stopped Redline never wakes to recover the fault, and a stopped shell
// or CI runner above it hangs the job all the same; a killed one ends the rehearsal unjudged. A
// thread id counts as its process, since a signal to a thread reaches the whole process.
func checkNotRedline(pid int) error {
	p := threadGroup(pid)
	if p == 1 {
		return fmt.Errorf("pid %d is init: %w", pid, ErrProtected)
	}
	self := os.Getpid()
	if p == self {
		return fmt.Errorf("pid %d is Redline itself: %w", pid, ErrProtected)
	}
	up := self
	for range ancestorsMax {
		st, err := readProcStat(up)
		if err != nil || st.ppid <= 1 {
			return nil
		}
		if up = st.ppid; up == p {
			return fmt.Errorf("pid %d is an ancestor of Redline (pid %d): %w", pid, self, ErrProtected)
		}
	}
	return nil
}

// threadGroup returns the process that pid belongs to when pid is a thread id (the Tgid of
// /proc/PID/status), or pid itself.
func threadGroup(pid int) int {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return pid
	}
	defer f.Close()
	b := make([]byte, procStatusBytesMax)
	n, _ := io.ReadFull(f, b)
	for _, line := range strings.Split(string(b[:n]), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			if tgid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && tgid > 0 {
				return tgid
			}
		}
	}
	return pid
}

// ReadPidFile reads a pid file: one positive integer, optionally followed by a newline.
func ReadPidFile(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	defer f.Close()
	buf := make([]byte, pidFileBytesMax+1)
	n, _ := f.Read(buf)
	if n > pidFileBytesMax {
		return 0, fmt.Errorf("read pid file %s: over %d bytes", path, pidFileBytesMax)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("read pid file %s: want a positive integer, got %q", path, strings.TrimSpace(string(buf[:n])))
	}
	return pid, nil
}

// procStat is what Redline reads of /proc/PID/stat.
type procStat struct {
	state byte   // R, S, D, T (stopped), t, Z (zombie), X (dead), ...
	ppid  int    // the parent's pid
	start uint64 // start time in clock ticks after boot
}

func (s procStat) dead() bool { return s.state == 'Z' || s.state == 'X' }

// readProcStat reads a process's state and start time; an absent process is ErrGone.
func readProcStat(pid int) (procStat, error) {
	if pid <= 0 {
		return procStat{}, ErrGone
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, ErrGone
	}
	return parseProcStat(b)
}

// parseProcStat parses "pid (comm) state ppid ... starttime ...": comm may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procStat{}, fmt.Errorf("parse /proc stat: no comm")
	}
	fields := strings.Fields(string(b[i+2:]))
	// After comm: state is field 3 of stat(5), ppid field 4, starttime field 22: indexes 0, 1
	// and 19 here.
	if len(fields) < 20 || len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("parse /proc stat: %d fields", len(fields))
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat ppid: %w", err)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat starttime: %w", err)
	}
	return procStat{state: fields[0][0], ppid: ppid, start: start}, nil
}

// signalSame sends sig to pid only while it is still the process that started at start.
func signalSame(pid int, start uint64, sig syscall.Signal) error {
	st, err := readProcStat(pid)
	if err != nil || st.start != start || st.dead() {
		return fmt.Errorf("signal pid %d: %w", pid, ErrGone)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signal pid %d: %w", pid, ErrGone)
		}
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	return nil
}

// ProcessAlive reports whether pid is still the live process that started at start.
func ProcessAlive(pid int, start uint64) bool {
	st, err := readProcStat(pid)
	return err == nil && st.start == start && !st.dead()
}

// ProcessStart returns pid's start time, for identifying it later.
func ProcessStart(pid int) (uint64, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return 0, err
	}
	return st.start, nil
}

// ProcessStopped reports whether pid is in the stopped state.
func ProcessStopped(pid int) bool {
	st, err := readProcStat(pid)
	return err == nil && st.state == 'T'
}
