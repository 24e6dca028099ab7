package supervisor_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/audit"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/supervisor"
	"github.com/redline-dev/redline/target/targettest"
)

// upCommand runs `redline target up` on dir and waits for its ready lines.
func upCommand(t *testing.T, bin, dir string) (*exec.Cmd, time.Duration) {
	t.Helper()
	cmd := exec.Command(bin, "target", "up", "--data", dir, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // a no-op once it has exited
	lines := make(chan string)
	// The reader ends when the command's stdout closes, at its exit.
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("redline target up exited: %s", stderr.String())
			}
			if strings.HasPrefix(line, "admin ") {
				go func() { // drain until exit
					for range lines {
					}
				}()
				return cmd, time.Since(began)
			}
		case <-timeout:
			t.Fatalf("redline target up not ready after 30s: %s", stderr.String())
		}
	}
}

func pidsOf(t *testing.T, dir string) []int {
	t.Helper()
	top, err := supervisor.ReadTopology(dir)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range top.Processes {
		if !p.Up || !alive(p.Pid) {
			t.Errorf("%s not running: %+v", p.Key(), p)
		}
		pids = append(pids, p.Pid)
	}
	return pids
}

// awaitGone waits until none of pids runs.
func awaitGone(t *testing.T, pids []int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d still running %v later", pid, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestUpCommand: `redline target up` starts in under 5 s and stops every process on Ctrl-C;
// started again on the same data dir it keeps the books; when the supervisor itself is killed,
// nothing is left behind; `redline target audit --data` audits a stopped target's databases.
func TestUpCommand(t *testing.T) {
	bin := targettest.Binary(t)
	dir := t.TempDir()

	cmd, took := upCommand(t, bin, dir)
	if took > startMax {
		t.Errorf("redline target up ready in %v, want under %v", took, startMax)
	}
	pids := pidsOf(t, dir)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("redline target up after Ctrl-C: %v, want exit 0", err)
	}
	awaitGone(t, pids, time.Second)

	cmd, _ = upCommand(t, bin, dir)
	pids = pidsOf(t, dir)
	if err := cmd.Process.Kill(); err != nil { // the supervisor dies without a word
		t.Fatal(err)
	}
	_ = cmd.Wait()
	awaitGone(t, pids, 5*time.Second)

	// Started again with another number of units, it refuses (exit 2) instead of waiting.
	began := time.Now()
	err := exec.Command(bin, "target", "up", "--units", "2", "--data", dir, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0").Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || time.Since(began) > 10*time.Second {
		t.Errorf("target up --units 2 on a 4-unit data dir: %v after %v, want exit 2 at once", err, time.Since(began))
	}

	out, err := exec.Command(bin, "target", "audit", "--data", dir).Output()
	if err != nil {
		t.Fatalf("redline target audit --data: %v", err)
	}
	var rep audit.Report
	if err := json.Unmarshal(out, &rep); err != nil || rep.Verdict != ledger.True {
		t.Errorf("offline audit: %v %s %v", err, rep.Verdict, auditFalse(rep))
	}
}
